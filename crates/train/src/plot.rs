//! Line plots as PNG (loss curves, ROC curves), with plotters' pure-Rust bitmap backend.
//!
//! Text needs a TrueType font: the first DejaVu / Liberation sans font found in the usual
//! system folders is registered once. Without one, the plot is drawn without labels.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::{Result, TrainError};

const FONT_CANDIDATES: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Whether a font could be registered for text.
fn font_available() -> bool {
    static FONT: OnceLock<bool> = OnceLock::new();
    *FONT.get_or_init(|| {
        FONT_CANDIDATES.iter().any(|p| {
            std::fs::read(p).ok().is_some_and(|bytes| {
                // plotters keeps fonts for the life of the process.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
            })
        })
    })
}

/// Plots named `(x, y)` series into a PNG at `path` (written via a temporary file). Without a
/// system font the plot is drawn without text.
pub fn line_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<()> {
    let curves: Vec<Curve<'_>> = series
        .iter()
        .map(|(name, pts)| Curve {
            name,
            points: pts.clone(),
            intervals: Vec::new(),
        })
        .collect();
    render(path, title, x_label, &curves)
}

/// One point with its interval: `(x, y, lower, upper)`.
pub type IntervalPoint = (f64, f64, f64, f64);

/// Plots named series of `(x, y, lower, upper)` as lines with an error bar at each point, and a
/// dashed line at y = 0 when it is in range (for differences with their intervals).
pub fn interval_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    series: &[(&str, Vec<IntervalPoint>)],
) -> Result<()> {
    interval_plot_scaled(path, title, x_label, XScale::Linear, series)
}

/// How the x axis is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XScale {
    /// Values as given.
    Linear,
    /// Positive values (counts, sizes) on a log2 axis whose ticks are labelled with the values
    /// themselves; a series' non-positive x values are left out.
    Log2,
}

/// [`interval_plot`] with a choice of x axis: [`XScale::Log2`] suits learning curves, whose
/// sizes double.
pub fn interval_plot_scaled(
    path: &Path,
    title: &str,
    x_label: &str,
    x_scale: XScale,
    series: &[(&str, Vec<IntervalPoint>)],
) -> Result<()> {
    let to_axis = |x: f64| match x_scale {
        XScale::Linear => x,
        XScale::Log2 if x > 0.0 => x.log2(),
        XScale::Log2 => f64::NAN,
    };
    let curves: Vec<Curve<'_>> = series
        .iter()
        .map(|(name, pts)| {
            let pts: Vec<IntervalPoint> = pts
                .iter()
                .map(|&(x, y, lo, hi)| (to_axis(x), y, lo, hi))
                .filter(|p| p.0.is_finite())
                .collect();
            Curve {
                name,
                points: pts.iter().map(|&(x, y, _, _)| (x, y)).collect(),
                intervals: pts,
            }
        })
        .collect();
    let tmp = tmp_path(path);
    let drawn = draw(
        path,
        &tmp,
        title,
        x_label,
        x_scale,
        &curves,
        font_available(),
    );
    if drawn.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    drawn
}

/// Draws `curves` into a temporary file beside `path`, then renames it there (removed on
/// failure).
fn render(path: &Path, title: &str, x_label: &str, curves: &[Curve<'_>]) -> Result<()> {
    let tmp = tmp_path(path);
    let drawn = draw(
        path,
        &tmp,
        title,
        x_label,
        XScale::Linear,
        curves,
        font_available(),
    );
    if drawn.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    drawn
}

/// One named line, and optionally an error bar `(x, y, lower, upper)` per point.
struct Curve<'a> {
    name: &'a str,
    points: Vec<(f64, f64)>,
    intervals: Vec<IntervalPoint>,
}

/// A temporary file beside `path`, unique to this process and call.
fn tmp_path(path: &Path) -> std::path::PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    path.with_extension(format!("tmp{}-{n}.png", std::process::id()))
}

