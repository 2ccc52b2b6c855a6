//! The parts of a run's configuration: the GANs and their synthetic sets, the classifiers and
//! their heads.

use serde::{Deserialize, Serialize};

use ganaug_gan::{GanConfig, SynthConfig};
use ganaug_models::{BackboneMode, ModelKind, ProbeSelection};
use ganaug_train::Validate;

use crate::cells::{CellTrainer, FitCell};
use crate::probe::ProbeRecipe;
use crate::probe_cells::ProbeCell;

/// The GANs: one per class (the paper) and one conditional (the CGAN column).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanPlan {
    /// Architecture and resolution (`n_classes` is set per mode).
    pub gan: GanConfig,
    /// Training of each per-class GAN.
    pub train: ganaug_gan::TrainConfig,
    /// Epochs of the conditional GAN (same other settings).
    pub cgan_epochs: usize,
    /// How the conditional GAN's discriminator takes the label.
    #[serde(default)]
    pub cgan_conditioning: ganaug_gan::Conditioning,
    /// Selection of synthetic images (kept per class: the paper hand-picked 250).
    pub synth: SynthConfig,
    /// The floors a synthetic set must reach to be used ([`crate::gate`]).
    #[serde(default)]
    pub gate: crate::GateConfig,
    /// How each class's candidates are ranked before the first `keep_per_class` are kept.
    #[serde(default)]
    pub select: crate::Selection,
    /// How cells use the kept images: how many per real image, with what loss weight.
    #[serde(default)]
    pub mix: SynthMix,
    /// GANs trained per synthetic set, with seeds `train.seed + r` (and synthesis seeds
    /// `synth.seed + r`) for `r < replicas`; a cell of seed `s` uses replica `s mod replicas`,
    /// so seeds of the classifiers are seeds of the GANs too. Only the replicas the run's seeds
    /// use are trained (a one-seed run trains replica 0 alone).
    #[serde(default = "one_u64")]
    pub replicas: u64,
    /// The network whose features measure, select by features and score (CAS) the synthetic
    /// sets; not part of the GANs' keys (trained GANs are reused under another one).
    #[serde(default, skip_serializing_if = "crate::FeatureNet::is_default")]
    pub extractor: crate::FeatureNet,
    /// The edit GAN of the `edit` scenario (not written when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edits: Option<EditPlan>,
    /// The feature-space GAN of the `fgan` scenario (not written when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<FeaturePlan>,
}

/// The edit GAN (`ganaug_gan::EditGan`): one conditional editor on the whole training split;
/// its side, channels and classes are the data's, its seeds the GANs' (`train.seed + replica`,
/// `synth.seed + replica`). Each class keeps `synth.keep_per_class` edits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditPlan {
    /// Generator width.
    pub ngf: i64,
    /// Discriminator width.
    pub ndf: i64,
    /// Latent dimension.
    pub latent_dim: i64,
    /// Largest change of a pixel (images in [0, 1]).
    pub max_delta: f64,
    /// Smallest and largest share of the image a mask covers.
    pub mask_area: (f64, f64),
    /// Epochs.
    pub epochs: usize,
    /// Mini-batch size (lowered to the training split when larger).
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Differentiable augmentation of the discriminator's pairs.
    #[serde(default)]
    pub diffaugment: Option<ganaug_augment::DiffAugment>,
    /// Candidates drawn per kept edit.
    pub candidates_per_kept: usize,
    /// An edit whose RMS change inside its mask is below this is a near-copy, dropped.
    pub min_edit_rms: f64,
}

impl Default for EditPlan {
    fn default() -> Self {
        let g = ganaug_gan::EditGanConfig::default();
        let s = ganaug_gan::EditSynthConfig::default();
        EditPlan {
            ngf: g.ngf,
            ndf: g.ndf,
            latent_dim: g.latent_dim,
            max_delta: g.max_delta,
            mask_area: g.mask_area,
            epochs: g.epochs,
            batch_size: g.batch_size,
            lr: g.lr,
            diffaugment: None,
            candidates_per_kept: s.candidates_per_kept,
            min_edit_rms: s.min_edit_rms,
        }
    }
}

impl EditPlan {
    /// The edit GAN's configuration on `size`² images of `channels` channels and `classes`
    /// classes, seeded with `seed` (batch size as planned; no periodic checkpoints).
    pub fn gan_config(
        &self,
        size: i64,
        channels: i64,
        classes: i64,
        seed: u64,
    ) -> ganaug_gan::EditGanConfig {
        ganaug_gan::EditGanConfig {
            size,
            channels,
            classes,
            ngf: self.ngf,
            ndf: self.ndf,
            latent_dim: self.latent_dim,
            max_delta: self.max_delta,
            mask_area: self.mask_area,
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            diffaugment: self.diffaugment,
            checkpoint_every: 0,
            seed,
        }
    }
}

