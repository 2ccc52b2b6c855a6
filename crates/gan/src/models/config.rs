//! The networks' configuration: architecture, size, conditioning, layout and precision.

use ganaug_ops::Precision;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use ganaug_train::Validate;

use crate::{GanError, Result};

use super::dcgan::Dcgan;
use super::family::{GanFamily, Loss};
use super::fastgan::FastGan;
use super::paper::Paper;
use super::projected::Projected;

/// Which networks to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arch {
    /// The paper's GAN. Generator: dense `C·(S/4)²` from the latent, reshaped to `C` channels
    /// of `(S/4)²` → LeakyReLU(0.2) → two 4×4 stride-2 transposed convolutions with 128
    /// filters, each + LeakyReLU(0.2) → 7×7 convolution to the image channels → sigmoid, where
    /// `C` = [`GanConfig::paper_fc_channels`]. Discriminator: two 3×3 stride-2 convolutions with
    /// 64 filters, each + LeakyReLU(0.2) + dropout 0.4, then one dense unit (a logit).
    Paper,
    /// Radford et al.'s DCGAN: 4×4 stride-2 (transposed) convolutions with batch norm, ReLU /
    /// LeakyReLU(0.2), tanh output; `S` must be a power of two, at least 16.
    Dcgan {
        /// Generator width (filters of its last hidden layer).
        ngf: i64,
        /// Discriminator width (filters of its first layer).
        ndf: i64,
    },
    /// A FastGAN-style pair (Liu et al. 2021), small enough for a CPU. Generator: the latent
    /// (+ label embedding) to 4×4 by a 4×4 transposed convolution, then per doubling a
    /// nearest-neighbour upsampling, a 3×3 convolution, batch norm and a gated linear unit;
    /// from 64² on, each map's channels are gated by the map of a 16th of its side
    /// (skip-layer excitation); a 3×3 convolution and tanh out. Discriminator: 4×4 stride-2
    /// convolutions with batch norm and LeakyReLU(0.2) down to 8×8, a 4×4 convolution to
    /// 5×5 patch logits (their mean is the logit), and a decoder from the 8×8 features that
    /// reconstructs its input at 32² (self-supervised, mean squared error). Trained with the
    /// hinge loss. `S` must be a power of two, at least 32.
    FastGan {
        /// Generator width (channels from 64² on; 16× that at 4²).
        ngf: i64,
        /// Discriminator width (filters of its first layer).
        ndf: i64,
    },
    /// FastGAN's generator against a projected discriminator (Sauer et al. 2021): a frozen
    /// ImageNet EfficientNet-Lite0 (its weights must be installed) reads the image at strides
    /// 4, 8, 16 and 32; each map's channels pass a fixed random 1×1 convolution, then a small
    /// trained head (4×4 stride-2 convolutions with batch norm and LeakyReLU(0.2) down to 4×4,
    /// a 4×4 convolution to one logit); the logit is the heads' mean. Hinge loss. `S` must be a
    /// power of two, at least 32; a conditional pair takes the label by projection only.
    Projected {
        /// Generator width (as [`Arch::FastGan`]'s).
        ngf: i64,
        /// Width of the heads' first downsampling at the input's half side (doubled at each
        /// halving, at most 16×).
        ndf: i64,
    },
}

impl Arch {
    /// The family that builds and trains these networks: the one place a configuration maps
    /// to its implementation.
    pub(crate) fn family(&self) -> Box<dyn GanFamily> {
        match *self {
            Arch::Paper => Box::new(Paper),
            Arch::Dcgan { ngf, ndf } => Box::new(Dcgan { ngf, ndf }),
            Arch::FastGan { ngf, ndf } => Box::new(FastGan { ngf, ndf }),
            Arch::Projected { ngf, ndf } => Box::new(Projected { ngf, ndf }),
        }
    }

    /// Whether this pair is trained with the hinge loss (FastGAN, projected) instead of the
    /// binary cross-entropy.
    pub fn hinge_loss(&self) -> bool {
        self.family().loss() == Loss::Hinge
    }

    /// Whether the discriminator scores a real and a fake batch in one pass (it has no batch
    /// norm, so the two batches cannot see each other's statistics).
    pub fn joint_discriminator_pass(&self) -> bool {
        self.family().joint_discriminator_pass()
    }
}

/// How a conditional discriminator takes the label (the generator always takes the label's
/// embedding beside the latent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Conditioning {
    /// The label's embedding, mapped to an image-sized plane, as a second input channel.
    #[default]
    Concat,
    /// Miyato & Koyama's projection: the logit gains the inner product of a learned class
    /// embedding with the globally summed features of the last hidden layer.
    Projection,
}

impl Conditioning {
    /// Whether this is [`Conditioning::Concat`].
    pub fn is_concat(&self) -> bool {
        *self == Conditioning::Concat
    }
}

