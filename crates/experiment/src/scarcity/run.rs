//! Running the study: each subset's GANs and cells (through the experiment's own stages, on
//! that subset's splits and under a data id of its own, so nothing of another subset — or of
//! the held-out images — reaches its generators, its gate, its probe's strength or its
//! cells), then the entries: each arm over resamples, against raw and on the learning curve.

use std::collections::BTreeMap;
use std::time::Instant;

use ganaug_data::{AnySource, Splits, StreamSplits};
use ganaug_metrics::{summarize, Outcomes};

use super::subsets::{class_counts, digest_of, draw_from, subset_splits, subset_streams, Subset};
use super::{Arm, ScarcityCell, ScarcityPlan, ScarcityResults, StageSeconds, SubsetSummary};
use crate::cells::{CellsRun, Experiment};
use crate::gans::{run_gans, GanStage, StageContext};
use crate::probe_cells::FeatureBank;
use crate::run::LoadedData;
use crate::sources::SplitSources;
use crate::{
    hash_of, CellResult, CheckedConfig, ExperimentError, GateMode, ReproConfig, Result, Scenario,
};

/// Runs the study of `loaded.cfg.scarcity` on the loaded data.
pub fn run_scarcity(loaded: &LoadedData, ctx: &StageContext<'_>) -> Result<ScarcityResults> {
    let cfg = &loaded.cfg;
    let plan = cfg
        .scarcity
        .clone()
        .ok_or_else(|| ExperimentError::config("scarcity", "the configuration has no study"))?;
    let mut study = Study {
        loaded,
        ctx,
        bank: FeatureBank::default(),
        out: ScarcityResults {
            plan: plan.clone(),
            subsets: Vec::new(),
            cells: Vec::new(),
            entries: Vec::new(),
            gans: Vec::new(),
            synthetic: Vec::new(),
        },
        plan,
    };
    for &f in &study.plan.fractions.clone() {
        for r in 0..study.plan.resamples as u64 {
            study.subset(f, r)?;
        }
    }
    study.out.entries = super::report::entries(&study.out, cfg)?;
    Ok(study.out)
}

struct Study<'a> {
    loaded: &'a LoadedData,
    ctx: &'a StageContext<'a>,
    bank: FeatureBank,
    plan: ScarcityPlan,
    out: ScarcityResults,
}

/// A subset's splits at every side, of the run's kind: in memory, or streamed from the decode
/// cache (then `splits` is empty and every stage reads `streams`).
struct SubsetData {
    splits: BTreeMap<i64, Splits>,
    streams: Option<BTreeMap<i64, StreamSplits>>,
}

impl SubsetData {
    /// The run's splits restricted to `sub`'s images and the `extra` training ones.
    fn of(loaded: &LoadedData, sub: &Subset, extra: &[String]) -> Result<Self> {
        Ok(match &loaded.streams {
            Some(streams) => SubsetData {
                splits: BTreeMap::new(),
                streams: Some(subset_streams(streams, sub, extra)?),
            },
            None => SubsetData {
                splits: subset_splits(&loaded.splits, sub, extra)?,
                streams: None,
            },
        })
    }

    fn sources(&self, side: i64) -> SplitSources<'_> {
        SplitSources::of(&self.splits, self.streams.as_ref(), side)
    }

    /// The training split at `side`, of its kind (not copied).
    fn train(&self, side: i64) -> AnySource {
        crate::sources::train_at(&self.splits, self.streams.as_ref(), side)
    }

    /// Each class's training images at `side`.
    fn train_counts(&self, side: i64) -> Result<Vec<usize>> {
        Ok(ganaug_data::stream::class_counts(self.sources(side).train)?)
    }
}

