//! ROC curves per model and the GANs' loss curves beside the report.

use std::path::Path;

use crate::layout::Layout;
use crate::{ExperimentError, ReproResults, Result};

#[cfg(feature = "plot")]
fn plot(path: &Path, title: &str, series: &[(&str, Vec<(f64, f64)>)]) -> Result<()> {
    ganaug_train::plot::line_plot(path, title, "false positive rate", series).map_err(|source| {
        ExperimentError::Plot {
            path: path.into(),
            source: Box::new(source),
        }
    })
}

#[cfg(not(feature = "plot"))]
fn plot(_path: &Path, _title: &str, _series: &[(&str, Vec<(f64, f64)>)]) -> Result<()> {
    Ok(())
}

/// One ROC plot per model (seed 0, one curve per scenario): `roc_<model>.png` (with the
/// `plot` feature).
pub fn roc_plots(r: &ReproResults, out: &Path) -> Result<()> {
    for plan in &r.config.models {
        let series: Vec<(&str, Vec<(f64, f64)>)> = r
            .cells
            .iter()
            .filter(|c| c.model == plan.kind && c.seed == 0 && !c.roc_fpr.is_empty())
            .map(|c| {
                let curve = c.roc_fpr.iter().copied().zip(c.roc_tpr.iter().copied());
                (c.scenario.title(), curve.collect())
            })
            .collect();
        if series.is_empty() {
            continue;
        }
        let path = Layout::new(out).roc_plot(plan.kind);
        let positive = r.class_names.first().map_or("positive", String::as_str);
        let title = format!("ROC ({positive}), {}", plan.kind.display_name());
        plot(&path, &title, &series)?;
    }
    Ok(())
}

/// Copies each GAN's `losses.png` to `gan_losses_<name>.png`.
pub fn copy_gan_losses(r: &ReproResults, out: &Path) -> Result<()> {
    for g in &r.gans {
        let layout = Layout::new(out);
        let src = Layout::losses_in(&out.join(&g.dir));
        let dst = layout.gan_losses_plot(&g.name);
        if src.is_file() {
            std::fs::copy(&src, &dst).map_err(|e| ExperimentError::io(&dst, e))?;
        }
    }
    Ok(())
}
