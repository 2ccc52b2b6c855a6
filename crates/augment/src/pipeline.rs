//! Composable augmentation pipelines with per-sample random parameters.

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::affine::{Affine, Fill, Interpolation};
use crate::error::check_batch;
use crate::{AugmentError, Result};

/// One transform and its parameter range. Each sample draws its own parameters uniformly
/// from the range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Transform {
    /// Mirror left-right.
    HFlip,
    /// Mirror top-bottom.
    VFlip,
    /// Rotate by an angle in `[-max_degrees, max_degrees]`.
    Rotate {
        /// Largest angle, in degrees (the paper: 45).
        max_degrees: f64,
    },
    /// Shift by up to a fraction of the width / height.
    Translate {
        /// Largest shift as fractions `(of width, of height)`.
        max_fraction: (f64, f64),
    },
    /// Zoom by a factor in `range` (same on both axes).
    Scale {
        /// `(min, max)` zoom factor; 1 is unchanged.
        range: (f64, f64),
    },
    /// Shear by angles up to `max_degrees` along x and y.
    Shear {
        /// Largest shear angles `(x, y)`, in degrees.
        max_degrees: (f64, f64),
    },
    /// Crop a random region (area fraction and aspect ratio in the ranges) and resize it back
    /// to the full image, as torchvision's `RandomResizedCrop`.
    ResizedCrop {
        /// `(min, max)` fraction of the image area kept.
        area: (f64, f64),
        /// `(min, max)` aspect ratio (width / height) of the crop.
        ratio: (f64, f64),
    },
    /// Add a value in `[-max_delta, max_delta]`.
    Brightness {
        /// Largest change.
        max_delta: f64,
    },
    /// Scale the deviation from the sample's mean by a factor in `range`.
    Contrast {
        /// `(min, max)` factor; 1 is unchanged.
        range: (f64, f64),
    },
    /// Raise to a power in `range`.
    Gamma {
        /// `(min, max)` exponent; 1 is unchanged.
        range: (f64, f64),
    },
    /// Add Gaussian noise with a standard deviation in `std`.
    Noise {
        /// `(min, max)` standard deviation.
        std: (f64, f64),
    },
    /// Gaussian blur with a sigma (pixels) in `sigma`.
    Blur {
        /// `(min, max)` sigma in pixels.
        sigma: (f64, f64),
    },
    /// Erase `count` squares whose side is a fraction in `size` of the shorter image side
    /// (cutout / random erasing), filled with the pipeline's fill value.
    Cutout {
        /// `(min, max)` side as a fraction of `min(H, W)`.
        size: (f64, f64),
        /// Squares per sample.
        count: usize,
    },
}

impl Transform {
    pub(crate) fn is_geometric(&self) -> bool {
        matches!(
            self,
            Transform::HFlip
                | Transform::VFlip
                | Transform::Rotate { .. }
                | Transform::Translate { .. }
                | Transform::Scale { .. }
                | Transform::Shear { .. }
                | Transform::ResizedCrop { .. }
        )
    }

    fn validate(&self) -> Result<()> {
        let name = format!("{self:?}");
        let range = |r: (f64, f64), lo: f64| {
            if !(r.0.is_finite() && r.1.is_finite()) || r.0 < lo || r.0 > r.1 {
                Err(AugmentError::config(
                    &name,
                    format!("range {r:?} must be finite, >= {lo}, min <= max"),
                ))
            } else {
                Ok(())
            }
        };
        let non_negative = |v: f64| range((v, v), 0.0);
        match self {
            Transform::HFlip | Transform::VFlip => Ok(()),
            Transform::Rotate { max_degrees } => non_negative(*max_degrees),
            Transform::Translate {
                max_fraction: (x, y),
            } => non_negative(*x).and(non_negative(*y)),
            Transform::Shear {
                max_degrees: (x, y),
            } => {
                non_negative(*x)?;
                non_negative(*y)?;
                if *x >= 89.0 || *y >= 89.0 {
                    return Err(AugmentError::config(
                        &name,
                        "shear must stay below 89 degrees",
                    ));
                }
                Ok(())
            }
            Transform::Scale { range: r }
            | Transform::Contrast { range: r }
            | Transform::Gamma { range: r } => {
                range(*r, 0.0)?;
                if r.0 == 0.0 && !matches!(self, Transform::Contrast { .. }) {
                    return Err(AugmentError::config(&name, "factor must be positive"));
                }
                Ok(())
            }
            Transform::ResizedCrop { area, ratio } => {
                range(*area, 0.0)?;
                range(*ratio, 0.0)?;
                if area.0 <= 0.0 || area.1 > 1.0 || ratio.0 <= 0.0 {
                    return Err(AugmentError::config(
                        &name,
                        "area must be in (0, 1], ratio positive",
                    ));
                }
                Ok(())
            }
            Transform::Brightness { max_delta } => non_negative(*max_delta),
            Transform::Noise { std: r } | Transform::Blur { sigma: r } => range(*r, 0.0),
            Transform::Cutout { size, .. } => {
                range(*size, 0.0)?;
                if size.1 > 1.0 {
                    return Err(AugmentError::config(
                        &name,
                        "size is a fraction of the image, at most 1",
                    ));
                }
                Ok(())
            }
        }
    }
}

