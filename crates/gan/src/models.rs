//! Generator and discriminator networks: the paper's GAN and Radford's DCGAN, each optionally
//! conditioned on a class label (Mirza & Osindero).

use ganaug_ops::{Conv, ConvTranspose, Dense, Precision};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::{GanError, Result};

/// Which networks to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arch {
    /// The paper's GAN. Generator: dense `C·(S/4)²` from the latent, reshaped to `C` channels
    /// of `(S/4)²` → LeakyReLU(0.2) → two 4×4 stride-2 transposed convolutions with 128
    /// filters, each + LeakyReLU(0.2) → 7×7 convolution to one channel → sigmoid, where
    /// `C` = [`GanConfig::paper_fc_channels`]. Discriminator: two 3×3 stride-2 convolutions with
    /// 64 filters, each + LeakyReLU(0.2) + dropout 0.4, then one dense unit (a logit).
    Paper,
    /// Radford et al.'s DCGAN: 4×4 stride-2 (transposed) convolutions with batch norm, ReLU /
    /// LeakyReLU(0.2), tanh output; `S` must be a power of two, at least 16.
    Dcgan {
        /// Generator width (filters of its last hidden layer).
        ngf: i64,
        /// Discriminator width (filters of its first layer).
        ndf: i64,
    },
}

/// Network configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanConfig {
    /// Architecture.
    pub arch: Arch,
    /// Image side `S` (images are `[N, 1, S, S]` in [0, 1]).
    pub size: i64,
    /// Latent dimension (the paper: 100).
    pub latent_dim: i64,
    /// `Some(n)`: a conditional GAN over `n` classes (label embedded into both networks).
    pub n_classes: Option<i64>,
    /// Size of the label embedding of a conditional GAN.
    pub embed_dim: i64,
    /// Channels `C` of the paper generator's dense layer (`C·(S/4)²` units). The paper states
    /// 262,144 units at 256², i.e. `C` = 64 (the default); 128 gives the `128·(S/4)²` of the
    /// issue text and of `shared/peer/torch_paper_models.py` (524,288 at 256²).
    #[serde(default = "default_fc_channels")]
    pub paper_fc_channels: i64,
    /// Compute the stride-2 transposed convolutions as 3×3 convolutions + pixel shuffle (the
    /// same map; see [`crate::subpixel`]). Weights and checkpoints are the same either way.
    /// Off by default: on the 2-core development CPU it measured slower (2.13 s vs 1.61 s per
    /// paper-GAN step at 64², 285 vs 233 ms per DCGAN step), since it does 9/4 of the
    /// multiply-adds.
    #[serde(default)]
    pub subpixel: bool,
    /// Keep images and convolution weights channels-last (NHWC), the layout oneDNN's CPU
    /// convolutions run fastest in (on by default; the same numbers either way).
    #[serde(default = "default_true")]
    pub channels_last: bool,
    /// Compute convolutions and dense layers in bf16 (autocast-style: `f32` weights, optimiser
    /// state, activations and loss; see [`ganaug_ops::Precision`]). Off by default: only worth
    /// it where the hardware has bf16 matrix units.
    #[serde(default)]
    pub bf16: bool,
}

fn default_true() -> bool {
    true
}

fn default_fc_channels() -> i64 {
    64
}

impl Default for GanConfig {
    /// The paper's GAN at 256×256, latent 100, unconditional.
    fn default() -> Self {
        GanConfig {
            arch: Arch::Paper,
            size: 256,
            latent_dim: 100,
            n_classes: None,
            embed_dim: 50,
            paper_fc_channels: 64,
            subpixel: false,
            channels_last: true,
            bf16: false,
        }
    }
}

