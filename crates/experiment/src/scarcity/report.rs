//! The study's entries (each model × fraction × arm over resamples: accuracy, the paired
//! difference with raw, the worth in real images), its report section "What the synthetic
//! images are worth" and its plots.

use std::fmt::Write;
use std::path::Path;

use ganaug_models::ModelKind;

use super::run::{outcomes, summary};
use super::{Arm, ScarcityCell, ScarcityEntry, ScarcityResults};
use crate::{CheckedConfig, Result, Synthetic};
use ganaug_metrics::BootstrapConfig;

/// Every model × fraction × arm of the study's cells.
pub(crate) fn entries(study: &ScarcityResults, cfg: &CheckedConfig) -> Result<Vec<ScarcityEntry>> {
    let mut out = Vec::new();
    for plan in &cfg.models {
        let model = plan.kind;
        let of = |f: f64, arm: Arm| -> Vec<&ScarcityCell> {
            let mut v: Vec<&ScarcityCell> = study
                .cells
                .iter()
                .filter(|c| c.cell.model == model && c.fraction == f && c.arm == arm)
                .collect();
            v.sort_by_key(|c| c.resample);
            v
        };
        let curve: Vec<_> = study
            .plan
            .fractions
            .iter()
            .map(|&f| of(f, Arm::Raw))
            .filter(|c| !c.is_empty())
            .map(|c| outcomes(&c))
            .collect();
        for &f in &study.plan.fractions {
            let raw = of(f, Arm::Raw);
            let oracle = of(f, Arm::Oracle);
            let mut arms: Vec<Arm> = study
                .cells
                .iter()
                .filter(|c| c.cell.model == model && c.fraction == f)
                .map(|c| c.arm)
                .collect();
            arms.sort();
            arms.dedup();
            for arm in arms {
                let mine = of(f, arm);
                let mut e = entry(study, (model, f, arm), (&mine, &raw, &oracle), &curve)?;
                // a "then real" cell's last step has the real images only: its synthetic
                // images are those of the arm it continues
                if let Arm::ThenReal(s) = arm {
                    e.added_images = added(&of(f, Arm::Synthetic(s)), &raw);
                }
                out.push(e);
            }
        }
    }
    Ok(out)
}

fn entry(
    study: &ScarcityResults,
    (model, fraction, arm): (ModelKind, f64, Arm),
    (mine, raw, oracle): (&[&ScarcityCell], &[&ScarcityCell], &[&ScarcityCell]),
    curve: &[ganaug_metrics::Outcomes],
) -> Result<ScarcityEntry> {
    let acc: Vec<f64> = mine.iter().map(|c| c.cell.accuracy.value).collect();
    let auc: Vec<f64> = mine
        .iter()
        .filter_map(|c| c.cell.auc.map(|a| a.value))
        .collect();
    let o = outcomes(mine);
    let cells = |v: &[&ScarcityCell]| -> Vec<crate::CellResult> {
        v.iter().map(|c| c.cell.clone()).collect()
    };
    let (mine_c, raw_c) = (cells(mine), cells(raw));
    let delta_vs_raw = if arm == Arm::Raw {
        None
    } else {
        let a: Vec<&crate::CellResult> = mine_c.iter().collect();
        let b: Vec<&crate::CellResult> = raw_c.iter().collect();
        crate::aggregate::paired(&a, &b)?
    };
    // one point is no curve: nothing to read a number of images from
    let worth_real_images = if arm == Arm::Raw || curve.len() < 2 {
        None
    } else {
        Some(
            ganaug_metrics::worth(curve, &o, &BootstrapConfig::default())
                .map_err(crate::ExperimentError::Aggregate)?,
        )
    };
    let oracle_acc = (!oracle.is_empty()).then(|| outcomes(oracle).accuracy());
    let synthetic = matches!(arm, Arm::Synthetic(_) | Arm::ThenReal(_));
    Ok(ScarcityEntry {
        model,
        fraction,
        real_images: o.real_images,
        arm,
        added_images: added(mine, raw),
        accuracy: summary(&acc)?,
        accuracy_interval: o.accuracy_interval(&BootstrapConfig::default()),
        auc: if auc.is_empty() {
            None
        } else {
            Some(summary(&auc)?)
        },
        delta_vs_raw,
        worth_real_images,
        beats_oracle: oracle_acc.filter(|_| synthetic).map(|a| o.accuracy() > a),
        gate: gate_failures(study, fraction, arm, mine),
    })
}

