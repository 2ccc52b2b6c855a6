//! On-disk cache of decoded, resized images.
//!
//! One safetensors file per [`ImageSpec`]: each tensor is one image's `u8` pixels, named by the
//! BLAKE3 hash of the source file's bytes, so a changed file simply misses. A stat index (path,
//! size, modification time → hash) in the file's metadata avoids re-reading and re-hashing
//! unchanged files, as git's index does; a changed size or time makes the file be hashed again.
//! A cache that cannot be read is ignored (and rewritten), never an error. Reads memory-map the
//! file through libtorch, so a warm cached load copies each byte only into its output tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use std::io::Read;

use safetensors::{tensor::Metadata, Dtype};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::{DataError, ImageSpec, Result};

/// Bumped whenever decoding or resizing changes what a cached image holds (2: colour images,
/// the spec's colour mode in the key).
const CACHE_VERSION: u32 = 2;

/// The shape of one cached image: `[size, size]` gray, `[3, size, size]` RGB (planar).
fn row_shape(spec: &ImageSpec) -> Vec<usize> {
    let side = spec.size as usize;
    match spec.color.channels() {
        Some(3) => vec![3, side, side],
        _ => vec![side, side],
    }
}

/// Bytes of one cached image (16-bit samples little-endian, as safetensors stores them).
pub(crate) fn row_bytes(spec: &ImageSpec) -> usize {
    row_shape(spec).iter().product::<usize>() * spec.depth.bytes()
}

/// The safetensors dtype of the cached samples.
fn dtype(spec: &ImageSpec) -> Dtype {
    match spec.depth {
        crate::Depth::Sixteen => Dtype::U16,
        _ => Dtype::U8,
    }
}

/// The default cache folder: `$GANAUG_CACHE_DIR`, else `$XDG_CACHE_HOME/ganaug`, else
/// `~/.cache/ganaug`; `None` if none of them can be determined.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("GANAUG_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|p| p.join("ganaug")))
        .or_else(|| var("HOME").map(|p| p.join(".cache").join("ganaug")))
}

/// What the stat index remembers about one source file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stat {
    pub size: u64,
    pub mtime_ns: i128,
    pub hash: String,
}

impl Stat {
    pub(crate) fn same_file(&self, size: u64, mtime_ns: i128) -> bool {
        self.size == size && self.mtime_ns == mtime_ns
    }
}

/// A safetensors file's header: its length and what it says.
pub(crate) fn read_header(
    file: &mut std::fs::File,
    file_len: u64,
) -> std::result::Result<(u64, Metadata), String> {
    let mut len8 = [0u8; 8];
    file.read_exact(&mut len8).map_err(|e| e.to_string())?;
    let header_len = u64::from_le_bytes(len8);
    if header_len > 256 << 20 || 8 + header_len > file_len {
        return Err(format!("bad header length {header_len}"));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(|e| e.to_string())?;
    let meta: Metadata = serde_json::from_slice(&header).map_err(|e| e.to_string())?;
    Ok((header_len, meta))
}

/// Each cached image's row, by name: every tensor must be one whole image of `spec` inside the
/// `data_len` bytes of pixels.
fn row_positions(
    meta: &Metadata,
    spec: &ImageSpec,
    data_len: usize,
) -> std::result::Result<HashMap<String, i64>, String> {
    let image_bytes = row_bytes(spec);
    let mut rows = HashMap::new();
    for (name, t) in meta.tensors() {
        let (begin, end) = t.data_offsets;
        if t.dtype != dtype(spec)
            || end - begin != image_bytes
            || begin % image_bytes != 0
            || end > data_len
        {
            return Err(format!(
                "tensor {name} is not a {:?} {:?} image",
                row_shape(spec),
                dtype(spec)
            ));
        }
        rows.insert(name, (begin / image_bytes) as i64);
    }
    Ok(rows)
}

/// Reads a file's size and modification time in nanoseconds.
pub(crate) fn stat(path: &Path) -> Result<(u64, i128)> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(-1, |d| d.as_nanos() as i128);
    Ok((meta.len(), mtime_ns))
}

/// The content key of a file's bytes.
pub(crate) fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The cache file for `spec` in `dir`.
pub(crate) fn cache_path(dir: &Path, spec: &ImageSpec) -> PathBuf {
    let key = serde_json::json!({ "version": CACHE_VERSION, "spec": spec }).to_string();
    let short = &blake3::hash(key.as_bytes()).to_hex()[..16];
    dir.join(format!("images-{}px-{short}.safetensors", spec.size))
}

/// A cache file opened for reading: the stat index, and the pixels memory-mapped as one
/// `[K, C*size*size]` u8 tensor (no read copy; the rows a load needs are gathered by libtorch).
pub(crate) struct CacheFile {
    /// What is known about files and rows (shareable across decoding threads).
    pub lookup: Lookup,
    data: Option<Tensor>,
    /// Where the pixels start in the file, and the file (`None` for an empty cache).
    rows_at: Option<(PathBuf, u64)>,
}

