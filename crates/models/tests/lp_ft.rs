//! The fine-tuning recipe: LP-FT with AdamW, warm-up + cosine, label smoothing, mixup, a weight
//! average, frozen batch-norm statistics, a slower backbone; exact resume.

use ganaug_models::{
    fit, Classifier, FitOptions, ModelConfig, ModelError, ModelKind, SelectOn, TrainConfig,
};
use ganaug_train::TrainError;
use tch::{Device, Kind};

mod common;
use common::{halves, rng_lock};

/// The fine-tuning recipe: a linear head started from a probe gives the probe's
/// probabilities; AdamW with warm-up + cosine, label smoothing, mixup, a weight average, frozen
/// batch-norm statistics and a slower backbone trains, resumes exactly, and bad settings are
/// typed errors.
#[test]
fn lp_ft_recipe_starts_from_the_probe_trains_and_resumes_exactly() {
    use ganaug_models::{fit_at, HeadArch, LrSchedule, OptimizerKind, ProbeConfig};
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
        optimizer: OptimizerKind::AdamW {
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
            optimizer: OptimizerKind::AdamW {
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
