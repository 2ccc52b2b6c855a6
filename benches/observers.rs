//! What watching a run costs: the per-epoch work of the observers every GAN and classifier run
//! has — a `metrics.jsonl` line written and flushed, `progress.json` updated (rewritten
//! atomically at most twice a second; a new unit always rewrites it) — next to one training
//! step (`gan_step/cpu/dcgan32_64`: tens of milliseconds on 2 cores). One epoch is many steps,
//! so these costs are per epoch, not per step.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion};
use ganaug::train::{EpochEvent, MetricsFile, Observer, ProgressFile};

fn bench_observers(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let record = serde_json::json!({
        "epoch": 12, "d_loss": 0.7012, "g_loss": 1.2345, "d_real": 0.71, "d_fake": 0.29,
        "lr_g": 0.0002, "lr_d": 0.0002, "grad_norm_d": 3.2, "grad_norm_g": 1.7, "seconds": 0.61
    });
    let event = |epoch| EpochEvent {
        run: "GAN",
        epoch,
        epochs: usize::MAX, // never the last epoch (which always rewrites progress.json)
        seconds: 0.61,
        summary: "D 0.701 G 1.234",
        metrics: &record,
    };
    let mut group = c.benchmark_group("observers");
    let metrics = MetricsFile::open(&tmp.path().join("metrics.jsonl"), 0).expect("open");
    let mut epoch = 0;
    group.bench_function("metrics_jsonl_epoch", |b| {
        b.iter(|| {
            epoch += 1;
            metrics.epoch_done(&event(epoch)).expect("line")
        })
    });
    let progress = ProgressFile::new(tmp.path().join("progress.json"), 12);
    group.bench_function("progress_json_epoch", |b| {
        b.iter(|| {
            epoch += 1;
            progress.epoch_done(&event(epoch)).expect("epoch")
        })
    });
    group.bench_function("progress_json_new_unit", |b| {
        b.iter(|| progress.unit_started("cell", "cnn × raw (seed 0)", 3, 12))
    });
    group.finish();
}

criterion_group!(benches, bench_observers);
criterion_main!(benches);
