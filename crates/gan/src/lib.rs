//! # ganaug-gan
//!
//! The generative half of *Image classification with GAN-based data augmentation*: generate
//! synthetic CT images per class and add them to the training set.
//!
//! - [`Arch::Paper`]: the paper's GAN, exactly, at any size divisible by 4 (dense layer of
//!   `128·(S/4)²` units — 262,144 at 256² — two 4×4 stride-2 transposed convolutions with 128
//!   filters, 7×7 output convolution, sigmoid; discriminator with two 3×3 stride-2
//!   convolutions of 64 filters, dropout 0.4, one dense logit); Adam 2e-4 (β1 0.5), BCE.
//! - [`Arch::Dcgan`]: Radford et al.'s DCGAN (batch norm, strided convolutions).
//! - Conditional GANs (Mirza & Osindero) with [`GanConfig::n_classes`]; or one GAN per class,
//!   as the paper trained them.
//! - [`GanTrainer`]: one-sided label smoothing, DiffAugment, atomic safetensors checkpoints
//!   with exact resume, fixed-latent sample grids, loss history as JSON and PNG, a typed error
//!   on NaN/inf losses.
//! - [`synthesize_class`]: automatic selection (discriminator score, near-copy filter).
//!
//! ```
//! use ganaug_gan::{Arch, GanConfig, GanTrainer, TrainConfig};
//! use ganaug_data::{phantom_splits, PhantomConfig};
//! use tch::Device;
//!
//! let data = phantom_splits(&PhantomConfig::tiny(16, 8, 0), Device::Cpu)?.train;
//! let gan = GanConfig { arch: Arch::Dcgan { ngf: 8, ndf: 8 }, size: 16, ..Default::default() };
//! let cfg = TrainConfig { epochs: 2, batch_size: 8, ..Default::default() };
//! let mut trainer = GanTrainer::new(gan, cfg, Device::Cpu)?;
//! trainer.fit(&data, None, false)?;
//! assert_eq!(trainer.history().len(), 2);
//! # Ok::<(), ganaug_gan::GanError>(())
//! ```
#![warn(missing_docs)]

mod adam;
mod error;
mod models;
pub mod subpixel;
mod synth;
mod train;

pub use error::{GanError, Result};
pub use models::{Arch, Discriminator, GanConfig, Generator};
pub use synth::{
    nearest_rms, synthesize_class, synthetic_dataset, ClassModel, ClassSynthReport, SynthConfig,
};
pub use train::{EpochStats, GanTrainer, StepStats, TrainConfig};