/// The mean number of training images `cells` had beyond their resample's `raw` cell.
fn added(cells: &[&ScarcityCell], raw: &[&ScarcityCell]) -> f64 {
    cells
        .iter()
        .map(|c| {
            let base = raw.iter().find(|r| r.resample == c.resample);
            let base = base.map_or(0, |r| r.cell.train_images);
            c.cell.train_images.saturating_sub(base) as f64
        })
        .sum::<f64>()
        / cells.len().max(1) as f64
}

/// The gate's failures of the sets `arm`'s cells used, by resample and class.
fn gate_failures(study: &ScarcityResults, f: f64, arm: Arm, mine: &[&ScarcityCell]) -> Vec<String> {
    let which: Option<Synthetic> = match arm {
        Arm::Synthetic(s) | Arm::ThenReal(s) => s.synthetic(),
        _ => None,
    };
    let Some(which) = which else {
        return Vec::new();
    };
    let resamples: Vec<u64> = mine.iter().map(|c| c.resample).collect();
    study
        .synthetic
        .iter()
        .filter(|(sf, r, s)| *sf == f && resamples.contains(r) && s.gan == which)
        .filter_map(|(_, r, s)| {
            let m = s.measures.as_ref()?;
            (!m.failures.is_empty()).then(|| format!("r{r} {}: {}", s.class, m.failures.join("; ")))
        })
        .collect()
}

fn worth_text(e: &ScarcityEntry) -> String {
    match &e.worth_real_images {
        None => "—".into(),
        Some(w) => format!("{} [{}, {}]", w.value, w.lower, w.upper),
    }
}

/// The report's section "What the synthetic images are worth".
pub fn scarcity_section(s: &mut String, study: &ScarcityResults, models: &[ModelKind]) {
    let p = &study.plan;
    let _ = writeln!(s, "## What the synthetic images are worth\n");
    let _ = writeln!(
        s,
        "A data-scarcity study: fractions {:?} of each class's training and validation images, {} resampled subsets per fraction ({} with image generators and CNN cells), {} synthetic (or oracle) images per real training image, every generator trained on its subset only. Worth = the extra real images the raw learning curve (measured here) needs to reach the arm's accuracy, interpolated in log n, the arm read as the curve at its own size plus its paired difference with raw; 95% bootstrap interval over test images and resamples, paired. The oracle adds real images from outside the subset: the ceiling of any generator at that ratio.\n",
        p.fractions, p.resamples, p.image_resamples, p.ratio
    );
    for &model in models {
        let entries: Vec<&ScarcityEntry> = study.entries_of(model).collect();
        if entries.is_empty() {
            continue;
        }
        let _ = writeln!(s, "### {}\n", model.display_name());
        let _ = writeln!(s, "| fraction | real images | arm | added | resamples | accuracy (mean ± sd) [95%] | AUC | Δacc vs raw [95%] | worth in real images [95%] | gate |");
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
        for e in &entries {
            let delta = e
                .delta_vs_raw
                .as_ref()
                .map_or("—".into(), |d| crate::report::diff(&d.accuracy_diff));
            let gate = if e.gate.is_empty() {
                if matches!(e.arm, Arm::Synthetic(_) | Arm::ThenReal(_)) {
                    "passed".into()
                } else {
                    "—".into()
                }
            } else {
                format!("{} failure(s)", e.gate.len())
            };
            let _ = writeln!(
                s,
                "| {} | {:.0} | {} | {:.0} | {} | {:.3} ± {:.3} [{:.3}, {:.3}] | {} | {delta} | {} | {gate} |",
                e.fraction,
                e.real_images,
                e.arm,
                e.added_images,
                e.accuracy.n,
                e.accuracy.mean,
                e.accuracy.sd.unwrap_or(0.0),
                e.accuracy_interval.0,
                e.accuracy_interval.1,
                e.auc.as_ref().map_or("—".into(), |a| format!("{:.3}", a.mean)),
                worth_text(e),
            );
        }
        let _ = writeln!(s);
        verdict(s, &entries);
    }
}

