//! Synthesis with automatic selection, in place of the paper's hand-picking of 250 "good"
//! images: generate candidates, drop near-copies of training images (nearest-neighbour RMS
//! pixel distance below a threshold), keep the ones the discriminator scores highest.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use ganaug_data::stream::sequential_batches;
use ganaug_data::{ImageSource, TensorDataset};

use crate::{Discriminator, GanError, Generator, Result};

/// How many images to make and keep, and what counts as a near-copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthConfig {
    /// Candidates generated per class.
    pub candidates_per_class: usize,
    /// Images kept per class (the paper kept 250 in all).
    pub keep_per_class: usize,
    /// Candidates whose RMS pixel distance (images in [0, 1]) to their nearest training image
    /// is below this are dropped as near-copies.
    pub min_nn_distance: f64,
    /// Seed of the latents.
    pub seed: u64,
    /// Generation batch size.
    pub batch_size: i64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            candidates_per_class: 500,
            keep_per_class: 125,
            min_nn_distance: 0.02,
            seed: 0,
            batch_size: 64,
        }
    }
}

/// What selection did for one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassSynthReport {
    /// Class name.
    pub class: String,
    /// Candidates generated.
    pub generated: usize,
    /// Candidates dropped as near-copies of training images.
    pub near_copies: usize,
    /// Images kept.
    pub kept: usize,
    /// Mean discriminator probability of the kept images, and of all candidates.
    pub d_score_kept: f64,
    /// Mean discriminator probability of all candidates.
    pub d_score_all: f64,
    /// Nearest-neighbour RMS distance of the kept images to the training images: mean.
    pub nn_mean: f64,
    /// Minimum of the same.
    pub nn_min: f64,
    /// Median of the same.
    pub nn_median: f64,
}

/// One class's generator (and the discriminator that scores it).
#[derive(Debug, Clone, Copy)]
pub struct ClassModel<'a> {
    /// Generator (per-class, or conditional).
    pub generator: &'a Generator,
    /// Discriminator trained with it.
    pub discriminator: &'a Discriminator,
    /// `Some(label)` for a conditional GAN: the label to generate.
    pub condition: Option<i64>,
}

/// One class's candidates: every generated image with its discriminator probability and its
/// nearest-neighbour RMS distance to the class's training images.
#[derive(Debug)]
pub struct Candidates {
    /// `[M, C, S, S]` generated images.
    pub images: Tensor,
    /// Discriminator probability of each ("real").
    pub d_scores: Vec<f64>,
    /// RMS pixel distance of each to its nearest training image.
    pub nn: Vec<f64>,
    /// Whether each is far enough from the training images (not a near-copy).
    pub eligible: Vec<bool>,
}

/// Generates `cfg.candidates_per_class` images for one class and scores them; `real` are that
/// class's training images (in memory or streamed), for the near-copy check.
pub fn generate_candidates(
    model: ClassModel<'_>,
    real: &dyn ImageSource,
    cfg: &SynthConfig,
) -> Result<Candidates> {
    if cfg.candidates_per_class == 0 || cfg.keep_per_class == 0 || cfg.batch_size < 1 {
        return Err(GanError::config(
            "synth",
            "candidates, keep and batch size must be positive",
        ));
    }
    let gcfg = model.generator.config();
    let device = model.generator.device();
    tch::manual_seed(cfg.seed as i64);
    let (mut images, mut scores) = (Vec::new(), Vec::new());
    let mut made = 0usize;
    tch::no_grad(|| -> Result<()> {
        while made < cfg.candidates_per_class {
            let b = (cfg.candidates_per_class - made).min(cfg.batch_size as usize) as i64;
            let z = Tensor::f_randn([b, gcfg.latent_dim], (Kind::Float, device))?;
            let labels = model
                .condition
                .map(|c| Tensor::f_full([b], c, (Kind::Int64, device)))
                .transpose()?;
            let x = model.generator.forward_t(&z, labels.as_ref(), false)?;
            scores.push(
                model
                    .discriminator
                    .forward_t(&x, labels.as_ref(), false)?
                    .f_sigmoid()?,
            );
            images.push(x);
            made += b as usize;
        }
        Ok(())
    })?;
    let images = Tensor::f_cat(&images, 0)?;
    let d_scores = Vec::<f64>::try_from(&Tensor::f_cat(&scores, 0)?.f_to_kind(Kind::Double)?)?;
    let nn = nearest_rms_of(&images, real)?;
    let eligible = nn.iter().map(|&d| d >= cfg.min_nn_distance).collect();
    Ok(Candidates {
        images,
        d_scores,
        nn,
        eligible,
    })
}

