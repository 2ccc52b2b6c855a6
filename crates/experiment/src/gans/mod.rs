//! The GAN stage: train (or resume) each GAN the scenarios need, synthesize and select each
//! class's images, and score them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use ganaug_train::Observer;
use tch::{Device, Tensor};

use ganaug_data::{AnySource, ImageSource, TensorDataset};
use ganaug_gan::{synthetic_dataset, ClassModel, GanConfig, GanTrainer};

use crate::layout::{replica_name, GanUnit, Layout};
use crate::quality::Quality;
use crate::{hash_of, CheckedConfig, ExperimentError, GanSummary, Result, SynthSummary, Synthetic};

mod sets;
use sets::synthesize;
pub(crate) use sets::{export_set, gate_measures, score_set, KeptSet};

/// What the GAN stage hands on: the trained GANs, each synthetic set's quality, the sets, and
/// the key of each GAN (for the cells' cache keys), by synthetic set and replica.
#[derive(Default)]
pub struct GanStage {
    /// The trained GANs.
    pub gans: Vec<GanSummary>,
    /// Every synthetic class set with its measures.
    pub synthetic: Vec<SynthSummary>,
    /// The assembled synthetic training sets (each class's images in selection order): in
    /// memory, or — when the run streams — read from the set file written with them.
    pub sets: BTreeMap<(Synthetic, u64), AnySource>,
    /// The key of each GAN's folder (what defines that GAN alone).
    pub keys: BTreeMap<(Synthetic, u64), String>,
    /// Sets the gate refused (any replica), with each failing class's reasons.
    pub refused: BTreeMap<Synthetic, Vec<String>>,
    /// GAN replicas per synthetic set.
    pub replicas: u64,
    /// GANs this run needed but did not have finished (report-only runs), by name.
    pub missing: Vec<String>,
    /// The edit GAN's sets as edits (source names and changes), by replica: a cell applies
    /// them to its own real images at its side.
    pub edits: BTreeMap<u64, ganaug_gan::EditSet>,
}

impl GanStage {
    /// The replica a cell of `seed` uses.
    pub fn replica(&self, seed: u64) -> u64 {
        seed % self.replicas.max(1)
    }

    /// The synthetic set `which` for a cell of `seed`.
    pub fn set(&self, which: Synthetic, seed: u64) -> Option<&AnySource> {
        self.sets.get(&(which, self.replica(seed)))
    }

    /// The key of the GAN behind the set a cell of `seed` uses.
    pub fn key(&self, which: Synthetic, seed: u64) -> Option<&String> {
        self.keys.get(&(which, self.replica(seed)))
    }

    /// The synthetic images a cell of `seed` adds to the real training split whose class
    /// counts are `real_counts`: with a `mix.ratio`, the first `round(ratio × count)` kept
    /// images of each class (selection order); otherwise all of them.
    pub fn mixed(
        &self,
        which: Synthetic,
        seed: u64,
        mix: &crate::SynthMix,
        real_counts: &[usize],
    ) -> std::result::Result<AnySource, crate::CellError> {
        let set = self
            .set(which, seed)
            .ok_or(crate::CellError::NoSyntheticSet(which))?;
        match self.mixed_rows(set, mix, real_counts)? {
            Some(rows) => Ok(set.subset(&rows)?),
            None => Ok(set.shallow_clone()),
        }
    }

    /// The rows of `set` (labels in selection order within each class) a mix keeps: `None`
    /// for all of them (no ratio).
    pub fn mixed_rows(
        &self,
        set: &dyn ImageSource,
        mix: &crate::SynthMix,
        real_counts: &[usize],
    ) -> std::result::Result<Option<Vec<i64>>, crate::CellError> {
        let Some(ratio) = mix.ratio else {
            return Ok(None);
        };
        let labels = Vec::<i64>::try_from(&set.labels().f_to_device(Device::Cpu)?)?;
        let mut keep = Vec::new();
        for (label, &count) in real_counts.iter().enumerate() {
            let want = (ratio * count as f64).round() as usize;
            let have: Vec<i64> = (0..labels.len() as i64)
                .filter(|&i| labels[i as usize] == label as i64)
                .collect();
            if want > have.len() {
                return Err(crate::CellError::MixRatio {
                    ratio,
                    class: set.class_names()[label].clone(),
                    wanted: want,
                    real: count,
                    kept: have.len(),
                });
            }
            keep.extend_from_slice(&have[..want]);
        }
        Ok(Some(keep))
    }
}

