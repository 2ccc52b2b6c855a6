//! Classifier tests: shapes, learning, the paper's training rules, checkpoints, weight files.

use std::collections::HashMap;

use ganaug_data::TensorDataset;
use ganaug_models::{
    fit, predict, BackboneMode, Classifier, FitOptions, ModelConfig, ModelError, ModelKind,
    SelectOn, StopReason, TrainConfig,
};
use ganaug_train::TrainError;
use tch::{nn::OptimizerConfig, Device, Kind, Tensor};

/// libtorch's generator is global and cargo runs tests in parallel: every test holds this lock,
/// since initialisation and dropout draw from it and some tests compare runs.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    TORCH_RNG.lock().unwrap_or_else(|p| p.into_inner())
}

/// `n` images per class of `size`²: class 0 has a bright left half, class 1 a bright right half.
fn halves(n: i64, size: i64, seed: i64) -> TensorDataset {
    tch::manual_seed(seed);
    let opts = (Kind::Float, Device::Cpu);
    let noise = Tensor::rand([2 * n, 1, size, size], opts) * 0.3;
    let col = Tensor::arange(size, opts).view([1, 1, 1, size]);
    let left = col.lt((size / 2) as f64).to_kind(Kind::Float) * 0.6;
    let right = col.ge((size / 2) as f64).to_kind(Kind::Float) * 0.6;
    let images = Tensor::cat(
        &[
            left.expand([n, 1, size, size], false),
            right.expand([n, 1, size, size], false),
        ],
        0,
    ) + noise;
    let labels = Tensor::cat(
        &[
            Tensor::zeros([n], (Kind::Int64, Device::Cpu)),
            Tensor::ones([n], (Kind::Int64, Device::Cpu)),
        ],
        0,
    );
    let names = (0..2 * n).map(|i| format!("img{i}")).collect();
    TensorDataset::new(
        images,
        labels,
        names,
        vec!["left".into(), "right".into()],
        "toy halves",
    )
    .expect("dataset")
}

fn cnn(size: i64) -> Classifier {
    Classifier::new(ModelConfig::new(ModelKind::PaperCnn, size), Device::Cpu).expect("model")
}

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
fn the_paper_cnn_overfits_a_tiny_fixed_batch() {
    let _g = rng_lock();
    tch::manual_seed(1);
    let m = cnn(32);
    let x = Tensor::rand([8, 1, 32, 32], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1, 1, 0, 1, 0, 0, 1]); // arbitrary: only memorising fits
    let mut opt = tch::nn::Sgd {
        momentum: 0.9,
        ..Default::default()
    }
    .build(m.var_store(), 0.02)
    .expect("sgd");
    for _ in 0..100 {
        let loss = m
            .forward_t(&x, true)
            .expect("forward")
            .cross_entropy_for_logits(&y);
        opt.backward_step(&loss);
    }
    let pred = tch::no_grad(|| m.forward_t(&x, false))
        .expect("forward")
        .argmax(-1, false);
    assert_eq!(pred, y, "train accuracy must reach 100% on 8 images");
}

#[test]
fn the_95_percent_rule_stops_training_and_best_val_weights_are_restored() {
    let _g = rng_lock();
    let train = halves(24, 32, 2);
    let val = halves(8, 32, 3);
    let mut m = cnn(32);
    let cfg = TrainConfig {
        max_epochs: 40,
        lr: 0.01,
        momentum: 0.9,
        ..Default::default()
    };
    let r = fit(&mut m, &train, &val, &cfg, &FitOptions::default()).expect("fit");
    assert_eq!(r.stop, StopReason::TrainAccuracy);
    let last = r.history.last().expect("an epoch");
    assert!(last.train_accuracy >= 0.95 && r.history.len() < 40);
    assert!(r.history[..r.history.len() - 1]
        .iter()
        .all(|h| h.train_accuracy < 0.95));
    // A run that stopped stays stopped when resumed.
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = FitOptions {
        out_dir: Some(dir.path()),
        resume: true,
        ..Default::default()
    };
    let first = fit(&mut cnn(32), &train, &val, &cfg, &opts).expect("fit");
    let again = fit(&mut cnn(32), &train, &val, &cfg, &opts).expect("resume");
    assert_eq!(
        (again.history.len(), again.stop.clone()),
        (first.history.len(), first.stop.clone())
    );

    // Without the rule: the restored weights are the best-validation-loss epoch's.
    let mut m = cnn(32);
    let cfg = TrainConfig {
        max_epochs: 6,
        lr: 0.05,
        momentum: 0.9,
        stop_at_train_accuracy: None,
        ..Default::default()
    };
    let r = fit(&mut m, &train, &val, &cfg, &FitOptions::default()).expect("fit");
    assert_eq!(
        (r.stop.clone(), r.history.len()),
        (StopReason::MaxEpochs, 6)
    );
    let best = r
        .history
        .iter()
        .min_by(|a, b| a.val_loss.total_cmp(&b.val_loss))
        .expect("epochs");
    assert_eq!(r.best_epoch, best.epoch);
    let logits = tch::no_grad(|| m.forward_t(&val.images, false)).expect("forward");
    let loss = logits
        .cross_entropy_for_logits(&val.labels)
        .double_value(&[]);
    assert!(
        (loss - best.val_loss).abs() < 1e-4,
        "restored val loss {loss} vs best {}",
        best.val_loss
    );
    let p = predict(&m, &val).expect("predict");
    assert_eq!(p.probs.dim(), (16, 2));
    assert!(p
        .probs
        .rows()
        .into_iter()
        .all(|r| (r.sum() - 1.0).abs() < 1e-5));
}

