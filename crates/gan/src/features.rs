//! A conditional GAN in a classifier's feature space (after f-CLSWGAN, Xian et al. 2018,
//! "Feature Generating Networks for Zero-Shot Learning"): it makes feature vectors of a class,
//! not images, for classifiers that train on frozen features (a linear probe).
//!
//! Generator `[z ‖ one-hot(y)] → hidden → LeakyReLU(0.2) → d` (linear output: the features are
//! standardised, and may be negative); critic `[x ‖ one-hot(y)] → hidden → LeakyReLU(0.2) → 1`;
//! Wasserstein loss with a gradient penalty (λ, `critic_steps` critic updates per generator
//! update, Adam); the generator also minimises `cls_weight` × the cross-entropy of a linear
//! softmax classifier fitted once on the real vectors and then frozen, so that its vectors are
//! classified as their class. Epochs run in `ganaug-train`'s loop (seeded, checkpointed,
//! resumable, `metrics.jsonl`). The caller chooses the space (ganaug's experiment: the probe's
//! standardised features projected on their leading principal axes).

use std::path::{Path, PathBuf};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Device, Kind, Reduction, Tensor};

use ganaug_train::optim::{self, NamedTensor};
use ganaug_train::{
    copy_into_vars, data_fingerprint_of_tensors, load_checkpoint, save_checkpoint, zero_grad, Adam,
    CheckpointMeta, CheckpointPolicy, EpochLoop, IntoChecked, KeepCheckpoints, Observer, Optimizer,
    Progress, RunConfig, RunDir, TrainStep, Validate, VarMatch,
};

use crate::train::{read_run, trainable};
use crate::{GanError, Result};

/// How a feature-space GAN is built and trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureGanConfig {
    /// Latent dimension.
    pub latent_dim: i64,
    /// Width of the generator's and the critic's hidden layer.
    pub hidden: i64,
    /// Critic updates per generator update (WGAN-GP: 5).
    pub critic_steps: usize,
    /// Weight λ of the gradient penalty (WGAN-GP: 10).
    pub gp_weight: f64,
    /// Weight of the classification loss in the generator's objective (0: a plain
    /// conditional WGAN-GP).
    pub cls_weight: f64,
    /// Adam learning rate of both networks.
    pub lr: f64,
    /// Adam betas.
    pub betas: (f64, f64),
    /// Real vectors per batch (at most the number of real vectors).
    pub batch_size: usize,
    /// Epochs: each makes `ceil(n / batch_size)` generator updates.
    pub epochs: usize,
    /// Write a checkpoint every this many epochs (0: only at the end).
    pub checkpoint_every: usize,
    /// Seed of everything random.
    pub seed: u64,
}

impl Default for FeatureGanConfig {
    /// f-CLSWGAN's settings (λ 10, 5 critic steps, Adam 1e-4, β1 0.5) with a narrower hidden
    /// layer (256) and a classification weight of 0.1.
    fn default() -> Self {
        FeatureGanConfig {
            latent_dim: 32,
            hidden: 256,
            critic_steps: 5,
            gp_weight: 10.0,
            cls_weight: 0.1,
            lr: 1e-4,
            betas: (0.5, 0.999),
            batch_size: 64,
            epochs: 100,
            checkpoint_every: 0,
            seed: 0,
        }
    }
}

impl Validate for FeatureGanConfig {
    type Error = GanError;

    fn validate(&self) -> Result<()> {
        let bad = |field, reason: &str| Err(GanError::config(field, reason));
        if self.latent_dim < 1 || self.hidden < 1 {
            return bad("latent_dim/hidden", "must be positive");
        }
        if self.critic_steps == 0 || self.batch_size < 2 || self.epochs == 0 {
            return bad(
                "critic_steps/batch_size/epochs",
                "need at least 1 critic step, a batch of 2 and 1 epoch",
            );
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", "must be a positive number");
        }
        let usable = |w: f64| w >= 0.0 && w.is_finite();
        if !usable(self.gp_weight) || !usable(self.cls_weight) {
            return bad("gp_weight/cls_weight", "must be finite numbers ≥ 0");
        }
        if !(0.0..1.0).contains(&self.betas.0) || !(0.0..1.0).contains(&self.betas.1) {
            return bad("betas", "must be in [0, 1)");
        }
        Ok(())
    }
}

