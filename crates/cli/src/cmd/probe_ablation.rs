//! Ablation of the frozen-feature linear probe: which piece of the recipe buys what. Each row
//! is one recipe (the paper's dense head by SGD instead of the probe, backbone, aspect policy,
//! pooled stages, augmented views, test-time mirror, fitting on train + validation), tested on the official test split with the same seeds; the
//! last rows average the probabilities of several backbones (an ensemble). Features of every
//! (backbone, size, policy, stages, view seed) are computed once and shared by the rows.
//!
//! The probe's L2 strength is chosen by k-fold cross-validation over the real training and
//! validation images (without views); a recipe with K views per image fits at C / (1 + K), so
//! that the penalty keeps its weight against the loss averaged over the 1 + K views.
//!
//! ```text
//! ganaug probe-ablation --data ../shared/data/covid-ct --seeds 5
//! ```

use crate::common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Context, Result};
use ganaug::augment::{expand, Pipeline};
use ganaug::data::{DataSource, ImageSpec, ResizePolicy, Splits, TensorDataset};
use ganaug::experiment::probe::{frozen_backbone, ProbeRecipe, RealRows};
use ganaug::experiment::{Backbone, FeatureBank, Features, ImageSet};
use ganaug::metrics::{roc_auc_ovr, summarize, Average, ConfusionMatrix};
use ganaug::models::{
    fit, predict, pretrained_weights, BackboneMode, Classifier, FitOptions, ModelConfig, ModelKind,
    ProbeConfig, ProbeSelection, TrainConfig,
};
use ndarray::Array2;
use serde::Serialize;
use tch::Device;

#[derive(clap::Args, Debug)]
#[command(
    about = "Ablation of the frozen-feature linear probe (backbones, views, TTA, pad vs stretch, multi-stage features, ensembles)"
)]
pub struct Args {
    #[command(flatten)]
    common: common::CommonArgs,
    /// Seeds (each redraws the augmented views).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// Augmented views per training image in the rows that use views.
    #[arg(long, default_value_t = 4)]
    views: usize,
    /// Folds for choosing the L2 strength.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Only the rows whose name contains this text.
    #[arg(long)]
    only: Option<String>,
}

/// One probe recipe.
#[derive(Debug, Clone, Serialize)]
struct Recipe {
    name: String,
    kind: ModelKind,
    policy: ResizePolicy,
    stages: usize,
    views: usize,
    tta_flip: bool,
    fit_on_val: bool,
    /// Instead of the probe: the paper's dense head trained by SGD under the paper's rules on
    /// the frozen features (what the cpu preset used before the probe).
    sgd_head: bool,
}

/// What a recipe scored, per seed.
#[derive(Debug, Serialize)]
struct Row {
    recipe: String,
    accuracy: Vec<f64>,
    auc: Vec<f64>,
    c: Vec<f64>,
    seconds: f64,
}

/// The splits and frozen backbones the recipes share, and their features (a [`FeatureBank`]
/// keyed by backbone, policy and stages).
struct Bank {
    source: DataSource,
    device: Device,
    splits: BTreeMap<String, Splits>,
    models: BTreeMap<Backbone, Classifier>,
    features: FeatureBank,
    probe: ProbeConfig,
    views: Pipeline,
}

impl Bank {
    fn backbone(r: &Recipe) -> Result<Backbone> {
        let size = r.kind.pretrained_size().context("not an ImageNet model")?;
        Ok(Backbone::new(
            r.kind,
            size,
            r.stages,
            &format!("{:?}", r.policy),
        ))
    }

    fn splits(&mut self, r: &Recipe) -> Result<&Splits> {
        let size = r.kind.pretrained_size().context("not an ImageNet model")?;
        let key = format!("{size}-{:?}", r.policy);
        if !self.splits.contains_key(&key) {
            let spec = ImageSpec {
                policy: r.policy,
                ..ImageSpec::with_size(size as u32)
            };
            let sp = self.source.load_spec(spec, self.device)?;
            self.splits.insert(key.clone(), sp);
        }
        Ok(&self.splits[&key])
    }

    /// The frozen backbone of `r` (loaded once).
    fn model(&mut self, r: &Recipe, data: &TensorDataset) -> Result<Backbone> {
        let key = Self::backbone(r)?;
        if !self.models.contains_key(&key) {
            let size = r.kind.pretrained_size().context("not an ImageNet model")?;
            let m = frozen_backbone(r.kind, size, r.stages, data, self.device)?;
            self.models.insert(key.clone(), m);
        }
        Ok(key)
    }

