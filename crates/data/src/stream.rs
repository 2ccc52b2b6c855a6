//! Datasets larger than memory: images read batch by batch from the memory-mapped decode cache,
//! kept there as stored (`u8`/`u16`) and converted to `f32` per batch with the same operations
//! as an in-memory load, so a streamed batch holds exactly the values the in-memory one does.
//!
//! [`ImageSource`] is what a training or measuring loop takes: a [`TensorDataset`] (in memory)
//! or a [`StreamDataset`] (on disk), one switch. [`for_each_batch`] walks a source in the same
//! seeded order as [`TensorDataset::batches`], reading the next batches on a background thread
//! (on CUDA into pinned host memory, copied without blocking).
//!
//! Building a stream decodes whatever the cache lacks a chunk at a time, spilling the new
//! pixels to disk and writing the new cache file one image at a time: memory stays bounded by
//! a chunk, however many images the folder holds.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

use crate::cache::{self, CacheFile, RowFrom, Stat};
use crate::load::{bytes_to_images, fetch, index_key, Pixels};
use crate::{
    BadFile, Batch, BatchOrder, ColorDecision, ColorMode, DataError, Depth, Entry, ImageFolder,
    ImageSpec, LoadOptions, LoadReport, OnBadFile, Result, Split, TensorDataset,
};

/// Entries decoded at once while building a stream (their pixels are the memory a build holds).
const CHUNK: usize = 256;

/// Images read for the colour decision and the fingerprint at once.
const READ_CHUNK: usize = 64;

/// A labelled image set a loop can read batch by batch: in memory or streamed from disk.
pub trait ImageSource {
    /// Number of images.
    fn len(&self) -> usize;
    /// Whether there are no images.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Labels `[N]`, `i64`.
    fn labels(&self) -> &Tensor;
    /// One name per image.
    fn names(&self) -> &[String];
    /// Class names in label order.
    fn class_names(&self) -> &[String];
    /// Channels: 1 (gray) or 3 (RGB).
    fn channels(&self) -> i64;
    /// Side `(H, W)` of the images.
    fn image_size(&self) -> (i64, i64);
    /// Where the images come from, in words.
    fn description(&self) -> &str;
    /// A reader of images by position, movable to another thread.
    fn reader(&self) -> Result<Box<dyn ImageReader>>;
    /// The dataset itself when it is in memory (loops then index it directly).
    fn in_memory(&self) -> Option<&TensorDataset> {
        None
    }
}

/// Reads images of an [`ImageSource`] by position.
pub trait ImageReader: Send {
    /// The images at `indices` (in that order), `[B, C, H, W]` `f32` in [0, 1]: a stream's on
    /// the CPU, an in-memory dataset's on its device.
    fn read(&mut self, indices: &[i64]) -> Result<Tensor>;

    /// The stored pixels of the images at `indices`, read without libtorch: what a background
    /// thread does, so that it never competes with the training's own compute threads (the
    /// conversion to `f32` happens where the batch is used). `None` for a reader whose images
    /// are already tensors.
    fn read_stored(&mut self, _indices: &[i64]) -> Result<Option<Stored>> {
        Ok(None)
    }
}

/// Images as the cache stores them: `n` rows of `channels × side²` samples of `depth`.
#[derive(Debug, Clone)]
pub struct Stored {
    bytes: Vec<u8>,
    n: usize,
    channels: i64,
    side: i64,
    depth: Depth,
}

impl Stored {
    /// `[n, C, side, side]` `f32` in [0, 1] on the CPU, converted as the in-memory load
    /// converts.
    pub fn to_images(&self) -> Result<Tensor> {
        let bytes = Tensor::f_from_slice(&self.bytes)?.f_view([
            self.n as i64,
            self.channels * self.depth.bytes() as i64,
            self.side,
            self.side,
        ])?;
        bytes_to_images(&bytes, self.depth, self.channels, self.side, Device::Cpu)
    }
}

