//! Per-sample intensity transforms on whole batches: every parameter is an `[N, 1, 1, 1]`
//! tensor (the identity value for samples the transform skips), so one tensor op serves the
//! batch on any device.

use tch::Tensor;

use crate::Result;

/// `values` (one per sample) as an `[N, 1, 1, 1]` tensor of `like`'s dtype and device.
pub(crate) fn per_sample(values: &[f64], like: &Tensor) -> Result<Tensor> {
    Ok(Tensor::f_from_slice(values)?
        .f_view([values.len() as i64, 1, 1, 1])?
        .f_to_kind(like.kind())?
        .f_to_device(like.device())?)
}

/// `x + delta`.
pub(crate) fn brightness(x: &Tensor, delta: &[f64]) -> Result<Tensor> {
    Ok(x.f_add(&per_sample(delta, x)?)?)
}

/// `(x - mean) * factor + mean`, the mean taken per sample.
pub(crate) fn contrast(x: &Tensor, factor: &[f64]) -> Result<Tensor> {
    let mean = x.f_mean_dim([1, 2, 3].as_slice(), true, None)?;
    Ok(x.f_sub(&mean)?
        .f_mul(&per_sample(factor, x)?)?
        .f_add(&mean)?)
}

/// `max(x, 0) ^ gamma`.
pub(crate) fn gamma(x: &Tensor, gamma: &[f64]) -> Result<Tensor> {
    Ok(x.f_clamp_min(0.0)?.f_pow(&per_sample(gamma, x)?)?)
}

/// `x + z`, each sample's noise `z` drawn on the host (so the same seed gives the same noise on
/// every device); an empty `z` adds none.
pub(crate) fn noise(x: &Tensor, z: &[Vec<f32>]) -> Result<Tensor> {
    let per_image = x.numel() / z.len().max(1);
    let mut all = vec![0f32; x.numel()];
    for (chunk, zi) in all.chunks_mut(per_image).zip(z) {
        if !zi.is_empty() {
            chunk.copy_from_slice(zi);
        }
    }
    let all = Tensor::f_from_slice(&all)?
        .f_view(x.size().as_slice())?
        .f_to_kind(x.kind())?
        .f_to_device(x.device())?;
    Ok(x.f_add(&all)?)
}