/// The cache's stat index and the row of each content hash.
pub(crate) struct Lookup {
    pub index: HashMap<String, Stat>,
    rows: HashMap<String, i64>,
    /// When the cache file was written (ns since the epoch).
    written_ns: i128,
}

/// Files modified this close to the cache's writing are re-hashed, not trusted by their stat
/// ("racily clean" in git's words: a same-size rewrite within the clock's granularity).
const RACY_NS: i128 = 2_000_000_000;

impl Lookup {
    /// The known content hash of a file whose size and modification time are unchanged.
    pub(crate) fn known_hash(&self, path: &str, size: u64, mtime_ns: i128) -> Option<&Stat> {
        self.index
            .get(path)
            .filter(|s| s.same_file(size, mtime_ns) && mtime_ns < self.written_ns - RACY_NS)
    }

    /// The row of the cached image with this content hash.
    pub(crate) fn row(&self, hash: &str) -> Option<i64> {
        self.rows.get(hash).copied()
    }
}

impl CacheFile {
    /// An empty cache.
    pub(crate) fn empty() -> Self {
        CacheFile {
            lookup: Lookup {
                index: HashMap::new(),
                rows: HashMap::new(),
                written_ns: 0,
            },
            data: None,
            rows_at: None,
        }
    }

    /// Opens the cache file; a missing file is an empty cache. `Err` says why an existing file
    /// is unusable (the caller then starts afresh).
    pub(crate) fn open(path: &Path, spec: &ImageSpec) -> std::result::Result<Self, String> {
        Self::open_as(path, spec, true)
    }

    /// [`CacheFile::open`]; with `map` false the pixels are not memory-mapped (a stream reads
    /// its rows with positioned reads: pages it read do not stay in its resident memory).
    pub(crate) fn open_as(
        path: &Path,
        spec: &ImageSpec,
        map: bool,
    ) -> std::result::Result<Self, String> {
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::empty()),
            Err(e) => return Err(e.to_string()),
        };
        let file_len = file.metadata().map_err(|e| e.to_string())?.len();
        let (_, written_ns) = stat(path).map_err(|e| e.to_string())?;
        let (header_len, meta) = read_header(&mut file, file_len)?;
        let info = meta.metadata().as_ref().ok_or("no metadata")?;
        if info.get("ganaug_cache") != Some(&CACHE_VERSION.to_string()) {
            return Err("written by another version".into());
        }
        let index: HashMap<String, Stat> =
            serde_json::from_str(info.get("index").ok_or("no index")?)
                .map_err(|e| e.to_string())?;
        let image_bytes = row_bytes(spec);
        let data_len = (file_len - 8 - header_len) as usize;
        if data_len % image_bytes != 0 {
            return Err("data is not a whole number of images".into());
        }
        let k = data_len / image_bytes;
        let rows = row_positions(&meta, spec, data_len)?;
        let rows_at = Some((path.to_path_buf(), 8 + header_len));
        if k == 0 || !map {
            return Ok(CacheFile {
                lookup: Lookup {
                    index,
                    rows,
                    written_ns,
                },
                data: None,
                rows_at: rows_at.filter(|_| k > 0),
            });
        }
        let path_str = path.to_str().ok_or("cache path is not UTF-8")?;
        // Not shared: a private read-only mapping, the file is never written through it.
        let data = Tensor::f_from_file(
            path_str,
            false,
            Some(file_len as i64),
            (Kind::Uint8, Device::Cpu),
        )
        .and_then(|t| t.f_narrow(0, 8 + header_len as i64, data_len as i64))
        .and_then(|t| t.f_view([k as i64, image_bytes as i64]))
        .map_err(|e| e.to_string())?;
        Ok(CacheFile {
            lookup: Lookup {
                index,
                rows,
                written_ns,
            },
            data: Some(data),
            rows_at,
        })
    }

    /// The file and the offset its pixels start at (`None` for an empty cache).
    pub(crate) fn rows_at(&self) -> Option<(&Path, u64)> {
        self.rows_at.as_ref().map(|(p, o)| (p.as_path(), *o))
    }

    /// The cached images at `rows`, as a `[rows.len(), C*size*size]` u8 tensor.
    pub(crate) fn gather(&self, rows: &[i64]) -> Result<Tensor> {
        match &self.data {
            Some(data) => Ok(data.f_index_select(0, &Tensor::f_from_slice(rows)?)?),
            None => Err(DataError::config("cache", "no cached images to gather")),
        }
    }
}

/// Where a row of a cache being written comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RowFrom<'a> {
    /// A row of the old cache file (memory-mapped).
    Old(i64),
    /// Pixels in memory.
    Memory(&'a [u8]),
    /// Row `k` of a spill file (rows of the cache's row size, written as they were decoded).
    Spill(u64),
}