impl GanConfig {
    /// Checks that the architecture can be built at this size.
    pub fn validate(&self) -> Result<()> {
        if self.latent_dim < 1 || self.embed_dim < 1 || self.paper_fc_channels < 1 {
            return Err(GanError::config(
                "latent_dim",
                "latent and embedding sizes must be positive",
            ));
        }
        if matches!(self.n_classes, Some(n) if n < 2) {
            return Err(GanError::config(
                "n_classes",
                "a conditional GAN needs at least 2 classes",
            ));
        }
        match self.arch {
            Arch::Paper if self.size < 4 || self.size % 4 != 0 => Err(GanError::config(
                "size",
                format!(
                    "the paper's GAN needs a size divisible by 4, got {}",
                    self.size
                ),
            )),
            Arch::Dcgan { ngf, ndf } if ngf < 1 || ndf < 1 => {
                Err(GanError::config("arch", "ngf and ndf must be positive"))
            }
            Arch::Dcgan { .. } if self.size < 16 || (self.size & (self.size - 1)) != 0 => {
                Err(GanError::config(
                    "size",
                    format!(
                        "DCGAN needs a power-of-two size of at least 16, got {}",
                        self.size
                    ),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// LeakyReLU with slope 0.2 (tch's own `leaky_relu` has a fixed 0.01; `max(x, 0.2x)` is six
/// times slower than libtorch's fused kernel, which `ganaug-ops` calls).
fn leaky(x: &Tensor) -> Result<Tensor> {
    Ok(ganaug_ops::leaky_relu(x, 0.2)?)
}

impl GanConfig {
    fn precision(&self) -> Precision {
        Precision::from_bf16(self.bf16)
    }

    /// Puts an image batch in the configured layout.
    fn layout(&self, x: &Tensor) -> Result<Tensor> {
        if self.channels_last && !ganaug_ops::is_channels_last(x) {
            Ok(ganaug_ops::to_channels_last(x)?)
        } else {
            Ok(x.shallow_clone())
        }
    }

    /// Checks a batch of images for these networks — `[N, 1, S, S]`, float, at least
    /// `min_n` of them — and returns `N`.
    pub(crate) fn check_images(&self, what: &'static str, x: &Tensor, min_n: i64) -> Result<i64> {
        let (s, size) = (self.size, x.size());
        let n = size.first().copied().unwrap_or(0);
        if size != [n, 1, s, s] || n < min_n || x.kind() != Kind::Float {
            return Err(GanError::Shape {
                what,
                expected: match min_n {
                    0 => format!("[N, 1, {s}, {s}] Float"),
                    _ => format!("[N, 1, {s}, {s}] Float, N ≥ {min_n}"),
                },
                got: format!("{size:?} {:?}", x.kind()),
            });
        }
        Ok(n)
    }

    /// Checks the class labels of `n` images for a conditional network: `[n]` Int64 and, with
    /// `values`, each in `0..n_classes` (libtorch's embedding aborts the process on anything
    /// else; the value check costs a device sync, so the trainer makes it once per batch).
    pub(crate) fn check_labels(&self, labels: &Tensor, n: i64, values: bool) -> Result<()> {
        let classes = self.n_classes.unwrap_or(0);
        let expected = || format!("[{n}] Int64 class indices in 0..{classes}");
        if labels.size() != [n] || labels.kind() != Kind::Int64 {
            return Err(GanError::Shape {
                what: "labels",
                expected: expected(),
                got: format!("{:?} {:?}", labels.size(), labels.kind()),
            });
        }
        if values && n > 0 {
            let range = Tensor::f_stack(&[labels.f_min()?, labels.f_max()?], 0)?;
            let range = Vec::<i64>::try_from(&range.f_to_device(Device::Cpu)?)?;
            if range[0] < 0 || range[1] >= classes {
                return Err(GanError::Shape {
                    what: "labels",
                    expected: expected(),
                    got: format!("values {}..={}", range[0], range[1]),
                });
            }
        }
        Ok(())
    }

    /// Gives a convolution weight the configured layout, in place (the variable keeps its
    /// identity, so optimisers and checkpoints are unaffected).
    fn layout_weight(&self, w: &Tensor) -> Result<()> {
        if self.channels_last {
            ganaug_ops::set_channels_last(w)?;
        }
        Ok(())
    }
}

fn conv_layer(
    p: nn::Path,
    cfg: &GanConfig,
    (c_in, c_out, k): (i64, i64, i64),
    (stride, padding): (i64, i64),
    conv_cfg: nn::ConvConfig,
) -> Result<Conv> {
    let conv_cfg = nn::ConvConfig {
        stride,
        padding,
        ..conv_cfg
    };
    let c = nn::conv2d(p, c_in, c_out, k, conv_cfg);
    cfg.layout_weight(&c.ws)?;
    Ok(Conv::new(c.ws, c.bs, stride, padding, 1, cfg.precision()))
}

fn up_layer(
    p: nn::Path,
    cfg: &GanConfig,
    (c_in, c_out): (i64, i64),
    (stride, padding): (i64, i64),
    bias: bool,
    init: Option<nn::Init>,
) -> Result<ConvTranspose> {
    let layer = ganaug_ops::conv_transpose(
        p,
        c_in,
        c_out,
        4,
        stride,
        padding,
        bias,
        init,
        cfg.precision(),
    );
    cfg.layout_weight(&layer.ws)?;
    Ok(layer)
}

/// Batch norm with DCGAN's initialisation (scale ~ N(1, 0.02)).
fn dcgan_batch_norm(p: &nn::Path, channels: i64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        ws_init: nn::Init::Randn {
            mean: 1.0,
            stdev: 0.02,
        },
        ..Default::default()
    };
    nn::batch_norm2d(p, channels, cfg)
}

fn dcgan_conv_config() -> nn::ConvConfig {
    nn::ConvConfig {
        bias: false,
        ws_init: dcgan_init(),
        ..Default::default()
    }
}

fn dcgan_init() -> nn::Init {
    nn::Init::Randn {
        mean: 0.0,
        stdev: 0.02,
    }
}

/// Generator network: latent `[N, latent_dim]` (+ labels) → images `[N, 1, S, S]` in [0, 1].
#[derive(Debug)]
pub struct Generator {
    cfg: GanConfig,
    embed: Option<nn::Embedding>,
    body: GenBody,
}

// One body per model: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum GenBody {
    Paper {
        fc: Dense,
        up1: ConvTranspose,
        up2: ConvTranspose,
        out: Conv,
    },
    Dcgan {
        ups: Vec<(ConvTranspose, Option<nn::BatchNorm>)>,
    },
}

impl Generator {
    /// Builds the generator under `p`.
    pub fn new(p: &nn::Path, cfg: &GanConfig) -> Result<Self> {
        cfg.validate()?;
        let embed = cfg
            .n_classes
            .map(|n| nn::embedding(p / "embed", n, cfg.embed_dim, Default::default()));
        let z_in = cfg.latent_dim + if embed.is_some() { cfg.embed_dim } else { 0 };
        let body = match cfg.arch {
            Arch::Paper => {
                let (q, c) = (cfg.size / 4, cfg.paper_fc_channels);
                GenBody::Paper {
                    fc: ganaug_ops::dense(p / "fc", z_in, c * q * q, cfg.precision()),
                    up1: up_layer(p / "up1", cfg, (c, 128), (2, 1), true, None)?,
                    up2: up_layer(p / "up2", cfg, (128, 128), (2, 1), true, None)?,
                    out: conv_layer(p / "out", cfg, (128, 1, 7), (1, 3), Default::default())?,
                }
            }
            Arch::Dcgan { ngf, .. } => {
                let n_up = (cfg.size as f64).log2() as i64 - 2;
                let mut ups = Vec::new();
                let mut c_in = z_in;
                for i in 0..=n_up {
                    let last = i == n_up;
                    let c_out = if last { 1 } else { ngf << (n_up - 1 - i) };
                    let (stride, padding) = if i == 0 { (1, 0) } else { (2, 1) };
                    let conv = up_layer(
                        p / format!("up{i}"),
                        cfg,
                        (c_in, c_out),
                        (stride, padding),
                        false,
                        Some(dcgan_init()),
                    )?;
                    let bn = (!last).then(|| dcgan_batch_norm(&(p / format!("bn{i}")), c_out));
                    ups.push((conv, bn));
                    c_in = c_out;
                }
                GenBody::Dcgan { ups }
            }
        };
        Ok(Generator {
            cfg: cfg.clone(),
            embed,
            body,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GanConfig {
        &self.cfg
    }

    /// A stride-2, kernel-4, padding-1 transposed convolution, by the configured method.
    fn up(&self, conv: &ConvTranspose, h: &Tensor) -> Result<Tensor> {
        if self.cfg.subpixel {
            crate::subpixel::conv_transpose_s2k4(h, &conv.ws, conv.bs.as_ref())
        } else {
            conv.forward(h).map_err(Into::into)
        }
    }

    /// [`Self::up`] followed by LeakyReLU(0.2), bias and activation fused where they can be.
    fn up_leaky(&self, conv: &ConvTranspose, h: &Tensor) -> Result<Tensor> {
        if self.cfg.subpixel {
            leaky(&self.up(conv, h)?)
        } else {
            Ok(conv.forward_leaky_relu(h, 0.2)?)
        }
    }

    /// The paper generator's 7×7 output convolution to one channel, as the batched product +
    /// `col2im` form of `ganaug-ops` (a third of the time of oneDNN's direct kernel on a CPU;
    /// see [`ganaug_ops::conv2d_one_output`]).
    fn out_layer(&self, out: &Conv, h: &Tensor) -> Result<Tensor> {
        if self.cfg.bf16 {
            return Ok(out.forward(h));
        }
        Ok(ganaug_ops::conv2d_one_output(h, &out.ws, out.bs.as_ref())?)
    }

    /// Generates images.
    ///
    /// # Shapes
    /// `z: [N, latent_dim]`, `labels: [N]` (conditional only) → `[N, 1, S, S]` in [0, 1].
    pub fn forward_t(&self, z: &Tensor, labels: Option<&Tensor>, train: bool) -> Result<Tensor> {
        self.forward_inner(z, labels, train, true)
    }

    /// [`Self::forward_t`], checking the label values only if `check_label_values` (the
    /// trainer checks each batch's once).
    pub(crate) fn forward_inner(
        &self,
        z: &Tensor,
        labels: Option<&Tensor>,
        train: bool,
        check_label_values: bool,
    ) -> Result<Tensor> {
        let n = z.size().first().copied().unwrap_or(0);
        if z.size() != [n, self.cfg.latent_dim] || z.kind() != Kind::Float {
            return Err(GanError::Shape {
                what: "latent",
                expected: format!("[N, {}] Float", self.cfg.latent_dim),
                got: format!("{:?} {:?}", z.size(), z.kind()),
            });
        }
        let z = match (&self.embed, labels) {
            (Some(e), Some(y)) => {
                self.cfg.check_labels(y, n, check_label_values)?;
                Tensor::f_cat(&[z, &e.forward(y)], 1)?
            }
            (None, None) => z.shallow_clone(),
            (Some(_), None) => {
                return Err(GanError::config(
                    "labels",
                    "a conditional generator needs labels",
                ))
            }
            (None, Some(_)) => {
                return Err(GanError::config(
                    "labels",
                    "this generator is not conditional",
                ))
            }
        };
        let s = self.cfg.size;
        Ok(match &self.body {
            GenBody::Paper { fc, up1, up2, out } => {
                let c = self.cfg.paper_fc_channels;
                let h = leaky(&fc.forward(&z))?.f_view([-1, c, s / 4, s / 4])?;
                let h = self.cfg.layout(&h)?;
                let h = self.up_leaky(up1, &h)?;
                let h = self.up_leaky(up2, &h)?;
                self.out_layer(out, &h)?.sigmoid()
            }
            GenBody::Dcgan { ups } => {
                let mut h = z.f_view([-1, z.size()[1], 1, 1])?;
                for (i, (conv, bn)) in ups.iter().enumerate() {
                    // The first layer (1×1 → 4×4, stride 1) is not a stride-2 upsampling.
                    h = if i == 0 {
                        self.cfg.layout(&conv.forward(&h)?)?
                    } else {
                        self.up(conv, &h)?
                    };
                    if let Some(bn) = bn {
                        h = bn.forward_t(&h, train).relu();
                    }
                }
                // tanh output, mapped to the data range [0, 1].
                (h.tanh() + 1.0) * 0.5
            }
        })
    }
}

/// Discriminator network: images `[N, 1, S, S]` in [0, 1] (+ labels) → logits `[N]`.
#[derive(Debug)]
pub struct Discriminator {
    cfg: GanConfig,
    label_map: Option<(nn::Embedding, nn::Linear)>,
    body: DiscBody,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum DiscBody {
    Paper {
        c1: Conv,
        c2: Conv,
        fc: Dense,
    },
    Dcgan {
        downs: Vec<(Conv, Option<nn::BatchNorm>)>,
        out: Conv,
    },
}

impl Discriminator {
    /// Builds the discriminator under `p`.
    pub fn new(p: &nn::Path, cfg: &GanConfig) -> Result<Self> {
        cfg.validate()?;
        let s = cfg.size;
        // A conditional discriminator sees the label as an extra image channel.
        let label_map = cfg.n_classes.map(|n| {
            (
                nn::embedding(p / "embed", n, cfg.embed_dim, Default::default()),
                nn::linear(p / "label_fc", cfg.embed_dim, s * s, Default::default()),
            )
        });
        let c_in = if label_map.is_some() { 2 } else { 1 };
        let body = match cfg.arch {
            Arch::Paper => {
                let q = (s + 3) / 4;
                let d = Default::default();
                DiscBody::Paper {
                    c1: conv_layer(p / "c1", cfg, (c_in, 64, 3), (2, 1), d)?,
                    c2: conv_layer(p / "c2", cfg, (64, 64, 3), (2, 1), d)?,
                    fc: ganaug_ops::dense(p / "fc", 64 * q * q, 1, cfg.precision()),
                }
            }
            Arch::Dcgan { ndf, .. } => {
                let n_down = (s as f64).log2() as i64 - 2;
                let mut downs = Vec::new();
                let mut c = c_in;
                for i in 0..n_down {
                    let c_out = ndf << i;
                    let conv = conv_layer(
                        p / format!("down{i}"),
                        cfg,
                        (c, c_out, 4),
                        (2, 1),
                        dcgan_conv_config(),
                    )?;
                    let bn = (i > 0).then(|| dcgan_batch_norm(&(p / format!("bn{i}")), c_out));
                    downs.push((conv, bn));
                    c = c_out;
                }
                DiscBody::Dcgan {
                    downs,
                    out: conv_layer(p / "out", cfg, (c, 1, 4), (1, 0), dcgan_conv_config())?,
                }
            }
        };
        Ok(Discriminator {
            cfg: cfg.clone(),
            label_map,
            body,
        })
    }

    /// Scores images; higher logits mean "real".
    ///
    /// # Shapes
    /// `x: [N, 1, S, S]`, `labels: [N]` (conditional only) → `[N]` logits.
    pub fn forward_t(&self, x: &Tensor, labels: Option<&Tensor>, train: bool) -> Result<Tensor> {
        self.forward_inner(x, labels, train, true)
    }

    /// [`Self::forward_t`], checking the label values only if `check_label_values` (the
    /// trainer checks each batch's once).
    pub(crate) fn forward_inner(
        &self,
        x: &Tensor,
        labels: Option<&Tensor>,
        train: bool,
        check_label_values: bool,
    ) -> Result<Tensor> {
        let s = self.cfg.size;
        let n = self.cfg.check_images("discriminator input", x, 0)?;
        let x = match (&self.label_map, labels) {
            (Some((e, fc)), Some(y)) => {
                self.cfg.check_labels(y, n, check_label_values)?;
                let plane = fc.forward(&e.forward(y)).f_view([-1, 1, s, s])?;
                Tensor::f_cat(&[x, &plane], 1)?
            }
            (None, None) => x.shallow_clone(),
            (Some(_), None) => {
                return Err(GanError::config(
                    "labels",
                    "a conditional discriminator needs labels",
                ))
            }
            (None, Some(_)) => {
                return Err(GanError::config(
                    "labels",
                    "this discriminator is not conditional",
                ))
            }
        };
        Ok(match &self.body {
            DiscBody::Paper { c1, c2, fc } => {
                let x = self.cfg.layout(&x)?;
                let h = ganaug_ops::dropout(&leaky(&c1.forward(&x))?, 0.4, train)?;
                let h = ganaug_ops::dropout(&leaky(&c2.forward(&h))?, 0.4, train)?;
                fc.forward(&h.flatten(1, -1)).view([-1])
            }
            DiscBody::Dcgan { downs, out } => {
                // DCGAN works on [-1, 1] data.
                let mut h = self.cfg.layout(&(x * 2.0 - 1.0))?;
                for (conv, bn) in downs {
                    h = conv.forward(&h);
                    if let Some(bn) = bn {
                        h = bn.forward_t(&h, train);
                    }
                    h = leaky(&h)?;
                }
                out.forward(&h).view([-1])
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn shapes(cfg: GanConfig) {
        let vs = nn::VarStore::new(Device::Cpu);
        let g = Generator::new(&(vs.root() / "g"), &cfg).expect("generator");
        let d = Discriminator::new(&(vs.root() / "d"), &cfg).expect("discriminator");
        let z = Tensor::randn([3, cfg.latent_dim], (Kind::Float, Device::Cpu));
        let y = cfg.n_classes.map(|_| Tensor::from_slice(&[0i64, 1, 0]));
        let x = g.forward_t(&z, y.as_ref(), true).expect("generate");
        assert_eq!(x.size(), [3, 1, cfg.size, cfg.size], "{cfg:?}");
        assert!(x.min().double_value(&[]) >= 0.0 && x.max().double_value(&[]) <= 1.0);
        assert_eq!(
            d.forward_t(&x, y.as_ref(), true).expect("score").size(),
            [3],
            "{cfg:?}"
        );
    }

    #[test]
    fn output_shapes_at_several_resolutions() {
        for size in [8, 28, 64] {
            shapes(GanConfig {
                arch: Arch::Paper,
                size,
                ..Default::default()
            });
        }
        for size in [16, 32, 64] {
            shapes(GanConfig {
                arch: Arch::Dcgan { ngf: 8, ndf: 8 },
                size,
                ..Default::default()
            });
        }
        shapes(GanConfig {
            arch: Arch::Paper,
            size: 16,
            n_classes: Some(2),
            ..Default::default()
        });
        shapes(GanConfig {
            arch: Arch::Dcgan { ngf: 8, ndf: 8 },
            size: 32,
            n_classes: Some(3),
            ..Default::default()
        });
    }

    #[test]
    fn paper_generator_has_the_papers_dense_layer_at_256() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _g = Generator::new(&(vs.root() / "g"), &GanConfig::default()).expect("generator");
        let fc = &vs.variables()["g.fc.weight"];
        assert_eq!(fc.size(), [262_144, 100]);
    }

    #[test]
    fn bad_configs_and_inputs_are_errors() {
        let vs = nn::VarStore::new(Device::Cpu);
        let bad = GanConfig {
            size: 30,
            ..Default::default()
        };
        assert!(Generator::new(&vs.root(), &bad).is_err());
        let bad = GanConfig {
            arch: Arch::Dcgan { ngf: 8, ndf: 8 },
            size: 48,
            ..Default::default()
        };
        assert!(Discriminator::new(&vs.root(), &bad).is_err());
        let cfg = GanConfig {
            size: 8,
            ..Default::default()
        };
        let g = Generator::new(&(vs.root() / "g"), &cfg).expect("generator");
        let z = Tensor::zeros([2, 7], (Kind::Float, Device::Cpu));
        assert!(matches!(
            g.forward_t(&z, None, false),
            Err(GanError::Shape { .. })
        ));
        let z = Tensor::zeros([2, 100], (Kind::Float, Device::Cpu));
        assert!(g
            .forward_t(&z, Some(&Tensor::from_slice(&[0i64, 1])), false)
            .is_err());
    }

    #[test]
    fn bf16_networks_match_f32_up_to_bf16_rounding() {
        for arch in [Arch::Paper, Arch::Dcgan { ngf: 8, ndf: 8 }] {
            let base = GanConfig {
                arch,
                size: 16,
                latent_dim: 16,
                paper_fc_channels: 16,
                ..Default::default()
            };
            let build = |bf16: bool| {
                let vs = nn::VarStore::new(Device::Cpu);
                let cfg = GanConfig {
                    bf16,
                    ..base.clone()
                };
                let g = Generator::new(&(vs.root() / "g"), &cfg).expect("generator");
                let d = Discriminator::new(&(vs.root() / "d"), &cfg).expect("discriminator");
                (vs, g, d)
            };
            let ((v32, g32, d32), (mut v16, g16, d16)) = (build(false), build(true));
            // Same weights; only the compute precision differs.
            v16.copy(&v32).expect("copy weights");
            let z = Tensor::randn([4, 16], (Kind::Float, Device::Cpu));
            let (x32, x16) = (
                g32.forward_t(&z, None, false).expect("f32"),
                g16.forward_t(&z, None, false).expect("bf16"),
            );
            assert_eq!(x16.kind(), Kind::Float);
            let dx = (&x32 - &x16).abs().max().double_value(&[]);
            assert!(dx > 0.0 && dx < 0.03, "{arch:?}: images differ by {dx}");
            let (s32, s16) = (
                d32.forward_t(&x32, None, false).expect("f32"),
                d16.forward_t(&x32, None, false).expect("bf16"),
            );
            let ds = (&s32 - &s16).abs().max().double_value(&[]);
            // A logit sums a thousand bf16-rounded products: near-zero scores still carry
            // ~0.01 of rounding, so the tolerance has a floor (0.1 flaked at 0.007).
            let scale = s32.abs().max().double_value(&[]).max(0.5);
            assert!(
                ds > 0.0 && ds < 0.05 * scale,
                "{arch:?}: scores differ by {ds}"
            );
        }
    }
}
