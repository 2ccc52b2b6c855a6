//! Offline expansion: `k` augmented copies of every image, as the paper's "augmented dataset".

use std::collections::HashMap;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Tensor};

use ganaug_data::{BatchOrder, ImageReader, ImageSource, Prepared, TensorDataset};

use crate::{AugmentError, Draws, Pipeline, Result};

/// `scan.png` → `scan~aug2.png`: the copy number goes before the extension so that exported
/// files keep distinct names and their format.
fn copy_name(name: &str, k: usize) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.contains('/') => {
            format!("{stem}~aug{k}.{ext}")
        }
        _ => format!("{name}~aug{k}"),
    }
}

/// Returns `copies` augmented versions of every image of `ds` (copy-major order), named
/// `<stem>~aug<k>.<ext>`. Copy `k` draws from its own ChaCha8 stream of `seed`, so copies are
/// independent and each is reproducible on its own. The original images are not included:
/// `ds.concat(&expanded)` gives original + augmented.
pub fn expand(
    ds: &TensorDataset,
    pipeline: &Pipeline,
    copies: usize,
    seed: u64,
    batch_size: usize,
) -> Result<TensorDataset> {
    if copies == 0 {
        return Err(AugmentError::config("copies", "must be at least 1"));
    }
    let mut images = Vec::new();
    let mut labels = Vec::new();
    let mut names = Vec::new();
    for k in 0..copies {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(k as u64);
        for batch in ds.batches(batch_size, BatchOrder::Sequential, false)? {
            images.push(pipeline.apply(&batch.images, &mut rng)?);
            labels.push(batch.labels);
            names.extend(
                batch
                    .indices
                    .iter()
                    .map(|&i| copy_name(&ds.names[i as usize], k + 1)),
            );
        }
    }
    let description = format!(
        "{} (x{copies} augmented copies, seed {seed})",
        ds.description
    );
    Ok(TensorDataset::new(
        Tensor::f_cat(&images, 0)?,
        Tensor::f_cat(&labels, 0)?,
        names,
        ds.class_names.clone(),
        description,
    )?)
}

/// [`expand`]'s copies of a source's images made when they are read, not stored: position
/// `k·n + i` is copy `k + 1` of image `i`, with exactly the values `expand(…, copies, seed,
/// batch_size)` gives it (its own batch's random draws, replayed from the random stream's
/// state at that batch's start, kept per batch). Memory: the labels, the names and one random
/// state per batch and copy — not the images; each read augments only the images read.
pub struct ExpandedSource<'a> {
    base: &'a dyn ImageSource,
    pipeline: Arc<Pipeline>,
    batch_size: usize,
    /// The random stream at the start of each batch of each copy (copy-major).
    starts: Arc<Vec<ChaCha8Rng>>,
    labels: Tensor,
    names: Vec<String>,
    description: String,
}

impl std::fmt::Debug for ExpandedSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpandedSource")
            .field("images", &self.names.len())
            .field("description", &self.description)
            .finish()
    }
}

impl<'a> ExpandedSource<'a> {
    /// `copies` copies of every image of `base`, as [`expand`] with the same arguments.
    pub fn new(
        base: &'a dyn ImageSource,
        pipeline: &Pipeline,
        copies: usize,
        seed: u64,
        batch_size: usize,
    ) -> Result<Self> {
        if copies == 0 {
            return Err(AugmentError::config("copies", "must be at least 1"));
        }
        if batch_size == 0 {
            return Err(AugmentError::config("batch_size", "must be positive"));
        }
        pipeline.check_clamp()?;
        let n = base.len();
        let (h, w) = base.image_size();
        let c = base.channels();
        let mut starts = Vec::with_capacity(copies * n.div_ceil(batch_size));
        for k in 0..copies {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(k as u64);
            for at in (0..n).step_by(batch_size) {
                starts.push(rng.clone());
                let rows = (n - at).min(batch_size) as i64;
                pipeline.draw([rows, c, h, w], &mut rng);
            }
        }
        let labels = base.labels().f_to_device(Device::Cpu)?;
        let names = (0..copies)
            .flat_map(|k| base.names().iter().map(move |name| copy_name(name, k + 1)))
            .collect();
        Ok(ExpandedSource {
            base,
            pipeline: Arc::new(pipeline.clone()),
            batch_size,
            starts: Arc::new(starts),
            labels: labels.f_repeat([copies as i64])?,
            names,
            description: format!(
                "{} (x{copies} augmented copies, seed {seed})",
                base.description()
            ),
        })
    }
}

