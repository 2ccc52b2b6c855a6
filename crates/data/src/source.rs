//! Where an experiment's images come from: an image folder (COVID-CT or one folder per class)
//! or the embedded phantom stand-in, loaded at any size, with a fingerprint of the bytes that
//! were used.

use std::path::{Path, PathBuf};

use tch::Device;

use crate::{
    default_cache_dir, phantom_splits, ColorMode, DataError, Depth, FolderConfig, ImageFolder,
    ImageSource, ImageSpec, Layout, LoadOptions, LoadReport, PhantomConfig, Result, Split, Splits,
    StreamDecision, Streaming, TensorDataset, Window,
};

/// An image folder and how it is read.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderSource {
    /// The dataset folder.
    pub dir: PathBuf,
    /// Its classes, split lists or ratios, grouping.
    pub config: FolderConfig,
    /// The layout it was found to have.
    pub layout: Layout,
    /// Gray, RGB or decided from the pixels (COVID-CT: gray; class folders: auto).
    pub color: ColorMode,
    /// The intensity window of DICOM files.
    pub window: Window,
    /// Bits per sample kept (COVID-CT: 8; class folders: auto).
    pub depth: Depth,
}

impl FolderSource {
    /// The folder at `dir`, its layout found by [`FolderConfig::discover`].
    pub fn discover(dir: impl AsRef<Path>) -> Result<Self> {
        let (config, layout) = FolderConfig::discover(dir.as_ref())?;
        Ok(Self::read_as(dir, config, layout))
    }

    /// The folder at `dir` read in `layout`, whatever its files suggest.
    pub fn with_layout(dir: impl AsRef<Path>, layout: Layout) -> Result<Self> {
        let config = match layout {
            Layout::CovidCt => FolderConfig::covid_ct(),
            Layout::ClassFolders => FolderConfig::class_folders(dir.as_ref())?,
        };
        Ok(Self::read_as(dir, config, layout))
    }

    /// `config` at `dir` with the layout's defaults: COVID-CT gray at 8 bits as the paper
    /// reads it; class folders with colour and bit depth decided from the files.
    fn read_as(dir: impl AsRef<Path>, config: FolderConfig, layout: Layout) -> Self {
        let (color, depth) = match layout {
            Layout::CovidCt => (ColorMode::Gray, Depth::Eight),
            Layout::ClassFolders => (ColorMode::Auto, Depth::Auto),
        };
        FolderSource {
            dir: dir.as_ref().to_path_buf(),
            config,
            layout,
            color,
            window: Window::LUNG,
            depth,
        }
    }

    /// Whether this is the COVID-CT layout read as the paper reads it (gray, its own lists).
    pub fn is_covid_ct(&self) -> bool {
        self.layout == Layout::CovidCt
            && self.config == FolderConfig::covid_ct()
            && self.color == ColorMode::Gray
            && self.depth == Depth::Eight
    }
}

/// Where the images come from.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// An image folder: COVID-CT's layout or one folder per class.
    Folder(Box<FolderSource>),
    /// The embedded synthetic phantom stand-in (procedural, not real CT).
    Phantom(PhantomConfig),
}

impl DataSource {
    /// The folder if one is given (its layout discovered), else the phantom stand-in (the
    /// examples' default). A path that is not a folder is an error naming it.
    pub fn folder_or_phantom(dir: Option<&Path>) -> Result<Self> {
        match dir {
            Some(d) => Ok(DataSource::Folder(Box::new(FolderSource::discover(d)?))),
            None => Ok(DataSource::Phantom(PhantomConfig::default())),
        }
    }

    /// The COVID-CT folder at `dir`, read as the paper reads it.
    pub fn covid_ct(dir: impl Into<PathBuf>) -> Self {
        let dir: PathBuf = dir.into();
        DataSource::Folder(Box::new(FolderSource::read_as(
            dir,
            FolderConfig::covid_ct(),
            Layout::CovidCt,
        )))
    }

    /// Whether the data is COVID-CT read as the paper reads it (the paper's numbers apply).
    pub fn is_covid_ct(&self) -> bool {
        matches!(self, DataSource::Folder(f) if f.is_covid_ct())
    }

