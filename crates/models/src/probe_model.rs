//! [`ProbeModel`]: a frozen ImageNet backbone and the linear probe fitted on its features, saved
//! as one file with everything prediction needs (architecture, classes, the probe's
//! standardisation and strength, test-time mirroring, the operating threshold and how it was
//! chosen), so new images can be classified without the training data.

use std::collections::HashMap;
use std::path::Path;

use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use ganaug_train as tensor_file;

use crate::model::config_json;
use crate::probe::{check_blocks, gather, stratified_folds};
use crate::probe_solve::fit_owned_checked;
use crate::{Classifier, LinearProbe, ModelError, ProbeConfig, Result};

/// The `format` metadata entry of a saved [`ProbeModel`].
pub const PROBE_MODEL_FORMAT: &str = "ganaug-probe-model-1";

/// An operating point: class `positive` is predicted when its probability is at least `value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// Index of the positive class.
    pub positive: usize,
    /// The probability threshold.
    pub value: f64,
    /// How it was chosen, in words (e.g. "Youden's J on 5-fold out-of-fold probabilities").
    pub chosen_by: String,
    /// Sensitivity and specificity where it was chosen.
    pub sensitivity: f64,
    /// See `sensitivity`.
    pub specificity: f64,
}

/// What a [`ProbeModel`] file says besides its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeModelInfo {
    /// Class names, in label order.
    pub class_names: Vec<String>,
    /// How images were fitted into their square in training: new images are decoded the same
    /// way.
    pub resize: ganaug_data::ResizePolicy,
    /// Average each image's probabilities with its horizontal mirror's.
    pub tta_flip: bool,
    /// The operating threshold (binary problems), if one was chosen.
    pub threshold: Option<Threshold>,
    /// What the probe was trained on, in words.
    pub trained_on: String,
}

/// A frozen backbone and its linear probe.
#[derive(Debug)]
pub struct ProbeModel {
    backbone: Classifier,
    probe: LinearProbe,
    info: ProbeModelInfo,
}

impl ProbeModel {
    /// Puts a backbone (its ImageNet weights loaded) and a probe fitted on its features
    /// together. Errors if the probe's width is not the backbone's or the classes disagree.
    pub fn new(mut backbone: Classifier, probe: LinearProbe, info: ProbeModelInfo) -> Result<Self> {
        let d = backbone.feature_dim() as usize;
        if probe.mean.len() != d || probe.scale.len() != d || probe.weights.len() != d {
            return Err(ModelError::Shape {
                what: "the probe's features",
                expected: format!("{d} (the backbone's)"),
                got: probe.mean.len().to_string(),
            });
        }
        if probe.bias.len() != info.class_names.len() {
            return Err(ModelError::Shape {
                what: "class names",
                expected: format!("{} (the probe's classes)", probe.bias.len()),
                got: info.class_names.len().to_string(),
            });
        }
        backbone.set_backbone_trainable(false);
        Ok(ProbeModel {
            backbone,
            probe,
            info,
        })
    }

    /// The backbone (its architecture: [`Classifier::config`]).
    pub fn backbone(&self) -> &Classifier {
        &self.backbone
    }

    /// The probe.
    pub fn probe(&self) -> &LinearProbe {
        &self.probe
    }

    /// Classes, preprocessing, threshold.
    pub fn info(&self) -> &ProbeModelInfo {
        &self.info
    }

    /// Class probabilities `[N, classes]` of images `[N, C, S, S]` in [0, 1] (`S` the
    /// backbone's input side; anything else is a typed [`ModelError::Shape`]).
    pub fn predict_proba(&self, images: &Tensor) -> Result<Array2<f64>> {
        let features = |x: &Tensor| -> Result<Array2<f64>> {
            let f = self
                .backbone
                .extract_features(x, 32)?
                .f_to_device(Device::Cpu)?
                .f_to_kind(Kind::Double)?;
            let a: ndarray::ArrayD<f64> = (&f).try_into()?;
            let got = format!("{:?}", a.shape());
            a.into_dimensionality().map_err(|_| ModelError::Shape {
                what: "backbone features",
                expected: "[N, features]".into(),
                got,
            })
        };
        let mut p = self.probe.predict_proba(&features(images)?)?;
        if self.info.tta_flip {
            p = (p + self.probe.predict_proba(&features(&images.f_flip([3])?)?)?) / 2.0;
        }
        Ok(p)
    }

    /// [`ProbeModel::predict_proba`] of any image source, 32 images at a time (a stream is
    /// never held whole): the same probabilities for the same images.
    pub fn predict_proba_source(
        &self,
        images: &dyn ganaug_data::ImageSource,
    ) -> Result<Array2<f64>> {
        if let Some(d) = images.in_memory() {
            return self.predict_proba(&d.images);
        }
        let chunks = ganaug_data::stream::sequential_batches(images.len(), 32);
        let mut parts = Vec::with_capacity(chunks.len());
        let device = self.backbone.device();
        ganaug_data::stream::read_batches::<ModelError>(images, chunks, device, 2, |_, x| {
            parts.push(self.predict_proba(&x)?);
            Ok(())
        })?;
        let views: Vec<_> = parts.iter().map(Array2::view).collect();
        ndarray::concatenate(ndarray::Axis(0), &views).map_err(|e| ModelError::Shape {
            what: "probabilities of a stream",
            expected: "[N, classes]".into(),
            got: e.to_string(),
        })
    }

