//! Decoding one image file to 8-bit gray or RGB pixels, and resizing them to the square output.
//!
//! The format comes from the file's first bytes, never its extension (34 COVID-CT `.png` files
//! are JPEG). Gray JPEGs are decoded straight to their luma channel (no chroma work); PNGs,
//! TIFFs, BMPs and WebPs of any colour type, and CMYK JPEGs, are converted with the same
//! ITU-R BT.601 weights, so the formats agree with each other and with Pillow's `convert("L")`.
//! 16-bit and float files are reduced to 8 bits (the decode cache stores bytes).

use std::path::Path;

use image::{DynamicImage, ImageDecoder};
use zune_core::{colorspace::ColorSpace, options::DecoderOptions};

pub use crate::decode16::{
    decide_depth, decode16, is_high_bit_depth, resize_square16, DepthDecision, Image16,
};
pub use crate::resize::resize_square;
pub use crate::spec::{ColorMode, ImageSpec, ResizeFilter, ResizePolicy};
use crate::{DataError, Result};

/// A decoded 8-bit image: gray (1 channel) or RGB (3 channels, interleaved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image8 {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 1 (gray) or 3 (RGB).
    pub channels: u8,
    /// Row-major pixels, `width * height * channels` bytes (RGB interleaved).
    pub pixels: Vec<u8>,
}

impl Image8 {
    /// A gray image from row-major pixels.
    pub fn gray(width: u32, height: u32, pixels: Vec<u8>) -> Self {
        Image8 {
            width,
            height,
            channels: 1,
            pixels,
        }
    }

    /// The largest difference between the R, G and B values of one pixel (0 for gray).
    pub fn max_channel_difference(&self) -> u8 {
        if self.channels != 3 {
            return 0;
        }
        self.pixels
            .chunks_exact(3)
            .map(|p| p[0].max(p[1]).max(p[2]) - p[0].min(p[1]).min(p[2]))
            .max()
            .unwrap_or(0)
    }
}

/// Image container formats recognised from the first bytes of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PNG.
    Png,
    /// JPEG (baseline or progressive; gray, YCbCr or CMYK).
    Jpeg,
    /// TIFF (either byte order).
    Tiff,
    /// Windows bitmap.
    Bmp,
    /// WebP (lossy or lossless).
    WebP,
    /// DICOM: Part 10 (`DICM` after the 128-byte preamble, or at 0) or a raw data set without
    /// preamble and meta group; decoded with the `dicom` feature.
    Dicom,
    /// NIfTI-1 volume (`n+1` at byte 344, or gzip-compressed); read as axial slices with the
    /// `nifti` feature.
    Nifti,
}

impl Format {
    /// Detects the format from magic bytes. DICOM's `DICM` at byte 128 is tested first: the
    /// standard lets the 128-byte preamble hold anything, and dual DICOM/TIFF files put a TIFF
    /// header there. Then the image formats' magic numbers (none of which can start a DICOM
    /// data set), NIfTI's magic at 344 or gzip, and last a DICOM data set without preamble
    /// (`DICM` at 0, or a first element in group 0008).
    pub fn sniff(bytes: &[u8]) -> Option<Format> {
        if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
            Some(Format::Dicom)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Format::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Format::Jpeg)
        } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
            Some(Format::Tiff)
        } else if bytes.starts_with(b"BM") && bytes.len() >= 26 {
            Some(Format::Bmp)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Format::WebP)
        } else if crate::nifti::sniff(bytes) {
            Some(Format::Nifti)
        } else if bytes.starts_with(b"DICM") || crate::dicom::raw_dataset_syntax(bytes).is_some() {
            Some(Format::Dicom)
        } else {
            None
        }
    }

    /// The format's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Png => "PNG",
            Format::Jpeg => "JPEG",
            Format::Tiff => "TIFF",
            Format::Bmp => "BMP",
            Format::WebP => "WebP",
            Format::Dicom => "DICOM",
            Format::Nifti => "NIfTI",
        }
    }

    pub(crate) fn image_format(self) -> Option<image::ImageFormat> {
        match self {
            Format::Png => Some(image::ImageFormat::Png),
            Format::Tiff => Some(image::ImageFormat::Tiff),
            Format::Bmp => Some(image::ImageFormat::Bmp),
            Format::WebP => Some(image::ImageFormat::WebP),
            Format::Jpeg | Format::Dicom | Format::Nifti => None,
        }
    }
}

