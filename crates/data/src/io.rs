//! Writing images and files: PNGs of tensors, image grids, class-folder export, atomic writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use std::collections::HashMap;

use safetensors::{tensor::TensorView, Dtype};
use tch::{Device, Kind, Tensor};

use crate::{DataError, Result, TensorDataset};

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed, then
/// renamed over `path`. Readers see the old file or the new one, never a partial one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
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
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(DataError::io(path, e));
    }
    Ok(())
}

/// Converts a single image tensor (`[H, W]`, `[1, H, W]` or `[1, 1, H, W]`, values in [0, 1])
/// to an 8-bit gray image.
pub fn to_gray_image(image: &Tensor) -> Result<image::GrayImage> {
    let dims = image.size();
    let (h, w) = match dims.as_slice() {
        [h, w] | [1, h, w] | [1, 1, h, w] => (*h, *w),
        _ => {
            return Err(DataError::Shape {
                what: "image to save",
                expected: "[H, W], [1, H, W] or [1, 1, H, W]".into(),
                got: format!("{dims:?}"),
            })
        }
    };
    let bytes = image
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Float)?
        .f_nan_to_num(0.0, 1.0, 0.0)?
        .f_clamp(0.0, 1.0)?
        .f_mul_scalar(255.0)?
        .f_round()?
        .f_to_kind(Kind::Uint8)?
        .f_contiguous()?
        .f_view([h * w])?;
    let pixels = Vec::<u8>::try_from(&bytes)?;
    image::GrayImage::from_raw(w as u32, h as u32, pixels).ok_or_else(|| DataError::Shape {
        what: "image buffer",
        expected: format!("{}", h * w),
        got: "a different length".into(),
    })
}

fn encode_png(img: &image::GrayImage, path: &Path) -> Result<Vec<u8>> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)
        .map_err(|source| DataError::Encode {
            path: path.into(),
            source,
        })?;
    Ok(buf.into_inner())
}

/// Saves one image tensor (values in [0, 1], clamped) as an 8-bit grayscale PNG, atomically.
pub fn save_png(image: &Tensor, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    write_atomic(path, &encode_png(&to_gray_image(image)?, path)?)
}

/// Tiles a batch `[N, 1, H, W]` into one grid image `[rows*(H+2p), cols*(W+2p)]`, `cols` images
/// per row with `padding` black pixels around each.
pub fn make_grid(images: &Tensor, cols: usize, padding: i64) -> Result<Tensor> {
    let dims = images.size();
    let [n, 1, h, w] = dims.as_slice() else {
        return Err(DataError::Shape {
            what: "images for a grid",
            expected: "[N, 1, H, W]".into(),
            got: format!("{dims:?}"),
        });
    };
    if *n == 0 || cols == 0 || padding < 0 {
        return Err(DataError::config(
            "grid",
            format!("need at least one image, cols > 0 and padding >= 0 (got n={n}, cols={cols}, padding={padding})"),
        ));
    }
    let cols = (cols as i64).min(*n);
    let rows = (n + cols - 1) / cols;
    let filler = Tensor::f_zeros(
        [rows * cols - n, 1, *h, *w],
        (images.kind(), images.device()),
    )?;
    let (ph, pw) = (h + 2 * padding, w + 2 * padding);
    let grid = Tensor::f_cat(&[images, &filler], 0)?
        .f_constant_pad_nd([padding, padding, padding, padding])?
        .f_view([rows, cols, ph, pw])?
        .f_permute([0, 2, 1, 3])?
        .f_reshape([rows * ph, cols * pw])?;
    Ok(grid)
}

/// Saves a batch `[N, 1, H, W]` as one PNG grid with `cols` images per row.
pub fn save_grid(images: &Tensor, cols: usize, path: impl AsRef<Path>) -> Result<()> {
    save_png(&make_grid(images, cols, 2)?, path)
}

