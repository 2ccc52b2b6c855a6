//! Generated image-folder datasets — **synthetic, not real images** — for tests and for trying
//! ganaug on a layout other than COVID-CT: one folder per class, no split lists, as PNG (gray or
//! RGB) or as DICOM CT slices (with the `dicom` feature).
//!
//! Class `k` of `n` draws `k + 1` bright blobs on a textured disc; in RGB each class also has its
//! own tint, so a classifier can learn the classes from shape and colour. Everything is drawn
//! from a ChaCha8 stream seeded by `(seed, class, index)`.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{DataError, Result};

/// The file format of a generated folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixtureFormat {
    /// 8-bit gray PNG.
    GrayPng,
    /// 8-bit RGB PNG.
    RgbPng,
    /// 16-bit CT DICOM (Hounsfield units through rescale intercept −1024), `MONOCHROME2`.
    #[cfg(feature = "dicom")]
    Dicom,
}

/// What [`write_class_folders`] generates.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderFixture {
    /// Class names (folder names), in label order.
    pub classes: Vec<String>,
    /// Images per class.
    pub per_class: usize,
    /// Side of the square images.
    pub size: u32,
    /// File format.
    pub format: FixtureFormat,
    /// Seed of everything drawn.
    pub seed: u64,
}

impl FolderFixture {
    /// `classes` classes named `class-a`, `class-b`, … with `per_class` images of `size`².
    pub fn new(classes: usize, per_class: usize, size: u32, format: FixtureFormat) -> Self {
        FolderFixture {
            classes: (0..classes)
                .map(|k| format!("class-{}", (b'a' + (k % 26) as u8) as char))
                .collect(),
            per_class,
            size,
            format,
            seed: 0,
        }
    }
}

/// One generated image: intensities in [0, 1] per channel (`channels × size²`, planar).
fn draw(size: u32, class: usize, classes: usize, rgb: bool, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let s = size as usize;
    let mut plane = vec![0f32; s * s];
    let (cx, cy, r) = (s as f32 / 2.0, s as f32 / 2.0, s as f32 * 0.42);
    for y in 0..s {
        for x in 0..s {
            let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
            if d < r {
                plane[y * s + x] = 0.25 + 0.1 * rng.random::<f32>();
            }
        }
    }
    for _ in 0..=class {
        let (bx, by) = (
            cx + rng.random_range(-0.5..0.5) * r,
            cy + rng.random_range(-0.5..0.5) * r,
        );
        let br = s as f32 * rng.random_range(0.06..0.1);
        for y in 0..s {
            for x in 0..s {
                let d2 = (x as f32 - bx).powi(2) + (y as f32 - by).powi(2);
                plane[y * s + x] += 0.6 * (-d2 / (2.0 * br * br)).exp();
            }
        }
    }
    for v in &mut plane {
        *v = v.clamp(0.0, 1.0);
    }
    if !rgb {
        return plane;
    }
    // A tint per class: the hue turns around the colour wheel with the class.
    let hue = class as f32 / classes as f32 * std::f32::consts::TAU;
    let tint = [0.0f32, 2.094, 4.189].map(|phase| 0.7 + 0.3 * (hue + phase).cos());
    tint.iter()
        .flat_map(|t| plane.iter().map(move |v| (v * t).clamp(0.0, 1.0)))
        .collect()
}

/// Writes the fixture under `root` (`root/<class>/<class>-<i>.png` or `.dcm`) and returns the
/// files written. An existing file is never overwritten.
pub fn write_class_folders(
    root: impl AsRef<Path>,
    fixture: &FolderFixture,
) -> Result<Vec<PathBuf>> {
    let root = root.as_ref();
    let mut written = Vec::new();
    let s = fixture.size;
    if s == 0 || fixture.classes.is_empty() {
        return Err(DataError::config(
            "fixture",
            "needs a size and at least one class",
        ));
    }
    for (k, class) in fixture.classes.iter().enumerate() {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
        for i in 0..fixture.per_class {
            let mut rng = ChaCha8Rng::seed_from_u64(
                fixture.seed ^ ((k as u64) << 32) ^ (i as u64).wrapping_mul(0x9E37_79B9),
            );
            let rgb = fixture.format == FixtureFormat::RgbPng;
            let px = draw(s, k, fixture.classes.len(), rgb, &mut rng);
            let ext = match fixture.format {
                FixtureFormat::GrayPng | FixtureFormat::RgbPng => "png",
                #[cfg(feature = "dicom")]
                FixtureFormat::Dicom => "dcm",
            };
            let path = dir.join(format!("{class}-{i:03}.{ext}"));
            if path.exists() {
                return Err(DataError::WouldOverwrite { path });
            }
            let bytes = match fixture.format {
                FixtureFormat::GrayPng | FixtureFormat::RgbPng => png_bytes(&px, s, rgb, &path)?,
                #[cfg(feature = "dicom")]
                FixtureFormat::Dicom => {
                    // 0 → air (−1000 HU), 1 → +200 HU.
                    let hu: Vec<f32> = px.iter().map(|v| -1000.0 + 1200.0 * v).collect();
                    dicom_ct_bytes(&[hu], s, false, &path)?
                }
            };
            crate::io::write_atomic(&path, &bytes)?;
            written.push(path);
        }
    }
    Ok(written)
}

