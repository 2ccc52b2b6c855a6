//! Stride-2 transposed convolutions (kernel 4, padding 1) computed as one 3×3 convolution
//! with four times the output channels followed by a pixel shuffle.
//!
//! The two are the same linear map: output pixel `(2m + py, 2n + px)` of the transposed
//! convolution only ever sees a 2×2 window of the input and a fixed 2×2 sub-kernel per phase
//! `(py, px)`. Writing each phase's sub-kernel into a 3×3 kernel (zeros elsewhere) and
//! interleaving the four phase outputs with `pixel_shuffle` reproduces the transposed
//! convolution exactly, up to float rounding. The trainable weight stays the transposed
//! convolution's own `[C_in, C_out, 4, 4]` tensor (same names, same checkpoints); the 3×3 kernel
//! is rebuilt from it at each forward, so gradients reach it unchanged. It costs 9/4 of the
//! transposed convolution's multiply-adds; whether the better-tuned direct convolution wins
//! depends on the machine (on the 2-core development CPU it did not: see
//! [`GanConfig::subpixel`](crate::GanConfig::subpixel)).

use tch::Tensor;

use crate::{GanError, Result};

/// Kernel-row (or column) taps of the 3×3 window for output phase 0 (even) and 1 (odd);
/// index 4 is an appended zero tap.
const TAPS: [[i64; 3]; 2] = [[3, 1, 4], [4, 2, 0]];

/// `conv_transpose2d(x, weight, bias, stride 2, padding 1)` for a 4×4 kernel, via a 3×3
/// convolution and `pixel_shuffle(2)`.
///
/// # Shapes
/// `x: [N, C_in, H, W]`, `weight: [C_in, C_out, 4, 4]`, `bias: [C_out]` → `[N, C_out, 2H, 2W]`.
pub fn conv_transpose_s2k4(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let w = weight.size();
    let [c_in, c_out, 4, 4] = w.as_slice() else {
        return Err(GanError::Shape {
            what: "transposed-convolution weight",
            expected: "[C_in, C_out, 4, 4]".into(),
            got: format!("{w:?}"),
        });
    };
    let (c_in, c_out) = (*c_in, *c_out);
    let opts = (weight.kind(), weight.device());
    // Append a zero tap on both kernel axes: [C_in, C_out, 5, 5].
    let padded = weight.f_constant_pad_nd([0, 1, 0, 1])?;
    let mut phases = Vec::with_capacity(4);
    for rows in TAPS {
        for cols in TAPS {
            let r = Tensor::f_from_slice(&rows)?.f_to_device(opts.1)?;
            let c = Tensor::f_from_slice(&cols)?.f_to_device(opts.1)?;
            phases.push(padded.f_index_select(2, &r)?.f_index_select(3, &c)?);
        }
    }
    // [C_in, C_out, 4 phases, 3, 3] -> [C_out, 4, C_in, 3, 3]: pixel_shuffle reads channel
    // `c * 4 + py * 2 + px`.
    let kernel = Tensor::f_stack(&phases, 2)?
        .f_permute([1, 2, 0, 3, 4])?
        .f_reshape([c_out * 4, c_in, 3, 3])?;
    let bias4 = bias
        .map(|b| b.f_repeat_interleave_self_int(4, 0, None))
        .transpose()?;
    let y = x.f_conv2d(&kernel, bias4.as_ref(), [1, 1], [1, 1], [1, 1], 1)?;
    Ok(y.f_pixel_shuffle(2)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn matches_transposed_convolution_and_its_gradients() {
        tch::manual_seed(0);
        let x = Tensor::randn([2, 5, 6, 7], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([5, 3, 4, 4], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let b = Tensor::randn([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let reference = x.conv_transpose2d(&w, Some(&b), [2, 2], [1, 1], [0, 0], 1, [1, 1]);
        let ours = conv_transpose_s2k4(&x, &w, Some(&b)).expect("subpixel");
        assert_eq!(ours.size(), [2, 3, 12, 14]);
        let diff = (&ours - &reference).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "forward differs by {diff}");

        let upstream = Tensor::randn([2, 3, 12, 14], (Kind::Float, Device::Cpu));
        let grads = |y: &Tensor| {
            let g =
                Tensor::run_backward(&[(y * &upstream).sum(Kind::Float)], &[&w, &b], false, false);
            (g[0].copy(), g[1].copy())
        };
        let (gw_ref, gb_ref) = grads(&reference);
        let (gw, gb) = grads(&ours);
        assert!((gw - gw_ref).abs().max().double_value(&[]) < 1e-3);
        assert!((gb - gb_ref).abs().max().double_value(&[]) < 1e-3);
    }

    #[test]
    fn rejects_other_kernels() {
        let x = Tensor::zeros([1, 2, 4, 4], (Kind::Float, Device::Cpu));
        let w = Tensor::zeros([2, 2, 3, 3], (Kind::Float, Device::Cpu));
        assert!(conv_transpose_s2k4(&x, &w, None).is_err());
    }
}
