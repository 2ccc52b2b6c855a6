//! The classifier's training: [`fit`], a short adapter that runs `ganaug-train`'s epoch loop
//! over the classifier's step ([`ClassifierStep`]: shuffled, optionally augmented and mixed-up
//! mini-batches, validation, best-weight selection and the paper's stop rules).

use std::path::Path;

use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use ganaug_augment::Pipeline;
use ganaug_data::stream::{class_counts, for_each_batch, read_batches, BatchPlan, ImageSource};
use ganaug_data::{BatchOrder, TensorDataset};
use ganaug_train::{
    data_fingerprint_with, zero_grad, CheckpointPolicy, EpochLoop, IntoChecked, KeepCheckpoints,
    Progress, RunDir, Silent, StopReason, TrainStep,
};

use crate::fit_steps::{
    copy_of, count_correct, mix_up, restore, snapshot, stop_rule, update_ema, weighted_loss_sum,
};
use crate::state::TrainState;
use crate::train::write_history;
use crate::{
    BackboneMode, Classifier, EpochRecord, FitOptions, FitReport, ModelError, Result, SelectOn,
    TrainConfig, TrainableParts,
};

/// Trains `model` on `train`, choosing weights by `val` (loss or AUC), and restores the best
/// weights. With `opts.out_dir` the run checkpoints every epoch (the latest kept), resumes
/// from its folder when `opts.resume`, and writes `history.json` and `metrics.jsonl` there.
///
/// `cfg` is a checked configuration, or a plain one that is checked here (by value or by
/// reference).
pub fn fit(
    model: &mut Classifier,
    train: &TensorDataset,
    val: &TensorDataset,
    cfg: impl IntoChecked<TrainConfig>,
    opts: &FitOptions<'_>,
) -> Result<FitReport> {
    fit_source(model, train, val, cfg, opts)
}

/// [`fit`] on any [`ImageSource`]: in memory, or streamed from the decode cache
/// ([`ganaug_data::StreamDataset`]: each batch read from disk on a background thread while the
/// previous one trains). The same data gives the same batches in the same order, so the same
/// run, and a run resumes across the switch (the fingerprint is of the images, not of where
/// they are).
pub fn fit_source(
    model: &mut Classifier,
    train: &dyn ImageSource,
    val: &dyn ImageSource,
    cfg: impl IntoChecked<TrainConfig>,
    opts: &FitOptions<'_>,
) -> Result<FitReport> {
    let cfg = &*cfg.into_checked()?;
    check_inputs(model, train, val, cfg)?;
    let run = opts.out_dir.map(RunDir::new);
    let data = match &run {
        Some(_) => data_fingerprint_with(&[train, val], &opts.augment)?,
        None => String::new(),
    };
    let name = model.config().kind.name();
    let prep = prepare(model, train, val, cfg, opts.augment)?;
    let mut step = ClassifierStep {
        state: TrainState::new(cfg, data),
        model,
        prep,
        cfg,
        augment: opts.augment,
    };
    let mut progress = Progress::default();
    let stop = EpochLoop {
        name,
        seed: cfg.seed,
        epochs: cfg.max_epochs,
        run: run.as_ref(),
        resume: opts.resume,
        subdirs: &[],
        checkpoints: CheckpointPolicy {
            every: 1,
            keep: KeepCheckpoints::Latest(1),
        },
        observer: opts.observer.unwrap_or(&Silent),
    }
    .run(&mut step, &mut progress)?;
    let report = step.finish(progress, stop)?;
    if let Some(dir) = opts.out_dir {
        write_history(&report, dir)?;
    }
    Ok(report)
}

