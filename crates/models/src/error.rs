//! The crate's error type.

use std::path::PathBuf;

/// Errors of `ganaug-models`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A configuration value is out of range.
    #[error("invalid model config: {field}: {reason}")]
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
    /// The data given to training does not fit the model or the configuration (an empty
    /// split, more classes than outputs, one class where AUC selection needs two, labels out
    /// of range, loss weights that do not fit the rows).
    #[error("training data: {reason}")]
    Inputs {
        /// What is wrong.
        reason: String,
    },
    /// (De)serialising a configuration or a model's description failed.
    #[error("JSON of {what}: {source}")]
    Json {
        /// What was (de)serialised.
        what: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The probe's solver (L-BFGS) failed.
    #[error("the linear probe's L-BFGS solver: {reason}")]
    Solver {
        /// The solver's message.
        reason: String,
    },
    /// A metric the training needs (validation AUC) could not be computed.
    #[error("{what}: {source}")]
    Metric {
        /// Which metric.
        what: &'static str,
        /// The cause.
        #[source]
        source: ganaug_metrics::MetricsError,
    },
    /// A checkpoint was written for another model or configuration.
    #[error("checkpoint {path} does not fit: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// A dataset or file error.
    #[error(transparent)]
    Data(#[from] ganaug_data::DataError),
    /// From the training toolkit (`ganaug-train`): a weights or checkpoint file error (missing,
    /// truncated, not safetensors, tensors that do not match the model by name and shape), a
    /// run folder holding another run, a resume refused, optimiser state that does not fit, a
    /// loss that became NaN or infinite.
    #[error(transparent)]
    Train(#[from] ganaug_train::TrainError),
    /// An augmentation error.
    #[error(transparent)]
    Augment(#[from] ganaug_augment::AugmentError),
    /// An error from libtorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
    /// An error from a shared tensor operation (`ganaug-ops`).
    #[error(transparent)]
    Ops(#[from] ganaug_ops::OpsError),
    /// The linear probe's L-BFGS stopped before its gradient vanished.
    #[error("the linear probe (C = {c}) did not converge in {iterations} L-BFGS iterations (largest gradient component {gradient_norm:.3e})")]
    ProbeNotConverged {
        /// The inverse L2 strength being fitted.
        c: f64,
        /// Iterations run.
        iterations: u64,
        /// The gradient's largest component at the end.
        gradient_norm: f64,
    },
    /// Features hold NaN or infinite values.
    #[error("{what}: row {row} holds non-finite values")]
    NonFiniteFeatures {
        /// Which features.
        what: &'static str,
        /// The first bad row.
        row: usize,
    },
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

/// `Result` with [`ModelError`].
pub type Result<T> = std::result::Result<T, ModelError>;

impl ModelError {
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        ModelError::Config {
            field,
            reason: reason.into(),
        }
    }
}
