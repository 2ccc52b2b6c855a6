#!/usr/bin/env python3
"""Reference values for ganaug-models' linear probe, computed with scikit-learn: plain fits,
fits with sample weights (ganaug's `fit_at_weighted`, used for the synthetic-image loss weight),
and out-of-fold probabilities over ganaug's stratified folds (`out_of_fold_proba`, behind the
synthetic-set gate's real-vs-synthetic probe AUC).

Builds a small fixed feature matrix (numpy, fixed seed; three classes, features on different
scales), standardises it as the probe does (mean, standard deviation with ddof=0), fits
scikit-learn's multinomial LogisticRegression (lbfgs, tight tolerance) at several C and writes
inputs and test probabilities to crates/models/tests/probe_reference.json, which
crates/models/tests/probe_reference.rs reads.

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install numpy scikit-learn
    /tmp/refvenv/bin/python scripts/reference/probe_reference.py

The probe minimises scikit-learn's objective divided by the sample count (same minimiser); the
softmax intercepts are identified only up to a common shift, so the probabilities are compared.
"""

import json
import pathlib

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import PredefinedSplit, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SEED = 20261201
OUT = pathlib.Path(__file__).resolve().parents[2] / "crates" / "models" / "tests" / "probe_reference.json"


def main():
    rng = np.random.RandomState(SEED)
    n, d, k = 90, 6, 3
    y = np.arange(n) % k
    centres = rng.normal(size=(k, d)) * 1.5
    scales = np.array([1.0, 10.0, 0.1, 3.0, 1.0, 100.0])
    x = (centres[y] + rng.normal(size=(n, d))) * scales
    x_test = (centres[np.arange(30) % k] + rng.normal(size=(30, d))) * scales
    mean, std = x.mean(axis=0), x.std(axis=0)
    z, z_test = (x - mean) / std, (x_test - mean) / std
    fits = []
    for c in [0.01, 0.1, 1.0, 10.0]:
        lr = LogisticRegression(C=c, solver="lbfgs", tol=1e-12, max_iter=100000)
        lr.fit(z, y)
        fits.append({"c": c, "test_probs": lr.predict_proba(z_test).tolist()})
    # sample weights: the last third of the rows count 0.3 (as synthetic images with weight 0.3)
    w = np.where(np.arange(n) < 60, 1.0, 0.3)
    weighted = []
    for c in [0.1, 1.0]:
        lr = LogisticRegression(C=c, solver="lbfgs", tol=1e-12, max_iter=100000)
        lr.fit(z, y, sample_weight=w)
        weighted.append({"c": c, "test_probs": lr.predict_proba(z_test).tolist()})
    # out-of-fold probabilities, two classes (real vs synthetic), ganaug's folds: the i-th row of
    # each class goes to fold i mod 5; each fold standardised by its training rows' statistics
    a = rng.normal(size=(40, d)) * scales
    b = (rng.normal(size=(40, d)) + 0.4) * scales
    xs = np.concatenate([a, b])
    ys = np.repeat([0, 1], 40)
    rank = np.concatenate([np.arange(40), np.arange(40)])
    folds = rank % 5
    # With two classes scikit-learn fits the binary model (one weight vector w); ganaug's softmax
    # keeps one per class, W1 = -W0 = w/2 at the optimum, so its penalty is |w|^2/4: ganaug's C
    # equals scikit-learn's C / 2. ganaug C = 0.1 is scikit-learn C = 0.2.
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.2, solver="lbfgs", tol=1e-12, max_iter=100000))
    oof = cross_val_predict(model, xs, ys, cv=PredefinedSplit(folds), method="predict_proba")
    OUT.write_text(json.dumps({
        "sklearn": sklearn.__version__,
        "classes": k,
        "x": x.tolist(),
        "y": y.tolist(),
        "x_test": x_test.tolist(),
        "fits": fits,
        "weights": w.tolist(),
        "weighted_fits": weighted,
        "oof": {"x": xs.tolist(), "y": ys.tolist(), "c": 0.1, "k": 5, "probs": oof.tolist()},
    }, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
