//! One error enum over the experiment's stages, so a caller can tell what failed and match on it.

use std::path::PathBuf;

use ganaug_models::ModelKind;

use crate::{Scenario, Synthetic};

/// What can go wrong in an experiment, by stage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExperimentError {
    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The setting (a dotted path such as `gan.train.epochs`).
        field: String,
        /// Why it is refused.
        reason: String,
    },
    /// No preset of that name.
    #[error("unknown preset {name:?}: choose one of {known}")]
    UnknownPreset {
        /// The name asked for.
        name: String,
        /// The presets there are.
        known: String,
    },
    /// A preset or `--config` file is not valid TOML for a configuration.
    #[error("reading the configuration {origin}: {source}")]
    Toml {
        /// The file, or `preset <name>`.
        origin: String,
        /// The parser's error (it names the line and key).
        #[source]
        source: toml::de::Error,
    },
    /// The data has fewer than two classes: nothing to classify.
    #[error("{data} has {classes} class(es); at least two are needed")]
    TooFewClasses {
        /// The data, in words.
        data: String,
        /// Its classes.
        classes: usize,
    },
    /// Timing a training step for a dry run's estimate failed.
    #[error("timing a step of {what} for the plan: {reason}")]
    Timing {
        /// What was being timed.
        what: String,
        /// The cause.
        reason: String,
    },
    /// Writing a configuration as TOML failed.
    #[error("writing the configuration as TOML: {0}")]
    TomlWrite(#[source] toml::ser::Error),
    /// The output folder holds the results of another configuration.
    #[error("{dir} holds the results of another configuration: choose another output folder")]
    OtherResults {
        /// The folder.
        dir: PathBuf,
    },
    /// Loading or fingerprinting the images.
    #[error("loading the data: {0}")]
    Data(#[from] ganaug_data::DataError),
    /// Training a GAN.
    #[error("training GAN {name}: {source}")]
    Gan {
        /// `per-class/<class>` or `conditional`.
        name: String,
        /// The cause.
        #[source]
        source: Box<ganaug_gan::GanError>,
    },
    /// Generating or selecting synthetic images.
    #[error("synthesizing {class} with the {gan} GAN: {source}")]
    Synthesis {
        /// Which GAN.
        gan: Synthetic,
        /// The class.
        class: String,
        /// The cause.
        #[source]
        source: Box<ganaug_gan::GanError>,
    },
    /// Scoring synthetic images (feature network, FID, KID).
    #[error("synthetic-set quality: {what}: {source}")]
    Quality {
        /// What was being computed.
        what: &'static str,
        /// The cause.
        #[source]
        source: Box<CellError>,
    },
    /// Building, training or testing one classifier.
    #[error("{model} × {scenario} (seed {seed}): {stage}: {source}")]
    Cell {
        /// The model.
        model: ModelKind,
        /// The training-set scenario.
        scenario: Scenario,
        /// The seed.
        seed: u64,
        /// What the cell was doing.
        stage: &'static str,
        /// The cause.
        #[source]
        source: Box<CellError>,
    },
    /// Summarising seeds or comparing cells.
    #[error("aggregating results: {0}")]
    Aggregate(#[source] ganaug_metrics::MetricsError),
    /// Writing a plot.
    #[error("plotting {path}: {source}")]
    Plot {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<ganaug_train::TrainError>,
    },
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// (De)serialising JSON.
    #[error("JSON of {what}: {source}")]
    Json {
        /// What was (de)serialised.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// The crate error behind a failed cell or quality measure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CellError {
    /// From the classifier crate.
    #[error(transparent)]
    Model(#[from] ganaug_models::ModelError),
    /// From the data crate.
    #[error(transparent)]
    Data(#[from] ganaug_data::DataError),
    /// From the augmentation crate.
    #[error(transparent)]
    Augment(#[from] ganaug_augment::AugmentError),
    /// From the GAN crate (applying edits, a feature-space GAN).
    #[error(transparent)]
    Gan(#[from] ganaug_gan::GanError),
    /// From the metrics crate.
    #[error(transparent)]
    Metrics(#[from] ganaug_metrics::MetricsError),
    /// From libtorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
    /// What needs a network's ImageNet weights found no weights file.
    #[error("{needed_by} needs {model}'s ImageNet weights file (run scripts/setup.sh)")]
    Weights {
        /// What needs them.
        needed_by: &'static str,
        /// The network, by its display name.
        model: &'static str,
    },
    /// A scenario needs a synthetic set the GAN stage did not make.
    #[error("the GAN stage made no {0} synthetic set")]
    NoSyntheticSet(Synthetic),
    /// `gan.mix.ratio` asks for more synthetic images of a class than the selection kept.
    #[error("gan.mix.ratio {ratio} asks for {wanted} synthetic {class} images ({real} real), {kept} were kept: raise gan.synth.keep_per_class")]
    MixRatio {
        /// The ratio.
        ratio: f64,
        /// The class.
        class: String,
        /// Synthetic images it asks for.
        wanted: usize,
        /// Real training images of the class.
        real: usize,
        /// Synthetic images kept.
        kept: usize,
    },
    /// Feature rows that must fit together do not (their widths or counts differ).
    #[error("{what}: the feature rows do not fit together")]
    Features {
        /// Which rows.
        what: &'static str,
    },
    /// A two-class report without a positive class.
    #[error("the metrics have no positive class")]
    NoPositiveClass,
    /// A cache key could not be serialised.
    #[error("a cache key: {0}")]
    Key(#[source] serde_json::Error),
}

/// `Result` with [`ExperimentError`].
pub type Result<T> = std::result::Result<T, ExperimentError>;

impl ExperimentError {
    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ExperimentError::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ExperimentError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        ExperimentError::Json {
            what: what.into(),
            source,
        }
    }
}