impl ImageSource for TensorDataset {
    fn len(&self) -> usize {
        TensorDataset::len(self)
    }
    fn labels(&self) -> &Tensor {
        &self.labels
    }
    fn names(&self) -> &[String] {
        &self.names
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn channels(&self) -> i64 {
        TensorDataset::channels(self)
    }
    fn image_size(&self) -> (i64, i64) {
        TensorDataset::image_size(self)
    }
    fn description(&self) -> &str {
        &self.description
    }
    fn reader(&self) -> Result<Box<dyn ImageReader>> {
        Ok(Box::new(MemoryReader(self.images.shallow_clone())))
    }
    fn in_memory(&self) -> Option<&TensorDataset> {
        Some(self)
    }
}

struct MemoryReader(Tensor);

impl ImageReader for MemoryReader {
    fn read(&mut self, indices: &[i64]) -> Result<Tensor> {
        let idx = Tensor::f_from_slice(indices)?.f_to_device(self.0.device())?;
        Ok(self.0.f_index_select(0, &idx)?)
    }
}

/// Images per class of a source (labels outside the classes are not counted).
pub fn class_counts(source: &dyn ImageSource) -> Result<Vec<usize>> {
    let mut counts = vec![0; source.class_names().len()];
    for l in Vec::<i64>::try_from(&source.labels().f_to_device(Device::Cpu)?)? {
        if let Some(c) = usize::try_from(l).ok().and_then(|l| counts.get_mut(l)) {
            *c += 1;
        }
    }
    Ok(counts)
}

/// The positions of `n` images in batch order: dataset order, or the permutation
/// [`TensorDataset::batches`] draws from the seed.
pub fn batch_order(n: usize, order: BatchOrder) -> Vec<i64> {
    let mut perm: Vec<i64> = (0..n as i64).collect();
    if let BatchOrder::Shuffled { seed } = order {
        perm.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    }
    perm
}

/// How [`for_each_batch`] walks a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPlan {
    /// Images per batch (the last may be smaller unless `drop_last`).
    pub batch_size: usize,
    /// Dataset order or a seeded permutation.
    pub order: BatchOrder,
    /// Leave out a last, smaller batch.
    pub drop_last: bool,
    /// Where the batches go.
    pub device: Device,
    /// Batches read ahead on a background thread (0: read in the loop). In-memory sources are
    /// always read in the loop.
    pub prefetch: usize,
}

impl BatchPlan {
    /// Batches of `batch_size` in `order` on `device`, two read ahead.
    pub fn new(batch_size: usize, order: BatchOrder, device: Device) -> Self {
        BatchPlan {
            batch_size,
            order,
            drop_last: false,
            device,
            prefetch: 2,
        }
    }
}

/// Calls `f` with every batch of `source` as `plan` says — the same images in the same order
/// for a [`TensorDataset`] and for a [`StreamDataset`] of the same data. A stream's next
/// batches are read on a background thread while `f` works (on CUDA into pinned memory, copied
/// without blocking). The first error, `f`'s or a read's, stops the walk and is returned.
pub fn for_each_batch<E: From<DataError>>(
    source: &dyn ImageSource,
    plan: BatchPlan,
    mut f: impl FnMut(Batch) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    if plan.batch_size == 0 {
        return Err(DataError::config("batch_size", "must be positive").into());
    }
    let perm = batch_order(source.len(), plan.order);
    let chunks: Vec<Vec<i64>> = perm
        .chunks(plan.batch_size)
        .filter(|c| !(plan.drop_last && c.len() < plan.batch_size))
        .map(<[i64]>::to_vec)
        .collect();
    let labels = source.labels().shallow_clone();
    read_batches(
        source,
        chunks,
        plan.device,
        plan.prefetch,
        |indices, images| {
            let labels = Tensor::f_from_slice(&indices)
                .and_then(|idx| labels.f_index_select(0, &idx.f_to_device(labels.device())?))
                .and_then(|l| l.f_to_device(plan.device))
                .map_err(DataError::from)?;
            f(Batch {
                images,
                labels,
                indices,
            })
        },
    )
}

/// Calls `f` with the images of each list of positions in `batches`, in order, on `device`: a
/// stream's read ahead on a background thread (`prefetch` batches; on CUDA into pinned
/// memory, copied without blocking), an in-memory source's indexed in the loop.
pub fn read_batches<E: From<DataError>>(
    source: &dyn ImageSource,
    batches: Vec<Vec<i64>>,
    device: Device,
    prefetch: usize,
    mut f: impl FnMut(Vec<i64>, Tensor) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let mut reader = source.reader()?;
    if prefetch == 0 || source.in_memory().is_some() {
        for indices in batches {
            let images = reader.read(&indices).and_then(|t| to_device(t, device))?;
            f(indices, images)?;
        }
        return Ok(());
    }
    let pin = device.is_cuda();
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(Vec<i64>, Stored)>>(prefetch);
        scope.spawn(move || {
            for indices in batches {
                let read = reader.read_stored(&indices).and_then(|s| {
                    s.ok_or_else(|| DataError::config("stream", "a reader without stored rows"))
                });
                let failed = read.is_err();
                // the loop stopped (an error of its own): nothing more to read
                if tx.send(read.map(|s| (indices, s))).is_err() || failed {
                    return;
                }
            }
        });
        for item in rx {
            let (indices, stored) = item?;
            let images = stored
                .to_images()
                .and_then(|t| Ok(if pin { t.f_pin_memory(Device::Cpu)? } else { t }));
            f(indices, to_device(images?, device)?)?;
        }
        Ok(())
    })
}

