//! DICOM decoding (behind the `dicom` feature, through dicom-rs): files with or without the
//! 128-byte preamble and meta group, every transfer syntax whose codec is built in (see
//! [`syntax`]), the modality rescale (slope and intercept, to Hounsfield units for CT), the
//! spec's intensity window, MONOCHROME1 inverted so that bright is dense, multi-frame files
//! read frame by frame, and the slice position and series of each file (for volumes made of
//! one file per slice). Colour DICOM (RGB, YBR) is converted to RGB.

use std::path::Path;

use crate::decode::Image8;
use crate::decode16::Image16;
use crate::{DataError, ImageSpec, Result};

#[cfg(feature = "dicom")]
mod open;
#[cfg(feature = "dicom")]
mod pixels;
pub(crate) mod syntax;

/// Where a DICOM file sits in a volume: its frames, its series, its slice position.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SliceInfo {
    /// Frames in the file (1 for a single image).
    pub frames: u32,
    /// The SeriesInstanceUID, when the file has one.
    pub series: Option<String>,
    /// The position along the slice normal (ImagePositionPatient · the normal of
    /// ImageOrientationPatient), when both are present.
    pub position: Option<f64>,
    /// The InstanceNumber, when present.
    pub instance: Option<i64>,
    /// The transfer syntax by name (its UID when unknown).
    pub syntax: String,
}

/// Whether `bytes` start like a DICOM data set written without preamble and meta group (a
/// "raw" data set, common from older exports): the first element is in group 0008 and its
/// header is explicit little endian, implicit little endian or explicit big endian. Returns
/// the transfer syntax UID its first element implies.
pub(crate) fn raw_dataset_syntax(bytes: &[u8]) -> Option<&'static str> {
    let head = bytes.get(..8)?;
    let vr_ok = |b: &[u8]| syntax::is_vr(b);
    let le = |i: usize| u16::from_le_bytes([head[i], head[i + 1]]);
    let be = |i: usize| u16::from_be_bytes([head[i], head[i + 1]]);
    if le(0) == 0x0008 && le(2) < 0x1000 {
        if vr_ok(&head[4..6]) {
            return Some(syntax::EXPLICIT_LE);
        }
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let fits = (len as usize) <= bytes.len() - 8 || len == u32::MAX;
        return (len % 2 == 0 && fits).then_some(syntax::IMPLICIT_LE);
    }
    if be(0) == 0x0008 && be(2) < 0x1000 && vr_ok(&head[4..6]) {
        return Some(syntax::EXPLICIT_BE);
    }
    None
}

#[cfg(not(feature = "dicom"))]
pub(crate) fn slice_info(_path: &Path) -> Result<SliceInfo> {
    Ok(SliceInfo {
        frames: 1,
        ..SliceInfo::default()
    })
}

/// Without the `dicom` feature a DICOM file is a typed error naming the feature.
#[cfg(not(feature = "dicom"))]
pub(crate) fn decode(_bytes: &[u8], path: &Path, _spec: &ImageSpec, _frame: u32) -> Result<Image8> {
    Err(no_feature(path))
}

/// Without the `dicom` feature a DICOM file is a typed error naming the feature.
#[cfg(not(feature = "dicom"))]
pub(crate) fn decode16(
    _bytes: &[u8],
    path: &Path,
    _spec: &ImageSpec,
    _frame: u32,
) -> Result<Image16> {
    Err(no_feature(path))
}

/// Without the feature, DICOM files count as 8-bit (decoding them fails, naming the feature).
#[cfg(not(feature = "dicom"))]
pub(crate) fn high_bit_depth(_path: &Path) -> Result<bool> {
    Ok(false)
}

#[cfg(not(feature = "dicom"))]
fn no_feature(path: &Path) -> DataError {
    DataError::UnsupportedEncoding {
        path: path.into(),
        encoding: "DICOM".into(),
        remedy: "DICOM support is not built in: enable ganaug-data's `dicom` feature".into(),
    }
}

#[cfg(feature = "dicom")]
pub(crate) use open::{high_bit_depth, slice_info};

#[cfg(feature = "dicom")]
pub(crate) fn fail(path: &Path, reason: impl std::fmt::Display) -> DataError {
    DataError::Decode {
        path: path.into(),
        format: "DICOM",
        reason: reason.to_string(),
    }
}

/// A decoded DICOM frame: gray levels in `0..=max_level` after the window (MONOCHROME1
/// inverted), or a colour image.
#[cfg(feature = "dicom")]
pub(crate) enum Frame {
    Gray {
        width: u32,
        height: u32,
        levels: Vec<u16>,
    },
    Colour(image::DynamicImage),
}

