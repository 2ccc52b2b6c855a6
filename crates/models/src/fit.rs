//! The training loop: [`fit`] and its steps.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use rand::SeedableRng;
use tch::{Kind, Reduction, Tensor};

use ganaug_data::{epoch_seed, TensorDataset};
use ganaug_train::{data_fingerprint, epoch_bar, IntoChecked, KeepCheckpoints, RunDir};

use crate::sgd::Sgd;
use crate::state::{Optim, TrainState};
use crate::train::write_history;
use crate::{
    BackboneMode, Classifier, EpochRecord, FitOptions, FitReport, ModelError, Result, SelectOn,
    StopReason, TrainConfig,
};

/// Inputs and labels of one split, on the model's device (images, or cached features).
struct Split {
    x: Tensor,
    y: Tensor,
}

impl Split {
    fn len(&self) -> i64 {
        self.y.size()[0]
    }
}

/// What every epoch uses: the splits, the class weights, and whether the head trains on cached
/// backbone features.
struct Prepared {
    train: Split,
    val: Split,
    weights: Option<Tensor>,
    cache: bool,
    feature_seconds: f64,
    /// Train with the backbone's batch-norm statistics frozen.
    freeze_bn: bool,
}

impl Prepared {
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

/// Trains `model` on `train`, choosing weights by `val` loss, and restores the best weights.
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
    let cfg = &*cfg.into_checked()?;
    check_inputs(model, train, val, cfg)?;
    let run = opts.out_dir.map(RunDir::new);
    let mut state = TrainState::new(cfg);
    if let Some(run) = &run {
        state.data = data_fingerprint(&[train, val], &format!("augment {:?}", opts.augment))?;
        let latest = run.latest_checkpoint().filter(|_| opts.resume);
        if let Some(ckpt) = &latest {
            state.restore(model, ckpt, cfg)?;
        }
        run.prepare(latest.is_some(), &[])?;
    }
    let prep = prepare(model, train, val, cfg, opts)?;
    let prefix = model.config().kind.name();
    let bar = epoch_bar(opts.progress, prefix, state.history.len(), cfg.max_epochs);
    let mut stop = state.stop.clone().unwrap_or(StopReason::MaxEpochs);
    if cfg.ema_decay.is_some() && state.ema.is_empty() {
        state.ema = snapshot(model)?;
    }
    // A resumed run that had already stopped stays stopped.
    while state.stop.is_none() && state.history.len() < cfg.max_epochs {
        let epoch = state.history.len();
        let rec = run_epoch(
            model,
            &mut state.opt,
            &mut state.ema,
            &prep,
            cfg,
            opts,
            epoch,
        )?;
        let score = match cfg.select_on {
            SelectOn::ValLoss => rec.val_loss,
            SelectOn::ValAuc => -rec.val_auc.unwrap_or(f64::NEG_INFINITY),
        };
        if rec.epoch >= cfg.min_epochs && score < state.best_score {
            state.best_score = score;
            state.best_epoch = rec.epoch;
            // with a moving average, it is what was validated
            state.best = if state.ema.is_empty() {
                snapshot(model)?
            } else {
                copy_of(&state.ema)?
            };
        }
        bar.set_message(format!(
            "loss {:.3} acc {:.3} | val loss {:.3} acc {:.3}",
            rec.train_loss, rec.train_accuracy, rec.val_loss, rec.val_accuracy
        ));
        bar.inc(1);
        state.stop = stop_rule(cfg, &rec, state.best_epoch);
        state.history.push(rec);
        if let Some(run) = &run {
            state.save(model, &run.checkpoint(state.history.len()), cfg)?;
            run.prune(KeepCheckpoints::Latest(1))?;
        }
        if let Some(s) = &state.stop {
            stop = s.clone();
        }
    }
    bar.finish_and_clear();
    if state.best.is_empty() {
        // No epoch was eligible (training stopped before `min_epochs`): keep the last weights
        // (their moving average, with one).
        state.best_epoch = state.history.len().saturating_sub(1);
        if !state.ema.is_empty() {
            restore(model, &state.ema)?;
        }
    } else {
        restore(model, &state.best)?;
    }
    let best_val_loss = state
        .history
        .get(state.best_epoch)
        .map_or(f64::INFINITY, |h| h.val_loss);
    let report = FitReport {
        history: state.history,
        best_epoch: state.best_epoch,
        best_val_loss,
        stop,
        cached_features: prep.cache,
        feature_seconds: prep.feature_seconds,
    };
    if let Some(dir) = opts.out_dir {
        write_history(&report, dir)?;
    }
    Ok(report)
}

fn check_inputs(
    model: &Classifier,
    train: &TensorDataset,
    val: &TensorDataset,
    cfg: &TrainConfig,
) -> Result<()> {
    let n_classes = model.config().n_classes;
    cfg.check_classes(n_classes)?;
    if cfg.select_on == SelectOn::ValAuc
        && val.class_counts().iter().filter(|&&c| c > 0).count() < 2
    {
        return Err(ModelError::config(
            "select_on",
            "validation AUC needs at least two classes in the validation set",
        ));
    }
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
    Ok(())
}

