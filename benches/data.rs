//! Data loading: decode + gray + resize of every COVID-CT image (cold, no cache) and a cached
//! load, at 224x224. Needs the real dataset: `COVID_CT_DIR=/path/to/covid-ct cargo bench --bench data`.
//! Compare with `python ../shared/peer/pil_load.py $COVID_CT_DIR 224` on the same machine.

#![allow(missing_docs)] // criterion_group! generates undocumented items

mod common;

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use ganaug::data::{load_entries, FolderConfig, ImageFolder, LoadOptions};

fn dataset_dir() -> Option<PathBuf> {
    std::env::var_os("COVID_CT_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
}

fn bench_loading(c: &mut Criterion) {
    common::setup();
    let Some(dir) = dataset_dir() else {
        eprintln!("benches/data: COVID_CT_DIR not set to the COVID-CT folder; skipping");
        return;
    };
    let folder = ImageFolder::open(&dir, &FolderConfig::covid_ct()).expect("open COVID-CT");
    let entries = folder.entries().to_vec();
    let classes = folder.class_names();
    let cold = LoadOptions::with_size(224);
    // Shape check before timing.
    let (ds, _) = load_entries(&entries, &classes, "bench", &cold).expect("load");
    assert_eq!(ds.images.size(), [746, 1, 224, 224]);

    let mut group = c.benchmark_group("data");
    group
        .sample_size(10)
        .measurement_time(common::measurement_time(15));
    group.bench_function("cpu/decode_gray_resize_746_to_224_cold", |b| {
        b.iter(|| load_entries(&entries, &classes, "bench", &cold).expect("load"))
    });
    let cache = tempfile::tempdir().expect("tempdir");
    let cached = LoadOptions::with_size(224).with_cache(cache.path());
    load_entries(&entries, &classes, "bench", &cached).expect("fill cache");
    group.bench_function("cpu/load_746_at_224_cached", |b| {
        b.iter(|| {
            let (ds, report) = load_entries(&entries, &classes, "bench", &cached).expect("load");
            assert_eq!(report.from_cache, 746);
            ds
        })
    });
    group.finish();
}

criterion_group!(benches, bench_loading);
criterion_main!(benches);
