//! The training set of a cell: the real training split, the scenario's synthetic images (or
//! the edit GAN's edits of the cell's own real images) at the model's size, and classic
//! augmentation copies of all of them.

use ganaug_augment::{expand, ExpandedSource, Pipeline};
use ganaug_data::stream::{ImageReader, Prepared};
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
    with_assembled(
        (train, synthetic.as_deref()),
        (copies, spec.seed),
        spec.fail("assembling the training set"),
        f,
    )
}

/// Calls `f` with a training set as the experiment assembles a cell's, read from where its
/// parts are (in memory or streamed; nothing copied): the `real` images, then the `synthetic`
/// ones (at the same side), then `copies` classic-augmentation copies of all of them (the
/// paper's flips and rotations, [`Pipeline::paper`], seeded by `seed`), made when read — the
/// images [`assemble_training_set`] stores. `fail` turns an assembly error (parts that do not
/// agree) into `f`'s error. `ganaug train-classifier` reads its training set through it.
pub fn with_assembled<T, E>(
    (real, synthetic): (&dyn ImageSource, Option<&dyn ImageSource>),
    (copies, seed): (usize, u64),
    fail: impl FnOnce(CellError) -> E,
    f: impl FnOnce(&dyn ImageSource) -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let mut parts: Vec<&dyn ImageSource> = vec![real];
    parts.extend(synthetic);
    let base = match ConcatSource::new(parts) {
        Ok(b) => b,
        Err(e) => return Err(fail(e.into())),
    };
    if copies == 0 {
        return f(&base);
    }
    let extra = match ExpandedSource::new(&base, &Pipeline::paper(), copies, seed, 64) {
        Ok(x) => x,
        Err(e) => return Err(fail(e.into())),
    };
    match ConcatSource::new(vec![&base, &extra]) {
        Ok(all) => f(&all),
        Err(e) => Err(fail(e.into())),
    }
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

/// A cell's synthetic images, as a source, with the set they come from (edits borrow the
/// cell's real training images they are made of).
pub(crate) type SyntheticImages<'a> = (crate::Synthetic, Box<dyn ImageSource + 'a>);

/// The synthetic images a cell adds (its scenario's set, its replica, the mix's share), at the
/// model's size, with the set they come from; `None` when it adds none. A set at another side
/// than the model's is resized as it is read ([`Resized`]), never held whole at the model's
/// side.
pub(crate) fn synthetic_images<'a>(
    spec: CellSpec<'_>,
    train: &'a dyn ImageSource,
    gans: &GanStage,
    cfg: &CheckedConfig,
) -> std::result::Result<Option<SyntheticImages<'a>>, CellError> {
    let Some(which) = spec.scenario.synthetic().filter(|w| w.is_images()) else {
        return Ok(None); // none, or vectors (a probe cell adds those itself)
    };
    if which == crate::Synthetic::Edits {
        return Ok(Some((
            which,
            Box::new(edited_images(spec, train, gans, cfg)?),
        )));
    }
    let counts = ganaug_data::stream::class_counts(train)?;
    let s = gans.mixed(which, spec.seed, &cfg.gan.mix, &counts)?;
    if s.is_empty() {
        return Ok(None);
    }
    let size = spec.plan.image_size;
    if s.image_size() == (size, size) {
        return Ok(Some((which, Box::new(s))));
    }
    Ok(Some((which, Box::new(Resized { set: s, size }))))
}

/// A set read at side `size`: each batch read is resized as [`resize`] resizes a whole set
/// (image by image, so to the same values), so that only the batch is ever held at the new
/// side — a synthetic set of thousands of images at 224² would otherwise be gigabytes.
pub(crate) struct Resized {
    /// The images at their own side.
    pub set: ganaug_data::AnySource,
    /// The side read.
    pub size: i64,
}

