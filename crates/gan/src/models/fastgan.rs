//! The blocks of a FastGAN-style pair (Liu et al. 2021, "Towards Faster and Stabilized GAN
//! Training for High-fidelity Few-shot Image Synthesis"), kept small enough for a CPU:
//! upsampling blocks with gated linear units, skip-layer excitation, and the discriminator's
//! decoder for its self-supervised reconstruction loss.
//!
//! What is left out of the original: the noise injection, the second (cropped) decoder, and the
//! perceptual (LPIPS) reconstruction loss, which is a mean squared error here.

use ganaug_ops::Conv;
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use crate::Result;

use super::layers::{conv_layer, dcgan_batch_norm, dcgan_init, leaky};
use super::GanConfig;

/// The side of the discriminator's last feature map, and of the decoder's input.
pub(crate) const FEATURE_SIDE: i64 = 8;
/// The side of the image the discriminator's decoder reconstructs (the input, area-resized).
pub(crate) const RECON_SIDE: i64 = 32;

/// Generator channels at resolution `r`: `ngf · clamp(64 / r, 1, 16)` (16·ngf at 4², ngf from
/// 64² on).
pub(crate) fn gen_width(ngf: i64, r: i64) -> i64 {
    ngf * (64 / r).clamp(1, 16)
}

/// Discriminator channels after the downsampling to side `r` from an input of side `s`:
/// `ndf` at `s/2`, doubled at each halving, at most `16·ndf`.
pub(crate) fn disc_width(ndf: i64, s: i64, r: i64) -> i64 {
    ndf * (s / 2 / r).clamp(1, 16)
}

fn plain(p: nn::Path, cfg: &GanConfig, (c_in, c_out, k): (i64, i64, i64)) -> Result<Conv> {
    let conv_cfg = nn::ConvConfig {
        bias: false,
        ws_init: dcgan_init(),
        ..Default::default()
    };
    conv_layer(p, cfg, (c_in, c_out, k), (1, k / 2), conv_cfg)
}

/// Nearest-neighbour ×2 → 3×3 convolution to `2·c_out` → batch norm → GLU (to `c_out`).
#[derive(Debug)]
pub(crate) struct UpBlock {
    conv: Conv,
    bn: nn::BatchNorm,
}

impl UpBlock {
    pub(crate) fn new(p: nn::Path, cfg: &GanConfig, c_in: i64, c_out: i64) -> Result<Self> {
        Ok(UpBlock {
            bn: dcgan_batch_norm(&(&p / "bn"), 2 * c_out),
            conv: plain(&p / "conv", cfg, (c_in, 2 * c_out, 3))?,
        })
    }

    pub(crate) fn forward_t(&self, h: &Tensor, train: bool) -> Result<Tensor> {
        let size = h.size();
        let (rows, cols) = (size[2] * 2, size[3] * 2);
        let h = h.f_upsample_nearest2d([rows, cols], None, None)?;
        let h = self.bn.forward_t(&self.conv.forward(&h), train);
        Ok(h.f_glu(1)?)
    }
}

/// Skip-layer excitation: a low-resolution feature map gates the channels of a
/// high-resolution one (pool to 4×4 → 4×4 convolution to 1×1 → LeakyReLU(0.1) → 1×1
/// convolution → sigmoid → channel-wise product).
#[derive(Debug)]
pub(crate) struct Excite {
    squeeze: Conv,
    gate: Conv,
}

impl Excite {
    pub(crate) fn new(p: nn::Path, cfg: &GanConfig, c_small: i64, c_big: i64) -> Result<Self> {
        let conv_cfg = nn::ConvConfig {
            bias: false,
            ws_init: dcgan_init(),
            ..Default::default()
        };
        Ok(Excite {
            squeeze: conv_layer(&p / "squeeze", cfg, (c_small, c_big, 4), (1, 0), conv_cfg)?,
            gate: conv_layer(&p / "gate", cfg, (c_big, c_big, 1), (1, 0), conv_cfg)?,
        })
    }

    pub(crate) fn forward(&self, small: &Tensor, big: &Tensor) -> Result<Tensor> {
        let s = small.f_adaptive_avg_pool2d([4, 4])?;
        let s = ganaug_ops::leaky_relu(&self.squeeze.forward(&s), 0.1)?;
        let s = self.gate.forward(&s).f_sigmoid()?;
        Ok(big.f_mul(&s)?)
    }
}

/// The discriminator's decoder: its 8×8 features → a `RECON_SIDE`² image in [-1, 1].
#[derive(Debug)]
pub(crate) struct Decoder {
    ups: Vec<UpBlock>,
    out: Conv,
}

impl Decoder {
    pub(crate) fn new(p: nn::Path, cfg: &GanConfig, c_in: i64) -> Result<Self> {
        let mut ups = Vec::new();
        let (mut c, mut side, mut i) = (c_in, FEATURE_SIDE, 0);
        while side < RECON_SIDE {
            let c_out = (c / 2).max(8);
            ups.push(UpBlock::new(&p / format!("up{i}"), cfg, c, c_out)?);
            (c, side, i) = (c_out, side * 2, i + 1);
        }
        let out_cfg = nn::ConvConfig {
            ws_init: dcgan_init(),
            ..Default::default()
        };
        let out = conv_layer(&p / "out", cfg, (c, cfg.channels, 3), (1, 1), out_cfg)?;
        Ok(Decoder { ups, out })
    }

    pub(crate) fn forward_t(&self, h: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = h.shallow_clone();
        for up in &self.ups {
            h = up.forward_t(&h, train)?;
        }
        Ok(self.out.forward(&h).f_tanh()?)
    }
}

/// A stride-2 4×4 convolution → batch norm (not on the first) → LeakyReLU(0.2).
#[derive(Debug)]
pub(crate) struct DownBlock {
    conv: Conv,
    bn: Option<nn::BatchNorm>,
}

impl DownBlock {
    pub(crate) fn new(
        p: nn::Path,
        cfg: &GanConfig,
        c_in: i64,
        c_out: i64,
        bn: bool,
    ) -> Result<Self> {
        let conv_cfg = nn::ConvConfig {
            bias: !bn,
            ws_init: dcgan_init(),
            ..Default::default()
        };
        Ok(DownBlock {
            bn: bn.then(|| dcgan_batch_norm(&(&p / "bn"), c_out)),
            conv: conv_layer(&p / "conv", cfg, (c_in, c_out, 4), (2, 1), conv_cfg)?,
        })
    }

    pub(crate) fn forward_t(&self, h: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.conv.forward(h);
        let h = match &self.bn {
            Some(bn) => bn.forward_t(&h, train),
            None => h,
        };
        leaky(&h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_follow_the_resolution() {
        assert_eq!(
            [4, 8, 16, 32, 64, 128].map(|r| gen_width(8, r)),
            [128, 64, 32, 16, 8, 8]
        );
        assert_eq!(
            [64, 32, 16, 8].map(|r| disc_width(8, 128, r)),
            [8, 16, 32, 64]
        );
        assert_eq!([16, 8].map(|r| disc_width(8, 32, r)), [8, 16]);
    }
}
