//! Who hears of a run as it goes: observers of the epoch loop (after burn-train's metric
//! loggers) instead of a `progress: bool` and `println!` in every trainer. The console bar is
//! one observer ([`ConsoleProgress`]); the per-epoch metrics file every run folder gets is
//! another ([`MetricsFile`], `metrics.jsonl`, one JSON line per epoch, flushed each epoch, so
//! a second terminal can follow a run: `tail -f metrics.jsonl`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use indicatif::ProgressBar;
use serde::Serialize;

use crate::{epoch_bar, Result, StopReason, TrainError};

/// One finished epoch, as observers see it.
#[derive(Debug, Clone, Copy)]
pub struct EpochEvent<'a> {
    /// The run's name (`GAN`, `cnn`, …).
    pub run: &'a str,
    /// Epochs done, this one included (1-based).
    pub epoch: usize,
    /// Epochs the run trains to at most.
    pub epochs: usize,
    /// Wall time of the epoch, seconds.
    pub seconds: f64,
    /// A short line of its figures (`loss 0.412 acc 0.83 | val loss …`).
    pub summary: &'a str,
    /// Everything the epoch recorded, as JSON.
    pub metrics: &'a serde_json::Value,
}

/// Hears of runs and their epochs. Every method has a default that does nothing, so an
/// observer implements what it cares about.
pub trait Observer: Sync {
    /// A unit of a larger job starts (the experiment's GANs and cells): its stage, what it is,
    /// its number (1-based) of `total`.
    fn unit_started(&self, _stage: &str, _unit: &str, _index: usize, _total: usize) {}

    /// A run starts (or resumes) with `done` of `epochs` epochs behind it.
    fn run_started(&self, _run: &str, _done: usize, _epochs: usize) {}

    /// An epoch finished. An error stops the run (a metrics file that cannot be written).
    fn epoch_done(&self, _event: &EpochEvent<'_>) -> Result<()> {
        Ok(())
    }

    /// The run ended, for `stop`.
    fn run_finished(&self, _run: &str, _stop: StopReason) {}

    /// A line of news from a stage above the trainers (the experiment's "cell 3/10 …").
    fn message(&self, _text: &str) {}
}

/// Hears nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {}

/// The console: an epoch bar per run (`cnn [=====>    ] epoch 12/40 [00:41 < 01:35] loss …`)
/// and the messages, printed above the bar.
#[derive(Debug, Default)]
pub struct ConsoleProgress {
    bar: Mutex<Option<ProgressBar>>,
}

impl ConsoleProgress {
    /// A console observer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Observer for ConsoleProgress {
    fn run_started(&self, run: &str, done: usize, epochs: usize) {
        if let Ok(mut bar) = self.bar.lock() {
            *bar = Some(epoch_bar(true, run, done, epochs));
        }
    }

    fn epoch_done(&self, event: &EpochEvent<'_>) -> Result<()> {
        if let Ok(bar) = self.bar.lock() {
            if let Some(bar) = bar.as_ref() {
                bar.set_message(event.summary.to_string());
                bar.inc(1);
            }
        }
        Ok(())
    }

    fn run_finished(&self, _run: &str, _stop: StopReason) {
        if let Ok(mut bar) = self.bar.lock() {
            if let Some(bar) = bar.take() {
                bar.finish_and_clear();
            }
        }
    }

    fn message(&self, text: &str) {
        match self.bar.lock().ok().as_deref().and_then(Option::as_ref) {
            Some(bar) => bar.println(text),
            None => println!("{text}"),
        }
    }
}

/// `metrics.jsonl` in a run folder: one JSON object per epoch (`run`, `epoch`, `epochs`,
/// `seconds`, `metrics`), appended and flushed as each epoch ends. A resumed run first drops
/// the lines of epochs after its checkpoint, so the file reads as one uninterrupted run.
#[derive(Debug)]
pub struct MetricsFile {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

/// The name of the metrics file in a run folder.
pub const METRICS_FILE: &str = "metrics.jsonl";

#[derive(Serialize)]
struct Line<'a> {
    run: &'a str,
    epoch: usize,
    epochs: usize,
    seconds: f64,
    metrics: &'a serde_json::Value,
}

impl MetricsFile {
    /// Opens `path` for appending, keeping only the lines of epochs `1..=done` already there.
    pub fn open(path: &Path, done: usize) -> Result<Self> {
        let bad = |e: std::io::Error| TrainError::io(path, e);
        if let Ok(text) = std::fs::read_to_string(path) {
            let kept: String = text
                .lines()
                .filter(|l| {
                    serde_json::from_str::<serde_json::Value>(l)
                        .ok()
                        .and_then(|v| v.get("epoch")?.as_u64())
                        .is_some_and(|e| e as usize <= done)
                })
                .map(|l| format!("{l}\n"))
                .collect();
            ganaug_data::io::write_atomic(path, kept.as_bytes())?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(bad)?;
        Ok(MetricsFile {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }
}

impl Observer for MetricsFile {
    fn epoch_done(&self, e: &EpochEvent<'_>) -> Result<()> {
        let line = Line {
            run: e.run,
            epoch: e.epoch,
            epochs: e.epochs,
            seconds: e.seconds,
            metrics: e.metrics,
        };
        let mut text = serde_json::to_string(&line).map_err(|source| TrainError::Json {
            what: "a metrics line",
            source,
        })?;
        text.push('\n');
        let failed = |reason: String| TrainError::Observer {
            what: self.path.display().to_string(),
            reason,
        };
        let mut file = self.file.lock().map_err(|e| failed(e.to_string()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| failed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_file_appends_a_line_per_epoch_and_a_resume_drops_later_ones() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join(METRICS_FILE);
        let value = serde_json::json!({"loss": 0.5});
        let event = |epoch| EpochEvent {
            run: "t",
            epoch,
            epochs: 5,
            seconds: 0.1,
            summary: "",
            metrics: &value,
        };
        let f = MetricsFile::open(&path, 0).expect("open");
        for e in 1..=4 {
            f.epoch_done(&event(e)).expect("line");
        }
        drop(f);
        let lines = |p: &Path| std::fs::read_to_string(p).expect("read").lines().count();
        assert_eq!(lines(&path), 4);
        // resumed from the checkpoint of epoch 2: epochs 3 and 4 will be trained again
        let f = MetricsFile::open(&path, 2).expect("reopen");
        assert_eq!(lines(&path), 2);
        f.epoch_done(&event(3)).expect("line");
        let text = std::fs::read_to_string(&path).expect("read");
        let last: serde_json::Value =
            serde_json::from_str(text.lines().last().expect("a line")).expect("json");
        assert_eq!(last["epoch"], 3);
        assert_eq!(last["metrics"]["loss"], 0.5);
    }
}
