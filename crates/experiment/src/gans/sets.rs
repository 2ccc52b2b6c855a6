//! A GAN's synthetic set for one class: candidates generated, ranked and kept, their sample
//! grid, and their measures against the class's real images (the gate's input).

use tch::Tensor;

use ganaug_data::{io, AnySource, ImageSource, TensorDataset};
use ganaug_gan::{generate_candidates, ClassModel, SynthConfig};

use super::StageContext;
use crate::layout::Layout;
use crate::quality::Quality;
use crate::select::SelectBy;
use crate::{CheckedConfig, ExperimentError, Result, SynthSummary, Synthetic};

/// Generates one class's candidates, ranks them by the configured rule, keeps the first
/// `keep_per_class`, writes their sample grid and scores them against the class's training
/// images.
pub(super) fn synthesize(
    model: ClassModel<'_>,
    (gan, r): (Synthetic, u64),
    label: usize,
    subsets: &[AnySource],
    cfg: &CheckedConfig,
    quality: &mut Quality,
    ctx: &StageContext<'_>,
) -> Result<(Tensor, SynthSummary)> {
    let train = &subsets[label];
    let class = train.class_names()[label].as_str();
    let fail = |source: ganaug_gan::GanError| ExperimentError::Synthesis {
        gan,
        class: class.into(),
        source: Box::new(source),
    };
    let synth = SynthConfig {
        seed: cfg.gan.synth.seed + r,
        ..cfg.gan.synth.clone()
    };
    let candidates = generate_candidates(model, train, &synth).map_err(fail)?;
    let select = cfg.gan.select;
    let (order, candidate_features) =
        selection_order(&candidates, label, subsets, select, quality)?;
    let keep = synth.keep_per_class.min(order.len());
    let (images, selection) = candidates.keep(&order, keep, class).map_err(fail)?;
    let features = candidate_features
        .map(|(real, feats)| (real, feats.select(ndarray::Axis(0), &order[..keep])));
    let kept = KeptSet {
        set: (gan, r),
        label,
        images: &images,
        selection,
        by: select.by,
        features,
    };
    let summary = score_set(kept, subsets, cfg, quality, ctx)?;
    Ok((images, summary))
}

/// One class's kept synthetic images and what is known of them.
pub(crate) struct KeptSet<'a> {
    /// The synthetic set and replica.
    pub(crate) set: (Synthetic, u64),
    /// The class.
    pub(crate) label: usize,
    /// The images, at the GANs' side.
    pub(crate) images: &'a Tensor,
    /// The selection's report.
    pub(crate) selection: ganaug_gan::ClassSynthReport,
    /// The rule that ordered them (for the grid's name).
    pub(crate) by: SelectBy,
    /// The class's real features and the images', when the selection computed them.
    pub(crate) features: Option<FeaturePair>,
}

/// Writes a kept set's sample grid and measures it against its class's training images (FID,
/// KID, the gate's measures): its summary.
pub(crate) fn score_set(
    kept: KeptSet<'_>,
    subsets: &[AnySource],
    cfg: &CheckedConfig,
    quality: &mut Quality,
    ctx: &StageContext<'_>,
) -> Result<SynthSummary> {
    let ((gan, r), train) = (kept.set, &subsets[kept.label]);
    let class = train.class_names()[kept.label].as_str();
    let grid = Layout::synthetic_grid(gan, r, class, kept.by);
    let n = kept.images.size()[0].min(64);
    io::save_grid(
        &kept.images.narrow(0, 0, n),
        8,
        ctx.layout.root().join(&grid),
    )?;
    let features = match kept.features {
        Some(f) => Some(f),
        None => quality.features_of(class, train, kept.images)?,
    };
    let (fid, kid) = features
        .as_ref()
        .map_or((None, None), |(a, b)| crate::quality::fid_kid(a, b));
    let measures = features
        .as_ref()
        .and_then(|(a, b)| gate_measures(a, b, quality.describe(), cfg, &format!("{gan}/{class}")));
    Ok(SynthSummary {
        gan,
        replica: r,
        class: class.into(),
        selection: kept.selection,
        fid,
        kid,
        grid,
        measures,
        cas: None,
    })
}

/// The gate's measures of a synthetic class set against its real one, `None` (said on
/// stderr, even without progress output: an unmeasured set is not a checked one) when they
/// cannot be computed.
pub(crate) fn gate_measures(
    real: &ndarray::Array2<f64>,
    synthetic: &ndarray::Array2<f64>,
    extractor: &str,
    cfg: &CheckedConfig,
    name: &str,
) -> Option<crate::SetMeasures> {
    match crate::gate::measure(real, synthetic, extractor, &cfg.gan.gate) {
        Ok(m) => Some(m),
        Err(e) => {
            eprintln!("synthetic set {name}: not measured, the gate cannot judge it: {e}");
            None
        }
    }
}