    fn features(&mut self, key: &Backbone, set: ImageSet, d: &TensorDataset) -> Result<Features> {
        let images = d.images.shallow_clone();
        let model = &self.models[key];
        Ok(self
            .features
            .get((key.clone(), set), model, || Ok(images))?)
    }

    /// Test probabilities of `r` with views drawn from `seed`, and the strength used.
    fn run(
        &mut self,
        r: &Recipe,
        seed: u64,
        folds: usize,
    ) -> Result<(Array2<f64>, Vec<usize>, f64)> {
        let sp = self.splits(r)?;
        let (train, val, test) = (
            sp.train.shallow_clone(),
            sp.val.shallow_clone(),
            sp.test.shallow_clone(),
        );
        if r.sgd_head {
            return self.sgd_head(r, seed, (&train, &val, &test));
        }
        let classes = train.class_names.len();
        let (ytr, yva, yte) = (labels(&train)?, labels(&val)?, labels(&test)?);
        let key = self.model(r, &train)?;
        let ftr = self.features(&key, ImageSet::Train, &train)?;
        let fva = self.features(&key, ImageSet::Val, &val)?;
        let probe = self.probe.clone();
        let recipe = ProbeRecipe {
            probe: &probe,
            views: r.views,
            tta_flip: r.tta_flip,
            fit_on_val: r.fit_on_val,
        };
        let (mut x, mut y) = (vec![ftr.clone()], ytr.clone());
        if r.views > 0 {
            // views of every image the probe is fitted on (validation images too, fit_on_val)
            let fit_set = if r.fit_on_val {
                train.concat(&val)?
            } else {
                train.shallow_clone()
            };
            let copies = expand(&fit_set, &self.views, r.views, seed, 64)?;
            let what = format!(
                "views{}-{}-seed{seed}",
                r.views,
                if r.fit_on_val { "trainval" } else { "train" }
            );
            let fv = self.features(&key, ImageSet::Named(what), &copies)?;
            x.push(fv);
            y.extend(labels(&copies)?);
        }
        let real = RealRows {
            train: (&ftr, &ytr),
            val: (&fva, &yva),
            classes,
        };
        let (c, _) = recipe.kfold_strength(&mut self.features, &key, &real, folds)?;
        let w = vec![1.0; y.len()];
        let fitted = recipe.fit(&mut self.features, &key, &real, (x, y, w))?;
        let model = &self.models[&key];
        let (fte, mirrored) = recipe.test_features(&mut self.features, &key, model, &test)?;
        let probs = recipe.test(&fitted.fit.probe, &fte, mirrored.as_deref())?;
        Ok((probs, yte, c))
    }
}

impl Bank {
    /// The paper's dense head on the frozen backbone: SGD 5e-3, batch 32, at most 100 epochs,
    /// stop at 95% training accuracy, best-validation-loss weights (seeded: initialisation and
    /// order).
    fn sgd_head(
        &mut self,
        r: &Recipe,
        seed: u64,
        (train, val, test): (&TensorDataset, &TensorDataset, &TensorDataset),
    ) -> Result<(Array2<f64>, Vec<usize>, f64)> {
        let size = r.kind.pretrained_size().context("not an ImageNet model")?;
        tch::manual_seed(seed as i64);
        let mcfg = ModelConfig::new(r.kind, size)
            .for_data(train.class_names.len() as i64, train.channels());
        let mut m = Classifier::new(mcfg, self.device)?;
        let w = pretrained_weights(r.kind).context("no ImageNet weights (run scripts/setup.sh)")?;
        m.load_backbone_weights(&w)?;
        let cfg = TrainConfig {
            max_epochs: 100,
            lr: 5e-3,
            backbone: BackboneMode::Frozen,
            seed,
            ..TrainConfig::default()
        };
        fit(&mut m, train, val, &cfg, &FitOptions::default())?;
        let p = predict(&m, test)?;
        Ok((p.probs, p.labels, f64::NAN))
    }
}

fn labels(d: &TensorDataset) -> Result<Vec<usize>> {
    Ok(ganaug::experiment::probe::labels(d)?)
}

