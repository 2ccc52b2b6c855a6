//! `reproduce --dry-run`: every unit of work a run would do, what of it is already in the
//! results folder, and an estimate of each unit's time from a few timed steps on this device —
//! before any training.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use tch::Device;

use ganaug_data::{Splits, StreamSplits, Streaming};
use ganaug_gan::GanTrainer;

use crate::cells::CellSpec;
use crate::gans::{cgan_configs, gan_keys, replica_train, GanStage};
use crate::layout::{GanUnit, Layout};
use crate::shard::{units, Unit, Work};
use ganaug_train::{short_duration, Observer};

use crate::sources::SplitSources;

mod timing;
use crate::{CheckedConfig, DataSource, ExperimentError, Head, Result, Synthetic};
pub(crate) use timing::Timings;
use timing::{once, time_cell_step, time_features, time_gan_step, timing_err, TIMING_BATCH};

/// One line of the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanLine {
    /// Unit number (the order `--shard` splits by).
    pub unit: usize,
    /// `gan`, `synthesis` or `cell`.
    pub stage: &'static str,
    /// What it is.
    pub what: String,
    /// What the folder already has of it.
    pub cached: String,
    /// Whether this run (`--shard`) would do it.
    pub ours: bool,
    /// Estimated seconds still to spend on it (0 when cached).
    pub seconds: f64,
}

/// The plan of `cfg` on `data` into `out`, for `work`, timing a few steps on `device` (a
/// scarcity study: every subset's units), the images streamed as the run would stream them
/// (`streaming`: a plan reads a few batches, so a dataset larger than memory is planned
/// without holding it).
pub fn dry_run(
    cfg: &CheckedConfig,
    data: &DataSource,
    out: &Path,
    device: Device,
    (work, streaming): (Work, Streaming),
    observer: &dyn Observer,
) -> Result<Vec<PlanLine>> {
    observer.message("dry run: loading the data at every size the plan uses");
    let loaded = crate::run::load_sizes(cfg, data, device, &cfg.image_sizes(), streaming)?;
    let timings = RefCell::new(Timings::new(observer));
    if loaded.cfg.scarcity.is_some() {
        return crate::scarcity::dry_run(&loaded, out, device, &timings);
    }
    let (cfg, data_id) = (&loaded.cfg, &loaded.data_id);
    let sides = (&loaded.splits, loaded.streams.as_ref());
    Planner::new(cfg, sides, data_id, out, device, &timings)?.lines(work)
}

/// What a plan is made from.
pub(crate) struct Planner<'a, 'o> {
    cfg: &'a CheckedConfig,
    /// The splits by side: in memory, or streamed when there are streams.
    splits: &'a BTreeMap<i64, Splits>,
    streams: Option<&'a BTreeMap<i64, StreamSplits>>,
    data_id: &'a str,
    layout: Layout,
    device: Device,
    /// The GANs' keys (nothing trained).
    stage: GanStage,
    timings: &'a RefCell<Timings<'o>>,
    /// Added to every cell's seed, as [`crate::cells::Experiment`]'s `seed_offset` (a study's
    /// resample).
    seed_offset: u64,
}

impl<'a, 'o> Planner<'a, 'o> {
    pub(crate) fn new(
        cfg: &'a CheckedConfig,
        (splits, streams): (
            &'a BTreeMap<i64, Splits>,
            Option<&'a BTreeMap<i64, StreamSplits>>,
        ),
        data_id: &'a str,
        out: &Path,
        device: Device,
        timings: &'a RefCell<Timings<'o>>,
    ) -> Result<Self> {
        let classes = SplitSources::of(splits, streams, cfg.gan.gan.size)
            .train
            .class_names()
            .len();
        Ok(Planner {
            cfg,
            splits,
            streams,
            data_id,
            layout: Layout::new(out),
            device,
            stage: GanStage {
                replicas: cfg.gan.replicas,
                keys: gan_keys(cfg, classes, data_id)?,
                ..GanStage::default()
            },
            timings,
            seed_offset: 0,
        })
    }

