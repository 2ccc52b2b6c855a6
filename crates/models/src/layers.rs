//! The convolution and dense layers of `ganaug-ops` (shared with the GAN crate), built from the
//! models' `bf16` flag: autocast-style bf16 products with `f32` weights when it is set.

use ganaug_ops::Precision;
use tch::nn;

pub(crate) use ganaug_ops::{Conv, Dense};

/// A convolution whose variables are `p.weight` (and `p.bias`), as torchvision names them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv(
    p: nn::Path,
    c_in: i64,
    c_out: i64,
    k: i64,
    stride: i64,
    padding: i64,
    groups: i64,
    bias: bool,
    bf16: bool,
) -> Conv {
    let precision = Precision::from_bf16(bf16);
    ganaug_ops::conv(p, c_in, c_out, k, stride, padding, groups, bias, precision)
}

/// A dense layer (`p.weight` `[out, in]`, `p.bias`).
pub(crate) fn dense(p: nn::Path, c_in: i64, c_out: i64, bf16: bool) -> Dense {
    ganaug_ops::dense(p, c_in, c_out, Precision::from_bf16(bf16))
}
