//! A real-guided image GAN: each synthetic image is a real training image of its class with a
//! bounded, masked edit, so most of it stays real. After DAGAN (Antoniou et al. 2017, "Data
//! Augmentation Generative Adversarial Networks": a generator conditioned on a real image, a
//! discriminator that tells a real *pair* of same-class images from a real image and its
//! generated partner, which keeps the generator from returning its input) and VA-GAN
//! (Baumgartner et al. 2018: the output is the input plus a learned additive map).
//!
//! Generator: the image and a soft elliptical mask (15–40% of the image, drawn per sample) →
//! a small U-Net (three stride-2 convolutions, the latent and the class embedding joined at an
//! eighth of the side, three upsamplings with skips) → `δ = max_delta · tanh(·) · mask`; the
//! edited image is `clamp(x + δ, 0, 1)`. Discriminator: the pair `[x ‖ partner]` →
//! three stride-2 convolutions → patch logits (their mean), with the class by projection.
//! Binary cross-entropy; epochs in `ganaug-train`'s loop.
//!
//! An edit is kept as its source's name and its δ ([`EditSet`]), so a classifier at another
//! side gets its own real image plus the upsampled δ: the real detail is never resampled.
//! Near-copies are judged by the edit itself: one whose masked RMS change is below
//! `min_edit_rms` adds nothing and is dropped. The usual nearest-training-image rule does not
//! apply — every edit is near its source by design.

use std::path::{Path, PathBuf};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, ModuleT};
use tch::{Device, Kind, Reduction, Tensor};

use ganaug_augment::DiffAugment;
use ganaug_data::stream::ImageReader;
use ganaug_data::{ImageSource, TensorDataset};
use ganaug_train::optim::{self, NamedTensor};
use ganaug_train::{
    copy_into_vars, data_fingerprint, load_checkpoint, save_checkpoint, zero_grad, Adam,
    CheckpointMeta, CheckpointPolicy, EpochLoop, IntoChecked, KeepCheckpoints, Observer, Optimizer,
    Progress, RunConfig, RunDir, TrainStep, Validate, VarMatch,
};

use crate::train::{read_run, trainable};
use crate::{GanError, Result};

mod nets;
mod synth;
pub use nets::random_masks;
use nets::{Editor, PairCritic};
pub use synth::{synthesize_edits, EditSet, EditSource, EditSynthConfig};

/// How an edit GAN is built and trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditGanConfig {
    /// Image side (a power of two, at least 16).
    pub size: i64,
    /// Image channels (1 or 3).
    #[serde(default = "gray")]
    pub channels: i64,
    /// Classes.
    pub classes: i64,
    /// Generator width (filters of its first convolution).
    pub ngf: i64,
    /// Discriminator width.
    pub ndf: i64,
    /// Latent dimension.
    pub latent_dim: i64,
    /// Largest change of a pixel (images in [0, 1]).
    pub max_delta: f64,
    /// Smallest and largest share of the image a mask covers.
    pub mask_area: (f64, f64),
    /// Epochs (each a pass over the training images in batches).
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Adam learning rate of both networks.
    pub lr: f64,
    /// Differentiable augmentation of the pairs the discriminator sees (the same draw for both
    /// images of a pair).
    #[serde(default)]
    pub diffaugment: Option<DiffAugment>,
    /// Write a checkpoint every this many epochs (0: only at the end).
    pub checkpoint_every: usize,
    /// Seed of everything random.
    pub seed: u64,
}

fn gray() -> i64 {
    1
}

impl Default for EditGanConfig {
    /// A small editor for 64² gray images of two classes.
    fn default() -> Self {
        EditGanConfig {
            size: 64,
            channels: 1,
            classes: 2,
            ngf: 16,
            ndf: 16,
            latent_dim: 16,
            max_delta: 0.2,
            mask_area: (0.15, 0.4),
            epochs: 100,
            batch_size: 16,
            lr: 2e-4,
            diffaugment: None,
            checkpoint_every: 0,
            seed: 0,
        }
    }
}

impl Validate for EditGanConfig {
    type Error = GanError;