/// Writes a dataset as PNG files in class folders (`root/<class name>/<name>.png`), the layout
/// [`ImageFolder`](crate::ImageFolder) reads with [`FolderConfig::plain`](crate::FolderConfig::plain).
/// Refuses to overwrite an existing file unless `overwrite` is set. Returns the paths written.
pub fn export_image_folder(
    ds: &TensorDataset,
    root: impl AsRef<Path>,
    overwrite: bool,
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
        save_png(&images.f_get(i as i64)?, path)?;
    }
    Ok(targets)
}

/// Saves named tensors (any of f32, f64, i64, u8 on any device) with string metadata as one
/// safetensors file, atomically: a checkpoint is either the old one or the complete new one.
pub fn save_tensors(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let bad = |reason: String| DataError::TensorFile {
        path: path.into(),
        reason,
    };
    let mut raw: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let dtype = match t.kind() {
            Kind::Float => Dtype::F32,
            Kind::Double => Dtype::F64,
            Kind::Int64 => Dtype::I64,
            Kind::Uint8 => Dtype::U8,
            other => {
                return Err(bad(format!(
                    "tensor {name} has unsupported dtype {other:?}"
                )))
            }
        };
        let t = t.f_to_device(Device::Cpu)?.f_contiguous()?;
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, numel)?;
        let shape = t.size().iter().map(|&d| d as usize).collect();
        raw.push((name.clone(), dtype, shape, bytes));
    }
    let views = raw
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.as_str(), v))
                .map_err(|e| bad(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes =
        safetensors::serialize(views, &Some(metadata.clone())).map_err(|e| bad(e.to_string()))?;
    write_atomic(path, &bytes)
}

/// Loads a safetensors file written by [`save_tensors`] (or any safetensors file of f32, f64,
/// i64 or u8 tensors): the tensors on `device`, and the metadata. A missing, truncated or
/// non-safetensors file is a [`DataError::TensorFile`] or [`DataError::Io`], never a panic.
pub fn load_tensors(
    path: impl AsRef<Path>,
    device: Device,
) -> Result<(HashMap<String, Tensor>, HashMap<String, String>)> {
    let path = path.as_ref();
    let bad = |reason: String| DataError::TensorFile {
        path: path.into(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let kind = match view.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::F64 => Kind::Double,
            Dtype::I64 => Kind::Int64,
            Dtype::U8 => Kind::Uint8,
            other => {
                return Err(bad(format!(
                    "tensor {name} has unsupported dtype {other:?}"
                )))
            }
        };
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind)?.f_to_device(device)?;
        out.insert(name, t);
    }
    Ok((out, metadata))
}

/// Which differences between a weights file and a model [`copy_into_vars`] accepts.
#[derive(Debug, Clone, Default)]
pub struct VarMatch<'a> {
    /// Model variables under these name prefixes may be absent from the file (they keep their
    /// initial values): the explicit form of partial loading, e.g. `["head."]` for a new head.
    pub allow_missing: &'a [&'a str],
    /// File tensors under these name prefixes are skipped (e.g. the replaced ImageNet
    /// classifier, an optimiser's state); any other tensor without a model variable is an error.
    pub ignore_unexpected: &'a [&'a str],
}

/// What [`copy_into_vars`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VarCopyReport {
    /// Variables copied from the file.
    pub loaded: Vec<String>,
    /// Variables left at their initial values (allowed by [`VarMatch::allow_missing`]).
    pub kept: Vec<String>,
    /// File tensors skipped (allowed by [`VarMatch::ignore_unexpected`]).
    pub skipped: Vec<String>,
}