/// One row of a cache being written, read only when the serialiser reaches it: a cache larger
/// than memory is written holding one image at a time.
struct LazyRow<'a> {
    from: RowFrom<'a>,
    /// The old cache file and where its pixels start.
    old: Option<(&'a std::fs::File, u64)>,
    spill: Option<&'a std::fs::File>,
    shape: &'a [usize],
    dtype: Dtype,
    bytes: usize,
}

impl safetensors::View for LazyRow<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        self.shape
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        use std::os::unix::fs::FileExt;
        // The serialiser cannot take an error here: a row that cannot be read is written as
        // zeros and the write is failed afterwards by `check_rows`.
        let read = || -> Option<Vec<u8>> {
            match self.from {
                RowFrom::Memory(_) => None,
                RowFrom::Old(r) => {
                    let (file, start) = self.old?;
                    let mut buf = vec![0u8; self.bytes];
                    let at = start + u64::try_from(r).ok()? * self.bytes as u64;
                    file.read_exact_at(&mut buf, at).ok()?;
                    Some(buf)
                }
                RowFrom::Spill(k) => {
                    let mut buf = vec![0u8; self.bytes];
                    self.spill?
                        .read_exact_at(&mut buf, k * self.bytes as u64)
                        .ok()?;
                    Some(buf)
                }
            }
        };
        if let RowFrom::Memory(b) = self.from {
            return std::borrow::Cow::Borrowed(b);
        }
        std::borrow::Cow::Owned(read().unwrap_or_else(|| vec![0u8; self.bytes]))
    }

    fn data_len(&self) -> usize {
        self.bytes
    }
}

/// Whether every spilled and old row can be read (checked before writing: the serialiser
/// itself has no way to report a failed read).
fn check_rows(
    rows: &[(&str, RowFrom<'_>)],
    old: &CacheFile,
    spill: Option<&std::fs::File>,
    bytes: usize,
) -> Result<()> {
    let spill_rows = rows
        .iter()
        .filter_map(|(_, r)| match r {
            RowFrom::Spill(k) => Some(*k + 1),
            _ => None,
        })
        .max();
    if let Some(need) = spill_rows {
        let have = spill
            .ok_or_else(|| DataError::config("cache", "spilled rows without a spill file"))?
            .metadata()
            .map_err(|e| DataError::config("cache", format!("the spill file: {e}")))?
            .len();
        if have < need * bytes as u64 {
            return Err(DataError::config(
                "cache",
                "the spill file is shorter than its rows",
            ));
        }
    }
    if rows.iter().any(|(_, r)| matches!(r, RowFrom::Old(_))) && old.rows_at.is_none() {
        return Err(DataError::config("cache", "old rows without an old cache"));
    }
    Ok(())
}

/// Writes the cache atomically: every image still referenced by the index, kept from the old
/// file or new (`fresh`: content hash → where its pixels are), streamed to disk one image at a
/// time.
pub(crate) fn write(
    path: &Path,
    old: &CacheFile,
    index: &HashMap<String, Stat>,
    fresh: &HashMap<String, RowFrom<'_>>,
    spill: Option<&std::fs::File>,
    spec: &ImageSpec,
) -> Result<()> {
    let bytes = row_bytes(spec);
    let shape = row_shape(spec);
    let mut rows: Vec<(&str, RowFrom<'_>)> = index
        .values()
        .filter(|s| !fresh.contains_key(&s.hash))
        .filter_map(|s| {
            old.lookup
                .row(&s.hash)
                .map(|r| (s.hash.as_str(), RowFrom::Old(r)))
        })
        .collect();
    rows.extend(fresh.iter().map(|(h, r)| (h.as_str(), *r)));
    // one entry per content hash (two files with the same bytes share a row)
    rows.sort_by(|a, b| a.0.cmp(b.0));
    rows.dedup_by(|a, b| a.0 == b.0);
    check_rows(&rows, old, spill, bytes)?;
    // the old rows are read from the old file as they are written (not through a mapping:
    // a rewrite of a cache larger than memory holds one image at a time)
    let old_file = match old.rows_at() {
        Some((p, start)) => Some((
            std::fs::File::open(p).map_err(|e| DataError::io(p, e))?,
            start,
        )),
        None => None,
    };
    let index_json =
        serde_json::to_string(index).map_err(|e| DataError::config("cache", e.to_string()))?;
    let meta = HashMap::from([
        ("ganaug_cache".to_string(), CACHE_VERSION.to_string()),
        ("spec".to_string(), serde_json::json!(spec).to_string()),
        ("index".to_string(), index_json),
    ]);
    let views = rows.iter().map(|(h, from)| {
        let row = LazyRow {
            from: *from,
            old: old_file.as_ref().map(|(f, start)| (f, *start)),
            spill,
            shape: &shape,
            dtype: dtype(spec),
            bytes,
        };
        (h.to_string(), row)
    });
    crate::io::write_atomic_with(path, |tmp| {
        safetensors::serialize_to_file(views, &Some(meta), tmp)
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
}
