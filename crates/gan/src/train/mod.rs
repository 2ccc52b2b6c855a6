//! GAN training: epochs over a dataset, one-sided label smoothing, DiffAugment, atomic
//! checkpoints with exact resume, fixed-latent sample grids, loss history (JSON + PNG).

use std::path::{Path, PathBuf};

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use ganaug_data::stream::{for_each_batch, BatchPlan, ImageSource};
use ganaug_data::{io, BatchOrder, TensorDataset};
use ganaug_train::optim::{self, NamedTensor};
use ganaug_train::{
    copy_into_vars, data_fingerprint, load_checkpoint, save_checkpoint, zero_grad, Adam,
    CheckpointMeta, CheckpointPolicy, Curves, EpochLoop, IntoChecked, KeepCheckpoints, Observer,
    Optimizer, Progress, RunConfig, RunDir, StopReason, TrainError, TrainStep, VarMatch,
};

use crate::loss::{check_real_label, discriminator_loss, generator_loss};
use crate::{Discriminator, GanConfig, GanError, Generator, Result};

mod config;
mod params;
pub(crate) use config::read_run;
pub use config::{EpochStats, StepStats, TrainConfig};
pub(crate) use params::trainable;
use params::Frozen;

/// The checkpoint format of [`GanTrainer`] (see `ganaug-train`'s resume policy).
pub const CHECKPOINT_FORMAT: &str = "ganaug-gan-2";

/// What a checkpoint records as the run's configuration; a resume may raise the number of
/// epochs to train to.
#[derive(Serialize, Deserialize)]
struct GanRun {
    gan: GanConfig,
    train: TrainConfig,
}

impl RunConfig for GanRun {
    fn fixed(&self) -> Self {
        GanRun {
            gan: self.gan.clone(),
            train: TrainConfig {
                epochs: 0,
                ..self.train.clone()
            },
        }
    }
}

/// A generator, a discriminator, their optimisers and the run's history.
#[derive(Debug)]
pub struct GanTrainer {
    nets: Nets,
    progress: Progress<EpochStats>,
    /// The checkpoint this run resumed from, checked against the data at the next `fit`.
    resumed: Option<(PathBuf, CheckpointMeta)>,
}

/// The networks, their optimisers and what a checkpoint holds besides the history.
#[derive(Debug)]
struct Nets {
    gan: GanConfig,
    cfg: TrainConfig,
    vs: nn::VarStore,
    g: Generator,
    d: Discriminator,
    /// The generator's and the discriminator's trainable variables, sorted by name.
    g_params: Vec<NamedTensor>,
    d_params: Vec<NamedTensor>,
    opt_g: Adam,
    opt_d: Adam,
    step: u64,
    fixed_z: Tensor,
    fixed_labels: Option<Tensor>,
    /// Fingerprint of the data trained on (empty before the first `fit`).
    data: String,
}

impl GanTrainer {
    /// A fresh run on `device`, with checked configurations (plain ones are checked here).
    pub fn new(
        gan: impl IntoChecked<GanConfig>,
        cfg: impl IntoChecked<TrainConfig>,
        device: Device,
    ) -> Result<Self> {
        let gan = gan.into_checked()?.into_inner();
        let cfg = cfg.into_checked()?.into_inner();
        check_real_label(&gan, cfg.real_label)?;
        tch::manual_seed(cfg.seed as i64);
        let vs = nn::VarStore::new(device);
        let g = Generator::new(&(vs.root() / G), &gan)?;
        let d = Discriminator::new(&(vs.root() / D), &gan)?;
        let (g_params, d_params) = (trainable(&vs, "g."), trainable(&vs, "d."));
        let opt_g = Adam::new(&g_params, cfg.lr, cfg.betas)?;
        let opt_d = Adam::new(&d_params, cfg.lr, cfg.betas)?;
        let n = cfg.grid_samples;
        let fixed_z = Tensor::f_randn([n, gan.latent_dim], (Kind::Float, device))?;
        // A conditional grid shows the classes in turn, one per row of 8.
        let fixed_labels = gan
            .n_classes
            .map(|c| {
                Tensor::f_arange(n, (Kind::Int64, device))
                    .and_then(|t| t.f_div_scalar_mode(8, "floor")?.f_remainder(c))
            })
            .transpose()?;
        let nets = Nets {
            gan,
            cfg,
            vs,
            g,
            d,
            g_params,
            d_params,
            opt_g,
            opt_d,
            step: 0,
            fixed_z,
            fixed_labels,
            data: String::new(),
        };
        Ok(GanTrainer {
            nets,
            progress: Progress::default(),
            resumed: None,
        })
    }

