//! Cells whose head is a linear probe on frozen ImageNet features: features of the real splits
//! and of each synthetic set are computed once per run and backbone and shared by every cell;
//! classic-augmentation copies (drawn per seed) get their own.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ndarray::{concatenate, Array2, Axis};
use tch::Tensor;

use ganaug_augment::{ExpandedSource, Pipeline};
use ganaug_data::{ConcatSource, ImageSource};
use ganaug_models::{fit_at_anchored, fit_probe, Classifier, ModelKind, ProbeChoice, ProbeConfig};

use crate::cells::{build_model, CellSpec, CellTrainer, Experiment, Trained};
use crate::layout::Layout;
use crate::probe::{ProbeRecipe, RealRows, TrainingRows};
use crate::quality::{feature_matrix, feature_matrix_of};
use crate::results::CellStop;
use crate::sources::SplitSources;
use crate::{CellError, Result, Synthetic};

/// What a backbone's features depend on besides the images: the network, its input side, its
/// pooled stages, and the data the images come from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Backbone {
    kind: ModelKind,
    image_size: i64,
    pooled_stages: usize,
    /// The fingerprint of the data the real splits come from.
    data: String,
}

impl Backbone {
    /// The backbone `kind` at input side `image_size` with `pooled_stages` pooled stages, on
    /// the data `data` names (a fingerprint or description: features of other data, or the
    /// same images read another way, must have another name).
    pub fn new(kind: ModelKind, image_size: i64, pooled_stages: usize, data: &str) -> Self {
        Backbone {
            kind,
            image_size,
            pooled_stages,
            data: data.into(),
        }
    }

    /// The same backbone on other data (a study's test split is the whole data's).
    pub(crate) fn on(&self, data: &str) -> Self {
        Backbone {
            data: data.into(),
            ..self.clone()
        }
    }

    pub(crate) fn of(spec: CellSpec<'_>, data_id: &str) -> Self {
        let p = spec.plan;
        Backbone {
            kind: p.kind,
            image_size: p.image_size,
            pooled_stages: p.pooled_stages,
            data: data_id.into(),
        }
    }
}

/// An image set whose features the bank keeps.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ImageSet {
    /// The real training split.
    Train,
    /// The real validation split.
    Val,
    /// The real test split.
    Test,
    /// The test split mirrored (test-time averaging).
    TestMirrored,
    /// A synthetic set as cells use it: the GAN's key, how its images were chosen and how
    /// many (hashed).
    Synthetic {
        /// Which set.
        which: Synthetic,
        /// The hash of what defines its rows.
        key: String,
    },
    /// Augmented views of a cell's base images (drawn per seed).
    Views {
        /// Views per image.
        views: usize,
        /// The synthetic set in the base, if any.
        synthetic: Option<Synthetic>,
        /// The seed.
        seed: u64,
    },
    /// Any other set, by a name its caller keeps unique (e.g. `views4-trainval-seed0`).
    Named(String),
}

/// A set's features as the bank hands them out: shared with the bank, not copied (at 30,000
/// images a copy of a backbone's features is hundreds of MB).
pub type Features = Arc<Array2<f64>>;

/// Backbone features computed once per run (or sweep), by backbone and image set.
pub struct FeatureBank {
    features: BTreeMap<(Backbone, ImageSet), Features>,
    /// Strengths chosen by k-fold, by backbone.
    pub(crate) kfold: BTreeMap<Backbone, (f64, Vec<ProbeChoice>)>,
    seconds: f64,
    /// Images per forward pass.
    batch: i64,
    /// Feature-GAN sets, by backbone, replica and GAN seed.
    pub(crate) feature_sets:
        BTreeMap<crate::fgan_stage::FeatureSetKey, crate::fgan_stage::FeatureSet>,
    /// The feature GANs trained (or reused) so far.
    pub(crate) gans: Vec<crate::GanSummary>,
    /// Their sets' summaries.
    pub(crate) synthetic: Vec<crate::SynthSummary>,
}

