//! The saved probe model: one file that predicts the same probabilities after loading, typed
//! errors for images of another size or channel count and for files that are not probe models,
//! and the threshold chosen on out-of-fold probabilities.

use ganaug_models::{
    fit_at, out_of_fold_proba, youden_threshold, Classifier, ModelConfig, ModelError, ModelKind,
    ProbeConfig, ProbeModel, ProbeModelInfo,
};
use ndarray::Array2;
use tch::{Device, Kind, Tensor};

/// `n` images per class at `size`²: class 0 bright on the left, class 1 on the right.
fn images(n: i64, size: i64) -> (Tensor, Vec<usize>) {
    tch::manual_seed(3);
    let x = Tensor::rand([2 * n, 1, size, size], (Kind::Float, Device::Cpu)) * 0.3;
    let half = size / 2;
    for i in 0..2 * n {
        let cols = if i < n { 0..half } else { half..size };
        let _ = x
            .get(i)
            .narrow(2, cols.start, cols.end - cols.start)
            .g_add_scalar_(0.6);
    }
    let y = (0..2 * n).map(|i| usize::from(i >= n)).collect();
    (x, y)
}

fn features(m: &Classifier, x: &Tensor) -> Array2<f64> {
    let f = m
        .extract_features(x, 16)
        .expect("features")
        .to_kind(Kind::Double);
    let a: ndarray::ArrayD<f64> = (&f).try_into().expect("array");
    a.into_dimensionality().expect("matrix")
}

fn info(tta_flip: bool) -> ProbeModelInfo {
    ProbeModelInfo {
        class_names: vec!["left".into(), "right".into()],
        resize: ganaug_data::ResizePolicy::Stretch,
        tta_flip,
        threshold: None,
        trained_on: "test fixture".into(),
    }
}

#[test]
fn a_saved_probe_model_predicts_the_same_and_refuses_wrong_inputs() {
    // A randomly initialised Lite0 at 64² (no weights file needed) with two pooled stages.
    tch::manual_seed(7);
    let cfg = ModelConfig {
        pooled_stages: 2,
        ..ModelConfig::new(ModelKind::EfficientNetLite0, 64)
    };
    let backbone = Classifier::new(cfg, Device::Cpu).expect("model");
    assert_eq!(backbone.feature_dim(), 1280 + 320);
    let (x, y) = images(12, 64);
    let f = features(&backbone, &x);
    let probe = fit_at(&f, &y, 2, 1.0, &ProbeConfig::default()).expect("probe");

    let oof = out_of_fold_proba((&f, &y), 2, 3, 1.0, &ProbeConfig::default()).expect("oof");
    assert_eq!(oof.dim(), (24, 2));
    assert!(oof.rows().into_iter().all(|r| (r.sum() - 1.0).abs() < 1e-9));
    let t = youden_threshold(&y, &oof, 1, "Youden's J, 3-fold").expect("threshold");
    assert!(t.value > 0.0 && t.value < 1.0, "{t:?}");
    assert!(t.sensitivity + t.specificity >= 1.0, "{t:?}");

    let mut with_threshold = info(true);
    with_threshold.threshold = Some(t.clone());
    let model = ProbeModel::new(backbone, probe.clone(), with_threshold).expect("probe model");
    let before = model.predict_proba(&x).expect("predict");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("probe.safetensors");
    model.save(&path).expect("save");
    let loaded = ProbeModel::load(&path, Device::Cpu).expect("load");
    let after = loaded.predict_proba(&x).expect("predict");
    let diff = (&after - &before)
        .mapv(f64::abs)
        .fold(0.0f64, |a, &b| a.max(b));
    assert!(diff < 1e-9, "probabilities changed by {diff}");
    assert_eq!(loaded.info().threshold, Some(t.clone()));
    assert_eq!(loaded.backbone().config().pooled_stages, 2);
    // the decision follows the threshold on the positive class
    let decided = loaded.decide(&after);
    for (row, d) in after.rows().into_iter().zip(&decided) {
        assert_eq!(*d, usize::from(row[1] >= t.value));
    }

    // Images of another size or channel count: typed shape errors naming what was expected.
    for bad in [
        Tensor::rand([2, 1, 32, 32], (Kind::Float, Device::Cpu)),
        Tensor::rand([2, 3, 64, 64], (Kind::Float, Device::Cpu)),
    ] {
        match loaded.predict_proba(&bad) {
            Err(ModelError::Shape { expected, .. }) => assert_eq!(expected, "[N, 1, 64, 64] Float"),
            other => panic!("expected a shape error, got {other:?}"),
        }
    }

    // A plain classifier file is not a probe model.
    let plain = dir.path().join("classifier.safetensors");
    loaded.backbone().save(&plain).expect("save classifier");
    assert!(matches!(
        ProbeModel::load(&plain, Device::Cpu),
        Err(ModelError::Checkpoint { .. })
    ));

    // A probe of another width, or class names that do not match, are refused.
    let narrow = Classifier::new(
        ModelConfig::new(ModelKind::EfficientNetLite0, 64),
        Device::Cpu,
    )
    .expect("model");
    assert!(matches!(
        ProbeModel::new(narrow, probe.clone(), info(false)),
        Err(ModelError::Shape { .. })
    ));
    let three = ProbeModelInfo {
        class_names: vec!["a".into(), "b".into(), "c".into()],
        ..info(false)
    };
    let backbone = ProbeModel::load(&path, Device::Cpu).expect("load");
    let b = Classifier::new(backbone.backbone().config().clone(), Device::Cpu).expect("model");
    assert!(matches!(
        ProbeModel::new(b, probe, three),
        Err(ModelError::Shape { .. })
    ));
}

#[test]
fn youden_threshold_picks_the_best_separating_cut() {
    // positives score 0.6–0.9, negatives 0.1–0.4 except one negative at 0.7
    let y = [1, 1, 1, 1, 0, 0, 0, 0];
    let p1 = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.1, 0.7];
    let probs = Array2::from_shape_fn((8, 2), |(i, j)| if j == 1 { p1[i] } else { 1.0 - p1[i] });
    let t = youden_threshold(&y, &probs, 1, "test").expect("threshold");
    // at 0.6: sensitivity 1, specificity 3/4 — the best J (0.75)
    assert!((t.value - 0.6).abs() < 1e-12, "{t:?}");
    assert_eq!((t.sensitivity, t.specificity), (1.0, 0.75));
}
