#!/usr/bin/env python3
"""Compares two `reproduce` result folders of the same configuration: every cell's per-image
test probabilities, the synthetic sets' selections and measures, the CAS, the resolution gap,
the refused sets, and the final weights of every GAN (bit for bit); for a scarcity study, every
subset's cells, GANs and sets and the worth entries. Prints one line per item and exits 1 if
anything differs.

    scripts/compare_runs.py results/before results/after
"""
import json
import sys
from pathlib import Path


def cells(folder):
    r = json.loads((Path(folder) / "results.json").read_text())
    return r, {(c["model"], c["scenario"], c["seed"]): c for c in r["cells"]}


def gan_weights(folder, gan):
    ckpts = sorted((Path(folder) / gan["dir"] / "checkpoints").glob("epoch_*.safetensors"))
    if not ckpts:
        return None
    from safetensors.numpy import load_file  # only needed for the GAN comparison

    return load_file(str(ckpts[-1]))


def same_weights(a, b, ga, gb):
    """Whether two GANs' final checkpoints hold the same tensors (None: one has none)."""
    wa, wb = gan_weights(a, ga), gan_weights(b, gb)
    if wa is None or wb is None:
        return None
    return wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)


def without_times(v):
    """`v` without its wall times (every key naming seconds)."""
    if isinstance(v, dict):
        return {k: without_times(x) for k, x in v.items() if "seconds" not in k}
    if isinstance(v, list):
        return [without_times(x) for x in v]
    return v


def study(a, b, ra, rb):
    """The differences between two scarcity studies, printed."""
    sa, sb = ra["scarcity"], rb["scarcity"]
    key = lambda c: (c["fraction"], c["resample"], json.dumps(c["arm"]), c["cell"]["model"], c["cell"]["seed"])
    xa, xb = {key(c): c for c in sa["cells"]}, {key(c): c for c in sb["cells"]}
    differ = 0
    for k in sorted(set(xa) | set(xb)):
        x, y = xa.get(k), xb.get(k)
        if x is None or y is None:
            print(f"study cell {k}: only in {'after' if x is None else 'before'}")
            differ += 1
            continue
        same = x["cell"]["probs"] == y["cell"]["probs"] and x["cell"]["real_data"] == y["cell"]["real_data"]
        print(
            f"study cell {k}: per-image probabilities {'identical' if same else 'DIFFER'}"
            f"; accuracy {x['cell']['accuracy']['value']:.3f} / {y['cell']['accuracy']['value']:.3f}"
        )
        differ += not same
    for (fa, r, ga), (_, _, gb) in zip(sa["gans"], sb["gans"]):
        same = same_weights(a, b, ga, gb)
        if same is None:
            print(f"study GAN {ga['name']} (f={fa} r{r}): no checkpoint to compare")
            continue
        print(f"study GAN {ga['name']} (f={fa} r{r}): final checkpoint tensors {'identical' if same else 'DIFFER'}")
        differ += not same
    for what in ("subsets", "synthetic", "entries", "gans"):
        same = without_times(sa[what]) == without_times(sb[what])
        print(f"study {what}: {'identical' if same else 'DIFFER'}")
        differ += not same
    return differ


def main(a, b):
    ra, ca = cells(a)
    rb, cb = cells(b)
    differ = 0
    if ra.get("scarcity") or rb.get("scarcity"):
        if not (ra.get("scarcity") and rb.get("scarcity")):
            print("scarcity study: only in one run")
            differ += 1
        else:
            differ += study(a, b, ra, rb)
    for key in sorted(set(ca) | set(cb)):
        x, y = ca.get(key), cb.get(key)
        if x is None or y is None:
            print(f"{key}: only in {'after' if x is None else 'before'}")
            differ += 1
            continue
        same = x["probs"] == y["probs"] and x["labels"] == y["labels"]
        worst = max(
            abs(p - q) for rp, rq in zip(x["probs"], y["probs"]) for p, q in zip(rp, rq)
        )
        print(
            f"{key}: per-image probabilities {'identical' if same else f'differ (max |Δ| {worst:.3g})'}"
            f"; accuracy {x['accuracy']['value']:.3f} / {y['accuracy']['value']:.3f}"
            f"; epochs {x['epochs']} / {y['epochs']}"
        )
        differ += not same
    for ga, gb in zip(ra["gans"], rb["gans"]):
        same = same_weights(a, b, ga, gb)
        if same is None:
            print(f"GAN {ga['name']}: no checkpoint to compare")
            continue
        print(f"GAN {ga['name']}: final checkpoint tensors {'identical' if same else 'DIFFER'}")
        differ += not same
    for sa, sb in zip(ra["synthetic"], rb["synthetic"]):
        same = all(sa.get(k) == sb.get(k) for k in ("measures", "fid", "kid", "selection"))
        print(
            f"synthetic {sa['gan']}/{sa['class']}: selection and measures "
            f"{'identical' if same else 'DIFFER'}"
        )
        differ += not same
    for what in ("cas", "resolution_gap", "refused"):
        same = ra.get(what) == rb.get(what)
        print(f"{what}: {'identical' if same else 'DIFFER'}")
        differ += not same
    print("ALL IDENTICAL" if differ == 0 else f"{differ} DIFFERENCES")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
