//! The GAN stage: train (or resume) each GAN the scenarios need, synthesize and select each
//! class's images, and score them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use tch::{Device, Tensor};

use ganaug_data::{io, TensorDataset};
use ganaug_gan::{synthesize_class, synthetic_dataset, ClassModel, GanConfig, GanTrainer};

use crate::quality::Quality;
use crate::{hash_of, CheckedConfig, ExperimentError, GanSummary, Result, SynthSummary, Synthetic};

/// What the GAN stage hands on: the trained GANs, each synthetic set's quality, the sets, and
/// the key of each GAN (for the cells' cache keys).
#[derive(Default)]
pub struct GanStage {
    /// The trained GANs.
    pub gans: Vec<GanSummary>,
    /// Every synthetic class set with its measures.
    pub synthetic: Vec<SynthSummary>,
    /// The assembled synthetic training sets.
    pub sets: BTreeMap<Synthetic, TensorDataset>,
    /// The key of each GAN's folder (what defines that GAN alone).
    pub keys: BTreeMap<Synthetic, String>,
    /// Sets the gate refused, with each failing class's reasons.
    pub refused: BTreeMap<Synthetic, Vec<String>>,
}

/// Where the stage writes and how it talks.
pub struct StageContext<'a> {
    /// The results folder.
    pub out: &'a Path,
    /// The device.
    pub device: Device,
    /// Show progress.
    pub progress: bool,
}

impl StageContext<'_> {
    pub(crate) fn say(&self, msg: impl AsRef<str>) {
        if self.progress {
            println!("{}", msg.as_ref());
        }
    }
}

/// The conditional GAN's configuration: the per-class one with `n_classes` labels and its own
/// epochs.
fn cgan_configs(cfg: &CheckedConfig, classes: usize) -> (GanConfig, ganaug_gan::TrainConfig) {
    (
        GanConfig {
            n_classes: Some(classes as i64),
            ..cfg.gan.gan.clone()
        },
        ganaug_gan::TrainConfig {
            epochs: cfg.gan.cgan_epochs,
            ..cfg.gan.train.clone()
        },
    )
}

/// Runs the stage for the synthetic sets `cfg`'s scenarios need, on the training split `train`
/// (at the GAN's size) whose data has fingerprint `data_id`.
pub fn run_gans(
    cfg: &CheckedConfig,
    train: &TensorDataset,
    data_id: &str,
    ctx: &StageContext<'_>,
) -> Result<GanStage> {
    let class_names = &train.class_names;
    let mut stage = GanStage::default();
    let cgan = cgan_configs(cfg, class_names.len());
    stage.keys.insert(
        Synthetic::PerClass,
        hash_of(&(&cfg.gan.gan, &cfg.gan.train, data_id, cfg.resize))?,
    );
    stage.keys.insert(
        Synthetic::Conditional,
        hash_of(&(&cgan, data_id, cfg.resize))?,
    );
    let (needs_gan, needs_cgan) = (
        cfg.needs(Synthetic::PerClass),
        cfg.needs(Synthetic::Conditional),
    );
    if !needs_gan && !needs_cgan {
        return Ok(stage);
    }
    let mut quality = Quality::new(ctx.device)?;
    let subsets = (0..class_names.len() as i64)
        .map(|label| train.class_subset(label))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if needs_gan {
        per_class_gans(cfg, &subsets, &mut stage, &mut quality, ctx)?;
    }
    if needs_cgan {
        conditional_gan(cfg, train, &subsets, cgan, &mut stage, &mut quality, ctx)?;
    }
    Ok(stage)
}

/// One GAN per class, each trained on its class's images, then its synthetic set.
fn per_class_gans(
    cfg: &CheckedConfig,
    subsets: &[TensorDataset],
    stage: &mut GanStage,
    quality: &mut Quality,
    ctx: &StageContext<'_>,
) -> Result<()> {
    let key = stage.keys[&Synthetic::PerClass].clone();
    let mut parts = Vec::new();
    for (label, subset) in subsets.iter().enumerate() {
        let class = &subset.class_names[label];
        let dir = ctx.out.join("gan").join(format!("per-class-{class}-{key}"));
        let name = format!("per-class/{class}");
        let (gan, tcfg) = (cfg.gan.gan.clone(), cfg.gan.train.clone());
        let (trainer, summary) = train_gan(gan, tcfg, subset, &dir, ctx, name)?;
        ctx.say(format!("GAN per-class/{class}: {} epochs", summary.epochs));
        stage.gans.push(summary);
        let model = ClassModel {
            generator: trainer.generator(),
            discriminator: trainer.discriminator(),
            condition: None,
        };
        let which = Synthetic::PerClass;
        let (images, summary) = synthesize(model, which, class, subset, cfg, quality, ctx)?;
        stage.synthetic.push(summary);
        parts.push((label as i64, images));
    }
    let set = assemble(
        &parts,
        &subsets[0].class_names,
        "one GAN per class",
        Synthetic::PerClass,
    )?;
    stage.sets.insert(Synthetic::PerClass, set);
    judge(Synthetic::PerClass, cfg, stage);
    Ok(())
}

