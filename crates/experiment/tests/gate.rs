//! The synthetic-set gate on images: a generator that outputs one image and a noise generator
//! are refused against real (phantom) images, with messages that say which measure failed and
//! by how much; a held-out set of real images passes. Features: EfficientNet-Lite0 ImageNet
//! features, as in a run (skipped without the weights unless GANAUG_REQUIRE_WEIGHTS is set).

use ganaug_data::{phantom_splits, PhantomConfig};
use ganaug_experiment::gate::{measure, GateConfig};
use ganaug_experiment::Quality;
use tch::{Device, Kind, Tensor};

#[test]
fn the_gate_refuses_a_collapsed_and_a_noise_generator() {
    let mut quality = Quality::new(Device::Cpu).expect("quality");
    let data = phantom_splits(&PhantomConfig::tiny(64, 40, 3), Device::Cpu).expect("phantom");
    let real = data.train.class_subset(0).expect("class 0");
    let held_out = data.test.class_subset(0).expect("class 0 test");
    let n = real.len() as i64;
    // one image, repeated: what a collapsed generator gives
    let one = real.images.narrow(0, 0, 1).repeat([n, 1, 1, 1]);
    tch::manual_seed(1);
    let noise = Tensor::rand([n, 1, 64, 64], (Kind::Float, Device::Cpu));
    let cfg = GateConfig::default();
    let mut verdict = |what: &str, images: &Tensor| {
        let Some((a, b)) = quality
            .features("class 0", &real.images, images)
            .expect("features")
        else {
            assert!(
                std::env::var_os("GANAUG_REQUIRE_WEIGHTS").is_none(),
                "EfficientNet-Lite0 weights are missing: run scripts/setup.sh"
            );
            return None;
        };
        let m = measure(&a, &b, Quality::EXTRACTOR, &cfg).expect("measures");
        println!("{what}: {:?}", m.failures);
        Some(m)
    };
    let Some(collapsed) = verdict("one image", &one) else {
        eprintln!("skipped: no EfficientNet-Lite0 weights");
        return;
    };
    assert!(
        collapsed
            .failures
            .iter()
            .any(|f| f.starts_with("diversity 0.000 is below its floor")),
        "{:?}",
        collapsed.failures
    );
    let noisy = verdict("noise", &noise).expect("measures");
    assert!(
        noisy
            .failures
            .iter()
            .any(|f| f.starts_with("coverage 0.000 is below its floor")),
        "{:?}",
        noisy.failures
    );
    let real_again = verdict("held-out real images", &held_out.images).expect("measures");
    assert!(real_again.failures.is_empty(), "{:?}", real_again.failures);
}

/// The gate's verdicts in a second feature space (EfficientNet-Lite2 at 260², for GANs whose
/// discriminator read Lite0): images of any side are taken to the network's own.
#[test]
fn the_gate_judges_in_lite2_features_too() {
    use ganaug_experiment::FeatureNet;
    let net = FeatureNet::EffnetLite2;
    let mut quality = Quality::with_network(Device::Cpu, 1, net).expect("quality");
    assert!(quality.describe().contains("Lite2") && quality.describe().contains("260"));
    let data = phantom_splits(&PhantomConfig::tiny(64, 40, 3), Device::Cpu).expect("phantom");
    let real = data.train.class_subset(0).expect("class 0");
    let held_out = data.test.class_subset(0).expect("class 0 test");
    let one = real
        .images
        .narrow(0, 0, 1)
        .repeat([real.len() as i64, 1, 1, 1]);
    let cfg = GateConfig::default();
    let Some((a, b)) = quality
        .features("class 0", &real.images, &one)
        .expect("features")
    else {
        assert!(
            std::env::var_os("GANAUG_REQUIRE_WEIGHTS").is_none(),
            "EfficientNet-Lite2 weights are missing: run scripts/setup.sh"
        );
        eprintln!("skipped: no EfficientNet-Lite2 weights");
        return;
    };
    assert_eq!((a.ncols(), b.ncols()), (1280, 1280));
    let collapsed = measure(&a, &b, quality.describe(), &cfg).expect("measures");
    assert!(
        collapsed
            .failures
            .iter()
            .any(|f| f.starts_with("diversity")),
        "{:?}",
        collapsed.failures
    );
    let (a, b) = quality
        .features("class 0", &real.images, &held_out.images)
        .expect("features")
        .expect("weights");
    let fine = measure(&a, &b, quality.describe(), &cfg).expect("measures");
    assert!(fine.failures.is_empty(), "{:?}", fine.failures);
    assert!(fine.extractor.contains("Lite2"));
}