fn scores(probs: &Array2<f64>, y: &[usize]) -> Result<(f64, f64)> {
    let acc = ConfusionMatrix::from_probs(y, probs)?.accuracy();
    let auc = roc_auc_ovr(y, probs, Average::Macro)?;
    Ok((acc, auc))
}

fn recipes(views: usize) -> Vec<Recipe> {
    let base = Recipe {
        name: String::new(),
        kind: ModelKind::EfficientNetLite0,
        policy: ResizePolicy::Stretch,
        stages: 1,
        views: 0,
        tta_flip: false,
        fit_on_val: false,
        sgd_head: false,
    };
    let r = |name: &str, f: &dyn Fn(&mut Recipe)| {
        let mut r = base.clone();
        r.name = name.into();
        f(&mut r);
        r
    };
    // every piece that helped alone and costs little: views are measured on top
    let all = |r: &mut Recipe| {
        r.policy = ResizePolicy::Pad;
        r.tta_flip = true;
        r.stages = 3;
        r.fit_on_val = true;
    };
    vec![
        r(
            "lite0 dense head by SGD instead of the probe (stretch, head features, train only)",
            &|r| r.sgd_head = true,
        ),
        r("lite0 base (stretch, head features, train only)", &|_| {}),
        r("lite0 + mirror TTA", &|r| r.tta_flip = true),
        r("lite0 + views", &|r| r.views = views),
        r("lite0 pad instead of stretch", &|r| {
            r.policy = ResizePolicy::Pad
        }),
        r("lite0 + 3 pooled stages", &|r| r.stages = 3),
        r("lite0 + fit on train+val", &|r| r.fit_on_val = true),
        r("lite0 + pad + stages + train+val + TTA", &all),
        r("lite0 + pad + stages + train+val + TTA + views", &|r| {
            all(r);
            r.views = views;
        }),
        r("lite0 + pad + stages + train+val + TTA, 2 stages", &|r| {
            all(r);
            r.stages = 2;
        }),
        r("lite1 base", &|r| r.kind = ModelKind::EfficientNetLite1),
        r("lite1 + pad + stages + train+val + TTA", &|r| {
            all(r);
            r.kind = ModelKind::EfficientNetLite1;
        }),
        r("lite2 base", &|r| r.kind = ModelKind::EfficientNetLite2),
        r("lite2 + pad + stages + train+val + TTA", &|r| {
            all(r);
            r.kind = ModelKind::EfficientNetLite2;
        }),
    ]
}

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    ganaug::init_process();
    let device = args.common.device()?;
    let out = args.common.out_or("runs/probe-ablation");
    let mut bank = Bank {
        source: args.common.source()?,
        device,
        splits: BTreeMap::new(),
        models: BTreeMap::new(),
        features: FeatureBank::with_batch(32),
        probe: ProbeConfig {
            selection: ProbeSelection::KFold { k: args.folds },
            ..ProbeConfig::default()
        },
        views: ganaug::experiment::probe_views()?,
    };
    let recipes: Vec<Recipe> = recipes(args.views)
        .into_iter()
        .filter(|r| {
            args.only
                .as_ref()
                .is_none_or(|o| r.name.contains(o.as_str()))
        })
        .collect();
    let mut rows = Vec::new();
    // per recipe, per seed: test probabilities (for the ensembles)
    let mut probs: BTreeMap<String, Vec<Array2<f64>>> = BTreeMap::new();
    let mut test_y = Vec::new();
    for r in &recipes {
        let (row, p, y) = run_recipe(&mut bank, r, &args)?;
        probs.insert(r.name.clone(), p);
        test_y = y;
        rows.push(row);
    }
    for (name, members) in ENSEMBLES {
        if let Some(row) = ensemble(name, members, &probs, &test_y)? {
            rows.push(row);
        }
    }
    write_outputs(&out, &args, &recipes, &rows)
}

