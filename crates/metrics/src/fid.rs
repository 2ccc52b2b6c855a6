//! Fréchet Inception Distance (Heusel et al. 2017) between two sets of feature vectors.
//!
//! `FID = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`. The matrix square root is taken in
//! `f64` through symmetric eigendecompositions, never of the non-symmetric `S1 S2`:
//! `Tr((S1 S2)^(1/2)) = Tr((S1^(1/2) S2 S1^(1/2))^(1/2))`, and the inner matrix is symmetric
//! positive semi-definite, so its square-root trace is the sum of the square roots of its
//! eigenvalues. Tiny negative eigenvalues from rounding are clamped to 0. This avoids the
//! complex-valued results that `scipy.linalg.sqrtm` can give on singular covariances (fewer
//! samples than feature dimensions); for that case [`fid`] on raw features uses an equivalent
//! small cross-Gram formulation, exact and fast.

use nalgebra::{DMatrix, SymmetricEigen, SVD};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use crate::error::check_finite;
use crate::input::MatrixInput;
use crate::{MetricsError, Result};

/// Mean and covariance of a set of feature vectors (the statistics FID compares).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureStats {
    /// Number of samples the statistics come from.
    pub n: usize,
    /// Mean feature vector, `[d]`.
    pub mean: Array1<f64>,
    /// Sample covariance (divisor `n - 1`, as `numpy.cov` and pytorch-fid), `[d, d]`.
    pub cov: Array2<f64>,
}

impl FeatureStats {
    /// Statistics of `features` (`[n, d]`, one sample per row, `n >= 2`).
    pub fn from_features<M: MatrixInput + ?Sized>(features: &M) -> Result<Self> {
        let (centred, mean) = centre(features.to_matrix("features")?)?;
        let n = centred.nrows();
        let cov = centred.t().dot(&centred) / (n - 1) as f64;
        Ok(FeatureStats { n, mean, cov })
    }

    /// Feature dimension `d`.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// FID between these statistics and `other`'s.
    pub fn fid(&self, other: &FeatureStats) -> Result<f64> {
        fid_from_stats(
            self.mean.view(),
            self.cov.view(),
            other.mean.view(),
            other.cov.view(),
        )
    }
}

/// Centred samples and their mean, after checking there are at least two finite samples.
fn centre(x: Array2<f64>) -> Result<(Array2<f64>, Array1<f64>)> {
    let n = x.nrows();
    if n < 2 {
        return Err(MetricsError::TooFewSamples {
            what: "feature covariance",
            needed: 2,
            got: n,
        });
    }
    centre_rows(&x)
}

/// Centred rows and their mean, after checking the features are non-empty and finite (shared
/// with the streaming accumulator).
pub(crate) fn centre_rows(x: &Array2<f64>) -> Result<(Array2<f64>, Array1<f64>)> {
    if x.ncols() == 0 {
        return Err(MetricsError::Empty {
            what: "feature dimensions",
        });
    }
    check_finite("features", x.iter())?;
    let mean = x
        .mean_axis(Axis(0))
        .ok_or(MetricsError::Empty { what: "features" })?;
    Ok((x - &mean, mean))
}

/// FID between two feature sets (`[n1, d]` and `[n2, d]`, rows = samples, `n1, n2 >= 2`).
///
/// With at least as many samples as dimensions this is [`fid_from_stats`] on the sample
/// statistics (`O(d^3)` in the dimension `d`). With fewer samples than dimensions, the
/// usual case for ganaug's few hundred images and 2048-d features, the same value comes from
/// the `n1 x n2` cross-Gram matrix instead: with centred samples `A1`, `A2`,
/// `Tr((S1 S2)^(1/2)) = ||A1 A2^T||_* / sqrt((n1 - 1)(n2 - 1))` (the nuclear norm, as the
/// eigenvalues of `S1 S2` are the squared singular values of that matrix), in milliseconds.
pub fn fid<A, B>(features1: &A, features2: &B) -> Result<f64>
where
    A: MatrixInput + ?Sized,
    B: MatrixInput + ?Sized,
{
    let (a1, mu1) = centre(features1.to_matrix("features 1")?)?;
    let (a2, mu2) = centre(features2.to_matrix("features 2")?)?;
    if mu1.len() != mu2.len() {
        return Err(MetricsError::DimensionMismatch {
            what: "feature dimension of set 1 vs set 2",
            left: mu1.len(),
            right: mu2.len(),
        });
    }
    if a1.nrows().max(a2.nrows()) < mu1.len() {
        fid_gram(&a1, &mu1, &a2, &mu2)
    } else {
        let cov = |a: &Array2<f64>| a.t().dot(a) / (a.nrows() - 1) as f64;
        fid_from_stats(mu1.view(), cov(&a1).view(), mu2.view(), cov(&a2).view())
    }
}

