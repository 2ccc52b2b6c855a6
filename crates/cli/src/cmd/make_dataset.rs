//! Writes a generated image-folder dataset — **synthetic, not real images** — to try ganaug on
//! a layout other than COVID-CT: one folder per class, no split lists, as gray or RGB PNG, or
//! as DICOM CT slices (build with `--features dicom`).
//!
//! ```text
//! ganaug make-dataset --out /tmp/rgb3 --classes 3 --format rgb
//! ganaug reproduce --data /tmp/rgb3 --preset tiny --out /tmp/rgb3-run
//! ```

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use ganaug::data::fixture::{write_class_folders, FixtureFormat, FolderFixture};

#[derive(clap::Args, Debug)]
#[command(about = "Write a generated class-folder dataset (synthetic, not real images)")]
pub struct Args {
    /// Folder to write (must not hold the files already).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Number of classes (2 to 26).
    #[arg(long, default_value_t = 3)]
    classes: usize,
    /// Images per class.
    #[arg(long, default_value_t = 40)]
    per_class: usize,
    /// Image side in pixels.
    #[arg(long, default_value_t = 64)]
    size: u32,
    /// gray, rgb or dicom.
    #[arg(long, default_value = "rgb")]
    format: String,
    /// Seed of everything drawn.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    if !(2..=26).contains(&args.classes) {
        bail!("--classes {}: 2 to 26 classes", args.classes);
    }
    if args.per_class == 0 || !(8..=1024).contains(&args.size) {
        bail!("--per-class must be positive and --size in 8..=1024");
    }
    let format = match args.format.as_str() {
        "gray" => FixtureFormat::GrayPng,
        "rgb" => FixtureFormat::RgbPng,
        #[cfg(feature = "dicom")]
        "dicom" => FixtureFormat::Dicom,
        #[cfg(not(feature = "dicom"))]
        "dicom" => bail!("--format dicom needs the `dicom` feature (cargo run --features dicom …)"),
        other => bail!("--format {other:?}: gray, rgb or dicom"),
    };
    let fixture = FolderFixture {
        seed: args.seed,
        ..FolderFixture::new(args.classes, args.per_class, args.size, format)
    };
    let files = write_class_folders(&args.out, &fixture)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote {} images ({} classes × {}, {}², {}) to {} — SYNTHETIC, not real images",
        files.len(),
        args.classes,
        args.per_class,
        args.size,
        args.format,
        args.out.display()
    );
    Ok(())
}