    /// The predicted class of each row of `probs`: the threshold's positive class when its
    /// probability reaches the threshold, otherwise the most probable class.
    pub fn decide(&self, probs: &Array2<f64>) -> Vec<usize> {
        probs
            .axis_iter(Axis(0))
            .map(|row| match &self.info.threshold {
                Some(t) if row.len() == 2 => {
                    if row[t.positive] >= t.value {
                        t.positive
                    } else {
                        1 - t.positive
                    }
                }
                _ => argmax(row.iter().copied()),
            })
            .collect()
    }

    /// Saves backbone weights, probe and information as one safetensors file, atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let tensors: Vec<(String, Tensor)> =
            self.backbone.var_store().variables().into_iter().collect();
        let meta = HashMap::from([
            ("format".to_string(), PROBE_MODEL_FORMAT.to_string()),
            ("model".to_string(), config_json(self.backbone.config())?),
            ("probe".to_string(), config_json(&self.probe)?),
            ("info".to_string(), config_json(&self.info)?),
        ]);
        Ok(tensor_file::save_tensors(path, &tensors, &meta)?)
    }

    /// Loads what [`ProbeModel::save`] wrote.
    pub fn load(path: impl AsRef<Path>, device: Device) -> Result<Self> {
        let path = path.as_ref();
        let (saved, meta) = tensor_file::load_tensors(path, device)?;
        let bad = |reason: String| ModelError::Checkpoint {
            path: path.into(),
            reason,
        };
        match meta.get("format").map(String::as_str) {
            Some(PROBE_MODEL_FORMAT) => {}
            other => {
                return Err(bad(format!(
                    "not a ganaug probe model (format {other:?}, expected {PROBE_MODEL_FORMAT:?})"
                )))
            }
        }
        let field = |k: &str| {
            meta.get(k)
                .ok_or_else(|| bad(format!("no {k:?} entry in its metadata")))
        };
        let parse_err =
            |k: &'static str| move |e: serde_json::Error| bad(format!("bad {k:?} metadata: {e}"));
        let cfg = serde_json::from_str(field("model")?).map_err(parse_err("model"))?;
        let probe = serde_json::from_str(field("probe")?).map_err(parse_err("probe"))?;
        let info = serde_json::from_str(field("info")?).map_err(parse_err("info"))?;
        let backbone = Classifier::new(cfg, device)?;
        backbone.copy_from(&saved, path, &[])?;
        ProbeModel::new(backbone, probe, info)
    }
}

fn argmax(v: impl Iterator<Item = f64>) -> usize {
    v.enumerate()
        .fold(
            (0, f64::NEG_INFINITY),
            |b, (i, x)| if x > b.1 { (i, x) } else { b },
        )
        .0
}

/// Probabilities of every row of `(x, y)` from a probe fitted at strength `c` on the other
/// folds (the same `k` stratified folds as [`crate::select_by_kfold`]): held-out predictions of
/// every image, for choosing an operating threshold without the test split.
pub fn out_of_fold_proba(
    (x, y): (&Array2<f64>, &[usize]),
    n_classes: usize,
    k: usize,
    c: f64,
    cfg: &ProbeConfig,
) -> Result<Array2<f64>> {
    out_of_fold_proba_blocks((&[x.view()], y), n_classes, k, c, cfg)
}

/// [`out_of_fold_proba`] on rows kept as blocks stacked in order (as
/// [`crate::select_by_kfold_blocks`]): each fold's rows are gathered from the blocks.
pub fn out_of_fold_proba_blocks(
    (blocks, y): (&[ArrayView2<'_, f64>], &[usize]),
    n_classes: usize,
    k: usize,
    c: f64,
    cfg: &ProbeConfig,
) -> Result<Array2<f64>> {
    check_blocks("out-of-fold features", blocks, y, n_classes)?;
    let fold = stratified_folds(y, n_classes, k)?;
    let mut out = Array2::zeros((y.len(), n_classes));
    for f in 0..k {
        let (tr, te): (Vec<usize>, Vec<usize>) = (0..y.len()).partition(|&i| fold[i] != f);
        let labels: Vec<usize> = tr.iter().map(|&i| y[i]).collect();
        let probe = fit_owned_checked(gather(blocks, &tr), &labels, None, n_classes, c, cfg)?;
        let p = probe.predict_proba(&gather(blocks, &te))?;
        for (row, &i) in te.iter().enumerate() {
            out.row_mut(i).assign(&p.row(row));
        }
    }
    Ok(out)
}

/// The threshold on class `positive`'s probability that maximises Youden's J (sensitivity +
/// specificity − 1) on `(labels, probs)`; ties go to the threshold nearest 0.5.
pub fn youden_threshold(
    labels: &[usize],
    probs: &Array2<f64>,
    positive: usize,
    chosen_by: impl Into<String>,
) -> Result<Threshold> {
    let scores: Vec<f64> = probs.column(positive).to_vec();
    let roc = ganaug_metrics::roc_curve(labels, &scores, positive).map_err(|source| {
        ModelError::Metric {
            what: "the ROC curve of the operating threshold",
            source,
        }
    })?;
    let mut best: (f64, f64, f64, f64) = (f64::NEG_INFINITY, 0.5, 0.0, 0.0);
    for i in 1..roc.thresholds.len() {
        let j = roc.tpr[i] - roc.fpr[i];
        let t = roc.thresholds[i];
        let better = j > best.0 + 1e-12
            || ((j - best.0).abs() <= 1e-12 && (t - 0.5).abs() < (best.1 - 0.5).abs());
        if better && t.is_finite() {
            best = (j, t, roc.tpr[i], 1.0 - roc.fpr[i]);
        }
    }
    Ok(Threshold {
        positive,
        value: best.1,
        chosen_by: chosen_by.into(),
        sensitivity: best.2,
        specificity: best.3,
    })
}
