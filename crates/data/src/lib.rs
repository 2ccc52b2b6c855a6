//! # ganaug-data
//!
//! Image-folder datasets for libtorch, built for the COVID-CT dataset (Zhao et al. 2020) used by
//! *Image classification with GAN-based data augmentation*: one folder per class, the official
//! split lists when present (train 191/234, val 60/58, test 98/105), otherwise a seeded
//! stratified split.
//!
//! - Robust decoding: the format comes from the bytes (some COVID-CT `.png` files are JPEG);
//!   RGB/RGBA/gray PNG and baseline/progressive JPEG all become 8-bit gray; bad files are typed
//!   [`DataError`]s naming the file (or skipped and reported, with [`OnBadFile::Skip`]).
//! - Output: `f32` images in [0, 1], resized to a square ([`ImageSpec`]: filter and
//!   stretch/pad/center-crop policy), as [`TensorDataset`] (`[N, 1, S, S]` + labels + names),
//!   seeded mini-batches, any [`tch::Device`], ndarray conversions.
//! - Fast: parallel decoding (rayon) and an on-disk cache keyed by file contents and spec.
//! - [`phantom`]: a procedural two-class stand-in dataset so everything runs with no download.
//! - [`io`]: PNGs of tensors and image grids, written atomically.
//!
//! ```no_run
//! use ganaug_data::{FolderConfig, ImageFolder, LoadOptions, Split};
//!
//! # fn main() -> ganaug_data::Result<()> {
//! let folder = ImageFolder::open("data/covid-ct", &FolderConfig::covid_ct())?;
//! println!("train per class: {:?}", folder.counts(Split::Train));
//! let opts = LoadOptions::with_size(224).with_cache(std::env::temp_dir().join("ganaug-cache"));
//! let splits = folder.load_splits(&opts)?;
//! for batch in splits.train.batches(32, ganaug_data::BatchOrder::Shuffled { seed: 0 }, false)? {
//!     assert_eq!(batch.images.size()[1..], [1, 224, 224]);
//! }
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod cache;
mod dataset;
pub mod decode;
mod error;
mod folder;
pub mod io;
mod load;
pub mod phantom;

pub use cache::default_cache_dir;
pub use dataset::{epoch_seed, Batch, BatchOrder, Batches, TensorDataset};
pub use decode::{ImageSpec, ResizeFilter, ResizePolicy};
pub use error::{DataError, Result};
pub use folder::{
    read_list, BadFile, ClassSpec, Entry, FolderConfig, ImageFolder, OnBadFile, Split, SplitOrigin,
    SplitSource,
};
pub use load::{load_entries, LoadOptions, LoadReport, Splits};
pub use phantom::{phantom_splits, PhantomConfig};