impl Default for FeatureBank {
    fn default() -> Self {
        FeatureBank {
            features: BTreeMap::new(),
            kfold: BTreeMap::new(),
            seconds: 0.0,
            batch: 64,
            feature_sets: BTreeMap::new(),
            gans: Vec::new(),
            synthetic: Vec::new(),
        }
    }
}

impl FeatureBank {
    /// An empty bank extracting `batch` images per forward pass (the experiment's: 64).
    pub fn with_batch(batch: i64) -> Self {
        FeatureBank {
            batch: batch.max(1),
            ..FeatureBank::default()
        }
    }

    /// The features of `key`'s images: computed by `model` from `source` batch by batch on
    /// first use (a stream is never held whole), the kept ones (shared) after.
    pub fn get_source(
        &mut self,
        key: (Backbone, ImageSet),
        model: &Classifier,
        source: &dyn ganaug_data::ImageSource,
    ) -> std::result::Result<Features, CellError> {
        if let Some(f) = self.features.get(&key) {
            return Ok(Arc::clone(f));
        }
        let t0 = Instant::now();
        let f = crate::quality::feature_matrix_of(model, source, self.batch)?;
        self.pass_done(t0);
        let f = Arc::new(f);
        self.features.insert(key, Arc::clone(&f));
        Ok(f)
    }

    /// The features of `key`'s images: `source`'s taken through `map` batch by batch on first
    /// use (a stream's mirror images), the kept copy after.
    pub fn get_mapped(
        &mut self,
        key: (Backbone, ImageSet),
        model: &Classifier,
        source: &dyn ganaug_data::ImageSource,
        map: impl FnMut(Tensor) -> std::result::Result<Tensor, CellError>,
    ) -> std::result::Result<Features, CellError> {
        if let Some(f) = self.features.get(&key) {
            return Ok(Arc::clone(f));
        }
        let t0 = Instant::now();
        let f = crate::quality::feature_matrix_mapped(model, source, self.batch, map)?;
        self.pass_done(t0);
        let f = Arc::new(f);
        self.features.insert(key, Arc::clone(&f));
        Ok(f)
    }

    /// The features of `source`'s images computed by `model` batch by batch, not kept (for
    /// sets used once: a second copy of a large set's features is memory a run may not have).
    pub fn extract_once(
        &mut self,
        model: &Classifier,
        source: &dyn ganaug_data::ImageSource,
    ) -> std::result::Result<Array2<f64>, CellError> {
        let t0 = Instant::now();
        let f = crate::quality::feature_matrix_of(model, source, self.batch)?;
        self.pass_done(t0);
        Ok(f)
    }

    /// Counts a feature pass's time. Its activations are freed by now: the memory the
    /// allocator kept of them goes back, so that a pass's peak does not stay under the fits
    /// that follow.
    fn pass_done(&mut self, t0: Instant) {
        self.seconds += t0.elapsed().as_secs_f64();
        ganaug_ops::release_freed_memory();
    }

    /// Seconds spent extracting features so far.
    pub fn seconds(&self) -> f64 {
        self.seconds
    }

    /// The features of `key`'s images: computed by `model` from `images()` on first use, the
    /// kept copy after.
    pub fn get(
        &mut self,
        key: (Backbone, ImageSet),
        model: &Classifier,
        images: impl FnOnce() -> std::result::Result<Tensor, CellError>,
    ) -> std::result::Result<Features, CellError> {
        if let Some(f) = self.features.get(&key) {
            return Ok(Arc::clone(f));
        }
        let t0 = Instant::now();
        let f = feature_matrix(model, &images()?, self.batch)?;
        self.pass_done(t0);
        let f = Arc::new(f);
        self.features.insert(key, Arc::clone(&f));
        Ok(f)
    }
}

/// The real splits' features a probe cell needs besides its training rows.
struct RealFeatures {
    val: Features,
    test: Features,
    mirrored: Option<Features>,
}