/// One conditional GAN on the whole training split, then each class's synthetic set.
fn conditional_gan(
    cfg: &CheckedConfig,
    train: &TensorDataset,
    subsets: &[TensorDataset],
    (gan, tcfg): (GanConfig, ganaug_gan::TrainConfig),
    stage: &mut GanStage,
    quality: &mut Quality,
    ctx: &StageContext<'_>,
) -> Result<()> {
    let key = &stage.keys[&Synthetic::Conditional];
    let dir = ctx.out.join("gan").join(format!("conditional-{key}"));
    let (trainer, summary) = train_gan(gan, tcfg, train, &dir, ctx, "conditional".into())?;
    ctx.say(format!("GAN conditional: {} epochs", summary.epochs));
    stage.gans.push(summary);
    let mut parts = Vec::new();
    for (label, subset) in subsets.iter().enumerate() {
        let class = &subset.class_names[label];
        let model = ClassModel {
            generator: trainer.generator(),
            discriminator: trainer.discriminator(),
            condition: Some(label as i64),
        };
        let which = Synthetic::Conditional;
        let (images, summary) = synthesize(model, which, class, subset, cfg, quality, ctx)?;
        stage.synthetic.push(summary);
        parts.push((label as i64, images));
    }
    let what = "one conditional GAN";
    let set = assemble(&parts, &train.class_names, what, Synthetic::Conditional)?;
    stage.sets.insert(Synthetic::Conditional, set);
    judge(Synthetic::Conditional, cfg, stage);
    Ok(())
}

/// The gate's verdict on `which`'s classes: every floor missed is said; in `refuse` mode the
/// set is recorded as refused and no cell trains on it.
fn judge(which: Synthetic, cfg: &CheckedConfig, stage: &mut GanStage) {
    let reasons: Vec<String> = stage
        .synthetic
        .iter()
        .filter(|s| s.gan == which)
        .filter_map(|s| {
            let m = s.measures.as_ref()?;
            (!m.failures.is_empty()).then(|| format!("{}: {}", s.class, m.failures.join("; ")))
        })
        .collect();
    if reasons.is_empty() {
        return;
    }
    let refuse = cfg.gan.gate.mode == crate::GateMode::Refuse;
    let verdict = if refuse {
        "REFUSED: its scenarios are not run (reproduce --allow-poor-synthetic uses it anyway)"
    } else {
        "WARNING: used anyway (gate mode warn)"
    };
    // Said even without progress output: a broken set must not pass silently.
    eprintln!("synthetic set {which} {verdict}");
    for r in &reasons {
        eprintln!("  {r}");
    }
    if refuse {
        stage.refused.insert(which, reasons);
    }
}

/// `dir` relative to the results folder `out` (results stay valid when the folder moves).
pub(crate) fn relative(dir: &Path, out: &Path) -> String {
    dir.strip_prefix(out).unwrap_or(dir).display().to_string()
}

fn assemble(
    parts: &[(i64, Tensor)],
    class_names: &[String],
    what: &str,
    gan: Synthetic,
) -> Result<TensorDataset> {
    synthetic_dataset(parts, class_names, what).map_err(|source| ExperimentError::Synthesis {
        gan,
        class: "all classes".into(),
        source: Box::new(source),
    })
}

/// Trains one GAN into `dir`, resuming from its latest checkpoint there.
fn train_gan(
    gan: GanConfig,
    train_cfg: ganaug_gan::TrainConfig,
    data: &TensorDataset,
    dir: &Path,
    ctx: &StageContext<'_>,
    name: String,
) -> Result<(GanTrainer, GanSummary)> {
    let run = || -> std::result::Result<(GanTrainer, f64), ganaug_gan::GanError> {
        let epochs = train_cfg.epochs;
        let mut trainer = match GanTrainer::latest_checkpoint(dir) {
            Some(ckpt) => GanTrainer::resume(&ckpt, ctx.device, Some(epochs))?,
            None => GanTrainer::new(gan, train_cfg, ctx.device)?,
        };
        let t0 = Instant::now();
        let before = trainer.epoch();
        trainer.fit(data, Some(dir), ctx.progress)?;
        let trained = trainer.epoch() > before;
        Ok((
            trainer,
            if trained {
                t0.elapsed().as_secs_f64()
            } else {
                0.0
            },
        ))
    };
    let (trainer, seconds) = run().map_err(|source| ExperimentError::Gan {
        name: name.clone(),
        source: Box::new(source),
    })?;
    let summary = GanSummary {
        name,
        epochs: trainer.epoch(),
        seconds,
        dir: relative(dir, ctx.out),
    };
    Ok((trainer, summary))
}

/// Generates and selects one class's synthetic images, writes their sample grid and scores
/// them against the class's training images.
fn synthesize(
    model: ClassModel<'_>,
    gan: Synthetic,
    class: &str,
    train: &TensorDataset,
    cfg: &CheckedConfig,
    quality: &mut Quality,
    ctx: &StageContext<'_>,
) -> Result<(Tensor, SynthSummary)> {
    let gate = &cfg.gan.gate;
    let cfg = &cfg.gan.synth;
    let (images, selection) =
        synthesize_class(model, &train.images, class, cfg).map_err(|source| {
            ExperimentError::Synthesis {
                gan,
                class: class.into(),
                source: Box::new(source),
            }
        })?;
    let grid = format!("synthetic_{gan}_{class}.png");
    let n = images.size()[0].min(64);
    io::save_grid(&images.narrow(0, 0, n), 8, ctx.out.join(&grid))?;
    let features = quality.features(class, &train.images, &images)?;
    let (fid, kid) = features
        .as_ref()
        .map_or((None, None), |(a, b)| crate::quality::fid_kid(a, b));
    let measures = match &features {
        Some((a, b)) => match crate::gate::measure(a, b, Quality::EXTRACTOR, gate) {
            Ok(m) => Some(m),
            Err(e) => {
                // Said even without progress output: an unmeasured set is not a checked one.
                eprintln!(
                    "synthetic set {gan}/{class}: not measured, the gate cannot judge it: {e}"
                );
                None
            }
        },
        None => None,
    };
    let summary = SynthSummary {
        gan,
        class: class.into(),
        selection,
        fid,
        kid,
        grid,
        measures,
    };
    Ok((images, summary))
}
