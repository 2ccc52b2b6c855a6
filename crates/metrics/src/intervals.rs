//! Confidence intervals: Wilson score intervals for proportions and seeded percentile bootstrap
//! intervals for any statistic (AUC, F1, ...).
//!
//! With ~200 test images an accuracy of 0.85 is uncertain by about ±5 points; these intervals
//! make that visible next to every number.

use ndarray::{Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::confusion::{Average, ConfusionMatrix};
use crate::error::check_confidence;
use crate::input::{argmax_rows, labels_and_probs, MatrixInput};
use crate::roc::auc_ovr_checked;
use crate::{MetricsError, Result};

/// A closed interval `[lower, upper]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
}

impl Interval {
    /// Whether `x` lies in the interval.
    pub fn contains(&self, x: f64) -> bool {
        self.lower <= x && x <= self.upper
    }
    /// `upper - lower`.
    pub fn width(&self) -> f64 {
        self.upper - self.lower
    }
}

/// A proportion `successes / trials` with its Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Proportion {
    /// `successes / trials`; 0 when `trials == 0` (scikit-learn's `zero_division=0`).
    pub estimate: f64,
    /// Numerator.
    pub successes: u64,
    /// Denominator.
    pub trials: u64,
    /// Wilson interval at `confidence`; `None` when `trials == 0`.
    pub interval: Option<Interval>,
    /// Confidence level of the interval.
    pub confidence: f64,
}

impl Proportion {
    /// `successes / trials` with a Wilson interval at `confidence` (e.g. 0.95).
    pub fn wilson(successes: u64, trials: u64, confidence: f64) -> Result<Self> {
        check_confidence(confidence)?;
        let interval = if trials == 0 {
            None
        } else {
            Some(wilson_interval(successes, trials, confidence)?)
        };
        Ok(Proportion {
            estimate: if trials == 0 {
                0.0
            } else {
                successes as f64 / trials as f64
            },
            successes,
            trials,
            interval,
            confidence,
        })
    }
}

/// Quantile function (inverse CDF) of the standard normal distribution, for `p` in (0, 1)
/// (Wichura 1988, algorithm AS 241: about 16 significant digits).
pub fn normal_quantile(p: f64) -> Result<f64> {
    if !(p > 0.0 && p < 1.0) {
        return Err(MetricsError::config("p", format!("{p} is not in (0, 1)")));
    }
    let poly = |c: &[f64], x: f64| c.iter().rev().fold(0.0, |acc, &k| acc * x + k);
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return Ok(q * poly(&AS241_A, r) / poly(&AS241_B, r));
    }
    let r = (-(if q < 0.0 { p } else { 1.0 - p }).ln()).sqrt();
    let val = if r <= 5.0 {
        poly(&AS241_C, r - 1.6) / poly(&AS241_D, r - 1.6)
    } else {
        poly(&AS241_E, r - 5.0) / poly(&AS241_F, r - 5.0)
    };
    Ok(if q < 0.0 { -val } else { val })
}

const AS241_A: [f64; 8] = [
    3.387_132_872_796_366_6,
    1.331_416_678_917_843_8e2,
    1.971_590_950_306_551_4e3,
    1.373_169_376_550_946e4,
    4.592_195_393_154_987e4,
    6.726_577_092_700_87e4,
    3.343_057_558_358_813e4,
    2.509_080_928_730_122_7e3,
];
const AS241_B: [f64; 8] = [
    1.0,
    4.231_333_070_160_091e1,
    6.871_870_074_920_579e2,
    5.394_196_021_424_751e3,
    2.121_379_430_158_659_7e4,
    3.930_789_580_009_271e4,
    2.872_908_573_572_194_3e4,
    5.226_495_278_852_854e3,
];
const AS241_C: [f64; 8] = [
    1.423_437_110_749_683_5,
    4.630_337_846_156_545,
    5.769_497_221_460_691,
    3.647_848_324_763_204_5,
    1.270_458_252_452_368_4,
    2.417_807_251_774_506e-1,
    2.272_384_498_926_918_4e-2,
    7.745_450_142_783_414e-4,
];
const AS241_D: [f64; 8] = [
    1.0,
    2.053_191_626_637_759,
    1.676_384_830_183_803_8,
    6.897_673_349_851e-1,
    1.481_039_764_274_800_8e-1,
    1.519_866_656_361_645_7e-2,
    5.475_938_084_995_345e-4,
    1.050_750_071_644_416_8e-9,
];
const AS241_E: [f64; 8] = [
    6.657_904_643_501_103,
    5.463_784_911_164_114,
    1.784_826_539_917_291_3,
    2.965_605_718_285_049e-1,
    2.653_218_952_657_612_4e-2,
    1.242_660_947_388_078_4e-3,
    2.711_555_568_743_487_6e-5,
    2.010_334_399_292_288_1e-7,
];
const AS241_F: [f64; 8] = [
    1.0,
    5.998_322_065_558_88e-1,
    1.369_298_809_227_358e-1,
    1.487_536_129_085_061_5e-2,
    7.868_691_311_456_133e-4,
    1.846_318_317_510_054_8e-5,
    1.421_511_758_316_446e-7,
    2.044_263_103_389_939_7e-15,
];

