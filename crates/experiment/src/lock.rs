//! Lock files that claim one unit of work (a GAN, a cell) in a results folder shared by several
//! jobs — on one machine or many, over a shared file system.
//!
//! A lock is a file created with `create_new` (atomic on local and NFS-v3+ file systems)
//! holding its owner (host, process, start time). While held, a background thread refreshes its
//! modification time every `heartbeat`. **Stale-lock rule**: a lock whose modification time is
//! older than `stale_after` (default 10 minutes, twenty heartbeats) belongs to a job that died
//! (killed, out of time, node lost); the next job that wants the unit renames it aside
//! (`<name>.stale-<n>`, kept for inspection) and takes it over. A job that is merely slow keeps
//! its heartbeat and is never taken over.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::{ExperimentError, Result};

/// How long to wait between checks and heartbeats, and when a lock counts as stale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LockPolicy {
    /// A held lock's modification time is refreshed this often.
    pub heartbeat: Duration,
    /// A lock not refreshed for this long is stale and taken over.
    pub stale_after: Duration,
    /// How often a job waiting for a lock checks it again.
    pub poll: Duration,
}

impl Default for LockPolicy {
    fn default() -> Self {
        LockPolicy {
            heartbeat: Duration::from_secs(30),
            stale_after: Duration::from_secs(600),
            poll: Duration::from_secs(2),
        }
    }
}

/// A held lock: released (its file removed) when dropped.
#[derive(Debug)]
pub struct UnitLock {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    beat: Option<JoinHandle<()>>,
    /// Whether a stale lock was taken over to get it.
    pub took_over: bool,
}

/// What [`UnitLock::try_acquire`] found.
#[derive(Debug)]
pub enum TryLock {
    /// The lock is ours.
    Acquired(UnitLock),
    /// Another live job holds it: its owner line.
    Busy(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ExperimentError + '_ {
    move |e| ExperimentError::io(path, e)
}

impl UnitLock {
    /// Takes the lock at `path` if it is free or stale; says who holds it otherwise.
    pub fn try_acquire(path: &Path, policy: &LockPolicy) -> Result<TryLock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let mut took_over = false;
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut f) => {
                    let owner = format!(
                        "{} pid {} since {:?}\n",
                        host(),
                        std::process::id(),
                        SystemTime::now()
                    );
                    f.write_all(owner.as_bytes()).map_err(io_err(path))?;
                    f.sync_all().map_err(io_err(path))?;
                    return Ok(TryLock::Acquired(UnitLock::held(path, policy, took_over)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if !is_stale(path, policy.stale_after) {
                        let owner = std::fs::read_to_string(path).unwrap_or_default();
                        return Ok(TryLock::Busy(owner.trim().to_string()));
                    }
                    // Stale: move it aside (only one job's rename succeeds), then retry once.
                    let aside = stale_name(path);
                    if std::fs::rename(path, &aside).is_ok() {
                        took_over = true;
                    }
                }
                Err(e) => return Err(ExperimentError::io(path, e)),
            }
        }
        let owner = std::fs::read_to_string(path).unwrap_or_default();
        Ok(TryLock::Busy(owner.trim().to_string()))
    }

    /// Waits until the lock at `path` is ours (taking it over once stale); `waiting` is called
    /// once with the holder's owner line when it has to wait.
    pub fn acquire(
        path: &Path,
        policy: &LockPolicy,
        mut waiting: impl FnMut(&str),
    ) -> Result<UnitLock> {
        let mut said = false;
        loop {
            match UnitLock::try_acquire(path, policy)? {
                TryLock::Acquired(l) => return Ok(l),
                TryLock::Busy(owner) => {
                    if !said {
                        waiting(&owner);
                        said = true;
                    }
                    std::thread::sleep(policy.poll);
                }
            }
        }
    }

    fn held(path: &Path, policy: &LockPolicy, took_over: bool) -> UnitLock {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, file, every) = (stop.clone(), path.to_path_buf(), policy.heartbeat);
        let beat = std::thread::spawn(move || {
            let step = Duration::from_millis(50).min(every);
            let mut since = Duration::ZERO;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(step);
                since += step;
                if since >= every {
                    since = Duration::ZERO;
                    if let Ok(f) = File::options().write(true).open(&file) {
                        let _ = f.set_modified(SystemTime::now());
                    }
                }
            }
        });
        UnitLock {
            path: path.to_path_buf(),
            stop,
            beat: Some(beat),
            took_over,
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UnitLock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(b) = self.beat.take() {
            let _ = b.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn is_stale(path: &Path, stale_after: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > stale_after)
}

fn stale_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut i = 0u64;
    loop {
        let p = path.with_file_name(format!("{name}.stale-{i}"));
        if !p.exists() {
            return p;
        }
        i += 1;
    }
}

fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map_or_else(|| "unknown-host".into(), |h| h.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> LockPolicy {
        LockPolicy {
            heartbeat: Duration::from_millis(100),
            stale_after: Duration::from_secs(2),
            poll: Duration::from_millis(20),
        }
    }

    #[test]
    fn one_holder_at_a_time_and_release_on_drop() {
        let dir = tempfile::tempdir().expect("test");
        let path = dir.path().join("locks/unit.lock");
        let TryLock::Acquired(held) = UnitLock::try_acquire(&path, &quick()).expect("test") else {
            panic!("free lock not acquired");
        };
        assert!(!held.took_over && path.is_file());
        match UnitLock::try_acquire(&path, &quick()).expect("test") {
            TryLock::Busy(owner) => {
                assert!(
                    owner.contains(&format!("pid {}", std::process::id())),
                    "{owner}"
                )
            }
            TryLock::Acquired(_) => panic!("a held lock was acquired twice"),
        }
        drop(held);
        assert!(!path.exists());
        assert!(matches!(
            UnitLock::try_acquire(&path, &quick()).expect("test"),
            TryLock::Acquired(_)
        ));
    }

    #[test]
    fn a_held_lock_keeps_its_heartbeat_and_is_never_stale() {
        let dir = tempfile::tempdir().expect("test");
        let path = dir.path().join("unit.lock");
        let policy = LockPolicy {
            stale_after: Duration::from_millis(600),
            ..quick()
        };
        let TryLock::Acquired(_held) = UnitLock::try_acquire(&path, &policy).expect("test") else {
            panic!("not acquired");
        };
        std::thread::sleep(Duration::from_millis(1500));
        assert!(matches!(
            UnitLock::try_acquire(&path, &policy).expect("test"),
            TryLock::Busy(_)
        ));
    }

    #[test]
    fn a_dead_jobs_lock_is_taken_over_once_stale() {
        let dir = tempfile::tempdir().expect("test");
        let path = dir.path().join("unit.lock");
        // a lock left by a killed job: nobody refreshes it
        std::fs::write(&path, "node-7 pid 4242 since long ago\n").expect("test");
        let old = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&path)
            .expect("test")
            .set_modified(old)
            .expect("test");
        let mut waited = None;
        let lock =
            UnitLock::acquire(&path, &quick(), |o| waited = Some(o.to_string())).expect("test");
        assert!(lock.took_over);
        assert!(waited.is_none(), "a stale lock is not waited for");
        assert!(dir.path().join("unit.lock.stale-0").is_file());
        // a fresh lock of another job is waited for, then acquired once released
        drop(lock);
        std::fs::write(&path, "node-8 pid 1 since now\n").expect("test");
        let p2 = path.clone();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::remove_file(p2).expect("test");
        });
        let mut said = Vec::new();
        let lock = UnitLock::acquire(&path, &quick(), |o| said.push(o.to_string())).expect("test");
        release.join().expect("test");
        assert_eq!(said, ["node-8 pid 1 since now"]);
        assert!(!lock.took_over);
    }
}
