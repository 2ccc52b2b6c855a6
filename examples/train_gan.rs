//! Trains the GAN(s) of the paper on a training split (COVID-CT, or any class-folder dataset,
//! gray or RGB) — one per class as the paper did, or one conditional GAN over every class —
//! and optionally synthesizes a selected synthetic set.
//!
//! ```text
//! # the cpu preset's GANs: one DCGAN-32 per class at 64² with DiffAugment, 200 epochs (~4 + ~6 min)
//! cargo run --release --example train_gan -- --data ../shared/data/covid-ct --preset cpu --synthesize 125
//! # the paper's setting (GPU work): paper GAN at 256², 3300 epochs, checkpoints every 300
//! cargo run --release --example train_gan -- --data ../shared/data/covid-ct --preset paper
//! # continue an interrupted run from its latest checkpoints
//! cargo run --release --example train_gan -- --data ../shared/data/covid-ct --preset cpu --resume
//! ```
//!
//! Writes, per class, `OUT/<class>/{checkpoints/,samples/,history.json,losses.png}`; with
//! `--synthesize K`, `OUT/synthetic/<class>/*.png` and `OUT/synthesis.json`.

#[path = "common/mod.rs"]
mod common;

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use ganaug::data::{io, Split, TensorDataset};
use ganaug::experiment::GanPlan;
use ganaug::gan::{
    synthesize_class, synthetic_dataset, ClassModel, ClassSynthReport, ConsoleProgress, GanConfig,
    GanTrainer, SynthConfig, TrainConfig,
};
use tch::Tensor;

#[derive(Parser, Debug)]
#[command(about = "Train the paper's GAN(s) on COVID-CT (or any class-folder dataset) and synthesize a selected synthetic set", long_about = None)]
struct Args {
    /// `--out` default: runs/gan.
    #[command(flatten)]
    common: common::CommonArgs,
    /// The `[gan]` table of a reproduction preset or configuration file: `cpu` (one DCGAN-32
    /// per class at 64², DiffAugment translation + cutout, 200 epochs), `paper` (the paper's
    /// GAN at 256², 3300 epochs, checkpoints every 300: GPU work), `tiny` (a smoke test).
    #[command(flatten)]
    preset: common::PresetArgs,
    /// Override the preset's epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// `per-class` (one GAN per class, as the paper; the default) or `conditional` (one GAN
    /// over all classes, label embedded in both networks).
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// In per-class mode, train only this class (by name, e.g. `COVID`).
    #[arg(long)]
    class: Option<String>,
    /// One-sided label smoothing: real target 0.9 (the paper's advice).
    #[arg(long)]
    smooth: bool,
    /// Continue from the latest checkpoint in the output folder.
    #[arg(long)]
    resume: bool,
    /// Keep this many synthetic images per class (4x as many candidates are generated).
    #[arg(long, default_value_t = 0)]
    synthesize: usize,
    /// Seed of everything random.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Autocast-style bf16 convolutions / dense layers (f32 weights, optimiser and loss). Fast
    /// on GPUs and CPUs with bf16 instructions; slow on others.
    #[arg(long)]
    bf16: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    PerClass,
    Conditional,
}

impl Args {
    fn conditional(&self) -> bool {
        self.mode == Some(Mode::Conditional)
    }

    /// The preset's (or file's) GAN plan: one definition, shared with `reproduce`.
    fn plan(&self) -> Result<GanPlan> {
        Ok(self.preset.load()?.into_inner().gan)
    }
}

fn configs(args: &Args, plan: &GanPlan, n_classes: i64, channels: i64) -> (GanConfig, TrainConfig) {
    let mut train = plan.train.clone();
    train.seed = args.seed;
    if let Some(e) = args.epochs {
        train.epochs = e;
    } else if args.conditional() {
        train.epochs = plan.cgan_epochs;
    }
    if args.smooth {
        train.real_label = 0.9;
    }
    let gan = GanConfig {
        n_classes: args.conditional().then_some(n_classes),
        channels,
        bf16: args.bf16 || plan.gan.bf16,
        ..plan.gan.clone()
    };
    (gan, train)
}

