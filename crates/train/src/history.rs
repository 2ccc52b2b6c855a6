//! A run's history as `history.json`, its curves as a PNG (with the `plot` feature), and the
//! epoch progress bar every trainer shows.

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::{Result, RunDir, TrainError};

/// Named `(x, y)` series for one plot of a run's history.
#[derive(Debug, Clone)]
pub struct Curves<'a> {
    /// File name in the run folder, e.g. `losses.png`.
    pub file: &'a str,
    /// Plot title.
    pub title: &'a str,
    /// Label of the x axis.
    pub x_label: &'a str,
    /// The series.
    pub series: Vec<(&'a str, Vec<(f64, f64)>)>,
}

/// Writes `history` to the run's `history.json` (atomically) and plots `curves` beside it.
/// Returns whether a plot was written: without the `plot` feature only the JSON is.
pub fn write_history<T: Serialize>(run: &RunDir, history: &T, curves: &Curves<'_>) -> Result<bool> {
    let json = serde_json::to_vec_pretty(history).map_err(|source| TrainError::Json {
        what: "the history",
        source,
    })?;
    ganaug_data::io::write_atomic(&run.history_file(), &json)?;
    plot_curves(run, curves)
}

#[cfg(feature = "plot")]
fn plot_curves(run: &RunDir, curves: &Curves<'_>) -> Result<bool> {
    crate::plot::line_plot(
        &run.join(curves.file),
        curves.title,
        curves.x_label,
        &curves.series,
    )?;
    Ok(true)
}

#[cfg(not(feature = "plot"))]
fn plot_curves(_run: &RunDir, _curves: &Curves<'_>) -> Result<bool> {
    Ok(false)
}

/// The epoch progress bar: `prefix [=====>    ] epoch done/total [elapsed < eta] message`;
/// hidden when `show` is false.
pub fn epoch_bar(show: bool, prefix: &str, done: usize, total: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    bar.set_position(done as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] epoch {pos}/{len} [{elapsed} < {eta}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar
}
