//! `progress.json`: where a long job stands, for a second terminal (`ganaug watch DIR`) or a
//! batch scheduler's log — the stage and unit of work, units done of the total, the run in
//! training with its epoch and an estimate of what it has left, the last message. Rewritten
//! atomically as things happen (at most twice a second for epochs), so a reader never sees a
//! partial file.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::observe::{EpochEvent, Observer};
use crate::{Result, StopReason, TrainError};

/// The name of the progress file in a job's output folder.
pub const PROGRESS_FILE: &str = "progress.json";

/// Epoch events closer together than this rewrite the file only once.
const MIN_INTERVAL_S: f64 = 0.5;

/// What `progress.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressState {
    /// `running`, `finished` or `failed`.
    pub status: String,
    /// The stage of the job (`gan`, `cell`, …), empty before the first unit.
    pub stage: String,
    /// The unit of work in progress (`GAN per-class, replica 0`, `resnet50 × gan (seed 1)`).
    pub unit: String,
    /// Its number, 1-based (0 before the first).
    pub unit_index: usize,
    /// Units of the whole job.
    pub units_total: usize,
    /// The training run in progress (`GAN COVID`, `cnn`), empty between runs.
    pub run: String,
    /// Its epochs done.
    pub epoch: usize,
    /// Its epochs at most.
    pub epochs: usize,
    /// Seconds of its last epoch.
    pub epoch_seconds: f64,
    /// Its last epoch's figures, in short.
    pub summary: String,
    /// An estimate of the run's seconds left: its mean epoch time this session times the
    /// epochs left (an early stop ends it sooner).
    pub run_seconds_left: Option<f64>,
    /// Seconds since the job started.
    pub elapsed_seconds: f64,
    /// The last message of the job.
    pub message: String,
    /// When the file was written (seconds since the Unix epoch).
    pub updated_unix: f64,
    /// The job's process id.
    pub pid: u32,
}

impl ProgressState {
    /// Reads a progress file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
        serde_json::from_slice(&text).map_err(|source| TrainError::Json {
            what: "a progress file",
            source,
        })
    }

    /// One line of where the job stands.
    pub fn line(&self) -> String {
        let mut s = format!("{} ", self.status);
        if self.units_total > 0 {
            s += &format!("[{}/{}] ", self.unit_index, self.units_total);
        }
        if !self.unit.is_empty() {
            s += &format!("{} {}", self.stage, self.unit);
        }
        let mut s = s.trim_end().to_string();
        if !self.run.is_empty() && self.epochs > 0 {
            s += &format!(" | {} epoch {}/{}", self.run, self.epoch, self.epochs);
            if let Some(left) = self.run_seconds_left {
                s += &format!(" (~{} left)", short_duration(left));
            }
            if !self.summary.is_empty() {
                s += &format!(" {}", self.summary);
            }
        }
        s += &format!(" | {} elapsed", short_duration(self.elapsed_seconds));
        s
    }
}

/// `42 s`, `3.5 min`, `2.1 h`.
pub fn short_duration(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else if seconds < 5400.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

struct Inner {
    state: ProgressState,
    /// Epoch seconds of the current run this session, summed, and how many (for the estimate).
    run_seconds: (f64, usize),
    written: Option<Instant>,
}

/// The observer that keeps `progress.json` (see the module). Its write failures are ignored:
/// a progress file must never stop a job.
pub struct ProgressFile {
    path: PathBuf,
    started: Instant,
    inner: Mutex<Inner>,
}

impl ProgressFile {
    /// A progress file at `path`, written at once (`running`, nothing started).
    pub fn new(path: impl Into<PathBuf>, units_total: usize) -> Self {
        let file = ProgressFile {
            path: path.into(),
            started: Instant::now(),
            inner: Mutex::new(Inner {
                state: ProgressState {
                    status: "running".into(),
                    units_total,
                    pid: std::process::id(),
                    ..ProgressState::default()
                },
                run_seconds: (0.0, 0),
                written: None,
            }),
        };
        file.update(true, |_| {});
        file
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The job ended: `finished`, or `failed` with why.
    pub fn finish(&self, outcome: std::result::Result<(), String>) {
        self.update(true, |s| match outcome {
            Ok(()) => {
                s.status = "finished".into();
                s.unit_index = s.units_total;
                s.stage.clear();
                s.unit.clear();
                s.run.clear();
                s.run_seconds_left = None;
            }
            Err(why) => {
                s.status = "failed".into();
                s.message = why;
            }
        });
    }

    fn update(&self, force: bool, change: impl FnOnce(&mut ProgressState)) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        change(&mut inner.state);
        let due = force
            || inner
                .written
                .is_none_or(|t| t.elapsed().as_secs_f64() >= MIN_INTERVAL_S);
        if !due {
            return;
        }
        inner.state.elapsed_seconds = self.started.elapsed().as_secs_f64();
        inner.state.updated_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        if let Ok(json) = serde_json::to_vec_pretty(&inner.state) {
            if ganaug_data::io::write_atomic(&self.path, &json).is_ok() {
                inner.written = Some(Instant::now());
            }
        }
    }
}

impl Observer for ProgressFile {
    fn unit_started(&self, stage: &str, unit: &str, index: usize, total: usize) {
        self.update(true, |s| {
            s.stage = stage.into();
            s.unit = unit.into();
            s.unit_index = index;
            s.units_total = total;
            s.run.clear();
            s.epoch = 0;
            s.epochs = 0;
            s.summary.clear();
            s.run_seconds_left = None;
        });
    }

    fn run_started(&self, run: &str, done: usize, epochs: usize) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.run_seconds = (0.0, 0);
        }
        self.update(true, |s| {
            s.run = run.into();
            s.epoch = done;
            s.epochs = epochs;
            s.summary.clear();
            s.run_seconds_left = None;
        });
    }

    fn epoch_done(&self, e: &EpochEvent<'_>) -> Result<()> {
        let mean = match self.inner.lock() {
            Ok(mut inner) => {
                let (sum, n) = inner.run_seconds;
                inner.run_seconds = (sum + e.seconds, n + 1);
                (sum + e.seconds) / (n + 1) as f64
            }
            Err(_) => return Ok(()),
        };
        self.update(e.epoch >= e.epochs, |s| {
            s.run = e.run.into();
            s.epoch = e.epoch;
            s.epochs = e.epochs;
            s.epoch_seconds = e.seconds;
            s.summary = e.summary.into();
            s.run_seconds_left = Some(mean * e.epochs.saturating_sub(e.epoch) as f64);
        });
        Ok(())
    }

    fn run_finished(&self, run: &str, stop: StopReason) {
        self.update(true, |s| {
            s.message = format!("{run}: {stop}");
            s.run_seconds_left = Some(0.0);
        });
    }

    fn message(&self, text: &str) {
        self.update(false, |s| s.message = text.into());
    }
}

