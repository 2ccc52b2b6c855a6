//! How cells use synthetic images: GAN replicas per seed, a synthetic-per-real ratio, the
//! selection rules, fine-tuning on real images afterwards, a loss weight for probe cells, and
//! the configuration errors that guard them. Tiny preset, tiny phantom data.

use ganaug_data::PhantomConfig;
use ganaug_experiment::{
    self as experiment, CellStop, DataSource, ExperimentError, FineTuned, Head, ReproConfig,
    Scenario, SelectBy, SynthMix,
};
use ganaug_models::{pretrained_weights, ModelKind};
use ganaug_train::Silent;

fn tiny(models: &[ModelKind]) -> ReproConfig {
    let mut cfg = ReproConfig::preset("tiny").expect("tiny").into_inner();
    cfg.scenarios = vec![Scenario::Raw, Scenario::Gan];
    cfg.models.retain(|m| models.contains(&m.kind));
    cfg
}

fn data() -> DataSource {
    DataSource::Phantom(PhantomConfig::tiny(32, 10, 3))
}

#[test]
fn replicas_ratio_and_fine_tuning_shape_the_cells() {
    let mut cfg = tiny(&[ModelKind::PaperCnn]);
    cfg.seeds = 2;
    cfg.gan.replicas = 2;
    cfg.gan.mix = SynthMix {
        ratio: Some(0.5),
        weight: 1.0,
        finetune_real_epochs: 1,
        ..SynthMix::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let r = experiment::run(
        &cfg.check().expect("valid"),
        &data(),
        dir.path(),
        tch::Device::Cpu,
        &Silent,
    )
    .expect("run");
    // two GANs per class per replica, each replica's sets measured and named
    let names: Vec<&str> = r.gans.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names.iter().any(|n| n.ends_with("/r1")), "{names:?}");
    let replicas: Vec<u64> = r.synthetic.iter().map(|s| s.replica).collect();
    assert_eq!(replicas.iter().filter(|&&x| x == 1).count(), 2);
    let raw = r
        .cell(ModelKind::PaperCnn, Scenario::Raw, 0)
        .expect("raw cell");
    let real = r.test_counts.len(); // two classes
    assert_eq!(real, 2);
    for seed in 0..2 {
        let gan = r
            .cell(ModelKind::PaperCnn, Scenario::Gan, seed)
            .expect("gan cell");
        // half a synthetic image per real one, class by class (10 real training images each
        // in the tiny phantom set give 5)
        let added = gan.train_images - raw.train_images;
        assert_eq!(
            added,
            (raw.train_images as f64 * 0.5).round() as usize,
            "seed {seed}"
        );
        assert!(
            matches!(
                gan.stop,
                CellStop::Fit {
                    then_real: Some(FineTuned { epochs: 1, .. }),
                    ..
                }
            ),
            "{}",
            gan.stop
        );
        assert!(gan
            .stop
            .to_string()
            .contains("then 1 epochs on real images"));
        assert!(dir.path().join(&gan.dir).join("finetune-real").is_dir());
    }
    // the two seeds trained on different GANs' images
    let (g0, g1) = (
        r.cell(ModelKind::PaperCnn, Scenario::Gan, 0)
            .expect("present"),
        r.cell(ModelKind::PaperCnn, Scenario::Gan, 1)
            .expect("present"),
    );
    assert_ne!(g0.dir, g1.dir);
    let a = r
        .aggregate(ModelKind::PaperCnn, Scenario::Gan)
        .expect("aggregate");
    let vs = a.vs_raw.as_ref().expect("paired with raw");
    assert_eq!(vs.seeds, 2);
    let (lo, hi) = (
        vs.accuracy_diff.lower.expect("present"),
        vs.accuracy_diff.upper.expect("present"),
    );
    assert!(lo <= vs.accuracy_diff.value && vs.accuracy_diff.value <= hi);
    assert!(a.vs_classic.is_none(), "no classic scenario in this run");
    let report = std::fs::read_to_string(dir.path().join("report.md")).expect("report");
    assert!(
        report.contains("## What the synthetic images did"),
        "{report}"
    );
    assert!(report.contains("**Target**"));
}

