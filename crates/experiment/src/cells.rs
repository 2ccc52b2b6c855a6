//! The cells: one classifier trained on one scenario's training set with one seed, tested on
//! the test split. Each finished cell is kept in its folder, keyed by a hash of everything that
//! defines it, so a re-run reuses it and a killed run resumes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ganaug_augment::{expand, Pipeline};
use ganaug_data::{Splits, TensorDataset};
use ganaug_metrics::{BootstrapInterval, ClassificationReport, Proportion, ReportConfig};
use ganaug_models::{
    fit, predict, pretrained_weights, BackboneMode, Classifier, FitOptions, ModelConfig,
};

use crate::gans::{GanStage, StageContext};
use crate::probe_cells::FeatureBank;
use crate::quality::resize;
use crate::{
    hash_of, CellError, CellResult, CheckedConfig, Estimate, ExperimentError, Head, ModelPlan,
    Result, Scenario,
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
        let synthetic = self.scenario.synthetic().map(|w| {
            (
                gans.key(w, self.seed),
                &g.synth,
                g.select,
                g.mix,
                gans.replica(self.seed),
            )
        });
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
        Ok(format!(
            "{}-{}-s{}-{key}",
            self.plan.kind, self.scenario, self.seed
        ))
    }
}

/// The cells a run ended with, and those it could not give.
#[derive(Debug, Default)]
pub struct CellsRun {
    /// Finished cells (run now or before), in configuration order.
    pub cells: Vec<CellResult>,
    /// Cells not finished: another shard's, or (report-only) not yet run, by name.
    pub missing: Vec<String>,
}

/// Runs every cell of `cfg` (model × scenario × seed) that is this run's work (`ctx.work`),
/// reusing finished ones.
pub fn run_cells(
    cfg: &CheckedConfig,
    splits: &BTreeMap<i64, Splits>,
    gans: &GanStage,
    data_id: &str,
    ctx: &StageContext<'_>,
) -> Result<CellsRun> {
    run_cells_with(cfg, splits, gans, data_id, ctx, &mut FeatureBank::default())
}

/// [`run_cells`] with a feature bank kept by the caller, so that several calls on the same
/// splits (a sweep) extract each image set's backbone features once.
pub fn run_cells_with(
    cfg: &CheckedConfig,
    splits: &BTreeMap<i64, Splits>,
    gans: &GanStage,
    data_id: &str,
    ctx: &StageContext<'_>,
    bank: &mut FeatureBank,
) -> Result<CellsRun> {
    let mut done = CellsRun::default();
    let units = crate::shard::units(cfg);
    let total = cfg.models.len() * cfg.scenarios.len() * cfg.seeds;
    for (index, unit) in units.iter().enumerate() {
        let crate::shard::Unit::Cell {
            model,
            scenario,
            seed,
        } = *unit
        else {
            continue;
        };
        let plan = &cfg.models[model];
        let spec = CellSpec {
            plan,
            scenario,
            seed,
        };
        let name = format!(
            "{} × {} (seed {seed})",
            plan.kind.display_name(),
            scenario.title()
        );
        if let Some(w) = scenario
            .synthetic()
            .filter(|w| gans.refused.contains_key(w))
        {
            if seed == 0 {
                ctx.say(format!(
                    "{} × {}: not run, the {w} synthetic set was refused",
                    plan.kind.display_name(),
                    scenario.title()
                ));
            }
            continue;
        }
        let counter = done.cells.len() + done.missing.len() + 1;
        let dir = ctx.out.join("cells").join(spec.folder(cfg, gans, data_id)?);
        if let Some(cell) = finished(&dir) {
            ctx.say(format!(
                "[{counter}/{total}] {name}: finished before, reused"
            ));
            done.cells.push(cell);
            continue;
        }
        let has_set = scenario
            .synthetic()
            .is_none_or(|w| gans.set(w, seed).is_some());
        if !ctx.work.owns(index) || !has_set {
            done.missing.push(name);
            continue;
        }
        ctx.say(format!("[{counter}/{total}] {name}"));
        let _lock = if ctx.work.shared() {
            let path = ctx.out.join("locks").join(format!(
                "cell-{}.lock",
                dir.file_name()
                    .map_or_else(String::new, |f| f.to_string_lossy().into_owned())
            ));
            let lock = crate::lock::UnitLock::acquire(&path, &ctx.lock, |owner| {
                ctx.say(format!("  waiting for {owner}"));
            })?;
            // another job may have finished it while we waited
            if let Some(cell) = finished(&dir) {
                done.cells.push(cell);
                continue;
            }
            Some(lock)
        } else {
            None
        };
        let sp = &splits[&plan.image_size];
        let cell = run_cell(spec, sp, gans, cfg, &dir, ctx, bank)?;
        crate::report::write_json(&dir.join("cell.json"), &cell)?;
        ctx.say(format!(
            "  accuracy {}, AUC {}, {} epochs, {:.0} s",
            crate::report::pct(&cell.accuracy),
            cell.auc.map_or("n/a".into(), |a| format!("{:.3}", a.value)),
            cell.epochs,
            cell.seconds
        ));
        done.cells.push(cell);
    }
    Ok(done)
}

