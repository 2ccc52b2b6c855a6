//! Links libtorch with an rpath and keeps libtorch_cuda linked (see `ganaug-build`), when the
//! `tch` feature is on; without it (and in documentation builds) there is nothing to link.
fn main() {
    if std::env::var_os("CARGO_FEATURE_TCH").is_some() {
        ganaug_build::link_libtorch();
    }
}
