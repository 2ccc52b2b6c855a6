//! One training loop for every classifier: the paper's rules (stop at 95% train accuracy, keep
//! the weights with the best validation loss) plus the options a user expects.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Reduction, Tensor};

use ganaug_augment::Pipeline;
use ganaug_data::{epoch_seed, io, TensorDataset};
use ganaug_metrics::plot::line_plot;

use crate::model::config_json;
use crate::sgd::Sgd;
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
    /// Stop after this many epochs without a better validation loss.
    pub patience: Option<usize>,
    /// Weights of the classes in the loss (`None`: equal).
    pub class_weights: Option<Vec<f64>>,
    /// Backbone training.
    pub backbone: BackboneMode,
    /// Seed of shuffling, dropout and augmentation (per epoch, so resume is exact).
    pub seed: u64,
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
            class_weights: None,
            backbone: BackboneMode::Train,
            seed: 0,
        }
    }
}

impl TrainConfig {
    fn validate(&self, n_classes: i64) -> Result<()> {
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
            if w.len() as i64 != n_classes || w.iter().any(|x| !(*x > 0.0 && x.is_finite())) {
                return Err(ModelError::config(
                    "class_weights",
                    format!("need {n_classes} positive weights, got {w:?}"),
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
        Ok(())
    }

    /// Learning rate of `epoch` (0-based).
    pub fn lr_at(&self, epoch: usize) -> f64 {
        match self.schedule {
            LrSchedule::Constant => self.lr,
            LrSchedule::Step { every, gamma } => {
                self.lr * gamma.powi((epoch / every.max(1)) as i32)
            }
            LrSchedule::Cosine => {
                let t = epoch as f64 / self.max_epochs as f64;
                0.5 * self.lr * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }

    fn frozen_at(&self, epoch: usize) -> bool {
        match self.backbone {
            BackboneMode::Train => false,
            BackboneMode::Frozen => true,
            BackboneMode::UnfreezeAfter(k) => epoch < k,
        }
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
    /// Learning rate used.
    pub lr: f64,
    /// Wall time of the epoch.
    pub seconds: f64,
}

/// Why training ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// Training accuracy reached the threshold (the paper's rule).
    TrainAccuracy,
    /// Validation loss stopped improving.
    Patience,
    /// `max_epochs` done.
    MaxEpochs,
}

/// The outcome of [`fit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Every epoch, including those before a resume.
    pub history: Vec<EpochRecord>,
    /// Epoch whose weights were restored (best validation loss).
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

/// Options of [`fit`] that are not hyper-parameters.
#[derive(Default)]
pub struct FitOptions<'a> {
    /// Online augmentation of each training batch (images path only).
    pub augment: Option<&'a Pipeline>,
    /// Folder for `checkpoint.safetensors` (every epoch, atomic), `history.json` and
    /// `curves.png`. A folder holding another run is refused unless `resume`.
    pub out_dir: Option<&'a Path>,
    /// Continue from `out_dir`'s checkpoint when there is one (exactly: same batches, dropout
    /// and augmentation as an uninterrupted run).
    pub resume: bool,
    /// Show a progress bar.
    pub progress: bool,
}

struct Split {
    x: Tensor,
    y: Tensor,
}

impl Split {
    fn len(&self) -> i64 {
        self.y.size()[0]
    }
}

/// Trains `model` on `train`, choosing weights by `val` loss, and restores the best weights.
pub fn fit(
    model: &mut Classifier,
    train: &TensorDataset,
    val: &TensorDataset,
    cfg: &TrainConfig,
    opts: &FitOptions<'_>,
) -> Result<FitReport> {
    let n_classes = model.config().n_classes;
    cfg.validate(n_classes)?;
    for (what, d) in [("training set", train), ("validation set", val)] {
        if d.is_empty() {
            return Err(ModelError::config("data", format!("the {what} is empty")));
        }
        if d.class_names.len() as i64 > n_classes {
            return Err(ModelError::config(
                "data",
                format!(
                    "the {what} has {} classes, the model {n_classes}",
                    d.class_names.len()
                ),
            ));
        }
    }
    let device = model.device();
    let weights = match &cfg.class_weights {
        Some(w) => Some(
            Tensor::f_from_slice(&w.iter().map(|&x| x as f32).collect::<Vec<_>>())?.f_to(device)?,
        ),
        None => None,
    };

    let ckpt = opts.out_dir.map(|d| d.join("checkpoint.safetensors"));
    let mut state = TrainState::new();
    state.data = data_fingerprint(train, val, opts.augment);
    if let (Some(dir), Some(ckpt)) = (opts.out_dir, &ckpt) {
        if ckpt.exists() && opts.resume {
            state.restore(model, ckpt, cfg)?;
        } else if ckpt.exists() || dir.join("history.json").exists() {
            return Err(ModelError::config(
                "out_dir",
                format!(
                    "{} already holds a training run: resume it or choose another folder",
                    dir.display()
                ),
            ));
        }
        std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
            path: dir.into(),
            source,
        })?;
    }

    // Cached features when the backbone never trains and nothing changes the images.
    let cache = cfg.backbone == BackboneMode::Frozen && opts.augment.is_none();
    let t0 = Instant::now();
    let (train_s, val_s) = if cache {
        model.set_backbone_trainable(false);
        let feats = |d: &TensorDataset| -> Result<Split> {
            Ok(Split {
                x: model.extract_features(&d.images, 64)?,
                y: d.labels.f_to_device(device)?,
            })
        };
        (feats(train)?, feats(val)?)
    } else {
        let split = |d: &TensorDataset| -> Result<Split> {
            Ok(Split {
                x: d.images.shallow_clone(),
                y: d.labels.f_to_device(device)?,
            })
        };
        (split(train)?, split(val)?)
    };
    let feature_seconds = if cache {
        t0.elapsed().as_secs_f64()
    } else {
        0.0
    };
    let forward = |m: &Classifier, x: &Tensor, train: bool| -> Result<Tensor> {
        if cache {
            m.head_t(x, train)
        } else {
            m.forward_t(x, train)
        }
    };

    let bar = progress_bar(opts.progress, cfg.max_epochs, state.history.len(), model);
    let mut stop = state.stop.clone().unwrap_or(StopReason::MaxEpochs);
    state.sgd.momentum = cfg.momentum;
    state.sgd.weight_decay = cfg.weight_decay;
    // A resumed run that had already stopped stays stopped.
    while state.stop.is_none() && state.history.len() < cfg.max_epochs {
        let epoch = state.history.len();
        if !cache {
            model.set_backbone_trainable(!cfg.frozen_at(epoch));
        }
        let started = Instant::now();
        let seed = epoch_seed(cfg.seed, epoch as u64);
        tch::manual_seed(seed as i64);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let perm = {
            use rand::seq::SliceRandom;
            let mut p: Vec<i64> = (0..train_s.len()).collect();
            p.shuffle(&mut rng);
            p
        };
        let lr = cfg.lr_at(epoch);
        let params = model.trainable_variables();
        let (mut loss_sum, mut weight_sum, mut correct) = (0.0, 0.0, 0i64);
        for (b, idx) in perm.chunks(cfg.batch_size).enumerate() {
            let idx_t = Tensor::from_slice(idx);
            let mut x = train_s
                .x
                .f_index_select(0, &idx_t.f_to(train_s.x.device())?)?;
            if let Some(p) = opts.augment {
                x = p.apply(&x, &mut rng)?;
            }
            let y = train_s.y.f_index_select(0, &idx_t.f_to(device)?)?;
            let logits = forward(model, &x, true)?;
            let (sum, weight) = weighted_loss_sum(&logits, &y, weights.as_ref())?;
            let loss = sum.f_div_scalar(weight)?;
            let value = loss.f_double_value(&[])?;
            if !value.is_finite() {
                return Err(ModelError::NonFinite {
                    phase: "training",
                    value,
                    epoch,
                    batch: b,
                });
            }
            Sgd::zero_grad(&params)?;
            loss.f_backward()?;
            state.sgd.step(&params, lr)?;
            loss_sum += value * weight;
            weight_sum += weight;
            correct += count_correct(&logits, &y)?;
        }
        let n = train_s.len() as f64;
        let (val_loss, val_correct) = evaluate_split(model, &val_s, weights.as_ref(), &forward)?;
        let rec = EpochRecord {
            epoch,
            train_loss: loss_sum / weight_sum,
            train_accuracy: correct as f64 / n,
            val_loss,
            val_accuracy: val_correct as f64 / val_s.len() as f64,
            lr,
            seconds: started.elapsed().as_secs_f64(),
        };
        if !rec.val_loss.is_finite() {
            return Err(ModelError::NonFinite {
                phase: "validation",
                value: rec.val_loss,
                epoch,
                batch: 0,
            });
        }
        if rec.val_loss < state.best_val_loss {
            state.best_val_loss = rec.val_loss;
            state.best_epoch = epoch;
            state.best = snapshot(model)?;
        }
        bar.set_message(format!(
            "loss {:.3} acc {:.3} | val loss {:.3} acc {:.3}",
            rec.train_loss, rec.train_accuracy, rec.val_loss, rec.val_accuracy
        ));
        bar.inc(1);
        let reached = cfg
            .stop_at_train_accuracy
            .is_some_and(|t| rec.train_accuracy >= t);
        state.history.push(rec);
        if reached {
            state.stop = Some(StopReason::TrainAccuracy);
        } else if cfg
            .patience
            .is_some_and(|p| epoch.saturating_sub(state.best_epoch) >= p)
        {
            state.stop = Some(StopReason::Patience);
        }
        if let Some(ckpt) = &ckpt {
            state.save(model, ckpt, cfg)?;
        }
        if let Some(s) = &state.stop {
            stop = s.clone();
        }
    }
    bar.finish_and_clear();
    restore(model, &state.best)?;
    let report = FitReport {
        history: state.history,
        best_epoch: state.best_epoch,
        best_val_loss: state.best_val_loss,
        stop,
        cached_features: cache,
        feature_seconds,
    };
    if let Some(dir) = opts.out_dir {
        write_history(&report, dir)?;
    }
    Ok(report)
}

fn evaluate_split(
    model: &Classifier,
    s: &Split,
    weights: Option<&Tensor>,
    forward: &dyn Fn(&Classifier, &Tensor, bool) -> Result<Tensor>,
) -> Result<(f64, i64)> {
    tch::no_grad(|| {
        let (mut loss, mut weight, mut correct, mut i) = (0.0, 0.0, 0, 0);
        while i < s.len() {
            let b = 64.min(s.len() - i);
            let x = s.x.f_narrow(0, i, b)?;
            let y = s.y.f_narrow(0, i, b)?;
            let logits = forward(model, &x, false)?;
            let (sum, w) = weighted_loss_sum(&logits, &y, weights)?;
            loss += sum.f_double_value(&[])?;
            weight += w;
            correct += count_correct(&logits, &y)?;
            i += b;
        }
        Ok((loss / weight, correct))
    })
}

/// How many rows of `logits` have their largest value at the label.
fn count_correct(logits: &Tensor, y: &Tensor) -> Result<i64> {
    Ok(logits
        .f_argmax(-1, false)?
        .f_eq_tensor(y)?
        .f_sum(Kind::Int64)?
        .f_int64_value(&[])?)
}

/// Sum of the (class-weighted) cross-entropy over a batch and the sum of its weights, so that
/// means over a whole set weight every image the same whatever the batch composition.
fn weighted_loss_sum(
    logits: &Tensor,
    y: &Tensor,
    weights: Option<&Tensor>,
) -> Result<(Tensor, f64)> {
    let sum = logits.f_cross_entropy_loss::<&Tensor>(y, weights, Reduction::Sum, -100, 0.0)?;
    let weight = match weights {
        Some(w) => w
            .f_index_select(0, y)?
            .f_sum(Kind::Double)?
            .f_double_value(&[])?,
        None => y.size()[0] as f64,
    };
    Ok((sum, weight))
}

/// What a checkpoint was trained on, so that a resume with other data is refused.
fn data_fingerprint(
    train: &TensorDataset,
    val: &TensorDataset,
    augment: Option<&Pipeline>,
) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for d in [train, val] {
        d.names.hash(&mut h);
        d.class_counts().hash(&mut h);
    }
    format!(
        "train {} val {} names {:016x} augment {:?}",
        train.len(),
        val.len(),
        h.finish(),
        augment
    )
}

fn progress_bar(show: bool, total: usize, done: usize, model: &Classifier) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    bar.set_position(done as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] epoch {pos}/{len} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(model.config().kind.name());
    bar
}

