//! Decoding a set of entries into a [`TensorDataset`]: in parallel, through the disk cache.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

use crate::cache::{self, CacheFile, Lookup, Stat};
use crate::{
    decode, BadFile, ColorMode, DataError, Depth, Entry, ImageFolder, ImageSpec, OnBadFile, Result,
    Split, TensorDataset,
};

/// How images are decoded and where the cache lives.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// Output size, filter, aspect policy, size limit.
    pub spec: ImageSpec,
    /// Folder of the decoded-image cache; `None` decodes every time.
    pub cache_dir: Option<PathBuf>,
    /// What to do with a file that cannot be decoded.
    pub on_bad_file: OnBadFile,
    /// Device of the returned tensors.
    pub device: Device,
}

impl Default for LoadOptions {
    /// [`ImageSpec::default`], no cache, fail on bad files, CPU.
    fn default() -> Self {
        LoadOptions {
            spec: ImageSpec::default(),
            cache_dir: None,
            on_bad_file: OnBadFile::Fail,
            device: Device::Cpu,
        }
    }
}

impl LoadOptions {
    /// Options producing `size x size` images.
    pub fn with_size(size: u32) -> Self {
        LoadOptions {
            spec: ImageSpec::with_size(size),
            ..Self::default()
        }
    }

    /// Sets the image spec.
    pub fn with_spec(mut self, spec: ImageSpec) -> Self {
        self.spec = spec;
        self
    }

    /// Caches decoded images in `dir`.
    pub fn with_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Sets the bad-file policy.
    pub fn with_on_bad_file(mut self, policy: OnBadFile) -> Self {
        self.on_bad_file = policy;
        self
    }

    /// Sets the output device.
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }
}

/// What a load did.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Images decoded from their files.
    pub decoded: usize,
    /// Images taken from the cache.
    pub from_cache: usize,
    /// Files left out ([`OnBadFile::Skip`]), with their errors.
    pub skipped: Vec<BadFile>,
    /// The cache file used, if any.
    pub cache_file: Option<PathBuf>,
    /// Why an existing cache was ignored, or could not be written (never fatal).
    pub cache_note: Option<String>,
    /// Wall time of the load, in seconds.
    pub seconds: f64,
    /// What [`ColorMode::Auto`] decided (`None` for a fixed mode).
    pub color: Option<ColorDecision>,
    /// What [`Depth::Auto`] decided (`None` for a fixed depth).
    pub depth: Option<crate::decode16::DepthDecision>,
}

/// The three splits of a dataset, decoded.
#[derive(Debug)]
pub struct Splits {
    /// Training split.
    pub train: TensorDataset,
    /// Validation split.
    pub val: TensorDataset,
    /// Test split.
    pub test: TensorDataset,
    /// What the load did (all splits together).
    pub report: LoadReport,
}

impl Splits {
    /// The split by name.
    pub fn get(&self, split: Split) -> &TensorDataset {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }
}

impl ImageFolder {
    /// Decodes one split.
    pub fn load(&self, split: Split, opts: &LoadOptions) -> Result<(TensorDataset, LoadReport)> {
        let entries = self.split(split);
        let desc = format!(
            "{} {split} split at {}",
            self.class_names().join("/"),
            self.root().display()
        );
        load_entries(&entries, &self.class_names(), &desc, opts)
    }

    /// Decodes every split in one parallel pass (one cache read and write).
    pub fn load_splits(&self, opts: &LoadOptions) -> Result<Splits> {
        let (all, report, kept_splits) =
            decode_entries(self.entries(), &self.class_names(), "", opts)?;
        let root = self.root().display().to_string();
        let pick = |split: Split| -> Result<TensorDataset> {
            let idx: Vec<i64> = (0..all.len() as i64)
                .filter(|&i| kept_splits[i as usize] == split)
                .collect();
            let mut ds = all.subset(&idx)?;
            ds.description = format!("image folder {root}, {split} split");
            Ok(ds)
        };
        Ok(Splits {
            train: pick(Split::Train)?,
            val: pick(Split::Val)?,
            test: pick(Split::Test)?,
            report,
        })
    }
}

/// Outcome of fetching one entry: a row of the cache, or freshly decoded pixels.
pub(crate) enum Pixels {
    Cached(i64),
    Fresh(Vec<u8>),
}

pub(crate) struct Fetched {
    pub(crate) pixels: Pixels,
    /// What the cache index should remember (`None` when loading without a cache).
    pub(crate) stat: Option<Stat>,
}

