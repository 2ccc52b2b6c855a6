//! The study's subsets: for each resample, one seeded permutation of each class's training and
//! validation images; a fraction `f` keeps the first `max(1, round(f × count))` of each, so the
//! subsets of one resample are nested across fractions (a resample's learning curve is one
//! growing set of images). The oracle's extra images are the next training images of the same
//! permutations, so they are never in the subset. Images are chosen by name, so the subset is
//! the same at every side.

use std::collections::{BTreeMap, HashMap};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use ganaug_data::{ImageSource, Splits, StreamSplits};

use crate::{CellError, ExperimentError, Result};

/// One resample's subset at one fraction, and the oracle's extra training images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subset {
    /// The fraction of each class's images kept.
    pub fraction: f64,
    /// The resample (its permutations' seed).
    pub resample: u64,
    /// Names of the training images kept.
    pub train: Vec<String>,
    /// Names of the validation images kept.
    pub val: Vec<String>,
    /// Names of the oracle's extra training images (outside the subset).
    pub extras: Vec<String>,
    /// BLAKE3 of the sorted names of the subset's training and validation images.
    pub digest: String,
}

impl Subset {
    /// Real images available to a learner: the subset's training and validation images.
    pub fn real_images(&self) -> usize {
        self.train.len() + self.val.len()
    }
}

/// Each class's image names of a split, in the split's order.
fn by_class(d: &dyn ImageSource) -> std::result::Result<Vec<Vec<String>>, CellError> {
    let labels = Vec::<i64>::try_from(&d.labels().f_to_device(tch::Device::Cpu)?)?;
    let mut out = vec![Vec::new(); d.class_names().len()];
    for (name, l) in d.names().iter().zip(labels) {
        if let Some(v) = out.get_mut(l as usize) {
            v.push(name.clone());
        }
    }
    Ok(out)
}

/// The permutation of one class of one split for a resample.
fn permuted(names: &[String], seed: u64, resample: u64, split: u64, class: u64) -> Vec<String> {
    let mut sorted = names.to_vec();
    sorted.sort();
    let mix = seed
        ^ resample.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ split.wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
        ^ class.wrapping_mul(0x1656_67b1_9e37_79f9);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(mix);
    sorted.shuffle(&mut rng);
    sorted
}

/// How many of `count` images a fraction keeps (at least one).
pub fn kept(fraction: f64, count: usize) -> usize {
    ((fraction * count as f64).round() as usize).clamp(1.min(count), count)
}

/// The subset of `pool` (the full splits, at any side) for `fraction` and `resample`, with the
/// oracle's `round(ratio × kept)` extra training images per class where the pool has them.
pub fn draw(pool: &Splits, fraction: f64, resample: u64, seed: u64, ratio: f64) -> Result<Subset> {
    draw_from([&pool.train, &pool.val], fraction, resample, seed, ratio)
}

/// [`draw`] from a pool's training and validation splits of any kind (in memory or streamed:
/// only their names and labels are read).
pub fn draw_from(
    [train, val]: [&dyn ImageSource; 2],
    fraction: f64,
    resample: u64,
    seed: u64,
    ratio: f64,
) -> Result<Subset> {
    let fail = |e: CellError| ExperimentError::Quality {
        what: "drawing a subset",
        source: Box::new(e),
    };
    let (train, val) = (by_class(train).map_err(fail)?, by_class(val).map_err(fail)?);
    let (mut t, mut v, mut extras) = (Vec::new(), Vec::new(), Vec::new());
    for (class, names) in train.iter().enumerate() {
        let p = permuted(names, seed, resample, 0, class as u64);
        let k = kept(fraction, p.len());
        let more = ((ratio * k as f64).round() as usize).min(p.len() - k);
        t.extend_from_slice(&p[..k]);
        extras.extend_from_slice(&p[k..k + more]);
    }
    for (class, names) in val.iter().enumerate() {
        let p = permuted(names, seed, resample, 1, class as u64);
        v.extend_from_slice(&p[..kept(fraction, p.len())]);
    }
    let digest = digest_of(&t, &v);
    Ok(Subset {
        fraction,
        resample,
        train: t,
        val: v,
        extras,
        digest,
    })
}

/// BLAKE3 of the sorted training and validation names.
pub fn digest_of(train: &[String], val: &[String]) -> String {
    let mut h = blake3::Hasher::new();
    for (split, names) in [("train", train), ("val", val)] {
        let mut sorted: Vec<&String> = names.iter().collect();
        sorted.sort();
        for n in sorted {
            h.update(split.as_bytes());
            h.update(b"/");
            h.update(n.as_bytes());
            h.update(b"\n");
        }
    }
    h.finalize().to_hex().to_string()
}

/// The rows of `d` holding `names` (in `d`'s order).
fn rows_of(d: &dyn ImageSource, names: &[String]) -> Vec<i64> {
    let wanted: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
    (0..d.names().len())
        .filter(|&i| wanted.contains(d.names()[i].as_str()))
        .map(|i| i as i64)
        .collect()
}

