#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod checked;
mod checkpoint;
mod epochs;
mod error;
mod history;
mod observe;
pub mod optim;
#[cfg(feature = "plot")]
pub mod plot;
mod progress_file;
mod run_dir;
mod tensor_file;

pub use checked::{Checked, IntoChecked, Validate};
pub use checkpoint::{
    data_fingerprint, data_fingerprint_of_tensors, data_fingerprint_with, load_checkpoint,
    save_checkpoint, CheckpointMeta, RunConfig,
};
pub use epochs::{
    check_finite, CheckpointPolicy, EpochLoop, EpochRecord, Progress, StopReason, TrainStep,
};
pub use error::{Result, TrainError};
pub use history::{epoch_bar, write_history, Curves};
pub use observe::{ConsoleProgress, EpochEvent, MetricsFile, Observer, Silent, METRICS_FILE};
pub use optim::{zero_grad, Adam, AdamW, Optimizer, Sgd};
pub use progress_file::{short_duration, Both, ProgressFile, ProgressState, PROGRESS_FILE};
pub use run_dir::{KeepCheckpoints, RunDir};
pub use tensor_file::{copy_into_vars, load_tensors, save_tensors, VarCopyReport, VarMatch};
