//! The paper's experiment in one call: train the GANs, build every training-set scenario, train
//! and test every classifier on the official test split, and write `results.json`, `report.md`
//! and the plots. Finished cells are cached by a hash of their configuration, so a re-run skips
//! them and a killed run resumes (GAN and classifier checkpoints included).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use ganaug_augment::{expand, DiffAugment, Pipeline};
use ganaug_data::{
    io, phantom_splits, FolderConfig, ImageFolder, LoadOptions, PhantomConfig, Splits,
    TensorDataset,
};
use ganaug_gan::{
    synthesize_class, synthetic_dataset, Arch, ClassModel, ClassSynthReport, GanConfig, GanTrainer,
    SynthConfig,
};
use ganaug_metrics::plot::line_plot;
use ganaug_metrics::{
    compare_models, fid, kid, summarize, Average, BootstrapConfig, ClassificationReport, KidConfig,
    ReportConfig, Summary,
};
use ganaug_models::{
    fit, predict, pretrained_weights, BackboneMode, Classifier, FitOptions, ModelConfig, ModelKind,
};

/// Errors of the experiment runner: any crate's error, with what the runner was doing.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub struct ReproError {
    /// What the runner was doing.
    pub step: String,
    /// The cause.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

/// `Result` with [`ReproError`].
pub type Result<T> = std::result::Result<T, ReproError>;

trait Context<T> {
    fn ctx(self, step: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Context<T> for std::result::Result<T, E> {
    fn ctx(self, step: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| ReproError {
            step: step(),
            source: Box::new(e),
        })
    }
}

fn io_err(path: &Path, e: std::io::Error) -> ReproError {
    ReproError {
        step: format!("writing {}", path.display()),
        source: Box::new(e),
    }
}

/// A training-set variant of the paper's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// The training split as is.
    Raw,
    /// Raw + classic augmentation (flips, rotation ≤ 45°), as offline copies.
    Classic,
    /// Raw + images of one GAN per class (the paper's "our GAN").
    Gan,
    /// Raw + images of one conditional GAN (stands in for Loey et al.'s CGAN set).
    Cgan,
    /// Raw + per-class GAN images, then classic augmentation of all of them.
    GanClassic,
}

impl Scenario {
    /// All scenarios in table order.
    pub const ALL: [Scenario; 5] = [
        Scenario::Raw,
        Scenario::Classic,
        Scenario::Gan,
        Scenario::Cgan,
        Scenario::GanClassic,
    ];

    /// Short name (`raw`, `classic`, `gan`, `cgan`, `gan-classic`).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Raw => "raw",
            Scenario::Classic => "classic",
            Scenario::Gan => "gan",
            Scenario::Cgan => "cgan",
            Scenario::GanClassic => "gan-classic",
        }
    }

    /// Column title in the report.
    pub fn title(self) -> &'static str {
        match self {
            Scenario::Raw => "Raw",
            Scenario::Classic => "Raw + classic aug.",
            Scenario::Gan => "Raw + our GAN",
            Scenario::Cgan => "Raw + CGAN (for Loey)",
            Scenario::GanClassic => "Raw + GAN + classic",
        }
    }

    /// Parses [`Scenario::name`].
    pub fn parse(s: &str) -> Option<Self> {
        Scenario::ALL.into_iter().find(|x| x.name() == s)
    }

    /// The synthetic set this scenario adds, if any.
    fn synthetic(self) -> Option<Synthetic> {
        match self {
            Scenario::Gan | Scenario::GanClassic => Some(Synthetic::PerClass),
            Scenario::Cgan => Some(Synthetic::Conditional),
            Scenario::Raw | Scenario::Classic => None,
        }
    }

    fn uses_classic(self) -> bool {
        matches!(self, Scenario::Classic | Scenario::GanClassic)
    }
}

/// Where a scenario's synthetic images come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Synthetic {
    /// One GAN per class (the paper's).
    PerClass,
    /// One conditional GAN.
    Conditional,
}

/// The paper's test accuracies (its tables; starred values are Loey et al.'s, which the paper
/// copied), for the report's side-by-side columns.
pub fn paper_accuracy(model: ModelKind, scenario: Scenario) -> Option<(f64, bool)> {
    let row = match model {
        ModelKind::PaperCnn => [0.6583, 0.7186, 0.6985, 0.7035],
        ModelKind::Vgg16 => [0.7538, 0.7839, 0.8090, 0.7038],
        ModelKind::ResNet50 => [0.7638, 0.7688, 0.8040, 0.7657],
        ModelKind::EfficientNetLite0 => return None,
    };
    let starred = model != ModelKind::PaperCnn && scenario == Scenario::Cgan;
    match scenario {
        Scenario::Raw => Some((row[0], false)),
        Scenario::Classic => Some((row[1], false)),
        Scenario::Gan => Some((row[2], false)),
        Scenario::Cgan => Some((row[3], starred)),
        Scenario::GanClassic => None,
    }
}

/// The GANs: one per class (the paper) and one conditional (the CGAN column).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanPlan {
    /// Architecture and resolution (`n_classes` is set per mode).
    pub gan: GanConfig,
    /// Training of each per-class GAN.
    pub train: ganaug_gan::TrainConfig,
    /// Epochs of the conditional GAN (same other settings).
    pub cgan_epochs: usize,
    /// Selection of synthetic images (kept per class: the paper hand-picked 250).
    pub synth: SynthConfig,
}

/// One classifier of the tables and how it is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPlan {
    /// The network.
    pub kind: ModelKind,
    /// Input side in pixels.
    pub image_size: i64,
    /// Start from ImageNet weights when the file is available (see
    /// [`pretrained_weights`]); otherwise the model is trained from scratch and the report says
    /// so.
    pub imagenet: bool,
    /// Backbone mode when ImageNet weights are used (from scratch always trains everything).
    pub pretrained_backbone: BackboneMode,
    /// Training settings.
    pub train: ganaug_models::TrainConfig,
    /// Autocast-style bf16 convolutions and dense layers (see `ModelConfig::bf16`).
    #[serde(default)]
    pub bf16: bool,
}