/// One epoch's means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureEpoch {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// The critic's loss (its Wasserstein estimate's negative plus the penalty).
    pub critic_loss: f64,
    /// The generator's loss (−critic score of its vectors + the classification term).
    pub generator_loss: f64,
    /// The critic's estimate of the Wasserstein distance (mean score of real − fake vectors).
    pub wasserstein: f64,
    /// The classification loss of the generated vectors.
    pub cls_loss: f64,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl ganaug_train::EpochRecord for FeatureEpoch {
    fn checked(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("critic loss", self.critic_loss),
            ("generator loss", self.generator_loss),
        ]
    }

    fn summary(&self) -> String {
        format!(
            "W {:.3} C {:.3} G {:.3}",
            self.wasserstein, self.critic_loss, self.generator_loss
        )
    }

    fn set_seconds(&mut self, seconds: f64) {
        self.seconds = seconds;
    }
}

/// The checkpoint format of [`FeatureGan`].
pub const FEATURE_GAN_FORMAT: &str = "ganaug-feature-gan-1";

/// What a checkpoint records as the run's configuration; a resume may raise the epochs.
#[derive(Serialize, Deserialize)]
struct FeatureRun {
    gan: FeatureGanConfig,
    dim: i64,
    classes: i64,
}

impl RunConfig for FeatureRun {
    fn fixed(&self) -> Self {
        FeatureRun {
            gan: FeatureGanConfig {
                epochs: 0,
                ..self.gan.clone()
            },
            dim: self.dim,
            classes: self.classes,
        }
    }
}

/// A feature-space conditional WGAN-GP (see the module documentation).
#[derive(Debug)]
pub struct FeatureGan {
    nets: FeatureNets,
    progress: Progress<FeatureEpoch>,
    resumed: Option<(PathBuf, CheckpointMeta)>,
}

#[derive(Debug)]
struct FeatureNets {
    cfg: FeatureGanConfig,
    dim: i64,
    classes: i64,
    vs: nn::VarStore,
    g: nn::Sequential,
    critic: nn::Sequential,
    /// The frozen linear classifier of the classification loss (fitted at the first `fit`).
    cls: nn::Linear,
    g_params: Vec<NamedTensor>,
    c_params: Vec<NamedTensor>,
    opt_g: Adam,
    opt_c: Adam,
    data: String,
}

fn mlp(p: nn::Path, c_in: i64, hidden: i64, c_out: i64) -> nn::Sequential {
    nn::seq()
        .add(nn::linear(&p / "fc1", c_in, hidden, Default::default()))
        .add_fn(|x| x.maximum(&(x * 0.2)))
        .add(nn::linear(&p / "fc2", hidden, c_out, Default::default()))
}

impl FeatureGan {
    /// A fresh run for vectors of `dim` features over `classes` classes, on `device`.
    pub fn new(
        cfg: impl IntoChecked<FeatureGanConfig>,
        dim: i64,
        classes: i64,
        device: Device,
    ) -> Result<Self> {
        let cfg = cfg.into_checked()?.into_inner();
        if dim < 1 || classes < 2 {
            return Err(GanError::config(
                "features",
                format!("{dim} features over {classes} classes: need ≥ 1 feature and ≥ 2 classes"),
            ));
        }
        tch::manual_seed(cfg.seed as i64);
        let vs = nn::VarStore::new(device);
        let g = mlp(vs.root() / "g", cfg.latent_dim + classes, cfg.hidden, dim);
        let critic = mlp(vs.root() / "c", dim + classes, cfg.hidden, 1);
        let cls = nn::linear(vs.root() / "cls", dim, classes, Default::default());
        let _ = cls.ws.set_requires_grad(false);
        if let Some(b) = &cls.bs {
            let _ = b.set_requires_grad(false);
        }
        let (g_params, c_params) = (trainable(&vs, "g."), trainable(&vs, "c."));
        let opt_g = Adam::new(&g_params, cfg.lr, cfg.betas)?;
        let opt_c = Adam::new(&c_params, cfg.lr, cfg.betas)?;
        let nets = FeatureNets {
            cfg,
            dim,
            classes,
            vs,
            g,
            critic,
            cls,
            g_params,
            c_params,
            opt_g,
            opt_c,
            data: String::new(),
        };
        Ok(FeatureGan {
            nets,
            progress: Progress::default(),
            resumed: None,
        })
    }

