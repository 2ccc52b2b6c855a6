//! Links libtorch with an rpath, so the installed `ganaug` finds it (see `ganaug-build`).
fn main() {
    ganaug_build::link_libtorch();
}