/// How a probe cell fits: the recipe (the probe's settings and the head's options).
pub(crate) struct ProbeCell<'a>(pub(crate) ProbeRecipe<'a>);

impl CellTrainer for ProbeCell<'_> {
    fn train(&self, exp: &mut Experiment<'_>, spec: CellSpec<'_>, dir: &Path) -> Result<Trained> {
        let recipe = &self.0;
        let sp = exp.sources(spec.plan.image_size);
        let (model, _, start) = build_model(spec, sp.train, exp.ctx.device)?;
        start.require_imagenet(spec, "a linear probe")?;
        let before = exp.bank.seconds;
        let backbone = Backbone::of(spec, exp.data_id);
        let (x, y, w) = self
            .training_rows(exp, spec, &model, &backbone)
            .map_err(spec.fail("features"))?;
        let real = self
            .real_features(exp, sp, &model, &backbone)
            .map_err(spec.fail("features"))?;
        let feature_seconds = exp.bank.seconds - before;
        let two_step = exp.cfg.gan.mix.probe_two_step && spec.scenario.synthetic().is_some();
        // the training rows' first block is the real training split's features (the bank's)
        let rows_err = || CellError::Features {
            what: "a cell's training rows",
        };
        let train_x = x.first().cloned().ok_or_else(rows_err);
        let train_x = train_x.map_err(spec.fail("features"))?;
        let train_y = y.get(..train_x.nrows()).ok_or_else(rows_err);
        let train_y = train_y.map_err(spec.fail("features"))?.to_vec();
        let real_y = (
            source_labels(sp.val).map_err(spec.fail("features"))?,
            sp.train.class_names().len(),
        );
        let real_rows = two_step.then(|| self.real_rows(sp, &train_x, &train_y, &real.val));
        let rows = RealRows {
            train: (&train_x, &train_y),
            val: (&real.val, &real_y.0),
            classes: real_y.1,
        };
        let mut fit = recipe
            .fit(exp.bank, &backbone, &rows, (x, y, w))
            .map_err(spec.fail("fitting the probe"))?;
        if let Some(rows) = real_rows {
            let (xr, yr) = rows.map_err(spec.fail("features"))?;
            let anchored = fit_at_anchored(&xr, &yr, fit.fit.probe.c, &fit.fit.probe, recipe.probe)
                .map_err(|e| spec.fail("fitting the probe on real rows")(e.into()))?;
            fit.rows = xr.nrows();
            fit.fit.probe = anchored;
        }
        crate::report::write_json(&Layout::probe_file(dir), &fit.fit)?;
        let probs = recipe
            .test(&fit.fit.probe, &real.test, real.mirrored.as_deref())
            .map_err(spec.fail("testing"))?;
        Ok(Trained {
            weights: "ImageNet (frozen backbone, linear probe)",
            train_images: fit.rows,
            labels: source_labels(sp.test).map_err(spec.fail("testing"))?,
            probs,
            epochs: fit.fit.probe.iterations as usize,
            best_epoch: 0,
            stop: CellStop::Probe {
                probe_c: fit.fit.probe.c,
                fit_on_val: recipe.fit_on_val,
                two_step,
            },
            feature_seconds,
        })
    }
}

