//! How a classifier trains (the paper's rules — stop at 95% train accuracy, keep the weights
//! with the best validation loss — plus the options a user expects), what an epoch records,
//! and inference. The loop itself is [`crate::fit`].

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

use ganaug_augment::Pipeline;
use ganaug_data::{ImageSource, TensorDataset};
pub use ganaug_train::StopReason;
use ganaug_train::{Curves, RunDir, Validate};

use crate::{Classifier, ModelError, Result};

/// What happens to the backbone's weights during training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackboneMode {
    /// Train every weight (from scratch, or fine-tune everything).
    Train,
    /// Train the head only; without online augmentation the backbone's features are computed
    /// once and the head trains on the cached features.
    Frozen,
    /// Frozen for the first `k` epochs, then everything trains.
    UnfreezeAfter(usize),
}

/// Learning-rate schedule over epochs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// The same rate throughout (the paper).
    Constant,
    /// Multiply by `gamma` every `every` epochs.
    Step {
        /// Period in epochs.
        every: usize,
        /// Factor.
        gamma: f64,
    },
    /// Cosine decay from the base rate to zero over `max_epochs`.
    Cosine,
}

/// Which optimiser a run uses (`ganaug-train`'s implementations).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// SGD with `momentum` and L2 `weight_decay` (the paper: plain SGD).
    #[default]
    Sgd,
    /// AdamW (`torch.optim.AdamW`): `weight_decay` is decoupled; `momentum` is unused.
    #[serde(rename = "adamw")]
    AdamW {
        /// First-moment decay (torch: 0.9).
        beta1: f64,
        /// Second-moment decay (torch: 0.999).
        beta2: f64,
        /// Denominator term (torch: 1e-8).
        eps: f64,
    },
}

/// What makes an epoch's weights the best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelectOn {
    /// Lowest validation loss (the paper).
    #[default]
    ValLoss,
    /// Highest validation ROC AUC (binary: the first class positive; more classes: macro
    /// one-vs-rest).
    ValAuc,
}

/// How to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Upper bound on epochs.
    pub max_epochs: usize,
    /// Mini-batch size (the paper: 32).
    pub batch_size: usize,
    /// SGD learning rate (the paper: 1e-3 for its CNN, 5e-3 for transfer models).
    pub lr: f64,
    /// SGD momentum (the paper: none).
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// Stop once an epoch's training accuracy reaches this (the paper: 0.95).
    pub stop_at_train_accuracy: Option<f64>,
    /// Stop after this many epochs without a better selection score (see `select_on`).
    pub patience: Option<usize>,
    /// Which epoch's weights are kept: the one with the best validation loss (the paper) or
    /// validation AUC.
    #[serde(default)]
    pub select_on: SelectOn,
    /// Epochs that must pass before an epoch's weights can be kept (0, the paper: any epoch,
    /// even the first, which can restore a nearly untrained model). When training stops
    /// before, the last weights are kept.
    #[serde(default)]
    pub min_epochs: usize,
    /// Weights of the classes in the loss (`None`: equal).
    pub class_weights: Option<Vec<f64>>,
    /// Backbone training.
    pub backbone: BackboneMode,
    /// Seed of shuffling, dropout and augmentation (per epoch, so resume is exact).
    pub seed: u64,
    /// The optimiser (the paper: SGD).
    #[serde(default)]
    pub optimizer: OptimizerKind,
    /// Epochs of linear warm-up before the schedule (0: none); a cosine schedule then spans
    /// the remaining epochs.
    #[serde(default)]
    pub warmup_epochs: usize,
    /// Label smoothing of the training loss, in [0, 1) (validation loss is plain).
    #[serde(default)]
    pub label_smoothing: f64,
    /// Mixup: each batch is mixed with a shuffled copy of itself, weight λ ~ Beta(α, α).
    #[serde(default)]
    pub mixup_alpha: Option<f64>,
    /// Keep an exponential moving average of every weight (decay per step, e.g. 0.998):
    /// validation, selection and the final weights use the average.
    #[serde(default)]
    pub ema_decay: Option<f64>,
    /// Fine-tune with the backbone's batch-norm statistics frozen (the backbone runs in
    /// inference mode while its weights train).
    #[serde(default)]
    pub freeze_batch_norm: bool,
    /// The backbone's learning rate as a fraction of `lr` (the head's); 1: the same.
    #[serde(default = "one")]
    pub backbone_lr_scale: f64,
}

fn one() -> f64 {
    1.0
}

impl Default for TrainConfig {
    /// The paper's CNN settings: SGD 1e-3, batch 32, stop at 95% train accuracy.
    fn default() -> Self {
        TrainConfig {
            max_epochs: 150,
            batch_size: 32,
            lr: 1e-3,
            momentum: 0.0,
            weight_decay: 0.0,
            schedule: LrSchedule::Constant,
            stop_at_train_accuracy: Some(0.95),
            patience: None,
            select_on: SelectOn::ValLoss,
            min_epochs: 0,
            class_weights: None,
            backbone: BackboneMode::Train,
            seed: 0,
            optimizer: OptimizerKind::Sgd,
            warmup_epochs: 0,
            label_smoothing: 0.0,
            mixup_alpha: None,
            ema_decay: None,
            freeze_batch_norm: false,
            backbone_lr_scale: 1.0,
        }
    }
}

