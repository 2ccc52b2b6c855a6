//! DICOM decoding (behind the `dicom` feature, through dicom-rs): the modality rescale (slope
//! and intercept, to Hounsfield units for CT), the spec's intensity window, MONOCHROME1
//! inverted so that bright is dense, multi-frame files read frame by frame. Colour DICOM
//! (RGB, YBR) goes through dicom-pixeldata's own image conversion.

use std::path::Path;

use crate::decode::Image8;
use crate::decode16::Image16;
use crate::{DataError, ImageSpec, Result};

/// The number of frames of a DICOM file (1 without the feature: decoding then fails with the
/// feature's name).
#[cfg(not(feature = "dicom"))]
pub(crate) fn frames(_path: &Path) -> Result<u32> {
    Ok(1)
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
    DataError::Decode {
        path: path.into(),
        format: "DICOM",
        reason: "DICOM support is not built in: enable ganaug-data's `dicom` feature".into(),
    }
}

#[cfg(feature = "dicom")]
fn fail(path: &Path, reason: impl std::fmt::Display) -> DataError {
    DataError::Decode {
        path: path.into(),
        format: "DICOM",
        reason: reason.to_string(),
    }
}

/// A DICOM file's header: everything before the pixel data (which is not read).
#[cfg(feature = "dicom")]
fn header(path: &Path) -> Result<dicom_object::DefaultDicomObject> {
    dicom_object::OpenFileOptions::new()
        .read_until(dicom_dictionary_std::tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| fail(path, e))
}

/// The number of frames of a DICOM file, read from its header.
#[cfg(feature = "dicom")]
pub(crate) fn frames(path: &Path) -> Result<u32> {
    use dicom_dictionary_std::tags;
    match header(path)?.element_opt(tags::NUMBER_OF_FRAMES) {
        Ok(Some(e)) => e
            .to_int::<u32>()
            .map_err(|e| fail(path, format!("NumberOfFrames: {e}")))
            .map(|n| n.max(1)),
        Ok(None) => Ok(1),
        Err(e) => Err(fail(path, e)),
    }
}

/// A decoded DICOM frame: gray levels in `0..=max_level` after the window (MONOCHROME1
/// inverted), or a colour image.
#[cfg(feature = "dicom")]
enum Frame {
    Gray {
        width: u32,
        height: u32,
        levels: Vec<u16>,
    },
    Colour(image::DynamicImage),
}

/// Frame `frame` of a DICOM file's bytes (with its 128-byte preamble), windowed onto
/// `0..=max_level`.
#[cfg(feature = "dicom")]
fn read_frame(
    bytes: &[u8],
    path: &Path,
    spec: &ImageSpec,
    frame: u32,
    max_level: u16,
) -> Result<Frame> {
    use dicom_dictionary_std::tags;
    use dicom_pixeldata::{
        ConvertOptions, ModalityLutOption, PhotometricInterpretation, PixelDecoder, VoiLutOption,
    };

    // `from_reader` reads from the magic code on: skip the 128-byte preamble.
    let body = bytes
        .get(128..)
        .ok_or_else(|| fail(path, "truncated preamble"))?;
    let obj = dicom_object::OpenFileOptions::new()
        .from_reader(body)
        .map_err(|e| fail(path, e))?;
    if obj.element_opt(tags::PIXEL_DATA).ok().flatten().is_none() {
        return Err(DataError::NoPixelData { path: path.into() });
    }
    let pixels = obj
        .decode_pixel_data_frame(frame)
        .map_err(|e| fail(path, e))?;
    let (width, height) = (pixels.columns(), pixels.rows());
    if width == 0 || height == 0 {
        return Err(fail(path, format!("zero-sized image {width}x{height}")));
    }
    if u64::from(width) * u64::from(height) > spec.max_pixels {
        return Err(DataError::TooLarge {
            path: path.into(),
            width: width.into(),
            height: height.into(),
            limit: spec.max_pixels,
        });
    }
    if pixels.samples_per_pixel() != 1 {
        // Colour: dicom-pixeldata's own conversion to an image (no window applies).
        let img = pixels.to_dynamic_image(0).map_err(|e| fail(path, e))?;
        return Ok(Frame::Colour(img));
    }
    // Modality rescale only (no VOI LUT): values in the modality's units, e.g. HU.
    let options = ConvertOptions::new()
        .with_modality_lut(ModalityLutOption::Default)
        .with_voi_lut(VoiLutOption::Identity);
    let values: Vec<f32> = pixels
        .to_vec_frame_with_options(0, &options)
        .map_err(|e| fail(path, e))?;
    let invert = *pixels.photometric_interpretation() == PhotometricInterpretation::Monochrome1;
    let levels = window_levels(&values, path, spec, max_level, invert)?;
    Ok(Frame::Gray {
        width,
        height,
        levels,
    })
}

/// Values in the modality's units through the spec's window onto `0..=max_level` (inverted for
/// MONOCHROME1); a window that misses every value is an error naming the file.
#[cfg(feature = "dicom")]
fn window_levels(
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
#[cfg(feature = "dicom")]
fn repeat3<T: Copy>(v: &[T]) -> Vec<T> {
    v.iter().flat_map(|&p| [p, p, p]).collect()
}

/// Decodes frame `frame` of a DICOM file's bytes at 8 bits.
#[cfg(feature = "dicom")]
pub(crate) fn decode(bytes: &[u8], path: &Path, spec: &ImageSpec, frame: u32) -> Result<Image8> {
    let rgb = spec.color == crate::ColorMode::Rgb;
    Ok(match read_frame(bytes, path, spec, frame, 255)? {
        Frame::Colour(img) if rgb => crate::decode::to_rgb(img),
        Frame::Colour(img) => crate::decode::to_gray(img),
        Frame::Gray {
            width,
            height,
            levels,
        } => {
            let gray: Vec<u8> = levels.iter().map(|&v| v as u8).collect();
            Image8 {
                width,
                height,
                channels: if rgb { 3 } else { 1 },
                pixels: if rgb { repeat3(&gray) } else { gray },
            }
        }
    })
}

/// Decodes frame `frame` of a DICOM file's bytes at 16 bits (the window onto 0..=65535).
#[cfg(feature = "dicom")]
pub(crate) fn decode16(bytes: &[u8], path: &Path, spec: &ImageSpec, frame: u32) -> Result<Image16> {
    let rgb = spec.color == crate::ColorMode::Rgb;
    Ok(match read_frame(bytes, path, spec, frame, u16::MAX)? {
        Frame::Colour(img) if rgb => crate::decode16::to_rgb16(img),
        Frame::Colour(img) => crate::decode16::to_gray16(img),
        Frame::Gray {
            width,
            height,
            levels,
        } => Image16 {
            width,
            height,
            channels: if rgb { 3 } else { 1 },
            pixels: if rgb { repeat3(&levels) } else { levels },
        },
    })
}

/// Whether a DICOM file stores more than 8 bits per sample (read from its header).
#[cfg(feature = "dicom")]
pub(crate) fn high_bit_depth(path: &Path) -> Result<bool> {
    use dicom_dictionary_std::tags;
    match header(path)?.element_opt(tags::BITS_STORED) {
        Ok(Some(e)) => Ok(e.to_int::<u16>().map_err(|e| fail(path, e))? > 8),
        _ => Ok(false),
    }
}

#[cfg(all(test, not(feature = "dicom")))]
mod tests {
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
