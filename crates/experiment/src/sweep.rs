//! How synthetic images are best used: one synthetic scenario swept over selection rules,
//! synthetic-per-real ratios and loss weights, each point compared with raw data over seeds
//! (GAN replicas) by the seeds × images paired bootstrap. The GANs are trained (or reused) once
//! per replica; each point's cells are cached like the reproduction's.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::Device;

use ganaug_metrics::Summary;
use ganaug_models::ModelKind;

use ganaug_train::Observer;

use crate::cells::Experiment;
use crate::gans::{run_gans, StageContext};
use crate::layout::Layout;
use crate::{
    aggregate, CheckedConfig, DataSource, ExperimentError, FeatureBank, GateMode, Paired,
    ReproConfig, Result, Scenario, SelectBy, SynthMix, SynthSummary, BUILD_COMMIT,
};

/// What to sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPlan {
    /// The synthetic scenario (e.g. `gan`).
    pub scenario: Scenario,
    /// Selection rules.
    pub select: Vec<SelectBy>,
    /// Synthetic images per real image of the class (0 = none: the raw training set).
    pub ratios: Vec<f64>,
    /// Loss weights of synthetic images (other than 1: linear-probe models only).
    pub weights: Vec<f64>,
    /// Epochs of fine-tuning on real images after real + synthetic (0: none; other values:
    /// models trained by `fit` only).
    #[serde(default = "no_finetune")]
    pub finetune: Vec<usize>,
}

fn no_finetune() -> Vec<usize> {
    vec![0]
}

/// One point of the sweep for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// The model.
    pub model: ModelKind,
    /// Selection rule.
    pub select: SelectBy,
    /// Synthetic per real image.
    pub ratio: f64,
    /// Loss weight of a synthetic image.
    pub weight: f64,
    /// Epochs of fine-tuning on real images afterwards.
    #[serde(default)]
    pub finetune: usize,
    /// Synthetic training images of seed 0's cell.
    pub synthetic_images: usize,
    /// Accuracy over seeds.
    pub accuracy: Summary,
    /// AUC over seeds.
    pub auc: Option<Summary>,
    /// Against raw data, over seeds and test images.
    pub vs_raw: Option<Paired>,
}

/// Everything a sweep measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepResults {
    /// The commit the code was built from.
    pub commit: Option<String>,
    /// The base configuration (its preset, GANs, models; `gan.select` and `gan.mix` are swept).
    pub config: ReproConfig,
    /// What was swept.
    pub plan: SweepPlan,
    /// Raw accuracy over seeds, per model.
    pub raw: Vec<(ModelKind, Summary)>,
    /// Every point.
    pub points: Vec<SweepPoint>,
    /// The synthetic class sets of each rule (all kept images), with their measures.
    pub synthetic: Vec<(SelectBy, Vec<SynthSummary>)>,
    /// Wall time.
    pub seconds: f64,
}

impl SweepPlan {
    /// Checks the plan; returns the synthetic set its scenario adds.
    fn check(&self) -> Result<crate::Synthetic> {
        let bad = |f: &str, r: String| Err(ExperimentError::config(format!("sweep.{f}"), r));
        let Some(which) = self
            .scenario
            .synthetic()
            .filter(|_| !self.scenario.uses_classic())
        else {
            return bad(
                "scenario",
                format!(
                    "{} is not a scenario of raw + synthetic images",
                    self.scenario
                ),
            );
        };
        if self.select.is_empty()
            || self.ratios.is_empty()
            || self.weights.is_empty()
            || self.finetune.is_empty()
        {
            return bad(
                "select/ratios/weights/finetune",
                "each needs at least one value".into(),
            );
        }
        if let Some(r) = self.ratios.iter().find(|r| !(**r >= 0.0 && r.is_finite())) {
            return bad("ratios", format!("{r} is not a finite number ≥ 0"));
        }
        if let Some(w) = self.weights.iter().find(|w| !(**w > 0.0 && w.is_finite())) {
            return bad("weights", format!("{w} is not a finite number > 0"));
        }
        Ok(which)
    }
}

