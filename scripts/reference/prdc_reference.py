#!/usr/bin/env python3
"""Reference precision / recall / density / coverage and mean pairwise distance for
ganaug-metrics, computed with the `prdc` package (Naeem et al. 2020's code) and NumPy.

Fixed features (numpy, fixed seed): a real set, a synthetic set shifted and narrowed, and a
collapsed one (one point plus tiny noise), at k = 3 and 5. Writes them and the values to
crates/metrics/tests/prdc_reference.json, which crates/metrics/tests/prdc_reference.rs reads.

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install numpy scikit-learn prdc==0.2
    /tmp/refvenv/bin/python scripts/reference/prdc_reference.py
"""

import contextlib
import io
import json
import pathlib

import numpy as np
from prdc import compute_prdc

SEED = 20261201
OUT = pathlib.Path(__file__).resolve().parents[2] / "crates" / "metrics" / "tests" / "prdc_reference.json"


def mean_pairwise(x):
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    n = len(x)
    return float(d.sum() / (n * (n - 1)))


def main():
    rng = np.random.RandomState(SEED)
    real = rng.normal(size=(60, 8))
    fake = 0.6 * rng.normal(size=(45, 8)) + 0.4
    collapsed = 1.0 + 1e-3 * rng.normal(size=(30, 8))
    cases = []
    for name, f in [("shifted", fake), ("collapsed", collapsed)]:
        for k in [3, 5]:
            with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the counts
                m = compute_prdc(real, f, nearest_k=k)
            cases.append({"name": name, "k": k, **{key: float(v) for key, v in m.items()}})
    out = {
        "source": "prdc 0.2 (compute_prdc), numpy " + np.__version__,
        "real": real.tolist(),
        "fake": {"shifted": fake.tolist(), "collapsed": collapsed.tolist()},
        "cases": cases,
        "mean_pairwise": {"real": mean_pairwise(real), "shifted": mean_pairwise(fake),
                          "collapsed": mean_pairwise(collapsed)},
    }
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out) + "\n")
    tmp.replace(OUT)
    print(f"wrote {OUT}: {cases}")


if __name__ == "__main__":
    main()
