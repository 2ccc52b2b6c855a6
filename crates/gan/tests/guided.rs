//! The generators that stay near the real data: the feature-space WGAN-GP (vectors of a class,
//! in a classifier's feature space) and the edit GAN (masked, bounded edits of real images):
//! shapes, what they promise of their output, exact resume, refused inputs.

use ganaug_data::TensorDataset;
use ganaug_gan::{
    random_masks, synthesize_edits, EditGan, EditGanConfig, EditSynthConfig, FeatureGan,
    FeatureGanConfig, GanError, Silent,
};
use rand::SeedableRng;
use tch::{Device, Kind, Tensor};

/// libtorch's generator is global: the tests that compare runs take turns.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    TORCH_RNG.lock().unwrap_or_else(|p| p.into_inner())
}

/// Two classes of vectors in 6 dimensions, means ±2 on the first axis.
fn blobs(n: i64) -> (Tensor, Tensor) {
    tch::manual_seed(11);
    let y = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(2);
    let x = Tensor::randn([n, 6], (Kind::Float, Device::Cpu));
    let shift = (y.to_kind(Kind::Float) * 4.0 - 2.0).view([n, 1]);
    let _ = x.narrow(1, 0, 1).g_add_(&shift);
    (x, y)
}

fn feature_cfg(epochs: usize) -> FeatureGanConfig {
    FeatureGanConfig {
        hidden: 32,
        epochs,
        batch_size: 16,
        lr: 1e-3,
        checkpoint_every: 1,
        ..FeatureGanConfig::default()
    }
}

#[test]
fn the_feature_gan_makes_vectors_of_each_class_and_resumes_exactly() {
    let _g = rng_lock();
    let (x, y) = blobs(64);
    let mut gan = FeatureGan::new(feature_cfg(30), 6, 2, Device::Cpu).expect("gan");
    gan.fit(&x, &y, None, &Silent).expect("fit");
    assert_eq!(gan.history().len(), 30);
    let (v, labels) = gan.generate(&[20, 30], 5).expect("generate");
    assert_eq!(v.size(), [50, 6]);
    assert_eq!(labels.int64_value(&[0]), 0);
    assert_eq!(labels.int64_value(&[49]), 1);
    // the classification loss pushes each class's vectors to its side of the first axis
    let first = v.narrow(1, 0, 1).view([50]);
    let (a, b) = (
        first.narrow(0, 0, 20).mean(Kind::Float),
        first.narrow(0, 20, 30).mean(Kind::Float),
    );
    assert!(a.double_value(&[]) < b.double_value(&[]), "{a} vs {b}");

    // killed after 2 epochs and resumed = 4 epochs straight
    let dir = tempfile::tempdir().expect("tempdir");
    let mut straight = FeatureGan::new(feature_cfg(4), 6, 2, Device::Cpu).expect("gan");
    straight.fit(&x, &y, None, &Silent).expect("fit");
    let mut first = FeatureGan::new(feature_cfg(2), 6, 2, Device::Cpu).expect("gan");
    first.fit(&x, &y, Some(dir.path()), &Silent).expect("fit");
    let ckpt = FeatureGan::latest_checkpoint(dir.path()).expect("checkpoint");
    let mut resumed = FeatureGan::resume(&ckpt, Device::Cpu, Some(4)).expect("resume");
    resumed.fit(&x, &y, Some(dir.path()), &Silent).expect("fit");
    let (s, _) = straight.generate(&[3, 3], 9).expect("generate");
    let (r, _) = resumed.generate(&[3, 3], 9).expect("generate");
    let diff = (&s - &r).abs().max().double_value(&[]);
    assert!(diff < 1e-5, "resumed feature GAN differs by {diff}");
    // other data is refused on resume
    let (x2, _) = blobs(32);
    let latest = FeatureGan::latest_checkpoint(dir.path()).expect("checkpoint");
    let mut again = FeatureGan::resume(&latest, Device::Cpu, Some(6)).expect("resume");
    assert!(again.fit(&x2, &y.narrow(0, 0, 32), None, &Silent).is_err());
}