    /// Continues a run from its checkpoint; `epochs` (if given) raises the total.
    pub fn resume(path: impl AsRef<Path>, device: Device, epochs: Option<usize>) -> Result<Self> {
        let path = path.as_ref();
        let (run, meta): (FeatureRun, _) = read_run(path, FEATURE_GAN_FORMAT)?;
        let mut gan = run.gan;
        if let Some(e) = epochs {
            gan.epochs = e;
        }
        let mut t = FeatureGan::new(gan, run.dim, run.classes, device)?;
        t.progress = t.nets.load(path)?;
        t.resumed = Some((path.to_path_buf(), meta));
        Ok(t)
    }

    /// The newest checkpoint in a run folder, if any.
    pub fn latest_checkpoint(dir: &Path) -> Option<PathBuf> {
        RunDir::new(dir).latest_checkpoint()
    }

    /// Epochs done.
    pub fn epoch(&self) -> usize {
        self.progress.epochs()
    }

    /// Per-epoch figures so far.
    pub fn history(&self) -> &[FeatureEpoch] {
        &self.progress.history
    }

    /// Trains on the real vectors `x` (`[n, dim]`, float) of classes `y` (`[n]`, int64) until
    /// the configured epochs are done; with `out_dir`, checkpoints and `metrics.jsonl` there.
    /// The classification loss's classifier is fitted on `x` at the first call.
    pub fn fit(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        out_dir: Option<&Path>,
        observer: &dyn Observer,
    ) -> Result<()> {
        let (x, y) = self.nets.check_data(x, y, self.resumed.as_ref())?;
        if self.progress.epochs() == 0 {
            self.nets.fit_classifier(&x, &y)?;
        }
        let run = out_dir.map(RunDir::new);
        let cfg = &self.nets.cfg;
        let epoch_loop = EpochLoop {
            name: "feature GAN",
            seed: cfg.seed,
            epochs: cfg.epochs,
            run: run.as_ref(),
            resume: false,
            subdirs: &[],
            checkpoints: CheckpointPolicy {
                every: cfg.checkpoint_every,
                keep: KeepCheckpoints::Latest(1),
            },
            observer,
        };
        let mut step = FeatureEpochs {
            nets: &mut self.nets,
            x: &x,
            y: &y,
        };
        epoch_loop.run(&mut step, &mut self.progress)?;
        Ok(())
    }

    /// `counts[c]` generated vectors of each class `c` (in class order), from the seed
    /// `seed`: `[Σ counts, dim]` vectors and their `[Σ counts]` labels, on the CPU.
    pub fn generate(&self, counts: &[usize], seed: u64) -> Result<(Tensor, Tensor)> {
        if counts.len() as i64 != self.nets.classes {
            return Err(GanError::Inputs {
                reason: format!(
                    "{} class counts for a feature GAN of {} classes",
                    counts.len(),
                    self.nets.classes
                ),
            });
        }
        let labels: Vec<i64> = counts
            .iter()
            .enumerate()
            .flat_map(|(c, &n)| std::iter::repeat_n(c as i64, n))
            .collect();
        let device = self.nets.vs.device();
        let y = Tensor::from_slice(&labels).to_device(device);
        tch::manual_seed(seed as i64);
        let v = tch::no_grad(|| self.nets.generate(&y))?;
        Ok((v.f_to_device(Device::Cpu)?, y.f_to_device(Device::Cpu)?))
    }

    /// Writes a checkpoint (weights, the classifier, optimiser state, history). Atomic.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        self.nets.save(path.as_ref(), &self.progress)
    }
}

impl FeatureNets {
    fn run_config(&self) -> FeatureRun {
        FeatureRun {
            gan: self.cfg.clone(),
            dim: self.dim,
            classes: self.classes,
        }
    }

    /// The vectors and labels on the device, checked; the data's fingerprint recorded (a
    /// resumed run refuses other data).
    fn check_data(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        resumed: Option<&(PathBuf, CheckpointMeta)>,
    ) -> Result<(Tensor, Tensor)> {
        let n = x.size().first().copied().unwrap_or(0);
        if x.size() != [n, self.dim] || y.size() != [n] || y.kind() != Kind::Int64 || n < 2 {
            return Err(GanError::Shape {
                what: "real feature vectors",
                expected: format!("[n ≥ 2, {}] and [n] Int64 labels", self.dim),
                got: format!("{:?} and {:?} {:?}", x.size(), y.size(), y.kind()),
            });
        }
        let (lo, hi) = (y.f_min()?.int64_value(&[]), y.f_max()?.int64_value(&[]));
        if lo < 0 || hi >= self.classes {
            return Err(GanError::Labels("feature labels outside 0..classes"));
        }
        let x = x.f_to_kind(Kind::Float)?;
        let fingerprint = data_fingerprint_of_tensors(&[&x, y])?;
        if let Some((path, meta)) = resumed {
            meta.check_resume(path, FEATURE_GAN_FORMAT, &self.run_config(), &fingerprint)?;
        }
        self.data = fingerprint;
        let device = self.vs.device();
        Ok((x.f_to_device(device)?, y.f_to_device(device)?))
    }

