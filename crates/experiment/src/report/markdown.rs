//! `report.md`: the paper's table with our numbers beside it, every metric with its interval,
//! the paired tests against raw, the GANs and their synthetic sets.

use std::fmt::Write;
use std::path::Path;

use super::pct;
use crate::{CellResult, ReproResults};

/// The whole report as Markdown (`out` is named in its last line).
pub fn report_markdown(r: &ReproResults, out: &Path) -> String {
    let mut s = String::new();
    header(&mut s, r);
    if let Some(study) = &r.scarcity {
        // a study instead of the paper's table
        let models: Vec<_> = r.config.models.iter().map(|m| m.kind).collect();
        crate::scarcity::scarcity_section(&mut s, study, &models);
        crate::scarcity::study_sets_section(&mut s, study);
        let _ = writeln!(
            s,
            "## Plots\n\n- Accuracy against real images, every arm: `scarcity_<model>.png`\n\nEverything in machine-readable form: `results.json` (results folder `{}`).",
            out.display()
        );
        return s;
    }
    accuracy_table(&mut s, r);
    metrics_table(&mut s, r);
    confusion_section(&mut s, r);
    super::effect::effect_section(&mut s, r);
    // a run of real-data scenarios only has no GANs and no sets to report
    if !r.gans.is_empty() || !r.synthetic.is_empty() {
        gan_section(&mut s, r);
    }
    plots_section(&mut s, r, out);
    s
}

fn header(s: &mut String, r: &ReproResults) {
    let title = if r.synthetic_data {
        "SYNTHETIC STAND-IN DATA (phantom, not CT): GAN-based augmentation reproduction".into()
    } else if r.is_covid_ct() {
        "GAN-based data augmentation on COVID-CT: reproduction".into()
    } else {
        format!(
            "GAN-based data augmentation on {} classes ({})",
            r.class_names.len(),
            r.class_names.join(", ")
        )
    };
    let _ = writeln!(s, "# {title}\n");
    let _ = writeln!(
        s,
        "Preset `{}`, commit `{}`, data: {}, device {}, {:.1} min wall time ({} seed(s)).\n",
        r.config.preset,
        r.commit.as_deref().unwrap_or("unknown"),
        r.data,
        r.device,
        r.seconds / 60.0,
        r.config.seeds
    );
    if !r.decisions.is_empty() {
        let _ = writeln!(s, "Decided from the files: {}.\n", r.decisions.join("; "));
    }
    let counts: Vec<String> = r
        .class_names
        .iter()
        .zip(&r.test_counts)
        .map(|(c, n)| format!("{n} {c}"))
        .collect();
    if r.paper_applies() {
        let _ = writeln!(
            s,
            "Test set: the official split, {} images ({}). The paper's test set had 199 images from its own split, so its numbers are not on the same images.\n",
            r.test_counts.iter().sum::<usize>(),
            counts.join(", ")
        );
    } else {
        let _ = writeln!(
            s,
            "Test set: {} images ({}). The paper's numbers are for COVID-CT and are not shown.\n",
            r.test_counts.iter().sum::<usize>(),
            counts.join(", ")
        );
    }
    if !r.missing.is_empty() {
        let _ = writeln!(
            s,
            "**Incomplete**: {} unit(s) of work were not finished when this report was written (another shard's, or not yet run); their cells are missing from the tables: {}.\n",
            r.missing.len(),
            r.missing.join("; ")
        );
    }
    if !r.config.reductions.is_empty() {
        let _ = writeln!(s, "Reduced from the paper in this preset:\n");
        for x in &r.config.reductions {
            let _ = writeln!(s, "- {x}");
        }
        let _ = writeln!(s);
    }
}

