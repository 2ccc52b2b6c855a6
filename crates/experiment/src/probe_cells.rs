//! Cells whose head is a linear probe on frozen ImageNet features: features of the real splits
//! and of each synthetic set are computed once per run and backbone and shared by every cell;
//! classic-augmentation copies (drawn per seed) get their own.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use ndarray::{concatenate, Array2, Axis};
use tch::{Device, Tensor};

use ganaug_augment::{expand, Pipeline};
use ganaug_data::{Splits, TensorDataset};
use ganaug_models::{
    fit_at_weighted, fit_probe, select_by_kfold, Classifier, ProbeChoice, ProbeConfig, ProbeFit,
    ProbeSelection,
};

use crate::cells::{build_model, CellSpec, Start, Trained};
use crate::gans::{GanStage, StageContext};
use crate::quality::feature_matrix;
use crate::{CellError, CheckedConfig, Result, Synthetic};

/// Backbone features computed once per run (or sweep), by model, size and image set.
#[derive(Default)]
pub struct FeatureBank {
    features: BTreeMap<String, Array2<f64>>,
    /// Strengths chosen by k-fold, by backbone and size.
    kfold: BTreeMap<String, (f64, Vec<ProbeChoice>)>,
    seconds: f64,
}

impl FeatureBank {
    fn get(
        &mut self,
        key: String,
        model: &Classifier,
        images: impl FnOnce() -> std::result::Result<Tensor, CellError>,
    ) -> std::result::Result<Array2<f64>, CellError> {
        if let Some(f) = self.features.get(&key) {
            return Ok(f.clone());
        }
        let t0 = Instant::now();
        let f = features(model, &images()?)?;
        self.seconds += t0.elapsed().as_secs_f64();
        self.features.insert(key, f.clone());
        Ok(f)
    }
}

/// Trains and tests a probe cell.
#[allow(clippy::too_many_arguments)] // the cell, its data, stage context, bank and options
pub(crate) fn probe_cell(
    spec: CellSpec<'_>,
    sp: &Splits,
    gans: &GanStage,
    cfg: &CheckedConfig,
    dir: &Path,
    ctx: &StageContext<'_>,
    bank: &mut FeatureBank,
    opts: &ProbeOptions<'_>,
) -> Result<Trained> {
    let (probe_cfg, tta_flip, fit_on_val) = (opts.probe, opts.tta_flip, opts.fit_on_val);
    let (model, _, start) = build_model(spec, &sp.train, ctx.device)?;
    if start == Start::Scratch {
        return Err(spec.fail("loading ImageNet weights")(CellError::Missing(
            "a probe needs the backbone's ImageNet weights file (see scripts/setup.sh)",
        )));
    }
    let before = bank.seconds;
    let run = |bank: &mut FeatureBank| -> std::result::Result<_, CellError> {
        let (x, y, w) = training_features(spec, sp, gans, cfg, &model, bank, opts.views)?;
        let key = |split: &str| format!("{}-{split}", backbone_key(spec));
        let val = bank.get(key("val"), &model, || Ok(sp.val.images.shallow_clone()))?;
        let test = bank.get(key("test"), &model, || Ok(sp.test.images.shallow_clone()))?;
        let flipped = if tta_flip {
            let mirror = || Ok(sp.test.images.f_flip([3])?);
            Some(bank.get(key("test-mirrored"), &model, mirror)?)
        } else {
            None
        };
        Ok((x, y, w, val, test, flipped))
    };
    let (x, y, w, val, test, flipped) = run(bank).map_err(spec.fail("features"))?;
    let weighted = w.iter().any(|v| *v != 1.0);
    let feature_seconds = bank.seconds - before;
    let classes = sp.train.class_names.len();
    let val_y = labels(&sp.val).map_err(spec.fail("features"))?;
    let fit = match probe_cfg.selection {
        ProbeSelection::Validation => fit_probe((&x, &y), (&val, &val_y), classes, probe_cfg),
        ProbeSelection::KFold { k } => {
            let key = backbone_key(spec);
            let chosen = match bank.kfold.get(&key) {
                Some(c) => Ok(c.clone()),
                None => {
                    // Real images only: the training split's features are the bank's first rows.
                    let real = bank.features[&format!("{key}-train")].clone();
                    let pooled = concatenate(Axis(0), &[real.view(), val.view()])
                        .map_err(|_| spec.fail("features")(CellError::Missing("widths differ")))?;
                    let train_y = labels(&sp.train).map_err(spec.fail("features"))?;
                    let pooled_y: Vec<usize> = train_y.iter().chain(&val_y).copied().collect();
                    select_by_kfold((&pooled, &pooled_y), classes, k, probe_cfg)
                }
            }
            .map_err(|e| spec.fail("choosing the probe's strength")(e.into()))?;
            bank.kfold.insert(key, chosen.clone());
            let (c, choices) = chosen;
            let (x, y, w) = if fit_on_val {
                let x = concatenate(Axis(0), &[x.view(), val.view()])
                    .map_err(|_| spec.fail("features")(CellError::Missing("widths differ")))?;
                let mut w = w.clone();
                w.resize(x.nrows(), 1.0);
                (x, y.iter().chain(&val_y).copied().collect(), w)
            } else {
                (x.clone(), y.clone(), w.clone())
            };
            let c = c / (1 + opts.views) as f64;
            let w = weighted.then_some(&w[..]);
            fit_at_weighted(&x, &y, w, classes, c, probe_cfg)
                .map(|probe| ProbeFit { probe, choices })
        }
    }
    .map_err(|e| spec.fail("fitting the probe")(e.into()))?;
    crate::report::write_json(&dir.join("probe.json"), &fit)?;
    let testing = |f: &Array2<f64>| {
        fit.probe
            .predict_proba(f)
            .map_err(|e| spec.fail("testing")(e.into()))
    };
    let mut probs = testing(&test)?;
    if let Some(m) = &flipped {
        probs = (probs + testing(m)?) / 2.0;
    }
    Ok(Trained {
        weights: "ImageNet (frozen backbone, linear probe)",
        train_images: x.nrows() + if fit_on_val { val.nrows() } else { 0 },
        labels: labels(&sp.test).map_err(spec.fail("testing"))?,
        probs,
        epochs: fit.probe.iterations as usize,
        best_epoch: 0,
        stop: format!(
            "probe converged, C = {}{}",
            fit.probe.c,
            if fit_on_val {
                ", fit on train + val"
            } else {
                ""
            }
        ),
        feature_seconds,
    })
}

