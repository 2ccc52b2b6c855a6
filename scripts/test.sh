#!/usr/bin/env bash
# Sets up (if needed) and runs the whole test suite. Extra arguments go to `cargo test`.
# Tests that need the real COVID-CT dataset run when COVID_CT_DIR points at it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
. scripts/env.sh
cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
