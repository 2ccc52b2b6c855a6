//! The training-set scenarios of the paper's tables, the synthetic sets they add, and the
//! paper's own numbers.

use serde::{Deserialize, Serialize};

use ganaug_models::ModelKind;

/// A training-set variant of the paper's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// The training split as is.
    Raw,
    /// Raw + classic augmentation (flips, rotation ≤ 45°), as offline copies.
    Classic,
    /// Raw + images of one GAN per class (the paper's "our GAN").
    Gan,
    /// Raw + images of one conditional GAN (stands in for Loey et al.'s CGAN set).
    Cgan,
    /// Raw + per-class GAN images, then classic augmentation of all of them.
    GanClassic,
    /// Raw + real training images with the edits of an edit GAN (most of each image real).
    Edit,
    /// Raw + feature vectors of a conditional GAN in the classifier's feature space (linear
    /// probes only).
    Fgan,
}

impl Scenario {
    /// All scenarios in table order.
    pub const ALL: [Scenario; 7] = [
        Scenario::Raw,
        Scenario::Classic,
        Scenario::Gan,
        Scenario::Cgan,
        Scenario::GanClassic,
        Scenario::Edit,
        Scenario::Fgan,
    ];

    /// Short name (`raw`, `classic`, `gan`, `cgan`, `gan-classic`).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Raw => "raw",
            Scenario::Classic => "classic",
            Scenario::Gan => "gan",
            Scenario::Cgan => "cgan",
            Scenario::GanClassic => "gan-classic",
            Scenario::Edit => "edit",
            Scenario::Fgan => "fgan",
        }
    }

    /// Column title in the report.
    pub fn title(self) -> &'static str {
        match self {
            Scenario::Raw => "Raw",
            Scenario::Classic => "Raw + classic aug.",
            Scenario::Gan => "Raw + our GAN",
            Scenario::Cgan => "Raw + CGAN (for Loey)",
            Scenario::GanClassic => "Raw + GAN + classic",
            Scenario::Edit => "Raw + edit GAN",
            Scenario::Fgan => "Raw + feature GAN",
        }
    }

    /// Parses [`Scenario::name`].
    pub fn parse(s: &str) -> Option<Self> {
        Scenario::ALL.into_iter().find(|x| x.name() == s)
    }

    /// The synthetic set this scenario adds, if any.
    pub fn synthetic(self) -> Option<Synthetic> {
        match self {
            Scenario::Gan | Scenario::GanClassic => Some(Synthetic::PerClass),
            Scenario::Cgan => Some(Synthetic::Conditional),
            Scenario::Edit => Some(Synthetic::Edits),
            Scenario::Fgan => Some(Synthetic::Features),
            Scenario::Raw | Scenario::Classic => None,
        }
    }

    /// Whether classic augmentation copies are added.
    pub fn uses_classic(self) -> bool {
        matches!(self, Scenario::Classic | Scenario::GanClassic)
    }

    /// The same scenario without its synthetic images (`gan-classic` → `classic`).
    pub fn without_synthetic(self) -> Scenario {
        if self.uses_classic() {
            Scenario::Classic
        } else {
            Scenario::Raw
        }
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a scenario's synthetic images come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Synthetic {
    /// One GAN per class (the paper's).
    PerClass,
    /// One conditional GAN.
    Conditional,
    /// An edit GAN: real training images with masked, bounded edits.
    Edits,
    /// A conditional WGAN-GP in the classifier's feature space (vectors, not images).
    Features,
}

impl Synthetic {
    /// `per-class`, `conditional`, `edits` or `features`.
    pub fn name(self) -> &'static str {
        match self {
            Synthetic::PerClass => "per-class",
            Synthetic::Conditional => "conditional",
            Synthetic::Edits => "edits",
            Synthetic::Features => "features",
        }
    }

    /// Whether the set is made of images (a CNN can train on it).
    pub fn is_images(self) -> bool {
        self != Synthetic::Features
    }

    /// The image GANs the GAN stage trains (before any cell), in unit order.
    pub const IMAGE_GANS: [Synthetic; 3] = [
        Synthetic::PerClass,
        Synthetic::Conditional,
        Synthetic::Edits,
    ];
}

impl std::fmt::Display for Synthetic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The paper's test accuracies (its tables; starred values are Loey et al.'s, which the paper
/// copied), for the report's side-by-side columns.
pub fn paper_accuracy(model: ModelKind, scenario: Scenario) -> Option<(f64, bool)> {
    let row = match model {
        ModelKind::PaperCnn => [0.6583, 0.7186, 0.6985, 0.7035],
        ModelKind::Vgg16 => [0.7538, 0.7839, 0.8090, 0.7038],
        ModelKind::ResNet50 => [0.7638, 0.7688, 0.8040, 0.7657],
        ModelKind::EfficientNetLite0
        | ModelKind::EfficientNetLite1
        | ModelKind::EfficientNetLite2 => return None,
    };
    let starred = model != ModelKind::PaperCnn && scenario == Scenario::Cgan;
    match scenario {
        Scenario::Raw => Some((row[0], false)),
        Scenario::Classic => Some((row[1], false)),
        Scenario::Gan => Some((row[2], false)),
        Scenario::Cgan => Some((row[3], starred)),
        Scenario::GanClassic | Scenario::Edit | Scenario::Fgan => None,
    }
}
