//! Loads an image-folder dataset — COVID-CT or one folder per class — (or, with no `--data`,
//! the embedded synthetic phantom stand-in),
//! prints counts per class and split, load time and cache use, and writes a sample grid PNG.
//!
//! ```text
//! ganaug summary --data ../shared/data/covid-ct
//! ganaug summary            # synthetic phantom stand-in
//! ```

use crate::common;

use std::path::PathBuf;

use anyhow::{Context, Result};
use ganaug::data::{
    self, DataSource, FolderSource, ImageFolder, LoadOptions, OnBadFile, ResizeFilter,
    ResizePolicy, Split, Splits,
};

#[derive(clap::Args, Debug)]
#[command(
    about = "Summarise an image-folder dataset (COVID-CT or class folders; or the synthetic phantom stand-in) and write a sample grid"
)]
pub struct Args {
    /// `--out`: where to write the sample grid (default results/dataset_summary).
    #[command(flatten)]
    common: common::CommonArgs,
    /// Output image side in pixels.
    #[arg(long, default_value_t = 224)]
    size: u32,
    /// Resize filter.
    #[arg(long, value_enum, default_value = "bilinear")]
    filter: Filter,
    /// How non-square images are fitted.
    #[arg(long, value_enum, default_value = "stretch")]
    policy: Policy,
    /// Cache folder for decoded images (default: the user cache folder).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Decode every image, without the cache.
    #[arg(long)]
    no_cache: bool,
    /// Skip unreadable images (and list them) instead of stopping.
    #[arg(long)]
    skip_bad: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Filter {
    Nearest,
    Bilinear,
    Catmullrom,
    Lanczos3,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Policy {
    Stretch,
    Pad,
    Crop,
}

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    let device = args.common.device()?;
    println!("device: {device:?}");
    let splits = match args.common.source()? {
        DataSource::Folder(f) => load_folder(&f, &args, device)?,
        phantom => phantom.load(i64::from(args.size), device)?,
    };
    let out = args.common.out_or("results/dataset_summary");
    println!("source: {}", splits.train.description);
    println!(
        "{:<6} {:>8} {}",
        "split",
        "images",
        splits.train.class_names.join(" / ")
    );
    for split in Split::ALL {
        let ds = splits.get(split);
        let counts: Vec<String> = ds.class_counts().iter().map(usize::to_string).collect();
        println!(
            "{:<6} {:>8} {}",
            split.as_str(),
            ds.len(),
            counts.join(" / ")
        );
    }
    let train = &splits.train;
    let (h, w) = train.image_size();
    println!(
        "images: [N, {}, {h}, {w}] f32, mean intensity {:.3}",
        train.channels(),
        train.images.mean(tch::Kind::Float).double_value(&[])
    );
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut picks = Vec::new();
    for label in 0..train.class_names.len() as i64 {
        let class = train.class_subset(label)?;
        let n = class.len().min(8) as i64;
        picks.push(class.images.narrow(0, 0, n));
    }
    let grid_path = out.join("train_samples.png");
    data::io::save_grid(&tch::Tensor::cat(&picks, 0), 8, &grid_path)?;
    println!("sample grid (one row per class): {}", grid_path.display());
    Ok(())
}

fn load_folder(f: &FolderSource, args: &Args, device: tch::Device) -> Result<Splits> {
    let on_bad = if args.skip_bad {
        OnBadFile::Skip
    } else {
        OnBadFile::Fail
    };
    let dir = &f.dir;
    let folder = ImageFolder::open(dir, &f.config.clone().with_on_bad_file(on_bad))
        .with_context(|| format!("opening the dataset at {}", dir.display()))?;
    println!(
        "layout: {}, {} classes ({}); split from: {:?}",
        f.layout.describe(),
        folder.class_names().len(),
        folder.class_names().join(", "),
        folder.origin()
    );
    let mut opts = LoadOptions::with_size(args.size)
        .with_on_bad_file(on_bad)
        .with_device(device);
    opts.spec = opts
        .spec
        .with_color(f.color)
        .with_window(f.window)
        .with_depth(f.depth);
    opts.spec.filter = match args.filter {
        Filter::Nearest => ResizeFilter::Nearest,
        Filter::Bilinear => ResizeFilter::Bilinear,
        Filter::Catmullrom => ResizeFilter::CatmullRom,
        Filter::Lanczos3 => ResizeFilter::Lanczos3,
    };
    opts.spec.policy = match args.policy {
        Policy::Stretch => ResizePolicy::Stretch,
        Policy::Pad => ResizePolicy::Pad,
        Policy::Crop => ResizePolicy::CenterCrop,
    };
    if !args.no_cache {
        opts.cache_dir = args.cache.clone().or_else(data::default_cache_dir);
    }
    let splits = folder.load_splits(&opts)?;
    let r = &splits.report;
    println!(
        "loaded in {:.3} s: {} decoded, {} from cache{}",
        r.seconds,
        r.decoded,
        r.from_cache,
        r.cache_file
            .as_ref()
            .map(|p| format!(" ({})", p.display()))
            .unwrap_or_default()
    );
    if let Some(decision) = &r.depth {
        println!("{decision}");
    }
    if let Some(decision) = &r.color {
        println!("{decision}");
    }
    if let Some(note) = &r.cache_note {
        println!("cache: {note}");
    }
    print!("{}", folder.file_summary(&r.skipped));
    // one line per file (a volume's slices fail alike)
    let mut seen = std::collections::HashSet::new();
    for bad in folder.skipped().iter().chain(&r.skipped) {
        if seen.insert(&bad.path) {
            println!("skipped {}: {}", bad.path.display(), bad.error);
        }
    }
    if !folder.unlisted().is_empty() {
        println!(
            "{} image(s) are in no split list and were not loaded",
            folder.unlisted().len()
        );
    }
    Ok(splits)
}
