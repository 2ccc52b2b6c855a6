//! Building a stream: what the decode cache lacks decoded a chunk at a time, spilled to disk,
//! and the cache rewritten one image at a time.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use tch::{Device, Tensor};

use super::{ImageSource, OpenCache, StreamDataset, StreamShared, READ_CHUNK};
use crate::cache::{self, CacheFile, RowFrom, Stat};
use crate::load::{fetch, index_key, Pixels};
/// Entries decoded at once while building a stream (their pixels are the memory a build holds).
const CHUNK: usize = 256;

use crate::{
    BadFile, ColorDecision, ColorMode, DataError, Depth, Entry, ImageFolder, ImageSpec,
    LoadOptions, LoadReport, OnBadFile, Result, Split,
};

/// The three splits of a dataset, streamed.
#[derive(Debug)]
pub struct StreamSplits {
    /// Training split.
    pub train: StreamDataset,
    /// Validation split.
    pub val: StreamDataset,
    /// Test split.
    pub test: StreamDataset,
    /// What building the streams did (all splits together).
    pub report: LoadReport,
}

impl ImageFolder {
    /// Every split as a stream from the decode cache (`opts.cache_dir` is required): the same
    /// images, labels and names in the same order as [`ImageFolder::load_splits`], decoded into
    /// the cache a chunk at a time where it lacks them.
    pub fn stream_splits(&self, opts: &LoadOptions) -> Result<StreamSplits> {
        let (all, report, kept_splits) =
            stream_entries(self.entries(), &self.class_names(), "", opts)?;
        let root = self.root().display().to_string();
        let pick = |split: Split| -> Result<StreamDataset> {
            let idx: Vec<i64> = (0..all.len() as i64)
                .filter(|&i| kept_splits[i as usize] == split)
                .collect();
            let mut ds = all.subset(&idx)?;
            ds.description = format!("image folder {root}, {split} split (streamed)");
            Ok(ds)
        };
        Ok(StreamSplits {
            train: pick(Split::Train)?,
            val: pick(Split::Val)?,
            test: pick(Split::Test)?,
            report,
        })
    }
}

/// [`crate::load_entries`] as a stream: the entries' images in the cache (decoded where it
/// lacks them), read batch by batch; the split of each image kept.
pub fn stream_entries(
    entries: &[Entry],
    class_names: &[String],
    description: &str,
    opts: &LoadOptions,
) -> Result<(StreamDataset, LoadReport, Vec<Split>)> {
    if opts.cache_dir.is_none() {
        return Err(DataError::config(
            "stream",
            "streaming reads images from the decode cache: give a cache folder",
        ));
    }
    if opts.spec.depth == Depth::Auto {
        let (decided, decision) = crate::load::with_decided_depth(entries, opts)?;
        let (ds, mut report, splits) = stream_entries(entries, class_names, description, &decided)?;
        report.depth = Some(decision);
        return Ok((ds, report, splits));
    }
    if opts.spec.color != ColorMode::Auto {
        return stream_entries_as(entries, class_names, description, opts);
    }
    let as_mode = |color: ColorMode| LoadOptions {
        spec: opts.spec.with_color(color),
        ..opts.clone()
    };
    let (rgb, mut report, splits) =
        stream_entries_as(entries, class_names, description, &as_mode(ColorMode::Rgb))?;
    let decision = color_decision(&rgb)?;
    if decision.mode == ColorMode::Rgb {
        report.color = Some(decision);
        return Ok((rgb, report, splits));
    }
    drop(rgb);
    let (gray, mut gray_report, splits) =
        stream_entries_as(entries, class_names, description, &as_mode(ColorMode::Gray))?;
    gray_report.seconds += report.seconds;
    gray_report.color = Some(decision);
    Ok((gray, gray_report, splits))
}

/// [`ColorDecision::of`] read a chunk at a time (the same decision for the same images).
pub fn color_decision(rgb: &dyn ImageSource) -> Result<ColorDecision> {
    let n = rgb.len();
    let mut reader = rgb.reader()?;
    let mut spread: Vec<f32> = Vec::with_capacity(n);
    for start in (0..n).step_by(READ_CHUNK) {
        let idx: Vec<i64> = (start as i64..(start + READ_CHUNK).min(n) as i64).collect();
        let x = reader.read(&idx)?;
        let s = x
            .f_amax(&[1][..], false)?
            .f_sub(&x.f_amin(&[1][..], false)?)?
            .f_flatten(1, -1)?
            .f_amax(&[1][..], false)?
            .f_mul_scalar(255.0)?
            .f_round()?
            .f_to_device(Device::Cpu)?;
        spread.extend(Vec::<f32>::try_from(&s)?);
    }
    Ok(ColorDecision::from_spread(&spread, rgb.names()))
}