fn accuracy_table(s: &mut String, r: &ReproResults) {
    let covid = r.paper_applies();
    if covid {
        let _ = writeln!(s, "## Test accuracy: ours vs the paper\n");
        let _ = writeln!(s, "Ours: accuracy with its 95% Wilson interval (seed 0; mean ± sd over seeds when more than one). Paper values in parentheses; * = Loey et al.'s value quoted by the paper. The CGAN column stands in for Loey et al.'s CGAN set, which is not available.\n");
    } else {
        let _ = writeln!(s, "## Test accuracy\n");
        let _ = writeln!(s, "Accuracy with its 95% Wilson interval (seed 0; mean ± sd over seeds when more than one).\n");
    }
    let scen = &r.config.scenarios;
    let titles: Vec<&str> = scen.iter().map(|x| x.title()).collect();
    let _ = writeln!(s, "| Model | weights | {} |", titles.join(" | "));
    let _ = writeln!(s, "|---|---|{}", "---|".repeat(scen.len()));
    for plan in &r.config.models {
        let weights = r
            .cells
            .iter()
            .find(|c| c.model == plan.kind)
            .map_or("", |c| c.weights.as_str());
        let mut row = format!("| {} | {} |", plan.kind.display_name(), weights);
        for &sc in scen {
            let refused = sc
                .synthetic()
                .is_some_and(|w| r.refused.iter().any(|x| x.gan == w));
            let missing = if refused { "refused (gate)" } else { "—" };
            let mut txt = r
                .cell(plan.kind, sc, 0)
                .map_or(missing.into(), |c| pct(&c.accuracy));
            if let Some(a) = r.aggregate(plan.kind, sc) {
                if a.accuracy.n > 1 {
                    let sd = a.accuracy.sd.unwrap_or(0.0);
                    let _ = write!(txt, "; {:.3} ± {sd:.3}", a.accuracy.mean);
                }
                if let Some((p, star)) = a.paper_accuracy.filter(|_| covid) {
                    let _ = write!(txt, " ({p:.4}{})", if star { "*" } else { "" });
                }
            }
            let _ = write!(row, " {txt} |");
        }
        let _ = writeln!(s, "{row}");
    }
}

fn vs_raw_text(r: &ReproResults, c: &CellResult) -> String {
    let Some(v) = r
        .aggregate(c.model, c.scenario)
        .and_then(|a| a.vs_raw.as_ref())
    else {
        return "—".into();
    };
    let interval = match (v.accuracy_diff.lower, v.accuracy_diff.upper) {
        (Some(lo), Some(hi)) => format!(" [{lo:+.3}, {hi:+.3}]"),
        _ => String::new(),
    };
    format!(
        "{:+.3}{interval} ({} seed(s)), McNemar p = {:.3}",
        v.accuracy_diff.value, v.seeds, v.mcnemar_p
    )
}

fn metrics_table(s: &mut String, r: &ReproResults) {
    if r.class_names.len() == 2 {
        let positive = r
            .class_names
            .first()
            .map_or("the first class", String::as_str);
        let _ = writeln!(
            s,
            "\n## Every metric (seed 0), {positive} as the positive class\n"
        );
    } else {
        let _ = writeln!(
            s,
            "\n## Every metric (seed 0): macro averages over the {} classes (AUC: one-vs-rest)\n",
            r.class_names.len()
        );
    }
    let _ = writeln!(s, "| Model | Scenario | train images | accuracy | precision | recall | specificity | F1 | AUC | epochs (best) | vs raw: Δacc [95% CI] over seeds, seed-0 McNemar p |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for c in r.cells.iter().filter(|c| c.seed == 0) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} |",
            c.model,
            c.scenario,
            c.train_images,
            pct(&c.accuracy),
            pct(&c.precision),
            pct(&c.recall),
            pct(&c.specificity),
            pct(&c.f1),
            c.auc.as_ref().map_or("—".into(), pct),
            c.epochs,
            c.best_epoch,
            vs_raw_text(r, c)
        );
    }
}

/// The seed-0 confusion matrices and per-class statistics, when there are more than two
/// classes (two classes: the metrics table says it all).
fn confusion_section(s: &mut String, r: &ReproResults) {
    if r.class_names.len() <= 2 {
        return;
    }
    let _ = writeln!(
        s,
        "\n## Confusion matrices and per-class statistics (seed 0; rows: true class, columns: predicted)\n"
    );
    for c in r
        .cells
        .iter()
        .filter(|c| c.seed == 0 && !c.confusion.is_empty())
    {
        let _ = writeln!(s, "{} × {}:\n", c.model, c.scenario);
        let _ = writeln!(s, "| true \\ predicted | {} |", r.class_names.join(" | "));
        let _ = writeln!(s, "|---|{}", "---|".repeat(r.class_names.len()));
        for (name, row) in r.class_names.iter().zip(&c.confusion) {
            let cells: Vec<String> = row.iter().map(u64::to_string).collect();
            let _ = writeln!(s, "| {name} | {} |", cells.join(" | "));
        }
        let _ = writeln!(s, "\n{}\n", per_class_line(r, c));
    }
}