#[test]
fn the_feature_gan_refuses_what_it_cannot_train_on() {
    // it seeds and draws from libtorch's generator too (a new GAN, the blobs)
    let _g = rng_lock();
    let bad = FeatureGanConfig {
        critic_steps: 0,
        ..FeatureGanConfig::default()
    };
    assert!(matches!(
        FeatureGan::new(bad, 6, 2, Device::Cpu),
        Err(GanError::Config { .. })
    ));
    let mut gan = FeatureGan::new(feature_cfg(1), 6, 2, Device::Cpu).expect("gan");
    let (x, _) = blobs(8);
    let wrong = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 0, 1, 0]);
    assert!(matches!(
        gan.fit(&x, &wrong, None, &Silent),
        Err(GanError::Labels(_))
    ));
    assert!(gan.fit(&x.narrow(1, 0, 5), &wrong, None, &Silent).is_err());
    assert!(gan.generate(&[1, 1, 1], 0).is_err());
}

/// 12 gray 32² images of two classes: a bright left or right half, with noise.
fn images() -> TensorDataset {
    tch::manual_seed(3);
    let n = 12;
    let col = Tensor::arange(32, (Kind::Float, Device::Cpu)).view([1, 1, 1, 32]);
    let y = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(2);
    let left = col.lt(16.0).to_kind(Kind::Float);
    let side = y.to_kind(Kind::Float).view([n, 1, 1, 1]);
    let right: Tensor = left.ones_like() - &left;
    let other: Tensor = side.ones_like() - &side;
    let img: Tensor = (&left * &other + &right * &side) * 0.6
        + Tensor::rand([n, 1, 32, 32], (Kind::Float, Device::Cpu)) * 0.3;
    let names = (0..n).map(|i| format!("img{i}.png")).collect();
    TensorDataset::new(
        img.expand([n, 1, 32, 32], false).contiguous(),
        y,
        names,
        vec!["l".into(), "r".into()],
        "halves",
    )
    .expect("dataset")
}

fn edit_cfg(epochs: usize) -> EditGanConfig {
    EditGanConfig {
        size: 32,
        ngf: 4,
        ndf: 4,
        epochs,
        batch_size: 4,
        max_delta: 0.2,
        ..EditGanConfig::default()
    }
}

#[test]
fn edits_stay_inside_their_masks_and_bounds_and_materialize_at_any_side() {
    let _g = rng_lock();
    let data = images();
    let mut gan = EditGan::new(edit_cfg(2), Device::Cpu).expect("gan");
    gan.fit(&data, None, &Silent).expect("fit");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let (d, m) = gan
        .edit(&data.images, &data.labels, &mut rng)
        .expect("edit");
    assert_eq!(d.size(), [12, 1, 32, 32]);
    // bounded by max_delta, and (nearly) zero where the mask is (nearly) zero
    assert!(d.abs().max().double_value(&[]) <= 0.2 + 1e-6);
    let outside = m.lt(1e-3);
    let leak = d.abs().masked_select(&outside.expand_as(&d));
    assert!(leak.numel() == 0 || leak.max().double_value(&[]) < 1e-3);
    let edited = (&data.images + &d).clamp(0.0, 1.0);
    assert!(
        edited.equal(&(&data.images + &d)),
        "δ is applied after clamping"
    );

    // the class's edits: round-robin over its sources, near-copies dropped
    let class0 = data.class_subset(0).expect("class");
    let synth = EditSynthConfig {
        keep: 9,
        candidates_per_kept: 2,
        min_edit_rms: 0.0,
        seed: 0,
    };
    let (set, report) = synthesize_edits(&gan, &class0, 0, &synth).expect("edits");
    assert_eq!(set.sources.len(), 9);
    assert_eq!(report.generated, 18);
    let per_source = |name: &str| set.sources.iter().filter(|s| *s == name).count();
    assert!(
        class0
            .names
            .iter()
            .all(|n| (1..=2).contains(&per_source(n))),
        "{:?}",
        set.sources
    );
    // a copy rule that drops every edit keeps none
    let strict = EditSynthConfig {
        min_edit_rms: 1.0,
        ..synth
    };
    let (none, report) = synthesize_edits(&gan, &class0, 0, &strict).expect("edits");
    assert!(none.sources.is_empty() && report.near_copies == 18);
    // at another side: the source there plus the upsampled change
    let rows: Vec<usize> = (0..set.sources.len()).collect();
    let big = TensorDataset::new(
        class0
            .images
            .upsample_bilinear2d([64, 64], false, None, None),
        class0.labels.shallow_clone(),
        class0.names.clone(),
        class0.class_names.clone(),
        "big",
    )
    .expect("dataset");
    let at64 = set.materialize(&big, &rows).expect("materialize");
    assert_eq!(at64.images.size(), [9, 1, 64, 64]);
    assert!(
        set.materialize(&images().subset(&[1]).expect("one"), &rows)
            .is_err(),
        "sources absent"
    );
}

