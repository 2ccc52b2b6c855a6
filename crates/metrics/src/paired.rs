//! Paired comparison of two models on the same test images: McNemar's exact test and a paired
//! bootstrap of accuracy and AUC differences.
//!
//! Two models scored on the same ~200 images are correlated; comparing their separate intervals
//! is too conservative. These tests use the pairing.

use ndarray::Array2;
use serde::Serialize;

use crate::confusion::Average;
use crate::error::check_len;
use crate::input::{argmax_rows, labels_and_probs, MatrixInput};
use crate::intervals::{quantile_sorted, resample_values, select, BootstrapConfig};
use crate::roc::auc_ovr_checked;
use crate::{MetricsError, Result};

/// McNemar's exact test on paired predictions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct McNemar {
    /// Images both models classify correctly.
    pub both_correct: u64,
    /// Images only model A classifies correctly (discordant, `b`).
    pub only_a: u64,
    /// Images only model B classifies correctly (discordant, `c`).
    pub only_b: u64,
    /// Images both models get wrong.
    pub both_wrong: u64,
    /// Two-sided exact p-value: binomial test of `only_a` out of `only_a + only_b` at 1/2.
    pub p_value: f64,
}

/// Two-sided exact McNemar p-value from the discordant counts `b` and `c`:
/// `min(1, 2 P(X <= min(b, c)))` with `X ~ Binomial(b + c, 1/2)`, as
/// `scipy.stats.binomtest(b, b + c, 0.5).pvalue`. No discordant pairs gives 1.
pub fn mcnemar_exact_p(b: u64, c: u64) -> f64 {
    let n = b + c;
    let k = b.min(c);
    if 2 * k >= n {
        return 1.0;
    }
    let tail = if n <= 1000 {
        lower_tail_exact(n, k)
    } else {
        lower_tail_log(n, k)
    };
    (2.0 * tail).min(1.0)
}

/// `P(X <= k)`, `X ~ Binomial(n, 1/2)`, for `n <= 1000`: binomial coefficients as `f64` are exact
/// integers while below 2^53 and 2^-n is an exact power of two, so small tables (the usual case)
/// get exact p-values.
fn lower_tail_exact(n: u64, k: u64) -> f64 {
    let (mut coef, mut sum) = (1.0f64, 1.0f64);
    for i in 0..k {
        coef = coef * (n - i) as f64 / (i + 1) as f64;
        sum += coef;
    }
    let half_pow = (0..n).fold(1.0f64, |acc, _| acc * 0.5);
    sum * half_pow
}

/// `P(X <= k)` for `k < n / 2` and any `n`: 2^-n underflows past n = 1074, so sum in logs
/// relative to the largest term (`i = k`, as `C(n, i)` grows up to `n / 2`).
fn lower_tail_log(n: u64, k: u64) -> f64 {
    let mut log_c = Vec::with_capacity(k as usize + 1);
    let mut lc = 0.0f64;
    log_c.push(lc);
    for i in 0..k {
        lc += ((n - i) as f64).ln() - ((i + 1) as f64).ln();
        log_c.push(lc);
    }
    let rel_sum: f64 = log_c.iter().map(|&l| (l - lc).exp()).sum();
    (lc + rel_sum.ln() - n as f64 * std::f64::consts::LN_2).exp()
}

/// McNemar's exact test of two models' predictions `preds_a`, `preds_b` against `labels`.
pub fn mcnemar_exact(labels: &[usize], preds_a: &[usize], preds_b: &[usize]) -> Result<McNemar> {
    check_len(
        "labels vs predictions of model A",
        labels.len(),
        preds_a.len(),
    )?;
    check_len(
        "labels vs predictions of model B",
        labels.len(),
        preds_b.len(),
    )?;
    if labels.is_empty() {
        return Err(MetricsError::Empty { what: "labels" });
    }
    let mut t = McNemar {
        both_correct: 0,
        only_a: 0,
        only_b: 0,
        both_wrong: 0,
        p_value: 1.0,
    };
    for ((l, a), b) in labels.iter().zip(preds_a).zip(preds_b) {
        match (a == l, b == l) {
            (true, true) => t.both_correct += 1,
            (true, false) => t.only_a += 1,
            (false, true) => t.only_b += 1,
            (false, false) => t.both_wrong += 1,
        }
    }
    t.p_value = mcnemar_exact_p(t.only_a, t.only_b);
    Ok(t)
}

