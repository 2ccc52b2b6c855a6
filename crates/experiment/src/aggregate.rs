//! Seeds → summaries, and each scenario's paired comparisons with raw data and with classic
//! augmentation, over seeds.

use ganaug_metrics::{
    compare_models, compare_over_seeds, summarize, Average, BootstrapConfig, PairedDiff, SeedPair,
};

use crate::scenario::paper_accuracy;
use crate::{
    Aggregate, CellResult, CheckedConfig, Estimate, ExperimentError, Paired, Result, Scenario,
};

/// One [`Aggregate`] per model × scenario that has cells, in the configuration's order.
pub fn aggregate(cfg: &CheckedConfig, cells: &[CellResult]) -> Result<Vec<Aggregate>> {
    let mut out = Vec::new();
    for plan in &cfg.models {
        let of = |scenario: Scenario| -> Vec<&CellResult> {
            cells
                .iter()
                .filter(|c| c.model == plan.kind && c.scenario == scenario)
                .collect()
        };
        for &scenario in &cfg.scenarios {
            let mine = of(scenario);
            if mine.is_empty() {
                continue;
            }
            let acc: Vec<f64> = mine.iter().map(|c| c.accuracy.value).collect();
            let auc: Vec<f64> = mine.iter().filter_map(|c| c.auc.map(|a| a.value)).collect();
            let against = |other: Scenario| -> Result<Option<Paired>> {
                if other == scenario {
                    return Ok(None);
                }
                paired(&mine, &of(other))
            };
            out.push(Aggregate {
                model: plan.kind,
                scenario,
                accuracy: summarize(&acc).map_err(ExperimentError::Aggregate)?,
                auc: if auc.is_empty() {
                    None
                } else {
                    summarize(&auc).ok()
                },
                paper_accuracy: paper_accuracy(plan.kind, scenario),
                vs_raw: against(Scenario::Raw)?,
                vs_classic: if scenario.synthetic().is_some() {
                    against(Scenario::Classic)?
                } else {
                    None
                },
            });
        }
    }
    Ok(out)
}

/// Cells of one scenario against another's with the same seeds: the mean per-seed difference
/// with an interval resampling seeds and test images; `None` when no seed has both.
pub(crate) fn paired(mine: &[&CellResult], other: &[&CellResult]) -> Result<Option<Paired>> {
    let mut pairs = Vec::new();
    let mut seed0 = None;
    for c in mine {
        if let Some(o) = other.iter().find(|o| o.seed == c.seed) {
            if c.labels != o.labels {
                return Err(ExperimentError::Config {
                    field: "cells".into(),
                    reason: format!(
                        "{} and {} of seed {} were tested on different images",
                        c.scenario, o.scenario, c.seed
                    ),
                });
            }
            pairs.push(SeedPair {
                labels: &c.labels[..],
                a: c.probs.as_slice(),
                b: o.probs.as_slice(),
            });
            if seed0.is_none() || c.seed == 0 {
                seed0 = Some((*c, *o));
            }
        }
    }
    let Some((c0, o0)) = seed0 else {
        return Ok(None);
    };
    // Two classes: the first is the positive one (COVID); more: macro averages.
    let positive = match c0.probs.first().map(Vec::len) {
        Some(2) => Average::Binary { positive: 0 },
        _ => Average::Macro,
    };
    let cfg = BootstrapConfig::default();
    let cmp = compare_over_seeds(&pairs, positive, &cfg).map_err(ExperimentError::Aggregate)?;
    let mcnemar = compare_models(
        &c0.labels,
        c0.probs.as_slice(),
        o0.probs.as_slice(),
        positive,
        &cfg,
    )
    .map_err(ExperimentError::Aggregate)?
    .mcnemar;
    let estimate = |d: &PairedDiff| Estimate {
        value: d.diff,
        lower: Some(d.lower),
        upper: Some(d.upper),
    };
    Ok(Some(Paired {
        seeds: cmp.seeds,
        accuracy_diff: estimate(&cmp.accuracy),
        auc_diff: cmp.auc.as_ref().map(estimate),
        p_value: Some(cmp.accuracy.p_value),
        mcnemar_p: mcnemar.p_value,
    }))
}
