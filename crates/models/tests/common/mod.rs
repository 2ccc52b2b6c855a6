//! What the classifier tests share: a lock on libtorch's global generator, a toy dataset, a
//! small CNN.
#![allow(dead_code)] // each test binary uses some of these

use ganaug_data::TensorDataset;
use ganaug_models::{Classifier, ModelConfig, ModelKind};
use tch::{Device, Kind, Tensor};

/// libtorch's generator is global and cargo runs tests in parallel: every test holds this lock,
/// since initialisation and dropout draw from it and some tests compare runs.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    TORCH_RNG.lock().unwrap_or_else(|p| p.into_inner())
}

/// `n` images per class of `size`²: class 0 has a bright left half, class 1 a bright right half.
pub fn halves(n: i64, size: i64, seed: i64) -> TensorDataset {
    tch::manual_seed(seed);
    let opts = (Kind::Float, Device::Cpu);
    let noise = Tensor::rand([2 * n, 1, size, size], opts) * 0.3;
    let col = Tensor::arange(size, opts).view([1, 1, 1, size]);
    let left = col.lt((size / 2) as f64).to_kind(Kind::Float) * 0.6;
    let right = col.ge((size / 2) as f64).to_kind(Kind::Float) * 0.6;
    let images = Tensor::cat(
        &[
            left.expand([n, 1, size, size], false),
            right.expand([n, 1, size, size], false),
        ],
        0,
    ) + noise;
    let labels = Tensor::cat(
        &[
            Tensor::zeros([n], (Kind::Int64, Device::Cpu)),
            Tensor::ones([n], (Kind::Int64, Device::Cpu)),
        ],
        0,
    );
    let names = (0..2 * n).map(|i| format!("img{i}")).collect();
    TensorDataset::new(
        images,
        labels,
        names,
        vec!["left".into(), "right".into()],
        "toy halves",
    )
    .expect("dataset")
}

pub fn cnn(size: i64) -> Classifier {
    Classifier::new(ModelConfig::new(ModelKind::PaperCnn, size), Device::Cpu).expect("model")
}
