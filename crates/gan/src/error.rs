//! The crate's error type.

use std::path::PathBuf;

/// Errors of `ganaug-gan`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GanError {
    /// A configuration value is out of range.
    #[error("invalid GAN config: {field}: {reason}")]
    Config {
        /// The field at fault.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// An input has the wrong shape.
    #[error("shape mismatch for {what}: expected {expected}, got {got}")]
    Shape {
        /// What was checked.
        what: &'static str,
        /// Expected shape, in words.
        expected: String,
        /// Shape received.
        got: String,
    },
    /// A loss became NaN or infinite: training stopped.
    #[error("non-finite {which} loss ({value}) at epoch {epoch}, step {step}: training stopped")]
    NonFinite {
        /// `"discriminator"` or `"generator"`.
        which: &'static str,
        /// The value.
        value: f64,
        /// Epoch (0-based).
        epoch: usize,
        /// Global optimisation step.
        step: u64,
    },
    /// A checkpoint does not match the model it is loaded into.
    #[error("checkpoint {path} does not fit this model: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What does not fit (missing, unexpected or mis-shaped tensors, config mismatch).
        reason: String,
    },
    /// A run-folder, checkpoint, resume or history error (`ganaug-train`).
    #[error(transparent)]
    Train(#[from] ganaug_train::TrainError),
    /// A dataset or file error.
    #[error(transparent)]
    Data(#[from] ganaug_data::DataError),
    /// An augmentation error.
    #[error(transparent)]
    Augment(#[from] ganaug_augment::AugmentError),
    /// An error from libtorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),

    /// The projected discriminator's feature network failed (e.g. its weights file).
    #[error("the projected discriminator's feature network: {0}")]
    Features(#[from] ganaug_models::ModelError),
    /// An error from a shared tensor operation (`ganaug-ops`).
    #[error(transparent)]
    Ops(#[from] ganaug_ops::OpsError),
    /// An I/O error.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with [`GanError`].
pub type Result<T> = std::result::Result<T, GanError>;

impl GanError {
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        GanError::Config {
            field,
            reason: reason.into(),
        }
    }
}
