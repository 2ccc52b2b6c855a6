#!/usr/bin/env python3
"""Reference values for ganaug-models' linear probe, computed with scikit-learn.

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
    OUT.write_text(json.dumps({
        "sklearn": sklearn.__version__,
        "classes": k,
        "x": x.tolist(),
        "y": y.tolist(),
        "x_test": x_test.tolist(),
        "fits": fits,
    }, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
