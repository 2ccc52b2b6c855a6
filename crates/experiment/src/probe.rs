//! The linear-probe recipe, once: how a probe on frozen backbone features chooses its L2
//! strength, is fitted (training rows, augmented views, the validation images when asked) and
//! tested (mirror averaging). The experiment's probe cells, `ganaug train-probe` and `ganaug
//! probe-ablation` all fit through [`ProbeRecipe`], their features through a [`FeatureBank`].
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ganaug_experiment::probe::{frozen_backbone, ProbeRecipe, RealRows};
//! use ganaug_experiment::{Backbone, FeatureBank, ImageSet};
//! use ganaug_models::{ModelKind, ProbeConfig, ProbeSelection};
//!
//! let source = ganaug_data::DataSource::folder_or_phantom(Some("data/covid-ct".as_ref()))?;
//! let splits = source.load_spec(ganaug_data::ImageSpec::with_size(224), tch::Device::Cpu)?;
//! let model = frozen_backbone(ModelKind::EfficientNetLite0, 224, 3, &splits.train, tch::Device::Cpu)?;
//! let backbone = Backbone::new(ModelKind::EfficientNetLite0, 224, 3, &source.describe());
//! let probe = ProbeConfig { selection: ProbeSelection::KFold { k: 5 }, ..ProbeConfig::default() };
//! let recipe = ProbeRecipe { probe: &probe, views: 0, tta_flip: true, fit_on_val: true };
//! let mut bank = FeatureBank::default();
//! let mut get = |set: ImageSet, d: &ganaug_data::TensorDataset| {
//!     let images = d.images.shallow_clone();
//!     bank.get((backbone.clone(), set), &model, || Ok(images))
//! };
//! let (train, val) = (get(ImageSet::Train, &splits.train)?, get(ImageSet::Val, &splits.val)?);
//! let (ytr, yva) = (labels(&splits.train)?, labels(&splits.val)?);
//! let real = RealRows { train: (&train, &ytr), val: (&val, &yva), classes: 2 };
//! let fitted = recipe.fit(&mut bank, &backbone, &real, (vec![train.clone()], ytr.clone(), vec![1.0; ytr.len()]))?;
//! println!("C = {}", fitted.fit.probe.c);
//! # Ok(()) }
//! # use ganaug_experiment::probe::labels;
//! ```

use std::sync::Arc;

use ndarray::{concatenate, Array2, Axis};
use tch::Device;

use ganaug_data::{ImageSource, ResizePolicy, TensorDataset};
use ganaug_models::{
    fit_at_weighted_owned, fit_probe, out_of_fold_proba_blocks, pretrained_weights,
    select_by_kfold_blocks, youden_threshold, Classifier, LinearProbe, ModelConfig, ModelKind,
    ProbeChoice, ProbeConfig, ProbeFit, ProbeModel, ProbeModelInfo, ProbeSelection,
};

use crate::probe_cells::{Backbone, FeatureBank, Features, ImageSet};
use crate::CellError;

/// A cell's training rows: feature blocks stacked in order (shared with the [`FeatureBank`],
/// not copied: the fit stacks them once), labels and loss weights (1 for real rows).
pub type TrainingRows = (Vec<Features>, Vec<usize>, Vec<f64>);

/// How a probe is fitted and tested on frozen features.
#[derive(Debug, Clone, Copy)]
pub struct ProbeRecipe<'a> {
    /// The probe's settings: candidates for C, how C is chosen, the solver's limits.
    pub probe: &'a ProbeConfig,
    /// Augmented views per training image among the training rows: with k-fold selection the
    /// probe is fitted at C / (1 + views), so that the penalty keeps its weight against a loss
    /// averaged over 1 + views copies of each image.
    pub views: usize,
    /// Average each test image's probabilities with its mirror's.
    pub tta_flip: bool,
    /// Fit the final probe on the training rows and the validation images (k-fold selection).
    pub fit_on_val: bool,
}