impl ImageSource for Resized {
    fn len(&self) -> usize {
        self.set.len()
    }
    fn labels(&self) -> &tch::Tensor {
        self.set.labels()
    }
    fn names(&self) -> &[String] {
        self.set.names()
    }
    fn class_names(&self) -> &[String] {
        self.set.class_names()
    }
    fn channels(&self) -> i64 {
        self.set.channels()
    }
    fn image_size(&self) -> (i64, i64) {
        (self.size, self.size)
    }
    fn description(&self) -> &str {
        self.set.description()
    }
    fn reader(&self) -> ganaug_data::Result<Box<dyn ImageReader>> {
        Ok(Box::new(ResizedReader {
            inner: ImageSource::reader(&self.set)?,
            size: self.size,
        }))
    }
}

struct ResizedReader {
    inner: Box<dyn ImageReader>,
    size: i64,
}

impl ImageReader for ResizedReader {
    fn read(&mut self, indices: &[i64]) -> ganaug_data::Result<tch::Tensor> {
        Ok(resize(&self.inner.read(indices)?, self.size)?)
    }

    fn prepare(&mut self, indices: &[i64]) -> ganaug_data::Result<Prepared> {
        let (read, size) = (self.inner.prepare(indices)?, self.size);
        Ok(Prepared::deferred(move || {
            Ok(resize(&read.finish()?, size)?)
        }))
    }
}

/// The edit GAN's edits a cell adds, applied to the cell's own real training images (at its
/// side): the real detail of each edited image is the cell's, only the change is upsampled.
fn edited_images<'a>(
    spec: CellSpec<'_>,
    train: &'a dyn ImageSource,
    gans: &GanStage,
    cfg: &CheckedConfig,
) -> std::result::Result<ganaug_gan::EditSource<'a>, CellError> {
    let which = crate::Synthetic::Edits;
    let set = gans
        .set(which, spec.seed)
        .ok_or(CellError::NoSyntheticSet(which))?;
    let edits = gans
        .edits
        .get(&gans.replica(spec.seed))
        .ok_or(CellError::NoSyntheticSet(which))?;
    let counts = ganaug_data::stream::class_counts(train)?;
    let rows: Vec<usize> = match gans.mixed_rows(set, &cfg.gan.mix, &counts)? {
        Some(rows) => rows.into_iter().map(|r| r as usize).collect(),
        None => (0..edits.sources.len()).collect(),
    };
    Ok(edits.source(train, &rows)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, Tensor};

    /// Read through [`Resized`], any batch of a set is that batch of the whole set resized:
    /// the same values bit for bit, from memory and from a set file, read ahead or not.
    #[test]
    fn a_resized_read_is_the_whole_set_resized() {
        tch::manual_seed(0);
        let images = Tensor::rand([7, 3, 16, 16], (Kind::Float, Device::Cpu));
        let labels = Tensor::from_slice(&[0i64, 1, 0, 1, 1, 0, 0]);
        let names = (0..7).map(|i| format!("s{i}")).collect();
        let classes = vec!["a".to_string(), "b".to_string()];
        let set = TensorDataset::new(images, labels, names, classes, "set").expect("set");
        let whole = resize(&set.images, 40).expect("resize");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("set.safetensors");
        ganaug_data::stream::write_set_file(&file, &set).expect("write");
        let stream = ganaug_data::stream::open_set_file(&file).expect("open");
        for inner in [set.shallow_clone().into(), stream.into()] {
            let view = Resized {
                set: inner,
                size: 40,
            };
            assert_eq!(view.image_size(), (40, 40));
            assert_eq!(view.len(), 7);
            let picks = [5i64, 0, 3];
            let want = whole.index_select(0, &Tensor::from_slice(&picks));
            let mut reader = view.reader().expect("reader");
            assert!(reader.read(&picks).expect("read").equal(&want));
            let prepared = reader.prepare(&picks).expect("prepare");
            assert!(prepared.finish().expect("finish").equal(&want));
        }
    }
}
