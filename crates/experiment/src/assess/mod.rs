//! Assessing synthetic images from any generator (`ganaug assess`): a folder of class folders
//! made by another tool — a StyleGAN, a diffusion model, ganaug's own `synthetic/` sets — is
//! measured against the real training images of each class exactly as the experiment's quality
//! gate measures its own sets: diversity, precision, recall, density and coverage against the
//! real-vs-real floor, FID and KID at matched size, a real-vs-synthetic probe's AUC; then the
//! verdict, the CAS next to the real training split's, and the synthetic images nearest to and
//! farthest from the real ones.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use ganaug_data::{
    load_entries, ColorMode, DataSource, Depth, FolderConfig, ImageFolder, ImageSpec, LoadOptions,
    Split, Splits, TensorDataset,
};

mod report;
pub use report::{markdown, write_assessment};

use crate::gate::{self, GateConfig, SetMeasures};
use crate::quality::{fid_kid, Cas, FeatureNet, Quality};
use crate::{ExperimentError, Result};

/// How an assessment is made.
#[derive(Debug, Clone, PartialEq)]
pub struct AssessConfig {
    /// The side both sets are measured at (the experiment's: its GAN's size).
    pub size: i64,
    /// Resize policy of the real images (the experiment's `resize`).
    pub resize: ganaug_data::ResizePolicy,
    /// The feature network.
    pub extractor: FeatureNet,
    /// The gate's floors, neighbourhood and repeats.
    pub gate: GateConfig,
    /// Images in each nearest / farthest grid, per class.
    pub grid: usize,
    /// Also the classification accuracy score (a probe trained on the synthetic images, tested
    /// on the real test split) next to the real training split's.
    pub cas: bool,
    /// What the floors are fractions of.
    pub floor: Floor,
}

/// The reference the floors are fractions of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Floor {
    /// Real-vs-real: a random half of the class's training images against the other half (the
    /// experiment's gate). Halves share patients, so this reference is as close as real images
    /// get: images of new patients can fall below it.
    #[default]
    Halves,
    /// The class's validation images (held out; patient-disjoint where the split is) against
    /// its training images: "as close as real images of unseen patients".
    HeldOut,
}

impl AssessConfig {
    /// The assessment the experiment's gate makes of its own sets under `cfg`.
    pub fn of(cfg: &crate::CheckedConfig) -> Self {
        AssessConfig {
            size: cfg.gan.gan.size,
            resize: cfg.resize,
            extractor: cfg.gan.extractor,
            gate: cfg.gan.gate.clone(),
            grid: 16,
            cas: true,
            floor: Floor::Halves,
        }
    }
}

/// One class of an assessment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassAssessment {
    /// The class.
    pub class: String,
    /// Its real training images.
    pub real_images: usize,
    /// Its synthetic images.
    pub synthetic_images: usize,
    /// The gate's measures (`None` with why in `not_measured`); with [`Floor::HeldOut`], its
    /// failures are against the held-out reference.
    pub measures: Option<SetMeasures>,
    /// With [`Floor::HeldOut`]: the class's validation images measured as the synthetic set is
    /// (their `synthetic` side is the reference of the floors).
    pub held_out: Option<SetMeasures>,
    /// Why the gate could not measure it.
    pub not_measured: Option<String>,
    /// FID of all its synthetic images against all its real training images.
    pub fid: Option<f64>,
    /// KID (mean over subsets), the same sets.
    pub kid: Option<f64>,
    /// Feature distance from each synthetic image to its nearest real one: median.
    pub nn_distance_median: Option<f64>,
    /// The same distances between real images (each to its nearest other real image): what
    /// "as close as real" reads.
    pub nn_distance_real_median: Option<f64>,
    /// The nearest synthetic images (file names) with their distances, nearest first.
    pub nearest: Vec<(String, f64)>,
    /// The farthest, farthest first.
    pub farthest: Vec<(String, f64)>,
}

/// The verdict on a synthetic set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every class measured, every floor reached.
    Passes,
    /// A floor missed: the experiment's gate would refuse it.
    Refused,
    /// A class could not be measured (too few images, no feature network): not judged.
    NotJudged,
}

/// What `ganaug assess` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// The real data, in words.
    pub real: String,
    /// The synthetic folder.
    pub synthetic: PathBuf,
    /// The side both were measured at.
    pub size: i64,
    /// The feature space.
    pub extractor: String,
    /// The floors used.
    pub gate: GateConfig,
    /// What they are fractions of.
    pub floor: Floor,
    /// Each class of the real data.
    pub classes: Vec<ClassAssessment>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, when it does not pass.
    pub reasons: Vec<String>,
    /// CAS of the synthetic images (when asked and possible).
    pub cas: Option<Cas>,
    /// CAS of the real training split, the reference.
    pub cas_real: Option<Cas>,
    /// The paired effect on a classifier, when asked ([`crate::effect::effect_of_set`]).
    #[serde(default)]
    pub effect: Option<crate::effect::Effect>,
    /// The commit of the code that assessed.
    pub commit: Option<String>,
}

