//! Input conversion and validation shared by every metric: matrices, labels, scores.

use ndarray::{Array2, ArrayBase, Data, Ix2};

use crate::error::{check_finite, check_len};
use crate::{MetricsError, Result};

/// Anything that reads as a dense `f64` matrix with one sample per row: an ndarray
/// `Array2`/`ArrayView2` of `f32` or `f64`, or a slice/`Vec` of rows (`Vec<f64>`, `[f32; K]`,
/// `&[f64]`, ...).
///
/// Metrics copy the input into `f64` once, so `f32` network outputs are accepted as they come.
pub trait MatrixInput {
    /// The matrix as `f64`, or [`MetricsError::Columns`] if the rows are ragged.
    /// `what` names the argument in errors.
    fn to_matrix(&self, what: &'static str) -> Result<Array2<f64>>;
}

impl<S> MatrixInput for ArrayBase<S, Ix2>
where
    S: Data,
    S::Elem: Copy + Into<f64>,
{
    fn to_matrix(&self, _what: &'static str) -> Result<Array2<f64>> {
        Ok(self.mapv(Into::into))
    }
}

fn from_rows<T: Copy + Into<f64>>(what: &'static str, rows: &[&[T]]) -> Result<Array2<f64>> {
    let cols = rows.first().map_or(0, |r| r.len());
    let mut flat = Vec::with_capacity(rows.len() * cols);
    for (row, r) in rows.iter().enumerate() {
        if r.len() != cols {
            return Err(MetricsError::Columns {
                what,
                row,
                expected: cols,
                got: r.len(),
            });
        }
        flat.extend(r.iter().map(|&v| v.into()));
    }
    Array2::from_shape_vec((rows.len(), cols), flat).map_err(|e| {
        // Unreachable: the length is rows * cols by construction; kept as an error, not a panic.
        MetricsError::config(what, e.to_string())
    })
}

impl<T: Copy + Into<f64>> MatrixInput for [Vec<T>] {
    fn to_matrix(&self, what: &'static str) -> Result<Array2<f64>> {
        from_rows(what, &self.iter().map(Vec::as_slice).collect::<Vec<_>>())
    }
}

impl<T: Copy + Into<f64>> MatrixInput for Vec<Vec<T>> {
    fn to_matrix(&self, what: &'static str) -> Result<Array2<f64>> {
        self.as_slice().to_matrix(what)
    }
}

impl<T: Copy + Into<f64>> MatrixInput for [&[T]] {
    fn to_matrix(&self, what: &'static str) -> Result<Array2<f64>> {
        from_rows(what, self)
    }
}

impl<T: Copy + Into<f64>> MatrixInput for Vec<&[T]> {
    fn to_matrix(&self, what: &'static str) -> Result<Array2<f64>> {
        from_rows(what, self)
    }
}

impl<T: Copy + Into<f64>, const K: usize> MatrixInput for [[T; K]] {
    fn to_matrix(&self, what: &'static str) -> Result<Array2<f64>> {
        from_rows(what, &self.iter().map(|r| &r[..]).collect::<Vec<_>>())
    }
}

impl<T: Copy + Into<f64>, const K: usize> MatrixInput for Vec<[T; K]> {
    fn to_matrix(&self, what: &'static str) -> Result<Array2<f64>> {
        self.as_slice().to_matrix(what)
    }
}

/// Converts `i64` labels (as they come out of a libtorch tensor) to `usize`, rejecting negatives
/// and labels `>= num_classes`.
pub fn labels_from_i64(labels: &[i64], num_classes: usize) -> Result<Vec<usize>> {
    labels
        .iter()
        .enumerate()
        .map(|(index, &label)| {
            usize::try_from(label)
                .ok()
                .filter(|&l| l < num_classes)
                .ok_or(MetricsError::LabelOutOfRange {
                    index,
                    label,
                    num_classes,
                })
        })
        .collect()
}

/// Index of the largest value of each row; ties go to the lowest index (as `numpy.argmax`).
pub fn argmax_rows(probs: &Array2<f64>) -> Vec<usize> {
    probs
        .rows()
        .into_iter()
        .map(|row| {
            let mut best = 0;
            for (k, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = k;
                }
            }
            best
        })
        .collect()
}

/// An `[N, 2]` probability matrix from binary scores `p = P(positive)`: column `positive` holds
/// `p`, the other `1 - p`. (Its argmax sends a 0.5 tie to class 0, whichever class is positive.)
pub fn probs_from_scores<T: Copy + Into<f64>>(
    scores: &[T],
    positive: usize,
) -> Result<Array2<f64>> {
    if positive > 1 {
        return Err(MetricsError::config(
            "positive",
            format!("binary positive class must be 0 or 1, got {positive}"),
        ));
    }
    let mut probs = Array2::zeros((scores.len(), 2));
    for (mut row, &s) in probs.rows_mut().into_iter().zip(scores) {
        let s: f64 = s.into();
        row[positive] = s;
        row[1 - positive] = 1.0 - s;
    }
    Ok(probs)
}

