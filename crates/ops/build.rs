//! Compiles the C++ shim (`src/shim.cpp`) against the libtorch headers of the libtorch that
//! `torch-sys` links, and sets the rpath for this crate's tests (see `ganaug-build`). A missing
//! libtorch folder or header set, or a failed compile, ends the build with an error that says so.
fn main() -> Result<(), String> {
    println!("cargo:rerun-if-changed=src/shim.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    // Documentation builds (docs.rs, `--features doc-only`) have no libtorch: nothing to compile.
    if ganaug_build::docs_only() {
        return Ok(());
    }
    ganaug_build::link_libtorch();
    let lib = ganaug_build::libtorch_lib_dir().ok_or(
        "ganaug-ops: torch-sys did not report its libtorch folder (DEP_TCH_LIBTORCH_LIB): \
         run scripts/setup.sh and `. scripts/env.sh`, or set LIBTORCH",
    )?;
    // Both layouts (PyTorch wheel and standalone libtorch) keep headers in `include/` next to `lib/`.
    let root = lib.parent().ok_or_else(|| {
        format!(
            "ganaug-ops: the libtorch folder {} has no parent",
            lib.display()
        )
    })?;
    let include = root.join("include");
    if !include.join("ATen").is_dir() {
        return Err(format!(
            "ganaug-ops: no libtorch headers in {} (a libtorch without include/?)",
            include.display()
        ));
    }
    // PyPI wheels since 2.7 and libtorch's cxx11 builds use the new ABI; torch-sys makes the
    // same default and reads the same variable.
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .file("src/shim.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .warnings(false)
        .try_compile("ganaug_ops_shim")
        .map_err(|e| format!("ganaug-ops: compiling src/shim.cpp: {e}"))
}