    /// The newest checkpoint that [`GanTrainer::fit`] wrote into a run folder
    /// (`dir/checkpoints/epoch_*.safetensors`), if any.
    pub fn latest_checkpoint(dir: &Path) -> Option<PathBuf> {
        RunDir::new(dir).latest_checkpoint()
    }

    /// Continues a run from a checkpoint written by [`GanTrainer::save_checkpoint`], with its
    /// configuration; `epochs` (if given) raises the total to train to. The next
    /// [`GanTrainer::fit`] refuses data other than the checkpoint's.
    pub fn resume(path: impl AsRef<Path>, device: Device, epochs: Option<usize>) -> Result<Self> {
        let path = path.as_ref();
        let (
            GanRun {
                gan,
                train: mut cfg,
            },
            meta,
        ) = read_run(path, CHECKPOINT_FORMAT)?;
        if let Some(e) = epochs {
            cfg.epochs = e;
        }
        let mut t = GanTrainer::new(gan, cfg, device)?;
        t.progress = t.nets.load(path)?;
        t.resumed = Some((path.to_path_buf(), meta));
        Ok(t)
    }

    /// Epochs done so far.
    pub fn epoch(&self) -> usize {
        self.progress.epochs()
    }

    /// Per-epoch losses so far.
    pub fn history(&self) -> &[EpochStats] {
        &self.progress.history
    }

    /// The generator.
    pub fn generator(&self) -> &Generator {
        &self.nets.g
    }

    /// The discriminator.
    pub fn discriminator(&self) -> &Discriminator {
        &self.nets.d
    }

    /// The network configuration.
    pub fn gan_config(&self) -> &GanConfig {
        &self.nets.gan
    }

    /// The variables (`g.*`, `d.*`).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.nets.vs
    }

    /// Trains until `epochs` are done (`ganaug-train`'s epoch loop). With `out_dir`, writes
    /// checkpoints, sample grids, `history.json`, `metrics.jsonl` and `losses.png` there; a
    /// folder holding another run's history is refused (resume that run instead). Stops with
    /// `TrainError::NonFinite` on a NaN/inf loss, checked once per epoch (the steps keep their
    /// statistics on the device: no host synchronisation per step). `observer` hears of each
    /// epoch (`ganaug_train::ConsoleProgress` for a bar, `Silent` for nothing).
    pub fn fit(
        &mut self,
        data: &TensorDataset,
        out_dir: Option<&Path>,
        observer: &dyn Observer,
    ) -> Result<()> {
        self.fit_source(data, out_dir, observer)
    }

    /// [`GanTrainer::fit`] on any [`ImageSource`]: an in-memory set is copied to the device
    /// once, a stream ([`ganaug_data::StreamDataset`]) is read batch by batch from disk, the
    /// next batches on a background thread. The same data gives the same batches (and a run
    /// resumes across the switch: the fingerprint is of the images).
    pub fn fit_source(
        &mut self,
        data: &dyn ImageSource,
        out_dir: Option<&Path>,
        observer: &dyn Observer,
    ) -> Result<()> {
        self.nets.check_data(data, self.resumed.as_ref())?;
        let run = out_dir.map(RunDir::new);
        let on_device = match data.in_memory() {
            Some(d) => Some(d.to_device(self.nets.vs.device())?),
            None => None,
        };
        let data: &dyn ImageSource = match &on_device {
            Some(d) => d,
            None => data,
        };
        let cfg = &self.nets.cfg;
        let epoch_loop = EpochLoop {
            name: "GAN",
            seed: cfg.seed,
            epochs: cfg.epochs,
            run: run.as_ref(),
            resume: false,
            subdirs: &[SAMPLES],
            checkpoints: CheckpointPolicy {
                every: cfg.checkpoint_every,
                keep: KeepCheckpoints::All,
            },
            observer,
        };
        let mut step = GanEpochs {
            nets: &mut self.nets,
            data,
            run: run.as_ref(),
        };
        epoch_loop.run(&mut step, &mut self.progress)?;
        Ok(())
    }

    /// One optimisation step of both networks on a batch of real images (`[B, C, S, S]`, on
    /// the trainer's device; `labels` `[B]` for a conditional GAN): discriminator first, then
    /// generator. Returns the batch's losses and mean discriminator probabilities.
    pub fn train_step(
        &mut self,
        real: &Tensor,
        labels: Option<&Tensor>,
        rng: &mut impl rand::Rng,
    ) -> Result<StepStats> {
        let v = Vec::<f64>::try_from(
            &self
                .nets
                .step_on_device(real, labels, rng)?
                .f_to_kind(Kind::Double)?
                .f_to_device(tch::Device::Cpu)?,
        )?;
        let stats = StepStats {
            d_loss: v[0],
            g_loss: v[1],
            d_real: v[2],
            d_fake: v[3],
        };
        for (what, value) in [
            ("discriminator loss", stats.d_loss),
            ("generator loss", stats.g_loss),
        ] {
            if !value.is_finite() {
                let epoch = self.epoch();
                return Err(TrainError::NonFinite { what, value, epoch }.into());
            }
        }
        Ok(stats)
    }

    /// Images from the run's fixed latents (the same ones at every epoch), in eval mode.
    pub fn sample_grid(&self) -> Result<Tensor> {
        self.nets.sample_grid()
    }

    /// Writes everything needed to continue exactly: weights, optimiser moments, history,
    /// configs, fixed latents and the data's fingerprint. Atomic.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        self.nets.save(path.as_ref(), &self.progress)
    }

    /// Writes `history.json` and (with the `plot` feature) `losses.png` into `dir`.
    pub fn write_history(&self, dir: &Path) -> Result<()> {
        write_gan_history(&RunDir::new(dir), &self.progress.history)
    }
}