#[test]
fn resume_continues_exactly_and_other_runs_are_refused() {
    let _g = rng_lock();
    let train = halves(12, 32, 4);
    let val = halves(4, 32, 5);
    let cfg = TrainConfig {
        max_epochs: 4,
        lr: 0.01,
        stop_at_train_accuracy: None,
        seed: 9,
        ..Default::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");

    tch::manual_seed(7);
    let mut straight = cnn(32);
    let full = fit(&mut straight, &train, &val, &cfg, &FitOptions::default()).expect("fit");

    tch::manual_seed(7);
    let mut a = cnn(32);
    let first = TrainConfig {
        max_epochs: 2,
        ..cfg.clone()
    };
    let opts = FitOptions {
        out_dir: Some(dir.path()),
        resume: true,
        ..Default::default()
    };
    fit(&mut a, &train, &val, &first, &opts).expect("first half");
    assert!(dir.path().join("history.json").is_file());
    assert_eq!(
        dir.path().join("curves.png").is_file(),
        cfg!(feature = "plot")
    );
    let mut b = cnn(32); // different initial weights: the checkpoint must overwrite them all
    let resumed = fit(&mut b, &train, &val, &cfg, &opts).expect("resume");
    assert_eq!(resumed.history.len(), 4);
    for (x, y) in full.history.iter().zip(&resumed.history) {
        assert!(
            (x.train_loss - y.train_loss).abs() < 1e-6 && (x.val_loss - y.val_loss).abs() < 1e-6
        );
    }
    // Resuming with other training data is refused: another image count, or the same count
    // and names with one pixel changed (the fingerprint covers the pixels).
    let other = halves(13, 32, 4);
    let err = fit(&mut cnn(32), &other, &val, &cfg, &opts);
    assert!(
        matches!(err, Err(ModelError::Train(TrainError::Resume { .. }))),
        "{err:?}"
    );
    let touched = TensorDataset::new(
        train.images.copy(),
        train.labels.shallow_clone(),
        train.names.clone(),
        train.class_names.clone(),
        "touched",
    )
    .expect("dataset");
    let _ = touched.images.get(0).get(0).get(0).get(0).fill_(0.5);
    let err = fit(&mut cnn(32), &touched, &val, &cfg, &opts);
    assert!(
        matches!(err, Err(ModelError::Train(TrainError::Resume { .. }))),
        "{err:?}"
    );
    // ... and so are other training settings (a new learning rate).
    let other_lr = TrainConfig {
        lr: 0.02,
        ..cfg.clone()
    };
    let err = fit(&mut cnn(32), &train, &val, &other_lr, &opts);
    assert!(
        matches!(err, Err(ModelError::Train(TrainError::Resume { .. }))),
        "{err:?}"
    );
    // One checkpoint is kept, in the run folder's layout.
    let run = ganaug_train::RunDir::new(dir.path());
    assert_eq!(run.checkpoints().len(), 1);

    let fresh = FitOptions {
        out_dir: Some(dir.path()),
        ..Default::default()
    };
    let err = fit(&mut cnn(32), &train, &val, &cfg, &fresh);
    assert!(
        matches!(err, Err(ModelError::Train(TrainError::RunExists { .. }))),
        "{err:?}"
    );
}

#[test]
fn nan_inputs_stop_training_with_a_typed_error() {
    let _g = rng_lock();
    let train = halves(4, 32, 6);
    let _ = train.images.get(0).get(0).get(0).get(0).fill_(f64::NAN);
    let val = halves(2, 32, 7);
    let err = fit(
        &mut cnn(32),
        &train,
        &val,
        &TrainConfig {
            max_epochs: 1,
            ..Default::default()
        },
        &FitOptions::default(),
    );
    assert!(
        matches!(err, Err(ModelError::NonFinite { epoch: 0, .. })),
        "{err:?}"
    );
}

#[test]
fn frozen_backbone_trains_the_head_on_cached_features() {
    let _g = rng_lock();
    let train = halves(8, 32, 8);
    let val = halves(4, 32, 9);
    let mut m = cnn(32);
    let before: HashMap<String, Tensor> = m
        .var_store()
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.copy()))
        .collect();
    let cfg = TrainConfig {
        max_epochs: 3,
        lr: 0.05,
        backbone: BackboneMode::Frozen,
        stop_at_train_accuracy: None,
        ..Default::default()
    };
    let r = fit(&mut m, &train, &val, &cfg, &FitOptions::default()).expect("fit");
    assert!(r.cached_features);
    for (n, t) in m.var_store().variables() {
        let same = t.equal(&before[&n]);
        assert_eq!(
            same,
            !n.starts_with("head."),
            "{n}: only the head may change"
        );
    }
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

