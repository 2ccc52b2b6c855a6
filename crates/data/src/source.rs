//! Where an experiment's images come from: a COVID-CT folder or the embedded phantom stand-in,
//! loaded at any size, with a fingerprint of the bytes that were used.

use std::path::{Path, PathBuf};

use tch::Device;

use crate::{
    default_cache_dir, phantom_splits, DataError, FolderConfig, ImageFolder, ImageSpec,
    LoadOptions, PhantomConfig, Result, Split, Splits, TensorDataset,
};

/// Where the images come from.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// The COVID-CT folder layout (`CT_COVID/`, `CT_NonCOVID/`, official split lists).
    CovidCt(PathBuf),
    /// The embedded synthetic phantom stand-in (procedural, not real CT).
    Phantom(PhantomConfig),
}

impl DataSource {
    /// The folder if one is given, else the phantom stand-in (the examples' default). A path
    /// that is not a folder is an error naming it.
    pub fn folder_or_phantom(dir: Option<&Path>) -> Result<Self> {
        match dir {
            Some(d) if d.is_dir() => Ok(DataSource::CovidCt(d.to_path_buf())),
            Some(d) => Err(DataError::MissingDir {
                path: d.to_path_buf(),
                what: "the dataset (the COVID-CT layout: CT_COVID/, CT_NonCOVID/)".into(),
            }),
            None => Ok(DataSource::Phantom(PhantomConfig::default())),
        }
    }

    /// The source in words, for reports: `COVID-CT at <folder>` or the phantom's seed.
    pub fn describe(&self) -> String {
        match self {
            DataSource::CovidCt(dir) => format!("COVID-CT at {}", dir.display()),
            DataSource::Phantom(c) => format!(
                "synthetic phantom stand-in (not CT), seed {}, {:?} images per split and class",
                c.seed, c.counts
            ),
        }
    }

    /// Whether the images are the synthetic phantom stand-in.
    pub fn is_synthetic(&self) -> bool {
        matches!(self, DataSource::Phantom(_))
    }

    /// Loads the train / validation / test splits at `size`² on `device` (a folder goes through
    /// the default decode cache).
    pub fn load(&self, size: i64, device: Device) -> Result<Splits> {
        match self {
            DataSource::CovidCt(dir) => self.folder(dir)?.load_splits(&options(size, device)?),
            DataSource::Phantom(c) => phantom_splits(&phantom_at(c, size)?, device),
        }
    }

    /// Loads the three splits decoded by `spec` (size, filter, aspect policy) on `device`. The
    /// phantom's images are square, so only its size applies.
    pub fn load_spec(&self, spec: ImageSpec, device: Device) -> Result<Splits> {
        match self {
            DataSource::CovidCt(dir) => {
                let opts = options(i64::from(spec.size), device)?.with_spec(spec);
                self.folder(dir)?.load_splits(&opts)
            }
            DataSource::Phantom(c) => phantom_splits(&phantom_at(c, i64::from(spec.size))?, device),
        }
    }

    /// Loads one split at `size`² on `device`.
    pub fn load_split(&self, split: Split, size: i64, device: Device) -> Result<TensorDataset> {
        match self {
            DataSource::CovidCt(dir) => {
                Ok(self.folder(dir)?.load(split, &options(size, device)?)?.0)
            }
            DataSource::Phantom(c) => {
                let s = phantom_splits(&phantom_at(c, size)?, device)?;
                Ok(match split {
                    Split::Train => s.train,
                    Split::Val => s.val,
                    Split::Test => s.test,
                })
            }
        }
    }

    /// BLAKE3 of what the source holds: for a folder, every listed file's split, class, name and
    /// the BLAKE3 of its bytes (as the decode cache keys files); for the phantom, its
    /// generated images at `size`². Changed data never reuses a finished result.
    pub fn fingerprint(&self, size: i64) -> Result<String> {
        let mut h = blake3::Hasher::new();
        match self {
            DataSource::CovidCt(dir) => {
                h.update(b"covid-ct\0");
                let folder = self.folder(dir)?;
                for e in folder.entries() {
                    let bytes = std::fs::read(&e.path).map_err(|source| DataError::Io {
                        path: e.path.clone(),
                        source,
                    })?;
                    let line = format!("{}\t{}\t{}\t", e.split, e.label, e.name);
                    h.update(line.as_bytes());
                    h.update(blake3::hash(&bytes).as_bytes());
                }
            }
            DataSource::Phantom(c) => {
                h.update(b"phantom\0");
                let s = phantom_splits(&phantom_at(c, size)?, Device::Cpu)?;
                for d in [&s.train, &s.val, &s.test] {
                    h.update(d.fingerprint()?.as_bytes());
                }
            }
        }
        Ok(h.finalize().to_hex().to_string())
    }

    fn folder(&self, dir: &Path) -> Result<ImageFolder> {
        ImageFolder::open(dir, &FolderConfig::covid_ct())
    }
}

fn options(size: i64, device: Device) -> Result<LoadOptions> {
    let side = u32::try_from(size).map_err(|_| DataError::config("size", format!("{size}")))?;
    let mut opts = LoadOptions::with_size(side).with_device(device);
    opts.cache_dir = default_cache_dir();
    Ok(opts)
}

fn phantom_at(c: &PhantomConfig, size: i64) -> Result<PhantomConfig> {
    let side = u32::try_from(size).map_err(|_| DataError::config("size", format!("{size}")))?;
    Ok(PhantomConfig {
        size: side,
        ..c.clone()
    })
}
