//! An embedded stand-in dataset: procedurally generated two-class "phantom CT" slices.
//!
//! **Synthetic data, not real CT.** It exists so that examples and tests run with no download.
//! Each image is an axial-slice cartoon: a body ellipse, two dark lung fields, a mediastinum,
//! a bright spine, small vessels and noise. Class 0 (`COVID`) adds ground-glass-like soft
//! bright blobs inside the lungs; class 1 (`NonCOVID`) has none. Everything is drawn from a
//! ChaCha8 stream seeded by `(seed, split, class, index)`, so the data is identical everywhere.
//! Every dataset it makes carries a description saying it is a synthetic phantom.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use crate::{DataError, LoadReport, Result, Split, Splits, TensorDataset};

/// Class names of the phantom dataset, in label order.
pub const PHANTOM_CLASSES: [&str; 2] = ["COVID", "NonCOVID"];

/// Size and seed of the phantom dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct PhantomConfig {
    /// Side length of the square images.
    pub size: u32,
    /// Images per `[split][class]` (splits in [`Split::ALL`] order, classes as
    /// [`PHANTOM_CLASSES`]). The default is the official COVID-CT split divided by four.
    pub counts: [[usize; 2]; 3],
    /// Seed of everything drawn.
    pub seed: u64,
}

impl Default for PhantomConfig {
    fn default() -> Self {
        PhantomConfig {
            size: 64,
            counts: [[48, 58], [15, 15], [25, 26]],
            seed: 0,
        }
    }
}

impl PhantomConfig {
    /// A config with `size` and `per_class` images per class in every split.
    pub fn tiny(size: u32, per_class: usize, seed: u64) -> Self {
        PhantomConfig {
            size,
            counts: [[per_class; 2]; 3],
            seed,
        }
    }

    /// The description every phantom dataset carries.
    pub fn description(&self, split: Split) -> String {
        format!(
            "SYNTHETIC PHANTOM stand-in data (procedural, not real CT; seed {}), {split} split",
            self.seed
        )
    }
}

/// Generates the three splits of the phantom dataset on `device`.
pub fn phantom_splits(cfg: &PhantomConfig, device: Device) -> Result<Splits> {
    if cfg.size < 8 || cfg.size > 1024 {
        return Err(DataError::config(
            "size",
            format!("{} is not in 8..=1024", cfg.size),
        ));
    }
    let make = |split_idx: usize| -> Result<TensorDataset> {
        let split = Split::ALL[split_idx];
        let mut images = Vec::new();
        let mut labels = Vec::new();
        let mut names = Vec::new();
        for (label, &n) in cfg.counts[split_idx].iter().enumerate() {
            for i in 0..n {
                let stream = ((split_idx as u64) << 40) | ((label as u64) << 32) | i as u64;
                let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
                rng.set_stream(stream);
                images.push(render(cfg.size as i64, label == 0, &mut rng)?);
                labels.push(label as i64);
                names.push(format!("phantom-{split}-{}-{i:04}", PHANTOM_CLASSES[label]));
            }
        }
        let s = cfg.size as i64;
        let images = if images.is_empty() {
            Tensor::f_zeros([0, 1, s, s], (Kind::Float, Device::Cpu))?
        } else {
            Tensor::f_stack(&images, 0)?.f_unsqueeze(1)?
        };
        TensorDataset::new(
            images.f_to_device(device)?,
            Tensor::f_from_slice(&labels)?.f_to_device(device)?,
            names,
            PHANTOM_CLASSES.map(String::from).to_vec(),
            cfg.description(split),
        )
    };
    Ok(Splits {
        train: make(0)?,
        val: make(1)?,
        test: make(2)?,
        report: LoadReport::default(),
    })
}

/// A soft-edged ellipse mask in [0, 1].
fn ellipse(xx: &Tensor, yy: &Tensor, c: (f64, f64), r: (f64, f64), edge: f64) -> Result<Tensor> {
    let dx = xx.f_sub_scalar(c.0)?.f_div_scalar(r.0)?;
    let dy = yy.f_sub_scalar(c.1)?.f_div_scalar(r.1)?;
    let rho = dx.f_square()?.f_add(&dy.f_square()?)?.f_sqrt()?;
    Ok(rho
        .f_neg()?
        .f_add_scalar(1.0)?
        .f_div_scalar(edge)?
        .f_sigmoid()?)
}

/// A Gaussian bump of height 1.
fn bump(xx: &Tensor, yy: &Tensor, c: (f64, f64), sigma: f64) -> Result<Tensor> {
    let d2 = xx
        .f_sub_scalar(c.0)?
        .f_square()?
        .f_add(&yy.f_sub_scalar(c.1)?.f_square()?)?;
    Ok(d2.f_div_scalar(-2.0 * sigma * sigma)?.f_exp()?)
}

/// Paints `value` over `img` where `mask` is 1.
fn paint(img: &Tensor, mask: &Tensor, value: f64) -> Result<Tensor> {
    Ok(img
        .f_mul(&mask.f_neg()?.f_add_scalar(1.0)?)?
        .f_add(&mask.f_mul_scalar(value)?)?)
}

