//! Build-script helper shared by every ganaug crate whose binaries (tests, examples, benches)
//! call libtorch.
//!
//! `torch-sys` tells the linker where libtorch lives but leaves two things to its users:
//! - an rpath, so binaries run without `LD_LIBRARY_PATH`;
//! - `libtorch_cuda.so` kept as `NEEDED`: nothing references its symbols directly, so with
//!   `--as-needed` the linker drops it and `tch::Cuda::is_available()` is false even on a GPU.
//!
//! Link arguments only apply to the binaries of the crate that emits them, so each crate calls
//! [`link_libtorch`] from its own `build.rs` (and depends on `torch-sys` directly, which is what
//! makes cargo hand it `DEP_TCH_LIBTORCH_LIB`).
//!
//! ```no_run
//! // build.rs
//! fn main() {
//!     ganaug_build::link_libtorch();
//! }
//! ```

use std::path::PathBuf;

/// Emits the rpath and CUDA link arguments for the libtorch that `torch-sys` linked against.
///
/// Does nothing (with a build warning) when the libtorch folder is unknown, so that `cargo doc`
/// and similar builds still work.
pub fn link_libtorch() {
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
}

/// The folder holding `libtorch*.so`, as reported by `torch-sys` through cargo's `links` metadata.
pub fn libtorch_lib_dir() -> Option<PathBuf> {
    ["DEP_TCH_LIBTORCH_LIB", "DEP_TORCH_SYS_LIBTORCH_LIB"]
        .iter()
        .find_map(|k| std::env::var_os(k))
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
}
