//! The cells: one classifier trained on one scenario's training set with one seed, tested on
//! the test split. Each finished cell is kept in its folder, keyed by a hash of everything that
//! defines it, so a re-run reuses it and a killed run resumes. How a cell trains depends on its
//! head ([`CellTrainer`]: the dense head, LP-FT, the linear probe).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ganaug_data::{ImageSource, Splits};
use ganaug_models::{
    fit_source, predict_source, pretrained_weights, BackboneMode, Classifier, FitOptions,
    ModelConfig, ProbeConfig,
};

use crate::gans::{GanStage, StageContext};
use crate::layout::Layout;
use crate::probe_cells::FeatureBank;
use crate::results::{CellStop, FineTuned};
use crate::scoring::cell_result;
use crate::training_set::with_training_set;
use crate::{
    hash_of, CellError, CellResult, CheckedConfig, ExperimentError, ModelPlan, Result, Scenario,
};

/// One cell to run: which model, scenario and seed.
#[derive(Debug, Clone, Copy)]
pub struct CellSpec<'a> {
    /// The model and how it trains.
    pub plan: &'a ModelPlan,
    /// The training-set scenario.
    pub scenario: Scenario,
    /// The seed.
    pub seed: u64,
}

impl CellSpec<'_> {
    pub(crate) fn fail(
        &self,
        stage: &'static str,
    ) -> impl FnOnce(CellError) -> ExperimentError + '_ {
        move |source| ExperimentError::Cell {
            model: self.plan.kind,
            scenario: self.scenario,
            seed: self.seed,
            stage,
            source: Box::new(source),
        }
    }

    /// The cell's folder name: model, scenario, seed and the hash of what defines it.
    pub(crate) fn folder(
        &self,
        cfg: &CheckedConfig,
        gans: &GanStage,
        data_id: &str,
    ) -> Result<String> {
        let g = &cfg.gan;
        let replica = gans.replica(self.seed);
        let synthetic = match self.scenario.synthetic() {
            // a feature GAN trains inside the cell: its settings and seed define it
            Some(w @ crate::Synthetic::Features) => {
                Some((w, Some(hash_of(&(&g.features, g.train.seed + replica))?)))
            }
            Some(w) => Some((w, gans.key(w, self.seed).cloned())),
            None => None,
        }
        .map(|(_, key)| (key, &g.synth, g.select, g.mix, replica));
        let key = hash_of(&(
            self.plan,
            self.scenario,
            self.seed,
            data_id,
            cfg.resize,
            cfg.classic_copies,
            synthetic,
            weights_identity(self.plan),
        ))?;
        Ok(Layout::cell_name(
            self.plan.kind,
            self.scenario,
            self.seed,
            &key,
        ))
    }

    fn name(&self) -> String {
        format!(
            "{} × {} (seed {})",
            self.plan.kind.display_name(),
            self.scenario.title(),
            self.seed
        )
    }
}

/// What every cell of a run shares: the configuration, the data at every side, the GAN stage,
/// the data's fingerprint, where and how the run works, and the backbone features computed so
/// far.
pub struct Experiment<'a> {
    /// The configuration.
    pub cfg: &'a CheckedConfig,
    /// The splits, by image side.
    pub splits: &'a BTreeMap<i64, Splits>,
    /// The same splits streamed from the decode cache, by side, when the run streams: the
    /// cells read these instead.
    pub streams: Option<&'a BTreeMap<i64, ganaug_data::StreamSplits>>,
    /// The trained GANs and their synthetic sets.
    pub gans: &'a GanStage,
    /// The fingerprint of the data.
    pub data_id: &'a str,
    /// The folder, the device, the observer, the work that is this run's.
    pub ctx: &'a StageContext<'a>,
    /// Backbone features computed once per run (or sweep) and image set.
    pub bank: &'a mut FeatureBank,
    /// Added to every cell's seed (a scarcity study's resample `r` trains its cells with
    /// seed `r`); 0 in an ordinary run.
    pub seed_offset: u64,
    /// The fingerprint of the data whose test split the cells are tested on: its features are
    /// shared by every subset of a study (the test split is the same).
    pub test_data_id: &'a str,
}