#[test]
fn selection_can_wait_for_a_minimum_of_epochs_and_use_validation_auc() {
    let _g = rng_lock();
    let train = halves(12, 32, 11);
    let val = halves(6, 32, 12);
    let base = TrainConfig {
        max_epochs: 4,
        lr: 0.01,
        stop_at_train_accuracy: None,
        ..Default::default()
    };
    // No epoch before the third can be kept.
    let waiting = TrainConfig {
        min_epochs: 3,
        ..base.clone()
    };
    let r = fit(&mut cnn(32), &train, &val, &waiting, &FitOptions::default()).expect("fit");
    assert!(r.best_epoch >= 3, "best epoch {}", r.best_epoch);
    assert_eq!(r.best_val_loss, r.history[r.best_epoch].val_loss);
    // Stopping before any eligible epoch keeps the last weights.
    let early = TrainConfig {
        min_epochs: 10,
        ..base.clone()
    };
    let r = fit(&mut cnn(32), &train, &val, &early, &FitOptions::default()).expect("fit");
    assert_eq!(r.best_epoch, r.history.len() - 1);
    // Selection on validation AUC records it every epoch and keeps its best epoch.
    let by_auc = TrainConfig {
        select_on: SelectOn::ValAuc,
        ..base.clone()
    };
    let r = fit(&mut cnn(32), &train, &val, &by_auc, &FitOptions::default()).expect("fit");
    let aucs: Vec<f64> = r.history.iter().map(|h| h.val_auc.expect("auc")).collect();
    assert!(aucs.iter().all(|a| (0.0..=1.0).contains(a)), "{aucs:?}");
    let best = aucs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(aucs[r.best_epoch], best);
    // ... and needs two classes in the validation set.
    let one_class = val.class_subset(0).expect("class");
    let err = fit(
        &mut cnn(32),
        &train,
        &one_class,
        &by_auc,
        &FitOptions::default(),
    );
    assert!(
        matches!(
            err,
            Err(ModelError::Config {
                field: "select_on",
                ..
            })
        ),
        "{err:?}"
    );
}