/// The splits on the model's device, as cached backbone features when the backbone never
/// trains and nothing changes the images.
fn prepare(
    model: &mut Classifier,
    train: &TensorDataset,
    val: &TensorDataset,
    cfg: &TrainConfig,
    opts: &FitOptions<'_>,
) -> Result<Prepared> {
    let device = model.device();
    let weights = match &cfg.class_weights {
        Some(w) => Some(
            Tensor::f_from_slice(&w.iter().map(|&x| x as f32).collect::<Vec<_>>())?.f_to(device)?,
        ),
        None => None,
    };
    let cache = cfg.backbone == BackboneMode::Frozen && opts.augment.is_none();
    let t0 = Instant::now();
    if cache {
        model.set_backbone_trainable(false);
    }
    let split = |d: &TensorDataset| -> Result<Split> {
        let x = if cache {
            model.extract_features(&d.images, 64)?
        } else {
            d.images.shallow_clone()
        };
        Ok(Split {
            x,
            y: d.labels.f_to_device(device)?,
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

/// One epoch: shuffled mini-batches (seeded by the epoch, so a resume replays it exactly),
/// each optionally mixed up, an optimiser step per batch (the backbone at its own rate), the
/// moving average updated after each; then the validation pass (on the average, with one).
fn run_epoch(
    model: &mut Classifier,
    opt: &mut Optim,
    ema: &mut HashMap<String, Tensor>,
    prep: &Prepared,
    cfg: &TrainConfig,
    opts: &FitOptions<'_>,
    epoch: usize,
) -> Result<EpochRecord> {
    if !prep.cache {
        model.set_backbone_trainable(!cfg.frozen_at(epoch));
    }
    let started = Instant::now();
    let seed = epoch_seed(cfg.seed, epoch as u64);
    tch::manual_seed(seed as i64);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let perm = {
        use rand::seq::SliceRandom;
        let mut p: Vec<i64> = (0..prep.train.len()).collect();
        p.shuffle(&mut rng);
        p
    };
    let lr = cfg.lr_at(epoch);
    let (head, backbone): (Vec<_>, Vec<_>) = model
        .trainable_variables()
        .into_iter()
        .partition(|(n, _)| n.starts_with("head."));
    let all: Vec<(String, Tensor)> = head
        .iter()
        .chain(&backbone)
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    let mixup = cfg
        .mixup_alpha
        .map(|a| rand_distr::Beta::new(a, a))
        .transpose()
        .map_err(|e| ModelError::config("mixup_alpha", e.to_string()))?;
    let device = model.device();
    // The batches' statistics are summed on the device: no host synchronisation per step (the
    // non-finite check moves to the epoch's end).
    let zero = || Tensor::f_zeros([], (Kind::Double, device));
    let (mut loss_sum, mut weight_sum, mut correct) = (zero()?, zero()?, zero()?);
    let mut batches = 0usize;
    for (b, idx) in perm.chunks(cfg.batch_size).enumerate() {
        let idx_t = Tensor::from_slice(idx);
        let mut x = prep
            .train
            .x
            .f_index_select(0, &idx_t.f_to(prep.train.x.device())?)?;
        if let Some(p) = opts.augment {
            x = p.apply(&x, &mut rng)?;
        }
        let y = prep.train.y.f_index_select(0, &idx_t.f_to(device)?)?;
        let (x, mix) = match &mixup {
            Some(beta) => {
                use rand::seq::SliceRandom;
                use rand_distr::Distribution;
                let lam: f64 = beta.sample(&mut rng);
                let mut order: Vec<i64> = (0..idx.len() as i64).collect();
                order.shuffle(&mut rng);
                let order = Tensor::from_slice(&order).f_to(x.device())?;
                let mixed = x
                    .f_mul_scalar(lam)?
                    .f_add(&x.f_index_select(0, &order)?.f_mul_scalar(1.0 - lam)?)?;
                (
                    mixed,
                    Some((lam, y.f_index_select(0, &order.f_to(device)?)?)),
                )
            }
            None => (x, None),
        };
        let logits = prep.forward(model, &x, true)?;
        let smooth = cfg.label_smoothing;
        let (sum, weight) = match &mix {
            Some((lam, y2)) => {
                let (s1, w1) = weighted_loss_sum(&logits, &y, prep.weights.as_ref(), smooth)?;
                let (s2, w2) = weighted_loss_sum(&logits, y2, prep.weights.as_ref(), smooth)?;
                (
                    s1.f_mul_scalar(*lam)?.f_add(&s2.f_mul_scalar(1.0 - lam)?)?,
                    w1.f_mul_scalar(*lam)?.f_add(&w2.f_mul_scalar(1.0 - lam)?)?,
                )
            }
            None => weighted_loss_sum(&logits, &y, prep.weights.as_ref(), smooth)?,
        };
        let loss = sum.f_div(&weight.f_to_kind(sum.kind())?)?;
        batches = b + 1;
        Sgd::zero_grad(&all)?;
        loss.f_backward()?;
        opt.step(&head, lr)?;
        opt.step(&backbone, lr * cfg.backbone_lr_scale)?;
        if let Some(d) = cfg.ema_decay {
            update_ema(ema, model, d)?;
        }
        loss_sum = loss_sum.f_add(&sum.f_detach()?.f_to_kind(Kind::Double)?)?;
        weight_sum = weight_sum.f_add(&weight)?;
        correct = correct.f_add(&count_correct(&logits, &y)?)?;
    }
    let (loss_sum, weight_sum, correct) = (
        loss_sum.f_double_value(&[])?,
        weight_sum.f_double_value(&[])?,
        correct.f_double_value(&[])?,
    );
    let value = loss_sum / weight_sum;
    if !value.is_finite() {
        return Err(ModelError::NonFinite {
            phase: "training",
            value,
            epoch,
            batch: batches.saturating_sub(1),
        });
    }
    let n = prep.train.len() as f64;
    let with_probs = cfg.select_on == SelectOn::ValAuc;
    // Validate the moving average: swap it in, then the trained weights back.
    let current = if ema.is_empty() {
        None
    } else {
        let c = snapshot(model)?;
        restore(model, ema)?;
        Some(c)
    };
    let evaluated = evaluate_split(model, prep, with_probs);
    if let Some(c) = &current {
        restore(model, c)?;
    }
    let (val_loss, val_correct, val_probs) = evaluated?;
    let val_auc = val_probs.map(|p| auc(&prep.val, &p)).transpose()?;
    if !val_loss.is_finite() {
        return Err(ModelError::NonFinite {
            phase: "validation",
            value: val_loss,
            epoch,
            batch: 0,
        });
    }
    Ok(EpochRecord {
        epoch,
        train_loss: value,
        train_accuracy: correct / n,
        val_loss,
        val_accuracy: val_correct as f64 / prep.val.len() as f64,
        val_auc,
        lr,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `ema ← d·ema + (1 − d)·w` for every variable (batch-norm statistics included).
fn update_ema(ema: &mut HashMap<String, Tensor>, model: &Classifier, d: f64) -> Result<()> {
    tch::no_grad(|| -> Result<()> {
        for (n, w) in model.var_store().variables() {
            if let Some(e) = ema.get_mut(&n) {
                if e.is_floating_point() {
                    let _ = e.f_mul_scalar_(d)?.f_add_(&w.f_mul_scalar(1.0 - d)?)?;
                } else {
                    e.f_copy_(&w)?;
                }
            }
        }
        Ok(())
    })
}

fn copy_of(w: &HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
    w.iter()
        .map(|(n, t)| Ok((n.clone(), t.f_detach_copy()?)))
        .collect()
}

/// Why training stops after `rec`, if it does: the paper's train-accuracy rule, or patience.
fn stop_rule(cfg: &TrainConfig, rec: &EpochRecord, best_epoch: usize) -> Option<StopReason> {
    if cfg
        .stop_at_train_accuracy
        .is_some_and(|t| rec.train_accuracy >= t)
    {
        Some(StopReason::TrainAccuracy)
    } else if rec.epoch >= cfg.min_epochs
        && cfg
            .patience
            .is_some_and(|p| rec.epoch.saturating_sub(best_epoch.max(cfg.min_epochs)) >= p)
    {
        Some(StopReason::Patience)
    } else {
        None
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
        while i < s.len() {
            let b = 64.min(s.len() - i);
            let x = s.x.f_narrow(0, i, b)?;
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
    let p: ndarray::ArrayD<f64> = (&probs.f_to_device(tch::Device::Cpu)?).try_into()?;
    let p = p
        .into_dimensionality::<ndarray::Ix2>()
        .map_err(|e| ModelError::config("val_auc", e.to_string()))?;
    let average = if p.ncols() == 2 {
        ganaug_metrics::Average::Binary { positive: 0 }
    } else {
        ganaug_metrics::Average::Macro
    };
    ganaug_metrics::roc_auc_ovr(&labels, &p, average)
        .map_err(|e| ModelError::config("val_auc", e.to_string()))
}

/// How many rows of `logits` have their largest value at the label (a scalar on the device).
fn count_correct(logits: &Tensor, y: &Tensor) -> Result<Tensor> {
    Ok(logits
        .f_argmax(-1, false)?
        .f_eq_tensor(y)?
        .f_sum(Kind::Double)?)
}

/// Sum of the (class-weighted) cross-entropy over a batch and the sum of its weights (a
/// double scalar on the device), so that means over a whole set weight every image the same
/// whatever the batch composition.
fn weighted_loss_sum(
    logits: &Tensor,
    y: &Tensor,
    weights: Option<&Tensor>,
    label_smoothing: f64,
) -> Result<(Tensor, Tensor)> {
    let sum = logits.f_cross_entropy_loss::<&Tensor>(
        y,
        weights,
        Reduction::Sum,
        -100,
        label_smoothing,
    )?;
    let weight = match weights {
        Some(w) => w.f_index_select(0, y)?.f_sum(Kind::Double)?,
        None => Tensor::f_from_slice(&[y.size()[0] as f64])?
            .f_reshape([])?
            .f_to_device(logits.device())?,
    };
    Ok((sum, weight))
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
