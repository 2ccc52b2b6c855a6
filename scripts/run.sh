#!/usr/bin/env bash
# Sets up (if needed) and runs ganaug's main job, the paper reproduction (`ganaug reproduce`,
# cpu preset unless --preset says otherwise), without installing the command. Arguments go to
# `ganaug reproduce`, e.g.
#   scripts/run.sh --data path/to/covid-ct
#   scripts/run.sh --data path/to/covid-ct --preset paper --device cuda
# With no --data it uses the embedded synthetic phantom dataset (a stand-in, not real CT).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
. scripts/env.sh
# Transparent huge pages for libtorch's CPU allocator: large fresh tensors (a decoded dataset,
# augmentation grids) then cost far fewer page faults.
export THP_MEM_ALLOC_ENABLE="${THP_MEM_ALLOC_ENABLE:-1}"
cargo run --release -p ganaug-cli --bin ganaug -- reproduce "$@"
