//! A linear probe for frozen backbones: multinomial logistic regression on standardised
//! features, its L2 strength chosen on the validation split's log-loss, each fit solved to
//! convergence by L-BFGS (`argmin`) — not epochs of SGD.
//!
//! The objective is scikit-learn's multinomial `LogisticRegression(C)` divided by the sample
//! count: `(1/n) [Σᵢ −log softmax(xᵢW + b)[yᵢ] + ‖W‖² / (2C)]` (the bias is not penalised).
//! With two classes scikit-learn fits its binary model instead (one weight vector); the softmax's
//! two vectors are opposite at the optimum, so ganaug's `C` there equals scikit-learn's `2C`
//! (checked against scikit-learn in `tests/probe_reference.rs`).

use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use ganaug_train::Validate;

pub(crate) use crate::probe_folds::{check_blocks, gather, stratified_folds};
pub use crate::probe_folds::{select_by_kfold, select_by_kfold_blocks};
use crate::probe_objective::{log_loss_and_accuracy, softmax_rows};
pub use crate::probe_solve::{fit_at, fit_at_anchored, fit_at_weighted, fit_at_weighted_owned};
use crate::{ModelError, Result};

/// How the probe is fitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeConfig {
    /// Inverse L2 strengths to try (scikit-learn's `C`); the one with the lowest validation
    /// log-loss is kept.
    pub c_grid: Vec<f64>,
    /// L-BFGS iterations allowed per fit; reaching them is [`ModelError::ProbeNotConverged`].
    pub max_iterations: u64,
    /// Converged when the gradient's largest component (of the per-sample objective) is below
    /// this.
    pub tolerance: f64,
    /// How the strength is chosen.
    #[serde(default)]
    pub selection: ProbeSelection,
}

/// How a probe's L2 strength is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeSelection {
    /// Lowest log-loss on the validation split.
    #[default]
    Validation,
    /// Lowest mean held-out log-loss over `k` stratified folds of the training and validation
    /// images together (real images only); the probe is then fitted on the training set.
    KFold {
        /// Number of folds (at least 2).
        k: usize,
    },
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            c_grid: vec![0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0],
            max_iterations: 2000,
            tolerance: 1e-5,
            selection: ProbeSelection::Validation,
        }
    }
}

impl Validate for ProbeConfig {
    type Error = ModelError;

