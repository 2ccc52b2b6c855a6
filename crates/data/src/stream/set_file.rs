//! Image sets a program made (a GAN's synthetic images), kept on disk in the decode cache's
//! format and read back as a [`StreamDataset`]: one safetensors file, one tensor per image
//! (named by its position), the samples as `f32` exactly as given — no 8- or 16-bit rounding, so
//! a set read back holds the very values written — and the labels, names, class names and
//! description in the file's metadata. Written atomically; a file changed under a reader is an
//! error naming it, as the decode cache's is.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use safetensors::Dtype;
use tch::{Device, Kind, Tensor};

use super::{ImageReader, ImageSource, OpenCache, Samples, StreamDataset, StreamShared};
use crate::{DataError, Result};

/// What the metadata's `ganaug_set` says: bumped when the layout changes.
const SET_FORMAT: &str = "1";

/// Digits of a tensor's name: names sort as positions (safetensors lays tensors out by name).
const NAME_DIGITS: usize = 10;

/// Writes `source`'s images to `path` as a set file (atomically: a reader sees the old file or
/// the whole new one), one image at a time, so a set larger than memory can be written from a
/// stream. [`open_set_file`] reads it back.
pub fn write_set_file(path: &Path, source: &dyn ImageSource) -> Result<()> {
    let (h, w) = source.image_size();
    if h != w {
        return Err(set_error(
            path,
            format!("images of {h}×{w}: sets are square"),
        ));
    }
    let shape = [source.channels() as usize, h as usize, w as usize];
    let labels = Vec::<i64>::try_from(&source.labels().f_to_device(Device::Cpu)?)?;
    let json = |v: serde_json::Value| v.to_string();
    let meta = HashMap::from([
        ("ganaug_set".to_string(), SET_FORMAT.to_string()),
        ("shape".to_string(), json(serde_json::json!(shape))),
        ("labels".to_string(), json(serde_json::json!(labels))),
        ("names".to_string(), json(serde_json::json!(source.names()))),
        (
            "class_names".to_string(),
            json(serde_json::json!(source.class_names())),
        ),
        ("description".to_string(), source.description().to_string()),
    ]);
    let reader = RefCell::new(source.reader()?);
    let failed = RefCell::new(None);
    let bytes = shape.iter().product::<usize>() * 4;
    let views = (0..source.len()).map(|i| {
        let row = LazyImage {
            reader: &reader,
            failed: &failed,
            index: i as i64,
            shape: &shape,
            bytes,
        };
        (format!("{i:0NAME_DIGITS$}"), row)
    });
    crate::io::write_atomic_with(path, |tmp| {
        safetensors::serialize_to_file(views, &Some(meta), tmp)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        // a read that failed was written as zeros: the file must not take the old one's place
        match failed.borrow_mut().take() {
            Some(e) => Err(std::io::Error::other(format!("reading the images: {e}"))),
            None => Ok(()),
        }
    })
}

/// Opens a set file [`write_set_file`] wrote as a stream of its images, in the order written.
/// A file that is not one (another safetensors file, a damaged one) is a
/// [`DataError::SetFile`] naming it and what is wrong.
pub fn open_set_file(path: &Path) -> Result<StreamDataset> {
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let stat = file.metadata().map_err(|e| DataError::io(path, e))?;
    let (header_len, meta) = crate::cache::read_header(&mut file, stat.len())
        .map_err(|why| set_error(path, format!("not a safetensors file ({why})")))?;
    let set = SetInfo::of(path, &meta)?;
    let rows = set.rows(path, &meta, stat.len() - 8 - header_len)?;
    let cache = OpenCache {
        path: path.to_path_buf(),
        file,
        seen: (stat.len(), stat.modified().ok()),
        data_start: 8 + header_len,
        set_file: true,
    };
    Ok(StreamDataset {
        shared: Arc::new(StreamShared {
            cache,
            samples: Samples::F32,
            channels: set.shape[0] as i64,
            side: set.shape[1] as i64,
        }),
        rows: Arc::new(rows),
        labels: Tensor::f_from_slice(&set.labels)?,
        names: set.names,
        class_names: set.class_names,
        description: set.description,
    })
}

/// What a set file's metadata says of its images, checked.
struct SetInfo {
    /// `[channels, side, side]`.
    shape: Vec<usize>,
    labels: Vec<i64>,
    names: Vec<String>,
    class_names: Vec<String>,
    description: String,
}

