//! Solving one probe: the L-BFGS fit at a fixed L2 strength, plain, class-weighted, or
//! anchored to an earlier probe.

use argmin::core::{Executor, State, TerminationReason, TerminationStatus};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use std::sync::Arc;

use ndarray::{Array1, Array2, Axis};

use crate::probe::{check_features, LinearProbe, ProbeConfig};
use crate::probe_objective::Objective;
use crate::{ModelError, Result};

/// Fits one probe at inverse L2 strength `c`.
pub fn fit_at(
    x: &Array2<f64>,
    y: &[usize],
    n_classes: usize,
    c: f64,
    cfg: &ProbeConfig,
) -> Result<LinearProbe> {
    fit_at_weighted(x, y, None, n_classes, c, cfg)
}

/// [`fit_at`] with a weight per training row (scikit-learn's `sample_weight`): the objective
/// becomes `(1/n) [Σᵢ wᵢ (−log softmax(xᵢW + b)[yᵢ]) + ‖W‖² / (2C)]`, so weights of 1 give
/// [`fit_at`]'s fit exactly. The standardisation (mean, scale) stays unweighted.
pub fn fit_at_weighted(
    x: &Array2<f64>,
    y: &[usize],
    weights: Option<&[f64]>,
    n_classes: usize,
    c: f64,
    cfg: &ProbeConfig,
) -> Result<LinearProbe> {
    fit_at_weighted_owned(x.to_owned(), y, weights, n_classes, c, cfg)
}

/// [`fit_at_weighted`] on rows it owns: they are standardised in place, so a large set's
/// features are held once during the fit (the borrowing form copies them). The same fit, bit
/// for bit.
pub fn fit_at_weighted_owned(
    x: Array2<f64>,
    y: &[usize],
    weights: Option<&[f64]>,
    n_classes: usize,
    c: f64,
    cfg: &ProbeConfig,
) -> Result<LinearProbe> {
    check_features("training features", x.view(), y, n_classes)?;
    fit_owned_checked(x, y, weights, n_classes, c, cfg)
}

/// The fit on checked rows `x`, standardised in place.
pub(crate) fn fit_owned_checked(
    mut x: Array2<f64>,
    y: &[usize],
    weights: Option<&[f64]>,
    n_classes: usize,
    c: f64,
    cfg: &ProbeConfig,
) -> Result<LinearProbe> {
    if let Some(w) = weights {
        if w.len() != y.len() {
            return Err(ModelError::Inputs {
                reason: format!("{} loss weights for {} training rows", w.len(), y.len()),
            });
        }
        if let Some(bad) = w.iter().find(|v| !(**v >= 0.0 && v.is_finite())) {
            return Err(ModelError::Inputs {
                reason: format!("loss weight {bad} is not a finite number ≥ 0"),
            });
        }
    }
    let mean = x
        .mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(x.ncols()));
    let scale = x
        .std_axis(Axis(0), 0.0)
        .mapv(|s| if s > 1e-12 { s } else { 1.0 });
    // (x − mean) / scale, element by element as a new array would be: the same values
    x -= &mean;
    x /= &scale;
    let init = Array1::zeros((x.ncols() + 1) * n_classes);
    let problem = Objective {
        x: Arc::new(x),
        y: y.to_vec(),
        weights: weights.map(<[f64]>::to_vec),
        classes: n_classes,
        c,
        anchor: None,
    };
    solve(problem, init, (mean, scale), cfg)
}

/// The second step of a two-step fit: multinomial logistic regression on `x` whose L2 penalty
/// pulls the weights towards `anchor`'s instead of towards zero (`(1/n) [Σᵢ wᵢ ℓᵢ + ‖W −
/// W₀‖² / (2C)]`, the bias unpenalised), in `anchor`'s standardisation and started from its
/// weights. A large `C` forgets the anchor (the plain fit on `x`); a small one keeps it. Used to
/// fit on real images after a fit on real and synthetic ones: the synthetic images inform the
/// starting point, the real ones have the last word.
pub fn fit_at_anchored(
    x: &Array2<f64>,
    y: &[usize],
    c: f64,
    anchor: &LinearProbe,
    cfg: &ProbeConfig,
) -> Result<LinearProbe> {
    let (d, k) = (anchor.mean.len(), anchor.classes());
    check_features("training features", x.view(), y, k)?;
    if x.ncols() != d {
        return Err(ModelError::Shape {
            what: "features of an anchored fit",
            expected: format!("{d} columns (the anchor's)"),
            got: x.ncols().to_string(),
        });
    }
    let (mean, scale) = (
        Array1::from(anchor.mean.clone()),
        Array1::from(anchor.scale.clone()),
    );
    let w0 = Array2::from_shape_fn((d, k), |(i, j)| anchor.weights[i][j]);
    let mut init = Array1::zeros((d + 1) * k);
    for (i, v) in w0.iter().enumerate() {
        init[i] = *v;
    }
    for j in 0..k {
        init[d * k + j] = anchor.bias[j];
    }
    let problem = Objective {
        x: Arc::new((x - &mean) / &scale),
        y: y.to_vec(),
        weights: None,
        classes: k,
        c,
        anchor: Some(w0),
    };
    solve(problem, init, (mean, scale), cfg)
}

/// Minimises `problem` by L-BFGS from `init`; refuses a fit that did not converge. (The solver
/// takes a clone of the problem: its rows are shared, not copied.)
fn solve(
    problem: Objective,
    init: Array1<f64>,
    (mean, scale): (Array1<f64>, Array1<f64>),
    cfg: &ProbeConfig,
) -> Result<LinearProbe> {
    let c = problem.c;
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
        .with_tolerance_grad(cfg.tolerance)
        .and_then(|s| s.with_tolerance_cost(0.0))
        .map_err(|e| ModelError::config("tolerance", e.to_string()))?;
    let res = Executor::new(problem.clone(), solver)
        .configure(|s| s.param(init).max_iters(cfg.max_iterations))
        .run()
        .map_err(|e| ModelError::Solver {
            reason: e.to_string(),
        })?;
    let state = res.state();
    let iterations = state.get_iter();
    let params = state
        .get_best_param()
        .cloned()
        .ok_or_else(|| ModelError::Solver {
            reason: "it returned no parameters".into(),
        })?;
    let grad = problem.grad(&params);
    let gradient_norm = grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    let converged = matches!(
        state.get_termination_status(),
        TerminationStatus::Terminated(TerminationReason::SolverConverged)
    ) || gradient_norm <= cfg.tolerance;
    if !converged || !gradient_norm.is_finite() {
        return Err(ModelError::ProbeNotConverged {
            c,
            iterations,
            gradient_norm,
        });
    }
    let (w, b) = problem.unpack(&params);
    Ok(LinearProbe {
        mean: mean.to_vec(),
        scale: scale.to_vec(),
        weights: w.outer_iter().map(|r| r.to_vec()).collect(),
        bias: b.to_vec(),
        c,
        iterations,
    })
}
