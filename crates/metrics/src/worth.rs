//! What extra training data is worth in real images: read off a learning curve measured in the
//! same study (accuracy against the number of real training images), the horizontal distance
//! from where an arm stands to where the curve reaches its accuracy (after Le Scao & Rush 2021,
//! "How many data points is a prompt worth?"). The curve is made non-decreasing (pool-adjacent
//! violators: its points are noisy means), interpolated linearly in the logarithm of the number
//! of images, and not extrapolated: below its first point an arm is "below the curve", above
//! its last "beyond the curve". Everything is paired by resample (the same subset for every
//! arm) and test image: the arm is read as the curve at its own size plus its paired
//! difference, and the interval comes from a bootstrap over test images and resamples drawn
//! once for every point and the arm.

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::{BootstrapConfig, MetricsError, Result};

/// One arm at one data size: the real images it had, and for each resample (subset) the
/// correctness of every test image (1 correct, 0 not), the same test images in the same order
/// for every resample and arm.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcomes {
    /// Real training images available (its x on the learning curve).
    pub real_images: f64,
    /// `[resample][test image]` correctness.
    pub by_resample: Vec<Vec<f64>>,
}

impl Outcomes {
    /// Mean accuracy over resamples and test images.
    pub fn accuracy(&self) -> f64 {
        let n: usize = self.by_resample.iter().map(Vec::len).sum();
        self.by_resample.iter().flatten().sum::<f64>() / n.max(1) as f64
    }

    /// The mean accuracy's percentile interval from a bootstrap over resamples and test
    /// images together.
    pub fn accuracy_interval(&self, cfg: &BootstrapConfig) -> (f64, f64) {
        let tests = self.by_resample.first().map_or(0, Vec::len);
        let r = self.by_resample.len();
        if tests == 0 || r == 0 {
            return (f64::NAN, f64::NAN);
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut means: Vec<f64> = (0..cfg.resamples)
            .map(|_| {
                let images: Vec<usize> = (0..tests).map(|_| rng.random_range(0..tests)).collect();
                let picks: Vec<usize> = (0..r).map(|_| rng.random_range(0..r)).collect();
                let total: f64 = picks
                    .iter()
                    .map(|&k| images.iter().map(|&i| self.by_resample[k][i]).sum::<f64>())
                    .sum();
                total / (r * tests) as f64
            })
            .collect();
        means.sort_by(f64::total_cmp);
        let tail = (1.0 - cfg.confidence) / 2.0;
        let at =
            |q: f64| means[((q * (means.len() - 1) as f64).round() as usize).min(means.len() - 1)];
        (at(tail), at(1.0 - tail))
    }

    /// Mean correctness over the test images `images` (indices, repeats allowed) and the
    /// first `weights.len()` resamples (at most all of them), resample `k` weighed by
    /// `weights[k]`.
    fn mean(&self, images: &[usize], weights: &[f64]) -> f64 {
        let (mut total, mut weight) = (0.0, 0.0);
        for (row, &w) in self.by_resample.iter().zip(weights) {
            total += w * images.iter().map(|&i| row[i]).sum::<f64>() / images.len() as f64;
            weight += w;
        }
        total / weight
    }

    fn check(&self, what: &'static str, tests: usize) -> Result<()> {
        if self.by_resample.is_empty() {
            return Err(MetricsError::Empty { what });
        }
        if let Some(bad) = self.by_resample.iter().find(|r| r.len() != tests) {
            return Err(MetricsError::LengthMismatch {
                what,
                expected: tests,
                got: bad.len(),
            });
        }
        if !(self.real_images > 0.0 && self.real_images.is_finite()) {
            return Err(MetricsError::NonFinite {
                what,
                index: 0,
                value: self.real_images,
            });
        }
        Ok(())
    }
}

/// What an arm is worth in real images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Worth {
    /// Below the curve's first point: worse than the fewest real images measured, which are
    /// `at_most` images more than the arm had (negative, or 0 at that point itself).
    Below {
        /// The bound.
        at_most: f64,
    },
    /// Worth this many extra real images (negative: it cost that many).
    Images {
        /// The number.
        images: f64,
    },
    /// Beyond the curve's last point: better than the most real images measured, which are
    /// `at_least` images more than the arm had.
    Beyond {
        /// The bound.
        at_least: f64,
    },
}

impl Worth {
    /// A number that orders worths (below < any number of images < beyond).
    pub fn rank(&self) -> f64 {
        match *self {
            Worth::Below { .. } => f64::NEG_INFINITY,
            Worth::Images { images } => images,
            Worth::Beyond { .. } => f64::INFINITY,
        }
    }
}

impl std::fmt::Display for Worth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Worth::Below { at_most } => write!(f, "below the curve (< {at_most:+.0})"),
            Worth::Images { images } => write!(f, "{images:+.0}"),
            Worth::Beyond { at_least } => write!(f, "beyond the curve (> {at_least:+.0})"),
        }
    }
}

/// A worth with its bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WorthEstimate {
    /// From the means.
    pub value: Worth,
    /// Lower bound of the percentile interval.
    pub lower: Worth,
    /// Upper bound.
    pub upper: Worth,
    /// Bootstrap resamples drawn.
    pub resamples: usize,
}

