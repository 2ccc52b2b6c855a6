#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod affine;
mod diffaug;
mod draws;
mod error;
mod intensity;
mod offline;
mod pipeline;

pub use affine::{warp, Affine, Fill, Interpolation};
pub use diffaug::DiffAugment;
pub use draws::Draws;
pub use error::{AugmentError, Result};
pub use offline::{expand, ExpandedSource};
pub use pipeline::{Pipeline, Step, Transform};
