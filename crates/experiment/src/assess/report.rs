//! `assessment.md` and `assessment.json`: what an assessment found, in words and as data.

use std::path::Path;

use ganaug_data::io;

use super::{Assessment, ClassAssessment, ClassImages, Floor, Verdict};
use crate::{ExperimentError, Result};

/// Writes `assessment.json`, `assessment.md` and the nearest / farthest grids into `out`.
pub fn write_assessment(a: &Assessment, grids: &[ClassImages], out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| ExperimentError::io(out, e))?;
    for g in grids {
        if g.images.size()[0] > 0 {
            io::save_grid(&g.images, 8, out.join(&g.file))?;
        }
    }
    crate::report::write_json(&out.join("assessment.json"), a)?;
    let md = markdown(a, grids);
    io::write_atomic(&out.join("assessment.md"), md.as_bytes())?;
    Ok(())
}

/// The assessment in words.
pub fn markdown(a: &Assessment, grids: &[ClassImages]) -> String {
    let mut s = markdown_header(a);
    s += &markdown_table(a);
    s += &markdown_footer(a, grids);
    s
}

/// What was assessed, how, and the verdict with its reasons.
fn markdown_header(a: &Assessment) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let verdict = match a.verdict {
        Verdict::Passes => "PASSES the quality gate: every class reaches every floor",
        Verdict::Refused => "REFUSED by the quality gate: the experiment would not train on it",
        Verdict::NotJudged => "NOT JUDGED: a class could not be measured",
    };
    let _ = writeln!(s, "# Assessment of {}\n", a.synthetic.display());
    let _ = writeln!(s, "Real data: {}.  ", a.real);
    let reference = match a.floor {
        Floor::Halves => {
            "real-vs-real (random halves of the class's training images, the experiment's gate)"
        }
        Floor::HeldOut => {
            "held-out-vs-train (the class's validation images against its training images)"
        }
    };
    let _ = writeln!(
        s,
        "Measured at {}² in the feature space of {}; floors: diversity ≥ {} ×, recall ≥ {} ×, coverage ≥ {} × the {reference} values (k = {}, {} random halves, seed {}).  ",
        a.size, a.extractor, a.gate.min_diversity, a.gate.min_recall, a.gate.min_coverage, a.gate.k, a.gate.repeats, a.gate.seed
    );
    if let Some(c) = &a.commit {
        let _ = writeln!(s, "Code: commit {c}.");
    }
    let _ = writeln!(s, "\n**Verdict: {verdict}.**\n");
    for r in &a.reasons {
        let _ = writeln!(s, "- {r}");
    }
    s
}

/// One row per class (and its held-out reference), with what the columns mean.
fn markdown_table(a: &Assessment) -> String {
    let mut s = String::from(
        "\n| class | real | synthetic | diversity | precision | recall | density | coverage | FID (matched) | KID (matched) | probe AUC | NN distance (median) |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in &a.classes {
        s += &class_rows(c);
    }
    s += "\n\"real\" is a random half of the class's real training images against the other half, at the same sample size: what a set as close as real reads. The probe AUC is a linear probe told to separate synthetic from real (0.5: indistinguishable). The NN distance is each synthetic image's feature distance to its nearest real training image; real's is each real image's to its nearest other real image — far smaller synthetic distances mean near-copies.\n";
    s
}

/// A class's row of the table, and its held-out reference's row when there is one.
fn class_rows(c: &ClassAssessment) -> String {
    let Some(m) = &c.measures else {
        return format!(
            "| {} | {} | {} | not measured: {} |||||||||\n",
            c.class,
            c.real_images,
            c.synthetic_images,
            c.not_measured.as_deref().unwrap_or("?")
        );
    };
    let two = |x: f64, y: f64| format!("{x:.3} (real {y:.3})");
    let opt = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => two(x, y),
        (Some(x), None) => format!("{x:.3}"),
        _ => "—".into(),
    };
    let d = m.distances.as_ref();
    let mut s = format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
        c.class,
        c.real_images,
        c.synthetic_images,
        two(m.synthetic.diversity, m.real.diversity),
        two(m.synthetic.precision, m.real.precision),
        two(m.synthetic.recall, m.real.recall),
        two(m.synthetic.density, m.real.density),
        two(m.synthetic.coverage, m.real.coverage),
        opt(d.map(|d| d.fid), d.map(|d| d.fid_real)),
        opt(d.map(|d| d.kid), d.map(|d| d.kid_real)),
        opt(m.probe_auc, m.probe_auc_real),
        opt(c.nn_distance_median, c.nn_distance_real_median),
    );
    if let Some(h) = &c.held_out {
        s += &format!(
            "| {} held-out (reference) | | | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | | | {} | |\n",
            c.class,
            h.synthetic.diversity,
            h.synthetic.precision,
            h.synthetic.recall,
            h.synthetic.density,
            h.synthetic.coverage,
            h.probe_auc.map_or("—".into(), |v| format!("{v:.3}")),
        );
    }
    s
}

/// The CAS, the grids, the effect on a classifier, and what an assessment does not measure.
fn markdown_footer(a: &Assessment, grids: &[ClassImages]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if let (Some(c), Some(r)) = (&a.cas, &a.cas_real) {
        let auc = |x: Option<f64>| x.map_or("—".into(), |v| format!("{v:.3}"));
        let _ = writeln!(
            s,
            "\nClassification accuracy score (a linear probe on {} features, tested on the real test split): trained on the synthetic images {:.1}% (AUC {}), on the real training images {:.1}% (AUC {}).",
            a.extractor,
            100.0 * c.accuracy,
            auc(c.auc),
            100.0 * r.accuracy,
            auc(r.auc)
        );
    }
    if !grids.is_empty() {
        let _ = writeln!(s, "\n## Nearest and farthest synthetic images\n");
        for g in grids.iter().filter(|g| g.images.size()[0] > 0) {
            let _ = writeln!(s, "![{}]({})", g.file, g.file);
        }
    }
    match &a.effect {
        Some(e) => s += &crate::effect::effect_markdown(e),
        None => {
            let _ = writeln!(
                s,
                "\nNot measured here: the paired effect of these images on a classifier (`--effect MODEL`)."
            );
        }
    }
    if a.effect.as_ref().is_none_or(|e| e.worth.is_none()) {
        let _ = writeln!(
            s,
            "\nNot measured here: their worth in real images (`--effect MODEL --worth STUDY`, STUDY a scarcity study's results on the same data: `ganaug reproduce --preset scarcity`)."
        );
    }
    s
}