/// Whether a generator reached the target: a worth above zero with its interval, at a
/// fraction of a quarter or less; otherwise the oracle's ceiling there.
fn verdict(s: &mut String, entries: &[&ScarcityEntry]) {
    let synthetic = |e: &&&ScarcityEntry| matches!(e.arm, Arm::Synthetic(_) | Arm::ThenReal(_));
    let hits: Vec<String> = entries
        .iter()
        .filter(synthetic)
        .filter(|e| e.fraction <= 0.25)
        .filter(|e| {
            e.worth_real_images
                .is_some_and(|w| w.significantly_positive())
        })
        .map(|e| format!("{} at fraction {} ({})", e.arm, e.fraction, worth_text(e)))
        .collect();
    let tried = entries
        .iter()
        .filter(synthetic)
        .filter(|e| e.fraction <= 0.25 && e.worth_real_images.is_some())
        .count();
    if entries.iter().all(|e| e.worth_real_images.is_none()) {
        let _ = writeln!(
            s,
            "No worth in real images: the raw learning curve needs at least two fractions (compare the arms' Δacc with raw and with the oracle instead).\n"
        );
        return;
    }
    let chance = format!(
        "{} of {tried} synthetic arms at fractions ≤ 0.25 clear zero; with 95% intervals about {:.1} would by chance alone (2.5% each), so hits near that number are leads to confirm with more resamples, not results",
        hits.len(),
        0.025 * tried as f64
    );
    if hits.is_empty() {
        let ceilings: Vec<String> = entries
            .iter()
            .filter(|e| e.arm == Arm::Oracle && e.fraction <= 0.25)
            .map(|e| format!("fraction {}: oracle worth {}", e.fraction, worth_text(e)))
            .collect();
        let _ = writeln!(
            s,
            "No synthetic arm is worth more than zero real images with its interval above 0 at a fraction ≤ 0.25 ({chance}). The ceiling there: {}.\n",
            if ceilings.is_empty() { "no oracle cells".into() } else { ceilings.join("; ") }
        );
    } else {
        let _ = writeln!(
            s,
            "Worth more than zero real images, interval above 0: {} ({chance}).\n",
            hits.join("; ")
        );
    }
}

/// The generators of the study and the gate's measures of their sets, by fraction and family
/// (means over resamples and classes), with the gate's verdicts.
pub fn study_sets_section(s: &mut String, study: &ScarcityResults) {
    let _ = writeln!(s, "### The generators and their sets\n");
    let _ = writeln!(s, "Means over the resamples and classes of each fraction; the real-vs-real values in parentheses. A set fails the gate when a measure falls below its floor (the study uses failed sets anyway, to measure what they are worth).\n");
    let _ = writeln!(s, "| fraction | set | GANs (epochs) | GAN minutes | class sets failing the gate | recall (real) | coverage (real) | real-vs-synthetic probe AUC (real halves) | FID |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for &f in &study.plan.fractions {
        let mut families: Vec<Synthetic> = study
            .synthetic
            .iter()
            .filter(|(sf, _, _)| *sf == f)
            .map(|(_, _, x)| x.gan)
            .collect();
        families.sort();
        families.dedup();
        for which in families {
            let sets: Vec<&crate::SynthSummary> = study
                .synthetic
                .iter()
                .filter(|(sf, _, x)| *sf == f && x.gan == which)
                .map(|(_, _, x)| x)
                .collect();
            let gans: Vec<&crate::GanSummary> = study
                .gans
                .iter()
                .filter(|(gf, _, g)| *gf == f && g.name.starts_with(which.name()))
                .map(|(_, _, g)| g)
                .collect();
            let mean = |v: Vec<f64>| {
                if v.is_empty() {
                    "n/a".to_string()
                } else {
                    format!("{:.3}", v.iter().sum::<f64>() / v.len() as f64)
                }
            };
            let measured: Vec<&crate::SetMeasures> =
                sets.iter().filter_map(|x| x.measures.as_ref()).collect();
            let pick = |g: fn(&crate::SetMeasures) -> Option<f64>| {
                mean(measured.iter().filter_map(|m| g(m)).collect())
            };
            let failing = measured.iter().filter(|m| !m.failures.is_empty()).count();
            let epochs: Vec<String> = {
                let mut e: Vec<usize> = gans.iter().map(|g| g.epochs).collect();
                e.sort_unstable();
                e.dedup();
                e.iter().map(ToString::to_string).collect()
            };
            let _ = writeln!(
                s,
                "| {f} | {which} | {} ({}) | {:.1} | {failing} / {} | {} ({}) | {} ({}) | {} ({}) | {} |",
                gans.len(),
                epochs.join(", "),
                gans.iter().map(|g| g.seconds).sum::<f64>() / 60.0,
                measured.len(),
                pick(|m| Some(m.synthetic.recall)),
                pick(|m| Some(m.real.recall)),
                pick(|m| Some(m.synthetic.coverage)),
                pick(|m| Some(m.real.coverage)),
                pick(|m| m.probe_auc),
                pick(|m| m.probe_auc_real),
                mean(sets.iter().filter_map(|x| x.fid).collect()),
            );
        }
    }
    let _ = writeln!(s);
    let seconds = |g: fn(&super::StageSeconds) -> f64| {
        study.subsets.iter().map(|x| g(&x.seconds)).sum::<f64>() / 60.0
    };
    let _ = writeln!(
        s,
        "Time by stage: image GANs {:.1} min, cells (feature GANs included) {:.1} min, \"then real\" cells {:.1} min, oracle cells {:.1} min.\n",
        seconds(|x| x.gans),
        seconds(|x| x.cells),
        seconds(|x| x.then_real),
        seconds(|x| x.oracle)
    );
}

