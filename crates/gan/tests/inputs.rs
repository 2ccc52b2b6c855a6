//! Bad inputs to the public networks and the training step are typed errors naming what was
//! wrong — never a libtorch abort (out-of-range labels used to panic inside the embedding).

use ganaug_gan::{Discriminator, GanConfig, GanError, GanTrainer, Generator, TrainConfig};
use rand::SeedableRng;
use tch::{nn, Device, Kind, Tensor};

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

/// The `what` of a shape error, or a description of anything else.
fn shape_what<T>(r: ganaug_gan::Result<T>) -> String {
    match r {
        Err(GanError::Shape { what, .. }) => what.to_string(),
        Err(e) => format!("other error: {e}"),
        Ok(_) => "ok".into(),
    }
}

#[test]
fn conditional_networks_reject_bad_labels_and_latents() {
    let cfg = GanConfig {
        size: 16,
        n_classes: Some(2),
        paper_fc_channels: 4,
        ..Default::default()
    };
    let vs = nn::VarStore::new(Device::Cpu);
    let g = Generator::new(&vs.root(), &cfg).expect("generator");
    let d = Discriminator::new(&vs.root(), &cfg).expect("discriminator");
    let z = Tensor::randn([3, 100], CPU);
    let x = Tensor::rand([3, 1, 16, 16], CPU);
    let good = Tensor::from_slice(&[0i64, 1, 1]);
    assert_eq!(shape_what(g.forward_t(&z, Some(&good), false)), "ok");
    assert_eq!(shape_what(d.forward_t(&x, Some(&good), false)), "ok");
    for bad in [
        Tensor::from_slice(&[0i64, 5, 1]),     // class out of range
        Tensor::from_slice(&[0i64, -1, 1]),    // negative
        Tensor::from_slice(&[0f32, 1.0, 1.0]), // not integers
        Tensor::from_slice(&[0i64, 1]),        // one per image
        Tensor::from_slice(&[0i64, 1, 1]).view([3, 1]), // [N] only
    ] {
        assert_eq!(
            shape_what(g.forward_t(&z, Some(&bad), false)),
            "labels",
            "{bad:?}"
        );
        assert_eq!(
            shape_what(d.forward_t(&x, Some(&bad), false)),
            "labels",
            "{bad:?}"
        );
    }
    let z64 = z.to_kind(Kind::Double);
    assert_eq!(shape_what(g.forward_t(&z64, Some(&good), false)), "latent");
    for kind in [Kind::Double, Kind::Uint8] {
        let xk = x.to_kind(kind);
        let what = shape_what(d.forward_t(&xk, Some(&good), false));
        assert_eq!(what, "discriminator input", "{kind:?}");
    }
}

#[test]
fn training_step_rejects_batches_it_cannot_train_on() {
    let cfg = GanConfig {
        size: 16,
        paper_fc_channels: 4,
        ..Default::default()
    };
    let mut t = GanTrainer::new(cfg, TrainConfig::default(), Device::Cpu).expect("trainer");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    for real in [
        Tensor::rand([4, 1, 8, 8], CPU), // other image size
        Tensor::rand([4, 1, 16, 16], (Kind::Double, Device::Cpu)), // not f32
        Tensor::rand([0, 1, 16, 16], CPU), // empty: was a "NaN loss"
    ] {
        let what = shape_what(t.train_step(&real, None, &mut rng));
        assert_eq!(what, "real batch", "{:?}", real.size());
    }
    assert_eq!(
        shape_what(t.train_step(&Tensor::rand([4, 1, 16, 16], CPU), None, &mut rng)),
        "ok"
    );
    // A conditional trainer checks its batch's labels (once, before the networks).
    let cond = GanConfig {
        size: 16,
        n_classes: Some(2),
        paper_fc_channels: 4,
        ..Default::default()
    };
    let mut t = GanTrainer::new(cond, TrainConfig::default(), Device::Cpu).expect("trainer");
    let real = Tensor::rand([3, 1, 16, 16], CPU);
    let bad = Tensor::from_slice(&[0i64, 2, 1]);
    assert_eq!(
        shape_what(t.train_step(&real, Some(&bad), &mut rng)),
        "labels"
    );
    let good = Tensor::from_slice(&[0i64, 1, 1]);
    assert_eq!(shape_what(t.train_step(&real, Some(&good), &mut rng)), "ok");
}

#[test]
fn a_projection_discriminator_scores_by_label_and_trains_its_class_embedding() {
    use ganaug_gan::{Arch, Conditioning, Discriminator};
    for arch in [Arch::Paper, Arch::Dcgan { ngf: 4, ndf: 4 }] {
        let cfg = GanConfig {
            arch,
            size: 16,
            n_classes: Some(3),
            conditioning: Conditioning::Projection,
            paper_fc_channels: 4,
            ..Default::default()
        };
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let d = Discriminator::new(&vs.root(), &cfg).expect("discriminator");
        let names: Vec<String> = vs.variables().into_keys().collect();
        assert!(
            names.iter().any(|n| n.starts_with("projection")),
            "{names:?}"
        );
        assert!(
            !names.iter().any(|n| n.starts_with("label_fc")),
            "{names:?}"
        );
        tch::manual_seed(1);
        let x = Tensor::rand([1, 1, 16, 16], CPU).repeat([3, 1, 1, 1]);
        let y = Tensor::from_slice(&[0i64, 1, 2]);
        let logits = d.forward_t(&x, Some(&y), false).expect("scores");
        assert_eq!(logits.size(), [3]);
        // the same image under three labels: three scores
        let v = Vec::<f32>::try_from(&logits).expect("values");
        assert!(
            (v[0] - v[1]).abs() > 1e-7 && (v[1] - v[2]).abs() > 1e-7,
            "{v:?}"
        );
        // it needs its labels, and the gradient reaches the class embedding
        assert!(d.forward_t(&x, None, false).is_err());
        logits.sum(tch::Kind::Float).backward();
        let grad = vs.variables()["projection.weight"].grad();
        assert!(grad.abs().sum(tch::Kind::Float).double_value(&[]) > 0.0);
    }
}