    /// The splits at `side`, of the run's kind.
    fn sources(&self, side: i64) -> SplitSources<'a> {
        SplitSources::of(self.splits, self.streams, side)
    }

    /// Cells seeded as an experiment with this `seed_offset` seeds them (a study's resample).
    pub(crate) fn with_seed_offset(mut self, offset: u64) -> Self {
        self.seed_offset = offset;
        self
    }

    /// Every unit of the configuration, with `work` saying which are this run's.
    pub(crate) fn lines(&self, work: Work) -> Result<Vec<PlanLine>> {
        let mut lines = Vec::new();
        for (unit, u) in units(self.cfg).into_iter().enumerate() {
            let mut line = match u {
                Unit::Gan { which, replica } => self.gan_line(which, replica)?,
                Unit::Cell {
                    model,
                    scenario,
                    seed,
                } => {
                    let plan = &self.cfg.models[model];
                    let vectors = scenario.synthetic() == Some(Synthetic::Features);
                    if vectors && !plan.head.is_probe() {
                        continue; // not applicable: vectors for a classifier of images
                    }
                    let spec = CellSpec {
                        plan,
                        scenario,
                        seed: seed + self.seed_offset,
                    };
                    self.cell_line(spec, model)?
                }
            };
            line.unit = unit;
            line.ours = work.owns(unit);
            lines.push(line);
        }
        Ok(lines)
    }
}

impl Planner<'_, '_> {
    /// A GAN unit: the epochs its folders already hold, the time of the rest.
    fn gan_line(&self, which: Synthetic, replica: u64) -> Result<PlanLine> {
        let (cfg, base) = (self.cfg, self.sources(self.cfg.gan.gan.size));
        let classes = base.train.class_names().len();
        if which == Synthetic::Edits {
            return self.edit_line(replica);
        }
        let key = &self.stage.keys[&(which, replica)];
        // each GAN's images, by position in the training split
        let labels = crate::probe_cells::source_labels(base.train).map_err(|e| {
            ExperimentError::Quality {
                what: "planning the GANs",
                source: Box::new(e),
            }
        })?;
        let subsets: Vec<(Option<String>, Vec<i64>)> = match which {
            Synthetic::PerClass => (0..classes)
                .map(|l| {
                    let rows = (0..labels.len() as i64)
                        .filter(|&i| labels[i as usize] == l)
                        .collect();
                    (Some(base.train.class_names()[l].clone()), rows)
                })
                .collect(),
            _ => vec![(None, (0..labels.len() as i64).collect())],
        };
        let (gan, tcfg) = match which {
            Synthetic::PerClass => (cfg.gan.gan.clone(), replica_train(cfg, replica)),
            _ => cgan_configs(cfg, classes, replica),
        };
        let mut seconds = 0.0;
        let mut cached = Vec::new();
        for (class, subset) in &subsets {
            let dir = self.layout.gan_dir(GanUnit {
                which,
                class: class.as_deref(),
                key,
            });
            let done = GanTrainer::latest_checkpoint(&dir)
                .and_then(|c| GanTrainer::resume(&c, Device::Cpu, None).ok())
                .map_or(0, |t| t.epoch());
            let name = class.as_deref().unwrap_or("all");
            cached.push(format!("{name}: {done}/{} epochs", tcfg.epochs));
            let left = tcfg.epochs.saturating_sub(done);
            if left > 0 {
                let key = crate::hash_of(&(&gan, tcfg.batch_size, &tcfg.diffaugment))?;
                let what = || {
                    format!(
                        "one {}GAN step ({}², batch {})",
                        if gan.n_classes.is_some() {
                            "conditional "
                        } else {
                            ""
                        },
                        gan.size,
                        tcfg.batch_size
                    )
                };
                let per_step = once(
                    self.timings,
                    |t| &mut t.gan,
                    key,
                    what,
                    || time_gan_step(&gan, &tcfg, (base.train, subset), self.device),
                )?;
                let steps = (subset.len() / tcfg.batch_size).max(1) * left;
                seconds += per_step * steps as f64;
            }
        }
        Ok(PlanLine {
            unit: 0,
            stage: "gan",
            what: format!("{which} GAN(s), replica {replica}"),
            cached: cached.join(", "),
            ours: true,
            seconds,
        })
    }