/// The name of the generator's and the discriminator's variables' roots.
const G: &str = "g";
const D: &str = "d";
/// The run folder's subfolder of sample grids.
const SAMPLES: &str = "samples";

fn write_gan_history(run: &RunDir, history: &[EpochStats]) -> Result<()> {
    let series = |f: fn(&EpochStats) -> f64| {
        history
            .iter()
            .map(|h| (h.epoch as f64, f(h)))
            .collect::<Vec<_>>()
    };
    let curves = Curves {
        file: "losses.png",
        title: "GAN losses",
        x_label: "epoch",
        series: vec![
            ("discriminator", series(|h| h.d_loss)),
            ("generator", series(|h| h.g_loss)),
        ],
    };
    ganaug_train::write_history(run, &history, &curves)?;
    Ok(())
}

impl Nets {
    /// Refuses data the networks cannot train on, or other data than a resumed checkpoint's;
    /// records the data's fingerprint.
    fn check_data(
        &mut self,
        data: &dyn ImageSource,
        resumed: Option<&(PathBuf, CheckpointMeta)>,
    ) -> Result<()> {
        let (s, c) = (self.gan.size, self.gan.channels);
        if data.image_size() != (s, s) || data.channels() != c {
            let (h, w) = data.image_size();
            return Err(GanError::Shape {
                what: "training images",
                expected: format!("[N, {c}, {s}, {s}]"),
                got: format!("{:?}", [data.len() as i64, data.channels(), h, w]),
            });
        }
        if data.len() < self.cfg.batch_size {
            return Err(GanError::config(
                "batch_size",
                format!(
                    "{} is larger than the dataset ({} images)",
                    self.cfg.batch_size,
                    data.len()
                ),
            ));
        }
        let fingerprint = data_fingerprint(&[data])?;
        if let Some((path, meta)) = resumed {
            meta.check_resume(path, CHECKPOINT_FORMAT, &self.run_config(), &fingerprint)?;
        }
        self.data = fingerprint;
        Ok(())
    }

    fn run_config(&self) -> GanRun {
        GanRun {
            gan: self.gan.clone(),
            train: self.cfg.clone(),
        }
    }

    fn sample_grid(&self) -> Result<Tensor> {
        tch::no_grad(|| {
            self.g
                .forward_t(&self.fixed_z, self.fixed_labels.as_ref(), false)
        })
    }

    fn save(&self, path: &Path, progress: &Progress<EpochStats>) -> Result<()> {
        let mut tensors: Vec<NamedTensor> = self.vs.variables().into_iter().collect();
        tensors.extend(optim::save_state(&self.opt_g, OPT_G));
        tensors.extend(optim::save_state(&self.opt_d, OPT_D));
        tensors.push((FIXED_Z.into(), self.fixed_z.shallow_clone()));
        if let Some(l) = &self.fixed_labels {
            tensors.push((FIXED_LABELS.into(), l.shallow_clone()));
        }
        let meta = CheckpointMeta::new(CHECKPOINT_FORMAT, &self.run_config(), &self.data)?
            .with_state("history", &progress.history)?
            .with_state("step", &self.step)?;
        Ok(save_checkpoint(path, &tensors, &meta)?)
    }

