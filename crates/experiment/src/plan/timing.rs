//! The dry run's timings: a few steps of each kind timed on this device (a GAN step, a
//! classifier step, a probe's feature extraction), kept across the plans of a study's subsets.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Instant;

use tch::{Device, Kind, Tensor};

use ganaug_data::ImageSource;
use ganaug_gan::{GanTrainer, TrainConfig as GanTrain};
use ganaug_models::{Classifier, ModelConfig};
use ganaug_train::Observer;

use crate::cells::CellSpec;
use crate::sources::SplitSources;
use crate::{ExperimentError, Result};

/// Timed steps, kept across the plans of a study's subsets: each kind of step is timed once.
pub(crate) struct Timings<'o> {
    pub(super) gan: BTreeMap<String, f64>,
    /// Seconds per classifier training step, by (model, image size, batch): the scenarios of a
    /// model differ in how many steps, not in the step.
    pub(super) steps: BTreeMap<(String, i64, usize), f64>,
    /// Seconds per image of a probe's feature extraction, by model.
    pub(super) features: BTreeMap<usize, f64>,
    /// The real splits whose features a plan has already counted: by model and data (test
    /// splits by model alone).
    pub(super) counted: std::collections::BTreeSet<(usize, String)>,
    /// Told what is being timed, as it goes.
    observer: &'o dyn Observer,
}

impl<'o> Timings<'o> {
    pub(crate) fn new(observer: &'o dyn Observer) -> Self {
        Timings {
            gan: BTreeMap::new(),
            steps: BTreeMap::new(),
            features: BTreeMap::new(),
            counted: Default::default(),
            observer,
        }
    }

    /// Says what is timed, then times it.
    fn timed(&self, what: &str, time: impl FnOnce() -> Result<f64>) -> Result<f64> {
        self.observer.message(&format!("dry run: timing {what}"));
        time()
    }
}

/// The time kept in `timings`' map `map` under `key`; else `time()`'s (said as `what()`), kept
/// there: each kind of step is timed once per dry run.
pub(super) fn once<'o, K: Ord>(
    timings: &RefCell<Timings<'o>>,
    map: for<'t> fn(&'t mut Timings<'o>) -> &'t mut BTreeMap<K, f64>,
    key: K,
    what: impl FnOnce() -> String,
    time: impl FnOnce() -> Result<f64>,
) -> Result<f64> {
    if let Some(&s) = map(&mut timings.borrow_mut()).get(&key) {
        return Ok(s);
    }
    let s = timings.borrow().timed(&what(), time)?;
    map(&mut timings.borrow_mut()).insert(key, s);
    Ok(s)
}

pub(super) fn timing_err(what: impl std::fmt::Display) -> impl Fn(String) -> ExperimentError {
    let what = what.to_string();
    move |reason| ExperimentError::Timing {
        what: what.clone(),
        reason,
    }
}

/// Steps are timed on at most this many images first and scaled to the batch: CPU time grows
/// with the batch, and a paper-size step at full batch takes tens of seconds on two cores.
pub(super) const TIMING_BATCH: usize = 8;

/// A step's time at `batch` from `time(b)` (one warm-up, one timed step at `b` images): at the
/// timing batch scaled up, then — when that is under a second, so cheap — at the full batch,
/// whose per-image time small batches overstate.
fn step_seconds(
    batch: usize,
    available: usize,
    mut time: impl FnMut(i64) -> Result<f64>,
) -> Result<f64> {
    let full = batch.min(available).max(1);
    let small = full.min(TIMING_BATCH);
    let scaled = time(small as i64)? * full as f64 / small as f64;
    if small == full || scaled > 1.0 {
        return Ok(scaled * batch as f64 / full as f64);
    }
    Ok(time(full as i64)? * batch as f64 / full as f64)
}

/// Seconds per GAN training step (see [`step_seconds`]) on the images of `data` at `rows`
/// (the first batch of them read).
pub(super) fn time_gan_step(
    gan: &ganaug_gan::GanConfig,
    tcfg: &GanTrain,
    (data, rows): (&dyn ImageSource, &[i64]),
    device: Device,
) -> Result<f64> {
    let err = |e: ganaug_gan::GanError| timing_err("a GAN")(e.to_string());
    let mut t = GanTrainer::new(gan.clone(), tcfg.clone(), device).map_err(err)?;
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let mut reader = data.reader()?;
    let labels = data.labels().to_device(Device::Cpu);
    step_seconds(tcfg.batch_size, rows.len(), |b| {
        let first = &rows[..b as usize];
        let x = reader.read(first)?.to_device(device);
        let y = gan.n_classes.map(|_| {
            labels
                .index_select(0, &Tensor::from_slice(first))
                .to_device(device)
        });
        t.train_step(&x, y.as_ref(), &mut rng).map_err(err)?;
        let t0 = Instant::now();
        t.train_step(&x, y.as_ref(), &mut rng).map_err(err)?;
        Ok(t0.elapsed().as_secs_f64())
    })
}

/// A cell's model, untrained, and a random batch of `b` images of the data's shape to time it
/// on.
fn timing_model(
    spec: CellSpec<'_>,
    sp: SplitSources<'_>,
    b: i64,
    device: Device,
) -> Result<(Classifier, Tensor)> {
    let plan = spec.plan;
    let (classes, channels) = (sp.train.class_names().len() as i64, sp.train.channels());
    let mcfg = ModelConfig {
        pooled_stages: plan.pooled_stages,
        head: plan.head.arch(),
        ..ModelConfig::new(plan.kind, plan.image_size).for_data(classes, channels)
    };
    let model = Classifier::new(mcfg, device).map_err(|e| timing_err(plan.kind)(e.to_string()))?;
    let x = Tensor::rand(
        [b, channels, plan.image_size, plan.image_size],
        (Kind::Float, device),
    );
    Ok((model, x))
}

/// Seconds per image of a probe model's feature extraction (a timed batch).
pub(super) fn time_features(
    spec: CellSpec<'_>,
    sp: SplitSources<'_>,
    device: Device,
) -> Result<f64> {
    let b = 32i64;
    let (model, x) = timing_model(spec, sp, b, device)?;
    let err = |e: ganaug_models::ModelError| timing_err(spec.plan.kind)(e.to_string());
    let _warm = tch::no_grad(|| model.extract_features(&x, b)).map_err(err)?;
    let t0 = Instant::now();
    let _features = tch::no_grad(|| model.extract_features(&x, b)).map_err(err)?;
    Ok(t0.elapsed().as_secs_f64() / b as f64)
}

/// Seconds per training step (forward and backward) of a cell's model at its batch size (see
/// [`step_seconds`]).
pub(super) fn time_cell_step(
    spec: CellSpec<'_>,
    sp: SplitSources<'_>,
    device: Device,
) -> Result<f64> {
    let plan = spec.plan;
    let err = |e: ganaug_models::ModelError| timing_err(plan.kind)(e.to_string());
    step_seconds(plan.train.batch_size, usize::MAX, |b| {
        let (model, x) = timing_model(spec, sp, b, device)?;
        let y = Tensor::zeros([b], (Kind::Int64, device));
        let step = || -> Result<()> {
            let logits = model.forward_t(&x, true).map_err(err)?;
            logits.cross_entropy_for_logits(&y).backward();
            Ok(())
        };
        step()?;
        let t0 = Instant::now();
        step()?;
        Ok(t0.elapsed().as_secs_f64())
    })
}
