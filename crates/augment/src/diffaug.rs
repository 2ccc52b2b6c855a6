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
            let shifts: Vec<(i64, i64)> = (0..n)
                .map(|_| (rng.random_range(-sx..=sx), rng.random_range(-sy..=sy)))
                .collect();
            out = shift(&out, &shifts)?;
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

/// Shifts each sample by whole pixels `(dx, dy)` with zero padding, as two gathers from a
/// zero-padded copy: exact, differentiable (gather's gradient is a scatter-add), and much
/// cheaper than resampling with `grid_sample`, whose CPU backward dominated a GAN step.
pub(crate) fn shift(x: &Tensor, shifts: &[(i64, i64)]) -> Result<Tensor> {
    let dims = x.size();
    let (n, c, h, w) = (dims[0], dims[1], dims[2], dims[3]);
    let device = x.device();
    let padded = x.f_constant_pad_nd([1, 1, 1, 1])?;
    // Output pixel y reads padded row y - dy + 1; out-of-image reads land on the zero border.
    let index = |len: i64, by: &dyn Fn(&(i64, i64)) -> i64| -> Result<Tensor> {
        let v: Vec<i64> = shifts
            .iter()
            .flat_map(|s| (0..len).map(move |i| (i - by(s) + 1).clamp(0, len + 1)))
            .collect();
        Ok(Tensor::f_from_slice(&v)?.f_to_device(device)?)
    };
    let rows = index(h, &|s| s.1)?
        .f_view([n, 1, h, 1])?
        .f_expand([n, c, h, w + 2], false)?;
    let cols = index(w, &|s| s.0)?
        .f_view([n, 1, 1, w])?
        .f_expand([n, c, h, w], false)?;
    Ok(padded
        .f_gather(2, &rows, false)?
        .f_gather(3, &cols, false)?)
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
    fn shift_moves_by_whole_pixels_with_zero_fill() {
        let x = Tensor::arange(16, (Kind::Float, Device::Cpu)).view([1, 1, 4, 4]) + 1.0;
        let y = shift(&x, &[(1, 2)]).expect("shift");
        // Right by one, down by two: output (row 2, col 1) is input (row 0, col 0).
        assert_eq!(y.double_value(&[0, 0, 2, 1]), 1.0);
        assert_eq!(y.double_value(&[0, 0, 3, 3]), x.double_value(&[0, 0, 1, 2]));
        assert_eq!(
            y.narrow(2, 0, 2).abs().sum(Kind::Float).double_value(&[]),
            0.0
        );
        assert_eq!(
            y.narrow(3, 0, 1).abs().sum(Kind::Float).double_value(&[]),
            0.0
        );
        let back = shift(&x, &[(-3, 0)]).expect("shift");
        assert_eq!(back.double_value(&[0, 0, 0, 0]), 4.0);
    }

    #[test]
    fn unknown_policy_is_an_error() {
        assert!(DiffAugment::parse("color,zoom").is_err());
        assert_eq!(DiffAugment::parse("").expect("empty").translation, None);
    }
}
