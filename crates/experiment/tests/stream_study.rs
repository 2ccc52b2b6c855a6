//! A data-scarcity study that streams its images from the decode cache (`--stream on`) is the
//! study in memory: each subset is a subset of the streams (the same images by name, read from
//! the cache), its GANs train on it streamed (the edit GAN too, its edits applied to each
//! cell's real images as they are read), its feature GAN reads its features batch by batch,
//! and every subset's cells, GANs, synthetic sets and worth entries are the in-memory study's.
//! (Its own test binary: two trainings in one process at once would share libtorch's random
//! generator.)

mod common;

use ganaug_data::fixture::{write_class_folders, FixtureFormat, FolderFixture};
use ganaug_data::{DataSource, FolderSource, Streaming};
use ganaug_experiment::scarcity::Arm;
use ganaug_experiment::{self as experiment, RunOptions, Scenario};

/// `v` without its wall times (every key naming seconds), to compare two runs whole.
fn without_times(mut v: serde_json::Value) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, _| !k.contains("seconds"));
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

/// One resample, "then real" for the per-class GAN too.
fn tiny_study() -> experiment::CheckedConfig {
    common::tiny_study(1, 5, &[Scenario::Gan])
        .check()
        .expect("valid")
}

#[test]
fn a_streamed_study_is_the_in_memory_study() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_class_folders(
        dir.path(),
        &FolderFixture::new(2, 16, 32, FixtureFormat::GrayPng),
    )
    .expect("fixture");
    let data = DataSource::Folder(Box::new(
        FolderSource::discover(dir.path()).expect("folder"),
    ));
    let cfg = tiny_study();
    let run = |streaming: Streaming, out: &std::path::Path| {
        let opts = RunOptions {
            streaming,
            ..RunOptions::default()
        };
        experiment::run_with(&cfg, &data, out, tch::Device::Cpu, &opts).expect("the study")
    };
    let (out_memory, out_streamed) = (
        tempfile::tempdir().expect("out"),
        tempfile::tempdir().expect("out"),
    );
    let memory = run(Streaming::Off, out_memory.path());
    let streamed = run(Streaming::On, out_streamed.path());
    assert!(
        streamed.decisions.iter().any(|d| d.contains("streamed")),
        "{:?}",
        streamed.decisions
    );
    assert!(!memory.decisions.iter().any(|d| d.contains("streamed")));

    let (a, b) = (
        memory.scarcity.as_ref().expect("the study"),
        streamed.scarcity.as_ref().expect("the study"),
    );
    // what is compared below is there: both fractions, every arm the plan asks for
    assert_eq!(a.subsets.len(), 2);
    let arms: std::collections::BTreeSet<Arm> = a.cells.iter().map(|c| c.arm).collect();
    for arm in [
        Arm::Raw,
        Arm::Classic,
        Arm::Synthetic(Scenario::Gan),
        Arm::ThenReal(Scenario::Gan),
        Arm::Synthetic(Scenario::Edit),
        Arm::ThenReal(Scenario::Edit),
        Arm::Oracle,
    ] {
        assert!(arms.contains(&arm), "no {arm} cell: {arms:?}");
    }
    if cfg.gan.features.is_some() {
        assert!(arms.contains(&Arm::Synthetic(Scenario::Fgan)), "{arms:?}");
        assert!(a
            .gans
            .iter()
            .any(|(_, _, g)| g.name.starts_with("features")));
    }
    assert!(!a.synthetic.is_empty() && !a.entries.is_empty());

    // cell by cell first (a clearer failure), then the whole study
    assert_eq!(a.cells.len(), b.cells.len());
    for (x, y) in a.cells.iter().zip(&b.cells) {
        let what = format!("{} {} at {}", x.arm, x.cell.model, x.fraction);
        assert_eq!(
            (x.fraction, x.resample, x.arm, x.cell.model),
            (y.fraction, y.resample, y.arm, y.cell.model),
            "{what}"
        );
        assert_eq!(x.cell.real_data, y.cell.real_data, "{what}");
        assert_eq!(x.cell.train_images, y.cell.train_images, "{what}");
        assert_eq!(x.cell.probs, y.cell.probs, "{what}");
    }
    let json = |r: &experiment::scarcity::ScarcityResults| {
        without_times(serde_json::to_value(r).expect("serializable"))
    };
    assert_eq!(json(a), json(b));
}
