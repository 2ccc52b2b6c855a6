//! Streaming accumulators (`update` per batch, `compute`, `reset`) for evaluation loops that see
//! the test set one batch at a time. Each `update` validates its batch and adds nothing on error.

use ndarray::{Array1, Array2};

use crate::confusion::{Average, ConfusionMatrix};
use crate::fid::FeatureStats;
use crate::input::{argmax_rows, check_probs, MatrixInput};
use crate::report::{ClassificationReport, ReportConfig};
use crate::roc::auc_ovr_checked;
use crate::{MetricsError, Result};

fn check_columns(what: &'static str, probs: &Array2<f64>, expected: usize) -> Result<()> {
    if probs.ncols() == expected || probs.nrows() == 0 {
        Ok(())
    } else {
        Err(MetricsError::Columns {
            what,
            row: 0,
            expected,
            got: probs.ncols(),
        })
    }
}

/// Confusion matrix built batch by batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionAccumulator {
    matrix: ConfusionMatrix,
}

impl ConfusionAccumulator {
    /// An empty accumulator for `num_classes >= 2` classes.
    pub fn new(num_classes: usize) -> Result<Self> {
        Ok(ConfusionAccumulator {
            matrix: ConfusionMatrix::new(num_classes)?,
        })
    }

    /// Adds a batch of true labels and predicted labels.
    pub fn update(&mut self, labels: &[usize], preds: &[usize]) -> Result<()> {
        self.matrix.add_predictions(labels, preds)
    }

    /// Adds a batch of true labels and `[B, C]` probabilities (argmax prediction).
    pub fn update_probs<P: MatrixInput + ?Sized>(
        &mut self,
        labels: &[usize],
        probs: &P,
    ) -> Result<()> {
        let probs = probs.to_matrix("probabilities")?;
        check_columns("probabilities", &probs, self.matrix.num_classes())?;
        if labels.is_empty() && probs.nrows() == 0 {
            return Ok(());
        }
        check_probs(labels, &probs)?;
        self.matrix.add_predictions(labels, &argmax_rows(&probs))
    }

    /// The confusion matrix so far.
    pub fn compute(&self) -> ConfusionMatrix {
        self.matrix.clone()
    }

    /// Forgets every batch.
    pub fn reset(&mut self) {
        self.matrix.clear();
    }
}

/// Keeps labels and probabilities batch by batch, for the statistics that need all of them
/// (ROC AUC, bootstrap intervals, the full report).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreAccumulator {
    num_classes: usize,
    labels: Vec<usize>,
    probs: Vec<f64>,
}

impl ScoreAccumulator {
    /// An empty accumulator for `num_classes >= 2` classes.
    pub fn new(num_classes: usize) -> Result<Self> {
        if num_classes < 2 {
            return Err(MetricsError::config(
                "num_classes",
                format!("need at least 2 classes, got {num_classes}"),
            ));
        }
        Ok(ScoreAccumulator {
            num_classes,
            labels: Vec::new(),
            probs: Vec::new(),
        })
    }

    /// Adds a batch of true labels and `[B, C]` probabilities.
    pub fn update<P: MatrixInput + ?Sized>(&mut self, labels: &[usize], probs: &P) -> Result<()> {
        let probs = probs.to_matrix("probabilities")?;
        check_columns("probabilities", &probs, self.num_classes)?;
        if labels.is_empty() && probs.nrows() == 0 {
            return Ok(());
        }
        check_probs(labels, &probs)?;
        self.labels.extend_from_slice(labels);
        self.probs.extend(probs.iter());
        Ok(())
    }

    /// Number of samples so far.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether no sample was added.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The labels so far.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// The probabilities so far, `[N, C]`.
    pub fn probs(&self) -> Array2<f64> {
        Array2::from_shape_fn((self.labels.len(), self.num_classes), |(i, j)| {
            self.probs[i * self.num_classes + j]
        })
    }