/// How one kind of cell trains its classifier and tests it (one implementation per head).
pub(crate) trait CellTrainer {
    /// Trains the cell's classifier into `dir` and tests it on the test split.
    fn train(&self, exp: &mut Experiment<'_>, spec: CellSpec<'_>, dir: &Path) -> Result<Trained>;
}

/// The cells a run ended with, and those it could not give.
#[derive(Debug, Default)]
pub struct CellsRun {
    /// Finished cells (run now or before), in configuration order.
    pub cells: Vec<CellResult>,
    /// Cells not finished: another shard's, or (report-only) not yet run, by name.
    pub missing: Vec<String>,
    /// Cells that cannot exist (feature vectors for a CNN), with why.
    pub not_applicable: Vec<String>,
    /// Feature GANs the cells trained (or reused).
    pub gans: Vec<crate::GanSummary>,
    /// Their sets' measures.
    pub synthetic: Vec<crate::SynthSummary>,
    /// Feature sets the gate refused.
    pub refused: Vec<crate::RefusedSet>,
}

/// Runs every cell of `cfg` (model × scenario × seed) that is this run's work (`ctx.work`),
/// reusing finished ones.
pub fn run_cells(
    cfg: &CheckedConfig,
    splits: &BTreeMap<i64, Splits>,
    streams: Option<&BTreeMap<i64, ganaug_data::StreamSplits>>,
    gans: &GanStage,
    data_id: &str,
    ctx: &StageContext<'_>,
) -> Result<CellsRun> {
    let mut bank = FeatureBank::default();
    let mut exp = Experiment {
        cfg,
        splits,
        streams,
        gans,
        data_id,
        ctx,
        bank: &mut bank,
        seed_offset: 0,
        test_data_id: data_id,
    };
    exp.run_cells()
}

impl<'a> Experiment<'a> {
    /// The splits at `side` as the cells read them: the streams when the run streams, else
    /// the splits in memory.
    pub(crate) fn sources(&self, side: i64) -> crate::sources::SplitSources<'a> {
        crate::sources::SplitSources::of(self.splits, self.streams, side)
    }
}