/// The feature-space GAN (`ganaug_gan::FeatureGan`) of a probe cell: trained on the real rows
/// the probe fits (its backbone's standardised features, projected on their leading
/// principal axes), each class making `synth.keep_per_class` vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeaturePlan {
    /// The GAN (its seed is `gan.train.seed + replica`).
    pub gan: ganaug_gan::FeatureGanConfig,
    /// Principal axes the GAN works on (at most the real rows − 1).
    pub pca_dims: usize,
}

impl Default for FeaturePlan {
    fn default() -> Self {
        FeaturePlan {
            gan: ganaug_gan::FeatureGanConfig::default(),
            pca_dims: 64,
        }
    }
}

fn one_u64() -> u64 {
    1
}

/// How a cell mixes the kept synthetic images into its training set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SynthMix {
    /// Synthetic images per real training image of the class (the first of the kept ones, in
    /// selection order); `None`: all kept images.
    #[serde(default)]
    pub ratio: Option<f64>,
    /// Loss weight of a synthetic image relative to a real one (1: the same). Linear-probe
    /// cells only: a cell trained by SGD with a weight other than 1 is refused.
    #[serde(default = "one_f64")]
    pub weight: f64,
    /// After training on real + synthetic images, fine-tune on the real images alone (the
    /// same scenario without the synthetic ones) for this many epochs at `lr × 0.1`, without
    /// the train-accuracy stop, keeping the best epoch on validation (0: no fine-tuning).
    /// Cells trained by `fit` only (a probe's convex refit on real images is the raw cell).
    #[serde(default)]
    pub finetune_real_epochs: usize,
    /// Probe cells' counterpart of `finetune_real_epochs`: fit on real and synthetic rows,
    /// then again on the real rows alone with the L2 penalty pulling towards the first fit's
    /// weights instead of zero (`ganaug_models::fit_at_anchored`, the same strength). Cells
    /// trained by `fit` ignore it. Not written when off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub probe_two_step: bool,
}

fn one_f64() -> f64 {
    1.0
}

impl Default for SynthMix {
    fn default() -> Self {
        SynthMix {
            ratio: None,
            weight: 1.0,
            finetune_real_epochs: 0,
            probe_two_step: false,
        }
    }
}

/// One classifier of the tables and how it is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPlan {
    /// The network.
    pub kind: ModelKind,
    /// Input side in pixels.
    pub image_size: i64,
    /// Start from ImageNet weights when the file is available (see
    /// [`ganaug_models::pretrained_weights`]); otherwise the model is trained from scratch and
    /// the report says so.
    pub imagenet: bool,
    /// Backbone mode when ImageNet weights are used (from scratch always trains everything).
    pub pretrained_backbone: BackboneMode,
    /// Training settings.
    pub train: ganaug_models::TrainConfig,
    /// Autocast-style bf16 convolutions and dense layers (see `ModelConfig::bf16`).
    #[serde(default)]
    pub bf16: bool,
    /// How the classifier on top of the backbone is trained.
    #[serde(default)]
    pub head: Head,
    /// How many globally pooled stages make the backbone's features (1: the pooled head; 2–3
    /// append the last stages', EfficientNet-Lite only; see `ModelConfig::pooled_stages`).
    #[serde(default = "one")]
    pub pooled_stages: usize,
}

fn one() -> usize {
    1
}

/// The classifier on top of a model's backbone.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Head {
    /// The paper's dense head, trained with the network by `fit` (SGD, the paper's rules).
    #[default]
    Mlp,
    /// A linear probe on the frozen ImageNet backbone's features: multinomial logistic
    /// regression, L2 strength chosen on validation log-loss, solved by L-BFGS.
    Probe {
        /// The probe's settings.
        probe: ganaug_models::ProbeConfig,
        /// Average the test probabilities of each image and its horizontal mirror.
        #[serde(default)]
        tta_flip: bool,
        /// Fit the final probe on the training and validation images (the validation split
        /// then only serves the k-fold choice of the strength, which needs `k-fold` selection).
        #[serde(default)]
        fit_on_val: bool,
        /// Augmented views per training image ([`crate::probe_views`]: random resized crop,
        /// rotation up to ±10°, mirror), drawn per seed, their features added to the fit; with
        /// k-fold selection the strength is divided by 1 + views, so the penalty keeps its
        /// weight against a loss averaged over the views.
        #[serde(default)]
        views: usize,
    },
    /// LP-FT (Kumar et al. 2022): a linear probe fitted on the frozen ImageNet features of the
    /// cell's training set (strength chosen on validation) starts a linear head, then the whole
    /// network fine-tunes with the plan's `train` settings (e.g. AdamW, warm-up + cosine,
    /// label smoothing, mixup, a weight average, frozen batch-norm statistics, a slower
    /// backbone, selection on validation AUC).
    LpFt {
        /// The probe that starts the head (its `selection` must be `validation`).
        probe: ganaug_models::ProbeConfig,
    },
}

