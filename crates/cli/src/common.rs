//! Arguments every subcommand shares (data and how it is read, device, output folder) and
//! what they resolve to. Shared by the subcommands.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use ganaug::data::{
    ColorMode, DataSource, Depth, FolderSource, GroupBy, Layout, Slices, Streaming, Window,
};
use ganaug::device::DeviceChoice;
use ganaug::experiment::{CheckedConfig, ReproConfig};

/// `--data` and how it is read, `--device`, `--out`.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Dataset folder: COVID-CT's layout (CT_COVID/, CT_NonCOVID/, Data-split/) or one
    /// sub-folder per class (PNG, JPEG, TIFF, BMP, WebP; DICOM files and series, NIfTI
    /// volumes with the `dicom`/`nifti` features).
    /// Without it: the embedded synthetic phantom stand-in (procedural, not real CT).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// How the folder is laid out: auto (COVID-CT when CT_COVID/ and CT_NonCOVID/ are there,
    /// else class folders), covid-ct or class-folders.
    #[arg(long, value_enum, default_value = "auto")]
    pub layout: LayoutArg,
    /// Only these classes, in this order (comma-separated class-folder names).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub classes: Vec<String>,
    /// gray, rgb or auto (decided from the pixels). Default: gray for COVID-CT, auto otherwise.
    #[arg(long, value_name = "MODE", value_parser = parse_color)]
    pub color: Option<ColorMode>,
    /// Bits per sample kept: 8, 16 (16-bit PNG/TIFF and DICOM at full precision) or auto (16
    /// when any file stores more than 8 bits). Default: 8 for COVID-CT, auto otherwise.
    #[arg(long, value_name = "BITS", value_parser = parse_depth)]
    pub depth: Option<Depth>,
    /// DICOM intensity window: lung (default), mediastinum or CENTER,WIDTH in the modality's
    /// units (Hounsfield units for CT).
    #[arg(long, value_name = "WINDOW", value_parser = parse_window, allow_hyphen_values = true)]
    pub window: Option<Window>,
    /// Keep each patient's images in one split: a regular expression on the file name whose
    /// first group is the patient key (e.g. '^(patient\d+)_'). Used when there are no split
    /// lists.
    #[arg(long, value_name = "REGEX", conflicts_with = "group_csv")]
    pub group_pattern: Option<String>,
    /// Keep each patient's images in one split, from a CSV with columns `file` and `group`.
    #[arg(long, value_name = "FILE")]
    pub group_csv: Option<PathBuf>,
    /// Which slices of each volume (multi-frame DICOM, DICOM series, NIfTI file) are taken:
    /// all, middle:K (the K around the middle) or every:N.
    #[arg(long, value_name = "WHICH", default_value = "all", value_parser = parse_slices)]
    pub slices: Slices,
    /// Seed of the stratified split made when the folder has no split lists.
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Output folder (each command has its own default).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `--layout`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutArg {
    /// Found from the folder's files.
    Auto,
    /// COVID-CT.
    CovidCt,
    /// One sub-folder per class.
    ClassFolders,
}

fn parse_color(s: &str) -> std::result::Result<ColorMode, String> {
    ColorMode::parse(s).map_err(|e| e.to_string())
}

fn parse_depth(s: &str) -> std::result::Result<Depth, String> {
    Depth::parse(s).map_err(|e| e.to_string())
}

fn parse_slices(s: &str) -> std::result::Result<Slices, String> {
    Slices::parse(s).map_err(|e| e.to_string())
}

fn parse_window(s: &str) -> std::result::Result<Window, String> {
    Window::parse(s).map_err(|e| e.to_string())
}

impl CommonArgs {
    /// The data source; says so when it is the phantom stand-in.
    pub fn source(&self) -> Result<DataSource> {
        let Some(dir) = self.data.as_deref() else {
            println!("No --data given: using the SYNTHETIC PHANTOM stand-in dataset (procedural, not real CT).");
            return Ok(DataSource::folder_or_phantom(None)?);
        };
        Ok(DataSource::Folder(Box::new(self.folder(dir)?)))
    }

    /// The folder at `dir` read as the arguments say.
    pub fn folder(&self, dir: &Path) -> Result<FolderSource> {
        let mut f = match self.layout {
            LayoutArg::Auto => FolderSource::discover(dir),
            LayoutArg::CovidCt => FolderSource::with_layout(dir, Layout::CovidCt),
            LayoutArg::ClassFolders => FolderSource::with_layout(dir, Layout::ClassFolders),
        }
        .with_context(|| format!("--data {} is not usable", dir.display()))?;
        if !self.classes.is_empty() {
            f.config = f.config.with_classes(&self.classes).context("--classes")?;
        }
        if let Some(c) = self.color {
            f.color = c;
        }
        if let Some(d) = self.depth {
            f.depth = d;
        }
        if let Some(w) = self.window {
            f.window = w;
        }
        let group = match (&self.group_pattern, &self.group_csv) {
            (Some(p), _) => GroupBy::Pattern(p.clone()),
            (_, Some(c)) => GroupBy::Csv(c.clone()),
            _ => GroupBy::None,
        };
        let ratios = f.config.ratios;
        f.config = f
            .config
            .with_group_by(group)
            .with_slices(self.slices)
            .with_ratios(ratios, self.split_seed);
        Ok(f)
    }

    /// The device, checked against what libtorch sees.
    pub fn device(&self) -> Result<tch::Device> {
        Ok(self.device.resolve()?)
    }

    /// `--out`, or `default`.
    pub fn out_or(&self, default: &str) -> PathBuf {
        self.out.clone().unwrap_or_else(|| PathBuf::from(default))
    }
}

/// `--stream on|off|auto`: whether the images are decoded into memory or read batch by batch
/// from the decode cache.
#[derive(Args, Debug, Clone)]
pub struct StreamArgs {
    /// on: read the images batch by batch from the decode cache (datasets larger than memory;
    /// the same images, the same results); off: decode every split into memory; auto: stream
    /// when the images as f32 would take more than 40% of the memory available now.
    #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = parse_stream)]
    pub stream: Streaming,
}

fn parse_stream(s: &str) -> std::result::Result<Streaming, String> {
    Streaming::parse(s).map_err(|e| e.to_string())
}

/// `--preset NAME` or `--config FILE`: one configuration, in the presets' TOML format.
#[derive(Args, Debug, Clone)]
pub struct PresetArgs {
    /// A preset by name: cpu, paper or tiny (`ganaug reproduce --help` describes them).
    #[arg(long, default_value = "cpu", conflicts_with = "config")]
    pub preset: String,
    /// A configuration file of your own (the presets' TOML format; `ganaug reproduce --print-config`
    /// writes one to start from).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl PresetArgs {
    /// The configuration, checked.
    pub fn load(&self) -> Result<CheckedConfig> {
        Ok(match &self.config {
            Some(path) => ReproConfig::from_file(path)?,
            None => ReproConfig::preset(&self.preset)?,
        })
    }
}
