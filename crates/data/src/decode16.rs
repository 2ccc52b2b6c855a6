//! 16-bit decoding and resizing ([`Depth::Sixteen`](crate::Depth::Sixteen)): 16-bit PNG and
//! TIFF keep every bit, DICOM keeps its window at 16 bits, 8-bit files are widened by 257 (so
//! that `v / 255 == 257·v / 65535` exactly), and the gray conversion uses the same BT.601
//! weights as the 8-bit path.

use std::path::Path;

use fast_image_resize::{
    images::ImageRef,
    pixels::{U16x3, U16},
};
use image::DynamicImage;

use crate::decode::{self, read_dynamic, sniff_checked, Format, Image8};
use crate::resize::{bad_channels, place_planar, resize_err, resize_to_fit};
use crate::spec::{ColorMode, ImageSpec};
use crate::{DataError, Result};

/// A decoded 16-bit image: gray (1 channel) or RGB (3 channels, interleaved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image16 {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 1 (gray) or 3 (RGB).
    pub channels: u8,
    /// Row-major samples, `width * height * channels` (RGB interleaved).
    pub pixels: Vec<u16>,
}

impl From<Image8> for Image16 {
    /// Widens by 257 (0 → 0, 255 → 65535).
    fn from(img: Image8) -> Self {
        Image16 {
            width: img.width,
            height: img.height,
            channels: img.channels,
            pixels: img.pixels.iter().map(|&v| u16::from(v) * 257).collect(),
        }
    }
}

/// BT.601 luma of 16-bit samples, rounded.
fn luma16(r: u16, g: u16, b: u16) -> u16 {
    ((299 * u64::from(r) + 587 * u64::from(g) + 114 * u64::from(b) + 500) / 1000) as u16
}

fn is_8bit(img: &DynamicImage) -> bool {
    matches!(
        img,
        DynamicImage::ImageLuma8(_)
            | DynamicImage::ImageLumaA8(_)
            | DynamicImage::ImageRgb8(_)
            | DynamicImage::ImageRgba8(_)
    )
}

pub(crate) fn to_gray16(img: DynamicImage) -> Image16 {
    if is_8bit(&img) {
        return decode::to_gray(img).into();
    }
    let (width, height) = (img.width(), img.height());
    let pixels = match img {
        DynamicImage::ImageLuma16(g) => g.into_raw(),
        DynamicImage::ImageLumaA16(g) => g.pixels().map(|p| p.0[0]).collect(),
        other => other
            .into_rgb16()
            .pixels()
            .map(|p| luma16(p[0], p[1], p[2]))
            .collect(),
    };
    Image16 {
        width,
        height,
        channels: 1,
        pixels,
    }
}

pub(crate) fn to_rgb16(img: DynamicImage) -> Image16 {
    if is_8bit(&img) {
        return decode::to_rgb(img).into();
    }
    let (width, height) = (img.width(), img.height());
    Image16 {
        width,
        height,
        channels: 3,
        pixels: img.into_rgb16().into_raw(),
    }
}

/// Decodes image bytes at 16 bits: RGB when `spec.color` is [`ColorMode::Rgb`], else gray;
/// for DICOM, frame `frame` through the spec's window. `path` is only used in messages.
pub fn decode16(bytes: &[u8], path: &Path, spec: &ImageSpec, frame: u32) -> Result<Image16> {
    let rgb = spec.color == ColorMode::Rgb;
    match sniff_checked(bytes, path)? {
        Format::Dicom => crate::dicom::decode16(bytes, path, spec, frame),
        #[cfg(feature = "nifti")]
        Format::Nifti => crate::nifti::decode16(bytes, path, spec, frame),
        #[cfg(not(feature = "nifti"))]
        Format::Nifti => Err(crate::nifti::no_feature(path)),
        f @ (Format::Png | Format::Tiff) => {
            let img = read_dynamic(bytes, path, f, spec.max_pixels)?;
            Ok(if rgb { to_rgb16(img) } else { to_gray16(img) })
        }
        // 8-bit formats: the 8-bit decode, widened.
        Format::Jpeg | Format::Bmp | Format::WebP => {
            Ok(decode::decode(bytes, path, spec, frame)?.into())
        }
    }
}

/// Resizes a 16-bit image to `spec.size` squared with the spec's filter and policy. Returns
/// planar samples: `size²` for gray, `3 · size²` (R, G, B planes) for RGB.
pub fn resize_square16(src: &Image16, spec: &ImageSpec) -> Result<Vec<u16>> {
    let c = src.channels as usize;
    let gray: Vec<U16>;
    let rgb: Vec<U16x3>;
    let src_img = match src.channels {
        1 => {
            gray = src.pixels.iter().map(|&v| U16::new(v)).collect();
            ImageRef::from_pixels(src.width, src.height, &gray)
        }
        3 => {
            rgb = src
                .pixels
                .chunks_exact(3)
                .map(|p| U16x3::new([p[0], p[1], p[2]]))
                .collect();
            ImageRef::from_pixels(src.width, src.height, &rgb)
        }
        n => return Err(bad_channels(n)),
    }
    .map_err(|e| resize_err(e.to_string()))?;
    let (dst, w, h) = resize_to_fit(&src_img, spec)?;
    let samples: Vec<u16> = match c {
        1 => dst
            .typed_image::<U16>()
            .map(|t| t.pixels().iter().map(|p| p.0).collect()),
        _ => dst
            .typed_image::<U16x3>()
            .map(|t| t.pixels().iter().flat_map(|p| p.0).collect()),
    }
    .ok_or_else(|| resize_err("unexpected pixel type".into()))?;
    Ok(place_planar(&samples, c, w, h, spec.size))
}