impl Head {
    /// The network head this classifier trains: linear for LP-FT, the paper's otherwise (a
    /// probe replaces it).
    pub fn arch(&self) -> ganaug_models::HeadArch {
        match self {
            Head::LpFt { .. } => ganaug_models::HeadArch::Linear,
            _ => ganaug_models::HeadArch::Paper,
        }
    }

    /// Whether a probe fits its final weights on the training and validation images.
    pub fn fits_on_val(&self) -> bool {
        matches!(
            self,
            Head::Probe {
                fit_on_val: true,
                ..
            }
        )
    }

    /// Augmented views per training image of a probe (0 for other heads).
    pub fn views(&self) -> usize {
        match self {
            Head::Probe { views, .. } => *views,
            _ => 0,
        }
    }

    /// Whether this is a linear probe (fitted by L-BFGS on frozen features, not by `fit`).
    pub fn is_probe(&self) -> bool {
        matches!(self, Head::Probe { .. })
    }

    /// Whether its cells can weigh synthetic images in their loss (`gan.mix.weight` other
    /// than 1): linear probes with k-fold selection of their strength.
    pub fn weighs_synthetic(&self) -> bool {
        matches!(self, Head::Probe { probe, .. } if matches!(probe.selection, ProbeSelection::KFold { .. }))
    }

    /// Whether its cells can fine-tune on real images after training with synthetic ones
    /// (`gan.mix.finetune_real_epochs`): heads trained by `fit` (a probe's convex refit on
    /// real images alone is the raw cell).
    pub fn fine_tunes(&self) -> bool {
        !self.is_probe()
    }

    /// Checks the head against its plan: what a probe and LP-FT need of the backbone and of
    /// their probe's settings. Refusals name the field under the plan's.
    pub(super) fn check(
        &self,
        plan: &ModelPlan,
    ) -> std::result::Result<(), (&'static str, String)> {
        match self {
            Head::Mlp => Ok(()),
            Head::Probe {
                probe, fit_on_val, ..
            } => {
                if !plan.imagenet || plan.pretrained_backbone != BackboneMode::Frozen {
                    return Err((
                        "head",
                        "a probe needs ImageNet weights and a frozen backbone".into(),
                    ));
                }
                if *fit_on_val && !matches!(probe.selection, ProbeSelection::KFold { .. }) {
                    return Err((
                        "head.probe.fit_on_val",
                        "fitting on the validation images needs k-fold selection of the strength (validation selection would choose on the images it fits)".into(),
                    ));
                }
                probe.validate().map_err(|e| ("head.probe", e.to_string()))
            }
            Head::LpFt { probe } => {
                if !plan.imagenet || plan.pretrained_backbone == BackboneMode::Frozen {
                    return Err((
                        "head",
                        "LP-FT needs ImageNet weights and a backbone that trains (pretrained_backbone = \"train\")".into(),
                    ));
                }
                if probe.selection != ProbeSelection::Validation {
                    return Err((
                        "head.lp-ft.probe.selection",
                        "LP-FT's probe chooses its strength on validation".into(),
                    ));
                }
                probe
                    .validate()
                    .map_err(|e| ("head.lp-ft.probe", e.to_string()))
            }
        }
    }

    /// How a cell with this head trains.
    pub(crate) fn trainer(&self) -> Box<dyn CellTrainer + '_> {
        match self {
            Head::Mlp => Box::new(FitCell { start_probe: None }),
            Head::LpFt { probe } => Box::new(FitCell {
                start_probe: Some(probe),
            }),
            Head::Probe {
                probe,
                tta_flip,
                fit_on_val,
                views,
            } => Box::new(ProbeCell(ProbeRecipe {
                probe,
                tta_flip: *tta_flip,
                fit_on_val: *fit_on_val,
                views: *views,
            })),
        }
    }
}
