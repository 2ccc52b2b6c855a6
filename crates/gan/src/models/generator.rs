//! The generator: latents (and labels) to images.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use ganaug_train::Validate;

use crate::{GanError, Result};

use super::family::GeneratorBody;
use super::GanConfig;

/// Generator network: latent `[N, latent_dim]` (+ labels) → images `[N, C, S, S]` in [0, 1].
/// Its body is its family's (the [`super::Arch`] it is built for); the label embedding of a conditional
/// generator is shared by every family.
#[derive(Debug)]
pub struct Generator {
    cfg: GanConfig,
    embed: Option<nn::Embedding>,
    body: Box<dyn GeneratorBody>,
    device: tch::Device,
}

impl Generator {
    /// Builds the generator under `p`.
    pub fn new(p: &nn::Path, cfg: &GanConfig) -> Result<Self> {
        cfg.validate()?;
        let embed = cfg
            .n_classes
            .map(|n| nn::embedding(p / "embed", n, cfg.embed_dim, Default::default()));
        let z_in = cfg.latent_dim + if embed.is_some() { cfg.embed_dim } else { 0 };
        let body = cfg.arch.family().generator(p, cfg, z_in)?;
        Ok(Generator {
            cfg: cfg.clone(),
            embed,
            body,
            device: p.device(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GanConfig {
        &self.cfg
    }

    /// Where its parameters are (and its images are made).
    pub fn device(&self) -> tch::Device {
        self.device
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
                return Err(GanError::Labels("a conditional generator needs labels"))
            }
            (None, Some(_)) => return Err(GanError::Labels("this generator is not conditional")),
        };
        self.body.forward(&self.cfg, &z, train)
    }
}
