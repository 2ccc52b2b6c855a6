//! Errors of the operations in this crate.

/// What went wrong in an operation.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// An input has a shape the operation cannot take.
    #[error("{op}: expected {expected}, got {got}")]
    Shape {
        /// The operation.
        op: &'static str,
        /// What it needs.
        expected: String,
        /// What it was given.
        got: String,
    },
    /// A scalar argument is out of range.
    #[error("{op}: {reason}")]
    Argument {
        /// The operation.
        op: &'static str,
        /// Why the value is refused.
        reason: String,
    },
    /// libtorch refused the operation inside the C++ shim (its message, without the C++ stack).
    #[error("{op}: {message}")]
    Shim {
        /// The operation.
        op: &'static str,
        /// libtorch's message.
        message: String,
    },
    /// An error from libtorch through tch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
}

/// `Result` with [`OpsError`].
pub type Result<T> = std::result::Result<T, OpsError>;