/// Values in the modality's units through the spec's window onto `0..=max_level` (inverted for
/// MONOCHROME1); a window that misses every value is an error naming the file.
#[cfg(any(feature = "dicom", feature = "nifti"))]
pub(crate) fn window_levels(
    values: &[f32],
    path: &Path,
    spec: &ImageSpec,
    max_level: u16,
    invert: bool,
) -> Result<Vec<u16>> {
    let (lo, hi) = spec.window.range();
    let (min, max) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if f64::from(max) < lo || f64::from(min) > hi {
        return Err(DataError::WindowOutsideData {
            path: path.into(),
            window: spec.window,
            min: min.into(),
            max: max.into(),
        });
    }
    let top = f64::from(max_level);
    Ok(values
        .iter()
        .map(|&v| {
            let t = ((f64::from(v) - lo) / (hi - lo)).clamp(0.0, 1.0);
            let g = (t * top).round() as u16;
            if invert {
                max_level - g
            } else {
                g
            }
        })
        .collect())
}

/// Repeats gray samples to three interleaved channels.
#[cfg(any(feature = "dicom", feature = "nifti"))]
pub(crate) fn repeat3<T: Copy>(v: &[T]) -> Vec<T> {
    v.iter().flat_map(|&p| [p, p, p]).collect()
}

/// Gray levels (`0..=255`) as an 8-bit image in the spec's colour mode.
#[cfg(any(feature = "dicom", feature = "nifti"))]
pub(crate) fn gray8(width: u32, height: u32, levels: &[u16], spec: &ImageSpec) -> Image8 {
    let rgb = spec.color == crate::ColorMode::Rgb;
    let gray: Vec<u8> = levels.iter().map(|&v| v as u8).collect();
    Image8 {
        width,
        height,
        channels: if rgb { 3 } else { 1 },
        pixels: if rgb { repeat3(&gray) } else { gray },
    }
}

/// Gray levels (`0..=65535`) as a 16-bit image in the spec's colour mode.
#[cfg(any(feature = "dicom", feature = "nifti"))]
pub(crate) fn gray16(width: u32, height: u32, levels: Vec<u16>, spec: &ImageSpec) -> Image16 {
    let rgb = spec.color == crate::ColorMode::Rgb;
    Image16 {
        width,
        height,
        channels: if rgb { 3 } else { 1 },
        pixels: if rgb { repeat3(&levels) } else { levels },
    }
}

/// Decodes frame `frame` of a DICOM file's bytes at 8 bits.
#[cfg(feature = "dicom")]
pub(crate) fn decode(bytes: &[u8], path: &Path, spec: &ImageSpec, frame: u32) -> Result<Image8> {
    let rgb = spec.color == crate::ColorMode::Rgb;
    Ok(match pixels::read_frame(bytes, path, spec, frame, 255)? {
        Frame::Colour(img) if rgb => crate::decode::to_rgb(img),
        Frame::Colour(img) => crate::decode::to_gray(img),
        Frame::Gray {
            width,
            height,
            levels,
        } => gray8(width, height, &levels, spec),
    })
}

/// Decodes frame `frame` of a DICOM file's bytes at 16 bits (the window onto 0..=65535).
#[cfg(feature = "dicom")]
pub(crate) fn decode16(bytes: &[u8], path: &Path, spec: &ImageSpec, frame: u32) -> Result<Image16> {
    let rgb = spec.color == crate::ColorMode::Rgb;
    Ok(
        match pixels::read_frame(bytes, path, spec, frame, u16::MAX)? {
            Frame::Colour(img) if rgb => crate::decode16::to_rgb16(img),
            Frame::Colour(img) => crate::decode16::to_gray16(img),
            Frame::Gray {
                width,
                height,
                levels,
            } => gray16(width, height, levels, spec),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_data_sets_are_recognised_by_their_first_element() {
        // (0008,0005) CS, explicit little endian
        let mut b = vec![0x08, 0x00, 0x05, 0x00, b'C', b'S', 0x0A, 0x00];
        b.extend_from_slice(b"ISO_IR 100");
        assert_eq!(raw_dataset_syntax(&b), Some(syntax::EXPLICIT_LE));
        // the same element, implicit: a 4-byte even length
        let mut b = vec![0x08, 0x00, 0x05, 0x00, 0x0A, 0x00, 0x00, 0x00];
        b.extend_from_slice(b"ISO_IR 100");
        assert_eq!(raw_dataset_syntax(&b), Some(syntax::IMPLICIT_LE));
        // explicit big endian
        let mut b = vec![0x00, 0x08, 0x00, 0x05, b'C', b'S', 0x00, 0x0A];
        b.extend_from_slice(b"ISO_IR 100");
        assert_eq!(raw_dataset_syntax(&b), Some(syntax::EXPLICIT_BE));
        // an odd implicit length, another group, too short: not a data set
        assert_eq!(raw_dataset_syntax(&[8, 0, 5, 0, 9, 0, 0, 0, 1]), None);
        assert_eq!(
            raw_dataset_syntax(&[0x10, 0, 0x10, 0, b'P', b'N', 2, 0]),
            None
        );
        assert_eq!(raw_dataset_syntax(&[8, 0, 5]), None);
    }

    #[cfg(not(feature = "dicom"))]
    #[test]
    fn a_dicom_file_without_the_feature_names_the_feature() {
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM");
        bytes.extend_from_slice(&[0u8; 32]);
        let e = crate::decode::decode_gray(&bytes, std::path::Path::new("x.dcm"), 1 << 20)
            .expect_err("no feature");
        assert!(e.to_string().contains("`dicom` feature"), "{e}");
    }
}