/// A paired bootstrap of `statistic(A) - statistic(B)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairedDiff {
    /// The statistic of model A on the full data.
    pub a: f64,
    /// The statistic of model B on the full data.
    pub b: f64,
    /// `a - b`.
    pub diff: f64,
    /// Lower percentile bound of the difference.
    pub lower: f64,
    /// Upper percentile bound of the difference.
    pub upper: f64,
    /// Two-sided bootstrap p-value for "no difference":
    /// `min(1, 2 min(#{d* <= 0} + 1, #{d* >= 0} + 1) / (resamples + 1))`, so never below
    /// `2 / (resamples + 1)`.
    pub p_value: f64,
    /// Confidence level of the interval.
    pub confidence: f64,
    /// Resamples used.
    pub resamples: usize,
    /// Resamples skipped (statistic undefined, e.g. one class drawn).
    pub skipped: usize,
}

pub(crate) fn two_probs<P, Q>(
    labels: &[usize],
    probs_a: &P,
    probs_b: &Q,
) -> Result<(Array2<f64>, Array2<f64>)>
where
    P: MatrixInput + ?Sized,
    Q: MatrixInput + ?Sized,
{
    let a = labels_and_probs(labels, probs_a)?;
    let b = labels_and_probs(labels, probs_b)?;
    if a.ncols() != b.ncols() {
        return Err(MetricsError::DimensionMismatch {
            what: "classes of model A vs model B",
            left: a.ncols(),
            right: b.ncols(),
        });
    }
    Ok((a, b))
}

/// Paired bootstrap of the difference of any statistic between two models scored on the same
/// images: each resample draws the same images for both. Seeded by `cfg.seed`.
pub fn paired_bootstrap<P, Q>(
    labels: &[usize],
    probs_a: &P,
    probs_b: &Q,
    cfg: &BootstrapConfig,
    mut statistic: impl FnMut(&[usize], &Array2<f64>) -> Result<f64>,
) -> Result<PairedDiff>
where
    P: MatrixInput + ?Sized,
    Q: MatrixInput + ?Sized,
{
    cfg.validate()?;
    let (pa, pb) = two_probs(labels, probs_a, probs_b)?;
    let a = statistic(labels, &pa)?;
    let b = statistic(labels, &pb)?;
    let (diffs, skipped) = resample_values(labels.len(), cfg, |idx| {
        let (l, sa) = select(labels, &pa, idx);
        let (_, sb) = select(labels, &pb, idx);
        Ok(statistic(&l, &sa)? - statistic(&l, &sb)?)
    })?;
    Ok(PairedDiff::from_resamples(a, b, diffs, skipped, cfg))
}

impl PairedDiff {
    /// The statistic of A and B on the full data, and the resampled differences (non-empty):
    /// percentile interval and two-sided bootstrap p-value.
    pub(crate) fn from_resamples(
        a: f64,
        b: f64,
        mut diffs: Vec<f64>,
        skipped: usize,
        cfg: &BootstrapConfig,
    ) -> Self {
        diffs.sort_by(f64::total_cmp);
        let le = diffs.iter().filter(|&&d| d <= 0.0).count();
        let ge = diffs.iter().filter(|&&d| d >= 0.0).count();
        let alpha = 1.0 - cfg.confidence;
        PairedDiff {
            a,
            b,
            diff: a - b,
            lower: quantile_sorted(&diffs, alpha / 2.0),
            upper: quantile_sorted(&diffs, 1.0 - alpha / 2.0),
            p_value: (2.0 * (le.min(ge) + 1) as f64 / (diffs.len() + 1) as f64).min(1.0),
            confidence: cfg.confidence,
            resamples: diffs.len(),
            skipped,
        }
    }
}

/// Everything ganaug reports when comparing two models on one test set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedComparison {
    /// McNemar's exact test on the argmax predictions.
    pub mcnemar: McNemar,
    /// Paired bootstrap of the accuracy difference (A - B).
    pub accuracy: PairedDiff,
    /// Paired bootstrap of the ROC AUC difference (A - B); `None` when a class the AUC needs is
    /// absent from the test labels.
    pub auc: Option<PairedDiff>,
}

