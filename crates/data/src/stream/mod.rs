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

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use tch::{Device, Kind, Tensor};

use crate::{Batch, BatchOrder, DataError, Result, TensorDataset};

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

    /// The images at `indices` made ready on a background thread: whatever needs no libtorch
    /// (file reads, random draws) is done here, so that the thread never competes with the
    /// training's own compute threads; [`Prepared::finish`], where the batch is used, does
    /// the rest (conversion to `f32`, augmentation). The default reads at once.
    fn prepare(&mut self, indices: &[i64]) -> Result<Prepared> {
        self.read(indices).map(Prepared::ready)
    }
}

/// Images read (or about to be) by [`ImageReader::prepare`]; [`finish`](Prepared::finish)
/// gives them.
pub struct Prepared(PreparedImages);

enum PreparedImages {
    Ready(Tensor),
    Deferred(Box<dyn FnOnce() -> Result<Tensor> + Send>),
}

impl Prepared {
    /// Images already read.
    pub fn ready(images: Tensor) -> Self {
        Prepared(PreparedImages::Ready(images))
    }

    /// Images `finish` will compute (on the thread that calls it).
    pub fn deferred(finish: impl FnOnce() -> Result<Tensor> + Send + 'static) -> Self {
        Prepared(PreparedImages::Deferred(Box::new(finish)))
    }

    /// The images, `[B, C, H, W]` `f32`.
    pub fn finish(self) -> Result<Tensor> {
        match self.0 {
            PreparedImages::Ready(t) => Ok(t),
            PreparedImages::Deferred(f) => f(),
        }
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            PreparedImages::Ready(_) => "Prepared(ready)",
            PreparedImages::Deferred(_) => "Prepared(deferred)",
        })
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
        index_rows(&self.0, indices)
    }

    fn prepare(&mut self, indices: &[i64]) -> Result<Prepared> {
        let (images, indices) = (self.0.shallow_clone(), indices.to_vec());
        Ok(Prepared::deferred(move || index_rows(&images, &indices)))
    }
}

fn index_rows(images: &Tensor, indices: &[i64]) -> Result<Tensor> {
    let idx = Tensor::f_from_slice(indices)?.f_to_device(images.device())?;
    Ok(images.f_index_select(0, &idx)?)
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

/// Positions `0..n` in consecutive runs of `size` (the last may be shorter): the batches of a
/// sequential pass.
pub fn sequential_batches(n: usize, size: usize) -> Vec<Vec<i64>> {
    let size = size.max(1);
    (0..n)
        .step_by(size)
        .map(|i| (i as i64..(i + size).min(n) as i64).collect())
        .collect()
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
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(Vec<i64>, Prepared)>>(prefetch);
        scope.spawn(move || {
            for indices in batches {
                let read = reader.prepare(&indices);
                let failed = read.is_err();
                // the loop stopped (an error of its own): nothing more to read
                if tx.send(read.map(|p| (indices, p))).is_err() || failed {
                    return;
                }
            }
        });
        for item in rx {
            let (indices, prepared) = item?;
            let images = prepared.finish().and_then(|t| {
                Ok(if pin && t.device() == Device::Cpu {
                    t.f_pin_memory(Device::Cpu)?
                } else {
                    t
                })
            });
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
    /// A set file (its errors name it as one), not the decode cache.
    set_file: bool,
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
    samples: Samples,
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
    /// The same stream (the file and rows shared, labels not copied).
    pub fn shallow_clone(&self) -> Self {
        StreamDataset {
            shared: self.shared.clone(),
            rows: self.rows.clone(),
            labels: self.labels.shallow_clone(),
            names: self.names.clone(),
            class_names: self.class_names.clone(),
            description: self.description.clone(),
        }
    }

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
            set_file: m.set_file,
            rows: self.rows.clone(),
            samples: self.shared.samples,
            channels: self.shared.channels,
            side: self.shared.side,
        }))
    }
}

/// BLAKE3 of what a model trained on `source` sees, computed a few images at a time (the
/// images as `f32`, row-major, the labels, the names and the class names): in memory or
/// streamed, the same images give the same string ([`TensorDataset::fingerprint`] is this).
pub fn fingerprint(source: &dyn ImageSource) -> Result<String> {
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

mod any;
mod build;
mod concat;
mod rows;
mod set_file;
mod switch;

pub use any::AnySource;
pub use build::{color_decision, stream_entries, StreamSplits};
pub use concat::ConcatSource;
pub(crate) use rows::Samples;
use rows::StreamReader;
pub use set_file::{open_set_file, write_set_file};
pub use switch::{available_memory, StreamDecision, Streaming};