/// Everything that defines a reproduction run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReproConfig {
    /// Preset name (`cpu`, `paper`, `tiny`), for the report.
    pub preset: String,
    /// What this preset reduces relative to the paper, in words, for the report.
    pub reductions: Vec<String>,
    /// The GANs.
    pub gan: GanPlan,
    /// The classifiers.
    pub models: Vec<ModelPlan>,
    /// The training-set variants.
    pub scenarios: Vec<Scenario>,
    /// Classic-augmentation copies per image (offline) in the classic scenarios.
    pub classic_copies: usize,
    /// Classifier seeds (the GANs are trained once).
    pub seeds: usize,
}

impl ReproConfig {
    /// Finishes on 2 CPU cores in about half an hour on the real COVID-CT data: one DCGAN-32
    /// per class at 64² (DiffAugment) for 200 epochs, a conditional one for 60, the paper's CNN
    /// from scratch at 64², EfficientNet-Lite0 with frozen ImageNet features at 224².
    pub fn cpu() -> Self {
        let cnn = ganaug_models::TrainConfig {
            max_epochs: 40,
            ..Default::default()
        };
        ReproConfig {
            preset: "cpu".into(),
            reductions: vec![
                "GANs: DCGAN-32 at 64² with DiffAugment (translation, cutout), 200 epochs per class and 60 for the conditional GAN, instead of the paper's GAN at 256² for 3300 epochs".into(),
                "125 synthetic images kept per class (the paper hand-picked 250), chosen by discriminator score with near-copies of training images removed".into(),
                "the paper's CNN at 64² (the paper: 224²), at most 40 epochs (SGD 1e-3; it stops earlier at 95% train accuracy)".into(),
                "VGG-16 and ResNet-50 are not run (GPU work from scratch; their ImageNet weights cannot be downloaded here): EfficientNet-Lite0 with real ImageNet weights and a frozen backbone takes their place".into(),
                "classic augmentation as 2 offline copies per image".into(),
            ],
            gan: GanPlan {
                gan: GanConfig {
                    arch: Arch::Dcgan { ngf: 32, ndf: 32 },
                    size: 64,
                    ..GanConfig::default()
                },
                train: ganaug_gan::TrainConfig {
                    epochs: 200,
                    diffaugment: Some(DiffAugment {
                        color: false,
                        translation: Some(0.125),
                        cutout: Some(0.5),
                    }),
                    checkpoint_every: 50,
                    sample_every: 50,
                    ..Default::default()
                },
                cgan_epochs: 60,
                synth: SynthConfig::default(),
            },
            models: vec![
                ModelPlan {
                    kind: ModelKind::PaperCnn,
                    image_size: 64,
                    imagenet: false,
                    pretrained_backbone: BackboneMode::Train,
                    bf16: false,
                    train: cnn,
                },
                ModelPlan {
                    kind: ModelKind::EfficientNetLite0,
                    image_size: 224,
                    imagenet: true,
                    pretrained_backbone: BackboneMode::Frozen,
                    bf16: false,
                    train: ganaug_models::TrainConfig {
                        lr: ModelKind::EfficientNetLite0.paper_lr(),
                        max_epochs: 100,
                        ..Default::default()
                    },
                },
            ],
            scenarios: Scenario::ALL.to_vec(),
            classic_copies: 2,
            seeds: 1,
        }
    }

    /// The paper's settings, for a CUDA GPU: its GAN at 256² for 3300 epochs (checkpoints
    /// every 300), 250 images per class, every classifier at 224² with the paper's SGD rates,
    /// VGG-16 / ResNet-50 from torchvision ImageNet weights when supplied (fine-tuned), else
    /// from scratch.
    pub fn paper() -> Self {
        let transfer = |kind: ModelKind| ModelPlan {
            kind,
            image_size: 224,
            imagenet: true,
            pretrained_backbone: BackboneMode::Train,
            bf16: false,
            train: ganaug_models::TrainConfig {
                lr: kind.paper_lr(),
                ..Default::default()
            },
        };
        ReproConfig {
            preset: "paper".into(),
            reductions: vec![
                "conditional GAN trained for the same 3300 epochs; selection by discriminator score replaces the paper's hand-picking".into(),
            ],
            gan: GanPlan {
                gan: GanConfig::default(),
                train: ganaug_gan::TrainConfig::default(),
                cgan_epochs: 3300,
                synth: SynthConfig {
                    candidates_per_class: 1000,
                    keep_per_class: 250,
                    ..SynthConfig::default()
                },
            },
            models: vec![
                ModelPlan {
                    kind: ModelKind::PaperCnn,
                    image_size: 224,
                    imagenet: false,
                    pretrained_backbone: BackboneMode::Train,
                    bf16: false,
                    train: ganaug_models::TrainConfig::default(),
                },
                transfer(ModelKind::Vgg16),
                transfer(ModelKind::ResNet50),
                transfer(ModelKind::EfficientNetLite0),
            ],
            scenarios: Scenario::ALL.to_vec(),
            classic_copies: 4,
            seeds: 1,
        }
    }

    /// Seconds on a CPU: tiny sizes and epochs, for tests and smoke runs.
    pub fn tiny() -> Self {
        ReproConfig {
            preset: "tiny".into(),
            reductions: vec!["everything: a smoke test, not a result".into()],
            gan: GanPlan {
                gan: GanConfig {
                    arch: Arch::Dcgan { ngf: 8, ndf: 8 },
                    size: 16,
                    ..GanConfig::default()
                },
                train: ganaug_gan::TrainConfig {
                    epochs: 2,
                    batch_size: 8,
                    checkpoint_every: 1,
                    sample_every: 1,
                    ..Default::default()
                },
                cgan_epochs: 2,
                synth: SynthConfig {
                    candidates_per_class: 12,
                    keep_per_class: 6,
                    min_nn_distance: 0.0,
                    ..SynthConfig::default()
                },
            },
            models: vec![
                ModelPlan {
                    kind: ModelKind::PaperCnn,
                    image_size: 32,
                    imagenet: false,
                    pretrained_backbone: BackboneMode::Train,
                    bf16: false,
                    train: ganaug_models::TrainConfig {
                        max_epochs: 2,
                        ..Default::default()
                    },
                },
                ModelPlan {
                    kind: ModelKind::EfficientNetLite0,
                    image_size: 32,
                    imagenet: true,
                    pretrained_backbone: BackboneMode::Frozen,
                    bf16: false,
                    train: ganaug_models::TrainConfig {
                        max_epochs: 2,
                        lr: 5e-3,
                        ..Default::default()
                    },
                },
            ],
            scenarios: Scenario::ALL.to_vec(),
            classic_copies: 1,
            seeds: 1,
        }
    }

