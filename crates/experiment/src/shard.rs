//! Splitting one run into shards that run as separate jobs (a Slurm job array, any batch
//! system) on a shared results folder: every unit of work — the GANs of one synthetic set and
//! replica, one cell — has a fixed index, and shard `I` of `N` owns the units whose index is
//! `I − 1` modulo `N`. A unit is claimed with a lock file ([`crate::lock`]) and its result is
//! written atomically, so shards never run one unit twice; a cell that needs a GAN another
//! shard owns waits for that shard's lock (or trains the GAN itself under the same lock when
//! nobody holds it). `reproduce --report-only` then merges whatever is finished.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{CheckedConfig, ExperimentError, Synthetic};

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, from 1.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

impl Shard {
    /// Whether unit `unit` (0-based, in [`units`] order) falls to this shard.
    pub fn owns(&self, unit: usize) -> bool {
        unit % self.count == self.index - 1
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ExperimentError;

    /// `I/N` with `1 ≤ I ≤ N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| ExperimentError::config("shard", reason);
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| bad(format!("{s:?} is not of the form I/N (e.g. 1/4)")))?;
        let parse = |x: &str, what: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| bad(format!("{s:?}: the {what} {x:?} is not a whole number")))
        };
        let (index, count) = (parse(i, "index")?, parse(n, "count")?);
        if count == 0 {
            return Err(bad(format!(
                "{s:?}: the number of shards must be at least 1"
            )));
        }
        if index == 0 || index > count {
            return Err(bad(format!(
                "{s:?}: the index must be in 1..={count} (shards are numbered from 1)"
            )));
        }
        Ok(Shard { index, count })
    }
}

/// One unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// The GANs of one synthetic set and replica (the per-class set: one GAN per class).
    Gan {
        /// The set.
        which: Synthetic,
        /// The replica.
        replica: u64,
    },
    /// One cell: the `model`-th model of the configuration, a scenario, a seed.
    Cell {
        /// Index into `cfg.models`.
        model: usize,
        /// The scenario.
        scenario: crate::Scenario,
        /// The seed.
        seed: u64,
    },
}

/// Every unit of `cfg`, in the fixed order that numbers them: the image-GAN units (by replica,
/// then per-class, conditional, edit GAN), then the cells (model, scenario, seed). A
/// feature-space GAN trains inside its probe cell.
pub fn units(cfg: &CheckedConfig) -> Vec<Unit> {
    let mut out = Vec::new();
    for replica in 0..cfg.gan.replicas.min(cfg.seeds as u64) {
        for which in Synthetic::IMAGE_GANS {
            if cfg.needs(which) {
                out.push(Unit::Gan { which, replica });
            }
        }
    }
    for model in 0..cfg.models.len() {
        for &scenario in &cfg.scenarios {
            for seed in 0..cfg.seeds as u64 {
                out.push(Unit::Cell {
                    model,
                    scenario,
                    seed,
                });
            }
        }
    }
    out
}

/// Which units a run may do: all of them, one shard's, or none (merge what is finished).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Work {
    /// Every unit (an ordinary run).
    #[default]
    All,
    /// The units of one shard (and the GANs its cells need).
    Shard(Shard),
    /// No training: report what is finished.
    ReportOnly,
}

impl Work {
    /// Whether unit number `unit` is this run's to do.
    pub fn owns(&self, unit: usize) -> bool {
        match self {
            Work::All => true,
            Work::Shard(s) => s.owns(unit),
            Work::ReportOnly => false,
        }
    }

    /// Whether several jobs may share the folder (units are then claimed with locks).
    pub fn shared(&self) -> bool {
        !matches!(self, Work::All)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_specs_parse_or_say_what_is_wrong() {
        assert_eq!(
            "2/4".parse::<Shard>().expect("test"),
            Shard { index: 2, count: 4 }
        );
        assert_eq!(
            " 1 / 1 ".trim().parse::<Shard>().expect("test").to_string(),
            "1/1"
        );
        for (spec, says) in [
            ("3/2", "1..=2"),
            ("0/4", "numbered from 1"),
            ("1/0", "at least 1"),
            ("two/4", "not a whole number"),
            ("4", "I/N"),
        ] {
            let e = spec.parse::<Shard>().expect_err(spec).to_string();
            assert!(e.contains(says) && e.contains("shard"), "{spec}: {e}");
        }
    }

    #[test]
    fn every_unit_falls_to_exactly_one_shard() {
        for n in 1..6 {
            let shards: Vec<Shard> = (1..=n).map(|index| Shard { index, count: n }).collect();
            for unit in 0..37 {
                assert_eq!(shards.iter().filter(|s| s.owns(unit)).count(), 1);
            }
        }
    }
}
