//! Affine maps and the single-pass warp that applies one per sample.
//!
//! Every geometric transform (flips, rotation, translation, scaling, shear, random resized crop)
//! is an [`Affine`] in pixel units centred on the image. A sample's transforms compose into one
//! matrix, and a whole batch is resampled in one `affine_grid` + `grid_sample` pass on the
//! tensor's own device: no repeated interpolation, no per-pixel Rust loops.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::check_batch;
use crate::{AugmentError, Result};

/// A 2-D affine map `p -> A p + t` acting on image content, in pixels, with the origin at the
/// image centre, x to the right and y down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// Rows `[a, b, tx]` and `[c, d, ty]`.
    pub m: [[f64; 3]; 2],
}

impl Default for Affine {
    fn default() -> Self {
        Self::IDENTITY
    }
}

impl Affine {
    /// The identity.
    pub const IDENTITY: Affine = Affine {
        m: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
    };

    /// Mirror left-right.
    pub fn hflip() -> Self {
        Self::linear(-1.0, 0.0, 0.0, 1.0)
    }

    /// Mirror top-bottom.
    pub fn vflip() -> Self {
        Self::linear(1.0, 0.0, 0.0, -1.0)
    }

    /// Rotation by `degrees` (positive: clockwise on screen, since y points down).
    pub fn rotate(degrees: f64) -> Self {
        let (s, c) = degrees.to_radians().sin_cos();
        Self::linear(c, -s, s, c)
    }

    /// Shift by `(dx, dy)` pixels.
    pub fn translate(dx: f64, dy: f64) -> Self {
        Affine {
            m: [[1.0, 0.0, dx], [0.0, 1.0, dy]],
        }
    }

    /// Zoom by `(sx, sy)` about the centre (greater than 1 enlarges the content).
    pub fn scale(sx: f64, sy: f64) -> Self {
        Self::linear(sx, 0.0, 0.0, sy)
    }

    /// Shear by angles (degrees) along x and y.
    pub fn shear(x_degrees: f64, y_degrees: f64) -> Self {
        Self::linear(
            1.0,
            x_degrees.to_radians().tan(),
            y_degrees.to_radians().tan(),
            1.0,
        )
    }

    fn linear(a: f64, b: f64, c: f64, d: f64) -> Self {
        Affine {
            m: [[a, b, 0.0], [c, d, 0.0]],
        }
    }

    /// `self` followed by `next` (`next ∘ self`).
    pub fn then(&self, next: &Affine) -> Affine {
        let (p, q) = (&next.m, &self.m);
        let mut m = [[0.0; 3]; 2];
        for (r, row) in m.iter_mut().enumerate() {
            row[0] = p[r][0] * q[0][0] + p[r][1] * q[1][0];
            row[1] = p[r][0] * q[0][1] + p[r][1] * q[1][1];
            row[2] = p[r][0] * q[0][2] + p[r][1] * q[1][2] + p[r][2];
        }
        Affine { m }
    }

    /// The inverse map, or `None` when singular.
    pub fn inverse(&self) -> Option<Affine> {
        let [[a, b, tx], [c, d, ty]] = self.m;
        let det = a * d - b * c;
        if det.abs() < 1e-12 || !det.is_finite() {
            return None;
        }
        let (ia, ib, ic, id) = (d / det, -b / det, -c / det, a / det);
        Some(Affine {
            m: [
                [ia, ib, -(ia * tx + ib * ty)],
                [ic, id, -(ic * tx + id * ty)],
            ],
        })
    }

    /// Whether this is the identity (within `1e-12`).
    pub fn is_identity(&self) -> bool {
        self.m
            .iter()
            .flatten()
            .zip(Self::IDENTITY.m.iter().flatten())
            .all(|(a, b)| (a - b).abs() < 1e-12)
    }

    /// The `affine_grid` matrix (output → input, normalised coordinates) for a `w x h` image.
    fn theta(&self, w: i64, h: i64) -> Result<[f64; 6]> {
        let inv = self.inverse().ok_or_else(|| {
            AugmentError::config("affine", format!("singular transform {:?}", self.m))
        })?;
        let [[a, b, tx], [c, d, ty]] = inv.m;
        let (hw, hh) = (w as f64 / 2.0, h as f64 / 2.0);
        // N^-1 · T^-1 · N with N = diag(w/2, h/2): pixel units in, normalised units out.
        Ok([a, b * hh / hw, tx / hw, c * hw / hh, d, ty / hh])
    }
}

/// Resampling filter of the warp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Interpolation {
    /// Nearest neighbour (torchvision's default for rotations).
    Nearest,
    /// Bilinear.
    #[default]
    Bilinear,
    /// Bicubic (may overshoot; pipelines clamp afterwards).
    Bicubic,
}