/// A transform applied to each sample with probability `p`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The transform.
    pub transform: Transform,
    /// Probability that a sample gets it, in [0, 1].
    pub p: f64,
}

/// An ordered list of steps. Geometric steps compose, per sample, into one affine map applied
/// in a single resampling pass first; intensity steps then follow in their order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    steps: Vec<Step>,
    /// Resampling filter of the geometric warp.
    pub interpolation: Interpolation,
    /// What fills uncovered areas (and cutout squares, when a constant).
    pub fill: Fill,
    /// Clamp the output to this range (`None`: no clamp).
    pub clamp: Option<(f64, f64)>,
}

impl Pipeline {
    /// A pipeline of `steps`, bilinear, black fill, output clamped to [0, 1].
    pub fn new(steps: Vec<Step>) -> Result<Self> {
        for (i, s) in steps.iter().enumerate() {
            if !(0.0..=1.0).contains(&s.p) {
                return Err(AugmentError::config(
                    format!("step {i} p"),
                    format!("{} is not in [0, 1]", s.p),
                ));
            }
            s.transform.validate()?;
        }
        Ok(Pipeline {
            steps,
            interpolation: Interpolation::Bilinear,
            fill: Fill::Value(0.0),
            clamp: Some((0.0, 1.0)),
        })
    }

    /// The paper's classical augmentation: horizontal and vertical flips (each p = 0.5) and a
    /// rotation by up to ±45°.
    pub fn paper() -> Self {
        Pipeline {
            steps: vec![
                Step {
                    transform: Transform::HFlip,
                    p: 0.5,
                },
                Step {
                    transform: Transform::VFlip,
                    p: 0.5,
                },
                Step {
                    transform: Transform::Rotate { max_degrees: 45.0 },
                    p: 1.0,
                },
            ],
            interpolation: Interpolation::Bilinear,
            fill: Fill::Value(0.0),
            clamp: Some((0.0, 1.0)),
        }
    }

    /// The affine set Frid-Adar et al. used on liver lesions: translation, scaling, flips, shear.
    pub fn frid_adar() -> Self {
        let step = |transform, p| Step { transform, p };
        Pipeline {
            steps: vec![
                step(
                    Transform::Translate {
                        max_fraction: (0.1, 0.1),
                    },
                    0.5,
                ),
                step(Transform::Scale { range: (0.9, 1.1) }, 0.5),
                step(Transform::HFlip, 0.5),
                step(Transform::VFlip, 0.5),
                step(
                    Transform::Shear {
                        max_degrees: (10.0, 10.0),
                    },
                    0.5,
                ),
            ],
            ..Self::paper()
        }
    }

    /// The steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Sets the interpolation.
    pub fn with_interpolation(mut self, interpolation: Interpolation) -> Self {
        self.interpolation = interpolation;
        self
    }

    /// Sets the fill.
    pub fn with_fill(mut self, fill: Fill) -> Self {
        self.fill = fill;
        self
    }

    /// Sets (or removes) the output clamp.
    pub fn with_clamp(mut self, clamp: Option<(f64, f64)>) -> Self {
        self.clamp = clamp;
        self
    }

