//! The feature-space GAN of a probe cell: trained on the real rows the probe fits (its
//! backbone's features of the training split, and of the validation split when the probe fits
//! on it), in their standardised space projected on its leading principal axes; each class's
//! vectors measured against the class's real rows by the gate, like an image set, and refused
//! the same way. One per backbone, data and replica, cached in the results folder and shared
//! by every cell that uses it.

use ndarray::{Array1, Array2, Axis};
use tch::{Device, Kind, Tensor};

use ganaug_gan::{ClassSynthReport, FeatureGan, FeatureGanConfig};
use ganaug_models::Classifier;

use crate::cells::{build_model, CellSpec, Experiment};
use crate::gans::{train_summarised, under_gan_lock, StageContext};
use crate::layout::{replica_name, GanUnit};
use crate::probe_cells::{Backbone, ImageSet};
use crate::{CellError, ExperimentError, ReproConfig, Result, SynthSummary, Synthetic};

/// A feature GAN's vectors in the probe's feature space, with their classes and the gate's
/// verdict.
#[derive(Debug, Clone)]
pub(crate) struct FeatureSet {
    /// `[K, d]` vectors, each class's in turn.
    pub(crate) rows: Array2<f64>,
    /// Their classes.
    pub(crate) labels: Vec<usize>,
    /// `class: what failed`, for every class that missed a floor.
    pub(crate) failures: Vec<String>,
}

/// Where a feature GAN's set is kept in the bank: its backbone (and data), replica and seed
/// (a study's resamples of the whole data share the data, not the seed).
pub(crate) type FeatureSetKey = (Backbone, u64, u64);

/// The bank's key of the feature set of `backbone` and `replica` under `cfg`.
pub(crate) fn feature_set_key(
    backbone: &Backbone,
    replica: u64,
    cfg: &ReproConfig,
) -> FeatureSetKey {
    (backbone.clone(), replica, cfg.gan.train.seed + replica)
}

/// The feature GAN's space, named in its cache key: standardised features on their leading
/// principal axes, whitened.
const FEATURE_SPACE: &str = "pca-whitened";

/// Standardisation and the leading principal axes of a set of rows: where the feature GAN
/// works.
struct FeatureSpace {
    mean: Array1<f64>,
    scale: Array1<f64>,
    /// `[d, r]` orthonormal axes.
    axes: Array2<f64>,
    /// The standard deviation of the rows' coordinate on each axis: the GAN sees unit
    /// variances (whitened coordinates), not the leading axis dwarfing the others.
    spread: Array1<f64>,
}

impl FeatureSpace {
    /// The space of `x` (`[n, d]`) on its `dims` leading axes (at most `n − 1`).
    fn fit(x: &Array2<f64>, dims: usize) -> std::result::Result<Self, CellError> {
        let mean = x.mean_axis(Axis(0)).ok_or(CellError::Features {
            what: "the feature GAN's real rows (none)",
        })?;
        let scale = x
            .std_axis(Axis(0), 0.0)
            .mapv(|s| if s > 1e-12 { s } else { 1.0 });
        let z = (x - &mean) / &scale;
        let r = dims.min(x.nrows().saturating_sub(1)).max(1);
        let zt = to_tensor(&z)?;
        let gram = zt.f_matmul(&zt.f_transpose(0, 1)?)?;
        let (values, vectors) = gram.f_linalg_eigh("L")?;
        let n = x.nrows() as i64;
        // eigh sorts ascending: the leading axes are the last columns
        let top = vectors.f_narrow(1, n - r as i64, r as i64)?;
        let lambda = values
            .f_narrow(0, n - r as i64, r as i64)?
            .f_clamp_min(1e-12)?
            .f_sqrt()?;
        let axes = zt
            .f_transpose(0, 1)?
            .f_matmul(&top)?
            .f_div(&lambda.f_unsqueeze(0)?)?;
        let axes = from_tensor(&axes)?;
        let spread = z
            .dot(&axes)
            .std_axis(Axis(0), 0.0)
            .mapv(|s| if s > 1e-12 { s } else { 1.0 });
        Ok(FeatureSpace {
            mean,
            scale,
            axes,
            spread,
        })
    }

