#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;
mod loss;
mod models;
pub mod subpixel;
mod synth;
mod train;

pub use error::{GanError, Result};
pub use ganaug_train::{Checked, ConsoleProgress, IntoChecked, Observer, Silent, Validate};
pub use models::{Arch, Conditioning, Discriminator, GanConfig, Generator};
pub use synth::{
    generate_candidates, nearest_rms, synthesize_class, synthetic_dataset, Candidates, ClassModel,
    ClassSynthReport, SynthConfig,
};
pub use train::{EpochStats, GanTrainer, StepStats, TrainConfig};
