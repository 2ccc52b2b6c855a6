//! `ganaug synthesize`: synthetic sets from the GANs a `train-gan` (or `reproduce`) run left
//! in its folder — nothing is trained: GANs that are not finished there are listed as missing.
//! Candidates are generated, selected, measured and gated as the experiment does.
//!
//! ```text
//! ganaug synthesize --data ../shared/data/covid-ct --out runs/gan --keep 250
//! ```

use anyhow::Result;
use ganaug::experiment::shard::Work;

use crate::cmd::train_gan::{run_stage, stage_config, Mode};
use crate::common;

/// `ganaug synthesize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The real data the GANs were trained on, and `--out`: the folder holding them (default
    /// runs/gan), where the sets are written.
    #[command(flatten)]
    common: common::CommonArgs,
    /// The preset or file the GANs were trained with (their folders are found by it).
    #[command(flatten)]
    preset: common::PresetArgs,
    /// Which GANs: `per-class`, `conditional` or `both`.
    #[arg(long, value_enum, default_value = "per-class")]
    mode: Mode,
    /// Images kept per class.
    #[arg(long, value_name = "K")]
    keep: Option<usize>,
    /// Seed of the latents (the preset's by default).
    #[arg(long)]
    seed: Option<u64>,
}

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    let mut cfg = stage_config(&args.preset, args.mode, args.keep)?;
    if let Some(s) = args.seed {
        cfg.gan.synth.seed = s;
    }
    run_stage(&args.common, &cfg.check()?, Work::ReportOnly)
}