    fn validate(&self) -> Result<()> {
        let bad = |field, reason: String| Err(GanError::config(field, reason));
        if self.size < 16 || self.size & (self.size - 1) != 0 {
            return bad(
                "size",
                format!("{}: a power of two, at least 16", self.size),
            );
        }
        if !matches!(self.channels, 1 | 3) || self.classes < 2 {
            return bad(
                "channels/classes",
                "1 or 3 channels, at least 2 classes".into(),
            );
        }
        if self.ngf < 1 || self.ndf < 1 || self.latent_dim < 1 {
            return bad("ngf/ndf/latent_dim", "must be positive".into());
        }
        if !(self.max_delta > 0.0 && self.max_delta <= 1.0) {
            return bad("max_delta", format!("{} is not in (0, 1]", self.max_delta));
        }
        let (lo, hi) = self.mask_area;
        if !(0.0 < lo && lo <= hi && hi <= 1.0) {
            return bad("mask_area", format!("{lo}..{hi} is not within (0, 1]"));
        }
        if self.epochs == 0 || self.batch_size < 2 || !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(
                "epochs/batch_size/lr",
                "need 1 epoch, a batch of 2, a positive rate".into(),
            );
        }
        Ok(())
    }
}

/// One epoch's means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditEpoch {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Discriminator loss.
    pub d_loss: f64,
    /// Generator loss.
    pub g_loss: f64,
    /// Mean absolute change of the edited images inside their masks.
    pub edit_mean: f64,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl ganaug_train::EpochRecord for EditEpoch {
    fn checked(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("discriminator loss", self.d_loss),
            ("generator loss", self.g_loss),
        ]
    }

    fn summary(&self) -> String {
        format!(
            "D {:.3} G {:.3} |δ| {:.3}",
            self.d_loss, self.g_loss, self.edit_mean
        )
    }

    fn set_seconds(&mut self, seconds: f64) {
        self.seconds = seconds;
    }
}

/// The checkpoint format of [`EditGan`].
pub const EDIT_GAN_FORMAT: &str = "ganaug-edit-gan-1";

impl RunConfig for EditGanConfig {
    fn fixed(&self) -> Self {
        EditGanConfig {
            epochs: 0,
            ..self.clone()
        }
    }
}

/// A real-guided image GAN (see the module documentation).
#[derive(Debug)]
pub struct EditGan {
    nets: EditNets,
    progress: Progress<EditEpoch>,
    resumed: Option<(PathBuf, CheckpointMeta)>,
}

#[derive(Debug)]
struct EditNets {
    cfg: EditGanConfig,
    vs: nn::VarStore,
    editor: Editor,
    critic: PairCritic,
    g_params: Vec<NamedTensor>,
    d_params: Vec<NamedTensor>,
    opt_g: Adam,
    opt_d: Adam,
    data: String,
}

impl EditGan {
    /// A fresh run on `device`.
    pub fn new(cfg: impl IntoChecked<EditGanConfig>, device: Device) -> Result<Self> {
        let cfg = cfg.into_checked()?.into_inner();
        tch::manual_seed(cfg.seed as i64);
        let vs = nn::VarStore::new(device);
        let editor = Editor::new(&(vs.root() / "g"), &cfg);
        let critic = PairCritic::new(&(vs.root() / "d"), &cfg);
        let (g_params, d_params) = (trainable(&vs, "g."), trainable(&vs, "d."));
        let opt_g = Adam::new(&g_params, cfg.lr, (0.5, 0.999))?;
        let opt_d = Adam::new(&d_params, cfg.lr, (0.5, 0.999))?;
        let nets = EditNets {
            cfg,
            vs,
            editor,
            critic,
            g_params,
            d_params,
            opt_g,
            opt_d,
            data: String::new(),
        };
        Ok(EditGan {
            nets,
            progress: Progress::default(),
            resumed: None,
        })
    }

