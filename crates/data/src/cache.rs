//! On-disk cache of decoded, resized images.
//!
//! One safetensors file per [`ImageSpec`]: each tensor is one image's `u8` pixels, named by the
//! BLAKE3 hash of the source file's bytes, so a changed file simply misses. A stat index (path,
//! size, modification time → hash) in the file's metadata avoids re-reading and re-hashing
//! unchanged files, as git's index does; a changed size or time makes the file be hashed again.
//! A cache that cannot be read is ignored (and rewritten), never an error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::{DataError, ImageSpec, Result};

/// Bumped whenever decoding or resizing changes what a cached image holds.
const CACHE_VERSION: u32 = 1;

/// The default cache folder: `$GANAUG_CACHE_DIR`, else `$XDG_CACHE_HOME/ganaug`, else
/// `~/.cache/ganaug`; `None` if none of them can be determined.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
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

/// The cache's raw bytes, as read from disk.
pub(crate) struct CacheBytes(pub Vec<u8>);

/// A parsed view of the cache.
pub(crate) struct CacheView<'a> {
    pub index: HashMap<String, Stat>,
    tensors: Option<SafeTensors<'a>>,
    pub image_bytes: usize,
}

impl CacheBytes {
    /// Reads the cache file; a missing file is an empty cache.
    pub(crate) fn read(path: &Path) -> CacheBytes {
        CacheBytes(std::fs::read(path).unwrap_or_default())
    }

    /// Parses the cache; `Err` describes why it was unusable (the caller starts afresh).
    pub(crate) fn view(&self, spec: &ImageSpec) -> std::result::Result<CacheView<'_>, String> {
        let image_bytes = (spec.size as usize).pow(2);
        if self.0.is_empty() {
            return Ok(CacheView {
                index: HashMap::new(),
                tensors: None,
                image_bytes,
            });
        }
        let (_, meta) = SafeTensors::read_metadata(&self.0).map_err(|e| e.to_string())?;
        let info = meta.metadata().as_ref().ok_or("no metadata")?;
        if info.get("ganaug_cache").map(String::as_str) != Some(&CACHE_VERSION.to_string()) {
            return Err("cache written by another version".into());
        }
        let index: HashMap<String, Stat> =
            serde_json::from_str(info.get("index").ok_or("no index")?).map_err(|e| e.to_string())?;
        let tensors = SafeTensors::deserialize(&self.0).map_err(|e| e.to_string())?;
        Ok(CacheView {
            index,
            tensors: Some(tensors),
            image_bytes,
        })
    }
}

impl CacheView<'_> {
    /// The cached pixels for a content hash, if present and of the right size.
    pub(crate) fn get(&self, hash: &str) -> Option<&[u8]> {
        let view = self.tensors.as_ref()?.tensor(hash).ok()?;
        (view.dtype() == Dtype::U8 && view.data().len() == self.image_bytes).then(|| view.data())
    }
}

/// Writes the cache atomically: every image still referenced by the index, old or new.
pub(crate) fn write(
    path: &Path,
    old: &CacheView<'_>,
    index: &HashMap<String, Stat>,
    fresh: &HashMap<String, Vec<u8>>,
    spec: &ImageSpec,
) -> Result<()> {
    let side = spec.size as usize;
    let mut tensors: HashMap<&str, TensorView<'_>> = HashMap::new();
    for stat in index.values() {
        let data = fresh
            .get(&stat.hash)
            .map(Vec::as_slice)
            .or_else(|| old.get(&stat.hash));
        if let Some(data) = data {
            let view = TensorView::new(Dtype::U8, vec![side, side], data)
                .map_err(|e| DataError::config("cache", e.to_string()))?;
            tensors.insert(stat.hash.as_str(), view);
        }
    }
    let index_json = serde_json::to_string(index).map_err(|e| DataError::config("cache", e.to_string()))?;
    let meta = HashMap::from([
        ("ganaug_cache".to_string(), CACHE_VERSION.to_string()),
        ("spec".to_string(), serde_json::json!(spec).to_string()),
        ("index".to_string(), index_json),
    ]);
    let bytes = safetensors::serialize(tensors, &Some(meta))
        .map_err(|e| DataError::config("cache", e.to_string()))?;
    crate::io::write_atomic(path, &bytes)
}
