//! The backbones (torchvision's layer names, so ImageNet state dicts load by name) and the
//! paper's dense head.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use ganaug_ops::{conv, dense, Conv, ConvSpec, Dense, Precision};

fn bn(p: nn::Path, c: i64, eps: f64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        eps,
        ..Default::default()
    };
    nn::batch_norm2d(p, c, cfg)
}

/// The paper's CNN without its head: five blocks of 3×3 convolution (32, 32, 64, 64, 128
/// filters) → batch norm → ReLU → 2×2 max-pool, flattened. Layer names follow PyTorch's
/// `nn.Sequential` numbering (`features.0` conv, `features.1` batch norm, `features.4` …).
#[derive(Debug)]
pub(crate) struct PaperCnnFeatures {
    blocks: Vec<(Conv, nn::BatchNorm)>,
}

impl PaperCnnFeatures {
    pub(crate) const FILTERS: [i64; 5] = [32, 32, 64, 64, 128];

    pub(crate) fn new(p: &nn::Path, in_channels: i64, pr: Precision) -> Self {
        let f = p / "features";
        let mut c_in = in_channels;
        let blocks = Self::FILTERS
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let block = (
                    conv(&f / (4 * i), ConvSpec::new(c_in, c, 3).padding(1), pr),
                    bn(&f / (4 * i + 1), c, 1e-5),
                );
                c_in = c;
                block
            })
            .collect();
        PaperCnnFeatures { blocks }
    }

    /// Flattened feature length for an `size`² input.
    pub(crate) fn dim(size: i64) -> i64 {
        128 * (size / 32) * (size / 32)
    }
}

impl ModuleT for PaperCnnFeatures {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.blocks
            .iter()
            .fold(x.shallow_clone(), |x, (c, b)| {
                x.apply(c).apply_t(b, train).relu().max_pool2d(
                    [2, 2],
                    [2, 2],
                    [0, 0],
                    [1, 1],
                    false,
                )
            })
            .flatten(1, -1)
    }
}

/// VGG-16 features (torchvision `vgg16`: `features.0` … `features.28`), then torchvision's
/// 7×7 adaptive average pool, flattened to 25,088 values.
#[derive(Debug)]
pub(crate) struct Vgg16Features {
    layers: Vec<Option<Conv>>,
}

impl Vgg16Features {
    const CFG: [i64; 18] = [
        64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
    ];
    pub(crate) const DIM: i64 = 512 * 7 * 7;

    pub(crate) fn new(p: &nn::Path, pr: Precision) -> Self {
        let f = p / "features";
        let (mut c_in, mut idx) = (3, 0);
        let mut layers = Vec::new();
        for &c in &Self::CFG {
            if c == 0 {
                layers.push(None);
                idx += 1;
            } else {
                layers.push(Some(conv(
                    &f / idx,
                    ConvSpec::new(c_in, c, 3).padding(1),
                    pr,
                )));
                c_in = c;
                idx += 2; // conv, ReLU
            }
        }
        Vgg16Features { layers }
    }
}

impl ModuleT for Vgg16Features {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Tensor {
        self.layers
            .iter()
            .fold(x.shallow_clone(), |x, l| match l {
                Some(c) => x.apply(c).relu(),
                None => x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false),
            })
            .adaptive_avg_pool2d([7, 7])
            .flatten(1, -1)
    }
}

#[derive(Debug)]
struct Bottleneck {
    convs: [Conv; 3],
    bns: [nn::BatchNorm; 3],
    downsample: Option<(Conv, nn::BatchNorm)>,
}

impl Bottleneck {
    fn new(p: &nn::Path, c_in: i64, planes: i64, stride: i64, pr: Precision) -> Self {
        let out = planes * 4;
        let downsample = (stride != 1 || c_in != out).then(|| {
            let d = p / "downsample";
            (
                conv(
                    &d / 0,
                    ConvSpec::new(c_in, out, 1).stride(stride).no_bias(),
                    pr,
                ),
                bn(&d / 1, out, 1e-5),
            )
        });
        Bottleneck {
            convs: [
                conv(p / "conv1", ConvSpec::new(c_in, planes, 1).no_bias(), pr),
                conv(
                    p / "conv2",
                    ConvSpec::new(planes, planes, 3)
                        .stride(stride)
                        .padding(1)
                        .no_bias(),
                    pr,
                ),
                conv(p / "conv3", ConvSpec::new(planes, out, 1).no_bias(), pr),
            ],
            bns: [
                bn(p / "bn1", planes, 1e-5),
                bn(p / "bn2", planes, 1e-5),
                bn(p / "bn3", out, 1e-5),
            ],
            downsample,
        }
    }
}

