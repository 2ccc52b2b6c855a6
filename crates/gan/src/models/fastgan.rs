//! The blocks of a FastGAN-style pair (Liu et al. 2021, "Towards Faster and Stabilized GAN
//! Training for High-fidelity Few-shot Image Synthesis"), kept small enough for a CPU:
//! upsampling blocks with gated linear units, skip-layer excitation, and the discriminator's
//! decoder for its self-supervised reconstruction loss.
//!
//! What is left out of the original: the noise injection, the second (cropped) decoder, and the
//! perceptual (LPIPS) reconstruction loss, which is a mean squared error here.

use ganaug_ops::{Conv, ConvTranspose};
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use crate::Result;

use super::family::{DiscriminatorBody, GanFamily, GeneratorBody, Loss, Scores};
use super::layers::{conv_layer, dcgan_batch_norm, dcgan_conv_config, dcgan_init, leaky, up_layer};
use super::{GanConfig, Reconstruction};

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

/// A FastGAN-style pair (Liu et al. 2021), small enough for a CPU. Generator: the latent
/// (+ label embedding) to 4×4 by a 4×4 transposed convolution, then per doubling a
/// nearest-neighbour upsampling, a 3×3 convolution, batch norm and a gated linear unit; from
/// 64² on, each map's channels are gated by the map of a 16th of its side (skip-layer
/// excitation); a 3×3 convolution and tanh out. Discriminator: 4×4 stride-2 convolutions with
/// batch norm and LeakyReLU(0.2) down to 8×8, a 4×4 convolution to 5×5 patch logits (their
/// mean is the logit), and a decoder from the 8×8 features that reconstructs its input at 32²
/// (self-supervised, mean squared error). Hinge loss; the size must be a power of two, at least
/// 32.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastGan {
    pub(crate) ngf: i64,
    pub(crate) ndf: i64,
}

/// The checks FastGAN's generator makes of a configuration (the projected pair shares it).
pub(crate) fn validate_fastgan(ngf: i64, ndf: i64, cfg: &GanConfig) -> Result<()> {
    if ngf < 1 || ndf < 1 {
        return Err(crate::GanError::config(
            "arch",
            "ngf and ndf must be positive",
        ));
    }
    if cfg.size < 32 || (cfg.size & (cfg.size - 1)) != 0 {
        return Err(crate::GanError::config(
            "size",
            format!(
                "FastGAN and the projected pair need a power-of-two size of at least 32, got {}",
                cfg.size
            ),
        ));
    }
    Ok(())
}

impl GanFamily for FastGan {
    fn validate(&self, cfg: &GanConfig) -> Result<()> {
        validate_fastgan(self.ngf, self.ndf, cfg)
    }

    fn generator(
        &self,
        p: &nn::Path,
        cfg: &GanConfig,
        z_in: i64,
    ) -> Result<Box<dyn GeneratorBody>> {
        Ok(Box::new(FastGanGenerator::new(p, cfg, self.ngf, z_in)?))
    }

    fn hidden_width(&self, cfg: &GanConfig) -> Result<i64> {
        Ok(disc_width(self.ndf, cfg.size, FEATURE_SIDE))
    }

    fn discriminator(
        &self,
        p: &nn::Path,
        cfg: &GanConfig,
        c_in: i64,
    ) -> Result<Box<dyn DiscriminatorBody>> {
        let s = cfg.size;
        let mut downs = Vec::new();
        let (mut c, mut r) = (c_in, s / 2);
        while r >= FEATURE_SIDE {
            let c_out = disc_width(self.ndf, s, r);
            let name = p / format!("down{r}");
            downs.push(DownBlock::new(name, cfg, c, c_out, !downs.is_empty())?);
            (c, r) = (c_out, r / 2);
        }
        Ok(Box::new(FastGanDiscriminator {
            downs,
            patches: conv_layer(p / "patches", cfg, (c, 1, 4), (1, 0), dcgan_conv_config())?,
            decoder: Decoder::new(p / "decoder", cfg, c)?,
        }))
    }