    fn encode(&self, x: &Array2<f64>) -> Array2<f64> {
        ((x - &self.mean) / &self.scale).dot(&self.axes) / &self.spread
    }

    fn decode(&self, z: &Array2<f64>) -> Array2<f64> {
        (z * &self.spread).dot(&self.axes.t()) * &self.scale + &self.mean
    }
}

fn to_tensor(a: &Array2<f64>) -> std::result::Result<Tensor, CellError> {
    let (n, d) = a.dim();
    let v: Vec<f64> = a.iter().copied().collect();
    Ok(Tensor::f_from_slice(&v)?.f_view([n as i64, d as i64])?)
}

fn from_tensor(t: &Tensor) -> std::result::Result<Array2<f64>, CellError> {
    let a: ndarray::ArrayD<f64> =
        (&t.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?).try_into()?;
    a.into_dimensionality().map_err(|_| CellError::Features {
        what: "a matrix from libtorch",
    })
}

/// Trains (or resumes, from `dir`) the feature GAN on the encoded real rows, as the GAN stage
/// trains its generators (`None` in a report-only run when it is not finished).
fn fit_feature_gan(
    ctx: &StageContext<'_>,
    name: String,
    gcfg: FeatureGanConfig,
    (z, y): (&Array2<f64>, &[usize]),
    classes: usize,
    dir: &std::path::Path,
) -> Result<Option<(FeatureGan, crate::GanSummary)>> {
    let (epochs, dims) = (gcfg.epochs, z.ncols() as i64);
    let new = || FeatureGan::new(gcfg, dims, classes as i64, ctx.device);
    let fit = |gan: &mut FeatureGan| {
        let xt = to_tensor(z)
            .map_err(|e| ganaug_gan::GanError::Inputs {
                reason: e.to_string(),
            })?
            .f_to_kind(Kind::Float)?;
        let labels: Vec<i64> = y.iter().map(|&l| l as i64).collect();
        gan.fit(&xt, &Tensor::from_slice(&labels), Some(dir), ctx.observer)
            .map(|_| ())
    };
    train_summarised(name, dir, ctx, epochs, new, fit)
}

