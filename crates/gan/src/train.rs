//! GAN training: epochs over a dataset, one-sided label smoothing, DiffAugment, atomic
//! checkpoints with exact resume, fixed-latent sample grids, loss history (JSON + PNG).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use ganaug_augment::DiffAugment;
use ganaug_data::{epoch_seed, io, BatchOrder, TensorDataset};
use ganaug_train::{
    copy_into_vars, data_fingerprint, epoch_bar, load_checkpoint, save_checkpoint, CheckpointMeta,
    Curves, IntoChecked, RunDir, Validate, VarMatch,
};

use crate::adam::Adam;
use crate::loss::{check_real_label, discriminator_loss, generator_loss};
use crate::{Arch, Discriminator, GanConfig, GanError, Generator, Result};

/// How to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Total epochs (a resumed run continues up to this number).
    pub epochs: usize,
    /// Mini-batch size (the last, smaller batch of an epoch is dropped).
    pub batch_size: usize,
    /// Adam learning rate of both networks (the paper: 2e-4).
    pub lr: f64,
    /// Adam betas (the paper: 0.5, 0.999).
    pub betas: (f64, f64),
    /// Target for real images in the discriminator loss; 0.9 is one-sided label smoothing
    /// (cross-entropy only: the hinge loss of FastGAN and the projected pair refuses anything
    /// but 1).
    pub real_label: f64,
    /// Differentiable augmentation applied to real and fake images before the discriminator.
    pub diffaugment: Option<DiffAugment>,
    /// Write a checkpoint every this many epochs (0: only at the end).
    pub checkpoint_every: usize,
    /// Write a fixed-latent sample grid every this many epochs (0: only at the end).
    pub sample_every: usize,
    /// Images in the sample grid.
    pub grid_samples: i64,
    /// Seed of everything random (latents, shuffling, dropout, augmentation).
    pub seed: u64,
}

impl Default for TrainConfig {
    /// The paper: 3300 epochs, batch 32, Adam 2e-4 (β1 = 0.5), checkpoints every 300 epochs,
    /// no smoothing, no DiffAugment.
    fn default() -> Self {
        TrainConfig {
            epochs: 3300,
            batch_size: 32,
            lr: 2e-4,
            betas: (0.5, 0.999),
            real_label: 1.0,
            diffaugment: None,
            checkpoint_every: 300,
            sample_every: 300,
            grid_samples: 32,
            seed: 0,
        }
    }
}

impl Validate for TrainConfig {
    type Error = GanError;

    /// Checks every setting.
    fn validate(&self) -> Result<()> {
        if self.batch_size < 2 {
            return Err(GanError::config(
                "batch_size",
                "must be at least 2 (batch norm)",
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(GanError::config(
                "lr",
                format!("{} must be positive", self.lr),
            ));
        }
        if !(0.0..1.0).contains(&self.betas.0) || !(0.0..1.0).contains(&self.betas.1) {
            return Err(GanError::config(
                "betas",
                format!("{:?} must be in [0, 1)", self.betas),
            ));
        }
        if !(0.5..=1.0).contains(&self.real_label) {
            return Err(GanError::config(
                "real_label",
                format!("{} must be in [0.5, 1]", self.real_label),
            ));
        }
        if self.grid_samples < 1 {
            return Err(GanError::config("grid_samples", "must be positive"));
        }
        Ok(())
    }
}

/// Losses of one epoch (means over its batches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Discriminator loss (real + fake BCE; FastGAN: hinge + reconstruction; projected: hinge).
    pub d_loss: f64,
    /// Generator loss (BCE of fakes against "real"; hinge-loss pairs: −mean logit of the
    /// fakes).
    pub g_loss: f64,
    /// Mean discriminator probability on real images.
    pub d_real: f64,
    /// Mean discriminator probability on fakes.
    pub d_fake: f64,
    /// Wall time of the epoch, seconds.
    pub seconds: f64,
}

/// Losses of one training step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Discriminator loss.
    pub d_loss: f64,
    /// Generator loss.
    pub g_loss: f64,
    /// Mean discriminator probability on the real batch.
    pub d_real: f64,
    /// Mean discriminator probability on the fakes.
    pub d_fake: f64,
}

/// The checkpoint format of [`GanTrainer`] (see `ganaug-train`'s resume policy).
pub const CHECKPOINT_FORMAT: &str = "ganaug-gan-2";

