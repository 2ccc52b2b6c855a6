//! Reproduces the paper's tables in one command: GANs, synthetic sets, every classifier on every
//! training-set scenario, tested on the official COVID-CT test split — or on any class-folder
//! dataset's test split (`--data DIR`; see docs/datasets.md); writes `results.json`,
//! `report.md` and plots. Re-running skips finished cells; a killed run resumes.
//!
//! ```text
//! ganaug reproduce --data ../shared/data/covid-ct            # cpu preset
//! ganaug reproduce --data ../shared/data/covid-ct --preset paper
//! ganaug reproduce                  # synthetic phantom stand-in data
//! ganaug reproduce --print-config > my.toml   # then --config my.toml
//! ganaug reproduce --readme-table results/reproduce-cpu/results.json
//! ```

use crate::common;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ganaug::experiment::report::{read_results, readme_table, replace_readme_table};
use ganaug::experiment::shard::{Shard, Work};
use ganaug::experiment::{self, ReproConfig, Scenario, PRESETS};
use ganaug::models::ModelKind;
use ganaug::train::{ConsoleProgress, Observer, Silent};

fn presets_help() -> String {
    let mut s = String::from("PRESETS (crates/experiment/presets/*.toml):\n");
    for (name, summary, _) in PRESETS {
        s += &format!("  {name:<6} {summary}\n");
    }
    s +=
        "\nScenarios: raw, classic (flips + rotation ≤45°), gan (one GAN per class, the paper's), \
          cgan (one conditional GAN, standing in for Loey et al.'s CGAN set), gan-classic, edit \
          (masked edits of real images by an edit GAN), fgan (feature vectors of a GAN in a \
          probe's feature space; probes only).\n\nA data-scarcity study (what the synthetic \
          images are worth in real images): --preset scarcity, or --fractions 0.1,0.25,0.5,1 on \
          any preset.";
    s
}

#[derive(clap::Args, Debug)]
#[command(about = "Reproduce the paper's tables (GAN-based augmentation on COVID-CT), or run the same experiment on any class-folder dataset", after_help = presets_help())]
pub struct Args {
    #[command(flatten)]
    common: common::CommonArgs,
    #[command(flatten)]
    preset: common::PresetArgs,
    #[command(flatten)]
    stream: common::StreamArgs,
    /// Print the resolved configuration (preset or file, with the options below) as TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// Print the README results table generated from a results.json, and exit.
    #[arg(long, value_name = "RESULTS_JSON")]
    readme_table: Option<PathBuf>,
    /// With --readme-table: replace the table in this README instead of printing it.
    #[arg(long, value_name = "README", requires = "readme_table")]
    update_readme: Option<PathBuf>,
    /// How many classifier seeds to run and aggregate: seeds 0 to N−1 (the GANs are trained
    /// once unless --gan-replicas).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    seeds: Option<u64>,
    /// GANs trained per synthetic set, each with its own seed; a cell of seed s uses replica
    /// s mod N, so that seeds vary the GANs too (each replica costs a GAN training).
    #[arg(long, value_name = "N")]
    gan_replicas: Option<u64>,
    /// Only these models (comma-separated: cnn, vgg16, resnet50, effnet-lite0, effnet-lite1,
    /// effnet-lite2; those of the preset).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Only these scenarios (comma-separated).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Run a data-scarcity study at these fractions of each class's training and validation
    /// images (comma-separated, each in (0, 1], increasing): the preset's [scarcity] plan, or
    /// the scarcity preset's when it has none, with these fractions.
    #[arg(long, value_delimiter = ',', value_name = "F,F,…")]
    fractions: Vec<f64>,
    /// Use synthetic sets that miss the gate's floors (diversity, recall, coverage against the
    /// real-vs-real values) instead of refusing them; the report still says which failed.
    #[arg(long)]
    allow_poor_synthetic: bool,
    /// Train the GANs and classifiers with autocast-style bf16 convolutions / dense layers (f32
    /// weights). Fast on GPUs and on CPUs with bf16 instructions; slow on others.
    #[arg(long)]
    bf16: bool,
    /// Print every unit of work (GANs, cells), what the output folder already has of it and an
    /// estimate of its time from a few timed steps on this device, and exit without training
    /// (the images read as `--stream` says: a plan reads a few batches).
    #[arg(long)]
    dry_run: bool,
    /// Run only shard I of N (e.g. 2/8; one job of a Slurm array each): the units numbered
    /// I−1 mod N, each claimed with a lock file in the shared output folder, and the GANs its
    /// cells need. Writes shards/shard-I-of-N.json; `--report-only` then merges. See
    /// docs/cluster.md.
    #[arg(long, value_name = "I/N", conflicts_with = "report_only")]
    shard: Option<String>,
    /// Train nothing: merge every finished GAN and cell in the output folder into
    /// results.json and report.md, listing what is missing.
    #[arg(long)]
    report_only: bool,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
}

