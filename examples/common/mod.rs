//! Arguments every example shares (data, device, output folder) and what they resolve
//! to. Included by each example with `#[path = "common/mod.rs"] mod common;`.
#![allow(dead_code)] // each example uses part of it

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ganaug::data::DataSource;
use ganaug::device::DeviceChoice;
use ganaug::experiment::{CheckedConfig, ReproConfig};

/// `--data`, `--device`, `--out`.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// COVID-CT folder (CT_COVID/, CT_NonCOVID/, Data-split/). Without it: the embedded
    /// synthetic phantom stand-in (procedural, not real CT).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Output folder (each example has its own default).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

impl CommonArgs {
    /// The data source; says so when it is the phantom stand-in.
    pub fn source(&self) -> Result<DataSource> {
        let source =
            DataSource::folder_or_phantom(self.data.as_deref()).context("--data is not usable")?;
        if source.is_synthetic() {
            println!("No --data given: using the SYNTHETIC PHANTOM stand-in dataset (procedural, not real CT).");
        }
        Ok(source)
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

/// `--preset NAME` or `--config FILE`: one configuration, in the presets' TOML format.
#[derive(Args, Debug, Clone)]
pub struct PresetArgs {
    /// A preset by name: cpu, paper or tiny (`reproduce --help` describes them).
    #[arg(long, default_value = "cpu", conflicts_with = "config")]
    pub preset: String,
    /// A configuration file of your own (the presets' TOML format; `reproduce --print-config`
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