/// Compares two models' `[N, C]` probabilities on the same images: McNemar, accuracy
/// difference, and AUC difference (`average` as in [`roc_auc_ovr`](crate::roc_auc_ovr)).
/// Both bootstraps use `cfg.seed`, hence the same resamples.
pub fn compare_models<P, Q>(
    labels: &[usize],
    probs_a: &P,
    probs_b: &Q,
    average: Average,
    cfg: &BootstrapConfig,
) -> Result<PairedComparison>
where
    P: MatrixInput + ?Sized,
    Q: MatrixInput + ?Sized,
{
    let (pa, pb) = two_probs(labels, probs_a, probs_b)?;
    let mcnemar = mcnemar_exact(labels, &argmax_rows(&pa), &argmax_rows(&pb))?;
    let accuracy = paired_bootstrap(labels, &pa, &pb, cfg, |l, p| {
        let preds = argmax_rows(p);
        Ok(l.iter().zip(&preds).filter(|(a, b)| a == b).count() as f64 / l.len() as f64)
    })?;
    let auc = match paired_bootstrap(labels, &pa, &pb, cfg, |l, p| auc_ovr_checked(l, p, average)) {
        Ok(d) => Some(d),
        Err(MetricsError::SingleClass { .. }) => None,
        Err(e) => return Err(e),
    };
    Ok(PairedComparison {
        mcnemar,
        accuracy,
        auc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn mcnemar_known_tables() {
        assert_eq!(mcnemar_exact_p(0, 10), 2.0 * 0.5f64.powi(10));
        assert_eq!(mcnemar_exact_p(10, 0), 2.0 * 0.5f64.powi(10));
        assert_eq!(mcnemar_exact_p(7, 7), 1.0);
        assert_eq!(mcnemar_exact_p(0, 0), 1.0);
        assert_eq!(mcnemar_exact_p(3, 4), 1.0);
        // 2 * P(X <= 1), X ~ Bin(6, 1/2) = 2 * 7/64.
        assert!((mcnemar_exact_p(1, 5) - 14.0 / 64.0).abs() < 1e-15);
        // Large n: no underflow, and a tiny but positive p.
        let p = mcnemar_exact_p(400, 600);
        assert!(p > 0.0 && p < 1e-9, "{p}");
        // The two ways of summing agree where both work.
        for (n, k) in [(10, 3), (200, 80), (1000, 470), (1000, 20)] {
            let (a, b) = (lower_tail_exact(n, k), lower_tail_log(n, k));
            assert!((a - b).abs() <= 1e-12 * a, "n={n} k={k}: {a} vs {b}");
        }
    }

    #[test]
    fn mcnemar_counts_discordant_pairs() {
        let labels = [0, 1, 0, 1, 0];
        let a = [0, 1, 1, 1, 1];
        let b = [0, 0, 0, 1, 1];
        let t = mcnemar_exact(&labels, &a, &b).expect("valid");
        assert_eq!(
            (t.both_correct, t.only_a, t.only_b, t.both_wrong),
            (2, 1, 1, 1)
        );
        assert_eq!(t.p_value, 1.0);
        assert!(mcnemar_exact(&labels, &a, &b[..4]).is_err());
    }

    fn probs(p0: &[f64]) -> Array2<f64> {
        Array2::from_shape_fn(
            (p0.len(), 2),
            |(i, j)| if j == 0 { p0[i] } else { 1.0 - p0[i] },
        )
    }

    #[test]
    fn paired_bootstrap_sees_a_clear_winner() {
        // A is right on every image, B on half of them.
        let labels: Vec<usize> = (0..60).map(|i| i % 2).collect();
        let good: Vec<f64> = labels
            .iter()
            .map(|&l| if l == 0 { 0.9 } else { 0.1 })
            .collect();
        let coin: Vec<f64> = (0..60)
            .map(|i| if (i / 2) % 2 == 0 { 0.8 } else { 0.3 })
            .collect();
        let cfg = BootstrapConfig::default().with_resamples(500);
        let cmp = compare_models(
            &labels,
            &probs(&good),
            &probs(&coin),
            Average::Binary { positive: 0 },
            &cfg,
        )
        .expect("comparison");
        assert_eq!(cmp.accuracy.a, 1.0);
        assert!(cmp.accuracy.lower > 0.0 && cmp.accuracy.p_value < 0.01);
        assert_eq!(cmp.mcnemar.only_b, 0);
        assert!(cmp.mcnemar.p_value < 1e-6);
        let auc = cmp.auc.expect("both classes present");
        assert!(auc.diff > 0.0 && auc.lower > 0.0);
        // The same model against itself: no difference at all.
        let same = compare_models(&labels, &probs(&coin), &probs(&coin), Average::Macro, &cfg)
            .expect("comparison");
        assert_eq!(same.accuracy.diff, 0.0);
        assert_eq!(same.accuracy.p_value, 1.0);
        assert_eq!(same.mcnemar.p_value, 1.0);
    }

    #[test]
    fn paired_inputs_must_match() {
        let labels = [0, 1];
        let a = probs(&[0.7, 0.2]);
        let b = Array2::from_elem((2, 3), 1.0 / 3.0);
        let cfg = BootstrapConfig::default();
        assert!(matches!(
            compare_models(&labels, &a, &b, Average::Macro, &cfg),
            Err(MetricsError::DimensionMismatch { .. })
        ));
        assert!(compare_models(&labels, &a, &probs(&[0.1]), Average::Macro, &cfg).is_err());
    }
}
