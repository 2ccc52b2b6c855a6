//! The data-scarcity study end to end on a generated three-class folder (not COVID-CT) with the
//! tiny preset's models and every generator family: each subset's generators and cells see
//! only its own real images (checked by the data fingerprints they record), the oracle with no
//! images to add is the raw cell itself, every arm gets an entry with its worth in real images,
//! and the report and `results.json` carry the study.

mod common;

use std::collections::BTreeMap;

use ganaug_data::fixture::{write_class_folders, FixtureFormat, FolderFixture};
use ganaug_data::DataSource;
use ganaug_experiment::scarcity::subsets::{digest_of, draw, subset_splits};
use ganaug_experiment::scarcity::Arm;
use ganaug_experiment::{self as experiment, CellStop, ReproConfig, Scenario};
use ganaug_models::ModelKind;
use ganaug_train::{data_fingerprint, load_checkpoint, RunDir, Silent};

/// The study of these tests: two resamples, "then real" for the guided GANs.
fn tiny_study() -> ReproConfig {
    common::tiny_study(2, 3, &[])
}

#[test]
fn the_study_runs_on_a_class_folder_and_every_arm_sees_its_subset_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = FolderFixture::new(3, 20, 32, FixtureFormat::GrayPng);
    write_class_folders(dir.path(), &fixture).expect("fixture");
    let data = DataSource::folder_or_phantom(Some(dir.path())).expect("discover");
    let cfg = tiny_study().check().expect("valid");
    let out = tempfile::tempdir().expect("out");
    let r = experiment::run(&cfg, &data, out.path(), tch::Device::Cpu, &Silent).expect("run");
    assert!(r.cells.is_empty(), "a study has no table cells");
    let study = r.scarcity.as_ref().expect("the study");
    assert_eq!(study.subsets.len(), 4);

    // Every cell learned from exactly its subset's real images (the oracle: with its extras).
    let loaded = experiment::load_splits(&cfg, &data, tch::Device::Cpu).expect("load");
    let pool = &loaded.splits[&cfg.gan.gan.size];
    let plan = cfg.scarcity.as_ref().expect("plan");
    for c in &study.cells {
        let sub = draw(pool, c.fraction, c.resample, plan.seed, plan.ratio).expect("draw");
        let mut train = sub.train.clone();
        if c.arm == Arm::Oracle {
            train.extend(sub.extras.iter().cloned());
        }
        let want = digest_of(&train, &sub.val);
        assert_eq!(
            c.cell.real_data.as_deref(),
            Some(want.as_str()),
            "{} {:?}",
            c.arm,
            c.cell.model
        );
        assert_eq!(c.data, want);
        assert!(sub.extras.iter().all(|e| !sub.train.contains(e)));
    }

    // Every image GAN trained on its subset's class images only (its checkpoint's fingerprint).
    for (f, resample, g) in &study.gans {
        if g.name.starts_with("features") {
            continue; // vectors: the subset's features, checked by the cells above
        }
        let sub = draw(pool, *f, *resample, plan.seed, plan.ratio).expect("draw");
        let splits = subset_splits(&loaded.splits, &sub, &[]).expect("splits");
        let train = &splits[&cfg.gan.gan.size].train;
        let expected = match g.name.strip_prefix("per-class/") {
            Some(class) => {
                let label = train
                    .class_names
                    .iter()
                    .position(|c| c == class)
                    .expect("class");
                data_fingerprint(&[&train.class_subset(label as i64).expect("class")])
            }
            None => data_fingerprint(&[train]),
        }
        .expect("fingerprint");
        let ckpt = RunDir::new(out.path().join(&g.dir))
            .latest_checkpoint()
            .expect("a checkpoint");
        let (_, meta) = load_checkpoint(&ckpt, tch::Device::Cpu).expect("checkpoint");
        assert_eq!(meta.data, expected, "GAN {} at fraction {f}", g.name);
    }

    // With no real image left to add (the whole data), the oracle is the raw cell itself.
    let at = |f: f64, arm: Arm, model: ModelKind, resample: u64| {
        study
            .cells
            .iter()
            .find(|c| {
                c.fraction == f && c.arm == arm && c.cell.model == model && c.resample == resample
            })
            .unwrap_or_else(|| panic!("no {arm} cell of {model} at {f}, resample {resample}"))
    };
    for m in &cfg.models {
        let (oracle, raw) = (
            at(1.0, Arm::Oracle, m.kind, 0),
            at(1.0, Arm::Raw, m.kind, 0),
        );
        assert_eq!(oracle.cell.probs, raw.cell.probs, "{}", m.kind);
        assert_eq!(oracle.cell.dir, raw.cell.dir, "the same cell, reused");
    }

    // "Then real": the probe refitted on its real rows anchored at the first fit, the CNN
    // fine-tuned on the real images.
    for c in study
        .cells
        .iter()
        .filter(|c| matches!(c.arm, Arm::ThenReal(_)))
    {
        match (&c.cell.stop, c.cell.model) {
            (CellStop::Probe { two_step, .. }, _) => assert!(two_step, "{}", c.cell.stop),
            (CellStop::Fit { then_real, .. }, ModelKind::PaperCnn) => {
                assert!(then_real.is_some(), "{}", c.cell.stop)
            }
            (other, m) => panic!("{m}: {other}"),
        }
    }

    // Every model × fraction × arm has an entry; synthetic arms a worth and a paired difference.
    let arms: BTreeMap<(ModelKind, Arm), usize> =
        study.entries.iter().fold(BTreeMap::new(), |mut m, e| {
            *m.entry((e.model, e.arm)).or_default() += 1;
            m
        });
    assert_eq!(
        arms[&(ModelKind::PaperCnn, Arm::Synthetic(Scenario::Edit))],
        2
    );
    assert_eq!(
        arms[&(ModelKind::PaperCnn, Arm::ThenReal(Scenario::Edit))],
        2
    );
    assert!(!arms.contains_key(&(ModelKind::PaperCnn, Arm::Synthetic(Scenario::Fgan))));
    for e in &study.entries {
        if e.arm == Arm::Raw {
            assert!(e.worth_real_images.is_none() && e.delta_vs_raw.is_none());
        } else {
            assert!(e.worth_real_images.is_some(), "{} {}", e.model, e.arm);
            assert!(e.delta_vs_raw.is_some(), "{} {}", e.model, e.arm);
        }
    }
    let report = std::fs::read_to_string(out.path().join("report.md")).expect("report");
    assert!(
        report.contains("## What the synthetic images are worth"),
        "{report}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("results.json")).expect("json"))
            .expect("valid json");
    let entry = &json["scarcity"]["entries"][0];
    for field in [
        "fraction",
        "real_images",
        "arm",
        "accuracy",
        "delta_vs_raw",
        "worth_real_images",
    ] {
        assert!(
            entry.get(field).is_some(),
            "results.json scarcity entries lack {field}"
        );
    }

    // `--dry-run` of the finished study finds every unit in the folder (the cells under the
    // resample's seed, the oracle under its own data id): nothing left to estimate — the same
    // plan with the images in memory and streamed.
    let dry = |streaming| {
        experiment::plan::dry_run(
            &cfg,
            &data,
            out.path(),
            tch::Device::Cpu,
            (ganaug_experiment::shard::Work::All, streaming),
            &ganaug_train::Silent,
        )
        .expect("dry run")
    };
    let plan = dry(ganaug_data::Streaming::Off);
    assert!(!plan.is_empty());
    for line in &plan {
        assert_eq!(line.seconds, 0.0, "{}: {}", line.what, line.cached);
    }
    let streamed = dry(ganaug_data::Streaming::On);
    let what = |p: &[experiment::plan::PlanLine]| {
        p.iter()
            .map(|l| (l.what.clone(), l.cached.clone(), l.seconds))
            .collect::<Vec<_>>()
    };
    assert_eq!(what(&plan), what(&streamed));

    worth_of_a_set_reads_off_the_study(&cfg, &data, &r);
}

