//! [`ClassificationReport`]: every statistic ganaug reports for one model on one test set, with
//! intervals, ready to serialise.

use std::fmt;

use ndarray::Array2;
use serde::Serialize;

use crate::confusion::{Average, ClassCounts, ConfusionMatrix};
use crate::error::check_confidence;
use crate::input::{argmax_rows, check_probs, labels_and_probs, MatrixInput};
use crate::intervals::{
    bootstrap_auc, bootstrap_f1, BootstrapConfig, BootstrapInterval, Proportion,
};
use crate::roc::{per_class_auc, roc_curve, RocCurve};
use crate::{MetricsError, Result};

/// Settings of a [`ClassificationReport`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReportConfig {
    /// Positive class of a binary problem (ignored for more than two classes). Default 0:
    /// ganaug's COVID class; use 1 for scikit-learn's convention.
    pub positive: usize,
    /// Confidence level of every interval (Wilson and bootstrap), in (0, 1).
    pub confidence: f64,
    /// Bootstrap resamples for the AUC and F1 intervals.
    pub resamples: usize,
    /// Bootstrap seed.
    pub seed: u64,
    /// Class names in label order; empty means `"0"`, `"1"`, ...
    pub class_names: Vec<String>,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            positive: 0,
            confidence: 0.95,
            resamples: 2000,
            seed: 0,
            class_names: Vec::new(),
        }
    }
}

impl ReportConfig {
    /// The default settings with these class names.
    pub fn with_class_names<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        ReportConfig {
            class_names: names.into_iter().map(Into::into).collect(),
            ..ReportConfig::default()
        }
    }
}

/// One class's one-vs-rest statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassReport {
    /// Label.
    pub class: usize,
    /// Name.
    pub name: String,
    /// One-vs-rest counts.
    pub counts: ClassCounts,
    /// Precision `tp / (tp + fp)` with Wilson interval.
    pub precision: Proportion,
    /// Recall (sensitivity) `tp / (tp + fn)` with Wilson interval.
    pub recall: Proportion,
    /// Specificity `tn / (tn + fp)` with Wilson interval.
    pub specificity: Proportion,
    /// F1.
    pub f1: f64,
    /// One-vs-rest ROC AUC of this class's probability column; `None` if the class is absent
    /// or alone in the labels.
    pub auc: Option<f64>,
}

/// Averages of the per-class statistics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Averages {
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// Specificity.
    pub specificity: f64,
    /// F1 (average of per-class F1).
    pub f1: f64,
}

impl Averages {
    fn of(cm: &ConfusionMatrix, avg: Average) -> Result<Self> {
        Ok(Averages {
            precision: cm.precision(avg)?,
            recall: cm.recall(avg)?,
            specificity: cm.specificity(avg)?,
            f1: cm.f1(avg)?,
        })
    }
}

/// Everything about one model's predictions on one test set. Predictions are the argmax of the
/// probabilities (ties to the lowest class).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassificationReport {
    /// Number of test samples.
    pub n: usize,
    /// Class names in label order.
    pub class_names: Vec<String>,
    /// How the headline `f1` and `auc` are averaged: `Binary { positive }` for two classes,
    /// `Macro` otherwise.
    pub average: Average,
    /// Confusion matrix (rows = truth).
    pub confusion: ConfusionMatrix,
    /// Accuracy with Wilson interval.
    pub accuracy: Proportion,
    /// Mean per-class recall.
    pub balanced_accuracy: f64,
    /// Matthews correlation coefficient (multi-class: Gorodkin's R_K).
    pub mcc: f64,
    /// Per-class statistics.
    pub per_class: Vec<ClassReport>,
    /// Unweighted averages over classes.
    pub macro_avg: Averages,
    /// Support-weighted averages over classes.
    pub weighted_avg: Averages,
    /// Headline F1 (see `average`) with bootstrap interval.
    pub f1: BootstrapInterval,
    /// Headline ROC AUC (see `average`) with bootstrap interval; `None` when a class is absent.
    pub auc: Option<BootstrapInterval>,
    /// ROC curve of the positive class (binary problems with both classes present).
    pub roc: Option<RocCurve>,
}

impl ClassificationReport {
    /// The report for true `labels` and `[N, C]` probabilities (`C >= 2`).
    pub fn new<P: MatrixInput + ?Sized>(
        labels: &[usize],
        probs: &P,
        cfg: &ReportConfig,
    ) -> Result<Self> {
        let probs = labels_and_probs(labels, probs)?;
        Self::from_checked(labels, &probs, cfg)
    }