/// The real features a probe's strength is chosen on: the training split's (only the real
/// images), the validation split's, and the number of classes.
#[derive(Debug, Clone, Copy)]
pub struct RealRows<'a> {
    /// The real training split's features and labels.
    pub train: (&'a Array2<f64>, &'a [usize]),
    /// The validation split's features and labels.
    pub val: (&'a Array2<f64>, &'a [usize]),
    /// Classes.
    pub classes: usize,
}

/// A fitted probe and the number of rows it was fitted on (training rows, and validation rows
/// when they are included).
#[derive(Debug, Clone)]
pub struct FittedProbe {
    /// The probe, its strength and the candidates' scores.
    pub fit: ProbeFit,
    /// Rows it was fitted on.
    pub rows: usize,
}

impl ProbeRecipe<'_> {
    /// The strength k-fold cross-validation chooses over the real training and validation
    /// features, with every candidate's held-out scores; computed once per backbone and kept in
    /// the bank.
    pub fn kfold_strength(
        &self,
        bank: &mut FeatureBank,
        backbone: &Backbone,
        real: &RealRows<'_>,
        k: usize,
    ) -> Result<(f64, Vec<ProbeChoice>), CellError> {
        if let Some(c) = bank.kfold.get(backbone) {
            return Ok(c.clone());
        }
        // the folds gather their rows from the two splits' features: no stacked copy
        let blocks = [real.train.0.view(), real.val.0.view()];
        let pooled_y: Vec<usize> = real.train.1.iter().chain(real.val.1).copied().collect();
        let chosen = select_by_kfold_blocks((&blocks, &pooled_y), real.classes, k, self.probe)?;
        bank.kfold.insert(backbone.clone(), chosen.clone());
        Ok(chosen)
    }

    /// The probe on `rows`: with validation selection, the candidate scoring best on the
    /// validation features; with k-fold selection, the bank's strength for this backbone
    /// (chosen on first use) divided by 1 + views, fitted on the rows (and the validation
    /// rows, `fit_on_val`) with their loss weights.
    pub fn fit(
        &self,
        bank: &mut FeatureBank,
        backbone: &Backbone,
        real: &RealRows<'_>,
        (x, y, w): TrainingRows,
    ) -> Result<FittedProbe, CellError> {
        let (val, val_y) = real.val;
        let ProbeSelection::KFold { k } = self.probe.selection else {
            let x = stack_blocks(x, None)?;
            let fit = fit_probe((&x, &y), (val, val_y), real.classes, self.probe)?;
            let rows = x.nrows();
            return Ok(FittedProbe { fit, rows });
        };
        let chosen = self.kfold_strength(bank, backbone, real, k)?;
        self.fit_at_strength(chosen, (real.val, real.classes), (x, y, w))
    }

    /// The k-fold part of [`ProbeRecipe::fit`] once the strength is chosen: fitted at
    /// C / (1 + views) on `rows` (and the validation rows, `fit_on_val`) with their weights.
    pub fn fit_at_strength(
        &self,
        (c, choices): (f64, Vec<ProbeChoice>),
        ((val, val_y), classes): ((&Array2<f64>, &[usize]), usize),
        (x, y, w): TrainingRows,
    ) -> Result<FittedProbe, CellError> {
        let rows: usize = x.iter().map(|b| b.nrows()).sum();
        if w.len() != rows || y.len() != rows {
            return Err(CellError::Features {
                what: "a probe's training rows, labels and weights",
            });
        }
        let weighted = w.iter().any(|v| *v != 1.0);
        // the blocks (and the validation rows) stacked once, standardised in place by the fit
        let (x, y, w) = if self.fit_on_val {
            let x = stack_blocks(x, Some(val))?;
            let mut w = w;
            w.resize(x.nrows(), 1.0);
            (x, y.iter().chain(val_y).copied().collect(), w)
        } else {
            (stack_blocks(x, None)?, y, w)
        };
        let c = c / (1 + self.views) as f64;
        let w = weighted.then_some(&w[..]);
        let rows = x.nrows();
        let probe = fit_at_weighted_owned(x, &y, w, classes, c, self.probe)?;
        Ok(FittedProbe {
            fit: ProbeFit { probe, choices },
            rows,
        })
    }

    /// Test probabilities: the probe on the test features, averaged with its probabilities on
    /// the mirrored test features when the recipe averages mirrors.
    pub fn test(
        &self,
        probe: &LinearProbe,
        test: &Array2<f64>,
        mirrored: Option<&Array2<f64>>,
    ) -> Result<Array2<f64>, CellError> {
        let mut probs = probe.predict_proba(test)?;
        if let (true, Some(m)) = (self.tta_flip, mirrored) {
            probs = (probs + probe.predict_proba(m)?) / 2.0;
        }
        Ok(probs)
    }

    /// The test split's features, and its mirror's when the recipe averages mirrors, from the
    /// bank.
    pub fn test_features(
        &self,
        bank: &mut FeatureBank,
        backbone: &Backbone,
        model: &Classifier,
        test: &dyn ImageSource,
    ) -> Result<(Features, Option<Features>), CellError> {
        let key = |set: ImageSet| (backbone.clone(), set);
        let f = bank.get_source(key(ImageSet::Test), model, test)?;
        let mirrored = match (self.tta_flip, test.in_memory()) {
            (false, _) => None,
            (true, Some(t)) => {
                let mirror = || Ok(t.images.f_flip([3])?);
                Some(bank.get(key(ImageSet::TestMirrored), model, mirror)?)
            }
            (true, None) => Some(bank.get_mapped(
                key(ImageSet::TestMirrored),
                model,
                test,
                |x| Ok(x.f_flip([3])?),
            )?),
        };
        Ok((f, mirrored))
    }
}

