//! What a run produces, as `results.json` holds it: keyed by [`ModelKind`] and [`Scenario`],
//! with a schema version, the commit the code was built from and the preset.

use serde::{Deserialize, Serialize};

use ganaug_gan::ClassSynthReport;
use ganaug_metrics::Summary;
use ganaug_models::{ModelKind, StopReason};

use crate::{ReproConfig, Scenario, Synthetic};

/// Version of the `results.json` layout; bumped when a field changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 4;

/// The commit this library was built from (`-dirty` when the work tree had uncommitted
/// changes to tracked files at build time), if it was built from a git checkout.
pub const BUILD_COMMIT: Option<&str> = option_env!("GANAUG_GIT_COMMIT");

/// A value with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Point estimate.
    pub value: f64,
    /// Lower bound (`None` when undefined, e.g. precision with no positive prediction).
    pub lower: Option<f64>,
    /// Upper bound.
    pub upper: Option<f64>,
}

/// One trained and tested classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// The model.
    pub model: ModelKind,
    /// The training-set scenario.
    pub scenario: Scenario,
    /// Classifier seed.
    pub seed: u64,
    /// `ImageNet (frozen backbone)`, `ImageNet (fine-tuned)` or `trained from scratch`.
    pub weights: String,
    /// Training images (after augmentation).
    pub train_images: usize,
    /// Test accuracy (Wilson interval).
    pub accuracy: Estimate,
    /// Two classes: the positive (first) class's precision (Wilson interval); more: the macro
    /// average over classes (no interval).
    pub precision: Estimate,
    /// Recall / sensitivity, likewise.
    pub recall: Estimate,
    /// Specificity, likewise.
    pub specificity: Estimate,
    /// F1: the positive class's with two classes, macro-averaged with more (bootstrap interval).
    pub f1: Estimate,
    /// ROC AUC: the positive class's with two classes, the macro average of one-vs-rest AUCs
    /// with more (bootstrap interval).
    pub auc: Option<Estimate>,
    /// The confusion matrix, `[truth][predicted]` counts (empty in results from before it).
    #[serde(default)]
    pub confusion: Vec<Vec<u64>>,
    /// Epochs run.
    pub epochs: usize,
    /// Epoch of the best validation loss (restored).
    pub best_epoch: usize,
    /// How its training ended.
    pub stop: CellStop,
    /// Seconds of the whole cell.
    pub seconds: f64,
    /// Seconds of it spent extracting cached backbone features.
    pub feature_seconds: f64,
    /// Test labels (for paired tests).
    pub labels: Vec<usize>,
    /// Test probabilities `[N][classes]`.
    pub probs: Vec<Vec<f64>>,
    /// Positive-class ROC curve: false-positive rates.
    pub roc_fpr: Vec<f64>,
    /// Positive-class ROC curve: true-positive rates.
    pub roc_tpr: Vec<f64>,
    /// Folder with this cell's training history and curves, relative to the results folder.
    pub dir: String,
    /// BLAKE3 of the names of the real images the cell learned from (its training and
    /// validation splits): what a scarcity study checks its subsets by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_data: Option<String>,
}

/// How a cell's training ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CellStop {
    /// Trained by `fit` (dense head, LP-FT): why it stopped, and the fine-tuning on real
    /// images that followed, if any.
    Fit {
        /// Why training stopped.
        fit: StopReason,
        /// Epochs on the real images afterwards and the best of them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        then_real: Option<FineTuned>,
    },
    /// A linear probe's L-BFGS fit converged.
    Probe {
        /// The inverse L2 strength of the fit used.
        probe_c: f64,
        /// Whether it was fitted on the training and validation images.
        fit_on_val: bool,
        /// Whether a second fit on the real rows alone, anchored at the first (on real and
        /// synthetic rows), gave the weights.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        two_step: bool,
    },
    /// What a results file written before this type recorded, as it wrote it.
    Recorded(String),
}

/// A cell's fine-tuning on real images after training with synthetic ones.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FineTuned {
    /// Epochs run.
    pub epochs: usize,
    /// Epoch of the weights kept.
    pub best_epoch: usize,
}

