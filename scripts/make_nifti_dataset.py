#!/usr/bin/env python3
"""Writes a two-class folder of synthetic CT volumes as NIfTI files, to try ganaug's volume
reading end to end (`reproduce --data OUT --preset tiny --features nifti`).

Usage: make_nifti_dataset.py OUT_DIR [--patients N] [--seed S]

OUT_DIR/lesion/patientNN.nii.gz and OUT_DIR/clear/patientNN.nii.gz: 48x48x12 volumes in HU
(air outside an elliptic body, lung fields inside); `lesion` volumes hold a few dense nodules.
Each file is stored in one of several orientations (RAS, LPS, slices first, ...), written
with its affine, so a reader that ignores orientation sees mirrored or sideways slices.
Procedural, not real CT.
"""

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np

# (permutation of canonical axes into stored axes, flips of the stored axes)
ORIENTATIONS = [((0, 1, 2), (False, False, False)), ((0, 1, 2), (True, True, False)),
                ((2, 0, 1), (True, False, False)), ((1, 0, 2), (False, True, True))]


def volume(rng, lesion, shape=(48, 48, 12)):
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    hu = np.full(shape, -1000.0)
    body = (x / 0.9) ** 2 + (y / 0.7) ** 2 < 1
    hu[body] = 40.0
    for side in (-0.42, 0.42):
        lung = ((x - side) / 0.33) ** 2 + (y / 0.5) ** 2 + (z / 1.3) ** 2 < 1
        hu[lung] = -850.0
    hu += rng.normal(0, 25, shape)
    if lesion:
        for _ in range(rng.integers(2, 5)):
            c = [rng.choice([-0.42, 0.42]) + rng.uniform(-0.15, 0.15), rng.uniform(-0.3, 0.3), rng.uniform(-0.6, 0.6)]
            r = rng.uniform(0.08, 0.16)
            hu[((x - c[0]) ** 2 + (y - c[1]) ** 2 + ((z - c[2]) / 2) ** 2) < r * r] = rng.uniform(-100, 60)
    return hu


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--patients", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    for cls, lesion in (("lesion", True), ("clear", False)):
        (a.out / cls).mkdir(parents=True, exist_ok=True)
        for p in range(a.patients):
            ras = volume(rng, lesion)
            perm, flips = ORIENTATIONS[p % len(ORIENTATIONS)]
            stored = ras.transpose(perm)
            affine = np.zeros((4, 4))
            affine[3, 3] = 1
            spacing = (0.8, 0.8, 2.5)
            for stored_axis, canon_axis in enumerate(perm):
                sign = -1.0 if flips[stored_axis] else 1.0
                affine[canon_axis, stored_axis] = sign * spacing[canon_axis]
            for stored_axis, flip in enumerate(flips):
                if flip:
                    stored = np.flip(stored, stored_axis)
            img = nib.Nifti1Image(np.round(stored).astype(np.int16), affine)
            nib.save(img, a.out / cls / f"patient{p:02d}.nii.gz")
    print(f"wrote {2 * a.patients} volumes to {a.out}")


if __name__ == "__main__":
    main()
