//! The edit GAN's synthetic sets: edits made, judged by their own size and kept round-robin
//! over their sources; applied to a classifier's real images at its side.

use super::*;

/// Edits kept for a synthetic set: each one's source image (by name, in the training split), its
/// change `δ` at the edit GAN's side and its class. A classifier at side `S` gets
/// `clamp(source_S + resize_S(δ), 0, 1)` ([`EditSet::materialize`]).
#[derive(Debug)]
pub struct EditSet {
    /// The source image of each edit (names in the training split).
    pub sources: Vec<String>,
    /// The changes `[K, C, s, s]`.
    pub deltas: Tensor,
    /// The class of each edit (its source's).
    pub labels: Vec<i64>,
}

impl EditSet {
    /// The edited images at `real`'s side: each edit's source from `real` (a split holding
    /// them, at any side) plus its upsampled change, clamped to [0, 1], as a dataset named
    /// `edit-<source>-<i>` — every image of [`EditSet::source`] read at once.
    pub fn materialize(&self, real: &dyn ImageSource, rows: &[usize]) -> Result<TensorDataset> {
        let source = self.source(real, rows)?;
        let all: Vec<i64> = (0..rows.len() as i64).collect();
        let images = source.reader()?.read(&all)?;
        Ok(TensorDataset::new(
            images.shallow_clone(),
            source.labels.f_to_device(images.device())?,
            source.names,
            source.class_names,
            source.description,
        )?)
    }

    /// The edits `rows` applied to `real`'s images (a split holding their sources, at any
    /// side, in memory or streamed) as a source read batch by batch: each batch's sources read
    /// from `real`, plus their changes upsampled to `real`'s side, clamped to [0, 1]. Only the
    /// changes (at the edit GAN's side) are held; the edited images are made when read.
    pub fn source<'a>(&self, real: &'a dyn ImageSource, rows: &[usize]) -> Result<EditSource<'a>> {
        let index: std::collections::HashMap<&str, i64> = real
            .names()
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as i64))
            .collect();
        let mut src = Vec::with_capacity(rows.len());
        for &r in rows {
            let name = self.sources.get(r).ok_or_else(|| GanError::Inputs {
                reason: format!("edit {r} of {}", self.sources.len()),
            })?;
            src.push(*index.get(name.as_str()).ok_or_else(|| GanError::Inputs {
                reason: format!("the source {name} of an edit is not in the real split"),
            })?);
        }
        let pick = Tensor::from_slice(&rows.iter().map(|&r| r as i64).collect::<Vec<_>>());
        let labels: Vec<i64> = rows.iter().map(|&r| self.labels[r]).collect();
        Ok(EditSource {
            real,
            sources: std::sync::Arc::new(src),
            deltas: self.deltas.f_index_select(0, &pick)?,
            labels: Tensor::from_slice(&labels),
            names: rows
                .iter()
                .map(|&r| format!("edit-{}-{r}", self.sources[r]))
                .collect(),
            class_names: real.class_names().to_vec(),
            description: "real images with edits of an edit GAN".into(),
        })
    }
}

/// Edits applied to a split's real images, read batch by batch ([`EditSet::source`]).
pub struct EditSource<'a> {
    real: &'a dyn ImageSource,
    /// The position in `real` of each edit's source.
    sources: std::sync::Arc<Vec<i64>>,
    /// Each edit's change `[K, C, s, s]` at the edit GAN's side.
    deltas: Tensor,
    labels: Tensor,
    names: Vec<String>,
    class_names: Vec<String>,
    description: String,
}

impl std::fmt::Debug for EditSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EditSource")
            .field("edits", &self.names.len())
            .field("real", &self.real.description())
            .finish()
    }
}

impl ImageSource for EditSource<'_> {
    fn len(&self) -> usize {
        self.names.len()
    }
    fn labels(&self) -> &Tensor {
        &self.labels
    }
    fn names(&self) -> &[String] {
        &self.names
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn channels(&self) -> i64 {
        self.real.channels()
    }
    fn image_size(&self) -> (i64, i64) {
        self.real.image_size()
    }
    fn description(&self) -> &str {
        &self.description
    }
    fn reader(&self) -> ganaug_data::Result<Box<dyn ImageReader>> {
        Ok(Box::new(EditReader {
            real: self.real.reader()?,
            sources: self.sources.clone(),
            deltas: self.deltas.shallow_clone(),
            side: self.real.image_size(),
        }))
    }
}

/// Reads edited images: the sources from the real split's reader, the changes added.
struct EditReader {
    real: Box<dyn ImageReader>,
    sources: std::sync::Arc<Vec<i64>>,
    deltas: Tensor,
    side: (i64, i64),
}

impl ImageReader for EditReader {
    fn read(&mut self, indices: &[i64]) -> ganaug_data::Result<Tensor> {
        let n = self.sources.len() as i64;
        let mut src = Vec::with_capacity(indices.len());
        for &i in indices {
            let at = usize::try_from(i).ok().filter(|_| i < n).ok_or_else(|| {
                ganaug_data::DataError::Config {
                    field: "indices",
                    reason: format!("edit {i} out of 0..{n}"),
                }
            })?;
            src.push(self.sources[at]);
        }
        let sources = self.real.read(&src)?;
        let deltas = self
            .deltas
            .f_index_select(0, &Tensor::f_from_slice(indices)?)?;
        let (h, w) = self.side;
        let deltas = if deltas.size()[2] == h && deltas.size()[3] == w {
            deltas
        } else {
            deltas.f_upsample_bilinear2d([h, w], false, None, None)?
        };
        Ok(sources
            .f_add(&deltas.f_to_device(sources.device())?)?
            .f_clamp(0.0, 1.0)?)
    }
}