impl ProbeCell<'_> {
    /// The real rows of a cell's training rows (the training split's features) and, when it
    /// fits on them, the validation rows, as one matrix.
    fn real_rows(
        &self,
        sp: SplitSources<'_>,
        train: &Array2<f64>,
        y: &[usize],
        val: &Array2<f64>,
    ) -> std::result::Result<(Array2<f64>, Vec<usize>), CellError> {
        let mut xr = train.clone();
        let mut yr = y.to_vec();
        if self.0.fit_on_val {
            xr = concatenate(Axis(0), &[xr.view(), val.view()]).map_err(|_| {
                CellError::Features {
                    what: "training and validation features",
                }
            })?;
            yr.extend(source_labels(sp.val)?);
        }
        Ok((xr, yr))
    }

    fn real_features(
        &self,
        exp: &mut Experiment<'_>,
        sp: SplitSources<'_>,
        model: &Classifier,
        backbone: &Backbone,
    ) -> std::result::Result<RealFeatures, CellError> {
        let bank = &mut *exp.bank;
        let val = bank.get_source((backbone.clone(), ImageSet::Val), model, sp.val)?;
        // the test split is the same for every subset of a study: its features are shared
        let test_backbone = backbone.on(exp.test_data_id);
        let (test, mirrored) = self.0.test_features(bank, &test_backbone, model, sp.test)?;
        Ok(RealFeatures {
            val,
            test,
            mirrored,
        })
    }

    /// Features, labels and loss weights of a cell's training set, as blocks in order: the real
    /// training split's (always the first) and the scenario's synthetic images' from the bank,
    /// augmented views and classic copies of both computed for this seed (made as they are
    /// read, not stored). The blocks are the bank's, not copies.
    fn training_rows(
        &self,
        exp: &mut Experiment<'_>,
        spec: CellSpec<'_>,
        model: &Classifier,
        backbone: &Backbone,
    ) -> std::result::Result<TrainingRows, CellError> {
        let (cfg, gans) = (exp.cfg, exp.gans);
        let sp = exp.sources(spec.plan.image_size);
        let bank = &mut *exp.bank;
        let key = |set: ImageSet| (backbone.clone(), set);
        let mut parts = vec![bank.get_source(key(ImageSet::Train), model, sp.train)?];
        let synthetic = crate::training_set::synthetic_images(spec, sp.train, gans, cfg)?;
        let mut base_parts: Vec<&dyn ImageSource> = vec![sp.train];
        if let Some((which, synthetic)) = &synthetic {
            let hash = synthetic_set_hash(*which, spec.seed, gans, cfg)?;
            let set_key = key(ImageSet::Synthetic {
                which: *which,
                key: hash,
            });
            parts.push(bank.get_source(set_key, model, &**synthetic)?);
            base_parts.push(&**synthetic);
        }
        let base = ConcatSource::new(base_parts)?;
        let base_y = source_labels(&base)?;
        // copies (views, classic) come in copy-major order: the base's weights, repeated
        let mut base_weights = vec![1.0; sp.train.len()];
        base_weights.resize(base.len(), cfg.gan.mix.weight);
        let mut vector_labels = Vec::new();
        if spec.scenario.synthetic() == Some(Synthetic::Features) {
            let key = crate::fgan_stage::feature_set_key(backbone, gans.replica(spec.seed), cfg);
            let fs = bank
                .feature_sets
                .get(&key)
                .ok_or(CellError::NoSyntheticSet(Synthetic::Features))?;
            let counts = ganaug_data::stream::class_counts(sp.train)?;
            let rows = vector_rows(fs, &cfg.gan.mix, &counts)?;
            parts.push(Arc::new(fs.rows.select(Axis(0), &rows)));
            vector_labels = rows.iter().map(|&r| fs.labels[r]).collect();
            base_weights.resize(base.len() + rows.len(), cfg.gan.mix.weight);
        }
        let mut weights = base_weights.clone();
        let mut copies = 0;
        if self.0.views > 0 {
            let views = self.0.views;
            let view_key = key(ImageSet::Views {
                views,
                synthetic: spec.scenario.synthetic(),
                seed: spec.seed,
            });
            // its own stream: not the classic copies' draws
            let seed = spec.seed ^ 0x76_69_65_77;
            let made = ExpandedSource::new(&base, &probe_views()?, views, seed, 64)?;
            parts.push(bank.get_source(view_key, model, &made)?);
            (0..views).for_each(|_| weights.extend_from_slice(&base_weights));
            copies += views;
        }
        if spec.scenario.uses_classic() {
            let made =
                ExpandedSource::new(&base, &Pipeline::paper(), cfg.classic_copies, spec.seed, 64)?;
            parts.push(Arc::new(bank.extract_once(model, &made)?));
            (0..cfg.classic_copies).for_each(|_| weights.extend_from_slice(&base_weights));
            copies += cfg.classic_copies;
        }
        let rows: usize = parts.iter().map(|p| p.nrows()).sum();
        if weights.len() != rows {
            return Err(CellError::Features {
                what: "a cell's training rows and their weights",
            });
        }
        let mut y = base_y.clone();
        y.extend(vector_labels);
        (0..copies).for_each(|_| y.extend_from_slice(&base_y));
        Ok((parts, y, weights))
    }
}

