//! How synthetic images are best used: one synthetic scenario swept over selection rules
//! (discriminator score, a real-trained classifier's confidence, nearest real features,
//! greedy coverage), synthetic-per-real ratios and synthetic loss weights, each point against raw
//! data over seeds — each seed with its own GAN replica — by a paired bootstrap over seeds and
//! test images. Writes `sweep.json`, `sweep.md` and `sweep_<model>.png`.
//!
//! ```text
//! ganaug synthetic-sweep --data ../shared/data/covid-ct \
//!     --replicas 3 --ratios 0,0.25,0.5,1,2 --weights 1,0.3 --out results/sweep
//! ```

use crate::common;

use anyhow::{Context, Result};
use ganaug::experiment::sweep::{sweep, SweepPlan};
use ganaug::experiment::{Scenario, SelectBy};
use ganaug::models::ModelKind;
use ganaug::train::{ConsoleProgress, Observer, Silent};

#[derive(clap::Args, Debug)]
#[command(
    about = "Sweep how synthetic images are chosen and mixed in, each point paired against raw over seeds"
)]
pub struct Args {
    #[command(flatten)]
    common: common::CommonArgs,
    #[command(flatten)]
    preset: common::PresetArgs,
    #[command(flatten)]
    stream: common::StreamArgs,
    /// The synthetic scenario: gan (one GAN per class) or cgan (one conditional GAN).
    #[arg(long, default_value = "gan")]
    scenario: String,
    /// Selection rules (comma-separated: discriminator, confidence, nearest, coverage).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "discriminator,confidence,nearest,coverage"
    )]
    select: Vec<String>,
    /// Synthetic images per real image of the class (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0,0.25,0.5,1,2")]
    ratios: Vec<f64>,
    /// Loss weights of synthetic images (comma-separated; other than 1 for probe models only).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    weights: Vec<f64>,
    /// Epochs of fine-tuning on real images after real + synthetic (comma-separated; other
    /// than 0 for models trained by SGD/AdamW only).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    finetune: Vec<usize>,
    /// GAN replicas, and as many seeds (seed s uses replica s).
    #[arg(long, default_value_t = 3)]
    replicas: u64,
    /// Only these models (comma-separated; those of the preset). Default: the preset's
    /// ImageNet models (the CNN from scratch takes about a minute per cell on 2 cores).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Rewrite sweep.md and the plots from the --out folder's sweep.json, and exit (nothing is
    /// trained).
    #[arg(long)]
    replot: bool,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
}

/// `--replot`: the tables and plots again from a finished sweep's `sweep.json`.
fn replot(args: &Args) -> Result<()> {
    let out = args.common.out_or("results/synthetic-sweep");
    let path = out.join("sweep.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let r: ganaug::experiment::sweep::SweepResults = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a sweep's results", path.display()))?;
    ganaug::experiment::sweep::write_sweep(&r, &out)?;
    println!("rewrote {}", out.join("sweep.md").display());
    Ok(())
}

/// The preset narrowed to the sweep (its replicas, its models) and what the sweep varies.
fn sweep_plan(args: &Args) -> Result<(ganaug::experiment::CheckedConfig, SweepPlan)> {
    let mut cfg = args.preset.load()?.into_inner();
    let scenario = Scenario::parse(&args.scenario)
        .with_context(|| format!("unknown scenario {:?}: choose gan or cgan", args.scenario))?;
    let select = args
        .select
        .iter()
        .map(|s| {
            SelectBy::parse(s).with_context(|| {
                format!("unknown selection {s:?}: choose discriminator, confidence, nearest or coverage")
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if args.replicas == 0 {
        anyhow::bail!("--replicas must be at least 1");
    }
    cfg.gan.replicas = args.replicas;
    cfg.seeds = args.replicas as usize;
    if args.models.is_empty() {
        cfg.models.retain(|m| m.imagenet);
    } else {
        let kinds = args
            .models
            .iter()
            .map(|m| ModelKind::parse(m))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        cfg.models.retain(|m| kinds.contains(&m.kind));
    }
    if cfg.models.is_empty() {
        anyhow::bail!("no model of the preset left to sweep (see --models)");
    }
    let plan = SweepPlan {
        scenario,
        select,
        ratios: args.ratios.clone(),
        weights: args.weights.clone(),
        finetune: args.finetune.clone(),
    };
    Ok((cfg.check()?, plan))
}

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    if args.replot {
        return replot(&args);
    }
    let (cfg, plan) = sweep_plan(&args)?;
    let data = args.common.source()?;
    let device = args.common.device()?;
    ganaug::init_process_for(device, cfg.largest_image());
    let out = args.common.out_or("results/synthetic-sweep");
    let console = ConsoleProgress::new();
    let observer: &dyn Observer = if args.quiet { &Silent } else { &console };
    let r = sweep(
        &cfg,
        &plan,
        &data,
        &out,
        (device, args.stream.stream),
        observer,
    )?;
    println!(
        "{} points in {:.1} min: {}",
        r.points.len(),
        r.seconds / 60.0,
        out.join("sweep.md").display()
    );
    Ok(())
}