impl ModuleT for Bottleneck {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.shallow_clone();
        for (i, (c, b)) in self.convs.iter().zip(&self.bns).enumerate() {
            y = y.apply(c).apply_t(b, train);
            if i < 2 {
                y = y.relu();
            }
        }
        let shortcut = match &self.downsample {
            Some((c, b)) => x.apply(c).apply_t(b, train),
            None => x.shallow_clone(),
        };
        (y + shortcut).relu()
    }
}

/// ResNet-50 (torchvision `resnet50`, v1.5: stride in the 3×3 convolution) up to its global
/// average pool: 2,048 features.
#[derive(Debug)]
pub(crate) struct ResNet50Features {
    conv1: Conv,
    bn1: nn::BatchNorm,
    blocks: Vec<Bottleneck>,
}

impl ResNet50Features {
    pub(crate) const DIM: i64 = 2048;

    pub(crate) fn new(p: &nn::Path, pr: Precision) -> Self {
        let mut blocks = Vec::new();
        let mut c_in = 64;
        for (layer, (planes, n)) in [(64, 3), (128, 4), (256, 6), (512, 3)]
            .into_iter()
            .enumerate()
        {
            let lp = p / format!("layer{}", layer + 1);
            for i in 0..n {
                let stride = if i == 0 && layer > 0 { 2 } else { 1 };
                blocks.push(Bottleneck::new(&(&lp / i), c_in, planes, stride, pr));
                c_in = planes * 4;
            }
        }
        ResNet50Features {
            conv1: conv(
                p / "conv1",
                ConvSpec::new(3, 64, 7).stride(2).padding(3).no_bias(),
                pr,
            ),
            bn1: bn(p / "bn1", 64, 1e-5),
            blocks,
        }
    }
}

impl ModuleT for ResNet50Features {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let x = x
            .apply(&self.conv1)
            .apply_t(&self.bn1, train)
            .relu()
            .max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        self.blocks
            .iter()
            .fold(x, |x, b| x.apply_t(b, train))
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
    }
}

/// The classifier head. The paper's: 256 → ReLU → dropout → 128 → ReLU → classes, names
/// following PyTorch's `nn.Sequential(Flatten, Linear, ReLU, Dropout, Linear, ReLU, Linear)`:
/// `head.1`, `head.4`, `head.6`. The linear one (what a probe initialises for LP-FT): dropout →
/// classes, `head.linear`.
#[derive(Debug)]
pub(crate) struct DenseHead {
    /// The paper's three dense layers, or one linear layer.
    layers: HeadLayers,
    dropout: f64,
}

#[derive(Debug)]
enum HeadLayers {
    Paper { fc1: Dense, fc2: Dense, out: Dense },
    Linear(Dense),
}

impl DenseHead {
    pub(crate) fn new(
        p: &nn::Path,
        arch: crate::HeadArch,
        dim: i64,
        n_classes: i64,
        dropout: f64,
        pr: Precision,
    ) -> Self {
        let layers = match arch {
            crate::HeadArch::Paper => HeadLayers::Paper {
                fc1: dense(p / 1, dim, 256, pr),
                fc2: dense(p / 4, 256, 128, pr),
                out: dense(p / 6, 128, n_classes, pr),
            },
            crate::HeadArch::Linear => HeadLayers::Linear(dense(p / "linear", dim, n_classes, pr)),
        };
        DenseHead { layers, dropout }
    }

    /// The linear layer, when the head is one.
    pub(crate) fn linear(&self) -> Option<&Dense> {
        match &self.layers {
            HeadLayers::Linear(l) => Some(l),
            HeadLayers::Paper { .. } => None,
        }
    }
}

impl ModuleT for DenseHead {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        match &self.layers {
            HeadLayers::Paper { fc1, fc2, out } => x
                .apply(fc1)
                .relu()
                .dropout(self.dropout, train)
                .apply(fc2)
                .relu()
                .apply(out),
            HeadLayers::Linear(l) => x.dropout(self.dropout, train).apply(l),
        }
    }
}
