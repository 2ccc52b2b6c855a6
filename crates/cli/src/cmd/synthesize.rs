//! `ganaug synthesize`: synthetic sets from the GANs a `train-gan` (or `reproduce`) run left
//! in its folder — nothing is trained: GANs that are not finished there are listed as missing.
//! Candidates are generated, selected, measured and gated as the experiment does.
//!
//! ```text
//! ganaug synthesize --data ../shared/data/covid-ct --out runs/gan --keep 250
//! ```

use anyhow::Result;
use ganaug::experiment::shard::Work;

use crate::cmd::train_gan::{run_stage, StageArgs};

/// `ganaug synthesize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The real data the GANs were trained on, the preset they were trained with (their folders
    /// are found by it), and `--out`: the folder holding them, where the sets are written.
    #[command(flatten)]
    stage: StageArgs,
    /// Seed of the latents (the preset's by default).
    #[arg(long)]
    seed: Option<u64>,
}

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    let mut cfg = args.stage.config()?;
    if let Some(s) = args.seed {
        cfg.gan.synth.seed = s;
    }
    run_stage(&args.stage, &cfg.check()?, Work::ReportOnly)
}
