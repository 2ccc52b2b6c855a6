//! Copies made when read ([`ExpandedSource`]) hold exactly the values [`expand`] stores, in any
//! batch order, alone or in a [`ConcatSource`] training set.

use ganaug_augment::{expand, ExpandedSource, Pipeline, Step, Transform};
use ganaug_data::stream::{batch_order, read_batches};
use ganaug_data::{phantom_splits, BatchOrder, ConcatSource, ImageSource, PhantomConfig};
use tch::{Device, Tensor};

/// Every transform but blur (whose convolution's rounding follows the batch it runs in).
fn every_step() -> Pipeline {
    let step = |transform, p| Step { transform, p };
    Pipeline::new(vec![
        step(Transform::HFlip, 0.5),
        step(Transform::Rotate { max_degrees: 20.0 }, 1.0),
        step(Transform::Brightness { max_delta: 0.1 }, 0.7),
        step(Transform::Contrast { range: (0.8, 1.2) }, 0.7),
        step(Transform::Gamma { range: (0.8, 1.2) }, 0.5),
        step(Transform::Noise { std: (0.0, 0.05) }, 0.5),
        step(
            Transform::Cutout {
                size: (0.1, 0.3),
                count: 2,
            },
            0.5,
        ),
    ])
    .expect("pipeline")
}

/// Reads `source` in shuffled batches of `batch` (in the loop, then read ahead on a thread)
/// and puts each row back at its position.
fn read_shuffled(source: &dyn ImageSource, batch: usize, seed: u64) -> Tensor {
    let order = batch_order(source.len(), BatchOrder::Shuffled { seed });
    let chunks: Vec<Vec<i64>> = order.chunks(batch).map(<[i64]>::to_vec).collect();
    let (h, w) = source.image_size();
    let shape = [source.len() as i64, source.channels(), h, w];
    let mut passes = Vec::new();
    for prefetch in [0, 2] {
        let mut out = Tensor::zeros(shape, (tch::Kind::Float, Device::Cpu));
        read_batches::<ganaug_data::DataError>(
            source,
            chunks.clone(),
            Device::Cpu,
            prefetch,
            |idx, x| {
                let _ = out.index_copy_(0, &Tensor::from_slice(&idx), &x);
                Ok(())
            },
        )
        .expect("read");
        passes.push(out);
    }
    assert!(
        passes[0].equal(&passes[1]),
        "read ahead or not, the same images"
    );
    passes.swap_remove(0)
}

#[test]
fn copies_made_when_read_equal_the_stored_copies_in_any_order() {
    let train = phantom_splits(&PhantomConfig::tiny(24, 11, 3), Device::Cpu)
        .expect("phantom")
        .train;
    for (pipeline, batch) in [
        (Pipeline::paper(), 4),
        (every_step(), 5),
        (Pipeline::frid_adar(), 64),
    ] {
        let stored = expand(&train, &pipeline, 2, 7, batch).expect("expand");
        let lazy = ExpandedSource::new(&train, &pipeline, 2, 7, batch).expect("source");
        assert_eq!(lazy.len(), stored.len());
        assert_eq!(lazy.names(), stored.names.as_slice());
        assert!(lazy.labels().equal(&stored.labels));
        assert_eq!(lazy.description(), stored.description);
        for read_batch in [1, 3, 8] {
            let got = read_shuffled(&lazy, read_batch, read_batch as u64);
            let diff = (&got - &stored.images).abs().max().double_value(&[]);
            assert!(
                got.equal(&stored.images),
                "{:?} read {read_batch} at a time differs by {diff}",
                pipeline.steps().len()
            );
        }
    }
}

#[test]
fn blurred_copies_made_when_read_are_within_rounding_of_the_stored_ones() {
    let train = phantom_splits(&PhantomConfig::tiny(24, 11, 3), Device::Cpu)
        .expect("phantom")
        .train;
    let blur = Pipeline::new(vec![Step {
        transform: Transform::Blur { sigma: (0.3, 1.5) },
        p: 0.6,
    }])
    .expect("pipeline");
    let stored = expand(&train, &blur, 2, 7, 5).expect("expand");
    let lazy = ExpandedSource::new(&train, &blur, 2, 7, 5).expect("source");
    let got = read_shuffled(&lazy, 3, 1);
    let diff = (&got - &stored.images).abs().max().double_value(&[]);
    assert!(diff < 1e-6, "{diff}");
    // and a blur that moved the images, not an identity
    assert!(
        (&stored.images - &train.images.repeat([2, 1, 1, 1]))
            .abs()
            .max()
            .double_value(&[])
            > 1e-2
    );
}

#[test]
fn a_concatenated_training_set_reads_as_the_stored_one() {
    let splits = phantom_splits(&PhantomConfig::tiny(16, 9, 5), Device::Cpu).expect("phantom");
    let (train, extra) = (&splits.train, &splits.val);
    let pipeline = Pipeline::paper();
    let both = train.concat(extra).expect("concat");
    let stored = both
        .concat(&expand(&both, &pipeline, 2, 11, 64).expect("expand"))
        .expect("concat");
    let real = ConcatSource::new(vec![train, extra]).expect("real");
    let copies = ExpandedSource::new(&real, &pipeline, 2, 11, 64).expect("copies");
    let all = ConcatSource::new(vec![&real, &copies]).expect("all");
    assert_eq!(all.len(), stored.len());
    assert_eq!(all.names(), stored.names.as_slice());
    assert!(all.labels().equal(&stored.labels));
    assert!(read_shuffled(&all, 7, 1).equal(&stored.images));
    // parts that disagree are refused
    let other = phantom_splits(&PhantomConfig::tiny(24, 2, 5), Device::Cpu).expect("phantom");
    assert!(ConcatSource::new(vec![train, &other.train]).is_err());
    assert!(ConcatSource::new(Vec::new()).is_err());
    assert!(ExpandedSource::new(train, &pipeline, 0, 1, 4).is_err());
}
