//! The discriminator: images (and labels) to logits.

use ganaug_ops::{Conv, Dense};
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use ganaug_train::Validate;

use crate::{GanError, Result};

use super::fastgan::{disc_width, Decoder, DownBlock, FEATURE_SIDE, RECON_SIDE};
use super::layers::*;
use super::projected::{feature_network, ProjectedHeads};
use super::{Arch, Conditioning, GanConfig};

/// Discriminator network: images `[N, C, S, S]` in [0, 1] (+ labels) → logits `[N]`.
#[derive(Debug)]
pub struct Discriminator {
    cfg: GanConfig,
    label_map: Option<(nn::Embedding, nn::Linear)>,
    /// The class embedding of a projection discriminator (width of the last hidden layer).
    projection: Option<nn::Embedding>,
    body: DiscBody,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum DiscBody {
    Paper {
        c1: Conv,
        c2: Conv,
        fc: Dense,
    },
    Dcgan {
        downs: Vec<(Conv, Option<nn::BatchNorm>)>,
        out: Conv,
    },
    FastGan {
        downs: Vec<DownBlock>,
        /// 4×4 convolution from the 8×8 features to 5×5 patch logits.
        patches: Conv,
        decoder: Decoder,
    },
    Projected(ProjectedHeads),
}

/// A FastGAN discriminator's reconstruction of its input and the target it is scored against
/// (the input, in [-1, 1], area-resized to 32²).
#[derive(Debug)]
pub(crate) struct Reconstruction {
    pub(crate) image: Tensor,
    pub(crate) target: Tensor,
}

impl Discriminator {
    /// Builds the discriminator under `p`.
    pub fn new(p: &nn::Path, cfg: &GanConfig) -> Result<Self> {
        cfg.validate()?;
        let s = cfg.size;
        // A concat-conditioned discriminator sees the label as an extra image channel.
        let concat = cfg.conditioning == Conditioning::Concat;
        let label_map = cfg.n_classes.filter(|_| concat).map(|n| {
            (
                nn::embedding(p / "embed", n, cfg.embed_dim, Default::default()),
                nn::linear(p / "label_fc", cfg.embed_dim, s * s, Default::default()),
            )
        });
        let hidden = match cfg.arch {
            Arch::Paper => 64,
            Arch::Dcgan { ndf, .. } => ndf << ((s as f64).log2() as i64 - 3),
            Arch::FastGan { ndf, .. } => disc_width(ndf, s, FEATURE_SIDE),
            Arch::Projected { ndf, .. } => ProjectedHeads::hidden(ndf, s)?,
        };
        let projection = cfg.n_classes.filter(|_| !concat).map(|n| {
            let init = nn::EmbeddingConfig {
                ws_init: nn::Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
                ..Default::default()
            };
            nn::embedding(p / "projection", n, hidden, init)
        });
        let c_in = cfg.channels + i64::from(label_map.is_some());
        let body = match cfg.arch {
            Arch::Paper => {
                let q = (s + 3) / 4;
                let d = Default::default();
                DiscBody::Paper {
                    c1: conv_layer(p / "c1", cfg, (c_in, 64, 3), (2, 1), d)?,
                    c2: conv_layer(p / "c2", cfg, (64, 64, 3), (2, 1), d)?,
                    fc: ganaug_ops::dense(p / "fc", 64 * q * q, 1, cfg.precision()),
                }
            }
            Arch::Dcgan { ndf, .. } => {
                let n_down = (s as f64).log2() as i64 - 2;
                let mut downs = Vec::new();
                let mut c = c_in;
                for i in 0..n_down {
                    let c_out = ndf << i;
                    let conv = conv_layer(
                        p / format!("down{i}"),
                        cfg,
                        (c, c_out, 4),
                        (2, 1),
                        dcgan_conv_config(),
                    )?;
                    let bn = (i > 0).then(|| dcgan_batch_norm(&(p / format!("bn{i}")), c_out));
                    downs.push((conv, bn));
                    c = c_out;
                }
                DiscBody::Dcgan {
                    downs,
                    out: conv_layer(p / "out", cfg, (c, 1, 4), (1, 0), dcgan_conv_config())?,
                }
            }
            Arch::FastGan { ndf, .. } => {
                let mut downs = Vec::new();
                let (mut c, mut r) = (c_in, s / 2);
                while r >= FEATURE_SIDE {
                    let c_out = disc_width(ndf, s, r);
                    let name = p / format!("down{r}");
                    downs.push(DownBlock::new(name, cfg, c, c_out, !downs.is_empty())?);
                    (c, r) = (c_out, r / 2);
                }
                DiscBody::FastGan {
                    downs,
                    patches: conv_layer(
                        p / "patches",
                        cfg,
                        (c, 1, 4),
                        (1, 0),
                        dcgan_conv_config(),
                    )?,
                    decoder: Decoder::new(p / "decoder", cfg, c)?,
                }
            }
            Arch::Projected { ndf, .. } => {
                let features = feature_network(p.device())?;
                DiscBody::Projected(ProjectedHeads::new(p, cfg, ndf, features)?)
            }
        };
        Ok(Discriminator {
            cfg: cfg.clone(),
            label_map,
            projection,
            body,
        })
    }

