//! Named tensors with string metadata as one safetensors file (checkpoints, weights), and
//! copying saved tensors into a model's variables by name with every mismatch reported.

use std::collections::HashMap;
use std::path::Path;

use safetensors::{tensor::TensorView, Dtype};
use tch::{Device, Kind, Tensor};

use crate::{Result, TrainError};

/// Saves named tensors (any of f32, f64, i64, u8 on any device) with string metadata as one
/// safetensors file, atomically: a checkpoint is either the old one or the complete new one.
pub fn save_tensors(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let bad = |reason: String| TrainError::TensorFile {
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
    Ok(ganaug_data::io::write_atomic(path, &bytes)?)
}

/// Loads a safetensors file written by [`save_tensors`] (or any safetensors file of f32, f64,
/// i64 or u8 tensors): the tensors on `device`, and the metadata. A missing, truncated or
/// non-safetensors file is a [`TrainError::TensorFile`] or [`TrainError::Io`], never a panic.
pub fn load_tensors(
    path: impl AsRef<Path>,
    device: Device,
) -> Result<(HashMap<String, Tensor>, HashMap<String, String>)> {
    let path = path.as_ref();
    let bad = |reason: String| TrainError::TensorFile {
        path: path.into(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
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
        return Err(TrainError::WeightMismatch {
            path: path.into(),
            missing,
            unexpected,
            misshaped,
        });
    }
    let bad = |name: &str, reason: String| TrainError::TensorFile {
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
            Err(TrainError::TensorFile { .. })
        ));
        std::fs::write(&p, b"definitely not safetensors").expect("write");
        assert!(matches!(
            load_tensors(&p, Device::Cpu),
            Err(TrainError::TensorFile { .. })
        ));
        assert!(matches!(
            load_tensors(dir.path().join("none"), Device::Cpu),
            Err(TrainError::Io { .. })
        ));
    }
}
