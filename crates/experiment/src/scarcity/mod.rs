//! The data-scarcity study: what synthetic images are worth. For each fraction of each class's
//! real training (and validation) images and each resample of such a subset, every arm trains
//! and tests on the official test split:
//!
//! - `raw`: the subset alone (its points make the learning curve);
//! - `classic`: the subset plus classic copies;
//! - each synthetic family configured (`gan`, `cgan`, `edit`, `fgan`): the subset plus
//!   synthetic images (or feature vectors) from generators trained on that subset only, and
//!   where asked, the same "then real" (the CNN fine-tuned on the real images afterwards, the
//!   probe refitted on the real rows anchored at its first fit);
//! - `oracle`: the subset plus as many real training images from outside it as a synthetic arm
//!   adds — the ceiling of any generator at that ratio.
//!
//! Each arm's accuracy is then read off the raw learning curve of the same run: its worth in
//! real images ([`ganaug_metrics::worth`]), with its bootstrap interval, next to the paired
//! difference with raw over resamples × test images.

mod report;
pub(crate) mod run;
pub mod subsets;

use serde::{Deserialize, Serialize};

use ganaug_metrics::{Summary, WorthEstimate};
use ganaug_models::ModelKind;

use crate::{CellResult, GanSummary, Paired, Result, Scenario, SynthSummary};

pub use report::{scarcity_plots, scarcity_section, study_sets_section};
pub(crate) use run::dry_run;
pub use run::run_scarcity;

/// The study's plan (`[scarcity]` in a configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScarcityPlan {
    /// Fractions of each class's training and validation images, in (0, 1].
    pub fractions: Vec<f64>,
    /// Resampled subsets per fraction for probes (and their feature-space GANs).
    pub resamples: usize,
    /// Of those, how many also train the image GANs and the image classifiers (CNN).
    pub image_resamples: usize,
    /// Synthetic images (and the oracle's real ones) per real training image of a class.
    pub ratio: f64,
    /// Synthetic scenarios that also get a "then real" arm.
    #[serde(default)]
    pub then_real: Vec<Scenario>,
    /// Epochs of a CNN's fine-tuning on real images in a "then real" arm.
    #[serde(default = "ten")]
    pub finetune_epochs: usize,
    /// Seed of the subsets' permutations.
    #[serde(default)]
    pub seed: u64,
}

fn ten() -> usize {
    10
}

impl ScarcityPlan {
    /// Checks the plan against the configuration's scenarios.
    pub(crate) fn check(&self, scenarios: &[Scenario]) -> std::result::Result<(), String> {
        if self.fractions.is_empty() {
            return Err("needs at least one fraction".into());
        }
        if let Some(f) = self.fractions.iter().find(|f| !(**f > 0.0 && **f <= 1.0)) {
            return Err(format!("fraction {f} is not in (0, 1]"));
        }
        if self.fractions.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "fractions {:?} must increase, each once",
                self.fractions
            ));
        }
        if self.image_resamples == 0 || self.resamples < self.image_resamples {
            return Err(format!(
                "resamples ({}) must be at least image_resamples ({}), which must be at least 1",
                self.resamples, self.image_resamples
            ));
        }
        if !(self.ratio >= 0.0 && self.ratio.is_finite()) {
            return Err(format!("ratio {} is not a finite number ≥ 0", self.ratio));
        }
        if !scenarios.contains(&Scenario::Raw) {
            return Err("the study needs the raw scenario (its learning curve)".into());
        }
        if let Some(s) = self
            .then_real
            .iter()
            .find(|s| s.synthetic().is_none() || !scenarios.contains(s))
        {
            return Err(format!(
                "then_real names {s}, which is not a synthetic scenario of this configuration"
            ));
        }
        if self.then_real.iter().any(|s| s.uses_classic()) {
            return Err("then_real takes synthetic scenarios without classic copies".into());
        }
        Ok(())
    }

    /// The fraction a study run may override from the command line.
    pub fn with_fractions(mut self, fractions: Vec<f64>) -> Self {
        self.fractions = fractions;
        self
    }
}

/// One arm of the study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arm {
    /// The real subset alone.
    Raw,
    /// The subset plus classic copies.
    Classic,
    /// The subset plus real images from outside it, as many as a synthetic arm adds.
    Oracle,
    /// The subset plus a synthetic scenario's images (or vectors).
    Synthetic(Scenario),
    /// The same, then trained again on the real images (fine-tuning, or an anchored refit).
    ThenReal(Scenario),
}

