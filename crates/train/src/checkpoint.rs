//! One checkpoint format and one resume policy for every trainer.
//!
//! A checkpoint is a safetensors file (see [`crate::save_tensors`]) whose metadata holds the
//! trainer's format name, its configuration as JSON, the BLAKE3 fingerprint of the data it
//! trained on, and trainer-specific state (history, step counters) as strings. A run resumes
//! only from a checkpoint of the same format, the same configuration — except the settings the
//! trainer declares changeable, such as the number of epochs — and the same data.

use std::collections::HashMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tch::{Device, Tensor};

use crate::{load_tensors, save_tensors, Result, TrainError};

const FORMAT: &str = "format";
const CONFIG: &str = "config";
const DATA: &str = "data";

/// A checkpoint's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointMeta {
    /// The trainer's format name and version, e.g. `ganaug-gan-2`.
    pub format: String,
    /// The run's configuration.
    pub config: serde_json::Value,
    /// Fingerprint of the training data ([`data_fingerprint`]); empty when not recorded.
    pub data: String,
    /// Trainer-specific state (history, counters), by key.
    pub state: HashMap<String, String>,
}

impl CheckpointMeta {
    /// Metadata for a checkpoint of `format` with `config`, trained on data `data`.
    pub fn new(format: &str, config: &impl Serialize, data: &str) -> Result<Self> {
        Ok(CheckpointMeta {
            format: format.into(),
            config: serde_json::to_value(config).map_err(|source| TrainError::Json {
                what: "a checkpoint's configuration",
                source,
            })?,
            data: data.into(),
            state: HashMap::new(),
        })
    }

    /// Adds a state entry as JSON.
    pub fn with_state(mut self, key: &str, value: &impl Serialize) -> Result<Self> {
        let json = serde_json::to_string(value).map_err(|source| TrainError::Json {
            what: "a checkpoint's state",
            source,
        })?;
        self.state.insert(key.into(), json);
        Ok(self)
    }

    /// A state entry read back from JSON; a missing or malformed entry names the file.
    pub fn state<T: serde::de::DeserializeOwned>(&self, key: &str, path: &Path) -> Result<T> {
        let text = self.state.get(key).ok_or_else(|| TrainError::TensorFile {
            path: path.into(),
            reason: format!("metadata {key} missing"),
        })?;
        serde_json::from_str(text).map_err(|e| TrainError::TensorFile {
            path: path.into(),
            reason: format!("metadata {key}: {e}"),
        })
    }

    /// The one resume policy: the same `format`, the same configuration as `config` once the
    /// settings a resume may change are set aside ([`RunConfig::fixed`]), and the same data
    /// (when the checkpoint recorded it).
    pub fn check_resume<C: RunConfig>(
        &self,
        path: &Path,
        format: &str,
        config: &C,
        data: &str,
    ) -> Result<()> {
        let refuse = |reason: String| {
            Err(TrainError::Resume {
                path: path.into(),
                reason,
            })
        };
        if self.format != format {
            let (saved, now) = (family(&self.format), family(format));
            return refuse(if saved == now {
                format!(
                    "it was written by another version of ganaug (format {:?}, this version reads {format:?}): train again in a new folder, or remove its checkpoints",
                    self.format
                )
            } else {
                format!("it is a {:?} checkpoint, not {format:?}", self.format)
            });
        }
        let saved: C = match serde_json::from_value(self.config.clone()) {
            Ok(c) => c,
            Err(e) => return refuse(format!("its configuration cannot be read: {e}")),
        };
        let json = |c: &C| {
            serde_json::to_value(c.fixed()).map_err(|source| TrainError::Json {
                what: "the configuration",
                source,
            })
        };
        let (saved, now) = (json(&saved)?, json(config)?);
        if saved != now {
            return refuse(format!(
                "it was written with another configuration (saved {saved}, now {now})"
            ));
        }
        if !self.data.is_empty() && self.data != data {
            return refuse(format!(
                "it was trained on other data (fingerprint {}…, now {}…)",
                short(&self.data),
                short(data)
            ));
        }
        Ok(())
    }

    fn to_map(&self) -> Result<HashMap<String, String>> {
        let mut map = self.state.clone();
        map.insert(FORMAT.into(), self.format.clone());
        map.insert(CONFIG.into(), self.config.to_string());
        map.insert(DATA.into(), self.data.clone());
        Ok(map)
    }

    fn from_map(mut map: HashMap<String, String>, path: &Path) -> Result<Self> {
        let mut take = |k: &str| {
            map.remove(k).ok_or_else(|| TrainError::TensorFile {
                path: path.into(),
                reason: format!("not a ganaug checkpoint: metadata {k} missing"),
            })
        };
        let format = take(FORMAT)?;
        let config = take(CONFIG)?;
        let data = take(DATA)?;
        let config = serde_json::from_str(&config).map_err(|e| TrainError::TensorFile {
            path: path.into(),
            reason: format!("metadata config: {e}"),
        })?;
        Ok(CheckpointMeta {
            format,
            config,
            data,
            state: map,
        })
    }
}

/// Writes a checkpoint atomically.
pub fn save_checkpoint(
    path: &Path,
    tensors: &[(String, Tensor)],
    meta: &CheckpointMeta,
) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    }
    save_tensors(path, tensors, &meta.to_map()?)
}

