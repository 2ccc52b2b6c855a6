//! Resizing a decoded image to the square output, gray or RGB, with the spec's filter and
//! aspect policy (`fast_image_resize`, SIMD).

use fast_image_resize::{
    self as fir,
    images::{Image, ImageRef},
    PixelType,
};

use crate::decode::Image8;
use crate::spec::{ImageSpec, ResizePolicy};
use crate::{DataError, Result};

/// Resizes an image to `spec.size` squared with the spec's filter and policy. Returns planar
/// bytes: `size²` for gray, `3 · size²` (R plane, G plane, B plane) for RGB.
pub fn resize_square(src: &Image8, spec: &ImageSpec) -> Result<Vec<u8>> {
    let pixel_type = match src.channels {
        1 => PixelType::U8,
        3 => PixelType::U8x3,
        n => return Err(bad_channels(n)),
    };
    let src_img = ImageRef::new(src.width, src.height, &src.pixels, pixel_type)
        .map_err(|e| resize_err(e.to_string()))?;
    let (dst, w, h) = resize_to_fit(&src_img, spec)?;
    Ok(place_planar(
        dst.buffer(),
        src.channels as usize,
        w,
        h,
        spec.size,
    ))
}

pub(crate) fn resize_err(e: String) -> DataError {
    DataError::config("resize", e)
}

pub(crate) fn bad_channels(n: u8) -> DataError {
    DataError::config("channels", format!("{n} channels; 1 or 3 expected"))
}

/// Resizes `src` by the spec's filter into the region its policy fills: the whole square for
/// stretch and centre crop, the aspect-kept fit for pad. Returns the image and its size.
pub(crate) fn resize_to_fit(
    src: &ImageRef<'_>,
    spec: &ImageSpec,
) -> Result<(Image<'static>, u32, u32)> {
    let s = spec.size;
    let (w, h) = match spec.policy {
        ResizePolicy::Stretch | ResizePolicy::CenterCrop => (s, s),
        ResizePolicy::Pad => {
            let scale = s as f64 / src.width().max(src.height()) as f64;
            (
                ((src.width() as f64 * scale).round() as u32).clamp(1, s),
                ((src.height() as f64 * scale).round() as u32).clamp(1, s),
            )
        }
    };
    let options = fir::ResizeOptions::new().resize_alg(spec.filter.algorithm());
    let options = if spec.policy == ResizePolicy::CenterCrop {
        options.fit_into_destination(None)
    } else {
        options
    };
    let mut dst = Image::new(w, h, src.pixel_type());
    fir::Resizer::new()
        .resize(src, &mut dst, &options)
        .map_err(|e| resize_err(e.to_string()))?;
    Ok((dst, w, h))
}

/// Places interleaved `w × h × c` samples centred in a black `s × s` square and splits them
/// into `c` planes.
pub(crate) fn place_planar<T: Copy + Default>(
    samples: &[T],
    c: usize,
    w: u32,
    h: u32,
    s: u32,
) -> Vec<T> {
    let (x0, y0) = (((s - w) / 2) as usize, ((s - h) / 2) as usize);
    let plane = (s * s) as usize;
    let mut planar = vec![T::default(); plane * c];
    for (i, px) in samples.chunks_exact(c).enumerate() {
        let (x, y) = (i % w as usize, i / w as usize);
        let at = (y0 + y) * s as usize + x0 + x;
        for (ch, &v) in px.iter().enumerate() {
            planar[ch * plane + at] = v;
        }
    }
    planar
}