    /// A probe cell: its own rows' features (synthetic images, copies), and the real splits'
    /// the first time a plan meets them (the bank extracts them once per data), plus the fits.
    fn probe_line(
        &self,
        spec: CellSpec<'_>,
        model: usize,
        (images, tta_flip): (usize, bool),
        sp: SplitSources<'_>,
    ) -> Result<PlanLine> {
        let what = || {
            format!(
                "the feature extraction of {} ({}²)",
                spec.plan.kind, spec.plan.image_size
            )
        };
        let per_image = once(
            self.timings,
            |t| &mut t.features,
            model,
            what,
            || time_features(spec, sp, self.device),
        )?;
        // feature vectors need no extraction
        let vectors = spec.scenario.synthetic() == Some(Synthetic::Features);
        let mut rows = if vectors {
            0
        } else {
            images.saturating_sub(sp.train.len())
        };
        let mut timings = self.timings.borrow_mut();
        if timings.counted.insert((model, self.data_id.to_string())) {
            rows += sp.train.len() + sp.val.len();
        }
        if timings.counted.insert((model, String::new())) {
            rows += sp.test.len() * if tta_flip { 2 } else { 1 };
        }
        // an L-BFGS fit takes about a second at these sizes; k-fold selection five more
        let fits = if spec.plan.train.seed == 0 { 6.0 } else { 1.0 };
        Ok(PlanLine {
            unit: 0,
            stage: "cell",
            what: format!(
                "{} × {} (seed {})",
                spec.plan.kind, spec.scenario, spec.seed
            ),
            cached: "—".into(),
            ours: true,
            seconds: per_image * rows as f64 + fits,
        })
    }

    /// The edit GAN's unit: its epochs done and the time of the rest, from timed steps.
    fn edit_line(&self, replica: u64) -> Result<PlanLine> {
        let base = self.sources(self.cfg.gan.gan.size);
        let classes = base.train.class_names().len();
        let key = &self.stage.keys[&(Synthetic::Edits, replica)];
        let dir = self.layout.gan_dir(GanUnit {
            which: Synthetic::Edits,
            class: None,
            key,
        });
        let gcfg = crate::edit_stage::edit_config(
            self.cfg,
            classes,
            base.train.channels(),
            base.train.len(),
            replica,
        );
        let (mut seconds, mut cached) = (0.0, String::from("—"));
        if let Some(gcfg) = gcfg {
            let done = ganaug_gan::EditGan::latest_checkpoint(&dir)
                .and_then(|c| ganaug_gan::EditGan::resume(&c, Device::Cpu, None).ok())
                .map_or(0, |t| t.epoch());
            cached = format!("{done}/{} epochs", gcfg.epochs);
            let left = gcfg.epochs.saturating_sub(done);
            if left > 0 {
                let steps = (base.train.len() / gcfg.batch_size).max(1) * left;
                let key = crate::hash_of(&(&gcfg.ngf, gcfg.ndf, gcfg.batch_size, gcfg.size))?;
                let (size, batch) = (gcfg.size, gcfg.batch_size);
                let what = move || format!("one edit-GAN step ({size}², batch {batch})");
                let per_step = once(
                    self.timings,
                    |t| &mut t.gan,
                    key,
                    what,
                    || {
                        let err =
                            |e: ganaug_gan::GanError| timing_err("the edit GAN")(e.to_string());
                        let mut gan = ganaug_gan::EditGan::new(gcfg, self.device).map_err(err)?;
                        gan.step_seconds(base.train, 2).map_err(err)
                    },
                )?;
                seconds = per_step * steps as f64;
            }
        }
        Ok(PlanLine {
            unit: 0,
            stage: "gan",
            what: format!("edit GAN, replica {replica}"),
            cached,
            ours: true,
            seconds,
        })
    }