/// Reads, decodes and resizes one image file per `spec` (gray unless `spec.color` is
/// [`ColorMode::Rgb`]; `Auto` is decided by a dataset load, and reads gray here). Returns the
/// planar `C × size × size` bytes.
pub fn load_file(path: &Path, spec: &ImageSpec) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    resize_square(&decode(&bytes, path, spec, 0)?, spec)
}

/// Decodes image bytes to gray (DICOM: frame 0, lung window). `path` is only used in error
/// messages.
pub fn decode_gray(bytes: &[u8], path: &Path, max_pixels: u64) -> Result<Image8> {
    let spec = ImageSpec {
        max_pixels,
        ..ImageSpec::default()
    };
    decode(bytes, path, &spec, 0)
}

/// Decodes image bytes to RGB (DICOM: frame 0, lung window). `path` is only used in error
/// messages.
pub fn decode_rgb(bytes: &[u8], path: &Path, max_pixels: u64) -> Result<Image8> {
    let spec = ImageSpec {
        max_pixels,
        color: ColorMode::Rgb,
        ..ImageSpec::default()
    };
    decode(bytes, path, &spec, 0)
}

/// Decodes image bytes to RGB when `spec.color` is [`ColorMode::Rgb`], else to gray, with the
/// spec's size limit; for DICOM, frame `frame` through the spec's window. `path` is only used
/// in error messages.
pub fn decode(bytes: &[u8], path: &Path, spec: &ImageSpec, frame: u32) -> Result<Image8> {
    let (max_pixels, rgb) = (spec.max_pixels, spec.color == ColorMode::Rgb);
    let format = sniff_checked(bytes, path)?;
    match format {
        Format::Jpeg => {
            let fail = |reason: String| decode_error(path, format, reason);
            let check = |w: u64, h: u64| check_size(path, format, w, h, max_pixels);
            decode_jpeg(bytes, rgb, &fail, &check)
        }
        Format::Dicom => crate::dicom::decode(bytes, path, spec, frame),
        Format::Nifti => nifti_slice(bytes, path, spec, frame),
        other => {
            let img = read_dynamic(bytes, path, other, max_pixels)?;
            Ok(if rgb { to_rgb(img) } else { to_gray(img) })
        }
    }
}

#[cfg(feature = "nifti")]
fn nifti_slice(bytes: &[u8], path: &Path, spec: &ImageSpec, k: u32) -> Result<Image8> {
    crate::nifti::decode(bytes, path, spec, k)
}

#[cfg(not(feature = "nifti"))]
fn nifti_slice(_bytes: &[u8], path: &Path, _spec: &ImageSpec, _k: u32) -> Result<Image8> {
    Err(crate::nifti::no_feature(path))
}

/// The format of non-empty bytes, or the error naming the file.
pub(crate) fn sniff_checked(bytes: &[u8], path: &Path) -> Result<Format> {
    if bytes.is_empty() {
        return Err(DataError::EmptyFile { path: path.into() });
    }
    Format::sniff(bytes).ok_or_else(|| DataError::UnknownFormat { path: path.into() })
}

pub(crate) fn decode_error(path: &Path, format: Format, reason: String) -> DataError {
    DataError::Decode {
        path: path.into(),
        format: format.name(),
        reason,
    }
}

/// Refuses a zero-sized image, or one over `max_pixels` (from its header, before decoding).
pub(crate) fn check_size(
    path: &Path,
    format: Format,
    w: u64,
    h: u64,
    max_pixels: u64,
) -> Result<()> {
    if w == 0 || h == 0 {
        Err(decode_error(
            path,
            format,
            format!("zero-sized image {w}x{h}"),
        ))
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
}

/// A PNG, TIFF, BMP or WebP through `image`, its size checked from the header first.
pub(crate) fn read_dynamic(
    bytes: &[u8],
    path: &Path,
    format: Format,
    max_pixels: u64,
) -> Result<DynamicImage> {
    let fail = |reason: String| decode_error(path, format, reason);
    let image_format = format
        .image_format()
        .ok_or_else(|| fail("no decoder".into()))?;
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), image_format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(16));
    reader.limits(limits);
    let dec = reader.into_decoder().map_err(|e| fail(e.to_string()))?;
    let (w, h) = dec.dimensions();
    check_size(path, format, w as u64, h as u64, max_pixels)?;
    DynamicImage::from_decoder(dec).map_err(|e| fail(e.to_string()))
}