/// How a class's edits are chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditSynthConfig {
    /// Edits to keep for the class.
    pub keep: usize,
    /// Candidates drawn per kept edit (the best of them by the discriminator are kept).
    pub candidates_per_kept: usize,
    /// An edit whose RMS change inside its mask is below this is a near-copy of its source
    /// and dropped.
    pub min_edit_rms: f64,
    /// Seed of the masks and latents.
    pub seed: u64,
}

impl Default for EditSynthConfig {
    fn default() -> Self {
        EditSynthConfig {
            keep: 125,
            candidates_per_kept: 2,
            min_edit_rms: 0.02,
            seed: 0,
        }
    }
}

/// `cfg.keep` edits of one class's images `class_images` (at the edit GAN's side; label
/// `label`): candidates drawn round-robin over the sources, near-copies dropped (masked RMS
/// change below `min_edit_rms`), then kept round-robin over the sources, best pair score first
/// within each, so that no source is used much more than another. Returns the edits and the
/// class's report, whose nearest-neighbour figures are the kept edits' masked RMS changes.
pub fn synthesize_edits(
    gan: &EditGan,
    class_images: &dyn ImageSource,
    label: i64,
    cfg: &EditSynthConfig,
) -> Result<(EditSet, crate::ClassSynthReport)> {
    let n = class_images.len();
    let mut reader = class_images.reader()?;
    if n == 0 || cfg.keep == 0 {
        return Err(GanError::Inputs {
            reason: "edits need source images and at least one edit to keep".into(),
        });
    }
    let total = cfg.keep * cfg.candidates_per_kept.max(1);
    let rows: Vec<i64> = (0..total).map(|i| (i % n) as i64).collect();
    let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(cfg.seed);
    let (mut deltas, mut rms, mut scores) = (Vec::new(), Vec::new(), Vec::new());
    for chunk in rows.chunks(64) {
        let src = reader.read(chunk)?.f_to_device(Device::Cpu)?;
        let y = Tensor::f_full([chunk.len() as i64], label, (Kind::Int64, Device::Cpu))?;
        let (d, m) = gan.edit(&src, &y, &mut rng)?;
        let area = m
            .f_sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Double)?
            .f_clamp_min(1e-9)?;
        let c = d.size()[1] as f64;
        let r = d
            .f_square()?
            .f_sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Double)?
            .f_div(&area)?
            .f_div_scalar(c)?
            .f_sqrt()?;
        rms.extend(Vec::<f64>::try_from(&r)?);
        let edited = src.f_add(&d)?;
        scores.extend(Vec::<f64>::try_from(
            &gan.pair_score(&src, &edited, &y)?.f_to_kind(Kind::Double)?,
        )?);
        deltas.push(d);
    }
    let deltas = Tensor::f_cat(&deltas, 0)?;
    let order = keep_round_robin(&rows, &rms, &scores, cfg, n);
    let kept: Vec<i64> = order.iter().map(|&i| i as i64).collect();
    let kept_rms: Vec<f64> = order.iter().map(|&i| rms[i]).collect();
    let eligible = rms.iter().filter(|&&r| r >= cfg.min_edit_rms).count();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let kept_scores: Vec<f64> = order.iter().map(|&i| scores[i]).collect();
    let mut sorted = kept_rms.clone();
    sorted.sort_by(f64::total_cmp);
    let report = crate::ClassSynthReport {
        class: class_images
            .class_names()
            .get(label as usize)
            .cloned()
            .unwrap_or_default(),
        generated: total,
        near_copies: total - eligible,
        kept: order.len(),
        d_score_kept: mean(&kept_scores),
        d_score_all: mean(&scores),
        nn_mean: mean(&kept_rms),
        nn_min: sorted.first().copied().unwrap_or(0.0),
        nn_median: sorted.get(sorted.len() / 2).copied().unwrap_or(0.0),
    };
    let set = EditSet {
        sources: order
            .iter()
            .map(|&i| class_images.names()[rows[i] as usize].clone())
            .collect(),
        deltas: deltas.f_index_select(0, &Tensor::from_slice(&kept))?,
        labels: vec![label; order.len()],
    };
    Ok((set, report))
}

/// The candidates kept: eligible ones (a change of at least `min_edit_rms`), taken in rounds
/// over the `n` sources, each source's best-scored candidate not yet taken first.
fn keep_round_robin(
    rows: &[i64],
    rms: &[f64],
    scores: &[f64],
    cfg: &EditSynthConfig,
    n: usize,
) -> Vec<usize> {
    let mut per_source: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, &r) in rows.iter().enumerate() {
        if rms[i] >= cfg.min_edit_rms {
            per_source[r as usize].push(i);
        }
    }
    for c in &mut per_source {
        c.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        c.reverse(); // popped from the back: best first
    }
    let mut kept = Vec::with_capacity(cfg.keep);
    while kept.len() < cfg.keep && per_source.iter().any(|c| !c.is_empty()) {
        for c in &mut per_source {
            if kept.len() == cfg.keep {
                break;
            }
            if let Some(i) = c.pop() {
                kept.push(i);
            }
        }
    }
    kept
}
