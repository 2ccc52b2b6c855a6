//! NIfTI-1 volumes (`.nii`, `.nii.gz`; behind the `nifti` feature, through the `nifti` crate)
//! read as stacks of axial slices in the radiological view DICOM uses: the volume is turned,
//! from its header's orientation (sform, else qform, else the ANALYZE default), so that image
//! columns run toward the patient's left, rows toward posterior and slices from inferior to
//! superior; the scale (`scl_slope`, `scl_inter`) is applied, so CT volumes are in HU and take
//! the same window as DICOM.

#[cfg(not(feature = "nifti"))]
use std::path::Path;

#[cfg(not(feature = "nifti"))]
use crate::{DataError, Result};

/// Whether a file name is a NIfTI volume's (`.nii` or `.nii.gz`, any case).
pub(crate) fn is_nifti_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".nii") || lower.ends_with(".nii.gz")
}

/// Whether `bytes` start like a NIfTI-1 file: the single-file magic `n+1\0` at byte 344, or
/// gzip (a `.nii.gz`; its header is checked when it is read).
pub(crate) fn sniff(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b]) || bytes.get(344..348) == Some(b"n+1\0")
}

#[cfg(not(feature = "nifti"))]
pub(crate) fn slices(path: &Path) -> Result<u32> {
    Err(no_feature(path))
}

#[cfg(not(feature = "nifti"))]
pub(crate) fn high_bit_depth(_path: &Path) -> Result<bool> {
    Ok(false)
}

#[cfg(not(feature = "nifti"))]
pub(crate) fn no_feature(path: &Path) -> DataError {
    DataError::UnsupportedEncoding {
        path: path.into(),
        encoding: "NIfTI".into(),
        remedy: "NIfTI support is not built in: enable the `nifti` feature".into(),
    }
}

#[cfg(feature = "nifti")]
pub(crate) use imp::{decode, decode16, high_bit_depth, slices};
#[cfg(feature = "nifti")]
pub use imp::{read, Volume};

#[cfg(feature = "nifti")]
mod imp {
    use std::io::Read;
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use nifti::{InMemNiftiObject, NiftiHeader, NiftiObject, NiftiType};

    use crate::decode::Image8;
    use crate::decode16::Image16;
    use crate::dicom::{gray16, gray8, window_levels};
    use crate::{DataError, ImageSpec, Result};

    fn fail(path: &Path, reason: impl std::fmt::Display) -> DataError {
        DataError::Decode {
            path: path.into(),
            format: "NIfTI",
            reason: reason.to_string(),
        }
    }