    /// Loads a checkpoint of this configuration's networks: weights, optimiser moments, fixed
    /// latents, step count, data fingerprint; returns the run's progress.
    fn load(&mut self, path: &Path) -> Result<Progress<EpochStats>> {
        let (tensors, meta) = load_checkpoint(path, self.vs.device())?;
        let missing = |what: &str| GanError::Checkpoint {
            path: path.into(),
            reason: format!("{what} missing"),
        };
        let rules = VarMatch {
            allow_missing: &[],
            ignore_unexpected: &[OPT_G, OPT_D, "fixed_"],
        };
        copy_into_vars(&self.vs.variables(), &tensors, &rules, path)?;
        optim::load_state(&mut self.opt_g, OPT_G, &tensors)?;
        optim::load_state(&mut self.opt_d, OPT_D, &tensors)?;
        self.fixed_z = tensors
            .get(FIXED_Z)
            .ok_or_else(|| missing(FIXED_Z))?
            .shallow_clone();
        self.fixed_labels = tensors.get(FIXED_LABELS).map(Tensor::shallow_clone);
        self.step = meta.state("step", path)?;
        self.data = meta.data.clone();
        Ok(Progress {
            history: meta.state("history", path)?,
            stop: None,
        })
    }

    /// One epoch: shuffled batches of the epoch's seed, a step of both networks on each.
    fn train_epoch(
        &mut self,
        data: &dyn ImageSource,
        epoch: usize,
        seed: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<EpochStats> {
        // The step statistics stay on the device and are summed there: one host transfer per
        // epoch instead of six per step (the loop checks them once per epoch).
        let mut sum: Option<Tensor> = None;
        let mut batches = 0usize;
        let plan = BatchPlan {
            drop_last: true,
            ..BatchPlan::new(
                self.cfg.batch_size,
                BatchOrder::Shuffled { seed },
                self.vs.device(),
            )
        };
        for_each_batch::<GanError>(data, plan, |batch| {
            let labels = self.gan.n_classes.map(|_| batch.labels.shallow_clone());
            let step = self.step_on_device(&batch.images, labels.as_ref(), rng)?;
            sum = Some(match sum.take() {
                Some(s) => s.f_add(&step)?,
                None => step,
            });
            batches += 1;
            Ok(())
        })?;
        let n = batches.max(1) as f64;
        let v = match sum {
            Some(s) => {
                Vec::<f64>::try_from(&s.f_to_kind(Kind::Double)?.f_to_device(tch::Device::Cpu)?)?
            }
            None => vec![0.0; 4],
        };
        Ok(EpochStats {
            epoch: epoch + 1,
            d_loss: v[0] / n,
            g_loss: v[1] / n,
            d_real: v[2] / n,
            d_fake: v[3] / n,
            seconds: 0.0,
        })
    }

    /// One optimisation step of both networks without any host synchronisation: the step's
    /// statistics as a `[4]` tensor on the device (discriminator loss, generator loss, mean D
    /// probability of the real and of the fake batch), unchecked.
    fn step_on_device(
        &mut self,
        real: &Tensor,
        labels: Option<&Tensor>,
        rng: &mut impl rand::Rng,
    ) -> Result<Tensor> {
        let b = self.gan.check_images("real batch", real, 1)?;
        // Label values are checked here once; the networks then check shapes only.
        if let Some(y) = labels {
            self.gan.check_labels(y, b, true)?;
        }
        let z = Tensor::f_randn([b, self.gan.latent_dim], (Kind::Float, self.vs.device()))?;
        let fake = self.g.forward_inner(&z, labels, true, false)?;
        let (real_in, fake_in) = match &self.cfg.diffaugment {
            Some(p) => (p.apply(real, rng)?, p.apply(&fake.detach(), rng)?),
            None => (real.shallow_clone(), fake.detach()),
        };
        let loss_d = self.discriminator_loss(&real_in, &fake_in, labels, b)?;
        zero_grad(&self.d_params)?;
        loss_d.0.backward();
        self.opt_d.step(&self.d_params)?;

        let fake_for_g = match &self.cfg.diffaugment {
            Some(p) => p.apply(&fake, rng)?,
            None => fake,
        };
        // The generator's loss needs gradients through the discriminator, not for its
        // weights: frozen for this pass (restored however the block exits).
        let loss_g = {
            let _frozen = Frozen::new(&self.d_params);
            let d_gen = self.d.forward_inner(&fake_for_g, labels, true, false)?;
            let loss_g = generator_loss(self.gan.arch.hinge_loss(), &d_gen)?;
            zero_grad(&self.g_params)?;
            loss_g.backward();
            loss_g
        };
        self.opt_g.step(&self.g_params)?;
        self.step += 1;
        let (loss_d, d_real, d_fake) = loss_d;
        let mean_p = |logits: &Tensor| -> Result<Tensor> {
            Ok(logits.f_detach()?.f_sigmoid()?.f_mean(Kind::Float)?)
        };
        Ok(Tensor::f_stack(
            &[
                loss_d.f_detach()?.f_to_kind(Kind::Float)?,
                loss_g.f_detach()?.f_to_kind(Kind::Float)?,
                mean_p(&d_real)?,
                mean_p(&d_fake)?,
            ],
            0,
        )?)
    }

    /// The discriminator's loss on a real and a fake batch of `b` images, with its logits on
    /// each.
    fn discriminator_loss(
        &self,
        real_in: &Tensor,
        fake_in: &Tensor,
        labels: Option<&Tensor>,
        b: i64,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let hinge = self.gan.arch.hinge_loss();
        let (d_real, d_fake, recon) = if self.gan.arch.joint_discriminator_pass() {
            // No batch norm: one pass over real and fake together is the same function of
            // each image, with one set of larger matrix products instead of two.
            let both = Tensor::f_cat(&[real_in, fake_in], 0)?;
            let both_labels = labels.map(|y| Tensor::f_cat(&[y, y], 0)).transpose()?;
            let logits = self
                .d
                .forward_inner(&both, both_labels.as_ref(), true, false)?;
            (logits.f_narrow(0, 0, b)?, logits.f_narrow(0, b, b)?, None)
        } else {
            // The batch norms of the other discriminators must see real and fake batches apart
            // (Radford et al.). FastGAN's discriminator also reconstructs the real batch.
            let (d_real, recon) = self.d.forward_parts(real_in, labels, true, false, hinge)?;
            (
                d_real,
                self.d.forward_inner(fake_in, labels, true, false)?,
                recon,
            )
        };
        let loss = discriminator_loss(hinge, self.cfg.real_label, &d_real, &d_fake, recon)?;
        Ok((loss, d_real, d_fake))
    }
}

/// Where the optimisers' and the sample grid's tensors sit in a checkpoint.
const OPT_G: &str = "opt_g";
const OPT_D: &str = "opt_d";
const FIXED_Z: &str = "fixed_z";
const FIXED_LABELS: &str = "fixed_labels";

/// The GAN's side of the epoch loop: the networks, the data on their device, the run folder.
struct GanEpochs<'a> {
    nets: &'a mut Nets,
    data: &'a dyn ImageSource,
    run: Option<&'a RunDir>,
}

