//! # ganaug
//!
//! GAN-based data augmentation for medical image classification, on libtorch through `tch`:
//! a reproduction of *Image classification with GAN-based data augmentation* (COVID-19 chest CT).
//!
//! This facade re-exports the workspace's crates, one role each:
//! - [`data`] (`ganaug-data`): the COVID-CT image-folder dataset, caching, batching, the
//!   synthetic phantom stand-in, PNG output.
//! - [`augment`] (`ganaug-augment`): batched classical augmentation (one affine warp per
//!   sample) and DiffAugment for GAN training.
//! - [`gan`] (`ganaug-gan`): the paper's GAN, DCGAN, a small FastGAN, a projected
//!   discriminator on frozen EfficientNet-Lite0 features, conditional GANs, training with
//!   exact resume, synthesis with automatic selection.
//! - [`metrics`] (`ganaug-metrics`): classification statistics with confidence intervals,
//!   paired tests, FID / KID, memorisation distance.
//!
//! - [`models`] (`ganaug-models`): the paper's CNN, VGG-16, ResNet-50, EfficientNet-Lite0 and
//!   their training loop.
//! - [`ops`] (`ganaug-ops`): tensor operations the model crates share (LeakyReLU with any
//!   slope and fused Adam through a small C++ shim, GEMM-form convolutions, channels-last,
//!   bf16 layers).
//!
//! - [`train`] (`ganaug-train`): the plumbing both trainers share — run folders, one
//!   checkpoint format and resume policy, safetensors I/O, history, progress, plots.
//! - [`experiment`] (`ganaug-experiment`): the paper's whole experiment in one call (what
//!   `examples/reproduce.rs` runs), its presets as data, reports and the README table.
//!
//! The facade itself adds [`device`], the device selection every example uses, and the
//! process set-up ([`init_process_for`]).
#![warn(missing_docs)]

pub use ganaug_augment as augment;
pub use ganaug_data as data;
pub use ganaug_experiment as experiment;
pub use ganaug_gan as gan;
pub use ganaug_metrics as metrics;
pub use ganaug_models as models;
pub use ganaug_ops as ops;
pub use ganaug_train as train;

pub mod device;

/// Process set-up the benches and small examples run: unless `GANAUG_DEFAULT_MALLOC` is set,
/// tells glibc's allocator to keep freed memory for reuse ([`ops::keep_freed_memory`]: large
/// per-step activations otherwise come back as fresh, page-faulted memory each step). Returns
/// whether the setting is in effect. Programs that train on images should call
/// [`init_process_for`] instead.
pub fn init_process() -> bool {
    std::env::var_os("GANAUG_DEFAULT_MALLOC").is_none() && ops::keep_freed_memory()
}

/// Images from this side up, on a CPU, make [`init_process_for`] leave the allocator alone.
pub const KEEP_FREED_MEMORY_MAX_SIZE: i64 = 255;

/// [`init_process`] where it pays: it trades memory for speed, and on a CPU with images of 256²
/// and more the heap fragments around the huge tensors (the memory it cost is measured in
/// `docs/performance.md`). On a GPU the host holds no activations.
/// `largest_image` is the side of the largest images the program will train on.
pub fn init_process_for(device: tch::Device, largest_image: i64) -> bool {
    if device == tch::Device::Cpu && largest_image > KEEP_FREED_MEMORY_MAX_SIZE {
        return false;
    }
    init_process()
}

/// The libtorch version this build linked against (`None` if the build could not tell).
pub const LIBTORCH_VERSION: Option<&str> = option_env!("GANAUG_LIBTORCH_VERSION");

/// The folder of the libtorch libraries this build linked against (its rpath).
pub const LIBTORCH_LIB_DIR: Option<&str> = option_env!("GANAUG_LIBTORCH_LIB");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_images_on_a_cpu_keep_the_default_allocator() {
        assert!(!init_process_for(tch::Device::Cpu, 256));
        assert!(!init_process_for(tch::Device::Cpu, 512));
    }
}
