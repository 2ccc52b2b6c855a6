//! The training set of a cell: the real training split, the scenario's synthetic images (or
//! the edit GAN's edits of the cell's own real images) at the model's size, and classic
//! augmentation copies of all of them.

use ganaug_augment::{expand, ExpandedSource, Pipeline};
use ganaug_data::{ConcatSource, ImageSource, TensorDataset};

use crate::cells::CellSpec;
use crate::gans::GanStage;
use crate::quality::resize;
use crate::{CellError, CheckedConfig, Result};

/// Calls `f` with the training set of a cell: the training split `train`, plus the scenario's
/// synthetic images at the model's size, plus classic-augmentation copies of all of them —
/// the images [`assemble_training_set`] stores, read from where they are (the real ones in
/// memory or streamed, the copies made when read).
pub(crate) fn with_training_set<T>(
    spec: CellSpec<'_>,
    train: &dyn ImageSource,
    gans: &GanStage,
    cfg: &CheckedConfig,
    f: impl FnOnce(&dyn ImageSource) -> Result<T>,
) -> Result<T> {
    let synthetic = synthetic_images(spec, train, gans, cfg)
        .map_err(spec.fail("adding synthetic images"))?
        .map(|(_, s)| s);
    let copies = if spec.scenario.uses_classic() {
        cfg.classic_copies
    } else {
        0
    };
    let assemble = |e: CellError| spec.fail("assembling the training set")(e);
    let mut parts: Vec<&dyn ImageSource> = vec![train];
    if let Some(s) = &synthetic {
        parts.push(s);
    }
    let base = ConcatSource::new(parts).map_err(|e| assemble(e.into()))?;
    if copies == 0 {
        return f(&base);
    }
    let extra = ExpandedSource::new(&base, &Pipeline::paper(), copies, spec.seed, 64)
        .map_err(|e| assemble(e.into()))?;
    let all = ConcatSource::new(vec![&base, &extra]).map_err(|e| assemble(e.into()))?;
    f(&all)
}

/// A training set as the experiment assembles a cell's: the real images, then the synthetic
/// ones (at the same side), then `copies` classic-augmentation copies of all of them (the
/// paper's flips and rotations, [`Pipeline::paper`], seeded by `seed`). `ganaug
/// train-classifier` assembles its training set with it too.
pub fn assemble_training_set(
    real: &TensorDataset,
    synthetic: Option<&TensorDataset>,
    copies: usize,
    seed: u64,
) -> std::result::Result<TensorDataset, CellError> {
    let train = match synthetic {
        Some(s) => real.concat(s)?,
        None => real.shallow_clone(),
    };
    if copies == 0 {
        return Ok(train);
    }
    let extra = expand(&train, &Pipeline::paper(), copies, seed, 64)?;
    Ok(train.concat(&extra)?)
}

/// The synthetic images a cell adds (its scenario's set, its replica, the mix's share), at the
/// model's size, with the set they come from; `None` when it adds none.
pub(crate) fn synthetic_images(
    spec: CellSpec<'_>,
    train: &dyn ImageSource,
    gans: &GanStage,
    cfg: &CheckedConfig,
) -> std::result::Result<Option<(crate::Synthetic, TensorDataset)>, CellError> {
    let Some(which) = spec.scenario.synthetic().filter(|w| w.is_images()) else {
        return Ok(None); // none, or vectors (a probe cell adds those itself)
    };
    if which == crate::Synthetic::Edits {
        let train = train.in_memory().ok_or(CellError::NeedsMemory {
            what: "the edit GAN's edits",
        })?;
        return Ok(Some((which, edited_images(spec, train, gans, cfg)?)));
    }
    let counts = ganaug_data::stream::class_counts(train)?;
    let s = gans.mixed(which, spec.seed, &cfg.gan.mix, &counts)?;
    if s.is_empty() {
        return Ok(None);
    }
    let images = TensorDataset::new(
        resize(&s.images, spec.plan.image_size)?,
        s.labels.shallow_clone(),
        s.names.clone(),
        s.class_names.clone(),
        s.description.clone(),
    )?;
    Ok(Some((which, images)))
}

/// The edit GAN's edits a cell adds, applied to the cell's own real training images (at its
/// side): the real detail of each edited image is the cell's, only the change is upsampled.
fn edited_images(
    spec: CellSpec<'_>,
    train: &TensorDataset,
    gans: &GanStage,
    cfg: &CheckedConfig,
) -> std::result::Result<TensorDataset, CellError> {
    let which = crate::Synthetic::Edits;
    let set = gans
        .set(which, spec.seed)
        .ok_or(CellError::NoSyntheticSet(which))?;
    let edits = gans
        .edits
        .get(&gans.replica(spec.seed))
        .ok_or(CellError::NoSyntheticSet(which))?;
    let rows: Vec<usize> = match gans.mixed_rows(set, &cfg.gan.mix, &train.class_counts())? {
        Some(rows) => rows.into_iter().map(|r| r as usize).collect(),
        None => (0..edits.sources.len()).collect(),
    };
    Ok(edits.materialize(train, &rows)?)
}