/// Runs the sweep into `out` (GANs in `out/gan`, cells in `out/cells`; both reused when
/// there), the images streamed as `streaming` says. `base`'s scenarios are replaced by raw and
/// the plan's scenario; its gate warns instead of refusing (a refused set could not be swept;
/// the measures are kept).
pub fn sweep(
    base: &CheckedConfig,
    plan: &SweepPlan,
    data: &DataSource,
    out: &Path,
    (device, streaming): (Device, ganaug_data::Streaming),
    observer: &dyn Observer,
) -> Result<SweepResults> {
    let which = plan.check()?;
    let started = Instant::now();
    let ctx = StageContext::alone(out, device, observer)?;
    let mut cfg: ReproConfig = (**base).clone();
    cfg.scenarios = vec![Scenario::Raw, plan.scenario];
    cfg.gan.gate.mode = GateMode::Warn;
    let checked = cfg.clone().check()?;
    let loaded = crate::run::load_sizes(&checked, data, device, &checked.image_sizes(), streaming)?;
    for d in &loaded.decisions {
        ctx.say(d);
    }
    let data_id = &loaded.data_id;
    // The GANs take the data's channels.
    cfg.gan.gan.channels = loaded.cfg.gan.gan.channels;
    let gan_train = loaded.gan_train();
    let counts = ganaug_data::stream::class_counts(&gan_train)?;
    let largest = counts.into_iter().max().unwrap_or(0);
    let top = plan.ratios.iter().copied().fold(0.0f64, f64::max);
    let need = (top * largest as f64).round() as usize;
    if need > cfg.gan.synth.keep_per_class {
        cfg.gan.synth.keep_per_class = need;
        cfg.gan.synth.candidates_per_class = cfg.gan.synth.candidates_per_class.max(2 * need);
    }
    let mut bank = FeatureBank::default();
    let mut results = SweepResults {
        commit: BUILD_COMMIT.map(String::from),
        config: cfg.clone(),
        plan: plan.clone(),
        raw: Vec::new(),
        points: Vec::new(),
        synthetic: Vec::new(),
        seconds: 0.0,
    };
    for &rule in &plan.select {
        let mut rule_cfg = cfg.clone();
        rule_cfg.gan.select.by = rule;
        let rule_checked = rule_cfg.clone().check()?;
        ctx.say(format!("selection by {}", rule.name()));
        let stage = run_gans(&rule_checked, &gan_train, data_id, &ctx)?;
        let sets = stage
            .synthetic
            .iter()
            .filter(|s| s.gan == which)
            .cloned()
            .collect();
        results.synthetic.push((rule, sets));
        let mut exp = Experiment {
            cfg: &rule_checked,
            splits: &loaded.splits,
            streams: loaded.streams.as_ref(),
            gans: &stage,
            data_id,
            ctx: &ctx,
            bank: &mut bank,
            seed_offset: 0,
            test_data_id: data_id,
        };
        for point in plan.points() {
            sweep_point(&mut exp, &rule_cfg, rule, point, &mut results)?;
        }
    }
    results.seconds = started.elapsed().as_secs_f64();
    write_sweep(&results, out)?;
    Ok(results)
}

/// One point of a sweep: how many synthetic images per real one, their loss weight, the
/// epochs of fine-tuning on real images after.
#[derive(Debug, Clone, Copy)]
struct MixPoint {
    ratio: f64,
    weight: f64,
    finetune: usize,
}

impl SweepPlan {
    fn points(&self) -> Vec<MixPoint> {
        let mut out = Vec::new();
        for &ratio in &self.ratios {
            for &weight in &self.weights {
                for &finetune in &self.finetune {
                    out.push(MixPoint {
                        ratio,
                        weight,
                        finetune,
                    });
                }
            }
        }
        out
    }
}

