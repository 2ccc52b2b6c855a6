//! How a GAN is trained ([`TrainConfig`], checked) and what each epoch and step records.

use serde::{Deserialize, Serialize};

use ganaug_augment::DiffAugment;
use ganaug_train::Validate;

use crate::{GanError, Result};

/// A checkpoint's run configuration (`T`, as the trainer wrote it) and header, refused with the
/// file's name when the checkpoint is another trainer's (`format`) or its configuration does
/// not read as `T`.
pub(crate) fn read_run<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    format: &str,
) -> Result<(T, ganaug_train::CheckpointMeta)> {
    let meta = ganaug_train::load_checkpoint(path, tch::Device::Cpu)?.1;
    if meta.format != format {
        return Err(GanError::Checkpoint {
            path: path.into(),
            reason: format!("it is a {:?} checkpoint, not {format:?}", meta.format),
        });
    }
    let run = serde_json::from_value(meta.config.clone()).map_err(|e| GanError::Checkpoint {
        path: path.into(),
        reason: e.to_string(),
    })?;
    Ok((run, meta))
}

/// How to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Total epochs (a resumed run continues up to this number).
    pub epochs: usize,
    /// Mini-batch size (the last, smaller batch of an epoch is dropped).
    pub batch_size: usize,
    /// Adam learning rate of both networks (the paper: 2e-4).
    pub lr: f64,
    /// Adam betas (the paper: 0.5, 0.999).
    pub betas: (f64, f64),
    /// Target for real images in the discriminator loss; 0.9 is one-sided label smoothing
    /// (cross-entropy only: the hinge loss of FastGAN and the projected pair refuses anything
    /// but 1).
    pub real_label: f64,
    /// Differentiable augmentation applied to real and fake images before the discriminator.
    pub diffaugment: Option<DiffAugment>,
    /// Write a checkpoint every this many epochs (0: only at the end).
    pub checkpoint_every: usize,
    /// Write a fixed-latent sample grid every this many epochs (0: only at the end).
    pub sample_every: usize,
    /// Images in the sample grid.
    pub grid_samples: i64,
    /// Seed of everything random (latents, shuffling, dropout, augmentation).
    pub seed: u64,
}

impl Default for TrainConfig {
    /// The paper: 3300 epochs, batch 32, Adam 2e-4 (β1 = 0.5), checkpoints every 300 epochs,
    /// no smoothing, no DiffAugment.
    fn default() -> Self {
        TrainConfig {
            epochs: 3300,
            batch_size: 32,
            lr: 2e-4,
            betas: (0.5, 0.999),
            real_label: 1.0,
            diffaugment: None,
            checkpoint_every: 300,
            sample_every: 300,
            grid_samples: 32,
            seed: 0,
        }
    }
}

impl Validate for TrainConfig {
    type Error = GanError;

    /// Checks every setting.
    fn validate(&self) -> Result<()> {
        if self.batch_size < 2 {
            return Err(GanError::config(
                "batch_size",
                "must be at least 2 (batch norm)",
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(GanError::config(
                "lr",
                format!("{} must be positive", self.lr),
            ));
        }
        if !(0.0..1.0).contains(&self.betas.0) || !(0.0..1.0).contains(&self.betas.1) {
            return Err(GanError::config(
                "betas",
                format!("{:?} must be in [0, 1)", self.betas),
            ));
        }
        if !(0.5..=1.0).contains(&self.real_label) {
            return Err(GanError::config(
                "real_label",
                format!("{} must be in [0.5, 1]", self.real_label),
            ));
        }
        if self.grid_samples < 1 {
            return Err(GanError::config("grid_samples", "must be positive"));
        }
        Ok(())
    }
}

/// Losses of one epoch (means over its batches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Discriminator loss (real + fake BCE; FastGAN: hinge + reconstruction; projected: hinge).
    pub d_loss: f64,
    /// Generator loss (BCE of fakes against "real"; hinge-loss pairs: −mean logit of the
    /// fakes).
    pub g_loss: f64,
    /// Mean discriminator probability on real images.
    pub d_real: f64,
    /// Mean discriminator probability on fakes.
    pub d_fake: f64,
    /// Wall time of the epoch, seconds.
    pub seconds: f64,
}

/// Losses of one training step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Discriminator loss.
    pub d_loss: f64,
    /// Generator loss.
    pub g_loss: f64,
    /// Mean discriminator probability on the real batch.
    pub d_real: f64,
    /// Mean discriminator probability on the fakes.
    pub d_fake: f64,
}

impl ganaug_train::EpochRecord for EpochStats {
    fn checked(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("discriminator loss", self.d_loss),
            ("generator loss", self.g_loss),
        ]
    }

    fn summary(&self) -> String {
        format!("D {:.3} G {:.3}", self.d_loss, self.g_loss)
    }

    fn set_seconds(&mut self, seconds: f64) {
        self.seconds = seconds;
    }
}
