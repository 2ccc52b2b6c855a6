//! Confusion matrices and the statistics read off them: accuracy, precision, recall, specificity,
//! F1, balanced accuracy and (multi-class) MCC.
//!
//! Undefined ratios (0/0, e.g. precision of a class never predicted) are 0, as scikit-learn's
//! `zero_division=0`; averages run over all `num_classes` classes, as scikit-learn with
//! `labels=range(num_classes)`.

use serde::Serialize;

use crate::error::check_len;
use crate::input::{argmax_rows, binary_scores, check_labels, labels_and_probs, MatrixInput};
use crate::{MetricsError, Result};

/// How per-class statistics become one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Average {
    /// The one-vs-rest statistic of one class (scikit-learn's `average="binary"` with
    /// `pos_label=positive`). ganaug's COVID class is label 0.
    Binary {
        /// The positive class.
        positive: usize,
    },
    /// Unweighted mean over classes.
    Macro,
    /// Mean over classes weighted by support (number of true instances).
    Weighted,
}

/// One class's one-vs-rest counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClassCounts {
    /// True positives.
    pub tp: u64,
    /// False positives.
    pub fp: u64,
    /// False negatives (`fn` is a keyword; serialised as `"fn"`).
    #[serde(rename = "fn")]
    pub fn_: u64,
    /// True negatives.
    pub tn: u64,
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

impl ClassCounts {
    /// Number of true instances (`tp + fn`).
    pub fn support(&self) -> u64 {
        self.tp + self.fn_
    }
    /// `tp / (tp + fp)`, 0 if nothing was predicted positive.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    /// Recall (sensitivity): `tp / (tp + fn)`, 0 if there are no positives.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    /// `tn / (tn + fp)`, 0 if there are no negatives.
    pub fn specificity(&self) -> f64 {
        ratio(self.tn, self.tn + self.fp)
    }
    /// `2 tp / (2 tp + fp + fn)`: the harmonic mean of precision and recall, 0 when undefined.
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
    /// Matthews correlation coefficient of this one-vs-rest problem, 0 when undefined.
    pub fn mcc(&self) -> f64 {
        let (tp, fp, fn_, tn) = (
            self.tp as f64,
            self.fp as f64,
            self.fn_ as f64,
            self.tn as f64,
        );
        let den = ((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)).sqrt();
        if den == 0.0 {
            0.0
        } else {
            (tp * tn - fp * fn_) / den
        }
    }
}

/// A `C x C` confusion matrix: `counts[t][p]` is the number of samples of true class `t`
/// predicted as `p` (rows = truth, as scikit-learn).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfusionMatrix {
    counts: Vec<Vec<u64>>,
}

impl ConfusionMatrix {
    /// An all-zero matrix for `num_classes >= 2` classes.
    pub fn new(num_classes: usize) -> Result<Self> {
        if num_classes < 2 {
            return Err(MetricsError::config(
                "num_classes",
                format!("need at least 2 classes, got {num_classes}"),
            ));
        }
        Ok(ConfusionMatrix {
            counts: vec![vec![0; num_classes]; num_classes],
        })
    }

    /// From true labels and predicted labels, both in `0..num_classes`.
    pub fn from_predictions(labels: &[usize], preds: &[usize], num_classes: usize) -> Result<Self> {
        let mut cm = ConfusionMatrix::new(num_classes)?;
        cm.add_predictions(labels, preds)?;
        Ok(cm)
    }

    /// From true labels and an `[N, C]` probability (or score) matrix; the prediction is the
    /// row's argmax (ties to the lowest class).
    pub fn from_probs<P: MatrixInput + ?Sized>(labels: &[usize], probs: &P) -> Result<Self> {
        let probs = labels_and_probs(labels, probs)?;
        ConfusionMatrix::from_predictions(labels, &argmax_rows(&probs), probs.ncols())
    }

    /// Binary: labels in {0, 1}, `scores` the probability of class `positive`; a sample is
    /// predicted `positive` when its score is `>= threshold`.
    pub fn from_scores<T: Copy + Into<f64>>(
        labels: &[usize],
        scores: &[T],
        positive: usize,
        threshold: f64,
    ) -> Result<Self> {
        let scores = binary_scores(labels, scores, positive)?;
        let preds: Vec<usize> = scores
            .iter()
            .map(|&s| {
                if s >= threshold {
                    positive
                } else {
                    1 - positive
                }
            })
            .collect();
        ConfusionMatrix::from_predictions(labels, &preds, 2)
    }

