//! Paired comparisons over several training seeds: the mean over seeds of the per-seed paired
//! difference, with a two-level bootstrap that resamples seeds and, within each drawn seed, test
//! images (the same images for both models), so the interval holds both sources of variation.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::confusion::Average;
use crate::input::{argmax_rows, MatrixInput};
use crate::intervals::{select, BootstrapConfig};
use crate::paired::{two_probs, PairedDiff};
use crate::roc::auc_ovr_checked;
use crate::{MetricsError, Result};

/// One seed's pair: two models trained with the same seed, scored on the same test images.
#[derive(Debug)]
pub struct SeedPair<'a, P: ?Sized, Q: ?Sized> {
    /// True labels of the test images.
    pub labels: &'a [usize],
    /// Model A's `[N, C]` probabilities.
    pub a: &'a P,
    /// Model B's `[N, C]` probabilities.
    pub b: &'a Q,
}

// By hand: the derive would ask `P: Copy`, and the pair only holds references.
impl<P: ?Sized, Q: ?Sized> Clone for SeedPair<'_, P, Q> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P: ?Sized, Q: ?Sized> Copy for SeedPair<'_, P, Q> {}

/// Accuracy and AUC differences (A − B) over seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeedComparison {
    /// Seeds paired.
    pub seeds: usize,
    /// Accuracy: `a`, `b` and `diff` are means over seeds; the interval and p-value come from
    /// the two-level bootstrap.
    pub accuracy: PairedDiff,
    /// The same for ROC AUC; `None` when a class the AUC needs is absent from some seed's labels.
    pub auc: Option<PairedDiff>,
}