impl Candidates {
    /// The eligible candidates, highest discriminator score first.
    pub fn by_discriminator(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.d_scores.len())
            .filter(|&i| self.eligible[i])
            .collect();
        order.sort_by(|&a, &b| self.d_scores[b].total_cmp(&self.d_scores[a]));
        order
    }

    /// Keeps the first `keep` of `order` (indices of eligible candidates, best first): the
    /// images `[K, C, S, S]` in that order and the selection's report.
    pub fn keep(
        &self,
        order: &[usize],
        keep: usize,
        class: &str,
    ) -> Result<(Tensor, ClassSynthReport)> {
        if let Some(&bad) = order
            .iter()
            .find(|&&i| !self.eligible.get(i).copied().unwrap_or(false))
        {
            return Err(GanError::Inputs {
                reason: format!("the selection names candidate {bad}, which is not eligible"),
            });
        }
        let order = &order[..keep.min(order.len())];
        let device = self.images.device();
        let idx: Vec<i64> = order.iter().map(|&i| i as i64).collect();
        let kept = self
            .images
            .f_index_select(0, &Tensor::f_from_slice(&idx)?.f_to_device(device)?)?;
        let mut kept_nn: Vec<f64> = order.iter().map(|&i| self.nn[i]).collect();
        kept_nn.sort_by(f64::total_cmp);
        let mean = |v: &[f64]| {
            if v.is_empty() {
                f64::NAN
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        let report = ClassSynthReport {
            class: class.into(),
            generated: self.d_scores.len(),
            near_copies: self.eligible.iter().filter(|e| !**e).count(),
            kept: order.len(),
            d_score_kept: mean(&order.iter().map(|&i| self.d_scores[i]).collect::<Vec<_>>()),
            d_score_all: mean(&self.d_scores),
            nn_mean: mean(&kept_nn),
            nn_min: kept_nn.first().copied().unwrap_or(f64::NAN),
            nn_median: kept_nn.get(kept_nn.len() / 2).copied().unwrap_or(f64::NAN),
        };
        Ok((kept, report))
    }
}

/// Generates, filters and selects images for one class by discriminator score; returns
/// `[K, C, S, S]` (best first) and the report. `real` are that class's training images, for
/// the near-copy check.
pub fn synthesize_class(
    model: ClassModel<'_>,
    real: &dyn ImageSource,
    class: &str,
    cfg: &SynthConfig,
) -> Result<(Tensor, ClassSynthReport)> {
    let c = generate_candidates(model, real, cfg)?;
    c.keep(&c.by_discriminator(), cfg.keep_per_class, class)
}

/// The most bytes of real images (as `f32`) one nearest-neighbour pass holds: a class larger
/// than this is compared a chunk at a time. Chunks are cut by this count alone, whether the
/// images are in memory or streamed, so both give the same distances.
const NEAREST_CHUNK_BYTES: i64 = 128 << 20;

/// RMS pixel distance from each image of `a` to its nearest image in `b`.
pub fn nearest_rms(a: &Tensor, b: &Tensor) -> Result<Vec<f64>> {
    let (da, db) = (a.size(), b.size());
    if db.len() != 4 || db[0] == 0 {
        return Err(shape_error(&da, &db));
    }
    let n = db[0];
    let rows = chunk_rows(&db);
    let chunks = (0..n)
        .step_by(rows as usize)
        .map(|i| Ok(b.narrow(0, i, rows.min(n - i))));
    nearest_over(a, &db, chunks)
}

/// [`nearest_rms`] to the images of any source (a stream read a chunk at a time): the real
/// images are never held whole. Equal to [`nearest_rms`] of the same images.
pub fn nearest_rms_of(a: &Tensor, real: &dyn ImageSource) -> Result<Vec<f64>> {
    let (c, (h, w)) = (real.channels(), real.image_size());
    let db = [real.len() as i64, c, h, w];
    if real.is_empty() {
        return Err(shape_error(&a.size(), &db));
    }
    let rows = chunk_rows(&db);
    let mut reader = real.reader()?;
    let chunks = sequential_batches(real.len(), rows as usize)
        .into_iter()
        .map(move |idx| Ok(reader.read(&idx)?));
    nearest_over(a, &db, chunks)
}

fn chunk_rows(db: &[i64]) -> i64 {
    let bytes = db[1..].iter().product::<i64>() * 4;
    (NEAREST_CHUNK_BYTES / bytes.max(1)).max(1)
}

fn shape_error(da: &[i64], db: &[i64]) -> GanError {
    GanError::Shape {
        what: "images for the nearest-neighbour distance",
        expected: "two non-empty [N, C, H, W] sets of one image size".into(),
        got: format!("{da:?} and {db:?}"),
    }
}

/// The nearest distance from each of `a` to the images of `chunks` (together of shape `db`):
/// the smallest over chunks of each chunk's smallest.
fn nearest_over(
    a: &Tensor,
    db: &[i64],
    chunks: impl Iterator<Item = Result<Tensor>>,
) -> Result<Vec<f64>> {
    let da = a.size();
    if da.len() != 4 || db.len() != 4 || da[1..] != db[1..] || db[0] == 0 {
        return Err(shape_error(&da, db));
    }
    let pixels = (da[1] * da[2] * da[3]) as f64;
    let fa = a.f_flatten(1, -1)?.f_to_kind(Kind::Float)?;
    let mut nearest: Option<Tensor> = None;
    for chunk in chunks {
        let fb = chunk?
            .f_to_device(a.device())?
            .f_flatten(1, -1)?
            .f_to_kind(Kind::Float)?;
        let d = Tensor::f_cdist(&fa, &fb, 2.0, None)?.f_amin(&[1i64][..], false)?;
        nearest = Some(match nearest {
            Some(m) => m.f_minimum(&d)?,
            None => d,
        });
    }
    let dist = nearest.ok_or_else(|| shape_error(&da, db))?;
    Ok(Vec::<f64>::try_from(
        &dist.f_div_scalar(pixels.sqrt())?.f_to_kind(Kind::Double)?,
    )?)
}

/// Builds the synthetic dataset from per-class selections (`(label, images)`), named
/// `synthetic-<class>-<i>.png`, with a description saying it is GAN output.
pub fn synthetic_dataset(
    parts: &[(i64, Tensor)],
    class_names: &[String],
    what: &str,
) -> Result<TensorDataset> {
    let mut names = Vec::new();
    let mut labels = Vec::new();
    for (label, imgs) in parts {
        let class = class_names
            .get(*label as usize)
            .ok_or_else(|| GanError::Inputs {
                reason: format!("label {label} has no class name"),
            })?;
        for i in 0..imgs.size()[0] {
            names.push(format!("synthetic-{class}-{i:04}.png"));
            labels.push(*label);
        }
    }
    let images = Tensor::f_cat(
        &parts
            .iter()
            .map(|(_, t)| t.shallow_clone())
            .collect::<Vec<_>>(),
        0,
    )?;
    let labels = Tensor::f_from_slice(&labels)?.f_to_device(images.device())?;
    Ok(TensorDataset::new(
        images,
        labels,
        names,
        class_names.to_vec(),
        format!("GAN-synthesized images ({what})"),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_distance_over_chunks_is_the_one_over_the_whole_set() {
        tch::manual_seed(11);
        let a = Tensor::rand([9, 2, 5, 5], (Kind::Float, tch::Device::Cpu));
        let b = Tensor::rand([14, 2, 5, 5], (Kind::Float, tch::Device::Cpu));
        let db = b.size();
        let whole = nearest_over(&a, &db, std::iter::once(Ok(b.shallow_clone()))).expect("nn");
        for rows in [1, 3, 5, 14] {
            let chunks = (0..14)
                .step_by(rows)
                .map(|i| Ok(b.narrow(0, i, (rows as i64).min(14 - i))));
            let chunked = nearest_over(&a, &db, chunks).expect("nn");
            for (x, y) in whole.iter().zip(&chunked) {
                assert!((x - y).abs() < 1e-6, "{rows} rows: {x} vs {y}");
            }
        }
        // the nearest of each is one of b's images: a copy of b[4] is at distance zero
        let copy = b.narrow(0, 4, 1);
        let d = nearest_rms(&copy, &b).expect("nn");
        assert!(d[0].abs() < 1e-3, "{d:?}");
        let empty = Tensor::zeros([0, 2, 5, 5], (Kind::Float, tch::Device::Cpu));
        assert!(matches!(
            nearest_rms(&a, &empty),
            Err(GanError::Shape { .. })
        ));
        let other = Tensor::zeros([3, 1, 5, 5], (Kind::Float, tch::Device::Cpu));
        assert!(matches!(
            nearest_rms(&a, &other),
            Err(GanError::Shape { .. })
        ));
    }
}
