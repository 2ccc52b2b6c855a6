#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod edit;
mod error;
pub mod features;
mod loss;
mod models;
pub mod subpixel;
mod synth;
mod train;

pub use edit::{
    random_masks, synthesize_edits, EditEpoch, EditGan, EditGanConfig, EditSet, EditSource,
    EditSynthConfig,
};
pub use error::{GanError, Result};
pub use features::{FeatureEpoch, FeatureGan, FeatureGanConfig};
pub use ganaug_train::{Checked, ConsoleProgress, IntoChecked, Observer, Silent, Validate};
pub use models::{Arch, Conditioning, Discriminator, GanConfig, Generator};
pub use synth::{
    generate_candidates, nearest_rms, nearest_rms_of, synthesize_class, synthetic_dataset,
    Candidates, ClassModel, ClassSynthReport, SynthConfig,
};
pub use train::{EpochStats, GanTrainer, StepStats, TrainConfig};
