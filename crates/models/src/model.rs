//! [`Classifier`]: a backbone (paper CNN, VGG-16, ResNet-50, EfficientNet-Lite0/1/2) and the
//! paper's dense head in one var store, with weight loading by name and save/load.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use ganaug_train::{self as tensor_file, Validate, VarCopyReport, VarMatch};

use crate::efficientnet::{EfficientNetLiteFeatures, LiteVariant};
use crate::nets::{DenseHead, PaperCnnFeatures, ResNet50Features, Vgg16Features};
use crate::{ModelConfig, ModelKind};
use crate::{ModelError, Result};

/// Input normalisation applied inside the model, so callers always pass `[N, C, H, W]` in
/// [0, 1] (`C` = the configured `in_channels`).
#[derive(Debug)]
enum InputNorm {
    /// The paper's CNN: raw intensities (it relies on batch norm).
    Raw,
    /// ImageNet mean/std per channel (`[1, 3, 1, 1]` on the model's device, made once),
    /// grayscale repeated to 3 channels, RGB as it is.
    ImageNet { mean: Tensor, std: Tensor },
    /// `(255·x − 127)/128`, grayscale repeated to 3 channels, RGB as it is (EfficientNet-Lite's
    /// training).
    Lite,
}

/// A backbone and the paper's dense head. The backbone's variables carry torchvision's names at
/// the root of the var store; the head's are under `head.`.
#[derive(Debug)]
pub struct Classifier {
    cfg: ModelConfig,
    vs: nn::VarStore,
    backbone: Box<dyn ModuleT>,
    head: DenseHead,
    norm: InputNorm,
    /// Length of the backbone's feature vector.
    dim: i64,
    backbone_trainable: bool,
    /// Names of the head's learnable variables, sorted.
    head_params: Vec<String>,
    /// Names of the backbone's learnable variables (not batch-norm running statistics), sorted.
    backbone_params: Vec<String>,
}

/// A classifier's variables that train now, by part (see [`Classifier::trainable_parts`]).
#[derive(Debug)]
pub struct TrainableParts {
    /// The head's, sorted by name.
    pub head: Vec<(String, Tensor)>,
    /// The backbone's (empty while it is frozen), sorted by name.
    pub backbone: Vec<(String, Tensor)>,
    /// Both: the head's, then the backbone's.
    pub all: Vec<(String, Tensor)>,
}

