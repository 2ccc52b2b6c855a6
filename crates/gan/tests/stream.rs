//! A GAN trained on a stream from the decode cache is the GAN trained on the same images in
//! memory: the same batches in the same order, so the same weights after an epoch.

use ganaug_data::fixture::{write_class_folders, FixtureFormat, FolderFixture};
use ganaug_data::{ColorMode, FolderConfig, ImageFolder, ImageSpec, LoadOptions};
use ganaug_gan::{Arch, GanConfig, GanTrainer, TrainConfig};
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
}