/// Where the stage writes, who hears of it, and which units of work are its to do.
pub struct StageContext<'a> {
    /// The results folder's layout.
    pub layout: Layout,
    /// The device.
    pub device: Device,
    /// Who hears of the stages and of each training epoch.
    pub observer: &'a dyn Observer,
    /// All units, one shard's, or none (report only).
    pub work: crate::shard::Work,
    /// Lock timing when several jobs share the folder.
    pub lock: crate::lock::LockPolicy,
}

impl<'a> StageContext<'a> {
    /// A context doing every unit of work itself into `out` (created), with the default lock
    /// policy: a run that shares its folder with no other job.
    pub fn alone(out: &Path, device: Device, observer: &'a dyn Observer) -> Result<Self> {
        std::fs::create_dir_all(out).map_err(|e| ExperimentError::io(out, e))?;
        Ok(StageContext {
            layout: Layout::new(out),
            device,
            observer,
            work: crate::shard::Work::All,
            lock: crate::lock::LockPolicy::default(),
        })
    }

    pub(crate) fn say(&self, msg: impl AsRef<str>) {
        self.observer.message(msg.as_ref());
    }
}

/// The conditional GAN's configuration: the per-class one with `n_classes` labels and its own
/// epochs.
pub(crate) fn cgan_configs(
    cfg: &CheckedConfig,
    classes: usize,
    r: u64,
) -> (GanConfig, ganaug_gan::TrainConfig) {
    (
        GanConfig {
            n_classes: Some(classes as i64),
            conditioning: cfg.gan.cgan_conditioning,
            ..cfg.gan.gan.clone()
        },
        ganaug_gan::TrainConfig {
            epochs: cfg.gan.cgan_epochs,
            ..replica_train(cfg, r)
        },
    )
}

/// The per-class GANs' training settings for replica `r` (seed `train.seed + r`).
pub(crate) fn replica_train(cfg: &CheckedConfig, r: u64) -> ganaug_gan::TrainConfig {
    ganaug_gan::TrainConfig {
        seed: cfg.gan.train.seed + r,
        ..cfg.gan.train.clone()
    }
}

/// Runs the stage for the synthetic sets `cfg`'s scenarios need, on the training split `train`
/// (at the GAN's size, in memory or streamed: each class's GAN trains on, and its candidates
/// are compared with, that class's part of it) whose data has fingerprint `data_id`.
pub fn run_gans(
    cfg: &CheckedConfig,
    train: &AnySource,
    data_id: &str,
    ctx: &StageContext<'_>,
) -> Result<GanStage> {
    let class_names = train.class_names();
    let mut stage = GanStage {
        replicas: cfg.gan.replicas,
        keys: gan_keys(cfg, class_names.len(), data_id)?,
        ..GanStage::default()
    };
    let (needs_gan, needs_cgan, needs_edits) = (
        cfg.needs(Synthetic::PerClass),
        cfg.needs(Synthetic::Conditional),
        cfg.needs(Synthetic::Edits),
    );
    if !needs_gan && !needs_cgan && !needs_edits {
        return Ok(stage);
    }
    let mut quality = Quality::with_network(ctx.device, train.channels(), cfg.gan.extractor)?;
    let inputs = GanInputs {
        cfg,
        train,
        subsets: (0..class_names.len() as i64)
            .map(|label| train.class_subset(label))
            .collect::<std::result::Result<Vec<_>, _>>()?,
        ctx,
    };
    // only the replicas some seed uses, and of those only what this run's work needs
    let units = crate::shard::units(cfg);
    let started = |which: Synthetic, replica: u64| {
        let unit = crate::shard::Unit::Gan { which, replica };
        let index = units.iter().position(|u| *u == unit).map_or(0, |i| i + 1);
        let what = format!("{which} GAN(s), replica {replica}");
        ctx.observer.unit_started("gan", &what, index, units.len());
    };
    for r in 0..cfg.gan.replicas.min(cfg.seeds as u64) {
        if needs_gan && wanted(cfg, ctx, Synthetic::PerClass, r) {
            started(Synthetic::PerClass, r);
            per_class_gans(&inputs, r, &mut stage, &mut quality)?;
        }
        if needs_cgan && wanted(cfg, ctx, Synthetic::Conditional, r) {
            started(Synthetic::Conditional, r);
            let cgan = cgan_configs(cfg, class_names.len(), r);
            conditional_gan(&inputs, cgan, r, &mut stage, &mut quality)?;
        }
        if needs_edits && wanted(cfg, ctx, Synthetic::Edits, r) {
            started(Synthetic::Edits, r);
            crate::edit_stage::edit_gan(&inputs, r, &mut stage, &mut quality)?;
        }
    }
    Ok(stage)
}

