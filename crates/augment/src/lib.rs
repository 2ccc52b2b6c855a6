#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod affine;
mod diffaug;
mod error;
mod intensity;
mod offline;
mod pipeline;

pub use affine::{warp, Affine, Fill, Interpolation};
pub use diffaug::DiffAugment;
pub use error::{AugmentError, Result};
pub use offline::expand;
pub use pipeline::{Pipeline, Step, Transform};
