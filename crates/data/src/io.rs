//! Writing images and files: PNGs of tensors, image grids, class-folder export, atomic writes.

use std::io::Write;
use std::path::{Path, PathBuf};

#[cfg(feature = "tch")]
use tch::{Device, Kind, Tensor};

#[cfg(feature = "tch")]
use crate::TensorDataset;
use crate::{DataError, Result};

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed, then
/// renamed over `path`. Readers see the old file or the new one, never a partial one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |tmp| std::fs::File::create(tmp)?.write_all(bytes))
}

/// [`write_atomic`] for a file written by `write` (which creates the temporary file it is
/// given, e.g. a streaming serialiser): synced, then renamed over `path`; on any error the
/// temporary file is removed and `path` is untouched.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| DataError::config("path", format!("{} has no file name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        write(&tmp)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(DataError::io(path, e));
    }
    Ok(())
}

#[cfg(feature = "tch")]
/// Converts a single image tensor (`[H, W]`, `[1, H, W]` or `[1, 1, H, W]` gray; `[3, H, W]`
/// or `[1, 3, H, W]` RGB; values in [0, 1]) to an 8-bit image.
pub fn to_image(image: &Tensor) -> Result<image::DynamicImage> {
    to_image_at(image, crate::Depth::Eight)
}

#[cfg(feature = "tch")]
/// [`to_image`] at 8 or 16 bits per sample ([`Depth::Sixteen`](crate::Depth::Sixteen): values
/// kept to 1/65535, which a 16-bit load reads back to within 7.7e-6; `Auto` reads as 8).
pub fn to_image_at(image: &Tensor, depth: crate::Depth) -> Result<image::DynamicImage> {
    let dims = image.size();
    let (c, h, w) = match dims.as_slice() {
        [h, w] | [1, h, w] | [1, 1, h, w] => (1, *h, *w),
        [3, h, w] | [1, 3, h, w] => (3, *h, *w),
        _ => {
            return Err(DataError::Shape {
                what: "image to save",
                expected: "[H, W], [1, H, W], [1, 1, H, W] (gray) or [3, H, W], [1, 3, H, W] (RGB)"
                    .into(),
                got: format!("{dims:?}"),
            })
        }
    };
    let sixteen = depth == crate::Depth::Sixteen;
    let top = if sixteen { 65535.0 } else { 255.0 };
    let samples = image
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Float)?
        .f_nan_to_num(0.0, 1.0, 0.0)?
        .f_clamp(0.0, 1.0)?
        .f_mul_scalar(top)?
        .f_round()?
        .f_reshape([c, h, w])?
        // planar → interleaved
        .f_permute([1, 2, 0])?
        .f_contiguous()?
        .f_view([c * h * w])?;
    let bad = || DataError::Shape {
        what: "image buffer",
        expected: format!("{}", c * h * w),
        got: "a different length".into(),
    };
    let (w, h) = (w as u32, h as u32);
    use image::{DynamicImage as D, ImageBuffer, Luma, Rgb};
    Ok(if sixteen {
        let v: Vec<u16> = Vec::<i32>::try_from(&samples.f_to_kind(Kind::Int)?)?
            .into_iter()
            .map(|x| x as u16)
            .collect();
        if c == 1 {
            D::ImageLuma16(ImageBuffer::<Luma<u16>, _>::from_raw(w, h, v).ok_or_else(bad)?)
        } else {
            D::ImageRgb16(ImageBuffer::<Rgb<u16>, _>::from_raw(w, h, v).ok_or_else(bad)?)
        }
    } else {
        let v = Vec::<u8>::try_from(&samples.f_to_kind(Kind::Uint8)?)?;
        if c == 1 {
            D::ImageLuma8(image::GrayImage::from_raw(w, h, v).ok_or_else(bad)?)
        } else {
            D::ImageRgb8(image::RgbImage::from_raw(w, h, v).ok_or_else(bad)?)
        }
    })
}

#[cfg(feature = "tch")]
/// Converts a single gray image tensor (`[H, W]`, `[1, H, W]` or `[1, 1, H, W]`, values in
/// [0, 1]) to an 8-bit gray image.
pub fn to_gray_image(image: &Tensor) -> Result<image::GrayImage> {
    match to_image(image)? {
        image::DynamicImage::ImageLuma8(g) => Ok(g),
        _ => Err(DataError::Shape {
            what: "gray image",
            expected: "[H, W], [1, H, W] or [1, 1, H, W]".into(),
            got: format!("{:?}", image.size()),
        }),
    }
}

pub(crate) fn encode_png(img: &image::DynamicImage, path: &Path) -> Result<Vec<u8>> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)
        .map_err(|source| DataError::Encode {
            path: path.into(),
            source,
        })?;
    Ok(buf.into_inner())
}

#[cfg(feature = "tch")]
/// Saves one image tensor (values in [0, 1], clamped) as an 8-bit gray or RGB PNG, atomically.
pub fn save_png(image: &Tensor, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    write_atomic(path, &encode_png(&to_image(image)?, path)?)
}

