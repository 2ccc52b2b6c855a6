//! In-memory image datasets as tensors: batching, device moves, subsets, ndarray conversion.

use ndarray::{Array1, Array4};
use tch::{Device, Kind, Tensor};

use crate::{DataError, Result};

/// Images `[N, C, H, W]` (f32 in [0, 1], `C` = 1 gray or 3 RGB), labels `[N]` (i64), and the
/// images' names.
#[derive(Debug)]
pub struct TensorDataset {
    /// `[N, C, H, W]`, `f32`, values in [0, 1]; `C` is 1 (gray) or 3 (RGB).
    pub images: Tensor,
    /// `[N]`, `i64`, values in `0..class_names.len()`.
    pub labels: Tensor,
    /// One name per image (file name, or a generated id).
    pub names: Vec<String>,
    /// Class names in label order.
    pub class_names: Vec<String>,
    /// Where the data came from, in words. Synthetic data says so here.
    pub description: String,
}

/// One mini-batch.
#[derive(Debug)]
pub struct Batch {
    /// `[B, C, H, W]`.
    pub images: Tensor,
    /// `[B]`.
    pub labels: Tensor,
    /// Positions of the batch's images in the dataset.
    pub indices: Vec<i64>,
}

/// Order of mini-batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOrder {
    /// Dataset order.
    Sequential,
    /// A permutation drawn from `seed` (use a different seed per epoch, see [`epoch_seed`]).
    Shuffled {
        /// Seed of the permutation.
        seed: u64,
    },
}