fn snapshot(model: &Classifier) -> Result<HashMap<String, Tensor>> {
    model
        .var_store()
        .variables()
        .into_iter()
        .map(|(n, t)| Ok((n, t.f_detach_copy()?)))
        .collect()
}

fn restore(model: &Classifier, saved: &HashMap<String, Tensor>) -> Result<()> {
    model.copy_from(saved, Path::new("<best weights in memory>"), &[])
}

/// Everything needed to continue a run exactly.
struct TrainState {
    history: Vec<EpochRecord>,
    best: HashMap<String, Tensor>,
    best_epoch: usize,
    best_val_loss: f64,
    sgd: Sgd,
    /// Why the run stopped, once it has.
    stop: Option<StopReason>,
    /// [`data_fingerprint`] of the run's data.
    data: String,
}

impl TrainState {
    /// An empty state: the first finished epoch always becomes the best (its validation loss
    /// beats +∞; a non-finite one stops training), so no copy of the initial weights is kept.
    fn new() -> Self {
        TrainState {
            history: Vec::new(),
            best: HashMap::new(),
            best_epoch: 0,
            best_val_loss: f64::INFINITY,
            sgd: Sgd::default(),
            stop: None,
            data: String::new(),
        }
    }

    fn save(&self, model: &Classifier, path: &Path, cfg: &TrainConfig) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> = model
            .var_store()
            .variables()
            .into_iter()
            .map(|(n, t)| (format!("model.{n}"), t))
            .collect();
        tensors.extend(
            self.best
                .iter()
                .map(|(n, t)| (format!("best.{n}"), t.shallow_clone())),
        );
        tensors.extend(self.sgd.state("sgd."));
        let meta = HashMap::from([
            (
                "format".to_string(),
                "ganaug-classifier-train-1".to_string(),
            ),
            ("model".to_string(), config_json(model.config())?),
            ("train".to_string(), config_json(cfg)?),
            ("history".to_string(), config_json(&self.history)?),
            ("best_epoch".to_string(), self.best_epoch.to_string()),
            ("best_val_loss".to_string(), self.best_val_loss.to_string()),
            ("stop".to_string(), config_json(&self.stop)?),
            ("data".to_string(), self.data.clone()),
        ]);
        Ok(io::save_tensors(path, &tensors, &meta)?)
    }

    fn restore(&mut self, model: &mut Classifier, path: &Path, cfg: &TrainConfig) -> Result<()> {
        let bad = |reason: String| ModelError::Checkpoint {
            path: path.into(),
            reason,
        };
        let (saved, meta) = io::load_tensors(path, model.device())?;
        let field = |k: &str| {
            meta.get(k)
                .ok_or_else(|| bad(format!("metadata {k} missing")))
        };
        if field("model")? != &config_json(model.config())? {
            return Err(bad(format!(
                "it was written for another model: {}",
                field("model")?
            )));
        }
        let mut saved_cfg: TrainConfig =
            serde_json::from_str(field("train")?).map_err(|e| bad(e.to_string()))?;
        if cfg.schedule != LrSchedule::Cosine {
            saved_cfg.max_epochs = cfg.max_epochs; // the only setting a resume may change
        }
        if &saved_cfg != cfg {
            return Err(bad("it was written with other training settings".into()));
        }
        if field("data")? != &self.data {
            return Err(bad(format!(
                "it was trained on other data ({}; now {})",
                field("data")?,
                self.data
            )));
        }
        self.stop = serde_json::from_str(field("stop")?).map_err(|e| bad(e.to_string()))?;
        self.history = serde_json::from_str(field("history")?).map_err(|e| bad(e.to_string()))?;
        self.best_epoch = field("best_epoch")?
            .parse()
            .map_err(|_| bad("bad best_epoch".into()))?;
        self.best_val_loss = field("best_val_loss")?
            .parse()
            .map_err(|_| bad("bad best_val_loss".into()))?;
        let consistent = self.best_epoch < self.history.len().max(1)
            && self.history.iter().enumerate().all(|(i, h)| h.epoch == i);
        if !consistent {
            return Err(bad("its history and best epoch disagree".into()));
        }
        let strip = |prefix: &str| -> HashMap<String, Tensor> {
            saved
                .iter()
                .filter_map(|(k, t)| {
                    k.strip_prefix(prefix)
                        .map(|n| (n.to_string(), t.shallow_clone()))
                })
                .collect()
        };
        self.best = strip("best.");
        model.copy_from(&self.best, path, &[])?; // checks names and shapes of the best weights
        model.copy_from(&strip("model."), path, &[])?;
        self.sgd.load_state("sgd.", &saved)?;
        Ok(())
    }
}

