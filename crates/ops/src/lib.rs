#![doc = include_str!("../README.md")]

mod error;
mod ffi;
mod layers;

pub use error::{OpsError, Result};
pub use ffi::{
    adam_step, conv_transpose2d_nchw_wgrad, dropout_mask, keep_freed_memory, leaky_relu,
    release_freed_memory, AdamHyper,
};
pub use layers::{conv, conv_transpose, dense, Conv, ConvSpec, ConvTranspose, Dense, Precision};

use tch::{Kind, Tensor};

/// A copy of `[N, C, H, W]` values with channels-last (NHWC) strides, set explicitly so that
/// one-channel tensors are channels-last too (a permute would leave them ambiguous). Always a
/// fresh tensor: reinterpreting a view's storage would lose its offset.
pub fn to_channels_last(x: &Tensor) -> Result<Tensor> {
    let s = x.size();
    let [_, c, h, w] = s.as_slice() else {
        return Err(OpsError::Shape {
            op: "to_channels_last",
            expected: "[N, C, H, W]".into(),
            got: format!("{s:?}"),
        });
    };
    let strides = [h * w * c, 1, w * c, *c];
    let mut out =
        Tensor::f_empty_strided(s.as_slice(), strides.as_slice(), (x.kind(), x.device()))?;
    out.f_copy_(x)?;
    Ok(out)
}

/// Gives a `[N, C, H, W]` variable channels-last strides in place: same values, same tensor
/// (optimisers and var stores holding it see the new layout).
pub fn set_channels_last(var: &Tensor) -> Result<()> {
    let cl = to_channels_last(var)?;
    tch::no_grad(|| var.shallow_clone().f_set_data(&cl))?;
    Ok(())
}

/// Whether `x` is `[N, C, H, W]` with channels-last strides.
pub fn is_channels_last(x: &Tensor) -> bool {
    let (s, st) = (x.size(), x.stride());
    s.len() == 4 && st == [s[1] * s[2] * s[3], 1, s[3] * s[1], s[1]]
}

/// `leaky_relu(x + bias[channel], slope)`, the usual tail of a convolution layer: on float CPU
/// tensors (channels-last or NCHW, `slope ≥ 0`) one fused pass forward, and one backward that
/// gives the input's and the bias's gradients together (on the paper generator's 64² map,
/// batch 32 × 128 channels, the separate addition, activation and bias reduction each took a
/// pass over its 67 MB); elsewhere libtorch's separate operations. Only the output is kept for
/// the backward pass.
///
/// # Shapes
/// `x: [N, C, H, W]`, `bias: [C]` → `[N, C, H, W]` in `x`'s layout.
pub fn bias_leaky_relu(x: &Tensor, bias: Option<&Tensor>, slope: f64) -> Result<Tensor> {
    let Some(bias) = bias else {
        return leaky_relu(x, slope);
    };
    let (xs, bs) = (x.size(), bias.size());
    if xs.len() != 4 || bs != [xs[1]] {
        return Err(OpsError::Shape {
            op: "bias_leaky_relu",
            expected: "x [N, C, H, W] and bias [C]".into(),
            got: format!("{xs:?} and {bs:?}"),
        });
    }
    // Any layout: the shim works on a channels-last input as it is and on others made
    // contiguous.
    let cpu_f32 = |t: &Tensor| t.device() == tch::Device::Cpu && t.kind() == Kind::Float;
    if cpu_f32(x) && cpu_f32(bias) && slope >= 0.0 {
        ffi::fused_bias_leaky_relu(x, bias, slope)
    } else {
        leaky_relu(&x.f_add(&bias.f_view([1, -1, 1, 1])?)?, slope)
    }
}

/// Inverted dropout: each element is zeroed with probability `p` and the rest scaled so the
/// mean is unchanged; the identity when `train` is false or `p` is 0. On the CPU the mask comes
/// from [`dropout_mask`] (libtorch's CPU `dropout` draws one serial Mersenne-Twister number per
/// element, a large share of the paper GAN's step); elsewhere it is libtorch's own `dropout`.
pub fn dropout(x: &Tensor, p: f64, train: bool) -> Result<Tensor> {
    if !(0.0..1.0).contains(&p) {
        return Err(OpsError::Argument {
            op: "dropout",
            reason: format!("probability must be in [0, 1), got {p}"),
        });
    }
    if !train || p == 0.0 {
        return Ok(x.shallow_clone());
    }
    if x.device() == tch::Device::Cpu && x.kind() == Kind::Float {
        Ok(x.f_mul(&dropout_mask(x, p)?)?)
    } else {
        Ok(x.f_dropout(p, true)?)
    }
}

/// A stride-1 convolution from `C` channels to one, padded to keep the size ("same": odd `k`,
/// padding `k / 2`), computed per image as one matrix product `[k², C] × [C, H·W]` (each pixel's
/// contribution to every tap) followed by `col2im`, which sums the taps into place; the backward
/// pass is `im2col` of the output gradient and two more batched products. A C++ autograd
/// function in the shim keeps every operand a view of its tensor in either layout (libtorch's
/// generic `matmul` copied the columns forward and backward).
///
/// Numerically the same map as `x.conv2d(weight, bias, 1, k / 2)` (float rounding aside) with the
/// same gradients, in a third of oneDNN's time on a CPU for the paper generator's 7×7 layer
/// (`docs/performance.md`). The input gradient has the input's layout.
///
/// # Shapes
/// `x: [N, C, H, W]`, `weight: [1, C, k, k]`, `bias: [1]` → `[N, 1, H, W]`.
pub fn conv2d_one_output(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (xs, ws) = (x.size(), weight.size());
    let ([_, c, _, _], [1, wc, k, k2]) = (xs.as_slice(), ws.as_slice()) else {
        return Err(OpsError::Shape {
            op: "conv2d_one_output",
            expected: "x [N, C, H, W] and weight [1, C, k, k]".into(),
            got: format!("{xs:?} and {ws:?}"),
        });
    };
    let (c, k) = (*c, *k);
    if *wc != c || *k2 != k || k % 2 == 0 {
        return Err(OpsError::Shape {
            op: "conv2d_one_output",
            expected: format!("weight [1, {c}, k, k] with odd k"),
            got: format!("{ws:?}"),
        });
    }
    let y = ffi::conv_one_output(x, weight)?;
    Ok(match bias {
        Some(b) => y.f_add(&b.f_view([1, 1, 1, 1])?)?,
        None => y,
    })
}

/// The element type bf16 mode computes in.
pub(crate) const BF16: Kind = Kind::BFloat16;

#[cfg(test)]
mod tests;
