//! A user's project: generates a 3-class RGB class-folder dataset, reads it with ganaug-data
//! (layout discovered, colour decided from the pixels), trains a small RGB GAN on one class
//! with ganaug-gan and a 3-class classifier with ganaug-models, and checks what came out.

use anyhow::{ensure, Context, Result};
use ganaug_data::fixture::{write_class_folders, FixtureFormat, FolderFixture};
use ganaug_data::{ColorMode, DataSource, FolderSource};
use ganaug_gan::{Arch, GanConfig, GanTrainer, Silent, TrainConfig as GanTrain};
use ganaug_models::{fit, predict, Classifier, FitOptions, ModelConfig, ModelKind, TrainConfig};
use tch::{Device, Kind, Tensor};

fn main() -> Result<()> {
    let root = std::env::temp_dir().join(format!("ganaug-consumer-{}", std::process::id()));
    let result = run(&root);
    let _ = std::fs::remove_dir_all(&root);
    result
}

fn run(root: &std::path::Path) -> Result<()> {
    let data_dir = root.join("data");
    write_class_folders(
        &data_dir,
        &FolderFixture::new(3, 20, 32, FixtureFormat::RgbPng),
    )?;
    let folder = FolderSource::discover(&data_dir)?;
    ensure!(
        folder.color == ColorMode::Auto,
        "class folders read in auto colour"
    );
    let splits = DataSource::Folder(Box::new(folder)).load(32, Device::Cpu)?;
    let decision = splits
        .report
        .color
        .as_ref()
        .context("auto colour decided")?;
    println!("data: {} train images, {decision}", splits.train.len());
    ensure!(splits.train.channels() == 3 && splits.train.class_names.len() == 3);

    // An RGB DCGAN on class 0.
    let class0 = splits.train.class_subset(0)?;
    let gan = GanConfig {
        arch: Arch::Dcgan { ngf: 8, ndf: 8 },
        size: 32,
        channels: 3,
        latent_dim: 16,
        ..GanConfig::default()
    };
    let gan_train = GanTrain {
        epochs: 3,
        batch_size: 7,
        checkpoint_every: 0,
        sample_every: 0,
        grid_samples: 8,
        ..GanTrain::default()
    };
    let mut trainer = GanTrainer::new(gan, gan_train, Device::Cpu)?;
    trainer.fit(&class0, None, &Silent)?;
    let z = Tensor::randn([4, 16], (Kind::Float, Device::Cpu));
    let fake = trainer.generator().forward_t(&z, None, false)?;
    ensure!(fake.size() == [4, 3, 32, 32], "generated {:?}", fake.size());
    let (lo, hi) = (fake.min().double_value(&[]), fake.max().double_value(&[]));
    ensure!(
        (0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi),
        "range {lo}..{hi}"
    );
    println!("GAN: 3 epochs, generated [4, 3, 32, 32] in [{lo:.3}, {hi:.3}]");

    // A 3-class paper CNN on RGB input.
    let mcfg = ModelConfig::new(ModelKind::PaperCnn, 32).for_data(3, 3);
    let mut model = Classifier::new(mcfg, Device::Cpu)?;
    let cfg = TrainConfig {
        max_epochs: 4,
        batch_size: 8,
        stop_at_train_accuracy: None,
        ..TrainConfig::default()
    };
    let report = fit(
        &mut model,
        &splits.train,
        &splits.val,
        &cfg,
        &FitOptions::default(),
    )?;
    let p = predict(&model, &splits.test)?;
    ensure!(p.probs.ncols() == 3 && p.probs.nrows() == splits.test.len());
    println!(
        "classifier: {} epochs, {} test images × {} classes; weights folder would be {}",
        report.history.len(),
        p.probs.nrows(),
        p.probs.ncols(),
        ganaug_models::weights_dir().display()
    );
    Ok(())
}