    /// A cell: finished or not, and the time it would take (one estimate per model, kind of
    /// training set and size of it).
    fn cell_line(&self, spec: CellSpec<'_>, model: usize) -> Result<PlanLine> {
        let folder = spec.folder(self.cfg, &self.stage, self.data_id)?;
        let done = Layout::cell_result(&self.layout.cell_dir(&folder)).is_file();
        let seconds = if done {
            0.0
        } else {
            let sp = self.sources(spec.plan.image_size);
            let images = training_images(self.cfg, spec, sp);
            if let Head::Probe { tta_flip, .. } = &spec.plan.head {
                return self.probe_line(spec, model, (images, *tta_flip), sp);
            }
            let plan = spec.plan;
            let key = (
                plan.kind.to_string(),
                plan.image_size,
                plan.train.batch_size,
            );
            let what = || {
                format!(
                    "one training step of {} ({}², batch {})",
                    plan.kind, plan.image_size, plan.train.batch_size
                )
            };
            let per_step = once(
                self.timings,
                |t| &mut t.steps,
                key,
                what,
                || time_cell_step(spec, sp, self.device),
            )?;
            let b = plan.train.batch_size;
            let steps = images.div_ceil(b) + sp.val.len().div_ceil(b) / 3;
            per_step * (steps * plan.train.max_epochs) as f64
        };
        Ok(PlanLine {
            unit: 0,
            stage: "cell",
            what: format!(
                "{} × {} (seed {})",
                spec.plan.kind, spec.scenario, spec.seed
            ),
            cached: if done {
                "finished".into()
            } else {
                "—".into()
            },
            ours: true,
            seconds,
        })
    }
}

/// Roughly how many images a cell trains on (real, synthetic as kept, classic copies).
fn training_images(cfg: &CheckedConfig, spec: CellSpec<'_>, sp: SplitSources<'_>) -> usize {
    let real = sp.train.len();
    let synthetic = match (spec.scenario.synthetic(), cfg.gan.mix.ratio) {
        (None, _) => 0,
        (Some(_), Some(r)) => (r * real as f64).round() as usize,
        (Some(_), None) => cfg.gan.synth.keep_per_class * sp.train.class_names().len(),
    };
    let base = real + synthetic;
    if spec.scenario.uses_classic() {
        base * (1 + cfg.classic_copies)
    } else {
        base
    }
}

/// The plan as a table, with the totals.
pub fn plan_text(cfg: &CheckedConfig, lines: &[PlanLine], device: Device) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Plan of preset `{}` on {device:?} ({} units; estimates from one timed step of each kind, at up to {TIMING_BATCH} images scaled to the batch when slow; cells at most max_epochs):\n",
        cfg.preset,
        lines.len()
    );
    let _ = writeln!(
        s,
        "{:>4}  {:<5} {:<52} {:<44} {:>9}",
        "unit", "stage", "what", "in the folder", "estimate"
    );
    for l in lines {
        let mark = if l.ours { "" } else { "  (another shard)" };
        let _ = writeln!(
            s,
            "{:>4}  {:<5} {:<52} {:<44} {:>9}{mark}",
            l.unit,
            l.stage,
            l.what,
            l.cached,
            short_duration(l.seconds)
        );
    }
    let ours: f64 = lines.iter().filter(|l| l.ours).map(|l| l.seconds).sum();
    let gan: f64 = lines
        .iter()
        .filter(|l| l.ours && l.stage == "gan")
        .map(|l| l.seconds)
        .sum();
    let _ = writeln!(
        s,
        "\nEstimated for this run: GANs {}, cells {}, total {} (plus synthesis, measures and features: about a minute per synthetic set on a CPU).",
        short_duration(gan),
        short_duration(ours - gan),
        short_duration(ours)
    );
    s
}
