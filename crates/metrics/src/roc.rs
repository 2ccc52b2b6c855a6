//! ROC curves and ROC AUC, binary and one-vs-rest multi-class.
//!
//! Tied scores are one threshold: a tie between positives and negatives gives a diagonal segment
//! of the curve, and AUC counts each tied (positive, negative) pair as 1/2 (the Mann–Whitney
//! statistic), as scikit-learn.

use ndarray::{Array2, ArrayView1};
use serde::Serialize;

use crate::confusion::Average;
use crate::input::{binary_scores, labels_and_probs, MatrixInput};
use crate::{MetricsError, Result};

/// A ROC curve: one point per distinct score, from `(0, 0)` (threshold `+inf`) to `(1, 1)`.
/// The point `i` classifies as positive every sample with score `>= thresholds[i]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RocCurve {
    /// False positive rate (1 - specificity), non-decreasing.
    pub fpr: Vec<f64>,
    /// True positive rate (sensitivity), non-decreasing.
    pub tpr: Vec<f64>,
    /// Decreasing thresholds; the first is `+inf` (serialised as `null` by serde_json).
    pub thresholds: Vec<f64>,
    #[serde(skip)]
    fps: Vec<u64>,
    #[serde(skip)]
    tps: Vec<u64>,
}

impl RocCurve {
    /// The area under the curve by the trapezoidal rule (equal to [`roc_auc`] on the same data).
    pub fn auc(&self) -> f64 {
        self.fpr
            .windows(2)
            .zip(self.tpr.windows(2))
            .map(|(f, t)| (f[1] - f[0]) * (t[0] + t[1]) / 2.0)
            .sum()
    }

    /// The curve without the points that lie between two equal steps, as scikit-learn's
    /// `roc_curve(drop_intermediate=True)` (its default): same area, fewer points to plot.
    pub fn drop_intermediate(&self) -> RocCurve {
        // scikit-learn decides on the counts before prepending the (0, 0) point.
        let n = self.fps.len() - 1;
        if n <= 2 {
            return self.clone();
        }
        let (fps, tps) = (&self.fps[1..], &self.tps[1..]);
        let second_diff = |v: &[u64], i: usize| {
            (v[i + 1] as i128 - v[i] as i128) - (v[i] as i128 - v[i - 1] as i128)
        };
        let mut keep = vec![0];
        keep.extend(
            (1..n).filter(|&i| i == n - 1 || second_diff(fps, i) != 0 || second_diff(tps, i) != 0),
        );
        let pick = |v: &[f64]| -> Vec<f64> {
            std::iter::once(v[0])
                .chain(keep.iter().map(|&i| v[i + 1]))
                .collect()
        };
        let pick_u = |v: &[u64]| -> Vec<u64> {
            std::iter::once(v[0])
                .chain(keep.iter().map(|&i| v[i + 1]))
                .collect()
        };
        RocCurve {
            fpr: pick(&self.fpr),
            tpr: pick(&self.tpr),
            thresholds: pick(&self.thresholds),
            fps: pick_u(&self.fps),
            tps: pick_u(&self.tps),
        }
    }
}

fn class_sizes(is_pos: &[bool], class: usize, what: &'static str) -> Result<(u64, u64)> {
    let pos = is_pos.iter().filter(|&&p| p).count() as u64;
    let neg = is_pos.len() as u64 - pos;
    if pos == 0 {
        return Err(MetricsError::SingleClass {
            what,
            class,
            present: "negatives",
        });
    }
    if neg == 0 {
        return Err(MetricsError::SingleClass {
            what,
            class,
            present: "positives",
        });
    }
    Ok((pos, neg))
}

