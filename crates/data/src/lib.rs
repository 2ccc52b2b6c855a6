#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[cfg(feature = "tch")]
mod cache;
#[cfg(feature = "tch")]
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
#[cfg(feature = "tch")]
mod load;
pub mod nifti;
#[cfg(feature = "tch")]
pub mod phantom;
mod resize;
mod scan;
#[cfg(feature = "tch")]
mod source;
mod spec;
#[cfg(feature = "tch")]
pub mod stream;
mod summary;
mod volume;

#[cfg(feature = "tch")]
pub use cache::default_cache_dir;
#[cfg(feature = "tch")]
pub use dataset::{epoch_seed, Batch, BatchOrder, Batches, TensorDataset};
pub use error::{DataError, Result};
pub use folder::{
    read_list, BadFile, ClassSpec, Entry, FolderConfig, ImageFolder, OnBadFile, Split, SplitOrigin,
    SplitSource,
};
pub use layout::{GroupBy, Layout};
#[cfg(feature = "tch")]
pub use load::{load_entries, ColorDecision, LoadOptions, LoadReport, Splits};
#[cfg(feature = "tch")]
pub use phantom::{phantom_splits, PhantomConfig};
#[cfg(feature = "tch")]
pub use source::{DataSource, FolderSource, LoadedSplits};
pub use spec::{ColorMode, Depth, ImageSpec, ResizeFilter, ResizePolicy, Window};
#[cfg(feature = "tch")]
pub use stream::{
    for_each_batch, AnySource, BatchPlan, ConcatSource, ImageReader, ImageSource, Prepared,
    StreamDataset, StreamDecision, StreamSplits, Streaming,
};
pub use summary::{FileSummary, KindSummary};
pub use volume::Slices;