impl TrainConfig {
    /// Checks that the class weights, if any, fit a model with `n_classes` outputs ([`fit`]
    /// calls it; the other settings are checked by [`Validate`]).
    ///
    /// [`fit`]: crate::fit
    pub fn check_classes(&self, n_classes: i64) -> Result<()> {
        match &self.class_weights {
            Some(w) if w.len() as i64 != n_classes => Err(ModelError::config(
                "class_weights",
                format!("need {n_classes} weights, got {}", w.len()),
            )),
            _ => Ok(()),
        }
    }

    /// Learning rate of `epoch` (0-based): `lr·(epoch + 1)/warmup` during the warm-up, then
    /// the schedule counted from the warm-up's end.
    pub fn lr_at(&self, epoch: usize) -> f64 {
        let w = self.warmup_epochs;
        if epoch < w {
            return self.lr * (epoch + 1) as f64 / w as f64;
        }
        let e = epoch - w;
        match self.schedule {
            LrSchedule::Constant => self.lr,
            LrSchedule::Step { every, gamma } => self.lr * gamma.powi((e / every.max(1)) as i32),
            LrSchedule::Cosine => {
                let t = e as f64 / (self.max_epochs - w).max(1) as f64;
                0.5 * self.lr * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }

    pub(crate) fn frozen_at(&self, epoch: usize) -> bool {
        match self.backbone {
            BackboneMode::Train => false,
            BackboneMode::Frozen => true,
            BackboneMode::UnfreezeAfter(k) => epoch < k,
        }
    }
}

impl Validate for TrainConfig {
    type Error = ModelError;

    /// Checks every setting that does not depend on the model.
    fn validate(&self) -> Result<()> {
        if self.max_epochs == 0 || self.batch_size == 0 {
            return Err(ModelError::config(
                "max_epochs/batch_size",
                "must be positive",
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(ModelError::config(
                "lr",
                format!("{} is not a positive rate", self.lr),
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) || self.weight_decay < 0.0 {
            return Err(ModelError::config(
                "momentum/weight_decay",
                "momentum in [0, 1), decay ≥ 0",
            ));
        }
        if let Some(w) = &self.class_weights {
            if w.iter().any(|x| !(*x > 0.0 && x.is_finite())) {
                return Err(ModelError::config(
                    "class_weights",
                    format!("need positive weights, got {w:?}"),
                ));
            }
        }
        if self.patience == Some(0) {
            return Err(ModelError::config("patience", "must be at least 1 epoch"));
        }
        if let LrSchedule::Step { every: 0, .. } = self.schedule {
            return Err(ModelError::config(
                "schedule",
                "step period must be positive",
            ));
        }
        if self.warmup_epochs >= self.max_epochs {
            return Err(ModelError::config(
                "warmup_epochs",
                format!(
                    "{} leaves no epoch of {}",
                    self.warmup_epochs, self.max_epochs
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(ModelError::config(
                "label_smoothing",
                format!("{} is not in [0, 1)", self.label_smoothing),
            ));
        }
        if self
            .mixup_alpha
            .is_some_and(|a| !(a > 0.0 && a.is_finite()))
        {
            return Err(ModelError::config("mixup_alpha", "must be positive"));
        }
        if self.ema_decay.is_some_and(|d| !(d > 0.0 && d < 1.0)) {
            return Err(ModelError::config("ema_decay", "must be in (0, 1)"));
        }
        if !(self.backbone_lr_scale > 0.0 && self.backbone_lr_scale.is_finite()) {
            return Err(ModelError::config("backbone_lr_scale", "must be positive"));
        }
        if let OptimizerKind::AdamW { beta1, beta2, eps } = self.optimizer {
            if !(0.0..1.0).contains(&beta1)
                || !(0.0..1.0).contains(&beta2)
                || eps.is_nan()
                || eps <= 0.0
            {
                return Err(ModelError::config(
                    "optimizer",
                    "AdamW needs betas in [0, 1) and a positive eps",
                ));
            }
        }
        Ok(())
    }
}

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 0-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy (with dropout / augmentation active, as the paper's Keras logs).
    pub train_accuracy: f64,
    /// Validation loss.
    pub val_loss: f64,
    /// Validation accuracy.
    pub val_accuracy: f64,
    /// Validation ROC AUC (computed when weights are selected on it).
    #[serde(default)]
    pub val_auc: Option<f64>,
    /// Learning rate used.
    pub lr: f64,
    /// Wall time of the epoch.
    pub seconds: f64,
}

impl ganaug_train::EpochRecord for EpochRecord {
    fn checked(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("training loss", self.train_loss),
            ("validation loss", self.val_loss),
        ]
    }

    fn summary(&self) -> String {
        format!(
            "loss {:.3} acc {:.3} | val loss {:.3} acc {:.3}",
            self.train_loss, self.train_accuracy, self.val_loss, self.val_accuracy
        )
    }

    fn set_seconds(&mut self, seconds: f64) {
        self.seconds = seconds;
    }
}

/// The outcome of [`fit`](crate::fit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Every epoch, including those before a resume.
    pub history: Vec<EpochRecord>,
    /// Epoch whose weights were restored (best selection score; the last epoch when none was
    /// eligible).
    pub best_epoch: usize,
    /// Its validation loss.
    pub best_val_loss: f64,
    /// Why training ended.
    pub stop: StopReason,
    /// Whether the head trained on cached backbone features.
    pub cached_features: bool,
    /// Seconds spent computing cached features.
    pub feature_seconds: f64,
}

/// Options of [`fit`](crate::fit) that are not hyper-parameters.
#[derive(Default)]
pub struct FitOptions<'a> {
    /// Online augmentation of each training batch (images path only).
    pub augment: Option<&'a Pipeline>,
    /// Run folder (see `ganaug-train`'s `RunDir`): the latest checkpoint (written every epoch,
    /// atomically), `history.json` and, with the `plot` feature, `curves.png`. A folder holding
    /// another run is refused unless `resume`.
    pub out_dir: Option<&'a Path>,
    /// Continue from `out_dir`'s checkpoint when there is one (exactly: same batches, dropout
    /// and augmentation as an uninterrupted run).
    pub resume: bool,
    /// Who hears of each epoch (a console bar: `ganaug_train::ConsoleProgress`); the run
    /// folder's `metrics.jsonl` is written either way.
    pub observer: Option<&'a dyn ganaug_train::Observer>,
}

/// Writes `history.json` and (with the `plot` feature) `curves.png`, loss and accuracy per
/// epoch, into `dir`.
pub fn write_history(report: &FitReport, dir: &Path) -> Result<()> {
    let series = |f: fn(&EpochRecord) -> f64| {
        report
            .history
            .iter()
            .map(|h| (h.epoch as f64, f(h)))
            .collect::<Vec<_>>()
    };
    let curves = Curves {
        file: "curves.png",
        title: "classifier loss and accuracy",
        x_label: "epoch",
        series: vec![
            ("train loss", series(|h| h.train_loss)),
            ("val loss", series(|h| h.val_loss)),
            ("train accuracy", series(|h| h.train_accuracy)),
            ("val accuracy", series(|h| h.val_accuracy)),
        ],
    };
    ganaug_train::write_history(&RunDir::new(dir), report, &curves)?;
    Ok(())
}

/// Per-image class probabilities of a dataset, for the metrics crate.
#[derive(Debug, Clone)]
pub struct Predictions {
    /// `[N, classes]` softmax outputs.
    pub probs: ndarray::Array2<f64>,
    /// True labels.
    pub labels: Vec<usize>,
    /// Image names.
    pub names: Vec<String>,
}

/// A `[N, classes]` tensor of probabilities as a matrix of `f64`.
pub(crate) fn probabilities_matrix(probs: &tch::Tensor) -> Result<ndarray::Array2<f64>> {
    let p = probs.f_to_device(Device::Cpu)?.f_to_kind(Kind::Double)?;
    let p: ndarray::ArrayD<f64> = (&p).try_into()?;
    let got = format!("{:?}", p.shape());
    p.into_dimensionality::<ndarray::Ix2>()
        .map_err(|_| ModelError::Shape {
            what: "class probabilities",
            expected: "[N, classes]".into(),
            got,
        })
}

/// [`predict`] on any [`ImageSource`] (a stream read 64 images at a time, the next batches on
/// a background thread): the same batches, so the same probabilities.
pub fn predict_source(model: &Classifier, data: &dyn ImageSource) -> Result<Predictions> {
    if let Some(d) = data.in_memory() {
        return predict(model, d);
    }
    let batches = ganaug_data::stream::sequential_batches(data.len(), 64);
    let mut parts = Vec::with_capacity(batches.len());
    ganaug_data::stream::read_batches::<ModelError>(data, batches, model.device(), 2, |_, x| {
        parts.push(model.predict_proba(&x, 64)?);
        Ok(())
    })?;
    let probs = if parts.is_empty() {
        ndarray::Array2::zeros((0, model.config().n_classes as usize))
    } else {
        probabilities_matrix(&tch::Tensor::f_cat(&parts, 0)?)?
    };
    let labels: Vec<i64> = Vec::<i64>::try_from(&data.labels().f_to_device(Device::Cpu)?)?;
    Ok(Predictions {
        probs,
        labels: labels.into_iter().map(|l| l as usize).collect(),
        names: data.names().to_vec(),
    })
}

/// Class probabilities of every image of `data` (inference mode).
pub fn predict(model: &Classifier, data: &TensorDataset) -> Result<Predictions> {
    let probs = probabilities_matrix(&model.predict_proba(&data.images, 64)?)?;
    let labels: Vec<i64> = Vec::<i64>::try_from(&data.labels.f_to_device(Device::Cpu)?)?;
    Ok(Predictions {
        probs,
        labels: labels.into_iter().map(|l| l as usize).collect(),
        names: data.names.clone(),
    })
}