    /// A preset by name.
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "cpu" => Some(Self::cpu()),
            "paper" => Some(Self::paper()),
            "tiny" => Some(Self::tiny()),
            _ => None,
        }
    }
}

/// Where the images come from.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// The COVID-CT folder layout (official split lists).
    Folder(PathBuf),
    /// The embedded synthetic phantom stand-in (the report's title says so).
    Phantom(PhantomConfig),
}

impl DataSource {
    /// Where the data comes from plus a fingerprint of what was loaded (image names, labels and
    /// the sum of all pixels), so that changed data never reuses a finished cell.
    fn identity(&self, loaded: &Splits) -> Result<String> {
        let source = match self {
            DataSource::Folder(p) => {
                format!("folder:{}", p.canonicalize().unwrap_or(p.clone()).display())
            }
            DataSource::Phantom(c) => format!("phantom:{}:{:?}", c.seed, c.counts),
        };
        let mut parts = vec![source];
        for d in [&loaded.train, &loaded.val, &loaded.test] {
            let sum = d
                .images
                .f_sum(Kind::Double)
                .and_then(|t| t.f_double_value(&[]))
                .ctx(|| "fingerprinting the data".into())?;
            parts.push(format!("{:?} {:?} {sum:.6}", d.names, d.class_counts()));
        }
        hash_of(&parts)
    }

    /// Loads the train / validation / test splits at `size`² on `device` (the COVID-CT folder
    /// through the default decode cache).
    pub fn load(&self, size: i64, device: Device) -> Result<Splits> {
        let step = || format!("loading the data at {size}²");
        match self {
            DataSource::Folder(dir) => {
                let folder = ImageFolder::open(dir, &FolderConfig::covid_ct())
                    .ctx(|| format!("opening the dataset at {}", dir.display()))?;
                let mut opts = LoadOptions::with_size(size as u32).with_device(device);
                opts.cache_dir = ganaug_data::default_cache_dir();
                folder.load_splits(&opts).ctx(step)
            }
            DataSource::Phantom(c) => {
                let cfg = PhantomConfig {
                    size: size as u32,
                    ..c.clone()
                };
                phantom_splits(&cfg, device).ctx(step)
            }
        }
    }

    fn is_synthetic(&self) -> bool {
        matches!(self, DataSource::Phantom(_))
    }
}

/// A value with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Point estimate.
    pub value: f64,
    /// Lower bound (`None` when undefined, e.g. precision with no positive prediction).
    pub lower: Option<f64>,
    /// Upper bound.
    pub upper: Option<f64>,
}

/// One trained and tested classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// Model short name.
    pub model: String,
    /// Scenario short name.
    pub scenario: String,
    /// Classifier seed.
    pub seed: u64,
    /// `ImageNet (frozen backbone)`, `ImageNet (fine-tuned)` or `trained from scratch`.
    pub weights: String,
    /// Training images (after augmentation).
    pub train_images: usize,
    /// Test accuracy (Wilson interval).
    pub accuracy: Estimate,
    /// COVID precision (Wilson interval).
    pub precision: Estimate,
    /// COVID recall / sensitivity (Wilson interval).
    pub recall: Estimate,
    /// Specificity (Wilson interval).
    pub specificity: Estimate,
    /// F1 of COVID (bootstrap interval).
    pub f1: Estimate,
    /// ROC AUC of COVID (bootstrap interval).
    pub auc: Option<Estimate>,
    /// Epochs run, epoch of the restored weights, and why training stopped.
    pub epochs: usize,
    /// Epoch of the best validation loss (restored).
    pub best_epoch: usize,
    /// Stop reason.
    pub stop: String,
    /// Seconds: whole cell, and of it backbone feature extraction.
    pub seconds: f64,
    /// Seconds of cached-feature extraction.
    pub feature_seconds: f64,
    /// Test labels (for paired tests).
    pub labels: Vec<usize>,
    /// Test probabilities `[N][classes]`.
    pub probs: Vec<Vec<f64>>,
    /// ROC curve of COVID: false-positive rates.
    pub roc_fpr: Vec<f64>,
    /// ROC curve of COVID: true-positive rates.
    pub roc_tpr: Vec<f64>,
    /// Folder with this cell's training history and curves.
    pub dir: String,
}

/// One synthetic set and its quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthSummary {
    /// `per-class` or `conditional`.
    pub gan: String,
    /// Class name.
    pub class: String,
    /// Selection report (generated, kept, near-copies, discriminator scores, nearest-neighbour
    /// RMS distance to the training images).
    pub selection: ClassSynthReport,
    /// FID against the class's training images (EfficientNet-Lite0 ImageNet features).
    pub fid: Option<f64>,
    /// KID (mean) likewise.
    pub kid: Option<f64>,
    /// Sample grid PNG (relative to the results folder).
    pub grid: String,
}

/// One trained GAN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanSummary {
    /// `per-class/<class>` or `conditional`.
    pub name: String,
    /// Epochs trained.
    pub epochs: usize,
    /// Seconds of training in this run (0 when reused).
    pub seconds: f64,
    /// Its folder (checkpoints, samples, losses.png).
    pub dir: String,
}