impl Interpolation {
    fn code(self) -> i64 {
        match self {
            Interpolation::Bilinear => 0,
            Interpolation::Nearest => 1,
            Interpolation::Bicubic => 2,
        }
    }
}

/// What fills the area a warp uncovers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Fill {
    /// A constant value.
    Value(f64),
    /// Repeat the border pixels.
    Border,
    /// Mirror the image at its borders.
    Reflection,
}

impl Default for Fill {
    fn default() -> Self {
        Fill::Value(0.0)
    }
}

thread_local! {
    /// The last CPU grid buffer of this thread. A 256×224² grid is 100 MB, and on a CPU most of
    /// the cost of a fresh one is the kernel zeroing and mapping its pages; reusing it makes a
    /// warp about a third cheaper. Only CPU buffers are kept, one per thread.
    static GRID: std::cell::RefCell<Option<Tensor>> = const { std::cell::RefCell::new(None) };
}

/// An uninitialised `[N, H, W, 2]` buffer, reused across calls on the CPU. The grid is consumed
/// by `grid_sampler` before the warp returns, so no caller ever sees the shared buffer.
fn grid_buffer(size: [i64; 4], opts: (tch::Kind, tch::Device)) -> Result<Tensor> {
    if opts.1 != tch::Device::Cpu {
        return Ok(Tensor::f_empty(size, opts)?);
    }
    GRID.with(|cell| {
        let mut slot = cell.borrow_mut();
        if let Some(t) = slot
            .as_ref()
            .filter(|t| t.size() == size && t.kind() == opts.0)
        {
            return Ok(t.shallow_clone());
        }
        let t = Tensor::f_empty(size, opts)?;
        *slot = Some(t.shallow_clone());
        Ok(t)
    })
}

/// The `[N, H, W, 2]` sampling grid of `theta` (`[N, 2, 3]`), as `affine_grid` with
/// `align_corners = false` computes it, but by broadcasting instead of a batched matrix
/// product: on a CPU `affine_grid` took three times as long as the resampling itself.
fn sampling_grid(theta: &Tensor, h: i64, w: i64) -> Result<Tensor> {
    let n = theta.size()[0];
    let opts = (theta.kind(), theta.device());
    // Pixel centres in normalised coordinates: (2i + 1) / size - 1.
    let centres = |len: i64| -> Result<Tensor> {
        Ok(Tensor::f_arange(len, opts)?
            .f_mul_scalar(2.0)?
            .f_add_scalar(1.0)?
            .f_div_scalar(len as f64)?
            .f_sub_scalar(1.0)?)
    };
    let xs = centres(w)?.f_view([1, 1, w])?;
    let ys = centres(h)?.f_view([1, h, 1])?;
    // Each coordinate is written straight into its strided slot of the grid: no stacking copy.
    let grid = grid_buffer([n, h, w, 2], opts)?;
    for row in 0..2 {
        let t = |col: i64| theta.f_select(1, row)?.f_select(1, col)?.f_view([n, 1, 1]);
        let along_x = xs.f_mul(&t(0)?)?.f_add(&t(2)?)?;
        let _ = along_x.f_add_out(&grid.f_select(3, row)?, &ys.f_mul(&t(1)?)?)?;
    }
    Ok(grid)
}

/// Warps every sample of `x` (`[N, C, H, W]`) by its own affine map, in one resampling pass.
///
/// # Shapes
/// `x: [N, C, H, W]`, `maps.len() == N` → `[N, C, H, W]`.
pub fn warp(
    x: &Tensor,
    maps: &[Affine],
    interpolation: Interpolation,
    fill: Fill,
) -> Result<Tensor> {
    let (n, ..) = check_batch(x)?;
    if maps.len() as i64 != n {
        return Err(AugmentError::Shape {
            expected: format!("{n} affine maps (one per sample)"),
            got: format!("{}", maps.len()),
        });
    }
    if maps.iter().all(Affine::is_identity) {
        return Ok(x.shallow_clone());
    }
    resample(x, maps, interpolation, fill)
}

