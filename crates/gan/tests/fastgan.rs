//! The FastGAN pair: hinge-loss training learns, the discriminator learns to reconstruct its
//! input, resume is exact, and label smoothing is refused.

use ganaug_data::TensorDataset;
use ganaug_gan::{Arch, Conditioning, GanConfig, GanError, GanTrainer, TrainConfig};
use ganaug_train::Silent;
use tch::{Device, Kind, Tensor};

/// Training seeds libtorch's global generator: the tests take turns (exactness checks).
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    TORCH_RNG.lock().unwrap_or_else(|p| p.into_inner())
}

/// `n` images per class of `size`²: class 0 a bright disc on dark, class 1 uniform dark,
/// with noise.
fn disc_or_dark(n: i64, size: i64, seed: i64) -> TensorDataset {
    tch::manual_seed(seed);
    let opts = (Kind::Float, Device::Cpu);
    let r = Tensor::arange(size, opts) - (size as f64 - 1.0) / 2.0;
    let d2 = r.view([1, size]).square() + r.view([size, 1]).square();
    let disc = d2.le((size as f64 / 3.0).powi(2)).to_kind(Kind::Float) * 0.7 + 0.15;
    let bright = disc
        .view([1, 1, size, size])
        .expand([n, 1, size, size], false);
    let dark = Tensor::full([n, 1, size, size], 0.15, opts);
    let images = (Tensor::cat(&[bright, dark], 0)
        + Tensor::randn([2 * n, 1, size, size], opts) * 0.03)
        .clamp(0.0, 1.0);
    let labels = Tensor::cat(
        &[
            Tensor::zeros([n], (Kind::Int64, Device::Cpu)),
            Tensor::ones([n], (Kind::Int64, Device::Cpu)),
        ],
        0,
    );
    let names = (0..2 * n).map(|i| format!("toy{i}")).collect();
    TensorDataset::new(
        images,
        labels,
        names,
        vec!["disc".into(), "dark".into()],
        "toy",
    )
    .expect("toy dataset")
}

fn fast(n_classes: Option<i64>) -> GanConfig {
    GanConfig {
        arch: Arch::FastGan { ngf: 4, ndf: 8 },
        size: 32,
        latent_dim: 16,
        n_classes,
        embed_dim: 8,
        conditioning: Conditioning::Projection,
        ..GanConfig::default()
    }
}

fn cfg(epochs: usize, seed: u64) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 16,
        lr: 1e-3,
        checkpoint_every: 0,
        sample_every: 0,
        grid_samples: 8,
        seed,
        ..TrainConfig::default()
    }
}

#[test]
fn hinge_training_learns_the_classes_and_the_reconstruction() {
    let _turn = rng_lock();
    let data = disc_or_dark(48, 32, 0);
    let mut t = GanTrainer::new(fast(Some(2)), cfg(12, 1), Device::Cpu).expect("trainer");
    let recon_error = |t: &GanTrainer| {
        let r = t
            .discriminator()
            .reconstruct(&data.images, Some(&data.labels))
            .expect("reconstruct");
        assert_eq!(r.size(), [96, 1, 32, 32]);
        (r - &data.images)
            .square()
            .mean(Kind::Float)
            .double_value(&[])
    };
    let before = recon_error(&t);
    t.fit(&data, None, &Silent).expect("fit");
    let after = recon_error(&t);
    assert!(
        after < before * 0.5,
        "reconstruction error {before:.4} -> {after:.4}"
    );
    assert!(t
        .history()
        .iter()
        .all(|h| h.d_loss.is_finite() && h.g_loss.is_finite()));
    // The disc class is brighter in the centre than the dark class.
    let z = Tensor::randn([32, 16], (Kind::Float, Device::Cpu));
    let centre = |label: i64| {
        let y = Tensor::full([32], label, (Kind::Int64, Device::Cpu));
        tch::no_grad(|| t.generator().forward_t(&z, Some(&y), false))
            .expect("generate")
            .narrow(2, 12, 8)
            .narrow(3, 12, 8)
            .mean(Kind::Float)
            .double_value(&[])
    };
    let (disc, dark) = (centre(0), centre(1));
    assert!(
        disc > dark + 0.3,
        "centre: disc class {disc:.3}, dark class {dark:.3}"
    );
}

#[test]
fn resume_is_exact_and_label_smoothing_is_refused() {
    let _turn = rng_lock();
    let data = disc_or_dark(16, 32, 2).class_subset(0).expect("one class");
    let mut straight = GanTrainer::new(fast(None), cfg(3, 5), Device::Cpu).expect("trainer");
    straight.fit(&data, None, &Silent).expect("fit");
    let dir = tempfile::tempdir().expect("tempdir");
    let ckpt = dir.path().join("ckpt.safetensors");
    let mut first = GanTrainer::new(fast(None), cfg(1, 5), Device::Cpu).expect("trainer");
    first.fit(&data, None, &Silent).expect("fit");
    first.save_checkpoint(&ckpt).expect("save");
    let mut resumed = GanTrainer::resume(&ckpt, Device::Cpu, Some(3)).expect("resume");
    resumed.fit(&data, None, &Silent).expect("fit");
    let (a, b) = (
        straight.var_store().variables(),
        resumed.var_store().variables(),
    );
    let diff = a
        .iter()
        .map(|(k, t)| (t - &b[k]).abs().max().double_value(&[]))
        .fold(0.0, f64::max);
    assert!(diff < 1e-6, "resumed FastGAN differs by {diff}");

    let smoothed = TrainConfig {
        real_label: 0.9,
        ..cfg(1, 0)
    };
    let err = GanTrainer::new(fast(None), smoothed, Device::Cpu).expect_err("refused");
    assert!(matches!(err, GanError::Config { .. }), "{err}");
    assert!(err.to_string().contains("hinge"), "{err}");
}
