//! What a classifier run checkpoints, to continue exactly: weights, best weights, optimiser
//! state, the weights' moving average, history, stop reason, and the data's fingerprint.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;
use tch::Tensor;

use ganaug_train::{load_checkpoint, save_checkpoint, CheckpointMeta};

use crate::sgd::Sgd;
use crate::train::{EpochRecord, LrSchedule, Optimizer, StopReason, TrainConfig};
use crate::{AdamW, Classifier, ModelConfig, ModelError, Result};

/// The optimiser of a run, built from its [`TrainConfig`].
pub(crate) enum Optim {
    Sgd(Sgd),
    AdamW(AdamW),
}

impl Optim {
    pub(crate) fn new(cfg: &TrainConfig) -> Self {
        match cfg.optimizer {
            Optimizer::Sgd => Optim::Sgd(Sgd::new(cfg.momentum, cfg.weight_decay)),
            Optimizer::AdamW { beta1, beta2, eps } => {
                Optim::AdamW(AdamW::new(beta1, beta2, eps, cfg.weight_decay))
            }
        }
    }

    pub(crate) fn step(&mut self, params: &[(String, Tensor)], lr: f64) -> Result<()> {
        match self {
            Optim::Sgd(o) => o.step(params, lr),
            Optim::AdamW(o) => o.step(params, lr),
        }
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        match self {
            Optim::Sgd(o) => o.state("sgd."),
            Optim::AdamW(o) => o.state("adamw."),
        }
    }

    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        match self {
            Optim::Sgd(o) => o.load_state("sgd.", saved),
            Optim::AdamW(o) => o.load_state("adamw.", saved),
        }
    }
}

/// The checkpoint format of [`crate::fit`] (see `ganaug-train`'s resume policy).
pub const CHECKPOINT_FORMAT: &str = "ganaug-classifier-2";

/// What a checkpoint records as the run's configuration.
#[derive(Serialize)]
struct RunConfig<'a> {
    model: &'a ModelConfig,
    train: &'a TrainConfig,
}

/// Everything needed to continue a run exactly.
pub(crate) struct TrainState {
    pub(crate) history: Vec<EpochRecord>,
    pub(crate) best: HashMap<String, Tensor>,
    pub(crate) best_epoch: usize,
    /// The best selection score so far (lower is better: validation loss, or −AUC).
    pub(crate) best_score: f64,
    pub(crate) opt: Optim,
    /// The moving average of every weight (`ema_decay`), empty without one.
    pub(crate) ema: HashMap<String, Tensor>,
    /// Why the run stopped, once it has.
    pub(crate) stop: Option<StopReason>,
    /// Fingerprint of the run's data (`ganaug_train::data_fingerprint`).
    pub(crate) data: String,
}

impl TrainState {
    /// An empty state: the first finished epoch always becomes the best (its validation loss
    /// beats +∞; a non-finite one stops training), so no copy of the initial weights is kept.
    pub(crate) fn new(cfg: &TrainConfig) -> Self {
        TrainState {
            history: Vec::new(),
            best: HashMap::new(),
            best_epoch: 0,
            best_score: f64::INFINITY,
            opt: Optim::new(cfg),
            ema: HashMap::new(),
            stop: None,
            data: String::new(),
        }
    }

    pub(crate) fn save(&self, model: &Classifier, path: &Path, cfg: &TrainConfig) -> Result<()> {
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
        tensors.extend(self.opt.state());
        tensors.extend(
            self.ema
                .iter()
                .map(|(n, t)| (format!("ema.{n}"), t.shallow_clone())),
        );
        let config = RunConfig {
            model: model.config(),
            train: cfg,
        };
        let meta = CheckpointMeta::new(CHECKPOINT_FORMAT, &config, &self.data)?
            .with_state("history", &self.history)?
            .with_state("best_epoch", &self.best_epoch)?
            .with_state("best_score", &self.best_score)?
            .with_state("stop", &self.stop)?;
        Ok(save_checkpoint(path, &tensors, &meta)?)
    }

    pub(crate) fn restore(
        &mut self,
        model: &mut Classifier,
        path: &Path,
        cfg: &TrainConfig,
    ) -> Result<()> {
        let (saved, meta) = load_checkpoint(path, model.device())?;
        // A resume may raise the epoch limit, except under a cosine schedule (it spans them).
        let may_change: &[&str] = if cfg.schedule == LrSchedule::Cosine {
            &[]
        } else {
            &["/train/max_epochs"]
        };
        let config = RunConfig {
            model: model.config(),
            train: cfg,
        };
        meta.check_resume(path, CHECKPOINT_FORMAT, &config, may_change, &self.data)?;
        self.stop = meta.state("stop", path)?;
        self.history = meta.state("history", path)?;
        self.best_epoch = meta.state("best_epoch", path)?;
        self.best_score = meta.state("best_score", path)?;
        let consistent = self.best_epoch < self.history.len().max(1)
            && self.history.iter().enumerate().all(|(i, h)| h.epoch == i);
        if !consistent {
            return Err(ModelError::Checkpoint {
                path: path.into(),
                reason: "its history and best epoch disagree".into(),
            });
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
        self.opt.load_state(&saved)?;
        self.ema = strip("ema.");
        Ok(())
    }
}
