//! The presets, one TOML file each (`presets/*.toml` in this crate, embedded in the library so
//! crate users have them too), and reading users' own configuration files.

use std::path::Path;

use crate::{CheckedConfig, ExperimentError, ReproConfig, Result};

/// The embedded presets: name, one-line summary, TOML text.
pub const PRESETS: [(&str, &str, &str); 4] = [
    (
        "cpu",
        "about 10-15 min on 2 CPU cores with the real data: one DCGAN-32 per class at 64² for 200 \
         epochs + a conditional one for 60, 125 synthetic images per class, the paper's CNN from \
         scratch at 64², EfficientNet-Lite0 with frozen ImageNet features at 224² and a linear probe",
        include_str!("../presets/cpu.toml"),
    ),
    (
        "paper",
        "the paper's settings, for a CUDA GPU: its GAN at 256² for 3300 epochs, 250 images per \
         class, the CNN, VGG-16, ResNet-50 and EfficientNet-Lite0 at 224² with the paper's SGD rates",
        include_str!("../presets/paper.toml"),
    ),
    (
        "scarcity",
        "about an hour on 2 CPU cores with the real data: what synthetic images are worth at 10%, \
         25%, 50% and all of the training images (5 resampled subsets each), every generator \
         family trained on its subset only, against an oracle of real images",
        include_str!("../presets/scarcity.toml"),
    ),
    (
        "tiny",
        "seconds: tiny sizes and epochs, a smoke test (not a result)",
        include_str!("../presets/tiny.toml"),
    ),
];

impl ReproConfig {
    /// An embedded preset by name (`cpu`, `paper`, `tiny`), checked.
    pub fn preset(name: &str) -> Result<CheckedConfig> {
        let (_, _, text) = PRESETS.iter().find(|(n, _, _)| *n == name).ok_or_else(|| {
            ExperimentError::UnknownPreset {
                name: name.into(),
                known: preset_names().join(", "),
            }
        })?;
        Self::from_toml(text, &format!("preset {name}"))
    }

    /// A configuration from TOML text; `origin` names it in errors. Checked.
    pub fn from_toml(text: &str, origin: &str) -> Result<CheckedConfig> {
        let cfg: ReproConfig = toml::from_str(text).map_err(|source| ExperimentError::Toml {
            origin: origin.into(),
            source,
        })?;
        cfg.check()
    }

    /// A configuration file of the user's (the same format as the presets). Checked.
    pub fn from_file(path: &Path) -> Result<CheckedConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::io(path, e))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The configuration as TOML (what `--print-config` shows, and a valid `--config` file).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| ExperimentError::config("toml", e.to_string()))
    }
}

/// The embedded presets' names.
pub fn preset_names() -> Vec<&'static str> {
    PRESETS.iter().map(|(n, _, _)| *n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_checks_and_round_trips_through_toml() {
        for name in preset_names() {
            let cfg = ReproConfig::preset(name).expect(name);
            assert_eq!(cfg.preset, name);
            let text = cfg.to_toml().expect("toml");
            let again = ReproConfig::from_toml(&text, "round trip").expect("again");
            assert_eq!(again, cfg, "{name}");
        }
    }

    #[test]
    fn the_feature_network_is_written_only_when_it_is_not_the_default() {
        let cfg = ReproConfig::preset("cpu").expect("cpu").into_inner();
        assert_eq!(cfg.gan.extractor, crate::FeatureNet::EffnetLite0);
        assert!(!cfg.to_toml().expect("toml").contains("extractor"));
        let mut other = cfg.clone();
        other.gan.extractor = crate::FeatureNet::EffnetLite2;
        let text = other.to_toml().expect("toml");
        assert!(text.contains("extractor = \"effnet-lite2\""), "{text}");
        let again = ReproConfig::from_toml(&text, "lite2").expect("parses");
        assert_eq!(again.gan.extractor, crate::FeatureNet::EffnetLite2);
        // the GANs' keys do not depend on it: trained GANs are reused under another scorer
        let cfg = cfg.check().expect("checked");
        let keys = |c: &CheckedConfig| crate::gans::gan_keys(c, 2, "data").expect("keys");
        assert_eq!(keys(&cfg), keys(&again));
    }

    #[test]
    fn unknown_presets_and_bad_files_are_typed_errors() {
        assert!(matches!(
            ReproConfig::preset("fast"),
            Err(ExperimentError::UnknownPreset { .. })
        ));
        let err = ReproConfig::from_toml("seeds = \"two\"", "x.toml");
        assert!(matches!(err, Err(ExperimentError::Toml { .. })), "{err:?}");
        let mut cfg = ReproConfig::preset("tiny").expect("tiny").into_inner();
        cfg.seeds = 0;
        let text = cfg.to_toml().expect("toml");
        let err = ReproConfig::from_toml(&text, "x.toml");
        assert!(
            matches!(&err, Err(ExperimentError::Config { field, .. }) if field == "seeds"),
            "{err:?}"
        );
        // Deserialising the checked type runs the same check.
        let json = serde_json::to_string(&cfg).expect("json");
        assert!(serde_json::from_str::<CheckedConfig>(&json).is_err());
    }

    #[test]
    fn the_check_names_the_setting_it_refuses() {
        let base = ReproConfig::preset("tiny").expect("tiny").into_inner();
        let refuse = |f: fn(&mut ReproConfig), field: &str| {
            let mut c = base.clone();
            f(&mut c);
            match c.check() {
                Err(ExperimentError::Config { field: got, .. }) => {
                    assert!(got.starts_with(field), "{got} vs {field}")
                }
                other => panic!("{field}: {other:?}"),
            }
        };
        refuse(|c| c.models.push(c.models[0].clone()), "models");
        refuse(|c| c.scenarios.push(c.scenarios[0]), "scenarios");
        refuse(|c| c.classic_copies = 0, "classic_copies");
        refuse(|c| c.models[0].image_size = 20, "models[0]");
        refuse(|c| c.models[1].train.lr = -1.0, "models[1]");
        refuse(|c| c.gan.train.batch_size = 1, "gan.train");
        refuse(|c| c.gan.cgan_epochs = 0, "gan.cgan_epochs");
        refuse(|c| c.gan.synth.keep_per_class = 100, "gan.synth");
        // The tiny preset's second model is EfficientNet-Lite0 with a probe head: a probe needs
        // a frozen ImageNet backbone, and a usable grid.
        assert!(matches!(base.models[1].head, crate::Head::Probe { .. }));
        refuse(
            |c| c.models[1].pretrained_backbone = ganaug_models::BackboneMode::Train,
            "models[1] (effnet-lite0).head",
        );
        refuse(
            |c| {
                if let crate::Head::Probe { probe, .. } = &mut c.models[1].head {
                    probe.c_grid.clear();
                }
            },
            "models[1] (effnet-lite0).head.probe",
        );
    }
}
