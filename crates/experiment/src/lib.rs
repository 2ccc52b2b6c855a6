#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod aggregate;
mod cells;
mod config;
mod error;
mod gans;
pub mod gate;
mod presets;
mod probe_cells;
mod quality;
pub mod report;
mod results;
mod run;
mod scenario;

pub use aggregate::aggregate;
pub use cells::{run_cells, CellSpec};
pub use config::{CheckedConfig, GanPlan, Head, ModelPlan, ReproConfig};
pub use error::{CellError, ExperimentError, Result};
pub use gans::{run_gans, GanStage, StageContext};
pub use gate::{GateConfig, GateMode, Measures, SetMeasures};
pub use presets::{preset_names, PRESETS};
pub use probe_cells::probe_views;
pub use quality::{feature_matrix, resize, Cas, Quality};
pub use results::{
    Aggregate, CellResult, Estimate, GanSummary, RefusedSet, ReproResults, SynthSummary, VsRaw,
    BUILD_COMMIT, SCHEMA_VERSION,
};
pub(crate) use run::hash_of;
pub use run::run;
pub use scenario::{paper_accuracy, Scenario, Synthetic};

/// The data sources an experiment runs on (re-exported from `ganaug-data`).
pub use ganaug_data::DataSource;
