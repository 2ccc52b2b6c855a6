//! A trained cell's test metrics, with their intervals, as `results.json` records them.

use std::time::Instant;

use ganaug_metrics::{BootstrapInterval, ClassificationReport, Proportion, ReportConfig};

use crate::cells::{CellSpec, Trained};
use crate::sources::SplitSources;
use crate::{CellError, CellResult, Estimate, Result};

/// The result of a trained cell (started at `t0`, its folder `dir` relative to the results
/// folder): test metrics on `sp`'s test split.
pub(crate) fn cell_result(
    spec: CellSpec<'_>,
    sp: SplitSources<'_>,
    t: Trained,
    t0: Instant,
    dir: &str,
) -> Result<CellResult> {
    let rcfg = ReportConfig::with_class_names(sp.test.class_names().to_vec());
    let report = ClassificationReport::new(&t.labels, &t.probs, &rcfg)
        .map_err(|e| spec.fail("metrics")(e.into()))?;
    // Two classes: the positive (first) class's statistics with their intervals; more: the
    // macro averages over classes (no interval).
    let (precision, recall, specificity) = match report.positive_class() {
        Some(p) => (
            proportion(&p.precision),
            proportion(&p.recall),
            proportion(&p.specificity),
        ),
        None if report.class_names.len() > 2 => {
            let m = &report.macro_avg;
            (point(m.precision), point(m.recall), point(m.specificity))
        }
        None => return Err(spec.fail("metrics")(CellError::NoPositiveClass)),
    };
    let roc = report.roc.as_ref();
    Ok(CellResult {
        model: spec.plan.kind,
        scenario: spec.scenario,
        seed: spec.seed,
        weights: t.weights.into(),
        train_images: t.train_images,
        accuracy: proportion(&report.accuracy),
        precision,
        recall,
        specificity,
        confusion: report.confusion.counts().to_vec(),
        f1: bootstrap(&report.f1),
        auc: report.auc.as_ref().map(bootstrap),
        epochs: t.epochs,
        best_epoch: t.best_epoch,
        stop: t.stop,
        seconds: t0.elapsed().as_secs_f64(),
        feature_seconds: t.feature_seconds,
        labels: t.labels,
        probs: t.probs.rows().into_iter().map(|r| r.to_vec()).collect(),
        roc_fpr: roc.map(|r| r.fpr.clone()).unwrap_or_default(),
        roc_tpr: roc.map(|r| r.tpr.clone()).unwrap_or_default(),
        dir: dir.into(),
        real_data: Some(crate::scarcity::subsets::digest_of(
            sp.train.names(),
            sp.val.names(),
        )),
    })
}

fn point(value: f64) -> Estimate {
    Estimate {
        value,
        lower: None,
        upper: None,
    }
}

fn proportion(p: &Proportion) -> Estimate {
    Estimate {
        value: p.estimate,
        lower: p.interval.map(|i| i.lower),
        upper: p.interval.map(|i| i.upper),
    }
}

fn bootstrap(b: &BootstrapInterval) -> Estimate {
    Estimate {
        value: b.estimate,
        lower: Some(b.lower),
        upper: Some(b.upper),
    }
}
