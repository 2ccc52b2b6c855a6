//! Fits the cpu preset's best classifier — a linear probe on frozen EfficientNet-Lite features —
//! and saves it as one file that `ganaug predict` uses on new images. The L2 strength is chosen by
//! k-fold cross-validation over the training and validation images, the operating threshold by
//! Youden's J on the same folds' held-out probabilities; the final probe is fitted on training +
//! validation images and tested once on the test split.
//!
//! ```text
//! ganaug train-probe --data ../shared/data/covid-ct --out runs/probe
//! ganaug predict --model runs/probe/model.safetensors --images DIR --out predictions.csv
//! ```

use crate::common;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use ganaug::data::{ImageSpec, ResizePolicy, Splits, TensorDataset};
use ganaug::experiment::feature_matrix;
use ganaug::metrics::{roc_auc_ovr, Average, ConfusionMatrix};
use ganaug::models::{
    fit_at, out_of_fold_proba, pretrained_weights, select_by_kfold, youden_threshold, Classifier,
    ModelConfig, ModelKind, ProbeChoice, ProbeConfig, ProbeModel, ProbeModelInfo, ProbeSelection,
};
use ndarray::{concatenate, Array2, Axis};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Resize {
    Stretch,
    Pad,
}

#[derive(clap::Args, Debug)]
#[command(
    about = "Fit a linear probe on frozen EfficientNet-Lite features and save it for `ganaug predict`"
)]
pub struct Args {
    #[command(flatten)]
    common: common::CommonArgs,
    /// effnet-lite0, effnet-lite1 or effnet-lite2 (ImageNet weights from scripts/setup.sh).
    #[arg(long, default_value = "effnet-lite0")]
    model: String,
    /// Input side (default: the size the weights were trained at).
    #[arg(long)]
    size: Option<u32>,
    /// How images are fitted into the square.
    #[arg(long, value_enum, default_value = "pad")]
    resize: Resize,
    /// Pooled stages in the features (1–3).
    #[arg(long, default_value_t = 3)]
    stages: usize,
    /// Folds for choosing the strength and the threshold.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Do not average each image's probabilities with its mirror's.
    #[arg(long)]
    no_tta: bool,
    /// Fit the final probe on the training split only (default: training + validation).
    #[arg(long)]
    train_only: bool,
    /// The class whose probability the threshold applies to (default: the first class).
    #[arg(long)]
    positive: Option<String>,
    /// Replace an existing model file in the output folder.
    #[arg(long)]
    overwrite: bool,
}

