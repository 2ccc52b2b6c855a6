//! A GAN family is one implementation of [`GanFamily`]: what it refuses in a configuration, its
//! generator's and discriminator's bodies, and its loss. [`super::Generator`] and
//! [`super::Discriminator`] add what every family shares around the bodies (the label
//! embedding, the label plane or projection of a conditional pair, the input checks), and
//! [`super::Arch::family`] is the one place that maps a configuration to its family — adding a
//! family is a module implementing this trait and an arm there.

use tch::{nn, Tensor};

use crate::{GanConfig, Result};

/// The adversarial loss a family trains with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loss {
    /// Binary cross-entropy on the logits (with an optional smoothed real target).
    CrossEntropy,
    /// The hinge loss (plus a discriminator's reconstruction error, when it has a decoder).
    Hinge,
}

/// One GAN family (see the module documentation).
pub(crate) trait GanFamily: std::fmt::Debug {
    /// Refuses a configuration this family cannot be built for (sizes, widths,
    /// conditioning); the checks every family shares are made before.
    fn validate(&self, cfg: &GanConfig) -> Result<()>;

    /// The generator's body under `p`, for latents (with any label embedding) of width
    /// `z_in`.
    fn generator(&self, p: &nn::Path, cfg: &GanConfig, z_in: i64)
        -> Result<Box<dyn GeneratorBody>>;

    /// The width of the discriminator's last hidden features (what a projection's class
    /// embedding is multiplied with), known before any variable is made.
    fn hidden_width(&self, cfg: &GanConfig) -> Result<i64>;

    /// The discriminator's body under `p`, for inputs of `c_in` channels (the image's, plus a
    /// label plane for a concat-conditioned pair).
    fn discriminator(
        &self,
        p: &nn::Path,
        cfg: &GanConfig,
        c_in: i64,
    ) -> Result<Box<dyn DiscriminatorBody>>;

    /// The loss it trains with.
    fn loss(&self) -> Loss;

    /// Whether the discriminator scores a real and a fake batch in one pass (no batch norm to
    /// keep them apart).
    fn joint_discriminator_pass(&self) -> bool {
        false
    }
}

/// A generator body: latents to images.
pub(crate) trait GeneratorBody: std::fmt::Debug + Send {
    /// # Shapes
    /// `z: [N, z_in]` → `[N, C, S, S]` in [0, 1].
    fn forward(&self, cfg: &GanConfig, z: &Tensor, train: bool) -> Result<Tensor>;
}

/// What a discriminator body gives for a batch.
#[derive(Debug)]
pub(crate) struct Scores {
    /// Logits `[N]` (higher: real).
    pub(crate) logits: Tensor,
    /// The last hidden features `[N, hidden, h, w]` (a projection's input).
    pub(crate) hidden: Tensor,
    /// The input's reconstruction from the features, for a discriminator with a decoder, when
    /// asked for.
    pub(crate) reconstruction: Option<super::Reconstruction>,
}

/// A discriminator body: images to logits.
pub(crate) trait DiscriminatorBody: std::fmt::Debug + Send {
    /// Scores `x` (the images in [0, 1], with a label plane when concat-conditioned); `image`
    /// is the images alone (what a decoder reconstructs).
    ///
    /// # Shapes
    /// `x: [N, c_in, S, S]`, `image: [N, C, S, S]` → logits `[N]`.
    fn forward(
        &self,
        cfg: &GanConfig,
        x: &Tensor,
        image: &Tensor,
        train: bool,
        reconstruct: bool,
    ) -> Result<Scores>;
}