    /// Continues a run from its checkpoint; `epochs` (if given) raises the total.
    pub fn resume(path: impl AsRef<Path>, device: Device, epochs: Option<usize>) -> Result<Self> {
        let path = path.as_ref();
        let (mut cfg, meta): (EditGanConfig, _) = read_run(path, EDIT_GAN_FORMAT)?;
        if let Some(e) = epochs {
            cfg.epochs = e;
        }
        let mut t = EditGan::new(cfg, device)?;
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
    pub fn history(&self) -> &[EditEpoch] {
        &self.progress.history
    }

    /// The configuration.
    pub fn config(&self) -> &EditGanConfig {
        &self.nets.cfg
    }

    /// Trains on `data` (`[N, C, S, S]` images of at least two classes, each with two images
    /// or more; in memory, or streamed and read a batch at a time) until the configured epochs
    /// are done; with `out_dir`, checkpoints and `metrics.jsonl` there.
    pub fn fit(
        &mut self,
        data: &dyn ImageSource,
        out_dir: Option<&Path>,
        observer: &dyn Observer,
    ) -> Result<()> {
        let pairs = self.nets.check_data(data, self.resumed.as_ref())?;
        let run = out_dir.map(RunDir::new);
        let device = self.nets.vs.device();
        // in memory: moved to the device once, batches picked there; streamed: read by batch
        let moved = data.in_memory().map(|d| d.to_device(device)).transpose()?;
        let data: &dyn ImageSource = match &moved {
            Some(d) => d,
            None => data,
        };
        let cfg = &self.nets.cfg;
        let epoch_loop = EpochLoop {
            name: "edit GAN",
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
        let mut step = EditEpochs {
            reader: data.reader()?,
            labels: data.labels().f_to_device(device)?,
            nets: &mut self.nets,
            by_class: &pairs,
        };
        epoch_loop.run(&mut step, &mut self.progress)?;
        Ok(())
    }

    /// Edits of `sources` (`[N, C, S, S]` images of classes `labels`), one per source, with
    /// fresh masks and latents from `rng`, in eval mode: the changes `δ` `[N, C, S, S]` (the
    /// edited images are `clamp(source + δ, 0, 1)`) and the masks `[N, 1, S, S]`.
    pub fn edit(
        &self,
        sources: &Tensor,
        labels: &Tensor,
        rng: &mut impl Rng,
    ) -> Result<(Tensor, Tensor)> {
        let cfg = &self.nets.cfg;
        let n = sources.size()[0];
        let device = self.nets.vs.device();
        let m = random_masks(n, cfg.size, cfg.mask_area, rng)?.f_to_device(device)?;
        let z = latents(n, cfg.latent_dim, rng)?.f_to_device(device)?;
        let x = sources.f_to_device(device)?;
        let y = labels.f_to_device(device)?;
        let d = tch::no_grad(|| self.nets.editor.delta(&x, &m, &z, &y, false))?;
        let edited = x.f_add(&d)?.f_clamp(0.0, 1.0)?;
        // δ as applied (after clamping), so source + δ reproduces the edited image
        Ok((
            edited.f_sub(&x)?.f_to_device(Device::Cpu)?,
            m.f_to_device(Device::Cpu)?,
        ))
    }

    /// Seconds one training step takes on batches of `data` (the mean of `steps` after one
    /// warm-up), for estimates; the networks train for those steps.
    pub fn step_seconds(&mut self, data: &dyn ImageSource, steps: usize) -> Result<f64> {
        let by_class = self.nets.check_data(data, None)?;
        let device = self.nets.vs.device();
        let b = (self.nets.cfg.batch_size as i64).min(data.len() as i64);
        let first: Vec<i64> = (0..b).collect();
        let mut reader = data.reader()?;
        let x = reader.read(&first)?.f_to_device(device)?;
        let y = data.labels().f_narrow(0, 0, b)?.f_to_device(device)?;
        let labels = Vec::<i64>::try_from(&y.f_to_device(Device::Cpu)?)?;
        let partners: Vec<i64> = labels.iter().map(|&l| by_class[l as usize][0]).collect();
        let other = reader.read(&partners)?.f_to_device(device)?;
        let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
        self.nets.step(&x, &y, &other, &mut rng)?;
        let t0 = std::time::Instant::now();
        for _ in 0..steps.max(1) {
            self.nets.step(&x, &y, &other, &mut rng)?;
        }
        Ok(t0.elapsed().as_secs_f64() / steps.max(1) as f64)
    }

    /// The discriminator's probability that `(source, edited)` is a real same-class pair.
    pub fn pair_score(&self, sources: &Tensor, edited: &Tensor, labels: &Tensor) -> Result<Tensor> {
        let device = self.nets.vs.device();
        let pair = Tensor::f_cat(
            &[sources.f_to_device(device)?, edited.f_to_device(device)?],
            1,
        )?;
        let logit = tch::no_grad(|| {
            self.nets
                .critic
                .forward(&pair, &labels.f_to_device(device)?, false)
        })?;
        Ok(logit.f_sigmoid()?.f_to_device(Device::Cpu)?)
    }

    /// Writes a checkpoint (weights, optimiser state, history). Atomic.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        self.nets.save(path.as_ref(), &self.progress)
    }
}

/// Standard normal latents drawn from `rng` (`[n, d]`).
fn latents(n: i64, d: i64, rng: &mut impl Rng) -> Result<Tensor> {
    use rand_distr::{Distribution, StandardNormal};
    let v: Vec<f32> = (0..n * d).map(|_| StandardNormal.sample(rng)).collect();
    Ok(Tensor::f_from_slice(&v)?.f_view([n, d])?)
}

impl EditNets {
    /// Checks the data; returns the indices of each class's images (for the real pairs).
    fn check_data(
        &mut self,
        data: &dyn ImageSource,
        resumed: Option<&(PathBuf, CheckpointMeta)>,
    ) -> Result<Vec<Vec<i64>>> {
        let (s, c) = (self.cfg.size, self.cfg.channels);
        if data.image_size() != (s, s) || data.channels() != c {
            let (h, w) = data.image_size();
            return Err(GanError::Shape {
                what: "training images",
                expected: format!("[N, {c}, {s}, {s}]"),
                got: format!("[{}, {}, {h}, {w}]", data.len(), data.channels()),
            });
        }
        let labels = Vec::<i64>::try_from(&data.labels().f_to_device(Device::Cpu)?)?;
        let mut by_class = vec![Vec::new(); self.cfg.classes as usize];
        for (i, &l) in labels.iter().enumerate() {
            let slot = by_class
                .get_mut(l as usize)
                .ok_or(GanError::Labels("a label outside the edit GAN's classes"))?;
            slot.push(i as i64);
        }
        if let Some((class, _)) = by_class.iter().enumerate().find(|(_, v)| v.len() < 2) {
            return Err(GanError::Inputs {
                reason: format!(
                    "class {class} has fewer than two images: the edit GAN's real pairs need two"
                ),
            });
        }
        let fingerprint = data_fingerprint(&[data])?;
        if let Some((path, meta)) = resumed {
            meta.check_resume(path, EDIT_GAN_FORMAT, &self.cfg, &fingerprint)?;
        }
        self.data = fingerprint;
        Ok(by_class)
    }

