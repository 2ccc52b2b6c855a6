//! A split of either kind, owned: what taking a class or a subset of a split gives when the
//! caller does not know (or care) whether it is in memory.

use tch::Tensor;

use super::{ImageReader, ImageSource, StreamDataset};
use crate::{Result, TensorDataset};

/// Images in memory or streamed from the decode cache, owned. Its subsets are of the same
/// kind: a streamed split's classes stay streamed.
#[derive(Debug)]
pub enum AnySource {
    /// Decoded into memory.
    Memory(TensorDataset),
    /// Streamed from the decode cache.
    Stream(StreamDataset),
}

impl AnySource {
    /// The images as a loop reads them.
    pub fn source(&self) -> &dyn ImageSource {
        match self {
            AnySource::Memory(d) => d,
            AnySource::Stream(s) => s,
        }
    }

    /// The same images, not copied.
    pub fn shallow_clone(&self) -> Self {
        match self {
            AnySource::Memory(d) => AnySource::Memory(d.shallow_clone()),
            AnySource::Stream(s) => AnySource::Stream(s.shallow_clone()),
        }
    }

    /// The images of one class, of the same kind.
    pub fn class_subset(&self, label: i64) -> Result<Self> {
        Ok(match self {
            AnySource::Memory(d) => AnySource::Memory(d.class_subset(label)?),
            AnySource::Stream(s) => AnySource::Stream(s.class_subset(label)?),
        })
    }

    /// The images at `indices` (in that order), of the same kind.
    pub fn subset(&self, indices: &[i64]) -> Result<Self> {
        Ok(match self {
            AnySource::Memory(d) => AnySource::Memory(d.subset(indices)?),
            AnySource::Stream(s) => AnySource::Stream(s.subset(indices)?),
        })
    }
}

impl From<TensorDataset> for AnySource {
    fn from(d: TensorDataset) -> Self {
        AnySource::Memory(d)
    }
}

impl From<StreamDataset> for AnySource {
    fn from(s: StreamDataset) -> Self {
        AnySource::Stream(s)
    }
}

impl ImageSource for AnySource {
    fn len(&self) -> usize {
        self.source().len()
    }
    fn labels(&self) -> &Tensor {
        self.source().labels()
    }
    fn names(&self) -> &[String] {
        self.source().names()
    }
    fn class_names(&self) -> &[String] {
        self.source().class_names()
    }
    fn channels(&self) -> i64 {
        self.source().channels()
    }
    fn image_size(&self) -> (i64, i64) {
        self.source().image_size()
    }
    fn description(&self) -> &str {
        self.source().description()
    }
    fn reader(&self) -> Result<Box<dyn ImageReader>> {
        self.source().reader()
    }
    fn in_memory(&self) -> Option<&TensorDataset> {
        self.source().in_memory()
    }
}
