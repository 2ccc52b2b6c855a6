//! `ganaug watch DIR`: follows a job from its output folder. A `reproduce` folder has
//! `progress.json` (stage, unit, units done of the total, the run in training and its estimate);
//! any training run's folder has `metrics.jsonl` (one line per epoch). Prints a line whenever
//! either changes, until the job finishes or fails (or its process is gone).
//!
//! ```text
//! ganaug watch results/reproduce-cpu
//! ganaug watch runs/gan --once
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Result};
use ganaug::train::{ProgressState, METRICS_FILE, PROGRESS_FILE};

/// `ganaug watch`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The job's output folder (`--out` of `reproduce`, `train-gan`, `train-classifier`, …), or
    /// a progress.json / metrics.jsonl file.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Print where the job stands once and exit.
    #[arg(long)]
    once: bool,
    /// Seconds between looks.
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    interval: f64,
}

fn positive(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

/// What there is to follow in the folder.
enum Source {
    Progress(PathBuf),
    Metrics(PathBuf),
}

/// The folder's progress file (a shard's when only those exist: the newest), else its newest
/// metrics file (searched two levels deep: a GAN folder's classes, a run's cells).
fn find(dir: &Path) -> Result<Source> {
    if dir.is_file() {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        return Ok(if name.ends_with(".jsonl") {
            Source::Metrics(dir.to_path_buf())
        } else {
            Source::Progress(dir.to_path_buf())
        });
    }
    if !dir.is_dir() {
        bail!("{}: no such folder", dir.display());
    }
    let main = dir.join(PROGRESS_FILE);
    if main.is_file() {
        return Ok(Source::Progress(main));
    }
    let shard = newest(dir, 1, &|n| {
        n.starts_with("progress-shard-") && n.ends_with(".json")
    });
    if let Some(p) = shard {
        return Ok(Source::Progress(p));
    }
    match newest(dir, 4, &|n| n == METRICS_FILE) {
        Some(p) => Ok(Source::Metrics(p)),
        None => bail!(
            "{}: nothing to watch yet (no {PROGRESS_FILE}, no {METRICS_FILE} in it or its sub-folders)",
            dir.display()
        ),
    }
}

/// The most recently modified file under `dir` (at most `depth` levels) whose name passes.
fn newest(dir: &Path, depth: usize, pick: &dyn Fn(&str) -> bool) -> Option<PathBuf> {
    let mut best: Option<(SystemTime, PathBuf)> = None;
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, level)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() && level < depth {
                stack.push((path, level + 1));
            } else if meta.is_file() && path.file_name().and_then(|n| n.to_str()).is_some_and(pick)
            {
                let t = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                if best.as_ref().is_none_or(|(bt, _)| t > *bt) {
                    best = Some((t, path));
                }
            }
        }
    }
    best.map(|(_, p)| p)
}

/// Whether process `pid` still exists (Linux: /proc; elsewhere assumed alive).
fn alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The last metrics line, as a short line.
fn metrics_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let last: serde_json::Value = serde_json::from_str(text.lines().last()?).ok()?;
    let mut figures: Vec<String> = Vec::new();
    if let Some(m) = last["metrics"].as_object() {
        for (k, v) in m {
            if let Some(x) = v.as_f64().filter(|_| k != "seconds" && k != "epoch") {
                figures.push(format!("{k} {x:.4}"));
            }
        }
    }
    Some(format!(
        "{} epoch {}/{} ({:.1} s): {}",
        last["run"].as_str().unwrap_or("run"),
        last["epoch"],
        last["epochs"],
        last["seconds"].as_f64().unwrap_or(0.0),
        figures.join(", ")
    ))
}

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    let source = find(&args.dir)?;
    let mut last = String::new();
    loop {
        let (line, ended) = match &source {
            Source::Progress(p) => match ProgressState::read(p) {
                Ok(s) => {
                    let gone = s.status == "running" && !alive(s.pid);
                    let mut line = s.line();
                    if gone {
                        line += &format!(" — process {} is gone (killed?)", s.pid);
                    }
                    if s.status != "running" && !s.message.is_empty() {
                        line += &format!(" — {}", s.message);
                    }
                    (line, s.status != "running" || gone)
                }
                Err(e) => bail!("{}: {e}", p.display()),
            },
            Source::Metrics(p) => {
                let line = metrics_line(p).unwrap_or_else(|| "no epoch yet".into());
                (format!("{line} | {}", p.display()), false)
            }
        };
        if line != last {
            println!("{line}");
            last = line;
        }
        if args.once || ended {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs_f64(args.interval));
    }
}
