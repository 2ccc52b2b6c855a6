//! The training loop: learning, the paper's rules, exact resume, non-finite losses, cached
//! features, selection rules.

use std::collections::HashMap;

use ganaug_data::TensorDataset;
use ganaug_models::{
    fit, predict, BackboneMode, FitOptions, ModelError, SelectOn, StopReason, TrainConfig,
};
use ganaug_train::TrainError;
use tch::{nn::OptimizerConfig, Device, Kind, Tensor};

mod common;
use common::{cnn, halves, rng_lock};

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
        (again.history.len(), again.stop),
        (first.history.len(), first.stop)
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
    assert_eq!((r.stop, r.history.len()), (StopReason::MaxEpochs, 6));
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
        matches!(
            err,
            Err(ModelError::Train(TrainError::NonFinite {
                epoch: 0,
                what: "training loss",
                ..
            }))
        ),
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
            Err(ModelError::Inputs { ref reason }) if reason.contains("validation AUC")
        ),
        "{err:?}"
    );
}