/// The fine-tuning recipe: a linear head started from a probe gives the probe's
/// probabilities; AdamW with warm-up + cosine, label smoothing, mixup, a weight average, frozen
/// batch-norm statistics and a slower backbone trains, resumes exactly, and bad settings are
/// typed errors.
#[test]
fn lp_ft_recipe_starts_from_the_probe_trains_and_resumes_exactly() {
    use ganaug_models::{fit_at, HeadArch, LrSchedule, Optimizer, ProbeConfig};
    let _g = rng_lock();
    let train = halves(12, 32, 4);
    let val = halves(4, 32, 5);
    let lite = |seed: i64| {
        tch::manual_seed(seed);
        let cfg = ModelConfig {
            head: HeadArch::Linear,
            dropout: 0.0,
            ..ModelConfig::new(ModelKind::EfficientNetLite0, 32)
        };
        Classifier::new(cfg, Device::Cpu).expect("model")
    };

    // LP: the probe on the backbone's features; the head then computes the probe's logits.
    let mut m = lite(1);
    let f = m
        .extract_features(&train.images, 8)
        .expect("features")
        .to_kind(Kind::Double);
    let f: ndarray::ArrayD<f64> = (&f).try_into().expect("array");
    let f = f.into_dimensionality::<ndarray::Ix2>().expect("matrix");
    let y: Vec<usize> = Vec::<i64>::try_from(&train.labels)
        .expect("labels")
        .into_iter()
        .map(|l| l as usize)
        .collect();
    let probe = fit_at(&f, &y, 2, 1.0, &ProbeConfig::default()).expect("probe");
    m.init_head_from_probe(&probe).expect("init");
    let ours = m
        .predict_proba(&train.images, 8)
        .expect("probs")
        .to_kind(Kind::Double);
    let want = probe.predict_proba(&f).expect("probe probs");
    for i in 0..y.len() {
        let got = ours.double_value(&[i as i64, 1]);
        assert!(
            (got - want[[i, 1]]).abs() < 1e-4,
            "row {i}: {got} vs {}",
            want[[i, 1]]
        );
    }
    // the paper head cannot take a probe
    let mut paper = Classifier::new(
        ModelConfig::new(ModelKind::EfficientNetLite0, 32),
        Device::Cpu,
    )
    .expect("model");
    assert!(matches!(
        paper.init_head_from_probe(&probe),
        Err(ModelError::Config { .. })
    ));

    // FT: the whole recipe, straight and interrupted.
    let cfg = TrainConfig {
        max_epochs: 4,
        lr: 1e-3,
        weight_decay: 0.05,
        optimizer: Optimizer::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        schedule: LrSchedule::Cosine,
        warmup_epochs: 1,
        label_smoothing: 0.1,
        mixup_alpha: Some(0.4),
        ema_decay: Some(0.9),
        freeze_batch_norm: true,
        backbone_lr_scale: 0.1,
        stop_at_train_accuracy: None,
        select_on: SelectOn::ValAuc,
        seed: 3,
        ..Default::default()
    };
    assert_eq!(cfg.lr_at(0), 1e-3); // warm-up of one epoch ends at the full rate
    assert!((cfg.lr_at(1) - 1e-3).abs() < 1e-15 && cfg.lr_at(3) < 3e-4);
    let mut straight = lite(2);
    straight.init_head_from_probe(&probe).expect("init");
    let full = fit(&mut straight, &train, &val, &cfg, &FitOptions::default()).expect("fit");
    assert_eq!(full.history.len(), 4);
    assert!(full
        .history
        .iter()
        .all(|h| h.val_auc.is_some() && h.train_loss.is_finite()));

    let dir = tempfile::tempdir().expect("tempdir");
    let opts = FitOptions {
        out_dir: Some(dir.path()),
        resume: true,
        ..Default::default()
    };
    let mut a = lite(2);
    a.init_head_from_probe(&probe).expect("init");
    let first = TrainConfig {
        max_epochs: 2,
        ..cfg.clone()
    };
    // a cosine schedule spans max_epochs: the first half is its own run, so a resume with
    // another max_epochs is refused
    fit(&mut a, &train, &val, &first, &opts).expect("first half");
    let err = fit(&mut lite(5), &train, &val, &cfg, &opts);
    assert!(
        matches!(err, Err(ModelError::Train(TrainError::Resume { .. }))),
        "{err:?}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let opts = FitOptions {
        out_dir: Some(dir.path()),
        resume: true,
        ..Default::default()
    };
    let constant = TrainConfig {
        schedule: LrSchedule::Constant,
        ..cfg.clone()
    };
    let mut s2 = lite(2);
    s2.init_head_from_probe(&probe).expect("init");
    let full = fit(&mut s2, &train, &val, &constant, &FitOptions::default()).expect("fit");
    let mut a = lite(2);
    a.init_head_from_probe(&probe).expect("init");
    let first = TrainConfig {
        max_epochs: 2,
        ..constant.clone()
    };
    fit(&mut a, &train, &val, &first, &opts).expect("first half");
    let resumed = fit(&mut lite(6), &train, &val, &constant, &opts).expect("resume");
    for (x, y) in full.history.iter().zip(&resumed.history) {
        assert!(
            (x.train_loss - y.train_loss).abs() < 1e-6 && (x.val_loss - y.val_loss).abs() < 1e-6,
            "{x:?} vs {y:?}"
        );
    }

    for bad in [
        TrainConfig {
            label_smoothing: 1.0,
            ..cfg.clone()
        },
        TrainConfig {
            mixup_alpha: Some(0.0),
            ..cfg.clone()
        },
        TrainConfig {
            ema_decay: Some(1.0),
            ..cfg.clone()
        },
        TrainConfig {
            backbone_lr_scale: 0.0,
            ..cfg.clone()
        },
        TrainConfig {
            warmup_epochs: 4,
            ..cfg.clone()
        },
        TrainConfig {
            optimizer: Optimizer::AdamW {
                beta1: 1.0,
                beta2: 0.999,
                eps: 1e-8,
            },
            ..cfg.clone()
        },
    ] {
        let err = fit(&mut lite(2), &train, &val, &bad, &FitOptions::default());
        assert!(
            matches!(err, Err(ModelError::Config { .. })),
            "{bad:?}: {err:?}"
        );
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
