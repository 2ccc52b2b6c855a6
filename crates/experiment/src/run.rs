//! The experiment's sequence: data at every size, the GAN stage, the cells, aggregation, outputs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use tch::Device;

use ganaug_data::{AnySource, DataSource, ImageSpec, Streaming};

use ganaug_train::{Observer, Silent};

use crate::gans::{run_gans, StageContext};
use crate::layout::{replica_name, Layout};
use crate::results::{BUILD_COMMIT, SCHEMA_VERSION};
use crate::{aggregate, cells, report, CheckedConfig, ExperimentError, ReproResults, Result};

/// How a run goes beyond its configuration: who hears of it, and which units of work it does.
#[derive(Clone, Copy)]
pub struct RunOptions<'a> {
    /// Who hears of the stages and of each training epoch (`ganaug_train::ConsoleProgress`
    /// prints them; every GAN and cell folder gets its `metrics.jsonl` either way).
    pub observer: &'a dyn Observer,
    /// Every unit, one shard's (several jobs on one folder), or none (merge what is finished).
    pub work: crate::shard::Work,
    /// Lock timing for shared folders.
    pub lock: crate::lock::LockPolicy,
    /// Whether the run reads its images streamed from the decode cache — the GANs, their
    /// candidates' near-copy check and the gate's features as well as the cells (a folder
    /// only; off by default: [`Streaming::Auto`] decides by the images' size against the
    /// memory available).
    pub streaming: Streaming,
}

impl Default for RunOptions<'_> {
    fn default() -> Self {
        RunOptions {
            observer: &Silent,
            work: crate::shard::Work::default(),
            lock: crate::lock::LockPolicy::default(),
            streaming: Streaming::Off,
        }
    }
}

/// Runs (or resumes) the experiment into `out`; `observer` hears of its progress.
///
/// A folder that holds the results of another configuration is refused before any work;
/// finished GANs and cells in it are reused.
pub fn run(
    cfg: &CheckedConfig,
    data: &DataSource,
    out: &Path,
    device: Device,
    observer: &dyn Observer,
) -> Result<ReproResults> {
    let opts = RunOptions {
        observer,
        ..RunOptions::default()
    };
    run_with(cfg, data, out, device, &opts)
}

/// [`run`] with [`RunOptions`]. A shard writes `shards/shard-I-of-N.json` (what it finished
/// and what it left to others) instead of the results and report, which a report-only run
/// (or an ordinary one) writes from every finished unit, naming the missing ones.
pub fn run_with(
    cfg: &CheckedConfig,
    data: &DataSource,
    out: &Path,
    device: Device,
    opts: &RunOptions<'_>,
) -> Result<ReproResults> {
    let started = Instant::now();
    let layout = Layout::new(out);
    refuse_other_results(cfg, &layout)?;
    std::fs::create_dir_all(out).map_err(|e| ExperimentError::io(out, e))?;
    claim_folder(cfg, &layout)?;
    // where the job stands, for `ganaug watch` (a shard's own file: shards share the folder)
    let name = match opts.work {
        crate::shard::Work::Shard(s) => format!("progress-shard-{}-of-{}.json", s.index, s.count),
        _ => ganaug_train::PROGRESS_FILE.to_string(),
    };
    let total = if cfg.scarcity.is_some() {
        0
    } else {
        crate::shard::units(cfg).len()
    };
    let progress = ganaug_train::ProgressFile::new(out.join(name), total);
    let both = ganaug_train::Both(opts.observer, &progress);
    let ctx = StageContext {
        layout,
        device,
        observer: &both,
        work: opts.work,
        lock: opts.lock,
    };
    let result = run_stages(cfg, data, &ctx, opts, started);
    progress.finish(result.as_ref().map(|_| ()).map_err(|e| e.to_string()));
    result
}