fn check_inputs(
    model: &Classifier,
    train: &dyn ImageSource,
    val: &dyn ImageSource,
    cfg: &TrainConfig,
) -> Result<()> {
    let n_classes = model.config().n_classes;
    cfg.check_classes(n_classes)?;
    let bad = |reason: String| Err(ModelError::Inputs { reason });
    if cfg.select_on == SelectOn::ValAuc
        && class_counts(val)?.iter().filter(|&&c| c > 0).count() < 2
    {
        return bad(
            "selecting weights on validation AUC needs at least two classes in the validation set"
                .into(),
        );
    }
    for (what, d) in [("training set", train), ("validation set", val)] {
        if d.is_empty() {
            return bad(format!("the {what} is empty"));
        }
        if d.class_names().len() as i64 > n_classes {
            return bad(format!(
                "the {what} has {} classes, the model {n_classes}",
                d.class_names().len()
            ));
        }
    }
    Ok(())
}

/// Inputs and labels of one split, on the model's device (images, or cached features), or a
/// stream of images read batch by batch.
struct Split<'a> {
    x: Inputs<'a>,
    y: Tensor,
}

/// Where a split's inputs are.
enum Inputs<'a> {
    /// In memory: images or cached features.
    Tensor(Tensor),
    /// Images streamed from disk.
    Stream(&'a dyn ImageSource),
}

/// Images per forward pass of validation and feature caching.
const EVAL_BATCH: i64 = 64;

impl Split<'_> {
    fn len(&self) -> i64 {
        self.y.size()[0]
    }
}

/// What every epoch uses: the splits, the class weights, and whether the head trains on cached
/// backbone features.
struct Prepared<'a> {
    train: Split<'a>,
    val: Split<'a>,
    weights: Option<Tensor>,
    cache: bool,
    feature_seconds: f64,
    /// Train with the backbone's batch-norm statistics frozen.
    freeze_bn: bool,
}

impl Prepared<'_> {
    fn forward(&self, m: &Classifier, x: &Tensor, train: bool) -> Result<Tensor> {
        if self.cache {
            m.head_t(x, train)
        } else if train && self.freeze_bn {
            m.forward_frozen_bn(x, true)
        } else {
            m.forward_t(x, train)
        }
    }
}

/// The splits on the model's device, as cached backbone features when the backbone never
/// trains and nothing changes the images (a stream's computed batch by batch: features are
/// small, images are not).
fn prepare<'a>(
    model: &mut Classifier,
    train: &'a dyn ImageSource,
    val: &'a dyn ImageSource,
    cfg: &TrainConfig,
    augment: Option<&Pipeline>,
) -> Result<Prepared<'a>> {
    let device = model.device();
    let weights = match &cfg.class_weights {
        Some(w) => Some(
            Tensor::f_from_slice(&w.iter().map(|&x| x as f32).collect::<Vec<_>>())?.f_to(device)?,
        ),
        None => None,
    };
    let cache = cfg.backbone == BackboneMode::Frozen && augment.is_none();
    let t0 = std::time::Instant::now();
    if cache {
        model.set_backbone_trainable(false);
    }
    let split = |d: &'a dyn ImageSource| -> Result<Split<'a>> {
        let x = match (cache, d.in_memory()) {
            (true, Some(m)) => Inputs::Tensor(model.extract_features(&m.images, EVAL_BATCH)?),
            (false, Some(m)) => Inputs::Tensor(m.images.shallow_clone()),
            (true, None) => {
                let mut parts = Vec::new();
                let plan = BatchPlan::new(EVAL_BATCH as usize, BatchOrder::Sequential, device);
                for_each_batch::<ModelError>(d, plan, |b| {
                    parts.push(model.extract_features(&b.images, EVAL_BATCH)?);
                    Ok(())
                })?;
                Inputs::Tensor(Tensor::f_cat(&parts, 0)?)
            }
            (false, None) => Inputs::Stream(d),
        };
        Ok(Split {
            x,
            y: d.labels().f_to_device(device)?,
        })
    };
    let (train, val) = (split(train)?, split(val)?);
    let feature_seconds = if cache {
        t0.elapsed().as_secs_f64()
    } else {
        0.0
    };
    Ok(Prepared {
        train,
        val,
        weights,
        cache,
        feature_seconds,
        freeze_bn: cfg.freeze_batch_norm,
    })
}