/// What the GANs of a stage train on and where: the configuration, the training split and each
/// class's part of it (in memory or streamed), the stage's context.
pub(crate) struct GanInputs<'a> {
    pub(crate) cfg: &'a CheckedConfig,
    pub(crate) train: &'a AnySource,
    pub(crate) subsets: Vec<AnySource>,
    pub(crate) ctx: &'a StageContext<'a>,
}

/// The key of every GAN folder (what defines that GAN alone), by set and replica, for data
/// with `classes` classes and fingerprint `data_id`.
pub fn gan_keys(
    cfg: &CheckedConfig,
    classes: usize,
    data_id: &str,
) -> Result<BTreeMap<(Synthetic, u64), String>> {
    let mut keys = BTreeMap::new();
    for r in 0..cfg.gan.replicas {
        let cgan = cgan_configs(cfg, classes, r);
        keys.insert(
            (Synthetic::PerClass, r),
            hash_of(&(&cfg.gan.gan, &replica_train(cfg, r), data_id, cfg.resize))?,
        );
        keys.insert(
            (Synthetic::Conditional, r),
            hash_of(&(&cgan, data_id, cfg.resize))?,
        );
        if let Some(edits) = &cfg.gan.edits {
            let what = (edits, cfg.gan.gan.size, cfg.gan.gan.channels, classes);
            let seed = cfg.gan.train.seed + r;
            keys.insert(
                (Synthetic::Edits, r),
                hash_of(&(what, seed, data_id, cfg.resize))?,
            );
        }
    }
    Ok(keys)
}

/// Whether this run needs the set `which` of replica `r`: always, except in a shard that
/// neither owns its GAN unit nor owns a cell that uses it.
fn wanted(cfg: &CheckedConfig, ctx: &StageContext<'_>, which: Synthetic, r: u64) -> bool {
    use crate::shard::{units, Unit, Work};
    let Work::Shard(shard) = ctx.work else {
        return true;
    };
    let replicas = cfg.gan.replicas.max(1);
    units(cfg)
        .iter()
        .enumerate()
        .filter(|(i, _)| shard.owns(*i))
        .any(|(_, u)| match *u {
            Unit::Gan { which: w, replica } => w == which && replica == r,
            Unit::Cell { scenario, seed, .. } => {
                scenario.synthetic() == Some(which) && seed % replicas == r
            }
        })
}

/// Holds the lock of the GAN unit `which`/`r` while `f` trains it, when jobs share the folder.
pub(crate) fn under_gan_lock<T>(
    ctx: &StageContext<'_>,
    which: Synthetic,
    key: &str,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    if !ctx.work.shared() {
        return f();
    }
    let path = ctx.layout.gan_lock(which, key);
    let _lock = crate::lock::UnitLock::acquire(&path, &ctx.lock, |owner| {
        ctx.say(format!("GAN {which} ({key}): waiting for {owner}"));
    })?;
    f()
}

/// One GAN per class, each trained on its class's images, then its synthetic set.
fn per_class_gans(
    inputs: &GanInputs<'_>,
    r: u64,
    stage: &mut GanStage,
    quality: &mut Quality,
) -> Result<()> {
    let (cfg, subsets, ctx) = (inputs.cfg, &inputs.subsets[..], inputs.ctx);
    let key = stage.keys[&(Synthetic::PerClass, r)].clone();
    let trained = under_gan_lock(ctx, Synthetic::PerClass, &key, || {
        let mut trained = Vec::new();
        for (label, subset) in subsets.iter().enumerate() {
            let class = &subset.class_names()[label];
            let dir = ctx.layout.gan_dir(GanUnit {
                which: Synthetic::PerClass,
                class: Some(class),
                key: &key,
            });
            let name = replica_name(&format!("per-class/{class}"), r);
            let (gan, tcfg) = (cfg.gan.gan.clone(), replica_train(cfg, r));
            match train_gan(gan, tcfg, subset, &dir, ctx, name.clone())? {
                Some(t) => trained.push(t),
                None => return Ok(Err(name)),
            }
        }
        Ok(Ok(trained))
    })?;
    let trained = match trained {
        Ok(t) => t,
        Err(name) => {
            stage.missing.push(name);
            return Ok(());
        }
    };
    let mut parts = Vec::new();
    for (label, (trainer, summary)) in trained.into_iter().enumerate() {
        ctx.say(format!("GAN {}: {} epochs", summary.name, summary.epochs));
        stage.gans.push(summary);
        let model = ClassModel {
            generator: trainer.generator(),
            discriminator: trainer.discriminator(),
            condition: None,
        };
        let which = (Synthetic::PerClass, r);
        let (images, summary) = synthesize(model, which, label, subsets, cfg, quality, ctx)?;
        stage.synthetic.push(summary);
        parts.push((label as i64, images));
    }
    let set = assemble(
        &parts,
        subsets[0].class_names(),
        "one GAN per class",
        Synthetic::PerClass,
    )?;
    let file = sets::export_set(&set, (Synthetic::PerClass, r), cfg, stage, ctx)?;
    let set = sets::stage_set(set, &file, inputs.train)?;
    stage.sets.insert((Synthetic::PerClass, r), set);
    judge((Synthetic::PerClass, r), cfg, stage);
    Ok(())
}