/// Mean and spread of one metric over seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    /// Model.
    pub model: String,
    /// Scenario.
    pub scenario: String,
    /// Accuracy over seeds.
    pub accuracy: Summary,
    /// AUC over seeds.
    pub auc: Option<Summary>,
    /// The paper's accuracy for this cell, and whether it is one of Loey et al.'s (starred).
    pub paper_accuracy: Option<(f64, bool)>,
    /// Paired comparison with the same model on raw data (seed 0): accuracy difference with
    /// bootstrap interval, and McNemar's exact p-value.
    pub vs_raw: Option<VsRaw>,
}

/// Paired comparison with raw data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VsRaw {
    /// Accuracy difference (this − raw) with its bootstrap interval.
    pub accuracy_diff: Estimate,
    /// McNemar's exact p-value.
    pub mcnemar_p: f64,
}

/// Everything `results.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReproResults {
    /// The configuration.
    pub config: ReproConfig,
    /// Where the data came from.
    pub data: String,
    /// Whether it is the synthetic phantom stand-in.
    pub synthetic_data: bool,
    /// Test images per class.
    pub test_counts: Vec<usize>,
    /// Class names.
    pub class_names: Vec<String>,
    /// Device.
    pub device: String,
    /// The GANs.
    pub gans: Vec<GanSummary>,
    /// The synthetic sets.
    pub synthetic: Vec<SynthSummary>,
    /// Every cell, every seed.
    pub cells: Vec<CellResult>,
    /// Per model × scenario over seeds, with the paper's value and the paired test.
    pub aggregates: Vec<Aggregate>,
    /// Wall time of this run.
    pub seconds: f64,
}

fn hash_of<T: Serialize>(parts: &T) -> Result<String> {
    let json = serde_json::to_string(parts).ctx(|| "hashing the configuration".into())?;
    Ok(blake3::hash(json.as_bytes()).to_hex()[..12].to_string())
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(v).ctx(|| format!("serialising {}", path.display()))?;
    io::write_atomic(path, &bytes).ctx(|| format!("writing {}", path.display()))
}

fn resize(images: &Tensor, size: i64) -> Result<Tensor> {
    let s = images.size();
    if s[2] == size && s[3] == size {
        return Ok(images.shallow_clone());
    }
    images
        .f_upsample_bilinear2d([size, size], false, None, None)
        .and_then(|t| t.f_clamp(0.0, 1.0))
        .ctx(|| format!("resizing synthetic images to {size}²"))
}

