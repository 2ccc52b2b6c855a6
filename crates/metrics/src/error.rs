//! The crate's error type: every rejected input says which argument and why.

/// Errors of `ganaug-metrics`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// Two inputs that must pair up element by element have different lengths.
    #[error("length mismatch: {what}: expected {expected}, got {got}")]
    LengthMismatch {
        /// The inputs compared (e.g. `"labels vs probabilities"`).
        what: &'static str,
        /// The length of the first input.
        expected: usize,
        /// The length of the second input.
        got: usize,
    },
    /// An input that needs at least one element is empty.
    #[error("empty input: {what}")]
    Empty {
        /// The input.
        what: &'static str,
    },
    /// Only one class is present where the metric needs positives and negatives (e.g. ROC AUC).
    #[error("{what} needs both classes, but only {present} is present (class {class})")]
    SingleClass {
        /// The metric.
        what: &'static str,
        /// The class whose one-vs-rest problem is degenerate.
        class: usize,
        /// Which side is present: `"positives"` or `"negatives"`.
        present: &'static str,
    },
    /// A value is NaN or infinite.
    #[error("non-finite value in {what} at index {index}: {value}")]
    NonFinite {
        /// The input.
        what: &'static str,
        /// Flat (row-major) index of the first bad value.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A row of a matrix has the wrong number of columns.
    #[error("{what}: row {row} has {got} columns, expected {expected}")]
    Columns {
        /// The input.
        what: &'static str,
        /// 0-based row.
        row: usize,
        /// The expected number of columns.
        expected: usize,
        /// The number found.
        got: usize,
    },
    /// A class label is not in `0..num_classes`.
    #[error("label {label} at index {index} is out of range for {num_classes} classes")]
    LabelOutOfRange {
        /// Position of the label.
        index: usize,
        /// The label (as given; negative labels come from [`labels_from_i64`](crate::labels_from_i64)).
        label: i64,
        /// Number of classes.
        num_classes: usize,
    },
    /// Too few samples for the computation (e.g. a covariance needs two).
    #[error("too few samples for {what}: need at least {needed}, got {got}")]
    TooFewSamples {
        /// The computation.
        what: &'static str,
        /// The minimum.
        needed: usize,
        /// The number given.
        got: usize,
    },
    /// Two feature sets (or statistics) have different dimensions.
    #[error("dimension mismatch: {what}: {left} vs {right}")]
    DimensionMismatch {
        /// The inputs compared.
        what: &'static str,
        /// Dimension of the first.
        left: usize,
        /// Dimension of the second.
        right: usize,
    },
    /// A configuration value is out of range (zero resamples, confidence outside (0, 1), ...).
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The field or argument.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// An eigendecomposition did not converge (the covariance holds extreme values).
    #[error("eigendecomposition of {what} did not converge")]
    NoConvergence {
        /// The matrix.
        what: &'static str,
    },
    /// A [`FeatureExtractor`](crate::FeatureExtractor) failed on a batch.
    #[error("feature extractor failed on batch {batch}: {source}")]
    Extractor {
        /// 0-based batch number.
        batch: usize,
        /// The extractor's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// `Result` with [`MetricsError`].
pub type Result<T> = std::result::Result<T, MetricsError>;

impl MetricsError {
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        MetricsError::Config {
            field,
            reason: reason.into(),
        }
    }
}

/// Checks that `confidence` lies strictly between 0 and 1.
pub(crate) fn check_confidence(confidence: f64) -> Result<()> {
    if confidence > 0.0 && confidence < 1.0 {
        Ok(())
    } else {
        Err(MetricsError::config(
            "confidence",
            format!("{confidence} is not in (0, 1)"),
        ))
    }
}

/// Checks that two lengths agree.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(MetricsError::LengthMismatch {
            what,
            expected,
            got,
        })
    }
}

/// Checks that every value is finite.
pub(crate) fn check_finite<'a>(
    what: &'static str,
    values: impl IntoIterator<Item = &'a f64>,
) -> Result<()> {
    match values.into_iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((index, &value)) => Err(MetricsError::NonFinite { what, index, value }),
        None => Ok(()),
    }
}