impl TrainStep for GanEpochs<'_> {
    type Record = EpochStats;
    type Error = GanError;

    fn train_epoch(&mut self, epoch: usize, seed: u64, rng: &mut ChaCha8Rng) -> Result<EpochStats> {
        self.nets.train_epoch(self.data, epoch, seed, rng)
    }

    /// Writes the fixed-latent sample grid when one is due.
    fn end_epoch(&mut self, progress: &Progress<EpochStats>) -> Result<Option<StopReason>> {
        let (Some(run), done) = (self.run, progress.epochs()) else {
            return Ok(None);
        };
        let every = self.nets.cfg.sample_every;
        if done == self.nets.cfg.epochs || (every > 0 && done % every == 0) {
            let grid = self.nets.sample_grid()?;
            let file = run.join(SAMPLES).join(format!("epoch_{done:05}.png"));
            io::save_grid(&grid, 8, file)?;
        }
        Ok(None)
    }

    fn save_checkpoint(&self, path: &Path, progress: &Progress<EpochStats>) -> Result<()> {
        self.nets.save(path, progress)
    }

    fn restore(&mut self, path: &Path) -> Result<Progress<EpochStats>> {
        self.nets.load(path)
    }

    fn write_artifacts(&self, run: &RunDir, progress: &Progress<EpochStats>) -> Result<()> {
        write_gan_history(run, &progress.history)
    }
}
