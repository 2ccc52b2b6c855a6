//! Two shards of the tiny preset run at the same time (two processes) in one folder; a
//! report-only run then merges them, and the merged results equal those of a single run with
//! the same seeds, every cell's per-image probabilities included.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ganaug_data::PhantomConfig;
use ganaug_experiment::lock::LockPolicy;
use ganaug_experiment::shard::{Shard, Work};
use ganaug_experiment::{self as experiment, CheckedConfig, DataSource, ReproConfig, RunOptions};

const SHARD: &str = "GANAUG_TEST_SHARD";
const DIR: &str = "GANAUG_TEST_SHARD_DIR";

fn cfg() -> CheckedConfig {
    let mut c = ReproConfig::preset("tiny").expect("tiny").into_inner();
    c.seeds = 2;
    c.gan.replicas = 2;
    c.check().expect("valid")
}

fn data() -> DataSource {
    DataSource::Phantom(PhantomConfig::tiny(32, 10, 3))
}

fn run(dir: &Path, work: Work) -> experiment::ReproResults {
    let opts = RunOptions {
        work,
        lock: LockPolicy {
            poll: Duration::from_millis(100),
            ..LockPolicy::default()
        },
        ..RunOptions::default()
    };
    experiment::run_with(&cfg(), &data(), dir, tch::Device::Cpu, &opts).expect("run")
}

/// Runs one shard when started by the test below (does nothing otherwise).
#[test]
fn shard_child() {
    let (Ok(spec), Ok(dir)) = (std::env::var(SHARD), std::env::var(DIR)) else {
        return;
    };
    let shard: Shard = spec.parse().expect("shard spec");
    let r = run(Path::new(&dir), Work::Shard(shard));
    assert!(!r.cells.is_empty());
}

#[test]
fn two_shards_at_once_merge_into_what_one_run_gives() {
    if std::env::var_os(SHARD).is_some() {
        return;
    }
    let shared = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let children: Vec<_> = ["1/2", "2/2"]
        .iter()
        .map(|spec| {
            Command::new(&exe)
                .args(["--exact", "shard_child", "--test-threads", "1"])
                .env(SHARD, spec)
                .env(DIR, shared.path())
                .spawn()
                .expect("start a shard")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().expect("shard").success(), "a shard failed");
    }
    // each shard left its own summary, and no lock behind
    for i in 1..=2 {
        assert!(shared
            .path()
            .join(format!("shards/shard-{i}-of-2.json"))
            .is_file());
    }
    let locks = std::fs::read_dir(shared.path().join("locks")).expect("locks folder");
    assert_eq!(locks.count(), 0, "locks left behind");

    let merged = run(shared.path(), Work::ReportOnly);
    assert!(merged.missing.is_empty(), "{:?}", merged.missing);
    assert!(shared.path().join("report.md").is_file());
    let single_dir = tempfile::tempdir().expect("tempdir");
    let single = run(single_dir.path(), Work::All);
    assert_eq!(merged.cells.len(), single.cells.len());
    for (a, b) in merged.cells.iter().zip(&single.cells) {
        assert_eq!((a.model, a.scenario, a.seed), (b.model, b.scenario, b.seed));
        assert_eq!(
            a.probs, b.probs,
            "{} × {} seed {}",
            a.model, a.scenario, a.seed
        );
        assert_eq!(a.train_images, b.train_images);
    }
    assert_eq!(merged.synthetic.len(), single.synthetic.len());

    // report-only in a folder with nothing finished trains nothing and lists it all
    let empty = tempfile::tempdir().expect("tempdir");
    let nothing = run(empty.path(), Work::ReportOnly);
    assert!(nothing.cells.is_empty() && nothing.gans.is_empty());
    assert!(!nothing.missing.is_empty());
    let report = std::fs::read_to_string(empty.path().join("report.md")).expect("report");
    assert!(report.contains("**Incomplete**"), "{report}");
    // no GAN finished and no set: no empty GAN table, no claim about missing weights
    assert!(
        !report.contains("## GANs and their synthetic images"),
        "{report}"
    );
    assert!(!report.contains("no weights"), "{report}");
}
