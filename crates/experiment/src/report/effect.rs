//! What the synthetic images did: each synthetic scenario against raw data and against classic
//! augmentation over seeds, the verdict on the target, and — when nothing helped — the measures
//! that say why.

use std::fmt::Write;

use ganaug_models::ModelKind;

use crate::{Estimate, Paired, ReproResults, Scenario};

/// The gain the synthetic images should bring the best model (accuracy, interval above 0).
pub const TARGET_GAIN: f64 = 0.02;

/// `+0.012 [-0.004, +0.028]`: a difference with its interval.
pub(crate) fn diff(e: &Estimate) -> String {
    match (e.lower, e.upper) {
        (Some(lo), Some(hi)) => format!("{:+.3} [{lo:+.3}, {hi:+.3}]", e.value),
        _ => format!("{:+.3}", e.value),
    }
}

fn paired_cells(p: Option<&Paired>) -> (String, String) {
    match p {
        Some(p) => (
            diff(&p.accuracy_diff),
            p.auc_diff.as_ref().map_or("—".into(), diff),
        ),
        None => ("—".into(), "—".into()),
    }
}

/// The model with the best mean raw accuracy (the one the synthetic images must improve).
pub fn best_model(r: &ReproResults) -> Option<ModelKind> {
    r.aggregates
        .iter()
        .filter(|a| a.scenario == Scenario::Raw)
        .max_by(|a, b| a.accuracy.mean.total_cmp(&b.accuracy.mean))
        .map(|a| a.model)
}

/// The section: table, verdict, and the measures behind it.
pub fn effect_section(s: &mut String, r: &ReproResults) {
    let synthetic: Vec<Scenario> = r
        .config
        .scenarios
        .iter()
        .copied()
        .filter(|x| x.synthetic().is_some())
        .collect();
    if synthetic.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n## What the synthetic images did (paired, over seeds)\n"
    );
    let _ = writeln!(s, "Mean over seeds of the per-seed difference (this scenario − the other, same model and seed), with a 95% interval from a bootstrap that resamples seeds and test images together.\n");
    let _ = writeln!(s, "| Model | Scenario | seeds | Δacc vs raw | ΔAUC vs raw | Δacc vs classic | ΔAUC vs classic |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    let mut ran = false;
    for plan in &r.config.models {
        for &sc in &synthetic {
            let Some(a) = r.aggregate(plan.kind, sc) else {
                continue;
            };
            ran = true;
            let (acc_raw, auc_raw) = paired_cells(a.vs_raw.as_ref());
            let (acc_cl, auc_cl) = paired_cells(a.vs_classic.as_ref());
            let seeds = a.vs_raw.as_ref().map_or(0, |p| p.seeds);
            let _ = writeln!(
                s,
                "| {} | {} | {seeds} | {acc_raw} | {auc_raw} | {acc_cl} | {auc_cl} |",
                plan.kind, sc
            );
        }
    }
    if !ran {
        let _ = writeln!(s, "| — | no synthetic scenario ran | | | | | |");
    }
    let _ = writeln!(s, "\n{}", verdict(r, &synthetic));
    why(s, r);
}

/// Whether the target is met, in one paragraph.
fn verdict(r: &ReproResults, synthetic: &[Scenario]) -> String {
    let Some(best) = best_model(r) else {
        return "**Target**: no raw cells, nothing to compare.".into();
    };
    let gains: Vec<Scenario> = synthetic
        .iter()
        .copied()
        .filter(|&sc| {
            r.aggregate(best, sc)
                .and_then(|a| a.vs_raw.as_ref())
                .is_some_and(|p| p.significant_gain() && p.accuracy_diff.value >= TARGET_GAIN)
        })
        .collect();
    let losses: Vec<String> = r
        .aggregates
        .iter()
        .filter(|a| a.scenario.synthetic().is_some())
        .filter(|a| a.vs_raw.as_ref().is_some_and(Paired::significant_loss))
        .map(|a| format!("{} × {}", a.model, a.scenario))
        .collect();
    let met = !gains.is_empty() && losses.is_empty();
    let mut v = format!(
        "**Target** (a synthetic scenario improves the best model, {best}, by ≥ {TARGET_GAIN:+.2} accuracy over raw with the interval above 0, and no synthetic scenario lowers any model significantly): **{}**.",
        if met { "met" } else { "not met" }
    );
    if !gains.is_empty() {
        let names: Vec<&str> = gains.iter().map(|g| g.name()).collect();
        let _ = write!(v, " Gains: {}.", names.join(", "));
    }
    if !losses.is_empty() {
        let _ = write!(v, " Significantly lower than raw: {}.", losses.join(", "));
    }
    let seeds = r
        .aggregates
        .iter()
        .filter_map(|a| a.vs_raw.as_ref().map(|p| p.seeds))
        .max()
        .unwrap_or(0);
    if seeds < 3 {
        let _ = write!(
            v,
            " Only {seeds} seed(s) paired: run with `--seeds 5` before believing either way."
        );
    }
    v
}

/// The measures that explain the verdict: how separable each set is from real images, how
/// much of the real class it covers, and what a classifier learns from it alone.
fn why(s: &mut String, r: &ReproResults) {
    let mut lines = Vec::new();
    for x in &r.synthetic {
        let Some(m) = &x.measures else { continue };
        let probe = match (m.probe_auc, m.probe_auc_real) {
            (Some(a), Some(b)) => format!(
                "a linear probe tells them from real images with AUC {a:.3} (real halves {b:.3})"
            ),
            _ => "real-vs-synthetic probe not measured".into(),
        };
        let fid = m.distances.map_or(String::new(), |d| {
            format!(
                ", FID {:.1} (real {:.1} ± {:.1})",
                d.fid, d.fid_real, d.fid_real_sd
            )
        });
        lines.push(format!(
            "- {} {}: {probe}; recall {:.3} (real {:.3}), coverage {:.3} (real {:.3}), diversity {:.2} (real {:.2}){fid}",
            x.gan,
            x.label(),
            m.synthetic.recall,
            m.real.recall,
            m.synthetic.coverage,
            m.real.coverage,
            m.synthetic.diversity,
            m.real.diversity,
        ));
    }
    if let Some(g) = &r.resolution_gap {
        lines.push(format!(
            "- resolution alone: the same real training images at {}² and through the GANs' {}² are told apart with probe AUC {:.3} (the measures above compare both sides at {}², so their AUC is not this gap)",
            g.large, g.small, g.probe_auc, g.small
        ));
    }
    let real = r.cas.iter().find(|c| c.trained_on == "real");
    for c in r.cas.iter().filter(|c| c.trained_on != "real") {
        let reference = real.map_or(String::new(), |x| {
            format!(" (real training images: {:.3})", x.accuracy)
        });
        lines.push(format!(
            "- a classifier trained on the {} set alone scores {:.3} on the real test images{reference}",
            c.trained_on, c.accuracy
        ));
    }
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nWhy, in the measures (an AUC near 1 means the images teach \"synthetic\" rather than the class; low recall or coverage means they miss most of the real class):\n"
    );
    for l in lines {
        let _ = writeln!(s, "{l}");
    }
}
