//! `assess` on folders of images from any generator: held-out real images pass, a collapsed
//! set is refused with its reasons, a set written as 16-bit PNGs and read back measures as the
//! gate measures it in memory, and a folder whose classes are not the data's is refused.
//! (Skipped without the EfficientNet-Lite0 weights unless GANAUG_REQUIRE_WEIGHTS is set.)

use ganaug_data::{io, Depth, PhantomConfig, TensorDataset};
use ganaug_experiment::assess::{self, AssessConfig, Floor, Verdict};
use ganaug_experiment::gate::measure;
use ganaug_experiment::{DataSource, FeatureNet, GateConfig, Quality};
use ganaug_models::{pretrained_weights, ModelKind};
use tch::{Device, Kind, Tensor};

fn weights() -> bool {
    if pretrained_weights(ModelKind::EfficientNetLite0).is_some() {
        return true;
    }
    assert!(
        std::env::var_os("GANAUG_REQUIRE_WEIGHTS").is_none(),
        "GANAUG_REQUIRE_WEIGHTS is set but the EfficientNet-Lite0 weights are missing"
    );
    eprintln!("skipped: no EfficientNet-Lite0 weights (scripts/setup.sh)");
    false
}

fn config() -> AssessConfig {
    AssessConfig {
        size: 64,
        resize: Default::default(),
        extractor: FeatureNet::default(),
        gate: GateConfig::default(),
        grid: 4,
        cas: true,
        floor: Floor::Halves,
    }
}

/// `ds` with its images in file-name order within each class (how a folder reads back).
fn by_name(ds: &TensorDataset, label: i64) -> Tensor {
    let class = ds.class_subset(label).expect("class");
    let mut order: Vec<usize> = (0..class.len()).collect();
    order.sort_by(|&a, &b| class.names[a].cmp(&class.names[b]));
    let idx: Vec<i64> = order.into_iter().map(|i| i as i64).collect();
    class.images.index_select(0, &Tensor::from_slice(&idx))
}

#[test]
fn held_out_real_images_pass_and_measure_as_in_memory() {
    if !weights() {
        return;
    }
    let cfg = config();
    let data = DataSource::Phantom(PhantomConfig::tiny(64, 40, 3));
    let splits = assess::real_splits(&data, &cfg, Device::Cpu).expect("real splits");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("held-out");
    io::export_image_folder_at(&splits.val, &dir, false, Depth::Sixteen).expect("export");

    let read =
        assess::synthetic_images(&dir, &splits.train, cfg.resize, Device::Cpu).expect("read back");
    assert_eq!(read.len(), splits.val.len());
    let mut quality = Quality::new(Device::Cpu).expect("feature network");
    let (a, grids) = assess::assess(&splits, &read, &cfg, Device::Cpu).expect("assessed");
    assert_eq!(a.verdict, Verdict::Passes, "{:?}", a.reasons);
    assert_eq!(grids.len(), 2 * splits.train.class_names.len());

    for (label, class) in splits.train.class_names.iter().enumerate() {
        // 16-bit PNGs read back to within half a step of 1/65535
        let back = read.class_subset(label as i64).expect("class").images;
        let memory = by_name(&splits.val, label as i64);
        let err = (&back - &memory).abs().max().double_value(&[]);
        assert!(
            err <= 0.5 / 65535.0 + 1e-7,
            "{class}: read back off by {err}"
        );
        // the gate's measures of the in-memory set, in the same order
        let train = splits
            .train
            .class_subset(label as i64)
            .expect("class")
            .images;
        let (fr, fs) = quality
            .features(class, &train, &memory)
            .expect("features")
            .expect("network");
        let m = measure(&fr, &fs, quality.describe(), &cfg.gate).expect("measured");
        let got = a.classes[label].measures.as_ref().expect("measured");
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-4 * (1.0 + y.abs());
        for (name, x, y) in [
            ("diversity", got.synthetic.diversity, m.synthetic.diversity),
            ("precision", got.synthetic.precision, m.synthetic.precision),
            ("recall", got.synthetic.recall, m.synthetic.recall),
            ("density", got.synthetic.density, m.synthetic.density),
            ("coverage", got.synthetic.coverage, m.synthetic.coverage),
            ("real recall", got.real.recall, m.real.recall),
        ] {
            assert!(
                close(x, y),
                "{class} {name}: from the folder {x}, in memory {y}"
            );
        }
        // nearest first, farthest first
        let c = &a.classes[label];
        assert!(c.nearest.windows(2).all(|w| w[0].1 <= w[1].1));
        assert!(c.farthest.windows(2).all(|w| w[0].1 >= w[1].1));
    }
    let (cas, real) = (
        a.cas.as_ref().expect("cas"),
        a.cas_real.as_ref().expect("real cas"),
    );
    assert!(
        cas.accuracy > 0.5 && real.accuracy > 0.5,
        "{cas:?} {real:?}"
    );

    let out = tmp.path().join("report");
    assess::write_assessment(&a, &grids, &out).expect("written");
    let md = std::fs::read_to_string(out.join("assessment.md")).expect("markdown");
    assert!(md.contains("PASSES"), "{md}");
    assert!(out.join("assessment.json").is_file());
    assert!(out.join(&grids[0].file).is_file());
}