    /// The source in words, for reports: `COVID-CT at <folder>`, the folder's layout and
    /// classes, or the phantom's seed.
    pub fn describe(&self) -> String {
        match self {
            DataSource::Folder(f) if f.is_covid_ct() => format!("COVID-CT at {}", f.dir.display()),
            DataSource::Folder(f) => format!(
                "image folder {} ({}, {} classes: {}; colour {}{}{})",
                f.dir.display(),
                f.layout.describe(),
                f.config.classes.len(),
                f.config
                    .classes
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                f.color,
                match f.depth {
                    Depth::Sixteen => ", 16-bit",
                    _ => "",
                },
                if f.window.is_lung() {
                    String::new()
                } else {
                    format!(", DICOM window {},{}", f.window.center, f.window.width)
                }
            ),
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
            DataSource::Folder(f) => open(f)?.load_splits(&options(f, size, device)?),
            DataSource::Phantom(c) => phantom_splits(&phantom_at(c, size)?, device),
        }
    }

    /// Loads the three splits decoded by `spec` (size, filter, aspect policy) on `device`. The
    /// phantom's images are square, so only its size applies.
    pub fn load_spec(&self, spec: ImageSpec, device: Device) -> Result<Splits> {
        match self {
            DataSource::Folder(f) => {
                let spec = ImageSpec {
                    color: f.color,
                    window: f.window,
                    depth: f.depth,
                    ..spec
                };
                let opts = options(f, i64::from(spec.size), device)?.with_spec(spec);
                open(f)?.load_splits(&opts)
            }
            DataSource::Phantom(c) => phantom_splits(&phantom_at(c, i64::from(spec.size))?, device),
        }
    }

    /// The three splits decoded by `spec`, streamed from the decode cache (a folder only: the
    /// phantom is generated in memory). The same images as [`DataSource::load_spec`].
    pub fn stream_spec(&self, spec: ImageSpec) -> Result<crate::StreamSplits> {
        match self {
            DataSource::Folder(f) => {
                let spec = ImageSpec {
                    color: f.color,
                    window: f.window,
                    depth: f.depth,
                    ..spec
                };
                let opts = options(f, i64::from(spec.size), Device::Cpu)?.with_spec(spec);
                open(f)?.stream_splits(&opts)
            }
            DataSource::Phantom(_) => Err(DataError::config(
                "stream",
                "the phantom is generated in memory: only an image folder streams",
            )),
        }
    }

    /// Whether the three splits at side `side` are streamed as `streaming` says: a folder's by
    /// its images' size as `f32` against the memory available now ([`Streaming::Auto`]); the
    /// phantom, generated in memory, never (and it refuses [`Streaming::On`]).
    pub fn stream_decision(&self, side: u32, streaming: Streaming) -> Result<StreamDecision> {
        Ok(match self {
            DataSource::Folder(f) => {
                let images = open(f)?.entries().len();
                // before the colour is decided: as RGB, the larger
                let channels = f.color.channels().unwrap_or(3);
                streaming.decide(images, channels, side)
            }
            DataSource::Phantom(_) if streaming == Streaming::On => {
                return Err(DataError::config(
                    "stream",
                    "the phantom is generated in memory: only an image folder streams",
                ))
            }
            DataSource::Phantom(c) => {
                Streaming::Off.decide(c.counts.iter().flatten().sum(), 1, side)
            }
        })
    }

    /// The three splits decoded by `spec`, in memory or streamed as `streaming` says
    /// ([`Streaming::Auto`]: by the images' size against the memory available now; the
    /// phantom, generated in memory, is never streamed and refuses [`Streaming::On`]).
    pub fn open_spec(
        &self,
        spec: ImageSpec,
        device: Device,
        streaming: Streaming,
    ) -> Result<(LoadedSplits, StreamDecision)> {
        let decision = self.stream_decision(spec.size, streaming)?;
        let loaded = if decision.stream {
            LoadedSplits::Stream(self.stream_spec(spec)?)
        } else {
            LoadedSplits::Memory(self.load_spec(spec, device)?)
        };
        Ok((loaded, decision))
    }

