//! The run's outputs: `results.json`, `report.md`, the plots, and the README's results table
//! generated from a `results.json`.

mod effect;
mod markdown;
mod plots;
mod readme;

use std::path::Path;

use serde::Serialize;

use ganaug_data::io;

use crate::{Estimate, ExperimentError, ReproResults, Result};

pub(crate) use effect::diff;
pub use effect::{best_model, TARGET_GAIN};
pub use markdown::report_markdown;
pub use readme::{readme_table, replace_readme_table, README_BEGIN, README_END};

/// Writes `v` as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(v)
        .map_err(|e| ExperimentError::json(path.display().to_string(), e))?;
    io::write_atomic(path, &bytes)?;
    Ok(())
}

/// Reads a `results.json`.
pub fn read_results(path: &Path) -> Result<ReproResults> {
    let bytes = std::fs::read(path).map_err(|e| ExperimentError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| ExperimentError::json(path.display().to_string(), e))
}

/// Writes `results.json`, the plots and `report.md` into `out`.
pub fn write_outputs(r: &ReproResults, out: &Path) -> Result<()> {
    let layout = crate::layout::Layout::new(out);
    write_json(&layout.results(), r)?;
    plots::roc_plots(r, out)?;
    plots::copy_gan_losses(r, out)?;
    if let Some(study) = &r.scarcity {
        let models: Vec<_> = r.config.models.iter().map(|m| m.kind).collect();
        crate::scarcity::scarcity_plots(study, &models, out)?;
    }
    let md = report_markdown(r, out);
    io::write_atomic(&layout.report(), md.as_bytes())?;
    Ok(())
}

/// `0.768 [0.705, 0.821]`, or the value alone when it has no interval.
pub fn pct(e: &Estimate) -> String {
    match (e.lower, e.upper) {
        (Some(lo), Some(hi)) => format!("{:.3} [{lo:.3}, {hi:.3}]", e.value),
        _ => format!("{:.3}", e.value),
    }
}
