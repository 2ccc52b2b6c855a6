//! A DICOM frame's pixels: through dicom-pixeldata for what it decodes, and here for the
//! uncompressed layouts it refuses (YBR_FULL_422 colour, 32 bits allocated).

use std::path::Path;

use dicom_core::value::PrimitiveValue;
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::DefaultDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::open::{check_syntax, int, open, syntax_uid, text};
use super::{fail, window_levels, Frame};
use crate::{DataError, ImageSpec, Result};

/// The attributes that say how a frame's pixels are laid out.
struct Layout {
    width: u32,
    height: u32,
    samples: u16,
    bits: u16,
    signed: bool,
    photometric: String,
    /// Uncompressed pixel data (native or deflated data set).
    native: bool,
    big_endian: bool,
}

impl Layout {
    fn of(obj: &DefaultDicomObject, path: &Path) -> Result<Self> {
        let need = |tag, name: &str| {
            int(obj, tag).ok_or_else(|| fail(path, format!("{name} is missing or unreadable")))
        };
        let ts = TransferSyntaxRegistry.get(syntax_uid(obj));
        Ok(Layout {
            width: need(tags::COLUMNS, "Columns")? as u32,
            height: need(tags::ROWS, "Rows")? as u32,
            samples: int(obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1) as u16,
            bits: need(tags::BITS_ALLOCATED, "BitsAllocated")? as u16,
            signed: int(obj, tags::PIXEL_REPRESENTATION) == Some(1),
            photometric: text(obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default(),
            native: ts.is_some_and(|t| !t.is_encapsulated_pixel_data()),
            big_endian: ts.is_some_and(|t| t.endianness() == dicom_encoding::Endianness::Big),
        })
    }
}

/// Frame `frame` of a DICOM file's bytes, windowed onto `0..=max_level` (gray) or in colour.
pub(super) fn read_frame(
    bytes: &[u8],
    path: &Path,
    spec: &ImageSpec,
    frame: u32,
    max_level: u16,
) -> Result<Frame> {
    let obj = open(bytes, path)?;
    if obj.element_opt(tags::PIXEL_DATA).ok().flatten().is_none() {
        return Err(DataError::NoPixelData { path: path.into() });
    }
    check_syntax(&obj, path)?;
    let layout = Layout::of(&obj, path)?;
    let (width, height) = (layout.width, layout.height);
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
    if layout.native
        && layout.samples == 3
        && layout.bits == 8
        && layout.photometric == "YBR_FULL_422"
    {
        return ybr_full_422(&obj, &layout, path, frame);
    }
    if layout.native && layout.samples == 1 && layout.bits == 32 {
        let values = values32(&obj, &layout, path, frame)?;
        let invert = layout.photometric == "MONOCHROME1";
        let levels = window_levels(&values, path, spec, max_level, invert)?;
        return Ok(Frame::Gray {
            width,
            height,
            levels,
        });
    }
    through_pixeldata(&obj, path, spec, frame, max_level)
}

/// A frame through dicom-pixeldata: its codecs, its colour conversion, its modality rescale.
fn through_pixeldata(
    obj: &DefaultDicomObject,
    path: &Path,
    spec: &ImageSpec,
    frame: u32,
    max_level: u16,
) -> Result<Frame> {
    use dicom_pixeldata::{
        ConvertOptions, ModalityLutOption, PhotometricInterpretation, PixelDecoder, VoiLutOption,
    };
    let pixels = obj.decode_pixel_data_frame(frame).map_err(|e| {
        let syntax = syntax_uid(obj);
        let name = TransferSyntaxRegistry
            .get(syntax)
            .map_or(syntax, |t| t.name());
        let bits = int(obj, tags::BITS_ALLOCATED).unwrap_or_default();
        let photometric = text(obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default();
        fail(
            path,
            format!("{e} ({name}, {bits} bits allocated, {photometric})"),
        )
    })?;
    let (width, height) = (pixels.columns(), pixels.rows());
    if pixels.samples_per_pixel() != 1 {
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

/// Uncompressed YBR_FULL_422 (two pixels share one Cb and one Cr: `Y1 Y2 Cb Cr`) as RGB.
fn ybr_full_422(
    obj: &DefaultDicomObject,
    layout: &Layout,
    path: &Path,
    frame: u32,
) -> Result<Frame> {
    let (w, h) = (layout.width as usize, layout.height as usize);
    if w % 2 != 0 {
        return Err(fail(path, format!("YBR_FULL_422 with an odd width {w}")));
    }
    let value = obj
        .element(tags::PIXEL_DATA)
        .map_err(|e| fail(path, e))?
        .value()
        .to_bytes()
        .map_err(|e| fail(path, e))?;
    let data = frame_slice(&value, frame, w * h * 2, path)?;
    let mut rgb = Vec::with_capacity(w * h * 3);
    for quad in data.chunks_exact(4) {
        let (cb, cr) = (f32::from(quad[2]) - 128.0, f32::from(quad[3]) - 128.0);
        for y in [f32::from(quad[0]), f32::from(quad[1])] {
            let c = |v: f32| v.round().clamp(0.0, 255.0) as u8;
            rgb.extend([
                c(y + 1.402 * cr),
                c(y - 0.344_136 * cb - 0.714_136 * cr),
                c(y + 1.772 * cb),
            ]);
        }
    }
    let img = image::RgbImage::from_raw(layout.width, layout.height, rgb)
        .ok_or_else(|| fail(path, "YBR_FULL_422 frame of the wrong size"))?;
    Ok(Frame::Colour(image::DynamicImage::ImageRgb8(img)))
}

/// The values of a 32-bit-allocated gray frame in the modality's units (rescale applied).
fn values32(
    obj: &DefaultDicomObject,
    layout: &Layout,
    path: &Path,
    frame: u32,
) -> Result<Vec<f32>> {
    let n = layout.width as usize * layout.height as usize;
    let element = obj.element(tags::PIXEL_DATA).map_err(|e| fail(path, e))?;
    let words: Vec<u32> = match element.value().primitive() {
        // OW: 16-bit words already in this machine's order; a 32-bit value spans two
        Some(PrimitiveValue::U16(v)) => {
            let v = frame_slice(v, frame, n * 2, path)?;
            v.chunks_exact(2)
                .map(|p| {
                    let (a, b) = (u32::from(p[0]), u32::from(p[1]));
                    if layout.big_endian {
                        (a << 16) | b
                    } else {
                        a | (b << 16)
                    }
                })
                .collect()
        }
        Some(PrimitiveValue::U32(v)) => frame_slice(v, frame, n, path)?.to_vec(),
        Some(PrimitiveValue::I32(v)) => frame_slice(v, frame, n, path)?
            .iter()
            .map(|&x| x as u32)
            .collect(),
        Some(other) => {
            let bytes = other.to_bytes();
            frame_slice(&bytes, frame, n * 4, path)?
                .chunks_exact(4)
                .map(|c| {
                    let b = [c[0], c[1], c[2], c[3]];
                    if layout.big_endian {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    }
                })
                .collect()
        }
        None => return Err(fail(path, "32-bit pixel data is encapsulated")),
    };
    let slope = super::open::floats(obj, tags::RESCALE_SLOPE)
        .and_then(|v| v.first().copied())
        .unwrap_or(1.0);
    let intercept = super::open::floats(obj, tags::RESCALE_INTERCEPT)
        .and_then(|v| v.first().copied())
        .unwrap_or(0.0);
    Ok(words
        .into_iter()
        .map(|w| {
            let raw = if layout.signed {
                f64::from(w as i32)
            } else {
                f64::from(w)
            };
            (raw * slope + intercept) as f32
        })
        .collect())
}

/// Frame `frame` of uncompressed samples, `len` samples each.
fn frame_slice<'a, T>(v: &'a [T], frame: u32, len: usize, path: &Path) -> Result<&'a [T]> {
    let start = frame as usize * len;
    v.get(start..start + len).ok_or_else(|| {
        fail(
            path,
            format!(
                "pixel data holds {} samples, frame {frame} needs {start}..{}",
                v.len(),
                start + len
            ),
        )
    })
}