#[test]
fn a_ratio_beyond_the_kept_images_is_a_clear_error() {
    let mut cfg = tiny(&[ModelKind::PaperCnn]);
    cfg.gan.mix.ratio = Some(50.0);
    let dir = tempfile::tempdir().expect("tempdir");
    let err = experiment::run(
        &cfg.check().expect("valid"),
        &data(),
        dir.path(),
        tch::Device::Cpu,
        &Silent,
    )
    .expect_err("too many asked");
    let text = format!("{err}");
    assert!(
        matches!(err, ExperimentError::Cell { .. }) && text.contains("keep_per_class"),
        "{text}"
    );
}

#[test]
fn settings_that_cannot_apply_are_refused_when_checked() {
    let field = |cfg: ReproConfig| match cfg.check() {
        Err(ExperimentError::Config { field, .. }) => field,
        other => panic!("expected a configuration error, got {other:?}"),
    };
    let mut c = tiny(&[ModelKind::PaperCnn]);
    c.gan.replicas = 0;
    assert_eq!(field(c), "gan.replicas");
    let mut c = tiny(&[ModelKind::PaperCnn]);
    c.gan.mix.ratio = Some(-1.0);
    assert_eq!(field(c), "gan.mix.ratio");
    // a loss weight is for probe cells; fine-tuning on real images for the others
    let mut c = tiny(&[ModelKind::PaperCnn]);
    c.gan.mix.weight = 0.5;
    assert_eq!(field(c), "gan.mix.weight");
    let mut c = tiny(&[ModelKind::EfficientNetLite0]);
    c.gan.mix.finetune_real_epochs = 2;
    assert_eq!(field(c), "gan.mix.finetune_real_epochs");
    let mut c = tiny(&[ModelKind::PaperCnn]);
    c.gan.select.k = 0;
    assert_eq!(field(c), "gan.select.k");
}

#[test]
fn probe_cells_weight_synthetic_rows_and_feature_rules_select() {
    if pretrained_weights(ModelKind::EfficientNetLite0).is_none() {
        assert!(
            std::env::var_os("GANAUG_REQUIRE_WEIGHTS").is_none(),
            "GANAUG_REQUIRE_WEIGHTS is set but the EfficientNet-Lite0 weights are missing"
        );
        eprintln!("skipped: no EfficientNet-Lite0 weights (scripts/setup.sh)");
        return;
    }
    let mut base = tiny(&[ModelKind::EfficientNetLite0]);
    let Head::Probe { probe, .. } = &mut base.models[0].head else {
        panic!("the tiny preset's Lite0 is a probe");
    };
    probe.selection = ganaug_models::ProbeSelection::KFold { k: 2 };
    let run = |weight: f64, by: SelectBy| {
        let mut c = base.clone();
        c.gan.mix.weight = weight;
        c.gan.select.by = by;
        let dir = tempfile::tempdir().expect("tempdir");
        let r = experiment::run(
            &c.check().expect("valid"),
            &data(),
            dir.path(),
            tch::Device::Cpu,
            &Silent,
        )
        .expect("run");
        (r, dir)
    };
    let (plain, _d1) = run(1.0, SelectBy::Discriminator);
    let (light, _d2) = run(0.1, SelectBy::Discriminator);
    let probs = |r: &experiment::ReproResults| {
        r.cell(ModelKind::EfficientNetLite0, Scenario::Gan, 0)
            .expect("gan cell")
            .probs
            .clone()
    };
    assert_ne!(probs(&plain), probs(&light), "the weight changes the fit");
    // the raw cell does not depend on the weight
    let raw = |r: &experiment::ReproResults| {
        r.cell(ModelKind::EfficientNetLite0, Scenario::Raw, 0)
            .expect("raw")
            .probs
            .clone()
    };
    assert_eq!(raw(&plain), raw(&light));
    for by in [SelectBy::Confidence, SelectBy::Nearest, SelectBy::Coverage] {
        let (r, dir) = run(1.0, by);
        assert_eq!(r.synthetic.len(), 2, "{by:?}");
        for s in &r.synthetic {
            assert_eq!(s.selection.kept, 6, "{by:?}");
            assert!(
                s.grid.ends_with(&format!("_by-{}.png", by.name())),
                "{}",
                s.grid
            );
            assert!(dir.path().join(&s.grid).is_file());
        }
    }
}
