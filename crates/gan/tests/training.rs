//! GAN training behaviour on tiny synthetic sets (seconds on a CPU).

use ganaug_data::TensorDataset;
use ganaug_gan::{
    nearest_rms, synthesize_class, Arch, ClassModel, GanConfig, GanError, GanTrainer, SynthConfig,
    TrainConfig,
};
use ganaug_train::Silent;
use ganaug_train::TrainError;
use tch::{Device, Kind, Tensor};

/// Training seeds libtorch's global generator: tests that train take turns, so that one test's
/// draws cannot interleave with another's (which would break the exactness checks).
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    TORCH_RNG
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `n` images per class of `size`²: class 0 bright (≈0.85), class 1 dark (≈0.15), with noise.
fn bright_dark(n: i64, size: i64, seed: i64) -> TensorDataset {
    tch::manual_seed(seed);
    let noise = Tensor::randn([2 * n, 1, size, size], (Kind::Float, Device::Cpu)) * 0.03;
    let level = Tensor::cat(
        &[
            Tensor::full([n], 0.85, (Kind::Float, Device::Cpu)),
            Tensor::full([n], 0.15, (Kind::Float, Device::Cpu)),
        ],
        0,
    );
    let images = (level.view([2 * n, 1, 1, 1]) + noise).clamp(0.0, 1.0);
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
        vec!["bright".into(), "dark".into()],
        "toy",
    )
    .expect("toy dataset")
}

fn small(arch: Arch, size: i64, n_classes: Option<i64>) -> GanConfig {
    GanConfig {
        arch,
        size,
        latent_dim: 16,
        n_classes,
        embed_dim: 8,
        paper_fc_channels: 16,
        subpixel: true,
        ..GanConfig::default()
    }
}

fn cfg(epochs: usize, batch_size: usize, seed: u64) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size,
        checkpoint_every: 0,
        sample_every: 0,
        grid_samples: 8,
        seed,
        ..TrainConfig::default()
    }
}

fn max_var_diff(a: &GanTrainer, b: &GanTrainer) -> f64 {
    let (va, vb) = (a.var_store().variables(), b.var_store().variables());
    assert_eq!(va.len(), vb.len());
    va.iter()
        .map(|(k, t)| (t - &vb[k]).abs().max().double_value(&[]))
        .fold(0.0, f64::max)
}

#[test]
fn a_few_steps_move_both_networks_the_right_way() {
    let _turn = rng_lock();
    let data = bright_dark(64, 16, 0)
        .class_subset(0)
        .expect("bright class");
    // Ten times the paper's learning rate: 24 steps are then enough to see both networks learn.
    let train = TrainConfig {
        lr: 2e-3,
        ..cfg(6, 16, 1)
    };
    let mut t = GanTrainer::new(small(Arch::Paper, 16, None), train, Device::Cpu).expect("trainer");
    tch::manual_seed(9);
    let z = Tensor::randn([64, 16], (Kind::Float, Device::Cpu));
    let fake0 = t.generator().forward_t(&z, None, false).expect("generate");
    let real = &data.images;
    // How much higher the discriminator scores the real images than the initial fakes.
    let margin = |t: &GanTrainer| {
        let d = t.discriminator();
        let score = |x: &Tensor| {
            d.forward_t(x, None, false)
                .expect("score")
                .mean(Kind::Float)
        };
        (score(real) - score(&fake0)).double_value(&[])
    };
    let brightness = |x: &Tensor| x.mean(Kind::Float).double_value(&[]);
    let m0 = margin(&t);
    t.fit(&data, None, &Silent).expect("fit");
    let m1 = margin(&t);
    // The generator's initial grey images are easy to tell from bright ones. The generator can
    // only learn brightness from the discriminator's gradients, so its images moving toward the
    // real ones' level (0.85) shows both networks learning; the discriminator, chasing ever
    // brighter fakes, still scores the real images above the initial grey ones.
    let fake1 = t.generator().forward_t(&z, None, false).expect("generate");
    let (b0, b1) = (brightness(&fake0), brightness(&fake1));
    assert!(
        (0.85 - b1).abs() < (0.85 - b0).abs() - 0.1,
        "brightness {b0:.3} -> {b1:.3}"
    );
    assert!(
        m0 > 0.0 && m1 > 0.2,
        "discriminator margin {m0:.3} -> {m1:.3}"
    );
    assert!(t
        .history()
        .iter()
        .all(|h| h.d_loss.is_finite() && h.g_loss.is_finite()));
}