/// Each side's splits restricted to a subset by `restrict` (given a side's splits and the rows
/// of its training and validation splits to keep), every name checked to be found at that side.
fn restrict_sides<S>(
    sides: &BTreeMap<i64, S>,
    subset: &Subset,
    extra: &[String],
    restrict: impl Fn(&S, &[i64], &[i64]) -> Result<S>,
    splits_of: impl Fn(&S) -> (&dyn ImageSource, &dyn ImageSource),
) -> Result<BTreeMap<i64, S>> {
    let mut train_names = subset.train.clone();
    train_names.extend_from_slice(extra);
    let mut out = BTreeMap::new();
    for (&side, sp) in sides {
        let (train, val) = splits_of(sp);
        let (t, v) = (rows_of(train, &train_names), rows_of(val, &subset.val));
        if t.len() != train_names.len() || v.len() != subset.val.len() {
            return Err(ExperimentError::config(
                "data",
                format!("the images at {side}² are not the images the subset was drawn from"),
            ));
        }
        out.insert(side, restrict(sp, &t, &v)?);
    }
    Ok(out)
}

/// The splits at every side restricted to a subset: its training images (and `extra` ones:
/// the oracle's), its validation images, the whole test split.
pub fn subset_splits(
    splits: &BTreeMap<i64, Splits>,
    subset: &Subset,
    extra: &[String],
) -> Result<BTreeMap<i64, Splits>> {
    let restrict = |sp: &Splits, t: &[i64], v: &[i64]| -> Result<Splits> {
        Ok(Splits {
            train: sp.train.subset(t)?,
            val: sp.val.subset(v)?,
            test: sp.test.shallow_clone(),
            report: ganaug_data::LoadReport::default(),
        })
    };
    restrict_sides(splits, subset, extra, restrict, |sp| (&sp.train, &sp.val))
}

/// [`subset_splits`] of streamed splits: the same images, still streamed (the subset's
/// streams read the same cache rows; nothing is decoded into memory).
pub fn subset_streams(
    streams: &BTreeMap<i64, StreamSplits>,
    subset: &Subset,
    extra: &[String],
) -> Result<BTreeMap<i64, StreamSplits>> {
    let restrict = |sp: &StreamSplits, t: &[i64], v: &[i64]| -> Result<StreamSplits> {
        Ok(StreamSplits {
            train: sp.train.subset(t)?,
            val: sp.val.subset(v)?,
            test: sp.test.shallow_clone(),
            report: ganaug_data::LoadReport::default(),
        })
    };
    restrict_sides(streams, subset, extra, restrict, |sp| (&sp.train, &sp.val))
}

/// How many images of each class a subset's split holds (for the report).
pub fn class_counts(names: &[String], pool: &dyn ImageSource) -> Vec<usize> {
    let labels: HashMap<&str, usize> = pool
        .names()
        .iter()
        .zip(Vec::<i64>::try_from(&pool.labels().to_device(tch::Device::Cpu)).unwrap_or_default())
        .map(|(n, l)| (n.as_str(), l as usize))
        .collect();
    let mut counts = vec![0; pool.class_names().len()];
    for n in names {
        if let Some(&l) = labels.get(n.as_str()) {
            counts[l] += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use ganaug_data::{phantom_splits, PhantomConfig};

    #[test]
    fn subsets_are_stratified_nested_seeded_and_the_oracle_lies_outside() {
        let pool = phantom_splits(&PhantomConfig::tiny(16, 20, 0), tch::Device::Cpu).expect("data");
        let counts = pool.train.class_counts();
        let small = draw(&pool, 0.25, 0, 7, 1.0).expect("draw");
        let large = draw(&pool, 0.5, 0, 7, 1.0).expect("draw");
        // stratified: each class keeps round(f × count)
        let got = class_counts(&small.train, &pool.train);
        let want: Vec<usize> = counts.iter().map(|&c| kept(0.25, c)).collect();
        assert_eq!(got, want);
        // nested within a resample
        assert!(small.train.iter().all(|n| large.train.contains(n)));
        assert!(small.val.iter().all(|n| large.val.contains(n)));
        // seeded: the same draw again, another resample differs
        assert_eq!(draw(&pool, 0.25, 0, 7, 1.0).expect("draw"), small);
        assert_ne!(
            draw(&pool, 0.25, 1, 7, 1.0).expect("draw").train,
            small.train
        );
        // the oracle's extras: as many as kept, none of them in the subset
        assert_eq!(small.extras.len(), small.train.len());
        assert!(small.extras.iter().all(|n| !small.train.contains(n)));
        // at the whole data there is nothing left to add
        let all = draw(&pool, 1.0, 0, 7, 1.0).expect("draw");
        assert!(all.extras.is_empty() && all.train.len() == pool.train.len());
    }
}