fn finished(dir: &Path) -> Option<CellResult> {
    let bytes = std::fs::read(dir.join("cell.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The training set of a cell: the training split, plus the scenario's synthetic images at the
/// model's size, plus classic-augmentation copies of all of them.
pub(crate) fn training_set(
    spec: CellSpec<'_>,
    sp: &Splits,
    gans: &GanStage,
    cfg: &CheckedConfig,
) -> Result<TensorDataset> {
    let mut train = sp.train.shallow_clone();
    let add = || -> std::result::Result<TensorDataset, CellError> {
        match synthetic_images(spec, sp, gans, cfg)? {
            Some((_, s)) => Ok(train.concat(&s)?),
            None => Ok(train.shallow_clone()),
        }
    };
    train = add().map_err(spec.fail("adding synthetic images"))?;
    if spec.scenario.uses_classic() {
        let add = || -> std::result::Result<TensorDataset, CellError> {
            let copies = expand(
                &train,
                &Pipeline::paper(),
                cfg.classic_copies,
                spec.seed,
                64,
            )?;
            Ok(train.concat(&copies)?)
        };
        train = add().map_err(spec.fail("classic augmentation"))?;
    }
    Ok(train)
}

/// The synthetic images a cell adds (its scenario's set, its replica, the mix's share), at the
/// model's size, with the set they come from; `None` when it adds none.
pub(crate) fn synthetic_images(
    spec: CellSpec<'_>,
    sp: &Splits,
    gans: &GanStage,
    cfg: &CheckedConfig,
) -> std::result::Result<Option<(crate::Synthetic, TensorDataset)>, CellError> {
    let Some(which) = spec.scenario.synthetic() else {
        return Ok(None);
    };
    let s = gans.mixed(which, spec.seed, &cfg.gan.mix, &sp.train.class_counts())?;
    if s.is_empty() {
        return Ok(None);
    }
    let images = TensorDataset::new(
        resize(&s.images, spec.plan.image_size)?,
        s.labels.shallow_clone(),
        s.names.clone(),
        s.class_names.clone(),
        s.description.clone(),
    )?;
    Ok(Some((which, images)))
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
}

/// The model of a cell, with ImageNet weights when the plan asks for them and they are there;
/// returns it with the training config to use and how its weights started.
pub(crate) fn build_model(
    spec: CellSpec<'_>,
    data: &TensorDataset,
    device: tch::Device,
) -> Result<(Classifier, ganaug_models::TrainConfig, Start)> {
    let plan = spec.plan;
    let mcfg = ModelConfig {
        bf16: plan.bf16,
        pooled_stages: plan.pooled_stages,
        head: plan.head.arch(),
        ..ModelConfig::new(plan.kind, plan.image_size)
            .for_data(data.class_names.len() as i64, data.channels())
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

fn run_cell(
    spec: CellSpec<'_>,
    sp: &Splits,
    gans: &GanStage,
    cfg: &CheckedConfig,
    dir: &Path,
    ctx: &StageContext<'_>,
    bank: &mut FeatureBank,
) -> Result<CellResult> {
    let t0 = Instant::now();
    std::fs::create_dir_all(dir).map_err(|e| ExperimentError::io(dir, e))?;
    if let Head::Probe {
        probe,
        tta_flip,
        fit_on_val,
        views,
    } = &spec.plan.head
    {
        let opts = crate::probe_cells::ProbeOptions {
            probe,
            tta_flip: *tta_flip,
            fit_on_val: *fit_on_val,
            views: *views,
        };
        let trained = crate::probe_cells::probe_cell(spec, sp, gans, cfg, dir, ctx, bank, &opts)?;
        return finish(spec, sp, trained, t0, dir, ctx);
    }
    let train = training_set(spec, sp, gans, cfg)?;
    let (mut model, tcfg, weights) = build_model(spec, &sp.train, ctx.device)?;
    if let Head::LpFt { probe } = &spec.plan.head {
        if weights == Start::Scratch {
            return Err(spec.fail("loading ImageNet weights")(CellError::Missing(
                "LP-FT needs the backbone's ImageNet weights file (see scripts/setup.sh)",
            )));
        }
        crate::probe_cells::start_head_from_probe(&mut model, &train, &sp.val, probe)
            .map_err(spec.fail("fitting the starting probe"))?;
    }
    let opts = FitOptions {
        out_dir: Some(dir),
        resume: true,
        progress: ctx.progress,
        ..Default::default()
    };
    let fitted = fit(&mut model, &train, &sp.val, &tcfg, &opts)
        .map_err(|e| spec.fail("training")(e.into()))?;
    let mut stop = format!("{:?}", fitted.stop);
    let (mut epochs, mut feature_seconds) = (fitted.history.len(), fitted.feature_seconds);
    let finetune = cfg.gan.mix.finetune_real_epochs;
    if finetune > 0 && spec.scenario.synthetic().is_some() {
        // the same scenario without its synthetic images
        let real_only = if spec.scenario.uses_classic() {
            Scenario::Classic
        } else {
            Scenario::Raw
        };
        let real_spec = CellSpec {
            scenario: real_only,
            ..spec
        };
        let real = training_set(real_spec, sp, gans, cfg)?;
        let tuned = ganaug_models::TrainConfig {
            max_epochs: finetune,
            lr: tcfg.lr * 0.1,
            stop_at_train_accuracy: None,
            min_epochs: 0,
            warmup_epochs: 0,
            ..tcfg.clone()
        };
        let sub = dir.join("finetune-real");
        let opts = FitOptions {
            out_dir: Some(&sub),
            ..opts
        };
        let again = fit(&mut model, &real, &sp.val, &tuned, &opts)
            .map_err(|e| spec.fail("fine-tuning on real images")(e.into()))?;
        stop = format!(
            "{stop}, then {} epochs on real images (best {})",
            again.history.len(),
            again.best_epoch
        );
        epochs += again.history.len();
        feature_seconds += again.feature_seconds;
    }
    let pred = predict(&model, &sp.test).map_err(|e| spec.fail("testing")(e.into()))?;
    let trained = Trained {
        weights: weights.describe(),
        train_images: train.len(),
        labels: pred.labels,
        probs: pred.probs,
        epochs,
        best_epoch: fitted.best_epoch,
        stop,
        feature_seconds,
    };
    finish(spec, sp, trained, t0, dir, ctx)
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
    /// Why training stopped.
    pub stop: String,
    /// Seconds of backbone feature extraction.
    pub feature_seconds: f64,
}

/// The test metrics of a trained cell.
fn finish(
    spec: CellSpec<'_>,
    sp: &Splits,
    t: Trained,
    t0: Instant,
    dir: &Path,
    ctx: &StageContext<'_>,
) -> Result<CellResult> {
    let rcfg = ReportConfig::with_class_names(sp.test.class_names.clone());
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
        None => {
            return Err(spec.fail("metrics")(CellError::Missing(
                "no positive class",
            )))
        }
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
        dir: crate::gans::relative(dir, ctx.out),
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
