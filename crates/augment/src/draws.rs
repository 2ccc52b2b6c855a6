//! A pipeline's random draws apart from the images: what lets augmented copies be made again,
//! image by image, in any order, with the values a whole-batch pass gave them.

use rand::Rng;
use rand_distr::StandardNormal;
use tch::Tensor;

use crate::affine::{resample, Affine, Fill};
use crate::error::check_batch;
use crate::pipeline::{draw_affine, uniform};
use crate::{intensity, AugmentError, Pipeline, Result, Step, Transform};

/// Every sample's random parameters for one batch of a [`Pipeline`] ([`Pipeline::draw`]):
/// its affine maps and each intensity step's values. [`Draws::gather`] picks samples of
/// several batches' draws, so that any selection of images gets the parameters their own
/// batches drew.
#[derive(Debug, Clone, PartialEq)]
pub struct Draws {
    /// Image shape `[C, H, W]` the draws were made for.
    shape: [i64; 3],
    maps: Vec<Affine>,
    /// Whether each sample's batch was resampled (some map of it was not the identity): a
    /// batch of identities is left as it is, a resampled identity is within rounding.
    resampled: Vec<bool>,
    steps: Vec<StepDraws>,
}

/// One intensity step's per-sample draws.
#[derive(Debug, Clone, PartialEq)]
enum StepDraws {
    /// One value per sample (brightness, contrast, gamma).
    Values(Vec<f64>),
    /// Blur: each sample's sigma and the largest sigma of the batch it was drawn in (the
    /// kernel's radius follows the batch).
    Blur { sigma: Vec<f64>, reach: Vec<f64> },
    /// Noise: each sample's values (empty where the sample gets none).
    Noise(Vec<Vec<f32>>),
    /// Cutout: per square, one rectangle per sample.
    Rects(Vec<Vec<[f64; 4]>>),
}

impl StepDraws {
    fn pick(&self, row: usize, into: &mut StepDraws) {
        match (self, into) {
            (StepDraws::Values(a), StepDraws::Values(b)) => b.push(a[row]),
            (StepDraws::Blur { sigma, reach }, StepDraws::Blur { sigma: s, reach: r }) => {
                s.push(sigma[row]);
                r.push(reach[row]);
            }
            (StepDraws::Noise(a), StepDraws::Noise(b)) => b.push(a[row].clone()),
            (StepDraws::Rects(a), StepDraws::Rects(b)) => {
                for (square, out) in a.iter().zip(b.iter_mut()) {
                    out.push(square[row]);
                }
            }
            _ => {}
        }
    }

    fn empty_like(&self) -> StepDraws {
        match self {
            StepDraws::Values(_) => StepDraws::Values(Vec::new()),
            StepDraws::Blur { .. } => StepDraws::Blur {
                sigma: Vec::new(),
                reach: Vec::new(),
            },
            StepDraws::Noise(_) => StepDraws::Noise(Vec::new()),
            StepDraws::Rects(a) => StepDraws::Rects(vec![Vec::new(); a.len()]),
        }
    }
}