/// Whether a file stores more than 8 bits per sample, from its header: 16-bit PNG and TIFF,
/// DICOM storing more than 8 bits, NIfTI of a type wider than a byte. Other formats are
/// 8-bit.
pub fn is_high_bit_depth(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 348];
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let n = file.read(&mut head).map_err(|e| DataError::io(path, e))?;
    match Format::sniff(&head[..n]) {
        // IHDR's bit-depth byte.
        Some(Format::Png) => Ok(n > 24 && head[24] == 16),
        Some(Format::Tiff) => {
            let reader = std::io::BufReader::new(
                std::fs::File::open(path).map_err(|e| DataError::io(path, e))?,
            );
            let dec = image::codecs::tiff::TiffDecoder::new(reader)
                .map_err(|e| decode::decode_error(path, Format::Tiff, e.to_string()))?;
            let ct = image::ImageDecoder::color_type(&dec);
            Ok(ct.bytes_per_pixel() / ct.channel_count() > 1)
        }
        Some(Format::Dicom) => crate::dicom::high_bit_depth(path),
        // windowed from the volume's values: keep 16 bits unless it stores bytes
        Some(Format::Nifti) => crate::nifti::high_bit_depth(path),
        _ => Ok(false),
    }
}

/// What [`Depth::Auto`](crate::Depth::Auto) decided, and from what.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthDecision {
    /// 8 or 16 bits.
    pub depth: crate::Depth,
    /// Files checked.
    pub files: usize,
    /// Files storing more than 8 bits.
    pub high_depth_files: usize,
    /// One of them.
    pub example: Option<std::path::PathBuf>,
}

impl std::fmt::Display for DepthDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.example {
            Some(p) => write!(
                f,
                "bit depth auto: 16 ({} of {} files store more than 8 bits, e.g. {})",
                self.high_depth_files,
                self.files,
                p.display()
            ),
            None => write!(f, "bit depth auto: 8 (all {} files are 8-bit)", self.files),
        }
    }
}

/// Decides [`Depth::Auto`](crate::Depth::Auto) for `paths` from their headers (in parallel).
pub fn decide_depth(paths: &[&Path]) -> Result<DepthDecision> {
    use rayon::prelude::*;
    let high: Vec<bool> = paths
        .par_iter()
        .map(|p| is_high_bit_depth(p))
        .collect::<Result<_>>()?;
    let example = paths
        .iter()
        .zip(&high)
        .find(|(_, h)| **h)
        .map(|(p, _)| p.to_path_buf());
    Ok(DepthDecision {
        depth: if example.is_some() {
            crate::Depth::Sixteen
        } else {
            crate::Depth::Eight
        },
        files: paths.len(),
        high_depth_files: high.iter().filter(|h| **h).count(),
        example,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bit_png_keeps_every_bit_and_eight_bit_files_widen_exactly() {
        let values: Vec<u16> = (0..16).map(|i| 1000 + 37 * i).collect();
        let img = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(4, 4, values.clone())
            .expect("buffer");
        let mut png = std::io::Cursor::new(Vec::new());
        DynamicImage::ImageLuma16(img)
            .write_to(&mut png, image::ImageFormat::Png)
            .expect("encode");
        let spec = ImageSpec::with_size(4).with_depth(crate::Depth::Sixteen);
        let got = decode16(png.get_ref(), Path::new("x.png"), &spec, 0).expect("decode");
        assert_eq!(got.pixels, values, "1000, 1037, …: not a multiple of 257");
        // Same-size resize keeps them (nearest) and returns planes.
        let spec = ImageSpec {
            filter: crate::ResizeFilter::Nearest,
            ..spec
        };
        assert_eq!(resize_square16(&got, &spec).expect("resize"), values);
        let eight = Image8::gray(1, 3, vec![0, 128, 255]);
        assert_eq!(Image16::from(eight).pixels, [0, 128 * 257, 65535]);
    }

    #[test]
    fn padding_and_rgb_planes_at_sixteen_bits() {
        let img = Image16 {
            width: 4,
            height: 2,
            channels: 3,
            pixels: [[60000u16, 30000, 10]; 8].concat(),
        };
        let spec = ImageSpec {
            policy: crate::ResizePolicy::Pad,
            ..ImageSpec::with_size(4)
        };
        let out = resize_square16(&img, &spec).expect("resize");
        assert_eq!(out.len(), 3 * 16);
        // Rows 0 and 3 are padding, rows 1-2 the image.
        assert!(out[..4].iter().all(|&v| v == 0));
        assert!(out[4..12].iter().all(|&v| v == 60000));
        assert!(out[16 + 4..16 + 12].iter().all(|&v| v == 30000));
    }
}