    /// A volume in the radiological axial view: `values[(k * height + y) * width + x]`, with
    /// `x` toward the patient's left, `y` toward posterior, `k` from inferior to superior.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Volume {
        /// Columns of a slice.
        pub width: usize,
        /// Rows of a slice.
        pub height: usize,
        /// Slices.
        pub depth: usize,
        /// The values (scale applied), slice after slice.
        pub values: Vec<f32>,
    }

    impl Volume {
        /// Slice `k` (inferior first), `height` rows of `width` values.
        pub fn slice(&self, k: usize) -> &[f32] {
            let n = self.width * self.height;
            &self.values[k * n..(k + 1) * n]
        }
    }

    /// For each voxel axis of a volume: the output axis it becomes (0 columns, 1 rows,
    /// 2 slices) and whether it is reversed, from the header's orientation.
    fn axes(h: &NiftiHeader) -> [(usize, bool); 3] {
        let m = direction_matrix(h);
        // greedy: the largest |component| first, each world and voxel axis used once
        let mut cells: Vec<(f64, usize, usize)> = (0..3)
            .flat_map(|w| (0..3).map(move |a| (w, a)))
            .map(|(w, a)| (m[w][a].abs(), w, a))
            .collect();
        cells.sort_by(|x, y| y.0.total_cmp(&x.0));
        let mut out = [(usize::MAX, false); 3];
        let mut world_used = [false; 3];
        for (mag, w, a) in cells {
            if out[a].0 != usize::MAX || world_used[w] {
                continue;
            }
            world_used[w] = true;
            // world x, y point to the patient's right and anterior (RAS): columns go to the
            // left and rows to posterior, so those axes flip when they point to + ; slices go
            // to superior, so that axis flips when it points to -.
            let positive = mag == 0.0 || m[w][a] > 0.0;
            let flip = if w == 2 { !positive } else { positive };
            out[a] = (w, flip);
        }
        out
    }

    /// The 3×3 direction part of the voxel-to-world (RAS) affine: sform when set, else
    /// qform, else ANALYZE's default (x mirrored).
    fn direction_matrix(h: &NiftiHeader) -> [[f64; 3]; 3] {
        let p = |i: usize| f64::from(h.pixdim[i]);
        if h.sform_code > 0 {
            let r = |row: &[f32; 4]| [f64::from(row[0]), f64::from(row[1]), f64::from(row[2])];
            return [r(&h.srow_x), r(&h.srow_y), r(&h.srow_z)];
        }
        if h.qform_code > 0 {
            let (b, c, d) = (
                f64::from(h.quatern_b),
                f64::from(h.quatern_c),
                f64::from(h.quatern_d),
            );
            let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
            let qfac = if p(0) < 0.0 { -1.0 } else { 1.0 };
            let r = [
                [
                    a * a + b * b - c * c - d * d,
                    2.0 * (b * c - a * d),
                    2.0 * (b * d + a * c),
                ],
                [
                    2.0 * (b * c + a * d),
                    a * a + c * c - b * b - d * d,
                    2.0 * (c * d - a * b),
                ],
                [
                    2.0 * (b * d - a * c),
                    2.0 * (c * d + a * b),
                    a * a + d * d - b * b - c * c,
                ],
            ];
            let s = [p(1), p(2), qfac * p(3)];
            return r.map(|row| [row[0] * s[0], row[1] * s[1], row[2] * s[2]]);
        }
        [
            [-p(1).abs().max(1e-6), 0.0, 0.0],
            [0.0, p(2).abs(), 0.0],
            [0.0, 0.0, p(3).abs()],
        ]
    }

    /// The three spatial sizes of a header, checked.
    fn sizes(h: &NiftiHeader, path: &Path) -> Result<[usize; 3]> {
        let dim = h.dim().map_err(|e| fail(path, e))?;
        if dim.len() < 2 || dim.contains(&0) {
            return Err(fail(
                path,
                format!("dimensions {dim:?}: not an image volume"),
            ));
        }
        Ok([
            usize::from(dim[0]),
            usize::from(dim[1]),
            dim.get(2).map_or(1, |&d| usize::from(d)),
        ])
    }

    /// A NIfTI file's header, gzip or not by its first bytes (not its name's case).
    fn header(path: &Path) -> Result<NiftiHeader> {
        let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        let mut magic = [0u8; 2];
        let n = file.read(&mut magic).map_err(|e| DataError::io(path, e))?;
        let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        let read = if n == 2 && magic == [0x1f, 0x8b] {
            NiftiHeader::from_reader(flate2::read::GzDecoder::new(std::io::BufReader::new(file)))
        } else {
            NiftiHeader::from_reader(std::io::BufReader::new(file))
        };
        read.map_err(|e| fail(path, e))
    }

    /// The number of axial slices of a NIfTI file, from its header.
    pub(crate) fn slices(path: &Path) -> Result<u32> {
        let h = header(path)?;
        let n = sizes(&h, path)?;
        let axes = axes(&h);
        let slice_axis = (0..3).find(|&a| axes[a].0 == 2).unwrap_or(2);
        Ok(n[slice_axis] as u32)
    }

    /// Whether a NIfTI file's type is wider than a byte (its header).
    pub(crate) fn high_bit_depth(path: &Path) -> Result<bool> {
        let h = header(path)?;
        let ty = h.data_type().map_err(|e| fail(path, e))?;
        Ok(!matches!(ty, NiftiType::Uint8 | NiftiType::Int8))
    }

    /// Values of any numeric NIfTI type as `f32` (RGB and complex volumes are refused).
    fn values(obj: InMemNiftiObject, path: &Path) -> Result<Vec<f32>> {
        let h = obj.header().clone();
        let ty = h.data_type().map_err(|e| fail(path, e))?;
        let vol = obj.into_volume();
        let err = |e: nifti::NiftiError| fail(path, e);
        let mut v: Vec<f32> = match ty {
            NiftiType::Uint8 => conv(vol.into_nifti_typed_data::<u8>().map_err(err)?),
            NiftiType::Int8 => conv(vol.into_nifti_typed_data::<i8>().map_err(err)?),
            NiftiType::Int16 => conv(vol.into_nifti_typed_data::<i16>().map_err(err)?),
            NiftiType::Uint16 => conv(vol.into_nifti_typed_data::<u16>().map_err(err)?),
            NiftiType::Int32 => conv(vol.into_nifti_typed_data::<i32>().map_err(err)?),
            NiftiType::Uint32 => conv(vol.into_nifti_typed_data::<u32>().map_err(err)?),
            NiftiType::Float32 => vol.into_nifti_typed_data::<f32>().map_err(err)?,
            NiftiType::Float64 => conv(vol.into_nifti_typed_data::<f64>().map_err(err)?),
            NiftiType::Int64 => conv(vol.into_nifti_typed_data::<i64>().map_err(err)?),
            NiftiType::Uint64 => conv(vol.into_nifti_typed_data::<u64>().map_err(err)?),
            other => {
                return Err(DataError::UnsupportedEncoding {
                    path: path.into(),
                    encoding: format!("NIfTI data type {other:?}"),
                    remedy: "only scalar (gray) volumes are read: convert it to a numeric type"
                        .into(),
                })
            }
        };
        if h.scl_slope != 0.0 && (h.scl_slope != 1.0 || h.scl_inter != 0.0) {
            let (s, i) = (h.scl_slope, h.scl_inter);
            v.iter_mut().for_each(|x| *x = *x * s + i);
        }
        Ok(v)
    }

    fn conv<T: num_like::ToF32>(v: Vec<T>) -> Vec<f32> {
        v.into_iter().map(num_like::ToF32::to_f32).collect()
    }

    mod num_like {
        /// A numeric voxel as `f32`.
        pub trait ToF32 {
            fn to_f32(self) -> f32;
        }
        macro_rules! to_f32 {
            ($($t:ty),*) => {$(impl ToF32 for $t { fn to_f32(self) -> f32 { self as f32 } })*};
        }
        to_f32!(u8, i8, i16, u16, i32, u32, f64, i64, u64);
    }

    /// A NIfTI file's bytes (gzip or not) as a volume in the radiological axial view (the
    /// first volume of a 4-D series).
    pub(crate) fn from_bytes(bytes: &[u8], path: &Path) -> Result<Volume> {
        let reader: Box<dyn Read + '_> = if bytes.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::GzDecoder::new(bytes))
        } else {
            Box::new(bytes)
        };
        let obj = InMemNiftiObject::from_reader(reader).map_err(|e| fail(path, e))?;
        let h = obj.header().clone();
        let n = sizes(&h, path)?;
        let values = values(obj, path)?;
        let count = n[0] * n[1] * n[2];
        if values.len() < count {
            return Err(fail(path, format!("{} voxels for {n:?}", values.len())));
        }
        let axes = axes(&h);
        let mut out_n = [1usize; 3];
        for a in 0..3 {
            out_n[axes[a].0] = n[a];
        }
        let (w, ht, d) = (out_n[0], out_n[1], out_n[2]);
        let mut out = vec![0f32; count];
        let stride = [1, n[0], n[0] * n[1]];
        for (o, value) in out.iter_mut().enumerate() {
            let pos = [o % w, (o / w) % ht, o / (w * ht)];
            let mut index = 0;
            for a in 0..3 {
                let (axis, flip) = axes[a];
                let p = if flip {
                    n[a] - 1 - pos[axis]
                } else {
                    pos[axis]
                };
                index += p * stride[a];
            }
            *value = values[index];
        }
        Ok(Volume {
            width: w,
            height: ht,
            depth: d,
            values: out,
        })
    }

    /// Reads a NIfTI file (`.nii` or `.nii.gz`) as a volume in the radiological axial view.
    pub fn read(path: impl AsRef<Path>) -> Result<Volume> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        from_bytes(&bytes, path)
    }

    /// The last volumes read, by content hash: the slices of one volume are decoded one
    /// after another (by as many threads as rayon runs), and each would otherwise unpack the
    /// whole file again.
    static RECENT: Mutex<Vec<(blake3::Hash, Arc<Volume>)>> = Mutex::new(Vec::new());

    /// Volumes kept: one per decoding thread, and one more.
    fn recent_volumes() -> usize {
        rayon::current_num_threads().max(3) + 1
    }

    fn cached(bytes: &[u8], path: &Path) -> Result<Arc<Volume>> {
        let key = blake3::hash(bytes);
        // a panic elsewhere while holding the lock leaves a list of whole volumes: still good
        let lock = || {
            RECENT
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some((_, v)) = lock().iter().find(|(k, _)| *k == key) {
            return Ok(Arc::clone(v));
        }
        let volume = Arc::new(from_bytes(bytes, path)?);
        let mut recent = lock();
        if recent.len() >= recent_volumes() {
            recent.remove(0);
        }
        recent.push((key, Arc::clone(&volume)));
        Ok(volume)
    }

    fn slice_levels(
        bytes: &[u8],
        path: &Path,
        spec: &ImageSpec,
        k: u32,
        max_level: u16,
    ) -> Result<(u32, u32, Vec<u16>)> {
        let v = cached(bytes, path)?;
        if k as usize >= v.depth {
            return Err(fail(
                path,
                format!("slice {k} of a volume of {} slices", v.depth),
            ));
        }
        let (w, h) = (v.width as u64, v.height as u64);
        if w * h > spec.max_pixels {
            return Err(DataError::TooLarge {
                path: path.into(),
                width: w,
                height: h,
                limit: spec.max_pixels,
            });
        }
        let levels = window_levels(v.slice(k as usize), path, spec, max_level, false)?;
        Ok((w as u32, h as u32, levels))
    }

    /// Axial slice `k` of a NIfTI file's bytes, windowed at 8 bits.
    pub(crate) fn decode(bytes: &[u8], path: &Path, spec: &ImageSpec, k: u32) -> Result<Image8> {
        let (w, h, levels) = slice_levels(bytes, path, spec, k, 255)?;
        Ok(gray8(w, h, &levels, spec))
    }

    /// Axial slice `k` of a NIfTI file's bytes, windowed at 16 bits.
    pub(crate) fn decode16(bytes: &[u8], path: &Path, spec: &ImageSpec, k: u32) -> Result<Image16> {
        let (w, h, levels) = slice_levels(bytes, path, spec, k, u16::MAX)?;
        Ok(gray16(w, h, levels, spec))
    }
}