/// `t` on `device`; a pinned CPU tensor is copied to CUDA without blocking.
fn to_device(t: Tensor, device: Device) -> Result<Tensor> {
    if t.device() == device {
        return Ok(t);
    }
    Ok(t.f_to_device_(device, t.kind(), device.is_cuda(), false)?)
}

/// The cache file a stream reads, with what identifies the file it opened.
struct OpenCache {
    path: PathBuf,
    /// The file, kept open: its size and modification time are checked before reads, and a
    /// cache replaced by a new file leaves this one readable.
    file: File,
    seen: (u64, Option<std::time::SystemTime>),
    /// Where the pixels start.
    data_start: u64,
}

/// Images streamed from the decode cache: each batch read from the file and converted to
/// `f32` on the way. Labels and names are in memory (small); pixels are not.
pub struct StreamDataset {
    shared: Arc<StreamShared>,
    /// The cache row of each image.
    rows: Arc<Vec<i64>>,
    labels: Tensor,
    names: Vec<String>,
    class_names: Vec<String>,
    description: String,
}

/// What every stream of one cache file shares.
struct StreamShared {
    cache: OpenCache,
    depth: Depth,
    channels: i64,
    side: i64,
}

impl std::fmt::Debug for StreamDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamDataset")
            .field("images", &self.rows.len())
            .field("channels", &self.shared.channels)
            .field("side", &self.shared.side)
            .field("description", &self.description)
            .finish()
    }
}

impl StreamDataset {
    /// The images at `indices` (in that order), still streamed.
    pub fn subset(&self, indices: &[i64]) -> Result<Self> {
        let n = self.rows.len() as i64;
        if let Some(bad) = indices.iter().find(|&&i| i < 0 || i >= n) {
            return Err(DataError::config(
                "indices",
                format!("index {bad} out of 0..{n}"),
            ));
        }
        let idx = Tensor::f_from_slice(indices)?;
        Ok(StreamDataset {
            shared: self.shared.clone(),
            rows: Arc::new(indices.iter().map(|&i| self.rows[i as usize]).collect()),
            labels: self.labels.f_index_select(0, &idx)?,
            names: indices
                .iter()
                .map(|&i| self.names[i as usize].clone())
                .collect(),
            class_names: self.class_names.clone(),
            description: self.description.clone(),
        })
    }

    /// The images of one class, still streamed.
    pub fn class_subset(&self, label: i64) -> Result<Self> {
        let labels = Vec::<i64>::try_from(&self.labels)?;
        let idx: Vec<i64> = (0..labels.len() as i64)
            .filter(|&i| labels[i as usize] == label)
            .collect();
        self.subset(&idx)
    }

    /// Every image in memory, as the in-memory load would have given them.
    pub fn to_memory(&self, device: Device) -> Result<TensorDataset> {
        let all: Vec<i64> = (0..self.rows.len() as i64).collect();
        let images = self.reader()?.read(&all)?.f_to_device(device)?;
        TensorDataset::new(
            images,
            self.labels.f_to_device(device)?,
            self.names.clone(),
            self.class_names.clone(),
            self.description.clone(),
        )
    }
}

