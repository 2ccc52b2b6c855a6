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
    /// Labels given to a network that has no use for them, or none to one that needs them.
    #[error("labels: {0}")]
    Labels(&'static str),
    /// Inputs that do not fit together (a selection order naming an ineligible candidate, a
    /// label without a class name).
    #[error("{reason}")]
    Inputs {
        /// What is wrong.
        reason: String,
    },
    /// A network's ImageNet weights file is not installed.
    #[error("{needed_by} reads {network}'s ImageNet features, and its weights file is not installed (run scripts/setup.sh, or set GANAUG_WEIGHTS_DIR)")]
    WeightsMissing {
        /// What needs them.
        needed_by: &'static str,
        /// The network.
        network: &'static str,
    },
    /// A checkpoint does not match the model it is loaded into.
    #[error("checkpoint {path} does not fit this model: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What does not fit (missing, unexpected or mis-shaped tensors, config mismatch).
        reason: String,
    },
    /// From the training toolkit (`ganaug-train`): a run-folder, checkpoint, resume, optimiser
    /// state or history error, or a loss that became NaN or infinite.
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
