//! Kernel Inception Distance (Bińkowski et al. 2018): the unbiased squared MMD with the cubic
//! polynomial kernel `k(x, y) = (x·y / d + 1)^3`, averaged over random subsets.
//!
//! Unlike FID it is unbiased, so it can be compared across sample sizes, which matters with a
//! few hundred CT slices per class.

use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::check_finite;
use crate::input::MatrixInput;
use crate::{MetricsError, Result};

/// Settings of [`kid`]. Defaults follow the paper and torch-fidelity: 100 subsets of 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KidConfig {
    /// Samples drawn (without replacement) from each set per subset; capped at the smaller set's
    /// size, and the size used is reported in [`Kid::subset_size`]. At least 2.
    pub subset_size: usize,
    /// Number of subsets averaged (at least 1).
    pub subsets: usize,
    /// Seed of the subset draws.
    pub seed: u64,
}

impl Default for KidConfig {
    fn default() -> Self {
        KidConfig {
            subset_size: 1000,
            subsets: 100,
            seed: 0,
        }
    }
}

/// KID estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Kid {
    /// Mean of the per-subset unbiased MMD² (can be slightly negative when the sets match).
    pub mean: f64,
    /// Standard deviation over subsets (divisor `subsets`, as torch-fidelity).
    pub sd: f64,
    /// Subset size actually used.
    pub subset_size: usize,
    /// Number of subsets.
    pub subsets: usize,
}

fn poly_kernel(x: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>) -> Array2<f64> {
    let d = x.ncols() as f64;
    x.dot(&y.t()).mapv(|v| (v / d + 1.0).powi(3))
}

/// Unbiased MMD² between two equal-size samples `x`, `y` (`[m, d]`, `m >= 2`): the within-set
/// kernel sums leave out the diagonal, the cross term keeps it (Bińkowski et al.'s estimator).
fn mmd2_unbiased(x: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>) -> f64 {
    let m = x.nrows() as f64;
    let off_diag_sum = |k: Array2<f64>| k.sum() - k.diag().sum();
    let kxx = off_diag_sum(poly_kernel(x, x));
    let kyy = off_diag_sum(poly_kernel(y, y));
    let kxy = poly_kernel(x, y).sum();
    (kxx + kyy) / (m * (m - 1.0)) - 2.0 * kxy / (m * m)
}

/// KID between two feature sets (`[n1, d]`, `[n2, d]`, rows = samples).
pub fn kid<A, B>(features1: &A, features2: &B, cfg: &KidConfig) -> Result<Kid>
where
    A: MatrixInput + ?Sized,
    B: MatrixInput + ?Sized,
{
    if cfg.subsets == 0 {
        return Err(MetricsError::config("subsets", "need at least one subset"));
    }
    if cfg.subset_size < 2 {
        return Err(MetricsError::config(
            "subset_size",
            format!(
                "the unbiased MMD needs at least 2 samples, got {}",
                cfg.subset_size
            ),
        ));
    }
    let x = features1.to_matrix("features 1")?;
    let y = features2.to_matrix("features 2")?;
    for (set, what) in [(&x, "features 1"), (&y, "features 2")] {
        if set.nrows() < 2 {
            return Err(MetricsError::TooFewSamples {
                what: "KID (per feature set)",
                needed: 2,
                got: set.nrows(),
            });
        }
        if set.ncols() == 0 {
            return Err(MetricsError::Empty { what });
        }
        check_finite(what, set.iter())?;
    }
    if x.ncols() != y.ncols() {
        return Err(MetricsError::DimensionMismatch {
            what: "feature dimension of set 1 vs set 2",
            left: x.ncols(),
            right: y.ncols(),
        });
    }
    let m = cfg.subset_size.min(x.nrows()).min(y.nrows());
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mmds: Vec<f64> = (0..cfg.subsets)
        .map(|_| {
            let xi = sample(&mut rng, x.nrows(), m).into_vec();
            let yi = sample(&mut rng, y.nrows(), m).into_vec();
            mmd2_unbiased(x.select(Axis(0), &xi).view(), y.select(Axis(0), &yi).view())
        })
        .collect();
    let k = mmds.len() as f64;
    let mean = mmds.iter().sum::<f64>() / k;
    let sd = (mmds.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / k).sqrt();
    Ok(Kid {
        mean,
        sd,
        subset_size: m,
        subsets: cfg.subsets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::gaussian;

    #[test]
    fn identical_distributions_give_near_zero() {
        let x = gaussian(400, 8, 0.0, 1.0, 11);
        let y = gaussian(400, 8, 0.0, 1.0, 12);
        let cfg = KidConfig {
            subset_size: 200,
            subsets: 20,
            seed: 0,
        };
        let same = kid(&x, &y, &cfg).expect("kid");
        let shifted = kid(&x, &gaussian(400, 8, 1.0, 1.0, 13), &cfg).expect("kid");
        assert!(same.mean.abs() < 0.02, "{same:?}");
        assert!(shifted.mean > 0.5, "{shifted:?}");
        assert!(shifted.mean > 10.0 * (same.mean.abs() + same.sd));
    }

    #[test]
    fn seeded_and_capped() {
        let x = gaussian(30, 4, 0.0, 1.0, 14);
        let y = gaussian(50, 4, 0.5, 1.0, 15);
        let cfg = KidConfig::default();
        let a = kid(&x, &y, &cfg).expect("kid");
        assert_eq!(a, kid(&x, &y, &cfg).expect("kid"));
        assert_eq!(a.subset_size, 30);
        let b = kid(&x, &y, &KidConfig { seed: 1, ..cfg }).expect("kid");
        assert_ne!(a.mean, b.mean);
    }

    #[test]
    fn full_subsets_are_permutation_invariant() {
        // Subsets as large as both sets are permutations: every subset gives the same MMD².
        let x = gaussian(20, 3, 0.0, 1.0, 16);
        let y = gaussian(20, 3, 0.2, 1.0, 17);
        let k = kid(
            &x,
            &y,
            &KidConfig {
                subset_size: 20,
                subsets: 5,
                seed: 3,
            },
        )
        .expect("kid");
        assert!(k.sd < 1e-12);
        assert!((k.mean - mmd2_unbiased(x.view(), y.view())).abs() < 1e-12);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let x = gaussian(10, 3, 0.0, 1.0, 18);
        let cfg = KidConfig::default();
        assert!(kid(&x, &gaussian(10, 2, 0.0, 1.0, 19), &cfg).is_err());
        assert!(kid(&x, &x, &KidConfig { subsets: 0, ..cfg }).is_err());
        assert!(kid(
            &x,
            &x,
            &KidConfig {
                subset_size: 1,
                ..cfg
            }
        )
        .is_err());
        assert!(matches!(
            kid(
                &x,
                &x.slice_axis(ndarray::Axis(0), ndarray::Slice::from(..1)),
                &cfg
            ),
            Err(MetricsError::TooFewSamples { .. })
        ));
    }
}
