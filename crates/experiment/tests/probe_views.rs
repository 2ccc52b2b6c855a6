//! A probe cell with augmented feature views: each training image adds `views` augmented
//! copies to the fit, drawn per seed (another seed, other views), on the phantom stand-in.

use ganaug_experiment::{run, DataSource, Head, ReproConfig, Scenario};
use ganaug_models::ModelKind;
use ganaug_train::Silent;

#[test]
fn probe_views_add_augmented_copies_per_seed() {
    if ganaug_models::pretrained_weights(ModelKind::EfficientNetLite0).is_none() {
        assert!(
            std::env::var_os("GANAUG_REQUIRE_WEIGHTS").is_none(),
            "EfficientNet-Lite0 weights are missing: run scripts/setup.sh"
        );
        eprintln!("skipped: no EfficientNet-Lite0 weights");
        return;
    }
    let mut cfg = ReproConfig::preset("tiny").expect("tiny").into_inner();
    cfg.scenarios = vec![Scenario::Raw];
    cfg.seeds = 2;
    cfg.models
        .retain(|m| m.kind == ModelKind::EfficientNetLite0);
    let Head::Probe { views, .. } = &mut cfg.models[0].head else {
        panic!("the tiny preset's Lite0 is a probe");
    };
    *views = 2;
    let cfg = cfg.check().expect("valid");
    let data = DataSource::folder_or_phantom(None).expect("phantom");
    let dir = tempfile::tempdir().expect("tempdir");
    let r = run(&cfg, &data, dir.path(), tch::Device::Cpu, &Silent).expect("run");
    let train = data.load(32, tch::Device::Cpu).expect("data").train.len();
    assert_eq!(r.cells.len(), 2);
    for c in &r.cells {
        assert_eq!(c.train_images, 3 * train, "{c:?}");
    }
    // the views differ between seeds, so the two cells' probabilities do
    assert_ne!(r.cells[0].probs, r.cells[1].probs);
}
