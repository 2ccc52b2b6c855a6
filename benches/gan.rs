//! One GAN training step (discriminator + generator, Adam, BCE), batch 32, at 64² and 256².
//! `paper_fc128` is the model of `../shared/peer/torch_paper_models.py` (dense 128·(S/4)²);
//! `paper` is the paper's stated 262,144-unit dense layer at 256² (64 channels); `dcgan32` is
//! the CPU preset's networks, and
//! `dcgan32_diffaug` the CPU preset's full step (with DiffAugment translation + cutout).
//! `_subpixel` variants compute the transposed convolutions as 3×3 convolutions + pixel shuffle;
//! `_bf16` ones compute convolutions and dense layers in bf16 (autocast-style).
//! `GANAUG_BENCH_SMALL=1` skips 256². Compare with
//! `python ../shared/peer/torch_paper_models.py --models gan --size 64` (and `--size 256`).
#![allow(missing_docs)] // criterion_group! generates undocumented items

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use ganaug::augment::DiffAugment;
use ganaug::gan::{Arch, GanConfig, GanTrainer, TrainConfig};
use rand::SeedableRng;
use tch::{Device, Kind, Tensor};

fn bench_gan_step(c: &mut Criterion) {
    common::setup();
    let device = Device::cuda_if_available();
    let dev = if device.is_cuda() { "cuda" } else { "cpu" };
    let mut group = c.benchmark_group("gan_step");
    group
        .sample_size(10)
        .measurement_time(common::measurement_time(20));
    let sizes: &[i64] = if std::env::var_os("GANAUG_BENCH_SMALL").is_some() {
        &[64]
    } else {
        &[64, 256]
    };
    for &size in sizes {
        let dcgan = Arch::Dcgan { ngf: 32, ndf: 32 };
        // (name, arch, dense channels, DiffAugment, sub-pixel transposed convolutions, bf16)
        let models = [
            ("paper_fc128", Arch::Paper, 128, false, false, false),
            ("paper_fc128_subpixel", Arch::Paper, 128, false, true, false),
            ("paper_fc128_bf16", Arch::Paper, 128, false, false, true),
            ("paper", Arch::Paper, 64, false, false, false),
            ("dcgan32", dcgan, 64, false, false, false),
            ("dcgan32_subpixel", dcgan, 64, false, true, false),
            ("dcgan32_bf16", dcgan, 64, false, false, true),
            ("dcgan32_diffaug", dcgan, 64, true, false, false),
        ];
        // bf16 is far slower than f32 on CPUs without bf16 units (docs/performance.md): on a
        // CPU only with GANAUG_BENCH_BF16=1.
        let bf16_ok = device.is_cuda() || std::env::var_os("GANAUG_BENCH_BF16").is_some();
        for (name, arch, fc, diffaug, subpixel, bf16) in models {
            if bf16 && !bf16_ok {
                continue;
            }
            // At 256² only the paper's models (the DCGAN presets are 64²), each step taking
            // seconds on a CPU; bf16 there only on a GPU.
            let slow_bf16 = bf16 && !device.is_cuda();
            if size == 256 && (matches!(arch, Arch::Dcgan { .. }) || subpixel || slow_bf16) {
                continue;
            }
            let gan = GanConfig {
                arch,
                size,
                paper_fc_channels: fc,
                subpixel,
                bf16,
                ..GanConfig::default()
            };
            let cfg = TrainConfig {
                batch_size: 32,
                // The CPU preset's policy: translation + cutout.
                diffaugment: diffaug
                    .then(|| DiffAugment::parse("translation,cutout").expect("policy")),
                ..TrainConfig::default()
            };
            let mut trainer = GanTrainer::new(gan, cfg, device).expect("trainer");
            let real = Tensor::rand([32, 1, size, size], (Kind::Float, device));
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
            let grid = trainer.sample_grid().expect("generate");
            assert_eq!(grid.size()[1..], [1, size, size]);
            group.bench_function(format!("{dev}/{name}_{size}px_b32"), |b| {
                b.iter(|| {
                    let s = trainer.train_step(&real, None, &mut rng).expect("step");
                    if device.is_cuda() {
                        tch::Cuda::synchronize(0);
                    }
                    s
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_gan_step);
criterion_main!(benches);