/// Wilson score interval for `successes / trials` at `confidence` (no continuity correction;
/// statsmodels' `proportion_confint(method="wilson")`, SciPy's
/// `binomtest(...).proportion_ci(method="wilson")`). Unlike the normal approximation it stays
/// inside [0, 1] and is not degenerate at 0/n or n/n.
pub fn wilson_interval(successes: u64, trials: u64, confidence: f64) -> Result<Interval> {
    check_confidence(confidence)?;
    if trials == 0 {
        return Err(MetricsError::Empty {
            what: "Wilson interval trials",
        });
    }
    if successes > trials {
        return Err(MetricsError::config(
            "successes",
            format!("{successes} successes out of {trials} trials"),
        ));
    }
    let z = normal_quantile(0.5 + confidence / 2.0)?;
    let (n, p) = (trials as f64, successes as f64 / trials as f64);
    let z2n = z * z / n;
    let center = (p + z2n / 2.0) / (1.0 + z2n);
    let half = z / (1.0 + z2n) * (p * (1.0 - p) / n + z2n / (4.0 * n)).sqrt();
    // At 0/n and n/n the bound is exactly 0 (or 1) in exact arithmetic; don't let rounding say otherwise.
    Ok(Interval {
        lower: if successes == 0 {
            0.0
        } else {
            (center - half).max(0.0)
        },
        upper: if successes == trials {
            1.0
        } else {
            (center + half).min(1.0)
        },
    })
}

/// Settings of a bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootstrapConfig {
    /// Number of resamples (at least 1; 2000 gives stable 95% percentile bounds).
    pub resamples: usize,
    /// Confidence level of the percentile interval, in (0, 1).
    pub confidence: f64,
    /// Seed of the resampling: the same seed gives the same interval.
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            resamples: 2000,
            confidence: 0.95,
            seed: 0,
        }
    }
}

impl BootstrapConfig {
    /// The same settings with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// The same settings with another number of resamples.
    pub fn with_resamples(mut self, resamples: usize) -> Self {
        self.resamples = resamples;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.resamples == 0 {
            return Err(MetricsError::config(
                "resamples",
                "need at least one resample",
            ));
        }
        check_confidence(self.confidence)
    }
}

/// A statistic with its percentile bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootstrapInterval {
    /// The statistic on the full data.
    pub estimate: f64,
    /// Lower percentile bound.
    pub lower: f64,
    /// Upper percentile bound.
    pub upper: f64,
    /// Confidence level.
    pub confidence: f64,
    /// Resamples whose statistic was defined and used.
    pub resamples: usize,
    /// Resamples skipped because the statistic was undefined on them (e.g. AUC of a resample
    /// that drew only one class).
    pub skipped: usize,
}

