//! DICOM decoding (behind the `dicom` feature, through dicom-rs): the modality rescale (slope
//! and intercept, to Hounsfield units for CT), the spec's intensity window, MONOCHROME1
//! inverted so that bright is dense, multi-frame files read frame by frame. Colour DICOM
//! (RGB, YBR) goes through dicom-pixeldata's own image conversion.

use std::path::Path;

use crate::decode::Image8;
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
    Err(DataError::Decode {
        path: path.into(),
        format: "DICOM",
        reason: "DICOM support is not built in: enable ganaug-data's `dicom` feature".into(),
    })
}

#[cfg(feature = "dicom")]
fn fail(path: &Path, reason: impl std::fmt::Display) -> DataError {
    DataError::Decode {
        path: path.into(),
        format: "DICOM",
        reason: reason.to_string(),
    }
}

/// The number of frames of a DICOM file, read from its header (the pixel data is not read).
#[cfg(feature = "dicom")]
pub(crate) fn frames(path: &Path) -> Result<u32> {
    use dicom_dictionary_std::tags;
    let obj = dicom_object::OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| fail(path, e))?;
    match obj.element_opt(tags::NUMBER_OF_FRAMES) {
        Ok(Some(e)) => e
            .to_int::<u32>()
            .map_err(|e| fail(path, format!("NumberOfFrames: {e}")))
            .map(|n| n.max(1)),
        Ok(None) => Ok(1),
        Err(e) => Err(fail(path, e)),
    }
}

/// Decodes frame `frame` of a DICOM file's bytes (with its 128-byte preamble).
#[cfg(feature = "dicom")]
pub(crate) fn decode(bytes: &[u8], path: &Path, spec: &ImageSpec, frame: u32) -> Result<Image8> {
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
    let (w, h) = (pixels.columns(), pixels.rows());
    if w == 0 || h == 0 {
        return Err(fail(path, format!("zero-sized image {w}x{h}")));
    }
    if u64::from(w) * u64::from(h) > spec.max_pixels {
        return Err(DataError::TooLarge {
            path: path.into(),
            width: w.into(),
            height: h.into(),
            limit: spec.max_pixels,
        });
    }
    let rgb = spec.color == crate::ColorMode::Rgb;
    if pixels.samples_per_pixel() != 1 {
        // Colour: dicom-pixeldata's own conversion to an 8-bit image (no window applies).
        let img = pixels.to_dynamic_image(0).map_err(|e| fail(path, e))?;
        return Ok(if rgb {
            crate::decode::to_rgb(img)
        } else {
            crate::decode::to_gray(img)
        });
    }
    // Modality rescale only (no VOI LUT): values in the modality's units, e.g. HU.
    let options = ConvertOptions::new()
        .with_modality_lut(ModalityLutOption::Default)
        .with_voi_lut(VoiLutOption::Identity);
    let values: Vec<f32> = pixels
        .to_vec_frame_with_options(0, &options)
        .map_err(|e| fail(path, e))?;
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
    let invert = *pixels.photometric_interpretation() == PhotometricInterpretation::Monochrome1;
    let gray: Vec<u8> = values
        .iter()
        .map(|&v| {
            let t = ((f64::from(v) - lo) / (hi - lo)).clamp(0.0, 1.0);
            let g = (t * 255.0).round() as u8;
            if invert {
                255 - g
            } else {
                g
            }
        })
        .collect();
    let img = Image8::gray(w, h, gray);
    Ok(if rgb {
        Image8 {
            channels: 3,
            pixels: img.pixels.iter().flat_map(|&p| [p, p, p]).collect(),
            ..img
        }
    } else {
        img
    })
}
