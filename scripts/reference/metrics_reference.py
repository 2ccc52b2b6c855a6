#!/usr/bin/env python3
"""Reference values for ganaug-metrics, computed with scikit-learn and SciPy.

Builds small fixed inputs (numpy, fixed seed), computes every statistic the Rust crate checks
against, and writes inputs and outputs to crates/metrics/tests/reference.json, which
crates/metrics/tests/reference.rs reads.

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install numpy scipy scikit-learn
    /tmp/refvenv/bin/python scripts/reference/metrics_reference.py

Conventions matched on the Rust side: rows of the confusion matrix are true classes; undefined
ratios are 0 (zero_division=0); averages run over labels=range(C); predictions are the argmax of
the probabilities (ties to the lowest class); covariances use ddof=1.
"""

import json
import pathlib

import numpy as np
import scipy
import scipy.linalg
import scipy.spatial.distance
import scipy.stats
import sklearn
from sklearn import metrics as skm

SEED = 20240606
OUT = pathlib.Path(__file__).resolve().parents[2] / "crates" / "metrics" / "tests" / "reference.json"


def floats(a):
    return [float(x) for x in np.asarray(a, dtype=np.float64).ravel()]


def matrix(a):
    return [floats(row) for row in np.asarray(a, dtype=np.float64)]


def ints(a):
    return [int(x) for x in np.asarray(a).ravel()]


def specificity(cm, k):
    tp = cm[k, k]
    fp = cm[:, k].sum() - tp
    fn = cm[k, :].sum() - tp
    tn = cm.sum() - tp - fp - fn
    return tn / (tn + fp) if tn + fp > 0 else 0.0


def classification_case(labels, probs):
    """Everything computed from labels and an [N, C] probability matrix."""
    c = probs.shape[1]
    ks = list(range(c))
    preds = probs.argmax(axis=1)
    cm = skm.confusion_matrix(labels, preds, labels=ks)
    prf = dict(labels=ks, zero_division=0)
    out = {
        "labels": ints(labels),
        "probs": matrix(probs),
        "preds": ints(preds),
        "confusion": [ints(r) for r in cm],
        "accuracy": float(skm.accuracy_score(labels, preds)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(labels, preds)),
        "mcc": float(skm.matthews_corrcoef(labels, preds)),
        "precision_per_class": floats(skm.precision_score(labels, preds, average=None, **prf)),
        "recall_per_class": floats(skm.recall_score(labels, preds, average=None, **prf)),
        "f1_per_class": floats(skm.f1_score(labels, preds, average=None, **prf)),
        "specificity_per_class": [float(specificity(cm, k)) for k in ks],
    }
    for avg in ["macro", "weighted"]:
        out[f"precision_{avg}"] = float(skm.precision_score(labels, preds, average=avg, **prf))
        out[f"recall_{avg}"] = float(skm.recall_score(labels, preds, average=avg, **prf))
        out[f"f1_{avg}"] = float(skm.f1_score(labels, preds, average=avg, **prf))
    out["auc_per_class"] = [
        float(skm.roc_auc_score(labels == k, probs[:, k])) if 0 < (labels == k).sum() < len(labels) else None
        for k in ks
    ]
    if c > 2 and all(a is not None for a in out["auc_per_class"]):
        out["auc_ovr_macro"] = float(skm.roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=ks))
        out["auc_ovr_weighted"] = float(
            skm.roc_auc_score(labels, probs, multi_class="ovr", average="weighted", labels=ks)
        )
    return out


def binary_positive(labels, probs, positive):
    """Binary statistics with class `positive` as the positive class."""
    preds = probs.argmax(axis=1)
    score = probs[:, positive]
    out = {"positive": positive}
    out["precision"] = float(skm.precision_score(labels, preds, pos_label=positive, zero_division=0))
    out["recall"] = float(skm.recall_score(labels, preds, pos_label=positive, zero_division=0))
    out["f1"] = float(skm.f1_score(labels, preds, pos_label=positive, zero_division=0))
    out["specificity"] = float(specificity(skm.confusion_matrix(labels, preds, labels=[0, 1]), positive))
    out["auc"] = float(skm.roc_auc_score(labels == positive, score))
    for drop in [False, True]:
        fpr, tpr, thr = skm.roc_curve(labels, score, pos_label=positive, drop_intermediate=drop)
        assert np.isinf(thr[0])
        key = "roc_dropped" if drop else "roc_full"
        # The first threshold is +inf (not representable in JSON): written as null.
        out[key] = {"fpr": floats(fpr), "tpr": floats(tpr), "thresholds": [None] + floats(thr[1:])}
    return out


