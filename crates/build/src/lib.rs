#![doc = include_str!("../README.md")]

use std::path::PathBuf;

/// Whether this is a documentation build that must not touch libtorch or native code: on
/// docs.rs (`DOCS_RS`) or with the crate's `doc-only` feature.
pub fn docs_only() -> bool {
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    std::env::var_os("DOCS_RS").is_some() || std::env::var_os("CARGO_FEATURE_DOC_ONLY").is_some()
}

/// Emits the rpath and CUDA link arguments for the libtorch that `torch-sys` linked against.
///
/// Does nothing (with a build warning) when the libtorch folder is unknown, so that `cargo doc`
/// and similar builds still work.
///
/// Does nothing in documentation builds ([`docs_only`]).
pub fn link_libtorch() {
    if docs_only() {
        return;
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=DEP_TORCH_SYS_LIBTORCH_LIB");
    let Some(dir) = libtorch_lib_dir() else {
        println!("cargo:warning=libtorch folder unknown: binaries will need LD_LIBRARY_PATH");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    if dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
    println!("cargo:rustc-env=GANAUG_LIBTORCH_LIB={}", dir.display());
    if let Some(version) = libtorch_version(&dir) {
        println!("cargo:rustc-env=GANAUG_LIBTORCH_VERSION={version}");
    }
}

/// The libtorch version, from a standalone libtorch's `build-version` file or the PyTorch
/// wheel's `version.py`, both one folder above `lib/`.
pub fn libtorch_version(lib_dir: &std::path::Path) -> Option<String> {
    let root = lib_dir.parent()?;
    if let Ok(v) = std::fs::read_to_string(root.join("build-version")) {
        return Some(v.trim().to_string());
    }
    let py = std::fs::read_to_string(root.join("version.py")).ok()?;
    py.lines()
        .find_map(|l| l.strip_prefix("__version__"))
        .map(|rest| {
            rest.trim_start_matches([' ', '='])
                .trim()
                .trim_matches(['\'', '"'])
                .to_string()
        })
}

/// The folder holding `libtorch*.so`, as reported by `torch-sys` through cargo's `links` metadata.
pub fn libtorch_lib_dir() -> Option<PathBuf> {
    ["DEP_TCH_LIBTORCH_LIB", "DEP_TORCH_SYS_LIBTORCH_LIB"]
        .iter()
        .find_map(std::env::var_os)
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
}