/// FID from centred samples through the cross-Gram matrix (see [`fid`]).
fn fid_gram(
    a1: &Array2<f64>,
    mu1: &Array1<f64>,
    a2: &Array2<f64>,
    mu2: &Array1<f64>,
) -> Result<f64> {
    let (c1, c2) = ((a1.nrows() - 1) as f64, (a2.nrows() - 1) as f64);
    let mean_term: f64 = mu1.iter().zip(mu2).map(|(a, b)| (a - b).powi(2)).sum();
    let tr1 = a1.iter().map(|v| v * v).sum::<f64>() / c1;
    let tr2 = a2.iter().map(|v| v * v).sum::<f64>() / c2;
    let cross = a1.dot(&a2.t());
    let m = DMatrix::from_fn(cross.nrows(), cross.ncols(), |i, j| cross[[i, j]]);
    let iters = 1000 * m.nrows().max(m.ncols()).max(10);
    let svd = SVD::try_new_unordered(m, false, false, f64::EPSILON, iters).ok_or(
        MetricsError::NoConvergence {
            what: "cross-Gram matrix",
        },
    )?;
    let nuclear: f64 = svd.singular_values.iter().sum();
    Ok((mean_term + tr1 + tr2 - 2.0 * nuclear / (c1 * c2).sqrt()).max(0.0))
}

fn check_stats(
    mu: ArrayView1<'_, f64>,
    sigma: ArrayView2<'_, f64>,
    which: &'static str,
) -> Result<()> {
    if mu.is_empty() {
        return Err(MetricsError::Empty { what: which });
    }
    if sigma.nrows() != mu.len() || sigma.ncols() != mu.len() {
        return Err(MetricsError::DimensionMismatch {
            what: "mean length vs covariance rows/columns",
            left: mu.len(),
            right: if sigma.nrows() != mu.len() {
                sigma.nrows()
            } else {
                sigma.ncols()
            },
        });
    }
    check_finite(which, mu.iter())?;
    check_finite(which, sigma.iter())
}

fn to_symmetric(a: ArrayView2<'_, f64>) -> DMatrix<f64> {
    // Average with the transpose: covariances computed in floating point are symmetric only up to
    // rounding, and the eigensolver reads just one triangle.
    DMatrix::from_fn(a.nrows(), a.ncols(), |i, j| (a[[i, j]] + a[[j, i]]) / 2.0)
}

fn psd_sqrt(s: DMatrix<f64>) -> Result<DMatrix<f64>> {
    let d = s.nrows();
    let eig = SymmetricEigen::try_new(s, f64::EPSILON, 1000 * d.max(10)).ok_or(
        MetricsError::NoConvergence {
            what: "covariance 1",
        },
    )?;
    let roots = eig.eigenvalues.map(|l| l.max(0.0).sqrt());
    let v = &eig.eigenvectors;
    Ok(v * DMatrix::from_diagonal(&roots) * v.transpose())
}