    /// Fits the frozen linear classifier of the classification loss on the real vectors
    /// (full-batch Adam, weak L2), seeded by the run's seed.
    fn fit_classifier(&mut self, x: &Tensor, y: &Tensor) -> Result<()> {
        tch::manual_seed(self.cfg.seed as i64 ^ 0x0063_6c73);
        let params: Vec<NamedTensor> = std::iter::once(("w".into(), self.cls.ws.shallow_clone()))
            .chain(
                self.cls
                    .bs
                    .as_ref()
                    .map(|b| ("b".into(), b.shallow_clone())),
            )
            .collect();
        for (_, p) in &params {
            let _ = p.set_requires_grad(true);
        }
        let mut opt = Adam::new(&params, 0.01, (0.9, 0.999))?;
        for _ in 0..300 {
            zero_grad(&params)?;
            let loss = self
                .cls
                .forward(x)
                .f_cross_entropy_loss::<Tensor>(y, None, Reduction::Mean, -100, 0.0)?
                .f_add(
                    &self
                        .cls
                        .ws
                        .f_square()?
                        .f_sum(Kind::Float)?
                        .f_mul_scalar(1e-3)?,
                )?;
            loss.f_backward()?;
            opt.step(&params)?;
        }
        for (_, p) in &params {
            let _ = p.set_requires_grad(false);
        }
        Ok(())
    }

    fn one_hot(&self, y: &Tensor) -> Result<Tensor> {
        Ok(y.f_one_hot(self.classes)?.f_to_kind(Kind::Float)?)
    }

    fn generate(&self, y: &Tensor) -> Result<Tensor> {
        let n = y.size()[0];
        let z = Tensor::f_randn([n, self.cfg.latent_dim], (Kind::Float, self.vs.device()))?;
        Ok(self.g.forward(&Tensor::f_cat(&[z, self.one_hot(y)?], 1)?))
    }

    fn score(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        Ok(self
            .critic
            .forward(&Tensor::f_cat(&[x.shallow_clone(), self.one_hot(y)?], 1)?)
            .f_view([-1])?)
    }

    /// One critic update on a real batch; returns its loss and the Wasserstein estimate.
    fn critic_step(&mut self, real: &Tensor, y: &Tensor) -> Result<(Tensor, Tensor)> {
        let fake = tch::no_grad(|| self.generate(y))?;
        let (s_real, s_fake) = (self.score(real, y)?, self.score(&fake, y)?);
        let n = real.size()[0];
        let alpha = Tensor::f_rand([n, 1], (Kind::Float, real.device()))?;
        let keep = alpha.f_neg()?.f_add_scalar(1.0)?;
        let mixed = real
            .f_mul(&alpha)?
            .f_add(&fake.f_mul(&keep)?)?
            .set_requires_grad(true);
        let s_mixed = self.score(&mixed, y)?;
        let grads = Tensor::f_run_backward(&[s_mixed.f_sum(Kind::Float)?], &[&mixed], true, true)?;
        let norm = grads[0]
            .f_square()?
            .f_sum_dim_intlist(&[1i64][..], false, Kind::Float)?;
        let penalty = (norm.f_add_scalar(1e-12)?.f_sqrt()? - 1.0)
            .f_square()?
            .f_mean(Kind::Float)?;
        let w = s_real.f_mean(Kind::Float)? - s_fake.f_mean(Kind::Float)?;
        let loss = w.f_neg()? + penalty * self.cfg.gp_weight;
        zero_grad(&self.c_params)?;
        loss.f_backward()?;
        self.opt_c.step(&self.c_params)?;
        Ok((loss.detach(), w.detach()))
    }