/// Network configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanConfig {
    /// Architecture.
    pub arch: Arch,
    /// Image side `S` (images are `[N, C, S, S]` in [0, 1]).
    pub size: i64,
    /// Image channels `C`: 1 (gray, the default) or 3 (RGB). Not written when 1, so that
    /// configurations from before colour keep their meaning and their cache keys.
    #[serde(default = "default_channels", skip_serializing_if = "is_gray")]
    pub channels: i64,
    /// Latent dimension (the paper: 100).
    pub latent_dim: i64,
    /// `Some(n)`: a conditional GAN over `n` classes (label embedded into both networks).
    pub n_classes: Option<i64>,
    /// Size of the label embedding of a conditional GAN.
    pub embed_dim: i64,
    /// How a conditional discriminator takes the label (not written when it is the default,
    /// so that configurations from before it keep their meaning and their cache keys).
    #[serde(default, skip_serializing_if = "Conditioning::is_concat")]
    pub conditioning: Conditioning,
    /// Channels `C` of the paper generator's dense layer (`C·(S/4)²` units). The paper states
    /// 262,144 units at 256², i.e. `C` = 64 (the default); 128 gives the `128·(S/4)²` of the
    /// issue text and of `shared/peer/torch_paper_models.py` (524,288 at 256²).
    #[serde(default = "default_fc_channels")]
    pub paper_fc_channels: i64,
    /// Compute the stride-2 transposed convolutions as 3×3 convolutions + pixel shuffle (the
    /// same map; see [`crate::subpixel`]). Weights and checkpoints are the same either way.
    /// Off by default: it does 9/4 of the multiply-adds, and measured slower on a CPU
    /// (`docs/performance.md`).
    #[serde(default)]
    pub subpixel: bool,
    /// Keep images and convolution weights channels-last (NHWC), the layout oneDNN's CPU
    /// convolutions run fastest in (on by default; the same numbers either way).
    #[serde(default = "default_true")]
    pub channels_last: bool,
    /// Compute convolutions and dense layers in bf16 (autocast-style: `f32` weights, optimiser
    /// state, activations and loss; see [`ganaug_ops::Precision`]). Off by default: only worth
    /// it where the hardware has bf16 matrix units.
    #[serde(default)]
    pub bf16: bool,
}

pub(crate) fn default_true() -> bool {
    true
}

pub(crate) fn default_channels() -> i64 {
    1
}

fn is_gray(c: &i64) -> bool {
    *c == 1
}

pub(crate) fn default_fc_channels() -> i64 {
    64
}

impl Default for GanConfig {
    /// The paper's GAN at 256×256, latent 100, unconditional.
    fn default() -> Self {
        GanConfig {
            arch: Arch::Paper,
            size: 256,
            channels: 1,
            latent_dim: 100,
            n_classes: None,
            embed_dim: 50,
            conditioning: Conditioning::Concat,
            paper_fc_channels: 64,
            subpixel: false,
            channels_last: true,
            bf16: false,
        }
    }
}

impl Validate for GanConfig {
    type Error = GanError;

    /// Checks that the architecture can be built at this size.
    fn validate(&self) -> Result<()> {
        if self.latent_dim < 1 || self.embed_dim < 1 || self.paper_fc_channels < 1 {
            return Err(GanError::config(
                "latent_dim",
                "latent and embedding sizes must be positive",
            ));
        }
        if !matches!(self.channels, 1 | 3) {
            return Err(GanError::config(
                "channels",
                format!("{} channels; 1 (gray) or 3 (RGB) expected", self.channels),
            ));
        }
        if matches!(self.n_classes, Some(n) if n < 2) {
            return Err(GanError::config(
                "n_classes",
                "a conditional GAN needs at least 2 classes",
            ));
        }
        self.arch.family().validate(self)
    }
}

impl GanConfig {
    pub(crate) fn precision(&self) -> Precision {
        Precision::from_bf16(self.bf16)
    }

    /// Puts an image batch in the configured layout.
    pub(crate) fn layout(&self, x: &Tensor) -> Result<Tensor> {
        if self.channels_last && !ganaug_ops::is_channels_last(x) {
            Ok(ganaug_ops::to_channels_last(x)?)
        } else {
            Ok(x.shallow_clone())
        }
    }

    /// Checks a batch of images for these networks — `[N, C, S, S]`, float, at least
    /// `min_n` of them — and returns `N`.
    pub(crate) fn check_images(&self, what: &'static str, x: &Tensor, min_n: i64) -> Result<i64> {
        let (s, c, size) = (self.size, self.channels, x.size());
        let n = size.first().copied().unwrap_or(0);
        if size != [n, c, s, s] || n < min_n || x.kind() != Kind::Float {
            return Err(GanError::Shape {
                what,
                expected: match min_n {
                    0 => format!("[N, {c}, {s}, {s}] Float"),
                    _ => format!("[N, {c}, {s}, {s}] Float, N ≥ {min_n}"),
                },
                got: format!("{size:?} {:?}", x.kind()),
            });
        }
        Ok(n)
    }

    /// Checks the class labels of `n` images for a conditional network: `[n]` Int64 and, with
    /// `values`, each in `0..n_classes` (libtorch's embedding aborts the process on anything
    /// else; the value check costs a device sync, so the trainer makes it once per batch).
    pub(crate) fn check_labels(&self, labels: &Tensor, n: i64, values: bool) -> Result<()> {
        let classes = self.n_classes.unwrap_or(0);
        let expected = || format!("[{n}] Int64 class indices in 0..{classes}");
        if labels.size() != [n] || labels.kind() != Kind::Int64 {
            return Err(GanError::Shape {
                what: "labels",
                expected: expected(),
                got: format!("{:?} {:?}", labels.size(), labels.kind()),
            });
        }
        if values && n > 0 {
            let range = Tensor::f_stack(&[labels.f_min()?, labels.f_max()?], 0)?;
            let range = Vec::<i64>::try_from(&range.f_to_device(Device::Cpu)?)?;
            if range[0] < 0 || range[1] >= classes {
                return Err(GanError::Shape {
                    what: "labels",
                    expected: expected(),
                    got: format!("values {}..={}", range[0], range[1]),
                });
            }
        }
        Ok(())
    }

    /// Gives a convolution weight the configured layout, in place (the variable keeps its
    /// identity, so optimisers and checkpoints are unaffected).
    pub(crate) fn layout_weight(&self, w: &Tensor) -> Result<()> {
        if self.channels_last {
            ganaug_ops::set_channels_last(w)?;
        }
        Ok(())
    }
}