/// The stat index's key of an entry: its path, and its frame when not the first.
pub(crate) fn index_key(entry: &Entry) -> String {
    match entry.frame {
        0 => entry.path.to_string_lossy().into_owned(),
        k => format!("{}#{k}", entry.path.to_string_lossy()),
    }
}

/// Decodes one entry, or finds it in the cache. Without a cache nothing is stat'ed or hashed.
pub(crate) fn fetch(entry: &Entry, spec: &ImageSpec, cache: Option<&Lookup>) -> Result<Fetched> {
    let decode = |bytes: &[u8]| -> Result<Pixels> {
        if spec.depth == Depth::Sixteen {
            let img = crate::decode16::decode16(bytes, &entry.path, spec, entry.frame)?;
            let samples = crate::decode16::resize_square16(&img, spec)?;
            return Ok(Pixels::Fresh(
                samples.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ));
        }
        let img = decode::decode(bytes, &entry.path, spec, entry.frame)?;
        Ok(Pixels::Fresh(decode::resize_square(&img, spec)?))
    };
    let read = || std::fs::read(&entry.path).map_err(|e| DataError::io(&entry.path, e));
    let Some(cache) = cache else {
        return Ok(Fetched {
            pixels: decode(&read()?)?,
            stat: None,
        });
    };
    let (size, mtime_ns) = cache::stat(&entry.path)?;
    if let Some(known) = cache.known_hash(&index_key(entry), size, mtime_ns) {
        if let Some(row) = cache.row(&known.hash) {
            return Ok(Fetched {
                pixels: Pixels::Cached(row),
                stat: Some(known.clone()),
            });
        }
    }
    let bytes = read()?;
    // Frames of one multi-frame file: one cached image each.
    let hash = match entry.frame {
        0 => cache::content_hash(&bytes),
        k => format!("{}#{k}", cache::content_hash(&bytes)),
    };
    let pixels = match cache.row(&hash) {
        Some(row) => Pixels::Cached(row),
        None => decode(&bytes)?,
    };
    Ok(Fetched {
        pixels,
        stat: Some(Stat {
            size,
            mtime_ns,
            hash,
        }),
    })
}

/// Decodes `entries` (in order) into a dataset. Uses all rayon threads.
pub fn load_entries(
    entries: &[Entry],
    class_names: &[String],
    description: &str,
    opts: &LoadOptions,
) -> Result<(TensorDataset, LoadReport)> {
    decode_entries(entries, class_names, description, opts).map(|(ds, report, _)| (ds, report))
}

/// [`load_entries`], also returning the split of each image kept. [`ColorMode::Auto`] loads
/// the images as RGB first (through the cache), then again as gray when every one of them is
/// gray within [`ColorMode::AUTO_TOLERANCE`].
fn decode_entries(
    entries: &[Entry],
    class_names: &[String],
    description: &str,
    opts: &LoadOptions,
) -> Result<(TensorDataset, LoadReport, Vec<Split>)> {
    if opts.spec.depth == Depth::Auto {
        // Decided from the headers of the files (each multi-frame file and volume once,
        // whichever of its slices are taken).
        let (decided, decision) = with_decided_depth(entries, opts)?;
        let (ds, mut report, splits) = decode_entries(entries, class_names, description, &decided)?;
        report.depth = Some(decision);
        return Ok((ds, report, splits));
    }
    if opts.spec.color != ColorMode::Auto {
        return decode_entries_as(entries, class_names, description, opts);
    }
    let as_mode = |color: ColorMode| LoadOptions {
        spec: opts.spec.with_color(color),
        ..opts.clone()
    };
    let (rgb, mut report, splits) =
        decode_entries_as(entries, class_names, description, &as_mode(ColorMode::Rgb))?;
    let decision = ColorDecision::of(&rgb)?;
    if decision.mode == ColorMode::Rgb {
        report.color = Some(decision);
        return Ok((rgb, report, splits));
    }
    let (gray, mut gray_report, splits) =
        decode_entries_as(entries, class_names, description, &as_mode(ColorMode::Gray))?;
    gray_report.seconds += report.seconds;
    gray_report.color = Some(decision);
    Ok((gray, gray_report, splits))
}

/// `opts` with [`Depth::Auto`] decided from the files' headers (each multi-frame file and
/// volume once, whichever of its slices are taken), and the decision.
pub(crate) fn with_decided_depth(
    entries: &[Entry],
    opts: &LoadOptions,
) -> Result<(LoadOptions, crate::decode16::DepthDecision)> {
    let mut seen = std::collections::HashSet::new();
    let paths: Vec<&std::path::Path> = entries
        .iter()
        .map(|e| e.path.as_path())
        .filter(|p| seen.insert(*p))
        .collect();
    let decision = crate::decode16::decide_depth(&paths)?;
    let decided = LoadOptions {
        spec: opts.spec.with_depth(decision.depth),
        ..opts.clone()
    };
    Ok((decided, decision))
}