/// The classifier's side of the epoch loop.
struct ClassifierStep<'a> {
    model: &'a mut Classifier,
    prep: Prepared<'a>,
    cfg: &'a TrainConfig,
    augment: Option<&'a Pipeline>,
    state: TrainState,
}

/// A batch's statistics, summed on the device over an epoch: no host synchronisation per step
/// (the non-finite check happens at the epoch's end).
struct Sums {
    loss: Tensor,
    weight: Tensor,
    correct: Tensor,
}

impl Sums {
    fn zeros(device: tch::Device) -> Result<Self> {
        let zero = || Tensor::f_zeros([], (Kind::Double, device));
        Ok(Sums {
            loss: zero()?,
            weight: zero()?,
            correct: zero()?,
        })
    }
}

impl ClassifierStep<'_> {
    /// One mini-batch: its images (augmented), labels, optional mixup, a step of the head at
    /// `lr` and of the backbone at its scaled rate, the moving average; statistics into `sums`.
    fn batch(
        &mut self,
        (idx, mut x): (&[i64], Tensor),
        lr: f64,
        mixup: Option<&rand_distr::Beta<f64>>,
        parts: &TrainableParts,
        rng: &mut ChaCha8Rng,
        sums: &mut Sums,
    ) -> Result<()> {
        let device = self.model.device();
        let idx_t = Tensor::from_slice(idx);
        let train = &self.prep.train;
        if let Some(p) = self.augment {
            x = p.apply(&x, rng)?;
        }
        let y = train.y.f_index_select(0, &idx_t.f_to(device)?)?;
        let (x, mix) = match mixup {
            Some(beta) => {
                let (x, lam, y2) = mix_up(&x, &y, beta, rng)?;
                (x, Some((lam, y2)))
            }
            None => (x, None),
        };
        let logits = self.prep.forward(self.model, &x, true)?;
        let (sum, weight) = self.loss_sums(&logits, &y, mix.as_ref())?;
        let loss = sum.f_div(&weight.f_to_kind(sum.kind())?)?;
        zero_grad(&parts.all)?;
        loss.f_backward()?;
        let opt = self.state.opt.as_mut();
        opt.set_learning_rate(lr);
        opt.step(&parts.head)?;
        opt.set_learning_rate(lr * self.cfg.backbone_lr_scale);
        opt.step(&parts.backbone)?;
        if let Some(d) = self.cfg.ema_decay {
            update_ema(&mut self.state.ema, self.model, d)?;
        }
        sums.loss = sums.loss.f_add(&sum.f_detach()?.f_to_kind(Kind::Double)?)?;
        sums.weight = sums.weight.f_add(&weight)?;
        sums.correct = sums.correct.f_add(&count_correct(&logits, &y)?)?;
        Ok(())
    }

    /// The (mixed) training loss sum of a batch and its weight.
    fn loss_sums(
        &self,
        logits: &Tensor,
        y: &Tensor,
        mix: Option<&(f64, Tensor)>,
    ) -> Result<(Tensor, Tensor)> {
        let (w, smooth) = (self.prep.weights.as_ref(), self.cfg.label_smoothing);
        match mix {
            Some((lam, y2)) => {
                let (s1, w1) = weighted_loss_sum(logits, y, w, smooth)?;
                let (s2, w2) = weighted_loss_sum(logits, y2, w, smooth)?;
                Ok((
                    s1.f_mul_scalar(*lam)?.f_add(&s2.f_mul_scalar(1.0 - lam)?)?,
                    w1.f_mul_scalar(*lam)?.f_add(&w2.f_mul_scalar(1.0 - lam)?)?,
                ))
            }
            None => weighted_loss_sum(logits, y, w, smooth),
        }
    }

    /// The run's outcome: the best weights restored (or, when no epoch was eligible, the last
    /// ones or their moving average).
    fn finish(self, progress: Progress<EpochRecord>, stop: StopReason) -> Result<FitReport> {
        let mut state = self.state;
        if state.best.is_empty() {
            // No epoch was eligible (training stopped before `min_epochs`).
            state.best_epoch = progress.history.len().saturating_sub(1);
            if !state.ema.is_empty() {
                restore(self.model, &state.ema)?;
            }
        } else {
            restore(self.model, &state.best)?;
        }
        let best_val_loss = progress
            .history
            .get(state.best_epoch)
            .map_or(f64::INFINITY, |h| h.val_loss);
        Ok(FitReport {
            history: progress.history,
            best_epoch: state.best_epoch,
            best_val_loss,
            stop,
            cached_features: self.prep.cache,
            feature_seconds: self.prep.feature_seconds,
        })
    }
}