#[test]
fn a_collapsed_set_is_refused_and_foreign_classes_are_named() {
    if !weights() {
        return;
    }
    let cfg = AssessConfig {
        cas: false,
        ..config()
    };
    let data = DataSource::Phantom(PhantomConfig::tiny(64, 40, 4));
    let splits = assess::real_splits(&data, &cfg, Device::Cpu).expect("real splits");
    let tmp = tempfile::tempdir().expect("tempdir");

    // every class: one real image repeated, with a trace of noise (8-bit PNGs)
    let n = 30;
    let (mut images, mut labels, mut names) = (Vec::new(), Vec::new(), Vec::new());
    for label in 0..splits.train.class_names.len() as i64 {
        let one = splits
            .train
            .class_subset(label)
            .expect("class")
            .images
            .narrow(0, 0, 1);
        let noise = Tensor::randn([n, 1, 64, 64], (Kind::Float, Device::Cpu)) * 2e-3;
        images.push((one.repeat([n, 1, 1, 1]) + noise).clamp(0.0, 1.0));
        labels.extend(std::iter::repeat_n(label, n as usize));
        names.extend((0..n).map(|i| format!("c{label}-{i:03}.png")));
    }
    let collapsed = TensorDataset::new(
        Tensor::cat(&images, 0),
        Tensor::from_slice(&labels),
        names,
        splits.train.class_names.clone(),
        "a collapsed generator",
    )
    .expect("dataset");
    let dir = tmp.path().join("collapsed");
    io::export_image_folder(&collapsed, &dir, false).expect("export");
    let read =
        assess::synthetic_images(&dir, &splits.train, cfg.resize, Device::Cpu).expect("read");
    let (a, _) = assess::assess(&splits, &read, &cfg, Device::Cpu).expect("assessed");
    assert_eq!(a.verdict, Verdict::Refused);
    assert!(
        a.reasons
            .iter()
            .any(|r| r.contains("diversity") && r.contains("below its floor")),
        "{:?}",
        a.reasons
    );
    // against held-out images instead of real halves: still refused, the reference recorded
    let held = AssessConfig {
        floor: Floor::HeldOut,
        ..cfg.clone()
    };
    let (h, _) = assess::assess(&splits, &read, &held, Device::Cpu).expect("assessed");
    assert_eq!(h.verdict, Verdict::Refused, "{:?}", h.reasons);
    assert!(
        h.reasons.iter().all(|r| r.contains("held-out-vs-train")),
        "{:?}",
        h.reasons
    );
    assert!(h.classes.iter().all(|c| c.held_out.is_some()));

    // far closer to the real images than real images are to each other: near-copies
    let c = &a.classes[0];
    let (syn, real) = (
        c.nn_distance_median.expect("nn"),
        c.nn_distance_real_median.expect("nn"),
    );
    assert!(syn < real, "synthetic NN {syn} vs real NN {real}");

    // a class folder the real data does not have
    let foreign = tmp.path().join("foreign");
    for class in [splits.train.class_names[0].as_str(), "not-a-class"] {
        std::fs::create_dir_all(foreign.join(class)).expect("mkdir");
        for i in 0..3 {
            io::save_png(
                &Tensor::zeros([1, 64, 64], (Kind::Float, Device::Cpu)),
                foreign.join(class).join(format!("{i}.png")),
            )
            .expect("png");
        }
    }
    let err = assess::synthetic_images(&foreign, &splits.train, cfg.resize, Device::Cpu)
        .expect_err("a foreign class is refused")
        .to_string();
    assert!(err.contains("not-a-class"), "{err}");
}

#[test]
fn the_effect_of_a_set_is_the_paired_difference_of_the_experiments_own_cells() {
    // the tiny preset's CNN (no weights needed), one seed; the "synthetic" set: the validation
    // images at the GANs' side
    let mut cfg = ganaug_experiment::ReproConfig::preset("tiny")
        .expect("preset")
        .into_inner();
    cfg.models.truncate(1);
    let cfg = cfg.check().expect("checked");
    let data = DataSource::Phantom(PhantomConfig::tiny(32, 12, 6));
    let set = data
        .load(cfg.gan.gan.size, Device::Cpu)
        .expect("phantom")
        .val;
    let tmp = tempfile::tempdir().expect("tempdir");
    let silent = ganaug_train::Silent;
    let e = ganaug_experiment::effect::effect_of_set(
        &cfg,
        &data,
        &set,
        tmp.path(),
        Device::Cpu,
        &silent,
        ganaug_data::Streaming::Off,
    )
    .expect("effect");
    assert_eq!(e.cells.len(), 2, "a raw cell and one with the set");
    assert_eq!((e.raw.accuracy.n, e.with_set.accuracy.n), (1, 1));
    let paired = e.with_set.vs_raw.as_ref().expect("paired with raw");
    let diff = e.with_set.accuracy.mean - e.raw.accuracy.mean;
    assert!(
        (paired.accuracy_diff.value - diff).abs() < 1e-9,
        "{paired:?} vs {diff}"
    );
    let md = ganaug_experiment::effect::effect_markdown(&e);
    assert!(md.contains("Paired difference"), "{md}");
    // run again into the same folder: both cells are reused, not retrained
    let again = ganaug_experiment::effect::effect_of_set(
        &cfg,
        &data,
        &set,
        tmp.path(),
        Device::Cpu,
        &silent,
        ganaug_data::Streaming::Off,
    )
    .expect("effect");
    assert_eq!(again.cells, e.cells);
}