/// The ImageNet backbone `kind` at `size` with `stages` pooled stages, for `data`'s classes and
/// channels, its weights loaded (scripts/setup.sh installs them) and frozen.
pub fn frozen_backbone(
    kind: ModelKind,
    size: i64,
    stages: usize,
    data: &dyn ImageSource,
    device: Device,
) -> Result<Classifier, CellError> {
    let weights = pretrained_weights(kind).ok_or(CellError::Weights {
        needed_by: "a linear probe",
        model: kind.name(),
    })?;
    let cfg = ModelConfig {
        pooled_stages: stages,
        ..ModelConfig::new(kind, size).for_data(data.class_names().len() as i64, data.channels())
    };
    let mut backbone = Classifier::new(cfg, device)?;
    backbone.load_backbone_weights(&weights)?;
    backbone.set_backbone_trainable(false);
    Ok(backbone)
}

/// What [`probe_model`] needs besides the backbone and the data.
#[derive(Debug, Clone)]
pub struct ProbeModelOptions {
    /// Folds for choosing the strength and the threshold.
    pub folds: usize,
    /// Average each image's probabilities with its mirror's.
    pub tta_flip: bool,
    /// Fit the final probe on the training split only (otherwise training + validation).
    pub train_only: bool,
    /// The class the threshold applies to (index).
    pub positive: usize,
    /// How images were fitted into their square.
    pub resize: ResizePolicy,
    /// The data, in words (for the model file).
    pub source: String,
}

/// A probe model and how it was chosen.
#[derive(Debug)]
pub struct ProbeModelFit {
    /// The backbone with its probe, ready to save.
    pub model: ProbeModel,
    /// The strength chosen.
    pub c: f64,
    /// Every candidate's cross-validated scores.
    pub choices: Vec<ProbeChoice>,
}

