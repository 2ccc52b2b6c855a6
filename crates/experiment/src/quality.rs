//! How close a synthetic set is to its class's real images: FID and KID on EfficientNet-Lite0
//! (or Lite2) ImageNet features (none without its weights file).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use ganaug_data::ImageSource;
use ganaug_metrics::{fid, kid, KidConfig};
use ganaug_models::{pretrained_weights_in, weights_dir, Classifier, ModelConfig, ModelKind};

use crate::{CellError, ExperimentError, Result};

/// The network whose ImageNet features the synthetic-set measures, the selection by features
/// and the CAS use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeatureNet {
    /// EfficientNet-Lite0 at 224² (the default; also the best classifier's backbone).
    #[default]
    EffnetLite0,
    /// EfficientNet-Lite2 at 260²: weights trained apart from Lite0's, for scoring a GAN whose
    /// discriminator read Lite0's features (a projected discriminator).
    EffnetLite2,
}

impl FeatureNet {
    fn kind(self) -> ModelKind {
        match self {
            FeatureNet::EffnetLite0 => ModelKind::EfficientNetLite0,
            FeatureNet::EffnetLite2 => ModelKind::EfficientNetLite2,
        }
    }

    /// The side its ImageNet weights were trained at.
    fn side(self) -> i64 {
        self.kind().pretrained_size().unwrap_or(224)
    }

    /// Its weights file in `dir`: `None` for the default network (a run without weights
    /// reports no measures), an error for one asked for by name.
    fn weights_in(self, dir: &std::path::Path) -> Result<Option<std::path::PathBuf>> {
        match pretrained_weights_in(dir, self.kind()) {
            None if !self.is_default() => {
                Err(quality_err("the feature network")(CellError::Weights {
                    needed_by: "gan.extractor",
                    model: self.kind().display_name(),
                }))
            }
            found => Ok(found),
        }
    }

    /// The feature space, in words.
    pub fn describe(self) -> &'static str {
        match self {
            FeatureNet::EffnetLite0 => Quality::EXTRACTOR,
            FeatureNet::EffnetLite2 => {
                "EfficientNet-Lite2 ImageNet features (1,280-d, images upsampled to 260²)"
            }
        }
    }

    /// Whether this is the default network (not written into configurations).
    pub fn is_default(&self) -> bool {
        *self == FeatureNet::default()
    }
}

/// The feature extractor, with each class's real training features computed once for every
/// synthetic set scored against them.
#[derive(Default)]
pub struct Quality {
    net: Option<Classifier>,
    which: FeatureNet,
    train_features: BTreeMap<String, ndarray::Array2<f64>>,
    /// The real test split's features (the CAS tests on them).
    test_features: Option<ndarray::Array2<f64>>,
    /// A probe on the real training features of every class (selection by confidence).
    real_probe: Option<ganaug_models::LinearProbe>,
}

fn quality_err(what: &'static str) -> impl FnOnce(CellError) -> ExperimentError {
    move |source| ExperimentError::Quality {
        what,
        source: Box::new(source),
    }
}

impl Quality {
    /// EfficientNet-Lite0 at 224² for gray images when its ImageNet weights are installed;
    /// otherwise a scorer that reports no FID or KID.
    pub fn new(device: Device) -> Result<Self> {
        Self::with_channels(device, 1)
    }

    /// [`Quality::new`] for images of `channels` channels (1 gray, 3 RGB).
    pub fn with_channels(device: Device, channels: i64) -> Result<Self> {
        Self::with_network(device, channels, FeatureNet::default())
    }

    /// [`Quality::with_channels`] on the features of `which`. Without its weights: a scorer
    /// that reports nothing for the default network, an error for any other.
    pub fn with_network(device: Device, channels: i64, which: FeatureNet) -> Result<Self> {
        let Some(path) = which.weights_in(&weights_dir())? else {
            return Ok(Quality {
                which,
                ..Quality::default()
            });
        };
        let mcfg = ModelConfig::new(which.kind(), which.side()).for_data(2, channels);
        let mut net = Classifier::new(mcfg, device)
            .map_err(|e| quality_err("building the feature network")(e.into()))?;
        net.load_backbone_weights(&path)
            .map_err(|e| quality_err("loading the feature network")(e.into()))?;
        Ok(Quality {
            net: Some(net),
            which,
            train_features: BTreeMap::new(),
            test_features: None,
            real_probe: None,
        })
    }