impl Classifier {
    /// Builds a freshly initialised network on `device`.
    pub fn new(cfg: ModelConfig, device: Device) -> Result<Self> {
        cfg.validate()?;
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let lp = ganaug_ops::Precision::from_bf16(cfg.bf16);
        let (backbone, dim, norm) = backbone(&cfg, &root, device, lp)?;
        let learnable = |vs: &nn::VarStore| -> Vec<String> {
            let mut names: Vec<String> = vs
                .variables()
                .into_iter()
                .filter(|(_, t)| t.requires_grad())
                .map(|(n, _)| n)
                .collect();
            names.sort();
            names
        };
        let backbone_params = learnable(&vs);
        let head = DenseHead::new(
            &(&root / "head"),
            cfg.head,
            dim,
            cfg.n_classes,
            cfg.dropout,
            lp,
        );
        if cfg.channels_last {
            for (_, w) in vs.variables().into_iter().filter(|(_, t)| t.dim() == 4) {
                ganaug_ops::set_channels_last(&w)?;
            }
        }
        let head_params: Vec<String> = learnable(&vs)
            .into_iter()
            .filter(|n| backbone_params.binary_search(n).is_err())
            .collect();
        Ok(Classifier {
            cfg,
            vs,
            backbone,
            head,
            norm,
            dim,
            backbone_trainable: true,
            head_params,
            backbone_params,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The var store (all weights, named).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Length of the backbone's feature vector (the head's input).
    pub fn feature_dim(&self) -> i64 {
        self.dim
    }

    /// Whether the backbone's weights are trained (see [`Classifier::set_backbone_trainable`]).
    pub fn backbone_trainable(&self) -> bool {
        self.backbone_trainable
    }

    /// Freezes (`false`) or unfreezes the backbone. A frozen backbone runs in inference mode
    /// (batch norm uses its running statistics) and gets no gradients.
    pub fn set_backbone_trainable(&mut self, trainable: bool) {
        let vars = self.vs.variables();
        for name in &self.backbone_params {
            let _ = vars[name].set_requires_grad(trainable);
        }
        self.backbone_trainable = trainable;
    }

    /// Variables the optimiser should update now: the head always, the backbone when
    /// trainable. Sorted by name.
    pub fn trainable_variables(&self) -> Vec<(String, Tensor)> {
        let mut all = self.trainable_parts().all;
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The variables that train now, head and backbone apart (they may train at different
    /// rates).
    pub fn trainable_parts(&self) -> TrainableParts {
        let vars = self.vs.variables();
        let named = |names: &[String]| -> Vec<(String, Tensor)> {
            names
                .iter()
                .map(|n| (n.clone(), vars[n].shallow_clone()))
                .collect()
        };
        let head = named(&self.head_params);
        let backbone = if self.backbone_trainable {
            named(&self.backbone_params)
        } else {
            Vec::new()
        };
        let all = head
            .iter()
            .chain(&backbone)
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect();
        TrainableParts {
            head,
            backbone,
            all,
        }
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        let s = x.size();
        let (n, c) = (self.cfg.image_size, self.cfg.in_channels);
        if s.len() != 4 || s[1] != c || s[2] != n || s[3] != n || x.kind() != Kind::Float {
            return Err(ModelError::Shape {
                what: "classifier input",
                expected: format!("[N, {c}, {n}, {n}] Float"),
                got: format!("{s:?} {:?}", x.kind()),
            });
        }
        Ok(())
    }

    fn normalise(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.f_to_device(self.device())?;
        let x = match &self.norm {
            InputNorm::Raw => x,
            InputNorm::ImageNet { mean, std } => x
                .f_expand([-1, 3, -1, -1], false)?
                .f_sub(mean)?
                .f_div(std)?,
            InputNorm::Lite => x
                .f_mul_scalar(255.0)?
                .f_sub_scalar(127.0)?
                .f_div_scalar(128.0)?
                .f_expand([-1, 3, -1, -1], false)?,
        };
        if self.cfg.channels_last {
            Ok(ganaug_ops::to_channels_last(&x)?)
        } else {
            Ok(x.f_contiguous()?)
        }
    }

    /// Backbone features `[N, D]` of images `[N, C, S, S]` in [0, 1]. `train` selects
    /// training behaviour (batch-norm statistics, dropout); a frozen backbone always runs in
    /// inference mode without gradients.
    pub fn features_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.check_input(x)?;
        let x = self.normalise(x)?;
        if self.backbone_trainable {
            Ok(self.backbone.forward_t(&x, train))
        } else {
            Ok(tch::no_grad(|| self.backbone.forward_t(&x, false)))
        }
    }

    /// Backbone features of an input already normalised the way the backbone expects
    /// (`[N, 3, H, W]` for the ImageNet models): for checks against reference implementations
    /// that feed colour images. Inference mode, no gradients.
    pub fn backbone_features_normalised(&self, x: &Tensor) -> Result<Tensor> {
        let c = if self.cfg.kind.is_imagenet() { 3 } else { 1 };
        let s = x.size();
        if s.len() != 4 || s[1] != c || x.kind() != Kind::Float {
            return Err(ModelError::Shape {
                what: "normalised backbone input",
                expected: format!("[N, {c}, H, W] Float"),
                got: format!("{s:?} {:?}", x.kind()),
            });
        }
        let x = x.f_to_device(self.device())?;
        Ok(tch::no_grad(|| self.backbone.forward_t(&x, false)))
    }

    /// Head logits `[N, classes]` of backbone features `[N, D]`.
    pub fn head_t(&self, features: &Tensor, train: bool) -> Result<Tensor> {
        let d = self.feature_dim();
        let s = features.size();
        if s.len() != 2 || s[1] != d || features.kind() != Kind::Float {
            return Err(ModelError::Shape {
                what: "head input",
                expected: format!("[N, {d}] Float"),
                got: format!("{s:?} {:?}", features.kind()),
            });
        }
        Ok(self
            .head
            .forward_t(&features.f_to_device(self.device())?, train))
    }

    /// Logits of images with the backbone in inference mode (batch-norm running statistics,
    /// no stochastic depth) while its weights still receive gradients when trainable, and the
    /// head in `head_train` mode: fine-tuning with frozen batch-norm statistics.
    pub fn forward_frozen_bn(&self, x: &Tensor, head_train: bool) -> Result<Tensor> {
        self.check_input(x)?;
        let x = self.normalise(x)?;
        let f = if self.backbone_trainable {
            self.backbone.forward_t(&x, false)
        } else {
            tch::no_grad(|| self.backbone.forward_t(&x, false))
        };
        self.head_t(&f, head_train)
    }

    /// Sets the linear head to a probe fitted on this backbone's features (LP-FT's start):
    /// the probe's standardisation folds into the weights, so the network's logits equal the
    /// probe's. Errors unless the head is [`crate::HeadArch::Linear`] and the widths and classes match.
    pub fn init_head_from_probe(&mut self, probe: &crate::LinearProbe) -> Result<()> {
        let d = self.dim as usize;
        let k = self.cfg.n_classes as usize;
        let Some(linear) = self.head.linear() else {
            return Err(ModelError::config(
                "head",
                "initialising from a probe needs the linear head",
            ));
        };
        if probe.mean.len() != d || probe.weights.len() != d || probe.bias.len() != k {
            return Err(ModelError::Shape {
                what: "the probe",
                expected: format!("{d} features × {k} classes"),
                got: format!(
                    "{} features × {} classes",
                    probe.mean.len(),
                    probe.bias.len()
                ),
            });
        }
        let mut w = vec![0f32; k * d];
        let mut b: Vec<f64> = probe.bias.clone();
        for f in 0..d {
            for c in 0..k {
                let v = probe.weights[f][c] / probe.scale[f];
                w[c * d + f] = v as f32;
                b[c] -= probe.mean[f] * v;
            }
        }
        let b: Vec<f32> = b.into_iter().map(|v| v as f32).collect();
        let device = self.device();
        tch::no_grad(|| -> Result<()> {
            let ws = Tensor::f_from_slice(&w)?
                .f_view([k as i64, d as i64])?
                .f_to(device)?;
            linear.ws.shallow_clone().f_copy_(&ws)?;
            if let Some(bs) = &linear.bs {
                bs.shallow_clone()
                    .f_copy_(&Tensor::f_from_slice(&b)?.f_to(device)?)?;
            }
            Ok(())
        })
    }

    /// Logits `[N, classes]` of images `[N, C, S, S]` in [0, 1].
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let f = self.features_t(x, train)?;
        self.head_t(&f, train)
    }

    /// Class probabilities `[N, classes]` (inference mode, no gradients), in batches.
    pub fn predict_proba(&self, images: &Tensor, batch_size: i64) -> Result<Tensor> {
        self.in_batches(images, batch_size, self.cfg.n_classes, |x| {
            Ok(self.forward_t(x, false)?.f_softmax(-1, Kind::Float)?)
        })
    }

    /// Backbone features of many images (inference mode, no gradients), in batches, on the
    /// model's device: what the trainer caches for a frozen backbone.
    pub fn extract_features(&self, images: &Tensor, batch_size: i64) -> Result<Tensor> {
        self.in_batches(images, batch_size, self.feature_dim(), |x| {
            self.check_input(x)?;
            Ok(self.backbone.forward_t(&self.normalise(x)?, false))
        })
    }

    /// `f` over batches of `images` without gradients, concatenated (`[0, cols]` when empty).
    fn in_batches(
        &self,
        images: &Tensor,
        batch_size: i64,
        cols: i64,
        f: impl Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let n = images.size().first().copied().unwrap_or(0);
        let batch_size = batch_size.max(1);
        let mut out = Vec::new();
        tch::no_grad(|| -> Result<()> {
            let mut i = 0;
            while i < n {
                let b = batch_size.min(n - i);
                out.push(f(&images.f_narrow(0, i, b)?)?);
                i += b;
            }
            Ok(())
        })?;
        if out.is_empty() {
            return Ok(Tensor::f_zeros([0, cols], (Kind::Float, self.device()))?);
        }
        Ok(Tensor::f_cat(&out, 0)?)
    }

    /// Loads pretrained backbone weights (e.g. torchvision's ImageNet state dict exported to
    /// safetensors) by name. The head stays as initialised; the file's ImageNet classifier
    /// (`classifier.*` / `fc.*`) and batch-norm `num_batches_tracked` counters are skipped.
    /// Anything else missing, unexpected or mis-shaped is a
    /// [`TrainError::WeightMismatch`](ganaug_train::TrainError::WeightMismatch) listing it; a
    /// truncated or non-safetensors file is a `TrainError::TensorFile`.
    pub fn load_backbone_weights(&mut self, path: impl AsRef<Path>) -> Result<VarCopyReport> {
        let path = path.as_ref();
        let (mut saved, _) = tensor_file::load_tensors(path, self.device())?;
        saved.retain(|k, _| !k.ends_with("num_batches_tracked"));
        let rules = VarMatch {
            allow_missing: &["head."],
            ignore_unexpected: self.cfg.kind.imagenet_classifier_prefixes(),
        };
        Ok(tensor_file::copy_into_vars(
            &self.vs.variables(),
            &saved,
            &rules,
            path,
        )?)
    }

    /// Saves every weight and the architecture as one safetensors file, atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let tensors: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        let meta = HashMap::from([
            ("format".to_string(), "ganaug-classifier-1".to_string()),
            ("model".to_string(), config_json(&self.cfg)?),
        ]);
        Ok(tensor_file::save_tensors(path, &tensors, &meta)?)
    }

    /// Loads what [`Classifier::save`] wrote (architecture from the file).
    pub fn load(path: impl AsRef<Path>, device: Device) -> Result<Self> {
        let path = path.as_ref();
        let (saved, meta) = tensor_file::load_tensors(path, device)?;
        let bad = |reason: String| ModelError::Checkpoint {
            path: path.into(),
            reason,
        };
        match meta.get("format").map(String::as_str) {
            Some("ganaug-classifier-1") => {}
            Some("ganaug-classifier-train-1") => {
                return Err(bad(
                    "this is a training checkpoint: resume it with `fit`, or load the model.safetensors written after training".into(),
                ))
            }
            other => return Err(bad(format!("not a ganaug classifier file (format {other:?})"))),
        }
        let cfg: ModelConfig = serde_json::from_str(
            meta.get("model")
                .ok_or_else(|| bad("no architecture in its metadata".into()))?,
        )
        .map_err(|e| bad(format!("bad architecture metadata: {e}")))?;
        let model = Classifier::new(cfg, device)?;
        model.copy_from(&saved, path, &[])?;
        Ok(model)
    }

    /// Copies named tensors (`prefix` + variable name) into this model, strictly.
    pub(crate) fn copy_from(
        &self,
        saved: &HashMap<String, Tensor>,
        path: &Path,
        ignore: &[&str],
    ) -> Result<()> {
        let rules = VarMatch {
            allow_missing: &[],
            ignore_unexpected: ignore,
        };
        tensor_file::copy_into_vars(&self.vs.variables(), saved, &rules, path)?;
        Ok(())
    }
}

