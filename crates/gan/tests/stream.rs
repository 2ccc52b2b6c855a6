//! A GAN trained on a stream from the decode cache is the GAN trained on the same images in
//! memory: the same batches in the same order, so the same weights after an epoch.

use ganaug_data::fixture::{write_class_folders, FixtureFormat, FolderFixture};
use ganaug_data::{ColorMode, FolderConfig, ImageFolder, ImageSpec, LoadOptions};
use ganaug_gan::{
    generate_candidates, nearest_rms, nearest_rms_of, Arch, ClassModel, GanConfig, GanTrainer,
    SynthConfig, TrainConfig,
};
use ganaug_train::Silent;
use tch::Device;

#[test]
fn a_streamed_gan_epoch_is_the_in_memory_one() {
    let (data, cache) = (
        tempfile::tempdir().expect("test io"),
        tempfile::tempdir().expect("test io"),
    );
    write_class_folders(
        data.path(),
        &FolderFixture::new(2, 24, 20, FixtureFormat::GrayPng),
    )
    .expect("fixture");
    let (cfg, _) = FolderConfig::discover(data.path()).expect("layout");
    let folder = ImageFolder::open(data.path(), &cfg).expect("folder");
    let spec = ImageSpec::with_size(16).with_color(ColorMode::Gray);
    let opts = LoadOptions::with_size(16)
        .with_spec(spec)
        .with_cache(cache.path());
    let memory = folder
        .load_splits(&opts)
        .expect("load")
        .train
        .class_subset(0)
        .expect("class");
    let stream = folder
        .stream_splits(&opts)
        .expect("stream")
        .train
        .class_subset(0)
        .expect("class");
    let gan = GanConfig {
        arch: Arch::Dcgan { ngf: 8, ndf: 8 },
        size: 16,
        latent_dim: 16,
        ..GanConfig::default()
    };
    let train = TrainConfig {
        epochs: 2,
        batch_size: 4,
        checkpoint_every: 0,
        sample_every: 0,
        grid_samples: 4,
        seed: 5,
        ..TrainConfig::default()
    };
    let mut a = GanTrainer::new(gan.clone(), train.clone(), Device::Cpu).expect("trainer");
    a.fit(&memory, None, &Silent).expect("fit");
    let mut b = GanTrainer::new(gan, train, Device::Cpu).expect("trainer");
    b.fit_source(&stream, None, &Silent).expect("fit a stream");
    let (va, vb) = (a.var_store().variables(), b.var_store().variables());
    for (name, t) in &va {
        assert!(t.equal(&vb[name]), "{name} differs");
    }
    assert_eq!(a.history()[1].d_loss, b.history()[1].d_loss);

    // candidates' near-copy distances to the class's images: the same read from the stream
    let synth = SynthConfig {
        candidates_per_class: 12,
        keep_per_class: 4,
        min_nn_distance: 0.0,
        seed: 3,
        batch_size: 5,
    };
    fn model(t: &GanTrainer) -> ClassModel<'_> {
        ClassModel {
            generator: t.generator(),
            discriminator: t.discriminator(),
            condition: None,
        }
    }
    let ca = generate_candidates(model(&a), &memory, &synth).expect("candidates");
    let cb = generate_candidates(model(&b), &stream, &synth).expect("candidates, stream");
    assert!(ca.images.equal(&cb.images));
    assert_eq!(ca.nn, cb.nn);
    assert_eq!(ca.nn, nearest_rms(&ca.images, &memory.images).expect("nn"));
    assert_eq!(
        ca.nn,
        nearest_rms_of(&ca.images, &stream).expect("nn of a stream")
    );
    assert!(
        ca.nn.iter().all(|d| d.is_finite() && *d > 0.0),
        "{:?}",
        ca.nn
    );
}