/// Runs (or resumes) the experiment into `out`. `progress` shows progress bars.
pub fn run(
    cfg: &ReproConfig,
    data: &DataSource,
    out: &Path,
    device: Device,
    progress: bool,
) -> Result<ReproResults> {
    let started = Instant::now();
    std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    let invalid = |why: &str| ReproError {
        step: "checking the configuration".into(),
        source: why.into(),
    };
    if cfg.seeds == 0 || cfg.models.is_empty() || cfg.scenarios.is_empty() {
        return Err(invalid("needs at least one seed, model and scenario"));
    }
    let mut kinds: Vec<ModelKind> = cfg.models.iter().map(|m| m.kind).collect();
    kinds.sort_by_key(|k| k.name());
    kinds.dedup();
    if kinds.len() != cfg.models.len() {
        return Err(invalid("each model may appear once"));
    }
    // Never replace another configuration's results silently.
    let results_file = out.join("results.json");
    if let Ok(bytes) = std::fs::read(&results_file) {
        let same = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("config").cloned())
            .zip(serde_json::to_value(cfg).ok())
            .is_some_and(|(a, b)| a == b);
        if !same {
            return Err(invalid(&format!(
                "{} holds the results of another configuration: choose another output folder",
                out.display()
            )));
        }
    }
    let say = |msg: String| {
        if progress {
            println!("{msg}");
        }
    };
    // Data at every size needed (the cache makes reloading cheap).
    let mut sizes: Vec<i64> = cfg.models.iter().map(|m| m.image_size).collect();
    sizes.push(cfg.gan.gan.size);
    sizes.sort_unstable();
    sizes.dedup();
    let mut splits = BTreeMap::new();
    for &s in &sizes {
        splits.insert(s, data.load(s, device)?);
    }
    let base = &splits[&cfg.gan.gan.size];
    let class_names = base.train.class_names.clone();
    let data_id = data.identity(base)?;
    say(format!(
        "data: {} (train {}, val {}, test {})",
        base.train.description,
        base.train.len(),
        base.val.len(),
        base.test.len()
    ));

    // GANs and synthetic sets.
    let needs = |w: Synthetic| cfg.scenarios.iter().any(|s| s.synthetic() == Some(w));
    let (needs_gan, needs_cgan) = (needs(Synthetic::PerClass), needs(Synthetic::Conditional));
    let mut quality = if needs_gan || needs_cgan {
        Quality::new(device)?
    } else {
        Quality::default()
    };
    let mut gans = Vec::new();
    let mut synthetic = Vec::new();
    let mut synth_sets: BTreeMap<Synthetic, TensorDataset> = BTreeMap::new();
    // Each GAN's folder is keyed by what defines that GAN alone.
    let cgan_config = (
        GanConfig {
            n_classes: Some(class_names.len() as i64),
            ..cfg.gan.gan.clone()
        },
        ganaug_gan::TrainConfig {
            epochs: cfg.gan.cgan_epochs,
            ..cfg.gan.train.clone()
        },
    );
    let gan_hash = hash_of(&(&cfg.gan.gan, &cfg.gan.train, &data_id))?;
    let cgan_hash = hash_of(&(&cgan_config, &data_id))?;
    if needs_gan {
        let mut parts = Vec::new();
        for label in 0..class_names.len() as i64 {
            let class = &class_names[label as usize];
            let train = base
                .train
                .class_subset(label)
                .ctx(|| format!("selecting {class}"))?;
            let dir = out
                .join("gan")
                .join(format!("per-class-{class}-{gan_hash}"));
            let (trainer, summary) = train_gan(
                cfg.gan.gan.clone(),
                cfg.gan.train.clone(),
                &train,
                &dir,
                device,
                progress,
                format!("per-class/{class}"),
            )?;
            say(format!("GAN per-class/{class}: {} epochs", summary.epochs));
            gans.push(summary);
            let images = synthesize(
                &trainer,
                None,
                class,
                &train.images,
                &cfg.gan.synth,
                &mut quality,
                out,
                &mut synthetic,
            )?;
            parts.push((label, images));
        }
        let set = synthetic_dataset(&parts, &class_names, "one GAN per class")
            .ctx(|| "assembling the per-class synthetic set".into())?;
        synth_sets.insert(Synthetic::PerClass, set);
    }
    if needs_cgan {
        let (gan, train_cfg) = cgan_config;
        let dir = out.join("gan").join(format!("conditional-{cgan_hash}"));
        let (trainer, summary) = train_gan(
            gan,
            train_cfg,
            &base.train,
            &dir,
            device,
            progress,
            "conditional".into(),
        )?;
        say(format!("GAN conditional: {} epochs", summary.epochs));
        gans.push(summary);
        let mut parts = Vec::new();
        for label in 0..class_names.len() as i64 {
            let class = &class_names[label as usize];
            let train = base
                .train
                .class_subset(label)
                .ctx(|| format!("selecting {class}"))?;
            let images = synthesize(
                &trainer,
                Some(label),
                class,
                &train.images,
                &cfg.gan.synth,
                &mut quality,
                out,
                &mut synthetic,
            )?;
            parts.push((label, images));
        }
        let set = synthetic_dataset(&parts, &class_names, "one conditional GAN")
            .ctx(|| "assembling the conditional synthetic set".into())?;
        synth_sets.insert(Synthetic::Conditional, set);
    }

    // Cells.
    let mut cells = Vec::new();
    let total = cfg.models.len() * cfg.scenarios.len() * cfg.seeds;
    let cells_dir = out.join("cells");
    for plan in &cfg.models {
        let sp = &splits[&plan.image_size];
        for &scenario in &cfg.scenarios {
            for seed in 0..cfg.seeds as u64 {
                let key = hash_of(&(
                    plan,
                    scenario,
                    seed,
                    &data_id,
                    cfg.classic_copies,
                    scenario.synthetic().map(|w| {
                        let gan = match w {
                            Synthetic::PerClass => &gan_hash,
                            Synthetic::Conditional => &cgan_hash,
                        };
                        (gan, &cfg.gan.synth)
                    }),
                    weights_identity(plan),
                ))?;
                let name = format!("{}-{}-s{seed}-{key}", plan.kind, scenario.name());
                let dir = cells_dir.join(&name);
                let file = dir.join("cell.json");
                say(format!(
                    "[{}/{total}] {} × {} (seed {seed})",
                    cells.len() + 1,
                    plan.kind.display_name(),
                    scenario.title()
                ));
                if let Some(done) = std::fs::read(&file)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<CellResult>(&b).ok())
                {
                    say("  finished before: reused".into());
                    cells.push(done);
                    continue;
                }
                let cell = run_cell(
                    plan,
                    scenario,
                    seed,
                    sp,
                    &synth_sets,
                    cfg,
                    &dir,
                    device,
                    progress,
                )?;
                write_json(&file, &cell)?;
                say(format!(
                    "  accuracy {}, AUC {}, {} epochs, {:.0} s",
                    pct(&cell.accuracy),
                    cell.auc.map_or("n/a".into(), |a| format!("{:.3}", a.value)),
                    cell.epochs,
                    cell.seconds
                ));
                cells.push(cell);
            }
        }
    }

    let aggregates = aggregate(cfg, &cells)?;
    let results = ReproResults {
        config: cfg.clone(),
        data: base.train.description.clone(),
        synthetic_data: data.is_synthetic(),
        test_counts: base.test.class_counts(),
        class_names,
        device: format!("{device:?}"),
        gans,
        synthetic,
        cells,
        aggregates,
        seconds: started.elapsed().as_secs_f64(),
    };
    write_outputs(&results, out)?;
    Ok(results)
}

