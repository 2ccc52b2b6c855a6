//! End-to-end: the tiny preset on a tiny phantom dataset writes every output file, and
//! `results.json` holds every cell with sane values; a second run reuses every cell.

use ganaug_data::PhantomConfig;
use ganaug_experiment::{
    self as experiment, CellStop, DataSource, ExperimentError, Head, ReproConfig, Scenario,
};
use ganaug_train::Silent;

#[test]
fn tiny_reproduction_writes_every_output_and_reuses_finished_cells() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ReproConfig::preset("tiny").expect("tiny preset");
    let data = DataSource::Phantom(PhantomConfig::tiny(32, 10, 3));
    let r = experiment::run(&cfg, &data, dir.path(), tch::Device::Cpu, &Silent).expect("run");

    let n_cells = cfg.models.len() * cfg.scenarios.len() * cfg.seeds;
    assert_eq!(r.cells.len(), n_cells);
    assert!(r.synthetic_data);
    for plan in &cfg.models {
        for s in &cfg.scenarios {
            let c = r
                .cells
                .iter()
                .find(|c| c.model == plan.kind && c.scenario == *s)
                .unwrap_or_else(|| panic!("cell {} × {} missing", plan.kind, s.name()));
            let in_unit = |x: f64| (0.0..=1.0).contains(&x);
            let (lo, hi) = (
                c.accuracy.lower.expect("interval"),
                c.accuracy.upper.expect("interval"),
            );
            assert!(in_unit(c.accuracy.value) && lo <= c.accuracy.value && c.accuracy.value <= hi);
            assert!(in_unit(c.recall.value) && in_unit(c.specificity.value));
            assert!(c.auc.is_some_and(|a| in_unit(a.value)));
            assert_eq!(c.labels.len(), 20);
            assert!(c
                .probs
                .iter()
                .all(|p| (p.iter().sum::<f64>() - 1.0).abs() < 1e-5));
            let probe = matches!(plan.head, Head::Probe { .. });
            if probe {
                // A probe's "epochs" are its L-BFGS iterations; it records every strength tried.
                assert!(
                    c.epochs >= 1 && matches!(c.stop, CellStop::Probe { .. }),
                    "{}",
                    c.stop
                );
                assert!(
                    c.stop.to_string().starts_with("probe converged"),
                    "{}",
                    c.stop
                );
            } else {
                assert!(c.epochs >= 1 && c.epochs <= 2);
            }
            // Augmented scenarios train on more images than raw.
            if *s != Scenario::Raw {
                let raw = r
                    .cells
                    .iter()
                    .find(|x| x.model == c.model && x.scenario == Scenario::Raw)
                    .expect("raw");
                assert!(c.train_images > raw.train_images, "{}", s.name());
            }
            let written = if probe { "probe.json" } else { "curves.png" };
            assert!(dir.path().join(&c.dir).join(written).is_file(), "{written}");
        }
    }
    // With the feature network: every synthetic set measured against the real-vs-real floor,
    // and a classification accuracy score for the real training split and each set.
    if ganaug_models::pretrained_weights(ganaug_models::ModelKind::EfficientNetLite0).is_some() {
        assert!(r.synthetic.iter().all(|x| x.measures.is_some()));
        let trained_on: Vec<&str> = r.cas.iter().map(|c| c.trained_on.as_str()).collect();
        assert_eq!(trained_on, ["real", "per-class", "conditional"]);
        assert!(r.cas.iter().all(|c| (0.0..=1.0).contains(&c.accuracy)));
    }
    // Paired tests against raw for every non-raw cell.
    assert_eq!(
        r.aggregates.iter().filter(|a| a.vs_raw.is_some()).count(),
        cfg.models.len() * (cfg.scenarios.len() - 1)
    );
    // Two per-class GANs and one conditional; four synthetic sets.
    assert_eq!(r.gans.len(), 3);
    assert_eq!(r.synthetic.len(), 4);

    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("results.json")).expect("results.json"),
    )
    .expect("json");
    assert_eq!(json["cells"].as_array().map(Vec::len), Some(n_cells));
    assert_eq!(json["schema_version"], experiment::SCHEMA_VERSION);
    assert_eq!(json["config"]["preset"], "tiny");
    // The README table names the preset and commit it came from, and replaces only its block.
    let table = experiment::report::readme_table(&r);
    assert!(
        table.contains("Preset `tiny`") && table.contains("| Our CNN (32²) |"),
        "{table}"
    );
    let readme = format!(
        "intro\n{}\nold\n{}\noutro\n",
        experiment::report::README_BEGIN,
        experiment::report::README_END
    );
    let updated = experiment::report::replace_readme_table(&readme, &table).expect("block");
    assert_eq!(updated, format!("intro\n{table}outro\n"));
    assert_eq!(
        experiment::report::replace_readme_table(&updated, &table).as_deref(),
        Some(updated.as_str())
    );
    assert!(experiment::report::replace_readme_table("no block", &table).is_none());
    // results.json reads back into the same typed results.
    let back = experiment::report::read_results(&dir.path().join("results.json")).expect("read");
    assert_eq!(back.cells, r.cells);
    let report = std::fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    assert!(report.starts_with("# SYNTHETIC STAND-IN DATA"));
    assert!(
        report.contains("0.6583"),
        "paper numbers printed next to ours"
    );
    let mut expected: Vec<String> = vec!["results.json".into(), "report.md".into()];
    expected.extend(cfg.models.iter().map(|m| format!("roc_{}.png", m.kind)));
    expected.extend(r.synthetic.iter().map(|s| s.grid.clone()));
    expected.extend(
        r.gans
            .iter()
            .map(|g| format!("gan_losses_{}.png", g.name.replace('/', "_"))),
    );
    for f in expected {
        assert!(dir.path().join(&f).is_file(), "{f} missing");
    }

    // Another configuration into the same folder is refused before any work.
    let other = ReproConfig {
        seeds: 2,
        ..cfg.clone().into_inner()
    }
    .check()
    .expect("valid");
    let err = experiment::run(&other, &data, dir.path(), tch::Device::Cpu, &Silent);
    assert!(
        matches!(err, Err(ExperimentError::OtherResults { .. })),
        "{err:?}"
    );

    // A second run reuses every finished cell and GAN: same numbers, no training.
    let again = experiment::run(&cfg, &data, dir.path(), tch::Device::Cpu, &Silent).expect("rerun");
    assert!(again.gans.iter().all(|g| g.seconds == 0.0));
    for (a, b) in r.cells.iter().zip(&again.cells) {
        assert_eq!(a, b);
    }
}
