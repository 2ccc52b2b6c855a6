//! The paired effect of a synthetic set from any generator on a classifier (`ganaug assess
//! --effect MODEL`): the experiment's own cells — `raw` and `gan`, the user's set standing in
//! for the per-class GANs' — over the configuration's seeds, each seed's two cells tested on the
//! same test images, compared as the experiment compares its scenarios (a bootstrap over seeds
//! and test images, McNemar on seed 0). Raw cells are keyed as the experiment's, so those of an
//! earlier run into the same folder are reused.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::Device;

use ganaug_data::{DataSource, TensorDataset};
use ganaug_train::Observer;

use crate::gans::{GanStage, StageContext};
use crate::results::{Aggregate, CellResult};
use crate::{aggregate, hash_of, CheckedConfig, ExperimentError, Result, Scenario, Synthetic};

/// What the effect run found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// The classifier.
    pub model: String,
    /// Seeds (cells per scenario).
    pub seeds: usize,
    /// The classifier on the real training split alone, over the seeds.
    pub raw: Aggregate,
    /// With the synthetic set added, over the seeds, with its paired comparison with `raw`.
    pub with_set: Aggregate,
    /// Every cell (both scenarios, every seed).
    pub cells: Vec<CellResult>,
    /// Real images the cells had (training and validation): where the run stands on a
    /// learning curve.
    #[serde(default)]
    pub real_images: usize,
    /// The classifier's plan (what a learning curve it is read against must share).
    #[serde(default)]
    pub plan: Option<crate::ModelPlan>,
    /// The set's worth in real images, when read against a scarcity study ([`worth_of_set`]).
    #[serde(default)]
    pub worth: Option<SetWorth>,
}

/// A synthetic set's worth in real images, read off a learning curve: the raw cells of a
/// scarcity study's smaller subsets (same classifier, same test split) and the effect run's own
/// raw cells at the whole data, the set's cells read as the curve there plus their paired
/// difference (seed `k` paired with the study's resample `k`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetWorth {
    /// The study's results file.
    pub study: String,
    /// The commit and preset that produced it.
    pub study_commit: Option<String>,
    /// The learning curve: real images and raw accuracy at each point (the last is this run's).
    pub curve: Vec<(f64, f64)>,
    /// The worth with its 95% interval (bootstrap over test images and resamples).
    pub worth: ganaug_metrics::WorthEstimate,
}

/// `effect`'s set read against the scarcity study in `study` (a `results.json` of `ganaug
/// reproduce --preset scarcity` or any preset with a `[scarcity]` table, on the same data):
/// typed errors when the study has no study, no raw cells of the effect's classifier below the
/// whole data, or another test split.
pub fn worth_of_set(effect: &Effect, study: &crate::ReproResults, name: &str) -> Result<SetWorth> {
    use crate::scarcity::run::{correctness, outcomes};
    use crate::scarcity::Arm;
    let bad =
        |reason: String| ExperimentError::config("assess --worth", format!("{name}: {reason}"));
    let Some(sc) = &study.scarcity else {
        return Err(bad(
            "no scarcity study in it (`ganaug reproduce --preset scarcity` makes one)".into(),
        ));
    };
    let by_seed = |s: Scenario| {
        let mut v: Vec<&CellResult> = effect.cells.iter().filter(|c| c.scenario == s).collect();
        v.sort_by_key(|c| c.seed);
        v
    };
    let (raw, with_set) = (by_seed(Scenario::Raw), by_seed(Scenario::Gan));
    let (Some(first), false) = (raw.first(), with_set.is_empty()) else {
        return Err(bad("the effect run has no cells to read".into()));
    };
    let theirs = study.config.models.iter().find(|p| p.kind == first.model);
    if let (Some(mine), Some(theirs)) = (&effect.plan, theirs) {
        if mine != theirs {
            return Err(bad(format!(
                "its {} is trained another way than this run's (another preset's plan: pass the study's preset or configuration)",
                first.model
            )));
        }
    }
    let whole = effect.real_images as f64;
    let mut curve = Vec::new();
    for &fraction in &sc.plan.fractions {
        let mut cells: Vec<_> = sc
            .cells
            .iter()
            .filter(|c| c.fraction == fraction && c.arm == Arm::Raw && c.cell.model == first.model)
            .collect();
        cells.sort_by_key(|c| c.resample);
        let Some(c0) = cells.first() else { continue };
        if c0.cell.labels != first.labels {
            return Err(bad(format!(
                "its test split is not this data's ({} test images, {} here, or other labels)",
                c0.cell.labels.len(),
                first.labels.len()
            )));
        }
        let o = outcomes(&cells);
        if o.real_images < whole * (1.0 - 1e-9) {
            curve.push(o);
        }
    }
    if curve.is_empty() {
        return Err(bad(format!(
            "no raw {} cells on subsets smaller than this data ({} real images)",
            first.model, effect.real_images
        )));
    }
    let read = |cells: &[&CellResult]| ganaug_metrics::Outcomes {
        real_images: whole,
        by_resample: cells.iter().map(|c| correctness(c)).collect(),
    };
    curve.push(read(&raw));
    let worth = ganaug_metrics::worth(
        &curve,
        &read(&with_set),
        &ganaug_metrics::BootstrapConfig::default(),
    )
    .map_err(ExperimentError::Aggregate)?;
    Ok(SetWorth {
        study: name.into(),
        study_commit: study.commit.clone(),
        curve: curve
            .iter()
            .map(|o| (o.real_images, o.accuracy()))
            .collect(),
        worth,
    })
}