impl<'a> Study<'a> {
    /// The whole data's splits at the GANs' side (the pool every subset is drawn from).
    fn pool(&self) -> SplitSources<'a> {
        self.loaded.sources(self.loaded.cfg.gan.gan.size)
    }

    /// One subset: its GANs, its cells, its "then real" cells, its oracle.
    fn subset(&mut self, f: f64, r: u64) -> Result<()> {
        let pool = self.pool();
        let sub = draw_from(
            [pool.train, pool.val],
            f,
            r,
            self.plan.seed,
            self.plan.ratio,
        )?;
        self.ctx.say(format!(
            "scarcity: fraction {f}, resample {r}: {} training + {} validation images",
            sub.train.len(),
            sub.val.len()
        ));
        let data = SubsetData::of(self.loaded, &sub, &[])?;
        let id = hash_of(&(&self.loaded.data_id, &sub.digest))?;
        let image = (r as usize) < self.plan.image_resamples;
        let side = self.loaded.cfg.gan.gan.size;
        let counts = data.train_counts(side)?;
        let cfg = subset_config(&self.loaded.cfg, &self.plan, (f, r), image, &counts)?;
        let mut seconds = StageSeconds::default();
        let t0 = Instant::now();
        let stage = run_gans(&cfg, &data.train(side), &id, self.ctx)?;
        seconds.gans = t0.elapsed().as_secs_f64();
        for g in &stage.gans {
            self.out.gans.push((f, r, g.clone()));
        }
        for s in &stage.synthetic {
            self.out.synthetic.push((f, r, s.clone()));
        }
        let t0 = Instant::now();
        let run = self.cells(&cfg, &data, &stage, &id, r)?;
        self.record(&sub, run, |s| match s {
            Scenario::Raw => Arm::Raw,
            Scenario::Classic => Arm::Classic,
            other => Arm::Synthetic(other),
        });
        seconds.cells = t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        for then in then_real_configs(&cfg, &self.plan)? {
            let run = self.cells(&then, &data, &stage, &id, r)?;
            self.record(&sub, run, Arm::ThenReal);
        }
        seconds.then_real = t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        self.oracle(&cfg, &sub, &stage, (&id, r))?;
        seconds.oracle = t0.elapsed().as_secs_f64();
        let pool = self.pool();
        self.out.subsets.push(SubsetSummary {
            fraction: f,
            resample: r,
            digest: sub.digest.clone(),
            train: class_counts(&sub.train, pool.train),
            val: class_counts(&sub.val, pool.val),
            extras: class_counts(&sub.extras, pool.train),
            seconds,
        });
        Ok(())
    }

    fn cells(
        &mut self,
        cfg: &CheckedConfig,
        data: &SubsetData,
        stage: &GanStage,
        id: &str,
        r: u64,
    ) -> Result<CellsRun> {
        Experiment {
            cfg,
            splits: &data.splits,
            streams: data.streams.as_ref(),
            gans: stage,
            data_id: id,
            ctx: self.ctx,
            bank: &mut self.bank,
            seed_offset: r,
            test_data_id: &self.loaded.data_id,
        }
        .run_cells()
    }

    /// The subset plus its real extras, raw: with no extras (the whole data), the raw cell
    /// itself (the same images, the same data id: the same folder).
    fn oracle(
        &mut self,
        cfg: &CheckedConfig,
        sub: &Subset,
        stage: &GanStage,
        (id, r): (&str, u64),
    ) -> Result<()> {
        let data = SubsetData::of(self.loaded, sub, &sub.extras)?;
        let oracle_id = oracle_id(self.loaded, sub, id)?;
        let mut c = (**cfg).clone();
        c.scenarios = vec![Scenario::Raw];
        let c = c.check()?;
        let run = self.cells(&c, &data, stage, &oracle_id, r)?;
        let mut train = sub.train.clone();
        train.extend_from_slice(&sub.extras);
        let data = digest_of(&train, &sub.val);
        for cell in run.cells {
            self.out.cells.push(ScarcityCell {
                fraction: sub.fraction,
                resample: r,
                arm: Arm::Oracle,
                real_images: sub.real_images(),
                extra_real: sub.extras.len(),
                data: data.clone(),
                cell,
            });
        }
        Ok(())
    }

    fn record(&mut self, sub: &Subset, run: CellsRun, arm: impl Fn(Scenario) -> Arm) {
        for g in run.gans {
            self.out.gans.push((sub.fraction, sub.resample, g));
        }
        for s in run.synthetic {
            self.out.synthetic.push((sub.fraction, sub.resample, s));
        }
        for cell in run.cells {
            self.out.cells.push(ScarcityCell {
                fraction: sub.fraction,
                resample: sub.resample,
                arm: arm(cell.scenario),
                real_images: sub.real_images(),
                extra_real: 0,
                data: sub.digest.clone(),
                cell,
            });
        }
    }
}