    /// The feature space of [`Quality::new`], in words.
    pub const EXTRACTOR: &'static str =
        "EfficientNet-Lite0 ImageNet features (1,280-d, images upsampled to 224²)";

    /// This scorer's feature space, in words.
    pub fn describe(&self) -> &'static str {
        self.which.describe()
    }

    /// The feature network's name (`EfficientNet-Lite0`).
    pub fn network_name(&self) -> &'static str {
        self.which.kind().display_name()
    }

    /// Features of `class`'s training images `train` (computed once) and of `images`; `None`
    /// without the feature network.
    pub fn features(
        &mut self,
        class: &str,
        train: &Tensor,
        images: &Tensor,
    ) -> Result<Option<(ndarray::Array2<f64>, ndarray::Array2<f64>)>> {
        let real = self.class_features(class, train)?;
        self.paired(real, images)
    }

    /// `real` with the features of `images`; `None` without either.
    fn paired(
        &self,
        real: Option<ndarray::Array2<f64>>,
        images: &Tensor,
    ) -> Result<Option<(ndarray::Array2<f64>, ndarray::Array2<f64>)>> {
        match (real, &self.net) {
            (Some(real), Some(net)) => Ok(Some((real, features(net, images)?))),
            _ => Ok(None),
        }
    }

    /// Features of `class`'s training images `train`, computed once; `None` without the
    /// feature network.
    pub fn class_features(
        &mut self,
        class: &str,
        train: &Tensor,
    ) -> Result<Option<ndarray::Array2<f64>>> {
        let Some(net) = &self.net else {
            return Ok(None);
        };
        if !self.train_features.contains_key(class) {
            self.train_features
                .insert(class.into(), features(net, train)?);
        }
        Ok(Some(self.train_features[class].clone()))
    }
}

impl Quality {
    /// [`features`](Self::features) with the class's training images from any source (a
    /// stream read batch by batch).
    pub fn features_of(
        &mut self,
        class: &str,
        train: &dyn ImageSource,
        images: &Tensor,
    ) -> Result<Option<(ndarray::Array2<f64>, ndarray::Array2<f64>)>> {
        let real = self.class_features_of(class, train)?;
        self.paired(real, images)
    }

    /// [`class_features`](Self::class_features) of any image source (a stream read batch by
    /// batch); `None` without the feature network.
    pub fn class_features_of(
        &mut self,
        class: &str,
        train: &dyn ImageSource,
    ) -> Result<Option<ndarray::Array2<f64>>> {
        let Some(net) = &self.net else {
            return Ok(None);
        };
        if !self.train_features.contains_key(class) {
            self.train_features
                .insert(class.into(), features_of(net, train)?);
        }
        Ok(Some(self.train_features[class].clone()))
    }

    /// A linear probe (strength by 5-fold) on the real training features of every class, one
    /// source per class in label order; fitted once.
    pub fn real_probe<S: ImageSource>(
        &mut self,
        classes: &[S],
    ) -> Result<&ganaug_models::LinearProbe> {
        use ganaug_models::{fit_at, select_by_kfold, ProbeConfig};
        if self.real_probe.is_none() {
            let err = |e: ganaug_models::ModelError| quality_err("the real-image probe")(e.into());
            let (mut rows, mut y) = (Vec::new(), Vec::new());
            for (label, s) in classes.iter().enumerate() {
                let class = &s.class_names()[label];
                let Some(real) = self.class_features_of(class, s)? else {
                    return Err(quality_err("the real-image probe")(CellError::Weights {
                        needed_by: "the real-image probe",
                        model: self.network_name(),
                    }));
                };
                y.extend(std::iter::repeat_n(label, real.nrows()));
                rows.push(real);
            }
            let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
            let x = ndarray::concatenate(ndarray::Axis(0), &views).map_err(|_| {
                quality_err("the real-image probe")(CellError::Features {
                    what: "the real classes' features",
                })
            })?;
            let cfg = ProbeConfig::default();
            let (c, _) = select_by_kfold((&x, &y), classes.len(), 5, &cfg).map_err(err)?;
            self.real_probe = Some(fit_at(&x, &y, classes.len(), c, &cfg).map_err(err)?);
        }
        self.real_probe.as_ref().ok_or_else(|| {
            quality_err("the real-image probe")(CellError::Features {
                what: "the real-image probe (not fitted)",
            })
        })
    }
}