/// Trains and tests `cfg`'s first model on raw data and with `set` added (labels in the real
/// data's classes, images at the GANs' side), `cfg.seeds` seeds each, into `out`; the cells'
/// real images streamed from the decode cache as `streaming` says (as `reproduce --stream`).
pub fn effect_of_set(
    cfg: &CheckedConfig,
    data: &DataSource,
    set: &TensorDataset,
    out: &Path,
    device: Device,
    observer: &dyn Observer,
    streaming: ganaug_data::Streaming,
) -> Result<Effect> {
    let Some(plan) = cfg.models.first() else {
        return Err(ExperimentError::config(
            "assess",
            "no classifier to measure the effect on",
        ));
    };
    let mut only = (**cfg).clone();
    only.models = vec![plan.clone()];
    only.scenarios = vec![Scenario::Raw, Scenario::Gan];
    only.scarcity = None;
    only.gan.replicas = 1;
    let cfg = only.check()?;
    let loaded = crate::run::load_sizes(&cfg, data, device, &cfg.image_sizes(), streaming)?;
    // the set's key: its pixels and labels (a changed folder is another set)
    let pixels = Vec::<f32>::try_from(&set.images.flatten(0, -1).to_device(Device::Cpu))
        .map_err(ganaug_data::DataError::from)?;
    let labels = Vec::<i64>::try_from(&set.labels.to_device(Device::Cpu))
        .map_err(ganaug_data::DataError::from)?;
    let bytes: Vec<u8> = pixels.iter().flat_map(|v| v.to_le_bytes()).collect();
    let key = hash_of(&(
        "assessed set",
        blake3::hash(&bytes).to_hex().to_string(),
        labels,
    ))?;
    let mut stage = GanStage {
        replicas: 1,
        ..GanStage::default()
    };
    stage.keys.insert((Synthetic::PerClass, 0), key);
    stage
        .sets
        .insert((Synthetic::PerClass, 0), set.shallow_clone().into());
    let ctx = StageContext::alone(out, device, observer)?;
    let run = crate::run_cells(
        &cfg,
        &loaded.splits,
        loaded.streams.as_ref(),
        &stage,
        &loaded.data_id,
        &ctx,
    )?;
    let aggregates = aggregate(&cfg, &run.cells)?;
    let find = |s: Scenario| aggregates.iter().find(|a| a.scenario == s).cloned();
    let (Some(raw), Some(with_set)) = (find(Scenario::Raw), find(Scenario::Gan)) else {
        return Err(ExperimentError::config(
            "assess",
            "the effect run finished without both scenarios' cells",
        ));
    };
    let base = loaded.sources(cfg.gan.gan.size);
    Ok(Effect {
        model: plan.kind.display_name().to_string(),
        seeds: cfg.seeds,
        raw,
        with_set,
        cells: run.cells,
        real_images: base.train.len() + base.val.len(),
        plan: Some(plan.clone()),
        worth: None,
    })
}

/// The effect in words (a Markdown section).
pub fn effect_markdown(e: &Effect) -> String {
    let acc = |a: &Aggregate| {
        let sd = a
            .accuracy
            .sd
            .map_or(String::new(), |s| format!(" ± {s:.3}"));
        format!("{:.3}{sd}", a.accuracy.mean)
    };
    let mut s = format!(
        "\n## Effect on {} ({} seed{})\n\nTest accuracy on the real data alone {}; with the synthetic images added {}.",
        e.model,
        e.seeds,
        if e.seeds == 1 { "" } else { "s" },
        acc(&e.raw),
        acc(&e.with_set)
    );
    if let Some(p) = &e.with_set.vs_raw {
        let ci = match (p.accuracy_diff.lower, p.accuracy_diff.upper) {
            (Some(l), Some(u)) => format!(" (95% interval {l:+.3} to {u:+.3})"),
            _ => String::new(),
        };
        let verdict = if p.significant_gain() {
            "a gain: the interval lies above zero"
        } else if p.significant_loss() {
            "a loss: the interval lies below zero"
        } else {
            "no difference the test can tell from zero"
        };
        s += &format!(
            " Paired difference {:+.3}{ci} over {} seed(s), bootstrap p {}, McNemar p (seed 0) {:.3}: {verdict}.",
            p.accuracy_diff.value,
            p.seeds,
            p.p_value.map_or("—".into(), |v| format!("{v:.3}")),
            p.mcnemar_p
        );
    }
    s.push('\n');
    if let Some(w) = &e.worth {
        let curve: Vec<String> = w
            .curve
            .iter()
            .map(|(n, a)| format!("{n:.0} → {a:.3}"))
            .collect();
        s += &format!(
            "\nWorth in real images: **{}** (95% interval {} to {}), read off the learning curve of raw cells (real images → accuracy: {}; the last point is this run's own raw cells, the others the smaller subsets of the scarcity study {}{}). A positive number is the real images the classifier would need to reach the accuracy the set gives; \"beyond the curve\" means better than the most real images measured; the curve is not extrapolated.\n",
            w.worth.value,
            w.worth.lower,
            w.worth.upper,
            curve.join(", "),
            w.study,
            w.study_commit.as_ref().map_or(String::new(), |c| format!(", commit {c}")),
        );
    }
    s
}
