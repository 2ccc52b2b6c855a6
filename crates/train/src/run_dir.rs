//! A training run's folder: one layout for every trainer, a guard against mixing two runs, and
//! where the latest checkpoint is.
//!
//! ```text
//! <run>/checkpoints/epoch_00050.safetensors   checkpoints (which ones are kept: KeepCheckpoints)
//! <run>/samples/epoch_00050.png               anything a trainer writes per epoch
//! <run>/history.json                          the run's history (and a PNG plot beside it)
//! ```

use std::path::{Path, PathBuf};

use crate::{Result, TrainError};

/// Which checkpoints a run keeps (when to write them is the trainer's business).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepCheckpoints {
    /// Every checkpoint written.
    All,
    /// The newest `n` (at least one).
    Latest(usize),
}

/// The folder of one training run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

const CHECKPOINTS: &str = "checkpoints";
const HISTORY: &str = "history.json";

impl RunDir {
    /// The run folder at `root` (nothing is created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A file or subfolder of the run.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.root.join(name)
    }

    /// `history.json`.
    pub fn history_file(&self) -> PathBuf {
        self.root.join(HISTORY)
    }

    /// The checkpoint file of `epoch` (1-based epochs done).
    pub fn checkpoint(&self, epoch: usize) -> PathBuf {
        self.root
            .join(CHECKPOINTS)
            .join(format!("epoch_{epoch:05}.safetensors"))
    }

    /// Every checkpoint in the folder with its epoch, oldest first.
    pub fn checkpoints(&self) -> Vec<(usize, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(self.root.join(CHECKPOINTS)) else {
            return Vec::new();
        };
        let mut found: Vec<(usize, PathBuf)> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?;
                let epoch = name
                    .strip_prefix("epoch_")?
                    .strip_suffix(".safetensors")?
                    .parse()
                    .ok()?;
                Some((epoch, p))
            })
            .collect();
        found.sort();
        found
    }

    /// The checkpoint with the most epochs, if any.
    pub fn latest_checkpoint(&self) -> Option<PathBuf> {
        self.checkpoints().pop().map(|(_, p)| p)
    }

    /// Whether the folder holds a run (a history or a checkpoint).
    pub fn holds_run(&self) -> bool {
        self.history_file().exists() || !self.checkpoints().is_empty()
    }

    /// Makes the folder ready for a run: a fresh run (`resuming` false) refuses a folder that
    /// already holds one ([`TrainError::RunExists`]); creates the folder, `checkpoints/` and
    /// `subdirs`.
    pub fn prepare(&self, resuming: bool, subdirs: &[&str]) -> Result<()> {
        if !resuming && self.holds_run() {
            return Err(TrainError::RunExists {
                dir: self.root.clone(),
            });
        }
        for sub in std::iter::once(&CHECKPOINTS).chain(subdirs) {
            let p = self.root.join(sub);
            std::fs::create_dir_all(&p).map_err(|e| TrainError::io(&p, e))?;
        }
        Ok(())
    }

    /// Removes the checkpoints `keep` does not keep (the newest are kept).
    pub fn prune(&self, keep: KeepCheckpoints) -> Result<()> {
        let KeepCheckpoints::Latest(n) = keep else {
            return Ok(());
        };
        let all = self.checkpoints();
        let drop = all.len().saturating_sub(n.max(1));
        for (_, p) in &all[..drop] {
            std::fs::remove_file(p).map_err(|e| TrainError::io(p, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_runs_refuse_a_used_folder_and_checkpoints_are_found_in_epoch_order() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let run = RunDir::new(tmp.path().join("run"));
        assert!(!run.holds_run() && run.latest_checkpoint().is_none());
        run.prepare(false, &["samples"]).expect("fresh");
        assert!(run.join("samples").is_dir());
        for e in [2, 10, 4] {
            std::fs::write(run.checkpoint(e), b"x").expect("write");
        }
        std::fs::write(run.join("checkpoints/notes.txt"), b"x").expect("write");
        assert_eq!(run.latest_checkpoint(), Some(run.checkpoint(10)));
        assert!(matches!(
            run.prepare(false, &[]),
            Err(TrainError::RunExists { .. })
        ));
        run.prepare(true, &[]).expect("resume");
        run.prune(KeepCheckpoints::Latest(2)).expect("prune");
        let left: Vec<usize> = run.checkpoints().into_iter().map(|(e, _)| e).collect();
        assert_eq!(left, [4, 10]);
        run.prune(KeepCheckpoints::All).expect("prune none");
        assert_eq!(run.checkpoints().len(), 2);
    }

    #[test]
    fn a_history_alone_marks_a_run() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let run = RunDir::new(tmp.path());
        std::fs::write(run.history_file(), b"[]").expect("write");
        assert!(run.holds_run());
        assert!(run.prepare(false, &[]).is_err());
    }
}
