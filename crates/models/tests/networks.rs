//! Classifier networks: shapes, saved weights, the EfficientNet-Lite reference logits, bf16,
//! batched prediction, feature maps.

use std::collections::HashMap;

use ganaug_models::{fit, Classifier, FitOptions, ModelConfig, ModelError, ModelKind, TrainConfig};
use ganaug_train::TrainError;
use tch::{Device, Kind, Tensor};

mod common;
use common::{cnn, halves, rng_lock};

#[test]
fn every_model_gives_logits_of_the_right_shape() {
    let _g = rng_lock();
    for (kind, size) in [
        (ModelKind::PaperCnn, 32),
        (ModelKind::PaperCnn, 96),
        (ModelKind::Vgg16, 32),
        (ModelKind::ResNet50, 64),
        (ModelKind::EfficientNetLite0, 64),
    ] {
        let m = Classifier::new(ModelConfig::new(kind, size), Device::Cpu).expect("model");
        let x = Tensor::rand([2, 1, size, size], (Kind::Float, Device::Cpu));
        let y = tch::no_grad(|| m.forward_t(&x, false)).expect("forward");
        assert_eq!(y.size(), [2, 2], "{kind} at {size}");
        let f = m.extract_features(&x, 1).expect("features");
        assert_eq!(f.size(), [2, m.feature_dim()], "{kind} features");
    }
    // Wrong input shapes and impossible configs are typed errors.
    let m = cnn(32);
    for bad in [[2, 3, 32, 32], [2, 1, 64, 64]] {
        let err = m.forward_t(&Tensor::rand(bad, (Kind::Float, Device::Cpu)), false);
        assert!(matches!(err, Err(ModelError::Shape { .. })), "{bad:?}");
    }
    // So is a tensor of another element type at each public entry (libtorch would abort).
    let f64_opts = (Kind::Double, Device::Cpu);
    let err = m.forward_t(&Tensor::rand([2, 1, 32, 32], f64_opts), false);
    assert!(matches!(
        err,
        Err(ModelError::Shape {
            what: "classifier input",
            ..
        })
    ));
    let err = m.head_t(&Tensor::rand([2, m.feature_dim()], f64_opts), false);
    assert!(matches!(
        err,
        Err(ModelError::Shape {
            what: "head input",
            ..
        })
    ));
    let err = m.backbone_features_normalised(&Tensor::rand([2, 1, 32, 32], f64_opts));
    assert!(matches!(
        err,
        Err(ModelError::Shape {
            what: "normalised backbone input",
            ..
        })
    ));
    let err = Classifier::new(ModelConfig::new(ModelKind::PaperCnn, 48), Device::Cpu);
    assert!(matches!(
        err,
        Err(ModelError::Config {
            field: "image_size",
            ..
        })
    ));
    assert!(ModelKind::parse("alexnet").is_err());
    assert_eq!(
        ModelKind::parse("ResNet50").expect("parse"),
        ModelKind::ResNet50
    );
}

