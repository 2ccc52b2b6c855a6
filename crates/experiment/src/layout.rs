//! Every path of a results folder, in one place: the GANs' run folders, the cells', their
//! locks, the shards' files, the outputs. No other module builds a path by hand, so a layout
//! change is one edit and two modules can never disagree about where a thing lives.
//!
//! ```text
//! <out>/config.json                          the configuration the folder belongs to
//! <out>/gan/per-class-<class>-<key>/         one per-class GAN's run (ganaug-train's RunDir)
//! <out>/gan/conditional-<key>/               the conditional GAN's run
//! <out>/cells/<model>-<scenario>-s<seed>-<key>/cell.json   a finished cell
//! <out>/cells/…/finetune-real/               its fine-tuning on real images, if any
//! <out>/cells/…/probe.json                   a probe cell's fitted probe
//! <out>/locks/gan-<set>-<key>.lock           a unit claimed by a job (shared folders)
//! <out>/locks/cell-<cell folder>.lock
//! <out>/shards/shard-<I>-of-<N>.json         what one shard finished
//! <out>/results.json, report.md, roc_<model>.png, gan_losses_<name>.png,
//! <out>/synthetic_<set>_<class>[_by-<rule>].png, sweep.json, sweep.md, sweep_<model>.png,
//! <out>/scarcity_<model>.png
//! ```

use std::path::{Path, PathBuf};

use ganaug_models::ModelKind;

use crate::select::SelectBy;
use crate::shard::Shard;
use crate::{Scenario, Synthetic};

/// The layout of one results folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

/// One GAN's place: which set, which class (per-class sets), and the key of what defines it.
#[derive(Debug, Clone, Copy)]
pub struct GanUnit<'a> {
    /// The synthetic set the GAN makes.
    pub which: Synthetic,
    /// The class it learns (per-class GANs; `None` for the conditional GAN).
    pub class: Option<&'a str>,
    /// The hash of what defines the GAN.
    pub key: &'a str,
}

impl Layout {
    /// The layout of the results folder `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `path` relative to the folder, as results record it (they stay valid when the folder
    /// moves).
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// `config.json`: the configuration the folder belongs to.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }

    /// A private file this process writes before claiming the folder atomically.
    pub fn config_claim(&self) -> PathBuf {
        self.root
            .join(format!(".config.json.{}", std::process::id()))
    }

    /// `results.json`.
    pub fn results(&self) -> PathBuf {
        self.root.join("results.json")
    }

    /// `report.md`.
    pub fn report(&self) -> PathBuf {
        self.root.join("report.md")
    }

    /// A GAN's run folder.
    pub fn gan_dir(&self, unit: GanUnit<'_>) -> PathBuf {
        let name = match (unit.which, unit.class) {
            (Synthetic::PerClass, Some(class)) => format!("per-class-{class}-{}", unit.key),
            (Synthetic::PerClass, None) => format!("per-class-{}", unit.key),
            (Synthetic::Conditional, _) => format!("conditional-{}", unit.key),
            (Synthetic::Edits, _) => format!("edit-{}", unit.key),
            (Synthetic::Features, _) => format!("features-{}", unit.key),
        };
        self.root.join("gan").join(name)
    }

    /// The lock of a GAN unit (all of a set's GANs of one replica).
    pub fn gan_lock(&self, which: Synthetic, key: &str) -> PathBuf {
        self.locks().join(format!("gan-{which}-{key}.lock"))
    }

    /// A cell's folder name: model, scenario, seed and the hash of what defines it.
    pub fn cell_name(model: ModelKind, scenario: Scenario, seed: u64, key: &str) -> String {
        format!("{model}-{scenario}-s{seed}-{key}")
    }

    /// A cell's folder.
    pub fn cell_dir(&self, name: &str) -> PathBuf {
        self.root.join("cells").join(name)
    }

    /// The lock of a cell.
    pub fn cell_lock(&self, name: &str) -> PathBuf {
        self.locks().join(format!("cell-{name}.lock"))
    }

    /// A finished cell's result in its folder.
    pub fn cell_result(cell_dir: &Path) -> PathBuf {
        cell_dir.join("cell.json")
    }

    /// A cell's fine-tuning on real images (its own run folder).
    pub fn finetune_dir(cell_dir: &Path) -> PathBuf {
        cell_dir.join("finetune-real")
    }

    /// A probe cell's fitted probe.
    pub fn probe_file(cell_dir: &Path) -> PathBuf {
        cell_dir.join("probe.json")
    }

    fn locks(&self) -> PathBuf {
        self.root.join("locks")
    }