    /// Adds a batch of (label, prediction) pairs; on error nothing is added.
    pub fn add_predictions(&mut self, labels: &[usize], preds: &[usize]) -> Result<()> {
        check_len("labels vs predictions", labels.len(), preds.len())?;
        check_labels(labels, self.num_classes())?;
        check_labels(preds, self.num_classes())?;
        for (&t, &p) in labels.iter().zip(preds) {
            self.counts[t][p] += 1;
        }
        Ok(())
    }

    /// Adds another matrix of the same size (e.g. from another worker).
    pub fn merge(&mut self, other: &ConfusionMatrix) -> Result<()> {
        if other.num_classes() != self.num_classes() {
            return Err(MetricsError::DimensionMismatch {
                what: "confusion matrix classes",
                left: self.num_classes(),
                right: other.num_classes(),
            });
        }
        for (row, orow) in self.counts.iter_mut().zip(&other.counts) {
            for (c, o) in row.iter_mut().zip(orow) {
                *c += o;
            }
        }
        Ok(())
    }

    /// Sets every count to zero.
    pub fn clear(&mut self) {
        self.counts.iter_mut().flatten().for_each(|c| *c = 0);
    }

    /// The counts, `counts()[true][predicted]`.
    pub fn counts(&self) -> &[Vec<u64>] {
        &self.counts
    }

    /// Number of classes `C`.
    pub fn num_classes(&self) -> usize {
        self.counts.len()
    }

    /// Number of samples.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Number of correctly classified samples (the diagonal).
    pub fn correct(&self) -> u64 {
        (0..self.num_classes()).map(|k| self.counts[k][k]).sum()
    }