#[test]
fn save_load_round_trip_and_bad_weight_files_are_typed_errors() {
    let _g = rng_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let m = cnn(32);
    let path = dir.path().join("cnn.safetensors");
    m.save(&path).expect("save");
    let back = Classifier::load(&path, Device::Cpu).expect("load");
    let x = Tensor::rand([3, 1, 32, 32], (Kind::Float, Device::Cpu));
    let (a, b) = tch::no_grad(|| (m.forward_t(&x, false), back.forward_t(&x, false)));
    assert!(a.expect("a").equal(&b.expect("b")));

    // Backbone weights by name: a file missing one tensor, with one extra, with one mis-shaped.
    let vars = m.var_store().variables();
    let mut tensors: Vec<(String, Tensor)> = vars
        .iter()
        .filter(|(n, _)| !n.starts_with("head."))
        .map(|(n, t)| (n.clone(), t.copy()))
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let write = |name: &str, t: &[(String, Tensor)]| {
        let p = dir.path().join(name);
        ganaug_train::save_tensors(&p, t, &HashMap::new()).expect("write");
        p
    };
    let good = write("good.safetensors", &tensors);
    let mut fresh = cnn(32);
    let report = fresh
        .load_backbone_weights(&good)
        .expect("partial load of the backbone");
    assert!(report.kept.iter().all(|n| n.starts_with("head.")) && !report.kept.is_empty());
    assert!(fresh.var_store().variables()["features.0.weight"].equal(&vars["features.0.weight"]));

    let mut broken: Vec<(String, Tensor)> =
        tensors.iter().map(|(n, t)| (n.clone(), t.copy())).collect();
    let removed = broken.remove(0).0;
    broken.push((
        "features.99.weight".into(),
        Tensor::zeros([1], (Kind::Float, Device::Cpu)),
    ));
    let i = broken
        .iter()
        .position(|(n, _)| n == "features.4.weight")
        .expect("conv");
    broken[i].1 = Tensor::zeros([3, 3], (Kind::Float, Device::Cpu));
    let bad = write("bad.safetensors", &broken);
    match fresh.load_backbone_weights(&bad) {
        Err(ModelError::Train(TrainError::WeightMismatch {
            missing,
            unexpected,
            misshaped,
            ..
        })) => {
            assert_eq!(missing, vec![removed]);
            assert_eq!(unexpected, vec!["features.99.weight".to_string()]);
            assert!(misshaped.len() == 1 && misshaped[0].starts_with("features.4.weight"));
        }
        other => panic!("expected a weight mismatch, got {other:?}"),
    }

    let bytes = std::fs::read(&good).expect("read");
    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let text = dir.path().join("notes.safetensors");
    std::fs::write(&text, "these are not weights").expect("write");
    for p in [&truncated, &text] {
        let err = fresh.load_backbone_weights(p);
        assert!(
            matches!(err, Err(ModelError::Train(TrainError::TensorFile { .. }))),
            "{p:?}: {err:?}"
        );
    }
    let err = Classifier::load(dir.path().join("absent.safetensors"), Device::Cpu);
    assert!(matches!(err, Err(ModelError::Train(TrainError::Io { .. }))));
}

