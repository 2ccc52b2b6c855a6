//! Trains and evaluates one classifier on COVID-CT (or any class-folder dataset), the paper's way (SGD, stop at 95% training
//! accuracy, keep the best-validation-loss weights), optionally with synthetic images and
//! classic augmentation; prints the test report and writes history, curves and weights.
//!
//! ```text
//! ganaug train-classifier --data ../shared/data/covid-ct --model cnn --size 64
//! # EfficientNet-Lite0 with its ImageNet weights, frozen backbone (cached features)
//! ganaug train-classifier --data ../shared/data/covid-ct --model effnet-lite0 --size 224 --frozen
//! # add a synthetic set written by `train_gan --synthesize K` (OUT/synthetic/<class>/*.png)
//! ganaug train-classifier --data ../shared/data/covid-ct --synthetic runs/gan/synthetic
//! # a folder larger than memory: its images read batch by batch from the decode cache
//! ganaug train-classifier --data my-images --model cnn --size 64 --classic 2 --stream on
//! ```

use crate::common;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use ganaug::data::{ImageSource, ImageSpec, Split, TensorDataset};
use ganaug::experiment::{assess, with_assembled};
use ganaug::metrics::{ClassificationReport, ReportConfig};
use ganaug::models::{
    fit_source, predict_source, pretrained_weights, BackboneMode, Classifier, ConsoleProgress,
    FitOptions, ModelConfig, ModelKind, SelectOn, TrainConfig,
};

#[derive(clap::Args, Debug)]
#[command(
    about = "Train and evaluate one classifier (paper CNN, VGG-16, ResNet-50, EfficientNet-Lite0/1/2)"
)]
pub struct Args {
    #[command(flatten)]
    common: common::CommonArgs,
    #[command(flatten)]
    stream: common::StreamArgs,
    /// cnn, vgg16, resnet50, effnet-lite0, effnet-lite1 or effnet-lite2.
    #[arg(long, default_value = "cnn")]
    model: String,
    /// Input side in pixels (the paper: 224).
    #[arg(long, default_value_t = 224)]
    size: u32,
    /// Maximum epochs.
    #[arg(long, default_value_t = 150)]
    epochs: usize,
    /// SGD learning rate (default: the paper's, 1e-3 for the CNN, 5e-3 otherwise).
    #[arg(long)]
    lr: Option<f64>,
    /// SGD momentum (the paper: none).
    #[arg(long, default_value_t = 0.0)]
    momentum: f64,
    /// Start from ImageNet weights (<model>.safetensors in the weights folder, see
    /// `ganaug_models::weights_dir`) and train only the head.
    #[arg(long)]
    frozen: bool,
    /// Add K classic-augmentation copies of every training image (flips, rotation ≤ 45°).
    #[arg(long, default_value_t = 0)]
    classic: usize,
    /// Add the images of a class-folder synthetic set (e.g. `train_gan --synthesize` output).
    #[arg(long)]
    synthetic: Option<PathBuf>,
    /// Keep no epoch's weights before this many epochs (the paper: 0).
    #[arg(long, default_value_t = 0)]
    min_epochs: usize,
    /// Keep the weights of the epoch with the best `val-loss` (the paper) or `val-auc`.
    #[arg(long, value_enum, default_value = "val-loss")]
    select_on: Select,
    /// Continue the run in --out from its checkpoint.
    #[arg(long)]
    resume: bool,
    /// Seed of shuffling, dropout and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Select {
    ValLoss,
    ValAuc,
}

/// `--synthetic`'s images, read as the real ones were (at their side, colour and resize
/// policy).
fn synthetic_set(
    args: &Args,
    real: &dyn ImageSource,
    device: tch::Device,
) -> Result<Option<TensorDataset>> {
    let Some(dir) = &args.synthetic else {
        return Ok(None);
    };
    let policy = ImageSpec::default().policy;
    let s = assess::synthetic_images(dir, real, policy, device)
        .with_context(|| format!("reading the synthetic set {}", dir.display()))?;
    println!("synthetic images: {} from {}", s.len(), dir.display());
    Ok(Some(s))
}

/// The classifier for the data (ImageNet backbone, frozen, with `--frozen`) and how to train it.
fn model_and_config(
    args: &Args,
    kind: ModelKind,
    train: &dyn ImageSource,
    device: tch::Device,
) -> Result<(Classifier, TrainConfig)> {
    tch::manual_seed(args.seed as i64);
    let mcfg = ModelConfig::new(kind, i64::from(args.size))
        .for_data(train.class_names().len() as i64, train.channels());
    let mut model = Classifier::new(mcfg, device)?;
    let mut cfg = TrainConfig {
        max_epochs: args.epochs,
        lr: args.lr.unwrap_or(kind.paper_lr()),
        momentum: args.momentum,
        seed: args.seed,
        min_epochs: args.min_epochs,
        select_on: match args.select_on {
            Select::ValLoss => SelectOn::ValLoss,
            Select::ValAuc => SelectOn::ValAuc,
        },
        ..TrainConfig::default()
    };
    if args.frozen {
        let Some(path) = pretrained_weights(kind) else {
            bail!(
                "--frozen needs ImageNet weights for {kind} in {}",
                ganaug::models::weights_dir().display()
            );
        };
        let r = model.load_backbone_weights(&path)?;
        println!(
            "ImageNet weights: {} tensors from {}",
            r.loaded.len(),
            path.display()
        );
        cfg.backbone = BackboneMode::Frozen;
    }
    Ok((model, cfg))
}

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    ganaug::init_process();
    let kind = ModelKind::parse(&args.model)?;
    let device = args.common.device()?;
    println!("device: {device:?}");
    let source = args.common.source()?;
    // Results folder: history.json, curves.png, checkpoint, model.safetensors.
    let out = args.common.out_or("results/train_classifier");
    let (splits, decision) =
        source.open_spec(ImageSpec::with_size(args.size), device, args.stream.stream)?;
    println!("{decision}");
    let (real, val, test) = (
        splits.get(Split::Train),
        splits.get(Split::Val),
        splits.get(Split::Test),
    );
    let synthetic = synthetic_set(&args, real, device)?;
    let (mut model, cfg) = model_and_config(&args, kind, real, device)?;
    let console = ConsoleProgress::new();
    let opts = FitOptions {
        out_dir: Some(&out),
        resume: args.resume,
        observer: Some(&console),
        ..Default::default()
    };
    // the real images, the synthetic ones, the classic copies of both (made when read): the
    // training set the experiment assembles for a cell
    let parts = (real, synthetic.as_ref().map(|s| s as &dyn ImageSource));
    let fail = |e| anyhow::Error::from(e).context("assembling the training set");
    let report = with_assembled(parts, (args.classic, args.seed), fail, |train| {
        println!(
            "training images: {} {:?}",
            train.len(),
            ganaug::data::stream::class_counts(train)?
        );
        Ok(fit_source(&mut model, train, val, &cfg, &opts)?)
    })?;
    println!(
        "{} epochs ({:?}); best validation loss {:.4} at epoch {}",
        report.history.len(),
        report.stop,
        report.best_val_loss,
        report.best_epoch
    );
    model.save(out.join("model.safetensors"))?;
    let pred = predict_source(&model, test)?;
    let rcfg = ReportConfig::with_class_names(test.class_names().to_vec());
    println!(
        "{}",
        ClassificationReport::new(&pred.labels, &pred.probs, &rcfg)?
    );
    println!("history, curves and weights in {}", out.display());
    Ok(())
}