impl std::fmt::Display for CellStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CellStop::Fit { fit, then_real } => {
                write!(f, "{fit}")?;
                if let Some(t) = then_real {
                    write!(
                        f,
                        ", then {} epochs on real images (best {})",
                        t.epochs, t.best_epoch
                    )?;
                }
                Ok(())
            }
            CellStop::Probe {
                probe_c,
                fit_on_val,
                two_step,
            } => {
                write!(f, "probe converged, C = {probe_c}")?;
                if *fit_on_val {
                    write!(f, ", fit on train + val")?;
                }
                if *two_step {
                    write!(f, ", then on the real rows anchored at that fit")?;
                }
                Ok(())
            }
            CellStop::Recorded(s) => f.write_str(s),
        }
    }
}

/// One synthetic set and its quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthSummary {
    /// Which GAN made it.
    pub gan: Synthetic,
    /// Which of its replicas (GAN seed `train.seed + replica`).
    #[serde(default)]
    pub replica: u64,
    /// Class name.
    pub class: String,
    /// Selection report (generated, kept, near-copies, discriminator scores, nearest-neighbour
    /// RMS distance to the training images).
    pub selection: ClassSynthReport,
    /// FID against the class's training images (EfficientNet-Lite0 ImageNet features).
    pub fid: Option<f64>,
    /// KID (mean) likewise.
    pub kid: Option<f64>,
    /// Sample grid PNG (relative to the results folder).
    pub grid: String,
    /// Diversity, precision, recall, density and coverage next to the real-vs-real floor, and
    /// the floors it missed (none without the feature network's weights).
    #[serde(default)]
    pub measures: Option<crate::SetMeasures>,
    /// Classification Accuracy Score of a feature set (vectors): a probe fitted on the
    /// synthetic vectors of every class, tested on the real test images' features (image
    /// sets' CAS is in `results.json`'s `cas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cas: Option<f64>,
}

impl SynthSummary {
    /// The class, with its replica when not the first (`COVID`, `COVID/r1`).
    pub fn label(&self) -> String {
        if self.replica == 0 {
            self.class.clone()
        } else {
            format!("{}/r{}", self.class, self.replica)
        }
    }
}

/// A synthetic set the gate kept out of training, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusedSet {
    /// Which GAN made it.
    pub gan: Synthetic,
    /// `class: what failed`, for every class that missed a floor.
    pub reasons: Vec<String>,
}

/// One trained GAN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanSummary {
    /// `per-class/<class>` or `conditional`.
    pub name: String,
    /// Epochs trained.
    pub epochs: usize,
    /// Seconds of training in this run (0 when reused).
    pub seconds: f64,
    /// Its folder (checkpoints, samples, losses.png), relative to the results folder.
    pub dir: String,
}

/// Mean and spread of one model × scenario over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// The model.
    pub model: ModelKind,
    /// The scenario.
    pub scenario: Scenario,
    /// Accuracy over seeds.
    pub accuracy: Summary,
    /// AUC over seeds.
    pub auc: Option<Summary>,
    /// The paper's accuracy for this cell, and whether it is one of Loey et al.'s (starred).
    pub paper_accuracy: Option<(f64, bool)>,
    /// Paired comparison with the same model on raw data, over the seeds both have.
    pub vs_raw: Option<Paired>,
    /// Paired comparison with the same model on raw + classic augmentation (synthetic
    /// scenarios only).
    #[serde(default)]
    pub vs_classic: Option<Paired>,
}

/// Paired comparison of one model × scenario with another scenario of the same model: the
/// mean over seeds of the per-seed difference, its 95% interval from a bootstrap that resamples
/// seeds and test images together (`ganaug_metrics::compare_over_seeds`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paired {
    /// Seeds paired (cells of both scenarios with the same seed).
    #[serde(default = "one")]
    pub seeds: usize,
    /// Accuracy difference (this − other), mean over seeds, with its interval.
    pub accuracy_diff: Estimate,
    /// ROC AUC difference, the same way.
    #[serde(default)]
    pub auc_diff: Option<Estimate>,
    /// Two-sided bootstrap p-value of the accuracy difference.
    #[serde(default)]
    pub p_value: Option<f64>,
    /// McNemar's exact p-value on seed 0's test predictions.
    pub mcnemar_p: f64,
}