#[allow(clippy::too_many_arguments)]
fn run_cell(
    plan: &ModelPlan,
    scenario: Scenario,
    seed: u64,
    sp: &Splits,
    synth: &BTreeMap<Synthetic, TensorDataset>,
    cfg: &ReproConfig,
    dir: &Path,
    device: Device,
    progress: bool,
) -> Result<CellResult> {
    let t0 = Instant::now();
    let step = |what: &str| format!("{} × {}: {what}", plan.kind, scenario.name());
    let mut train = sp.train.shallow_clone();
    if let Some(k) = scenario.synthetic() {
        let s = &synth[&k];
        let images = resize(&s.images, plan.image_size)?;
        let s = TensorDataset::new(
            images,
            s.labels.shallow_clone(),
            s.names.clone(),
            s.class_names.clone(),
            s.description.clone(),
        )
        .ctx(|| step("synthetic set"))?;
        train = train.concat(&s).ctx(|| step("adding synthetic images"))?;
    }
    if scenario.uses_classic() {
        let copies = expand(&train, &Pipeline::paper(), cfg.classic_copies, seed, 64)
            .ctx(|| step("classic augmentation"))?;
        train = train
            .concat(&copies)
            .ctx(|| step("adding augmented copies"))?;
    }
    let mcfg = ModelConfig {
        bf16: plan.bf16,
        ..ModelConfig::new(plan.kind, plan.image_size)
    };
    tch::manual_seed(ganaug_data::epoch_seed(seed, 1 << 20) as i64);
    let mut model = Classifier::new(mcfg, device).ctx(|| step("building the model"))?;
    let mut tcfg = plan.train.clone();
    tcfg.seed = seed;
    let weights = match (plan.imagenet, pretrained_weights(plan.kind)) {
        (true, Some(path)) => {
            model
                .load_backbone_weights(&path)
                .ctx(|| step("loading ImageNet weights"))?;
            tcfg.backbone = plan.pretrained_backbone;
            match plan.pretrained_backbone {
                BackboneMode::Frozen => "ImageNet (frozen backbone)",
                BackboneMode::Train => "ImageNet (fine-tuned)",
                BackboneMode::UnfreezeAfter(_) => "ImageNet (unfrozen later)",
            }
        }
        _ => {
            tcfg.backbone = BackboneMode::Train;
            "trained from scratch"
        }
    };
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let opts = FitOptions {
        out_dir: Some(dir),
        resume: true,
        progress,
        ..Default::default()
    };
    let fitted = fit(&mut model, &train, &sp.val, &tcfg, &opts).ctx(|| step("training"))?;
    let pred = predict(&model, &sp.test).ctx(|| step("testing"))?;
    let rcfg = ReportConfig::with_class_names(sp.test.class_names.clone());
    let report =
        ClassificationReport::new(&pred.labels, &pred.probs, &rcfg).ctx(|| step("metrics"))?;
    let prop = |p: &ganaug_metrics::Proportion| Estimate {
        value: p.estimate,
        lower: p.interval.map(|i| i.lower),
        upper: p.interval.map(|i| i.upper),
    };
    let boot = |b: &ganaug_metrics::BootstrapInterval| Estimate {
        value: b.estimate,
        lower: Some(b.lower),
        upper: Some(b.upper),
    };
    let covid = report.positive_class().ok_or_else(|| ReproError {
        step: step("metrics"),
        source: "no positive class in the report".into(),
    })?;
    let roc = report.roc.clone();
    Ok(CellResult {
        model: plan.kind.name().into(),
        scenario: scenario.name().into(),
        seed,
        weights: weights.into(),
        train_images: train.len(),
        accuracy: prop(&report.accuracy),
        precision: prop(&covid.precision),
        recall: prop(&covid.recall),
        specificity: prop(&covid.specificity),
        f1: boot(&report.f1),
        auc: report.auc.as_ref().map(boot),
        epochs: fitted.history.len(),
        best_epoch: fitted.best_epoch,
        stop: format!("{:?}", fitted.stop),
        seconds: t0.elapsed().as_secs_f64(),
        feature_seconds: fitted.feature_seconds,
        labels: pred.labels.clone(),
        probs: pred.probs.rows().into_iter().map(|r| r.to_vec()).collect(),
        roc_fpr: roc.as_ref().map(|r| r.fpr.clone()).unwrap_or_default(),
        roc_tpr: roc.as_ref().map(|r| r.tpr.clone()).unwrap_or_default(),
        dir: dir.display().to_string(),
    })
}

/// The ImageNet weight file a plan would use (path, size, modification time), if any.
fn weights_identity(plan: &ModelPlan) -> Option<String> {
    let path = pretrained_weights(plan.kind).filter(|_| plan.imagenet)?;
    let meta = std::fs::metadata(&path).ok()?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    Some(format!("{} {} {modified}", path.display(), meta.len()))
}

fn train_gan(
    gan: GanConfig,
    train_cfg: ganaug_gan::TrainConfig,
    data: &TensorDataset,
    dir: &Path,
    device: Device,
    progress: bool,
    name: String,
) -> Result<(GanTrainer, GanSummary)> {
    let step = || format!("training GAN {name}");
    let latest = GanTrainer::latest_checkpoint(dir);
    let epochs = train_cfg.epochs;
    let mut trainer = match latest {
        Some(ckpt) => GanTrainer::resume(&ckpt, device, Some(epochs)).ctx(step)?,
        None => GanTrainer::new(gan, train_cfg, device).ctx(step)?,
    };
    let t0 = Instant::now();
    let before = trainer.epoch();
    trainer.fit(data, Some(dir), progress).ctx(step)?;
    let seconds = if trainer.epoch() > before {
        t0.elapsed().as_secs_f64()
    } else {
        0.0
    };
    let summary = GanSummary {
        name,
        epochs: trainer.epoch(),
        seconds,
        dir: dir.display().to_string(),
    };
    Ok((trainer, summary))
}

/// Generates and selects one class's synthetic images (`condition`: the conditional GAN's
/// label), records their quality in `summaries`, and returns them.
#[allow(clippy::too_many_arguments)]
fn synthesize(
    trainer: &GanTrainer,
    condition: Option<i64>,
    class: &str,
    train: &Tensor,
    cfg: &SynthConfig,
    quality: &mut Quality,
    out: &Path,
    summaries: &mut Vec<SynthSummary>,
) -> Result<Tensor> {
    let gan = if condition.is_some() {
        "conditional"
    } else {
        "per-class"
    };
    let model = ClassModel {
        generator: trainer.generator(),
        discriminator: trainer.discriminator(),
        condition,
    };
    let (images, sel) = synthesize_class(model, train, class, cfg)
        .ctx(|| format!("synthesizing {class} with the {gan} GAN"))?;
    summaries.push(describe_synth(
        gan, class, &images, train, sel, quality, out,
    )?);
    Ok(images)
}

/// Scores synthetic images against their class's training images: FID and KID on
/// EfficientNet-Lite0 ImageNet features (none without its weights), each class's training
/// features computed once for both GANs.
#[derive(Default)]
struct Quality {
    net: Option<Classifier>,
    train_features: BTreeMap<String, ndarray::Array2<f64>>,
}

impl Quality {
    fn new(device: Device) -> Result<Self> {
        let Some(path) = pretrained_weights(ModelKind::EfficientNetLite0) else {
            return Ok(Quality::default());
        };
        let mut net = Classifier::new(ModelConfig::new(ModelKind::EfficientNetLite0, 224), device)
            .ctx(|| "building the FID feature network".into())?;
        net.load_backbone_weights(&path)
            .ctx(|| "loading the FID feature network".into())?;
        Ok(Quality {
            net: Some(net),
            train_features: BTreeMap::new(),
        })
    }