fn train_one(
    args: &Args,
    gan: GanConfig,
    cfg: TrainConfig,
    data: &TensorDataset,
    dir: &Path,
    device: tch::Device,
) -> Result<GanTrainer> {
    let mut trainer = match (args.resume, GanTrainer::latest_checkpoint(dir)) {
        (true, Some(ckpt)) => {
            println!("resuming from {}", ckpt.display());
            GanTrainer::resume(&ckpt, device, Some(cfg.epochs))?
        }
        (true, None) => bail!(
            "--resume: no checkpoint under {}",
            dir.join("checkpoints").display()
        ),
        (false, _) => GanTrainer::new(gan, cfg, device)?,
    };
    let start = std::time::Instant::now();
    trainer
        .fit(data, Some(dir), &ConsoleProgress::new())
        .with_context(|| format!("training into {}", dir.display()))?;
    let epochs = trainer.history().len();
    let secs = start.elapsed().as_secs_f64();
    if let Some(last) = trainer.history().last() {
        println!(
            "{}: {epochs} epochs, {secs:.0} s this run ({:.2} s/epoch); last D {:.3} G {:.3}",
            dir.display(),
            last.seconds,
            last.d_loss,
            last.g_loss
        );
    }
    Ok(trainer)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let device = args.common.device()?;
    let plan = args.plan()?;
    ganaug::init_process_for(device, plan.gan.size);
    println!("device: {device:?}");
    let data = args
        .common
        .source()?
        .load_split(Split::Train, plan.gan.size, device)?;
    println!(
        "training data: {} ({} images, per class {:?})",
        data.description,
        data.len(),
        data.class_counts()
    );
    let n_classes = data.class_names.len() as i64;
    let (gan, cfg) = configs(&args, &plan, n_classes, data.channels());
    println!("GAN: {gan:?}\ntraining: {cfg:?}");
    let out = args.common.out_or("runs/gan");
    let (parts, reports) = if args.conditional() {
        conditional(&args, gan, cfg, &data, &out, device)?
    } else {
        per_class(&args, gan, cfg, &data, &out, device)?
    };
    if args.synthesize > 0 {
        write_synthetic(&args, &parts, &reports, &data, &out)?;
    }
    Ok(())
}

/// What `--synthesize` keeps per class.
fn synth_config(args: &Args) -> SynthConfig {
    SynthConfig {
        candidates_per_class: 4 * args.synthesize,
        keep_per_class: args.synthesize,
        seed: args.seed,
        ..SynthConfig::default()
    }
}

/// Each class's kept images (label, images) and their synthesis reports.
type Synthesized = (Vec<(i64, Tensor)>, Vec<ClassSynthReport>);

/// One conditional GAN on all classes, then each class's images from it.
fn conditional(
    args: &Args,
    gan: GanConfig,
    cfg: TrainConfig,
    data: &TensorDataset,
    out: &Path,
    device: tch::Device,
) -> Result<Synthesized> {
    let trainer = train_one(args, gan, cfg, data, &out.join("conditional"), device)?;
    let (mut parts, mut reports) = (Vec::new(), Vec::new());
    if args.synthesize == 0 {
        return Ok((parts, reports));
    }
    for label in 0..data.class_names.len() as i64 {
        let model = ClassModel {
            generator: trainer.generator(),
            discriminator: trainer.discriminator(),
            condition: Some(label),
        };
        let class = &data.class_names[label as usize];
        let real = data.class_subset(label)?.images;
        let (imgs, rep) = synthesize_class(model, &real, class, &synth_config(args))?;
        parts.push((label, imgs));
        reports.push(rep);
    }
    Ok((parts, reports))
}

/// One GAN per class (or only `--class`), each class's images from its own GAN.
fn per_class(
    args: &Args,
    gan: GanConfig,
    cfg: TrainConfig,
    data: &TensorDataset,
    out: &Path,
    device: tch::Device,
) -> Result<Synthesized> {
    if let Some(only) = &args.class {
        if !data.class_names.contains(only) {
            bail!("--class {only}: not one of {:?}", data.class_names);
        }
    }
    let (mut parts, mut reports) = (Vec::new(), Vec::new());
    for label in 0..data.class_names.len() as i64 {
        let class = data.class_names[label as usize].clone();
        if args.class.as_ref().is_some_and(|only| *only != class) {
            continue;
        }
        let subset = data.class_subset(label)?;
        let (gan, cfg) = (gan.clone(), cfg.clone());
        let trainer = train_one(args, gan, cfg, &subset, &out.join(&class), device)?;
        if args.synthesize > 0 {
            let model = ClassModel {
                generator: trainer.generator(),
                discriminator: trainer.discriminator(),
                condition: None,
            };
            let (imgs, rep) = synthesize_class(model, &subset.images, &class, &synth_config(args))?;
            parts.push((label, imgs));
            reports.push(rep);
        }
    }
    Ok((parts, reports))
}

/// The kept images as a class folder under `out/synthetic`, and `synthesis.json`.
fn write_synthetic(
    args: &Args,
    parts: &[(i64, Tensor)],
    reports: &[ClassSynthReport],
    data: &TensorDataset,
    out: &Path,
) -> Result<()> {
    let what = format!("{} preset, seed {}", args.preset.preset, args.seed);
    let synthetic = synthetic_dataset(parts, &data.class_names, &what)?;
    let written = io::export_image_folder(&synthetic, out.join("synthetic"), false)?;
    let json = serde_json::to_vec_pretty(&reports)?;
    io::write_atomic(&out.join("synthesis.json"), &json)?;
    for r in reports {
        println!(
            "{}: kept {} of {} (near-copies dropped: {}), D score kept {:.3} vs all {:.3}, NN RMS distance mean {:.4} min {:.4}",
            r.class, r.kept, r.generated, r.near_copies, r.d_score_kept, r.d_score_all, r.nn_mean, r.nn_min
        );
    }
    println!(
        "wrote {} synthetic PNGs under {}",
        written.len(),
        out.join("synthetic").display()
    );
    Ok(())
}