/// [`warp`] without its shortcut: every sample resampled, identity maps included (a
/// resampled identity is within rounding of the image, not always equal to it).
pub(crate) fn resample(
    x: &Tensor,
    maps: &[Affine],
    interpolation: Interpolation,
    fill: Fill,
) -> Result<Tensor> {
    let (n, _, h, w) = check_batch(x)?;
    let mut theta = Vec::with_capacity(maps.len() * 6);
    for m in maps {
        theta.extend_from_slice(&m.theta(w, h)?);
    }
    let theta = Tensor::f_from_slice(&theta)?
        .f_view([n, 2, 3])?
        .f_to_kind(x.kind())?
        .f_to_device(x.device())?;
    let grid = sampling_grid(&theta, h, w)?;
    let mode = interpolation.code();
    Ok(match fill {
        Fill::Value(0.0) => x.f_grid_sampler(&grid, mode, 0, false)?,
        // Zero padding of (x - v), then + v: a constant fill, exactly.
        Fill::Value(v) => x
            .f_sub_scalar(v)?
            .f_grid_sampler(&grid, mode, 0, false)?
            .f_add_scalar(v)?,
        Fill::Border => x.f_grid_sampler(&grid, mode, 1, false)?,
        Fill::Reflection => x.f_grid_sampler(&grid, mode, 2, false)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn img(n: i64, h: i64, w: i64) -> Tensor {
        Tensor::rand([n, 1, h, w], (Kind::Float, Device::Cpu))
    }

    /// Bilinear warp with black fill, the tests' usual case.
    fn bilinear(x: &Tensor, maps: &[Affine]) -> Tensor {
        warp(x, maps, Interpolation::Bilinear, Fill::default()).expect("warp")
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn flips_are_exact_and_flip_twice_is_identity() {
        let x = img(2, 7, 9);
        let h = bilinear(&x, &[Affine::hflip(); 2]);
        assert!(max_diff(&h, &x.flip([3])) < 1e-6);
        let v = bilinear(&x, &[Affine::vflip(); 2]);
        assert!(max_diff(&v, &x.flip([2])) < 1e-6);
        let twice = bilinear(&h, &[Affine::hflip(); 2]);
        assert!(max_diff(&twice, &x) < 1e-6);
    }

    #[test]
    fn rotation_by_90_matches_rot90() {
        let x = img(1, 8, 8);
        for interp in [
            Interpolation::Bilinear,
            Interpolation::Nearest,
            Interpolation::Bicubic,
        ] {
            let r = warp(&x, &[Affine::rotate(90.0)], interp, Fill::default()).expect("warp");
            // Clockwise on screen is rot90 with k = -1 over (H, W).
            assert!(max_diff(&r, &x.rot90(-1, [2, 3])) < 1e-5, "{interp:?}");
        }
    }

    #[test]
    fn identity_is_identity_and_composition_matches_sequence() {
        let x = img(1, 16, 16);
        let same = bilinear(&x, &[Affine::IDENTITY]);
        assert!(max_diff(&same, &x) == 0.0);
        // Exact steps (flip, 90° turn, whole-pixel shift): one pass equals step-by-step.
        let steps = [
            Affine::hflip(),
            Affine::rotate(90.0),
            Affine::translate(2.0, -3.0),
        ];
        let mut seq = x.shallow_clone();
        for s in &steps {
            seq = bilinear(&seq, &[*s]);
        }
        let composed = steps.iter().fold(Affine::IDENTITY, |acc, s| acc.then(s));
        let once = bilinear(&x, &[composed]);
        assert!(max_diff(&once, &seq) < 1e-5);
    }

    #[test]
    fn inverse_round_trips() {
        let a = Affine::rotate(30.0)
            .then(&Affine::shear(10.0, -5.0))
            .then(&Affine::translate(3.0, 1.0));
        let id = a.then(&a.inverse().expect("invertible"));
        assert!(id.is_identity());
        assert!(Affine::scale(0.0, 1.0).inverse().is_none());
    }

    #[test]
    fn constant_fill_fills_uncovered_area() {
        let x = Tensor::zeros([1, 1, 8, 8], (Kind::Float, Device::Cpu));
        let out = warp(
            &x,
            &[Affine::translate(4.0, 0.0)],
            Interpolation::Nearest,
            Fill::Value(0.7),
        )
        .expect("warp");
        // The left half is uncovered by a 4-pixel shift to the right.
        assert!((out.double_value(&[0, 0, 3, 1]) - 0.7).abs() < 1e-6);
        assert!(out.double_value(&[0, 0, 3, 6]).abs() < 1e-6);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let x = Tensor::zeros([2, 8, 8], (Kind::Float, Device::Cpu));
        assert!(matches!(
            warp(&x, &[], Interpolation::Bilinear, Fill::default()),
            Err(AugmentError::Shape { .. })
        ));
        let x = Tensor::zeros([1, 1, 8, 8], (Kind::Int64, Device::Cpu));
        assert!(warp(
            &x,
            &[Affine::hflip()],
            Interpolation::Bilinear,
            Fill::default()
        )
        .is_err());
        let x = img(2, 4, 4);
        assert!(warp(
            &x,
            &[Affine::hflip()],
            Interpolation::Bilinear,
            Fill::default()
        )
        .is_err());
        assert!(warp(
            &x,
            &[Affine::scale(0.0, 0.0); 2],
            Interpolation::Bilinear,
            Fill::default()
        )
        .is_err());
    }
}