impl Experiment<'_> {
    /// The feature GAN set of a probe cell's backbone and replica: trained (or resumed) once,
    /// then kept in the bank for every cell that uses it.
    /// `None` in a report-only run when its GAN is not trained (report-only runs train nothing).
    pub(crate) fn feature_set(&mut self, spec: CellSpec<'_>) -> Result<Option<FeatureSet>> {
        let replica = self.gans.replica(spec.seed);
        let backbone = Backbone::of(spec, self.data_id);
        let key = feature_set_key(&backbone, replica, self.cfg);
        if let Some(set) = self.bank.feature_sets.get(&key) {
            return Ok(Some(set.clone()));
        }
        let (x, y, model) = self.real_rows(spec, &backbone)?;
        let set = self.train_feature_gan(spec, (&backbone, &model), replica, (&x, &y))?;
        if let Some(set) = &set {
            self.bank.feature_sets.insert(key, set.clone());
        }
        Ok(set)
    }

    /// The real rows a probe cell fits: its backbone's features of the training split, and of
    /// the validation split when it fits on it, with their classes.
    /// Returns the backbone's model too (the feature extractor of later sets).
    fn real_rows(
        &mut self,
        spec: CellSpec<'_>,
        backbone: &Backbone,
    ) -> Result<(Array2<f64>, Vec<usize>, Classifier)> {
        let sp = self.sources(spec.plan.image_size);
        let (model, _, start) = build_model(spec, sp.train, self.ctx.device)?;
        start.require_imagenet(spec, "the feature GAN")?;
        let (x, y) = self
            .rows_of(spec, backbone, &model)
            .map_err(spec.fail("the feature GAN's real rows"))?;
        Ok((x, y, model))
    }

    fn rows_of(
        &mut self,
        spec: CellSpec<'_>,
        backbone: &Backbone,
        model: &ganaug_models::Classifier,
    ) -> std::result::Result<(Array2<f64>, Vec<usize>), CellError> {
        let sp = self.sources(spec.plan.image_size);
        let mut parts =
            vec![self
                .bank
                .get_source((backbone.clone(), ImageSet::Train), model, sp.train)?];
        let mut labels = crate::probe_cells::source_labels(sp.train)?;
        if spec.plan.head.fits_on_val() {
            parts.push(
                self.bank
                    .get_source((backbone.clone(), ImageSet::Val), model, sp.val)?,
            );
            labels.extend(crate::probe_cells::source_labels(sp.val)?);
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        let x = ndarray::concatenate(Axis(0), &views).map_err(|_| CellError::Features {
            what: "the feature GAN's real rows",
        })?;
        Ok((x, labels))
    }

    fn train_feature_gan(
        &mut self,
        spec: CellSpec<'_>,
        (backbone, model): (&Backbone, &Classifier),
        replica: u64,
        (x, y): (&Array2<f64>, &[usize]),
    ) -> Result<Option<FeatureSet>> {
        let (cfg, ctx) = (self.cfg, self.ctx);
        let plan = cfg.gan.features.as_ref().ok_or_else(|| {
            ExperimentError::config(
                "gan.features",
                "the fgan scenario needs a [gan.features] table",
            )
        })?;
        let fail = |e: CellError| spec.fail("the feature GAN")(e);
        let space = FeatureSpace::fit(x, plan.pca_dims).map_err(fail)?;
        let z = space.encode(x);
        let classes = self
            .sources(spec.plan.image_size)
            .train
            .class_names()
            .to_vec();
        let gcfg = FeatureGanConfig {
            seed: cfg.gan.train.seed + replica,
            batch_size: plan.gan.batch_size.min(x.nrows()).max(2),
            ..plan.gan.clone()
        };
        let key = crate::hash_of(&(&gcfg, plan.pca_dims, FEATURE_SPACE, backbone, replica))?;
        let dir = ctx.layout.gan_dir(GanUnit {
            which: Synthetic::Features,
            class: None,
            key: &key,
        });
        let name = format!("{}/{}", replica_name("features", replica), spec.plan.kind);
        let trained = under_gan_lock(ctx, Synthetic::Features, &key, || {
            fit_feature_gan(ctx, name, gcfg, (&z, y), classes.len(), &dir)
        })?;
        let Some((gan, summary)) = trained else {
            return Ok(None);
        };
        ctx.say(format!("GAN {}: {} epochs", summary.name, gan.epoch()));
        self.bank.gans.push(summary);
        let keep = cfg.gan.synth.keep_per_class;
        let (v, labels) = gan
            .generate(&vec![keep; classes.len()], cfg.gan.synth.seed + replica)
            .map_err(|e| fail(e.into()))?;
        let rows = space.decode(&from_tensor(&v).map_err(fail)?);
        let labels: Vec<usize> = Vec::<i64>::try_from(&labels)
            .map_err(|e| fail(e.into()))?
            .into_iter()
            .map(|l| l as usize)
            .collect();
        let failures = self.judge_feature_set(spec, replica, (x, y), (&rows, &labels), &classes);
        self.vector_cas(spec, (backbone, model), (&rows, &labels), classes.len())?;
        Ok(Some(FeatureSet {
            rows,
            labels,
            failures,
        }))
    }

    /// The Classification Accuracy Score of the vectors: a probe fitted on them alone, tested
    /// on the real test images' features; recorded on the set's summaries.
    fn vector_cas(
        &mut self,
        spec: CellSpec<'_>,
        (backbone, model): (&Backbone, &Classifier),
        (rows, labels): (&Array2<f64>, &[usize]),
        classes: usize,
    ) -> Result<()> {
        let sp = self.sources(spec.plan.image_size);
        let test_key = backbone.on(self.test_data_id);
        let fail = |e: CellError| spec.fail("the feature GAN's CAS")(e);
        let test = self
            .bank
            .get_source((test_key, ImageSet::Test), model, sp.test)
            .map_err(fail)?;
        let test_y = crate::probe_cells::source_labels(sp.test).map_err(fail)?;
        let cfg = ganaug_models::ProbeConfig::default();
        let cas = ganaug_models::fit_at(rows, labels, classes, 1.0, &cfg)
            .and_then(|p| p.predict_proba(&test))
            .map(|p| {
                // argmax with ties to the lowest class: a flat (collapsed) probe is not right
                let predicted = ganaug_metrics::argmax_rows(&p);
                let right = predicted
                    .iter()
                    .zip(&test_y)
                    .filter(|(p, y)| p == y)
                    .count();
                right as f64 / test_y.len().max(1) as f64
            });
        let cas = match cas {
            Ok(c) => Some(c),
            Err(e) => {
                // said even without progress output: a missing measure is not a zero
                eprintln!("feature set of {}: no CAS: {e}", spec.plan.kind);
                None
            }
        };
        let replica = self.gans.replica(spec.seed);
        let n = self.bank.synthetic.len();
        for s in self.bank.synthetic[n.saturating_sub(classes)..].iter_mut() {
            if s.gan == Synthetic::Features && s.replica == replica {
                s.cas = cas;
            }
        }
        Ok(())
    }

    /// Measures each class's vectors against its real rows, records their summaries, and
    /// returns the floors they missed.
    fn judge_feature_set(
        &mut self,
        spec: CellSpec<'_>,
        replica: u64,
        (x, y): (&Array2<f64>, &[usize]),
        (rows, labels): (&Array2<f64>, &[usize]),
        classes: &[String],
    ) -> Vec<String> {
        let extractor = format!(
            "{} probe features ({}-d, {}², the cell's own space)",
            spec.plan.kind.display_name(),
            x.ncols(),
            spec.plan.image_size
        );
        let mut failures = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let pick = |l: &[usize], m: &Array2<f64>| {
                let idx: Vec<usize> = (0..l.len()).filter(|&i| l[i] == label).collect();
                m.select(Axis(0), &idx)
            };
            let (real, synthetic) = (pick(y, x), pick(labels, rows));
            let name = format!("features/{class}");
            let measures =
                crate::gans::gate_measures(&real, &synthetic, &extractor, self.cfg, &name);
            let (fid, kid) = crate::quality::fid_kid(&real, &synthetic);
            if let Some(m) = measures.as_ref().filter(|m| !m.failures.is_empty()) {
                failures.push(format!("{class}: {}", m.failures.join("; ")));
            }
            self.bank.synthetic.push(SynthSummary {
                gan: Synthetic::Features,
                replica,
                class: class.clone(),
                selection: vector_report(class, &real, &synthetic),
                fid,
                kid,
                grid: String::new(),
                measures,
                cas: None,
            });
        }
        failures
    }
}