/// Trains and tests the cells of one point of the sweep (the models it applies to: a loss
/// weight to probe models only, fine-tuning to the others) and records their comparisons.
fn sweep_point(
    exp: &mut Experiment<'_>,
    rule_cfg: &ReproConfig,
    rule: SelectBy,
    p: MixPoint,
    results: &mut SweepResults,
) -> Result<()> {
    let mut point = rule_cfg.clone();
    point.gan.mix = SynthMix {
        ratio: Some(p.ratio),
        weight: p.weight,
        finetune_real_epochs: p.finetune,
        probe_two_step: false,
    };
    if p.weight != 1.0 {
        point.models.retain(|m| m.head.weighs_synthetic());
    }
    if p.finetune > 0 {
        point.models.retain(|m| m.head.fine_tunes());
    }
    if point.models.is_empty() {
        return Ok(());
    }
    let point = point.check()?;
    exp.ctx.say(format!(
        "  ratio {}, weight {}, fine-tune {} ({} model(s))",
        p.ratio,
        p.weight,
        p.finetune,
        point.models.len()
    ));
    let cells = Experiment {
        cfg: &point,
        splits: exp.splits,
        streams: exp.streams,
        gans: exp.gans,
        data_id: exp.data_id,
        ctx: exp.ctx,
        bank: &mut *exp.bank,
        seed_offset: exp.seed_offset,
        test_data_id: exp.test_data_id,
    }
    .run_cells()?
    .cells;
    let raw_images = |model| {
        cells
            .iter()
            .find(|r| r.model == model && r.scenario == Scenario::Raw && r.seed == 0)
            .map_or(0, |r| r.train_images)
    };
    for a in aggregate(&point, &cells)? {
        if a.scenario == Scenario::Raw {
            if !results.raw.iter().any(|(m, _)| *m == a.model) {
                results.raw.push((a.model, a.accuracy));
            }
            continue;
        }
        let synthetic_images = cells
            .iter()
            .find(|c| c.model == a.model && c.scenario == a.scenario && c.seed == 0)
            .map_or(0, |c| c.train_images.saturating_sub(raw_images(a.model)));
        results.points.push(SweepPoint {
            model: a.model,
            select: rule,
            ratio: p.ratio,
            weight: p.weight,
            finetune: p.finetune,
            synthetic_images,
            accuracy: a.accuracy,
            auc: a.auc,
            vs_raw: a.vs_raw,
        });
    }
    Ok(())
}

/// Writes `sweep.json`, `sweep.md` and one `sweep_<model>.png` per model (Δaccuracy against
/// raw by ratio, weight 1, a line per selection rule, with the 95% intervals).
pub fn write_sweep(r: &SweepResults, out: &Path) -> Result<()> {
    let layout = Layout::new(out);
    crate::report::write_json(&layout.sweep_results(), r)?;
    let md = sweep_markdown(r);
    ganaug_data::io::write_atomic(&layout.sweep_report(), md.as_bytes())?;
    #[cfg(feature = "plot")]
    for (model, _) in &r.raw {
        let mut series = Vec::new();
        for &rule in &r.plan.select {
            let pts: Vec<(f64, f64, f64, f64)> = r
                .points
                .iter()
                .filter(|p| {
                    p.model == *model && p.select == rule && p.weight == 1.0 && p.finetune == 0
                })
                .filter_map(|p| {
                    let d = &p.vs_raw.as_ref()?.accuracy_diff;
                    Some((p.ratio, d.value, d.lower?, d.upper?))
                })
                .collect();
            if !pts.is_empty() {
                series.push((rule.name(), pts));
            }
        }
        if series.is_empty() {
            continue;
        }
        let path = layout.sweep_plot(*model);
        let title = format!(
            "{}: Δaccuracy vs raw by synthetic-per-real ratio (95% CI)",
            model.display_name()
        );
        ganaug_train::plot::interval_plot(
            &path,
            &title,
            "synthetic images per real image",
            &series,
        )
        .map_err(|source| ExperimentError::Plot {
            path: path.clone(),
            source: Box::new(source),
        })?;
    }
    Ok(())
}