/// What defines the feature rows of a cell's synthetic images: the replica's GAN, how its
/// images were chosen, how many.
fn synthetic_set_hash(
    which: Synthetic,
    seed: u64,
    gans: &crate::GanStage,
    cfg: &crate::CheckedConfig,
) -> std::result::Result<String, CellError> {
    let g = &cfg.gan;
    let what = (gans.key(which, seed), &g.synth, g.select, g.mix.ratio);
    crate::hash_of(&what).map_err(|e| match e {
        crate::ExperimentError::Json { source, .. } => CellError::Key(source),
        _ => CellError::Features {
            what: "a synthetic set's key",
        },
    })
}

/// The rows of a feature GAN's set a cell adds: with a `mix.ratio`, the first `round(ratio ×
/// count)` vectors of each class; otherwise all of them.
fn vector_rows(
    fs: &crate::fgan_stage::FeatureSet,
    mix: &crate::SynthMix,
    real_counts: &[usize],
) -> std::result::Result<Vec<usize>, CellError> {
    let Some(ratio) = mix.ratio else {
        return Ok((0..fs.labels.len()).collect());
    };
    let mut keep = Vec::new();
    for (label, &count) in real_counts.iter().enumerate() {
        let want = (ratio * count as f64).round() as usize;
        let have: Vec<usize> = (0..fs.labels.len())
            .filter(|&i| fs.labels[i] == label)
            .collect();
        if want > have.len() {
            return Err(CellError::MixRatio {
                ratio,
                class: format!("class {label}"),
                wanted: want,
                real: count,
                kept: have.len(),
            });
        }
        keep.extend_from_slice(&have[..want]);
    }
    Ok(keep)
}

/// The augmented views of a probe's training images: a random resized crop keeping 70–100% of
/// the area (aspect 3:4–4:3), a rotation up to ±10° and a mirror with p = 0.5.
pub fn probe_views() -> std::result::Result<Pipeline, ganaug_augment::AugmentError> {
    use ganaug_augment::{Step, Transform};
    Pipeline::new(vec![
        Step {
            transform: Transform::ResizedCrop {
                area: (0.7, 1.0),
                ratio: (3.0 / 4.0, 4.0 / 3.0),
            },
            p: 1.0,
        },
        Step {
            transform: Transform::Rotate { max_degrees: 10.0 },
            p: 1.0,
        },
        Step {
            transform: Transform::HFlip,
            p: 0.5,
        },
    ])
}

/// LP-FT's first stage: a probe on `model`'s frozen features of `train`, strength chosen on
/// `val`, copied into the model's linear head.
pub(crate) fn start_head_from_probe(
    model: &mut Classifier,
    train: &dyn ImageSource,
    val: &dyn ImageSource,
    probe_cfg: &ProbeConfig,
) -> std::result::Result<(), CellError> {
    let trainable = model.backbone_trainable();
    model.set_backbone_trainable(false);
    let (x, v) = (
        feature_matrix_of(model, train, 64)?,
        feature_matrix_of(model, val, 64)?,
    );
    model.set_backbone_trainable(trainable);
    let classes = train.class_names().len();
    let fit = fit_probe(
        (&x, &source_labels(train)?),
        (&v, &source_labels(val)?),
        classes,
        probe_cfg,
    )?;
    model.init_head_from_probe(&fit.probe)?;
    Ok(())
}

pub(crate) use crate::probe::source_labels;