impl WorthEstimate {
    /// Whether the whole interval lies above zero images.
    pub fn significantly_positive(&self) -> bool {
        self.lower.rank() > 0.0
    }
}

/// `points` (x, accuracy), sorted by x, with the accuracies made non-decreasing by
/// pool-adjacent violators (equal weights).
pub fn monotone_curve(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // blocks of (sum, count)
    let mut blocks: Vec<(f64, usize)> = Vec::new();
    for &(_, y) in &sorted {
        blocks.push((y, 1));
        while blocks.len() > 1 {
            let (s2, n2) = blocks[blocks.len() - 1];
            let (s1, n1) = blocks[blocks.len() - 2];
            if s1 / n1 as f64 <= s2 / n2 as f64 {
                break;
            }
            blocks.pop();
            let last = blocks.len() - 1;
            blocks[last] = (s1 + s2, n1 + n2);
        }
    }
    let values = blocks
        .iter()
        .flat_map(|&(s, n)| std::iter::repeat_n(s / n as f64, n));
    sorted
        .iter()
        .zip(values)
        .map(|(&(x, _), y)| (x, y))
        .collect()
}

/// The worth of accuracy `acc` reached with `x0` real images, on a non-decreasing curve
/// ([`monotone_curve`]): the images where the curve reaches `acc` (interpolated in log x), less
/// `x0`.
pub fn worth_on_curve(curve: &[(f64, f64)], acc: f64, x0: f64) -> Worth {
    let (Some(&(x_min, y_min)), Some(&(x_max, y_max))) = (curve.first(), curve.last()) else {
        return Worth::Below { at_most: 0.0 };
    };
    if acc < y_min {
        return Worth::Below {
            at_most: x_min - x0,
        };
    }
    if acc > y_max {
        return Worth::Beyond {
            at_least: x_max - x0,
        };
    }
    for w in curve.windows(2) {
        let ((xa, ya), (xb, yb)) = (w[0], w[1]);
        if acc <= yb {
            if yb <= ya || acc <= ya {
                return Worth::Images { images: xa - x0 };
            }
            if acc == yb {
                return Worth::Images { images: xb - x0 };
            }
            let t = ((acc - ya) / (yb - ya)).clamp(0.0, 1.0);
            let x = (xa.ln() + t * (xb.ln() - xa.ln())).exp();
            return Worth::Images { images: x - x0 };
        }
    }
    Worth::Images { images: x_max - x0 }
}