/// The stages of [`run_with`] in its context.
fn run_stages(
    cfg: &CheckedConfig,
    data: &DataSource,
    ctx: &StageContext<'_>,
    opts: &RunOptions<'_>,
    started: Instant,
) -> Result<ReproResults> {
    let (device, out) = (ctx.device, ctx.layout.root());
    let loaded = load_sizes(cfg, data, device, &cfg.image_sizes(), opts.streaming)?;
    say_data(ctx, &loaded);
    if loaded.cfg.scarcity.is_some() {
        return scarcity_run(&loaded, ctx, opts, started);
    }
    let (cfg, splits, data_id) = (&loaded.cfg, &loaded.splits, &loaded.data_id);
    let gans = run_gans(cfg, &loaded.gan_train(), data_id, ctx)?;
    let shard = match opts.work {
        crate::shard::Work::Shard(s) => Some(s),
        _ => None,
    };
    let (cas, resolution_gap) = if shard.is_some() {
        (Vec::new(), None)
    } else {
        (
            classification_accuracy_scores(cfg, &gans, loaded.sources(cfg.gan.gan.size), device)?,
            resolution_gap(cfg, &gans, &loaded, device)?,
        )
    };
    let run = cells::run_cells(cfg, splits, loaded.streams.as_ref(), &gans, data_id, ctx)?;
    let mut results = results_of(&loaded, gans, run, device)?;
    results.cas = cas;
    results.resolution_gap = resolution_gap;
    results.seconds = started.elapsed().as_secs_f64();
    match shard {
        Some(s) => {
            let dir = ctx.layout.shards();
            std::fs::create_dir_all(&dir).map_err(|e| ExperimentError::io(&dir, e))?;
            report::write_json(&ctx.layout.shard_file(s), &results)?;
        }
        None => report::write_outputs(&results, out)?,
    }
    Ok(results)
}

/// What the GAN stage alone leaves in its folder (`synthesis.json`).
#[derive(Debug, Clone, Serialize)]
pub struct GanStageSummary {
    /// The GANs, trained or reused.
    pub gans: Vec<crate::GanSummary>,
    /// Each class set kept, with its selection and measures.
    pub synthetic: Vec<crate::SynthSummary>,
    /// Sets the gate refused, with why.
    pub refused: BTreeMap<crate::Synthetic, Vec<String>>,
    /// GANs not finished (synthesis from a folder without them).
    pub missing: Vec<String>,
    /// Each kept set's class folders (16-bit PNGs), relative to the output folder.
    pub sets: Vec<String>,
}

/// The GAN stage alone (`ganaug train-gan`; `ganaug synthesize` with
/// [`Work::ReportOnly`](crate::shard::Work::ReportOnly), which trains nothing and synthesizes
/// from the finished GANs in `out`): the GANs the configuration's scenarios need, trained or
/// resumed in the experiment's folders, their synthetic sets selected, measured and gated as
/// the experiment does, written as class folders; `synthesis.json` says what was kept. The
/// GANs' folders are keyed as the experiment's, so a `reproduce` run into the same folder
/// reuses them. Streamed as `opts.streaming` says.
pub fn run_gan_stage(
    cfg: &CheckedConfig,
    data: &DataSource,
    out: &Path,
    device: Device,
    opts: &RunOptions<'_>,
) -> Result<(crate::GanStage, GanStageSummary)> {
    std::fs::create_dir_all(out).map_err(|e| ExperimentError::io(out, e))?;
    let layout = Layout::new(out);
    let ctx = StageContext {
        layout: layout.clone(),
        device,
        observer: opts.observer,
        work: opts.work,
        lock: opts.lock,
    };
    let loaded = load_sizes(cfg, data, device, &[], opts.streaming)?;
    say_data(&ctx, &loaded);
    let stage = run_gans(&loaded.cfg, &loaded.gan_train(), &loaded.data_id, &ctx)?;
    let summary = GanStageSummary {
        gans: stage.gans.clone(),
        synthetic: stage.synthetic.clone(),
        refused: stage.refused.clone(),
        missing: stage.missing.clone(),
        sets: stage
            .sets
            .keys()
            .map(|&(w, r)| layout.relative(&layout.synthetic_set_dir(w, r, &stage.keys[&(w, r)])))
            .collect(),
    };
    report::write_json(&out.join("synthesis.json"), &summary)?;
    Ok((stage, summary))
}

