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
use ganaug::data::stream::{class_counts, read_batches};
use ganaug::data::{
    self, DataSource, FolderSource, ImageFolder, ImageSource, ImageSpec, LoadOptions, LoadedSplits,
    OnBadFile, ResizeFilter, ResizePolicy, Split,
};

#[derive(clap::Args, Debug)]
#[command(
    about = "Summarise an image-folder dataset (COVID-CT or class folders; or the synthetic phantom stand-in) and write a sample grid"
)]
pub struct Args {
    /// `--out`: where to write the sample grid (default results/dataset_summary).
    #[command(flatten)]
    common: common::CommonArgs,
    #[command(flatten)]
    stream: common::StreamArgs,
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
        phantom => {
            let spec = ImageSpec::with_size(args.size);
            let (splits, decision) = phantom.open_spec(spec, device, args.stream.stream)?;
            println!("{decision}");
            splits
        }
    };
    let out = args.common.out_or("results/dataset_summary");
    let train = splits.get(Split::Train);
    println!("source: {}", train.description());
    println!(
        "{:<6} {:>8} {}",
        "split",
        "images",
        train.class_names().join(" / ")
    );
    for split in Split::ALL {
        let ds = splits.get(split);
        let counts: Vec<String> = class_counts(ds)?.iter().map(usize::to_string).collect();
        println!(
            "{:<6} {:>8} {}",
            split.as_str(),
            ds.len(),
            counts.join(" / ")
        );
    }
    let (h, w) = train.image_size();
    println!(
        "images: [N, {}, {h}, {w}] f32, mean intensity {:.3}",
        train.channels(),
        mean_intensity(train)?
    );
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let labels = Vec::<i64>::try_from(&train.labels().to_device(tch::Device::Cpu))?;
    let mut picks = Vec::new();
    for label in 0..train.class_names().len() as i64 {
        picks.extend(
            (0..labels.len() as i64)
                .filter(|&i| labels[i as usize] == label)
                .take(8),
        );
    }
    let grid_path = out.join("train_samples.png");
    data::io::save_grid(&train.reader()?.read(&picks)?, 8, &grid_path)?;
    println!("sample grid (one row per class): {}", grid_path.display());
    Ok(())
}

/// The mean pixel value of every image, read 64 at a time.
fn mean_intensity(ds: &dyn ImageSource) -> Result<f64> {
    let chunks = ganaug::data::stream::sequential_batches(ds.len(), 64);
    let (mut sum, mut count) = (0.0, 0i64);
    read_batches::<data::DataError>(ds, chunks, tch::Device::Cpu, 2, |_, x| {
        sum += x.f_sum(tch::Kind::Double)?.f_double_value(&[])?;
        count += x.numel() as i64;
        Ok(())
    })?;
    Ok(sum / count.max(1) as f64)
}

fn load_folder(f: &FolderSource, args: &Args, device: tch::Device) -> Result<LoadedSplits> {
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
    let opts = load_options(f, args, on_bad, device);
    let decision = args.stream.stream.decide(
        folder.entries().len(),
        opts.spec.color.channels().unwrap_or(3),
        args.size,
    );
    println!("{decision}");
    let splits = if decision.stream {
        LoadedSplits::Stream(folder.stream_splits(&opts)?)
    } else {
        LoadedSplits::Memory(folder.load_splits(&opts)?)
    };
    print_report(&folder, splits.report());
    Ok(splits)
}

/// How the folder is decoded: the arguments' side, filter, policy and cache.
fn load_options(
    f: &FolderSource,
    args: &Args,
    on_bad: OnBadFile,
    device: tch::Device,
) -> LoadOptions {
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
    opts
}

/// What the load did: time and cache use, the auto decisions, the files, the skipped ones.
fn print_report(folder: &ImageFolder, r: &data::LoadReport) {
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
}