/// Separable Gaussian blur with one `sigma` per sample (0 leaves the sample unchanged), the
/// kernel's radius `3 max_sigma`.
pub(crate) fn blur(x: &Tensor, sigma: &[f64], max_sigma: f64) -> Result<Tensor> {
    let dims = x.size();
    let (n, c, h, w) = (dims[0], dims[1], dims[2], dims[3]);
    if max_sigma <= 0.0 {
        return Ok(x.shallow_clone());
    }
    // Radius 3 sigma, but the reflection pad must stay inside the image.
    let radius = ((3.0 * max_sigma).ceil() as i64).clamp(1, (h.min(w) - 1).max(1));
    let k = 2 * radius + 1;
    let mut weights = Vec::with_capacity((n * c * k) as usize);
    for &s in sigma {
        let kernel: Vec<f64> = (-radius..=radius)
            .map(|i| {
                if s > 0.0 {
                    (-(i * i) as f64 / (2.0 * s * s)).exp()
                } else if i == 0 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let total: f64 = kernel.iter().sum();
        for _ in 0..c {
            weights.extend(kernel.iter().map(|v| v / total));
        }
    }
    let kernel = Tensor::f_from_slice(&weights)?
        .f_to_kind(x.kind())?
        .f_to_device(x.device())?;
    let groups = n * c;
    let col = kernel.f_view([groups, 1, k, 1])?;
    let row = kernel.f_view([groups, 1, 1, k])?;
    let flat = x.f_reshape([1, groups, h, w])?;
    let padded = if radius < h.min(w) {
        flat.f_reflection_pad2d([radius, radius, radius, radius])?
    } else {
        flat.f_replication_pad2d([radius, radius, radius, radius])?
    };
    let out = padded
        .f_conv2d(&col, None::<Tensor>, [1, 1], [0, 0], [1, 1], groups)?
        .f_conv2d(&row, None::<Tensor>, [1, 1], [0, 0], [1, 1], groups)?;
    Ok(out.f_reshape([n, c, h, w])?)
}

/// Rectangles `(x0, y0, x1, y1)` in pixels, one per sample (empty for none), set to `fill`.
pub(crate) fn erase(x: &Tensor, rects: &[[f64; 4]], fill: f64) -> Result<Tensor> {
    let dims = x.size();
    let (h, w) = (dims[2], dims[3]);
    let col = |i: usize| rects.iter().map(|r| r[i]).collect::<Vec<_>>();
    let opts = (x.kind(), x.device());
    let ys = Tensor::f_arange(h, opts)?.f_view([1, 1, h, 1])?;
    let xs = Tensor::f_arange(w, opts)?.f_view([1, 1, 1, w])?;
    let inside_y = ys
        .f_ge_tensor(&per_sample(&col(1), x)?)?
        .f_logical_and(&ys.f_lt_tensor(&per_sample(&col(3), x)?)?)?;
    let inside_x = xs
        .f_ge_tensor(&per_sample(&col(0), x)?)?
        .f_logical_and(&xs.f_lt_tensor(&per_sample(&col(2), x)?)?)?;
    let mask = inside_y.f_logical_and(&inside_x)?;
    let fill = Tensor::f_scalar_tensor(fill, (x.kind(), x.device()))?;
    Ok(fill.f_where_self(&mask, x)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn x() -> Tensor {
        Tensor::rand([3, 1, 12, 12], (Kind::Float, Device::Cpu))
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn identity_parameters_leave_images_unchanged() {
        let x = x();
        assert!(max_diff(&brightness(&x, &[0.0; 3]).expect("b"), &x) < 1e-7);
        assert!(max_diff(&contrast(&x, &[1.0; 3]).expect("c"), &x) < 1e-6);
        assert!(max_diff(&gamma(&x, &[1.0; 3]).expect("g"), &x) < 1e-6);
        assert!(
            max_diff(
                &noise(&x, &[Vec::new(), Vec::new(), Vec::new()]).expect("n"),
                &x
            ) < 1e-7
        );
        assert!(max_diff(&blur(&x, &[0.0; 3], 0.0).expect("blur"), &x) < 1e-7);
        assert!(max_diff(&erase(&x, &[[0.0; 4]; 3], 0.5).expect("e"), &x) < 1e-7);
    }

    #[test]
    fn blur_preserves_constants_and_smooths() {
        let flat = Tensor::full([2, 1, 9, 9], 0.3, (Kind::Float, Device::Cpu));
        assert!(max_diff(&blur(&flat, &[1.5, 0.7], 1.5).expect("blur"), &flat) < 1e-6);
        let x = x();
        let b = blur(&x, &[2.0, 2.0, 0.0], 2.0).expect("blur");
        assert!(b.get(0).std(true).double_value(&[]) < x.get(0).std(true).double_value(&[]));
        assert!(
            max_diff(&b.get(2), &x.get(2)) < 1e-6,
            "sigma 0 sample untouched"
        );
    }

    #[test]
    fn erase_fills_exactly_the_rectangle() {
        let x = Tensor::zeros([1, 1, 6, 6], (Kind::Float, Device::Cpu));
        let e = erase(&x, &[[1.0, 2.0, 4.0, 3.0]], 1.0).expect("erase");
        assert_eq!(e.sum(Kind::Float).double_value(&[]), 3.0);
        assert_eq!(e.double_value(&[0, 0, 2, 1]), 1.0);
        assert_eq!(e.double_value(&[0, 0, 3, 1]), 0.0);
    }
}
