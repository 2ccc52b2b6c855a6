//! The bridge to networks: a [`FeatureExtractor`] turns a batch (for ganaug, a `tch::Tensor` of
//! images) into feature rows, and [`extract_features`] / [`extract_stats`] run one over batches.
//!
//! This crate does not depend on libtorch; the caller implements the trait for its model.

use std::borrow::Borrow;

use ndarray::{concatenate, Array2, Axis};

use crate::fid::FeatureStats;
use crate::stream::FeatureStatsAccumulator;
use crate::{MetricsError, Result};

/// Maps a batch of inputs `I` to features `[B, d]` (one row per input).
///
/// Closures `FnMut(&I) -> Result<Array2<f32>, E>` implement it, so a network can be wrapped in
/// place; a model type can also implement it directly:
///
/// ```
/// use ganaug_metrics::FeatureExtractor;
/// use ndarray::Array2;
///
/// /// Mean and max of each image (a stand-in for a CNN's pooled features).
/// struct MeanMax;
///
/// impl FeatureExtractor<Vec<Vec<f32>>> for MeanMax {
///     type Error = std::convert::Infallible;
///     fn features(&mut self, batch: &Vec<Vec<f32>>) -> Result<Array2<f32>, Self::Error> {
///         Ok(Array2::from_shape_fn((batch.len(), 2), |(i, j)| {
///             let px = &batch[i];
///             if j == 0 {
///                 px.iter().sum::<f32>() / px.len() as f32
///             } else {
///                 px.iter().copied().fold(f32::MIN, f32::max)
///             }
///         }))
///     }
/// }
/// ```
pub trait FeatureExtractor<I: ?Sized> {
    /// The extractor's error (e.g. `tch::TchError`).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Features of one batch, `[B, d]`.
    fn features(&mut self, batch: &I) -> std::result::Result<Array2<f32>, Self::Error>;
}

impl<I, F, E> FeatureExtractor<I> for F
where
    I: ?Sized,
    F: FnMut(&I) -> std::result::Result<Array2<f32>, E>,
    E: std::error::Error + Send + Sync + 'static,
{
    type Error = E;

    fn features(&mut self, batch: &I) -> std::result::Result<Array2<f32>, E> {
        self(batch)
    }
}

/// Runs `extractor` over each batch and hands its features to `sink`,
/// checking that every batch has the same feature dimension.
fn for_each_batch<I, X, B>(
    extractor: &mut X,
    batches: B,
    mut sink: impl FnMut(Array2<f32>) -> Result<()>,
) -> Result<usize>
where
    I: ?Sized,
    X: FeatureExtractor<I> + ?Sized,
    B: IntoIterator,
    B::Item: Borrow<I>,
{
    let mut dim = None;
    let mut count = 0;
    for (batch, input) in batches.into_iter().enumerate() {
        let f = extractor
            .features(input.borrow())
            .map_err(|e| MetricsError::Extractor {
                batch,
                source: Box::new(e),
            })?;
        match dim {
            Some(d) if d != f.ncols() => {
                return Err(MetricsError::DimensionMismatch {
                    what: "feature dimension of batch 0 vs a later batch",
                    left: d,
                    right: f.ncols(),
                })
            }
            _ => dim = Some(f.ncols()),
        }
        sink(f)?;
        count += 1;
    }
    Ok(count)
}

/// Features of every batch, stacked into one `[N, d]` matrix (for KID and the memorisation
/// check, which need all samples).
pub fn extract_features<I, X, B>(extractor: &mut X, batches: B) -> Result<Array2<f32>>
where
    I: ?Sized,
    X: FeatureExtractor<I> + ?Sized,
    B: IntoIterator,
    B::Item: Borrow<I>,
{
    let mut parts = Vec::new();
    for_each_batch(extractor, batches, |f| {
        parts.push(f);
        Ok(())
    })?;
    if parts.is_empty() {
        return Err(MetricsError::Empty { what: "batches" });
    }
    let views: Vec<_> = parts.iter().map(Array2::view).collect();
    concatenate(Axis(0), &views).map_err(|e| MetricsError::config("batches", e.to_string()))
}

/// Mean and covariance of the features of every batch, accumulated in `f64` without keeping the
/// features (for FID over many images).
pub fn extract_stats<I, X, B>(extractor: &mut X, batches: B) -> Result<FeatureStats>
where
    I: ?Sized,
    X: FeatureExtractor<I> + ?Sized,
    B: IntoIterator,
    B::Item: Borrow<I>,
{
    let mut acc = FeatureStatsAccumulator::new();
    for_each_batch(extractor, batches, |f| acc.update(&f))?;
    acc.compute()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[derive(Debug)]
    struct Boom;
    impl std::fmt::Display for Boom {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("boom")
        }
    }
    impl std::error::Error for Boom {}

    /// Two features per number: the value and its square.
    fn square(batch: &[f32]) -> std::result::Result<Array2<f32>, Boom> {
        if batch.iter().any(|v| v.is_nan()) {
            return Err(Boom);
        }
        Ok(Array2::from_shape_fn((batch.len(), 2), |(i, j)| {
            batch[i].powi(j as i32 + 1)
        }))
    }

    #[test]
    fn stacks_batches_in_order() {
        let batches: Vec<Vec<f32>> = vec![vec![1.0, 2.0], vec![3.0]];
        let mut ex = |b: &Vec<f32>| square(b);
        let f = extract_features(&mut ex, &batches).expect("features");
        assert_eq!(f, array![[1.0, 1.0], [2.0, 4.0], [3.0, 9.0]]);
        let stats = extract_stats(&mut ex, &batches).expect("stats");
        let direct = FeatureStats::from_features(&f).expect("stats");
        assert!((&stats.cov - &direct.cov).iter().all(|v| v.abs() < 1e-12));
    }

    #[test]
    fn extractor_errors_name_the_batch() {
        let batches = vec![vec![1.0f32], vec![f32::NAN]];
        let mut ex = |b: &Vec<f32>| square(b);
        let err = extract_features(&mut ex, &batches).expect_err("batch 1 fails");
        assert!(matches!(err, MetricsError::Extractor { batch: 1, .. }));
        assert!(err.to_string().contains("boom"));
        let none: Vec<Vec<f32>> = Vec::new();
        assert!(matches!(
            extract_features(&mut ex, &none),
            Err(MetricsError::Empty { .. })
        ));
    }

    #[test]
    fn changing_dimension_is_an_error() {
        let mut calls = 0;
        let mut ex = |b: &Vec<f32>| -> std::result::Result<Array2<f32>, Boom> {
            calls += 1;
            Ok(Array2::zeros((b.len(), calls)))
        };
        let batches = vec![vec![1.0f32], vec![2.0]];
        assert!(matches!(
            extract_features(&mut ex, &batches),
            Err(MetricsError::DimensionMismatch {
                left: 1,
                right: 2,
                ..
            })
        ));
    }
}