impl TrainStep for ClassifierStep<'_> {
    type Record = EpochRecord;
    type Error = ModelError;

    /// Shuffled mini-batches (the loop seeds the epoch, so a resume replays it exactly), each
    /// optionally augmented and mixed up, an optimiser step per batch.
    fn train_epoch(
        &mut self,
        epoch: usize,
        _seed: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<EpochRecord> {
        if !self.prep.cache {
            self.model
                .set_backbone_trainable(!self.cfg.frozen_at(epoch));
        }
        if self.cfg.ema_decay.is_some() && self.state.ema.is_empty() {
            self.state.ema = snapshot(self.model)?;
        }
        let perm = {
            use rand::seq::SliceRandom;
            let mut p: Vec<i64> = (0..self.prep.train.len()).collect();
            p.shuffle(rng);
            p
        };
        let lr = self.cfg.lr_at(epoch);
        let mixup = self
            .cfg
            .mixup_alpha
            .map(|a| rand_distr::Beta::new(a, a))
            .transpose()
            .map_err(|e| ModelError::config("mixup_alpha", e.to_string()))?;
        let parts = self.model.trainable_parts();
        let mut sums = Sums::zeros(self.model.device())?;
        let inputs = match &self.prep.train.x {
            Inputs::Tensor(t) => Ok(t.shallow_clone()),
            Inputs::Stream(src) => Err(*src),
        };
        match inputs {
            Ok(x) => {
                for idx in perm.chunks(self.cfg.batch_size) {
                    let idx_t = Tensor::from_slice(idx).f_to(x.device())?;
                    let xb = x.f_index_select(0, &idx_t)?;
                    self.batch((idx, xb), lr, mixup.as_ref(), &parts, rng, &mut sums)?;
                }
            }
            Err(src) => {
                let chunks = perm
                    .chunks(self.cfg.batch_size)
                    .map(<[i64]>::to_vec)
                    .collect();
                let device = self.model.device();
                read_batches::<ModelError>(src, chunks, device, 2, |idx, xb| {
                    self.batch((&idx, xb), lr, mixup.as_ref(), &parts, rng, &mut sums)
                })?;
            }
        }
        let n = self.prep.train.len() as f64;
        Ok(EpochRecord {
            epoch,
            train_loss: sums.loss.f_double_value(&[])? / sums.weight.f_double_value(&[])?,
            train_accuracy: sums.correct.f_double_value(&[])? / n,
            val_loss: f64::NAN,
            val_accuracy: f64::NAN,
            val_auc: None,
            lr,
            seconds: 0.0,
        })
    }

    /// The validation pass, on the moving average when there is one (swapped in, then the
    /// trained weights back).
    fn validate(&mut self, rec: &mut EpochRecord) -> Result<()> {
        if !rec.train_loss.is_finite() {
            return Ok(()); // the loop stops on it: nothing to validate
        }
        let with_probs = self.cfg.select_on == SelectOn::ValAuc;
        let current = if self.state.ema.is_empty() {
            None
        } else {
            let c = snapshot(self.model)?;
            restore(self.model, &self.state.ema)?;
            Some(c)
        };
        let evaluated = evaluate_split(self.model, &self.prep, with_probs);
        if let Some(c) = &current {
            restore(self.model, c)?;
        }
        let (val_loss, val_correct, val_probs) = evaluated?;
        rec.val_auc = val_probs.map(|p| auc(&self.prep.val, &p)).transpose()?;
        rec.val_loss = val_loss;
        rec.val_accuracy = val_correct as f64 / self.prep.val.len() as f64;
        Ok(())
    }

    /// Keeps the epoch's weights when they are the best so far; the paper's stop rules.
    fn end_epoch(&mut self, progress: &Progress<EpochRecord>) -> Result<Option<StopReason>> {
        let Some(rec) = progress.history.last() else {
            return Ok(None);
        };
        let state = &mut self.state;
        let score = match self.cfg.select_on {
            SelectOn::ValLoss => rec.val_loss,
            SelectOn::ValAuc => -rec.val_auc.unwrap_or(f64::NEG_INFINITY),
        };
        if rec.epoch >= self.cfg.min_epochs && score < state.best_score {
            state.best_score = score;
            state.best_epoch = rec.epoch;
            // with a moving average, it is what was validated
            state.best = if state.ema.is_empty() {
                snapshot(self.model)?
            } else {
                copy_of(&state.ema)?
            };
        }
        Ok(stop_rule(self.cfg, rec, state.best_epoch))
    }

    fn save_checkpoint(&self, path: &Path, progress: &Progress<EpochRecord>) -> Result<()> {
        self.state.save(self.model, path, self.cfg, progress)
    }

    fn restore(&mut self, path: &Path) -> Result<Progress<EpochRecord>> {
        self.state.restore(self.model, path, self.cfg)
    }
}