/// Classification Accuracy Score (Ravuri & Vinyals 2019) with a linear probe on the
/// extractor's features: fitted on one training set (synthetic images, or the real training
/// split for reference; strength by 5-fold), tested on the real test split.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cas {
    /// What the probe trained on: a synthetic set's name, or `real` for the reference.
    pub trained_on: String,
    /// Training images.
    pub images: usize,
    /// Test accuracy.
    pub accuracy: f64,
    /// Test ROC AUC.
    pub auc: Option<f64>,
}

impl Quality {
    /// The CAS of `train` (images at any size, upsampled to the network's side) on `test`;
    /// `None` without the feature network.
    pub fn cas(
        &mut self,
        trained_on: &str,
        train: &dyn ImageSource,
        test: &dyn ImageSource,
    ) -> Result<Option<Cas>> {
        use ganaug_models::{fit_at, select_by_kfold, ProbeConfig};
        let Some(net) = &self.net else {
            return Ok(None);
        };
        let err =
            |e: ganaug_models::ModelError| quality_err("classification accuracy score")(e.into());
        let labels = |d: &dyn ImageSource| -> Result<Vec<usize>> {
            let l = Vec::<i64>::try_from(
                &d.labels()
                    .f_to_device(Device::Cpu)
                    .map_err(|e| quality_err("labels")(e.into()))?,
            )
            .map_err(|e| quality_err("labels")(e.into()))?;
            Ok(l.into_iter().map(|v| v as usize).collect())
        };
        let (x, y) = (features_of(net, train)?, labels(train)?);
        let classes = train.class_names().len();
        let cfg = ProbeConfig::default();
        let (c, _) = select_by_kfold((&x, &y), classes, 5, &cfg).map_err(err)?;
        let probe = fit_at(&x, &y, classes, c, &cfg).map_err(err)?;
        if self.test_features.is_none() {
            self.test_features = Some(features_of(net, test)?);
        }
        let test_x = self.test_features.as_ref().ok_or_else(|| {
            quality_err("classification accuracy score")(crate::CellError::Features {
                what: "the test images",
            })
        })?;
        let probs = probe.predict_proba(test_x).map_err(err)?;
        let ty = labels(test)?;
        let accuracy = ganaug_metrics::ConfusionMatrix::from_probs(&ty, &probs)
            .map_err(|e| quality_err("classification accuracy score")(e.into()))?
            .accuracy();
        let average = if classes == 2 {
            ganaug_metrics::Average::Binary { positive: 0 }
        } else {
            ganaug_metrics::Average::Macro
        };
        let auc = ganaug_metrics::roc_auc_ovr(&ty, &probs, average).ok();
        Ok(Some(Cas {
            trained_on: trained_on.into(),
            images: x.nrows(),
            accuracy,
            auc,
        }))
    }
}

/// FID and KID (mean) of features `b` against real features `a` (KID over subsets of at most
/// 100 images).
pub(crate) fn fid_kid(
    a: &ndarray::Array2<f64>,
    b: &ndarray::Array2<f64>,
) -> (Option<f64>, Option<f64>) {
    let m = a.nrows().min(b.nrows());
    let kid_cfg = KidConfig {
        subset_size: m.min(100),
        subsets: 50,
        ..KidConfig::default()
    };
    let k = (m >= 2)
        .then(|| kid(a, b, &kid_cfg).ok())
        .flatten()
        .map(|k| k.mean);
    (fid(a, b).ok(), k)
}

/// Images resized to `size`² (bilinear, clamped to [0, 1]); the same tensor when already there.
pub fn resize(images: &Tensor, size: i64) -> std::result::Result<Tensor, tch::TchError> {
    let s = images.size();
    if s[2] == size && s[3] == size {
        return Ok(images.shallow_clone());
    }
    images
        .f_upsample_bilinear2d([size, size], false, None, None)
        .and_then(|t| t.f_clamp(0.0, 1.0))
}

fn features(net: &Classifier, images: &Tensor) -> Result<ndarray::Array2<f64>> {
    let run = || feature_matrix(net, &resize(images, net.config().image_size)?, 32);
    run().map_err(quality_err("features"))
}