fn order_desc(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// Mann–Whitney AUC of `scores` for the positives `is_pos`: exact counting, ties as 1/2.
pub(crate) fn auc_of(
    is_pos: &[bool],
    scores: ArrayView1<'_, f64>,
    class: usize,
    what: &'static str,
) -> Result<f64> {
    let (pos, neg) = class_sizes(is_pos, class, what)?;
    let scores: Vec<f64> = scores.to_vec();
    let order = order_desc(&scores);
    // Walk from the highest score down; a positive beats every negative below its tie group and
    // ties the negatives inside it. Doubled counts keep the sum an integer.
    let (mut neg_above, mut twice_wins) = (0u128, 0u128);
    let mut i = 0;
    while i < order.len() {
        let s = scores[order[i]];
        let (mut p, mut n) = (0u128, 0u128);
        while i < order.len() && scores[order[i]] == s {
            if is_pos[order[i]] {
                p += 1;
            } else {
                n += 1;
            }
            i += 1;
        }
        let neg_below = neg as u128 - neg_above - n;
        twice_wins += p * (2 * neg_below + n);
        neg_above += n;
    }
    Ok(twice_wins as f64 / (2.0 * pos as f64 * neg as f64))
}

fn curve_of(is_pos: &[bool], scores: &[f64]) -> Result<RocCurve> {
    let (pos, neg) = class_sizes(is_pos, 0, "ROC curve")?;
    let order = order_desc(scores);
    let (mut tps, mut fps, mut thresholds) = (vec![0u64], vec![0u64], vec![f64::INFINITY]);
    let (mut tp, mut fp) = (0u64, 0u64);
    for (k, &i) in order.iter().enumerate() {
        if is_pos[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_tie = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
        if last_of_tie {
            tps.push(tp);
            fps.push(fp);
            thresholds.push(scores[i]);
        }
    }
    Ok(RocCurve {
        fpr: fps.iter().map(|&f| f as f64 / neg as f64).collect(),
        tpr: tps.iter().map(|&t| t as f64 / pos as f64).collect(),
        thresholds,
        fps,
        tps,
    })
}

/// The full ROC curve of a binary problem: labels in {0, 1}, `scores` the probability (or any
/// finite score) of class `positive`. Errors if only one class is present.
pub fn roc_curve<T: Copy + Into<f64>>(
    labels: &[usize],
    scores: &[T],
    positive: usize,
) -> Result<RocCurve> {
    let scores = binary_scores(labels, scores, positive)?;
    let is_pos: Vec<bool> = labels.iter().map(|&l| l == positive).collect();
    curve_of(&is_pos, &scores).map_err(|e| match e {
        MetricsError::SingleClass { present, .. } => MetricsError::SingleClass {
            what: "ROC curve",
            class: positive,
            present,
        },
        e => e,
    })
}

/// Binary ROC AUC: labels in {0, 1}, `scores` the probability (or any finite score) of class
/// `positive`. Errors if only one class is present.
pub fn roc_auc<T: Copy + Into<f64>>(
    labels: &[usize],
    scores: &[T],
    positive: usize,
) -> Result<f64> {
    let scores = binary_scores(labels, scores, positive)?;
    let is_pos: Vec<bool> = labels.iter().map(|&l| l == positive).collect();
    auc_of(&is_pos, ArrayView1::from(&scores[..]), positive, "ROC AUC")
}

/// ROC AUC from an `[N, C]` probability matrix, one-vs-rest: `Binary { positive }` is the AUC
/// of column `positive` for that class (the binary AUC when `C = 2`); `Macro` averages the
/// per-class AUCs, `Weighted` weights them by prevalence (scikit-learn's `multi_class="ovr"`).
/// Errors if a class needed is absent from `labels`.
pub fn roc_auc_ovr<P: MatrixInput + ?Sized>(
    labels: &[usize],
    probs: &P,
    average: Average,
) -> Result<f64> {
    let probs = labels_and_probs(labels, probs)?;
    auc_ovr_checked(labels, &probs, average)
}

/// [`roc_auc_ovr`] on already validated input.
pub(crate) fn auc_ovr_checked(
    labels: &[usize],
    probs: &Array2<f64>,
    average: Average,
) -> Result<f64> {
    let class_auc = |k: usize| {
        let is_pos: Vec<bool> = labels.iter().map(|&l| l == k).collect();
        auc_of(&is_pos, probs.column(k), k, "ROC AUC")
    };
    let c = probs.ncols();
    match average {
        Average::Binary { positive } if positive < c => class_auc(positive),
        Average::Binary { positive } => Err(MetricsError::LabelOutOfRange {
            index: 0,
            label: i64::try_from(positive).unwrap_or(i64::MAX),
            num_classes: c,
        }),
        Average::Macro => {
            let aucs = (0..c).map(class_auc).collect::<Result<Vec<_>>>()?;
            Ok(aucs.iter().sum::<f64>() / c as f64)
        }
        Average::Weighted => {
            let mut sum = 0.0;
            for k in 0..c {
                let support = labels.iter().filter(|&&l| l == k).count() as f64;
                sum += class_auc(k)? * support;
            }
            Ok(sum / labels.len() as f64)
        }
    }
}

/// Per-class one-vs-rest AUCs; `None` for a class absent from (or the only class in) `labels`.
pub(crate) fn per_class_auc(labels: &[usize], probs: &Array2<f64>) -> Vec<Option<f64>> {
    (0..probs.ncols())
        .map(|k| {
            let is_pos: Vec<bool> = labels.iter().map(|&l| l == k).collect();
            auc_of(&is_pos, probs.column(k), k, "ROC AUC").ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn perfect_reversed_and_tied_rankings() {
        let labels = [1, 1, 0, 0, 1, 0];
        let perfect = [0.9, 0.8, 0.1, 0.2, 0.7, 0.3];
        assert_eq!(roc_auc(&labels, &perfect, 1).expect("auc"), 1.0);
        let reversed: Vec<f64> = perfect.iter().map(|s| 1.0 - s).collect();
        assert_eq!(roc_auc(&labels, &reversed, 1).expect("auc"), 0.0);
        assert_eq!(roc_auc(&labels, &[0.5; 6], 1).expect("auc"), 0.5);
    }

    #[test]
    fn positive_class_zero_flips_the_roles() {
        // Scores are P(class 0): a perfect ranking for the COVID-is-0 convention.
        let labels = [0, 0, 1, 1];
        let p0 = [0.9, 0.6, 0.4, 0.1];
        assert_eq!(roc_auc(&labels, &p0, 0).expect("auc"), 1.0);
        assert_eq!(roc_auc(&labels, &p0, 1).expect("auc"), 0.0);
    }

    #[test]
    fn ties_give_a_diagonal_segment() {
        let labels = [1, 0, 1, 0];
        let scores = [0.8, 0.5, 0.5, 0.2];
        let curve = roc_curve(&labels, &scores, 1).expect("curve");
        assert_eq!(curve.fpr, vec![0.0, 0.0, 0.5, 1.0]);
        assert_eq!(curve.tpr, vec![0.0, 0.5, 1.0, 1.0]);
        assert_eq!(curve.thresholds[1..], [0.8, 0.5, 0.2]);
        assert!(curve.thresholds[0].is_infinite());
        // One tied pair counts 1/2: (3 + 0.5) / 4.
        let auc = roc_auc(&labels, &scores, 1).expect("auc");
        assert_eq!(auc, 0.875);
        assert!((curve.auc() - auc).abs() < 1e-15);
    }

    #[test]
    fn drop_intermediate_keeps_the_area() {
        let labels = [1, 1, 1, 0, 0, 0, 1, 0];
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.35, 0.1];
        let full = roc_curve(&labels, &scores, 1).expect("curve");
        let thin = full.drop_intermediate();
        assert!(thin.fpr.len() < full.fpr.len());
        assert!((thin.auc() - full.auc()).abs() < 1e-15);
        assert_eq!(thin.fpr.first(), Some(&0.0));
        assert_eq!(thin.tpr.last(), Some(&1.0));
    }

    #[test]
    fn single_class_is_an_error() {
        assert!(matches!(
            roc_auc(&[1, 1], &[0.2, 0.3], 1),
            Err(MetricsError::SingleClass {
                present: "positives",
                ..
            })
        ));
        assert!(roc_curve(&[0, 0], &[0.2, 0.3], 1).is_err());
        assert!(matches!(
            roc_auc(&[0, 1], &[0.2, f64::INFINITY], 1),
            Err(MetricsError::NonFinite { index: 1, .. })
        ));
    }

    #[test]
    fn one_vs_rest_averages() {
        let labels = [0, 1, 2, 2];
        let probs = array![
            [0.8, 0.1, 0.1],
            [0.1, 0.8, 0.1],
            [0.1, 0.1, 0.8],
            [0.2, 0.1, 0.7]
        ];
        assert_eq!(
            roc_auc_ovr(&labels, &probs, Average::Macro).expect("auc"),
            1.0
        );
        assert_eq!(
            roc_auc_ovr(&labels, &probs, Average::Weighted).expect("auc"),
            1.0
        );
        assert!(roc_auc_ovr(&[0, 1, 1, 1], &probs, Average::Macro).is_err());
        let binary = array![[0.7, 0.3], [0.4, 0.6]];
        assert_eq!(
            roc_auc_ovr(&[0, 1], &binary, Average::Binary { positive: 0 }).expect("auc"),
            1.0
        );
    }
}
