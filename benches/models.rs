//! Classifiers: one training step (forward, cross-entropy, backward, SGD) of the paper's CNN at
//! 64² and 256², batch 32 — compare with `python ../shared/peer/torch_paper_models.py --models
//! cnn --size 64` (and `--size 256`); forward and training step of VGG-16, ResNet-50 and
//! EfficientNet-Lite0 at 224² (batch 32 on a GPU, 8 on a CPU); FID of 1,000 images' 1,280-d
//! features (the statistics), plus on a GPU the EfficientNet-Lite0 features of 1,000 images;
//! frozen-feature extraction of 256 images by Lite0 at 224² and Lite2 at 260² on the CPU.
//! `GANAUG_BENCH_SMALL=1` skips the 224² networks and 256².
#![allow(missing_docs)] // criterion_group! generates undocumented items

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use ganaug::models::{Classifier, ModelConfig, ModelKind, Optimizer, Sgd};
use ganaug::train::zero_grad;
use tch::{Device, Kind, Tensor};

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

fn bench_training_steps(c: &mut Criterion) {
    common::setup();
    let device = Device::cuda_if_available();
    let dev = if device.is_cuda() { "cuda" } else { "cpu" };
    let small = std::env::var_os("GANAUG_BENCH_SMALL").is_some();
    let mut group = c.benchmark_group("classifier");
    group
        .sample_size(10)
        .measurement_time(common::measurement_time(15));
    let big_batch = if device.is_cuda() { 32 } else { 8 };
    // (model, size, batch, channels-last, bf16): `_nchw` shows what the layout buys, `_bf16`
    // the autocast-style bf16 mode.
    let mut cases = vec![
        (ModelKind::PaperCnn, 64, 32, true, false),
        (ModelKind::PaperCnn, 64, 32, false, false),
        (ModelKind::PaperCnn, 64, 32, true, true),
    ];
    if !small {
        cases.push((ModelKind::PaperCnn, 256, 32, true, false));
        for kind in [
            ModelKind::Vgg16,
            ModelKind::ResNet50,
            ModelKind::EfficientNetLite0,
        ] {
            cases.push((kind, 224, big_batch, true, false));
            if device.is_cuda() {
                cases.push((kind, 224, big_batch, true, true));
            }
        }
    }
    for (kind, size, batch, channels_last, bf16) in cases {
        let cfg = ModelConfig {
            channels_last,
            bf16,
            ..ModelConfig::new(kind, size)
        };
        let model = Classifier::new(cfg, device).expect("model");
        let kind_name = match (channels_last, bf16) {
            (_, true) => format!("{kind}_bf16"),
            (false, _) => format!("{kind}_nchw"),
            _ => kind.to_string(),
        };
        let x = Tensor::rand([batch, 1, size, size], (Kind::Float, device));
        let y = Tensor::randint(2, [batch], (Kind::Int64, device));
        let logits = model.forward_t(&x, true).expect("forward");
        assert_eq!(logits.size(), [batch, 2]);
        group.bench_function(
            format!("{dev}/{kind_name}_forward_{size}px_b{batch}"),
            |b| {
                b.iter(|| {
                    let out = tch::no_grad(|| model.forward_t(&x, false)).expect("forward");
                    sync(device);
                    out
                })
            },
        );
        let params = model.trainable_variables();
        let mut sgd = Sgd::new(kind.paper_lr(), 0.0, 0.0);
        group.bench_function(
            format!("{dev}/{kind_name}_train_step_{size}px_b{batch}"),
            |b| {
                b.iter(|| {
                    zero_grad(&params).expect("zero");
                    let loss = model
                        .forward_t(&x, true)
                        .expect("forward")
                        .cross_entropy_for_logits(&y);
                    loss.backward();
                    sgd.step(&params).expect("step");
                    sync(device);
                })
            },
        );
    }
    group.finish();
}

fn bench_fid(c: &mut Criterion) {
    common::setup();
    let device = Device::cuda_if_available();
    let dev = if device.is_cuda() { "cuda" } else { "cpu" };
    let mut group = c.benchmark_group("fid");
    group
        .sample_size(10)
        .measurement_time(common::measurement_time(15));
    let feats = |seed: i64| {
        tch::manual_seed(seed);
        let t = Tensor::randn([1000, 1280], (Kind::Double, Device::Cpu));
        let a: ndarray::ArrayD<f64> = (&t).try_into().expect("array");
        a.into_dimensionality::<ndarray::Ix2>().expect("2-d")
    };
    let (a, b) = (feats(0), feats(1));
    assert!(ganaug::metrics::fid(&a, &b).expect("fid").is_finite());
    group.bench_function("cpu/fid_stats_1000x1280", |bench| {
        bench.iter(|| ganaug::metrics::fid(&a, &b).expect("fid"))
    });
    if device.is_cuda() {
        let net = Classifier::new(ModelConfig::new(ModelKind::EfficientNetLite0, 224), device)
            .expect("model");
        let x = Tensor::rand([1000, 1, 224, 224], (Kind::Float, device));
        assert_eq!(
            net.extract_features(&x, 250).expect("features").size(),
            [1000, 1280]
        );
        group.bench_function(
            format!("{dev}/effnet_lite0_features_1000_at_224"),
            |bench| {
                bench.iter(|| {
                    let f = net.extract_features(&x, 250).expect("features");
                    sync(device);
                    f
                })
            },
        );
    }
    group.finish();
}

/// Frozen-feature extraction for the linear probe: 256 images `[256, 1, S, S]` through
/// EfficientNet-Lite0 at 224² and Lite2 at 260² (batches of 32, inference mode) — compare with
/// `scripts/peer_lite_features.py` (`scripts/compare_peers.py` runs both).
fn bench_features(c: &mut Criterion) {
    common::setup();
    if std::env::var_os("GANAUG_BENCH_SMALL").is_some() {
        return;
    }
    let mut group = c.benchmark_group("features");
    group
        .sample_size(10)
        .measurement_time(common::measurement_time(30));
    for (kind, size) in [
        (ModelKind::EfficientNetLite0, 224),
        (ModelKind::EfficientNetLite2, 260),
    ] {
        let mut net = Classifier::new(ModelConfig::new(kind, size), Device::Cpu).expect("model");
        net.set_backbone_trainable(false);
        tch::manual_seed(0);
        let x = Tensor::rand([256, 1, size, size], (Kind::Float, Device::Cpu));
        assert_eq!(
            net.extract_features(&x, 32).expect("features").size(),
            [256, 1280]
        );
        group.bench_function(format!("cpu/{kind}_256_at_{size}"), |bench| {
            bench.iter(|| net.extract_features(&x, 32).expect("features"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_training_steps, bench_fid, bench_features);
criterion_main!(benches);
