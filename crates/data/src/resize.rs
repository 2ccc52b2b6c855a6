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
    let s = spec.size;
    let c = src.channels as usize;
    let pixel_type = match src.channels {
        1 => PixelType::U8,
        3 => PixelType::U8x3,
        n => {
            return Err(DataError::config(
                "channels",
                format!("{n} channels; 1 or 3 expected"),
            ))
        }
    };
    let resize_err = |e: String| DataError::config("resize", e);
    let src_img = ImageRef::new(src.width, src.height, &src.pixels, pixel_type)
        .map_err(|e| resize_err(e.to_string()))?;
    let options = fir::ResizeOptions::new().resize_alg(spec.filter.algorithm());
    let mut resizer = fir::Resizer::new();
    let interleaved = match spec.policy {
        ResizePolicy::Stretch | ResizePolicy::CenterCrop => {
            let options = if spec.policy == ResizePolicy::CenterCrop {
                options.fit_into_destination(None)
            } else {
                options
            };
            let mut dst = Image::new(s, s, pixel_type);
            resizer
                .resize(&src_img, &mut dst, &options)
                .map_err(|e| resize_err(e.to_string()))?;
            dst.into_vec()
        }
        ResizePolicy::Pad => {
            let scale = s as f64 / src.width.max(src.height) as f64;
            let w = ((src.width as f64 * scale).round() as u32).clamp(1, s);
            let h = ((src.height as f64 * scale).round() as u32).clamp(1, s);
            let mut dst = Image::new(w, h, pixel_type);
            resizer
                .resize(&src_img, &mut dst, &options)
                .map_err(|e| resize_err(e.to_string()))?;
            let (x0, y0) = (((s - w) / 2) as usize, ((s - h) / 2) as usize);
            let row = w as usize * c;
            let mut out = vec![0u8; (s * s) as usize * c];
            for (y, line) in dst.buffer().chunks_exact(row).enumerate() {
                let start = ((y0 + y) * s as usize + x0) * c;
                out[start..start + row].copy_from_slice(line);
            }
            out
        }
    };
    if c == 1 {
        return Ok(interleaved);
    }
    let plane = (s * s) as usize;
    let mut planar = vec![0u8; plane * c];
    for (i, px) in interleaved.chunks_exact(c).enumerate() {
        for (ch, &v) in px.iter().enumerate() {
            planar[ch * plane + i] = v;
        }
    }
    Ok(planar)
}