fn render(s: i64, covid: bool, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let opts = (Kind::Float, Device::Cpu);
    let lin = Tensor::f_linspace(-1.0, 1.0, s, opts)?;
    let yy = lin.f_view([s, 1])?.f_expand([s, s], false)?;
    let xx = lin.f_view([1, s])?.f_expand([s, s], false)?;
    let mut j = |spread: f64| rng.random_range(-spread..=spread);
    let edge = 2.0 / s as f64;

    let mut img = Tensor::f_full([s, s], 0.02, opts)?;
    let body = ellipse(
        &xx,
        &yy,
        (j(0.03), 0.05 + j(0.03)),
        (0.86 + j(0.05), 0.66 + j(0.05)),
        edge,
    )?;
    img = paint(&img, &body, 0.55 + j(0.05))?;
    let lung_r = (0.27 + j(0.03), 0.42 + j(0.04));
    let lungs = [(-0.38 + j(0.03), j(0.04)), (0.38 + j(0.03), j(0.04))];
    let mut lung_mask = Tensor::f_zeros([s, s], opts)?;
    for &c in &lungs {
        let m = ellipse(&xx, &yy, c, lung_r, edge)?;
        lung_mask = lung_mask.f_maximum(&m)?;
    }
    img = paint(&img, &lung_mask, 0.08 + j(0.03))?;
    let heart = ellipse(
        &xx,
        &yy,
        (0.06 + j(0.03), 0.12 + j(0.03)),
        (0.17 + j(0.02), 0.22 + j(0.02)),
        edge,
    )?;
    img = paint(&img, &heart, 0.62 + j(0.04))?;
    let spine = ellipse(&xx, &yy, (j(0.02), 0.56 + j(0.02)), (0.09, 0.09), edge)?;
    img = paint(&img, &spine, 0.95)?;

    // Vessels: small bright dots inside the lungs.
    let mut vessels = Tensor::f_zeros([s, s], opts)?;
    for _ in 0..rng.random_range(6..14) {
        let lung = lungs[rng.random_range(0..2)];
        let c = (
            lung.0 + rng.random_range(-0.7..0.7) * lung_r.0,
            lung.1 + rng.random_range(-0.7..0.7) * lung_r.1,
        );
        vessels = vessels
            .f_add(&bump(&xx, &yy, c, rng.random_range(0.012..0.025))?.f_mul_scalar(0.3)?)?;
    }
    // Ground-glass opacities: large soft blobs, towards the periphery and the lower lungs.
    let mut glass = Tensor::f_zeros([s, s], opts)?;
    if covid {
        for _ in 0..rng.random_range(2..6) {
            let lung = lungs[rng.random_range(0..2)];
            let outward = lung.0.signum() * rng.random_range(0.1..0.6) * lung_r.0;
            let c = (
                lung.0 + outward,
                lung.1 + rng.random_range(-0.3..0.7) * lung_r.1,
            );
            let amp = rng.random_range(0.18..0.35);
            glass = glass
                .f_add(&bump(&xx, &yy, c, rng.random_range(0.07..0.15))?.f_mul_scalar(amp)?)?;
        }
    }
    img = img.f_add(&vessels.f_add(&glass)?.f_mul(&lung_mask)?)?;

    let noise: Vec<f32> = (0..s * s)
        .map(|_| rng.random_range(-0.03f32..0.03))
        .collect();
    img = img.f_add(&Tensor::f_from_slice(&noise)?.f_view([s, s])?)?;
    Ok(img.f_clamp(0.0, 1.0)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phantom_is_deterministic_labelled_and_in_range() {
        let cfg = PhantomConfig::tiny(32, 3, 5);
        let a = phantom_splits(&cfg, Device::Cpu).expect("phantom");
        let b = phantom_splits(&cfg, Device::Cpu).expect("phantom");
        assert_eq!(a.train.images.size(), [6, 1, 32, 32]);
        assert_eq!(a.train.class_counts(), vec![3, 3]);
        assert!(a.test.description.contains("SYNTHETIC PHANTOM"));
        assert!(a.train.images.equal(&b.train.images));
        assert!(!a.train.images.equal(&a.val.images), "splits must differ");
        let (lo, hi) = (
            a.train.images.min().double_value(&[]),
            a.train.images.max().double_value(&[]),
        );
        assert!((0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi));
        let other = phantom_splits(&PhantomConfig::tiny(32, 3, 6), Device::Cpu).expect("phantom");
        assert!(
            !a.train.images.equal(&other.train.images),
            "seed must matter"
        );
    }

    #[test]
    fn covid_phantoms_have_brighter_lungs() {
        // Ground-glass blobs raise the mean intensity: a separable signal for classifiers.
        let cfg = PhantomConfig::tiny(48, 20, 1);
        let ds = phantom_splits(&cfg, Device::Cpu).expect("phantom").train;
        let mean = |label| {
            ds.class_subset(label)
                .expect("class")
                .images
                .mean(Kind::Float)
                .double_value(&[])
        };
        assert!(
            mean(0) > mean(1) + 0.005,
            "covid {} vs non {}",
            mean(0),
            mean(1)
        );
    }
}