/// Two observers as one (the console and a progress file).
#[derive(Clone, Copy)]
pub struct Both<'a>(pub &'a dyn Observer, pub &'a dyn Observer);

impl Observer for Both<'_> {
    fn unit_started(&self, stage: &str, unit: &str, index: usize, total: usize) {
        self.0.unit_started(stage, unit, index, total);
        self.1.unit_started(stage, unit, index, total);
    }

    fn run_started(&self, run: &str, done: usize, epochs: usize) {
        self.0.run_started(run, done, epochs);
        self.1.run_started(run, done, epochs);
    }

    fn epoch_done(&self, event: &EpochEvent<'_>) -> Result<()> {
        self.0.epoch_done(event)?;
        self.1.epoch_done(event)
    }

    fn run_finished(&self, run: &str, stop: StopReason) {
        self.0.run_finished(run, stop);
        self.1.run_finished(run, stop);
    }

    fn message(&self, text: &str) {
        self.0.message(text);
        self.1.message(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_file_follows_units_runs_and_epochs_and_says_how_the_job_ended() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join(PROGRESS_FILE);
        let p = ProgressFile::new(&path, 7);
        let read = || ProgressState::read(&path).expect("a readable progress file");
        assert_eq!((read().status.as_str(), read().units_total), ("running", 7));
        p.unit_started("gan", "per-class GANs, replica 0", 1, 7);
        p.run_started("GAN COVID", 0, 4);
        let metrics = serde_json::json!({});
        for epoch in 1..=4 {
            let event = EpochEvent {
                run: "GAN COVID",
                epoch,
                epochs: 4,
                seconds: 2.0,
                summary: "D 0.5 G 1.0",
                metrics: &metrics,
            };
            p.epoch_done(&event).expect("epoch");
        }
        // the last epoch is always written, whatever the interval
        let s = read();
        assert_eq!((s.unit_index, s.stage.as_str()), (1, "gan"));
        assert_eq!((s.run.as_str(), s.epoch, s.epochs), ("GAN COVID", 4, 4));
        assert_eq!(s.run_seconds_left, Some(0.0));
        assert!(
            s.line().contains("[1/7] gan per-class GANs, replica 0"),
            "{}",
            s.line()
        );
        p.unit_started("cell", "cnn × raw (seed 0)", 2, 7);
        assert_eq!((read().run.as_str(), read().epoch), ("", 0));
        p.finish(Err("out of memory".into()));
        let s = read();
        assert_eq!(
            (s.status.as_str(), s.message.as_str()),
            ("failed", "out of memory")
        );
    }

    #[test]
    fn the_run_estimate_is_the_mean_epoch_time_times_the_epochs_left() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join(PROGRESS_FILE);
        let p = ProgressFile::new(&path, 1);
        p.run_started("cnn", 0, 10);
        let metrics = serde_json::json!({});
        for (epoch, seconds) in [(1, 1.0), (2, 3.0)] {
            let event = EpochEvent {
                run: "cnn",
                epoch,
                epochs: 10,
                seconds,
                summary: "",
                metrics: &metrics,
            };
            p.epoch_done(&event).expect("epoch");
        }
        // rewritten at most twice a second: the state is in memory either way
        p.finish(Ok(()));
        let s = ProgressState::read(&path).expect("read");
        assert_eq!(s.status, "finished");
        assert_eq!(s.epoch, 2);
        let inner = p.inner.lock().expect("lock");
        assert_eq!(inner.run_seconds, (4.0, 2));
        drop(inner);
        // (mean 2 s) × 8 epochs left, as it was before the job finished
        p.run_started("cnn", 2, 10);
        let event = EpochEvent {
            run: "cnn",
            epoch: 3,
            epochs: 10,
            seconds: 4.0,
            summary: "",
            metrics: &metrics,
        };
        p.epoch_done(&event).expect("epoch");
        let inner = p.inner.lock().expect("lock");
        assert_eq!(inner.state.run_seconds_left, Some(4.0 * 7.0));
    }
}
