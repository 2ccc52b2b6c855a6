//! Trains the GAN(s) of the paper on the COVID-CT training split — one per class as the paper
//! did, or one conditional GAN — and optionally synthesizes a selected synthetic set.
//!
//! ```text
//! # CPU preset: one DCGAN per class at 64² with DiffAugment (COVID ~11 min, NonCOVID ~15 min)
//! cargo run --release --example train_gan -- --data ../shared/data/covid-ct --preset cpu --synthesize 125
//! # the paper's setting (GPU work): paper GAN at 256², 3300 epochs, checkpoints every 300
//! cargo run --release --example train_gan -- --data ../shared/data/covid-ct --preset paper
//! # continue an interrupted run from its latest checkpoints
//! cargo run --release --example train_gan -- --data ../shared/data/covid-ct --preset cpu --resume
//! ```
//!
//! Writes, per class, `OUT/<class>/{checkpoints/,samples/,history.json,losses.png}`; with
//! `--synthesize K`, `OUT/synthetic/<class>/*.png` and `OUT/synthesis.json`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use ganaug::augment::DiffAugment;
use ganaug::data::{
    self, io, phantom::PhantomConfig, FolderConfig, ImageFolder, LoadOptions, Split, TensorDataset,
};
use ganaug::device::DeviceChoice;
use ganaug::gan::{
    synthesize_class, synthetic_dataset, Arch, ClassModel, GanConfig, GanTrainer, SynthConfig,
    TrainConfig,
};