/// A per-epoch seed derived from a run seed, so that epochs get independent streams.
pub fn epoch_seed(seed: u64, epoch: u64) -> u64 {
    // SplitMix64 finaliser: nearby (seed, epoch) pairs map to unrelated seeds.
    let mut z = seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn shape_str(t: &Tensor) -> String {
    format!("{:?} {:?}", t.size(), t.kind())
}

impl TensorDataset {
    /// BLAKE3 of what a model trained on this dataset sees: the image tensor's bytes (f32,
    /// row-major), the labels, the names and the class names. Two datasets with the same
    /// fingerprint hold the same images in the same order; a resume checks it.
    pub fn fingerprint(&self) -> Result<String> {
        // read a few images at a time, as any source's: no second copy of a large dataset
        crate::stream::fingerprint(self)
    }

    /// Builds a dataset, checking shapes, dtypes, label range and name count.
    pub fn new(
        images: Tensor,
        labels: Tensor,
        names: Vec<String>,
        class_names: Vec<String>,
        description: impl Into<String>,
    ) -> Result<Self> {
        let dims = images.size();
        if dims.len() != 4 || !matches!(dims[1], 1 | 3) || images.kind() != Kind::Float {
            return Err(DataError::Shape {
                what: "images",
                expected: "[N, C, H, W] Float with C = 1 (gray) or 3 (RGB)".into(),
                got: shape_str(&images),
            });
        }
        let n = dims[0];
        if labels.size() != [n] || labels.kind() != Kind::Int64 {
            return Err(DataError::Shape {
                what: "labels",
                expected: format!("[{n}] Int64"),
                got: shape_str(&labels),
            });
        }
        if names.len() as i64 != n {
            return Err(DataError::Shape {
                what: "names",
                expected: format!("{n} names"),
                got: format!("{} names", names.len()),
            });
        }
        if class_names.is_empty() {
            return Err(DataError::config(
                "class_names",
                "at least one class is needed",
            ));
        }
        if n > 0 {
            let (lo, hi) = (
                labels.f_min()?.int64_value(&[]),
                labels.f_max()?.int64_value(&[]),
            );
            if lo < 0 || hi >= class_names.len() as i64 {
                return Err(DataError::config(
                    "labels",
                    format!(
                        "labels span {lo}..={hi} but there are {} classes",
                        class_names.len()
                    ),
                ));
            }
        }
        Ok(TensorDataset {
            images,
            labels,
            names,
            class_names,
            description: description.into(),
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Channels `C` of the images: 1 (gray) or 3 (RGB).
    pub fn channels(&self) -> i64 {
        self.images.size()[1]
    }

    /// Side length `(H, W)` of the images.
    pub fn image_size(&self) -> (i64, i64) {
        let d = self.images.size();
        (d[2], d[3])
    }

    /// Device of the tensors.
    pub fn device(&self) -> Device {
        self.images.device()
    }

    /// Number of images per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names.len()];
        if let Ok(labels) = Vec::<i64>::try_from(&self.labels.to_device(Device::Cpu)) {
            for l in labels {
                counts[l as usize] += 1;
            }
        }
        counts
    }

    /// A copy on `device`.
    pub fn to_device(&self, device: Device) -> Result<Self> {
        Ok(TensorDataset {
            images: self.images.f_to_device(device)?,
            labels: self.labels.f_to_device(device)?,
            names: self.names.clone(),
            class_names: self.class_names.clone(),
            description: self.description.clone(),
        })
    }

    /// A new handle to the same tensors (no copy).
    pub fn shallow_clone(&self) -> Self {
        TensorDataset {
            images: self.images.shallow_clone(),
            labels: self.labels.shallow_clone(),
            names: self.names.clone(),
            class_names: self.class_names.clone(),
            description: self.description.clone(),
        }
    }

    /// The images at `indices` (in that order).
    pub fn subset(&self, indices: &[i64]) -> Result<Self> {
        let n = self.len() as i64;
        if let Some(bad) = indices.iter().find(|&&i| i < 0 || i >= n) {
            return Err(DataError::config(
                "indices",
                format!("index {bad} out of 0..{n}"),
            ));
        }
        let idx = Tensor::f_from_slice(indices)?.f_to_device(self.device())?;
        TensorDataset::new(
            self.images.f_index_select(0, &idx)?,
            self.labels.f_index_select(0, &idx)?,
            indices
                .iter()
                .map(|&i| self.names[i as usize].clone())
                .collect(),
            self.class_names.clone(),
            self.description.clone(),
        )
    }

    /// The images of one class.
    pub fn class_subset(&self, label: i64) -> Result<Self> {
        let labels = Vec::<i64>::try_from(&self.labels.to_device(Device::Cpu))?;
        let idx: Vec<i64> = (0..labels.len() as i64)
            .filter(|&i| labels[i as usize] == label)
            .collect();
        self.subset(&idx)
    }

    /// This dataset followed by `other` (same classes and image size; `other` is moved to this
    /// dataset's device). The description combines both.
    pub fn concat(&self, other: &TensorDataset) -> Result<Self> {
        if self.class_names != other.class_names {
            return Err(DataError::config(
                "class_names",
                format!("{:?} vs {:?}", self.class_names, other.class_names),
            ));
        }
        if self.image_size() != other.image_size() {
            return Err(DataError::Shape {
                what: "images to concatenate",
                expected: format!("{:?}", self.image_size()),
                got: format!("{:?}", other.image_size()),
            });
        }
        let device = self.device();
        let images = Tensor::f_cat(&[&self.images, &other.images.f_to_device(device)?], 0)?;
        let labels = Tensor::f_cat(&[&self.labels, &other.labels.f_to_device(device)?], 0)?;
        let names = self.names.iter().chain(&other.names).cloned().collect();
        let description = format!("{} + {}", self.description, other.description);
        TensorDataset::new(images, labels, names, self.class_names.clone(), description)
    }

    /// Mini-batches of `batch_size` (the last may be smaller unless `drop_last`).
    pub fn batches(
        &self,
        batch_size: usize,
        order: BatchOrder,
        drop_last: bool,
    ) -> Result<Batches<'_>> {
        if batch_size == 0 {
            return Err(DataError::config("batch_size", "must be positive"));
        }
        let perm = crate::stream::batch_order(self.len(), order);
        Ok(Batches {
            dataset: self,
            perm,
            pos: 0,
            batch_size,
            drop_last,
        })
    }

    /// Copies the data out as ndarrays: images `[N, C, H, W]` and labels `[N]`.
    pub fn to_ndarray(&self) -> Result<(Array4<f32>, Array1<i64>)> {
        let images: ndarray::ArrayD<f32> =
            (&self.images.f_to_device(Device::Cpu)?.f_contiguous()?).try_into()?;
        let labels: ndarray::ArrayD<i64> = (&self.labels.f_to_device(Device::Cpu)?).try_into()?;
        let bad = |what: &'static str, e: ndarray::ShapeError| DataError::Shape {
            what,
            expected: "array of the tensor's rank".into(),
            got: e.to_string(),
        };
        Ok((
            images.into_dimensionality().map_err(|e| bad("images", e))?,
            labels.into_dimensionality().map_err(|e| bad("labels", e))?,
        ))
    }

    /// Builds a dataset from ndarrays (images `[N, C, H, W]` in [0, 1], labels `[N]`).
    pub fn from_ndarray(
        images: &Array4<f32>,
        labels: &Array1<i64>,
        names: Vec<String>,
        class_names: Vec<String>,
        description: impl Into<String>,
    ) -> Result<Self> {
        let images = Tensor::try_from(images.as_standard_layout().into_owned())?;
        let labels = Tensor::try_from(labels.to_owned())?;
        TensorDataset::new(images, labels, names, class_names, description)
    }
}

/// Iterator over mini-batches, see [`TensorDataset::batches`].
#[derive(Debug)]
pub struct Batches<'a> {
    dataset: &'a TensorDataset,
    perm: Vec<i64>,
    pos: usize,
    batch_size: usize,
    drop_last: bool,
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let rest = self.perm.len() - self.pos;
        if rest == 0 || (self.drop_last && rest < self.batch_size) {
            return None;
        }
        let take = rest.min(self.batch_size);
        let indices = self.perm[self.pos..self.pos + take].to_vec();
        self.pos += take;
        // Indices are in range by construction, so these ops cannot fail on user input.
        let idx = Tensor::from_slice(&indices).to_device(self.dataset.device());
        Some(Batch {
            images: self.dataset.images.index_select(0, &idx),
            labels: self.dataset.labels.index_select(0, &idx),
            indices,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: i64) -> TensorDataset {
        let images = Tensor::arange(n, (Kind::Float, Device::Cpu))
            .view([n, 1, 1, 1])
            .expand([n, 1, 2, 2], false)
            .contiguous()
            / n as f64;
        let labels = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(2);
        let names = (0..n).map(|i| format!("img{i}")).collect();
        TensorDataset::new(images, labels, names, vec!["a".into(), "b".into()], "toy").expect("toy")
    }

    #[test]
    fn shuffled_batches_cover_every_image_once_and_repeat_by_seed() {
        let ds = toy(10);
        let order = BatchOrder::Shuffled { seed: 3 };
        let seen: Vec<i64> = ds
            .batches(4, order, false)
            .expect("batches")
            .flat_map(|b| b.indices)
            .collect();
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert_ne!(
            seen,
            (0..10).collect::<Vec<_>>(),
            "a shuffle should move something"
        );
        let again: Vec<i64> = ds
            .batches(4, order, false)
            .expect("batches")
            .flat_map(|b| b.indices)
            .collect();
        assert_eq!(seen, again);
        let sizes: Vec<usize> = ds
            .batches(4, order, true)
            .expect("batches")
            .map(|b| b.indices.len())
            .collect();
        assert_eq!(sizes, vec![4, 4]);
    }

    #[test]
    fn batch_contents_follow_indices() {
        let ds = toy(6);
        for b in ds
            .batches(4, BatchOrder::Shuffled { seed: 1 }, false)
            .expect("batches")
        {
            let labels = Vec::<i64>::try_from(&b.labels).expect("labels");
            let expect: Vec<i64> = b.indices.iter().map(|i| i % 2).collect();
            assert_eq!(labels, expect);
            assert_eq!(b.images.size()[1..], [1, 2, 2]);
        }
    }

    #[test]
    fn invalid_datasets_are_typed_errors() {
        // Two channels: neither gray nor RGB.
        let images = Tensor::zeros([2, 2, 4, 4], (Kind::Float, Device::Cpu));
        let labels = Tensor::zeros([2], (Kind::Int64, Device::Cpu));
        let r = TensorDataset::new(
            images,
            labels,
            vec!["a".into(), "b".into()],
            vec!["x".into()],
            "",
        );
        assert!(matches!(r, Err(DataError::Shape { what: "images", .. })));
        let images = Tensor::zeros([2, 1, 4, 4], (Kind::Float, Device::Cpu));
        let labels = Tensor::from_slice(&[0i64, 5]);
        let r = TensorDataset::new(
            images,
            labels,
            vec!["a".into(), "b".into()],
            vec!["x".into(), "y".into()],
            "",
        );
        assert!(matches!(
            r,
            Err(DataError::Config {
                field: "labels",
                ..
            })
        ));
        assert!(matches!(
            toy(3).batches(0, BatchOrder::Sequential, false),
            Err(DataError::Config { .. })
        ));
    }

    #[test]
    fn ndarray_round_trip_and_concat() {
        let ds = toy(5);
        let (x, y) = ds.to_ndarray().expect("to ndarray");
        assert_eq!(x.shape(), &[5, 1, 2, 2]);
        let back =
            TensorDataset::from_ndarray(&x, &y, ds.names.clone(), ds.class_names.clone(), "back")
                .expect("from ndarray");
        assert_eq!(
            f64::try_from((&back.images - &ds.images).abs().max()).expect("max"),
            0.0
        );
        let both = ds.concat(&back).expect("concat");
        assert_eq!(both.len(), 10);
        assert_eq!(both.class_counts(), vec![6, 4]);
        assert_eq!(
            ds.class_subset(1).expect("subset").names,
            vec!["img1", "img3"]
        );
    }

    #[test]
    fn epoch_seeds_differ() {
        assert_ne!(epoch_seed(7, 0), epoch_seed(7, 1));
        assert_ne!(epoch_seed(7, 0), epoch_seed(8, 0));
    }
}