/// What [`ColorMode::Auto`] decided, and from what.
#[derive(Debug, Clone, PartialEq)]
pub struct ColorDecision {
    /// Gray or RGB.
    pub mode: ColorMode,
    /// Images checked.
    pub images: usize,
    /// Images whose channels differ by more than [`ColorMode::AUTO_TOLERANCE`].
    pub colour_images: usize,
    /// The image with the largest channel difference, and that difference (of 255).
    pub most_colourful: Option<(String, u8)>,
}

impl ColorDecision {
    /// Decides from images loaded as RGB (the per-pixel spread of R, G, B after resizing:
    /// equal channels stay equal through a per-channel filter).
    pub fn of(rgb: &TensorDataset) -> Result<Self> {
        crate::stream::color_decision(rgb)
    }

    /// Decides from each image's largest channel difference (of 255) and its name.
    pub(crate) fn from_spread(spread: &[f32], names: &[String]) -> Self {
        let tol = f32::from(ColorMode::AUTO_TOLERANCE);
        let colour_images = spread.iter().filter(|&&d| d > tol).count();
        let most_colourful = spread
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, &d)| (names[i].clone(), d.clamp(0.0, 255.0) as u8));
        ColorDecision {
            mode: if colour_images == 0 {
                ColorMode::Gray
            } else {
                ColorMode::Rgb
            },
            images: spread.len(),
            colour_images,
            most_colourful,
        }
    }
}

impl std::fmt::Display for ColorDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tol = ColorMode::AUTO_TOLERANCE;
        match (self.mode, &self.most_colourful) {
            (ColorMode::Rgb, Some((name, d))) => write!(
                f,
                "colour mode auto: RGB ({} of {} images have R, G, B differing by more than {tol}/255, e.g. {name} by {d})",
                self.colour_images, self.images
            ),
            (_, Some((name, d))) => write!(
                f,
                "colour mode auto: gray (R, G and B of all {} images agree within {tol}/255; largest difference {d} in {name})",
                self.images
            ),
            _ => write!(f, "colour mode auto: {} (no images)", self.mode),
        }
    }
}

/// [`decode_entries`] with a decided colour mode.
fn decode_entries_as(
    entries: &[Entry],
    class_names: &[String],
    description: &str,
    opts: &LoadOptions,
) -> Result<(TensorDataset, LoadReport, Vec<Split>)> {
    opts.spec.validate()?;
    let start = Instant::now();
    let spec = &opts.spec;
    let mut report = LoadReport::default();
    let cache_file = opts.cache_dir.as_ref().map(|d| cache::cache_path(d, spec));
    let cache = match cache_file.as_deref().map(|p| CacheFile::open(p, spec)) {
        None => CacheFile::empty(),
        Some(Ok(c)) => c,
        Some(Err(why)) => {
            report.cache_note = Some(format!("ignored unreadable cache ({why}); rebuilt"));
            CacheFile::empty()
        }
    };
    let results: Vec<Result<Fetched>> = entries
        .par_iter()
        .map(|e| fetch(e, spec, cache_file.as_ref().map(|_| &cache.lookup)))
        .collect();
    let g = gather(entries, results, &cache, opts, &mut report)?;
    report.from_cache = g.cached_pos.len();
    report.decoded = g.fresh_pos.len();
    let channels = spec.color.channels().unwrap_or(1);
    let side = spec.size as i64;
    let bytes = g.pixels(&cache, channels * spec.depth.bytes() as i64, side)?;
    let images = bytes_to_images(&bytes, spec.depth, channels, side, opts.device)?;
    if let Some(path) = &cache_file {
        if !g.fresh.is_empty() || g.index != cache.lookup.index {
            let written = path
                .parent()
                .map_or(Ok(()), |d| {
                    std::fs::create_dir_all(d).map_err(|e| DataError::io(d, e))
                })
                .and_then(|()| {
                    let fresh = g
                        .fresh
                        .iter()
                        .map(|(h, px)| (h.clone(), cache::RowFrom::Memory(px)))
                        .collect();
                    cache::write(path, &cache, &g.index, &fresh, None, spec)
                });
            if let Err(e) = written {
                report.cache_note = Some(format!("cache not written: {e}"));
            }
        }
        report.cache_file = Some(path.clone());
    }
    let kept = &g.kept;
    let labels = Tensor::f_from_slice(&kept.iter().map(|e| e.label).collect::<Vec<_>>())?
        .f_to_device(opts.device)?;
    let ds = TensorDataset::new(
        images,
        labels,
        kept.iter().map(|e| e.name.clone()).collect(),
        class_names.to_vec(),
        description,
    )?;
    report.seconds = start.elapsed().as_secs_f64();
    Ok((ds, report, kept.iter().map(|e| e.split).collect()))
}