#[derive(Parser, Debug)]
#[command(about = "Train the paper's GAN(s) on COVID-CT and synthesize a selected synthetic set", long_about = None)]
struct Args {
    /// COVID-CT folder. Without it: the synthetic phantom stand-in (not real CT).
    #[arg(long)]
    data: Option<PathBuf>,
    /// `cpu`: one Radford DCGAN (32 filters) per class at 64², DiffAugment translation + cutout,
    /// 550 epochs (about 11 minutes for the COVID class, 15 for NonCOVID, on 2 cores; samples
    /// are recognisable axial chest CT). `paper`: the paper's GAN
    /// at 256², one per class, 3300 epochs, checkpoints every 300 (GPU work: about 27 s per
    /// step on 2 CPU cores).
    #[arg(long, value_enum, default_value = "cpu")]
    preset: Preset,
    /// Override the preset's epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Override the preset's mode: `per-class` (one GAN per class, as the paper) or
    /// `conditional` (one GAN over all classes, label embedded in both networks).
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// In per-class mode, train only this class (by name, e.g. `COVID`).
    #[arg(long)]
    class: Option<String>,
    /// One-sided label smoothing: real target 0.9 (the paper's advice).
    #[arg(long)]
    smooth: bool,
    /// Continue from the latest checkpoint in the output folder.
    #[arg(long)]
    resume: bool,
    /// Keep this many synthetic images per class (4x as many candidates are generated).
    #[arg(long, default_value_t = 0)]
    synthesize: usize,
    /// Output folder.
    #[arg(long, default_value = "runs/gan")]
    out: PathBuf,
    /// Seed of everything random.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device: auto, cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Autocast-style bf16 convolutions / dense layers (f32 weights, optimiser and loss). Fast
    /// on GPUs and CPUs with bf16 instructions; slow on others.
    #[arg(long)]
    bf16: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Preset {
    Cpu,
    Paper,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    PerClass,
    Conditional,
}

impl Args {
    fn conditional(&self) -> bool {
        // Both presets train one GAN per class, as the paper did.
        self.mode == Some(Mode::Conditional)
    }
}

fn configs(args: &Args, n_classes: i64) -> (GanConfig, TrainConfig) {
    let (gan, mut train) = match args.preset {
        Preset::Cpu => (
            GanConfig {
                arch: Arch::Dcgan { ngf: 32, ndf: 32 },
                size: 64,
                ..GanConfig::default()
            },
            TrainConfig {
                epochs: 550,
                diffaugment: Some(DiffAugment {
                    color: false,
                    translation: Some(0.125),
                    cutout: Some(0.5),
                }),
                checkpoint_every: 50,
                sample_every: 25,
                ..TrainConfig::default()
            },
        ),
        Preset::Paper => (GanConfig::default(), TrainConfig::default()),
    };
    train.seed = args.seed;
    if let Some(e) = args.epochs {
        train.epochs = e;
    }
    if args.smooth {
        train.real_label = 0.9;
    }
    let gan = GanConfig {
        n_classes: args.conditional().then_some(n_classes),
        bf16: args.bf16,
        ..gan
    };
    (gan, train)
}

fn load_train(args: &Args, size: u32, device: tch::Device) -> Result<TensorDataset> {
    Ok(match &args.data {
        Some(dir) => {
            let folder = ImageFolder::open(dir, &FolderConfig::covid_ct())
                .with_context(|| format!("opening {}", dir.display()))?;
            let mut opts = LoadOptions::with_size(size).with_device(device);
            opts.cache_dir = data::default_cache_dir();
            folder.load(Split::Train, &opts)?.0
        }
        None => {
            println!(
                "No --data: training on the SYNTHETIC PHANTOM stand-in dataset (not real CT)."
            );
            let cfg = PhantomConfig {
                size,
                ..PhantomConfig::default()
            };
            data::phantom_splits(&cfg, device)?.train
        }
    })
}

fn train_one(
    args: &Args,
    gan: GanConfig,
    cfg: TrainConfig,
    data: &TensorDataset,
    dir: &Path,
    device: tch::Device,
) -> Result<GanTrainer> {
    let mut trainer = match (args.resume, GanTrainer::latest_checkpoint(dir)) {
        (true, Some(ckpt)) => {
            println!("resuming from {}", ckpt.display());
            GanTrainer::resume(&ckpt, device, Some(cfg.epochs))?
        }
        (true, None) => bail!(
            "--resume: no checkpoint under {}",
            dir.join("checkpoints").display()
        ),
        (false, _) => GanTrainer::new(gan, cfg, device)?,
    };
    let start = std::time::Instant::now();
    trainer
        .fit(data, Some(dir), true)
        .with_context(|| format!("training into {}", dir.display()))?;
    let epochs = trainer.history().len();
    let secs = start.elapsed().as_secs_f64();
    if let Some(last) = trainer.history().last() {
        println!(
            "{}: {epochs} epochs, {secs:.0} s this run ({:.2} s/epoch); last D {:.3} G {:.3}",
            dir.display(),
            last.seconds,
            last.d_loss,
            last.g_loss
        );
    }
    Ok(trainer)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let device = args.device.resolve()?;
    let (probe, _) = configs(&args, 2);
    ganaug::init_process_for(device, probe.size);
    println!("device: {device:?}");
    let data = load_train(&args, probe.size as u32, device)?;
    println!(
        "training data: {} ({} images, per class {:?})",
        data.description,
        data.len(),
        data.class_counts()
    );
    let n_classes = data.class_names.len() as i64;
    let (gan, cfg) = configs(&args, n_classes);
    println!("GAN: {gan:?}\ntraining: {cfg:?}");

    let sc = SynthConfig {
        candidates_per_class: 4 * args.synthesize,
        keep_per_class: args.synthesize,
        seed: args.seed,
        ..SynthConfig::default()
    };
    let mut parts = Vec::new();
    let mut reports = Vec::new();
    if args.conditional() {
        let trainer = train_one(
            &args,
            gan,
            cfg,
            &data,
            &args.out.join("conditional"),
            device,
        )?;
        for label in 0..n_classes {
            if args.synthesize > 0 {
                let model = ClassModel {
                    generator: trainer.generator(),
                    discriminator: trainer.discriminator(),
                    condition: Some(label),
                };
                let class = &data.class_names[label as usize];
                let (imgs, rep) =
                    synthesize_class(model, &data.class_subset(label)?.images, class, &sc)?;
                parts.push((label, imgs));
                reports.push(rep);
            }
        }
    } else {
        if let Some(only) = &args.class {
            if !data.class_names.contains(only) {
                bail!("--class {only}: not one of {:?}", data.class_names);
            }
        }
        for label in 0..n_classes {
            let class = data.class_names[label as usize].clone();
            if args.class.as_ref().is_some_and(|only| *only != class) {
                continue;
            }
            let subset = data.class_subset(label)?;
            let trainer = train_one(
                &args,
                gan.clone(),
                cfg.clone(),
                &subset,
                &args.out.join(&class),
                device,
            )?;
            if args.synthesize > 0 {
                let model = ClassModel {
                    generator: trainer.generator(),
                    discriminator: trainer.discriminator(),
                    condition: None,
                };
                let (imgs, rep) = synthesize_class(model, &subset.images, &class, &sc)?;
                parts.push((label, imgs));
                reports.push(rep);
            }
        }
    }
    if args.synthesize > 0 {
        let what = format!("{:?} preset, seed {}", args.preset, args.seed);
        let synthetic = synthetic_dataset(&parts, &data.class_names, &what)?;
        let written = io::export_image_folder(&synthetic, args.out.join("synthetic"), false)?;
        let json = serde_json::to_vec_pretty(&reports)?;
        io::write_atomic(&args.out.join("synthesis.json"), &json)?;
        for r in &reports {
            println!(
                "{}: kept {} of {} (near-copies dropped: {}), D score kept {:.3} vs all {:.3}, NN RMS distance mean {:.4} min {:.4}",
                r.class, r.kept, r.generated, r.near_copies, r.d_score_kept, r.d_score_all, r.nn_mean, r.nn_min
            );
        }
        println!(
            "wrote {} synthetic PNGs under {}",
            written.len(),
            args.out.join("synthetic").display()
        );
    }
    Ok(())
}
