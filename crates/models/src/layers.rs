//! Convolution and dense layers with an optional bf16 compute mode, autocast-style: weights stay
//! `f32` (the optimiser updates full-precision masters), each product casts its inputs to bf16
//! and its output back to `f32`; batch norm, activations and the loss stay `f32`.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// A 2-D convolution.
#[derive(Debug)]
pub(crate) struct Conv {
    ws: Tensor,
    bs: Option<Tensor>,
    stride: i64,
    padding: i64,
    groups: i64,
    bf16: bool,
}

/// Builds a convolution whose variables are `p.weight` (and `p.bias`), as torchvision names them.
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
    let cfg = nn::ConvConfig {
        stride,
        padding,
        groups,
        bias,
        ..Default::default()
    };
    let c = nn::conv2d(p, c_in, c_out, k, cfg);
    Conv {
        ws: c.ws,
        bs: c.bs,
        stride,
        padding,
        groups,
        bf16,
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Tensor {
        let (s, p) = ([self.stride; 2], [self.padding; 2]);
        if self.bf16 {
            let bs = self.bs.as_ref().map(|b| b.to_kind(Kind::BFloat16));
            x.to_kind(Kind::BFloat16)
                .conv2d(
                    &self.ws.to_kind(Kind::BFloat16),
                    bs.as_ref(),
                    s,
                    p,
                    [1, 1],
                    self.groups,
                )
                .to_kind(Kind::Float)
        } else {
            x.conv2d(&self.ws, self.bs.as_ref(), s, p, [1, 1], self.groups)
        }
    }
}

/// A dense layer (`p.weight` `[out, in]`, `p.bias`).
#[derive(Debug)]
pub(crate) struct Dense {
    ws: Tensor,
    bs: Tensor,
    bf16: bool,
}

pub(crate) fn dense(p: nn::Path, c_in: i64, c_out: i64, bf16: bool) -> Dense {
    let l = nn::linear(p, c_in, c_out, Default::default());
    Dense {
        ws: l.ws,
        bs: l
            .bs
            .unwrap_or_else(|| Tensor::zeros([c_out], (Kind::Float, tch::Device::Cpu))),
        bf16,
    }
}

impl Module for Dense {
    fn forward(&self, x: &Tensor) -> Tensor {
        if self.bf16 {
            let b = Kind::BFloat16;
            x.to_kind(b)
                .linear(&self.ws.to_kind(b), Some(&self.bs.to_kind(b)))
                .to_kind(Kind::Float)
        } else {
            x.linear(&self.ws, Some(&self.bs))
        }
    }
}
