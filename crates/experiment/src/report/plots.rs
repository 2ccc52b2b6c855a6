//! ROC curves per model and the GANs' loss curves beside the report.

use std::path::Path;

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
        let path = out.join(format!("roc_{}.png", plan.kind));
        let positive = r.class_names.first().map_or("positive", String::as_str);
        let title = format!("ROC ({positive}), {}", plan.kind.display_name());
        plot(&path, &title, &series)?;
    }
    Ok(())
}

/// Copies each GAN's `losses.png` to `gan_losses_<name>.png`.
pub fn copy_gan_losses(r: &ReproResults, out: &Path) -> Result<()> {
    for g in &r.gans {
        let src = out.join(&g.dir).join("losses.png");
        let dst = out.join(format!("gan_losses_{}.png", g.name.replace('/', "_")));
        if src.is_file() {
            std::fs::copy(&src, &dst).map_err(|e| ExperimentError::io(&dst, e))?;
        }
    }
    Ok(())
}