/// Precision, recall and F1 of each class from a cell's confusion matrix, and its one-vs-rest
/// ROC AUC from the cell's probabilities.
fn per_class_line(r: &ReproResults, c: &CellResult) -> String {
    let parts: Vec<String> = (0..c.confusion.len())
        .map(|i| {
            let tp = c.confusion[i][i] as f64;
            let truth: u64 = c.confusion[i].iter().sum();
            let predicted: u64 = c.confusion.iter().map(|row| row[i]).sum();
            // Undefined (no prediction of the class, or no image of it) is said, not 0.
            let ratio = |a: f64, b: u64| (b > 0).then(|| a / b as f64);
            let (p, rec) = (ratio(tp, predicted), ratio(tp, truth));
            let f1 = match (p, rec) {
                (Some(p), Some(r)) if p + r > 0.0 => format!("{:.3}", 2.0 * p * r / (p + r)),
                (Some(_), Some(_)) => "0.000".into(),
                _ => "n/a".into(),
            };
            let show = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.3}"));
            let (p, rec) = (show(p), show(rec));
            let auc = ganaug_metrics::roc_auc_ovr(
                &c.labels,
                c.probs.as_slice(),
                ganaug_metrics::Average::Binary { positive: i },
            )
            .map_or("n/a".into(), |a| format!("{a:.3}"));
            let name = r.class_names.get(i).map_or("?", String::as_str);
            format!("{name}: precision {p}, recall {rec}, F1 {f1}, AUC {auc}")
        })
        .collect();
    format!("Per class: {}.", parts.join("; "))
}