/// The preset or file, with the command line's changes, checked once.
fn resolve_config(args: &Args) -> Result<experiment::CheckedConfig> {
    let mut cfg = args.preset.load()?.into_inner();
    if let Some(k) = args.seeds {
        cfg.seeds = usize::try_from(k).unwrap_or(usize::MAX);
    }
    if let Some(n) = args.gan_replicas {
        cfg.gan.replicas = n;
    }
    if !args.models.is_empty() {
        let paper = ReproConfig::preset("paper")?.into_inner().models;
        let mut plans = Vec::new();
        for m in &args.models {
            let kind = ModelKind::parse(m)?;
            let plan = cfg.models.iter().chain(&paper).find(|p| p.kind == kind);
            plans.push(plan.cloned().context("no plan for that model")?);
        }
        cfg.models = plans;
    }
    if !args.scenarios.is_empty() {
        cfg.scenarios = args
            .scenarios
            .iter()
            .map(|s| {
                Scenario::parse(s).with_context(|| {
                    format!("unknown scenario {s:?}: choose raw, classic, gan, cgan, gan-classic, edit or fgan")
                })
            })
            .collect::<Result<_>>()?;
    }
    if !args.fractions.is_empty() {
        let mut plan = match cfg.scarcity.take() {
            Some(p) => p,
            None => ReproConfig::preset("scarcity")?
                .into_inner()
                .scarcity
                .context("the scarcity preset has no [scarcity] plan")?,
        };
        plan.then_real.retain(|s| cfg.scenarios.contains(s));
        cfg.scarcity = Some(plan.with_fractions(args.fractions.clone()));
    }
    if args.allow_poor_synthetic {
        cfg.gan.gate.mode = ganaug::experiment::GateMode::Warn;
    }
    if args.bf16 {
        cfg.gan.gan.bf16 = true;
        for m in &mut cfg.models {
            m.bf16 = true;
        }
    }
    Ok(cfg.check()?)
}

fn print_readme_table(results: &Path, readme: Option<&Path>) -> Result<()> {
    let table = readme_table(&read_results(results)?);
    let Some(path) = readme else {
        print!("{table}");
        return Ok(());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let Some(new) = replace_readme_table(&text, &table) else {
        bail!(
            "{} has no generated results table to replace",
            path.display()
        );
    };
    ganaug::data::io::write_atomic(path, new.as_bytes())?;
    println!("updated the results table in {}", path.display());
    Ok(())
}

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    if let Some(results) = &args.readme_table {
        return print_readme_table(results, args.update_readme.as_deref());
    }
    let cfg = resolve_config(&args)?;
    if args.print_config {
        print!("{}", cfg.to_toml()?);
        return Ok(());
    }
    let work = match (&args.shard, args.report_only) {
        (Some(spec), _) => Work::Shard(spec.parse::<Shard>()?),
        (None, true) => Work::ReportOnly,
        (None, false) => Work::All,
    };
    let data = args.common.source()?;
    let device = args.common.device()?;
    ganaug::init_process_for(device, cfg.largest_image());
    println!("device: {device:?}");
    let out = args
        .common
        .out_or(&format!("results/reproduce-{}", cfg.preset));
    let console = ConsoleProgress::new();
    let observer: &dyn Observer = if args.quiet { &Silent } else { &console };
    if args.dry_run {
        let plan = experiment::plan::dry_run(
            &cfg,
            &data,
            &out,
            device,
            (work, args.stream.stream),
            observer,
        )?;
        print!("{}", experiment::plan::plan_text(&cfg, &plan, device));
        return Ok(());
    }
    let opts = experiment::RunOptions {
        observer,
        work,
        streaming: args.stream.stream,
        ..Default::default()
    };
    let results = experiment::run_with(&cfg, &data, &out, device, &opts)?;
    let missing = if results.missing.is_empty() {
        String::new()
    } else {
        format!(", {} units not finished", results.missing.len())
    };
    match work {
        Work::Shard(s) => println!(
            "\nshard {s} done in {:.1} min: {} cells finished{missing}; merge with --report-only",
            results.seconds / 60.0,
            results.cells.len()
        ),
        _ => println!(
            "\ndone in {:.1} min: {} cells{missing}; report {}",
            results.seconds / 60.0,
            results.cells.len(),
            out.join("report.md").display()
        ),
    }
    say_sets(&out);
    Ok(())
}

/// The kept synthetic sets in the folder (class folders `ganaug assess` and other tools read).
fn say_sets(out: &Path) {
    let Ok(entries) = std::fs::read_dir(out.join("synthetic")) else {
        return;
    };
    let mut sets: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    sets.sort();
    for s in sets {
        println!("synthetic set: {}", s.display());
    }
}