    fn loss(&self) -> Loss {
        Loss::Hinge
    }
}

/// FastGAN's generator (also the projected pair's).
#[derive(Debug)]
pub(crate) struct FastGanGenerator {
    init: (ConvTranspose, nn::BatchNorm),
    /// One block per doubling from 4² to `S`², each with the excitation of its output by the
    /// map of a 16th of its side (from 64² on).
    ups: Vec<(UpBlock, Option<Excite>)>,
    out: Conv,
}

impl FastGanGenerator {
    pub(crate) fn new(p: &nn::Path, cfg: &GanConfig, ngf: i64, z_in: i64) -> Result<Self> {
        let c4 = gen_width(ngf, 4);
        let init = (
            up_layer(
                p / "init",
                cfg,
                (z_in, 2 * c4),
                (1, 0),
                false,
                Some(dcgan_init()),
            )?,
            dcgan_batch_norm(&(p / "init_bn"), 2 * c4),
        );
        let mut ups = Vec::new();
        let mut r = 8;
        while r <= cfg.size {
            let (c_in, c_out) = (gen_width(ngf, r / 2), gen_width(ngf, r));
            let block = UpBlock::new(p / format!("up{r}"), cfg, c_in, c_out)?;
            let excite = (r >= 64)
                .then(|| Excite::new(p / format!("se{r}"), cfg, gen_width(ngf, r / 16), c_out))
                .transpose()?;
            ups.push((block, excite));
            r *= 2;
        }
        let c = gen_width(ngf, cfg.size);
        let out_cfg = nn::ConvConfig {
            ws_init: dcgan_init(),
            ..Default::default()
        };
        let out = conv_layer(p / "out", cfg, (c, cfg.channels, 3), (1, 1), out_cfg)?;
        Ok(FastGanGenerator { init, ups, out })
    }
}

impl GeneratorBody for FastGanGenerator {
    fn forward(&self, cfg: &GanConfig, z: &Tensor, train: bool) -> Result<Tensor> {
        let h = z.f_view([-1, z.size()[1], 1, 1])?;
        let h = cfg.layout(&self.init.0.forward(&h)?)?;
        let mut h = self.init.1.forward_t(&h, train).f_glu(1)?;
        // feats[k] is the map at side 4·2^k; an excitation of the map at side 4·2^(k+1)
        // reads feats[k - 3], a 16th of its side.
        let mut feats = Vec::with_capacity(self.ups.len());
        for (k, (block, excite)) in self.ups.iter().enumerate() {
            let mut next = block.forward_t(&h, train)?;
            feats.push(h);
            if let Some(e) = excite {
                next = e.forward(&feats[k - 3], &next)?;
            }
            h = next;
        }
        Ok((self.out.forward(&h).tanh() + 1.0) * 0.5)
    }
}

#[derive(Debug)]
struct FastGanDiscriminator {
    downs: Vec<DownBlock>,
    /// 4×4 convolution from the 8×8 features to 5×5 patch logits.
    patches: Conv,
    decoder: Decoder,
}

impl DiscriminatorBody for FastGanDiscriminator {
    fn forward(
        &self,
        cfg: &GanConfig,
        x: &Tensor,
        image: &Tensor,
        train: bool,
        reconstruct: bool,
    ) -> Result<Scores> {
        let mut h = cfg.layout(&(x * 2.0 - 1.0))?;
        for block in &self.downs {
            h = block.forward_t(&h, train)?;
        }
        let logits = self
            .patches
            .forward(&h)
            .f_mean_dim(&[1i64, 2, 3][..], false, h.kind())?;
        let reconstruction = if reconstruct {
            let target = (image * 2.0 - 1.0).f_adaptive_avg_pool2d([RECON_SIDE; 2])?;
            Some(Reconstruction {
                image: self.decoder.forward_t(&h, train)?,
                target,
            })
        } else {
            None
        };
        Ok(Scores {
            logits,
            hidden: h,
            reconstruction,
        })
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