    /// FID and KID (mean) of `images` against `train`, the training images of `class`.
    fn fid_kid(
        &mut self,
        class: &str,
        train: &Tensor,
        images: &Tensor,
    ) -> Result<(Option<f64>, Option<f64>)> {
        let Some(net) = &self.net else {
            return Ok((None, None));
        };
        if !self.train_features.contains_key(class) {
            self.train_features
                .insert(class.into(), features(net, train)?);
        }
        let a = &self.train_features[class];
        let b = features(net, images)?;
        let m = a.nrows().min(b.nrows());
        let kid_cfg = KidConfig {
            subset_size: m.min(100),
            subsets: 50,
            ..KidConfig::default()
        };
        let k = (m >= 2)
            .then(|| kid(a, &b, &kid_cfg).ok())
            .flatten()
            .map(|k| k.mean);
        Ok((fid(a, &b).ok(), k))
    }
}

fn features(net: &Classifier, images: &Tensor) -> Result<ndarray::Array2<f64>> {
    let x = resize(images, 224)?;
    let f = net
        .extract_features(&x, 32)
        .and_then(|f| Ok(f.f_to_device(Device::Cpu)?.f_to_kind(Kind::Double)?))
        .ctx(|| "FID features".into())?;
    let a: ndarray::ArrayD<f64> = (&f).try_into().ctx(|| "FID features".into())?;
    a.into_dimensionality().ctx(|| "FID features".into())
}

fn describe_synth(
    gan: &str,
    class: &str,
    images: &Tensor,
    train: &Tensor,
    selection: ClassSynthReport,
    quality: &mut Quality,
    out: &Path,
) -> Result<SynthSummary> {
    let grid = format!("synthetic_{gan}_{class}.png");
    let n = images.size()[0].min(64);
    io::save_grid(&images.narrow(0, 0, n), 8, out.join(&grid)).ctx(|| format!("writing {grid}"))?;
    let (fid_v, kid_v) = quality.fid_kid(class, train, images)?;
    Ok(SynthSummary {
        gan: gan.into(),
        class: class.into(),
        selection,
        fid: fid_v,
        kid: kid_v,
        grid,
    })
}

fn aggregate(cfg: &ReproConfig, cells: &[CellResult]) -> Result<Vec<Aggregate>> {
    let mut out = Vec::new();
    for plan in &cfg.models {
        let raw0 = cells
            .iter()
            .find(|c| c.model == plan.kind.name() && c.scenario == "raw" && c.seed == 0);
        for &scenario in &cfg.scenarios {
            let mine: Vec<&CellResult> = cells
                .iter()
                .filter(|c| c.model == plan.kind.name() && c.scenario == scenario.name())
                .collect();
            if mine.is_empty() {
                continue;
            }
            let acc: Vec<f64> = mine.iter().map(|c| c.accuracy.value).collect();
            let auc: Vec<f64> = mine.iter().filter_map(|c| c.auc.map(|a| a.value)).collect();
            let vs_raw = match (raw0, mine.iter().find(|c| c.seed == 0)) {
                (Some(r), Some(c)) if scenario != Scenario::Raw => {
                    let cmp = compare_models(
                        &c.labels,
                        c.probs.as_slice(),
                        r.probs.as_slice(),
                        Average::Binary { positive: 0 },
                        &BootstrapConfig::default(),
                    )
                    .ctx(|| "paired comparison with raw".into())?;
                    Some(VsRaw {
                        accuracy_diff: Estimate {
                            value: cmp.accuracy.diff,
                            lower: Some(cmp.accuracy.lower),
                            upper: Some(cmp.accuracy.upper),
                        },
                        mcnemar_p: cmp.mcnemar.p_value,
                    })
                }
                _ => None,
            };
            out.push(Aggregate {
                model: plan.kind.name().into(),
                scenario: scenario.name().into(),
                accuracy: summarize(&acc).ctx(|| "summarising accuracy".into())?,
                auc: if auc.is_empty() {
                    None
                } else {
                    summarize(&auc).ok()
                },
                paper_accuracy: paper_accuracy(plan.kind, scenario),
                vs_raw,
            });
        }
    }
    Ok(out)
}

fn write_outputs(r: &ReproResults, out: &Path) -> Result<()> {
    write_json(&out.join("results.json"), r)?;
    // ROC curves, one plot per model (seed 0).
    for plan in &r.config.models {
        let series: Vec<(&str, Vec<(f64, f64)>)> = r
            .cells
            .iter()
            .filter(|c| c.model == plan.kind.name() && c.seed == 0 && !c.roc_fpr.is_empty())
            .map(|c| {
                let title = Scenario::parse(&c.scenario).map_or(c.scenario.as_str(), |s| s.title());
                (
                    title,
                    c.roc_fpr
                        .iter()
                        .copied()
                        .zip(c.roc_tpr.iter().copied())
                        .collect(),
                )
            })
            .collect();
        if !series.is_empty() {
            let path = out.join(format!("roc_{}.png", plan.kind));
            line_plot(
                &path,
                &format!("ROC (COVID), {}", plan.kind.display_name()),
                "false positive rate",
                &series,
            )
            .ctx(|| format!("plotting {}", path.display()))?;
        }
    }
    for g in &r.gans {
        let src = Path::new(&g.dir).join("losses.png");
        let dst = out.join(format!("gan_losses_{}.png", g.name.replace('/', "_")));
        if src.is_file() {
            std::fs::copy(&src, &dst).map_err(|e| io_err(&dst, e))?;
        }
    }
    let md = report_markdown(r, out);
    io::write_atomic(&out.join("report.md"), md.as_bytes()).ctx(|| "writing report.md".into())
}

fn pct(e: &Estimate) -> String {
    match (e.lower, e.upper) {
        (Some(lo), Some(hi)) => format!("{:.3} [{lo:.3}, {hi:.3}]", e.value),
        _ => format!("{:.3}", e.value),
    }
}

