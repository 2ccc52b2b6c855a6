//! Offline classical augmentation: writes `k` augmented copies of every training image (the
//! paper's "augmented dataset") as PNGs in class folders, plus a preview grid.
//!
//! ```text
//! ganaug augment --data ../shared/data/covid-ct --copies 2 --out runs/aug
//! ganaug augment --pipeline frid-adar     # phantom stand-in
//! ```

use crate::common;

use anyhow::{bail, Context, Result};
use ganaug::augment::{expand, Pipeline};
use ganaug::data::{self, Split};

#[derive(clap::Args, Debug)]
#[command(
    about = "Write k classically augmented copies of the training split as PNG class folders"
)]
pub struct Args {
    /// `--out`: must not contain earlier output (nothing is overwritten); default runs/augmented.
    #[command(flatten)]
    common: common::CommonArgs,
    /// Image side in pixels.
    #[arg(long, default_value_t = 128)]
    size: u32,
    /// Augmented copies per image.
    #[arg(long, default_value_t = 2)]
    copies: usize,
    /// `paper` (flips + rotation up to 45°) or `frid-adar` (translation, scale, flips, shear).
    #[arg(long, default_value = "paper")]
    pipeline: String,
    /// Seed of the augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    ganaug::init_process();
    let device = args.common.device()?;
    println!("device: {device:?}");
    let pipeline = match args.pipeline.as_str() {
        "paper" => Pipeline::paper(),
        "frid-adar" => Pipeline::frid_adar(),
        other => bail!("unknown pipeline '{other}': use paper or frid-adar"),
    };
    let train = args
        .common
        .source()?
        .load_split(Split::Train, i64::from(args.size), device)?;
    let out = args.common.out_or("runs/augmented");
    let start = std::time::Instant::now();
    let augmented = expand(&train, &pipeline, args.copies, args.seed, 64)?;
    println!(
        "augmented {} images x{} in {:.2} s",
        train.len(),
        args.copies,
        start.elapsed().as_secs_f64()
    );
    let written = data::io::export_image_folder(&augmented, &out, false)
        .with_context(|| format!("writing into {}", out.display()))?;
    let n = augmented.len().min(16) as i64;
    let preview = tch::Tensor::cat(
        &[
            train.images.narrow(0, 0, n.min(train.len() as i64)),
            augmented.images.narrow(0, 0, n),
        ],
        0,
    );
    let grid = out.join("preview.png");
    data::io::save_grid(&preview, 8, &grid)?;
    println!(
        "wrote {} PNGs under {} ({})",
        written.len(),
        out.display(),
        augmented.description
    );
    println!(
        "preview (originals, then augmented copies): {}",
        grid.display()
    );
    Ok(())
}
