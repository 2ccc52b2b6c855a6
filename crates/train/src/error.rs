//! The toolkit's error type.

use std::path::PathBuf;

/// What can go wrong in the training toolkit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The run folder already holds a run and resuming was not asked for.
    #[error("{dir} already holds a training run: resume it or choose another folder")]
    RunExists {
        /// The folder.
        dir: PathBuf,
    },
    /// A checkpoint cannot continue this run: another kind, configuration or data.
    #[error("checkpoint {path} cannot be resumed here: {reason}")]
    Resume {
        /// The checkpoint.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A weights / checkpoint file is not a readable safetensors file of the expected tensors.
    #[error("bad tensor file {path}: {reason}")]
    TensorFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A weights file's tensors do not match the model's variables by name and shape.
    #[error(
        "weights {path} do not fit the model: {}",
        describe_mismatch(missing, unexpected, misshaped)
    )]
    WeightMismatch {
        /// The file.
        path: PathBuf,
        /// Model variables the file lacks.
        missing: Vec<String>,
        /// File tensors the model has no variable for.
        unexpected: Vec<String>,
        /// `name: file shape vs model shape`, for tensors present on both sides.
        misshaped: Vec<String>,
    },
    /// Reading or writing a file or folder failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a plot failed.
    #[error("cannot plot {path}: {reason}")]
    Plot {
        /// The destination.
        path: PathBuf,
        /// The plotting library's (or file system's) message.
        reason: String,
    },
    /// (De)serialising a configuration, history or metadata failed.
    #[error("JSON of {what}: {source}")]
    Json {
        /// What was (de)serialised.
        what: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// An optimiser's saved state does not fit it: an entry missing, of another shape, or of a
    /// slot the optimiser does not keep.
    #[error("{optimizer} optimiser state {key}: {reason}")]
    OptimizerState {
        /// The optimiser (`adam`, `adamw`, `sgd`).
        optimizer: &'static str,
        /// The state entry.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A loss or metric became NaN or infinite: training stops rather than go on with broken
    /// weights.
    #[error("{what} is {value} at epoch {epoch}: training diverged (try a lower learning rate)")]
    NonFinite {
        /// Which figure (`training loss`, `discriminator loss`, …).
        what: &'static str,
        /// Its value.
        value: f64,
        /// The epoch (0-based).
        epoch: usize,
    },
    /// A run observer could not record an epoch (its metrics file, say).
    #[error("recording {what}: {reason}")]
    Observer {
        /// What was being recorded.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// From the tensor-operations crate (the fused optimiser kernels).
    #[error(transparent)]
    Ops(#[from] ganaug_ops::OpsError),
    /// From the data crate (atomic writes, dataset fingerprints).
    #[error(transparent)]
    Data(#[from] ganaug_data::DataError),
    /// An error from libtorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
}

/// `Result` with [`TrainError`].
pub type Result<T> = std::result::Result<T, TrainError>;

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }
}

fn describe_mismatch(missing: &[String], unexpected: &[String], misshaped: &[String]) -> String {
    let list = |what: &str, v: &[String]| {
        let shown: Vec<&str> = v.iter().take(12).map(String::as_str).collect();
        let more = v.len().saturating_sub(shown.len());
        let tail = if more > 0 {
            format!(", … {more} more")
        } else {
            String::new()
        };
        format!("{} {what} [{}{tail}]", v.len(), shown.join(", "))
    };
    [
        ("missing", missing),
        ("unexpected", unexpected),
        ("mis-shaped", misshaped),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(what, v)| list(what, v))
    .collect::<Vec<_>>()
    .join("; ")
}
