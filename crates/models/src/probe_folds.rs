//! Cross-validation of a probe's strength: stratified folds, each fold's rows gathered from
//! feature blocks stacked in order (never stacked into one more copy), and the checks of such
//! blocks.

use ndarray::{Array2, ArrayView2};

use crate::probe::{ProbeChoice, ProbeConfig};
use crate::probe_objective::log_loss_and_accuracy;
use crate::probe_solve::fit_owned_checked;
use crate::{ModelError, Result};
use ganaug_train::Validate;

/// The strength of `cfg.c_grid` with the lowest mean held-out log-loss over `k` stratified
/// folds of `(x, y)` (rows in order within each class, fold = rank mod `k`), with every
/// strength's mean held-out log-loss and accuracy.
pub fn select_by_kfold(
    (x, y): (&Array2<f64>, &[usize]),
    n_classes: usize,
    k: usize,
    cfg: &ProbeConfig,
) -> Result<(f64, Vec<ProbeChoice>)> {
    select_by_kfold_blocks((&[x.view()], y), n_classes, k, cfg)
}

/// [`select_by_kfold`] on rows kept as blocks stacked in order (say the training split's
/// features, then the validation split's): each fold's rows are gathered from the blocks, so
/// the blocks are never stacked into one more copy. The same choice, bit for bit, as on the
/// stacked rows.
pub fn select_by_kfold_blocks(
    (blocks, y): (&[ArrayView2<'_, f64>], &[usize]),
    n_classes: usize,
    k: usize,
    cfg: &ProbeConfig,
) -> Result<(f64, Vec<ProbeChoice>)> {
    cfg.validate()?;
    check_blocks("k-fold features", blocks, y, n_classes)?;
    let fold = stratified_folds(y, n_classes, k)?;
    let mut choices = Vec::new();
    for &c in &cfg.c_grid {
        let (mut loss, mut correct, mut iterations) = (0.0, 0.0, 0);
        for f in 0..k {
            let (tr, te): (Vec<usize>, Vec<usize>) = (0..y.len()).partition(|&i| fold[i] != f);
            let labels = |idx: &[usize]| idx.iter().map(|&i| y[i]).collect::<Vec<_>>();
            let probe =
                fit_owned_checked(gather(blocks, &tr), &labels(&tr), None, n_classes, c, cfg)?;
            let held = probe.predict_proba(&gather(blocks, &te))?;
            let (l, a) = log_loss_and_accuracy(&held, &labels(&te));
            loss += l * te.len() as f64;
            correct += a * te.len() as f64;
            iterations = iterations.max(probe.iterations);
        }
        let n = y.len() as f64;
        choices.push(ProbeChoice {
            c,
            val_log_loss: loss / n,
            val_accuracy: correct / n,
            iterations,
        });
    }
    let best = choices
        .iter()
        .min_by(|a, b| a.val_log_loss.total_cmp(&b.val_log_loss))
        .map(|b| b.c)
        .ok_or_else(|| ModelError::config("c_grid", "is empty"))?;
    Ok((best, choices))
}

/// Rows `idx` of `blocks` stacked in order (indices count across the blocks), as one array.
/// The caller has checked the blocks ([`check_blocks`]) and that every index is below their
/// rows.
pub(crate) fn gather(blocks: &[ArrayView2<'_, f64>], idx: &[usize]) -> Array2<f64> {
    let cols = blocks.first().map_or(0, |b| b.ncols());
    let mut starts = Vec::with_capacity(blocks.len());
    let mut total = 0;
    for b in blocks {
        starts.push(total);
        total += b.nrows();
    }
    let mut out = Array2::zeros((idx.len(), cols));
    for (mut row, &i) in out.outer_iter_mut().zip(idx) {
        let block = starts.partition_point(|&s| s <= i) - 1;
        row.assign(&blocks[block].row(i - starts[block]));
    }
    out
}

/// [`check_features`] of blocks stacked in order: one column count, one label per row (at
/// least one), finite values (the first bad row counted across the blocks), labels below
/// `classes`.
pub(crate) fn check_blocks(
    what: &'static str,
    blocks: &[ArrayView2<'_, f64>],
    y: &[usize],
    classes: usize,
) -> Result<()> {
    let cols = blocks.first().map_or(0, |b| b.ncols());
    if let Some(b) = blocks.iter().find(|b| b.ncols() != cols) {
        return Err(ModelError::Shape {
            what,
            expected: format!("{cols} columns in every block (the first's)"),
            got: b.ncols().to_string(),
        });
    }
    let rows: usize = blocks.iter().map(|b| b.nrows()).sum();
    if rows != y.len() || rows == 0 {
        return Err(ModelError::Shape {
            what,
            expected: format!("{} rows (one per label), at least one", y.len()),
            got: format!("{rows} rows"),
        });
    }
    let mut offset = 0;
    for b in blocks {
        if let Some(row) = b
            .outer_iter()
            .position(|r| r.iter().any(|v| !v.is_finite()))
        {
            return Err(ModelError::NonFiniteFeatures {
                what,
                row: offset + row,
            });
        }
        offset += b.nrows();
    }
    if let Some(&l) = y.iter().find(|&&l| l >= classes) {
        return Err(ModelError::Inputs {
            reason: format!("{what}: label {l} is not below {classes}"),
        });
    }
    Ok(())
}

/// The fold of each row: within each class, rows in order, fold = rank mod `k`.
pub(crate) fn stratified_folds(y: &[usize], n_classes: usize, k: usize) -> Result<Vec<usize>> {
    if k < 2 || y.len() < k {
        return Err(ModelError::Inputs {
            reason: format!(
                "{k} folds of {} rows: k-fold selection needs k ≥ 2 and k rows",
                y.len()
            ),
        });
    }
    let mut seen = vec![0usize; n_classes];
    y.iter()
        .map(|&l| {
            let s = seen.get_mut(l).ok_or_else(|| ModelError::Inputs {
                reason: format!("label {l} of {n_classes} classes"),
            })?;
            *s += 1;
            Ok((*s - 1) % k)
        })
        .collect()
}
