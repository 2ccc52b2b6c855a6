//! What defines a run: the GANs, the classifiers, the scenarios and the seeds. A
//! [`ReproConfig`] is plain data (a preset file, `--config`, or code); [`ReproConfig::check`]
//! turns it into a [`CheckedConfig`], the only type [`crate::run`] takes, and deserialising a
//! `CheckedConfig` goes through the same check (`ganaug-train`'s `Checked` pattern, used by
//! every trainer).

use serde::{Deserialize, Serialize};

use ganaug_data::ResizePolicy;
use ganaug_models::{ModelConfig, ModelKind};
use ganaug_train::{Checked, Validate};

use crate::{ExperimentError, Result, Scenario, Synthetic};

mod plans;
pub use plans::{EditPlan, FeaturePlan, GanPlan, Head, ModelPlan, SynthMix};

/// Everything that defines a reproduction run, as written in a preset file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReproConfig {
    /// Preset name (`cpu`, `paper`, `tiny`, or a user's own), for the report.
    pub preset: String,
    /// What this preset reduces relative to the paper, in words, for the report.
    pub reductions: Vec<String>,
    /// The GANs.
    pub gan: GanPlan,
    /// The classifiers.
    pub models: Vec<ModelPlan>,
    /// The training-set variants.
    pub scenarios: Vec<Scenario>,
    /// Classic-augmentation copies per image (offline) in the classic scenarios.
    pub classic_copies: usize,
    /// Classifier seeds (the GANs are trained once).
    pub seeds: usize,
    /// How every image (GANs' and classifiers') is fitted into its square: stretched (the
    /// paper) or padded with its aspect ratio kept.
    #[serde(default)]
    pub resize: ResizePolicy,
    /// A data-scarcity study instead of the paper's table ([`crate::scarcity`]); not written
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scarcity: Option<crate::scarcity::ScarcityPlan>,
}

/// A [`ReproConfig`] that passed [`ReproConfig::check`] (`ganaug-train`'s [`Checked`]): read
/// it through `Deref`; change it by taking the inner config back ([`Checked::into_inner`]) and
/// checking again. Deserialising one runs the same check.
pub type CheckedConfig = Checked<ReproConfig>;

impl Validate for ReproConfig {
    type Error = ExperimentError;

    fn validate(&self) -> Result<()> {
        self.check_ref()
    }
}

impl ReproConfig {
    /// Validates every setting once — this crate's and, through their own checks, the GAN's,
    /// the trainers' and the models' — before any folder is created or any work is done.
    pub fn check(self) -> Result<CheckedConfig> {
        Checked::new(self)
    }

    fn check_ref(&self) -> Result<()> {
        if self.preset.trim().is_empty() {
            return Err(bad("preset", "needs a name"));
        }
        if self.seeds == 0 {
            return Err(bad("seeds", "needs at least one seed"));
        }
        if self.models.is_empty() || self.scenarios.is_empty() {
            return Err(bad(
                "models/scenarios",
                "needs at least one model and scenario",
            ));
        }
        let mut kinds: Vec<ModelKind> = self.models.iter().map(|m| m.kind).collect();
        kinds.sort();
        kinds.dedup();
        if kinds.len() != self.models.len() {
            return Err(bad("models", "each model may appear once"));
        }
        let mut scenarios = self.scenarios.clone();
        scenarios.sort();
        scenarios.dedup();
        if scenarios.len() != self.scenarios.len() {
            return Err(bad("scenarios", "each scenario may appear once"));
        }
        if self.scenarios.iter().any(|s| s.uses_classic()) && self.classic_copies == 0 {
            return Err(bad(
                "classic_copies",
                "classic scenarios need at least one copy",
            ));
        }
        for (i, m) in self.models.iter().enumerate() {
            let field = |f: &str| format!("models[{i}] ({}).{f}", m.kind);
            m.head
                .check(m)
                .map_err(|(f, reason)| bad(field(f), reason))?;
            ModelConfig {
                pooled_stages: m.pooled_stages,
                head: m.head.arch(),
                ..ModelConfig::new(m.kind, m.image_size)
            }
            .validate()
            .map_err(|e| bad(field("model"), e.to_string()))?;
            m.train
                .validate()
                .and_then(|()| m.train.check_classes(2))
                .map_err(|e| bad(field("train"), e.to_string()))?;
        }
        crate::scarcity::check(self)?;
        self.check_gan()
    }

