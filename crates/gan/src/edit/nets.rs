//! The edit GAN's networks: the masks, the U-Net editor and the pair discriminator.

use super::*;

/// Soft elliptical masks `[n, 1, s, s]` in [0, 1], one per sample, each covering a share of
/// the image drawn from `area`, centred in the middle half of the image.
pub fn random_masks(n: i64, s: i64, area: (f64, f64), rng: &mut impl Rng) -> Result<Tensor> {
    let coords = Tensor::f_arange(s, (Kind::Float, Device::Cpu))?
        .f_add_scalar(0.5)?
        .f_div_scalar(s as f64)?;
    let (yy, xx) = (coords.f_view([s, 1])?, coords.f_view([1, s])?);
    let mut masks = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let share = rng.random_range(area.0..=area.1);
        let aspect: f64 = rng.random_range(0.6..1.6);
        // area of an ellipse with semi-axes a, b in the unit square: π a b
        let b = (share / (std::f64::consts::PI * aspect)).sqrt();
        let a = b * aspect;
        let (cy, cx) = (rng.random_range(0.25..0.75), rng.random_range(0.25..0.75));
        let r = yy
            .f_sub_scalar(cy)?
            .f_div_scalar(b)?
            .f_square()?
            .f_add(&xx.f_sub_scalar(cx)?.f_div_scalar(a)?.f_square()?)?;
        // 1 inside, 0 outside, a soft edge of about a tenth of the radius
        masks.push(r.f_sub_scalar(1.0)?.f_mul_scalar(-10.0)?.f_sigmoid()?);
    }
    Ok(Tensor::f_stack(&masks, 0)?.f_unsqueeze(1)?)
}

pub(super) fn conv(
    p: nn::Path,
    c_in: i64,
    c_out: i64,
    k: i64,
    stride: i64,
    padding: i64,
) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride,
        padding,
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, k, cfg)
}

pub(super) fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(p, c, Default::default())
}

pub(super) fn leaky(x: &Tensor) -> Tensor {
    x.maximum(&(x * 0.2))
}

/// The editor: image, mask, latent and class → a masked, bounded change.
#[derive(Debug)]
pub(super) struct Editor {
    downs: Vec<(nn::Conv2D, Option<nn::BatchNorm>)>,
    inject: nn::Linear,
    embed: nn::Embedding,
    ups: Vec<(nn::Conv2D, Option<nn::BatchNorm>)>,
    ngf: i64,
    max_delta: f64,
}

impl Editor {
    pub(super) fn new(p: &nn::Path, cfg: &EditGanConfig) -> Self {
        let (c, g) = (cfg.channels, cfg.ngf);
        let widths = [g, 2 * g, 4 * g];
        let mut downs = Vec::new();
        let mut c_in = c + 1;
        for (i, &w) in widths.iter().enumerate() {
            let norm = (i > 0).then(|| bn(p / format!("down_bn{i}"), w));
            downs.push((conv(p / format!("down{i}"), c_in, w, 4, 2, 1), norm));
            c_in = w;
        }
        let side = cfg.size / 8;
        let embed = nn::embedding(p / "embed", cfg.classes, 8, Default::default());
        let inject = nn::linear(
            p / "inject",
            cfg.latent_dim + 8,
            g * side * side,
            Default::default(),
        );
        // 8th → 4th (skip from the 4th-side map), 4th → half (skip from the half-side map),
        // half → full
        let ups = vec![
            (
                conv(p / "up0", 4 * g + g, 2 * g, 3, 1, 1),
                Some(bn(p / "up_bn0", 2 * g)),
            ),
            (
                conv(p / "up1", 2 * g + 2 * g, g, 3, 1, 1),
                Some(bn(p / "up_bn1", g)),
            ),
            (conv(p / "up2", g + g, c, 3, 1, 1), None),
        ];
        Editor {
            downs,
            inject,
            embed,
            ups,
            ngf: g,
            max_delta: cfg.max_delta,
        }
    }

    /// The change `δ` `[N, C, S, S]` for images `x`, masks `m`, latents `z`, classes `y`.
    pub(super) fn delta(
        &self,
        x: &Tensor,
        m: &Tensor,
        z: &Tensor,
        y: &Tensor,
        train: bool,
    ) -> Result<Tensor> {
        let mut h = Tensor::f_cat(&[x, m], 1)?;
        let mut skips = Vec::new();
        for (conv, norm) in &self.downs {
            h = conv.forward(&h);
            if let Some(norm) = norm {
                h = norm.forward_t(&h, train);
            }
            h = leaky(&h);
            skips.push(h.shallow_clone());
        }
        let side = h.size()[2];
        let code = Tensor::f_cat(&[z, &self.embed.forward(y)], 1)?;
        let code = self
            .inject
            .forward(&code)
            .f_view([-1, self.ngf, side, side])?;
        h = Tensor::f_cat(&[h, code], 1)?;
        let skip_for = [1usize, 0];
        for (i, (conv, norm)) in self.ups.iter().enumerate() {
            let (rows, cols) = (h.size()[2] * 2, h.size()[3] * 2);
            h = conv.forward(&h.f_upsample_nearest2d([rows, cols], None, None)?);
            match norm {
                Some(norm) => {
                    h = norm.forward_t(&h, train).relu();
                    h = Tensor::f_cat(&[&h, &skips[skip_for[i]]], 1)?;
                }
                None => h = h.f_tanh()?,
            }
        }
        Ok(h.f_mul_scalar(self.max_delta)?.f_mul(m)?)
    }
}

/// The pair discriminator: `[x ‖ partner]` and the class → a logit per pair.
#[derive(Debug)]
pub(super) struct PairCritic {
    downs: Vec<(nn::Conv2D, Option<nn::BatchNorm>)>,
    out: nn::Conv2D,
    projection: nn::Embedding,
}

impl PairCritic {
    pub(super) fn new(p: &nn::Path, cfg: &EditGanConfig) -> Self {
        let d = cfg.ndf;
        let widths = [d, 2 * d, 4 * d];
        let mut downs = Vec::new();
        let mut c_in = 2 * cfg.channels;
        for (i, &w) in widths.iter().enumerate() {
            let norm = (i > 0).then(|| bn(p / format!("bn{i}"), w));
            downs.push((conv(p / format!("down{i}"), c_in, w, 4, 2, 1), norm));
            c_in = w;
        }
        let init = nn::EmbeddingConfig {
            ws_init: nn::Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
            ..Default::default()
        };
        PairCritic {
            downs,
            out: conv(p / "out", 4 * d, 1, 3, 1, 1),
            projection: nn::embedding(p / "projection", cfg.classes, 4 * d, init),
        }
    }

    pub(super) fn forward(&self, pair: &Tensor, y: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = pair.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?;
        for (conv, norm) in &self.downs {
            h = conv.forward(&h);
            if let Some(norm) = norm {
                h = norm.forward_t(&h, train);
            }
            h = leaky(&h);
        }
        let logit = self
            .out
            .forward(&h)
            .f_mean_dim(&[1i64, 2, 3][..], false, Kind::Float)?;
        let pooled = h.f_mean_dim(&[2i64, 3][..], false, Kind::Float)?;
        let inner = self
            .projection
            .forward(y)
            .f_mul(&pooled)?
            .f_sum_dim_intlist(&[1i64][..], false, Kind::Float)?;
        Ok(logit.f_add(&inner)?)
    }
}
