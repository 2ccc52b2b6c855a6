#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod config;
mod efficientnet;
mod error;
mod extractor;
mod feature_maps;
mod fit;
mod fit_steps;
mod kind;
mod model;
mod nets;
mod probe;
mod probe_folds;
mod probe_model;
mod probe_objective;
mod probe_solve;
mod state;
mod train;

pub use config::{HeadArch, ModelConfig};
pub use error::{ModelError, Result};
pub use feature_maps::LiteFeatureMaps;
pub use fit::{fit, fit_source};
/// The optimisers (`ganaug-train`'s), re-exported for custom loops and benchmarks.
pub use ganaug_train::{AdamW, Optimizer, Sgd};
pub use ganaug_train::{Checked, ConsoleProgress, IntoChecked, Observer, Silent, Validate};
pub use kind::{pretrained_weights, pretrained_weights_in, weights_dir, ModelKind};
pub use model::{Classifier, TrainableParts};
pub use probe::{
    fit_at, fit_at_anchored, fit_at_weighted, fit_at_weighted_owned, fit_probe, select_by_kfold,
    select_by_kfold_blocks, LinearProbe, ProbeChoice, ProbeConfig, ProbeFit, ProbeSelection,
};
pub use probe_model::{
    out_of_fold_proba, out_of_fold_proba_blocks, youden_threshold, ProbeModel, ProbeModelInfo,
    Threshold, PROBE_MODEL_FORMAT,
};
pub use state::CHECKPOINT_FORMAT;
pub use train::{
    predict, predict_source, write_history, BackboneMode, EpochRecord, FitOptions, FitReport,
    LrSchedule, OptimizerKind, Predictions, SelectOn, StopReason, TrainConfig,
};