fn assess_err(reason: impl Into<String>) -> ExperimentError {
    ExperimentError::config("assess", reason)
}

/// The real splits at the assessment's side (auto colour decided as the experiment does).
pub fn real_splits(data: &DataSource, cfg: &AssessConfig, device: Device) -> Result<Splits> {
    let spec = ImageSpec {
        policy: cfg.resize,
        ..ImageSpec::with_size(u32::try_from(cfg.size).unwrap_or(0))
    };
    let (data, _) = data.decide_auto(spec, device)?;
    Ok(data.load_spec(spec, device)?)
}

/// The synthetic images of `dir` (one sub-folder per class, named as the real classes; every
/// image of a class in file-name order), at the real images' side and colour and resized by the
/// real images' `policy` (a non-square image is padded or cropped as they were), read at 16
/// bits (8-bit files read the same values either way).
pub fn synthetic_images(
    dir: &Path,
    real: &dyn ganaug_data::ImageSource,
    policy: ganaug_data::ResizePolicy,
    device: Device,
) -> Result<TensorDataset> {
    let (config, _) = FolderConfig::discover(dir)?;
    // every image, whatever split lists the folder may hold
    let config = config
        .with_split_source(ganaug_data::SplitSource::Ratios)
        .with_ratios([1.0, 0.0, 0.0], 0);
    let folder = ImageFolder::open(dir, &config)?;
    let names = folder.class_names();
    let mut entries = Vec::new();
    for (label, class) in names.iter().enumerate() {
        let Some(real_label) = real.class_names().iter().position(|c| c == class) else {
            return Err(assess_err(format!(
                "{}: class folder {class:?} is not a class of the real data ({})",
                dir.display(),
                real.class_names().join(", ")
            )));
        };
        let mut of_class: Vec<_> = folder
            .entries()
            .iter()
            .filter(|e| e.label == label as i64)
            .cloned()
            .collect();
        of_class.sort_by(|a, b| (&a.name, a.frame).cmp(&(&b.name, b.frame)));
        for mut e in of_class {
            e.label = real_label as i64;
            e.split = Split::Train;
            entries.push(e);
        }
    }
    if entries.is_empty() {
        return Err(assess_err(format!("{}: no images", dir.display())));
    }
    let side = real.image_size().0;
    let color = if real.channels() == 3 {
        ColorMode::Rgb
    } else {
        ColorMode::Gray
    };
    let spec = ImageSpec {
        color,
        depth: Depth::Sixteen,
        policy,
        ..ImageSpec::with_size(u32::try_from(side).unwrap_or(0))
    };
    let opts = LoadOptions::default().with_spec(spec).with_device(device);
    let what = format!("synthetic images from {}", dir.display());
    let (ds, _) = load_entries(&entries, real.class_names(), &what, &opts)?;
    Ok(ds)
}

/// Assesses `synthetic` (labels in the real data's classes) against the real `splits`.
pub fn assess(
    splits: &Splits,
    synthetic: &TensorDataset,
    cfg: &AssessConfig,
    device: Device,
) -> Result<(Assessment, Vec<ClassImages>)> {
    let train = &splits.train;
    let mut quality = Quality::with_network(device, train.channels(), cfg.extractor)?;
    let (mut classes, mut images, mut reasons) = (Vec::new(), Vec::new(), Vec::new());
    let mut judged = true;
    for (label, class) in train.class_names.iter().enumerate() {
        let real = train.class_subset(label as i64)?;
        let syn = synthetic.class_subset(label as i64)?;
        let val = splits.val.class_subset(label as i64)?;
        let (mut a, pictures) = assess_class(class, &real, &syn, cfg, &mut quality)?;
        if cfg.floor == Floor::HeldOut {
            held_out_floor(&mut a, (&real, &val), cfg, &mut quality)?;
        }
        match (&a.measures, &a.not_measured) {
            (Some(m), _) if !m.failures.is_empty() => {
                reasons.extend(m.failures.iter().map(|f| format!("{class}: {f}")));
            }
            (None, why) => {
                judged = false;
                reasons.push(format!(
                    "{class}: not measured ({})",
                    why.as_deref().unwrap_or("unknown")
                ));
            }
            _ => {}
        }
        classes.push(a);
        images.extend(pictures);
    }
    let refused = classes
        .iter()
        .any(|c| c.measures.as_ref().is_some_and(|m| !m.failures.is_empty()));
    let verdict = match (refused, judged) {
        (true, _) => Verdict::Refused,
        (false, false) => Verdict::NotJudged,
        (false, true) => Verdict::Passes,
    };
    let (cas, cas_real) = if cfg.cas && !synthetic.is_empty() {
        (
            quality.cas("synthetic", synthetic, &splits.test)?,
            quality.cas("real", train, &splits.test)?,
        )
    } else {
        (None, None)
    };
    Ok((
        Assessment {
            real: train.description.clone(),
            synthetic: PathBuf::new(),
            size: cfg.size,
            extractor: quality.describe().into(),
            gate: cfg.gate.clone(),
            floor: cfg.floor,
            classes,
            verdict,
            reasons,
            cas,
            cas_real,
            effect: None,
            commit: crate::BUILD_COMMIT.map(String::from),
        },
        images,
    ))
}

