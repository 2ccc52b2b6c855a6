//! The generator: latents (and labels) to images.

use ganaug_ops::{Conv, ConvTranspose, Dense};
use tch::nn::{self, Module, ModuleT};
use tch::{Kind, Tensor};

use ganaug_train::Validate;

use crate::{GanError, Result};

use super::fastgan::{gen_width, Excite, UpBlock};
use super::layers::*;
use super::{Arch, GanConfig};

/// Generator network: latent `[N, latent_dim]` (+ labels) → images `[N, C, S, S]` in [0, 1].
#[derive(Debug)]
pub struct Generator {
    cfg: GanConfig,
    embed: Option<nn::Embedding>,
    body: GenBody,
}

// One body per model: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum GenBody {
    Paper {
        fc: Dense,
        up1: ConvTranspose,
        up2: ConvTranspose,
        out: Conv,
    },
    Dcgan {
        ups: Vec<(ConvTranspose, Option<nn::BatchNorm>)>,
    },
    FastGan {
        init: (ConvTranspose, nn::BatchNorm),
        /// One block per doubling from 4² to `S`², each with the excitation of its output by
        /// the map of a 16th of its side (from 64² on).
        ups: Vec<(UpBlock, Option<Excite>)>,
        out: Conv,
    },
}

impl Generator {
    /// Builds the generator under `p`.
    pub fn new(p: &nn::Path, cfg: &GanConfig) -> Result<Self> {
        cfg.validate()?;
        let embed = cfg
            .n_classes
            .map(|n| nn::embedding(p / "embed", n, cfg.embed_dim, Default::default()));
        let z_in = cfg.latent_dim + if embed.is_some() { cfg.embed_dim } else { 0 };
        let body = match cfg.arch {
            Arch::Paper => {
                let (q, c) = (cfg.size / 4, cfg.paper_fc_channels);
                GenBody::Paper {
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
                }
            }
            Arch::Dcgan { ngf, .. } => {
                let n_up = (cfg.size as f64).log2() as i64 - 2;
                let mut ups = Vec::new();
                let mut c_in = z_in;
                for i in 0..=n_up {
                    let last = i == n_up;
                    let c_out = if last {
                        cfg.channels
                    } else {
                        ngf << (n_up - 1 - i)
                    };
                    let (stride, padding) = if i == 0 { (1, 0) } else { (2, 1) };
                    let conv = up_layer(
                        p / format!("up{i}"),
                        cfg,
                        (c_in, c_out),
                        (stride, padding),
                        false,
                        Some(dcgan_init()),
                    )?;
                    let bn = (!last).then(|| dcgan_batch_norm(&(p / format!("bn{i}")), c_out));
                    ups.push((conv, bn));
                    c_in = c_out;
                }
                GenBody::Dcgan { ups }
            }
            Arch::FastGan { ngf, .. } | Arch::Projected { ngf, .. } => {
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
                        .then(|| {
                            Excite::new(p / format!("se{r}"), cfg, gen_width(ngf, r / 16), c_out)
                        })
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
                GenBody::FastGan { init, ups, out }
            }
        };
        Ok(Generator {
            cfg: cfg.clone(),
            embed,
            body,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GanConfig {
        &self.cfg
    }

    /// A stride-2, kernel-4, padding-1 transposed convolution, by the configured method.
    fn up(&self, conv: &ConvTranspose, h: &Tensor) -> Result<Tensor> {
        if self.cfg.subpixel {
            crate::subpixel::conv_transpose_s2k4(h, &conv.ws, conv.bs.as_ref())
        } else {
            conv.forward(h).map_err(Into::into)
        }
    }

    /// [`Self::up`] followed by LeakyReLU(0.2), bias and activation fused where they can be.
    fn up_leaky(&self, conv: &ConvTranspose, h: &Tensor) -> Result<Tensor> {
        if self.cfg.subpixel {
            leaky(&self.up(conv, h)?)
        } else {
            Ok(conv.forward_leaky_relu(h, 0.2)?)
        }
    }

    /// The paper generator's 7×7 output convolution: to one (gray) channel as the batched
    /// product + `col2im` form of `ganaug-ops` (a third of the time of oneDNN's direct kernel on
    /// a CPU; see [`ganaug_ops::conv2d_one_output`]); to three (RGB) by libtorch's convolution.
    fn out_layer(&self, out: &Conv, h: &Tensor) -> Result<Tensor> {
        if self.cfg.bf16 || self.cfg.channels != 1 {
            return Ok(out.forward(h));
        }
        Ok(ganaug_ops::conv2d_one_output(h, &out.ws, out.bs.as_ref())?)
    }

    /// Generates images.
    ///
    /// # Shapes
    /// `z: [N, latent_dim]`, `labels: [N]` (conditional only) → `[N, C, S, S]` in [0, 1].
    pub fn forward_t(&self, z: &Tensor, labels: Option<&Tensor>, train: bool) -> Result<Tensor> {
        self.forward_inner(z, labels, train, true)
    }

    /// [`Self::forward_t`], checking the label values only if `check_label_values` (the
    /// trainer checks each batch's once).
    pub(crate) fn forward_inner(
        &self,
        z: &Tensor,
        labels: Option<&Tensor>,
        train: bool,
        check_label_values: bool,
    ) -> Result<Tensor> {
        let n = z.size().first().copied().unwrap_or(0);
        if z.size() != [n, self.cfg.latent_dim] || z.kind() != Kind::Float {
            return Err(GanError::Shape {
                what: "latent",
                expected: format!("[N, {}] Float", self.cfg.latent_dim),
                got: format!("{:?} {:?}", z.size(), z.kind()),
            });
        }
        let z = match (&self.embed, labels) {
            (Some(e), Some(y)) => {
                self.cfg.check_labels(y, n, check_label_values)?;
                Tensor::f_cat(&[z, &e.forward(y)], 1)?
            }
            (None, None) => z.shallow_clone(),
            (Some(_), None) => {
                return Err(GanError::config(
                    "labels",
                    "a conditional generator needs labels",
                ))
            }
            (None, Some(_)) => {
                return Err(GanError::config(
                    "labels",
                    "this generator is not conditional",
                ))
            }
        };
        let s = self.cfg.size;
        Ok(match &self.body {
            GenBody::Paper { fc, up1, up2, out } => {
                let c = self.cfg.paper_fc_channels;
                let h = leaky(&fc.forward(&z))?.f_view([-1, c, s / 4, s / 4])?;
                let h = self.cfg.layout(&h)?;
                let h = self.up_leaky(up1, &h)?;
                let h = self.up_leaky(up2, &h)?;
                self.out_layer(out, &h)?.sigmoid()
            }
            GenBody::Dcgan { ups } => {
                let mut h = z.f_view([-1, z.size()[1], 1, 1])?;
                for (i, (conv, bn)) in ups.iter().enumerate() {
                    // The first layer (1×1 → 4×4, stride 1) is not a stride-2 upsampling.
                    h = if i == 0 {
                        self.cfg.layout(&conv.forward(&h)?)?
                    } else {
                        self.up(conv, &h)?
                    };
                    if let Some(bn) = bn {
                        h = bn.forward_t(&h, train).relu();
                    }
                }
                // tanh output, mapped to the data range [0, 1].
                (h.tanh() + 1.0) * 0.5
            }
            GenBody::FastGan { init, ups, out } => {
                let h = z.f_view([-1, z.size()[1], 1, 1])?;
                let h = self.cfg.layout(&init.0.forward(&h)?)?;
                let mut h = init.1.forward_t(&h, train).f_glu(1)?;
                // feats[k] is the map at side 4·2^k; an excitation of the map at side 4·2^(k+1)
                // reads feats[k - 3], a 16th of its side.
                let mut feats = Vec::with_capacity(ups.len());
                for (k, (block, excite)) in ups.iter().enumerate() {
                    let mut next = block.forward_t(&h, train)?;
                    feats.push(h);
                    if let Some(e) = excite {
                        next = e.forward(&feats[k - 3], &next)?;
                    }
                    h = next;
                }
                (out.forward(&h).tanh() + 1.0) * 0.5
            }
        })
    }
}