    /// Fraction correct, 0 for an empty matrix.
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct(), self.total())
    }

    /// Number of true instances of each class (row sums).
    pub fn supports(&self) -> Vec<u64> {
        self.counts.iter().map(|r| r.iter().sum()).collect()
    }

    /// Number of predictions of each class (column sums).
    pub fn predicted(&self) -> Vec<u64> {
        (0..self.num_classes())
            .map(|p| self.counts.iter().map(|r| r[p]).sum())
            .collect()
    }

    /// One-vs-rest counts of `class`.
    pub fn class_counts(&self, class: usize) -> Result<ClassCounts> {
        self.check_class(class)?;
        let tp = self.counts[class][class];
        let fn_ = self.supports()[class] - tp;
        let fp = self.predicted()[class] - tp;
        Ok(ClassCounts {
            tp,
            fp,
            fn_,
            tn: self.total() - tp - fn_ - fp,
        })
    }

    /// One-vs-rest counts of every class, in class order.
    pub fn per_class(&self) -> Vec<ClassCounts> {
        let (sup, pred, total) = (self.supports(), self.predicted(), self.total());
        (0..self.num_classes())
            .map(|k| {
                let tp = self.counts[k][k];
                let (fn_, fp) = (sup[k] - tp, pred[k] - tp);
                ClassCounts {
                    tp,
                    fp,
                    fn_,
                    tn: total - tp - fn_ - fp,
                }
            })
            .collect()
    }

    fn check_class(&self, class: usize) -> Result<()> {
        if class < self.num_classes() {
            Ok(())
        } else {
            Err(MetricsError::LabelOutOfRange {
                index: 0,
                label: i64::try_from(class).unwrap_or(i64::MAX),
                num_classes: self.num_classes(),
            })
        }
    }

    fn average(&self, avg: Average, stat: impl Fn(&ClassCounts) -> f64) -> Result<f64> {
        let per = self.per_class();
        match avg {
            Average::Binary { positive } => {
                self.check_class(positive)?;
                Ok(stat(&per[positive]))
            }
            Average::Macro => Ok(per.iter().map(&stat).sum::<f64>() / per.len() as f64),
            Average::Weighted => {
                let total = self.total();
                if total == 0 {
                    return Ok(0.0);
                }
                let sum: f64 = per.iter().map(|c| stat(c) * c.support() as f64).sum();
                Ok(sum / total as f64)
            }
        }
    }

    /// Precision, averaged as asked.
    pub fn precision(&self, avg: Average) -> Result<f64> {
        self.average(avg, ClassCounts::precision)
    }

    /// Recall (sensitivity), averaged as asked.
    pub fn recall(&self, avg: Average) -> Result<f64> {
        self.average(avg, ClassCounts::recall)
    }

    /// Specificity, averaged as asked.
    pub fn specificity(&self, avg: Average) -> Result<f64> {
        self.average(avg, ClassCounts::specificity)
    }

    /// F1; `Macro` and `Weighted` average the per-class F1 (as scikit-learn), not the F1 of
    /// averaged precision and recall.
    pub fn f1(&self, avg: Average) -> Result<f64> {
        self.average(avg, ClassCounts::f1)
    }

    /// Mean recall over the classes that occur (classes with no true instance are left out, as
    /// scikit-learn's `balanced_accuracy_score`); 0 for an empty matrix.
    pub fn balanced_accuracy(&self) -> f64 {
        let recalls: Vec<f64> = self
            .per_class()
            .iter()
            .filter(|c| c.support() > 0)
            .map(ClassCounts::recall)
            .collect();
        if recalls.is_empty() {
            0.0
        } else {
            recalls.iter().sum::<f64>() / recalls.len() as f64
        }
    }

    /// Matthews correlation coefficient, multi-class form (Gorodkin 2004, the R_K statistic);
    /// equals the usual binary MCC for two classes. 0 when undefined (a constant prediction or a
    /// single true class), as scikit-learn.
    pub fn mcc(&self) -> f64 {
        let s = self.total() as f64;
        let c = self.correct() as f64;
        let t: Vec<f64> = self.supports().iter().map(|&v| v as f64).collect();
        let p: Vec<f64> = self.predicted().iter().map(|&v| v as f64).collect();
        let tp_dot: f64 = t.iter().zip(&p).map(|(a, b)| a * b).sum();
        let pp: f64 = p.iter().map(|v| v * v).sum();
        let tt: f64 = t.iter().map(|v| v * v).sum();
        let den = ((s * s - pp) * (s * s - tt)).sqrt();
        if den == 0.0 {
            0.0
        } else {
            (c * s - tp_dot) / den
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn binary_counts_follow_the_positive_class() {
        // 3 COVID (label 0), 2 non-COVID; one COVID missed, one non-COVID flagged.
        let labels = [0, 0, 0, 1, 1];
        let preds = [0, 0, 1, 0, 1];
        let cm = ConfusionMatrix::from_predictions(&labels, &preds, 2).expect("valid");
        assert_eq!(cm.counts(), &[vec![2, 1], vec![1, 1]]);
        let c0 = cm.class_counts(0).expect("class 0");
        assert_eq!((c0.tp, c0.fp, c0.fn_, c0.tn), (2, 1, 1, 1));
        let pos0 = Average::Binary { positive: 0 };
        assert!(close(cm.recall(pos0).expect("recall"), 2.0 / 3.0));
        assert!(close(cm.specificity(pos0).expect("spec"), 0.5));
        assert!(close(cm.precision(pos0).expect("prec"), 2.0 / 3.0));
        assert!(close(cm.accuracy(), 0.6));
        // The binary MCC and the Gorodkin form agree.
        assert!(close(cm.mcc(), c0.mcc()));
    }

    #[test]
    fn perfect_and_constant_predictions() {
        let labels = [0, 1, 2, 2];
        let cm = ConfusionMatrix::from_predictions(&labels, &labels, 3).expect("valid");
        assert!(close(cm.mcc(), 1.0));
        assert!(close(cm.f1(Average::Macro).expect("f1"), 1.0));
        let constant = ConfusionMatrix::from_predictions(&labels, &[2; 4], 3).expect("valid");
        assert_eq!(constant.mcc(), 0.0);
        assert!(close(constant.balanced_accuracy(), 1.0 / 3.0));
    }

    #[test]
    fn scores_threshold_on_the_positive_class() {
        let cm =
            ConfusionMatrix::from_scores(&[0, 1, 0], &[0.9f32, 0.4, 0.5], 0, 0.5).expect("valid");
        assert_eq!(cm.correct(), 3);
        assert!(ConfusionMatrix::from_scores(&[0, 2], &[0.1, 0.2], 0, 0.5).is_err());
        assert!(ConfusionMatrix::from_scores(&[0, 1], &[0.1, 0.2], 2, 0.5).is_err());
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(ConfusionMatrix::new(1).is_err());
        assert!(matches!(
            ConfusionMatrix::from_predictions(&[0, 1], &[0], 2),
            Err(MetricsError::LengthMismatch { .. })
        ));
        assert!(matches!(
            ConfusionMatrix::from_predictions(&[0, 1], &[0, 3], 2),
            Err(MetricsError::LabelOutOfRange { label: 3, .. })
        ));
        let cm = ConfusionMatrix::new(2).expect("valid");
        assert!(cm.f1(Average::Binary { positive: 2 }).is_err());
        assert_eq!(cm.accuracy(), 0.0);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = ConfusionMatrix::from_predictions(&[0, 1], &[0, 0], 2).expect("a");
        let b = ConfusionMatrix::from_predictions(&[1], &[1], 2).expect("b");
        a.merge(&b).expect("same size");
        assert_eq!(a.counts(), &[vec![1, 0], vec![1, 1]]);
        assert!(a.merge(&ConfusionMatrix::new(3).expect("3")).is_err());
    }
}