fn labels(d: &TensorDataset) -> Result<Vec<usize>> {
    let l = Vec::<i64>::try_from(&d.labels.to_device(tch::Device::Cpu))?;
    Ok(l.into_iter().map(|v| v as usize).collect())
}

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    ganaug::init_process();
    let device = args.common.device()?;
    let out = args.common.out_or("runs/probe");
    let file = out.join("model.safetensors");
    if file.exists() && !args.overwrite {
        bail!(
            "{} exists: choose another --out or pass --overwrite",
            file.display()
        );
    }
    let kind = ModelKind::parse(&args.model)?;
    let Some(native) = kind.pretrained_size() else {
        bail!("--model {kind}: a probe needs an ImageNet backbone (effnet-lite0/1/2)");
    };
    let size = args.size.unwrap_or(native as u32);
    let resize = match args.resize {
        Resize::Stretch => ResizePolicy::Stretch,
        Resize::Pad => ResizePolicy::Pad,
    };
    let spec = ImageSpec {
        policy: resize,
        ..ImageSpec::with_size(size)
    };
    let source = args.common.source()?;
    let sp = source.load_spec(spec, device)?;
    let backbone = frozen_backbone(&args, kind, size, &sp.train, device)?;
    println!(
        "{kind} at {size}² ({resize:?}), {} pooled stage(s): {} features",
        args.stages,
        backbone.feature_dim()
    );
    let (model, fitted) = fit_probe_model(&args, backbone, &sp, resize, &source.describe())?;
    let test = test_once(&model, &sp.test, &fitted)?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    model.save(&file)?;
    let report = serde_json::json!({
        "commit": ganaug::experiment::BUILD_COMMIT,
        "model": kind.name(), "size": size, "resize": resize, "pooled_stages": args.stages,
        "c": fitted.c, "choices": fitted.choices, "threshold": model.info().threshold,
        "test": test,
    });
    ganaug::data::io::write_atomic(
        &out.join("probe_report.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    println!("wrote {} and probe_report.json", file.display());
    Ok(())
}

/// The ImageNet backbone of `kind` for the data, frozen.
fn frozen_backbone(
    args: &Args,
    kind: ModelKind,
    size: u32,
    train: &TensorDataset,
    device: tch::Device,
) -> Result<Classifier> {
    let Some(weights) = pretrained_weights(kind) else {
        bail!("no ImageNet weights for {kind}: run scripts/setup.sh");
    };
    let cfg = ModelConfig {
        pooled_stages: args.stages,
        n_classes: train.class_names.len() as i64,
        in_channels: train.channels(),
        ..ModelConfig::new(kind, i64::from(size))
    };
    let mut backbone = Classifier::new(cfg, device)?;
    backbone.load_backbone_weights(&weights)?;
    backbone.set_backbone_trainable(false);
    Ok(backbone)
}

/// How the probe was chosen: its C, the candidates' cross-validated scores, the positive class.
struct Fitted {
    c: f64,
    choices: Vec<ProbeChoice>,
    positive: usize,
}

/// C by k-fold cross-validation on the training + validation features, a decision threshold
/// from out-of-fold probabilities (two classes), the probe fitted at C, made a model.
fn fit_probe_model(
    args: &Args,
    backbone: Classifier,
    sp: &Splits,
    resize: ResizePolicy,
    source: &str,
) -> Result<(ProbeModel, Fitted)> {
    let classes = sp.train.class_names.clone();
    let positive = match &args.positive {
        None => 0,
        Some(p) => classes
            .iter()
            .position(|c| c == p)
            .with_context(|| format!("--positive {p:?}: the classes are {classes:?}"))?,
    };
    let feats = |d: &TensorDataset| feature_matrix(&backbone, &d.images, 32);
    let (ftr, fva) = (feats(&sp.train)?, feats(&sp.val)?);
    let (ytr, yva) = (labels(&sp.train)?, labels(&sp.val)?);
    let pooled = concatenate(Axis(0), &[ftr.view(), fva.view()])?;
    let pooled_y: Vec<usize> = ytr.iter().chain(&yva).copied().collect();
    let probe_cfg = ProbeConfig {
        selection: ProbeSelection::KFold { k: args.folds },
        ..ProbeConfig::default()
    };
    let n = classes.len();
    let (c, choices) = select_by_kfold((&pooled, &pooled_y), n, args.folds, &probe_cfg)?;
    for ch in &choices {
        println!(
            "  C = {:<6} held-out log-loss {:.4}, accuracy {:.3}",
            ch.c, ch.val_log_loss, ch.val_accuracy
        );
    }
    let threshold = if n == 2 {
        let oof = out_of_fold_proba((&pooled, &pooled_y), n, args.folds, c, &probe_cfg)?;
        let how = format!(
            "Youden's J on {}-fold out-of-fold probabilities of the training + validation images",
            args.folds
        );
        Some(youden_threshold(&pooled_y, &oof, positive, how)?)
    } else {
        None
    };
    let (x, y) = if args.train_only {
        (ftr, ytr)
    } else {
        (pooled, pooled_y)
    };
    let probe = fit_at(&x, &y, n, c, &probe_cfg)?;
    let info = ProbeModelInfo {
        class_names: classes,
        resize,
        tta_flip: !args.no_tta,
        threshold,
        trained_on: format!(
            "{source} ({} images{}), C = {c} by {}-fold cross-validation",
            x.nrows(),
            if args.train_only {
                ", training split"
            } else {
                ", training + validation splits"
            },
            args.folds
        ),
    };
    let model = ProbeModel::new(backbone, probe, info)?;
    let fitted = Fitted {
        c,
        choices,
        positive,
    };
    Ok((model, fitted))
}

/// One look at the test split: accuracy of the most probable class and at the threshold, AUC.
fn test_once(
    model: &ProbeModel,
    test: &TensorDataset,
    fitted: &Fitted,
) -> Result<serde_json::Value> {
    let (c, positive) = (fitted.c, fitted.positive);
    let yte = labels(test)?;
    let classes = &model.info().class_names;
    let n = classes.len();
    let probs: Array2<f64> = model.predict_proba(&test.images)?;
    let acc = ConfusionMatrix::from_probs(&yte, &probs)?.accuracy();
    let decided = model.decide(&probs);
    let at_threshold = ConfusionMatrix::from_predictions(&yte, &decided, n)?.accuracy();
    let average = if n == 2 {
        Average::Binary { positive }
    } else {
        Average::Macro
    };
    let auc = roc_auc_ovr(&yte, &probs, average)?;
    println!("C = {c}; test ({} images): accuracy {acc:.3} (most probable class), {at_threshold:.3} at the threshold, AUC {auc:.3}", yte.len());
    if let Some(t) = &model.info().threshold {
        println!(
            "threshold: {} when p({}) ≥ {:.3} (out-of-fold sensitivity {:.3}, specificity {:.3})",
            classes[t.positive], classes[t.positive], t.value, t.sensitivity, t.specificity
        );
    }
    Ok(serde_json::json!({
        "images": yte.len(), "accuracy": acc, "accuracy_at_threshold": at_threshold, "auc": auc,
    }))
}