fn decode_jpeg(
    bytes: &[u8],
    rgb: bool,
    fail: &dyn Fn(String) -> DataError,
    check: &dyn Fn(u64, u64) -> Result<()>,
) -> Result<Image8> {
    let decoder = |out: ColorSpace| {
        let options = DecoderOptions::default()
            .jpeg_set_out_colorspace(out)
            .set_strict_mode(true)
            .set_max_width(1 << 16)
            .set_max_height(1 << 16);
        zune_jpeg::JpegDecoder::new_with_options(
            zune_core::bytestream::ZCursor::new(bytes),
            options,
        )
    };
    let mut dec = decoder(if rgb {
        ColorSpace::RGB
    } else {
        ColorSpace::Luma
    });
    dec.decode_headers().map_err(|e| fail(e.to_string()))?;
    let (w, h) = dec
        .dimensions()
        .ok_or_else(|| fail("no frame header".into()))?;
    check(w as u64, h as u64)?;
    // CMYK and YCCK have no direct luma output: decode to RGB, then the same luma weights.
    let cmyk = matches!(
        dec.input_colorspace(),
        Some(ColorSpace::CMYK | ColorSpace::YCCK)
    );
    if !rgb && cmyk {
        let mut rgb_img = decode_jpeg(bytes, true, fail, check)?;
        rgb_img.pixels = rgb_img
            .pixels
            .chunks_exact(3)
            .map(|p| luma(p[0], p[1], p[2]))
            .collect();
        rgb_img.channels = 1;
        return Ok(rgb_img);
    }
    let pixels = dec.decode().map_err(|e| fail(e.to_string()))?;
    let channels: u8 = if rgb { 3 } else { 1 };
    if pixels.len() != w * h * channels as usize {
        return Err(fail(format!(
            "decoder returned {} bytes for {w}x{h}x{channels}",
            pixels.len()
        )));
    }
    Ok(Image8 {
        width: w as u32,
        height: h as u32,
        channels,
        pixels,
    })
}

/// ITU-R BT.601 luma, rounded: the weights of JPEG's Y channel and of Pillow's `convert("L")`.
pub(crate) fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((299 * r as u32 + 587 * g as u32 + 114 * b as u32 + 500) / 1000) as u8
}

pub(crate) fn to_gray(img: DynamicImage) -> Image8 {
    let (width, height) = (img.width(), img.height());
    let pixels = match img {
        DynamicImage::ImageLuma8(g) => g.into_raw(),
        DynamicImage::ImageLumaA8(g) => g.pixels().map(|p| p.0[0]).collect(),
        DynamicImage::ImageRgb8(rgb) => rgb.pixels().map(|p| luma(p[0], p[1], p[2])).collect(),
        DynamicImage::ImageRgba8(rgba) => rgba.pixels().map(|p| luma(p[0], p[1], p[2])).collect(),
        // 16-bit and float images: reduce to 8-bit RGB first, then the same weights.
        other => other
            .into_rgb8()
            .pixels()
            .map(|p| luma(p[0], p[1], p[2]))
            .collect(),
    };
    Image8::gray(width, height, pixels)
}

