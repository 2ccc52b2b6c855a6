//! A classifier's backbone as a [`ganaug_metrics::FeatureExtractor`]: what FID, KID, the
//! synthetic-set gate and the probes measure with, through the metrics crate's batch runners.

use ndarray::Array2;
use tch::{Device, Kind, Tensor};

use crate::{Classifier, ModelError, Result};

impl ganaug_metrics::FeatureExtractor<Tensor> for Classifier {
    type Error = ModelError;

    /// Backbone features of one batch of images (`[B, C, H, W]` at the model's side), inference
    /// mode, as `[B, d]` on the CPU.
    fn features(&mut self, batch: &Tensor) -> Result<Array2<f32>> {
        batch_features(self, batch)
    }
}

/// The same through a shared reference (extraction changes nothing in the model).
impl ganaug_metrics::FeatureExtractor<Tensor> for &Classifier {
    type Error = ModelError;

    fn features(&mut self, batch: &Tensor) -> Result<Array2<f32>> {
        batch_features(self, batch)
    }
}

fn batch_features(model: &Classifier, batch: &Tensor) -> Result<Array2<f32>> {
    let n = batch.size().first().copied().unwrap_or(0).max(1);
    let f = model
        .extract_features(batch, n)?
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Float)?;
    let a: ndarray::ArrayD<f32> = (&f).try_into()?;
    a.into_dimensionality().map_err(|_| ModelError::Shape {
        what: "backbone features",
        expected: "[B, d]".into(),
        got: format!("{:?}", f.size()),
    })
}