/// Cached bytes `[N, C·b, side, side]` (`b` bytes per sample) as `f32` images in [0, 1] on
/// `device`: what the in-memory load and every streamed batch convert with, so both give the
/// same values.
pub(crate) fn bytes_to_images(
    bytes: &Tensor,
    depth: Depth,
    channels: i64,
    side: i64,
    device: Device,
) -> Result<Tensor> {
    Ok(match depth {
        // Little-endian sample pairs: low + 256·high, over 65535.
        Depth::Sixteen => {
            let pairs = bytes
                .f_view([-1, channels, side, side, 2])?
                .f_to_kind(Kind::Float)?;
            pairs
                .f_select(4, 0)?
                .f_add(&pairs.f_select(4, 1)?.f_mul_scalar(256.0)?)?
                .f_to_device(device)?
                .f_div_scalar_(65535.0)?
        }
        _ => bytes
            .f_to_device(device)?
            .f_to_kind(Kind::Float)?
            .f_div_scalar_(255.0)?,
    })
}

/// The fetched images sorted into those read from the cache and those decoded now.
struct Gathered<'a> {
    kept: Vec<&'a Entry>,
    index: HashMap<String, cache::Stat>,
    cached_pos: Vec<i64>,
    cached_rows: Vec<i64>,
    fresh_pos: Vec<i64>,
    fresh_pixels: Vec<u8>,
    fresh: HashMap<String, Vec<u8>>,
}

/// Sorts fetch results; bad files are skipped (and listed) or fail the load, as `opts` says.
fn gather<'a>(
    entries: &'a [Entry],
    results: Vec<Result<Fetched>>,
    cache: &CacheFile,
    opts: &LoadOptions,
    report: &mut LoadReport,
) -> Result<Gathered<'a>> {
    let mut g = Gathered {
        kept: Vec::with_capacity(entries.len()),
        index: cache.lookup.index.clone(),
        cached_pos: Vec::new(),
        cached_rows: Vec::new(),
        fresh_pos: Vec::new(),
        fresh_pixels: Vec::new(),
        fresh: HashMap::new(),
    };
    for (entry, result) in entries.iter().zip(results) {
        match result {
            Ok(f) => {
                let pos = g.kept.len() as i64;
                match f.pixels {
                    Pixels::Cached(row) => {
                        g.cached_pos.push(pos);
                        g.cached_rows.push(row);
                    }
                    Pixels::Fresh(px) => {
                        g.fresh_pos.push(pos);
                        g.fresh_pixels.extend_from_slice(&px);
                        if let Some(stat) = &f.stat {
                            g.fresh.insert(stat.hash.clone(), px);
                        }
                    }
                }
                if let Some(stat) = f.stat {
                    g.index.insert(index_key(entry), stat);
                }
                g.kept.push(entry);
            }
            Err(error) if opts.on_bad_file == OnBadFile::Skip && error.is_per_file() => {
                report.skipped.push(BadFile {
                    path: entry.path.clone(),
                    error,
                });
            }
            Err(error) => return Err(error),
        }
    }
    Ok(g)
}

impl Gathered<'_> {
    /// `[N, C·b, side, side]` u8 bytes (`b` bytes per sample, 16-bit ones little-endian):
    /// cached rows straight from the mapped file, fresh ones placed beside them.
    fn pixels(&self, cache: &CacheFile, channels: i64, side: i64) -> Result<Tensor> {
        let n = self.kept.len() as i64;
        let row = channels * side * side;
        let fresh_t =
            Tensor::f_from_slice(&self.fresh_pixels)?.f_view([self.fresh_pos.len() as i64, row])?;
        let pixels = if self.fresh_pos.is_empty() && n > 0 {
            cache.gather(&self.cached_rows)?
        } else if self.cached_pos.is_empty() {
            fresh_t
        } else {
            let out = Tensor::f_zeros([n, row], (Kind::Uint8, Device::Cpu))?;
            out.f_index_copy(
                0,
                &Tensor::f_from_slice(&self.cached_pos)?,
                &cache.gather(&self.cached_rows)?,
            )?
            .f_index_copy(0, &Tensor::f_from_slice(&self.fresh_pos)?, &fresh_t)?
        };
        Ok(pixels.f_view([n, channels, side, side])?)
    }
}