/// A class's vectors in a selection report: all kept, no discriminator score (0), and the
/// nearest-neighbour figures as each vector's RMS distance to its nearest real vector, in
/// units of the real vectors' per-feature spread (near 0: a copy of a real vector).
fn vector_report(class: &str, real: &Array2<f64>, synthetic: &Array2<f64>) -> ClassSynthReport {
    let scale = real
        .std_axis(Axis(0), 0.0)
        .mapv(|s| if s > 1e-12 { s } else { 1.0 });
    let (r, s) = (real / &scale, synthetic / &scale);
    let d = r.ncols().max(1) as f64;
    let mut nn: Vec<f64> = s
        .outer_iter()
        .map(|v| {
            r.outer_iter()
                .map(|w| (&v - &w).mapv(|e| e * e).sum() / d)
                .fold(f64::INFINITY, f64::min)
                .sqrt()
        })
        .collect();
    nn.sort_by(f64::total_cmp);
    let mean = nn.iter().sum::<f64>() / nn.len().max(1) as f64;
    ClassSynthReport {
        class: class.into(),
        generated: synthetic.nrows(),
        near_copies: 0,
        kept: synthetic.nrows(),
        d_score_kept: 0.0,
        d_score_all: 0.0,
        nn_mean: if nn.is_empty() { 0.0 } else { mean },
        nn_min: nn.first().copied().unwrap_or(0.0),
        nn_median: nn.get(nn.len() / 2).copied().unwrap_or(0.0),
    }
}
