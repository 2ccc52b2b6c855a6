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
}

/// Trains and tests `cfg`'s first model on raw data and with `set` added (labels in the real
/// data's classes, images at the GANs' side), `cfg.seeds` seeds each, into `out`.
pub fn effect_of_set(
    cfg: &CheckedConfig,
    data: &DataSource,
    set: &TensorDataset,
    out: &Path,
    device: Device,
    observer: &dyn Observer,
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
    let loaded = crate::load_splits(&cfg, data, device)?;
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
        .insert((Synthetic::PerClass, 0), set.shallow_clone());
    let ctx = StageContext::alone(out, device, observer)?;
    let run = crate::run_cells(&cfg, &loaded.splits, &stage, &loaded.data_id, &ctx)?;
    let aggregates = aggregate(&cfg, &run.cells)?;
    let find = |s: Scenario| aggregates.iter().find(|a| a.scenario == s).cloned();
    let (Some(raw), Some(with_set)) = (find(Scenario::Raw), find(Scenario::Gan)) else {
        return Err(ExperimentError::config(
            "assess",
            "the effect run finished without both scenarios' cells",
        ));
    };
    Ok(Effect {
        model: plan.kind.display_name().to_string(),
        seeds: cfg.seeds,
        raw,
        with_set,
        cells: run.cells,
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
    s
}