/// One recipe over the seeds (one seed for a recipe without random views or SGD): its row,
/// its test probabilities per seed, the test labels.
fn run_recipe(
    bank: &mut Bank,
    r: &Recipe,
    args: &Args,
) -> Result<(Row, Vec<Array2<f64>>, Vec<usize>)> {
    let t0 = Instant::now();
    let mut row = Row {
        recipe: r.name.clone(),
        accuracy: vec![],
        auc: vec![],
        c: vec![],
        seconds: 0.0,
    };
    let seeds = if r.views > 0 || r.sgd_head {
        args.seeds
    } else {
        1
    };
    let (mut probs, mut test_y) = (Vec::new(), Vec::new());
    for seed in 0..seeds {
        let (p, y, c) = bank.run(r, seed, args.folds)?;
        let (acc, auc) = scores(&p, &y)?;
        row.accuracy.push(acc);
        row.auc.push(auc);
        row.c.push(c);
        probs.push(p);
        test_y = y;
    }
    row.seconds = t0.elapsed().as_secs_f64();
    println!(
        "{:<48} acc {:.3}  AUC {:.3}  C {}  ({:.0} s)",
        r.name,
        mean(&row.accuracy),
        mean(&row.auc),
        row.c[0],
        row.seconds
    );
    Ok((row, probs, test_y))
}

/// The ensembles: their members' probabilities averaged seed by seed.
const ENSEMBLES: [(&str, [&str; 3]); 2] = [
    (
        "ensemble lite0+1+2 base",
        [
            "lite0 base (stretch, head features, train only)",
            "lite1 base",
            "lite2 base",
        ],
    ),
    (
        "ensemble lite0+1+2, all pieces",
        [
            "lite0 + pad + stages + train+val + TTA",
            "lite1 + pad + stages + train+val + TTA",
            "lite2 + pad + stages + train+val + TTA",
        ],
    ),
];

/// An ensemble's row, `None` when one of its members was not run (`--only`).
fn ensemble(
    name: &str,
    members: [&str; 3],
    probs: &BTreeMap<String, Vec<Array2<f64>>>,
    test_y: &[usize],
) -> Result<Option<Row>> {
    let Some(parts) = members
        .iter()
        .map(|m| probs.get(*m))
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let seeds = parts.iter().map(|p| p.len()).max().unwrap_or(0);
    let mut row = Row {
        recipe: name.into(),
        accuracy: vec![],
        auc: vec![],
        c: vec![],
        seconds: 0.0,
    };
    for s in 0..seeds {
        let sum = parts
            .iter()
            .map(|p| &p[s.min(p.len() - 1)])
            .fold(None, |acc: Option<Array2<f64>>, p| {
                Some(acc.map_or_else(|| p.clone(), |a| a + p))
            });
        let avg = sum.context("no members")? / parts.len() as f64;
        let (acc, auc) = scores(&avg, test_y)?;
        row.accuracy.push(acc);
        row.auc.push(auc);
    }
    println!(
        "{:<48} acc {:.3}  AUC {:.3}",
        name,
        mean(&row.accuracy),
        mean(&row.auc)
    );
    Ok(Some(row))
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn write_outputs(
    out: &std::path::Path,
    args: &Args,
    recipes: &[Recipe],
    rows: &[Row],
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut md = String::new();
    writeln!(md, "# Linear-probe ablation\n")?;
    writeln!(
        md,
        "Commit {}, {} seeds (recipes without views are deterministic: one run), {} views per image, {}-fold choice of C over the real train + val images. Test split: {}.\n",
        ganaug::experiment::BUILD_COMMIT.unwrap_or("unknown"),
        args.seeds,
        args.views,
        args.folds,
        args.common.source()?.describe(),
    )?;
    writeln!(
        md,
        "| recipe | accuracy (mean ± sd) | AUC (mean ± sd) | C | seeds | time (s) |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|")?;
    for r in rows {
        let (a, u) = (summarize(&r.accuracy)?, summarize(&r.auc)?);
        writeln!(
            md,
            "| {} | {:.3} ± {:.3} | {:.3} ± {:.3} | {} | {} | {:.0} |",
            r.recipe,
            a.mean,
            a.sd.unwrap_or(0.0),
            u.mean,
            u.sd.unwrap_or(0.0),
            r.c.first()
                .filter(|c| c.is_finite())
                .map_or("—".into(), |c| c.to_string()),
            r.accuracy.len(),
            r.seconds
        )?;
    }
    let json = serde_json::json!({ "commit": ganaug::experiment::BUILD_COMMIT, "recipes": recipes, "rows": rows });
    ganaug::data::io::write_atomic(
        &out.join("ablation.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    ganaug::data::io::write_atomic(&out.join("ablation.md"), md.as_bytes())?;
    println!("\n{md}wrote {}", out.join("ablation.md").display());
    Ok(())
}
