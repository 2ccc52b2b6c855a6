#!/usr/bin/env bash
# Installs what the reference scripts need (Pillow, NumPy, torchvision 0.26.0 next to the
# set-up's torch 2.11.0) into .venv, then prints ganaug vs peer timings as ratios.
# Usage: scripts/compare_peers.sh [--full] [--data DIR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
if ! .venv/bin/python -c "import PIL, numpy, torchvision" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check pillow numpy
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps "torchvision==0.26.0"
fi
if ! .venv/bin/python -c "import efficientnet_lite_pytorch" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps "efficientnet_lite_pytorch==0.1.0"
fi
. scripts/env.sh
exec .venv/bin/python scripts/compare_peers.py "$@"