/// Copies `saved` tensors into `vars` by name. Every variable must find a tensor of its shape,
/// and every tensor a variable, except as `rules` allow; otherwise nothing is copied and the
/// error lists every missing, unexpected and mis-shaped name. `path` names the file in errors.
pub fn copy_into_vars(
    vars: &HashMap<String, Tensor>,
    saved: &HashMap<String, Tensor>,
    rules: &VarMatch<'_>,
    path: &Path,
) -> Result<VarCopyReport> {
    let under = |name: &str, prefixes: &[&str]| prefixes.iter().any(|p| name.starts_with(p));
    let mut report = VarCopyReport::default();
    let (mut missing, mut unexpected, mut misshaped) = (Vec::new(), Vec::new(), Vec::new());
    for (name, var) in vars {
        match saved.get(name) {
            None if under(name, rules.allow_missing) => report.kept.push(name.clone()),
            None => missing.push(name.clone()),
            Some(t) if t.size() != var.size() => {
                misshaped.push(format!("{name}: {:?} vs {:?}", t.size(), var.size()))
            }
            Some(_) => report.loaded.push(name.clone()),
        }
    }
    for name in saved.keys().filter(|n| !vars.contains_key(*n)) {
        if under(name, rules.ignore_unexpected) {
            report.skipped.push(name.clone());
        } else {
            unexpected.push(name.clone());
        }
    }
    if !(missing.is_empty() && unexpected.is_empty() && misshaped.is_empty()) {
        for v in [&mut missing, &mut unexpected, &mut misshaped] {
            v.sort();
        }
        return Err(DataError::WeightMismatch {
            path: path.into(),
            missing,
            unexpected,
            misshaped,
        });
    }
    let bad = |name: &str, reason: String| DataError::TensorFile {
        path: path.into(),
        reason: format!("tensor {name}: {reason}"),
    };
    // Convert everything first, so that a failure leaves the model untouched.
    let mut converted = Vec::with_capacity(report.loaded.len());
    for name in &report.loaded {
        let (src, var) = (&saved[name], &vars[name]);
        if src.is_floating_point() != var.is_floating_point() {
            return Err(bad(
                name,
                format!("{:?} cannot fill a {:?} variable", src.kind(), var.kind()),
            ));
        }
        let t = src
            .f_to_device(var.device())
            .and_then(|t| t.f_to_kind(var.kind()))
            .map_err(|e| bad(name, e.to_string()))?;
        converted.push((var.shallow_clone(), t));
    }
    tch::no_grad(|| -> Result<()> {
        for (mut var, t) in converted {
            var.f_copy_(&t)?;
        }
        Ok(())
    })?;
    for v in [&mut report.loaded, &mut report.kept, &mut report.skipped] {
        v.sort();
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_files_round_trip_and_bad_files_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("ckpt.safetensors");
        let w = Tensor::randn([3, 4], (Kind::Float, Device::Cpu));
        let steps = Tensor::from_slice(&[7i64]);
        let meta = HashMap::from([("epoch".to_string(), "12".to_string())]);
        save_tensors(
            &p,
            &[("w".into(), w.shallow_clone()), ("steps".into(), steps)],
            &meta,
        )
        .expect("save");
        let (t, m) = load_tensors(&p, Device::Cpu).expect("load");
        assert!(t["w"].equal(&w));
        assert_eq!(t["steps"].int64_value(&[0]), 7);
        assert_eq!(m["epoch"], "12");
        let bytes = std::fs::read(&p).expect("read");
        std::fs::write(&p, &bytes[..bytes.len() - 10]).expect("truncate");
        assert!(matches!(
            load_tensors(&p, Device::Cpu),
            Err(DataError::TensorFile { .. })
        ));
        std::fs::write(&p, b"definitely not safetensors").expect("write");
        assert!(matches!(
            load_tensors(&p, Device::Cpu),
            Err(DataError::TensorFile { .. })
        ));
        assert!(matches!(
            load_tensors(dir.path().join("none"), Device::Cpu),
            Err(DataError::Io { .. })
        ));
    }

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
        let bad = Tensor::zeros([3, 2, 2], (Kind::Float, Device::Cpu));
        assert!(matches!(save_png(&bad, &p), Err(DataError::Shape { .. })));
    }
}