    fn augment(&self, pair: &Tensor, rng: &mut ChaCha8Rng) -> Result<Tensor> {
        match &self.cfg.diffaugment {
            Some(p) => Ok(p.apply(pair, rng)?),
            None => Ok(pair.shallow_clone()),
        }
    }

    /// One step of both networks on a batch of sources `x` (classes `y`) and real partners
    /// `other` of the same classes; returns `[d_loss, g_loss, mean |δ| inside the masks]`.
    fn step(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        other: &Tensor,
        rng: &mut ChaCha8Rng,
    ) -> Result<[f64; 3]> {
        let (n, cfg) = (x.size()[0], &self.cfg);
        let device = x.device();
        let m = random_masks(n, cfg.size, cfg.mask_area, rng)?.f_to_device(device)?;
        let z = latents(n, cfg.latent_dim, rng)?.f_to_device(device)?;
        let delta = self.editor.delta(x, &m, &z, y, true)?;
        let edited = x.f_add(&delta)?.f_clamp(0.0, 1.0)?;
        let real_pair = self.augment(&Tensor::f_cat(&[x, other], 1)?, rng)?;
        let fake_pair = self.augment(&Tensor::f_cat(&[x, &edited.detach()], 1)?, rng)?;
        let bce = |logits: &Tensor, target: f64| -> Result<Tensor> {
            Ok(logits.f_binary_cross_entropy_with_logits::<Tensor>(
                &logits.f_full_like(target)?,
                None,
                None,
                Reduction::Mean,
            )?)
        };
        let d_loss = bce(&self.critic.forward(&real_pair, y, true)?, 1.0)?
            .f_add(&bce(&self.critic.forward(&fake_pair, y, true)?, 0.0)?)?;
        zero_grad(&self.d_params)?;
        d_loss.f_backward()?;
        self.opt_d.step(&self.d_params)?;
        let g_pair = self.augment(&Tensor::f_cat(&[x, &edited], 1)?, rng)?;
        let g_loss = bce(&self.critic.forward(&g_pair, y, true)?, 1.0)?;
        zero_grad(&self.g_params)?;
        zero_grad(&self.d_params)?;
        g_loss.f_backward()?;
        self.opt_g.step(&self.g_params)?;
        let area = m.f_sum(Kind::Float)?.double_value(&[]).max(1e-9);
        let change =
            delta.f_abs()?.f_sum(Kind::Float)?.double_value(&[]) / area / cfg.channels as f64;
        Ok([d_loss.double_value(&[]), g_loss.double_value(&[]), change])
    }

