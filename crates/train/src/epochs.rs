//! The one epoch loop both trainers run (after burn-train's `Learner`): a trainer supplies its
//! steps ([`TrainStep`]: train an epoch, validate, decide to stop, checkpoint, restore), and
//! [`EpochLoop`] owns what every run does the same way — seeding each epoch so a resume replays
//! it exactly, the non-finite check, resuming from the run folder, when checkpoints are written
//! and which are kept, the history, and telling observers.

use std::path::Path;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::observe::{EpochEvent, MetricsFile, Observer, METRICS_FILE};
use crate::{KeepCheckpoints, RunDir, TrainError};

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum StopReason {
    /// Training accuracy reached its threshold (the paper's rule).
    TrainAccuracy,
    /// The selection score stopped improving for `patience` epochs.
    Patience,
    /// Every epoch asked for was done.
    MaxEpochs,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopReason::TrainAccuracy => "training accuracy reached its threshold",
            StopReason::Patience => "no better validation score for `patience` epochs",
            StopReason::MaxEpochs => "all epochs done",
        })
    }
}

/// What a finished epoch records, as the loop needs it.
pub trait EpochRecord: Clone + Serialize {
    /// The figures that must be finite, by name, in the order they are checked: a NaN or
    /// infinite one stops the run with [`TrainError::NonFinite`].
    fn checked(&self) -> Vec<(&'static str, f64)>;
    /// A short line of the epoch's figures for progress displays.
    fn summary(&self) -> String;
    /// Sets the epoch's wall time (measured by the loop).
    fn set_seconds(&mut self, seconds: f64);
}

/// A run's progress: every finished epoch and, once the run has stopped early, why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress<R> {
    /// Every finished epoch, in order.
    pub history: Vec<R>,
    /// Set when a stop rule ended the run (a resumed run that had stopped stays stopped).
    pub stop: Option<StopReason>,
}

impl<R> Default for Progress<R> {
    fn default() -> Self {
        Progress {
            history: Vec::new(),
            stop: None,
        }
    }
}

impl<R> Progress<R> {
    /// Epochs done.
    pub fn epochs(&self) -> usize {
        self.history.len()
    }
}

/// What a trainer supplies to the loop.
pub trait TrainStep {
    /// What one epoch records.
    type Record: EpochRecord;
    /// The trainer's error (the loop's own failures arrive as [`TrainError`]).
    type Error: From<TrainError>;

    /// Trains epoch `epoch` (0-based). Libtorch's generator and `rng` are both seeded with
    /// the epoch's `seed` by the loop: all of the epoch's randomness must come from them (or
    /// from `seed`, e.g. a dataset's shuffled batch order).
    fn train_epoch(
        &mut self,
        epoch: usize,
        seed: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self::Record, Self::Error>;

    /// Validates after the epoch, completing its record (default: nothing to validate).
    fn validate(&mut self, _record: &mut Self::Record) -> Result<(), Self::Error> {
        Ok(())
    }

    /// After each epoch (its record is the history's last): keep what must be kept (best
    /// weights, sample grids) and say whether the run stops.
    fn end_epoch(
        &mut self,
        _progress: &Progress<Self::Record>,
    ) -> Result<Option<StopReason>, Self::Error> {
        Ok(None)
    }

    /// Writes a checkpoint from which [`TrainStep::restore`] continues exactly.
    fn save_checkpoint(
        &self,
        path: &Path,
        progress: &Progress<Self::Record>,
    ) -> Result<(), Self::Error>;

    /// Restores the trainer from a checkpoint of [`TrainStep::save_checkpoint`] (refusing one
    /// of another configuration or data), returning the run's progress.
    fn restore(&mut self, path: &Path) -> Result<Progress<Self::Record>, Self::Error>;

    /// Writes what the run folder holds beside a checkpoint (a history file), each time one is
    /// written (default: nothing).
    fn write_artifacts(
        &self,
        _run: &RunDir,
        _progress: &Progress<Self::Record>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// When checkpoints are written and which are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Every this many epochs (0: only at the end); the last epoch, and an epoch after which
    /// a stop rule ends the run, always get one.
    pub every: usize,
    /// Which are kept.
    pub keep: KeepCheckpoints,
}

impl CheckpointPolicy {
    /// Whether a checkpoint is due after `done` epochs of `epochs`, `stopped` or not.
    pub fn due(&self, done: usize, epochs: usize, stopped: bool) -> bool {
        stopped || done == epochs || (self.every > 0 && done % self.every == 0)
    }
}

/// How a run goes: the settings of the loop around a trainer's steps.
#[derive(Clone, Copy)]
pub struct EpochLoop<'a> {
    /// The run's name, for observers.
    pub name: &'a str,
    /// The run's seed: epoch `e` draws from `ganaug_data::epoch_seed(seed, e)`.
    pub seed: u64,
    /// Train until this many epochs are done (or a stop rule ends the run).
    pub epochs: usize,
    /// The run folder (checkpoints, `metrics.jsonl`), if the run writes one.
    pub run: Option<&'a RunDir>,
    /// Continue from the folder's latest checkpoint when there is one.
    pub resume: bool,
    /// Subfolders the trainer writes into (`samples`).
    pub subdirs: &'a [&'a str],
    /// When to checkpoint.
    pub checkpoints: CheckpointPolicy,
    /// Who hears of each epoch (besides the folder's metrics file).
    pub observer: &'a dyn Observer,
}