impl Experiment<'_> {
    /// Runs every cell of the configuration that is this run's work, reusing finished ones
    /// (several calls on one bank, as a sweep makes, extract each image set's features once).
    pub fn run_cells(&mut self) -> Result<CellsRun> {
        let mut done = CellsRun::default();
        let units = crate::shard::units(self.cfg);
        let total = self.cfg.models.len() * self.cfg.scenarios.len() * self.cfg.seeds;
        for (index, unit) in units.iter().enumerate() {
            let crate::shard::Unit::Cell {
                model,
                scenario,
                seed,
            } = *unit
            else {
                continue;
            };
            let spec = CellSpec {
                plan: &self.cfg.models[model],
                scenario,
                seed: seed + self.seed_offset,
            };
            if self.refused(spec) || self.not_applicable(spec, &mut done) {
                continue;
            }
            if spec.scenario.synthetic() == Some(crate::Synthetic::Features) {
                match self.feature_set(spec)? {
                    // report-only, its GAN not trained: the cell cannot be there either
                    None => {
                        done.missing.push(spec.name());
                        continue;
                    }
                    Some(set) if self.feature_set_refused(spec, &set, &mut done) => continue,
                    Some(_) => {}
                }
            }
            let counter = done.cells.len() + done.missing.len() + 1;
            match self.cell(spec, index, &format!("[{counter}/{total}]"))? {
                Some(cell) => done.cells.push(cell),
                None => done.missing.push(spec.name()),
            }
        }
        done.gans.append(&mut self.bank.gans);
        done.synthetic.append(&mut self.bank.synthetic);
        Ok(done)
    }

    /// Whether the cell cannot exist: feature vectors for a classifier that trains on images
    /// (said once, at seed 0, and recorded).
    fn not_applicable(&self, spec: CellSpec<'_>, done: &mut CellsRun) -> bool {
        let vectors = spec.scenario.synthetic() == Some(crate::Synthetic::Features);
        if !vectors || spec.plan.head.is_probe() {
            return false;
        }
        if spec.seed == 0 {
            let why = format!(
                "{} × {}: not applicable, the feature GAN makes feature vectors and {} trains on images",
                spec.plan.kind.display_name(),
                spec.scenario.title(),
                spec.plan.kind.display_name()
            );
            self.ctx.say(&why);
            done.not_applicable.push(why);
        }
        true
    }

    /// Trains (or reuses) the feature GAN `spec` needs and says whether the gate refused its
    /// set (in `refuse` mode its cells are not run; in `warn` mode they are, announced).
    fn feature_set_refused(
        &mut self,
        spec: CellSpec<'_>,
        set: &crate::fgan_stage::FeatureSet,
        done: &mut CellsRun,
    ) -> bool {
        if set.failures.is_empty() {
            return false;
        }
        let refuse = self.cfg.gan.gate.mode == crate::GateMode::Refuse;
        let name = format!(
            "features/{} (replica {})",
            spec.plan.kind,
            self.gans.replica(spec.seed)
        );
        let already = done
            .refused
            .iter()
            .any(|r| r.reasons.iter().any(|x| x.starts_with(&name)));
        if !already {
            let verdict = if refuse {
                "REFUSED: its cells are not run (reproduce --allow-poor-synthetic uses it anyway)"
            } else {
                "WARNING: used anyway (gate mode warn)"
            };
            // Said even without progress output: a broken set must not pass silently.
            eprintln!("synthetic set {name} {verdict}");
            for x in &set.failures {
                eprintln!("  {x}");
            }
            if refuse {
                done.refused.push(crate::RefusedSet {
                    gan: crate::Synthetic::Features,
                    reasons: set
                        .failures
                        .iter()
                        .map(|x| format!("{name}: {x}"))
                        .collect(),
                });
            }
        }
        refuse
    }

    /// Whether the gate refused the synthetic set `spec` needs (said once, at seed 0).
    fn refused(&self, spec: CellSpec<'_>) -> bool {
        let Some(w) = spec
            .scenario
            .synthetic()
            .filter(|w| self.gans.refused.contains_key(w))
        else {
            return false;
        };
        if spec.seed == 0 {
            self.ctx.say(format!(
                "{} × {}: not run, the {w} synthetic set was refused",
                spec.plan.kind.display_name(),
                spec.scenario.title()
            ));
        }
        true
    }

    /// One cell (unit `index`): reused when finished, trained when it is this run's work and
    /// its synthetic set exists (under its lock in a shared folder), else `None`.
    fn cell(
        &mut self,
        spec: CellSpec<'_>,
        index: usize,
        counter: &str,
    ) -> Result<Option<CellResult>> {
        let (ctx, layout) = (self.ctx, &self.ctx.layout);
        let folder = spec.folder(self.cfg, self.gans, self.data_id)?;
        let dir = layout.cell_dir(&folder);
        if let Some(cell) = finished(&dir) {
            ctx.say(format!(
                "{counter} {}: finished before, reused",
                spec.name()
            ));
            return Ok(Some(cell));
        }
        let has_set = spec.scenario.synthetic().is_none_or(|w| {
            w == crate::Synthetic::Features || self.gans.set(w, spec.seed).is_some()
        });
        if !ctx.work.owns(index) || !has_set {
            return Ok(None);
        }
        ctx.say(format!("{counter} {}", spec.name()));
        let units = crate::shard::units(self.cfg).len();
        ctx.observer
            .unit_started("cell", &spec.name(), index + 1, units);
        let _lock = if ctx.work.shared() {
            let lock =
                crate::lock::UnitLock::acquire(&layout.cell_lock(&folder), &ctx.lock, |owner| {
                    ctx.say(format!("  waiting for {owner}"));
                })?;
            // another job may have finished it while we waited
            if let Some(cell) = finished(&dir) {
                return Ok(Some(cell));
            }
            Some(lock)
        } else {
            None
        };
        let cell = self.run_cell(spec, &dir)?;
        crate::report::write_json(&Layout::cell_result(&dir), &cell)?;
        ctx.say(format!(
            "  accuracy {}, AUC {}, {} epochs, {:.0} s",
            crate::report::pct(&cell.accuracy),
            cell.auc.map_or("n/a".into(), |a| format!("{:.3}", a.value)),
            cell.epochs,
            cell.seconds
        ));
        Ok(Some(cell))
    }

    fn run_cell(&mut self, spec: CellSpec<'_>, dir: &Path) -> Result<CellResult> {
        let t0 = Instant::now();
        std::fs::create_dir_all(dir).map_err(|e| ExperimentError::io(dir, e))?;
        let trained = spec.plan.head.trainer().train(self, spec, dir)?;
        let sp = self.sources(spec.plan.image_size);
        cell_result(spec, sp, trained, t0, &self.ctx.layout.relative(dir))
    }
}

