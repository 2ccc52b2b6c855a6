//! Several image sources read as one: a training set made of real images (in memory or
//! streamed), synthetic ones and augmented copies, without copying any of them.

use tch::{Device, Tensor};

use super::{ImageReader, ImageSource, Prepared};
use crate::{DataError, Result};

/// The images of several [`ImageSource`]s one after the other, as one source: position `i` of
/// the second part is `len(first) + i`. Labels and names are concatenated; the images stay
/// where each part keeps them and are read part by part, so a batch of a `ConcatSource` holds
/// exactly the values [`crate::TensorDataset::concat`] of the same parts would.
pub struct ConcatSource<'a> {
    parts: Vec<&'a dyn ImageSource>,
    /// Where each part starts, and the total at the end.
    starts: Vec<usize>,
    labels: Tensor,
    names: Vec<String>,
    description: String,
}

impl std::fmt::Debug for ConcatSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConcatSource")
            .field("parts", &self.parts.len())
            .field("images", &self.names.len())
            .field("description", &self.description)
            .finish()
    }
}

impl<'a> ConcatSource<'a> {
    /// The parts in order. They must agree on classes, channels and image side.
    pub fn new(parts: Vec<&'a dyn ImageSource>) -> Result<Self> {
        let first = *parts
            .first()
            .ok_or_else(|| DataError::config("sources", "nothing to concatenate"))?;
        for p in &parts[1..] {
            if p.class_names() != first.class_names()
                || p.channels() != first.channels()
                || p.image_size() != first.image_size()
            {
                return Err(DataError::config(
                    "sources",
                    format!(
                        "{:?} ({} classes, {} channels, {:?}) cannot follow {:?} ({} classes, \
                         {} channels, {:?})",
                        p.description(),
                        p.class_names().len(),
                        p.channels(),
                        p.image_size(),
                        first.description(),
                        first.class_names().len(),
                        first.channels(),
                        first.image_size()
                    ),
                ));
            }
        }
        let mut starts = vec![0];
        let mut labels = Vec::with_capacity(parts.len());
        let mut names = Vec::new();
        for p in &parts {
            starts.push(starts.last().copied().unwrap_or(0) + p.len());
            labels.push(p.labels().f_to_device(Device::Cpu)?);
            names.extend_from_slice(p.names());
        }
        let description = parts
            .iter()
            .map(|p| p.description())
            .collect::<Vec<_>>()
            .join(" + ");
        Ok(ConcatSource {
            labels: Tensor::f_cat(&labels, 0)?,
            parts,
            starts,
            names,
            description,
        })
    }
}

impl ImageSource for ConcatSource<'_> {
    fn len(&self) -> usize {
        self.names.len()
    }
    fn labels(&self) -> &Tensor {
        &self.labels
    }
    fn names(&self) -> &[String] {
        &self.names
    }
    fn class_names(&self) -> &[String] {
        self.parts[0].class_names()
    }
    fn channels(&self) -> i64 {
        self.parts[0].channels()
    }
    fn image_size(&self) -> (i64, i64) {
        self.parts[0].image_size()
    }
    fn description(&self) -> &str {
        &self.description
    }
    fn reader(&self) -> Result<Box<dyn ImageReader>> {
        Ok(Box::new(ConcatReader {
            readers: self
                .parts
                .iter()
                .map(|p| p.reader())
                .collect::<Result<_>>()?,
            starts: self.starts.clone(),
            shape: {
                let (h, w) = self.image_size();
                [0, self.channels(), h, w]
            },
        }))
    }
}

struct ConcatReader {
    readers: Vec<Box<dyn ImageReader>>,
    starts: Vec<usize>,
    /// An empty read's shape.
    shape: [i64; 4],
}

impl ImageReader for ConcatReader {
    fn read(&mut self, indices: &[i64]) -> Result<Tensor> {
        self.prepare(indices)?.finish()
    }

    fn prepare(&mut self, indices: &[i64]) -> Result<Prepared> {
        if indices.is_empty() {
            let none = Tensor::f_zeros(self.shape, (tch::Kind::Float, Device::Cpu))?;
            return Ok(Prepared::ready(none));
        }
        let total = *self.starts.last().unwrap_or(&0);
        // each part's positions, and where its images go in the batch
        let mut local: Vec<(Vec<i64>, Vec<i64>)> = vec![Default::default(); self.readers.len()];
        for (k, &i) in indices.iter().enumerate() {
            let at = usize::try_from(i)
                .ok()
                .filter(|&i| i < total)
                .ok_or_else(|| {
                    DataError::config("indices", format!("index {i} out of 0..{total}"))
                })?;
            let part = self.starts.partition_point(|&s| s <= at) - 1;
            local[part].0.push((at - self.starts[part]) as i64);
            local[part].1.push(k as i64);
        }
        let mut parts = Vec::new();
        let mut slots = Vec::with_capacity(indices.len());
        for (reader, (positions, at)) in self.readers.iter_mut().zip(local) {
            if !positions.is_empty() {
                parts.push(reader.prepare(&positions)?);
                slots.extend(at);
            }
        }
        let sorted = slots.windows(2).all(|w| w[0] < w[1]);
        Ok(Prepared::deferred(move || {
            let images = parts
                .into_iter()
                .map(Prepared::finish)
                .collect::<Result<Vec<_>>>()?;
            // one device for all: a CUDA part's, else the CPU
            let device = images
                .iter()
                .map(Tensor::device)
                .find(|d| d.is_cuda())
                .unwrap_or(Device::Cpu);
            let images = images
                .into_iter()
                .map(|t| t.f_to_device(device))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let all = match <[Tensor; 1]>::try_from(images) {
                Ok([one]) => one,
                Err(images) => Tensor::f_cat(&images, 0)?,
            };
            if sorted {
                return Ok(all);
            }
            // row r of `all` belongs at slots[r]: invert to read them in batch order
            let mut order = vec![0i64; slots.len()];
            for (r, &s) in slots.iter().enumerate() {
                order[s as usize] = r as i64;
            }
            let order = Tensor::f_from_slice(&order)?.f_to_device(device)?;
            Ok(all.f_index_select(0, &order)?)
        }))
    }
}
