//! Compiles the C++ shim (`src/shim.cpp`) against the libtorch headers of the libtorch that
//! `torch-sys` links, and sets the rpath for this crate's tests (see `ganaug-build`).
fn main() {
    println!("cargo:rerun-if-changed=src/shim.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    // Documentation builds (docs.rs, `--features doc-only`) have no libtorch: nothing to compile.
    if ganaug_build::docs_only() {
        return;
    }
    ganaug_build::link_libtorch();
    let Some(lib) = ganaug_build::libtorch_lib_dir() else {
        panic!("ganaug-ops: torch-sys did not report its libtorch folder (DEP_TCH_LIBTORCH_LIB)");
    };
    // Both layouts (PyTorch wheel and standalone libtorch) keep headers in `include/` next to `lib/`.
    let root = lib.parent().expect("libtorch lib folder has a parent");
    let include = root.join("include");
    assert!(
        include.join("ATen").is_dir(),
        "ganaug-ops: no libtorch headers in {}",
        include.display()
    );
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
        .compile("ganaug_ops_shim");
}
