//! Aggregation of one metric over training seeds: a single run hides seed-to-seed spread.

use std::fmt;

use serde::Serialize;

use crate::error::check_finite;
use crate::{MetricsError, Result};

/// Mean, spread and range of a metric over runs (e.g. test accuracy over 5 seeds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (divisor `n - 1`); `None` for a single value.
    pub sd: Option<f64>,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// Summarises `values`; errors if empty or if a value is NaN/infinite.
pub fn summarize(values: &[f64]) -> Result<Summary> {
    if values.is_empty() {
        return Err(MetricsError::Empty { what: "values" });
    }
    check_finite("values", values)?;
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    // Two-pass variance: the values are metrics of similar size, so this is exact enough and
    // avoids the cancellation of the sum-of-squares formula.
    let sd = (n > 1)
        .then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
    Ok(Summary {
        n,
        mean,
        sd,
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

impl fmt::Display for Summary {
    /// `mean ± sd [min, max] (n = k)`, with the formatter's precision (default 4).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = f.precision().unwrap_or(4);
        write!(f, "{:.p$}", self.mean)?;
        if let Some(sd) = self.sd {
            write!(f, " ± {sd:.p$}")?;
        }
        write!(f, " [{:.p$}, {:.p$}] (n = {})", self.min, self.max, self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_values() {
        let s = summarize(&[0.80, 0.84, 0.82, 0.86, 0.78]).expect("valid");
        assert_eq!(s.n, 5);
        assert!((s.mean - 0.82).abs() < 1e-12);
        // Sample sd of {-2, 2, 0, 4, -4} * 0.01: sqrt(40e-4 / 4) = 0.0316...
        assert!((s.sd.expect("n > 1") - 0.1f64.sqrt() / 10.0).abs() < 1e-12);
        assert_eq!((s.min, s.max), (0.78, 0.86));
        assert_eq!(format!("{s:.2}"), "0.82 ± 0.03 [0.78, 0.86] (n = 5)");
    }

    #[test]
    fn single_value_has_no_sd() {
        let s = summarize(&[0.5]).expect("valid");
        assert_eq!(s.sd, None);
        assert_eq!(format!("{s:.1}"), "0.5 [0.5, 0.5] (n = 1)");
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(matches!(summarize(&[]), Err(MetricsError::Empty { .. })));
        assert!(matches!(
            summarize(&[0.1, f64::NAN]),
            Err(MetricsError::NonFinite { index: 1, .. })
        ));
    }
}
