//! `ganaug`: one program for every job — reproduce the paper's experiment, train GANs and
//! classifiers, assess any generator's synthetic images, predict, summarise a dataset, watch a
//! run. `ganaug <command> --help` describes each.
//!
//! ```text
//! cargo install --path crates/cli            # (with --features medical for DICOM and NIfTI)
//! ganaug reproduce --data /path/to/covid-ct  # the cpu preset
//! ganaug watch results/reproduce-cpu         # in a second terminal
//! ```

mod cmd;
mod common;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "ganaug",
    version,
    about = "GAN-based data augmentation for image classification (COVID-CT and your own images), on libtorch",
    long_about = None,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The paper's experiment (or a scarcity study): GANs, synthetic sets, every classifier on
    /// every training-set scenario, tested with intervals; results.json, report.md, plots.
    Reproduce(cmd::reproduce::Args),
    /// The experiment's GAN stage alone: train (or continue) the GAN(s) of a preset, select,
    /// measure and gate each class's synthetic images, write them as class folders.
    TrainGan(cmd::train_gan::Args),
    /// Synthetic sets from the GANs a `train-gan` or `reproduce` run left in its folder
    /// (trains nothing).
    Synthesize(cmd::synthesize::Args),
    /// Judge a folder of synthetic images from any generator against the real data: the
    /// quality gate's measures against the real-vs-real floor, its verdict, the CAS, the
    /// nearest and farthest images.
    Assess(cmd::assess::Args),
    /// Train one classifier (raw, classic or with synthetic images) and test it.
    TrainClassifier(cmd::train_classifier::Args),
    /// Fit the best classifier (a linear probe on frozen EfficientNet-Lite features) and save
    /// it as one file for `predict`.
    TrainProbe(cmd::train_probe::Args),
    /// Classify a folder of images with a model saved by `train-probe` (CSV or JSON).
    Predict(cmd::predict::Args),
    /// What the loader sees in a dataset folder: layout, classes, splits, formats, refusals.
    Summary(cmd::summary::Args),
    /// Write classically augmented copies of a training split (offline augmentation).
    Augment(cmd::augment::Args),
    /// Write a generated class-folder dataset (synthetic, not real images) to try ganaug on.
    MakeDataset(cmd::make_dataset::Args),
    /// What libtorch sees: version, CUDA, devices, threads.
    Device(cmd::device::Args),
    /// Follow a running job from its output folder (progress.json and the runs' metrics.jsonl).
    Watch(cmd::watch::Args),
    /// Ablation of the frozen-feature linear probe: which piece of its recipe buys what, over
    /// seeds on the official test split.
    ProbeAblation(cmd::probe_ablation::Args),
    /// How synthetic images are best used: selection rules, synthetic-per-real ratios and loss
    /// weights swept against raw data over seeds, with paired tests.
    SyntheticSweep(cmd::synthetic_sweep::Args),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Reproduce(a) => cmd::reproduce::run(a),
        Command::TrainGan(a) => cmd::train_gan::run(a),
        Command::Synthesize(a) => cmd::synthesize::run(a),
        Command::Assess(a) => cmd::assess::run(a),
        Command::TrainClassifier(a) => cmd::train_classifier::run(a),
        Command::TrainProbe(a) => cmd::train_probe::run(a),
        Command::Predict(a) => cmd::predict::run(a),
        Command::Summary(a) => cmd::summary::run(a),
        Command::Augment(a) => cmd::augment::run(a),
        Command::MakeDataset(a) => cmd::make_dataset::run(a),
        Command::Device(a) => {
            cmd::device::run(a);
            Ok(())
        }
        Command::Watch(a) => cmd::watch::run(a),
        Command::ProbeAblation(a) => cmd::probe_ablation::run(a),
        Command::SyntheticSweep(a) => cmd::synthetic_sweep::run(a),
    }
}
