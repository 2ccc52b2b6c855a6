//! Reproduces the paper's tables in one command: GANs, synthetic sets, every classifier on every
//! training-set scenario, tested on the official COVID-CT test split; writes `results.json`,
//! `report.md` and plots. Re-running skips finished cells; a killed run resumes.
//!
//! ```text
//! cargo run --release --example reproduce -- --data ../shared/data/covid-ct            # cpu preset
//! cargo run --release --example reproduce -- --data ../shared/data/covid-ct --preset paper
//! cargo run --release --example reproduce                  # synthetic phantom stand-in data
//! ```

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;
use ganaug::data::PhantomConfig;
use ganaug::device::DeviceChoice;
use ganaug::models::ModelKind;
use ganaug::repro::{self, DataSource, ReproConfig, Scenario};

const PRESETS: &str = "\
PRESETS:
  cpu    (default) finishes in about 30 min on 2 CPU cores with the real data: one DCGAN-32 per
         class at 64² for 200 epochs + a conditional one for 60, 125 synthetic images per class,
         the paper's CNN from scratch at 64² and EfficientNet-Lite0 with its real ImageNet
         weights (frozen backbone, cached features) at 224². VGG-16 and ResNet-50 are left to
         the paper preset. The report lists every reduction.
  paper  the paper's settings, for a CUDA GPU: its GAN at 256² for 3300 epochs (checkpoints
         every 300), 250 images per class, the CNN, VGG-16, ResNet-50 and EfficientNet-Lite0 at
         224² with the paper's SGD rates. VGG-16 / ResNet-50 start from torchvision ImageNet
         weights if weights/vgg16.safetensors / weights/resnet50.safetensors exist (see the
         README), otherwise they are trained from scratch and the report says so.
  tiny   seconds: tiny sizes and epochs, a smoke test.

Scenarios: raw, classic (flips + rotation ≤45°), gan (one GAN per class, the paper's), cgan
(one conditional GAN, standing in for Loey et al.'s CGAN set), gan-classic.";

#[derive(Parser, Debug)]
#[command(about = "Reproduce the paper's tables (GAN-based augmentation on COVID-CT)", after_help = PRESETS)]
struct Args {
    /// COVID-CT folder (official layout). Without it, the synthetic phantom stand-in is used.
    #[arg(long)]
    data: Option<PathBuf>,
    /// cpu, paper or tiny (see below).
    #[arg(long, default_value = "cpu")]
    preset: String,
    /// Classifier seeds to run and aggregate (GANs are trained once).
    #[arg(long)]
    seeds: Option<usize>,
    /// Only these models (comma-separated: cnn, vgg16, resnet50, effnet-lite0).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Only these scenarios (comma-separated).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Results folder (default: results/reproduce-<preset>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Train the GANs and classifiers with autocast-style bf16 convolutions / dense layers (f32
    /// weights). Fast on GPUs and on CPUs with bf16 instructions; slow on others.
    #[arg(long)]
    bf16: bool,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let Some(mut cfg) = ReproConfig::preset(&args.preset) else {
        bail!(
            "unknown preset {:?}: choose cpu, paper or tiny",
            args.preset
        );
    };
    if let Some(k) = args.seeds {
        cfg.seeds = k;
    }
    if !args.models.is_empty() {
        let mut wanted: Vec<ModelKind> = args
            .models
            .iter()
            .map(|m| ModelKind::parse(m))
            .collect::<Result<_, _>>()?;
        wanted.dedup();
        let all = ReproConfig::paper().models;
        cfg.models = wanted
            .iter()
            .map(|k| {
                cfg.models
                    .iter()
                    .chain(&all)
                    .find(|p| p.kind == *k)
                    .cloned()
                    .context("model plan")
            })
            .collect::<Result<_>>()?;
    }
    if !args.scenarios.is_empty() {
        cfg.scenarios = args
            .scenarios
            .iter()
            .map(|s| Scenario::parse(s).with_context(|| format!("unknown scenario {s:?}")))
            .collect::<Result<_>>()?;
    }
    if args.bf16 {
        cfg.gan.gan.bf16 = true;
        for m in &mut cfg.models {
            m.bf16 = true;
        }
    }
    let data = match &args.data {
        Some(dir) => {
            if !dir.is_dir() {
                bail!("--data {}: no such folder (expected the COVID-CT layout with CT_COVID/ and CT_NonCOVID/)", dir.display());
            }
            DataSource::Folder(dir.clone())
        }
        None => {
            println!("No --data given: using the SYNTHETIC PHANTOM stand-in dataset (procedural, not real CT).");
            DataSource::Phantom(PhantomConfig::default())
        }
    };
    let device = args.device.resolve()?;
    let largest = cfg
        .models
        .iter()
        .map(|m| m.image_size)
        .fold(cfg.gan.gan.size, i64::max);
    ganaug::init_process_for(device, largest);
    println!("device: {device:?}");
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("results/reproduce-{}", cfg.preset)));
    let results = repro::run(&cfg, &data, &out, device, !args.quiet)?;
    println!(
        "\ndone in {:.1} min: {} cells; report {}",
        results.seconds / 60.0,
        results.cells.len(),
        out.join("report.md").display()
    );
    Ok(())
}
