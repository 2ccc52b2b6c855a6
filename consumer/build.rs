//! Links libtorch with an rpath (and keeps libtorch_cuda linked) for this binary, as every
//! project with a binary calling libtorch through ganaug does.
fn main() {
    ganaug_build::link_libtorch();
}
