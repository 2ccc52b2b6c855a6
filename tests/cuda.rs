//! CUDA path: run with `cargo test --features cuda-tests --test cuda` on a machine with a GPU.
//! Each test fails (rather than skips) when no CUDA device is visible, since the feature asks
//! for them.
#![cfg(feature = "cuda-tests")]

use ganaug::data::{phantom_splits, PhantomConfig};
use ganaug::gan::{Arch, GanConfig, GanTrainer, TrainConfig};
use ganaug::models::{fit, predict, Classifier, FitOptions, ModelConfig, ModelKind};
use ganaug::train::Silent;
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
        t.fit(&splits.train, None, &Silent).expect("gan training");
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

/// Runs `f` on CPU copies and on GPU copies of the same inputs (each made a leaf that needs a
/// gradient) and returns the largest difference over the outputs and the inputs' gradients,
/// each relative to that tensor's largest CPU magnitude: libtorch lets cuDNN compute float
/// convolutions in TF32 (10-bit mantissa), so sums over thousands of terms differ by ~1e-3 of
/// their scale, while a wrong layout or a missing term differs by order one.
fn cpu_gpu_gap(inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Tensor) -> f64 {
    let run = |device: Device| {
        let xs: Vec<Tensor> = inputs
            .iter()
            .map(|t| t.to_device(device).detach().set_requires_grad(true))
            .collect();
        let y = f(&xs);
        // A fixed, non-uniform upstream gradient so every output element matters.
        let w = Tensor::arange(y.numel() as i64, (Kind::Float, device))
            .remainder(7.0)
            .view(y.size().as_slice());
        (&y * &w).sum(Kind::Float).backward();
        let mut out = vec![y.detach().to_device(Device::Cpu)];
        out.extend(xs.iter().map(|x| x.grad().to_device(Device::Cpu)));
        out
    };
    let (a, b) = (run(Device::Cpu), run(gpu()));
    a.iter()
        .zip(&b)
        .map(|(a, b)| {
            let scale = a.abs().max().double_value(&[]).max(1e-6);
            (a - b).abs().max().double_value(&[]) / scale
        })
        .fold(0.0, f64::max)
}

#[test]
fn ganaug_ops_agree_on_cpu_and_gpu_with_their_gradients() {
    use ganaug::ops;
    tch::manual_seed(3);
    let x = Tensor::randn([2, 8, 20, 20], (Kind::Float, Device::Cpu));
    let gap = cpu_gpu_gap(&[x.shallow_clone()], |t| {
        ops::leaky_relu(&t[0], 0.2).expect("leaky_relu")
    });
    assert!(
        gap < 1e-4,
        "leaky_relu: CPU vs GPU differ by {gap} of the scale"
    );

    let w7 = Tensor::randn([1, 8, 7, 7], (Kind::Float, Device::Cpu)) * 0.1;
    let b = Tensor::randn([1], (Kind::Float, Device::Cpu));
    let gap = cpu_gpu_gap(&[x.shallow_clone(), w7, b], |t| {
        ops::conv2d_one_output(&t[0], &t[1], Some(&t[2])).expect("conv2d_one_output")
    });
    assert!(
        gap < 1e-2,
        "conv2d_one_output: CPU vs GPU differ by {gap} of the scale"
    );

    // 64×64 input: the size at which the layers take the NCHW weight-gradient function.
    let xl = Tensor::randn([2, 4, 64, 64], (Kind::Float, Device::Cpu));
    let wt = Tensor::randn([4, 3, 4, 4], (Kind::Float, Device::Cpu)) * 0.1;
    let gap = cpu_gpu_gap(&[xl, wt], |t| {
        ops::conv_transpose2d_nchw_wgrad(&t[0], &t[1], 2, 1).expect("conv_transpose")
    });
    assert!(
        gap < 1e-2,
        "conv_transpose2d_nchw_wgrad: CPU vs GPU differ by {gap} of the scale"
    );

    // One fused Adam step from the same state on both devices.
    let hyper = ops::AdamHyper {
        lr: 1e-2,
        betas: (0.5, 0.999),
        eps: 1e-8,
    };
    let state: Vec<Tensor> = (0..4)
        .map(|_| Tensor::randn([5, 3], (Kind::Float, Device::Cpu)))
        .collect();
    let step_on = |device: Device| {
        // Deep copies: `to_device` to the CPU would alias the CPU state the step updates.
        let [p, g, m, v] = [0, 1, 2, 3].map(|i| state[i].to_device(device).copy());
        let v = v.abs();
        ops::adam_step(&[p.shallow_clone()], &[g], &[m], &[v], 3, hyper).expect("adam");
        p.to_device(Device::Cpu)
    };
    let gap = (step_on(Device::Cpu) - step_on(gpu()))
        .abs()
        .max()
        .double_value(&[]);
    assert!(gap < 1e-5, "adam_step: CPU vs GPU differ by {gap}");

    // Dropout on the GPU is libtorch's: zeros at about the rate asked, mean kept.
    let ones = Tensor::ones([1 << 20], (Kind::Float, gpu()));
    let d = ops::dropout(&ones, 0.4, true).expect("dropout");
    let zeros = d
        .eq(0.0)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]);
    let mean = d.mean(Kind::Float).double_value(&[]);
    assert!(
        (zeros - 0.4).abs() < 0.01 && (mean - 1.0).abs() < 0.01,
        "{zeros} {mean}"
    );
}
