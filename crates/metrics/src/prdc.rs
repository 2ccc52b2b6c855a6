//! Fidelity and diversity of a synthetic set against real samples, in a feature space:
//! precision and recall (Kynkäänniemi et al. 2019, k-nearest-neighbour manifolds), density and
//! coverage (Naeem et al. 2020), and the mean pairwise distance. The definitions are those of
//! the `prdc` package (`compute_prdc`), against which `tests/reference.rs` checks them.
//!
//! A collapsed generator (one image, or a few) has a tiny pairwise distance and almost no
//! recall or coverage; noise has neither precision nor density.

use ndarray::{Array2, Axis};
use serde::{Deserialize, Serialize};

use crate::error::check_finite;
use crate::input::MatrixInput;
use crate::{MetricsError, Result};

/// Precision, recall, density and coverage of `fake` against `real`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prdc {
    /// Fraction of fake samples inside some real sample's k-NN ball.
    pub precision: f64,
    /// Fraction of real samples inside some fake sample's k-NN ball.
    pub recall: f64,
    /// Mean number of real k-NN balls holding a fake sample, divided by k (1 ≈ matches).
    pub density: f64,
    /// Fraction of real samples whose k-NN ball holds at least one fake sample.
    pub coverage: f64,
    /// The k of the neighbourhoods.
    pub k: usize,
}

/// Euclidean distances `[a.rows, b.rows]`.
fn distances(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
    let na: Vec<f64> = a.rows().into_iter().map(|r| r.dot(&r)).collect();
    let nb: Vec<f64> = b.rows().into_iter().map(|r| r.dot(&r)).collect();
    let mut d = a.dot(&b.t());
    for ((i, j), v) in d.indexed_iter_mut() {
        *v = (na[i] + nb[j] - 2.0 * *v).max(0.0).sqrt();
    }
    d
}

/// Distance of each row to its k-th nearest other row (the row itself excluded).
fn kth_radii(x: &Array2<f64>, k: usize) -> Vec<f64> {
    let d = distances(x, x);
    d.rows()
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let mut v: Vec<f64> = r
                .iter()
                .enumerate()
                .map(|(j, &x)| if i == j { 0.0 } else { x })
                .collect();
            v.sort_by(f64::total_cmp);
            v[k] // v[0] is the row itself
        })
        .collect()
}

fn matrix<A: MatrixInput + ?Sized>(
    x: &A,
    what: &'static str,
    min_rows: usize,
) -> Result<Array2<f64>> {
    let m = x.to_matrix(what)?;
    if m.nrows() < min_rows {
        return Err(MetricsError::TooFewSamples {
            what,
            needed: min_rows,
            got: m.nrows(),
        });
    }
    check_finite(what, m.iter())?;
    Ok(m)
}

/// Precision, recall, density and coverage with `k`-nearest-neighbour balls (the papers: k =
/// 5). Both sets need more than `k` rows and the same width.
pub fn prdc<A, B>(real: &A, fake: &B, k: usize) -> Result<Prdc>
where
    A: MatrixInput + ?Sized,
    B: MatrixInput + ?Sized,
{
    let real = matrix(real, "real features", k + 1)?;
    let fake = matrix(fake, "synthetic features", k + 1)?;
    if real.ncols() != fake.ncols() {
        return Err(MetricsError::DimensionMismatch {
            what: "feature widths (real vs synthetic)",
            left: real.ncols(),
            right: fake.ncols(),
        });
    }
    let (r_radii, f_radii) = (kth_radii(&real, k), kth_radii(&fake, k));
    let d = distances(&real, &fake); // [real, fake]
    let (nr, nf) = (real.nrows(), fake.nrows());
    let inside_real = |i: usize, j: usize| d[[i, j]] < r_radii[i];
    let precision = (0..nf)
        .filter(|&j| (0..nr).any(|i| inside_real(i, j)))
        .count() as f64
        / nf as f64;
    let recall = (0..nr)
        .filter(|&i| (0..nf).any(|j| d[[i, j]] < f_radii[j]))
        .count() as f64
        / nr as f64;
    let density = (0..nf)
        .map(|j| (0..nr).filter(|&i| inside_real(i, j)).count() as f64)
        .sum::<f64>()
        / (k as f64 * nf as f64);
    let coverage = d
        .axis_iter(Axis(0))
        .enumerate()
        .filter(|(i, row)| row.iter().copied().fold(f64::INFINITY, f64::min) < r_radii[*i])
        .count() as f64
        / nr as f64;
    Ok(Prdc {
        precision,
        recall,
        density,
        coverage,
        k,
    })
}

/// Mean Euclidean distance over all pairs of distinct rows (a diversity measure: near 0 for a
/// collapsed generator). Needs at least two rows.
pub fn mean_pairwise_distance<A: MatrixInput + ?Sized>(x: &A) -> Result<f64> {
    let x = matrix(x, "features", 2)?;
    let d = distances(&x, &x);
    let n = x.nrows();
    Ok(d.sum() / (n * (n - 1)) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collapsed_set_has_no_diversity_recall_or_coverage() {
        let real = Array2::from_shape_fn((40, 3), |(i, j)| ((i * 7 + j * 3) % 11) as f64);
        let collapsed = Array2::from_shape_fn((20, 3), |(i, j)| 5.0 + j as f64 + 1e-6 * i as f64);
        assert!(mean_pairwise_distance(&collapsed).expect("d") < 1e-4);
        let m = prdc(&real, &collapsed, 5).expect("prdc");
        assert!(m.recall <= 0.1 && m.coverage <= 0.2, "{m:?}");
        let same = prdc(&real, &real.clone(), 5).expect("prdc");
        assert_eq!(
            (same.precision, same.recall, same.coverage),
            (1.0, 1.0, 1.0)
        );
        assert!(matches!(
            prdc(&real, &collapsed.select(Axis(0), &[0, 1, 2, 3, 4]), 5),
            Err(MetricsError::TooFewSamples { .. })
        ));
    }
}
