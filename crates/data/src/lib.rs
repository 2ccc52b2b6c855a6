#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod cache;
mod dataset;
pub mod decode;
pub mod decode16;
mod dicom;
mod error;
pub mod fixture;
mod folder;
pub mod io;
mod layout;
mod lists;
mod load;
pub mod nifti;
pub mod phantom;
mod resize;
mod scan;
mod source;
mod spec;
mod summary;
mod volume;

pub use cache::default_cache_dir;
pub use dataset::{epoch_seed, Batch, BatchOrder, Batches, TensorDataset};
pub use error::{DataError, Result};
pub use folder::{
    read_list, BadFile, ClassSpec, Entry, FolderConfig, ImageFolder, OnBadFile, Split, SplitOrigin,
    SplitSource,
};
pub use layout::{GroupBy, Layout};
pub use load::{load_entries, ColorDecision, LoadOptions, LoadReport, Splits};
pub use phantom::{phantom_splits, PhantomConfig};
pub use source::{DataSource, FolderSource};
pub use spec::{ColorMode, Depth, ImageSpec, ResizeFilter, ResizePolicy, Window};
pub use summary::{FileSummary, KindSummary};
pub use volume::Slices;