    /// ROC AUC of everything so far (see [`roc_auc_ovr`](crate::roc_auc_ovr)).
    pub fn auc(&self, average: Average) -> Result<f64> {
        let probs = self.probs();
        check_probs(&self.labels, &probs)?;
        auc_ovr_checked(&self.labels, &probs, average)
    }

    /// The full report of everything so far.
    pub fn compute(&self, cfg: &ReportConfig) -> Result<ClassificationReport> {
        ClassificationReport::from_checked(&self.labels, &self.probs(), cfg)
    }

    /// Forgets every batch.
    pub fn reset(&mut self) {
        self.labels.clear();
        self.probs.clear();
    }
}

/// Running mean and covariance of feature vectors (Chan et al.'s pairwise update of the mean and
/// co-moment matrix, in `f64`), so FID needs `O(d^2)` memory however many images are scored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeatureStatsAccumulator {
    n: usize,
    mean: Array1<f64>,
    /// Sum over samples of `(x - mean)(x - mean)^T`.
    comoment: Array2<f64>,
}

impl FeatureStatsAccumulator {
    /// An empty accumulator; the feature dimension is fixed by the first non-empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of samples so far.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Feature dimension, once known.
    pub fn dim(&self) -> Option<usize> {
        (self.n > 0).then_some(self.mean.len())
    }

    /// Adds a batch `[B, d]` (one sample per row).
    pub fn update<M: MatrixInput + ?Sized>(&mut self, batch: &M) -> Result<()> {
        let x = batch.to_matrix("features")?;
        if x.nrows() == 0 {
            return Ok(());
        }
        let (centred, mean) = crate::fid::centre_rows(&x)?;
        let comoment = centred.t().dot(&centred);
        self.merge_parts(x.nrows(), mean, comoment)
    }

    /// Adds another accumulator's samples (e.g. from another worker).
    pub fn merge(&mut self, other: &FeatureStatsAccumulator) -> Result<()> {
        if other.n == 0 {
            return Ok(());
        }
        self.merge_parts(other.n, other.mean.clone(), other.comoment.clone())
    }

    fn merge_parts(&mut self, nb: usize, mean_b: Array1<f64>, m2_b: Array2<f64>) -> Result<()> {
        if self.n == 0 {
            *self = FeatureStatsAccumulator {
                n: nb,
                mean: mean_b,
                comoment: m2_b,
            };
            return Ok(());
        }
        if mean_b.len() != self.mean.len() {
            return Err(MetricsError::DimensionMismatch {
                what: "feature dimension of accumulator vs batch",
                left: self.mean.len(),
                right: mean_b.len(),
            });
        }
        let (na, nbf) = (self.n as f64, nb as f64);
        let n = na + nbf;
        let delta = &mean_b - &self.mean;
        self.mean.scaled_add(nbf / n, &delta);
        let d = delta.len();
        let col = delta
            .view()
            .into_shape_with_order((d, 1))
            .map_err(|e| MetricsError::config("features", e.to_string()))?;
        let outer = col.dot(&col.t());
        self.comoment += &m2_b;
        self.comoment.scaled_add(na * nbf / n, &outer);
        self.n += nb;
        Ok(())
    }

    /// Mean and covariance of everything so far (needs two samples).
    pub fn compute(&self) -> Result<FeatureStats> {
        if self.n < 2 {
            return Err(MetricsError::TooFewSamples {
                what: "feature covariance",
                needed: 2,
                got: self.n,
            });
        }
        Ok(FeatureStats {
            n: self.n,
            mean: self.mean.clone(),
            cov: &self.comoment / (self.n - 1) as f64,
        })
    }

    /// Forgets every batch.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::gaussian;
    use crate::{roc_auc_ovr, ClassificationReport};
    use ndarray::{Axis, Slice};