impl std::fmt::Display for Arm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arm::Raw => f.write_str("raw"),
            Arm::Classic => f.write_str("classic"),
            Arm::Oracle => f.write_str("oracle"),
            Arm::Synthetic(s) => f.write_str(s.name()),
            Arm::ThenReal(s) => write!(f, "{} then real", s.name()),
        }
    }
}

/// One cell of the study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScarcityCell {
    /// The fraction.
    pub fraction: f64,
    /// The resample.
    pub resample: u64,
    /// The arm.
    pub arm: Arm,
    /// The subset's real images (training and validation): where the arm stands on the
    /// learning curve.
    pub real_images: usize,
    /// The oracle's real training images from outside the subset (0 for other arms).
    #[serde(default)]
    pub extra_real: usize,
    /// The subset's digest (the oracle's: of the subset with its extras), the fingerprint of
    /// the real images it trained on.
    pub data: String,
    /// The cell.
    pub cell: CellResult,
}

/// One subset of the study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubsetSummary {
    /// The fraction.
    pub fraction: f64,
    /// The resample.
    pub resample: u64,
    /// Its digest (sorted names of its training and validation images).
    pub digest: String,
    /// Training images per class.
    pub train: Vec<usize>,
    /// Validation images per class.
    pub val: Vec<usize>,
    /// The oracle's extra training images per class.
    pub extras: Vec<usize>,
    /// Seconds: its GANs, its cells, its "then real" cells, its oracle cells.
    pub seconds: StageSeconds,
}

/// Where a subset's time went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StageSeconds {
    /// Training, resuming and measuring its image GANs.
    pub gans: f64,
    /// Its cells (feature GANs included).
    pub cells: f64,
    /// Its "then real" cells.
    pub then_real: f64,
    /// Its oracle cells.
    pub oracle: f64,
}

/// One model × fraction × arm over resamples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScarcityEntry {
    /// The model.
    pub model: ModelKind,
    /// The fraction.
    pub fraction: f64,
    /// Real images (mean over resamples: the subsets of a fraction are the same size).
    pub real_images: f64,
    /// The arm.
    pub arm: Arm,
    /// Images (or vectors) the arm adds to the subset (mean over resamples).
    pub added_images: f64,
    /// Accuracy over resamples.
    pub accuracy: Summary,
    /// Its 95% interval (bootstrap over resamples × test images).
    pub accuracy_interval: (f64, f64),
    /// AUC over resamples.
    pub auc: Option<Summary>,
    /// The paired difference with raw at the same fraction (over resamples × test images).
    pub delta_vs_raw: Option<Paired>,
    /// Its worth in real images on the raw learning curve.
    pub worth_real_images: Option<WorthEstimate>,
    /// Whether its mean accuracy beats the oracle's at the same fraction.
    pub beats_oracle: Option<bool>,
    /// The gate's failures of its synthetic sets, by resample and class (empty: passed).
    pub gate: Vec<String>,
}

/// Everything the study produced (`results.json`'s `scarcity`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScarcityResults {
    /// The plan.
    pub plan: ScarcityPlan,
    /// The subsets.
    pub subsets: Vec<SubsetSummary>,
    /// Every cell.
    pub cells: Vec<ScarcityCell>,
    /// Per model × fraction × arm.
    pub entries: Vec<ScarcityEntry>,
    /// The GANs the subsets trained.
    pub gans: Vec<(f64, u64, GanSummary)>,
    /// Their synthetic sets' measures.
    pub synthetic: Vec<(f64, u64, SynthSummary)>,
}

impl ScarcityResults {
    /// The entries of `model`, in fraction order.
    pub fn entries_of(&self, model: ModelKind) -> impl Iterator<Item = &ScarcityEntry> {
        self.entries.iter().filter(move |e| e.model == model)
    }
}

/// Checks a configuration's study, if any (called by `ReproConfig::check`).
pub(crate) fn check(cfg: &crate::ReproConfig) -> Result<()> {
    if let Some(plan) = &cfg.scarcity {
        plan.check(&cfg.scenarios)
            .map_err(|reason| crate::ExperimentError::config("scarcity", reason))?;
    }
    Ok(())
}