/// [`features`] of any source: an in-memory set as above, a stream 32 images at a time
/// (the same batches, resized the same way, so the same features).
fn features_of(net: &Classifier, source: &dyn ImageSource) -> Result<ndarray::Array2<f64>> {
    if let Some(d) = source.in_memory() {
        return features(net, &d.images);
    }
    let side = net.config().image_size;
    feature_matrix_mapped(net, source, 32, |x| Ok(resize(&x, side)?))
        .map_err(quality_err("features"))
}

/// Backbone features of `images` as an `[N, features]` f64 matrix on the CPU, extracted
/// `batch` images at a time (the classifier as a [`ganaug_metrics::FeatureExtractor`]).
pub fn feature_matrix(
    net: &Classifier,
    images: &Tensor,
    batch: i64,
) -> std::result::Result<ndarray::Array2<f64>, CellError> {
    let n = images.size().first().copied().unwrap_or(0);
    if n == 0 {
        return Ok(ndarray::Array2::zeros((0, net.feature_dim() as usize)));
    }
    let batch = batch.max(1);
    let batches = (0..n)
        .step_by(batch as usize)
        .map(|i| images.narrow(0, i, batch.min(n - i)));
    let mut net = net;
    let f = ganaug_metrics::extract_features(&mut net, batches)?;
    Ok(f.mapv(f64::from))
}

/// [`feature_matrix`] of any [`ganaug_data::ImageSource`]: an in-memory set as above, a
/// stream read `batch` images at a time (the next batches on a background thread), so only
/// the features — not the images — are ever held whole. The same batches, so the same
/// features.
pub fn feature_matrix_of(
    net: &Classifier,
    source: &dyn ganaug_data::ImageSource,
    batch: i64,
) -> std::result::Result<ndarray::Array2<f64>, CellError> {
    if let Some(d) = source.in_memory() {
        return feature_matrix(net, &d.images, batch);
    }
    feature_matrix_mapped(net, source, batch, Ok)
}

/// [`feature_matrix_of`] of `source`'s images taken through `map` batch by batch (a stream's
/// mirror images, say): only the features are held whole.
pub fn feature_matrix_mapped(
    net: &Classifier,
    source: &dyn ganaug_data::ImageSource,
    batch: i64,
    mut map: impl FnMut(Tensor) -> std::result::Result<Tensor, CellError>,
) -> std::result::Result<ndarray::Array2<f64>, CellError> {
    if source.is_empty() {
        return Ok(ndarray::Array2::zeros((0, net.feature_dim() as usize)));
    }
    let chunks = ganaug_data::stream::sequential_batches(source.len(), batch.max(1) as usize);
    let mut net = net;
    let mut parts = Vec::with_capacity(chunks.len());
    ganaug_data::stream::read_batches::<CellError>(source, chunks, net.device(), 2, |_, x| {
        parts.push(ganaug_metrics::FeatureExtractor::features(
            &mut net,
            &map(x)?,
        )?);
        Ok(())
    })?;
    // the parts go straight into one f64 matrix, each dropped once copied (no f32 copy of the
    // whole set beside it)
    let (rows, cols) = (
        parts.iter().map(|p| p.nrows()).sum::<usize>(),
        parts.first().map_or(0, |p| p.ncols()),
    );
    let mut f = ndarray::Array2::<f64>::zeros((rows, cols));
    let mut at = 0;
    for p in parts {
        if p.ncols() != cols {
            return Err(CellError::Features {
                what: "a stream's features",
            });
        }
        let n = p.nrows();
        f.slice_axis_mut(ndarray::Axis(0), ndarray::Slice::from(at..at + n))
            .zip_mut_with(&p, |o, &v| *o = f64::from(v));
        at += n;
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_extractor_without_weights_is_an_error_the_default_is_not() {
        let empty = std::env::temp_dir().join(format!("ganaug-no-weights-{}", std::process::id()));
        assert_eq!(
            FeatureNet::EffnetLite0.weights_in(&empty).expect("default"),
            None
        );
        let err = FeatureNet::EffnetLite2
            .weights_in(&empty)
            .expect_err("named");
        assert!(err.to_string().contains("Lite2"), "{err}");
        assert_eq!(FeatureNet::EffnetLite2.side(), 260);
        assert_eq!(FeatureNet::EffnetLite0.side(), 224);
    }
}
