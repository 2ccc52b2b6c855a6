//! The linear probe's objective for L-BFGS: the regularised, optionally row-weighted mean
//! log-loss of multinomial logistic regression on standardised features, with its gradient.

use std::sync::Arc;

use argmin::core::{CostFunction, Gradient};
use ndarray::{Array1, Array2, Axis};

pub(crate) fn softmax_rows(logits: &Array2<f64>) -> Array2<f64> {
    let mut p = logits.clone();
    for mut row in p.outer_iter_mut() {
        let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - m).exp());
        let s = row.sum();
        row.mapv_inplace(|v| v / s);
    }
    p
}

pub(crate) fn log_loss_and_accuracy(p: &Array2<f64>, y: &[usize]) -> (f64, f64) {
    let mut loss = 0.0;
    let mut correct = 0;
    for (row, &l) in p.outer_iter().zip(y) {
        loss -= row[l].max(1e-15).ln();
        let argmax = row
            .iter()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &v)| {
                if v > bv {
                    (i, v)
                } else {
                    (bi, bv)
                }
            })
            .0;
        correct += usize::from(argmax == l);
    }
    (loss / y.len() as f64, correct as f64 / y.len() as f64)
}

/// The regularised mean log-loss as a function of the flat parameters `[W (d×k) | b (k)]`.
#[derive(Clone)]
pub(crate) struct Objective {
    /// Standardised rows, shared by the solver's clone of the problem.
    pub(crate) x: Arc<Array2<f64>>,
    pub(crate) y: Vec<usize>,
    /// Per-row loss weights (`None`: all 1).
    pub(crate) weights: Option<Vec<f64>>,
    pub(crate) classes: usize,
    pub(crate) c: f64,
    /// The weights the L2 penalty pulls towards (`None`: zero, the usual ridge).
    pub(crate) anchor: Option<Array2<f64>>,
}

impl Objective {
    pub(crate) fn unpack(&self, p: &Array1<f64>) -> (Array2<f64>, Array1<f64>) {
        let (d, k) = (self.x.ncols(), self.classes);
        let w = Array2::from_shape_fn((d, k), |(i, j)| p[i * k + j]);
        let b = Array1::from_shape_fn(k, |j| p[d * k + j]);
        (w, b)
    }

    /// `W − W₀`: what the penalty measures.
    fn minus_anchor(&self, w: Array2<f64>) -> Array2<f64> {
        match &self.anchor {
            Some(a) => w - a,
            None => w,
        }
    }

    fn probs(&self, p: &Array1<f64>) -> (Array2<f64>, Array2<f64>, Array1<f64>) {
        let (w, b) = self.unpack(p);
        let logits = self.x.dot(&w) + &b;
        (softmax_rows(&logits), w, b)
    }

    pub(crate) fn grad(&self, p: &Array1<f64>) -> Array1<f64> {
        let (mut probs, w, _) = self.probs(p);
        for (i, (mut row, &l)) in probs.outer_iter_mut().zip(&self.y).enumerate() {
            row[l] -= 1.0;
            if let Some(sw) = &self.weights {
                row.mapv_inplace(|v| v * sw[i]);
            }
        }
        let n = self.x.nrows() as f64;
        let gw = (self.x.t().dot(&probs) + &(&self.minus_anchor(w) / self.c)) / n;
        let gb = probs.sum_axis(Axis(0)) / n;
        gw.iter().chain(gb.iter()).copied().collect()
    }
}

impl CostFunction for Objective {
    type Param = Array1<f64>;
    type Output = f64;

    fn cost(&self, p: &Self::Param) -> std::result::Result<f64, argmin::core::Error> {
        finite_params(p)?;
        let (probs, w, _) = self.probs(p);
        let n = self.x.nrows() as f64;
        let loss = match &self.weights {
            None => log_loss_and_accuracy(&probs, &self.y).0,
            Some(sw) => {
                let rows = probs.outer_iter().zip(&self.y).zip(sw);
                rows.map(|((row, &l), &wi)| -wi * row[l].max(1e-15).ln())
                    .sum::<f64>()
                    / n
            }
        };
        let penalty = self.minus_anchor(w).iter().map(|v| v * v).sum::<f64>();
        let cost = loss + penalty / (2.0 * self.c * n);
        if cost.is_finite() {
            Ok(cost)
        } else {
            Err(argmin::core::Error::msg("the objective is not finite"))
        }
    }
}

impl Gradient for Objective {
    type Param = Array1<f64>;
    type Gradient = Array1<f64>;

    fn gradient(&self, p: &Self::Param) -> std::result::Result<Array1<f64>, argmin::core::Error> {
        finite_params(p)?;
        Ok(self.grad(p))
    }
}

/// Refuses a step the line search took off to non-finite parameters: without this, argmin's
/// More–Thuente search compares NaNs forever instead of ending (an L-BFGS step on a badly
/// conditioned problem, such as a tiny `C`, can overflow); with it the search ends with an
/// error, L-BFGS stops at its best finite point and the caller's convergence check decides.
fn finite_params(p: &Array1<f64>) -> std::result::Result<(), argmin::core::Error> {
    if p.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(argmin::core::Error::msg(
            "the line search reached non-finite parameters",
        ))
    }
}
