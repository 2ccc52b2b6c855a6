//! CUDA path: run with `cargo test --features cuda-tests --test cuda` on a machine with a GPU.
//! Each test fails (rather than skips) when no CUDA device is visible, since the feature asks
//! for them.
#![cfg(feature = "cuda-tests")]

use ganaug::data::{phantom_splits, PhantomConfig};
use ganaug::gan::{Arch, GanConfig, GanTrainer, TrainConfig};
use ganaug::models::{fit, predict, Classifier, FitOptions, ModelConfig, ModelKind};
use tch::{Cuda, Device, Kind, Tensor};

fn gpu() -> Device {
    assert!(
        Cuda::is_available(),
        "cuda-tests enabled but libtorch sees no CUDA device"
    );
    Device::Cuda(0)
}

#[test]
fn libtorch_sees_the_gpu_and_device_choice_picks_it() {
    let d = gpu();
    assert!(Cuda::device_count() >= 1);
    let auto: ganaug::device::DeviceChoice = "auto".parse().expect("parse");
    assert_eq!(auto.resolve().expect("resolve"), d);
    let x = Tensor::rand([64, 64], (Kind::Float, d));
    assert_eq!(x.device(), d);
}

#[test]
fn classifiers_give_the_same_outputs_on_cpu_and_gpu() {
    let d = gpu();
    for kind in [
        ModelKind::PaperCnn,
        ModelKind::ResNet50,
        ModelKind::EfficientNetLite0,
    ] {
        let cpu = Classifier::new(ModelConfig::new(kind, 64), Device::Cpu).expect("model");
        let path = std::env::temp_dir().join(format!("ganaug-cuda-{kind}.safetensors"));
        cpu.save(&path).expect("save");
        let on_gpu = Classifier::load(&path, d).expect("load on gpu");
        let x = Tensor::rand([4, 1, 64, 64], (Kind::Float, Device::Cpu));
        let a = tch::no_grad(|| cpu.forward_t(&x, false)).expect("cpu");
        let b = tch::no_grad(|| on_gpu.forward_t(&x.to_device(d), false)).expect("gpu");
        let diff = (a - b.to_device(Device::Cpu)).abs().max().double_value(&[]);
        assert!(diff < 1e-3, "{kind}: CPU vs GPU logits differ by {diff}");
    }
}

#[test]
fn gan_and_classifier_train_on_the_gpu() {
    let d = gpu();
    let splits = phantom_splits(&PhantomConfig::tiny(64, 16, 0), d).expect("data");
    // Both architectures, f32 and bf16 (the shim's operations on CUDA tensors included).
    for (arch, bf16) in [
        (Arch::Dcgan { ngf: 16, ndf: 16 }, false),
        (Arch::Dcgan { ngf: 16, ndf: 16 }, true),
        (Arch::Paper, false),
        (Arch::Paper, true),
    ] {
        let gan = GanConfig {
            arch,
            size: 64,
            bf16,
            ..Default::default()
        };
        let cfg = TrainConfig {
            epochs: 3,
            batch_size: 8,
            ..Default::default()
        };
        let mut t = GanTrainer::new(gan, cfg, d).expect("gan");
        t.fit(&splits.train, None, false).expect("gan training");
        assert_eq!(t.history().len(), 3);
        assert!(
            t.history()
                .iter()
                .all(|h| h.d_loss.is_finite() && h.g_loss.is_finite()),
            "{arch:?}, bf16 {bf16}"
        );
    }

    let mut m = Classifier::new(ModelConfig::new(ModelKind::PaperCnn, 64), d).expect("cnn");
    let tc = ganaug::models::TrainConfig {
        max_epochs: 3,
        ..Default::default()
    };
    let r = fit(
        &mut m,
        &splits.train,
        &splits.val,
        &tc,
        &FitOptions::default(),
    )
    .expect("fit");
    assert!(!r.history.is_empty());
    let p = predict(&m, &splits.test).expect("predict");
    assert_eq!(p.probs.nrows(), splits.test.len());
}