def binary_cases(rng):
    cases = []
    # Scores on a 0.1 grid: many ties, some between the classes.
    labels = rng.integers(0, 2, size=40)
    p1 = np.clip(np.round(0.5 + 0.3 * (labels - 0.5) + rng.normal(0, 0.25, size=40), 1), 0.0, 1.0)
    cases.append(("ties", labels, p1))
    # Continuous scores, unbalanced classes.
    labels = (rng.random(57) < 0.3).astype(int)
    p1 = 1.0 / (1.0 + np.exp(-(1.2 * labels - 0.6 + rng.normal(0, 1.0, size=57))))
    cases.append(("continuous", labels, p1))
    out = []
    for name, labels, p1 in cases:
        probs = np.stack([1.0 - p1, p1], axis=1)
        case = classification_case(labels, probs)
        case["name"] = name
        case["scores_class1"] = floats(p1)
        case["by_positive"] = [binary_positive(labels, probs, pos) for pos in [0, 1]]
        out.append(case)
    return out


def multiclass_cases(rng):
    out = []
    labels = rng.integers(0, 3, size=60)
    logits = rng.normal(0, 1.0, size=(60, 3))
    logits[np.arange(60), labels] += 1.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    case = classification_case(labels, probs)
    case["name"] = "three_classes"
    out.append(case)
    # Four classes, class 3 present but never predicted: zero_division paths.
    labels = rng.integers(0, 4, size=45)
    logits = rng.normal(0, 1.0, size=(45, 4))
    logits[np.arange(45), labels] += 1.5
    logits[:, 3] -= 10.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    case = classification_case(labels, probs)
    case["name"] = "never_predicted"
    assert (np.asarray(case["preds"]) != 3).all()
    out.append(case)
    return out


def wilson_cases():
    out = []
    for s, n, conf in [(81, 263, 0.95), (0, 20, 0.95), (20, 20, 0.95), (5, 10, 0.95), (1, 3, 0.9),
                       (170, 203, 0.95), (170, 203, 0.99), (37, 50, 0.8), (1, 1, 0.95), (999, 1000, 0.999)]:
        ci = scipy.stats.binomtest(s, n).proportion_ci(confidence_level=conf, method="wilson")
        # The score interval written out, as a cross-check of SciPy's.
        z = scipy.stats.norm.ppf(0.5 + conf / 2)
        p = s / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        assert abs(max(centre - half, 0.0) - ci.low) < 1e-12 and abs(min(centre + half, 1.0) - ci.high) < 1e-12
        out.append({"successes": s, "trials": n, "confidence": conf, "lower": float(ci.low), "upper": float(ci.high)})
    return out


def mcnemar_cases(rng):
    counts = []
    for b, c in [(0, 10), (10, 0), (5, 5), (1, 5), (12, 25), (30, 50), (3, 4), (0, 0), (0, 1), (100, 140),
                 (450, 560), (2000, 2100)]:
        p = 1.0 if b + c == 0 else scipy.stats.binomtest(b, b + c, 0.5).pvalue
        counts.append({"b": b, "c": c, "p_value": float(p)})
    labels = rng.integers(0, 2, size=80)
    a = np.where(rng.random(80) < 0.8, labels, 1 - labels)
    bb = np.where(rng.random(80) < 0.65, labels, 1 - labels)
    ca, cb = a == labels, bb == labels
    only_a, only_b = int((ca & ~cb).sum()), int((~ca & cb).sum())
    paired = {
        "labels": ints(labels),
        "preds_a": ints(a),
        "preds_b": ints(bb),
        "both_correct": int((ca & cb).sum()),
        "only_a": only_a,
        "only_b": only_b,
        "both_wrong": int((~ca & ~cb).sum()),
        "p_value": float(scipy.stats.binomtest(only_a, only_a + only_b, 0.5).pvalue),
    }
    return {"counts": counts, "paired": paired}