    fn validate(&self) -> Result<()> {
        if self.c_grid.is_empty() || self.c_grid.iter().any(|c| !(*c > 0.0 && c.is_finite())) {
            return Err(ModelError::config(
                "c_grid",
                format!("needs positive, finite values, got {:?}", self.c_grid),
            ));
        }
        if let ProbeSelection::KFold { k } = self.selection {
            if k < 2 {
                return Err(ModelError::config(
                    "selection",
                    format!("k-fold needs k ≥ 2, got {k}"),
                ));
            }
        }
        if self.max_iterations == 0 || !(self.tolerance > 0.0 && self.tolerance.is_finite()) {
            return Err(ModelError::config(
                "max_iterations/tolerance",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// A fitted probe: the standardisation, the weights and the strength it was fitted with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearProbe {
    /// Feature means of the training set.
    pub mean: Vec<f64>,
    /// Feature standard deviations of the training set (1 where a feature is constant).
    pub scale: Vec<f64>,
    /// `[features][classes]`.
    pub weights: Vec<Vec<f64>>,
    /// `[classes]`.
    pub bias: Vec<f64>,
    /// The inverse L2 strength.
    pub c: f64,
    /// L-BFGS iterations the fit took.
    pub iterations: u64,
}

/// One strength of the grid and how it did on the validation split (or, with k-fold
/// selection, on the held-out folds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeChoice {
    /// The inverse L2 strength.
    pub c: f64,
    /// Mean validation log-loss.
    pub val_log_loss: f64,
    /// Validation accuracy.
    pub val_accuracy: f64,
    /// L-BFGS iterations of the fit.
    pub iterations: u64,
}

/// The chosen probe and every strength tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeFit {
    /// Refitted on the training split at the chosen strength.
    pub probe: LinearProbe,
    /// The grid, in order.
    pub choices: Vec<ProbeChoice>,
}

/// Fits a probe per strength of `cfg.c_grid` on `(x, y)` and keeps the one with the lowest
/// log-loss on `(val_x, val_y)`. Features of any backbone, rows = images; labels in
/// `0..n_classes`.
pub fn fit_probe(
    (x, y): (&Array2<f64>, &[usize]),
    (val_x, val_y): (&Array2<f64>, &[usize]),
    n_classes: usize,
    cfg: &ProbeConfig,
) -> Result<ProbeFit> {
    cfg.validate()?;
    check_features("training features", x.view(), y, n_classes)?;
    check_features("validation features", val_x.view(), val_y, n_classes)?;
    if val_x.ncols() != x.ncols() {
        return Err(ModelError::Shape {
            what: "validation features",
            expected: format!("{} columns (the training features')", x.ncols()),
            got: val_x.ncols().to_string(),
        });
    }
    let mut best: Option<(f64, LinearProbe)> = None;
    let mut choices = Vec::new();
    for &c in &cfg.c_grid {
        let probe = fit_at(x, y, n_classes, c, cfg)?;
        let p = probe.predict_proba(val_x)?;
        let (loss, acc) = log_loss_and_accuracy(&p, val_y);
        choices.push(ProbeChoice {
            c,
            val_log_loss: loss,
            val_accuracy: acc,
            iterations: probe.iterations,
        });
        if best.as_ref().is_none_or(|(b, _)| loss < *b) {
            best = Some((loss, probe));
        }
    }
    let (_, probe) = best.ok_or_else(|| ModelError::config("c_grid", "is empty"))?;
    Ok(ProbeFit { probe, choices })
}

impl LinearProbe {
    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.bias.len()
    }

    /// Class probabilities `[N, classes]` of feature rows `x`.
    pub fn predict_proba(&self, x: &Array2<f64>) -> Result<Array2<f64>> {
        let d = self.mean.len();
        if x.ncols() != d {
            return Err(ModelError::Shape {
                what: "features to predict",
                expected: format!("{d} columns (the probe's)"),
                got: x.ncols().to_string(),
            });
        }
        if let Some(row) = x
            .outer_iter()
            .position(|r| r.iter().any(|v| !v.is_finite()))
        {
            return Err(ModelError::NonFiniteFeatures {
                what: "features to predict",
                row,
            });
        }
        let mean = Array1::from(self.mean.clone());
        let scale = Array1::from(self.scale.clone());
        let z = (x - &mean) / &scale;
        let k = self.classes();
        let w = Array2::from_shape_fn((d, k), |(i, j)| self.weights[i][j]);
        let logits = z.dot(&w) + &Array1::from(self.bias.clone());
        Ok(softmax_rows(&logits))
    }
}

pub(crate) fn check_features(
    what: &'static str,
    x: ArrayView2<f64>,
    y: &[usize],
    classes: usize,
) -> Result<()> {
    check_blocks(what, &[x], y, classes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Axis;

    /// Two Gaussian blobs in 5 dimensions, means ±`gap` on the first axis.
    fn blobs(n: usize, gap: f64, seed: u64) -> (Array2<f64>, Vec<usize>) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let y: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let x = Array2::from_shape_fn((n, 5), |(i, j)| {
            let centre = if j == 0 {
                gap * (y[i] as f64 * 2.0 - 1.0)
            } else {
                0.0
            };
            centre + rng.random_range(-1.0..1.0) * 10.0f64.powi(j as i32 % 3)
        });
        (x, y)
    }

    #[test]
    fn the_probe_separates_blobs_and_its_gradient_vanishes_at_the_optimum() {
        let (x, y) = blobs(200, 1.5, 0);
        let (vx, vy) = blobs(100, 1.5, 1);
        let fit = fit_probe((&x, &y), (&vx, &vy), 2, &ProbeConfig::default()).expect("fit");
        assert_eq!(fit.choices.len(), ProbeConfig::default().c_grid.len());
        let best = fit
            .choices
            .iter()
            .min_by(|a, b| a.val_log_loss.total_cmp(&b.val_log_loss))
            .expect("choices");
        assert_eq!(best.c, fit.probe.c);
        assert!(best.val_accuracy > 0.85, "{best:?}");
        let p = fit.probe.predict_proba(&vx).expect("predict");
        assert!(p.outer_iter().all(|r| (r.sum() - 1.0).abs() < 1e-9));
        // Stronger regularisation shrinks the weights.
        let cfg = ProbeConfig::default();
        let weak = fit_at(&x, &y, 2, 10.0, &cfg).expect("weak");
        let strong = fit_at(&x, &y, 2, 0.001, &cfg).expect("strong");
        let norm = |p: &LinearProbe| p.weights.iter().flatten().map(|v| v * v).sum::<f64>();
        assert!(norm(&strong) < norm(&weak));
    }

    /// The two-step fit's second step: an anchor of zero weights is the plain fit; a tiny C
    /// keeps the anchor's weights; a huge C forgets it; the anchor's standardisation is kept.
    #[test]
    fn an_anchored_fit_interpolates_between_its_anchor_and_the_plain_fit() {
        let (x, y) = blobs(160, 1.0, 5);
        let cfg = ProbeConfig {
            tolerance: 1e-9,
            max_iterations: 5000,
            ..ProbeConfig::default()
        };
        let plain = fit_at(&x, &y, 2, 0.1, &cfg).expect("plain");
        let zero = LinearProbe {
            weights: vec![vec![0.0; 2]; 5],
            bias: vec![0.0; 2],
            ..plain.clone()
        };
        let anchored = fit_at_anchored(&x, &y, 0.1, &zero, &cfg).expect("anchored");
        let dist = |a: &LinearProbe, b: &LinearProbe| {
            a.weights
                .iter()
                .flatten()
                .zip(b.weights.iter().flatten())
                .map(|(p, q)| (p - q).abs())
                .fold(0.0f64, f64::max)
        };
        assert!(
            dist(&anchored, &plain) < 1e-5,
            "{}",
            dist(&anchored, &plain)
        );
        // an anchor far from the data's optimum: a tiny C stays at it, a huge one leaves it
        let (x2, y2) = blobs(160, -1.0, 6); // the classes swapped
        let far = fit_at(&x2, &y2, 2, 0.1, &cfg).expect("far");
        let stay = fit_at_anchored(&x, &y, 1e-6, &far, &cfg).expect("stay");
        assert!(dist(&stay, &far) < 1e-3, "{}", dist(&stay, &far));
        assert_eq!(stay.mean, far.mean, "the anchor's standardisation is kept");
        let leave = fit_at_anchored(&x, &y, 1e6, &far, &cfg).expect("leave");
        let acc = |p: &LinearProbe| {
            let pr = p.predict_proba(&x).expect("predict");
            log_loss_and_accuracy(&pr, &y).1
        };
        assert!(
            acc(&leave) > 0.7 && acc(&stay) < 0.5,
            "{} {}",
            acc(&leave),
            acc(&stay)
        );
        let wrong = Array2::zeros((4, 3));
        assert!(matches!(
            fit_at_anchored(&wrong, &[0, 1, 0, 1], 1.0, &far, &cfg),
            Err(ModelError::Shape { .. })
        ));
    }

    #[test]
    fn row_weights_act_as_repeated_rows_and_weights_of_one_change_nothing() {
        let (x, y) = blobs(120, 1.0, 3);
        let cfg = ProbeConfig {
            tolerance: 1e-9,
            ..ProbeConfig::default()
        };
        let plain = fit_at(&x, &y, 2, 0.1, &cfg).expect("fit");
        let ones = fit_at_weighted(&x, &y, Some(&vec![1.0; 120]), 2, 0.1, &cfg).expect("fit");
        assert_eq!(plain.weights, ones.weights);
        // weight 2 on every row = every row twice (same standardisation, same optimum)
        let twice = fit_at_weighted(&x, &y, Some(&vec![2.0; 120]), 2, 0.1, &cfg).expect("fit");
        let rows: Vec<usize> = (0..120).chain(0..120).collect();
        let dup_y: Vec<usize> = rows.iter().map(|&i| y[i]).collect();
        let dup = fit_at(&x.select(Axis(0), &rows), &dup_y, 2, 0.1, &cfg).expect("fit");
        let gap = |a: &LinearProbe, b: &LinearProbe| {
            (&a.predict_proba(&x).expect("predict") - &b.predict_proba(&x).expect("predict"))
                .iter()
                .fold(0.0f64, |m, v| m.max(v.abs()))
        };
        assert!(gap(&twice, &dup) < 1e-6, "{}", gap(&twice, &dup));
        // up-weighting some rows fits them better than the plain fit does
        let mut w = vec![1.0; 120];
        w[..40].iter_mut().for_each(|v| *v = 5.0);
        let weighted = fit_at_weighted(&x, &y, Some(&w), 2, 0.1, &cfg).expect("fit");
        let first: Vec<usize> = (0..40).collect();
        let loss = |p: &LinearProbe| {
            let pr = p
                .predict_proba(&x.select(Axis(0), &first))
                .expect("predict");
            log_loss_and_accuracy(&pr, &y[..40]).0
        };
        assert!(
            loss(&weighted) < loss(&plain) - 1e-3,
            "{} vs {}",
            loss(&weighted),
            loss(&plain)
        );
        assert!(fit_at_weighted(&x, &y, Some(&[1.0; 3]), 2, 0.1, &cfg).is_err());
        let mut neg = vec![1.0; 120];
        neg[7] = -1.0;
        assert!(fit_at_weighted(&x, &y, Some(&neg), 2, 0.1, &cfg).is_err());
    }

    #[test]
    fn k_fold_selection_scores_every_strength_on_held_out_rows() {
        let (x, y) = blobs(120, 1.5, 3);
        let cfg = ProbeConfig {
            selection: ProbeSelection::KFold { k: 4 },
            ..ProbeConfig::default()
        };
        let (c, choices) = select_by_kfold((&x, &y), 2, 4, &cfg).expect("k-fold");
        assert_eq!(choices.len(), cfg.c_grid.len());
        assert!(cfg.c_grid.contains(&c));
        assert!(choices
            .iter()
            .all(|ch| ch.val_accuracy > 0.5 && ch.val_log_loss.is_finite()));
        assert!(select_by_kfold((&x, &y), 2, 1, &cfg).is_err());
        let bad = ProbeConfig {
            selection: ProbeSelection::KFold { k: 1 },
            ..ProbeConfig::default()
        };
        assert!(bad.validate().is_err());
    }

    /// The folds gathered from blocks give the very fits of the folds taken from one stacked
    /// matrix (the way `select_by_kfold` cut them before blocks): bit for bit, at any cut.
    #[test]
    fn k_fold_on_blocks_is_k_fold_on_the_stacked_rows_bit_for_bit() {
        let (x, y) = blobs(90, 1.0, 5);
        let cfg = ProbeConfig {
            c_grid: vec![0.01, 0.3],
            ..ProbeConfig::default()
        };
        let k = 3;
        // the reference: each fold's rows selected from the stacked matrix, fitted by fit_at
        let fold = stratified_folds(&y, 2, k).expect("folds");
        let mut reference = Vec::new();
        for &c in &cfg.c_grid {
            let mut loss = 0.0;
            for f in 0..k {
                let tr: Vec<usize> = (0..y.len()).filter(|&i| fold[i] != f).collect();
                let te: Vec<usize> = (0..y.len()).filter(|&i| fold[i] == f).collect();
                let ytr: Vec<usize> = tr.iter().map(|&i| y[i]).collect();
                let yte: Vec<usize> = te.iter().map(|&i| y[i]).collect();
                let probe = fit_at(&x.select(Axis(0), &tr), &ytr, 2, c, &cfg).expect("fit");
                let p = probe.predict_proba(&x.select(Axis(0), &te)).expect("p");
                loss += log_loss_and_accuracy(&p, &yte).0 * te.len() as f64;
            }
            reference.push(loss / y.len() as f64);
        }
        let whole = select_by_kfold((&x, &y), 2, k, &cfg).expect("whole");
        let got: Vec<f64> = whole.1.iter().map(|ch| ch.val_log_loss).collect();
        assert_eq!(got, reference);
        for cuts in [[1, 2], [37, 38], [45, 89]] {
            let blocks = [
                x.slice_axis(Axis(0), ndarray::Slice::from(..cuts[0])),
                x.slice_axis(Axis(0), ndarray::Slice::from(cuts[0]..cuts[1])),
                x.slice_axis(Axis(0), ndarray::Slice::from(cuts[1]..)),
            ];
            let split = select_by_kfold_blocks((&blocks, &y), 2, k, &cfg).expect("blocks");
            assert_eq!(split, whole, "cut at {cuts:?}");
            let oof = crate::out_of_fold_proba_blocks((&blocks, &y), 2, k, 0.3, &cfg).expect("oof");
            let oof_whole = crate::out_of_fold_proba((&x, &y), 2, k, 0.3, &cfg).expect("oof");
            assert_eq!(oof, oof_whole, "cut at {cuts:?}");
        }
        // blocks that disagree, or a bad value, are named errors; the row counts across blocks
        let narrow = Array2::zeros((3, 2));
        let mismatched = [
            x.slice_axis(Axis(0), ndarray::Slice::from(..87)),
            narrow.view(),
        ];
        assert!(matches!(
            select_by_kfold_blocks((&mismatched, &y), 2, k, &cfg),
            Err(ModelError::Shape { .. })
        ));
        let mut bad = x.clone();
        bad[[50, 1]] = f64::INFINITY;
        let blocks = [
            bad.slice_axis(Axis(0), ndarray::Slice::from(..40)),
            bad.slice_axis(Axis(0), ndarray::Slice::from(40..)),
        ];
        assert!(matches!(
            select_by_kfold_blocks((&blocks, &y), 2, k, &cfg),
            Err(ModelError::NonFiniteFeatures { row: 50, .. })
        ));
        assert!(matches!(
            select_by_kfold_blocks((&blocks[..1], &y), 2, k, &cfg),
            Err(ModelError::Shape { .. })
        ));
    }

    #[test]
    fn non_convergence_and_non_finite_features_are_typed_errors() {
        let (x, y) = blobs(60, 1.0, 2);
        let tight = ProbeConfig {
            max_iterations: 2,
            tolerance: 1e-12,
            ..ProbeConfig::default()
        };
        match fit_at(&x, &y, 2, 1.0, &tight) {
            Err(ModelError::ProbeNotConverged { iterations, .. }) => assert!(iterations <= 2),
            other => panic!("expected ProbeNotConverged, got {other:?}"),
        }
        let mut bad = x.clone();
        bad[[7, 3]] = f64::NAN;
        assert!(matches!(
            fit_at(&bad, &y, 2, 1.0, &ProbeConfig::default()),
            Err(ModelError::NonFiniteFeatures { row: 7, .. })
        ));
        let probe = fit_at(&x, &y, 2, 1.0, &ProbeConfig::default()).expect("fit");
        assert!(matches!(
            probe.predict_proba(&bad),
            Err(ModelError::NonFiniteFeatures { row: 7, .. })
        ));
        assert!(probe.predict_proba(&Array2::zeros((3, 4))).is_err());
        let empty_grid = ProbeConfig {
            c_grid: vec![],
            ..ProbeConfig::default()
        };
        assert!(fit_probe((&x, &y), (&x, &y), 2, &empty_grid).is_err());
    }
}
