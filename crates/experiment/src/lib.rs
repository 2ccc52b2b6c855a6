#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod aggregate;
pub mod assess;
mod cells;
mod config;
mod edit_stage;
pub mod effect;
mod error;
mod fgan_stage;
mod gans;
pub mod gate;
pub mod layout;
pub mod lock;
pub mod plan;
mod presets;
pub mod probe;
mod probe_cells;
mod quality;
pub mod report;
mod results;
mod run;
pub mod scarcity;
mod scenario;
mod scoring;
pub mod select;
pub mod shard;
mod sources;
pub mod sweep;
mod training_set;
pub use training_set::{assemble_training_set, with_assembled};

pub use aggregate::aggregate;
pub use cells::{run_cells, CellSpec, CellsRun, Experiment};
pub use config::{
    CheckedConfig, EditPlan, FeaturePlan, GanPlan, Head, ModelPlan, ReproConfig, SynthMix,
};
pub use error::{CellError, ExperimentError, Result};
pub use gans::{run_gans, GanStage, StageContext};
pub use gate::{GateConfig, GateMode, Measures, SetMeasures};
pub use presets::{preset_names, PRESETS};
pub use probe_cells::{probe_views, Backbone, FeatureBank, Features, ImageSet};
pub use quality::{feature_matrix, feature_matrix_of, resize, Cas, FeatureNet, Quality};
pub use results::{
    Aggregate, CellResult, CellStop, Estimate, FineTuned, GanSummary, Paired, RefusedSet,
    ReproResults, ResolutionGap, SynthSummary, BUILD_COMMIT, SCHEMA_VERSION,
};
pub(crate) use run::hash_of;
pub use run::{load_splits, run, run_gan_stage, run_with, GanStageSummary, RunOptions};
pub use scenario::{paper_accuracy, Scenario, Synthetic};
pub use select::{SelectBy, Selection};

/// The data sources an experiment runs on (re-exported from `ganaug-data`).
pub use ganaug_data::DataSource;
