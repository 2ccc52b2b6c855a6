//! The synthetic-set gate on images through the real feature network: a collapsed generator
//! (one image, repeated) and a noise generator are both refused, with messages that name the
//! failing measures; real images of the same class pass.

use ganaug_data::PhantomConfig;
use ganaug_experiment::gate::measure;
use ganaug_experiment::{DataSource, GateConfig, Quality};
use ganaug_models::{pretrained_weights, ModelKind};
use tch::{Device, Kind, Tensor};

#[test]
fn collapsed_and_noise_generators_are_refused_with_their_reasons() {
    if pretrained_weights(ModelKind::EfficientNetLite0).is_none() {
        assert!(
            std::env::var_os("GANAUG_REQUIRE_WEIGHTS").is_none(),
            "GANAUG_REQUIRE_WEIGHTS is set but the EfficientNet-Lite0 weights are missing"
        );
        eprintln!("skipped: no EfficientNet-Lite0 weights (scripts/setup.sh)");
        return;
    }
    let splits = DataSource::Phantom(PhantomConfig::tiny(64, 48, 5))
        .load(64, Device::Cpu)
        .expect("phantom");
    let class = splits.train.class_subset(0).expect("class 0");
    let other = splits.val.class_subset(0).expect("class 0, other images");
    let n = class.len() as i64;
    let mut quality = Quality::new(Device::Cpu).expect("feature network");
    let features = |q: &mut Quality, images: &Tensor| {
        q.features("class-0", &class.images, images)
            .expect("features")
            .expect("network present")
    };
    let cfg = GateConfig::default();

    // held-out real images of the class: nothing fails
    let (real, held_out) = features(&mut quality, &other.images);
    let ok = measure(&real, &held_out, Quality::EXTRACTOR, &cfg).expect("measured");
    assert!(ok.failures.is_empty(), "{:?}", ok.failures);

    // a collapsed generator: one image (a real one), repeated, with a trace of noise
    let one = class.images.narrow(0, 0, 1).repeat([n, 1, 1, 1]);
    let collapsed =
        (&one + Tensor::randn(one.size(), (Kind::Float, Device::Cpu)) * 1e-3).clamp(0.0, 1.0);
    let (_, fc) = features(&mut quality, &collapsed);
    let c = measure(&real, &fc, Quality::EXTRACTOR, &cfg).expect("measured");
    eprintln!("collapsed generator: {}", c.failures.join("; "));
    assert!(
        c.failures.iter().any(|f| f.starts_with("diversity")),
        "{:?}",
        c.failures
    );
    assert!(
        c.failures.iter().any(|f| f.starts_with("recall")),
        "{:?}",
        c.failures
    );
    assert!(
        c.failures.iter().all(|f| f.contains("below its floor")),
        "{:?}",
        c.failures
    );

    // a noise generator: uniform pixels
    tch::manual_seed(0);
    let noise = Tensor::rand(one.size(), (Kind::Float, Device::Cpu));
    let (_, fnoise) = features(&mut quality, &noise);
    let z = measure(&real, &fnoise, Quality::EXTRACTOR, &cfg).expect("measured");
    eprintln!("noise generator: {}", z.failures.join("; "));
    assert!(
        z.failures.iter().any(|f| f.starts_with("coverage")),
        "{:?}",
        z.failures
    );
    assert!(
        z.failures.iter().any(|f| f.starts_with("recall")),
        "{:?}",
        z.failures
    );
    // and a linear probe tells both from real images at once
    assert!(z.probe_auc.is_some_and(|a| a > 0.95), "{:?}", z.probe_auc);
}