#[test]
fn conditional_gan_generates_the_requested_class() {
    let _turn = rng_lock();
    let data = bright_dark(64, 16, 2);
    // bf16 (autocast-style) training must learn the same thing.
    for bf16 in [false, true] {
        let gan = GanConfig {
            bf16,
            ..small(Arch::Dcgan { ngf: 16, ndf: 16 }, 16, Some(2))
        };
        let mut t = GanTrainer::new(gan, cfg(25, 32, 3), Device::Cpu).expect("trainer");
        t.fit(&data, None, &Silent).expect("fit");
        let z = Tensor::randn([64, 16], (Kind::Float, Device::Cpu));
        let gen = |label: i64| {
            let y = Tensor::full([64], label, (Kind::Int64, Device::Cpu));
            tch::no_grad(|| t.generator().forward_t(&z, Some(&y), false))
                .expect("generate")
                .mean(Kind::Float)
                .double_value(&[])
        };
        let (bright, dark) = (gen(0), gen(1));
        assert!(
            bright > dark + 0.3,
            "bf16 {bf16}: label 0 (bright) mean {bright}, label 1 (dark) mean {dark}"
        );
    }
}

#[test]
fn resume_from_checkpoint_continues_exactly_and_runs_are_seeded() {
    let _turn = rng_lock();
    let data = bright_dark(16, 16, 4);
    for arch in [Arch::Paper, Arch::Dcgan { ngf: 8, ndf: 8 }] {
        let gan = small(arch, 16, None);
        let mut straight =
            GanTrainer::new(gan.clone(), cfg(3, 8, 5), Device::Cpu).expect("trainer");
        straight.fit(&data, None, &Silent).expect("fit");
        let mut again = GanTrainer::new(gan.clone(), cfg(3, 8, 5), Device::Cpu).expect("trainer");
        again.fit(&data, None, &Silent).expect("fit");
        assert_eq!(
            max_var_diff(&straight, &again),
            0.0,
            "{arch:?}: same seed, same run"
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let ckpt = dir.path().join("ckpt.safetensors");
        let mut first = GanTrainer::new(gan.clone(), cfg(1, 8, 5), Device::Cpu).expect("trainer");
        first.fit(&data, None, &Silent).expect("fit");
        first.save_checkpoint(&ckpt).expect("save");
        let mut resumed = GanTrainer::resume(&ckpt, Device::Cpu, Some(3)).expect("resume");
        assert_eq!(resumed.epoch(), 1);
        resumed.fit(&data, None, &Silent).expect("fit");
        assert_eq!(resumed.history().len(), 3);
        let diff = max_var_diff(&straight, &resumed);
        assert!(diff < 1e-6, "{arch:?}: resumed run differs by {diff}");
        assert_eq!(straight.history()[2].d_loss, resumed.history()[2].d_loss);
        // The checkpoint remembers its data: a resumed run refuses other images.
        let mut elsewhere = GanTrainer::resume(&ckpt, Device::Cpu, Some(3)).expect("resume");
        let other = bright_dark(16, 16, 99);
        assert!(matches!(
            elsewhere.fit(&other, None, &Silent),
            Err(GanError::Train(TrainError::Resume { .. }))
        ));

        let other_seed = {
            let mut t = GanTrainer::new(gan, cfg(1, 8, 6), Device::Cpu).expect("trainer");
            t.fit(&data, None, &Silent).expect("fit");
            t
        };
        assert!(max_var_diff(&first, &other_seed) > 0.0);
    }
}

#[test]
fn output_folder_gets_checkpoints_samples_history_and_plot() {
    let _turn = rng_lock();
    let data = bright_dark(16, 16, 6);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = cfg(4, 8, 0);
    c.checkpoint_every = 2;
    c.sample_every = 2;
    let mut t =
        GanTrainer::new(small(Arch::Paper, 16, None), c.clone(), Device::Cpu).expect("trainer");
    t.fit(&data, Some(dir.path()), &Silent).expect("fit");
    for f in [
        "checkpoints/epoch_00002.safetensors",
        "checkpoints/epoch_00004.safetensors",
        "samples/epoch_00002.png",
        "samples/epoch_00004.png",
        "history.json",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    assert_eq!(
        dir.path().join("losses.png").is_file(),
        cfg!(feature = "plot"),
        "losses.png is written with the plot feature only"
    );
    let history: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.path().join("history.json")).expect("read"))
            .expect("json");
    assert_eq!(history.len(), 4);
    // A fresh run may not write over another run's folder.
    let mut fresh = GanTrainer::new(small(Arch::Paper, 16, None), c, Device::Cpu).expect("trainer");
    assert!(matches!(
        fresh.fit(&data, Some(dir.path()), &Silent),
        Err(GanError::Train(TrainError::RunExists { .. }))
    ));
}

