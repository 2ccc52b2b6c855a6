//! Links libtorch with an rpath and keeps libtorch_cuda linked (see `ganaug-build`).
fn main() {
    ganaug_build::link_libtorch();
}