/// The network before the head: the backbone of `cfg.kind` under `root`, the width of its
/// features, and how its input is normalised.
fn backbone(
    cfg: &ModelConfig,
    root: &nn::Path,
    device: Device,
    lp: ganaug_ops::Precision,
) -> Result<(Box<dyn ModuleT>, i64, InputNorm)> {
    let imagenet = || -> Result<InputNorm> {
        let stats = |v: [f32; 3]| -> Result<Tensor> {
            Ok(Tensor::f_from_slice(&v)?
                .f_to(device)?
                .f_view([1, 3, 1, 1])?)
        };
        Ok(InputNorm::ImageNet {
            mean: stats([0.485, 0.456, 0.406])?,
            std: stats([0.229, 0.224, 0.225])?,
        })
    };
    Ok(match cfg.kind {
        ModelKind::PaperCnn => (
            Box::new(PaperCnnFeatures::new(root, cfg.in_channels, lp)),
            PaperCnnFeatures::dim(cfg.image_size),
            InputNorm::Raw,
        ),
        ModelKind::Vgg16 => (
            Box::new(Vgg16Features::new(root, lp)),
            Vgg16Features::DIM,
            imagenet()?,
        ),
        ModelKind::ResNet50 => (
            Box::new(ResNet50Features::new(root, lp)),
            ResNet50Features::DIM,
            imagenet()?,
        ),
        ModelKind::EfficientNetLite0
        | ModelKind::EfficientNetLite1
        | ModelKind::EfficientNetLite2 => {
            let variant = cfg.kind.lite_variant().unwrap_or(LiteVariant::LITE0);
            let stages = cfg.pooled_stages;
            (
                Box::new(EfficientNetLiteFeatures::new(root, variant, stages, lp)),
                EfficientNetLiteFeatures::dim(variant, stages),
                InputNorm::Lite,
            )
        }
    })
}

pub(crate) fn config_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|source| ModelError::Json {
        what: "a model's configuration",
        source,
    })
}