/// A data-scarcity study instead of the paper's table: its results (no cells of the table),
/// report and plots. Shards do not split a study.
fn scarcity_run(
    loaded: &LoadedData,
    ctx: &StageContext<'_>,
    opts: &RunOptions<'_>,
    started: Instant,
) -> Result<ReproResults> {
    if opts.work != crate::shard::Work::All {
        return Err(ExperimentError::config(
            "scarcity",
            "a scarcity study runs whole: --shard and --report-only take the paper's table",
        ));
    }
    let study = crate::scarcity::run_scarcity(loaded, ctx)?;
    let run = cells::CellsRun::default();
    let mut results = results_of(loaded, crate::GanStage::default(), run, ctx.device)?;
    results.scarcity = Some(study);
    results.seconds = started.elapsed().as_secs_f64();
    report::write_outputs(&results, ctx.layout.root())?;
    Ok(results)
}

/// What the loaded data is, and what its auto modes decided.
fn say_data(ctx: &StageContext<'_>, loaded: &LoadedData) {
    let base = loaded.sources(loaded.cfg.gan.gan.size);
    ctx.say(format!(
        "data: {} (train {}, val {}, test {}; {} classes, {} channel{})",
        base.train.description(),
        base.train.len(),
        base.val.len(),
        base.test.len(),
        base.train.class_names().len(),
        base.train.channels(),
        if base.train.channels() == 1 { "" } else { "s" }
    ));
    for decision in &loaded.decisions {
        ctx.say(decision);
    }
}

/// The results of a run's stages (CAS, resolution gap and time left for the caller).
fn results_of(
    loaded: &LoadedData,
    gans: crate::GanStage,
    run: cells::CellsRun,
    device: Device,
) -> Result<ReproResults> {
    let (cfg, data) = (&loaded.cfg, &loaded.data);
    let base = loaded.sources(cfg.gan.gan.size);
    let aggregates = aggregate::aggregate(cfg, &run.cells)?;
    let mut missing = gans.missing.clone();
    missing.extend(run.missing);
    let (mut trained, mut synthetic) = (gans.gans, gans.synthetic);
    trained.extend(run.gans);
    synthetic.extend(run.synthetic);
    let mut refused: Vec<crate::RefusedSet> = gans
        .refused
        .into_iter()
        .map(|(gan, reasons)| crate::RefusedSet { gan, reasons })
        .collect();
    refused.extend(run.refused);
    Ok(ReproResults {
        schema_version: SCHEMA_VERSION,
        commit: BUILD_COMMIT.map(String::from),
        config: (**cfg).clone(),
        data: data.describe(),
        data_fingerprint: loaded.data_id.clone(),
        covid_ct: data.is_covid_ct(),
        decisions: loaded.decisions.clone(),
        synthetic_data: data.is_synthetic(),
        test_counts: ganaug_data::stream::class_counts(base.test)?,
        class_names: base.train.class_names().to_vec(),
        device: format!("{device:?}"),
        gans: trained,
        synthetic,
        refused,
        not_applicable: run.not_applicable,
        scarcity: None,
        cas: Vec::new(),
        resolution_gap: None,
        cells: run.cells,
        aggregates,
        missing,
        seconds: 0.0,
    })
}

/// Records the configuration in `config.json` when the folder has none (atomically: of
/// several jobs starting at once, one writes it) and refuses a folder whose `config.json` holds
/// another configuration.
fn claim_folder(cfg: &CheckedConfig, layout: &Layout) -> Result<()> {
    let path = layout.config();
    let mine =
        serde_json::to_value(&**cfg).map_err(|e| ExperimentError::json("the configuration", e))?;
    if !path.exists() {
        let bytes = serde_json::to_vec_pretty(&mine)
            .map_err(|e| ExperimentError::json("the configuration", e))?;
        let tmp = layout.config_claim();
        std::fs::write(&tmp, &bytes).map_err(|e| ExperimentError::io(&tmp, e))?;
        // hard_link fails if another job has put its file there first
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        if linked.is_ok() {
            return Ok(());
        }
    }
    let bytes = std::fs::read(&path).map_err(|e| ExperimentError::io(&path, e))?;
    let theirs: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ExperimentError::json(path.display().to_string(), e))?;
    if theirs == mine {
        Ok(())
    } else {
        Err(ExperimentError::OtherResults {
            dir: layout.root().into(),
        })
    }
}

