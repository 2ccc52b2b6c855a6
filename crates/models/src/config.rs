//! [`ModelConfig`]: a classifier's architecture, and its check.

use serde::{Deserialize, Serialize};

use ganaug_train::Validate;

use crate::{ModelError, ModelKind, Result};

/// A classifier's architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The network.
    pub kind: ModelKind,
    /// Input side in pixels (square inputs); the paper's CNN needs a multiple of 32.
    pub image_size: i64,
    /// Number of classes.
    pub n_classes: i64,
    /// Input channels: 1 (gray, the default) or 3 (RGB). The ImageNet backbones take gray
    /// repeated to three channels and RGB as it is; the paper's CNN's first convolution takes
    /// `in_channels`. Not written when 1, so that configurations from before colour keep their
    /// meaning and their cache keys.
    #[serde(default = "one_channel", skip_serializing_if = "is_one_channel")]
    pub in_channels: i64,
    /// Dropout after the head's first dense layer (the paper: 0.25).
    pub dropout: f64,
    /// Keep convolution weights and activations in channels-last (NHWC) memory layout: the
    /// same numbers, but oneDNN's CPU convolutions run about 1.6× faster on it.
    #[serde(default = "yes")]
    pub channels_last: bool,
    /// Compute convolutions and dense layers in bf16, autocast-style (`f32` weights, batch
    /// norm and loss). Off by default: only worth it on CPUs with bf16 instructions (AVX512-BF16,
    /// AMX) and on GPUs.
    #[serde(default)]
    pub bf16: bool,
    /// How many globally pooled stages make the backbone's features: 1 is the usual pooled
    /// head; 2 or 3 append the pooled outputs of the last one or two stages (EfficientNet-Lite
    /// only: 1,280 + 320 + 192 features for Lite0).
    #[serde(default = "one")]
    pub pooled_stages: usize,
    /// The head: the paper's three dense layers, or one linear layer (LP-FT starts it from a
    /// linear probe, [`crate::Classifier::init_head_from_probe`]).
    #[serde(default)]
    pub head: HeadArch,
}

/// The classifier head's architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadArch {
    /// The paper's: dense 256 → ReLU → dropout → dense 128 → ReLU → dense classes.
    #[default]
    Paper,
    /// Dropout → one dense layer to the classes.
    Linear,
}

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

fn one_channel() -> i64 {
    1
}

fn is_one_channel(c: &i64) -> bool {
    *c == 1
}

impl ModelConfig {
    /// The same configuration for `n_classes` classes and `in_channels` input channels.
    pub fn for_data(mut self, n_classes: i64, in_channels: i64) -> Self {
        self.n_classes = n_classes;
        self.in_channels = in_channels;
        self
    }

    /// The paper's settings for `kind` at `image_size`, two classes, gray input.
    pub fn new(kind: ModelKind, image_size: i64) -> Self {
        ModelConfig {
            kind,
            image_size,
            n_classes: 2,
            in_channels: 1,
            dropout: 0.25,
            channels_last: true,
            bf16: false,
            pooled_stages: 1,
            head: HeadArch::Paper,
        }
    }
}

impl Validate for ModelConfig {
    type Error = ModelError;

    /// Checks that the network can be built at this size ([`crate::Classifier::new`] calls it).
    fn validate(&self) -> Result<()> {
        let min = 32; // five stride-2 stages
        if self.image_size < min || (self.kind == ModelKind::PaperCnn && self.image_size % 32 != 0)
        {
            return Err(ModelError::config(
                "image_size",
                format!(
                    "{} for {}: needs at least {min}{}",
                    self.image_size,
                    self.kind,
                    if self.kind == ModelKind::PaperCnn {
                        " and a multiple of 32"
                    } else {
                        ""
                    }
                ),
            ));
        }
        if self.n_classes < 2 {
            return Err(ModelError::config("n_classes", "needs at least 2 classes"));
        }
        if !matches!(self.in_channels, 1 | 3) {
            return Err(ModelError::config(
                "in_channels",
                format!("{}; 1 (gray) or 3 (RGB) expected", self.in_channels),
            ));
        }
        let lite = self.kind.lite_variant().is_some();
        if !(1..=3).contains(&self.pooled_stages) || (!lite && self.pooled_stages != 1) {
            return Err(ModelError::config(
                "pooled_stages",
                format!(
                    "{} for {}: {}",
                    self.pooled_stages,
                    self.kind,
                    if lite {
                        "needs 1, 2 or 3"
                    } else {
                        "only EfficientNet-Lite pools several stages; needs 1"
                    }
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(ModelError::config(
                "dropout",
                format!("{} is not in [0, 1)", self.dropout),
            ));
        }
        Ok(())
    }
}