def fid_numpy(mu1, s1, mu2, s2):
    """pytorch-fid's formula with scipy.linalg.sqrtm."""
    covmean = np.real(scipy.linalg.sqrtm(s1 @ s2))
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def fid_cases(rng):
    x = rng.normal(0, 1, size=(50, 6)) @ rng.normal(0, 0.7, size=(6, 6))
    y = rng.normal(0.3, 1, size=(40, 6)) @ rng.normal(0, 0.9, size=(6, 6)) + 0.5
    mu1, s1 = x.mean(axis=0), np.cov(x, rowvar=False)
    mu2, s2 = y.mean(axis=0), np.cov(y, rowvar=False)
    feats = {
        "x": matrix(x),
        "y": matrix(y),
        "mean_x": floats(mu1),
        "cov_x": matrix(s1),
        "fid": fid_numpy(mu1, s1, mu2, s2),
    }
    a = rng.normal(0, 1, size=(4, 4))
    b = rng.normal(0, 1, size=(4, 4))
    sa, sb = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    ma, mb = rng.normal(0, 1, size=4), rng.normal(0, 1, size=4)
    stats = {"mu1": floats(ma), "sigma1": matrix(sa), "mu2": floats(mb), "sigma2": matrix(sb),
             "fid": fid_numpy(ma, sa, mb, sb)}
    return {"features": feats, "stats": stats}


def kid_case(rng):
    """Unbiased MMD² with k(x, y) = (x.y / d + 1)^3 on whole sets (torch-fidelity's estimator).

    With subsets as large as both sets, every subset is a permutation of the whole set, so the
    Rust KID must give exactly this value whatever its random draws.
    """
    x = rng.normal(0, 1, size=(30, 5))
    y = rng.normal(0.4, 1.2, size=(30, 5))
    d, m = x.shape[1], x.shape[0]
    k = lambda a, b: (a @ b.T / d + 1) ** 3
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    mmd2 = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / (m * m)
    return {"x": matrix(x), "y": matrix(y), "mmd2": float(mmd2)}


def nearest_case(rng):
    train = rng.normal(0, 1, size=(25, 8))
    syn = rng.normal(0, 1, size=(15, 8))
    syn[3] = train[7]  # one exact copy
    dist = scipy.spatial.distance.cdist(syn, train)
    nn = dist.min(axis=1)
    return {"synthetic": matrix(syn), "training": matrix(train), "indices": ints(dist.argmin(axis=1)),
            "distances": floats(nn), "mean": float(nn.mean()), "min": float(nn.min()), "median": float(np.median(nn))}


def main():
    rng = np.random.default_rng(SEED)
    values = rng.uniform(0.7, 0.9, size=7)
    ref = {
        "generator": {"script": "scripts/reference/metrics_reference.py", "seed": SEED, "numpy": np.__version__,
                      "scipy": scipy.__version__, "sklearn": sklearn.__version__},
        "binary": binary_cases(rng),
        "multiclass": multiclass_cases(rng),
        "wilson": wilson_cases(),
        "normal_quantile": [{"p": p, "z": float(scipy.stats.norm.ppf(p))}
                            for p in [1e-12, 1e-5, 0.001, 0.025, 0.1, 0.3, 0.5, 0.8, 0.975, 0.999, 1 - 1e-9]],
        "mcnemar": mcnemar_cases(rng),
        "fid": fid_cases(rng),
        "kid": kid_case(rng),
        "nearest": nearest_case(rng),
        "summary": {"values": floats(values), "mean": float(values.mean()), "sd": float(values.std(ddof=1)),
                    "min": float(values.min()), "max": float(values.max())},
    }
    OUT.write_text(json.dumps(ref, indent=1, allow_nan=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
