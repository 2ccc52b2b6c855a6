//! The crate's error type.

/// Errors of `ganaug-augment`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AugmentError {
    /// A configuration value is out of range.
    #[error("invalid augmentation config: {field}: {reason}")]
    Config {
        /// The field (or transform) at fault.
        field: String,
        /// Why it is invalid.
        reason: String,
    },
    /// An input tensor has the wrong rank, dtype or size.
    #[error("bad input tensor: expected {expected}, got {got}")]
    Shape {
        /// What was expected.
        expected: String,
        /// What was received.
        got: String,
    },
    /// A dataset operation failed (offline expansion).
    #[error(transparent)]
    Data(#[from] ganaug_data::DataError),
    /// An error from libtorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
}

/// `Result` with [`AugmentError`].
pub type Result<T> = std::result::Result<T, AugmentError>;

impl AugmentError {
    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        AugmentError::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Checks that `x` is a floating-point `[N, C, H, W]` batch.
pub(crate) fn check_batch(x: &tch::Tensor) -> Result<(i64, i64, i64, i64)> {
    let dims = x.size();
    let float = matches!(
        x.kind(),
        tch::Kind::Float | tch::Kind::Double | tch::Kind::Half | tch::Kind::BFloat16
    );
    match dims.as_slice() {
        [n, c, h, w] if float && *h > 0 && *w > 0 => Ok((*n, *c, *h, *w)),
        _ => Err(AugmentError::Shape {
            expected: "a floating-point [N, C, H, W] batch".into(),
            got: format!("{dims:?} {:?}", x.kind()),
        }),
    }
}
