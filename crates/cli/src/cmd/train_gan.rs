//! `ganaug train-gan`: the experiment's GAN stage alone — one GAN per class as the paper did
//! (or one conditional GAN over every class), trained or resumed in the experiment's folders,
//! each class's candidates selected, measured and gated as `reproduce` does, the kept sets
//! written as class folders of 16-bit PNGs.
//!
//! ```text
//! # the cpu preset's GANs: one DCGAN-32 per class at 64² with DiffAugment, 200 epochs (~10 min)
//! ganaug train-gan --data ../shared/data/covid-ct --keep 125
//! # the paper's setting (GPU work): paper GAN at 256², 3300 epochs, checkpoints every 300
//! ganaug train-gan --data ../shared/data/covid-ct --preset paper
//! ```
//!
//! Writes `OUT/gan/…` (checkpoints, samples, metrics.jsonl, history), `OUT/synthetic/<set>-<GAN key>/
//! <class>/*.png`, sample grids and `OUT/synthesis.json`. Running it again continues unfinished
//! GANs and reuses finished ones; a `reproduce` run with `--out OUT` reuses them too.

use anyhow::Result;
use clap::ValueEnum;
use ganaug::experiment::{self, shard::Work, GateMode, RunOptions, Scenario};
use ganaug::train::ConsoleProgress;

use crate::common;

/// What `train-gan` and `synthesize` share: the data, the preset whose GAN stage runs, which
/// GANs and how many images each class keeps.
#[derive(clap::Args, Debug)]
pub(crate) struct StageArgs {
    /// `--out` default: runs/gan (the folder holding the GANs and their sets).
    #[command(flatten)]
    common: common::CommonArgs,
    /// The `[gan]` table of a preset or configuration file: `cpu` (DCGAN-32 per class at 64²,
    /// DiffAugment, 200 epochs), `paper` (the paper's GAN at 256², 3300 epochs: GPU work),
    /// `tiny` (a smoke test).
    #[command(flatten)]
    preset: common::PresetArgs,
    /// Which GANs: `per-class` (one per class, the paper's), `conditional` (one over all
    /// classes) or `both`.
    #[arg(long, value_enum, default_value = "per-class")]
    mode: Mode,
    /// Images kept per class (the preset's candidates per kept image are kept in proportion).
    #[arg(long, value_name = "K")]
    keep: Option<usize>,
    #[command(flatten)]
    stream: common::StreamArgs,
}

/// `ganaug train-gan`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    stage: StageArgs,
    /// Override the preset's epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// One-sided label smoothing: real target 0.9 (the paper's advice).
    #[arg(long)]
    smooth: bool,
    /// Seed of the GANs' training (replica 0's; the preset's by default).
    #[arg(long)]
    seed: Option<u64>,
    /// Autocast-style bf16 convolutions / dense layers (fast on GPUs and bf16 CPUs only).
    #[arg(long)]
    bf16: bool,
    /// Keep sets that miss the gate's floors (the report still says which failed).
    #[arg(long)]
    allow_poor_synthetic: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    PerClass,
    Conditional,
    Both,
}

impl StageArgs {
    /// The preset with the command line's changes: only the scenarios whose GANs are asked for.
    pub(crate) fn config(&self) -> Result<experiment::ReproConfig> {
        let mut cfg = self.preset.load()?.into_inner();
        cfg.scenarios = match self.mode {
            Mode::PerClass => vec![Scenario::Gan],
            Mode::Conditional => vec![Scenario::Cgan],
            Mode::Both => vec![Scenario::Gan, Scenario::Cgan],
        };
        cfg.scarcity = None;
        if let Some(k) = self.keep {
            let synth = &mut cfg.gan.synth;
            let per_kept = synth.candidates_per_class / synth.keep_per_class.max(1);
            synth.keep_per_class = k;
            synth.candidates_per_class = k * per_kept.max(1);
        }
        Ok(cfg)
    }
}

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    let mut cfg = args.stage.config()?;
    if let Some(e) = args.epochs {
        cfg.gan.train.epochs = e;
        cfg.gan.cgan_epochs = e;
    }
    if args.smooth {
        cfg.gan.train.real_label = 0.9;
    }
    if let Some(s) = args.seed {
        cfg.gan.train.seed = s;
    }
    cfg.gan.gan.bf16 |= args.bf16;
    if args.allow_poor_synthetic {
        cfg.gan.gate.mode = GateMode::Warn;
    }
    run_stage(&args.stage, &cfg.check()?, Work::All)
}

/// The GAN stage of `cfg` into `--out`, and what it kept.
pub(crate) fn run_stage(
    stage: &StageArgs,
    cfg: &experiment::CheckedConfig,
    work: Work,
) -> Result<()> {
    let common = &stage.common;
    let device = common.device()?;
    ganaug::init_process_for(device, cfg.gan.gan.size);
    println!("device: {device:?}");
    let out = common.out_or("runs/gan");
    let console = ConsoleProgress::new();
    let opts = RunOptions {
        observer: &console,
        work,
        streaming: stage.stream.stream,
        ..Default::default()
    };
    let (_, summary) = experiment::run_gan_stage(cfg, &common.source()?, &out, device, &opts)?;
    for s in &summary.synthetic {
        println!(
            "{} {}: kept {} of {} (near-copies dropped: {}), FID {}",
            s.gan,
            s.class,
            s.selection.kept,
            s.selection.generated,
            s.selection.near_copies,
            s.fid.map_or("—".into(), |f| format!("{f:.1}"))
        );
    }
    for (set, reasons) in &summary.refused {
        println!("synthetic set {set} REFUSED by the quality gate:");
        reasons.iter().for_each(|r| println!("  {r}"));
    }
    for m in &summary.missing {
        println!("not finished: {m}");
    }
    for s in &summary.sets {
        println!("synthetic set: {}", out.join(s).display());
    }
    println!("summary: {}", out.join("synthesis.json").display());
    Ok(())
}
