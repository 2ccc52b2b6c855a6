//! Augmentation: the paper's classical pipeline (h-flip, v-flip, rotation up to 45°) on a batch
//! of 256 grayscale 224x224 images, per-sample random parameters, one resampling pass.
//! Compare with `python ../shared/peer/tv_augment.py 224 256` (torchvision v2, per sample,
//! whose `RandomRotation` resamples with nearest neighbour by default).
#![allow(missing_docs)] // criterion_group! generates undocumented items

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ganaug::augment::{Interpolation, Pipeline};
use tch::{Device, Kind, Tensor};

fn bench_paper_pipeline(c: &mut Criterion) {
    common::setup();
    let device = Device::cuda_if_available();
    let dev = if device.is_cuda() { "cuda" } else { "cpu" };
    let x = Tensor::rand([256, 1, 224, 224], (Kind::Float, device));
    let mut group = c.benchmark_group("augment");
    group
        .sample_size(10)
        .measurement_time(common::measurement_time(10))
        .throughput(Throughput::Elements(256));
    for (name, interp) in [
        ("nearest", Interpolation::Nearest),
        ("bilinear", Interpolation::Bilinear),
    ] {
        let p = Pipeline::paper().with_interpolation(interp);
        assert_eq!(
            p.apply_seeded(&x, 0).expect("augment").size(),
            [256, 1, 224, 224]
        );
        let mut seed = 0;
        group.bench_function(
            format!("{dev}/paper_flip_flip_rot45_224_b256_{name}"),
            |b| {
                b.iter(|| {
                    seed += 1;
                    let y = p.apply_seeded(&x, seed).expect("augment");
                    if device.is_cuda() {
                        tch::Cuda::synchronize(0);
                    }
                    y
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_paper_pipeline);
criterion_main!(benches);