fn finished(dir: &Path) -> Option<CellResult> {
    let bytes = std::fs::read(Layout::cell_result(dir)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// How a cell's weights started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// From the ImageNet weights file, with this backbone mode.
    ImageNet(BackboneMode),
    /// From scratch (not asked for ImageNet weights, or their file is not installed).
    Scratch,
}

impl Start {
    /// In words, for the report.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Start::ImageNet(BackboneMode::Frozen) => "ImageNet (frozen backbone)",
            Start::ImageNet(BackboneMode::Train) => "ImageNet (fine-tuned)",
            Start::ImageNet(BackboneMode::UnfreezeAfter(_)) => "ImageNet (unfrozen later)",
            Start::Scratch => "trained from scratch",
        }
    }

    /// An error unless the weights came from ImageNet (`needed_by` needs them).
    pub(crate) fn require_imagenet(
        self,
        spec: CellSpec<'_>,
        needed_by: &'static str,
    ) -> Result<()> {
        if self == Start::Scratch {
            return Err(spec.fail("loading ImageNet weights")(CellError::Weights {
                needed_by,
                model: spec.plan.kind.display_name(),
            }));
        }
        Ok(())
    }
}

/// The model of a cell, with ImageNet weights when the plan asks for them and they are there;
/// returns it with the training config to use and how its weights started.
pub(crate) fn build_model(
    spec: CellSpec<'_>,
    data: &dyn ImageSource,
    device: tch::Device,
) -> Result<(Classifier, ganaug_models::TrainConfig, Start)> {
    let plan = spec.plan;
    let mcfg = ModelConfig {
        bf16: plan.bf16,
        pooled_stages: plan.pooled_stages,
        head: plan.head.arch(),
        ..ModelConfig::new(plan.kind, plan.image_size)
            .for_data(data.class_names().len() as i64, data.channels())
    };
    tch::manual_seed(ganaug_data::epoch_seed(spec.seed, 1 << 20) as i64);
    let mut model =
        Classifier::new(mcfg, device).map_err(|e| spec.fail("building the model")(e.into()))?;
    let mut tcfg = plan.train.clone();
    tcfg.seed = spec.seed;
    let weights = match (plan.imagenet, pretrained_weights(plan.kind)) {
        (true, Some(path)) => {
            model
                .load_backbone_weights(&path)
                .map_err(|e| spec.fail("loading ImageNet weights")(e.into()))?;
            tcfg.backbone = plan.pretrained_backbone;
            Start::ImageNet(plan.pretrained_backbone)
        }
        _ => {
            tcfg.backbone = BackboneMode::Train;
            Start::Scratch
        }
    };
    Ok((model, tcfg, weights))
}

/// A cell whose classifier trains by `fit`: the paper's dense head from its initial weights,
/// or (LP-FT) a linear head started from a probe on the frozen ImageNet features.
pub(crate) struct FitCell<'a> {
    /// LP-FT's probe, which starts the head.
    pub(crate) start_probe: Option<&'a ProbeConfig>,
}