/// Reads a checkpoint written by [`save_checkpoint`]: its tensors on `device` and its metadata.
pub fn load_checkpoint(
    path: &Path,
    device: Device,
) -> Result<(HashMap<String, Tensor>, CheckpointMeta)> {
    let (tensors, map) = load_tensors(path, device)?;
    Ok((tensors, CheckpointMeta::from_map(map, path)?))
}

/// A run's configuration as its checkpoints record it, and which of its settings a resumed run
/// may change (a typed list: the settings `fixed` resets).
pub trait RunConfig: Serialize + DeserializeOwned {
    /// This configuration with every setting a resume may change (e.g. the number of epochs
    /// to train to) set to one fixed value, so two configurations that differ only there
    /// compare equal.
    fn fixed(&self) -> Self;
}

/// BLAKE3 over the fingerprints of the datasets a run trains on (see
/// `TensorDataset::fingerprint`).
pub fn data_fingerprint(sets: &[&dyn ganaug_data::ImageSource]) -> Result<String> {
    Ok(hasher(sets)?.finalize().to_hex().to_string())
}

/// [`data_fingerprint`] together with what else changes the images a run sees (an online
/// augmentation pipeline, say), by its serialised form.
pub fn data_fingerprint_with(
    sets: &[&dyn ganaug_data::ImageSource],
    transform: &impl Serialize,
) -> Result<String> {
    let mut h = hasher(sets)?;
    let json = serde_json::to_vec(transform).map_err(|source| TrainError::Json {
        what: "a data transform",
        source,
    })?;
    h.update(&json);
    Ok(h.finalize().to_hex().to_string())
}

/// BLAKE3 over tensors' shapes, kinds and values (for data held as plain tensors, such as
/// feature vectors).
pub fn data_fingerprint_of_tensors(tensors: &[&Tensor]) -> Result<String> {
    let mut h = blake3::Hasher::new();
    for t in tensors {
        let t = t.f_to_device(Device::Cpu)?.f_contiguous()?;
        h.update(format!("{:?} {:?};", t.size(), t.kind()).as_bytes());
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, numel)?;
        h.update(&bytes);
    }
    Ok(h.finalize().to_hex().to_string())
}

fn hasher(sets: &[&dyn ganaug_data::ImageSource]) -> Result<blake3::Hasher> {
    let mut h = blake3::Hasher::new();
    for d in sets {
        h.update(ganaug_data::stream::fingerprint(*d)?.as_bytes());
    }
    Ok(h)
}

/// `ganaug-gan` of `ganaug-gan-2`: the trainer a format belongs to.
fn family(format: &str) -> &str {
    format.rsplit_once('-').map_or(format, |(f, _)| f)
}

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize)]
    struct Cfg {
        epochs: usize,
        lr: f64,
    }

    impl RunConfig for Cfg {
        fn fixed(&self) -> Self {
            Cfg {
                epochs: 0,
                lr: self.lr,
            }
        }
    }

    /// The same settings, none of them changeable.
    #[derive(Serialize, Deserialize)]
    struct Strict(Cfg);

    impl RunConfig for Strict {
        fn fixed(&self) -> Self {
            Strict(Cfg { ..self.0 })
        }
    }

    #[test]
    fn checkpoints_round_trip_and_the_resume_policy_refuses_what_differs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("c/epoch_00001.safetensors");
        let cfg = Cfg { epochs: 5, lr: 0.1 };
        let meta = CheckpointMeta::new("test-1", &cfg, "abc")
            .and_then(|m| m.with_state("step", &7usize))
            .expect("meta");
        let w = Tensor::from_slice(&[1.0f32, 2.0]);
        save_checkpoint(&path, &[("w".into(), w.shallow_clone())], &meta).expect("save");
        let (t, back) = load_checkpoint(&path, Device::Cpu).expect("load");
        assert!(t["w"].equal(&w));
        assert_eq!(back, meta);
        assert_eq!(back.state::<usize>("step", &path).expect("step"), 7);
        assert!(back.state::<usize>("nothing", &path).is_err());

        let more = Cfg { epochs: 9, lr: 0.1 };
        back.check_resume(&path, "test-1", &more, "abc")
            .expect("epochs may change");
        let refused = [
            back.check_resume(&path, "test-1", &Strict(more), "abc"),
            back.check_resume(&path, "test-1", &Cfg { epochs: 5, lr: 0.2 }, "abc"),
            back.check_resume(&path, "test-2", &cfg, "abc"),
            back.check_resume(&path, "other-1", &cfg, "abc"),
            back.check_resume(&path, "test-1", &cfg, "other"),
        ];
        let reasons: Vec<String> = refused
            .into_iter()
            .map(|r| match r {
                Err(TrainError::Resume { reason, .. }) => reason,
                other => panic!("expected a refused resume, got {other:?}"),
            })
            .collect();
        assert!(
            reasons[2].contains("another version of ganaug"),
            "{}",
            reasons[2]
        );
        assert!(reasons[3].contains("not \"other-1\""), "{}", reasons[3]);
    }

    #[test]
    fn a_plain_tensor_file_is_not_a_checkpoint() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("w.safetensors");
        save_tensors(
            &path,
            &[("w".into(), Tensor::from_slice(&[1.0f32]))],
            &HashMap::new(),
        )
        .expect("save");
        assert!(matches!(
            load_checkpoint(&path, Device::Cpu),
            Err(TrainError::TensorFile { .. })
        ));
    }
}