fn draw(
    path: &Path,
    tmp: &Path,
    title: &str,
    x_label: &str,
    x_scale: XScale,
    series: &[Curve<'_>],
    text: bool,
) -> Result<()> {
    let plot_err = |e: String| TrainError::Plot {
        path: path.into(),
        reason: e,
    };
    let (x0, x1, y0, y1) =
        extent(series).ok_or_else(|| plot_err("no finite points to plot".into()))?;
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    {
        let root = BitMapBackend::new(tmp, (800, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(e.to_string()))?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .margin(12)
            .x_label_area_size(if text { 36 } else { 8 })
            .y_label_area_size(if text { 56 } else { 8 });
        if text {
            builder.caption(title, ("sans-serif", 22));
        }
        let mut chart = builder
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(|e| plot_err(e.to_string()))?;
        let mut mesh = chart.configure_mesh();
        let count_label = |v: &f64| format!("{:.0}", v.exp2());
        if x_scale == XScale::Log2 {
            mesh.x_label_formatter(&count_label);
        }
        if text {
            mesh.x_desc(x_label);
        } else {
            // Any text needs a font: no labels, no axis descriptions.
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(|e| plot_err(e.to_string()))?;
        if series.iter().any(|c| !c.intervals.is_empty()) && y0 - pad < 0.0 && 0.0 < y1 + pad {
            let zero = DashedLineSeries::new(vec![(x0, 0.0), (x1, 0.0)], 6, 4, BLACK.into());
            chart
                .draw_series(zero)
                .map_err(|e| plot_err(e.to_string()))?;
        }
        // bars of several series at one x are set a little apart
        let n = series.len() as f64;
        let shift = |i: usize| (i as f64 - (n - 1.0) / 2.0) * (x1 - x0) * 0.008;
        for (i, c) in series.iter().enumerate() {
            draw_curve(&mut chart, c, i, shift(i), text).map_err(plot_err)?;
        }
        if text {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| plot_err(e.to_string()))?;
        }
        root.present().map_err(|e| plot_err(e.to_string()))?;
    }
    std::fs::rename(tmp, path).map_err(|e| plot_err(e.to_string()))
}

/// Draws curve `i` of a plot: its error bars and point markers set `shift` apart from the
/// other curves', its line (the first, the baseline, heavier) and its legend entry.
fn draw_curve(
    chart: &mut ChartContext<
        '_,
        BitMapBackend<'_>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    c: &Curve<'_>,
    i: usize,
    shift: f64,
    text: bool,
) -> std::result::Result<(), String> {
    let color = colour(i);
    let bars = c
        .intervals
        .iter()
        .map(|&(x, y, lo, hi)| ErrorBar::new_vertical(x + shift, lo, y, hi, color, 8));
    chart.draw_series(bars).map_err(|e| e.to_string())?;
    // a marker at each point, so that a series of one point shows
    let markers = c
        .points
        .iter()
        .map(|&(x, y)| Circle::new((x + shift, y), 3, color.filled()));
    chart.draw_series(markers).map_err(|e| e.to_string())?;
    let width = if i == 0 { 3 } else { 2 };
    let line = LineSeries::new(c.points.iter().copied(), color.stroke_width(width));
    let drawn = chart.draw_series(line).map_err(|e| e.to_string())?;
    if text {
        drawn.label(c.name).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
        });
    }
    Ok(())
}

/// Colour `i` of a ten-colour qualitative palette (Tableau 10: distinct, no pale yellow),
/// repeating after ten series.
fn colour(i: usize) -> RGBAColor {
    const TABLEAU10: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = TABLEAU10[i % TABLEAU10.len()];
    RGBColor(r, g, b).to_rgba()
}

/// The smallest box holding every finite point and interval bound of `series`
/// (`x0, x1, y0, y1`; at least 1 wide), or `None` when there is none.
fn extent(series: &[Curve<'_>]) -> Option<(f64, f64, f64, f64)> {
    let bounds = series.iter().flat_map(|c| {
        c.intervals
            .iter()
            .flat_map(|&(x, _, lo, hi)| [(x, lo), (x, hi)])
    });
    let points = series
        .iter()
        .flat_map(|c| c.points.iter().copied())
        .chain(bounds)
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        return None;
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    Some((x0, x1, y0, y1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_with_and_without_a_font() {
        let dir = std::env::temp_dir().join(format!("ganaug-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let series = [Curve {
            name: "a",
            points: vec![(0.0, 1.0), (1.0, 0.5), (2.0, 0.25)],
            intervals: vec![(0.0, 1.0, 0.8, 1.2), (1.0, 0.5, -0.1, 0.9)],
        }];
        for text in [false, font_available()] {
            let p = dir.join(format!("plot-{text}.png"));
            let drawn = draw(
                &p,
                &tmp_path(&p),
                "title",
                "epoch",
                XScale::Linear,
                &series,
                text,
            );
            drawn.expect("plot");
            assert!(p.is_file());
        }
        let p = dir.join("intervals.png");
        interval_plot(&p, "Δ", "ratio", &[("b", vec![(0.0, 0.1, -0.1, 0.3)])]).expect("plot");
        assert!(p.is_file());
        // a log2 axis drops the points it cannot place, and refuses when none is left
        let p = dir.join("log2.png");
        let curve = vec![
            (0.0, 0.5, 0.4, 0.6),
            (64.0, 0.7, 0.6, 0.8),
            (512.0, 0.8, 0.7, 0.9),
        ];
        interval_plot_scaled(&p, "curve", "images", XScale::Log2, &[("c", curve)]).expect("plot");
        assert!(p.is_file());
        let none = vec![(0.0, 0.5, 0.4, 0.6), (-2.0, 0.7, 0.6, 0.8)];
        assert!(matches!(
            interval_plot_scaled(&p, "t", "x", XScale::Log2, &[("c", none)]),
            Err(TrainError::Plot { .. })
        ));
        let empty = [Curve {
            name: "nan",
            points: vec![(f64::NAN, 1.0)],
            intervals: Vec::new(),
        }];
        assert!(matches!(
            draw(
                &dir.join("e.png"),
                &dir.join("e.tmp.png"),
                "t",
                "x",
                XScale::Linear,
                &empty,
                false
            ),
            Err(TrainError::Plot { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