/// The EfficientNet-Lite0/1/2 weights that set-up converts are the real ImageNet ones: a fixed
/// synthetic input at each variant's native size gives the features, classes and logits that
/// the reference PyTorch port gives on the same file (`efficientnet_lite_reference.json`, made by
/// `scripts/reference/efficientnet_lite_reference.py`, CPU, float32).
#[test]
fn efficientnet_lite_reproduces_the_reference_imagenet_logits() {
    let _g = rng_lock();
    let reference: serde_json::Value =
        serde_json::from_str(include_str!("efficientnet_lite_reference.json")).expect("json");
    for (kind, variant, tensors) in [
        (ModelKind::EfficientNetLite0, "lite0", 245),
        (ModelKind::EfficientNetLite1, "lite1", 320),
        (ModelKind::EfficientNetLite2, "lite2", 320),
    ] {
        let Some(path) = ganaug_models::pretrained_weights(kind) else {
            assert!(
                std::env::var_os("GANAUG_REQUIRE_WEIGHTS").is_none(),
                "weights for {kind} are missing: run scripts/setup.sh"
            );
            eprintln!("skipped {kind}: no weights (run scripts/setup.sh)");
            continue;
        };
        let want = &reference["models"][variant];
        let size = want["size"].as_i64().expect("size");
        assert_eq!(kind.pretrained_size(), Some(size));
        let mut m = Classifier::new(ModelConfig::new(kind, size), Device::Cpu).expect("model");
        let report = m.load_backbone_weights(&path).expect("load");
        assert_eq!(report.loaded.len(), tensors, "{kind}");
        assert_eq!(
            report.skipped,
            vec!["_fc.bias".to_string(), "_fc.weight".to_string()]
        );

        // The reference input on the 0–255 scale: v = 127.5 + 127.5·sin(0.05·i + 0.031·j·(c+1)).
        // The model normalises (x·255 − 127)/128 itself; the reference fed the same values.
        let n = size as usize;
        let mut v = Vec::with_capacity(3 * n * n);
        for c in 0..3 {
            for i in 0..n {
                for j in 0..n {
                    let s = (0.05 * i as f64 + 0.031 * j as f64 * (c as f64 + 1.0)).sin();
                    v.push(((127.5 + 127.5 * s - 127.0) / 128.0) as f32);
                }
            }
        }
        let x = Tensor::from_slice(&v).view([1, 3, size, size]);
        let features = m.backbone_features_normalised(&x).expect("features");
        let (mean, std) = (
            features.mean(Kind::Float).double_value(&[]),
            features.std(false).double_value(&[]),
        );
        let num = |k: &str| want[k].as_f64().expect(k);
        assert!(
            (mean - num("feature_mean")).abs() < 1e-4 && (std - num("feature_std")).abs() < 1e-4,
            "{kind}: {mean} {std}"
        );
        let (saved, _) = ganaug_train::load_tensors(&path, Device::Cpu).expect("file");
        let logits = features.matmul(&saved["_fc.weight"].tr()) + &saved["_fc.bias"];
        let top: Vec<i64> =
            Vec::try_from(logits.squeeze().topk(5, -1, true, true).1).expect("top5");
        let want_top: Vec<i64> = serde_json::from_value(want["top5"].clone()).expect("top5");
        assert_eq!(top, want_top, "{kind}");
        let want_logits: Vec<f64> =
            serde_json::from_value(want["logits_first5"].clone()).expect("logits");
        for (k, w) in want_logits.iter().enumerate() {
            let got = logits.double_value(&[0, k as i64]);
            assert!((got - w).abs() < 1e-3, "{kind} logit {k}: {got} vs {w}");
        }
    }

    // Another variant's file is a typed mismatch: Lite0's weights lack Lite2's blocks 16–20
    // and have other widths.
    if let Some(lite0) = ganaug_models::pretrained_weights(ModelKind::EfficientNetLite0) {
        let mut m = Classifier::new(
            ModelConfig::new(ModelKind::EfficientNetLite2, 64),
            Device::Cpu,
        )
        .expect("model");
        match m.load_backbone_weights(&lite0) {
            Err(ModelError::Train(TrainError::WeightMismatch {
                missing, misshaped, ..
            })) => {
                assert!(
                    missing.iter().any(|n| n.starts_with("_blocks.20.")),
                    "{missing:?}"
                );
                assert!(
                    misshaped.iter().any(|n| n.starts_with("_blocks.4.")),
                    "{misshaped:?}"
                );
            }
            other => panic!("expected a weight mismatch, got {other:?}"),
        }
    }
}

#[test]
fn bf16_mode_matches_f32_within_bf16_precision_and_trains() {
    let _g = rng_lock();
    tch::manual_seed(11);
    let f32_model = cnn(32);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("w.safetensors");
    f32_model.save(&path).expect("save");
    let cfg = ModelConfig {
        bf16: true,
        ..ModelConfig::new(ModelKind::PaperCnn, 32)
    };
    let bf16 = Classifier::new(cfg, Device::Cpu).expect("bf16 model");
    let (saved, _) = ganaug_train::load_tensors(&path, Device::Cpu).expect("load");
    let report = ganaug_train::copy_into_vars(
        &bf16.var_store().variables(),
        &saved,
        &Default::default(),
        &path,
    )
    .expect("copy");
    assert!(!report.loaded.is_empty());
    let x = Tensor::rand([4, 1, 32, 32], (Kind::Float, Device::Cpu));
    let (a, b) = tch::no_grad(|| {
        (
            f32_model.forward_t(&x, false).expect("f32"),
            bf16.forward_t(&x, false).expect("bf16"),
        )
    });
    assert_eq!(b.kind(), Kind::Float, "outputs come back as f32");
    let diff = (&a - &b).abs().max().double_value(&[]);
    assert!(
        diff > 0.0 && diff < 0.05,
        "bf16 vs f32 logits differ by {diff}"
    );
    // Weights stay f32 and training moves them.
    let mut m = bf16;
    let train = halves(8, 32, 12);
    let r = fit(
        &mut m,
        &train,
        &halves(2, 32, 13),
        &TrainConfig {
            max_epochs: 2,
            lr: 0.05,
            ..Default::default()
        },
        &FitOptions::default(),
    )
    .expect("fit");
    assert!(r.history.iter().all(|h| h.train_loss.is_finite()));
    assert!(m
        .var_store()
        .variables()
        .values()
        .all(|t| t.kind() == Kind::Float));
}