impl EpochLoop<'_> {
    /// Runs `step` from `progress` (restored from the folder's latest checkpoint first when
    /// resuming) until the epochs are done or a stop rule ends it; returns why it ended.
    pub fn run<S: TrainStep>(
        &self,
        step: &mut S,
        progress: &mut Progress<S::Record>,
    ) -> Result<StopReason, S::Error> {
        let metrics = self.start(step, progress)?;
        self.observer
            .run_started(self.name, progress.epochs(), self.epochs);
        while progress.stop.is_none() && progress.epochs() < self.epochs {
            let started = Instant::now();
            let record = self.one_epoch(step, progress.epochs())?;
            progress.history.push(record);
            progress.stop = step.end_epoch(progress)?;
            // told before the checkpoint: a run killed in between trains the epoch again and
            // its metrics file drops the line on resuming
            self.tell(metrics.as_ref(), progress, started.elapsed().as_secs_f64())?;
            self.checkpoint(step, progress)?;
        }
        let stop = progress.stop.unwrap_or(StopReason::MaxEpochs);
        self.observer.run_finished(self.name, stop);
        Ok(stop)
    }

    /// Resumes from the folder's latest checkpoint when asked, readies the folder and opens
    /// its metrics file.
    fn start<S: TrainStep>(
        &self,
        step: &mut S,
        progress: &mut Progress<S::Record>,
    ) -> Result<Option<MetricsFile>, S::Error> {
        let Some(run) = self.run else {
            return Ok(None);
        };
        if let Some(latest) = run.latest_checkpoint().filter(|_| self.resume) {
            *progress = step.restore(&latest)?;
        }
        run.prepare(progress.epochs() > 0, self.subdirs)?;
        Ok(Some(MetricsFile::open(
            &run.join(METRICS_FILE),
            progress.epochs(),
        )?))
    }

    /// One seeded epoch: train, validate, check every figure is finite.
    fn one_epoch<S: TrainStep>(&self, step: &mut S, epoch: usize) -> Result<S::Record, S::Error> {
        let started = Instant::now();
        let seed = ganaug_data::epoch_seed(self.seed, epoch as u64);
        tch::manual_seed(seed as i64);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut record = step.train_epoch(epoch, seed, &mut rng)?;
        step.validate(&mut record)?;
        record.set_seconds(started.elapsed().as_secs_f64());
        check_finite(&record, epoch)?;
        Ok(record)
    }

    fn checkpoint<S: TrainStep>(
        &self,
        step: &mut S,
        progress: &Progress<S::Record>,
    ) -> Result<(), S::Error> {
        let Some(run) = self.run else {
            return Ok(());
        };
        let done = progress.epochs();
        if self
            .checkpoints
            .due(done, self.epochs, progress.stop.is_some())
        {
            step.save_checkpoint(&run.checkpoint(done), progress)?;
            run.prune(self.checkpoints.keep)?;
            step.write_artifacts(run, progress)?;
        }
        Ok(())
    }

    fn tell<R: EpochRecord>(
        &self,
        metrics: Option<&MetricsFile>,
        progress: &Progress<R>,
        seconds: f64,
    ) -> Result<(), TrainError> {
        let Some(record) = progress.history.last() else {
            return Ok(());
        };
        let value = serde_json::to_value(record).map_err(|source| TrainError::Json {
            what: "an epoch's record",
            source,
        })?;
        let summary = record.summary();
        let event = EpochEvent {
            run: self.name,
            epoch: progress.epochs(),
            epochs: self.epochs,
            seconds,
            summary: &summary,
            metrics: &value,
        };
        if let Some(m) = metrics {
            m.epoch_done(&event)?;
        }
        self.observer.epoch_done(&event)
    }
}

/// Stops on the first non-finite figure of `record`.
pub fn check_finite<R: EpochRecord>(record: &R, epoch: usize) -> Result<(), TrainError> {
    match record.checked().into_iter().find(|(_, v)| !v.is_finite()) {
        Some((what, value)) => Err(TrainError::NonFinite { what, value, epoch }),
        None => Ok(()),
    }
}