/// A grid to write: its file name and the images in it.
pub struct ClassImages {
    /// File name (`nearest_COVID.png`).
    pub file: String,
    /// `[N, C, H, W]`.
    pub images: Tensor,
}

fn assess_class(
    class: &str,
    real: &TensorDataset,
    syn: &TensorDataset,
    cfg: &AssessConfig,
    quality: &mut Quality,
) -> Result<(ClassAssessment, Vec<ClassImages>)> {
    let mut a = ClassAssessment {
        class: class.into(),
        real_images: real.len(),
        synthetic_images: syn.len(),
        measures: None,
        held_out: None,
        not_measured: None,
        fid: None,
        kid: None,
        nn_distance_median: None,
        nn_distance_real_median: None,
        nearest: Vec::new(),
        farthest: Vec::new(),
    };
    if syn.is_empty() {
        a.not_measured = Some("no synthetic images of this class".into());
        return Ok((a, Vec::new()));
    }
    let Some((fr, fs)) = quality.features(class, &real.images, &syn.images)? else {
        a.not_measured = Some(format!(
            "no {} weights: run scripts/setup.sh",
            quality.network_name()
        ));
        return Ok((a, Vec::new()));
    };
    match gate::measure(&fr, &fs, quality.describe(), &cfg.gate) {
        Ok(m) => a.measures = Some(m),
        Err(e) => a.not_measured = Some(e.to_string()),
    }
    (a.fid, a.kid) = fid_kid(&fr, &fs);
    let to_real = nearest_distances(&fs, &fr, false);
    let real_real = nearest_distances(&fr, &fr, true);
    a.nn_distance_median = median(&to_real);
    a.nn_distance_real_median = median(&real_real);
    let mut order: Vec<usize> = (0..to_real.len()).collect();
    order.sort_by(|&i, &j| to_real[i].total_cmp(&to_real[j]));
    let n = cfg.grid.min(order.len());
    let named = |i: usize| (syn.names[i].clone(), to_real[i]);
    a.nearest = order[..n].iter().map(|&i| named(i)).collect();
    a.farthest = order[order.len() - n..]
        .iter()
        .rev()
        .map(|&i| named(i))
        .collect();
    let pick = |idx: Vec<usize>| -> Result<Tensor> {
        let idx: Vec<i64> = idx.into_iter().map(|i| i as i64).collect();
        let t = Tensor::f_from_slice(&idx).map_err(ganaug_data::DataError::from)?;
        Ok(syn
            .images
            .f_index_select(0, &t.to_device(syn.images.device()))
            .map_err(ganaug_data::DataError::from)?)
    };
    let near: Vec<usize> = order[..n].to_vec();
    let far: Vec<usize> = order[order.len() - n..].iter().rev().copied().collect();
    let safe = class.replace(['/', '\\'], "_");
    let pictures = vec![
        ClassImages {
            file: format!("nearest_{safe}.png"),
            images: pick(near)?,
        },
        ClassImages {
            file: format!("farthest_{safe}.png"),
            images: pick(far)?,
        },
    ];
    Ok((a, pictures))
}

/// Judges `a` against the class's held-out images instead of the real halves: the held-out
/// images are measured as a synthetic set would be, and the floors are fractions of their
/// values.
fn held_out_floor(
    a: &mut ClassAssessment,
    (real, val): (&TensorDataset, &TensorDataset),
    cfg: &AssessConfig,
    quality: &mut Quality,
) -> Result<()> {
    let Some(m) = a.measures.as_mut() else {
        return Ok(());
    };
    let features = quality.features(&a.class, &real.images, &val.images)?;
    let reference = match features {
        Some((fr, fv)) if !val.is_empty() => gate::measure(&fr, &fv, quality.describe(), &cfg.gate),
        _ => {
            a.not_measured = Some("no held-out (validation) images of this class".into());
            a.measures = None;
            return Ok(());
        }
    };
    match reference {
        Ok(r) => {
            m.failures = gate::floors_missed(&m.synthetic, &r.synthetic, &cfg.gate);
            for f in &mut m.failures {
                *f = f.replace("real-vs-real", "held-out-vs-train");
            }
            a.held_out = Some(r);
        }
        Err(e) => {
            a.not_measured = Some(format!("the held-out reference: {e}"));
            a.measures = None;
        }
    }
    Ok(())
}

/// Euclidean distance from each row of `from` to its nearest row of `to` (itself excluded
/// when `same`).
fn nearest_distances(
    from: &ndarray::Array2<f64>,
    to: &ndarray::Array2<f64>,
    same: bool,
) -> Vec<f64> {
    from.outer_iter()
        .enumerate()
        .map(|(i, x)| {
            to.outer_iter()
                .enumerate()
                .filter(|(j, _)| !(same && *j == i))
                .map(|(_, y)| (&x - &y).mapv(|d| d * d).sum().sqrt())
                .fold(f64::INFINITY, f64::min)
        })
        .filter(|d| d.is_finite())
        .collect()
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}
