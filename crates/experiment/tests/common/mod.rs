//! What several of this crate's test binaries share.

use ganaug_experiment::scarcity::ScarcityPlan;
use ganaug_experiment::{EditPlan, FeaturePlan, ReproConfig, Scenario};
use ganaug_models::{pretrained_weights, ModelKind};

/// The tiny preset with the edit GAN and, with the EfficientNet-Lite0 weights, the
/// feature-space GAN (both small), on a two-fraction study (0.5 and 1) of `resamples`
/// resamples seeded by `seed`, with "then real" arms for `then_real` and the two guided GANs;
/// without the weights (and when they are not required), the CNN alone.
pub fn tiny_study(resamples: usize, seed: u64, then_real: &[Scenario]) -> ReproConfig {
    let mut c = ReproConfig::preset("tiny").expect("tiny").into_inner();
    let weights = pretrained_weights(ModelKind::EfficientNetLite0).is_some();
    let required = std::env::var_os("GANAUG_REQUIRE_WEIGHTS").is_some();
    assert!(
        weights || !required,
        "GANAUG_REQUIRE_WEIGHTS is set: run scripts/setup.sh"
    );
    c.scenarios = vec![
        Scenario::Raw,
        Scenario::Classic,
        Scenario::Gan,
        Scenario::Edit,
    ];
    c.gan.edits = Some(EditPlan {
        ngf: 4,
        ndf: 4,
        epochs: 2,
        batch_size: 4,
        ..EditPlan::default()
    });
    let mut then_real = then_real.to_vec();
    then_real.push(Scenario::Edit);
    if weights {
        c.scenarios.push(Scenario::Fgan);
        then_real.push(Scenario::Fgan);
        let mut f = FeaturePlan::default();
        f.gan.hidden = 16;
        f.gan.epochs = 3;
        f.gan.critic_steps = 2;
        f.gan.batch_size = 8;
        f.pca_dims = 4;
        c.gan.features = Some(f);
    } else {
        c.models.retain(|m| m.kind == ModelKind::PaperCnn);
    }
    c.scarcity = Some(ScarcityPlan {
        fractions: vec![0.5, 1.0],
        resamples,
        image_resamples: 1,
        ratio: 1.0,
        then_real,
        finetune_epochs: 1,
        seed,
    });
    c
}
