//! Decoding one image file to a square grayscale `u8` buffer.
//!
//! The format comes from the file's first bytes, never its extension (34 COVID-CT `.png` files
//! are JPEG). JPEGs are decoded straight to their luma channel (no chroma work); PNGs of any
//! colour type are converted with the same ITU-R BT.601 weights, so both formats agree with
//! each other and with Pillow's `convert("L")`.

use std::path::Path;

use fast_image_resize::{
    self as fir,
    images::{Image, ImageRef},
    FilterType, PixelType, ResizeAlg,
};
use image::{DynamicImage, ImageDecoder};
use serde::{Deserialize, Serialize};
use zune_core::{colorspace::ColorSpace, options::DecoderOptions};

use crate::{DataError, Result};

/// Resampling filter used when resizing to the square output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ResizeFilter {
    /// Nearest neighbour.
    Nearest,
    /// Box (area average).
    Box,
    /// Bilinear, antialiased when shrinking (as Pillow's `BILINEAR`).
    #[default]
    Bilinear,
    /// Hamming.
    Hamming,
    /// Catmull-Rom bicubic.
    CatmullRom,
    /// Mitchell-Netravali bicubic.
    Mitchell,
    /// Lanczos with 3 lobes.
    Lanczos3,
}

impl ResizeFilter {
    fn algorithm(self) -> ResizeAlg {
        let f = match self {
            ResizeFilter::Nearest => return ResizeAlg::Nearest,
            ResizeFilter::Box => FilterType::Box,
            ResizeFilter::Bilinear => FilterType::Bilinear,
            ResizeFilter::Hamming => FilterType::Hamming,
            ResizeFilter::CatmullRom => FilterType::CatmullRom,
            ResizeFilter::Mitchell => FilterType::Mitchell,
            ResizeFilter::Lanczos3 => FilterType::Lanczos3,
        };
        ResizeAlg::Convolution(f)
    }
}

/// How a non-square image is fitted into the square output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ResizePolicy {
    /// Scale each axis independently (aspect ratio not kept).
    #[default]
    Stretch,
    /// Keep the aspect ratio, fit inside, pad the borders with black.
    Pad,
    /// Keep the aspect ratio, fill the square, crop the overflow around the centre.
    CenterCrop,
}

/// How every image is turned into the dataset's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageSpec {
    /// Output side length in pixels (the output is `size x size`).
    pub size: u32,
    /// Resampling filter.
    pub filter: ResizeFilter,
    /// Aspect-ratio policy.
    pub policy: ResizePolicy,
    /// Largest accepted image, in pixels (width x height), checked from the header before
    /// decoding: a guard against decompression bombs.
    pub max_pixels: u64,
}

impl Default for ImageSpec {
    /// 224x224, bilinear, stretched (what the paper's classifiers take), at most 64 megapixels.
    fn default() -> Self {
        ImageSpec {
            size: 224,
            filter: ResizeFilter::Bilinear,
            policy: ResizePolicy::Stretch,
            max_pixels: 64 << 20,
        }
    }
}

impl ImageSpec {
    /// A spec with the given output size and the other fields at their defaults.
    pub fn with_size(size: u32) -> Self {
        ImageSpec {
            size,
            ..Self::default()
        }
    }

    /// Checks the fields.
    pub fn validate(&self) -> Result<()> {
        if self.size == 0 || self.size > 8192 {
            return Err(DataError::config(
                "size",
                format!("{} is not in 1..=8192", self.size),
            ));
        }
        if self.max_pixels == 0 {
            return Err(DataError::config("max_pixels", "must be positive"));
        }
        Ok(())
    }
}

/// A decoded single-channel 8-bit image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrayImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Row-major pixels, `width * height` bytes.
    pub pixels: Vec<u8>,
}

/// Image container formats recognised from the first bytes of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PNG.
    Png,
    /// JPEG (baseline or progressive).
    Jpeg,
}

