#!/usr/bin/env bash
# Sets up (if needed) and runs ganaug's main job. Arguments go to the example, e.g.
#   scripts/run.sh --data path/to/covid-ct
# With no --data it uses the embedded synthetic phantom dataset (a stand-in, not real CT).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
. scripts/env.sh
cargo run --release --example dataset_summary -- "$@"