/// The data id of `sub`'s oracle cells (its images and its extras); with no extras (the whole
/// data) the subset's own `id`, so that the oracle is the raw cell itself.
fn oracle_id(loaded: &LoadedData, sub: &Subset, id: &str) -> Result<String> {
    if sub.extras.is_empty() {
        return Ok(id.to_string());
    }
    let mut train = sub.train.clone();
    train.extend_from_slice(&sub.extras);
    hash_of(&(&loaded.data_id, digest_of(&train, &sub.val)))
}

/// A subset's configuration: the study's, its image GANs' epochs scaled by `1/√f` (a
/// generator on a tenth of the images makes √10 times fewer steps than on all of them, not
/// ten) and the feature GAN's by `1/f` (as many steps: they cost little), seeded by
/// the resample, batches no larger than the smallest class (`counts`: each class's training
/// images at the GANs' side), as many synthetic images kept as `ratio` asks, the gate warning
/// (a refused set would have no worth to measure; its verdict is reported), one seed and
/// replica. Resamples past `image_resamples` run the probes alone, without image generators.
fn subset_config(
    study: &CheckedConfig,
    plan: &ScarcityPlan,
    (f, r): (f64, u64),
    image: bool,
    counts: &[usize],
) -> Result<CheckedConfig> {
    let mut c: ReproConfig = (**study).clone();
    c.scarcity = None;
    c.seeds = 1;
    c.gan.replicas = 1;
    c.gan.train.seed += r;
    c.gan.synth.seed += r;
    let scale = |e: usize| ((e as f64) / f.sqrt()).round().max(1.0) as usize;
    c.gan.train.epochs = scale(c.gan.train.epochs);
    c.gan.cgan_epochs = scale(c.gan.cgan_epochs);
    if let Some(e) = &mut c.gan.edits {
        e.epochs = scale(e.epochs);
    }
    if let Some(fp) = &mut c.gan.features {
        // its steps are cheap: as many at every size (epochs scaled by 1/f)
        fp.gan.epochs = ((fp.gan.epochs as f64) / f).round().max(1.0) as usize;
    }
    let smallest = counts.iter().copied().min().unwrap_or(2);
    let largest = counts.iter().copied().max().unwrap_or(1);
    c.gan.train.batch_size = c.gan.train.batch_size.min(smallest).max(2);
    let keep = ((plan.ratio * largest as f64).ceil() as usize).max(1);
    let per_kept = c.gan.synth.candidates_per_class as f64 / c.gan.synth.keep_per_class as f64;
    c.gan.synth.keep_per_class = keep;
    c.gan.synth.candidates_per_class = ((keep as f64 * per_kept).ceil() as usize).max(keep);
    c.gan.mix.ratio = Some(plan.ratio);
    c.gan.gate.mode = GateMode::Warn;
    if !image {
        c.models.retain(|m| m.head.is_probe());
        c.scenarios
            .retain(|s| s.synthetic().is_none_or(|w| !w.is_images()));
    }
    c.check()
}

/// The "then real" arms' configurations: probe models refitted on their real rows anchored at
/// the first fit, models trained by `fit` fine-tuned on the real images (one configuration
/// each, the config checks keeping the two apart).
fn then_real_configs(cfg: &CheckedConfig, plan: &ScarcityPlan) -> Result<Vec<CheckedConfig>> {
    let scenarios: Vec<Scenario> = plan
        .then_real
        .iter()
        .copied()
        .filter(|s| cfg.scenarios.contains(s))
        .collect();
    if scenarios.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for probes in [true, false] {
        let mut c: ReproConfig = (**cfg).clone();
        c.models.retain(|m| m.head.is_probe() == probes);
        c.scenarios = scenarios.clone();
        if !probes {
            c.scenarios
                .retain(|s| s.synthetic().is_some_and(|w| w.is_images()));
        }
        if c.models.is_empty() || c.scenarios.is_empty() {
            continue;
        }
        c.gan.mix.probe_two_step = probes;
        c.gan.mix.finetune_real_epochs = if probes { 0 } else { plan.finetune_epochs };
        out.push(c.check()?);
    }
    Ok(out)
}

