//! The GAN stage's edit GAN: one conditional editor trained on the whole training split, then
//! each class's edits of its own images, measured and judged like the other synthetic sets.
//! The stage keeps the edits themselves (sources and changes), so a cell at another side
//! applies them to its own real images ([`ganaug_gan::EditSet::materialize`]).

use std::path::Path;

use ganaug_data::ImageSource;
use ganaug_gan::{synthesize_edits, EditGan, EditGanConfig, EditSet, EditSynthConfig};
use tch::Tensor;

use crate::gans::{
    assemble, judge, score_set, under_gan_lock, GanInputs, GanStage, KeptSet, StageContext,
};
use crate::layout::{replica_name, GanUnit};
use crate::quality::Quality;
use crate::select::SelectBy;
use crate::{CheckedConfig, ExperimentError, GanSummary, Result, Synthetic};

/// The edit GAN's configuration for replica `r` on data of `classes` classes and `channels`
/// channels, with `batch` images at most per batch.
pub(crate) fn edit_config(
    cfg: &CheckedConfig,
    classes: usize,
    channels: i64,
    batch: usize,
    r: u64,
) -> Option<EditGanConfig> {
    let e = cfg.gan.edits.as_ref()?;
    let seed = cfg.gan.train.seed + r;
    Some(EditGanConfig {
        batch_size: e.batch_size.min(batch).max(2),
        ..e.gan_config(cfg.gan.gan.size, channels, classes as i64, seed)
    })
}

/// Trains (or resumes) the edit GAN of replica `r`, then makes, measures and judges each
/// class's edits.
pub(crate) fn edit_gan(
    inputs: &GanInputs<'_>,
    r: u64,
    stage: &mut GanStage,
    quality: &mut Quality,
) -> Result<()> {
    let (cfg, ctx) = (inputs.cfg, inputs.ctx);
    let train = inputs.train.source();
    let subsets: Vec<&dyn ImageSource> = inputs.subsets.iter().map(|s| s.source()).collect();
    let (Some(plan), Some(gcfg)) = (
        cfg.gan.edits.as_ref(),
        edit_config(cfg, subsets.len(), train.channels(), train.len(), r),
    ) else {
        return Ok(());
    };
    let key = stage.keys[&(Synthetic::Edits, r)].clone();
    let dir = ctx.layout.gan_dir(GanUnit {
        which: Synthetic::Edits,
        class: None,
        key: &key,
    });
    let name = replica_name("edits", r);
    let trained = under_gan_lock(ctx, Synthetic::Edits, &key, || {
        train_edit_gan(gcfg, train, &dir, ctx, name.clone())
    })?;
    let Some((gan, summary)) = trained else {
        stage.missing.push(name);
        return Ok(());
    };
    ctx.say(format!("GAN {name}: {} epochs", summary.epochs));
    stage.gans.push(summary);
    let synth = EditSynthConfig {
        keep: cfg.gan.synth.keep_per_class,
        candidates_per_kept: plan.candidates_per_kept,
        min_edit_rms: plan.min_edit_rms,
        seed: cfg.gan.synth.seed + r,
    };
    let (mut parts, mut sets) = (Vec::new(), Vec::new());
    for (label, &subset) in subsets.iter().enumerate() {
        let fail = |source| ExperimentError::Synthesis {
            gan: Synthetic::Edits,
            class: subset.class_names()[label].clone(),
            source: Box::new(source),
        };
        let (set, report) = synthesize_edits(&gan, subset, label as i64, &synth).map_err(fail)?;
        let rows: Vec<usize> = (0..set.sources.len()).collect();
        let images = set.materialize(subset, &rows).map_err(fail)?.images;
        let kept = KeptSet {
            set: (Synthetic::Edits, r),
            label,
            images: &images,
            selection: report,
            by: SelectBy::Discriminator,
            features: None,
        };
        stage
            .synthetic
            .push(score_set(kept, &inputs.subsets, cfg, quality, ctx)?);
        parts.push((label as i64, images));
        sets.push(set);
    }
    let all = assemble(&parts, train.class_names(), "an edit GAN", Synthetic::Edits)?;
    crate::gans::export_set(&all, (Synthetic::Edits, r), cfg, stage, ctx)?;
    stage.sets.insert((Synthetic::Edits, r), all.into());
    stage.edits.insert(r, concat(sets)?);
    judge((Synthetic::Edits, r), cfg, stage);
    Ok(())
}

/// The classes' edit sets as one, in class order (the order of the assembled set).
fn concat(sets: Vec<EditSet>) -> Result<EditSet> {
    let deltas: Vec<Tensor> = sets.iter().map(|s| s.deltas.shallow_clone()).collect();
    Ok(EditSet {
        sources: sets.iter().flat_map(|s| s.sources.clone()).collect(),
        deltas: Tensor::f_cat(&deltas, 0).map_err(|e| ExperimentError::Quality {
            what: "assembling the edits",
            source: Box::new(e.into()),
        })?,
        labels: sets.iter().flat_map(|s| s.labels.clone()).collect(),
    })
}

/// Trains the edit GAN into `dir`, resuming from its latest checkpoint there; `None` in a
/// report-only run when it is not finished.
fn train_edit_gan(
    gcfg: EditGanConfig,
    data: &dyn ImageSource,
    dir: &Path,
    ctx: &StageContext<'_>,
    name: String,
) -> Result<Option<(EditGan, GanSummary)>> {
    let epochs = gcfg.epochs;
    let new = || EditGan::new(gcfg, ctx.device);
    let fit = |g: &mut EditGan| g.fit(data, Some(dir), ctx.observer).map(|_| ());
    crate::gans::train_summarised(name, dir, ctx, epochs, new, fit)
}
