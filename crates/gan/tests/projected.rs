//! The projected pair: shapes at several sizes, gray and RGB, conditional by projection; the
//! feature network and the channel mixings never train while the heads and the generator do;
//! resume is exact; a label channel is refused. Skipped without EfficientNet-Lite0's weights
//! unless GANAUG_REQUIRE_WEIGHTS is set.

use ganaug_data::TensorDataset;
use ganaug_gan::{Arch, Conditioning, Discriminator, GanConfig, GanError, GanTrainer, TrainConfig};
use ganaug_train::Silent;
use tch::{nn, Device, Kind, Tensor};

static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    TORCH_RNG.lock().unwrap_or_else(|p| p.into_inner())
}

fn have_weights() -> bool {
    if ganaug_models::pretrained_weights(ganaug_models::ModelKind::EfficientNetLite0).is_some() {
        return true;
    }
    assert!(
        std::env::var_os("GANAUG_REQUIRE_WEIGHTS").is_none(),
        "EfficientNet-Lite0's weights are missing: run scripts/setup.sh"
    );
    eprintln!("skipped: no EfficientNet-Lite0 weights (run scripts/setup.sh)");
    false
}

fn projected(size: i64, channels: i64, n_classes: Option<i64>) -> GanConfig {
    GanConfig {
        arch: Arch::Projected { ngf: 4, ndf: 8 },
        size,
        channels,
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
        batch_size: 8,
        lr: 1e-3,
        checkpoint_every: 0,
        sample_every: 0,
        grid_samples: 8,
        seed,
        ..TrainConfig::default()
    }
}

/// `n` noisy bright discs on dark, `size`².
fn discs(n: i64, size: i64) -> TensorDataset {
    tch::manual_seed(3);
    let opts = (Kind::Float, Device::Cpu);
    let r = Tensor::arange(size, opts) - (size as f64 - 1.0) / 2.0;
    let d2 = r.view([1, size]).square() + r.view([size, 1]).square();
    let disc = d2.le((size as f64 / 3.0).powi(2)).to_kind(Kind::Float) * 0.7 + 0.15;
    let images = (disc
        .view([1, 1, size, size])
        .expand([n, 1, size, size], false)
        + Tensor::randn([n, 1, size, size], opts) * 0.03)
        .clamp(0.0, 1.0);
    let labels = Tensor::zeros([n], (Kind::Int64, Device::Cpu));
    let names = (0..n).map(|i| format!("disc{i}")).collect();
    TensorDataset::new(images, labels, names, vec!["disc".into()], "discs").expect("dataset")
}

#[test]
fn shapes_gray_rgb_and_conditional() {
    if !have_weights() {
        return;
    }
    let _turn = rng_lock();
    for (size, channels, classes) in [(32, 1, None), (64, 3, None), (128, 1, Some(3))] {
        let c = projected(size, channels, classes);
        let vs = nn::VarStore::new(Device::Cpu);
        let g = ganaug_gan::Generator::new(&(vs.root() / "g"), &c).expect("generator");
        let d = Discriminator::new(&(vs.root() / "d"), &c).expect("discriminator");
        let z = Tensor::randn([3, 16], (Kind::Float, Device::Cpu));
        let y = classes.map(|_| Tensor::from_slice(&[0i64, 1, 2]));
        let x = g.forward_t(&z, y.as_ref(), true).expect("generate");
        assert_eq!(x.size(), [3, channels, size, size]);
        let logits = d.forward_t(&x, y.as_ref(), true).expect("score");
        assert_eq!(logits.size(), [3], "{c:?}");
        assert!(bool::try_from(logits.isfinite().all()).expect("bool"));
        // The frozen network's weights are not among the trainer's variables; the fixed
        // channel mixings are, without gradients.
        let vars = vs.variables();
        assert!(
            vars.keys().all(|k| !k.contains("_blocks")),
            "{:?}",
            vars.keys()
        );
        assert!(!vars["d.mix0"].requires_grad());
        assert!(vars["d.head0.out.weight"].requires_grad());
    }
}

#[test]
fn only_heads_and_generator_train_and_resume_is_exact() {
    if !have_weights() {
        return;
    }
    let _turn = rng_lock();
    let data = discs(16, 32);
    let c = projected(32, 1, None);
    let mut t = GanTrainer::new(c.clone(), cfg(1, 4), Device::Cpu).expect("trainer");
    let before: Vec<(String, Tensor)> = t
        .var_store()
        .variables()
        .into_iter()
        .map(|(k, v)| (k, v.copy()))
        .collect();
    t.fit(&data, None, &Silent).expect("fit");
    let after = t.var_store().variables();
    for (k, v) in &before {
        let moved = (v - &after[k]).abs().max().double_value(&[]);
        if k.starts_with("d.mix") {
            assert_eq!(moved, 0.0, "{k} is fixed");
        } else if k.ends_with("out.weight") {
            assert!(moved > 0.0, "{k} did not train");
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let ckpt = dir.path().join("ckpt.safetensors");
    t.save_checkpoint(&ckpt).expect("save");
    let mut straight = GanTrainer::new(c, cfg(2, 4), Device::Cpu).expect("trainer");
    straight.fit(&data, None, &Silent).expect("fit");
    let mut resumed = GanTrainer::resume(&ckpt, Device::Cpu, Some(2)).expect("resume");
    resumed.fit(&data, None, &Silent).expect("fit");
    let (a, b) = (
        straight.var_store().variables(),
        resumed.var_store().variables(),
    );
    let diff = a
        .iter()
        .map(|(k, t)| (t - &b[k]).abs().max().double_value(&[]))
        .fold(0.0, f64::max);
    assert!(diff < 1e-5, "resumed projected pair differs by {diff}");
}

#[test]
fn a_label_channel_and_a_bad_size_are_refused() {
    let concat = GanConfig {
        conditioning: Conditioning::Concat,
        ..projected(64, 1, Some(2))
    };
    let err = GanTrainer::new(concat, cfg(1, 0), Device::Cpu).expect_err("refused");
    assert!(matches!(err, GanError::Config { .. }), "{err}");
    assert!(err.to_string().contains("projection conditioning"), "{err}");
    let err = GanTrainer::new(projected(48, 1, None), cfg(1, 0), Device::Cpu).expect_err("48");
    assert!(err.to_string().contains("power-of-two"), "{err}");
}