/// The mean over seeds of `statistic(A) − statistic(B)`, with a percentile interval from
/// `cfg.resamples` two-level resamples: draw as many seeds as there are, with replacement; for
/// each drawn seed draw its test images with replacement (the same images for A and B). With one
/// seed this is the paired image bootstrap. Resamples on which the statistic is undefined
/// ([`MetricsError::SingleClass`]) are skipped and counted.
pub fn paired_bootstrap_seeds<P, Q>(
    pairs: &[SeedPair<'_, P, Q>],
    cfg: &BootstrapConfig,
    mut statistic: impl FnMut(&[usize], &Array2<f64>) -> Result<f64>,
) -> Result<PairedDiff>
where
    P: MatrixInput + ?Sized,
    Q: MatrixInput + ?Sized,
{
    cfg.validate()?;
    if pairs.is_empty() {
        return Err(MetricsError::Empty { what: "seed pairs" });
    }
    let mut data = Vec::with_capacity(pairs.len());
    for p in pairs {
        let (a, b) = two_probs(p.labels, p.a, p.b)?;
        data.push((p.labels, a, b));
    }
    let s = data.len() as f64;
    let (mut sum_a, mut sum_b) = (0.0, 0.0);
    for (l, a, b) in &data {
        sum_a += statistic(l, a)?;
        sum_b += statistic(l, b)?;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (mut diffs, mut skipped) = (Vec::with_capacity(cfg.resamples), 0);
    'resample: for _ in 0..cfg.resamples {
        let mut total = 0.0;
        for _ in 0..data.len() {
            let (labels, a, b) = &data[rng.random_range(0..data.len())];
            let idx: Vec<usize> = (0..labels.len())
                .map(|_| rng.random_range(0..labels.len()))
                .collect();
            let (l, sa) = select(labels, a, &idx);
            let (_, sb) = select(labels, b, &idx);
            match (statistic(&l, &sa), statistic(&l, &sb)) {
                (Ok(x), Ok(y)) => total += x - y,
                (Err(MetricsError::SingleClass { .. }), _)
                | (_, Err(MetricsError::SingleClass { .. })) => {
                    skipped += 1;
                    continue 'resample;
                }
                (Err(e), _) | (_, Err(e)) => return Err(e),
            }
        }
        let d = total / s;
        if !d.is_finite() {
            return Err(MetricsError::NonFinite {
                what: "bootstrap statistic",
                index: diffs.len() + skipped,
                value: d,
            });
        }
        diffs.push(d);
    }
    if diffs.is_empty() {
        return Err(MetricsError::TooFewSamples {
            what: "bootstrap resamples with a defined statistic",
            needed: 1,
            got: 0,
        });
    }
    Ok(PairedDiff::from_resamples(
        sum_a / s,
        sum_b / s,
        diffs,
        skipped,
        cfg,
    ))
}

/// Accuracy and AUC (`average` as in [`roc_auc_ovr`](crate::roc_auc_ovr)) of two models over
/// seeds, each by [`paired_bootstrap_seeds`] with `cfg.seed` (hence the same resamples).
pub fn compare_over_seeds<P, Q>(
    pairs: &[SeedPair<'_, P, Q>],
    average: Average,
    cfg: &BootstrapConfig,
) -> Result<SeedComparison>
where
    P: MatrixInput + ?Sized,
    Q: MatrixInput + ?Sized,
{
    let accuracy = paired_bootstrap_seeds(pairs, cfg, |l, p| {
        let preds = argmax_rows(p);
        Ok(l.iter().zip(&preds).filter(|(a, b)| a == b).count() as f64 / l.len() as f64)
    })?;
    let auc = match paired_bootstrap_seeds(pairs, cfg, |l, p| auc_ovr_checked(l, p, average)) {
        Ok(d) => Some(d),
        Err(MetricsError::SingleClass { .. }) => None,
        Err(e) => return Err(e),
    };
    Ok(SeedComparison {
        seeds: pairs.len(),
        accuracy,
        auc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paired_bootstrap;

    /// `n` two-class probabilities for `labels`: correct with confidence `p` on the images
    /// whose index is not in `wrong`.
    fn probs(labels: &[usize], wrong: impl Fn(usize) -> bool) -> Array2<f64> {
        Array2::from_shape_fn((labels.len(), 2), |(i, j)| {
            let right = (j == labels[i]) != wrong(i);
            if right {
                0.8
            } else {
                0.2
            }
        })
    }

    fn labels(n: usize) -> Vec<usize> {
        (0..n).map(|i| i % 2).collect()
    }

    #[test]
    fn one_seed_matches_the_image_bootstrap() {
        let y = labels(200);
        let a = probs(&y, |i| i % 5 == 0);
        let b = probs(&y, |i| i % 4 == 0);
        let cfg = BootstrapConfig::default();
        let pairs = [SeedPair {
            labels: &y[..],
            a: &a,
            b: &b,
        }];
        let over = compare_over_seeds(&pairs, Average::Binary { positive: 0 }, &cfg).expect("test");
        let acc = |l: &[usize], p: &Array2<f64>| {
            let preds = argmax_rows(p);
            Ok(l.iter().zip(&preds).filter(|(x, y)| x == y).count() as f64 / l.len() as f64)
        };
        let image = paired_bootstrap(&y, &a, &b, &cfg, acc).expect("test");
        assert_eq!(over.seeds, 1);
        assert!((over.accuracy.diff - image.diff).abs() < 1e-12);
        assert!((over.accuracy.diff - 0.05).abs() < 1e-12, "{}", image.diff);
        // same distribution, other draws: bounds agree to Monte-Carlo error
        assert!((over.accuracy.lower - image.lower).abs() < 0.012);
        assert!((over.accuracy.upper - image.upper).abs() < 0.012);
    }

    #[test]
    fn seed_spread_widens_the_interval_and_a_consistent_gain_excludes_zero() {
        let y = labels(200);
        let base = probs(&y, |i| i % 4 == 0); // 0.75
                                              // per seed, A errs on other images (accuracy about 0.85) and B too (0.75)
        let better: Vec<_> = (0..3)
            .map(|s| probs(&y, move |i| i % 5 == s && i % 4 != 0))
            .collect();
        let same: Vec<_> = (0..3)
            .map(|s| probs(&y, move |i| (i + s) % 4 == 0))
            .collect();
        let cfg = BootstrapConfig::default();
        let pairs: Vec<_> = better
            .iter()
            .zip(&same)
            .map(|(a, b)| SeedPair {
                labels: &y[..],
                a,
                b,
            })
            .collect();
        let c = compare_over_seeds(&pairs, Average::Binary { positive: 0 }, &cfg).expect("test");
        assert_eq!(c.seeds, 3);
        assert!((c.accuracy.b - 0.75).abs() < 1e-12);
        assert!((c.accuracy.diff - (c.accuracy.a - 0.75)).abs() < 1e-12);
        assert!(c.accuracy.lower > 0.0, "{:?}", c.accuracy);
        // the same pairs with one seed's gain turned into a large loss: the seed spread shows
        let worse = probs(&y, |i| i % 2 == 0);
        let mixed = [
            pairs[0],
            pairs[1],
            SeedPair {
                labels: &y[..],
                a: &worse,
                b: &base,
            },
        ];
        let m = compare_over_seeds(&mixed, Average::Binary { positive: 0 }, &cfg).expect("test");
        let width = |d: &PairedDiff| d.upper - d.lower;
        assert!(
            width(&m.accuracy) > 2.0 * width(&c.accuracy),
            "{m:?} vs {c:?}"
        );
        assert!(m.accuracy.lower < 0.0);
    }

    #[test]
    fn bad_input_is_refused() {
        let y = labels(10);
        let a = probs(&y, |_| false);
        let three = Array2::from_elem((10, 3), 1.0 / 3.0);
        let cfg = BootstrapConfig::default();
        let none: [SeedPair<'_, Array2<f64>, Array2<f64>>; 0] = [];
        assert!(matches!(
            compare_over_seeds(&none, Average::Macro, &cfg),
            Err(MetricsError::Empty { .. })
        ));
        let pairs = [SeedPair {
            labels: &y[..],
            a: &a,
            b: &three,
        }];
        assert!(compare_over_seeds(&pairs, Average::Macro, &cfg).is_err());
    }
}