/// Writes `history.json` and `curves.png` (loss and accuracy per epoch) into `dir`.
pub fn write_history(report: &FitReport, dir: &Path) -> Result<()> {
    let json = serde_json::to_vec_pretty(report)
        .map_err(|e| ModelError::config("history", e.to_string()))?;
    io::write_atomic(&dir.join("history.json"), &json)?;
    let series = |f: fn(&EpochRecord) -> f64| {
        report
            .history
            .iter()
            .map(|h| (h.epoch as f64, f(h)))
            .collect::<Vec<_>>()
    };
    line_plot(
        &dir.join("curves.png"),
        "classifier loss and accuracy",
        "epoch",
        &[
            ("train loss", series(|h| h.train_loss)),
            ("val loss", series(|h| h.val_loss)),
            ("train accuracy", series(|h| h.train_accuracy)),
            ("val accuracy", series(|h| h.val_accuracy)),
        ],
    )?;
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

/// Class probabilities of every image of `data` (inference mode).
pub fn predict(model: &Classifier, data: &TensorDataset) -> Result<Predictions> {
    let probs = model
        .predict_proba(&data.images, 64)?
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Double)?;
    let probs: ndarray::ArrayD<f64> = (&probs).try_into()?;
    let probs = probs
        .into_dimensionality::<ndarray::Ix2>()
        .map_err(|e| ModelError::config("predict", e.to_string()))?;
    let labels: Vec<i64> = Vec::<i64>::try_from(&data.labels.f_to_device(Device::Cpu)?)?;
    Ok(Predictions {
        probs,
        labels: labels.into_iter().map(|l| l as usize).collect(),
        names: data.names.clone(),
    })
}
