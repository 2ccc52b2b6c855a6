//! What a classifier run checkpoints, to continue exactly: weights, best weights, optimiser
//! state, the weights' moving average, history, stop reason, and the data's fingerprint.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::Tensor;

use ganaug_train::{
    load_checkpoint, optim, save_checkpoint, AdamW, CheckpointMeta, Optimizer, Progress, RunConfig,
    Sgd,
};

use crate::train::{EpochRecord, LrSchedule, OptimizerKind, TrainConfig};
use crate::{Classifier, ModelConfig, ModelError, Result};

/// The checkpoint format of [`crate::fit`] (see `ganaug-train`'s resume policy). Version 3:
/// the optimiser's state under `opt.` in `ganaug-train`'s one format.
pub const CHECKPOINT_FORMAT: &str = "ganaug-classifier-3";

/// Where the optimiser's state sits in a checkpoint.
const OPT: &str = "opt";

/// What a checkpoint records as the run's configuration: a resume may raise the epoch limit,
/// except under a cosine schedule (it spans them).
#[derive(Serialize, Deserialize)]
struct ClassifierRun {
    model: ModelConfig,
    train: TrainConfig,
}

impl RunConfig for ClassifierRun {
    fn fixed(&self) -> Self {
        let mut train = self.train.clone();
        if train.schedule != LrSchedule::Cosine {
            train.max_epochs = 0;
        }
        ClassifierRun {
            model: self.model.clone(),
            train,
        }
    }
}

/// The optimiser a [`TrainConfig`] asks for.
pub(crate) fn optimizer(cfg: &TrainConfig) -> Box<dyn Optimizer> {
    match cfg.optimizer {
        OptimizerKind::Sgd => Box::new(Sgd::new(cfg.lr, cfg.momentum, cfg.weight_decay)),
        OptimizerKind::AdamW { beta1, beta2, eps } => {
            Box::new(AdamW::new(cfg.lr, beta1, beta2, eps, cfg.weight_decay))
        }
    }
}

/// Everything besides the history needed to continue a run exactly.
pub(crate) struct TrainState {
    pub(crate) best: HashMap<String, Tensor>,
    pub(crate) best_epoch: usize,
    /// The best selection score so far (lower is better: validation loss, or −AUC).
    pub(crate) best_score: f64,
    pub(crate) opt: Box<dyn Optimizer>,
    /// The moving average of every weight (`ema_decay`), empty without one.
    pub(crate) ema: HashMap<String, Tensor>,
    /// Fingerprint of the run's data (`ganaug_train::data_fingerprint_with`).
    pub(crate) data: String,
}

impl TrainState {
    /// An empty state: the first finished epoch always becomes the best (its validation loss
    /// beats +∞; a non-finite one stops training), so no copy of the initial weights is kept.
    pub(crate) fn new(cfg: &TrainConfig, data: String) -> Self {
        TrainState {
            best: HashMap::new(),
            best_epoch: 0,
            best_score: f64::INFINITY,
            opt: optimizer(cfg),
            ema: HashMap::new(),
            data,
        }
    }

    pub(crate) fn save(
        &self,
        model: &Classifier,
        path: &Path,
        cfg: &TrainConfig,
        progress: &Progress<EpochRecord>,
    ) -> Result<()> {
        let prefixed = |prefix: &str, m: &HashMap<String, Tensor>| -> Vec<(String, Tensor)> {
            m.iter()
                .map(|(n, t)| (format!("{prefix}.{n}"), t.shallow_clone()))
                .collect()
        };
        let mut tensors: Vec<(String, Tensor)> = model
            .var_store()
            .variables()
            .into_iter()
            .map(|(n, t)| (format!("model.{n}"), t))
            .collect();
        tensors.extend(prefixed("best", &self.best));
        tensors.extend(optim::save_state(self.opt.as_ref(), OPT));
        tensors.extend(prefixed("ema", &self.ema));
        let config = ClassifierRun {
            model: model.config().clone(),
            train: cfg.clone(),
        };
        let meta = CheckpointMeta::new(CHECKPOINT_FORMAT, &config, &self.data)?
            .with_state("history", &progress.history)?
            .with_state("best_epoch", &self.best_epoch)?
            .with_state("best_score", &self.best_score)?
            .with_state("stop", &progress.stop)?;
        Ok(save_checkpoint(path, &tensors, &meta)?)
    }

    pub(crate) fn restore(
        &mut self,
        model: &mut Classifier,
        path: &Path,
        cfg: &TrainConfig,
    ) -> Result<Progress<EpochRecord>> {
        let (saved, meta) = load_checkpoint(path, model.device())?;
        let config = ClassifierRun {
            model: model.config().clone(),
            train: cfg.clone(),
        };
        meta.check_resume(path, CHECKPOINT_FORMAT, &config, &self.data)?;
        let progress: Progress<EpochRecord> = Progress {
            history: meta.state("history", path)?,
            stop: meta.state("stop", path)?,
        };
        self.best_epoch = meta.state("best_epoch", path)?;
        self.best_score = meta.state("best_score", path)?;
        let consistent = self.best_epoch < progress.history.len().max(1)
            && progress
                .history
                .iter()
                .enumerate()
                .all(|(i, h)| h.epoch == i);
        if !consistent {
            return Err(ModelError::Checkpoint {
                path: path.into(),
                reason: "its history and best epoch disagree".into(),
            });
        }
        let strip = |prefix: &str| -> HashMap<String, Tensor> {
            let start = format!("{prefix}.");
            saved
                .iter()
                .filter_map(|(k, t)| {
                    k.strip_prefix(&start)
                        .map(|n| (n.to_string(), t.shallow_clone()))
                })
                .collect()
        };
        self.best = strip("best");
        model.copy_from(&self.best, path, &[])?; // checks names and shapes of the best weights
        model.copy_from(&strip("model"), path, &[])?;
        optim::load_state(self.opt.as_mut(), OPT, &saved)?;
        self.ema = strip("ema");
        Ok(progress)
    }
}