pub(crate) fn check_labels(labels: &[usize], num_classes: usize) -> Result<()> {
    match labels.iter().enumerate().find(|(_, &l)| l >= num_classes) {
        Some((index, &label)) => Err(MetricsError::LabelOutOfRange {
            index,
            label: i64::try_from(label).unwrap_or(i64::MAX),
            num_classes,
        }),
        None => Ok(()),
    }
}

/// Validated labels + probability matrix: same length, non-empty, finite, at least two columns,
/// labels in range.
pub(crate) fn labels_and_probs<P: MatrixInput + ?Sized>(
    labels: &[usize],
    probs: &P,
) -> Result<Array2<f64>> {
    let probs = probs.to_matrix("probabilities")?;
    check_probs(labels, &probs)?;
    Ok(probs)
}

pub(crate) fn check_probs(labels: &[usize], probs: &Array2<f64>) -> Result<()> {
    check_len("labels vs probability rows", labels.len(), probs.nrows())?;
    if labels.is_empty() {
        return Err(MetricsError::Empty { what: "labels" });
    }
    if probs.ncols() < 2 {
        return Err(MetricsError::Columns {
            what: "probabilities (at least two classes)",
            row: 0,
            expected: 2,
            got: probs.ncols(),
        });
    }
    check_finite("probabilities", probs.iter())?;
    check_labels(labels, probs.ncols())
}

/// Validated binary labels (each 0 or 1) + finite scores, as `f64`.
pub(crate) fn binary_scores<T: Copy + Into<f64>>(
    labels: &[usize],
    scores: &[T],
    positive: usize,
) -> Result<Vec<f64>> {
    check_len("labels vs scores", labels.len(), scores.len())?;
    if labels.is_empty() {
        return Err(MetricsError::Empty { what: "labels" });
    }
    if positive > 1 {
        return Err(MetricsError::config(
            "positive",
            format!("binary positive class must be 0 or 1, got {positive}"),
        ));
    }
    check_labels(labels, 2)?;
    let scores: Vec<f64> = scores.iter().map(|&s| s.into()).collect();
    check_finite("scores", scores.iter())?;
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn row_inputs_agree_with_arrays() {
        let a = array![[0.25f32, 0.75], [1.0, 0.0]];
        let rows = vec![vec![0.25f64, 0.75], vec![1.0, 0.0]];
        let fixed = [[0.25f64, 0.75], [1.0, 0.0]];
        let expected = a.to_matrix("a").expect("array");
        assert_eq!(rows.to_matrix("r").expect("vec rows"), expected);
        assert_eq!(fixed[..].to_matrix("f").expect("array rows"), expected);
        assert_eq!(a.view().to_matrix("v").expect("view"), expected);
    }

    #[test]
    fn ragged_rows_are_rejected() {
        let rows = vec![vec![0.5, 0.5], vec![1.0]];
        assert!(matches!(
            rows.to_matrix("probabilities"),
            Err(MetricsError::Columns { row: 1, got: 1, .. })
        ));
    }

    #[test]
    fn i64_labels_are_checked() {
        assert_eq!(
            labels_from_i64(&[0, 1, 1], 2).expect("valid"),
            vec![0, 1, 1]
        );
        assert!(matches!(
            labels_from_i64(&[0, -1], 2),
            Err(MetricsError::LabelOutOfRange {
                index: 1,
                label: -1,
                ..
            })
        ));
        assert!(labels_from_i64(&[2], 2).is_err());
    }

    #[test]
    fn argmax_ties_go_to_lowest_index() {
        let p = array![[0.5, 0.5], [0.2, 0.8], [0.3, 0.3]];
        assert_eq!(argmax_rows(&p), vec![0, 1, 0]);
    }

    #[test]
    fn probability_checks() {
        let p = array![[0.5, 0.5], [f64::NAN, 0.1]];
        assert!(matches!(
            check_probs(&[0, 1], &p),
            Err(MetricsError::NonFinite { index: 2, .. })
        ));
        let p = array![[0.5, 0.5]];
        assert!(matches!(
            check_probs(&[0, 1], &p),
            Err(MetricsError::LengthMismatch { .. })
        ));
        assert!(matches!(
            check_probs(&[2], &p),
            Err(MetricsError::LabelOutOfRange { label: 2, .. })
        ));
        let empty = Array2::<f64>::zeros((0, 2));
        assert!(matches!(
            check_probs(&[], &empty),
            Err(MetricsError::Empty { .. })
        ));
    }
}
