//! Seeds → summaries, and each scenario's paired comparison with raw data.

use ganaug_metrics::{compare_models, summarize, Average, BootstrapConfig};

use crate::scenario::paper_accuracy;
use crate::{
    Aggregate, CellResult, CheckedConfig, Estimate, ExperimentError, Result, Scenario, VsRaw,
};

/// One [`Aggregate`] per model × scenario that has cells, in the configuration's order.
pub fn aggregate(cfg: &CheckedConfig, cells: &[CellResult]) -> Result<Vec<Aggregate>> {
    let mut out = Vec::new();
    for plan in &cfg.models {
        let find = |scenario: Scenario, seed: u64| {
            cells
                .iter()
                .find(|c| c.model == plan.kind && c.scenario == scenario && c.seed == seed)
        };
        let raw0 = find(Scenario::Raw, 0);
        for &scenario in &cfg.scenarios {
            let mine: Vec<&CellResult> = cells
                .iter()
                .filter(|c| c.model == plan.kind && c.scenario == scenario)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let acc: Vec<f64> = mine.iter().map(|c| c.accuracy.value).collect();
            let auc: Vec<f64> = mine.iter().filter_map(|c| c.auc.map(|a| a.value)).collect();
            let vs_raw = match (raw0, find(scenario, 0)) {
                (Some(r), Some(c)) if scenario != Scenario::Raw => Some(vs_raw(c, r)?),
                _ => None,
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
                vs_raw,
            });
        }
    }
    Ok(out)
}

/// Paired comparison of a cell with the raw cell of the same model and seed.
fn vs_raw(cell: &CellResult, raw: &CellResult) -> Result<VsRaw> {
    let cmp = compare_models(
        &cell.labels,
        cell.probs.as_slice(),
        raw.probs.as_slice(),
        Average::Binary { positive: 0 },
        &BootstrapConfig::default(),
    )
    .map_err(ExperimentError::Aggregate)?;
    Ok(VsRaw {
        accuracy_diff: Estimate {
            value: cmp.accuracy.diff,
            lower: Some(cmp.accuracy.lower),
            upper: Some(cmp.accuracy.upper),
        },
        mcnemar_p: cmp.mcnemar.p_value,
    })
}