/// A cell's correctness on each test image (1 correct, 0 not).
pub(crate) fn correctness(cell: &CellResult) -> Vec<f64> {
    cell.labels
        .iter()
        .zip(&cell.probs)
        .map(|(&l, row)| {
            let best = (0..row.len()).fold(0, |b, k| if row[k] > row[b] { k } else { b });
            f64::from(u8::from(l == best))
        })
        .collect()
}

/// The outcomes of `cells` (one per resample, in resample order) at their subset's real
/// images (an oracle's worth is read from where it started, so that its extras read as their
/// number).
pub(crate) fn outcomes(cells: &[&ScarcityCell]) -> Outcomes {
    let real = cells.iter().map(|c| c.real_images as f64).sum::<f64>() / cells.len().max(1) as f64;
    Outcomes {
        real_images: real,
        by_resample: cells.iter().map(|c| correctness(&c.cell)).collect(),
    }
}

/// Summary of values, an aggregation error otherwise.
pub(crate) fn summary(values: &[f64]) -> Result<ganaug_metrics::Summary> {
    summarize(values).map_err(ExperimentError::Aggregate)
}

/// `reproduce --dry-run` of a study: every subset's units (its GANs, its cells, its "then
/// real" and oracle cells), each line named by its fraction and resample, timed once per kind
/// of step.
pub(crate) fn dry_run(
    loaded: &LoadedData,
    out: &std::path::Path,
    device: tch::Device,
    timings: &std::cell::RefCell<crate::plan::Timings<'_>>,
) -> Result<Vec<crate::plan::PlanLine>> {
    use crate::plan::Planner;
    use crate::shard::Work;
    let plan = loaded
        .cfg
        .scarcity
        .clone()
        .ok_or_else(|| ExperimentError::config("scarcity", "the configuration has no study"))?;
    let side = loaded.cfg.gan.gan.size;
    let pool = loaded.sources(side);
    let mut lines = Vec::new();
    for &f in &plan.fractions {
        for r in 0..plan.resamples as u64 {
            let sub = draw_from([pool.train, pool.val], f, r, plan.seed, plan.ratio)?;
            let data = SubsetData::of(loaded, &sub, &[])?;
            let id = hash_of(&(&loaded.data_id, &sub.digest))?;
            let image = (r as usize) < plan.image_resamples;
            let counts = data.train_counts(side)?;
            let cfg = subset_config(&loaded.cfg, &plan, (f, r), image, &counts)?;
            let oracle_data = SubsetData::of(loaded, &sub, &sub.extras)?;
            let mut configs = vec![("", cfg.clone(), &data, id.clone())];
            for then in then_real_configs(&cfg, &plan)? {
                configs.push(("then real: ", then, &data, id.clone()));
            }
            if !sub.extras.is_empty() {
                let mut c: ReproConfig = (*cfg).clone();
                c.scenarios = vec![Scenario::Raw];
                let oracle_id = oracle_id(loaded, &sub, &id)?;
                configs.push(("oracle: ", c.check()?, &oracle_data, oracle_id));
            }
            for (k, (kind, c, d, i)) in configs.iter().enumerate() {
                let sides = (&d.splits, d.streams.as_ref());
                let planner = Planner::new(c, sides, i, out, device, timings)?.with_seed_offset(r);
                for mut line in planner.lines(Work::All)? {
                    // the "then real" and oracle cells use the subset's GANs, trained once
                    if k > 0 && line.stage == "gan" {
                        continue;
                    }
                    // one numbering over the whole study (each subset's plan starts at 0)
                    line.unit = lines.len();
                    line.what = format!("f={f} r{r}: {kind}{}", line.what);
                    lines.push(line);
                }
            }
        }
    }
    Ok(lines)
}
