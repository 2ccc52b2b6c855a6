#!/usr/bin/env python3
"""Peer baseline for ganaug's `features` bench: frozen EfficientNet-Lite features in PyTorch.

256 grayscale images [256, 1, S, S] in [0, 1], normalised (255·x − 127)/128 and repeated to 3
channels as ganaug's model does, through the efficientnet_lite_pytorch port's
`extract_features` and a global average pool, in batches of 32, under torch.inference_mode().
Both memory layouts are timed (NCHW, channels-last) and the faster one is reported, so ganaug is
compared with PyTorch at its best. Random weights: the work does not depend on their values.

    .venv/bin/python -m pip install --no-deps efficientnet_lite_pytorch==0.1.0
    .venv/bin/python scripts/peer_lite_features.py --model lite2 --size 260
Prints `model=… size=… layout=… seconds=…` (median of --repeats runs over the 256 images).
"""

import argparse
import statistics
import time

import torch
from efficientnet_lite_pytorch import EfficientNet


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lite0", choices=["lite0", "lite1", "lite2"])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    torch.manual_seed(0)
    # the port fixes its "same" padding from image_size: build it for the size timed
    net = EfficientNet.from_name(f"efficientnet-{a.model}", image_size=a.size).eval()
    x = torch.rand(a.images, 1, a.size, a.size)

    def run(model, channels_last):
        out = []
        with torch.inference_mode():
            for b in x.split(a.batch):
                b = ((b * 255.0 - 127.0) / 128.0).expand(-1, 3, -1, -1)
                if channels_last:
                    b = b.contiguous(memory_format=torch.channels_last)
                f = model.extract_features(b)
                out.append(torch.nn.functional.adaptive_avg_pool2d(f, 1).flatten(1))
        return torch.cat(out)

    best = None
    for layout in ["nchw", "channels_last"]:
        model = net.to(memory_format=torch.channels_last) if layout == "channels_last" else net
        assert run(model, layout == "channels_last").shape == (a.images, 1280)
        times = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            run(model, layout == "channels_last")
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        print(f"  {layout}: {med:.3f} s")
        if best is None or med < best[1]:
            best = (layout, med)
    print(f"model={a.model} size={a.size} layout={best[0]} seconds={best[1]:.4f}")


if __name__ == "__main__":
    main()