fn one() -> usize {
    1
}

impl Paired {
    /// Whether the accuracy interval lies wholly above zero.
    pub fn significant_gain(&self) -> bool {
        self.accuracy_diff.lower.is_some_and(|l| l > 0.0)
    }
    /// Whether the accuracy interval lies wholly below zero.
    pub fn significant_loss(&self) -> bool {
        self.accuracy_diff.upper.is_some_and(|u| u < 0.0)
    }
}

/// How separable real images at the classifier's side are from the same images taken through
/// the GANs' side (and upsampled back), in the feature network's space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolutionGap {
    /// The largest side (the real images as a classifier there sees them).
    pub large: i64,
    /// The GANs' side.
    pub small: i64,
    /// Out-of-fold ROC AUC of a linear probe separating the two (0.5: no gap).
    pub probe_auc: f64,
}

/// Everything `results.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReproResults {
    /// [`SCHEMA_VERSION`] of the file.
    pub schema_version: u32,
    /// The commit the code was built from ([`BUILD_COMMIT`]).
    pub commit: Option<String>,
    /// The configuration (its `preset` names the preset).
    pub config: ReproConfig,
    /// Where the data came from.
    pub data: String,
    /// BLAKE3 fingerprint of the data (see `DataSource::fingerprint`).
    pub data_fingerprint: String,
    /// Whether it is the synthetic phantom stand-in.
    pub synthetic_data: bool,
    /// Whether it is COVID-CT read as the paper reads it (the paper's numbers apply; results
    /// from before this field say so in `data`).
    #[serde(default)]
    pub covid_ct: bool,
    /// What a folder's auto modes (colour, bit depth) decided, and from what.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<String>,
    /// Test images per class.
    pub test_counts: Vec<usize>,
    /// Class names.
    pub class_names: Vec<String>,
    /// Device.
    pub device: String,
    /// The GANs.
    pub gans: Vec<GanSummary>,
    /// The synthetic sets.
    pub synthetic: Vec<SynthSummary>,
    /// Synthetic sets refused by the gate: their scenarios' cells were not run.
    #[serde(default)]
    pub refused: Vec<RefusedSet>,
    /// Classification Accuracy Score of each synthetic set, and of the real training split
    /// for reference (empty without the feature network's weights).
    #[serde(default)]
    pub cas: Vec<crate::quality::Cas>,
    /// Real images at the largest side against the same images through the GANs' side.
    #[serde(default)]
    pub resolution_gap: Option<ResolutionGap>,
    /// Every cell, every seed.
    pub cells: Vec<CellResult>,
    /// Per model × scenario over seeds, with the paper's value and the paired test.
    pub aggregates: Vec<Aggregate>,
    /// Units of work not finished when these results were written (another shard's, or not
    /// yet run): GANs and cells by name.
    #[serde(default)]
    pub missing: Vec<String>,
    /// Cells that cannot exist (feature vectors for a classifier of images), with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_applicable: Vec<String>,
    /// The data-scarcity study, when the configuration asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scarcity: Option<crate::scarcity::ScarcityResults>,
    /// Wall time of this run.
    pub seconds: f64,
}

impl ReproResults {
    /// Whether the data is COVID-CT read as the paper reads it, so that the paper's numbers
    /// apply (also for results written before [`ReproResults::covid_ct`] existed).
    pub fn is_covid_ct(&self) -> bool {
        self.covid_ct || self.data.starts_with("COVID-CT at ")
    }

    /// Whether the report shows the paper's numbers: on COVID-CT and on the phantom that
    /// stands in for it.
    pub fn paper_applies(&self) -> bool {
        self.is_covid_ct() || self.synthetic_data
    }

    /// The cell of `model` × `scenario` with `seed`.
    pub fn cell(&self, model: ModelKind, scenario: Scenario, seed: u64) -> Option<&CellResult> {
        self.cells
            .iter()
            .find(|c| c.model == model && c.scenario == scenario && c.seed == seed)
    }

    /// The over-seeds summary of `model` × `scenario`.
    pub fn aggregate(&self, model: ModelKind, scenario: Scenario) -> Option<&Aggregate> {
        self.aggregates
            .iter()
            .find(|a| a.model == model && a.scenario == scenario)
    }
}
