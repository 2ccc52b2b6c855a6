//! # ganaug-augment
//!
//! Classical and differentiable image augmentation on batched libtorch tensors
//! (`[N, C, H, W]`, on whatever device they live), for *Image classification with GAN-based
//! data augmentation*: the paper's "classic augmentation" (flips and rotations up to ±45°,
//! [`Pipeline::paper`]), the affine set of Frid-Adar et al. ([`Pipeline::frid_adar`]),
//! intensity transforms, cutout, and DiffAugment for GAN training ([`DiffAugment`]).
//!
//! - Every transform has a probability and a parameter range; each sample draws its own
//!   parameters from a seeded RNG (same seed, same output).
//! - Geometric transforms of a sample compose into one [`Affine`] map, and the whole batch is
//!   resampled once ([`warp`]): no quality loss from repeated interpolation, one pass of work.
//! - Online use: call [`Pipeline::apply`] on each batch with an RNG seeded per epoch
//!   (`ganaug_data::epoch_seed`). Offline use: [`expand`] makes `k` augmented copies.
//! - Bad configuration (probabilities outside [0, 1], negative or inverted ranges, wrong rank or
//!   dtype) is an [`AugmentError`], never a panic.
//!
//! ```
//! use ganaug_augment::Pipeline;
//! use tch::{Device, Kind, Tensor};
//!
//! let batch = Tensor::rand([8, 1, 64, 64], (Kind::Float, Device::Cpu));
//! let out = Pipeline::paper().apply_seeded(&batch, 42)?;
//! assert_eq!(out.size(), [8, 1, 64, 64]);
//! # Ok::<(), ganaug_augment::AugmentError>(())
//! ```
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