    fn check_gan(&self) -> Result<()> {
        let needs = |w| self.scenarios.iter().any(|s| s.synthetic() == Some(w));
        self.check_new_families()?;
        if !self.scenarios.iter().any(|s| s.synthetic().is_some()) {
            return Ok(());
        }
        let g = &self.gan;
        g.gan
            .validate()
            .map_err(|e| bad("gan.gan", e.to_string()))?;
        g.train
            .validate()
            .map_err(|e| bad("gan.train", e.to_string()))?;
        if g.train.epochs == 0 {
            return Err(bad("gan.train.epochs", "must be at least 1"));
        }
        if needs(Synthetic::Conditional) && g.cgan_epochs == 0 {
            return Err(bad("gan.cgan_epochs", "the cgan scenario needs at least 1"));
        }
        g.gate.check().map_err(|e| bad("gan.gate", e))?;
        if g.replicas == 0 {
            return Err(bad("gan.replicas", "must be at least 1"));
        }
        if g.select.k == 0 {
            return Err(bad("gan.select.k", "must be at least 1"));
        }
        if let Some(r) = g.mix.ratio {
            if !(r >= 0.0 && r.is_finite()) {
                return Err(bad(
                    "gan.mix.ratio",
                    format!("{r} is not a finite number ≥ 0"),
                ));
            }
        }
        if !(g.mix.weight > 0.0 && g.mix.weight.is_finite()) {
            return Err(bad(
                "gan.mix.weight",
                format!("{} is not a finite number > 0", g.mix.weight),
            ));
        }
        if g.mix.weight != 1.0 {
            if let Some(m) = self.models.iter().find(|m| !m.head.weighs_synthetic()) {
                return Err(bad(
                    "gan.mix.weight",
                    format!(
                        "a synthetic loss weight other than 1 is implemented for linear-probe cells with k-fold selection only, and {} is not one",
                        m.kind
                    ),
                ));
            }
        }
        if g.mix.finetune_real_epochs > 0 {
            if let Some(m) = self.models.iter().find(|m| !m.head.fine_tunes()) {
                return Err(bad(
                    "gan.mix.finetune_real_epochs",
                    format!(
                        "fine-tuning on real images is for cells trained by fit, and {} is a linear probe (its refit on real images alone is the raw cell)",
                        m.kind
                    ),
                ));
            }
        }
        let s = &g.synth;
        if s.keep_per_class == 0 || s.keep_per_class > s.candidates_per_class {
            return Err(bad(
                "gan.synth",
                format!(
                    "keep_per_class ({}) must be in 1..=candidates_per_class ({})",
                    s.keep_per_class, s.candidates_per_class
                ),
            ));
        }
        if !(s.min_nn_distance >= 0.0 && s.min_nn_distance.is_finite()) || s.batch_size < 1 {
            return Err(bad(
                "gan.synth",
                "min_nn_distance must be ≥ 0 and batch_size ≥ 1",
            ));
        }
        Ok(())
    }

    /// The edit GAN and the feature-space GAN: configured when their scenario is asked for,
    /// their settings usable, the feature GAN with a probe to feed.
    fn check_new_families(&self) -> Result<()> {
        let needs = |w| self.scenarios.iter().any(|s| s.synthetic() == Some(w));
        if needs(Synthetic::Edits) {
            let Some(e) = &self.gan.edits else {
                return Err(bad(
                    "gan.edits",
                    "the edit scenario needs a [gan.edits] table",
                ));
            };
            let d = ganaug_gan::EditGanConfig::default();
            e.gan_config(self.gan.gan.size, d.channels, d.classes, d.seed)
                .validate()
                .map_err(|err| bad("gan.edits", err.to_string()))?;
            if e.candidates_per_kept == 0 || !(e.min_edit_rms >= 0.0 && e.min_edit_rms.is_finite())
            {
                return Err(bad(
                    "gan.edits",
                    "candidates_per_kept must be ≥ 1 and min_edit_rms a finite number ≥ 0",
                ));
            }
        }
        if needs(Synthetic::Features) {
            let Some(f) = &self.gan.features else {
                return Err(bad(
                    "gan.features",
                    "the fgan scenario needs a [gan.features] table",
                ));
            };
            f.gan
                .validate()
                .map_err(|err| bad("gan.features.gan", err.to_string()))?;
            if f.pca_dims < 2 {
                return Err(bad("gan.features.pca_dims", "must be at least 2"));
            }
            if !self.models.iter().any(|m| m.head.is_probe()) {
                return Err(bad(
                    "scenarios",
                    "fgan makes feature vectors for linear probes, and no model has a probe head",
                ));
            }
            if self.scenarios.contains(&Scenario::Fgan)
                && self
                    .models
                    .iter()
                    .any(|m| m.head.is_probe() && m.head.views() > 0)
            {
                return Err(bad(
                    "scenarios",
                    "fgan vectors cannot be augmented: a probe with views > 0 cannot take them",
                ));
            }
        }
        Ok(())
    }

    /// The side lengths the run loads the data at (every model's and the GANs').
    pub fn image_sizes(&self) -> Vec<i64> {
        let mut sizes: Vec<i64> = self.models.iter().map(|m| m.image_size).collect();
        sizes.push(self.gan.gan.size);
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    }

    /// The largest image side the run trains on.
    pub fn largest_image(&self) -> i64 {
        self.image_sizes().last().copied().unwrap_or(0)
    }

    /// Whether any scenario needs the synthetic set `which`.
    pub fn needs(&self, which: Synthetic) -> bool {
        self.scenarios.iter().any(|s| s.synthetic() == Some(which))
    }
}

fn bad(field: impl Into<String>, reason: impl Into<String>) -> ExperimentError {
    ExperimentError::config(field, reason)
}
