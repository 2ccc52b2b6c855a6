//! Offline classical augmentation: writes `k` augmented copies of every training image (the
//! paper's "augmented dataset") as PNGs in class folders, plus a preview grid.
//!
//! ```text
//! cargo run --release --example augment_dataset -- --data ../shared/data/covid-ct --copies 2 --out runs/aug
//! cargo run --release --example augment_dataset -- --pipeline frid-adar     # phantom stand-in
//! ```

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;
use ganaug::augment::{expand, Pipeline};
use ganaug::data::{self, phantom::PhantomConfig, FolderConfig, ImageFolder, LoadOptions, Split};
use ganaug::device::DeviceChoice;

#[derive(Parser, Debug)]
#[command(
    about = "Write k classically augmented copies of the training split as PNG class folders"
)]
struct Args {
    /// COVID-CT folder. Without it: the synthetic phantom stand-in (not real CT).
    #[arg(long)]
    data: Option<PathBuf>,
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
    /// Output folder (must not contain earlier output: nothing is overwritten).
    #[arg(long, default_value = "runs/augmented")]
    out: PathBuf,
    /// Device: auto, cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

fn main() -> Result<()> {
    ganaug::init_process();
    let args = Args::parse();
    let device = args.device.resolve()?;
    println!("device: {device:?}");
    let pipeline = match args.pipeline.as_str() {
        "paper" => Pipeline::paper(),
        "frid-adar" => Pipeline::frid_adar(),
        other => bail!("unknown pipeline '{other}': use paper or frid-adar"),
    };
    let train = match &args.data {
        Some(dir) => {
            let folder = ImageFolder::open(dir, &FolderConfig::covid_ct())
                .with_context(|| format!("opening {}", dir.display()))?;
            let opts = LoadOptions::with_size(args.size).with_device(device);
            let opts = match data::default_cache_dir() {
                Some(c) => opts.with_cache(c),
                None => opts,
            };
            folder.load(Split::Train, &opts)?.0
        }
        None => {
            println!("No --data: using the SYNTHETIC PHANTOM stand-in dataset (not real CT).");
            let cfg = PhantomConfig {
                size: args.size,
                ..PhantomConfig::default()
            };
            data::phantom_splits(&cfg, device)?.train
        }
    };
    let start = std::time::Instant::now();
    let augmented = expand(&train, &pipeline, args.copies, args.seed, 64)?;
    println!(
        "augmented {} images x{} in {:.2} s",
        train.len(),
        args.copies,
        start.elapsed().as_secs_f64()
    );
    let written = data::io::export_image_folder(&augmented, &args.out, false)
        .with_context(|| format!("writing into {}", args.out.display()))?;
    let n = augmented.len().min(16) as i64;
    let preview = tch::Tensor::cat(
        &[
            train.images.narrow(0, 0, n.min(train.len() as i64)),
            augmented.images.narrow(0, 0, n),
        ],
        0,
    );
    let grid = args.out.join("preview.png");
    data::io::save_grid(&preview, 8, &grid)?;
    println!(
        "wrote {} PNGs under {} ({})",
        written.len(),
        args.out.display(),
        augmented.description
    );
    println!(
        "preview (originals, then augmented copies): {}",
        grid.display()
    );
    Ok(())
}