    /// Scores images; higher logits mean "real".
    ///
    /// # Shapes
    /// `x: [N, C, S, S]`, `labels: [N]` (conditional only) → `[N]` logits.
    pub fn forward_t(&self, x: &Tensor, labels: Option<&Tensor>, train: bool) -> Result<Tensor> {
        self.forward_inner(x, labels, train, true)
    }

    /// A FastGAN discriminator's reconstruction of its input from its 8×8 features, `[N, C,
    /// 32, 32]` in [0, 1], in eval mode (what its self-supervised loss trains it to produce:
    /// the input area-resized to 32²). Other architectures have no decoder: a config error.
    pub fn reconstruct(&self, x: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        match self.forward_parts(x, labels, false, true, true)?.1 {
            Some(r) => Ok((r.image + 1.0) * 0.5),
            None => Err(GanError::config(
                "arch",
                "only a FastGAN discriminator reconstructs its input",
            )),
        }
    }

    /// [`Self::forward_t`], checking the label values only if `check_label_values` (the
    /// trainer checks each batch's once).
    pub(crate) fn forward_inner(
        &self,
        x: &Tensor,
        labels: Option<&Tensor>,
        train: bool,
        check_label_values: bool,
    ) -> Result<Tensor> {
        Ok(self
            .forward_parts(x, labels, train, check_label_values, false)?
            .0)
    }

    /// [`Self::forward_inner`] and, for FastGAN when `reconstruct`, the decoder's
    /// reconstruction of the input (its self-supervised loss; `None` for other networks).
    pub(crate) fn forward_parts(
        &self,
        x: &Tensor,
        labels: Option<&Tensor>,
        train: bool,
        check_label_values: bool,
        reconstruct: bool,
    ) -> Result<(Tensor, Option<Reconstruction>)> {
        let s = self.cfg.size;
        let image = x;
        let n = self.cfg.check_images("discriminator input", x, 0)?;
        let conditional = self.label_map.is_some() || self.projection.is_some();
        let x = match (&self.label_map, labels) {
            (Some((e, fc)), Some(y)) => {
                self.cfg.check_labels(y, n, check_label_values)?;
                let plane = fc.forward(&e.forward(y)).f_view([-1, 1, s, s])?;
                Tensor::f_cat(&[x, &plane], 1)?
            }
            (None, Some(y)) if self.projection.is_some() => {
                self.cfg.check_labels(y, n, check_label_values)?;
                x.shallow_clone()
            }
            (None, None) if !conditional => x.shallow_clone(),
            (_, None) => {
                return Err(GanError::config(
                    "labels",
                    "a conditional discriminator needs labels",
                ))
            }
            (None, Some(_)) => {
                return Err(GanError::config(
                    "labels",
                    "this discriminator is not conditional",
                ))
            }
        };
        // the projection term: <embedding(y), Σ over positions of the last hidden features>
        let project = |h: &Tensor, logit: Tensor| -> Result<Tensor> {
            match (&self.projection, labels) {
                (Some(e), Some(y)) => {
                    let pooled = h.f_sum_dim_intlist(&[2i64, 3][..], false, h.kind())?;
                    let inner =
                        (e.forward(y) * pooled).f_sum_dim_intlist(&[1i64][..], false, h.kind())?;
                    Ok(logit + inner)
                }
                _ => Ok(logit),
            }
        };
        Ok(match &self.body {
            DiscBody::Paper { c1, c2, fc } => {
                let x = self.cfg.layout(&x)?;
                let h = ganaug_ops::dropout(&leaky(&c1.forward(&x))?, 0.4, train)?;
                let h = ganaug_ops::dropout(&leaky(&c2.forward(&h))?, 0.4, train)?;
                let logit = fc.forward(&h.flatten(1, -1)).view([-1]);
                (project(&h, logit)?, None)
            }
            DiscBody::Dcgan { downs, out } => {
                // DCGAN works on [-1, 1] data.
                let mut h = self.cfg.layout(&(x * 2.0 - 1.0))?;
                for (conv, bn) in downs {
                    h = conv.forward(&h);
                    if let Some(bn) = bn {
                        h = bn.forward_t(&h, train);
                    }
                    h = leaky(&h)?;
                }
                let logit = out.forward(&h).view([-1]);
                (project(&h, logit)?, None)
            }
            DiscBody::FastGan {
                downs,
                patches,
                decoder,
            } => {
                let mut h = self.cfg.layout(&(x * 2.0 - 1.0))?;
                for block in downs {
                    h = block.forward_t(&h, train)?;
                }
                let logit = patches
                    .forward(&h)
                    .f_mean_dim(&[1i64, 2, 3][..], false, h.kind())?;
                let recon = if reconstruct {
                    let target = (image * 2.0 - 1.0).f_adaptive_avg_pool2d([RECON_SIDE; 2])?;
                    Some(Reconstruction {
                        image: decoder.forward_t(&h, train)?,
                        target,
                    })
                } else {
                    None
                };
                (project(&h, logit)?, recon)
            }
            DiscBody::Projected(heads) => {
                let (logit, h) = heads.forward_t(&x, train)?;
                (project(&h, logit)?, None)
            }
        })
    }
}