    /// The folder of the shards' files.
    pub fn shards(&self) -> PathBuf {
        self.root.join("shards")
    }

    /// What shard `s` finished.
    pub fn shard_file(&self, s: Shard) -> PathBuf {
        self.shards()
            .join(format!("shard-{}-of-{}.json", s.index, s.count))
    }

    /// A kept synthetic set as class folders of 16-bit PNGs, named by the set, its replica and
    /// the key of its GAN(s) (`synthetic/per-class-f28bb7e19096/COVID/…`, replicas after the
    /// first `per-class-r1-…`): the sets of a scarcity study's subsets, each from its own GANs,
    /// get folders of their own. For `ganaug assess` and for use outside ganaug.
    pub fn synthetic_set_dir(&self, which: Synthetic, replica: u64, key: &str) -> PathBuf {
        let set = replica_name(which.name(), replica).replace('/', "-");
        self.root.join(SYNTHETIC_SETS).join(format!("{set}-{key}"))
    }

    /// The sample grid of one class's kept synthetic images, relative to the folder.
    pub fn synthetic_grid(which: Synthetic, replica: u64, class: &str, by: SelectBy) -> String {
        let set = replica_name(which.name(), replica).replace('/', "_");
        let by = match by {
            SelectBy::Discriminator => String::new(),
            other => format!("_by-{}", other.name()),
        };
        format!("synthetic_{set}_{class}{by}.png")
    }

    /// A model's ROC plot.
    pub fn roc_plot(&self, model: ModelKind) -> PathBuf {
        self.root.join(format!("roc_{model}.png"))
    }

    /// A GAN's loss curve copied beside the report (`name` as in the results: `per-class/COVID`).
    pub fn gan_losses_plot(&self, name: &str) -> PathBuf {
        self.root
            .join(format!("gan_losses_{}.png", name.replace('/', "_")))
    }

    /// A GAN run folder's own loss curve.
    pub fn losses_in(run_dir: &Path) -> PathBuf {
        run_dir.join("losses.png")
    }

    /// A scarcity study's plot for one model.
    pub fn scarcity_plot(&self, model: ModelKind) -> PathBuf {
        self.root.join(format!("scarcity_{model}.png"))
    }

    /// A sweep's results.
    pub fn sweep_results(&self) -> PathBuf {
        self.root.join("sweep.json")
    }

    /// A sweep's report.
    pub fn sweep_report(&self) -> PathBuf {
        self.root.join("sweep.md")
    }

    /// A sweep's plot for one model.
    pub fn sweep_plot(&self, model: ModelKind) -> PathBuf {
        self.root.join(format!("sweep_{model}.png"))
    }
}

/// The folder of the kept synthetic sets.
pub const SYNTHETIC_SETS: &str = "synthetic";

/// `name` of replica `r` (unchanged for replica 0): `per-class/COVID/r1`.
pub fn replica_name(name: &str, r: u64) -> String {
    if r == 0 {
        name.into()
    } else {
        format!("{name}/r{r}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names results folders written before this module hold: moving them would orphan
    /// every finished GAN and cell.
    #[test]
    fn names_match_the_folders_earlier_runs_wrote() {
        let l = Layout::new("/r");
        let gan = GanUnit {
            which: Synthetic::PerClass,
            class: Some("COVID"),
            key: "abc",
        };
        assert_eq!(l.gan_dir(gan), Path::new("/r/gan/per-class-COVID-abc"));
        let cgan = GanUnit {
            which: Synthetic::Conditional,
            class: None,
            key: "k",
        };
        assert_eq!(l.gan_dir(cgan), Path::new("/r/gan/conditional-k"));
        let name = Layout::cell_name(ModelKind::PaperCnn, Scenario::GanClassic, 2, "f00");
        assert_eq!(name, "cnn-gan-classic-s2-f00");
        assert_eq!(
            l.cell_lock(&name),
            Path::new("/r/locks/cell-cnn-gan-classic-s2-f00.lock")
        );
        assert_eq!(
            l.gan_lock(Synthetic::Conditional, "k"),
            Path::new("/r/locks/gan-conditional-k.lock")
        );
        let s = Shard { index: 2, count: 4 };
        assert_eq!(l.shard_file(s), Path::new("/r/shards/shard-2-of-4.json"));
        assert_eq!(
            Layout::synthetic_grid(Synthetic::PerClass, 1, "COVID", SelectBy::Nearest),
            "synthetic_per-class_r1_COVID_by-nearest.png"
        );
        assert_eq!(
            l.relative(&l.cell_dir(&name)),
            "cells/cnn-gan-classic-s2-f00"
        );
    }
}