impl ImageSource for StreamDataset {
    fn len(&self) -> usize {
        self.rows.len()
    }
    fn labels(&self) -> &Tensor {
        &self.labels
    }
    fn names(&self) -> &[String] {
        &self.names
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn channels(&self) -> i64 {
        self.shared.channels
    }
    fn image_size(&self) -> (i64, i64) {
        (self.shared.side, self.shared.side)
    }
    fn description(&self) -> &str {
        &self.description
    }
    fn reader(&self) -> Result<Box<dyn ImageReader>> {
        let m = &self.shared.cache;
        Ok(Box::new(StreamReader {
            file: m.file.try_clone().map_err(|e| DataError::io(&m.path, e))?,
            path: m.path.clone(),
            seen: m.seen,
            data_start: m.data_start,
            rows: self.rows.clone(),
            depth: self.shared.depth,
            channels: self.shared.channels,
            side: self.shared.side,
        }))
    }
}

/// Reads a stream's images on any thread: each image's row with one positioned read (the
/// pages read stay in the system's page cache, not in the process's memory).
struct StreamReader {
    file: File,
    path: PathBuf,
    seen: (u64, Option<std::time::SystemTime>),
    data_start: u64,
    rows: Arc<Vec<i64>>,
    depth: Depth,
    channels: i64,
    side: i64,
}

impl ImageReader for StreamReader {
    fn read(&mut self, indices: &[i64]) -> Result<Tensor> {
        match self.read_stored(indices)? {
            Some(stored) => stored.to_images(),
            None => Err(DataError::config("stream", "a reader without stored rows")),
        }
    }