/// A point with its interval: `(x, y, lower, upper)`.
type IntervalPoint = (f64, f64, f64, f64);

/// A named line of the plot.
type Series = (String, Vec<IntervalPoint>);

/// One plot per model, `scarcity_<model>.png`: accuracy against the real images (log₂ scale),
/// the raw learning curve and every arm, each point with its 95% interval.
pub fn scarcity_plots(study: &ScarcityResults, models: &[ModelKind], out: &Path) -> Result<()> {
    for &model in models {
        let mut series: Vec<Series> = Vec::new();
        for e in study.entries_of(model) {
            let added = if e.arm == Arm::Oracle {
                e.added_images
            } else {
                0.0
            };
            let x = e.real_images + added;
            let point = (
                x,
                e.accuracy.mean,
                e.accuracy_interval.0,
                e.accuracy_interval.1,
            );
            let name = e.arm.to_string();
            match series.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(point),
                None => series.push((name, vec![point])),
            }
        }
        if series.is_empty() {
            continue;
        }
        plot(
            &crate::layout::Layout::new(out).scarcity_plot(model),
            model,
            &series,
        )?;
    }
    Ok(())
}

#[cfg(feature = "plot")]
fn plot(path: &Path, model: ModelKind, series: &[Series]) -> Result<()> {
    let named: Vec<(&str, Vec<IntervalPoint>)> = series
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    let title = format!(
        "{}: test accuracy against real training images",
        model.display_name()
    );
    ganaug_train::plot::interval_plot_scaled(
        path,
        &title,
        "real training + validation images (log scale)",
        ganaug_train::plot::XScale::Log2,
        &named,
    )
    .map_err(|source| crate::ExperimentError::Plot {
        path: path.into(),
        source: Box::new(source),
    })
}