    /// Augments a batch `[N, C, H, W]` on its own device, drawing every sample's parameters
    /// from `rng` (seed it per epoch for independent streams, see `ganaug_data::epoch_seed`):
    /// [`draw`](Self::draw) then [`apply_drawn`](Self::apply_drawn).
    ///
    /// # Shapes
    /// `[N, C, H, W]` → `[N, C, H, W]`.
    pub fn apply(&self, x: &Tensor, rng: &mut impl Rng) -> Result<Tensor> {
        let (n, c, h, w) = check_batch(x)?;
        self.check_clamp()?;
        let draws = self.draw([n, c, h, w], rng);
        self.apply_drawn(x, &draws)
    }

    /// [`apply`](Self::apply) with a fresh ChaCha8 stream from `seed`.
    pub fn apply_seeded(&self, x: &Tensor, seed: u64) -> Result<Tensor> {
        self.apply(x, &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed))
    }

    pub(crate) fn check_clamp(&self) -> Result<()> {
        match self.clamp {
            Some((lo, hi)) if lo.is_nan() || hi.is_nan() || lo > hi => Err(AugmentError::config(
                "clamp",
                format!("({lo}, {hi}) is not a range"),
            )),
            _ => Ok(()),
        }
    }
}

/// A uniform draw in `[lo, hi]` (exactly `lo` when the range is empty).
pub(crate) fn uniform(rng: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        rng.random_range(lo..=hi)
    } else {
        lo
    }
}

