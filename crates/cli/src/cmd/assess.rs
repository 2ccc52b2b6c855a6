//! `ganaug assess`: judges a folder of synthetic images from any generator (class folders
//! named as the real data's classes) against the real training images, with the quality gate's
//! measures and floors; writes `assessment.md`, `assessment.json` and grids of the synthetic
//! images nearest to and farthest from the real ones.
//!
//! ```text
//! ganaug assess --data /path/to/covid-ct --synthetic my-stylegan-images
//! ganaug assess --data /path/to/covid-ct --synthetic results/reproduce-cpu/synthetic/per-class-*
//! ```

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use ganaug::experiment::assess::{self, AssessConfig, Floor, Verdict};
use ganaug::experiment::effect::{effect_of_set, worth_of_set};
use ganaug::experiment::report::read_results;
use ganaug::experiment::{ReproConfig, Scenario};
use ganaug::models::ModelKind;

use crate::common;

/// `ganaug assess`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The real dataset (`--data`) and how it is read; `--out` default: `results/assess-<synthetic folder's name>`.
    #[command(flatten)]
    common: common::CommonArgs,
    /// Where the gate's settings come from (its floors, feature network, and the side images
    /// are measured at: the preset's GAN size).
    #[command(flatten)]
    preset: common::PresetArgs,
    /// With --effect: whether the effect cells stream the real images.
    #[command(flatten)]
    stream: common::StreamArgs,
    /// The synthetic images: one sub-folder per class, named as the real data's classes (PNG,
    /// JPEG, TIFF, …, 8 or 16 bits; resized to the measuring side).
    #[arg(long, value_name = "DIR")]
    synthetic: PathBuf,
    /// Measure at this side instead of the preset's GAN size.
    #[arg(long, value_name = "PIXELS")]
    size: Option<i64>,
    /// Images in each nearest / farthest grid, per class.
    #[arg(long, default_value_t = 16)]
    grid: usize,
    /// Skip the classification accuracy score (a probe on the synthetic images, tested on the
    /// real test split).
    #[arg(long)]
    no_cas: bool,
    /// What the floors are fractions of: `halves` (real-vs-real: random halves of each class's
    /// training images, as the experiment's gate) or `held-out` (each class's validation
    /// images against its training images: as close as real images of unseen patients get;
    /// halves share patients, so held-out real images can miss the `halves` floors).
    #[arg(long, value_enum, default_value = "halves")]
    floor: FloorArg,
    /// Also train and test this classifier (a model of the preset, e.g. `cnn` or
    /// `effnet-lite0`) on the real training split alone and with the synthetic images added,
    /// `--seeds` seeds each, and report the paired difference (the experiment's cells and
    /// test; they go to OUT/effect).
    #[arg(long, value_name = "MODEL")]
    effect: Option<String>,
    /// Seeds of the `--effect` cells (the preset's by default).
    #[arg(long, requires = "effect")]
    seeds: Option<usize>,
    /// Also read the set's worth in real images off a scarcity study's learning curve: the
    /// study's `results.json` (or its folder), from `ganaug reproduce --preset scarcity` on the
    /// same data with the same classifier; the `--effect` seeds pair with its resamples.
    #[arg(long, value_name = "STUDY", requires = "effect")]
    worth: Option<PathBuf>,
    /// Exit with status 2 when the set does not pass (for scripts).
    #[arg(long)]
    strict: bool,
}

/// The preset with only `model` (its plan, or the paper preset's) and `seeds`; the set must be
/// at the preset's GAN side, as the experiment's sets are.
fn effect_config(
    preset: &common::PresetArgs,
    model: &str,
    seeds: Option<usize>,
    size: i64,
) -> Result<ganaug::experiment::CheckedConfig> {
    let mut cfg = preset.load()?.into_inner();
    if cfg.gan.gan.size != size {
        bail!(
            "--effect measures the set at the preset's GAN side ({}²): leave out --size {size}",
            cfg.gan.gan.size
        );
    }
    let kind = ModelKind::parse(model)?;
    let paper = ReproConfig::preset("paper")?.into_inner().models;
    let Some(plan) = cfg
        .models
        .iter()
        .chain(&paper)
        .find(|p| p.kind == kind)
        .cloned()
    else {
        bail!("--effect {model}: no plan for that model in the preset");
    };
    cfg.models = vec![plan];
    // what the effect runs: the classifier on raw data and with the set (a study's or other
    // scenarios' settings would be checked against a model they may not fit)
    cfg.scenarios = vec![Scenario::Raw, Scenario::Gan];
    cfg.scarcity = None;
    if let Some(k) = seeds {
        cfg.seeds = k;
    }
    Ok(cfg.check()?)
}

