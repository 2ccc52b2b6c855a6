//! A projected discriminator (Sauer et al. 2021, "Projected GANs Converge Faster"), kept small:
//! a frozen ImageNet EfficientNet-Lite0 reads the image at four depths (strides 4–32), a fixed
//! random 1×1 convolution mixes each map's channels (their cross-channel mixing), and a small
//! trained head per map — 4×4 stride-2 convolutions with batch norm and LeakyReLU(0.2) down to
//! 4×4, then a 4×4 convolution to one logit — scores it; the logit is the heads' mean.
//!
//! Left out of the original: the cross-scale mixing (upsampling paths between the maps) and
//! the heads' spectral normalisation (tried on COVID-CT: the heads still told real from
//! generated images apart within a few epochs, as without it).

use ganaug_models::{pretrained_weights, LiteFeatureMaps, ModelKind};
use ganaug_ops::Conv;
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::{GanError, Result};

use super::family::{DiscriminatorBody, GanFamily, GeneratorBody, Loss, Scores};
use super::fastgan::{disc_width, validate_fastgan, DownBlock, FastGanGenerator};
use super::layers::{conv_layer, dcgan_conv_config};
use super::{Conditioning, GanConfig};

/// The side the heads downsample to before their last convolution.
const HEAD_SIDE: i64 = 4;

/// The network a projected discriminator reads.
const FEATURES: ModelKind = ModelKind::EfficientNetLite0;

/// The frozen feature network of a projected discriminator, from the installed weights.
pub(crate) fn feature_network(device: tch::Device) -> Result<LiteFeatureMaps> {
    let kind = FEATURES;
    let Some(path) = pretrained_weights(kind) else {
        return Err(GanError::WeightsMissing {
            needed_by: "a projected discriminator",
            network: kind.display_name(),
        });
    };
    Ok(LiteFeatureMaps::new(kind, path, device)?)
}

/// The side of a map of stride `stride` for an input of side `s` (TensorFlow "same" padding).
fn map_side(s: i64, stride: i64) -> i64 {
    (s + stride - 1) / stride
}

/// FastGAN's generator against a projected discriminator (see the module documentation); hinge
/// loss; a conditional pair takes the label by projection only.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Projected {
    pub(crate) ngf: i64,
    pub(crate) ndf: i64,
}

impl GanFamily for Projected {
    fn validate(&self, cfg: &GanConfig) -> Result<()> {
        validate_fastgan(self.ngf, self.ndf, cfg)?;
        if cfg.n_classes.is_some() && cfg.conditioning == Conditioning::Concat {
            return Err(GanError::config(
                "conditioning",
                "a projected discriminator reads images through a pretrained network, \
                 which has no place for a label channel: use projection conditioning",
            ));
        }
        Ok(())
    }

    fn generator(
        &self,
        p: &nn::Path,
        cfg: &GanConfig,
        z_in: i64,
    ) -> Result<Box<dyn GeneratorBody>> {
        Ok(Box::new(FastGanGenerator::new(p, cfg, self.ngf, z_in)?))
    }

    fn hidden_width(&self, cfg: &GanConfig) -> Result<i64> {
        ProjectedHeads::hidden(self.ndf, cfg.size)
    }

    fn discriminator(
        &self,
        p: &nn::Path,
        cfg: &GanConfig,
        _c_in: i64,
    ) -> Result<Box<dyn DiscriminatorBody>> {
        let features = feature_network(p.device())?;
        Ok(Box::new(ProjectedHeads::new(p, cfg, self.ndf, features)?))
    }

    fn loss(&self) -> Loss {
        Loss::Hinge
    }
}

impl DiscriminatorBody for ProjectedHeads {
    fn forward(
        &self,
        _cfg: &GanConfig,
        x: &Tensor,
        _image: &Tensor,
        train: bool,
        _reconstruct: bool,
    ) -> Result<Scores> {
        let (logits, hidden) = self.forward_t(x, train)?;
        Ok(Scores {
            logits,
            hidden,
            reconstruction: None,
        })
    }
}

/// The discriminator's trained heads and its fixed parts.
#[derive(Debug)]
pub(crate) struct ProjectedHeads {
    features: LiteFeatureMaps,
    /// Fixed random channel mixings `[c, c, 1, 1]`, one per map (saved, never trained).
    mixes: Vec<Tensor>,
    heads: Vec<(Vec<DownBlock>, Conv)>,
}

impl ProjectedHeads {
    /// The width of the deepest head's last hidden features (a projection conditioning's
    /// embedding width).
    pub(crate) fn hidden(ndf: i64, s: i64) -> Result<i64> {
        Ok(match map_side(s, LiteFeatureMaps::STRIDES[3]) {
            r if r > HEAD_SIDE => disc_width(ndf, s, HEAD_SIDE),
            _ => LiteFeatureMaps::channels_of(FEATURES)?[3],
        })
    }

    pub(crate) fn new(
        p: &nn::Path,
        cfg: &GanConfig,
        ndf: i64,
        features: LiteFeatureMaps,
    ) -> Result<Self> {
        let s = cfg.size;
        let mut mixes = Vec::new();
        let mut heads = Vec::new();
        for (i, (&c, stride)) in features
            .channels()
            .iter()
            .zip(LiteFeatureMaps::STRIDES)
            .enumerate()
        {
            let mut mix = p.zeros_no_train(&format!("mix{i}"), &[c, c, 1, 1]);
            let init = Tensor::f_randn([c, c, 1, 1], (Kind::Float, p.device()))?
                .f_mul_scalar((1.0 / c as f64).sqrt())?;
            tch::no_grad(|| mix.f_copy_(&init))?;
            mixes.push(mix);
            let hp = p / format!("head{i}");
            let (mut r, mut c_in) = (map_side(s, stride), c);
            let mut downs = Vec::new();
            while r > HEAD_SIDE {
                let c_out = disc_width(ndf, s, r / 2);
                downs.push(DownBlock::new(
                    &hp / format!("down{}", r / 2),
                    cfg,
                    c_in,
                    c_out,
                    true,
                )?);
                (r, c_in) = (r / 2, c_out);
            }
            let k = r.min(HEAD_SIDE);
            let out = conv_layer(&hp / "out", cfg, (c_in, 1, k), (1, 0), dcgan_conv_config())?;
            heads.push((downs, out));
        }
        Ok(ProjectedHeads {
            features,
            mixes,
            heads,
        })
    }

    /// Logits `[N]` of images in [0, 1], and the deepest head's last hidden features.
    pub(crate) fn forward_t(&self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let maps = self.features.maps(x)?;
        let mut logits = Vec::with_capacity(maps.len());
        let mut hidden = None;
        for ((map, mix), (downs, out)) in maps.iter().zip(&self.mixes).zip(&self.heads) {
            let mut h = map.f_conv2d(mix, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)?;
            for block in downs {
                h = block.forward_t(&h, train)?;
            }
            logits.push(out.forward(&h).f_flatten(1, -1)?.f_mean_dim(
                &[1i64][..],
                false,
                Kind::Float,
            )?);
            hidden = Some(h);
        }
        let logit = Tensor::f_stack(&logits, 1)?.f_mean_dim(&[1i64][..], false, Kind::Float)?;
        let hidden = hidden.ok_or(GanError::Shape {
            what: "the projected discriminator's feature maps",
            expected: "four maps".into(),
            got: "none".into(),
        })?;
        Ok((logit, hidden))
    }
}