/// FID from statistics: means `mu1`, `mu2` (`[d]`) and covariances `sigma1`, `sigma2`
/// (`[d, d]`, symmetric positive semi-definite). Clamped at 0 (FID cannot be negative; rounding
/// can make identical statistics give `-1e-13`).
pub fn fid_from_stats(
    mu1: ArrayView1<'_, f64>,
    sigma1: ArrayView2<'_, f64>,
    mu2: ArrayView1<'_, f64>,
    sigma2: ArrayView2<'_, f64>,
) -> Result<f64> {
    check_stats(mu1, sigma1, "statistics 1")?;
    check_stats(mu2, sigma2, "statistics 2")?;
    if mu1.len() != mu2.len() {
        return Err(MetricsError::DimensionMismatch {
            what: "feature dimension of statistics 1 vs 2",
            left: mu1.len(),
            right: mu2.len(),
        });
    }
    let mean_term: f64 = mu1.iter().zip(mu2).map(|(a, b)| (a - b).powi(2)).sum();
    let s1 = to_symmetric(sigma1);
    let s2 = to_symmetric(sigma2);
    let (tr1, tr2) = (s1.trace(), s2.trace());
    let root1 = psd_sqrt(s1)?;
    let inner = &root1 * s2 * &root1;
    let inner = (&inner + inner.transpose()) / 2.0;
    // Eigenvalues only: the cheap half of the decomposition. It loops until convergence, which
    // the QR iteration reaches for any finite symmetric matrix.
    let tr_covmean: f64 = inner
        .symmetric_eigenvalues()
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .sum();
    Ok((mean_term + tr1 + tr2 - 2.0 * tr_covmean).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::gaussian;
    use ndarray::{array, Array1};

    #[test]
    fn closed_form_for_diagonal_covariances() {
        let (a, b) = (array![1.0, 4.0, 0.25, 9.0], array![4.0, 1.0, 0.25, 2.0]);
        let (mu1, mu2) = (array![0.0, 1.0, -1.0, 2.0], array![0.5, 1.0, 1.0, 0.0]);
        let expected: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y): (&f64, &f64)| (x.sqrt() - y.sqrt()).powi(2))
            .sum::<f64>()
            + (&mu1 - &mu2).mapv(|v| v * v).sum();
        let got = fid_from_stats(
            mu1.view(),
            Array2::from_diag(&a).view(),
            mu2.view(),
            Array2::from_diag(&b).view(),
        )
        .expect("valid stats");
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    }

    #[test]
    fn identical_sets_have_zero_fid_and_fid_is_symmetric() {
        let x = gaussian(200, 6, 0.0, 1.0, 1);
        assert!(fid(&x, &x).expect("fid") < 1e-9);
        let y = gaussian(150, 6, 0.3, 1.5, 2);
        let (xy, yx) = (fid(&x, &y).expect("fid"), fid(&y, &x).expect("fid"));
        assert!((xy - yx).abs() < 1e-10 * xy.max(1.0), "{xy} vs {yx}");
    }

    #[test]
    fn sampled_gaussians_match_the_closed_form() {
        // N(0, I) vs N(0.5, I) in 4 dimensions: FID = 4 * 0.5^2 = 1 (sampling noise ~0.05).
        let x = gaussian(20_000, 4, 0.0, 1.0, 3);
        let y = gaussian(20_000, 4, 0.5, 1.0, 4);
        let f = fid(&x, &y).expect("fid");
        assert!((f - 1.0).abs() < 0.08, "{f}");
    }

    #[test]
    fn singular_covariances_are_fine() {
        // Fewer samples than dimensions: rank-deficient covariances, still a finite FID >= 0.
        let x = gaussian(5, 12, 0.0, 1.0, 5);
        let y = gaussian(5, 12, 1.0, 1.0, 6);
        let f = fid(&x, &y).expect("fid");
        assert!(f.is_finite() && f > 0.0);
    }

    #[test]
    fn gram_and_covariance_paths_agree() {
        // 30 and 40 samples in 64 dimensions: fid() takes the Gram path; the statistics path
        // must give the same value.
        let x = gaussian(30, 64, 0.0, 1.0, 9);
        let y = gaussian(40, 64, 0.2, 1.3, 10);
        let via_gram = fid(&x, &y).expect("fid");
        let (s1, s2) = (
            FeatureStats::from_features(&x).expect("stats"),
            FeatureStats::from_features(&y).expect("stats"),
        );
        let via_stats = s1.fid(&s2).expect("fid");
        // The covariances are singular: their zero eigenvalues come out as rounding noise whose
        // square roots (~1e-8 each) the statistics path adds up; the Gram path has no such
        // terms. Hence the looser tolerance.
        assert!(
            (via_gram - via_stats).abs() < 1e-7 * via_stats,
            "{via_gram} vs {via_stats}"
        );
        assert!(fid(&x, &x).expect("fid") < 1e-9);
        assert!((fid(&y, &x).expect("fid") - via_gram).abs() < 1e-9 * via_gram);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let x = gaussian(10, 3, 0.0, 1.0, 7);
        let y = gaussian(10, 4, 0.0, 1.0, 8);
        assert!(matches!(
            fid(&x, &y),
            Err(MetricsError::DimensionMismatch {
                left: 3,
                right: 4,
                ..
            })
        ));
        assert!(matches!(
            fid(
                &x,
                &x.slice_axis(ndarray::Axis(0), ndarray::Slice::from(..1))
            ),
            Err(MetricsError::TooFewSamples { got: 1, .. })
        ));
        let mut bad = x.clone();
        bad[[2, 1]] = f64::NAN;
        assert!(matches!(fid(&x, &bad), Err(MetricsError::NonFinite { .. })));
        let mu = Array1::zeros(3);
        assert!(matches!(
            fid_from_stats(
                mu.view(),
                Array2::eye(2).view(),
                mu.view(),
                Array2::eye(3).view()
            ),
            Err(MetricsError::DimensionMismatch { .. })
        ));
    }
}