#[test]
fn nan_loss_stops_with_a_typed_error() {
    let _turn = rng_lock();
    let data = bright_dark(8, 16, 7);
    let images = data.images.copy();
    let _ = images.narrow(0, 0, 1).fill_(f64::NAN);
    let poisoned = TensorDataset::new(
        images,
        data.labels.shallow_clone(),
        data.names.clone(),
        data.class_names.clone(),
        "poisoned",
    )
    .expect("dataset");
    let mut t =
        GanTrainer::new(small(Arch::Paper, 16, None), cfg(2, 8, 0), Device::Cpu).expect("trainer");
    match t.fit(&poisoned, None, &Silent) {
        Err(GanError::Train(TrainError::NonFinite {
            epoch: 0,
            what: "discriminator loss",
            ..
        })) => {}
        other => panic!("expected a NonFinite error, got {other:?}"),
    }
}

#[test]
fn bad_checkpoints_and_inputs_are_errors() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("bad.safetensors");
    std::fs::write(&p, b"not a checkpoint").expect("write");
    assert!(matches!(
        GanTrainer::resume(&p, Device::Cpu, None),
        Err(GanError::Train(TrainError::TensorFile { .. }))
    ));
    let mut t =
        GanTrainer::new(small(Arch::Paper, 16, None), cfg(1, 8, 0), Device::Cpu).expect("trainer");
    let wrong_size = bright_dark(8, 8, 0);
    assert!(matches!(
        t.fit(&wrong_size, None, &Silent),
        Err(GanError::Shape { .. })
    ));
    let bad = TrainConfig {
        real_label: 0.2,
        ..cfg(1, 8, 0)
    };
    assert!(GanTrainer::new(small(Arch::Paper, 16, None), bad, Device::Cpu).is_err());
}

#[test]
fn synthesis_selects_by_score_and_drops_near_copies() {
    let _turn = rng_lock();
    let data = bright_dark(16, 16, 8);
    let bright = data.class_subset(0).expect("class");
    let mut t =
        GanTrainer::new(small(Arch::Paper, 16, None), cfg(2, 8, 0), Device::Cpu).expect("trainer");
    t.fit(&bright, None, &Silent).expect("fit");
    let model = ClassModel {
        generator: t.generator(),
        discriminator: t.discriminator(),
        condition: None,
    };
    let sc = SynthConfig {
        candidates_per_class: 40,
        keep_per_class: 10,
        min_nn_distance: 0.0,
        seed: 1,
        batch_size: 16,
    };
    let (imgs, report) = synthesize_class(model, &bright, "bright", &sc).expect("synth");
    assert_eq!(imgs.size(), [10, 1, 16, 16]);
    assert_eq!(
        (report.generated, report.kept, report.near_copies),
        (40, 10, 0)
    );
    assert!(report.d_score_kept >= report.d_score_all, "{report:?}");
    assert!(report.nn_min <= report.nn_median && report.nn_median <= report.nn_mean * 2.0 + 1e-9);
    let strict = SynthConfig {
        min_nn_distance: 10.0,
        ..sc
    };
    let (none, report) = synthesize_class(model, &bright, "bright", &strict).expect("synth");
    assert_eq!((none.size()[0], report.near_copies), (0, 40));
    // Distances: zero to itself, RMS of a constant offset otherwise.
    let d = nearest_rms(&bright.images, &bright.images).expect("nn");
    assert!(d.iter().all(|v| v.abs() < 1e-3));
    let shifted = (&bright.images + 0.1).shallow_clone();
    let far = nearest_rms(&shifted, &bright.images).expect("nn");
    assert!(far.iter().all(|v| *v <= 0.1 + 1e-4));
}