    /// One generator update for labels `y`; returns its loss and the classification term.
    fn generator_step(&mut self, y: &Tensor) -> Result<(Tensor, Tensor)> {
        let fake = self.generate(y)?;
        let adversarial = self.score(&fake, y)?.f_mean(Kind::Float)?.f_neg()?;
        let cls = self.cls.forward(&fake).f_cross_entropy_loss::<Tensor>(
            y,
            None,
            Reduction::Mean,
            -100,
            0.0,
        )?;
        let loss = &adversarial + &cls * self.cfg.cls_weight;
        zero_grad(&self.g_params)?;
        zero_grad(&self.c_params)?;
        loss.f_backward()?;
        self.opt_g.step(&self.g_params)?;
        Ok((loss.detach(), cls.detach()))
    }

    fn train_epoch(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        rng: &mut ChaCha8Rng,
    ) -> Result<FeatureEpoch> {
        let n = x.size()[0];
        let batch = (self.cfg.batch_size as i64).min(n);
        let steps = (n + batch - 1) / batch;
        let mut sums = [0.0f64; 4];
        for _ in 0..steps {
            for _ in 0..self.cfg.critic_steps {
                let idx: Vec<i64> = (0..batch).map(|_| rng.random_range(0..n)).collect();
                let idx = Tensor::from_slice(&idx).to_device(x.device());
                let (loss, w) =
                    self.critic_step(&x.f_index_select(0, &idx)?, &y.f_index_select(0, &idx)?)?;
                sums[0] += loss.double_value(&[]) / self.cfg.critic_steps as f64;
                sums[2] += w.double_value(&[]) / self.cfg.critic_steps as f64;
            }
            let idx: Vec<i64> = (0..batch).map(|_| rng.random_range(0..n)).collect();
            let labels = y.f_index_select(0, &Tensor::from_slice(&idx).to_device(y.device()))?;
            let (loss, cls) = self.generator_step(&labels)?;
            sums[1] += loss.double_value(&[]);
            sums[3] += cls.double_value(&[]);
        }
        let s = steps as f64;
        Ok(FeatureEpoch {
            epoch: 0,
            critic_loss: sums[0] / s,
            generator_loss: sums[1] / s,
            wasserstein: sums[2] / s,
            cls_loss: sums[3] / s,
            seconds: 0.0,
        })
    }

    fn save(&self, path: &Path, progress: &Progress<FeatureEpoch>) -> Result<()> {
        let mut tensors: Vec<NamedTensor> = self.vs.variables().into_iter().collect();
        tensors.extend(optim::save_state(&self.opt_g, "opt_g"));
        tensors.extend(optim::save_state(&self.opt_c, "opt_c"));
        let meta = CheckpointMeta::new(FEATURE_GAN_FORMAT, &self.run_config(), &self.data)?
            .with_state("history", &progress.history)?;
        Ok(save_checkpoint(path, &tensors, &meta)?)
    }

    fn load(&mut self, path: &Path) -> Result<Progress<FeatureEpoch>> {
        let (tensors, meta) = load_checkpoint(path, self.vs.device())?;
        let rules = VarMatch {
            allow_missing: &[],
            ignore_unexpected: &["opt_g.", "opt_c."],
        };
        copy_into_vars(&self.vs.variables(), &tensors, &rules, path)?;
        optim::load_state(&mut self.opt_g, "opt_g", &tensors)?;
        optim::load_state(&mut self.opt_c, "opt_c", &tensors)?;
        self.data = meta.data.clone();
        Ok(Progress {
            history: meta.state("history", path)?,
            stop: None,
        })
    }
}

/// The feature GAN's side of the epoch loop.
struct FeatureEpochs<'a> {
    nets: &'a mut FeatureNets,
    x: &'a Tensor,
    y: &'a Tensor,
}

impl TrainStep for FeatureEpochs<'_> {
    type Record = FeatureEpoch;
    type Error = GanError;

    fn train_epoch(
        &mut self,
        epoch: usize,
        _seed: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<FeatureEpoch> {
        let mut rec = self.nets.train_epoch(self.x, self.y, rng)?;
        rec.epoch = epoch + 1;
        Ok(rec)
    }

    fn save_checkpoint(&self, path: &Path, progress: &Progress<FeatureEpoch>) -> Result<()> {
        self.nets.save(path, progress)
    }

    fn restore(&mut self, path: &Path) -> Result<Progress<FeatureEpoch>> {
        self.nets.load(path)
    }
}