/// [`stream_entries`] with a decided colour mode and depth.
fn stream_entries_as(
    entries: &[Entry],
    class_names: &[String],
    description: &str,
    opts: &LoadOptions,
) -> Result<(StreamDataset, LoadReport, Vec<Split>)> {
    opts.spec.validate()?;
    let start = Instant::now();
    let spec = &opts.spec;
    let mut report = LoadReport::default();
    let dir = opts
        .cache_dir
        .as_ref()
        .ok_or_else(|| DataError::config("stream", "no cache folder"))?;
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let path = cache::cache_path(dir, spec);
    let old = match CacheFile::open_as(&path, spec, false) {
        Ok(c) => c,
        Err(why) => {
            report.cache_note = Some(format!("ignored unreadable cache ({why}); rebuilt"));
            CacheFile::empty()
        }
    };
    let built = build(entries, &old, spec, opts, &mut report)?;
    if !built.fresh.is_empty() || built.index != old.lookup.index {
        let fresh: HashMap<String, RowFrom<'_>> = built
            .fresh
            .iter()
            .map(|(h, &k)| (h.clone(), RowFrom::Spill(k)))
            .collect();
        cache::write(
            &path,
            &old,
            &built.index,
            &fresh,
            built.spill.as_ref().map(|s| &s.file),
            spec,
        )?;
    }
    drop(built.spill);
    drop(old);
    report.cache_file = Some(path.clone());
    let (cache, rows) = open_written(&path, spec, &built.hashes)?;
    let kept = &built.kept;
    let labels = Tensor::f_from_slice(&kept.iter().map(|e| e.label).collect::<Vec<_>>())?;
    let channels = spec.color.channels().unwrap_or(1);
    let ds = StreamDataset {
        shared: Arc::new(StreamShared {
            cache,
            samples: super::Samples::Pixels(spec.depth),
            channels,
            side: spec.size as i64,
        }),
        rows: Arc::new(rows),
        labels,
        names: kept.iter().map(|e| e.name.clone()).collect(),
        class_names: class_names.to_vec(),
        description: description.to_string(),
    };
    report.seconds = start.elapsed().as_secs_f64();
    Ok((ds, report, kept.iter().map(|e| e.split).collect()))
}

/// The cache file just written at `path`, opened for a stream, and the row of each image
/// (`hashes`, in the stream's order): an image missing from it, or a file that cannot be read
/// back, is a cache changed under the build.
fn open_written(
    path: &std::path::Path,
    spec: &ImageSpec,
    hashes: &[String],
) -> Result<(OpenCache, Vec<i64>)> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let meta = file.metadata().map_err(|e| DataError::io(path, e))?;
    let cache = CacheFile::open_as(path, spec, false).map_err(|why| DataError::CacheChanged {
        path: path.to_path_buf(),
        what: format!("unreadable right after it was written: {why}"),
    })?;
    let rows = hashes
        .iter()
        .map(|h| {
            cache.lookup.row(h).ok_or_else(|| DataError::CacheChanged {
                path: path.to_path_buf(),
                what: format!("image {h} is missing from it right after it was written"),
            })
        })
        .collect::<Result<Vec<i64>>>()?;
    let open = OpenCache {
        path: path.to_path_buf(),
        file,
        seen: (meta.len(), meta.modified().ok()),
        data_start: cache.rows_at().map_or(0, |(_, start)| start),
        set_file: false,
    };
    Ok((open, rows))
}

/// New pixels written to a temporary file as they are decoded (removed when dropped).
struct Spill {
    file: File,
    path: PathBuf,
    rows: u64,
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What a build found: the kept entries and their content hashes, the cache's new index, and
/// the new images (hash → spill row).
struct Built<'a> {
    kept: Vec<&'a Entry>,
    hashes: Vec<String>,
    index: HashMap<String, Stat>,
    fresh: HashMap<String, u64>,
    spill: Option<Spill>,
}

/// Fetches the entries a chunk at a time (in parallel within a chunk), spilling new pixels.
fn build<'a>(
    entries: &'a [Entry],
    old: &CacheFile,
    spec: &ImageSpec,
    opts: &LoadOptions,
    report: &mut LoadReport,
) -> Result<Built<'a>> {
    use std::io::Write;
    let mut b = Built {
        kept: Vec::with_capacity(entries.len()),
        hashes: Vec::with_capacity(entries.len()),
        index: old.lookup.index.clone(),
        fresh: HashMap::new(),
        spill: None,
    };
    let lookup = &old.lookup;
    for chunk in entries.chunks(CHUNK) {
        let results: Vec<Result<crate::load::Fetched>> = chunk
            .par_iter()
            .map(|e| fetch(e, spec, Some(lookup)))
            .collect();
        for (entry, result) in chunk.iter().zip(results) {
            let f = match result {
                Ok(f) => f,
                Err(error) if opts.on_bad_file == OnBadFile::Skip && error.is_per_file() => {
                    report.skipped.push(BadFile {
                        path: entry.path.clone(),
                        error,
                    });
                    continue;
                }
                Err(error) => return Err(error),
            };
            let stat = f
                .stat
                .ok_or_else(|| DataError::config("stream", "no content hash"))?;
            match f.pixels {
                Pixels::Cached(_) => report.from_cache += 1,
                Pixels::Fresh(px) => {
                    report.decoded += 1;
                    if !b.fresh.contains_key(&stat.hash) {
                        let spill = match &mut b.spill {
                            Some(s) => s,
                            None => b.spill.insert(new_spill(opts)?),
                        };
                        spill
                            .file
                            .write_all(&px)
                            .map_err(|e| DataError::io(&spill.path, e))?;
                        b.fresh.insert(stat.hash.clone(), spill.rows);
                        spill.rows += 1;
                    }
                }
            }
            b.hashes.push(stat.hash.clone());
            b.index.insert(index_key(entry), stat);
            b.kept.push(entry);
        }
    }
    if let Some(s) = &mut b.spill {
        s.file.flush().map_err(|e| DataError::io(&s.path, e))?;
    }
    Ok(b)
}

/// A spill file in the cache folder.
fn new_spill(opts: &LoadOptions) -> Result<Spill> {
    let dir = opts
        .cache_dir
        .as_ref()
        .ok_or_else(|| DataError::config("stream", "no cache folder"))?;
    let path = dir.join(format!(".spill-{}-{}.tmp", std::process::id(), unique()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| DataError::io(&path, e))?;
    Ok(Spill {
        file,
        path,
        rows: 0,
    })
}

/// A number unique within this process.
fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