fn gan_section(s: &mut String, r: &ReproResults) {
    let _ = writeln!(s, "\n## GANs and their synthetic images\n");
    for g in &r.gans {
        let when = if g.seconds > 0.0 {
            format!(", trained in {:.1} min", g.seconds / 60.0)
        } else {
            ", reused from an earlier run".into()
        };
        let _ = writeln!(
            s,
            "- GAN {}: {} epochs{when}; loss curves `gan_losses_{}.png`",
            g.name,
            g.epochs,
            g.name.replace('/', "_")
        );
    }
    let _ = writeln!(s, "\n| GAN | class | kept / generated | near-copies dropped | D score kept (all) | NN RMS distance to training: mean / min | FID | KID | samples |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    let opt = |v: Option<f64>| v.map_or("n/a".into(), |x| format!("{x:.3}"));
    for x in &r.synthetic {
        let sel = &x.selection;
        let _ = writeln!(
            s,
            "| {} | {} | {} / {} | {} | {:.3} ({:.3}) | {:.3} / {:.3} | {} | {} | `{}` |",
            x.gan,
            x.label(),
            sel.kept,
            sel.generated,
            sel.near_copies,
            sel.d_score_kept,
            sel.d_score_all,
            sel.nn_mean,
            sel.nn_min,
            opt(x.fid),
            opt(x.kid),
            x.grid
        );
    }
    measures_table(s, r);
    let extractor = r.config.gan.extractor.describe();
    let _ = writeln!(s, "\nFID and KID use {extractor} against the class's training images; with a few hundred images they are biased upwards and only comparable within this report. Nearest-neighbour distances are per-pixel RMS in [0, 1] intensity.\n");
}

/// Each synthetic set's measures next to the real-vs-real floor, and the gate's verdicts.
fn measures_table(s: &mut String, r: &ReproResults) {
    let measured: Vec<_> = r
        .synthetic
        .iter()
        .filter_map(|x| x.measures.as_ref().map(|m| (x, m)))
        .collect();
    let Some((_, first)) = measured.first() else {
        let _ = writeln!(s, "\nSynthetic-set measures and the gate: not computed (no weights for {}; run scripts/setup.sh).", r.config.gan.extractor.describe());
        return;
    };
    let _ = writeln!(
        s,
        "\n### Synthetic-set measures and the gate\n\nMeasured in {}: {} synthetic images (a random subset) against {} real training images, real-vs-real = another {} real ones (random halves, {} repeats, mean ± sd). The real images are taken at the GANs' side ({}²) too, so both sides have the same resolution. FID and KID here are at that matched size (so their small-sample bias is the same on both sides), unlike the FID/KID column above (all kept images against all the class's training images). The gate refuses a set below {} × real diversity, {} × real-vs-real recall or {} × real-vs-real coverage.\n",
        first.extractor,
        first.sample_size,
        first.sample_size,
        first.sample_size,
        r.config.gan.gate.repeats,
        r.config.gan.gan.size,
        r.config.gan.gate.min_diversity,
        r.config.gan.gate.min_recall,
        r.config.gan.gate.min_coverage,
    );
    let _ = writeln!(s, "| GAN | class | diversity (real) | precision (real) | recall (real) | density (real) | coverage (real) | real-vs-synthetic probe AUC (real halves) | FID (real) | KID (real) | gate |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for (x, m) in &measured {
        let cell = |a: f64, b: f64, sd: f64| format!("{a:.3} ({b:.3} ± {sd:.3})");
        let (y, z, d) = (&m.synthetic, &m.real, &m.real_sd);
        let verdict = if m.failures.is_empty() {
            "passed".to_string()
        } else {
            m.failures.join("; ")
        };
        let opt = |v: Option<f64>| v.map_or("n/a".into(), |x| format!("{x:.3}"));
        let (fid, kid) = m.distances.map_or(("n/a".into(), "n/a".into()), |d| {
            (
                format!("{:.1} ({:.1} ± {:.1})", d.fid, d.fid_real, d.fid_real_sd),
                format!("{:.3} ({:.3} ± {:.3})", d.kid, d.kid_real, d.kid_real_sd),
            )
        });
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} ({}) | {fid} | {kid} | {verdict} |",
            x.gan,
            x.label(),
            cell(y.diversity, z.diversity, d.diversity),
            cell(y.precision, z.precision, d.precision),
            cell(y.recall, z.recall, d.recall),
            cell(y.density, z.density, d.density),
            cell(y.coverage, z.coverage, d.coverage),
            opt(m.probe_auc),
            opt(m.probe_auc_real),
        );
    }
    if !r.cas.is_empty() {
        let _ = writeln!(s, "\nClassification Accuracy Score (a linear probe on the same features, strength by 5-fold, trained on one set only and tested on the real test split):\n");
        for c in &r.cas {
            let auc = c.auc.map_or("n/a".into(), |a| format!("{a:.3}"));
            let _ = writeln!(
                s,
                "- trained on {} ({} images): accuracy {:.3}, AUC {auc}",
                c.trained_on, c.images, c.accuracy
            );
        }
    }
    for refused in &r.refused {
        let _ = writeln!(
            s,
            "\n**The {} synthetic set was refused**: no classifier trained on it, its scenarios are missing from the tables (`--allow-poor-synthetic` overrides). {}",
            refused.gan,
            refused.reasons.join("; ")
        );
    }
}

fn plots_section(s: &mut String, r: &ReproResults, out: &Path) {
    let _ = writeln!(s, "## Plots\n");
    // ROC curves are drawn for two classes only (the positive class's).
    for plan in &r.config.models {
        let has_roc = r
            .cells
            .iter()
            .any(|c| c.model == plan.kind && c.seed == 0 && !c.roc_fpr.is_empty());
        if has_roc {
            let _ = writeln!(
                s,
                "- ROC curves of {}: `roc_{}.png`",
                plan.kind.display_name(),
                plan.kind
            );
        }
    }
    let _ = writeln!(
        s,
        "- Classifier loss/accuracy curves: `cells/<cell>/curves.png`"
    );
    let _ = writeln!(
        s,
        "\nEverything in machine-readable form: `results.json` (results folder `{}`).",
        out.display()
    );
}
