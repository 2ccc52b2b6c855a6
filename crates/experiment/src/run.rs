//! The experiment's sequence: data at every size, the GAN stage, the cells, aggregation, outputs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use tch::Device;

use ganaug_data::{DataSource, ImageSpec};

use crate::gans::{run_gans, StageContext};
use crate::results::{BUILD_COMMIT, SCHEMA_VERSION};
use crate::{aggregate, cells, report, CheckedConfig, ExperimentError, ReproResults, Result};

/// Runs (or resumes) the experiment into `out`. `progress` shows progress bars.
///
/// A folder that holds the results of another configuration is refused before any work;
/// finished GANs and cells in it are reused.
pub fn run(
    cfg: &CheckedConfig,
    data: &DataSource,
    out: &Path,
    device: Device,
    progress: bool,
) -> Result<ReproResults> {
    let started = Instant::now();
    refuse_other_results(cfg, out)?;
    std::fs::create_dir_all(out).map_err(|e| ExperimentError::io(out, e))?;
    let ctx = StageContext {
        out,
        device,
        progress,
    };
    let (splits, data_id) = load_splits(cfg, data, device)?;
    let base = &splits[&cfg.gan.gan.size];
    ctx.say(format!(
        "data: {} (train {}, val {}, test {})",
        base.train.description,
        base.train.len(),
        base.val.len(),
        base.test.len()
    ));
    let gans = run_gans(cfg, &base.train, &data_id, &ctx)?;
    let cas = classification_accuracy_scores(&gans, base, device)?;
    let cells = cells::run_cells(cfg, &splits, &gans, &data_id, &ctx)?;
    let aggregates = aggregate::aggregate(cfg, &cells)?;
    let results = ReproResults {
        schema_version: SCHEMA_VERSION,
        commit: BUILD_COMMIT.map(String::from),
        config: (**cfg).clone(),
        data: data.describe(),
        data_fingerprint: data_id,
        synthetic_data: data.is_synthetic(),
        test_counts: base.test.class_counts(),
        class_names: base.train.class_names.clone(),
        device: format!("{device:?}"),
        gans: gans.gans,
        synthetic: gans.synthetic,
        refused: gans
            .refused
            .into_iter()
            .map(|(gan, reasons)| crate::RefusedSet { gan, reasons })
            .collect(),
        cas,
        cells,
        aggregates,
        seconds: started.elapsed().as_secs_f64(),
    };
    report::write_outputs(&results, out)?;
    Ok(results)
}

/// The data at every image side `cfg` needs (the decode cache makes reloading cheap), by side,
/// and the fingerprint of the data at the GANs' side.
pub fn load_splits(
    cfg: &CheckedConfig,
    data: &DataSource,
    device: Device,
) -> Result<(BTreeMap<i64, ganaug_data::Splits>, String)> {
    let mut splits = BTreeMap::new();
    for s in cfg.image_sizes() {
        let spec = ImageSpec {
            policy: cfg.resize,
            ..ImageSpec::with_size(u32::try_from(s).unwrap_or(0))
        };
        splits.insert(s, data.load_spec(spec, device)?);
    }
    let data_id = data.fingerprint(cfg.gan.gan.size)?;
    Ok((splits, data_id))
}

/// The CAS of every synthetic set and of the real training split (the reference), at the
/// GANs' size.
fn classification_accuracy_scores(
    gans: &crate::GanStage,
    base: &ganaug_data::Splits,
    device: Device,
) -> Result<Vec<crate::quality::Cas>> {
    if gans.sets.is_empty() {
        return Ok(Vec::new());
    }
    let mut quality = crate::Quality::new(device)?;
    let mut out = Vec::new();
    if let Some(c) = quality.cas("real", &base.train, &base.test)? {
        out.push(c);
    }
    for ((which, r), set) in &gans.sets {
        let name = if *r == 0 {
            which.name().to_string()
        } else {
            format!("{which}/r{r}")
        };
        if let Some(c) = quality.cas(&name, set, &base.test)? {
            out.push(c);
        }
    }
    Ok(out)
}

/// Never replace another configuration's results silently.
fn refuse_other_results(cfg: &CheckedConfig, out: &Path) -> Result<()> {
    let Ok(bytes) = std::fs::read(out.join("results.json")) else {
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
        Err(ExperimentError::OtherResults { dir: out.into() })
    }
}

/// First 12 hex digits of the BLAKE3 of `parts`' JSON: the key of a GAN or cell folder.
pub(crate) fn hash_of<T: Serialize>(parts: &T) -> Result<String> {
    let json = serde_json::to_string(parts).map_err(|e| ExperimentError::json("a cache key", e))?;
    Ok(blake3::hash(json.as_bytes()).to_hex()[..12].to_string())
}