/// Settings a resumed run may change: the number of epochs to train to.
const MAY_CHANGE: &[&str] = &["/train/epochs"];

/// What a checkpoint records as the run's configuration.
#[derive(Serialize, Deserialize)]
struct RunConfig<G, T> {
    gan: G,
    train: T,
}

/// A generator, a discriminator, their optimisers and the run's history.
#[derive(Debug)]
pub struct GanTrainer {
    gan: GanConfig,
    cfg: TrainConfig,
    vs: nn::VarStore,
    g: Generator,
    d: Discriminator,
    opt_g: Adam,
    opt_d: Adam,
    history: Vec<EpochStats>,
    step: u64,
    fixed_z: Tensor,
    fixed_labels: Option<Tensor>,
    /// Fingerprint of the data trained on (empty before the first `fit`).
    data: String,
    /// The checkpoint this run resumed from, checked against the data at the next `fit`.
    resumed: Option<(PathBuf, CheckpointMeta)>,
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
        let g = Generator::new(&(vs.root() / "g"), &gan)?;
        let d = Discriminator::new(&(vs.root() / "d"), &gan)?;
        let opt_g = Adam::new(&vs, "g.", cfg.lr, cfg.betas)?;
        let opt_d = Adam::new(&vs, "d.", cfg.lr, cfg.betas)?;
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
        Ok(GanTrainer {
            gan,
            cfg,
            vs,
            g,
            d,
            opt_g,
            opt_d,
            history: Vec::new(),
            step: 0,
            fixed_z,
            fixed_labels,
            data: String::new(),
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
        let bad = |reason: String| GanError::Checkpoint {
            path: path.into(),
            reason,
        };
        let (tensors, meta) = load_checkpoint(path, device)?;
        if meta.format != CHECKPOINT_FORMAT {
            return Err(bad(format!(
                "it is a {:?} checkpoint, not {CHECKPOINT_FORMAT:?}",
                meta.format
            )));
        }
        let RunConfig {
            gan,
            train: mut cfg,
        }: RunConfig<GanConfig, TrainConfig> =
            serde_json::from_value(meta.config.clone()).map_err(|e| bad(e.to_string()))?;
        if let Some(e) = epochs {
            cfg.epochs = e;
        }
        let mut t = GanTrainer::new(gan, cfg, device)?;
        t.history = meta.state("history", path)?;
        t.step = meta.state("step", path)?;
        load_vars(&t.vs, &tensors, path)?;
        t.opt_g.load_state("opt_g", &tensors)?;
        t.opt_d.load_state("opt_d", &tensors)?;
        t.fixed_z = tensors
            .get("fixed_z")
            .ok_or_else(|| bad("fixed_z missing".into()))?
            .shallow_clone();
        t.fixed_labels = tensors.get("fixed_labels").map(Tensor::shallow_clone);
        t.data = meta.data.clone();
        t.resumed = Some((path.to_path_buf(), meta));
        Ok(t)
    }

    /// Epochs done so far.
    pub fn epoch(&self) -> usize {
        self.history.len()
    }

    /// Per-epoch losses so far.
    pub fn history(&self) -> &[EpochStats] {
        &self.history
    }

    /// The generator.
    pub fn generator(&self) -> &Generator {
        &self.g
    }

    /// The discriminator.
    pub fn discriminator(&self) -> &Discriminator {
        &self.d
    }

    /// The network configuration.
    pub fn gan_config(&self) -> &GanConfig {
        &self.gan
    }

    /// The variables (`g.*`, `d.*`).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Trains until `epochs` are done. With `out_dir`, writes checkpoints, sample grids,
    /// `history.json` and `losses.png` there; a folder holding another run's history is refused
    /// (resume that run instead). Stops with [`GanError::NonFinite`] on a NaN/inf loss,
    /// checked once per epoch (the steps keep their statistics on the device: no host
    /// synchronisation per step).
    pub fn fit(
        &mut self,
        data: &TensorDataset,
        out_dir: Option<&Path>,
        progress: bool,
    ) -> Result<()> {
        let (s, c) = (self.gan.size, self.gan.channels);
        if data.image_size() != (s, s) || data.channels() != c {
            return Err(GanError::Shape {
                what: "training images",
                expected: format!("[N, {c}, {s}, {s}]"),
                got: format!("{:?}", data.images.size()),
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
        let fingerprint = data_fingerprint(&[data], "")?;
        if let Some((path, meta)) = &self.resumed {
            let config = RunConfig {
                gan: &self.gan,
                train: &self.cfg,
            };
            meta.check_resume(path, CHECKPOINT_FORMAT, &config, MAY_CHANGE, &fingerprint)?;
        }
        self.data = fingerprint;
        if let Some(dir) = out_dir {
            RunDir::new(dir).prepare(self.epoch() > 0, &["samples"])?;
        }
        let data = data.to_device(self.vs.device())?;
        let bar = epoch_bar(progress, "GAN", self.epoch(), self.cfg.epochs);
        while self.epoch() < self.cfg.epochs {
            let stats = self.train_epoch(&data)?;
            bar.inc(1);
            bar.set_message(format!("D {:.3} G {:.3}", stats.d_loss, stats.g_loss));
            let e = stats.epoch;
            self.history.push(stats);
            if let Some(dir) = out_dir {
                let last = e == self.cfg.epochs;
                let due = |every: usize| last || (every > 0 && e % every == 0);
                if due(self.cfg.sample_every) {
                    let grid = self.sample_grid()?;
                    io::save_grid(
                        &grid,
                        8,
                        dir.join("samples").join(format!("epoch_{e:05}.png")),
                    )?;
                }
                if due(self.cfg.checkpoint_every) {
                    self.save_checkpoint(RunDir::new(dir).checkpoint(e))?;
                    self.write_history(dir)?;
                }
            }
        }
        bar.finish();
        Ok(())
    }

    fn train_epoch(&mut self, data: &TensorDataset) -> Result<EpochStats> {
        let start = Instant::now();
        let epoch = self.epoch();
        let seed = epoch_seed(self.cfg.seed, epoch as u64);
        // One seed per epoch drives latents, dropout, shuffling and augmentation: resuming
        // at an epoch boundary replays exactly what an uninterrupted run would do.
        tch::manual_seed(seed as i64);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        // The step statistics stay on the device and are summed there: one host transfer per
        // epoch instead of six per step (the non-finite check moves to the epoch's end).
        let mut sum: Option<Tensor> = None;
        let mut batches = 0usize;
        for batch in data.batches(self.cfg.batch_size, BatchOrder::Shuffled { seed }, true)? {
            let labels = self.gan.n_classes.map(|_| batch.labels.shallow_clone());
            let step = self.step_on_device(&batch.images, labels.as_ref(), &mut rng)?;
            sum = Some(match sum {
                Some(s) => s.f_add(&step)?,
                None => step,
            });
            batches += 1;
        }
        let n = batches.max(1) as f64;
        let v = match sum {
            Some(s) => {
                Vec::<f64>::try_from(&s.f_to_kind(Kind::Double)?.f_to_device(tch::Device::Cpu)?)?
            }
            None => vec![0.0; 4],
        };
        self.check_finite(&v, epoch)?;
        Ok(EpochStats {
            epoch: epoch + 1,
            d_loss: v[0] / n,
            g_loss: v[1] / n,
            d_real: v[2] / n,
            d_fake: v[3] / n,
            seconds: start.elapsed().as_secs_f64(),
        })
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
        let epoch = self.epoch();
        let v = Vec::<f64>::try_from(
            &self
                .step_on_device(real, labels, rng)?
                .f_to_kind(Kind::Double)?
                .f_to_device(tch::Device::Cpu)?,
        )?;
        self.check_finite(&v, epoch)?;
        Ok(StepStats {
            d_loss: v[0],
            g_loss: v[1],
            d_real: v[2],
            d_fake: v[3],
        })
    }

    /// Stops on a non-finite discriminator or generator loss in `v` (`[d_loss, g_loss, ..]`).
    fn check_finite(&self, v: &[f64], epoch: usize) -> Result<()> {
        for (&value, which) in v.iter().zip(["discriminator", "generator"]) {
            if !value.is_finite() {
                return Err(GanError::NonFinite {
                    which,
                    value,
                    epoch,
                    step: self.step,
                });
            }
        }
        Ok(())
    }

    /// [`Self::train_step`] without any host synchronisation: the step's statistics as a
    /// `[4]` tensor on the device (discriminator loss, generator loss, mean D probability of
    /// the real and of the fake batch), unchecked.
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
        let hinge = self.gan.arch.hinge_loss();
        let (d_real, d_fake, recon) = if matches!(self.gan.arch, Arch::Paper) {
            // No batch norm: one pass over real and fake together is the same function of
            // each image, with one set of larger matrix products instead of two.
            let both = Tensor::f_cat(&[&real_in, &fake_in], 0)?;
            let both_labels = labels.map(|y| Tensor::f_cat(&[y, y], 0)).transpose()?;
            let logits = self
                .d
                .forward_inner(&both, both_labels.as_ref(), true, false)?;
            (logits.f_narrow(0, 0, b)?, logits.f_narrow(0, b, b)?, None)
        } else {
            // The batch norms of the other discriminators must see real and fake batches apart
            // (Radford et al.). FastGAN's discriminator also reconstructs the real batch.
            let (d_real, recon) = self.d.forward_parts(&real_in, labels, true, false, hinge)?;
            (
                d_real,
                self.d.forward_inner(&fake_in, labels, true, false)?,
                recon,
            )
        };
        let loss_d = discriminator_loss(hinge, self.cfg.real_label, &d_real, &d_fake, recon)?;
        self.opt_d.zero_grad()?;
        loss_d.backward();
        self.opt_d.step()?;

        let fake_for_g = match &self.cfg.diffaugment {
            Some(p) => p.apply(&fake, rng)?,
            None => fake,
        };
        // The generator's loss needs gradients through the discriminator, not for its
        // weights: frozen for this pass (restored however the block exits).
        let loss_g = {
            let _frozen = Frozen::new(self.opt_d.params());
            let d_gen = self.d.forward_inner(&fake_for_g, labels, true, false)?;
            let loss_g = generator_loss(hinge, &d_gen)?;
            self.opt_g.zero_grad()?;
            loss_g.backward();
            loss_g
        };
        self.opt_g.step()?;
        self.step += 1;
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

    /// Images from the run's fixed latents (the same ones at every epoch), in eval mode.
    pub fn sample_grid(&self) -> Result<Tensor> {
        tch::no_grad(|| {
            self.g
                .forward_t(&self.fixed_z, self.fixed_labels.as_ref(), false)
        })
    }

    /// Writes everything needed to continue exactly: weights, optimiser moments, history,
    /// configs, fixed latents and the data's fingerprint. Atomic.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        tensors.extend(self.opt_g.state("opt_g"));
        tensors.extend(self.opt_d.state("opt_d"));
        tensors.push(("fixed_z".into(), self.fixed_z.shallow_clone()));
        if let Some(l) = &self.fixed_labels {
            tensors.push(("fixed_labels".into(), l.shallow_clone()));
        }
        let config = RunConfig {
            gan: &self.gan,
            train: &self.cfg,
        };
        let meta = CheckpointMeta::new(CHECKPOINT_FORMAT, &config, &self.data)?
            .with_state("history", &self.history)?
            .with_state("step", &self.step)?;
        Ok(save_checkpoint(path.as_ref(), &tensors, &meta)?)
    }

    /// Writes `history.json` and (with the `plot` feature) `losses.png` into `dir`.
    pub fn write_history(&self, dir: &Path) -> Result<()> {
        let series = |f: fn(&EpochStats) -> f64| {
            self.history
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
        ganaug_train::write_history(&RunDir::new(dir), &self.history, &curves)?;
        Ok(())
    }
}

/// Turns gradient tracking off for some variables while alive, back on when dropped.
struct Frozen<'a>(&'a [Tensor]);

impl<'a> Frozen<'a> {
    fn new(vars: &'a [Tensor]) -> Self {
        for v in vars {
            let _ = v.set_requires_grad(false);
        }
        Frozen(vars)
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        for v in self.0 {
            let _ = v.set_requires_grad(true);
        }
    }
}

/// Copies saved tensors into a var store's variables; every variable must be present with its
/// shape (the checkpoint's optimiser state and fixed latents are read separately).
pub(crate) fn load_vars(
    vs: &nn::VarStore,
    saved: &HashMap<String, Tensor>,
    path: &Path,
) -> Result<()> {
    let rules = VarMatch {
        allow_missing: &[],
        ignore_unexpected: &["opt_g.", "opt_d.", "fixed_"],
    };
    copy_into_vars(&vs.variables(), saved, &rules, path)?;
    Ok(())
}
