#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod cache;
mod dataset;
pub mod decode;
mod error;
mod folder;
pub mod io;
mod load;
pub mod phantom;
mod source;

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
pub use source::DataSource;