/// The edit GAN on images streamed from a file (read a batch at a time) is the edit GAN on the
/// same images in memory: the same weights' edits, the same kept edits, and the edits applied
/// as they are read ([`ganaug_gan::EditSet::source`]) equal the materialized set, any batch.
#[test]
fn the_edit_gan_reads_a_stream_as_it_reads_memory() {
    use ganaug_data::ImageSource;
    let _g = rng_lock();
    let data = images();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("real.safetensors");
    ganaug_data::stream::write_set_file(&file, &data).expect("write");
    let stream = ganaug_data::stream::open_set_file(&file).expect("open");
    let fit = |source: &dyn ImageSource| {
        let mut gan = EditGan::new(edit_cfg(2), Device::Cpu).expect("gan");
        gan.fit(source, None, &Silent).expect("fit");
        gan
    };
    let (in_memory, streamed) = (fit(&data), fit(&stream));
    let edit = |g: &EditGan| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        g.edit(&data.images, &data.labels, &mut rng)
            .expect("edit")
            .0
    };
    assert!(edit(&in_memory).equal(&edit(&streamed)), "trained alike");
    let synth = EditSynthConfig {
        keep: 5,
        min_edit_rms: 0.0,
        ..EditSynthConfig::default()
    };
    let class1 = (
        data.class_subset(1).expect("class"),
        stream.class_subset(1).expect("class"),
    );
    let (a, _) = synthesize_edits(&in_memory, &class1.0, 1, &synth).expect("edits");
    let (b, _) = synthesize_edits(&in_memory, &class1.1, 1, &synth).expect("edits");
    assert_eq!(a.sources, b.sources);
    assert!(a.deltas.equal(&b.deltas));
    // applied as read, from the stream, batch by batch in any order: the materialized set
    let rows = [4usize, 0, 2, 3];
    let whole = a.materialize(&data, &rows).expect("materialize");
    let source = a.source(&stream, &rows).expect("source");
    assert_eq!(source.len(), 4);
    assert_eq!(source.names(), whole.names.as_slice());
    let mut reader = source.reader().expect("reader");
    for batch in [&[3i64, 1][..], &[0], &[2, 0, 3]] {
        let want = whole.images.index_select(0, &Tensor::from_slice(batch));
        assert!(reader.read(batch).expect("read").equal(&want), "{batch:?}");
    }
    assert!(reader.read(&[4]).is_err(), "past the edits");
}

#[test]
fn the_edit_gan_resumes_exactly_and_needs_two_images_per_class() {
    let _g = rng_lock();
    let data = images();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut straight = EditGan::new(edit_cfg(2), Device::Cpu).expect("gan");
    straight.fit(&data, None, &Silent).expect("fit");
    let mut first = EditGan::new(edit_cfg(1), Device::Cpu).expect("gan");
    first.fit(&data, Some(dir.path()), &Silent).expect("fit");
    let ckpt = EditGan::latest_checkpoint(dir.path()).expect("checkpoint");
    let mut resumed = EditGan::resume(&ckpt, Device::Cpu, Some(2)).expect("resume");
    resumed.fit(&data, Some(dir.path()), &Silent).expect("fit");
    let edit = |g: &EditGan| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        g.edit(&data.images, &data.labels, &mut rng)
            .expect("edit")
            .0
    };
    let diff = (edit(&straight) - edit(&resumed))
        .abs()
        .max()
        .double_value(&[]);
    assert!(diff < 1e-5, "resumed edit GAN differs by {diff}");
    let lonely = data.subset(&[0, 1, 2]).expect("subset");
    let err = EditGan::new(edit_cfg(1), Device::Cpu)
        .expect("gan")
        .fit(&lonely, None, &Silent)
        .expect_err("one image of class 1");
    assert!(err.to_string().contains("fewer than two"), "{err}");
    let masks = random_masks(
        3,
        16,
        (0.2, 0.2),
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(0),
    )
    .expect("masks");
    let share = masks.mean(Kind::Float).double_value(&[]);
    assert!((share - 0.2).abs() < 0.08, "mask share {share}");
}