    fn data() -> (Vec<usize>, Array2<f64>) {
        let x = gaussian(23, 3, 0.0, 1.0, 31).mapv(f64::exp);
        let sums = x.sum_axis(Axis(1)).insert_axis(Axis(1));
        let probs = &x / &sums;
        let labels = (0..23).map(|i| (i * 7) % 3).collect();
        (labels, probs)
    }

    #[test]
    fn confusion_accumulator_matches_batch_computation() {
        let (labels, probs) = data();
        let mut acc = ConfusionAccumulator::new(3).expect("acc");
        for start in (0..23).step_by(5) {
            let end = (start + 5).min(23);
            acc.update_probs(
                &labels[start..end],
                &probs.slice_axis(Axis(0), Slice::from(start..end)),
            )
            .expect("batch");
        }
        let whole = ConfusionMatrix::from_probs(&labels, &probs).expect("batch");
        assert_eq!(acc.compute(), whole);
        // A bad batch changes nothing.
        assert!(acc
            .update_probs(&[0], &Array2::<f64>::zeros((1, 2)))
            .is_err());
        assert!(acc.update(&[0, 1], &[0]).is_err());
        assert_eq!(acc.compute(), whole);
        acc.reset();
        assert_eq!(acc.compute().total(), 0);
    }

    #[test]
    fn score_accumulator_matches_batch_computation() {
        let (labels, probs) = data();
        let mut acc = ScoreAccumulator::new(3).expect("acc");
        for start in (0..23).step_by(4) {
            let end = (start + 4).min(23);
            acc.update(
                &labels[start..end],
                &probs.slice_axis(Axis(0), Slice::from(start..end)),
            )
            .expect("batch");
        }
        assert_eq!(acc.len(), 23);
        assert_eq!(acc.probs(), probs);
        assert_eq!(
            acc.auc(Average::Macro).expect("auc"),
            roc_auc_ovr(&labels, &probs, Average::Macro).expect("auc")
        );
        let cfg = ReportConfig {
            resamples: 100,
            ..ReportConfig::default()
        };
        assert_eq!(
            acc.compute(&cfg).expect("report"),
            ClassificationReport::new(&labels, &probs, &cfg).expect("report")
        );
        assert!(acc
            .update(&[5], &probs.slice_axis(Axis(0), Slice::from(..1)))
            .is_err());
        assert_eq!(acc.len(), 23);
        acc.reset();
        assert!(acc.is_empty());
        assert!(acc.auc(Average::Macro).is_err());
    }

    #[test]
    fn feature_accumulator_matches_batch_statistics() {
        let x = gaussian(301, 5, 1e3, 2.0, 32);
        let whole = FeatureStats::from_features(&x).expect("stats");
        let mut acc = FeatureStatsAccumulator::new();
        let mut other = FeatureStatsAccumulator::new();
        for (i, start) in (0..301).step_by(37).enumerate() {
            let batch = x.slice_axis(Axis(0), Slice::from(start..(start + 37).min(301)));
            // Half the batches go to a second accumulator, merged at the end.
            if i % 2 == 0 { &mut acc } else { &mut other }
                .update(&batch)
                .expect("batch");
        }
        acc.merge(&other).expect("merge");
        let streamed = acc.compute().expect("stats");
        assert_eq!(streamed.n, 301);
        let err = (&streamed.cov - &whole.cov)
            .mapv(f64::abs)
            .fold(0.0, |a: f64, &b| a.max(b));
        assert!(err < 1e-10, "covariance error {err}");
        let err = (&streamed.mean - &whole.mean)
            .mapv(f64::abs)
            .fold(0.0, |a: f64, &b| a.max(b));
        assert!(err < 1e-10, "mean error {err}");
        assert!(streamed.fid(&whole).expect("fid") < 1e-9);
        assert!(acc.update(&Array2::<f64>::zeros((2, 4))).is_err());
        assert_eq!(acc.n(), 301);
        acc.reset();
        assert!(matches!(
            acc.compute(),
            Err(MetricsError::TooFewSamples { got: 0, .. })
        ));
    }
}
