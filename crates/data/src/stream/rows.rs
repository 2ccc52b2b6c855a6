//! How a stream reads its rows: positioned reads of the stored bytes (no libtorch, so on any
//! thread), converted to `f32` where the batch is used; and the check that the file read is
//! still the one opened.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tch::{Device, Tensor};

use super::{ImageReader, OpenCache, Prepared};
use crate::load::bytes_to_images;
use crate::{DataError, Depth, Result};

/// How a stream's rows store their samples: as the decode cache does (`u8`/`u16`, converted as
/// an in-memory load converts) or as `f32` exactly (a set file of a program's images).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Samples {
    /// Decoded pixels of this depth.
    Pixels(Depth),
    /// Little-endian `f32`, the values themselves.
    F32,
}

impl Samples {
    /// Bytes per sample.
    pub(crate) fn bytes(self) -> usize {
        match self {
            Samples::Pixels(d) => d.bytes(),
            Samples::F32 => 4,
        }
    }
}

/// Images as a file stores them: `n` rows of `channels × side²` samples.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    bytes: Vec<u8>,
    n: usize,
    channels: i64,
    side: i64,
    samples: Samples,
}

impl Stored {
    /// `[n, C, side, side]` `f32` on the CPU: pixels converted as the in-memory load converts,
    /// `f32` samples as they are.
    fn to_images(&self) -> Result<Tensor> {
        let shape = [self.n as i64, self.channels, self.side, self.side];
        let depth = match self.samples {
            Samples::Pixels(d) => d,
            Samples::F32 => {
                let values: Vec<f32> = self
                    .bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                return Ok(Tensor::f_from_slice(&values)?.f_view(shape)?);
            }
        };
        let bytes = Tensor::f_from_slice(&self.bytes)?.f_view([
            shape[0],
            self.channels * depth.bytes() as i64,
            self.side,
            self.side,
        ])?;
        bytes_to_images(&bytes, depth, self.channels, self.side, Device::Cpu)
    }
}

/// Reads a stream's images on any thread: each image's row with one positioned read (the
/// pages read stay in the system's page cache, not in the process's memory).
pub(super) struct StreamReader {
    pub(super) file: File,
    pub(super) path: PathBuf,
    pub(super) seen: (u64, Option<std::time::SystemTime>),
    pub(super) data_start: u64,
    pub(super) rows: Arc<Vec<i64>>,
    pub(super) samples: Samples,
    pub(super) channels: i64,
    pub(super) side: i64,
    pub(super) set_file: bool,
}

impl ImageReader for StreamReader {
    fn read(&mut self, indices: &[i64]) -> Result<Tensor> {
        self.read_stored(indices)?.to_images()
    }

    fn prepare(&mut self, indices: &[i64]) -> Result<Prepared> {
        let stored = self.read_stored(indices)?;
        Ok(Prepared::deferred(move || stored.to_images()))
    }
}

impl StreamReader {
    /// The stored rows of the images at `indices`, read without libtorch.
    fn read_stored(&mut self, indices: &[i64]) -> Result<Stored> {
        use std::os::unix::fs::FileExt;
        OpenCache::check_file(&self.file, &self.path, self.seen, self.set_file)?;
        let n = self.rows.len() as i64;
        let row = (self.channels * self.side * self.side) as usize * self.samples.bytes();
        let mut bytes = vec![0u8; indices.len() * row];
        for (k, &i) in indices.iter().enumerate() {
            let r = (0..n)
                .contains(&i)
                .then(|| self.rows[i as usize])
                .ok_or_else(|| DataError::config("indices", format!("index {i} out of 0..{n}")))?;
            let at = self.data_start + r as u64 * row as u64;
            self.file
                .read_exact_at(&mut bytes[k * row..(k + 1) * row], at)
                .map_err(|e| {
                    changed(
                        &self.path,
                        self.set_file,
                        format!("reading image row {r}: {e}"),
                    )
                })?;
        }
        Ok(Stored {
            bytes,
            n: indices.len(),
            channels: self.channels,
            side: self.side,
            samples: self.samples,
        })
    }
}

impl OpenCache {
    /// An error naming the file when it changed since it was opened (rewritten in place: its
    /// rows could be garbage). A file replaced by a new one is not a change: the open file
    /// still holds the old one.
    pub(super) fn check_file(
        file: &File,
        path: &Path,
        seen: (u64, Option<std::time::SystemTime>),
        set_file: bool,
    ) -> Result<()> {
        let meta = file.metadata().map_err(|e| DataError::io(path, e))?;
        let now = (meta.len(), meta.modified().ok());
        if now != seen {
            let what = format!("{} bytes when opened, {} now", seen.0, now.0);
            return Err(changed(path, set_file, what));
        }
        Ok(())
    }
}

/// The error of a stream's file that changed (or cannot be read) under a running job.
fn changed(path: &Path, set_file: bool, what: String) -> DataError {
    let path = path.to_path_buf();
    if set_file {
        DataError::SetFile {
            path,
            reason: format!("changed under a running job ({what})"),
        }
    } else {
        DataError::CacheChanged { path, what }
    }
}