impl Draws {
    /// Samples drawn for.
    pub fn len(&self) -> usize {
        self.maps.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// Sample `row` of each pick's draws, in order: the draws of a batch made of those
    /// samples. All picks must come from one pipeline and image shape.
    pub fn gather(picks: &[(&Draws, usize)]) -> Result<Draws> {
        let Some(&(first, _)) = picks.first() else {
            return Err(AugmentError::config("draws", "nothing to gather"));
        };
        let mut out = Draws {
            shape: first.shape,
            maps: Vec::with_capacity(picks.len()),
            resampled: Vec::with_capacity(picks.len()),
            steps: first.steps.iter().map(StepDraws::empty_like).collect(),
        };
        for &(d, row) in picks {
            if d.shape != first.shape || d.steps.len() != first.steps.len() || row >= d.len() {
                return Err(AugmentError::config(
                    "draws",
                    format!(
                        "sample {row} of draws for {:?} cannot join draws for {:?}",
                        d.shape, first.shape
                    ),
                ));
            }
            out.maps.push(d.maps[row]);
            out.resampled.push(d.resampled[row]);
            for (step, into) in d.steps.iter().zip(out.steps.iter_mut()) {
                step.pick(row, into);
            }
        }
        Ok(out)
    }
}

impl Pipeline {
    /// Draws every sample's parameters for a batch of shape `[N, C, H, W]` from `rng`, in the
    /// order [`apply`](Pipeline::apply) always has: the geometric steps' maps, then each
    /// intensity step's values. Needs no images and no libtorch.
    pub fn draw(&self, shape: [i64; 4], rng: &mut impl Rng) -> Draws {
        let [n, c, h, w] = shape;
        let n = n.max(0) as usize;
        let (wf, hf) = (w as f64, h as f64);
        let mut maps = vec![Affine::IDENTITY; n];
        for step in self.steps().iter().filter(|s| s.transform.is_geometric()) {
            for map in maps.iter_mut() {
                if rng.random_bool(step.p) {
                    *map = map.then(&draw_affine(&step.transform, wf, hf, rng));
                }
            }
        }
        let per_image = (c * h * w).max(0) as usize;
        let steps = self
            .steps()
            .iter()
            .filter(|s| !s.transform.is_geometric())
            .map(|step| draw_intensity(step, n, per_image, (wf, hf), rng))
            .collect();
        let resampled = vec![!maps.iter().all(Affine::is_identity); maps.len()];
        Draws {
            shape: [c, h, w],
            maps,
            resampled,
            steps,
        }
    }

    /// Applies `draws` to `x` (its samples in the draws' order) on `x`'s device.
    ///
    /// # Shapes
    /// `[N, C, H, W]` → `[N, C, H, W]`, `N` = `draws.len()`.
    pub fn apply_drawn(&self, x: &Tensor, draws: &Draws) -> Result<Tensor> {
        let (n, c, h, w) = check_batch(x)?;
        self.check_clamp()?;
        if n as usize != draws.len() || [c, h, w] != draws.shape {
            return Err(AugmentError::Shape {
                expected: format!("{} images of {:?} (the draws')", draws.len(), draws.shape),
                got: format!("{:?}", x.size()),
            });
        }
        let mut out = self.warp_drawn(x, draws)?;
        let intensity = self.steps().iter().filter(|s| !s.transform.is_geometric());
        if intensity.clone().count() != draws.steps.len() {
            return Err(AugmentError::config(
                "draws",
                "drawn for another pipeline (its intensity steps differ)",
            ));
        }
        for (step, drawn) in intensity.zip(&draws.steps) {
            out = self.apply_step(&out, &step.transform, drawn)?;
        }
        match self.clamp {
            // A tensor the pipeline made is clamped in place (no second 4-byte-per-pixel
            // buffer); the caller's own tensor, returned when nothing moved, never is.
            Some((lo, hi)) if out.data_ptr() != x.data_ptr() => Ok(out.f_clamp_(lo, hi)?),
            Some((lo, hi)) => Ok(out.f_clamp(lo, hi)?),
            None => Ok(out),
        }
    }

    /// The geometric pass: the samples whose batch was resampled, resampled; the others as
    /// they are.
    fn warp_drawn(&self, x: &Tensor, draws: &Draws) -> Result<Tensor> {
        let (interpolation, fill) = (self.interpolation, self.fill);
        if draws.resampled.iter().all(|&r| r) {
            return resample(x, &draws.maps, interpolation, fill);
        }
        if !draws.resampled.iter().any(|&r| r) {
            return Ok(x.shallow_clone());
        }
        let rows: Vec<i64> = (0..draws.len() as i64)
            .filter(|&i| draws.resampled[i as usize])
            .collect();
        let maps: Vec<Affine> = rows.iter().map(|&i| draws.maps[i as usize]).collect();
        let idx = Tensor::f_from_slice(&rows)?.f_to_device(x.device())?;
        let part = resample(&x.f_index_select(0, &idx)?, &maps, interpolation, fill)?;
        Ok(x.f_index_copy(0, &idx, &part)?)
    }