impl Format {
    /// Detects the format from magic bytes.
    pub fn sniff(bytes: &[u8]) -> Option<Format> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Format::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Format::Jpeg)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Png => "PNG",
            Format::Jpeg => "JPEG",
        }
    }
}

/// Reads, decodes, converts to gray and resizes one image file per `spec`.
pub fn load_file(path: &Path, spec: &ImageSpec) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let gray = decode_gray(&bytes, path, spec.max_pixels)?;
    resize_square(&gray, spec)
}

/// Decodes PNG or JPEG bytes to grayscale. `path` is only used in error messages.
pub fn decode_gray(bytes: &[u8], path: &Path, max_pixels: u64) -> Result<GrayImage> {
    if bytes.is_empty() {
        return Err(DataError::EmptyFile { path: path.into() });
    }
    let format =
        Format::sniff(bytes).ok_or_else(|| DataError::UnknownFormat { path: path.into() })?;
    let fail = |reason: String| DataError::Decode {
        path: path.into(),
        format: format.name(),
        reason,
    };
    let check = |w: u64, h: u64| {
        if w == 0 || h == 0 {
            Err(fail(format!("zero-sized image {w}x{h}")))
        } else if w.saturating_mul(h) > max_pixels {
            Err(DataError::TooLarge {
                path: path.into(),
                width: w,
                height: h,
                limit: max_pixels,
            })
        } else {
            Ok(())
        }
    };
    match format {
        Format::Jpeg => {
            let options = DecoderOptions::default()
                .jpeg_set_out_colorspace(ColorSpace::Luma)
                .set_strict_mode(true)
                .set_max_width(1 << 16)
                .set_max_height(1 << 16);
            let mut dec = zune_jpeg::JpegDecoder::new_with_options(
                zune_core::bytestream::ZCursor::new(bytes),
                options,
            );
            dec.decode_headers().map_err(|e| fail(e.to_string()))?;
            let (w, h) = dec
                .dimensions()
                .ok_or_else(|| fail("no frame header".into()))?;
            check(w as u64, h as u64)?;
            let pixels = dec.decode().map_err(|e| fail(e.to_string()))?;
            if pixels.len() != w * h {
                return Err(fail(format!(
                    "decoder returned {} bytes for {w}x{h} luma",
                    pixels.len()
                )));
            }
            Ok(GrayImage {
                width: w as u32,
                height: h as u32,
                pixels,
            })
        }
        Format::Png => {
            let mut dec = image::codecs::png::PngDecoder::new(std::io::Cursor::new(bytes))
                .map_err(|e| fail(e.to_string()))?;
            let (w, h) = dec.dimensions();
            check(w as u64, h as u64)?;
            let mut limits = image::Limits::default();
            limits.max_alloc = Some(max_pixels.saturating_mul(8));
            dec.set_limits(limits).map_err(|e| fail(e.to_string()))?;
            let img = DynamicImage::from_decoder(dec).map_err(|e| fail(e.to_string()))?;
            Ok(to_gray(img))
        }
    }
}

/// ITU-R BT.601 luma, rounded: the weights of JPEG's Y channel and of Pillow's `convert("L")`.
fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((299 * r as u32 + 587 * g as u32 + 114 * b as u32 + 500) / 1000) as u8
}

fn to_gray(img: DynamicImage) -> GrayImage {
    let (width, height) = (img.width(), img.height());
    let pixels = match img {
        DynamicImage::ImageLuma8(g) => g.into_raw(),
        DynamicImage::ImageLumaA8(g) => g.pixels().map(|p| p.0[0]).collect(),
        DynamicImage::ImageRgb8(rgb) => rgb.pixels().map(|p| luma(p[0], p[1], p[2])).collect(),
        DynamicImage::ImageRgba8(rgba) => rgba.pixels().map(|p| luma(p[0], p[1], p[2])).collect(),
        // 16-bit and float PNGs: reduce to 8-bit RGB first, then the same weights.
        other => other
            .into_rgb8()
            .pixels()
            .map(|p| luma(p[0], p[1], p[2]))
            .collect(),
    };
    GrayImage {
        width,
        height,
        pixels,
    }
}

