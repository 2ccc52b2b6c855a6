#!/usr/bin/env python3
"""Side-by-side timings: ganaug's criterion benches vs the PyTorch / Pillow / torchvision
reference scripts in ../shared/peer (or PEER_DIR), run in one go on this machine, as ratios.

Usage (after scripts/setup.sh; scripts/compare_peers.sh installs the peers' Python packages):
    .venv/bin/python scripts/compare_peers.py [--full] [--data DIR]

Each pair runs back to back (ours, then the peer) so that both see the same machine load.
A ratio below 1 means ganaug is faster. --full adds the 256² GAN and CNN steps (slow on a CPU).

ganaug's benches (like its examples) tell glibc's allocator to keep freed memory
(`ganaug::init_process`); the PyTorch pairs are therefore also timed with the same setting given
to PyTorch through GLIBC_TUNABLES, in a second column, so both ratios are on the table.
"""

import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ours(bench, group, name):
    """Runs one criterion bench and returns its median in seconds."""
    env = dict(os.environ, LIBTORCH_USE_PYTORCH="1", THP_MEM_ALLOC_ENABLE=os.environ.get("THP_MEM_ALLOC_ENABLE", "0"))
    subprocess.run(["cargo", "bench", "--bench", bench, "--", f"^{group}/{re.escape(name)}$"],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = os.path.join(ROOT, "target", "criterion", group, name.replace("/", "_"), "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"] / 1e9


# What `ganaug_ops::keep_freed_memory` sets in-process, as glibc tunables for another program.
SAME_MALLOC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647"


def peer(script, *args, pattern, same_malloc=False):
    """Runs a reference script of the peer folder and parses seconds from its output."""
    return peer_at(PEER, script, *args, pattern=pattern, same_malloc=same_malloc)


ROOT_SCRIPTS = os.path.join(ROOT, "scripts")


def peer_at(folder, script, *args, pattern, same_malloc=False):
    """Runs a reference script and parses seconds from its output with `pattern`."""
    env = dict(os.environ)
    if same_malloc:
        env["GLIBC_TUNABLES"] = SAME_MALLOC
    out = subprocess.run([sys.executable, os.path.join(folder, script), *map(str, args)],
                         check=True, capture_output=True, text=True, env=env).stdout
    m = re.search(pattern, out)
    if not m:
        raise SystemExit(f"compare_peers: cannot read the time from {script}'s output:\n{out}")
    return float(m.group(1))


def main():
    global PEER
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="also the 256² GAN and CNN steps")
    ap.add_argument("--data", default=os.environ.get("COVID_CT_DIR"), help="COVID-CT folder (data loading pair)")
    ap.add_argument("--peer-dir", default=os.environ.get("PEER_DIR", os.path.join(ROOT, "..", "shared", "peer")))
    a = ap.parse_args()
    PEER = a.peer_dir
    rows = []
    if a.data:
        os.environ["COVID_CT_DIR"] = a.data
        rows.append(("decode+gray+resize 746 images to 224²", ours("data", "data", "cpu/decode_gray_resize_746_to_224_cold"),
                     peer("pil_load.py", a.data, 224, pattern=r"seconds=([\d.]+)"), "Pillow"))
    else:
        print("(no --data / COVID_CT_DIR: data loading pair skipped)")
    rows.append(("flips + rotation ≤45°, 256 images 224²", ours("augment", "augment", "cpu/paper_flip_flip_rot45_224_b256_nearest"),
                 peer("tv_augment.py", 224, 256, pattern=r" s=([\d.]+)"), "torchvision v2"))
    for kind, variant, size in [("effnet-lite0", "lite0", 224), ("effnet-lite2", "lite2", 260)]:
        o = ours("models", "features", f"cpu/{kind}_256_at_{size}")
        args = ("peer_lite_features.py", "--model", variant, "--size", size)
        p = peer_at(ROOT_SCRIPTS, *args, pattern=r"seconds=([\d.]+)")
        p_same = peer_at(ROOT_SCRIPTS, *args, pattern=r"seconds=([\d.]+)", same_malloc=True)
        rows.append((f"frozen {variant} features, 256 images {size}²", o, p, "PyTorch (faster layout)", p_same))
    sizes = [64, 256] if a.full else [64]
    for s in sizes:
        for model, bench_file, group, bench in [
                ("gan", "gan", "gan_step", f"cpu/paper_fc128_{s}px_b32"),
                ("cnn", "models", "classifier", f"cpu/cnn_train_step_{s}px_b32")]:
            o = ours(bench_file, group, bench)
            args = ("torch_paper_models.py", "--models", model, "--size", s)
            p = peer(*args, pattern=r"s/step=([\d.]+)")
            p_same = peer(*args, pattern=r"s/step=([\d.]+)", same_malloc=True)
            rows.append((f"paper {model.upper()} training step {s}² b32", o, p, "PyTorch", p_same))
    w = max(len(r[0]) for r in rows)
    print(f"{'work':<{w}}  {'ganaug':>10}  {'peer':>10}  {'ratio':>6}  {'peer*':>10}  {'ratio*':>6}  peer")
    for name, o, p, who, *same in rows:
        extra = f"  {same[0]:>9.4f}s  {o / same[0]:>6.2f}" if same else f"  {'':>10}  {'':>6}"
        print(f"{name:<{w}}  {o:>9.4f}s  {p:>9.4f}s  {o / p:>6.2f}{extra}  {who}")
    print("* the peer run with the allocator setting ganaug's benches use (GLIBC_TUNABLES)")


if __name__ == "__main__":
    main()
