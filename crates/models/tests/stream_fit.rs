//! A classifier trained on a stream from the decode cache trains exactly as on the same images
//! in memory (same batches, same weights, same history), with the backbone training or frozen
//! (features cached batch by batch), and a run resumes across the switch.

use std::path::Path;

use ganaug_data::fixture::{write_class_folders, FixtureFormat, FolderFixture};
use ganaug_data::{ColorMode, FolderConfig, ImageFolder, ImageSpec, LoadOptions};
use ganaug_models::{fit, fit_source, BackboneMode, Classifier, FitOptions, TrainConfig};

mod common;
use common::{cnn, rng_lock};

fn same_weights(a: &Classifier, b: &Classifier) {
    let (va, vb) = (a.var_store().variables(), b.var_store().variables());
    assert_eq!(va.len(), vb.len());
    for (name, t) in &va {
        assert!(t.equal(&vb[name]), "{name} differs");
    }
}

fn folder(dir: &Path) -> ImageFolder {
    write_class_folders(dir, &FolderFixture::new(2, 16, 40, FixtureFormat::GrayPng))
        .expect("fixture");
    let (cfg, _) = FolderConfig::discover(dir).expect("layout");
    ImageFolder::open(dir, &cfg).expect("folder")
}

#[test]
fn a_streamed_run_is_the_in_memory_run_and_resumes_across_the_switch() {
    let _g = rng_lock();
    let (data, cache) = (
        tempfile::tempdir().expect("test io"),
        tempfile::tempdir().expect("test io"),
    );
    let folder = folder(data.path());
    let spec = ImageSpec::with_size(32).with_color(ColorMode::Gray);
    let opts = LoadOptions::with_size(32)
        .with_spec(spec)
        .with_cache(cache.path());
    let memory = folder.load_splits(&opts).expect("load");
    let stream = folder.stream_splits(&opts).expect("stream");
    for backbone in [BackboneMode::Train, BackboneMode::Frozen] {
        let cfg = TrainConfig {
            max_epochs: 4,
            batch_size: 5,
            lr: 0.01,
            backbone,
            stop_at_train_accuracy: None,
            seed: 3,
            ..Default::default()
        };
        tch::manual_seed(7);
        let mut a = cnn(32);
        let ra = fit(
            &mut a,
            &memory.train,
            &memory.val,
            &cfg,
            &FitOptions::default(),
        )
        .expect("fit");
        tch::manual_seed(7);
        let mut b = cnn(32);
        let rb = fit_source(
            &mut b,
            &stream.train,
            &stream.val,
            &cfg,
            &FitOptions::default(),
        )
        .expect("fit a stream");
        assert_eq!(ra.cached_features, backbone == BackboneMode::Frozen);
        assert_eq!(ra.cached_features, rb.cached_features);
        for (x, y) in ra.history.iter().zip(&rb.history) {
            assert_eq!(
                (x.train_loss, x.val_loss),
                (y.train_loss, y.val_loss),
                "{backbone:?}"
            );
        }
        same_weights(&a, &b);

        if backbone == BackboneMode::Train {
            // two epochs in memory, resumed to four from the stream: the straight run
            let dir = tempfile::tempdir().expect("test io");
            let run = FitOptions {
                out_dir: Some(dir.path()),
                resume: true,
                ..Default::default()
            };
            tch::manual_seed(7);
            let half = TrainConfig {
                max_epochs: 2,
                ..cfg.clone()
            };
            fit(&mut cnn(32), &memory.train, &memory.val, &half, &run).expect("first half");
            let mut c = cnn(32);
            let rc = fit_source(&mut c, &stream.train, &stream.val, &cfg, &run).expect("resume");
            assert_eq!(rc.history.len(), 4);
            assert_eq!(rc.history[3].train_loss, ra.history[3].train_loss);
            same_weights(&a, &c);
        }
    }
}
