//! The paper's GAN. Generator: dense `C·(S/4)²` from the latent, reshaped to `C` channels of
//! `(S/4)²` → LeakyReLU(0.2) → two 4×4 stride-2 transposed convolutions with 128 filters, each
//! followed by LeakyReLU(0.2) → 7×7 convolution to the image channels → sigmoid.
//! Discriminator: two 3×3 stride-2 convolutions with 64 filters, each followed by
//! LeakyReLU(0.2) and dropout 0.4, then one dense unit. Binary cross-entropy; no batch norm,
//! so real and fake batches share one pass.

use ganaug_ops::{Conv, ConvTranspose, Dense};
use tch::nn::{self, Module};
use tch::Tensor;

use crate::{GanError, Result};

use super::family::{DiscriminatorBody, GanFamily, GeneratorBody, Loss, Scores};
use super::layers::{conv_layer, leaky, up_layer, up_leaky};
use super::GanConfig;

/// The paper's GAN (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paper;

/// The discriminator's hidden width.
const HIDDEN: i64 = 64;

impl GanFamily for Paper {
    fn validate(&self, cfg: &GanConfig) -> Result<()> {
        if cfg.size < 4 || cfg.size % 4 != 0 {
            return Err(GanError::config(
                "size",
                format!(
                    "the paper's GAN needs a size divisible by 4, got {}",
                    cfg.size
                ),
            ));
        }
        Ok(())
    }

    fn generator(
        &self,
        p: &nn::Path,
        cfg: &GanConfig,
        z_in: i64,
    ) -> Result<Box<dyn GeneratorBody>> {
        let (q, c) = (cfg.size / 4, cfg.paper_fc_channels);
        Ok(Box::new(PaperGenerator {
            fc: ganaug_ops::dense(p / "fc", z_in, c * q * q, cfg.precision()),
            up1: up_layer(p / "up1", cfg, (c, 128), (2, 1), true, None)?,
            up2: up_layer(p / "up2", cfg, (128, 128), (2, 1), true, None)?,
            out: conv_layer(
                p / "out",
                cfg,
                (128, cfg.channels, 7),
                (1, 3),
                Default::default(),
            )?,
        }))
    }

    fn hidden_width(&self, _cfg: &GanConfig) -> Result<i64> {
        Ok(HIDDEN)
    }

    fn discriminator(
        &self,
        p: &nn::Path,
        cfg: &GanConfig,
        c_in: i64,
    ) -> Result<Box<dyn DiscriminatorBody>> {
        let q = (cfg.size + 3) / 4;
        let d = Default::default();
        Ok(Box::new(PaperDiscriminator {
            c1: conv_layer(p / "c1", cfg, (c_in, HIDDEN, 3), (2, 1), d)?,
            c2: conv_layer(p / "c2", cfg, (HIDDEN, HIDDEN, 3), (2, 1), d)?,
            fc: ganaug_ops::dense(p / "fc", HIDDEN * q * q, 1, cfg.precision()),
        }))
    }

    fn loss(&self) -> Loss {
        Loss::CrossEntropy
    }

    fn joint_discriminator_pass(&self) -> bool {
        true
    }
}

#[derive(Debug)]
struct PaperGenerator {
    fc: Dense,
    up1: ConvTranspose,
    up2: ConvTranspose,
    out: Conv,
}

impl GeneratorBody for PaperGenerator {
    fn forward(&self, cfg: &GanConfig, z: &Tensor, _train: bool) -> Result<Tensor> {
        let (s, c) = (cfg.size, cfg.paper_fc_channels);
        let h = leaky(&self.fc.forward(z))?.f_view([-1, c, s / 4, s / 4])?;
        let h = cfg.layout(&h)?;
        let h = up_leaky(cfg, &self.up1, &h)?;
        let h = up_leaky(cfg, &self.up2, &h)?;
        Ok(out_layer(cfg, &self.out, &h)?.sigmoid())
    }
}

/// The 7×7 output convolution: to one (gray) channel as the batched product + `col2im` form of
/// `ganaug-ops` (a third of the time of oneDNN's direct kernel on a CPU; see
/// [`ganaug_ops::conv2d_one_output`]); to three (RGB) by libtorch's convolution.
fn out_layer(cfg: &GanConfig, out: &Conv, h: &Tensor) -> Result<Tensor> {
    if cfg.bf16 || cfg.channels != 1 {
        return Ok(out.forward(h));
    }
    Ok(ganaug_ops::conv2d_one_output(h, &out.ws, out.bs.as_ref())?)
}

#[derive(Debug)]
struct PaperDiscriminator {
    c1: Conv,
    c2: Conv,
    fc: Dense,
}

impl DiscriminatorBody for PaperDiscriminator {
    fn forward(
        &self,
        cfg: &GanConfig,
        x: &Tensor,
        _image: &Tensor,
        train: bool,
        _reconstruct: bool,
    ) -> Result<Scores> {
        let x = cfg.layout(x)?;
        let h = ganaug_ops::dropout(&leaky(&self.c1.forward(&x))?, 0.4, train)?;
        let h = ganaug_ops::dropout(&leaky(&self.c2.forward(&h))?, 0.4, train)?;
        let logits = self.fc.forward(&h.flatten(1, -1)).view([-1]);
        Ok(Scores {
            logits,
            hidden: h,
            reconstruction: None,
        })
    }
}