/// `ganaug train-probe`'s recipe: C by k-fold cross-validation over the training and validation
/// features, an operating threshold (two classes) by Youden's J on the same folds' out-of-fold
/// probabilities, the probe fitted at C on training + validation (or training only), and the
/// backbone and probe made one [`ProbeModel`].
pub fn probe_model(
    backbone: Classifier,
    (train, val): (&dyn ImageSource, &dyn ImageSource),
    bank: &mut FeatureBank,
    key: &Backbone,
    opts: &ProbeModelOptions,
) -> Result<ProbeModelFit, CellError> {
    let classes = train.class_names().to_vec();
    let n = classes.len();
    let probe_cfg = ProbeConfig {
        selection: ProbeSelection::KFold { k: opts.folds },
        ..ProbeConfig::default()
    };
    let recipe = ProbeRecipe {
        probe: &probe_cfg,
        views: 0,
        tta_flip: opts.tta_flip,
        fit_on_val: !opts.train_only,
    };
    // used once here: not kept in the bank (a large set's features would be held twice)
    let ftr = bank.extract_once(&backbone, train)?;
    let fva = bank.extract_once(&backbone, val)?;
    let (ytr, yva) = (source_labels(train)?, source_labels(val)?);
    let real = RealRows {
        train: (&ftr, &ytr),
        val: (&fva, &yva),
        classes: n,
    };
    let (c, _) = recipe.kfold_strength(bank, key, &real, opts.folds)?;
    let threshold = if n == 2 {
        let blocks = [ftr.view(), fva.view()];
        let pooled_y: Vec<usize> = ytr.iter().chain(&yva).copied().collect();
        let oof = out_of_fold_proba_blocks((&blocks, &pooled_y), n, opts.folds, c, &probe_cfg)?;
        let how = format!(
            "Youden's J on {}-fold out-of-fold probabilities of the training + validation images",
            opts.folds
        );
        Some(youden_threshold(&pooled_y, &oof, opts.positive, how)?)
    } else {
        None
    };
    let chosen = recipe.kfold_strength(bank, key, &real, opts.folds)?;
    let rows = (vec![Arc::new(ftr)], ytr.clone(), vec![1.0; ytr.len()]);
    let fitted = recipe.fit_at_strength(chosen, ((&fva, &yva), n), rows)?;
    let what = if opts.train_only {
        "training split"
    } else {
        "training + validation splits"
    };
    let info = ProbeModelInfo {
        class_names: classes,
        resize: opts.resize,
        tta_flip: opts.tta_flip,
        threshold,
        trained_on: format!(
            "{} ({} images, {what}), C = {c} by {}-fold cross-validation",
            opts.source, fitted.rows, opts.folds
        ),
    };
    Ok(ProbeModelFit {
        model: ProbeModel::new(backbone, fitted.fit.probe, info)?,
        c,
        choices: fitted.fit.choices,
    })
}

/// The labels of a dataset, as class indices.
pub fn labels(d: &TensorDataset) -> Result<Vec<usize>, CellError> {
    source_labels(d)
}

/// The labels of any image source, as class indices.
pub fn source_labels(d: &dyn ImageSource) -> Result<Vec<usize>, CellError> {
    let l = Vec::<i64>::try_from(&d.labels().f_to_device(Device::Cpu)?)?;
    Ok(l.into_iter().map(|v| v as usize).collect())
}

/// `blocks` stacked in order, then `extra` when given: one matrix (a lone block the caller
/// alone holds is taken as it is, not copied).
fn stack_blocks(
    mut blocks: Vec<Features>,
    extra: Option<&Array2<f64>>,
) -> Result<Array2<f64>, CellError> {
    if blocks.len() == 1 && extra.is_none() {
        let only = blocks.remove(0);
        return Ok(Arc::try_unwrap(only).unwrap_or_else(|shared| (*shared).clone()));
    }
    let mut views: Vec<_> = blocks.iter().map(|b| b.view()).collect();
    views.extend(extra.map(|e| e.view()));
    concatenate(Axis(0), &views).map_err(|_| CellError::Features {
        what: "a probe's training rows",
    })
}