/// A run's data, loaded at every side its configuration needs, and the configuration fitted
/// to it.
#[derive(Debug)]
pub struct LoadedData {
    /// The splits in memory, by image side (none when the run streams: see `streams`).
    pub splits: BTreeMap<i64, ganaug_data::Splits>,
    /// The fingerprint of the data at the GANs' side.
    pub data_id: String,
    /// The configuration, its GANs given the data's channels.
    pub cfg: CheckedConfig,
    /// The source with its colour mode decided.
    pub data: DataSource,
    /// What the folder's auto modes (colour, bit depth) decided, in words.
    pub decisions: Vec<String>,
    /// The splits streamed from the decode cache, by side, when the run streams
    /// ([`RunOptions::streaming`]): every stage reads these, and `splits` is empty.
    pub streams: Option<BTreeMap<i64, ganaug_data::StreamSplits>>,
}

impl LoadedData {
    /// The splits at `side` as the stages read them: the streams when the run streams, else
    /// the splits in memory.
    pub(crate) fn sources(&self, side: i64) -> crate::sources::SplitSources<'_> {
        crate::sources::SplitSources::of(&self.splits, self.streams.as_ref(), side)
    }

    /// The training split at the GANs' side, of its kind (not copied).
    pub(crate) fn gan_train(&self) -> AnySource {
        let side = self.cfg.gan.gan.size;
        crate::sources::train_at(&self.splits, self.streams.as_ref(), side)
    }
}

/// The data at every image side `cfg` needs (the decode cache makes reloading cheap), by side,
/// the fingerprint of the data at the GANs' side, and `cfg` with its GANs' channels set to the
/// data's (gray or RGB). A folder in colour mode `auto` is decided once, at the GANs' side,
/// and read in that mode at every side.
pub fn load_splits(cfg: &CheckedConfig, data: &DataSource, device: Device) -> Result<LoadedData> {
    load_sizes(cfg, data, device, &cfg.image_sizes(), Streaming::Off)
}

/// [`load_splits`] at the given sides only (the GAN's side always among them), the
/// images streamed as `streaming` says ([`run_streams`]).
pub(crate) fn load_sizes(
    cfg: &CheckedConfig,
    data: &DataSource,
    device: Device,
    sizes: &[i64],
    streaming: Streaming,
) -> Result<LoadedData> {
    let spec_at = |s: i64| ImageSpec {
        policy: cfg.resize,
        ..ImageSpec::with_size(u32::try_from(s).unwrap_or(0))
    };
    let (data, mut decisions) = data.decide_auto(spec_at(cfg.gan.gan.size), device)?;
    let stream = run_streams(cfg, &data, sizes, streaming)?;
    let gan_side = cfg.gan.gan.size;
    let mut splits = BTreeMap::new();
    let mut streams = BTreeMap::new();
    for &s in sizes.iter().chain([&gan_side]) {
        if stream.is_some() && !streams.contains_key(&s) {
            streams.insert(s, data.stream_spec(spec_at(s))?);
        }
        if stream.is_none() && !splits.contains_key(&s) {
            splits.insert(s, data.load_spec(spec_at(s), device)?);
        }
    }
    decisions.extend(stream);
    // a decode-cache build's buffers are freed by now: give them back before the stages run
    // (the commands' allocator setting would otherwise keep them for the whole run)
    ganaug_ops::release_freed_memory();
    let data_id = data.fingerprint(cfg.gan.gan.size)?;
    let train: &dyn ganaug_data::ImageSource = match streams.get(&gan_side) {
        Some(s) => &s.train,
        None => &splits[&gan_side].train,
    };
    if train.class_names().len() < 2 {
        return Err(ExperimentError::TooFewClasses {
            data: data.describe(),
            classes: train.class_names().len(),
        });
    }
    let mut fitted = (**cfg).clone();
    fitted.gan.gan.channels = train.channels();
    let cfg = fitted.check()?;
    Ok(LoadedData {
        splits,
        data_id,
        cfg,
        data,
        decisions,
        streams: (!streams.is_empty()).then_some(streams),
    })
}