#[cfg(feature = "tch")]
/// Tiles a batch `[N, C, H, W]` (C = 1 or 3) into one grid image — `[rows*(H+2p),
/// cols*(W+2p)]` gray, `[3, rows*(H+2p), cols*(W+2p)]` RGB — `cols` images per row with
/// `padding` black pixels around each.
pub fn make_grid(images: &Tensor, cols: usize, padding: i64) -> Result<Tensor> {
    let dims = images.size();
    let (n, c, h, w) = match dims.as_slice() {
        [n, c @ (1 | 3), h, w] => (*n, *c, *h, *w),
        _ => {
            return Err(DataError::Shape {
                what: "images for a grid",
                expected: "[N, 1, H, W] or [N, 3, H, W]".into(),
                got: format!("{dims:?}"),
            })
        }
    };
    if n == 0 || cols == 0 || padding < 0 {
        return Err(DataError::config(
            "grid",
            format!("need at least one image, cols > 0 and padding >= 0 (got n={n}, cols={cols}, padding={padding})"),
        ));
    }
    let cols = (cols as i64).min(n);
    let rows = (n + cols - 1) / cols;
    let filler = Tensor::f_zeros([rows * cols - n, c, h, w], (images.kind(), images.device()))?;
    let (ph, pw) = (h + 2 * padding, w + 2 * padding);
    let grid = Tensor::f_cat(&[images, &filler], 0)?
        .f_constant_pad_nd([padding, padding, padding, padding])?
        .f_view([rows, cols, c, ph, pw])?
        .f_permute([2, 0, 3, 1, 4])?
        .f_reshape([c, rows * ph, cols * pw])?;
    Ok(if c == 1 { grid.f_squeeze_dim(0)? } else { grid })
}

#[cfg(feature = "tch")]
/// Saves a batch `[N, C, H, W]` as one PNG grid with `cols` images per row.
pub fn save_grid(images: &Tensor, cols: usize, path: impl AsRef<Path>) -> Result<()> {
    save_png(&make_grid(images, cols, 2)?, path)
}

#[cfg(feature = "tch")]
/// Writes a dataset as PNG files in class folders (`root/<class name>/<name>.png`), the layout
/// [`ImageFolder`](crate::ImageFolder) reads with [`FolderConfig::plain`](crate::FolderConfig::plain).
/// Refuses to overwrite an existing file unless `overwrite` is set. Returns the paths written.
pub fn export_image_folder(
    ds: &TensorDataset,
    root: impl AsRef<Path>,
    overwrite: bool,
) -> Result<Vec<PathBuf>> {
    export_image_folder_at(ds, root, overwrite, crate::Depth::Eight)
}

#[cfg(feature = "tch")]
/// [`export_image_folder`] at 8 or 16 bits per sample (see [`to_image_at`]): 16-bit PNGs keep
/// a synthetic set's values closely enough that measures of the re-read set match the
/// in-memory one's to their printed precision.
pub fn export_image_folder_at(
    ds: &TensorDataset,
    root: impl AsRef<Path>,
    overwrite: bool,
    depth: crate::Depth,
) -> Result<Vec<PathBuf>> {
    let root = root.as_ref();
    let labels = Vec::<i64>::try_from(&ds.labels.f_to_device(Device::Cpu)?)?;
    let mut targets = Vec::with_capacity(ds.len());
    for (name, &label) in ds.names.iter().zip(&labels) {
        let stem = Path::new(name)
            .file_stem()
            .map_or_else(|| name.clone(), |s| s.to_string_lossy().into_owned());
        let path = root
            .join(&ds.class_names[label as usize])
            .join(format!("{stem}.png"));
        if !overwrite && path.exists() {
            return Err(DataError::WouldOverwrite { path });
        }
        targets.push(path);
    }
    for class in &ds.class_names {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
    }
    let images = ds.images.f_to_device(Device::Cpu)?;
    for (i, path) in targets.iter().enumerate() {
        let img = to_image_at(&images.f_get(i as i64)?, depth)?;
        write_atomic(path, &encode_png(&img, path)?)?;
    }
    Ok(targets)
}

#[cfg(test)]
#[cfg(feature = "tch")]
mod tests {
    use super::*;

    #[test]
    fn grid_places_images_in_rows() {
        let imgs = Tensor::arange(3, (Kind::Float, Device::Cpu))
            .view([3, 1, 1, 1])
            .expand([3, 1, 2, 2], false)
            + 1.0;
        let grid = make_grid(&imgs, 2, 1).expect("grid");
        assert_eq!(grid.size(), [8, 8]);
        // Image 1 (value 2) sits in row 0, column 1, inside its 1-pixel border.
        assert_eq!(grid.double_value(&[1, 5]), 2.0);
        assert_eq!(grid.double_value(&[0, 5]), 0.0);
        // The missing fourth image is black.
        assert_eq!(grid.double_value(&[5, 5]), 0.0);
    }

    #[test]
    fn png_round_trip_and_shape_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.png");
        let img = Tensor::from_slice(&[0.0f32, 0.5, 1.0, 2.0]).view([1, 2, 2]);
        save_png(&img, &p).expect("save");
        let back = image::open(&p).expect("open").to_luma8();
        assert_eq!(back.into_raw(), vec![0, 128, 255, 255]);
        let bad = Tensor::zeros([2, 2, 2], (Kind::Float, Device::Cpu));
        assert!(matches!(save_png(&bad, &p), Err(DataError::Shape { .. })));
        // Three channels are RGB, planar in, interleaved out.
        let rgb = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, 0.0, 0.0]).view([3, 1, 2]);
        save_png(&rgb, &p).expect("rgb");
        let back = image::open(&p).expect("open").to_rgb8();
        assert_eq!(back.into_raw(), vec![255, 0, 0, 0, 255, 0]);
        // Grids of RGB images stay RGB.
        let grid = make_grid(
            &Tensor::ones([3, 3, 2, 2], (Kind::Float, Device::Cpu)),
            2,
            1,
        )
        .expect("grid");
        assert_eq!(grid.size(), [3, 8, 8]);
    }
}