/// The order in which `label`'s candidates are kept under the `select` rule, with the real and
/// candidate features when the rule needed them.
fn selection_order(
    candidates: &ganaug_gan::Candidates,
    label: usize,
    subsets: &[AnySource],
    select: crate::Selection,
    quality: &mut Quality,
) -> Result<(Vec<usize>, Option<FeaturePair>)> {
    if !select.by.needs_features() {
        return Ok((candidates.by_discriminator(), None));
    }
    let train = &subsets[label];
    let class = train.class_names()[label].as_str();
    let Some((real, feats)) = quality.features_of(class, train, &candidates.images)? else {
        return Err(ExperimentError::Quality {
            what: "selection by features",
            source: Box::new(crate::CellError::Weights {
                needed_by: "selecting synthetic images by features (gan.select.by = \"discriminator\" needs none)",
                model: quality.network_name(),
            }),
        });
    };
    let eligible: Vec<usize> = (0..candidates.eligible.len())
        .filter(|&i| candidates.eligible[i])
        .collect();
    let order = match select.by {
        SelectBy::Confidence => {
            let probe = quality.real_probe(subsets)?;
            let p = probe
                .predict_proba(&feats)
                .map_err(|e| ExperimentError::Quality {
                    what: "selection by confidence",
                    source: Box::new(e.into()),
                })?;
            crate::select::by_confidence(&p.column(label).to_vec(), &eligible)
        }
        SelectBy::Nearest => crate::select::by_nearest(&feats, &real, &eligible, select.k),
        SelectBy::Coverage => crate::select::by_coverage(&feats, &real, &eligible, select.k),
        SelectBy::Discriminator => candidates.by_discriminator(),
    };
    Ok((order, Some((real, feats))))
}

/// A class's real features and its candidates' (rows: images).
type FeaturePair = (ndarray::Array2<f64>, ndarray::Array2<f64>);

/// The file in a written set's folder naming what it was written from: a later run with the
/// same GANs and synthesis settings finds it and writes nothing.
const SET_MARK: &str = "set.json";

/// The file in a written set's folder holding its images exactly (`f32`, the decode cache's
/// format: [`ganaug_data::stream::open_set_file`] reads it).
pub(crate) const SET_FILE: &str = "images.safetensors";

/// Writes a kept set as class folders of 16-bit PNGs (to look at, to use elsewhere) and as one
/// set file of its exact `f32` images ([`SET_FILE`]) in the results folder (see
/// [`Layout::synthetic_set_dir`]), unless the folder already holds this very set, whole or not
/// at all: written beside, then renamed into place (a job sharing the folder that wrote the
/// same set first keeps its copy). Returns the set file's path.
pub(crate) fn export_set(
    set: &TensorDataset,
    (which, r): (Synthetic, u64),
    cfg: &CheckedConfig,
    stage: &super::GanStage,
    ctx: &StageContext<'_>,
) -> Result<std::path::PathBuf> {
    let key = stage.keys.get(&(which, r)).map_or("", String::as_str);
    let dir = ctx.layout.synthetic_set_dir(which, r, key);
    let g = &cfg.gan;
    let mark = crate::hash_of(&(key, &g.synth, g.select, g.extractor, r, &set.names))?;
    let file = dir.join(SET_FILE);
    let marked = std::fs::read_to_string(dir.join(SET_MARK)).is_ok_and(|m| m.trim() == mark);
    if marked && file.is_file() {
        return Ok(file);
    }
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tmp = dir.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let io_err = |p: &std::path::Path, e| ExperimentError::io(p, e);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
    }
    io::export_image_folder_at(set, &tmp, false, ganaug_data::Depth::Sixteen)?;
    ganaug_data::stream::write_set_file(&tmp.join(SET_FILE), set)?;
    io::write_atomic(&tmp.join(SET_MARK), mark.as_bytes())?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    }
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.is_dir() {
            return Err(io_err(&dir, e));
        }
    }
    Ok(file)
}

/// A kept set as the stage hands it to the cells: when the run streams (`real` is a stream),
/// read from its set file — the same values, no longer held in memory —, else the set itself.
pub(crate) fn stage_set(
    set: TensorDataset,
    file: &std::path::Path,
    real: &AnySource,
) -> Result<AnySource> {
    Ok(match real {
        AnySource::Stream(_) => AnySource::Stream(ganaug_data::stream::open_set_file(file)?),
        AnySource::Memory(_) => AnySource::Memory(set),
    })
}
