#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod checked;
mod checkpoint;
mod error;
mod history;
#[cfg(feature = "plot")]
pub mod plot;
mod run_dir;
mod tensor_file;

pub use checked::{Checked, IntoChecked, Validate};
pub use checkpoint::{data_fingerprint, load_checkpoint, save_checkpoint, CheckpointMeta};
pub use error::{Result, TrainError};
pub use history::{epoch_bar, write_history, Curves};
pub use run_dir::{KeepCheckpoints, RunDir};
pub use tensor_file::{copy_into_vars, load_tensors, save_tensors, VarCopyReport, VarMatch};