impl SetInfo {
    fn of(path: &Path, meta: &safetensors::tensor::Metadata) -> Result<Self> {
        let bad = |reason: String| set_error(path, reason);
        let info = meta.metadata().as_ref();
        let field = |k: &str| {
            info.and_then(|m| m.get(k)).ok_or_else(|| {
                bad(format!(
                    "no `{k}` in its metadata: not a set file ganaug wrote"
                ))
            })
        };
        let format = field("ganaug_set")?;
        if format != SET_FORMAT {
            return Err(bad(format!(
                "set format {format}, this build reads {SET_FORMAT}"
            )));
        }
        let set = SetInfo {
            shape: parse(path, field("shape")?, "shape")?,
            labels: parse(path, field("labels")?, "labels")?,
            names: parse(path, field("names")?, "names")?,
            class_names: parse(path, field("class_names")?, "class_names")?,
            description: field("description")?.clone(),
        };
        let shape = &set.shape;
        let square = matches!(shape[..], [c, h, w] if h == w && h > 0 && (c == 1 || c == 3));
        if !square {
            return Err(bad(format!(
                "image shape {shape:?}, not [1 or 3 channels, side, side]"
            )));
        }
        if set.names.len() != set.labels.len() {
            return Err(bad(format!(
                "{} names for {} labels",
                set.names.len(),
                set.labels.len()
            )));
        }
        let classes = set.class_names.len();
        if let Some(l) = set.labels.iter().find(|&&l| l < 0 || l as usize >= classes) {
            return Err(bad(format!("label {l} of {classes} classes")));
        }
        Ok(set)
    }

    /// The file row of each image, in order: every tensor must be one whole `f32` image of
    /// the set's shape, named by its position, inside the `data_len` bytes of pixels.
    fn rows(
        &self,
        path: &Path,
        meta: &safetensors::tensor::Metadata,
        data_len: u64,
    ) -> Result<Vec<i64>> {
        let row = self.shape.iter().product::<usize>() * 4;
        let mut rows = vec![-1i64; self.labels.len()];
        for (name, t) in meta.tensors() {
            let (begin, end) = t.data_offsets;
            let at = name.parse::<usize>().ok().filter(|&i| i < rows.len());
            match at {
                Some(i)
                    if t.dtype == Dtype::F32
                        && t.shape == self.shape
                        && end - begin == row
                        && begin % row == 0
                        && end as u64 <= data_len =>
                {
                    rows[i] = (begin / row) as i64;
                }
                _ => {
                    return Err(set_error(
                        path,
                        format!(
                            "tensor {name} is not image {name} of {} ({:?} f32)",
                            rows.len(),
                            self.shape
                        ),
                    ))
                }
            }
        }
        if let Some(missing) = rows.iter().position(|&r| r < 0) {
            let n = rows.len();
            return Err(set_error(
                path,
                format!("image {missing} of {n} is missing"),
            ));
        }
        Ok(rows)
    }
}

/// A metadata value of a set file, parsed from its JSON.
fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str, key: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| set_error(path, format!("its `{key}`: {e}")))
}

fn set_error(path: &Path, reason: String) -> DataError {
    DataError::SetFile {
        path: path.to_path_buf(),
        reason,
    }
}

/// One image of a set being written, read from its source when the serialiser asks for it.
struct LazyImage<'a> {
    reader: &'a RefCell<Box<dyn ImageReader>>,
    /// The first failed read (the serialiser cannot take an error: the row is written as
    /// zeros and the write is failed afterwards).
    failed: &'a RefCell<Option<DataError>>,
    index: i64,
    shape: &'a [usize],
    bytes: usize,
}

impl LazyImage<'_> {
    fn read(&self) -> Result<Vec<u8>> {
        let image = self
            .reader
            .borrow_mut()
            .read(&[self.index])?
            .f_to_device(Device::Cpu)?
            .f_to_kind(Kind::Float)?
            .f_contiguous()?;
        let values = Vec::<f32>::try_from(&image.f_flatten(0, -1)?)?;
        if values.len() * 4 != self.bytes {
            return Err(DataError::config(
                "set file",
                format!(
                    "image {} has {} samples, not {}",
                    self.index,
                    values.len(),
                    self.bytes / 4
                ),
            ));
        }
        Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
}

impl safetensors::View for LazyImage<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        match self.read() {
            Ok(bytes) => Cow::Owned(bytes),
            Err(e) => {
                self.failed.borrow_mut().get_or_insert(e);
                Cow::Owned(vec![0u8; self.bytes])
            }
        }
    }

    fn data_len(&self) -> usize {
        self.bytes
    }
}