fn report_markdown(r: &ReproResults, out: &Path) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let title = if r.synthetic_data {
        "SYNTHETIC STAND-IN DATA (phantom, not CT): GAN-based augmentation reproduction"
    } else {
        "GAN-based data augmentation on COVID-CT: reproduction"
    };
    let _ = writeln!(s, "# {title}\n");
    let _ = writeln!(
        s,
        "Preset `{}`, data: {}, device {}, {:.1} min wall time ({} seed(s)).\n",
        r.config.preset,
        r.data,
        r.device,
        r.seconds / 60.0,
        r.config.seeds
    );
    let _ = writeln!(
        s,
        "Test set: the official split, {} images ({}). The paper's test set had 199 images from its own split, so its numbers are not on the same images.\n",
        r.test_counts.iter().sum::<usize>(),
        r.class_names.iter().zip(&r.test_counts).map(|(c, n)| format!("{n} {c}")).collect::<Vec<_>>().join(", ")
    );
    if !r.config.reductions.is_empty() {
        let _ = writeln!(s, "Reduced from the paper in this preset:\n");
        for x in &r.config.reductions {
            let _ = writeln!(s, "- {x}");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Test accuracy: ours vs the paper\n");
    let _ = writeln!(s, "Ours: accuracy with its 95% Wilson interval (seed 0; mean ± sd over seeds when more than one). Paper values in parentheses; * = Loey et al.'s value quoted by the paper. The CGAN column stands in for Loey et al.'s CGAN set, which is not available.\n");
    let scen = &r.config.scenarios;
    let _ = writeln!(
        s,
        "| Model | weights | {} |",
        scen.iter()
            .map(|x| x.title())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(s, "|---|---|{}", "---|".repeat(scen.len()));
    for plan in &r.config.models {
        let weights = r
            .cells
            .iter()
            .find(|c| c.model == plan.kind.name())
            .map_or("", |c| c.weights.as_str());
        let mut row = format!("| {} | {} |", plan.kind.display_name(), weights);
        for &sc in scen {
            let agg = r
                .aggregates
                .iter()
                .find(|a| a.model == plan.kind.name() && a.scenario == sc.name());
            let cell0 = r
                .cells
                .iter()
                .find(|c| c.model == plan.kind.name() && c.scenario == sc.name() && c.seed == 0);
            let mut txt = cell0.map_or("—".into(), |c| pct(&c.accuracy));
            if let Some(a) = agg {
                if a.accuracy.n > 1 {
                    let _ = write!(
                        txt,
                        "; {:.3} ± {:.3}",
                        a.accuracy.mean,
                        a.accuracy.sd.unwrap_or(0.0)
                    );
                }
                if let Some((p, star)) = a.paper_accuracy {
                    let _ = write!(txt, " ({p:.4}{})", if star { "*" } else { "" });
                }
            }
            let _ = write!(row, " {txt} |");
        }
        let _ = writeln!(s, "{row}");
    }
    let _ = writeln!(
        s,
        "\n## Every metric (seed 0), COVID as the positive class\n"
    );
    let _ = writeln!(s, "| Model | Scenario | train images | accuracy | precision | recall | specificity | F1 | AUC | epochs (best) | vs raw: Δacc [95% CI], McNemar p |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for c in r.cells.iter().filter(|c| c.seed == 0) {
        let agg = r
            .aggregates
            .iter()
            .find(|a| a.model == c.model && a.scenario == c.scenario);
        let vs = agg.and_then(|a| a.vs_raw.as_ref()).map_or("—".into(), |v| {
            format!("{:+.3}, p = {:.3}", v.accuracy_diff.value, v.mcnemar_p)
                + &match (v.accuracy_diff.lower, v.accuracy_diff.upper) {
                    (Some(lo), Some(hi)) => format!(" [{lo:+.3}, {hi:+.3}]"),
                    _ => String::new(),
                }
        });
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} |",
            c.model,
            c.scenario,
            c.train_images,
            pct(&c.accuracy),
            pct(&c.precision),
            pct(&c.recall),
            pct(&c.specificity),
            pct(&c.f1),
            c.auc.as_ref().map_or("—".into(), pct),
            c.epochs,
            c.best_epoch,
            vs
        );
    }
    let _ = writeln!(s, "\n## GANs and their synthetic images\n");
    for g in &r.gans {
        let _ = writeln!(
            s,
            "- GAN {}: {} epochs{}; loss curves `gan_losses_{}.png`",
            g.name,
            g.epochs,
            if g.seconds > 0.0 {
                format!(", trained in {:.1} min", g.seconds / 60.0)
            } else {
                ", reused from an earlier run".into()
            },
            g.name.replace('/', "_")
        );
    }
    let _ = writeln!(s, "\n| GAN | class | kept / generated | near-copies dropped | D score kept (all) | NN RMS distance to training: mean / min | FID | KID | samples |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    let opt = |v: Option<f64>| v.map_or("n/a".into(), |x| format!("{x:.3}"));
    for x in &r.synthetic {
        let sel = &x.selection;
        let _ = writeln!(
            s,
            "| {} | {} | {} / {} | {} | {:.3} ({:.3}) | {:.3} / {:.3} | {} | {} | `{}` |",
            x.gan,
            x.class,
            sel.kept,
            sel.generated,
            sel.near_copies,
            sel.d_score_kept,
            sel.d_score_all,
            sel.nn_mean,
            sel.nn_min,
            opt(x.fid),
            opt(x.kid),
            x.grid
        );
    }
    let _ = writeln!(s, "\nFID and KID use EfficientNet-Lite0 ImageNet features (1,280-d, images upsampled to 224²) against the class's training images; with a few hundred images they are biased upwards and only comparable within this report. Nearest-neighbour distances are per-pixel RMS in [0, 1] intensity.\n");
    let _ = writeln!(s, "## Plots\n");
    for plan in &r.config.models {
        let _ = writeln!(
            s,
            "- ROC curves of {}: `roc_{}.png`",
            plan.kind.display_name(),
            plan.kind
        );
    }
    let _ = writeln!(
        s,
        "- Classifier loss/accuracy curves: `cells/<cell>/curves.png`"
    );
    let _ = writeln!(
        s,
        "\nEverything in machine-readable form: `results.json` (results folder `{}`).",
        out.display()
    );
    s
}