/// Resizes a gray image to `spec.size` squared with the spec's filter and policy.
pub fn resize_square(src: &GrayImage, spec: &ImageSpec) -> Result<Vec<u8>> {
    let s = spec.size;
    let resize_err = |e: String| DataError::config("resize", e);
    let src_img = ImageRef::new(src.width, src.height, &src.pixels, PixelType::U8)
        .map_err(|e| resize_err(e.to_string()))?;
    let options = fir::ResizeOptions::new().resize_alg(spec.filter.algorithm());
    let mut resizer = fir::Resizer::new();
    match spec.policy {
        ResizePolicy::Stretch | ResizePolicy::CenterCrop => {
            let options = if spec.policy == ResizePolicy::CenterCrop {
                options.fit_into_destination(None)
            } else {
                options
            };
            let mut dst = Image::new(s, s, PixelType::U8);
            resizer
                .resize(&src_img, &mut dst, &options)
                .map_err(|e| resize_err(e.to_string()))?;
            Ok(dst.into_vec())
        }
        ResizePolicy::Pad => {
            let scale = s as f64 / src.width.max(src.height) as f64;
            let w = ((src.width as f64 * scale).round() as u32).clamp(1, s);
            let h = ((src.height as f64 * scale).round() as u32).clamp(1, s);
            let mut dst = Image::new(w, h, PixelType::U8);
            resizer
                .resize(&src_img, &mut dst, &options)
                .map_err(|e| resize_err(e.to_string()))?;
            let (x0, y0) = (((s - w) / 2) as usize, ((s - h) / 2) as usize);
            let mut out = vec![0u8; (s * s) as usize];
            for (row, line) in dst.buffer().chunks_exact(w as usize).enumerate() {
                let start = (y0 + row) * s as usize + x0;
                out[start..start + w as usize].copy_from_slice(line);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: u32, h: u32) -> GrayImage {
        GrayImage {
            width: w,
            height: h,
            pixels: (0..w * h).map(|i| (i % 251) as u8).collect(),
        }
    }

    #[test]
    fn sniff_ignores_extension_and_rejects_other_bytes() {
        assert_eq!(Format::sniff(b"\x89PNG\r\n\x1a\nrest"), Some(Format::Png));
        assert_eq!(Format::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Format::Jpeg));
        assert_eq!(Format::sniff(b"GIF89a"), None);
    }

    #[test]
    fn luma_matches_bt601() {
        assert_eq!(luma(255, 255, 255), 255);
        assert_eq!(luma(255, 0, 0), 76);
        assert_eq!(luma(0, 255, 0), 150);
        assert_eq!(luma(0, 0, 255), 29);
    }

    #[test]
    fn every_policy_gives_a_square() {
        for policy in [
            ResizePolicy::Stretch,
            ResizePolicy::Pad,
            ResizePolicy::CenterCrop,
        ] {
            let spec = ImageSpec {
                size: 32,
                policy,
                ..ImageSpec::default()
            };
            let out = resize_square(&ramp(148, 61), &spec).expect("resize");
            assert_eq!(out.len(), 32 * 32, "{policy:?}");
        }
    }

    #[test]
    fn pad_leaves_black_borders_on_a_wide_image() {
        let white = GrayImage {
            width: 100,
            height: 50,
            pixels: vec![255; 5000],
        };
        let spec = ImageSpec {
            size: 20,
            policy: ResizePolicy::Pad,
            ..ImageSpec::default()
        };
        let out = resize_square(&white, &spec).expect("resize");
        // 100x50 -> 20x10, centred: rows 0..5 and 15..20 stay black.
        assert!(out[..5 * 20].iter().all(|&p| p == 0));
        assert!(out[15 * 20..].iter().all(|&p| p == 0));
        assert!(out[7 * 20..8 * 20].iter().all(|&p| p == 255));
    }
}