#[cfg(not(feature = "plot"))]
fn plot(_: &Path, _: ModelKind, _: &[Series]) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scarcity::{ScarcityPlan, ScarcityResults};
    use crate::{CellResult, CellStop, Estimate, ReproConfig, Scenario};
    use ganaug_models::StopReason;

    /// A cell of the CNN on 100 test images (50 of each class) whose first `correct` images
    /// are classified right (a collapsed classifier: every image the first class).
    fn cell(scenario: Scenario, seed: u64, correct: usize, collapsed: bool) -> CellResult {
        let labels: Vec<usize> = (0..100).map(|i| i % 2).collect();
        let probs = labels
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                let p = if collapsed {
                    0
                } else if i < correct {
                    l
                } else {
                    1 - l
                };
                if p == 0 {
                    vec![0.9, 0.1]
                } else {
                    vec![0.1, 0.9]
                }
            })
            .collect();
        let e = Estimate {
            value: 0.0,
            lower: None,
            upper: None,
        };
        CellResult {
            model: ModelKind::PaperCnn,
            scenario,
            seed,
            weights: String::new(),
            train_images: 0,
            accuracy: Estimate {
                value: correct as f64 / 100.0,
                ..e
            },
            precision: e,
            recall: e,
            specificity: e,
            f1: e,
            auc: None,
            confusion: Vec::new(),
            epochs: 1,
            best_epoch: 0,
            stop: CellStop::Fit {
                fit: StopReason::MaxEpochs,
                then_real: None,
            },
            seconds: 0.0,
            feature_seconds: 0.0,
            labels,
            probs,
            roc_fpr: Vec::new(),
            roc_tpr: Vec::new(),
            dir: String::new(),
            real_data: None,
        }
    }

    fn study_cell(f: f64, r: u64, arm: Arm, real: usize, c: CellResult) -> ScarcityCell {
        ScarcityCell {
            fraction: f,
            resample: r,
            arm,
            real_images: real,
            extra_real: if arm == Arm::Oracle { 50 } else { 0 },
            data: String::new(),
            cell: c,
        }
    }

    /// On a learning curve of 60%, 70% and 80% at 50, 100 and 200 real images: the oracle at
    /// 50 images plus 50 real ones, at 70%, is worth its 50 images; an arm as good is worth as
    /// much; a collapsed generator's arm (every test image the same class, 50%) is worth no
    /// real image: below the curve, its interval not above zero.
    #[test]
    fn the_oracle_reads_as_its_images_and_a_collapsed_generator_as_nothing() {
        let mut cells = Vec::new();
        for r in 0..3 {
            for (f, x, acc) in [(0.25, 50, 60), (0.5, 100, 70), (1.0, 200, 80)] {
                cells.push(study_cell(
                    f,
                    r,
                    Arm::Raw,
                    x,
                    cell(Scenario::Raw, r, acc, false),
                ));
            }
            cells.push(study_cell(
                0.25,
                r,
                Arm::Oracle,
                50,
                cell(Scenario::Raw, r, 70, false),
            ));
            let gan = Arm::Synthetic(Scenario::Gan);
            cells.push(study_cell(
                0.25,
                r,
                gan,
                50,
                cell(Scenario::Gan, r, 70, false),
            ));
            let edit = Arm::Synthetic(Scenario::Edit);
            cells.push(study_cell(
                0.25,
                r,
                edit,
                50,
                cell(Scenario::Edit, r, 50, true),
            ));
        }
        let study = ScarcityResults {
            plan: ScarcityPlan {
                fractions: vec![0.25, 0.5, 1.0],
                resamples: 3,
                image_resamples: 3,
                ratio: 1.0,
                then_real: Vec::new(),
                finetune_epochs: 1,
                seed: 0,
            },
            subsets: Vec::new(),
            cells,
            entries: Vec::new(),
            gans: Vec::new(),
            synthetic: Vec::new(),
        };
        let cfg = ReproConfig::preset("tiny").expect("tiny");
        let entries = entries(&study, &cfg).expect("entries");
        let get = |arm: Arm| {
            entries
                .iter()
                .find(|e| e.fraction == 0.25 && e.arm == arm)
                .and_then(|e| e.worth_real_images)
                .expect("a worth")
        };
        let oracle = get(Arm::Oracle);
        assert!((oracle.value.rank() - 50.0).abs() < 1e-9, "{oracle:?}");
        let gan = get(Arm::Synthetic(Scenario::Gan));
        assert!((gan.value.rank() - 50.0).abs() < 1e-9, "{gan:?}");
        let collapsed = get(Arm::Synthetic(Scenario::Edit));
        assert!(collapsed.value.rank() <= 0.0, "{collapsed:?}");
        assert!(!collapsed.significantly_positive(), "{collapsed:?}");
        let raw = entries.iter().find(|e| e.arm == Arm::Raw).expect("raw");
        assert!(raw.worth_real_images.is_none());
    }
}