/// `--effect`: the classifier's cells on raw data and with the set, into OUT/effect.
fn effect(
    args: &Args,
    model: &str,
    set: &ganaug::data::TensorDataset,
    out: &std::path::Path,
    device: tch::Device,
    size: i64,
) -> Result<ganaug::experiment::effect::Effect> {
    let cfg = effect_config(&args.preset, model, args.seeds, size)?;
    let console = ganaug::train::ConsoleProgress::new();
    let source = args.common.source()?;
    Ok(effect_of_set(
        &cfg,
        &source,
        set,
        &out.join("effect"),
        device,
        &console,
        args.stream.stream,
    )?)
}

/// A study's results (read before any work, so a wrong path fails at once) and its file.
fn study_results(path: &std::path::Path) -> Result<(PathBuf, ganaug::experiment::ReproResults)> {
    let file = if path.is_dir() {
        path.join("results.json")
    } else {
        path.to_path_buf()
    };
    let results = read_results(&file).with_context(|| format!("--worth {}", path.display()))?;
    if results.scarcity.is_none() {
        bail!(
            "--worth {}: that run has no scarcity study (`ganaug reproduce --preset scarcity` makes one)",
            file.display()
        );
    }
    Ok((file, results))
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum FloorArg {
    Halves,
    HeldOut,
}

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    if !args.synthetic.is_dir() {
        bail!("--synthetic {}: not a folder", args.synthetic.display());
    }
    let study = args.worth.as_ref().map(|p| study_results(p)).transpose()?;
    let mut cfg = AssessConfig::of(&args.preset.load()?);
    if let Some(s) = args.size {
        if s < 8 {
            bail!("--size {s}: too small to measure (at least 8)");
        }
        cfg.size = s;
    }
    cfg.grid = args.grid;
    cfg.cas = !args.no_cas;
    cfg.floor = match args.floor {
        FloorArg::Halves => Floor::Halves,
        FloorArg::HeldOut => Floor::HeldOut,
    };
    let device = args.common.device()?;
    ganaug::init_process_for(device, cfg.size);
    let splits = assess::real_splits(&args.common.source()?, &cfg, device)?;
    let synthetic = assess::synthetic_images(&args.synthetic, &splits.train, cfg.resize, device)
        .with_context(|| format!("reading --synthetic {}", args.synthetic.display()))?;
    println!(
        "real: {} (train {}); synthetic: {} images at {}²",
        splits.train.description,
        splits.train.len(),
        synthetic.len(),
        cfg.size
    );
    let (mut a, grids) = assess::assess(&splits, &synthetic, &cfg, device)?;
    a.synthetic = args.synthetic.clone();
    let name = args
        .synthetic
        .file_name()
        .map_or("synthetic".into(), |n| n.to_string_lossy());
    let out = args.common.out_or(&format!("results/assess-{name}"));
    if let Some(model) = &args.effect {
        let mut e = effect(&args, model, &synthetic, &out, device, cfg.size)?;
        if let Some((path, study)) = &study {
            e.worth = Some(worth_of_set(&e, study, &path.display().to_string())?);
        }
        a.effect = Some(e);
    }
    assess::write_assessment(&a, &grids, &out)?;
    print!("{}", assess::markdown(&a, &[]));
    println!("\nwrote {}", out.join("assessment.md").display());
    if args.strict && a.verdict != Verdict::Passes {
        std::process::exit(2);
    }
    Ok(())
}
