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
use ganaug::data::{ImageSource, ImageSpec, ResizePolicy, Split};
use ganaug::experiment::probe::{frozen_backbone, probe_model, source_labels, ProbeModelOptions};
use ganaug::experiment::{Backbone, FeatureBank};
use ganaug::metrics::{roc_auc_ovr, Average, ConfusionMatrix};
use ganaug::models::{ModelKind, ProbeModel};
use ndarray::Array2;

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
    #[command(flatten)]
    stream: common::StreamArgs,
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
    let (kind, size, resize) = backbone_input(&args)?;
    let spec = ImageSpec {
        policy: resize,
        ..ImageSpec::with_size(size)
    };
    let source = args.common.source()?;
    let (sp, decision) = source.open_spec(spec, device, args.stream.stream)?;
    println!("{decision}");
    let (train, val, test) = (
        sp.get(Split::Train),
        sp.get(Split::Val),
        sp.get(Split::Test),
    );
    let positive = positive_class(&args, train.class_names())?;
    let backbone = frozen_backbone(kind, i64::from(size), args.stages, train, device)?;
    println!(
        "{kind} at {size}² ({resize:?}), {} pooled stage(s): {} features",
        args.stages,
        backbone.feature_dim()
    );
    let opts = ProbeModelOptions {
        folds: args.folds,
        tta_flip: !args.no_tta,
        train_only: args.train_only,
        positive,
        resize,
        source: source.describe(),
    };
    let key = Backbone::new(kind, i64::from(size), args.stages, &format!("{resize:?}"));
    let mut bank = FeatureBank::with_batch(32);
    let fitted = probe_model(backbone, (train, val), &mut bank, &key, &opts)?;
    for ch in &fitted.choices {
        println!(
            "  C = {:<6} held-out log-loss {:.4}, accuracy {:.3}",
            ch.c, ch.val_log_loss, ch.val_accuracy
        );
    }
    let test = test_once(&fitted.model, test, fitted.c, positive)?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    fitted.model.save(&file)?;
    let report = serde_json::json!({
        "commit": ganaug::experiment::BUILD_COMMIT,
        "model": kind.name(), "size": size, "resize": resize, "pooled_stages": args.stages,
        "c": fitted.c, "choices": fitted.choices, "threshold": fitted.model.info().threshold,
        "test": test,
    });
    let json = serde_json::to_string_pretty(&report)?;
    ganaug::data::io::write_atomic(&out.join("probe_report.json"), json.as_bytes())?;
    println!("wrote {} and probe_report.json", file.display());
    Ok(())
}

/// The backbone, its input side and the resize policy the arguments ask for.
fn backbone_input(args: &Args) -> Result<(ModelKind, u32, ResizePolicy)> {
    let kind = ModelKind::parse(&args.model)?;
    let Some(native) = kind.pretrained_size() else {
        bail!("--model {kind}: a probe needs an ImageNet backbone (effnet-lite0/1/2)");
    };
    let resize = match args.resize {
        Resize::Stretch => ResizePolicy::Stretch,
        Resize::Pad => ResizePolicy::Pad,
    };
    Ok((kind, args.size.unwrap_or(native as u32), resize))
}

/// The index of `--positive` among the classes (the first class without it).
fn positive_class(args: &Args, classes: &[String]) -> Result<usize> {
    let Some(p) = &args.positive else {
        return Ok(0);
    };
    classes
        .iter()
        .position(|c| c == p)
        .with_context(|| format!("--positive {p:?}: the classes are {classes:?}"))
}

/// One look at the test split: accuracy of the most probable class and at the threshold, AUC.
fn test_once(
    model: &ProbeModel,
    test: &dyn ImageSource,
    c: f64,
    positive: usize,
) -> Result<serde_json::Value> {
    let yte = source_labels(test)?;
    let classes = &model.info().class_names;
    let n = classes.len();
    let probs: Array2<f64> = model.predict_proba_source(test)?;
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