impl ImageSource for ExpandedSource<'_> {
    fn len(&self) -> usize {
        self.names.len()
    }
    fn labels(&self) -> &Tensor {
        &self.labels
    }
    fn names(&self) -> &[String] {
        &self.names
    }
    fn class_names(&self) -> &[String] {
        self.base.class_names()
    }
    fn channels(&self) -> i64 {
        self.base.channels()
    }
    fn image_size(&self) -> (i64, i64) {
        self.base.image_size()
    }
    fn description(&self) -> &str {
        &self.description
    }
    fn reader(&self) -> ganaug_data::Result<Box<dyn ImageReader>> {
        let (h, w) = self.base.image_size();
        Ok(Box::new(ExpandedReader {
            base: self.base.reader()?,
            pipeline: self.pipeline.clone(),
            batch_size: self.batch_size,
            starts: self.starts.clone(),
            copies: self.names.len() / self.base.len().max(1),
            n: self.base.len(),
            shape: [self.base.channels(), h, w],
        }))
    }
}

struct ExpandedReader {
    base: Box<dyn ImageReader>,
    pipeline: Arc<Pipeline>,
    batch_size: usize,
    starts: Arc<Vec<ChaCha8Rng>>,
    copies: usize,
    n: usize,
    shape: [i64; 3],
}

impl ExpandedReader {
    /// The originals' positions and the draws of the copies at `indices`.
    fn locate(&self, indices: &[i64]) -> ganaug_data::Result<(Vec<i64>, Draws)> {
        let total = self.n * self.copies;
        let blocks = self.n.div_ceil(self.batch_size);
        let mut drawn: HashMap<usize, Draws> = HashMap::new();
        let mut picks = Vec::with_capacity(indices.len());
        let mut originals = Vec::with_capacity(indices.len());
        for &j in indices {
            let j = usize::try_from(j)
                .ok()
                .filter(|&j| j < total)
                .ok_or_else(|| data_error("indices", format!("index {j} out of 0..{total}")))?;
            let (k, i) = (j / self.n, j % self.n);
            let block = k * blocks + i / self.batch_size;
            drawn.entry(block).or_insert_with(|| {
                let start = i / self.batch_size * self.batch_size;
                let rows = (self.n - start).min(self.batch_size) as i64;
                let [c, h, w] = self.shape;
                self.pipeline
                    .draw([rows, c, h, w], &mut self.starts[block].clone())
            });
            picks.push((block, i % self.batch_size));
            originals.push(i as i64);
        }
        let picks: Vec<(&Draws, usize)> = picks.iter().map(|&(b, r)| (&drawn[&b], r)).collect();
        let draws = Draws::gather(&picks).map_err(to_data_error)?;
        Ok((originals, draws))
    }
}

fn data_error(field: &'static str, reason: String) -> ganaug_data::DataError {
    ganaug_data::DataError::Config { field, reason }
}

fn to_data_error(e: AugmentError) -> ganaug_data::DataError {
    data_error("augmented copies", e.to_string())
}

impl ImageReader for ExpandedReader {
    fn read(&mut self, indices: &[i64]) -> ganaug_data::Result<Tensor> {
        self.prepare(indices)?.finish()
    }

    fn prepare(&mut self, indices: &[i64]) -> ganaug_data::Result<Prepared> {
        let (originals, draws) = self.locate(indices)?;
        let images = self.base.prepare(&originals)?;
        let pipeline = self.pipeline.clone();
        Ok(Prepared::deferred(move || {
            pipeline
                .apply_drawn(&images.finish()?, &draws)
                .map_err(to_data_error)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ganaug_data::{phantom_splits, PhantomConfig};
    use tch::Device;

    #[test]
    fn expansion_makes_independent_reproducible_copies() {
        let ds = phantom_splits(&PhantomConfig::tiny(16, 3, 0), Device::Cpu)
            .expect("phantom")
            .train;
        let p = Pipeline::paper();
        let a = expand(&ds, &p, 2, 9, 4).expect("expand");
        assert_eq!(a.len(), 12);
        assert_eq!(a.class_counts(), vec![6, 6]);
        assert_eq!(a.names[0], format!("{}~aug1", ds.names[0]));
        assert_eq!(a.names[6], format!("{}~aug2", ds.names[0]));
        assert_eq!(copy_name("a.b.png", 3), "a.b~aug3.png");
        let b = expand(&ds, &p, 2, 9, 4).expect("expand");
        assert!(a.images.equal(&b.images));
        assert!(
            !a.images.narrow(0, 0, 6).equal(&a.images.narrow(0, 6, 6)),
            "copies must differ"
        );
        assert!(expand(&ds, &p, 0, 9, 4).is_err());
    }
}