/// One conditional GAN on the whole training split, then each class's synthetic set.
fn conditional_gan(
    inputs: &GanInputs<'_>,
    (gan, tcfg): (GanConfig, ganaug_gan::TrainConfig),
    r: u64,
    stage: &mut GanStage,
    quality: &mut Quality,
) -> Result<()> {
    let (cfg, train, subsets, ctx) = (inputs.cfg, inputs.train, &inputs.subsets[..], inputs.ctx);
    let key = stage.keys[&(Synthetic::Conditional, r)].clone();
    let dir = ctx.layout.gan_dir(GanUnit {
        which: Synthetic::Conditional,
        class: None,
        key: &key,
    });
    let name = replica_name("conditional", r);
    let trained = under_gan_lock(ctx, Synthetic::Conditional, &key, || {
        train_gan(gan, tcfg, train, &dir, ctx, name.clone())
    })?;
    let Some((trainer, summary)) = trained else {
        stage.missing.push(name);
        return Ok(());
    };
    ctx.say(format!("GAN {name}: {} epochs", summary.epochs));
    stage.gans.push(summary);
    let mut parts = Vec::new();
    for label in 0..subsets.len() {
        let model = ClassModel {
            generator: trainer.generator(),
            discriminator: trainer.discriminator(),
            condition: Some(label as i64),
        };
        let which = (Synthetic::Conditional, r);
        let (images, summary) = synthesize(model, which, label, subsets, cfg, quality, ctx)?;
        stage.synthetic.push(summary);
        parts.push((label as i64, images));
    }
    let what = "one conditional GAN";
    let set = assemble(&parts, train.class_names(), what, Synthetic::Conditional)?;
    let file = sets::export_set(&set, (Synthetic::Conditional, r), cfg, stage, ctx)?;
    let set = sets::stage_set(set, &file, train)?;
    stage.sets.insert((Synthetic::Conditional, r), set);
    judge((Synthetic::Conditional, r), cfg, stage);
    Ok(())
}

/// The gate's verdict on `which`'s classes: every floor missed is said; in `refuse` mode the
/// set is recorded as refused and no cell trains on it.
pub(crate) fn judge((which, r): (Synthetic, u64), cfg: &CheckedConfig, stage: &mut GanStage) {
    let reasons: Vec<String> = stage
        .synthetic
        .iter()
        .filter(|s| s.gan == which && s.replica == r)
        .filter_map(|s| {
            let m = s.measures.as_ref()?;
            let class = replica_name(&s.class, r);
            (!m.failures.is_empty()).then(|| format!("{class}: {}", m.failures.join("; ")))
        })
        .collect();
    if reasons.is_empty() {
        return;
    }
    let refuse = cfg.gan.gate.mode == crate::GateMode::Refuse;
    let verdict = if refuse {
        "REFUSED: its scenarios are not run (reproduce --allow-poor-synthetic uses it anyway)"
    } else {
        "WARNING: used anyway (gate mode warn)"
    };
    // Said even without progress output: a broken set must not pass silently.
    eprintln!("synthetic set {} {verdict}", replica_name(which.name(), r));
    for x in &reasons {
        eprintln!("  {x}");
    }
    if refuse {
        stage.refused.entry(which).or_default().extend(reasons);
    }
}

pub(crate) fn assemble(
    parts: &[(i64, Tensor)],
    class_names: &[String],
    what: &str,
    gan: Synthetic,
) -> Result<TensorDataset> {
    synthetic_dataset(parts, class_names, what).map_err(|source| ExperimentError::Synthesis {
        gan,
        class: "all classes".into(),
        source: Box::new(source),
    })
}