/// `passed`, or `failed: ` and the measures that missed their floors.
fn gate_verdict(failures: &[String]) -> String {
    if failures.is_empty() {
        return "passed".into();
    }
    let names: Vec<&str> = failures
        .iter()
        .filter_map(|f| f.split_whitespace().next())
        .collect();
    format!("failed: {}", names.join(", "))
}

/// The sweep as Markdown: one table per model, then each rule's set measures.
pub fn sweep_markdown(r: &SweepResults) -> String {
    use crate::report::diff;
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Synthetic-image sweep: {} against raw\n\nPreset `{}`, commit `{}`, {} GAN replica(s) (seed s uses replica s mod replicas), {:.1} min wall. Δ = mean over seeds of the per-seed paired difference; 95% interval from a bootstrap over seeds and test images.\n",
        r.plan.scenario,
        r.config.preset,
        r.commit.as_deref().unwrap_or("unknown"),
        r.config.gan.replicas,
        r.seconds / 60.0
    );
    for (model, raw) in &r.raw {
        let _ = writeln!(
            s,
            "## {}\n\nRaw: accuracy {:.3} ± {:.3} over {} seed(s).\n",
            model.display_name(),
            raw.mean,
            raw.sd.unwrap_or(0.0),
            raw.n
        );
        let _ = writeln!(s, "| selection | ratio | weight | fine-tune on real (epochs) | synthetic images | accuracy | Δacc vs raw | ΔAUC vs raw | p |");
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
        for p in r.points.iter().filter(|p| p.model == *model) {
            let (dacc, dauc, pv) =
                p.vs_raw
                    .as_ref()
                    .map_or(("—".into(), "—".into(), "—".into()), |v| {
                        (
                            diff(&v.accuracy_diff),
                            v.auc_diff.as_ref().map_or("—".into(), diff),
                            v.p_value.map_or("—".into(), |x| format!("{x:.3}")),
                        )
                    });
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {:.3} ± {:.3} | {dacc} | {dauc} | {pv} |",
                p.select.name(),
                p.ratio,
                p.weight,
                p.finetune,
                p.synthetic_images,
                p.accuracy.mean,
                p.accuracy.sd.unwrap_or(0.0)
            );
        }
        let _ = writeln!(s);
    }
    sets_table(&mut s, r);
    s
}

/// The sweep's synthetic sets by selection rule, with their measures and the gate's verdict.
fn sets_table(s: &mut String, r: &SweepResults) {
    use std::fmt::Write;
    let _ = writeln!(
        s,
        "## The synthetic sets by selection rule (all kept images)\n"
    );
    let _ = writeln!(s, "| selection | set | kept | D score kept | recall (real) | coverage (real) | diversity (real) | real-vs-synthetic probe AUC (real halves) | FID | gate |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    let opt = |v: Option<f64>| v.map_or("n/a".into(), |x| format!("{x:.3}"));
    for (rule, sets) in &r.synthetic {
        for x in sets {
            let Some(m) = &x.measures else { continue };
            let _ = writeln!(
                s,
                "| {} | {}/{} r{} | {} | {:.3} | {:.3} ({:.3}) | {:.3} ({:.3}) | {:.2} ({:.2}) | {} ({}) | {} | {} |",
                rule.name(),
                x.gan,
                x.class,
                x.replica,
                x.selection.kept,
                x.selection.d_score_kept,
                m.synthetic.recall,
                m.real.recall,
                m.synthetic.coverage,
                m.real.coverage,
                m.synthetic.diversity,
                m.real.diversity,
                opt(m.probe_auc),
                opt(m.probe_auc_real),
                opt(x.fid),
                gate_verdict(&m.failures)
            );
        }
    }
}