    fn apply_step(&self, x: &Tensor, t: &Transform, drawn: &StepDraws) -> Result<Tensor> {
        match (t, drawn) {
            (Transform::Brightness { .. }, StepDraws::Values(v)) => intensity::brightness(x, v),
            (Transform::Contrast { .. }, StepDraws::Values(v)) => intensity::contrast(x, v),
            (Transform::Gamma { .. }, StepDraws::Values(v)) => intensity::gamma(x, v),
            (Transform::Blur { .. }, StepDraws::Blur { sigma, reach }) => {
                blur_by_reach(x, sigma, reach)
            }
            (Transform::Noise { .. }, StepDraws::Noise(z)) => intensity::noise(x, z),
            (Transform::Cutout { .. }, StepDraws::Rects(squares)) => {
                let fill = match self.fill {
                    Fill::Value(v) => v,
                    _ => 0.0,
                };
                let mut out = x.shallow_clone();
                for rects in squares {
                    out = intensity::erase(&out, rects, fill)?;
                }
                Ok(out)
            }
            (t, _) => Err(AugmentError::config(
                format!("{t:?}"),
                "not an intensity transform, or drawn for another one",
            )),
        }
    }
}

/// One intensity step's draws for `n` samples of `per_image` values each on a `w × h` image.
fn draw_intensity(
    step: &Step,
    n: usize,
    per_image: usize,
    (wf, hf): (f64, f64),
    rng: &mut impl Rng,
) -> StepDraws {
    let mut draw = |identity: f64, lo: f64, hi: f64| -> Vec<f64> {
        (0..n)
            .map(|_| {
                if rng.random_bool(step.p) {
                    uniform(rng, lo, hi)
                } else {
                    identity
                }
            })
            .collect()
    };
    match &step.transform {
        Transform::Brightness { max_delta: d } => StepDraws::Values(draw(0.0, -d, *d)),
        Transform::Contrast { range: (a, b) } | Transform::Gamma { range: (a, b) } => {
            StepDraws::Values(draw(1.0, *a, *b))
        }
        Transform::Blur { sigma: (a, b) } => {
            let sigma = draw(0.0, *a, *b);
            let most = sigma.iter().copied().fold(0.0, f64::max);
            StepDraws::Blur {
                reach: vec![most; sigma.len()],
                sigma,
            }
        }
        Transform::Noise { std: (a, b) } => {
            let std = draw(0.0, *a, *b);
            let noise = |s: f64| -> Vec<f32> {
                if s > 0.0 {
                    (0..per_image)
                        .map(|_| rng.sample::<f32, _>(StandardNormal) * s as f32)
                        .collect()
                } else {
                    Vec::new()
                }
            };
            StepDraws::Noise(std.into_iter().map(noise).collect())
        }
        Transform::Cutout {
            size: (a, b),
            count,
        } => {
            let side = wf.min(hf);
            let mut square = |_| -> Vec<[f64; 4]> {
                (0..n)
                    .map(|_| {
                        if !rng.random_bool(step.p) {
                            return [0.0; 4];
                        }
                        let s = (uniform(rng, *a, *b) * side).round();
                        let (cx, cy) = (uniform(rng, 0.0, wf), uniform(rng, 0.0, hf));
                        let (x0, y0) = ((cx - s / 2.0).floor(), (cy - s / 2.0).floor());
                        [x0, y0, x0 + s, y0 + s]
                    })
                    .collect()
            };
            StepDraws::Rects((0..*count).map(&mut square).collect())
        }
        // geometric steps are drawn with the affine maps
        _ => StepDraws::Values(Vec::new()),
    }
}

/// Blur with each sample's kernel radius following the largest sigma of the batch it was
/// drawn in: samples of one reach blurred together, as their own batch blurred them.
fn blur_by_reach(x: &Tensor, sigma: &[f64], reach: &[f64]) -> Result<Tensor> {
    let mut reaches: Vec<f64> = reach.to_vec();
    reaches.sort_by(f64::total_cmp);
    reaches.dedup();
    if reaches.len() <= 1 {
        return intensity::blur(x, sigma, reaches.first().copied().unwrap_or(0.0));
    }
    let mut out = x.shallow_clone();
    for r in reaches {
        let rows: Vec<i64> = (0..reach.len() as i64)
            .filter(|&i| reach[i as usize] == r)
            .collect();
        let sig: Vec<f64> = rows.iter().map(|&i| sigma[i as usize]).collect();
        let idx = Tensor::f_from_slice(&rows)?.f_to_device(x.device())?;
        let part = intensity::blur(&x.f_index_select(0, &idx)?, &sig, r)?;
        out = out.f_index_copy(0, &idx, &part)?;
    }
    Ok(out)
}