/// The worth of `arm` in real images on the learning curve `curve` (one [`Outcomes`] per data
/// size of the reference arm, e.g. the real images alone), with its bootstrap interval.
///
/// Resample `k` is taken to be the same subset for every arm at a size and nested across sizes
/// (as a study draws them), so everything is paired by resample index. Where the curve has a
/// point at the arm's own size, the arm is read as that point's (pooled) accuracy plus the
/// arm's paired difference from it over the resamples they share: a worth above zero then
/// means exactly that the arm beat the reference at its own size, and the noise of which
/// subsets were drawn cancels. (Without such a point the arm's own accuracy is read.)
///
/// Each bootstrap draw takes the test images with replacement (the same draw for every
/// point) and weighs resample `k` by one exponential weight shared by every point and the arm
/// (the Bayesian bootstrap: smooth with as few as three resamples), then refits the curve and
/// reads the arm off it again.
pub fn worth(curve: &[Outcomes], arm: &Outcomes, cfg: &BootstrapConfig) -> Result<WorthEstimate> {
    let tests = arm.by_resample.first().map_or(0, Vec::len);
    if tests == 0 || curve.is_empty() {
        return Err(MetricsError::Empty {
            what: "a learning curve and an arm with test images",
        });
    }
    arm.check("the arm's outcomes", tests)?;
    for c in curve {
        c.check("the learning curve's outcomes", tests)?;
    }
    let base = curve.iter().position(|c| {
        (c.real_images - arm.real_images).abs() <= 1e-9 * arm.real_images
            && c.by_resample.len() >= arm.by_resample.len()
    });
    let all: Vec<usize> = (0..tests).collect();
    let most = curve
        .iter()
        .chain([arm])
        .map(|o| o.by_resample.len())
        .max()
        .unwrap_or(0);
    let read = |images: &[usize], weights: &[f64]| -> Worth {
        let means: Vec<f64> = curve.iter().map(|c| c.mean(images, weights)).collect();
        let points: Vec<(f64, f64)> = curve.iter().map(|c| c.real_images).zip(means).collect();
        let fitted = monotone_curve(&points);
        let acc = match base {
            Some(b) => {
                let shared = arm.by_resample.len();
                let at = fitted.iter().find(|p| p.0 == curve[b].real_images);
                let reference = at.map_or(points[b].1, |p| p.1);
                reference + arm.mean(images, &weights[..shared])
                    - curve[b].mean(images, &weights[..shared])
            }
            None => arm.mean(images, weights),
        };
        worth_on_curve(&fitted, acc, arm.real_images)
    };
    let value = read(&all, &vec![1.0; most]);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
    let unit = rand_distr::Exp1;
    let mut draws = Vec::with_capacity(cfg.resamples);
    for _ in 0..cfg.resamples {
        let images: Vec<usize> = (0..tests).map(|_| rng.random_range(0..tests)).collect();
        let weights: Vec<f64> = (0..most).map(|_| rng.sample::<f64, _>(unit)).collect();
        draws.push(read(&images, &weights));
    }
    draws.sort_by(|a, b| a.rank().total_cmp(&b.rank()));
    let tail = (1.0 - cfg.confidence) / 2.0;
    let at = |q: f64| draws[((q * (draws.len() - 1) as f64).round() as usize).min(draws.len() - 1)];
    Ok(WorthEstimate {
        value,
        lower: at(tail),
        upper: at(1.0 - tail),
        resamples: cfg.resamples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Correctness vectors of `tests` images with accuracy `acc` (the first images correct).
    fn outcomes(x: f64, acc: &[f64], tests: usize) -> Outcomes {
        Outcomes {
            real_images: x,
            by_resample: acc
                .iter()
                .map(|a| {
                    let k = (a * tests as f64).round() as usize;
                    (0..tests).map(|i| f64::from(u8::from(i < k))).collect()
                })
                .collect(),
        }
    }

    #[test]
    fn pooling_makes_the_curve_non_decreasing() {
        let c = monotone_curve(&[(10.0, 0.6), (20.0, 0.7), (40.0, 0.65), (80.0, 0.8)]);
        let ys: Vec<f64> = c.iter().map(|p| p.1).collect();
        assert!(
            (ys[1] - 0.675).abs() < 1e-12 && (ys[2] - 0.675).abs() < 1e-12,
            "{ys:?}"
        );
        assert!(ys.windows(2).all(|w| w[0] <= w[1]));
    }

    /// On an exactly log-linear curve, a point of the curve is worth the images between it and
    /// its own x (the oracle's images read as their number); an arm equal to the reference
    /// point is worth 0; one below it, a negative number or "below the curve".
    #[test]
    fn points_on_a_log_linear_curve_read_as_their_distance() {
        let acc = |x: f64| 0.5 + 0.05 * x.ln();
        let curve: Vec<(f64, f64)> = [20.0, 50.0, 100.0, 200.0].map(|x| (x, acc(x))).to_vec();
        match worth_on_curve(&curve, acc(80.0), 50.0) {
            Worth::Images { images } => assert!((images - 30.0).abs() < 1e-9, "{images}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            worth_on_curve(&curve, acc(50.0), 50.0),
            Worth::Images { images: 0.0 }
        );
        match worth_on_curve(&curve, acc(30.0), 50.0) {
            Worth::Images { images } => assert!((images + 20.0).abs() < 1e-9, "{images}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            worth_on_curve(&curve, 0.1, 20.0),
            Worth::Below { at_most: 0.0 }
        );
        assert_eq!(
            worth_on_curve(&curve, 0.99, 20.0),
            Worth::Beyond { at_least: 180.0 }
        );
    }

    /// The bootstrap: an arm that is the curve's own next point is worth about the images
    /// between them, with an interval around it; a collapsed arm (every test image wrong) is
    /// below the curve, its interval too.
    #[test]
    fn the_interval_brackets_the_worth_and_a_collapsed_arm_is_below() {
        let tests = 200;
        let curve = vec![
            outcomes(25.0, &[0.60, 0.62, 0.61], tests),
            outcomes(50.0, &[0.70, 0.71, 0.69], tests),
            outcomes(100.0, &[0.78, 0.80, 0.79], tests),
        ];
        let cfg = BootstrapConfig {
            resamples: 500,
            ..BootstrapConfig::default()
        };
        let arm = outcomes(25.0, &[0.70, 0.71, 0.69], tests);
        let w = worth(&curve, &arm, &cfg).expect("worth");
        assert!((w.value.rank() - 25.0).abs() < 1e-9, "{w:?}");
        assert!(w.lower.rank() < 25.0 && w.upper.rank() > 25.0, "{w:?}");
        let collapsed = outcomes(25.0, &[0.0, 0.0, 0.0], tests);
        let w = worth(&curve, &collapsed, &cfg).expect("worth");
        assert!(w.value.rank() <= 0.0 && w.upper.rank() <= 0.0, "{w:?}");
        // paired by resample: subsets that differ a lot between them (60% to 80%) but an arm
        // always 4 points above its own subset is worth images, its interval above zero
        let noisy = vec![
            outcomes(25.0, &[0.60, 0.80, 0.70], tests),
            outcomes(50.0, &[0.68, 0.88, 0.78], tests),
        ];
        let better = outcomes(25.0, &[0.64, 0.84, 0.74], tests);
        let w = worth(&noisy, &better, &cfg).expect("worth");
        assert!(w.value.rank() > 0.0 && w.significantly_positive(), "{w:?}");
        // outcomes of another length are refused
        let short = outcomes(25.0, &[0.5], 10);
        assert!(worth(&curve, &short, &cfg).is_err());
    }
}