/// `assess --effect cnn --worth`: a set (the validation images) on the whole data, read off the
/// study's learning curve (its half-data raw cells and the effect run's own raw cells); a run
/// without a study, or a classifier trained another way, is refused naming why.
fn worth_of_a_set_reads_off_the_study(
    cfg: &experiment::CheckedConfig,
    data: &DataSource,
    study: &experiment::ReproResults,
) {
    let mut only = (**cfg).clone();
    only.models.retain(|m| m.kind == ModelKind::PaperCnn);
    only.scarcity = None;
    only.scenarios = vec![Scenario::Raw, Scenario::Gan];
    only.seeds = 2;
    let only = only.check().expect("valid");
    let set = data
        .load(only.gan.gan.size, tch::Device::Cpu)
        .expect("load")
        .val;
    let out = tempfile::tempdir().expect("out");
    let mut e = experiment::effect::effect_of_set(
        &only,
        data,
        &set,
        out.path(),
        tch::Device::Cpu,
        &Silent,
        ganaug_data::Streaming::Off,
    )
    .expect("effect");
    let whole = study
        .scarcity
        .as_ref()
        .expect("study")
        .subsets
        .iter()
        .find(|s| s.fraction == 1.0);
    let whole = whole.expect("the whole data's subset");
    let real: usize = whole.train.iter().chain(&whole.val).sum();
    assert_eq!(e.real_images, real, "train + val of the whole folder");
    let w = experiment::effect::worth_of_set(&e, study, "the study").expect("worth");
    assert_eq!(
        w.curve.len(),
        2,
        "half the data, then the run's own raw cells"
    );
    assert!(w.curve[0].0 < w.curve[1].0 && w.curve[1].0 == e.real_images as f64);
    assert!(w.worth.lower.rank() <= w.worth.value.rank());
    assert!(w.worth.value.rank() <= w.worth.upper.rank());
    e.worth = Some(w);
    let md = experiment::effect::effect_markdown(&e);
    assert!(md.contains("Worth in real images"), "{md}");

    let mut none = study.clone();
    none.scarcity = None;
    let err = experiment::effect::worth_of_set(&e, &none, "plain run")
        .expect_err("no study")
        .to_string();
    assert!(
        err.contains("plain run") && err.contains("no scarcity study"),
        "{err}"
    );
    if let Some(plan) = e.plan.as_mut() {
        plan.train.max_epochs += 1;
    }
    let err = experiment::effect::worth_of_set(&e, study, "the study")
        .expect_err("another plan")
        .to_string();
    assert!(err.contains("another way"), "{err}");
}

#[test]
fn a_bad_plan_is_a_configuration_error() {
    let mut c = tiny_study();
    if let Some(p) = &mut c.scarcity {
        p.fractions = vec![0.5, 0.25];
    }
    let err = c.clone().check().expect_err("decreasing fractions");
    assert!(err.to_string().contains("must increase"), "{err}");
    if let Some(p) = &mut c.scarcity {
        p.fractions = vec![0.0, 1.0];
    }
    assert!(c.clone().check().is_err(), "fraction 0");
    if let Some(p) = &mut c.scarcity {
        p.fractions = vec![1.0];
        p.then_real = vec![Scenario::Cgan];
    }
    let err = c.check().expect_err("then_real outside the scenarios");
    assert!(err.to_string().contains("then_real"), "{err}");
}