    pub(crate) fn from_checked(
        labels: &[usize],
        probs: &Array2<f64>,
        cfg: &ReportConfig,
    ) -> Result<Self> {
        check_probs(labels, probs)?;
        check_confidence(cfg.confidence)?;
        let c = probs.ncols();
        let (class_names, average) = names_and_average(cfg, c)?;
        let boot = BootstrapConfig {
            resamples: cfg.resamples,
            confidence: cfg.confidence,
            seed: cfg.seed,
        };
        boot.validate()?;

        let confusion = ConfusionMatrix::from_predictions(labels, &argmax_rows(probs), c)?;
        let aucs = per_class_auc(labels, probs);
        let wilson = |s: u64, t: u64| Proportion::wilson(s, t, cfg.confidence);
        let per_class = confusion
            .per_class()
            .into_iter()
            .enumerate()
            .map(|(k, cc)| {
                Ok(ClassReport {
                    class: k,
                    name: class_names[k].clone(),
                    counts: cc,
                    precision: wilson(cc.tp, cc.tp + cc.fp)?,
                    recall: wilson(cc.tp, cc.tp + cc.fn_)?,
                    specificity: wilson(cc.tn, cc.tn + cc.fp)?,
                    f1: cc.f1(),
                    auc: aucs[k],
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let auc = match bootstrap_auc(labels, probs, average, &boot) {
            Ok(ci) => Some(ci),
            Err(MetricsError::SingleClass { .. }) => None,
            Err(e) => return Err(e),
        };
        let roc = match average {
            Average::Binary { positive } if auc.is_some() => Some(roc_curve(
                labels,
                &probs.column(positive).to_vec(),
                positive,
            )?),
            _ => None,
        };
        Ok(ClassificationReport {
            n: labels.len(),
            class_names,
            average,
            accuracy: wilson(confusion.correct(), confusion.total())?,
            balanced_accuracy: confusion.balanced_accuracy(),
            mcc: confusion.mcc(),
            per_class,
            macro_avg: Averages::of(&confusion, Average::Macro)?,
            weighted_avg: Averages::of(&confusion, Average::Weighted)?,
            f1: bootstrap_f1(labels, probs, average, &boot)?,
            auc,
            roc,
            confusion,
        })
    }

    /// The positive class's statistics for a binary problem (sensitivity = `recall`).
    pub fn positive_class(&self) -> Option<&ClassReport> {
        match self.average {
            Average::Binary { positive } => self.per_class.get(positive),
            _ => None,
        }
    }
}

fn pct(p: &Proportion) -> String {
    match p.interval {
        Some(ci) => format!(
            "{:.1}% [{:.1}, {:.1}]",
            100.0 * p.estimate,
            100.0 * ci.lower,
            100.0 * ci.upper
        ),
        None => "n/a".into(),
    }
}

impl fmt::Display for ClassificationReport {
    /// A short plain-text summary (percent, with intervals in brackets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let conf = 100.0 * self.accuracy.confidence;
        writeln!(f, "n = {}, intervals at {conf:.0}%", self.n)?;
        writeln!(
            f,
            "accuracy {} ({}/{})",
            pct(&self.accuracy),
            self.accuracy.successes,
            self.accuracy.trials
        )?;
        writeln!(
            f,
            "balanced accuracy {:.1}%, MCC {:.3}",
            100.0 * self.balanced_accuracy,
            self.mcc
        )?;
        let avg = match self.average {
            Average::Binary { positive } => format!("class {}", self.class_names[positive]),
            _ => "macro".into(),
        };
        writeln!(
            f,
            "F1 ({avg}) {:.3} [{:.3}, {:.3}]",
            self.f1.estimate, self.f1.lower, self.f1.upper
        )?;
        match &self.auc {
            Some(a) => writeln!(
                f,
                "AUC ({avg}) {:.3} [{:.3}, {:.3}]",
                a.estimate, a.lower, a.upper
            )?,
            None => writeln!(f, "AUC n/a (a class is absent)")?,
        }
        for c in &self.per_class {
            writeln!(
                f,
                "  {}: n={} precision {}, recall {}, specificity {}, F1 {:.3}",
                c.name,
                c.counts.support(),
                pct(&c.precision),
                pct(&c.recall),
                pct(&c.specificity),
                c.f1
            )?;
        }
        Ok(())
    }
}

/// The class names (given, or the indices) and the averaging a report of `c` classes uses.
fn names_and_average(cfg: &ReportConfig, c: usize) -> Result<(Vec<String>, Average)> {
    let class_names = if cfg.class_names.is_empty() {
        (0..c).map(|k| k.to_string()).collect()
    } else if cfg.class_names.len() == c {
        cfg.class_names.clone()
    } else {
        return Err(MetricsError::DimensionMismatch {
            what: "class names vs probability columns",
            left: cfg.class_names.len(),
            right: c,
        });
    };
    let average = if c == 2 {
        if cfg.positive > 1 {
            return Err(MetricsError::config(
                "positive",
                format!("binary positive class must be 0 or 1, got {}", cfg.positive),
            ));
        }
        Average::Binary {
            positive: cfg.positive,
        }
    } else {
        Average::Macro
    };
    Ok((class_names, average))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn binary() -> (Vec<usize>, Array2<f64>) {
        let labels = vec![0, 0, 0, 0, 1, 1, 1, 1, 0, 1];
        let p0 = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1, 0.6, 0.4, 0.55, 0.45];
        let probs =
            Array2::from_shape_fn((10, 2), |(i, j)| if j == 0 { p0[i] } else { 1.0 - p0[i] });
        (labels, probs)
    }

    #[test]
    fn binary_report_uses_the_configured_positive_class() {
        let (labels, probs) = binary();
        let cfg = ReportConfig {
            resamples: 200,
            ..ReportConfig::with_class_names(["COVID", "NonCOVID"])
        };
        let r = ClassificationReport::new(&labels, &probs, &cfg).expect("report");
        assert_eq!(r.average, Average::Binary { positive: 0 });
        let covid = r.positive_class().expect("binary");
        assert_eq!(covid.name, "COVID");
        // COVID (label 0): 4 of 5 found; one non-COVID flagged.
        assert_eq!(
            (covid.counts.tp, covid.counts.fn_, covid.counts.fp),
            (4, 1, 1)
        );
        assert_eq!(r.accuracy.successes, 8);
        let auc = r.auc.expect("both classes");
        assert_eq!(Some(auc.estimate), covid.auc);
        let roc = r.roc.as_ref().expect("binary roc");
        assert!((roc.auc() - auc.estimate).abs() < 1e-12);
        // Positive 1 swaps sensitivity and specificity.
        let one = ClassificationReport::new(&labels, &probs, &ReportConfig { positive: 1, ..cfg })
            .expect("report");
        let nc = one.positive_class().expect("binary");
        assert_eq!(nc.recall, covid.specificity);
        let json = serde_json::to_value(&r).expect("serialisable");
        assert_eq!(json["accuracy"]["successes"], 8);
        assert_eq!(json["average"]["Binary"]["positive"], 0);
        assert!(json["roc"]["thresholds"][0].is_null(), "+inf threshold");
        let text = r.to_string();
        assert!(text.contains("accuracy 80.0%"), "{text}");
    }

    #[test]
    fn multiclass_report_and_missing_class() {
        let labels = [0, 1, 2, 1];
        let probs = array![
            [0.6, 0.3, 0.1],
            [0.2, 0.5, 0.3],
            [0.1, 0.2, 0.7],
            [0.5, 0.4, 0.1]
        ];
        let cfg = ReportConfig {
            resamples: 50,
            ..ReportConfig::default()
        };
        let r = ClassificationReport::new(&labels, &probs, &cfg).expect("report");
        assert_eq!(r.average, Average::Macro);
        assert!(r.roc.is_none() && r.positive_class().is_none());
        assert_eq!(r.per_class.len(), 3);
        let no_two = ClassificationReport::new(&[0, 1, 1, 0], &probs, &cfg).expect("report");
        assert!(no_two.auc.is_none());
        assert_eq!(no_two.per_class[2].auc, None);
        assert_eq!(no_two.per_class[2].recall.interval, None);
    }

    #[test]
    fn report_config_is_validated() {
        let (labels, probs) = binary();
        let bad = [
            ReportConfig {
                positive: 2,
                ..ReportConfig::default()
            },
            ReportConfig {
                confidence: 1.5,
                ..ReportConfig::default()
            },
            ReportConfig {
                resamples: 0,
                ..ReportConfig::default()
            },
            ReportConfig::with_class_names(["only one"]),
        ];
        for cfg in bad {
            assert!(
                ClassificationReport::new(&labels, &probs, &cfg).is_err(),
                "{cfg:?}"
            );
        }
    }
}