    /// The source with its colour mode and bit depth decided: a folder in [`ColorMode::Auto`]
    /// or [`Depth::Auto`] is read once by `spec` (its size; usually the smallest a run
    /// needs) and fixed to what was decided; the decisions are returned in words. Any other
    /// source is returned as it is.
    pub fn decide_auto(
        &self,
        spec: ImageSpec,
        device: Device,
    ) -> Result<(DataSource, Vec<String>)> {
        match self {
            DataSource::Folder(f) if f.color == ColorMode::Auto || f.depth == Depth::Auto => {
                // streamed when there is a cache folder: any size of folder decides in bounded
                // memory (the same decision as an in-memory load)
                let report = if default_cache_dir().is_some() {
                    self.stream_spec(spec)?.report
                } else {
                    self.load_spec(spec, device)?.report
                };
                let mut decided = (**f).clone();
                let mut notes = Vec::new();
                if let Some(d) = report.depth {
                    decided.depth = d.depth;
                    notes.push(d.to_string());
                }
                if let Some(c) = report.color {
                    decided.color = c.mode;
                    notes.push(c.to_string());
                }
                if decided.color == ColorMode::Auto || decided.depth == Depth::Auto {
                    return Err(DataError::config("auto", "an auto mode was not decided"));
                }
                Ok((DataSource::Folder(Box::new(decided)), notes))
            }
            other => Ok((other.clone(), Vec::new())),
        }
    }

    /// Loads one split at `size`² on `device`.
    pub fn load_split(&self, split: Split, size: i64, device: Device) -> Result<TensorDataset> {
        match self {
            DataSource::Folder(f) => Ok(open(f)?.load(split, &options(f, size, device)?)?.0),
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
            DataSource::Folder(f) => {
                if f.is_covid_ct() {
                    h.update(b"covid-ct\0");
                } else {
                    // How the folder is read is part of what a model sees.
                    h.update(b"folder\0");
                    let how = serde_json::json!({
                        "config": f.config, "color": f.color, "window": f.window,
                        "depth": f.depth,
                    });
                    h.update(how.to_string().as_bytes());
                }
                let folder = open(f)?;
                for e in folder.entries() {
                    let bytes = std::fs::read(&e.path).map_err(|source| DataError::Io {
                        path: e.path.clone(),
                        source,
                    })?;
                    let line = format!("{}\t{}\t{}\t", e.split, e.label, e.name);
                    if e.frame > 0 {
                        // Frames after the first of a multi-frame file: the same bytes.
                        h.update(line.as_bytes());
                        continue;
                    }
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
}

/// The three splits, in memory or streamed ([`DataSource::open_spec`]).
#[derive(Debug)]
pub enum LoadedSplits {
    /// Decoded into memory.
    Memory(Splits),
    /// Streamed from the decode cache.
    Stream(crate::StreamSplits),
}

impl LoadedSplits {
    /// The split by name.
    pub fn get(&self, split: Split) -> &dyn ImageSource {
        match self {
            LoadedSplits::Memory(s) => s.get(split),
            LoadedSplits::Stream(s) => match split {
                Split::Train => &s.train,
                Split::Val => &s.val,
                Split::Test => &s.test,
            },
        }
    }

    /// What the load (or the stream's build) did.
    pub fn report(&self) -> &LoadReport {
        match self {
            LoadedSplits::Memory(s) => &s.report,
            LoadedSplits::Stream(s) => &s.report,
        }
    }
}

fn open(f: &FolderSource) -> Result<ImageFolder> {
    ImageFolder::open(&f.dir, &f.config)
}

fn options(f: &FolderSource, size: i64, device: Device) -> Result<LoadOptions> {
    let side = u32::try_from(size).map_err(|_| DataError::config("size", format!("{size}")))?;
    let spec = ImageSpec::with_size(side)
        .with_color(f.color)
        .with_window(f.window)
        .with_depth(f.depth);
    let mut opts = LoadOptions::with_size(side)
        .with_spec(spec)
        .with_device(device);
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
