//! Memorisation check: how close is each synthetic image to its nearest training image?
//!
//! A GAN trained on ~200 CT slices per class can copy them; near-zero nearest-neighbour
//! distances (compared with the typical train-to-test distance) flag copies. Works on flattened
//! pixels or on network features.

use ndarray::{Array1, Array2, Axis, Slice};
use serde::Serialize;

use crate::error::check_finite;
use crate::input::MatrixInput;
use crate::{MetricsError, Result};

/// Nearest training item of every synthetic sample, by Euclidean distance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NearestNeighbours {
    /// Distance from each synthetic sample to its nearest training item.
    pub distances: Vec<f64>,
    /// Index (row of the training matrix) of that nearest item; ties go to the lowest index.
    pub indices: Vec<usize>,
    /// Mean of `distances`.
    pub mean: f64,
    /// Smallest distance.
    pub min: f64,
    /// Median distance (mean of the two middle values for an even count).
    pub median: f64,
}

impl NearestNeighbours {
    /// Synthetic samples whose nearest training item is closer than `threshold`, as
    /// `(synthetic index, training index, distance)`, closest first.
    pub fn closer_than(&self, threshold: f64) -> Vec<(usize, usize, f64)> {
        let mut hits: Vec<_> = self
            .distances
            .iter()
            .enumerate()
            .filter(|(_, &d)| d < threshold)
            .map(|(i, &d)| (i, self.indices[i], d))
            .collect();
        hits.sort_by(|a, b| a.2.total_cmp(&b.2));
        hits
    }
}

/// Rows of synthetic samples compared at once: bounds the `[block, n_train]` distance matrix.
const BLOCK: usize = 256;

/// For each row of `synthetic` (`[n_s, d]`), the nearest row of `training` (`[n_t, d]`).
pub fn nearest_neighbours<A, B>(synthetic: &A, training: &B) -> Result<NearestNeighbours>
where
    A: MatrixInput + ?Sized,
    B: MatrixInput + ?Sized,
{
    let syn = synthetic.to_matrix("synthetic samples")?;
    let train = training.to_matrix("training samples")?;
    if syn.nrows() == 0 {
        return Err(MetricsError::Empty {
            what: "synthetic samples",
        });
    }
    if train.nrows() == 0 {
        return Err(MetricsError::Empty {
            what: "training samples",
        });
    }
    if syn.ncols() != train.ncols() {
        return Err(MetricsError::DimensionMismatch {
            what: "dimension of synthetic vs training samples",
            left: syn.ncols(),
            right: train.ncols(),
        });
    }
    check_finite("synthetic samples", syn.iter())?;
    check_finite("training samples", train.iter())?;

    let sq_norm = |m: &Array2<f64>| -> Array1<f64> { m.map_axis(Axis(1), |r| r.dot(&r)) };
    let train_sq = sq_norm(&train);
    let mut indices = Vec::with_capacity(syn.nrows());
    let mut distances = Vec::with_capacity(syn.nrows());
    for start in (0..syn.nrows()).step_by(BLOCK) {
        let block = syn.slice_axis(
            Axis(0),
            Slice::from(start..(start + BLOCK).min(syn.nrows())),
        );
        // |a - b|^2 = |a|^2 + |b|^2 - 2 a·b finds the candidate with one matrix product...
        let cross = block.dot(&train.t());
        for (r, row) in block.rows().into_iter().enumerate() {
            let row_sq = row.dot(&row);
            let mut best = (0, f64::INFINITY);
            for (j, (&c, &t)) in cross.row(r).iter().zip(&train_sq).enumerate() {
                let d2 = row_sq + t - 2.0 * c;
                if d2 < best.1 {
                    best = (j, d2);
                }
            }
            // ...but cancels badly for near-copies, exactly the case that matters: recompute
            // the winner's distance directly.
            let exact = (&row - &train.row(best.0)).mapv(|v| v * v).sum().sqrt();
            indices.push(best.0);
            distances.push(exact);
        }
    }
    let mut sorted = distances.clone();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Ok(NearestNeighbours {
        mean: distances.iter().sum::<f64>() / n as f64,
        min: sorted[0],
        median,
        distances,
        indices,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::gaussian;
    use ndarray::array;

    #[test]
    fn finds_copies_and_known_distances() {
        let train = array![[0.0, 0.0], [3.0, 4.0], [10.0, 10.0]];
        let syn = array![[3.0, 4.0], [0.0, 1.0], [10.0, 13.0], [1.0, 1.0]];
        let nn = nearest_neighbours(&syn, &train).expect("nn");
        assert_eq!(nn.indices, vec![1, 0, 2, 0]);
        assert_eq!(nn.distances[..3], [0.0, 1.0, 3.0]);
        assert!((nn.distances[3] - 2f64.sqrt()).abs() < 1e-15);
        assert_eq!(nn.min, 0.0);
        assert!((nn.median - (1.0 + 2f64.sqrt()) / 2.0).abs() < 1e-15);
        assert_eq!(nn.closer_than(0.5), vec![(0, 1, 0.0)]);
    }

    #[test]
    fn exact_copies_of_large_vectors_have_zero_distance() {
        // Big norms: the expanded formula alone would leave rounding noise here.
        let train = gaussian(300, 4096, 100.0, 50.0, 21);
        let syn = train.select(Axis(0), &[5, 299, 256]);
        let nn = nearest_neighbours(&syn, &train).expect("nn");
        assert_eq!(nn.indices, vec![5, 299, 256]);
        assert_eq!(nn.distances, vec![0.0; 3]);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let a = array![[0.0, 1.0]];
        assert!(nearest_neighbours(&a, &array![[0.0, 1.0, 2.0]]).is_err());
        assert!(nearest_neighbours(&a, &Array2::<f64>::zeros((0, 2))).is_err());
        assert!(nearest_neighbours(&array![[f64::NAN, 0.0]], &a).is_err());
    }
}
