//! Offline expansion: `k` augmented copies of every image, as the paper's "augmented dataset".

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use ganaug_data::{BatchOrder, TensorDataset};

use crate::{AugmentError, Pipeline, Result};

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
