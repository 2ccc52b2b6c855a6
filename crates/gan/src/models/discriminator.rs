//! The discriminator: images (and labels) to logits.

use tch::nn::{self, Module};
use tch::Tensor;

use ganaug_train::Validate;

use crate::{GanError, Result};

use super::family::DiscriminatorBody;
use super::{Conditioning, GanConfig};

/// Discriminator network: images `[N, C, S, S]` in [0, 1] (+ labels) → logits `[N]`. Its body
/// is its family's (the [`super::Arch`] it is built for); a conditional discriminator's label plane or
/// projection is shared by every family.
#[derive(Debug)]
pub struct Discriminator {
    cfg: GanConfig,
    label_map: Option<(nn::Embedding, nn::Linear)>,
    /// The class embedding of a projection discriminator (width of the last hidden layer).
    projection: Option<nn::Embedding>,
    body: Box<dyn DiscriminatorBody>,
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
        let family = cfg.arch.family();
        // A concat-conditioned discriminator sees the label as an extra image channel.
        let concat = cfg.conditioning == Conditioning::Concat;
        let label_map = cfg.n_classes.filter(|_| concat).map(|n| {
            (
                nn::embedding(p / "embed", n, cfg.embed_dim, Default::default()),
                nn::linear(p / "label_fc", cfg.embed_dim, s * s, Default::default()),
            )
        });
        let hidden = family.hidden_width(cfg)?;
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
        let body = family.discriminator(p, cfg, c_in)?;
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
            (_, None) => return Err(GanError::Labels("a conditional discriminator needs labels")),
            (None, Some(_)) => {
                return Err(GanError::Labels("this discriminator is not conditional"))
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
        let scores = self
            .body
            .forward(&self.cfg, &x, image, train, reconstruct)?;
        Ok((
            project(&scores.hidden, scores.logits)?,
            scores.reconstruction,
        ))
    }
}
