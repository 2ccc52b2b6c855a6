//! Streaming from the decode cache against the same images in memory, pair by pair: a
//! shuffled pass of reads, a classifier epoch (the paper's CNN at 64²) and a GAN epoch
//! (DCGAN-32 at 64²) on COVID-CT's training split; and a classifier epoch on the split with
//! two classic-augmentation copies, stored in memory (`expand`) against streamed and made
//! when read (`ExpandedSource`), as a streamed experiment's classic cells train. The issue's
//! bar: the stream's step throughput within 10% of the in-memory one.
//! `COVID_CT_DIR=/path/to/covid-ct cargo bench --bench stream` (without it: a generated folder
//! of the same size).

#![allow(missing_docs)] // criterion_group! generates undocumented items

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use ganaug::data::fixture::{write_class_folders, FixtureFormat, FolderFixture};
use ganaug::data::{
    for_each_batch, BatchOrder, BatchPlan, ColorMode, DataError, FolderConfig, ImageFolder,
    ImageSource, ImageSpec, LoadOptions,
};
use ganaug::gan::{Arch, GanConfig, GanTrainer, TrainConfig as GanTrain};
use ganaug::models::{fit_source, Classifier, FitOptions, ModelConfig, ModelKind, TrainConfig};
use tch::Device;

fn bench_stream(c: &mut Criterion) {
    common::setup();
    let generated = tempfile::tempdir().expect("tempdir");
    let (dir, cfg) = match std::env::var_os("COVID_CT_DIR").map(std::path::PathBuf::from) {
        Some(d) if d.is_dir() => (d, FolderConfig::covid_ct()),
        _ => {
            let f = FolderFixture::new(2, 373, 128, FixtureFormat::GrayPng);
            write_class_folders(generated.path(), &f).expect("fixture");
            let (cfg, _) = FolderConfig::discover(generated.path()).expect("layout");
            (generated.path().to_path_buf(), cfg)
        }
    };
    let folder = ImageFolder::open(&dir, &cfg).expect("open");
    let cache = tempfile::tempdir().expect("tempdir");
    let spec = ImageSpec::with_size(64).with_color(ColorMode::Gray);
    let opts = LoadOptions::with_size(64)
        .with_spec(spec)
        .with_cache(cache.path());
    let memory = folder.load_splits(&opts).expect("load");
    let stream = folder.stream_splits(&opts).expect("stream");
    let sets: [(&str, &dyn ImageSource, &dyn ImageSource); 2] = [
        ("memory", &memory.train, &memory.val),
        ("stream", &stream.train, &stream.val),
    ];

    let mut group = c.benchmark_group("stream");
    group
        .sample_size(10)
        .measurement_time(common::measurement_time(10));
    for (name, train, _) in sets {
        group.bench_function(format!("cpu/read_epoch_64_batch32/{name}"), |b| {
            let plan = BatchPlan::new(32, BatchOrder::Shuffled { seed: 1 }, Device::Cpu);
            b.iter(|| {
                for_each_batch::<DataError>(train, plan, |batch| {
                    let _ = std::hint::black_box(batch.images);
                    Ok(())
                })
                .expect("read")
            })
        });
    }
    for (name, train, val) in sets {
        group.bench_function(format!("cpu/cnn_epoch_64/{name}"), |b| {
            b.iter(|| cnn_epoch(train, val))
        });
    }
    for (name, train, _) in sets {
        group.bench_function(format!("cpu/dcgan32_epoch_64/{name}"), |b| {
            let gan = GanConfig {
                arch: Arch::Dcgan { ngf: 32, ndf: 32 },
                size: 64,
                ..GanConfig::default()
            };
            let cfg = GanTrain {
                epochs: 1,
                checkpoint_every: 0,
                sample_every: 0,
                ..GanTrain::default()
            };
            b.iter(|| {
                let mut t = GanTrainer::new(gan.clone(), cfg.clone(), Device::Cpu).expect("gan");
                t.fit_source(train, None, &ganaug::train::Silent)
                    .expect("fit")
            })
        });
    }
    // two classic copies: stored, or streamed and made when read
    let pipeline = ganaug::augment::Pipeline::paper();
    let stored = memory
        .train
        .concat(&ganaug::augment::expand(&memory.train, &pipeline, 2, 0, 64).expect("expand"))
        .expect("concat");
    let copies =
        ganaug::augment::ExpandedSource::new(&stream.train, &pipeline, 2, 0, 64).expect("copies");
    let made = ganaug::data::ConcatSource::new(vec![&stream.train, &copies]).expect("concat");
    let classic: [(&str, &dyn ImageSource); 2] = [("memory", &stored), ("stream", &made)];
    for (name, train) in classic {
        group.bench_function(format!("cpu/cnn_epoch_64_classic2/{name}"), |b| {
            let cfg = TrainConfig {
                max_epochs: 1,
                stop_at_train_accuracy: None,
                ..TrainConfig::default()
            };
            b.iter(|| {
                let mcfg = ModelConfig::new(ModelKind::PaperCnn, 64).for_data(2, 1);
                let mut m = Classifier::new(mcfg, Device::Cpu).expect("model");
                fit_source(&mut m, train, &memory.val, &cfg, &FitOptions::default()).expect("fit")
            })
        });
    }
    group.finish();
}

/// One epoch of the paper's CNN at 64² from fresh weights.
fn cnn_epoch(train: &dyn ImageSource, val: &dyn ImageSource) -> ganaug::models::FitReport {
    let cfg = TrainConfig {
        max_epochs: 1,
        stop_at_train_accuracy: None,
        ..TrainConfig::default()
    };
    let mcfg = ModelConfig::new(ModelKind::PaperCnn, 64).for_data(2, 1);
    let mut m = Classifier::new(mcfg, Device::Cpu).expect("model");
    fit_source(&mut m, train, val, &cfg, &FitOptions::default()).expect("fit")
}

criterion_group!(benches, bench_stream);
criterion_main!(benches);