/// A cell's training rows: features, labels and loss weights.
type TrainingRows = (Array2<f64>, Vec<usize>, Vec<f64>);

/// Features and labels of a cell's training set: the real training split and the scenario's
/// synthetic images from the bank, classic copies of both computed for this seed.
fn training_features(
    spec: CellSpec<'_>,
    sp: &Splits,
    gans: &GanStage,
    cfg: &CheckedConfig,
    model: &Classifier,
    bank: &mut FeatureBank,
    views: usize,
) -> std::result::Result<TrainingRows, CellError> {
    let key = |what: &str| format!("{}-{what}", backbone_key(spec));
    let mut set = sp.train.shallow_clone();
    let mut parts = vec![bank.get(key("train"), model, || Ok(sp.train.images.shallow_clone()))?];
    if let Some((which, synthetic)) = crate::cells::synthetic_images(spec, sp, gans, cfg)? {
        let name = match which {
            Synthetic::PerClass => "synthetic-per-class",
            Synthetic::Conditional => "synthetic-conditional",
        };
        // what defines the rows: the replica's GAN, how its images were chosen, how many
        let g = &cfg.gan;
        let what = (gans.key(which, spec.seed), &g.synth, g.select, g.mix.ratio);
        let name = format!(
            "{name}-{}",
            crate::hash_of(&what).map_err(|_| CellError::Missing("a feature key"))?
        );
        parts.push(bank.get(key(&name), model, || Ok(synthetic.images.shallow_clone()))?);
        set = set.concat(&synthetic)?;
    }
    let base = set.shallow_clone();
    // copies (views, classic) come in copy-major order: the base's weights, repeated
    let mut base_weights = vec![1.0; sp.train.len()];
    base_weights.resize(base.len(), cfg.gan.mix.weight);
    let mut weights = base_weights.clone();
    if views > 0 {
        let synthetic = spec.scenario.synthetic().map_or("real", |w| w.name());
        let name = format!("views{views}-{synthetic}-seed{}", spec.seed);
        // its own stream: not the classic copies' draws
        let copies = expand(&base, &probe_views()?, views, spec.seed ^ 0x76_69_65_77, 64)?;
        parts.push(bank.get(key(&name), model, || Ok(copies.images.shallow_clone()))?);
        set = set.concat(&copies)?;
        (0..views).for_each(|_| weights.extend_from_slice(&base_weights));
    }
    if spec.scenario.uses_classic() {
        let copies = expand(&base, &Pipeline::paper(), cfg.classic_copies, spec.seed, 64)?;
        let t0 = Instant::now();
        parts.push(features(model, &copies.images)?);
        bank.seconds += t0.elapsed().as_secs_f64();
        set = set.concat(&copies)?;
        (0..cfg.classic_copies).for_each(|_| weights.extend_from_slice(&base_weights));
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let x =
        concatenate(Axis(0), &views).map_err(|_| CellError::Missing("feature widths differ"))?;
    if weights.len() != x.nrows() {
        return Err(CellError::Missing(
            "the training rows and their weights differ in number",
        ));
    }
    Ok((x, labels(&set)?, weights))
}

/// How a probe cell fits: the probe's settings and the head's options.
pub(crate) struct ProbeOptions<'a> {
    pub(crate) probe: &'a ProbeConfig,
    pub(crate) tta_flip: bool,
    pub(crate) fit_on_val: bool,
    pub(crate) views: usize,
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
    train: &TensorDataset,
    val: &TensorDataset,
    probe_cfg: &ProbeConfig,
) -> std::result::Result<(), CellError> {
    let trainable = model.backbone_trainable();
    model.set_backbone_trainable(false);
    let (x, v) = (
        features(model, &train.images)?,
        features(model, &val.images)?,
    );
    model.set_backbone_trainable(trainable);
    let classes = train.class_names.len();
    let fit = fit_probe(
        (&x, &labels(train)?),
        (&v, &labels(val)?),
        classes,
        probe_cfg,
    )?;
    model.init_head_from_probe(&fit.probe)?;
    Ok(())
}

/// What the bank's features of a cell depend on besides the images: backbone, size, stages.
fn backbone_key(spec: CellSpec<'_>) -> String {
    let p = spec.plan;
    format!("{}-{}-stages{}", p.kind, p.image_size, p.pooled_stages)
}

fn labels(d: &TensorDataset) -> std::result::Result<Vec<usize>, CellError> {
    let l = Vec::<i64>::try_from(&d.labels.f_to_device(Device::Cpu)?)?;
    Ok(l.into_iter().map(|v| v as usize).collect())
}

fn features(model: &Classifier, images: &Tensor) -> std::result::Result<Array2<f64>, CellError> {
    feature_matrix(model, images, 64)
}