pub(crate) fn to_rgb(img: DynamicImage) -> Image8 {
    let (width, height) = (img.width(), img.height());
    Image8 {
        width,
        height,
        channels: 3,
        pixels: img.into_rgb8().into_raw(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: u32, h: u32) -> Image8 {
        Image8::gray(w, h, (0..w * h).map(|i| (i % 251) as u8).collect())
    }

    #[test]
    fn sniff_ignores_extension_and_rejects_other_bytes() {
        assert_eq!(Format::sniff(b"\x89PNG\r\n\x1a\nrest"), Some(Format::Png));
        assert_eq!(Format::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Format::Jpeg));
        assert_eq!(Format::sniff(b"II*\0rest"), Some(Format::Tiff));
        assert_eq!(Format::sniff(b"MM\0*rest"), Some(Format::Tiff));
        assert_eq!(Format::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::WebP));
        let mut dicom = vec![0u8; 128];
        dicom.extend_from_slice(b"DICM....");
        assert_eq!(Format::sniff(&dicom), Some(Format::Dicom));
        // a preamble holding another format's header (dual DICOM/TIFF files): DICM wins
        for header in [
            &b"II*\0"[..],
            b"MM\0*",
            b"\x89PNG\r\n\x1a\n",
            b"BM",
            &[0xFF, 0xD8, 0xFF],
        ] {
            let mut dual = vec![0u8; 128];
            dual[..header.len()].copy_from_slice(header);
            dual.extend_from_slice(b"DICM....");
            assert_eq!(Format::sniff(&dual), Some(Format::Dicom), "{header:?}");
            // the same header without DICM at 128 stays what it says
            dual[128] = b'X';
            assert_ne!(Format::sniff(&dual), Some(Format::Dicom), "{header:?}");
        }
        assert_eq!(Format::sniff(b"GIF89a"), None);
    }

    #[test]
    fn nifti_and_raw_dicom_data_sets_are_told_apart_from_the_image_formats() {
        // a NIfTI-1 header: sizeof_hdr 348, magic `n+1` at 344
        let mut nii = vec![0u8; 352];
        nii[..4].copy_from_slice(&348i32.to_le_bytes());
        nii[344..348].copy_from_slice(b"n+1\0");
        assert_eq!(Format::sniff(&nii), Some(Format::Nifti));
        assert_eq!(
            Format::sniff(&[0x1f, 0x8b, 8, 0]),
            Some(Format::Nifti),
            "gzip"
        );
        // a raw DICOM data set: (0008,0005) CS, explicit little endian
        let raw = [0x08, 0x00, 0x05, 0x00, b'C', b'S', 0x02, 0x00, b'I', b'S'];
        assert_eq!(Format::sniff(&raw), Some(Format::Dicom));
        assert_eq!(Format::sniff(b"DICM\x02\x00\x00\x00"), Some(Format::Dicom));
        // the image formats' magic numbers are never read as either
        for magic in [
            &b"\x89PNG\r\n\x1a\n"[..],
            &[0xFF, 0xD8, 0xFF],
            b"II*\0",
            b"MM\0*",
        ] {
            let mut b = magic.to_vec();
            b.resize(400, 0);
            assert_ne!(Format::sniff(&b), Some(Format::Nifti), "{magic:?}");
            assert_ne!(Format::sniff(&b), Some(Format::Dicom), "{magic:?}");
        }
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
        let white = Image8::gray(100, 50, vec![255; 5000]);
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

    #[test]
    fn rgb_is_resized_per_channel_into_planes() {
        // A red-green-blue striped image: each plane keeps its own channel's values.
        let (w, h) = (30, 20);
        let pixels = (0..w * h).flat_map(|_| [200u8, 100, 10]).collect();
        let img = Image8 {
            width: w,
            height: h,
            channels: 3,
            pixels,
        };
        for policy in [ResizePolicy::Stretch, ResizePolicy::CenterCrop] {
            let spec = ImageSpec {
                size: 8,
                policy,
                ..ImageSpec::default()
            };
            let out = resize_square(&img, &spec).expect("resize");
            assert_eq!(out.len(), 3 * 64);
            assert!(out[..64].iter().all(|&p| p == 200), "{policy:?}");
            assert!(out[64..128].iter().all(|&p| p == 100), "{policy:?}");
            assert!(out[128..].iter().all(|&p| p == 10), "{policy:?}");
        }
        assert_eq!(img.max_channel_difference(), 190);
        let gray_rgb = Image8 {
            width: 2,
            height: 1,
            channels: 3,
            pixels: vec![5, 5, 7, 9, 9, 9],
        };
        assert_eq!(gray_rgb.max_channel_difference(), 2);
    }
}
