//! The only unsafe code of the workspace: calls into `shim.cpp`.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_double, CStr};

use tch::Tensor;
use torch_sys::C_tensor;

use crate::{OpsError, Result};

/// Adam's step count and hyperparameters, laid out as the shim's `GanaugAdamHyper`.
#[repr(C)]
struct AdamHyperC {
    step: c_double,
    lr: c_double,
    beta1: c_double,
    beta2: c_double,
    eps: c_double,
}

extern "C" {
    fn ganaug_leaky_relu(
        x: *const C_tensor,
        slope: c_double,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn ganaug_adam_step(
        params: *const *mut C_tensor,
        grads: *const *const C_tensor,
        exp_avgs: *const *mut C_tensor,
        exp_avg_sqs: *const *mut C_tensor,
        n: i64,
        hyper: *const AdamHyperC,
    ) -> *mut c_char;
    fn ganaug_dropout_mask(
        like: *const C_tensor,
        p: c_double,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn ganaug_conv_transpose_nchw_wgrad(
        x: *const C_tensor,
        w: *const C_tensor,
        stride: i64,
        padding: i64,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn ganaug_conv_one_output(
        x: *const C_tensor,
        w: *const C_tensor,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn ganaug_bias_leaky_relu(
        x: *const C_tensor,
        bias: *const C_tensor,
        slope: c_double,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn ganaug_free_error(message: *mut c_char);
}

/// Turns a shim's return value into a `Result`, freeing the message.
///
/// # Safety
/// `message` is null or a string allocated by the shim and not freed yet.
unsafe fn check(message: *mut c_char, op: &'static str) -> Result<()> {
    if message.is_null() {
        return Ok(());
    }
    // SAFETY: the shim returns a NUL-terminated malloc'd copy, freed exactly once here.
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    unsafe { ganaug_free_error(message) };
    Err(OpsError::Shim { op, message: text })
}

/// Runs a shim function that stores a new tensor through its last argument, and takes
/// ownership of that tensor.
fn new_tensor(
    op: &'static str,
    call: impl FnOnce(*mut *mut C_tensor) -> *mut c_char,
) -> Result<Tensor> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: `call` returns null or a shim message; on success the shim stored a new heap
    // `at::Tensor*` in `out`, which `Tensor::from_ptr` owns from here on.
    unsafe {
        check(call(&mut out), op)?;
        if out.is_null() {
            return Err(OpsError::Shim {
                op,
                message: "no result".into(),
            });
        }
        Ok(Tensor::from_ptr(out))
    }
}

/// LeakyReLU with negative slope `slope`: `x` where `x ≥ 0`, `slope · x` elsewhere, as
/// libtorch's single fused kernel (tracked by autograd like any libtorch operation).
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    // SAFETY: `x` is a live tensor for the duration of the call.
    new_tensor("leaky_relu", |out| unsafe {
        ganaug_leaky_relu(x.as_ptr(), slope, out)
    })
}

/// `x.conv2d(w, None, 1, k / 2)` for `w: [1, C, k, k]` (odd `k`), differentiable, as batched
/// matrix products and `col2im` / `im2col` (see [`crate::conv2d_one_output`]).
pub(crate) fn conv_one_output(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    // SAFETY: `x` and `w` are live tensors for the duration of the call.
    new_tensor("conv2d_one_output", |out| unsafe {
        ganaug_conv_one_output(x.as_ptr(), w.as_ptr(), out)
    })
}

/// `leaky_relu(x + bias[channel], slope)` fused forward and backward; float CPU tensors only,
/// `slope ≥ 0` (see [`crate::bias_leaky_relu`]).
pub(crate) fn fused_bias_leaky_relu(x: &Tensor, bias: &Tensor, slope: f64) -> Result<Tensor> {
    // SAFETY: `x` and `bias` are live tensors for the duration of the call.
    new_tensor("bias_leaky_relu", |out| unsafe {
        ganaug_bias_leaky_relu(x.as_ptr(), bias.as_ptr(), slope, out)
    })
}

/// A float dropout mask shaped and laid out like the CPU tensor `like`: 0 with probability
/// `p` (to 1/65536), else the scale that makes its mean exactly 1. Drawn by a counter-based
/// SplitMix64 hash seeded from libtorch's generator (so `tch::manual_seed` fixes it, for any
/// thread count), in parallel where libtorch's CPU dropout draws one serial Mersenne-Twister
/// number per element (timings: `docs/performance.md`).
pub fn dropout_mask(like: &Tensor, p: f64) -> Result<Tensor> {
    // SAFETY: `like` is a live tensor for the duration of the call.
    new_tensor("dropout_mask", |out| unsafe {
        ganaug_dropout_mask(like.as_ptr(), p, out)
    })
}

/// `x.conv_transpose2d(w, None, stride, padding)` (square stride and padding, no bias, output
/// padding 0, dilation 1, one group), differentiable, with its CPU weight gradient computed from
/// NCHW copies of the input and output gradient. oneDNN's channels-last weight-gradient kernel
/// for transposed convolutions slows down sharply on large maps (at the paper generator's last
/// layer at 256², half of the whole training step; `docs/performance.md`). Forward and input
/// gradient are libtorch's own, in `x`'s layout; off the CPU everything is.
///
/// # Shapes
/// `x: [N, C_in, H, W]`, `w: [C_in, C_out, k, k]` → `[N, C_out, (H−1)·s − 2p + k, …]`.
pub fn conv_transpose2d_nchw_wgrad(
    x: &Tensor,
    w: &Tensor,
    stride: i64,
    padding: i64,
) -> Result<Tensor> {
    // SAFETY: `x` and `w` are live tensors for the duration of the call.
    new_tensor("conv_transpose2d_nchw_wgrad", |out| unsafe {
        ganaug_conv_transpose_nchw_wgrad(x.as_ptr(), w.as_ptr(), stride, padding, out)
    })
}

/// Hyper-parameters of [`adam_step`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamHyper {
    /// Learning rate.
    pub lr: f64,
    /// Decay rates of the first and second moment estimates.
    pub betas: (f64, f64),
    /// Added to the denominator.
    pub eps: f64,
}

/// One Adam update (`torch.optim.Adam`'s, without weight decay) of every parameter, in place,
/// by libtorch's fused multi-tensor kernel: one pass over each parameter, gradient and moment
/// instead of a dozen separate operations (timings: `docs/performance.md`). `step` counts updates including this one (1 for the first). Gradients and
/// moments must have their parameter's shape and strides.
pub fn adam_step(
    params: &[Tensor],
    grads: &[Tensor],
    exp_avgs: &[Tensor],
    exp_avg_sqs: &[Tensor],
    step: i64,
    hyper: AdamHyper,
) -> Result<()> {
    let n = params.len();
    if grads.len() != n || exp_avgs.len() != n || exp_avg_sqs.len() != n {
        return Err(OpsError::Shape {
            op: "adam_step",
            expected: format!("{n} gradients and moments, one per parameter"),
            got: format!(
                "{} gradients, {} and {} moments",
                grads.len(),
                exp_avgs.len(),
                exp_avg_sqs.len()
            ),
        });
    }
    if step < 1 {
        return Err(OpsError::Argument {
            op: "adam_step",
            reason: format!("step must be at least 1, got {step}"),
        });
    }
    let mut_ptrs = |ts: &[Tensor]| {
        ts.iter()
            .map(|t| t.as_ptr() as *mut C_tensor)
            .collect::<Vec<_>>()
    };
    let (p, m, v) = (mut_ptrs(params), mut_ptrs(exp_avgs), mut_ptrs(exp_avg_sqs));
    let g: Vec<*const C_tensor> = grads.iter().map(Tensor::as_ptr).collect();
    let c_hyper = AdamHyperC {
        step: step as f64,
        lr: hyper.lr,
        beta1: hyper.betas.0,
        beta2: hyper.betas.1,
        eps: hyper.eps,
    };
    // SAFETY: every pointer is a live `at::Tensor*` borrowed for the call, and `c_hyper` lives
    // across it; the shim updates the tensors' data in place and keeps no pointer after
    // returning.
    unsafe {
        check(
            ganaug_adam_step(
                p.as_ptr(),
                g.as_ptr(),
                m.as_ptr(),
                v.as_ptr(),
                n as i64,
                &c_hyper,
            ),
            "adam_step",
        )
    }
}

/// Hands the memory `malloc` holds freed back to the kernel now (glibc's `malloc_trim(0)`),
/// and returns whether it released any. For programs that called [`keep_freed_memory`]: that
/// setting keeps a phase's peak heap for the rest of the process, so a program whose phases
/// differ (a decode-cache build, then feature passes, then a fit) calls this between them, and
/// each phase's peak stands alone instead of adding to the last one's. Cheap (a walk over the
/// heap's free blocks); a no-op off glibc.
pub fn release_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` only returns free heap pages to the kernel; 0 is a valid pad.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Makes glibc's `malloc` keep freed memory for reuse instead of handing it back to the kernel,
/// for the rest of the process. Returns whether the setting took (false off glibc).
///
/// By default glibc serves every block over 32 MiB with its own `mmap` and unmaps it when freed,
/// so each training step's large activations come back as fresh pages the kernel must fault in
/// and zero. With `mmap` off and trimming disabled, freed blocks are reused from the heap
/// (PyTorch's own script gains the same with `GLIBC_TUNABLES=glibc.malloc.mmap_max=0`). The cost
/// is memory: the process keeps its peak heap until it exits, and the heap fragments around huge
/// tensors. A library should leave this to the program. Measurements: `docs/performance.md`.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes allocator parameters; both values are valid for it.
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