/// The `q`-quantile of `sorted` with linear interpolation (numpy's default).
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Runs `statistic` on `cfg.resamples` index resamples (with replacement) of `0..n`; returns the
/// values (unsorted) and the number skipped for [`MetricsError::SingleClass`].
pub(crate) fn resample_values(
    n: usize,
    cfg: &BootstrapConfig,
    mut statistic: impl FnMut(&[usize]) -> Result<f64>,
) -> Result<(Vec<f64>, usize)> {
    cfg.validate()?;
    if n == 0 {
        return Err(MetricsError::Empty {
            what: "bootstrap sample",
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut idx = vec![0usize; n];
    let (mut values, mut skipped) = (Vec::with_capacity(cfg.resamples), 0);
    for _ in 0..cfg.resamples {
        idx.iter_mut().for_each(|i| *i = rng.random_range(0..n));
        match statistic(&idx) {
            Ok(v) if v.is_finite() => values.push(v),
            Ok(value) => {
                return Err(MetricsError::NonFinite {
                    what: "bootstrap statistic",
                    index: values.len() + skipped,
                    value,
                })
            }
            Err(MetricsError::SingleClass { .. }) => skipped += 1,
            Err(e) => return Err(e),
        }
    }
    if values.is_empty() {
        return Err(MetricsError::TooFewSamples {
            what: "bootstrap resamples with a defined statistic",
            needed: 1,
            got: 0,
        });
    }
    Ok((values, skipped))
}

/// Percentile bootstrap of any statistic of a sample of size `n`: `statistic` gets the indices
/// of one resample (drawn with replacement, seeded by `cfg.seed`). Resamples on which it returns
/// [`MetricsError::SingleClass`] are skipped and counted; other errors stop the bootstrap.
pub fn bootstrap_by_index(
    n: usize,
    cfg: &BootstrapConfig,
    mut statistic: impl FnMut(&[usize]) -> Result<f64>,
) -> Result<BootstrapInterval> {
    cfg.validate()?;
    let all: Vec<usize> = (0..n).collect();
    let estimate = statistic(&all)?;
    let (mut values, skipped) = resample_values(n, cfg, statistic)?;
    values.sort_by(f64::total_cmp);
    let alpha = 1.0 - cfg.confidence;
    Ok(BootstrapInterval {
        estimate,
        lower: quantile_sorted(&values, alpha / 2.0),
        upper: quantile_sorted(&values, 1.0 - alpha / 2.0),
        confidence: cfg.confidence,
        resamples: values.len(),
        skipped,
    })
}

/// Percentile bootstrap of any statistic of (labels, `[N, C]` probabilities), resampling
/// images with replacement. See [`bootstrap_by_index`] for skipped resamples.
pub fn bootstrap<P: MatrixInput + ?Sized>(
    labels: &[usize],
    probs: &P,
    cfg: &BootstrapConfig,
    mut statistic: impl FnMut(&[usize], &Array2<f64>) -> Result<f64>,
) -> Result<BootstrapInterval> {
    let probs = labels_and_probs(labels, probs)?;
    bootstrap_by_index(labels.len(), cfg, |idx| {
        let (l, p) = select(labels, &probs, idx);
        statistic(&l, &p)
    })
}

pub(crate) fn select(
    labels: &[usize],
    probs: &Array2<f64>,
    idx: &[usize],
) -> (Vec<usize>, Array2<f64>) {
    (
        idx.iter().map(|&i| labels[i]).collect(),
        probs.select(Axis(0), idx),
    )
}

/// Bootstrap interval of the one-vs-rest ROC AUC (see [`roc_auc_ovr`](crate::roc_auc_ovr)).
pub fn bootstrap_auc<P: MatrixInput + ?Sized>(
    labels: &[usize],
    probs: &P,
    average: Average,
    cfg: &BootstrapConfig,
) -> Result<BootstrapInterval> {
    bootstrap(labels, probs, cfg, |l, p| auc_ovr_checked(l, p, average))
}

/// Bootstrap interval of F1 (argmax predictions; see [`ConfusionMatrix::f1`]).
pub fn bootstrap_f1<P: MatrixInput + ?Sized>(
    labels: &[usize],
    probs: &P,
    average: Average,
    cfg: &BootstrapConfig,
) -> Result<BootstrapInterval> {
    bootstrap(labels, probs, cfg, |l, p| {
        ConfusionMatrix::from_predictions(l, &argmax_rows(p), p.ncols())?.f1(average)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn normal_quantile_known_values() {
        let z = normal_quantile(0.975).expect("valid p");
        assert!((z - 1.959_963_984_540_054).abs() < 1e-14);
        assert_eq!(normal_quantile(0.5).expect("valid p"), 0.0);
        let tail = normal_quantile(1e-10).expect("valid p");
        assert!((tail + 6.361_340_902_404_056).abs() < 1e-12);
        assert!(normal_quantile(1.0).is_err());
        assert!(normal_quantile(f64::NAN).is_err());
    }

    #[test]
    fn wilson_edges_and_known_value() {
        let zero = wilson_interval(0, 20, 0.95).expect("valid");
        assert_eq!(zero.lower, 0.0);
        assert!(zero.upper > 0.1 && zero.upper < 0.2);
        let all = wilson_interval(20, 20, 0.95).expect("valid");
        assert_eq!(all.upper, 1.0);
        assert!((all.lower - (1.0 - zero.upper)).abs() < 1e-12);
        let w = wilson_interval(81, 263, 0.95).expect("valid");
        assert!((w.lower - 0.2553).abs() < 1e-4, "{w:?}");
        assert!((w.upper - 0.3662).abs() < 1e-4, "{w:?}");
        // Higher confidence, wider interval.
        let w99 = wilson_interval(81, 263, 0.99).expect("valid");
        assert!(w99.lower < w.lower && w99.upper > w.upper);
    }

    #[test]
    fn wilson_rejects_bad_input() {
        assert!(matches!(
            wilson_interval(1, 0, 0.95),
            Err(MetricsError::Empty { .. })
        ));
        assert!(wilson_interval(3, 2, 0.95).is_err());
        for c in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
            assert!(matches!(
                wilson_interval(1, 2, c),
                Err(MetricsError::Config {
                    field: "confidence",
                    ..
                })
            ));
        }
        let p = Proportion::wilson(0, 0, 0.95).expect("empty proportion");
        assert_eq!((p.estimate, p.interval), (0.0, None));
    }

    fn toy() -> (Vec<usize>, Array2<f64>) {
        let labels = vec![0, 0, 0, 1, 1, 1, 0, 1, 0, 1];
        let p0 = [0.9, 0.8, 0.4, 0.3, 0.2, 0.6, 0.7, 0.1, 0.55, 0.45];
        let probs =
            Array2::from_shape_fn((10, 2), |(i, j)| if j == 0 { p0[i] } else { 1.0 - p0[i] });
        (labels, probs)
    }

    #[test]
    fn bootstrap_is_deterministic_by_seed() {
        let (labels, probs) = toy();
        let pos = Average::Binary { positive: 0 };
        let cfg = BootstrapConfig::default().with_resamples(300);
        let a = bootstrap_auc(&labels, &probs, pos, &cfg).expect("auc");
        let b = bootstrap_auc(&labels, &probs, pos, &cfg).expect("auc");
        assert_eq!(a, b);
        let c = bootstrap_auc(&labels, &probs, pos, &cfg.with_seed(7)).expect("auc");
        assert_ne!((a.lower, a.upper), (c.lower, c.upper));
        assert!(a.lower <= a.estimate && a.estimate <= a.upper);
        // Ten images: some resamples draw one class only and are skipped, not failed.
        assert_eq!(a.resamples + a.skipped, 300);
        let f1 = bootstrap_f1(&labels, &probs, pos, &cfg).expect("f1");
        assert!(f1.lower <= f1.estimate && f1.estimate <= f1.upper);
    }

    #[test]
    fn bootstrap_of_a_constant_is_degenerate() {
        let ci = bootstrap_by_index(5, &BootstrapConfig::default(), |_| Ok(0.25)).expect("ci");
        assert_eq!((ci.lower, ci.estimate, ci.upper), (0.25, 0.25, 0.25));
    }

    #[test]
    fn bootstrap_rejects_bad_config() {
        let (labels, probs) = toy();
        let zero = BootstrapConfig::default().with_resamples(0);
        assert!(matches!(
            bootstrap_auc(&labels, &probs, Average::Macro, &zero),
            Err(MetricsError::Config {
                field: "resamples",
                ..
            })
        ));
        let bad = BootstrapConfig {
            confidence: 1.0,
            ..BootstrapConfig::default()
        };
        assert!(bootstrap_auc(&labels, &probs, Average::Macro, &bad).is_err());
        let one_class = array![[0.2, 0.8], [0.3, 0.7]];
        assert!(matches!(
            bootstrap_auc(
                &[1, 1],
                &one_class,
                Average::Macro,
                &BootstrapConfig::default()
            ),
            Err(MetricsError::SingleClass { .. })
        ));
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.5), 2.5);
        assert_eq!(quantile_sorted(&v, 0.0), 1.0);
        assert_eq!(quantile_sorted(&v, 1.0), 4.0);
        assert!((quantile_sorted(&v, 0.025) - 1.075).abs() < 1e-12);
    }
}