/// Regression: batched inference over views (`narrow`) must see each batch's own images (a
/// channels-last conversion that reused a view's storage read the first batch every time).
#[test]
fn batched_prediction_matches_one_image_at_a_time() {
    let _g = rng_lock();
    for kind in [ModelKind::PaperCnn, ModelKind::EfficientNetLite0] {
        let m = Classifier::new(ModelConfig::new(kind, 32), Device::Cpu).expect("model");
        let x = Tensor::rand([70, 1, 32, 32], (Kind::Float, Device::Cpu));
        let batched = m.predict_proba(&x, 64).expect("batched");
        let single: Vec<Tensor> = (0..70)
            .map(|i| m.predict_proba(&x.narrow(0, i, 1), 1).expect("single"))
            .collect();
        let diff = (batched - Tensor::cat(&single, 0))
            .abs()
            .max()
            .double_value(&[]);
        assert!(
            diff < 1e-5,
            "{kind}: batched vs single predictions differ by {diff}"
        );
        let f = m.extract_features(&x, 64).expect("features");
        let f_last = m.extract_features(&x.narrow(0, 69, 1), 1).expect("one");
        assert!((f.narrow(0, 69, 1) - f_last).abs().max().double_value(&[]) < 1e-5);
    }
}

/// The feature maps a projected discriminator reads: four stages' outputs of the same network
/// the classifier uses (the deepest, pooled, equals the classifier's pooled last stage), gray
/// equal to its RGB repeat, frozen weights with gradients flowing to the input.
#[test]
fn lite_feature_maps_are_the_networks_stages_and_pass_gradients() {
    let _g = rng_lock();
    let kind = ModelKind::EfficientNetLite0;
    let Some(path) = ganaug_models::pretrained_weights(kind) else {
        assert!(
            std::env::var_os("GANAUG_REQUIRE_WEIGHTS").is_none(),
            "weights for {kind} are missing: run scripts/setup.sh"
        );
        eprintln!("skipped: no weights (run scripts/setup.sh)");
        return;
    };
    let f = ganaug_models::LiteFeatureMaps::new(kind, &path, Device::Cpu).expect("maps");
    assert_eq!(f.channels(), [24, 40, 112, 320]);
    tch::manual_seed(5);
    let x = Tensor::rand([2, 1, 64, 64], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let maps = f.maps(&x).expect("maps");
    let sides: Vec<Vec<i64>> = maps.iter().map(|m| m.size()).collect();
    assert_eq!(
        sides,
        [
            [2, 24, 16, 16],
            [2, 40, 8, 8],
            [2, 112, 4, 4],
            [2, 320, 2, 2]
        ]
    );
    let rgb = f.maps(&x.detach().repeat([1, 3, 1, 1])).expect("rgb");
    let gap = (&maps[3].detach() - &rgb[3]).abs().max().double_value(&[]);
    assert!(gap < 1e-5, "gray vs repeated RGB: {gap}");

    let cfg = ModelConfig {
        pooled_stages: 2,
        ..ModelConfig::new(kind, 64)
    };
    let mut m = Classifier::new(cfg, Device::Cpu).expect("model");
    m.load_backbone_weights(&path).expect("load");
    let pooled = m.features_t(&x.detach(), false).expect("features");
    let want = pooled.narrow(1, 1280, 320);
    let got = maps[3]
        .detach()
        .mean_dim(&[2i64, 3][..], false, Kind::Float);
    let gap = (&want - &got).abs().max().double_value(&[]);
    assert!(
        gap < 1e-4,
        "deepest map vs the classifier's pooled last stage: {gap}"
    );

    maps[3].sum(Kind::Float).backward();
    let grad = x.grad();
    assert!(grad.defined() && grad.abs().sum(Kind::Float).double_value(&[]) > 0.0);
    let err = ganaug_models::LiteFeatureMaps::new(ModelKind::ResNet50, &path, Device::Cpu)
        .expect_err("not a Lite");
    assert!(err.to_string().contains("EfficientNet-Lite only"), "{err}");
}