/// One sample's affine map for a geometric transform on a `w x h` image.
pub(crate) fn draw_affine(t: &Transform, w: f64, h: f64, rng: &mut impl Rng) -> Affine {
    match t {
        Transform::HFlip => Affine::hflip(),
        Transform::VFlip => Affine::vflip(),
        Transform::Rotate { max_degrees: m } => Affine::rotate(uniform(rng, -m, *m)),
        Transform::Translate {
            max_fraction: (fx, fy),
        } => Affine::translate(uniform(rng, -fx, *fx) * w, uniform(rng, -fy, *fy) * h),
        Transform::Scale { range: (a, b) } => {
            let s = uniform(rng, *a, *b);
            Affine::scale(s, s)
        }
        Transform::Shear {
            max_degrees: (mx, my),
        } => Affine::shear(uniform(rng, -mx, *mx), uniform(rng, -my, *my)),
        Transform::ResizedCrop { area, ratio } => {
            let a = uniform(rng, area.0, area.1);
            // Log-uniform aspect ratio, as torchvision draws it.
            let r = uniform(rng, ratio.0.ln(), ratio.1.ln()).exp();
            let cw = (a * r).sqrt().min(1.0) * w;
            let ch = (a / r).sqrt().min(1.0) * h;
            let cx = uniform(rng, -(w - cw) / 2.0, (w - cw) / 2.0);
            let cy = uniform(rng, -(h - ch) / 2.0, (h - ch) / 2.0);
            Affine::translate(-cx, -cy).then(&Affine::scale(w / cw, h / ch))
        }
        _ => Affine::IDENTITY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn batch() -> Tensor {
        Tensor::rand([6, 1, 16, 16], (Kind::Float, Device::Cpu))
    }

    fn every(transform: Transform) -> Step {
        Step { transform, p: 1.0 }
    }

    #[test]
    fn zero_parameter_transforms_are_identity() {
        let p = Pipeline::new(vec![
            every(Transform::Rotate { max_degrees: 0.0 }),
            every(Transform::Translate {
                max_fraction: (0.0, 0.0),
            }),
            every(Transform::Scale { range: (1.0, 1.0) }),
            every(Transform::Shear {
                max_degrees: (0.0, 0.0),
            }),
            every(Transform::ResizedCrop {
                area: (1.0, 1.0),
                ratio: (1.0, 1.0),
            }),
            every(Transform::Brightness { max_delta: 0.0 }),
            every(Transform::Contrast { range: (1.0, 1.0) }),
            every(Transform::Gamma { range: (1.0, 1.0) }),
            every(Transform::Noise { std: (0.0, 0.0) }),
            every(Transform::Blur { sigma: (0.0, 0.0) }),
            every(Transform::Cutout {
                size: (0.0, 0.0),
                count: 2,
            }),
        ])
        .expect("valid");
        let x = batch();
        let y = p.apply_seeded(&x, 1).expect("apply");
        assert!((y - &x).abs().max().double_value(&[]) < 1e-5);
    }

    #[test]
    fn same_seed_same_output_and_outputs_in_range() {
        let p = Pipeline::new(vec![
            every(Transform::Rotate { max_degrees: 30.0 }),
            Step {
                transform: Transform::HFlip,
                p: 0.5,
            },
            every(Transform::Brightness { max_delta: 0.3 }),
            every(Transform::Noise { std: (0.05, 0.1) }),
            every(Transform::Cutout {
                size: (0.2, 0.3),
                count: 1,
            }),
        ])
        .expect("valid")
        .with_interpolation(Interpolation::Bicubic);
        let x = batch();
        let a = p.apply_seeded(&x, 42).expect("apply");
        let b = p.apply_seeded(&x, 42).expect("apply");
        let c = p.apply_seeded(&x, 43).expect("apply");
        assert!(a.equal(&b));
        assert!(!a.equal(&c));
        assert!(a.min().double_value(&[]) >= 0.0 && a.max().double_value(&[]) <= 1.0);
        // Per-sample parameters: samples are not all transformed alike.
        let flat = Tensor::ones([6, 1, 16, 16], (Kind::Float, Device::Cpu)) * 0.5;
        let bright =
            Pipeline::new(vec![every(Transform::Brightness { max_delta: 0.3 })]).expect("valid");
        let means = bright.apply_seeded(&flat, 3).expect("apply").mean_dim(
            [1, 2, 3].as_slice(),
            false,
            Kind::Float,
        );
        assert!(means.std(true).double_value(&[]) > 0.01);
    }

    #[test]
    fn the_callers_tensor_is_never_modified() {
        let x = batch() * 3.0 - 1.0;
        let before = x.copy();
        let nothing = Pipeline::new(vec![Step {
            transform: Transform::HFlip,
            p: 0.0,
        }])
        .expect("valid");
        let y = nothing.apply_seeded(&x, 0).expect("apply");
        assert!(x.equal(&before));
        assert!(y.max().double_value(&[]) <= 1.0);
        let _ = Pipeline::paper().apply_seeded(&x, 0).expect("apply");
        assert!(x.equal(&before));
    }

    #[test]
    fn paper_pipeline_keeps_shape_and_moves_pixels() {
        let x = batch();
        let y = Pipeline::paper().apply_seeded(&x, 0).expect("apply");
        assert_eq!(y.size(), x.size());
        assert!((y - x).abs().mean(Kind::Float).double_value(&[]) > 0.01);
    }

    #[test]
    fn bad_configuration_is_a_typed_error() {
        let bad = [
            Step {
                transform: Transform::HFlip,
                p: 1.5,
            },
            Step {
                transform: Transform::HFlip,
                p: f64::NAN,
            },
            every(Transform::Rotate { max_degrees: -1.0 }),
            every(Transform::Scale { range: (1.2, 0.8) }),
            every(Transform::Scale { range: (0.0, 1.0) }),
            every(Transform::Noise { std: (-0.1, 0.1) }),
            every(Transform::Gamma {
                range: (f64::NAN, 1.0),
            }),
            every(Transform::ResizedCrop {
                area: (0.5, 1.5),
                ratio: (0.75, 1.33),
            }),
            every(Transform::Cutout {
                size: (0.1, 2.0),
                count: 1,
            }),
            every(Transform::Shear {
                max_degrees: (90.0, 0.0),
            }),
        ];
        for step in bad {
            let r = Pipeline::new(vec![step.clone()]);
            assert!(
                matches!(r, Err(AugmentError::Config { .. })),
                "{step:?} accepted"
            );
        }
        let p = Pipeline::paper();
        let rank3 = Tensor::zeros([2, 16, 16], (Kind::Float, Device::Cpu));
        assert!(matches!(
            p.apply_seeded(&rank3, 0),
            Err(AugmentError::Shape { .. })
        ));
        let ints = Tensor::zeros([2, 1, 16, 16], (Kind::Int64, Device::Cpu));
        assert!(matches!(
            p.apply_seeded(&ints, 0),
            Err(AugmentError::Shape { .. })
        ));
    }
}