/// Trains one GAN into `dir`, resuming from its latest checkpoint there; `None` in a
/// report-only run when it is not finished (report-only runs train nothing).
fn train_gan(
    gan: GanConfig,
    train_cfg: ganaug_gan::TrainConfig,
    data: &dyn ImageSource,
    dir: &Path,
    ctx: &StageContext<'_>,
    name: String,
) -> Result<Option<(GanTrainer, GanSummary)>> {
    let epochs = train_cfg.epochs;
    let new = || GanTrainer::new(gan, train_cfg, ctx.device);
    let fit = |t: &mut GanTrainer| t.fit_source(data, Some(dir), ctx.observer).map(|_| ());
    train_summarised(name, dir, ctx, epochs, new, fit)
}

/// What the GAN stage needs of a generator it trains into a folder of checkpoints.
pub(crate) trait StageGan: Sized {
    /// The folder's latest checkpoint, if any.
    fn latest_checkpoint(dir: &Path) -> Option<std::path::PathBuf>;
    /// The GAN of `ckpt`, to be trained to `epochs`.
    fn resume(ckpt: &Path, device: Device, epochs: usize) -> ganaug_gan::Result<Self>;
    /// Epochs trained.
    fn epoch(&self) -> usize;
}

impl StageGan for GanTrainer {
    fn latest_checkpoint(dir: &Path) -> Option<std::path::PathBuf> {
        GanTrainer::latest_checkpoint(dir)
    }
    fn resume(ckpt: &Path, device: Device, epochs: usize) -> ganaug_gan::Result<Self> {
        GanTrainer::resume(ckpt, device, Some(epochs))
    }
    fn epoch(&self) -> usize {
        GanTrainer::epoch(self)
    }
}

impl StageGan for ganaug_gan::EditGan {
    fn latest_checkpoint(dir: &Path) -> Option<std::path::PathBuf> {
        ganaug_gan::EditGan::latest_checkpoint(dir)
    }
    fn resume(ckpt: &Path, device: Device, epochs: usize) -> ganaug_gan::Result<Self> {
        ganaug_gan::EditGan::resume(ckpt, device, Some(epochs))
    }
    fn epoch(&self) -> usize {
        ganaug_gan::EditGan::epoch(self)
    }
}

impl StageGan for ganaug_gan::FeatureGan {
    fn latest_checkpoint(dir: &Path) -> Option<std::path::PathBuf> {
        ganaug_gan::FeatureGan::latest_checkpoint(dir)
    }
    fn resume(ckpt: &Path, device: Device, epochs: usize) -> ganaug_gan::Result<Self> {
        ganaug_gan::FeatureGan::resume(ckpt, device, Some(epochs))
    }
    fn epoch(&self) -> usize {
        ganaug_gan::FeatureGan::epoch(self)
    }
}

/// Resumes a GAN from `dir`'s latest checkpoint (or makes it with `new`), trains it to `epochs`
/// with `fit` and summarises it, errors named `name`; `None` in a report-only run when the
/// folder does not hold it finished (report-only runs train nothing).
pub(crate) fn train_summarised<G: StageGan>(
    name: String,
    dir: &Path,
    ctx: &StageContext<'_>,
    epochs: usize,
    new: impl FnOnce() -> ganaug_gan::Result<G>,
    fit: impl FnOnce(&mut G) -> ganaug_gan::Result<()>,
) -> Result<Option<(G, GanSummary)>> {
    let report_only = ctx.work == crate::shard::Work::ReportOnly;
    let run = || -> ganaug_gan::Result<Option<(G, f64)>> {
        let mut gan = match G::latest_checkpoint(dir) {
            Some(ckpt) => G::resume(&ckpt, ctx.device, epochs)?,
            None if report_only => return Ok(None),
            None => new()?,
        };
        if report_only && gan.epoch() < epochs {
            return Ok(None);
        }
        let (t0, before) = (Instant::now(), gan.epoch());
        fit(&mut gan)?;
        let trained = gan.epoch() > before;
        Ok(Some((
            gan,
            if trained {
                t0.elapsed().as_secs_f64()
            } else {
                0.0
            },
        )))
    };
    let Some((gan, seconds)) = run().map_err(|source| ExperimentError::Gan {
        name: name.clone(),
        source: Box::new(source),
    })?
    else {
        return Ok(None);
    };
    let summary = GanSummary {
        name,
        epochs: gan.epoch(),
        seconds,
        dir: ctx.layout.relative(dir),
    };
    Ok(Some((gan, summary)))
}