    fn save(&self, path: &Path, progress: &Progress<EditEpoch>) -> Result<()> {
        let mut tensors: Vec<NamedTensor> = self.vs.variables().into_iter().collect();
        tensors.extend(optim::save_state(&self.opt_g, "opt_g"));
        tensors.extend(optim::save_state(&self.opt_d, "opt_d"));
        let meta = CheckpointMeta::new(EDIT_GAN_FORMAT, &self.cfg, &self.data)?
            .with_state("history", &progress.history)?;
        Ok(save_checkpoint(path, &tensors, &meta)?)
    }

    fn load(&mut self, path: &Path) -> Result<Progress<EditEpoch>> {
        let (tensors, meta) = load_checkpoint(path, self.vs.device())?;
        let rules = VarMatch {
            allow_missing: &[],
            ignore_unexpected: &["opt_g.", "opt_d."],
        };
        copy_into_vars(&self.vs.variables(), &tensors, &rules, path)?;
        optim::load_state(&mut self.opt_g, "opt_g", &tensors)?;
        optim::load_state(&mut self.opt_d, "opt_d", &tensors)?;
        self.data = meta.data.clone();
        Ok(Progress {
            history: meta.state("history", path)?,
            stop: None,
        })
    }
}

/// The edit GAN's side of the epoch loop: its images read by position (picked on the device
/// when in memory, read from the stream otherwise).
struct EditEpochs<'a> {
    reader: Box<dyn ImageReader>,
    /// Labels `[N]` on the networks' device.
    labels: Tensor,
    nets: &'a mut EditNets,
    by_class: &'a [Vec<i64>],
}

impl TrainStep for EditEpochs<'_> {
    type Record = EditEpoch;
    type Error = GanError;

    /// Shuffled batches of sources, each with a random real partner of its class (never
    /// itself).
    fn train_epoch(&mut self, epoch: usize, _seed: u64, rng: &mut ChaCha8Rng) -> Result<EditEpoch> {
        use rand::seq::SliceRandom;
        let n = self.labels.size().first().copied().unwrap_or(0) as usize;
        let mut order: Vec<i64> = (0..n as i64).collect();
        order.shuffle(rng);
        let labels = Vec::<i64>::try_from(&self.labels.f_to_device(Device::Cpu)?)?;
        let batch = self.nets.cfg.batch_size.min(n);
        let (mut sums, mut steps) = ([0.0f64; 3], 0usize);
        for idx in order.chunks(batch).filter(|c| c.len() >= 2) {
            let partners: Vec<i64> = idx
                .iter()
                .map(|&i| {
                    let same = &self.by_class[labels[i as usize] as usize];
                    loop {
                        let j = same[rng.random_range(0..same.len())];
                        if j != i {
                            break j;
                        }
                    }
                })
                .collect();
            let device = self.labels.device();
            let x = self.reader.read(idx)?.f_to_device(device)?;
            let y = self
                .labels
                .f_index_select(0, &Tensor::from_slice(idx).to_device(device))?;
            let other = self.reader.read(&partners)?.f_to_device(device)?;
            let s = self.nets.step(&x, &y, &other, rng)?;
            (0..3).for_each(|k| sums[k] += s[k]);
            steps += 1;
        }
        let s = steps.max(1) as f64;
        Ok(EditEpoch {
            epoch: epoch + 1,
            d_loss: sums[0] / s,
            g_loss: sums[1] / s,
            edit_mean: sums[2] / s,
            seconds: 0.0,
        })
    }

    fn save_checkpoint(&self, path: &Path, progress: &Progress<EditEpoch>) -> Result<()> {
        self.nets.save(path, progress)
    }

    fn restore(&mut self, path: &Path) -> Result<Progress<EditEpoch>> {
        self.nets.load(path)
    }
}
