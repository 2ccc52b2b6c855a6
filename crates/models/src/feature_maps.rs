//! [`LiteFeatureMaps`]: a frozen ImageNet EfficientNet-Lite read at several depths — the
//! feature network of a projected discriminator (Sauer et al. 2021, "Projected GANs Converge
//! Faster").

use std::path::Path;

use tch::nn;
use tch::{Device, Kind, Tensor};

use ganaug_train::{self as tensor_file, VarMatch};

use crate::efficientnet::{EfficientNetLiteFeatures, LiteVariant};
use crate::{ModelError, ModelKind, Result};

/// Which stages' outputs are read (0-based, of the seven): strides 4, 8, 16 and 32.
const STAGES: [usize; 4] = [1, 2, 4, 6];

/// A frozen EfficientNet-Lite with its ImageNet weights that maps images to the outputs of
/// four of its stages (strides 4, 8, 16 and 32; 24, 40, 112 and 320 channels for Lite0).
///
/// Its weights never train (their gradients are off) and its batch norms always use their
/// ImageNet statistics, but gradients flow through it to the input images: a generator can be
/// trained against a discriminator that reads these maps.
#[derive(Debug)]
pub struct LiteFeatureMaps {
    kind: ModelKind,
    /// Its weights live in their own (frozen) var store, apart from any trainer's.
    net: EfficientNetLiteFeatures,
    ends: Vec<usize>,
    channels: Vec<i64>,
    /// `255/128 · x − 127/128`: EfficientNet-Lite's input scaling of [0, 1] images.
    scale: (f64, f64),
}

impl LiteFeatureMaps {
    /// Each map's stride against the input, shallow to deep.
    pub const STRIDES: [i64; 4] = [4, 8, 16, 32];

    /// `(last block index, channels)` of `kind`'s four read stages.
    fn stages(kind: ModelKind) -> Result<(LiteVariant, Vec<(usize, i64)>)> {
        let Some(variant) = kind.lite_variant() else {
            return Err(ModelError::Config {
                field: "kind",
                reason: format!("feature maps are read from EfficientNet-Lite only, not {kind:?}"),
            });
        };
        let ends = EfficientNetLiteFeatures::stage_ends(variant);
        Ok((variant, STAGES.iter().map(|&s| ends[s]).collect()))
    }

    /// The channels of `kind`'s four maps, shallow to deep, without building it.
    pub fn channels_of(kind: ModelKind) -> Result<Vec<i64>> {
        Ok(Self::stages(kind)?.1.into_iter().map(|(_, c)| c).collect())
    }

    /// Builds `kind` (an EfficientNet-Lite) on `device` from its ImageNet weights file.
    pub fn new(kind: ModelKind, weights: impl AsRef<Path>, device: Device) -> Result<Self> {
        let (variant, stages) = Self::stages(kind)?;
        let path = weights.as_ref();
        let mut vs = nn::VarStore::new(device);
        let net = EfficientNetLiteFeatures::new(
            &vs.root(),
            variant,
            1,
            ganaug_ops::Precision::from_bf16(false),
        );
        let (mut saved, _) = tensor_file::load_tensors(path, device)?;
        saved.retain(|k, _| !k.ends_with("num_batches_tracked"));
        let rules = VarMatch {
            allow_missing: &[],
            ignore_unexpected: kind.imagenet_classifier_prefixes(),
        };
        tensor_file::copy_into_vars(&vs.variables(), &saved, &rules, path)?;
        vs.freeze();
        let (ends, channels) = stages.into_iter().unzip();
        Ok(LiteFeatureMaps {
            kind,
            net,
            ends,
            channels,
            scale: (255.0 / 128.0, 127.0 / 128.0),
        })
    }

    /// The network.
    pub fn kind(&self) -> ModelKind {
        self.kind
    }

    /// Channels of each map, shallow to deep.
    pub fn channels(&self) -> &[i64] {
        &self.channels
    }

    /// The four maps of images `[N, C, S, S]` in [0, 1] (`C` 1, repeated to RGB, or 3),
    /// shallow to deep: `[N, channels[i], ⌈S/stride[i]⌉, …]`.
    pub fn maps(&self, images: &Tensor) -> Result<Vec<Tensor>> {
        let s = images.size();
        if s.len() != 4 || !(s[1] == 1 || s[1] == 3) || images.kind() != Kind::Float {
            return Err(ModelError::Shape {
                what: "feature-map input",
                expected: "[N, 1 or 3, S, S] Float".into(),
                got: format!("{s:?} {:?}", images.kind()),
            });
        }
        let x = (images * self.scale.0 - self.scale.1).f_expand([s[0], 3, s[2], s[3]], false)?;
        Ok(self.net.block_outputs(&x.f_contiguous()?, &self.ends))
    }
}