/// Validation loss, correct count and, when asked for, class probabilities `[N, classes]`.
fn evaluate_split(
    model: &Classifier,
    prep: &Prepared,
    with_probs: bool,
) -> Result<(f64, i64, Option<Tensor>)> {
    let s = &prep.val;
    tch::no_grad(|| {
        let (mut loss, mut weight, mut correct, mut i) = (0.0, 0.0, 0, 0);
        let mut probs = Vec::new();
        let mut inputs = match &s.x {
            Inputs::Stream(src) => Ok(src.reader()?),
            Inputs::Tensor(t) => Err(t),
        };
        while i < s.len() {
            let b = EVAL_BATCH.min(s.len() - i);
            let x = match &mut inputs {
                Ok(r) => r
                    .read(&(i..i + b).collect::<Vec<_>>())?
                    .f_to(model.device())?,
                Err(t) => t.f_narrow(0, i, b)?,
            };
            let y = s.y.f_narrow(0, i, b)?;
            let logits = prep.forward(model, &x, false)?;
            let (sum, w) = weighted_loss_sum(&logits, &y, prep.weights.as_ref(), 0.0)?;
            loss += sum.f_double_value(&[])?;
            weight += w.f_double_value(&[])?;
            correct += count_correct(&logits, &y)?.f_double_value(&[])? as i64;
            if with_probs {
                probs.push(logits.f_softmax(-1, Kind::Double)?);
            }
            i += b;
        }
        let probs = if with_probs {
            Some(Tensor::f_cat(&probs, 0)?)
        } else {
            None
        };
        Ok((loss / weight, correct, probs))
    })
}

/// ROC AUC of validation probabilities: the first class positive for two classes, macro
/// one-vs-rest for more.
fn auc(val: &Split, probs: &Tensor) -> Result<f64> {
    let labels: Vec<usize> = Vec::<i64>::try_from(&val.y.f_to_device(tch::Device::Cpu)?)?
        .into_iter()
        .map(|l| l as usize)
        .collect();
    let p = crate::train::probabilities_matrix(probs)?;
    let average = if p.ncols() == 2 {
        ganaug_metrics::Average::Binary { positive: 0 }
    } else {
        ganaug_metrics::Average::Macro
    };
    ganaug_metrics::roc_auc_ovr(&labels, &p, average).map_err(|source| ModelError::Metric {
        what: "validation AUC",
        source,
    })
}