fn png_bytes(px: &[f32], s: u32, rgb: bool, path: &Path) -> Result<Vec<u8>> {
    let bytes: Vec<u8> = px.iter().map(|v| (v * 255.0).round() as u8).collect();
    let plane = (s * s) as usize;
    let img = if rgb {
        let interleaved = (0..plane)
            .flat_map(|i| [bytes[i], bytes[plane + i], bytes[2 * plane + i]])
            .collect();
        image::DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(s, s, interleaved)
                .ok_or_else(|| DataError::config("fixture", "pixel count"))?,
        )
    } else {
        image::DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(s, s, bytes)
                .ok_or_else(|| DataError::config("fixture", "pixel count"))?,
        )
    };
    crate::io::encode_png(&img, path)
}

/// A CT DICOM file (Part 10, explicit VR little endian) of `frames` (each `s²` values in HU),
/// stored as unsigned 12-in-16-bit with rescale intercept −1024. `monochrome1` only changes the
/// photometric interpretation (a viewer then shows the same values inverted).
#[cfg(feature = "dicom")]
pub fn dicom_ct_bytes(
    frames: &[Vec<f32>],
    s: u32,
    monochrome1: bool,
    path: &Path,
) -> Result<Vec<u8>> {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::{tags, uids};
    use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

    let fail = |e: String| DataError::config("fixture", format!("{}: {e}", path.display()));
    let stored = stored_ct_pixels(frames, s)
        .ok_or_else(|| fail("a frame has the wrong pixel count".into()))?;
    let uid = format!(
        "2.25.{}",
        blake3::hash(path.to_string_lossy().as_bytes()).as_bytes()[..8]
            .iter()
            .fold(0u64, |a, &b| (a << 8) | u64::from(b))
    );
    let mut obj = InMemDicomObject::from_element_iter([
        DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(uids::CT_IMAGE_STORAGE),
        ),
        DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(uid.as_str()),
        ),
        DataElement::new(tags::MODALITY, VR::CS, PrimitiveValue::from("CT")),
        DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16)),
        DataElement::new(
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            PrimitiveValue::from(if monochrome1 {
                "MONOCHROME1"
            } else {
                "MONOCHROME2"
            }),
        ),
        DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(s as u16)),
        DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(s as u16)),
        DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16)),
        DataElement::new(tags::BITS_STORED, VR::US, PrimitiveValue::from(12u16)),
        DataElement::new(tags::HIGH_BIT, VR::US, PrimitiveValue::from(11u16)),
        DataElement::new(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            PrimitiveValue::from(0u16),
        ),
        DataElement::new(
            tags::RESCALE_INTERCEPT,
            VR::DS,
            PrimitiveValue::from("-1024"),
        ),
        DataElement::new(tags::RESCALE_SLOPE, VR::DS, PrimitiveValue::from("1")),
        DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(stored.into())),
    ]);
    if frames.len() > 1 {
        obj.put(DataElement::new(
            tags::NUMBER_OF_FRAMES,
            VR::IS,
            PrimitiveValue::from(frames.len().to_string()),
        ));
    }
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE);
    let file = obj.with_meta(meta).map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::new();
    file.write_all(&mut out).map_err(|e| fail(e.to_string()))?;
    Ok(out)
}

/// HU frames of `s × s` pixels as 12-bit stored values (rescale intercept −1024), or `None` when
/// a frame has another pixel count.
#[cfg(feature = "dicom")]
fn stored_ct_pixels(frames: &[Vec<f32>], s: u32) -> Option<Vec<u16>> {
    let mut stored = Vec::with_capacity(frames.len() * (s * s) as usize);
    for f in frames {
        if f.len() != (s * s) as usize {
            return None;
        }
        stored.extend(
            f.iter()
                .map(|hu| (hu + 1024.0).round().clamp(0.0, 4095.0) as u16),
        );
    }
    Some(stored)
}
