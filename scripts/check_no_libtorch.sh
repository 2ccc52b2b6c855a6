#!/usr/bin/env bash
# Builds what must build with no libtorch anywhere in sight: ganaug-data without its `tch`
# feature, ganaug-metrics, and the documentation of every crate (tch's doc-only mode, as
# docs.rs builds it). Runs in a scrubbed environment: no LIBTORCH, no .venv on PATH or on the
# library path, so a dependency on libtorch fails here instead of finding ours.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cargo_bin="$(dirname "$(command -v cargo)")"
clean=(env -i "HOME=$HOME" "PATH=$cargo_bin:/usr/local/bin:/usr/bin:/bin"
  "CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}" "CARGO_TERM_COLOR=never")
# (cargo's own settings and the network's pass through: a clean machine may fetch crates here)
for v in CARGO_HOME RUSTUP_HOME RUSTUP_TOOLCHAIN CARGO_INCREMENTAL CARGO_NET_OFFLINE \
  CARGO_REGISTRIES_CRATES_IO_PROTOCOL http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy \
  NO_PROXY SSL_CERT_FILE SSL_CERT_DIR NIX_SSL_CERT_FILE CARGO_HTTP_CAINFO RUSTUP_AUTO_INSTALL; do
  if [ -n "${!v:-}" ]; then clean+=("$v=${!v}"); fi
done
# (JPEG-LS is left out: its codec is C++ built with cmake, which only .venv provides here.)
features=dicom,dicom-jpeg2000,nifti
for pkg in "ganaug-data --no-default-features --features $features" "ganaug-metrics"; do
  # shellcheck disable=SC2086
  if "${clean[@]}" cargo tree -e normal,build -p $pkg | grep -E "^.*(torch-sys|tch) v"; then
    echo "no-libtorch check: $pkg depends on libtorch (above)" >&2
    exit 1
  fi
done
"${clean[@]}" cargo build -p ganaug-data --no-default-features --features "$features"
"${clean[@]}" cargo test -p ganaug-data --no-default-features --features "$features" --lib
"${clean[@]}" cargo test -p ganaug-data --no-default-features --features "$features" --doc
"${clean[@]}" cargo build -p ganaug-metrics
"${clean[@]}" RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --features "doc-only,$features"
echo "no-libtorch check: ganaug-data (no default features), ganaug-metrics and every crate's docs build without libtorch"