impl CellTrainer for FitCell<'_> {
    fn train(&self, exp: &mut Experiment<'_>, spec: CellSpec<'_>, dir: &Path) -> Result<Trained> {
        let (cfg, gans) = (exp.cfg, exp.gans);
        let sp = exp.sources(spec.plan.image_size);
        let (mut model, tcfg, weights) = build_model(spec, sp.train, exp.ctx.device)?;
        let opts = FitOptions {
            out_dir: Some(dir),
            resume: true,
            observer: Some(exp.ctx.observer),
            ..Default::default()
        };
        let (fitted, train_images) = with_training_set(spec, sp.train, gans, cfg, |train| {
            if let Some(probe) = self.start_probe {
                weights.require_imagenet(spec, "LP-FT")?;
                crate::probe_cells::start_head_from_probe(&mut model, train, sp.val, probe)
                    .map_err(spec.fail("fitting the starting probe"))?;
            }
            let fitted = fit_source(&mut model, train, sp.val, &tcfg, &opts)
                .map_err(|e| spec.fail("training")(e.into()))?;
            Ok((fitted, train.len()))
        })?;
        let then = fine_tune_on_real(exp, spec, &mut model, &tcfg, dir)?;
        let test = sp.test;
        let pred = predict_source(&model, test).map_err(|e| spec.fail("testing")(e.into()))?;
        let extra = then.as_ref().map_or((0, 0.0), |(t, s)| (t.epochs, *s));
        Ok(Trained {
            weights: weights.describe(),
            train_images,
            labels: pred.labels,
            probs: pred.probs,
            epochs: fitted.history.len() + extra.0,
            best_epoch: fitted.best_epoch,
            stop: CellStop::Fit {
                fit: fitted.stop,
                then_real: then.map(|(t, _)| t),
            },
            feature_seconds: fitted.feature_seconds + extra.1,
        })
    }
}

/// After training with synthetic images, `gan.mix.finetune_real_epochs` epochs on the same
/// scenario's real images alone at a tenth of the rate, in the cell's `finetune-real` folder;
/// `None` when not configured or the scenario adds no synthetic images. Returns the epochs and
/// the seconds of feature extraction.
fn fine_tune_on_real(
    exp: &Experiment<'_>,
    spec: CellSpec<'_>,
    model: &mut Classifier,
    tcfg: &ganaug_models::TrainConfig,
    dir: &Path,
) -> Result<Option<(FineTuned, f64)>> {
    let epochs = exp.cfg.gan.mix.finetune_real_epochs;
    if epochs == 0 || spec.scenario.synthetic().is_none() {
        return Ok(None);
    }
    let real_spec = CellSpec {
        scenario: spec.scenario.without_synthetic(),
        ..spec
    };
    let sp = exp.sources(spec.plan.image_size);
    let tuned = ganaug_models::TrainConfig {
        max_epochs: epochs,
        lr: tcfg.lr * 0.1,
        stop_at_train_accuracy: None,
        min_epochs: 0,
        warmup_epochs: 0,
        ..tcfg.clone()
    };
    let sub = Layout::finetune_dir(dir);
    let opts = FitOptions {
        out_dir: Some(&sub),
        resume: true,
        observer: Some(exp.ctx.observer),
        ..Default::default()
    };
    let again = with_training_set(real_spec, sp.train, exp.gans, exp.cfg, |real| {
        fit_source(model, real, sp.val, &tuned, &opts)
            .map_err(|e| spec.fail("fine-tuning on real images")(e.into()))
    })?;
    let done = FineTuned {
        epochs: again.history.len(),
        best_epoch: again.best_epoch,
    };
    Ok(Some((done, again.feature_seconds)))
}

/// What training and testing one cell gave, before the metrics.
pub(crate) struct Trained {
    /// How the weights started, in words.
    pub weights: &'static str,
    /// Training images (after augmentation).
    pub train_images: usize,
    /// Test labels.
    pub labels: Vec<usize>,
    /// Test probabilities `[N, classes]`.
    pub probs: ndarray::Array2<f64>,
    /// Epochs (a probe: L-BFGS iterations of the chosen fit).
    pub epochs: usize,
    /// Epoch of the restored weights (a probe: 0).
    pub best_epoch: usize,
    /// How training ended.
    pub stop: CellStop,
    /// Seconds of backbone feature extraction.
    pub feature_seconds: f64,
}

/// The ImageNet weight file a plan would use (file name, size, modification time — not its
/// folder, so that moving the weights keeps the cells), if any.
fn weights_identity(plan: &ModelPlan) -> Option<String> {
    let path: PathBuf = pretrained_weights(plan.kind).filter(|_| plan.imagenet)?;
    let meta = std::fs::metadata(&path).ok()?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let name = path.file_name()?.to_string_lossy().into_owned();
    Some(format!("{name} {} {modified}", meta.len()))
}