    fn read_stored(&mut self, indices: &[i64]) -> Result<Option<Stored>> {
        use std::os::unix::fs::FileExt;
        OpenCache::check_file(&self.file, &self.path, self.seen)?;
        let n = self.rows.len() as i64;
        let row = (self.channels * self.side * self.side) as usize * self.depth.bytes();
        let mut bytes = vec![0u8; indices.len() * row];
        for (k, &i) in indices.iter().enumerate() {
            let r = (0..n)
                .contains(&i)
                .then(|| self.rows[i as usize])
                .ok_or_else(|| DataError::config("indices", format!("index {i} out of 0..{n}")))?;
            let at = self.data_start + r as u64 * row as u64;
            self.file
                .read_exact_at(&mut bytes[k * row..(k + 1) * row], at)
                .map_err(|e| DataError::CacheChanged {
                    path: self.path.clone(),
                    what: format!("reading image row {r}: {e}"),
                })?;
        }
        Ok(Some(Stored {
            bytes,
            n: indices.len(),
            channels: self.channels,
            side: self.side,
            depth: self.depth,
        }))
    }
}

impl OpenCache {
    /// An error naming the file when it changed since it was mapped (rewritten in place: its
    /// rows could be garbage). A cache replaced by a new file is not a change: the mapping
    /// still holds the old file.
    fn check_file(
        file: &File,
        path: &Path,
        seen: (u64, Option<std::time::SystemTime>),
    ) -> Result<()> {
        let meta = file.metadata().map_err(|e| DataError::io(path, e))?;
        let now = (meta.len(), meta.modified().ok());
        if now != seen {
            return Err(DataError::CacheChanged {
                path: path.to_path_buf(),
                what: format!("{} bytes when opened, {} now", seen.0, now.0),
            });
        }
        Ok(())
    }
}

/// BLAKE3 of what a model trained on `source` sees, computed a few images at a time: the same
/// string as [`TensorDataset::fingerprint`] for the same images, labels and names.
pub fn fingerprint(source: &dyn ImageSource) -> Result<String> {
    if let Some(d) = source.in_memory() {
        return d.fingerprint();
    }
    let (h_, w_) = source.image_size();
    let n = source.len() as i64;
    let mut h = blake3::Hasher::new();
    h.update(format!("{:?}", [n, source.channels(), h_, w_]).as_bytes());
    let mut reader = source.reader()?;
    let mut i = 0;
    while i < n {
        let rows = (n - i).min(READ_CHUNK as i64);
        let idx: Vec<i64> = (i..i + rows).collect();
        let chunk = reader
            .read(&idx)?
            .f_to_device(Device::Cpu)?
            .f_to_kind(Kind::Float)?
            .f_contiguous()?;
        let numel = chunk.numel();
        let mut bytes = vec![0u8; numel * 4];
        chunk.f_copy_data_u8(&mut bytes, numel)?;
        h.update(&bytes);
        i += rows;
    }
    let labels = Vec::<i64>::try_from(&source.labels().f_to_device(Device::Cpu)?)?;
    for l in labels {
        h.update(&l.to_le_bytes());
    }
    for n in source.names().iter().chain(source.class_names()) {
        h.update(&(n.len() as u64).to_le_bytes());
        h.update(n.as_bytes());
    }
    Ok(h.finalize().to_hex().to_string())
}

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
        let mut seen = std::collections::HashSet::new();
        let paths: Vec<&Path> = entries
            .iter()
            .map(|e| e.path.as_path())
            .filter(|p| seen.insert(*p))
            .collect();
        let decision = crate::decode16::decide_depth(&paths)?;
        let decided = LoadOptions {
            spec: opts.spec.with_depth(decision.depth),
            ..opts.clone()
        };
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
    let file = File::open(&path).map_err(|e| DataError::io(&path, e))?;
    let meta = file.metadata().map_err(|e| DataError::io(&path, e))?;
    let cache = CacheFile::open_as(&path, spec, false).map_err(|why| DataError::CacheChanged {
        path: path.clone(),
        what: format!("unreadable right after it was written: {why}"),
    })?;
    let rows = built
        .hashes
        .iter()
        .map(|h| {
            cache.lookup.row(h).ok_or_else(|| DataError::CacheChanged {
                path: path.clone(),
                what: format!("image {h} is missing from it right after it was written"),
            })
        })
        .collect::<Result<Vec<i64>>>()?;
    let kept = &built.kept;
    let labels = Tensor::f_from_slice(&kept.iter().map(|e| e.label).collect::<Vec<_>>())?;
    let channels = spec.color.channels().unwrap_or(1);
    let cache = OpenCache {
        path: path.clone(),
        file,
        seen: (meta.len(), meta.modified().ok()),
        data_start: cache.rows_at().map_or(0, |(_, start)| start),
    };
    let ds = StreamDataset {
        shared: Arc::new(StreamShared {
            cache,
            depth: spec.depth,
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

/// Whether a dataset is read into memory or streamed from the decode cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Streaming {
    /// Always streamed.
    On,
    /// Always in memory.
    Off,
    /// Streamed when its `f32` images would take more than [`Streaming::AUTO_SHARE`] of the
    /// memory available when the decision is made.
    #[default]
    Auto,
}

impl Streaming {
    /// The share of available memory above which [`Streaming::Auto`] streams: the images are
    /// not the only thing a run holds (models, features, the page cache of the files).
    pub const AUTO_SHARE: f64 = 0.4;

    /// Parses `on`, `off` or `auto`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "on" => Ok(Streaming::On),
            "off" => Ok(Streaming::Off),
            "auto" => Ok(Streaming::Auto),
            other => Err(DataError::config(
                "stream",
                format!("{other:?}: expected on, off or auto"),
            )),
        }
    }

    /// Decides for `images` images of `channels` × `side`² (all splits together).
    pub fn decide(self, images: usize, channels: i64, side: u32) -> StreamDecision {
        let bytes = images as u64 * channels.max(1) as u64 * u64::from(side).pow(2) * 4;
        let available = available_memory();
        let stream = match self {
            Streaming::On => true,
            Streaming::Off => false,
            Streaming::Auto => {
                available.is_some_and(|a| bytes as f64 > Self::AUTO_SHARE * a as f64)
            }
        };
        StreamDecision {
            mode: self,
            stream,
            bytes,
            available,
        }
    }
}

/// What [`Streaming::decide`] decided, and from what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamDecision {
    /// What was asked.
    pub mode: Streaming,
    /// Whether to stream.
    pub stream: bool,
    /// The images' size as `f32`.
    pub bytes: u64,
    /// Memory available when it was decided (`None` when it cannot be read).
    pub available: Option<u64>,
}

impl std::fmt::Display for StreamDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gb = |b: u64| b as f64 / 1e9;
        let how = if self.stream {
            "streamed from the decode cache"
        } else {
            "in memory"
        };
        write!(f, "images {how} ({:.2} GB as f32", gb(self.bytes))?;
        match (self.mode, self.available) {
            (Streaming::Auto, Some(a)) => write!(
                f,
                "; {:.1} GB available, streaming above {:.0}% of it: --stream auto)",
                gb(a),
                Streaming::AUTO_SHARE * 100.0
            ),
            (Streaming::Auto, None) => write!(f, "; available memory unknown: --stream auto)"),
            (mode, _) => write!(
                f,
                "; --stream {})",
                if mode == Streaming::On { "on" } else { "off" }
            ),
        }
    }
}

/// Memory available to new allocations now (`None` where the system cannot say).
pub fn available_memory() -> Option<u64> {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    Some(sys.available_memory()).filter(|&a| a > 0)
}
