//! The classifier's training steps that need no split: mixup, the moving average, weight
//! snapshots, the stop rules, the loss and correct counts of a batch.

use std::collections::HashMap;
use std::path::Path;

use rand_chacha::ChaCha8Rng;
use tch::{Kind, Reduction, Tensor};

use crate::{Classifier, EpochRecord, Result, StopReason, TrainConfig};

/// `x` mixed with a shuffled copy of itself, weight `λ ~ beta`; returns the mix, `λ` and the
/// shuffled labels.
pub(crate) fn mix_up(
    x: &Tensor,
    y: &Tensor,
    beta: &rand_distr::Beta<f64>,
    rng: &mut ChaCha8Rng,
) -> Result<(Tensor, f64, Tensor)> {
    use rand::seq::SliceRandom;
    use rand_distr::Distribution;
    let lam: f64 = beta.sample(rng);
    let mut order: Vec<i64> = (0..x.size()[0]).collect();
    order.shuffle(rng);
    let order = Tensor::from_slice(&order).f_to(x.device())?;
    let mixed = x
        .f_mul_scalar(lam)?
        .f_add(&x.f_index_select(0, &order)?.f_mul_scalar(1.0 - lam)?)?;
    Ok((mixed, lam, y.f_index_select(0, &order.f_to(y.device())?)?))
}

/// `ema ← d·ema + (1 − d)·w` for every variable (batch-norm statistics included).
pub(crate) fn update_ema(
    ema: &mut HashMap<String, Tensor>,
    model: &Classifier,
    d: f64,
) -> Result<()> {
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

pub(crate) fn copy_of(w: &HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
    w.iter()
        .map(|(n, t)| Ok((n.clone(), t.f_detach_copy()?)))
        .collect()
}

/// Why training stops after `rec`, if it does: the paper's train-accuracy rule, or patience.
pub(crate) fn stop_rule(
    cfg: &TrainConfig,
    rec: &EpochRecord,
    best_epoch: usize,
) -> Option<StopReason> {
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

/// How many rows of `logits` have their largest value at the label (a scalar on the device).
pub(crate) fn count_correct(logits: &Tensor, y: &Tensor) -> Result<Tensor> {
    Ok(logits
        .f_argmax(-1, false)?
        .f_eq_tensor(y)?
        .f_sum(Kind::Double)?)
}

/// Sum of the (class-weighted) cross-entropy over a batch and the sum of its weights (a
/// double scalar on the device), so that means over a whole set weight every image the same
/// whatever the batch composition.
pub(crate) fn weighted_loss_sum(
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

pub(crate) fn snapshot(model: &Classifier) -> Result<HashMap<String, Tensor>> {
    model
        .var_store()
        .variables()
        .into_iter()
        .map(|(n, t)| Ok((n, t.f_detach_copy()?)))
        .collect()
}

pub(crate) fn restore(model: &Classifier, saved: &HashMap<String, Tensor>) -> Result<()> {
    model.copy_from(saved, Path::new("<best weights in memory>"), &[])
}