/// Whether the run streams its images, in words (`None`: in memory).
fn run_streams(
    cfg: &CheckedConfig,
    data: &DataSource,
    sizes: &[i64],
    streaming: Streaming,
) -> Result<Option<String>> {
    if streaming == Streaming::Off {
        return Ok(None);
    }
    // the largest side this run reads (the GAN stage alone reads only the GANs')
    let side = sizes.iter().copied().fold(cfg.gan.gan.size, i64::max);
    let largest = u32::try_from(side).unwrap_or(u32::MAX);
    let decision = data.stream_decision(largest, streaming)?;
    Ok(decision.stream.then(|| format!("every stage: {decision}")))
}

/// The CAS of every synthetic set and of the real training split (the reference), at the
/// GANs' size.
fn classification_accuracy_scores(
    cfg: &CheckedConfig,
    gans: &crate::GanStage,
    base: crate::sources::SplitSources<'_>,
    device: Device,
) -> Result<Vec<crate::quality::Cas>> {
    if gans.sets.is_empty() {
        return Ok(Vec::new());
    }
    let mut quality =
        crate::Quality::with_network(device, base.train.channels(), cfg.gan.extractor)?;
    let mut out = Vec::new();
    if let Some(c) = quality.cas("real", base.train, base.test)? {
        out.push(c);
    }
    for ((which, r), set) in &gans.sets {
        let name = replica_name(which.name(), *r);
        if let Some(c) = quality.cas(&name, set, base.test)? {
            out.push(c);
        }
    }
    Ok(out)
}

/// How well a linear probe on the feature network tells the real training images decoded at
/// the run's largest side from the same images taken through the GANs' side: the gap a
/// classifier could exploit between real images and synthetic ones that are generated at the
/// GANs' side, before any GAN artefact. `None` without synthetic sets or the feature network,
/// or when every side is the GANs'.
fn resolution_gap(
    cfg: &CheckedConfig,
    gans: &crate::GanStage,
    loaded: &LoadedData,
    device: Device,
) -> Result<Option<crate::ResolutionGap>> {
    let (small, large) = (cfg.gan.gan.size, cfg.largest_image());
    if gans.sets.is_empty() || large == small {
        return Ok(None);
    }
    let train_at = |side: i64| loaded.sources(side).train;
    let mut quality =
        crate::Quality::with_network(device, train_at(small).channels(), cfg.gan.extractor)?;
    let (Some(a), Some(b)) = (
        quality.class_features_of("all-large", train_at(large))?,
        quality.class_features_of("all-small", train_at(small))?,
    ) else {
        return Ok(None);
    };
    let gap = crate::gate::separability(&a, &b);
    if gap.is_none() {
        // Said even without progress output: a missing measure is not a zero gap.
        eprintln!(
            "resolution gap: the probe separating {large}² from {small}² images could not be fitted; not reported"
        );
    }
    Ok(gap.map(|probe_auc| crate::ResolutionGap {
        large,
        small,
        probe_auc,
    }))
}

/// Never replace another configuration's results silently.
fn refuse_other_results(cfg: &CheckedConfig, layout: &Layout) -> Result<()> {
    let Ok(bytes) = std::fs::read(layout.results()) else {
        return Ok(());
    };
    let same = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("config").cloned())
        .zip(serde_json::to_value(&**cfg).ok())
        .is_some_and(|(a, b)| a == b);
    if same {
        Ok(())
    } else {
        Err(ExperimentError::OtherResults {
            dir: layout.root().into(),
        })
    }
}

/// First 12 hex digits of the BLAKE3 of `parts`' JSON: the key of a GAN or cell folder.
pub(crate) fn hash_of<T: Serialize>(parts: &T) -> Result<String> {
    let json = serde_json::to_string(parts).map_err(|e| ExperimentError::json("a cache key", e))?;
    Ok(blake3::hash(json.as_bytes()).to_hex()[..12].to_string())
}
