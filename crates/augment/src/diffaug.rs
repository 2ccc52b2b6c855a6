//! Differentiable augmentation for GAN training (DiffAugment, Zhao et al. 2020).
//!
//! The same policy is applied to real and fake batches before the discriminator sees them, and
//! every op is differentiable in the images, so the generator's gradients flow through it.
//! Policies, as in the reference implementation: `color` (brightness ±0.5, saturation ×[0, 2]
//! for multi-channel images, contrast ×[0.5, 1.5]), `translation` (integer shifts up to 1/8 of
//! the size, zero padding) and `cutout` (one zeroed square of half the size).

use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::affine::{warp, Affine, Fill, Interpolation};
use crate::error::check_batch;
use crate::intensity::{erase, per_sample};
use crate::{AugmentError, Result};

/// A DiffAugment policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DiffAugment {
    /// Random brightness, saturation and contrast.
    pub color: bool,
    /// Largest shift as a fraction of the size (the reference uses 1/8), if any.
    pub translation: Option<f64>,
    /// Side of the cut-out square as a fraction of the size (the reference uses 1/2), if any.
    pub cutout: Option<f64>,
}

impl Default for DiffAugment {
    /// `color,translation,cutout` with the reference ratios.
    fn default() -> Self {
        DiffAugment {
            color: true,
            translation: Some(0.125),
            cutout: Some(0.5),
        }
    }
}

impl DiffAugment {
    /// Parses a policy string such as `"color,translation,cutout"` (empty: no augmentation).
    pub fn parse(policy: &str) -> Result<Self> {
        let mut d = DiffAugment {
            color: false,
            translation: None,
            cutout: None,
        };
        for part in policy.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "color" => d.color = true,
                "translation" => d.translation = Some(0.125),
                "cutout" => d.cutout = Some(0.5),
                other => {
                    return Err(AugmentError::config(
                        "policy",
                        format!(
                            "unknown DiffAugment policy '{other}' (use color, translation, cutout)"
                        ),
                    ))
                }
            }
        }
        Ok(d)
    }

    fn validate(&self) -> Result<()> {
        for (name, v) in [("translation", self.translation), ("cutout", self.cutout)] {
            if let Some(r) = v {
                if !(0.0..=1.0).contains(&r) {
                    return Err(AugmentError::config(
                        name,
                        format!("ratio {r} is not in [0, 1]"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Augments `x` (`[N, C, H, W]`), differentiably, with parameters drawn from `rng`.
    ///
    /// # Shapes
    /// `[N, C, H, W]` → `[N, C, H, W]`.
    pub fn apply(&self, x: &Tensor, rng: &mut impl Rng) -> Result<Tensor> {
        self.validate()?;
        let (n, c, h, w) = check_batch(x)?;
        let n = n as usize;
        let mut out = x.shallow_clone();
        if self.color {
            let draw = |rng: &mut dyn rand::RngCore, lo: f64, hi: f64| -> Vec<f64> {
                (0..n).map(|_| rng.random_range(lo..hi)).collect()
            };
            out = out.f_add(&per_sample(&draw(rng, -0.5, 0.5), x)?)?;
            if c > 1 {
                let mean = out.f_mean_dim([1].as_slice(), true, None)?;
                out = out
                    .f_sub(&mean)?
                    .f_mul(&per_sample(&draw(rng, 0.0, 2.0), x)?)?
                    .f_add(&mean)?;
            }
            let mean = out.f_mean_dim([1, 2, 3].as_slice(), true, None)?;
            out = out
                .f_sub(&mean)?
                .f_mul(&per_sample(&draw(rng, 0.5, 1.5), x)?)?
                .f_add(&mean)?;
        }
        if let Some(ratio) = self.translation {
            let (sx, sy) = (
                (w as f64 * ratio + 0.5) as i64,
                (h as f64 * ratio + 0.5) as i64,
            );
            let maps: Vec<Affine> = (0..n)
                .map(|_| {
                    Affine::translate(
                        rng.random_range(-sx..=sx) as f64,
                        rng.random_range(-sy..=sy) as f64,
                    )
                })
                .collect();
            // Whole-pixel shifts land on pixel centres: nearest sampling is an exact shift, and
            // grid_sample passes gradients back to the pixels it picked.
            out = warp(&out, &maps, Interpolation::Nearest, Fill::Value(0.0))?;
        }
        if let Some(ratio) = self.cutout {
            let (cw, ch) = (
                (w as f64 * ratio + 0.5) as i64,
                (h as f64 * ratio + 0.5) as i64,
            );
            let rects: Vec<[f64; 4]> = (0..n)
                .map(|_| {
                    let ox = rng.random_range(0..=w - 1 + (1 - cw % 2)) - cw / 2;
                    let oy = rng.random_range(0..=h - 1 + (1 - ch % 2)) - ch / 2;
                    [ox as f64, oy as f64, (ox + cw) as f64, (oy + ch) as f64]
                })
                .collect();
            out = erase(&out, &rects, 0.0)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use tch::{Device, Kind};

    #[test]
    fn gradients_flow_through_every_policy() {
        for policy in ["color", "translation", "cutout", "color,translation,cutout"] {
            let d = DiffAugment::parse(policy).expect("policy");
            let x =
                Tensor::rand([4, 1, 16, 16], (Kind::Float, Device::Cpu)).set_requires_grad(true);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
            let y = d.apply(&x, &mut rng).expect("apply");
            assert!(y.requires_grad(), "{policy}");
            (y * 2.0).sum(Kind::Float).backward();
            let g = x.grad();
            assert!(g.defined(), "{policy}");
            // Some pixels pass through with gradient 2 (x2 scale) or a colour factor.
            assert!(g.abs().sum(Kind::Float).double_value(&[]) > 0.0, "{policy}");
        }
    }

    #[test]
    fn cutout_zeroes_a_quarter_at_most_and_translation_keeps_values() {
        let x = Tensor::ones([8, 1, 16, 16], (Kind::Float, Device::Cpu));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let cut = DiffAugment::parse("cutout")
            .expect("policy")
            .apply(&x, &mut rng)
            .expect("apply");
        let zeros = cut.eq(0.0).sum(Kind::Float).double_value(&[]);
        assert!(zeros > 0.0 && zeros <= 8.0 * 64.0, "{zeros}");
        let shifted = DiffAugment::parse("translation")
            .expect("policy")
            .apply(&x, &mut rng)
            .expect("apply");
        // Only 0 (padding) and 1 (moved pixels) appear: an exact shift, no blending.
        let other = shifted
            .ne(0.0)
            .logical_and(&shifted.ne(1.0))
            .sum(Kind::Int64)
            .int64_value(&[]);
        assert_eq!(other, 0);
    }

    #[test]
    fn unknown_policy_is_an_error() {
        assert!(DiffAugment::parse("color,zoom").is_err());
        assert_eq!(DiffAugment::parse("").expect("empty").translation, None);
    }
}
