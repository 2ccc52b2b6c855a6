//! The gate that keeps a broken synthetic set out of training: each class's synthetic images
//! are measured in a backbone's feature space — diversity (mean pairwise distance), precision,
//! recall, density, coverage — next to a real-vs-real floor (random halves of the class's real
//! training images, repeated; the synthetic set is subsampled to the same size, so the
//! sample-size bias is the same), and a set below the configured fractions of the floor is
//! refused (or, in `warn` mode, announced). FID and KID are measured the same way, at the
//! same matched size, next to their real-vs-real values (reported, not gated).

use ndarray::{Array2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use ganaug_metrics::{mean_pairwise_distance, prdc, summarize, MetricsError};

use crate::quality::fid_kid;

/// What happens to a synthetic set below a floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateMode {
    /// It does not reach any classifier; the report lists it as refused.
    #[default]
    Refuse,
    /// It is used, with a warning in the log and the report (`--allow-poor-synthetic`).
    Warn,
}

/// The floors, as fractions of the real-vs-real values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GateConfig {
    /// Refuse or warn.
    pub mode: GateMode,
    /// Smallest synthetic diversity, as a fraction of real's.
    pub min_diversity: f64,
    /// Smallest recall, as a fraction of real-vs-real recall.
    pub min_recall: f64,
    /// Smallest coverage, as a fraction of real-vs-real coverage.
    pub min_coverage: f64,
    /// Neighbourhood size of precision / recall / density / coverage (the papers: 5).
    pub k: usize,
    /// Random halves drawn for the floor (and synthetic subsamples).
    pub repeats: usize,
    /// Seed of the halves.
    pub seed: u64,
}

impl Default for GateConfig {
    /// Refuse below half the real diversity or a quarter of real-vs-real recall or coverage,
    /// k = 5, 5 halves.
    fn default() -> Self {
        GateConfig {
            mode: GateMode::Refuse,
            min_diversity: 0.5,
            min_recall: 0.25,
            min_coverage: 0.25,
            k: 5,
            repeats: 5,
            seed: 0,
        }
    }
}

impl GateConfig {
    /// Checks the fractions and counts.
    pub fn check(&self) -> std::result::Result<(), String> {
        let frac = |v: f64| (0.0..=1.0).contains(&v);
        if !(frac(self.min_diversity) && frac(self.min_recall) && frac(self.min_coverage)) {
            return Err("the floors are fractions in [0, 1]".into());
        }
        if self.k == 0 || self.repeats == 0 {
            return Err("k and repeats must be at least 1".into());
        }
        Ok(())
    }
}

/// One set of measures (means over the repeats).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Measures {
    /// Mean pairwise feature distance.
    pub diversity: f64,
    /// Precision (Kynkäänniemi et al.).
    pub precision: f64,
    /// Recall (Kynkäänniemi et al.).
    pub recall: f64,
    /// Density (Naeem et al.).
    pub density: f64,
    /// Coverage (Naeem et al.).
    pub coverage: f64,
}

impl Measures {
    fn mean(all: &[Measures]) -> Measures {
        let n = all.len().max(1) as f64;
        let f = |g: fn(&Measures) -> f64| all.iter().map(g).sum::<f64>() / n;
        Measures {
            diversity: f(|m| m.diversity),
            precision: f(|m| m.precision),
            recall: f(|m| m.recall),
            density: f(|m| m.density),
            coverage: f(|m| m.coverage),
        }
    }

    fn sd(all: &[Measures]) -> Measures {
        let m = Measures::mean(all);
        let n = (all.len().max(2) - 1) as f64;
        let f = |g: fn(&Measures) -> f64, c: f64| {
            (all.iter().map(|x| (g(x) - c).powi(2)).sum::<f64>() / n).sqrt()
        };
        Measures {
            diversity: f(|m| m.diversity, m.diversity),
            precision: f(|m| m.precision, m.precision),
            recall: f(|m| m.recall, m.recall),
            density: f(|m| m.density, m.density),
            coverage: f(|m| m.coverage, m.coverage),
        }
    }
}

/// FID and KID at the gate's matched sample size: the synthetic subsample and real half B,
/// each against real half A (means over the repeats), with the spread of the real-vs-real
/// values. FID's and KID's small-sample bias is then the same on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MatchedDistances {
    /// FID of the synthetic subsample against real half A.
    pub fid: f64,
    /// FID of real half B against real half A: what "as close as real" reads at this size.
    pub fid_real: f64,
    /// Standard deviation of `fid_real` over the repeats.
    pub fid_real_sd: f64,
    /// KID (mean over subsets) of the synthetic subsample against real half A.
    pub kid: f64,
    /// KID of real half B against real half A.
    pub kid_real: f64,
    /// Standard deviation of `kid_real` over the repeats.
    pub kid_real_sd: f64,
}

impl MatchedDistances {
    /// From per-repeat `[fid, fid_real, kid, kid_real]` values; `None` without repeats or
    /// with a non-finite value. One repeat has a spread of 0.
    fn from_repeats(v: &[[f64; 4]]) -> Option<Self> {
        let column = |i: usize| summarize(&v.iter().map(|r| r[i]).collect::<Vec<_>>()).ok();
        let [fid, fid_real, kid, kid_real] = [0, 1, 2, 3].map(column);
        let (fid_real, kid_real) = (fid_real?, kid_real?);
        Some(MatchedDistances {
            fid: fid?.mean,
            fid_real: fid_real.mean,
            fid_real_sd: fid_real.sd.unwrap_or(0.0),
            kid: kid?.mean,
            kid_real: kid_real.mean,
            kid_real_sd: kid_real.sd.unwrap_or(0.0),
        })
    }
}

/// A synthetic class set's measures, the real-vs-real floor, and what failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetMeasures {
    /// The feature space, in words.
    pub extractor: String,
    /// Images compared per side (half of the class's real training images).
    pub sample_size: usize,
    /// Synthetic (subsampled) against real half A.
    pub synthetic: Measures,
    /// Real half B against real half A: the floor's reference.
    pub real: Measures,
    /// Spread of `real` over the repeats.
    pub real_sd: Measures,
    /// ROC AUC of a linear probe told to separate the synthetic images from real ones
    /// (5-fold out-of-fold probabilities, first repeat): 0.5 = indistinguishable, 1 = always
    /// told apart. `None` when the probe could not be fitted.
    #[serde(default)]
    pub probe_auc: Option<f64>,
    /// The same probe separating the two real halves: what 0.5 looks like at this size.
    #[serde(default)]
    pub probe_auc_real: Option<f64>,
    /// FID and KID at the same matched size, next to real-vs-real. `None` in results from
    /// before they were measured, or when they could not be computed.
    #[serde(default)]
    pub distances: Option<MatchedDistances>,
    /// Each floor not reached, in words (which measure, its value, the floor, how far below).
    pub failures: Vec<String>,
}

/// Measures `synthetic` (`[n_s, d]`) against `real` (`[n_r, d]`, one class's training
/// features) and checks the floors.
pub fn measure(
    real: &Array2<f64>,
    synthetic: &Array2<f64>,
    extractor: &str,
    cfg: &GateConfig,
) -> std::result::Result<SetMeasures, MetricsError> {
    let half = real.nrows() / 2;
    let m = half.min(synthetic.nrows());
    if m <= cfg.k {
        return Err(MetricsError::TooFewSamples {
            what: "the synthetic-set gate (half the real images and the synthetic set)",
            needed: 2 * (cfg.k + 1),
            got: real.nrows().min(synthetic.nrows()),
        });
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
    let (mut rr, mut rs) = (Vec::new(), Vec::new());
    let mut probes = None;
    // per repeat [fid, fid_real, kid, kid_real]; a failure drops the distances, not the gate
    let mut distances: Option<Vec<[f64; 4]>> = Some(Vec::new());
    for repeat in 0..cfg.repeats {
        let mut idx: Vec<usize> = (0..real.nrows()).collect();
        idx.shuffle(&mut rng);
        let a = real.select(Axis(0), &idx[..m]);
        let b = real.select(Axis(0), &idx[half..half + m]);
        let mut sidx: Vec<usize> = (0..synthetic.nrows()).collect();
        sidx.shuffle(&mut rng);
        let s = synthetic.select(Axis(0), &sidx[..m]);
        let one = |x: &Array2<f64>| -> std::result::Result<Measures, MetricsError> {
            let p = prdc(&a, x, cfg.k)?;
            Ok(Measures {
                diversity: mean_pairwise_distance(x)?,
                precision: p.precision,
                recall: p.recall,
                density: p.density,
                coverage: p.coverage,
            })
        };
        rr.push(one(&b)?);
        rs.push(one(&s)?);
        if let Some(v) = distances.as_mut() {
            match (fid_kid(&a, &s), fid_kid(&a, &b)) {
                ((Some(f), Some(k)), (Some(fr), Some(kr))) => v.push([f, fr, k, kr]),
                _ => distances = None,
            }
        }
        if repeat == 0 {
            probes = Some((separability(&a, &s), separability(&a, &b)));
        }
    }
    let (probe_auc, probe_auc_real) = probes.unwrap_or((None, None));
    let (real_m, syn) = (Measures::mean(&rr), Measures::mean(&rs));
    let failures = floors_missed(&syn, &real_m, cfg);
    Ok(SetMeasures {
        extractor: extractor.into(),
        sample_size: m,
        synthetic: syn,
        real: real_m,
        real_sd: Measures::sd(&rr),
        probe_auc,
        probe_auc_real,
        distances: distances.and_then(|v| MatchedDistances::from_repeats(&v)),
        failures,
    })
}

/// Every floor of `cfg` the synthetic set's measures miss, in words: the measure, its value,
/// the floor (a fraction of the real-vs-real value) and by how much.
pub fn floors_missed(syn: &Measures, real: &Measures, cfg: &GateConfig) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, got, reference, frac) in [
        (
            "diversity",
            syn.diversity,
            real.diversity,
            cfg.min_diversity,
        ),
        ("recall", syn.recall, real.recall, cfg.min_recall),
        ("coverage", syn.coverage, real.coverage, cfg.min_coverage),
    ] {
        let floor = frac * reference;
        if got < floor {
            failures.push(format!(
                "{name} {got:.3} is below its floor {floor:.3} ({frac} × real-vs-real {reference:.3}) by {:.3}",
                floor - got
            ));
        }
    }
    failures
}

/// Out-of-fold ROC AUC of a linear probe (C = 0.1, 5 folds) separating `a` (label 0) from `b`
/// (label 1).
pub(crate) fn separability(a: &Array2<f64>, b: &Array2<f64>) -> Option<f64> {
    use ganaug_models::{out_of_fold_proba, ProbeConfig};
    let x = ndarray::concatenate(Axis(0), &[a.view(), b.view()]).ok()?;
    let y: Vec<usize> = (0..x.nrows())
        .map(|i| usize::from(i >= a.nrows()))
        .collect();
    let p = out_of_fold_proba((&x, &y), 2, 5, 0.1, &ProbeConfig::default()).ok()?;
    let scores: Vec<f64> = p.column(1).to_vec();
    ganaug_metrics::roc_auc(&y, &scores, 1).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, Normal};

    fn gaussian(n: usize, d: usize, seed: u64, scale: f64, shift: f64) -> Array2<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let g = Normal::new(0.0, 1.0).expect("normal");
        Array2::from_shape_fn((n, d), |_| shift + scale * g.sample(&mut rng))
    }

    #[test]
    fn a_faithful_set_passes_and_collapsed_or_distant_sets_are_refused() {
        let real = gaussian(200, 16, 1, 1.0, 0.0);
        let cfg = GateConfig::default();
        let good = measure(&real, &gaussian(125, 16, 2, 1.0, 0.0), "test", &cfg).expect("good");
        assert!(good.failures.is_empty(), "{good:?}");
        // same distribution: the probe cannot tell them apart; far away: it always can
        let auc = good.probe_auc.expect("probe");
        assert!((0.3..0.7).contains(&auc), "{auc}");
        assert!(
            good.real.recall > 0.5 && good.real.coverage > 0.5,
            "{good:?}"
        );
        // FID/KID at matched size: a faithful set reads like another real half
        let d = good.distances.expect("distances");
        assert!(d.fid_real > 0.0 && d.fid_real_sd > 0.0, "{d:?}");
        assert!(
            (d.fid - d.fid_real).abs() < 4.0 * d.fid_real_sd.max(0.1 * d.fid_real),
            "{d:?}"
        );

        // one image (plus numerical noise) in the middle of the real cloud: it covers many
        // real neighbourhoods, but has no diversity and no recall
        let one = gaussian(125, 16, 3, 1e-4, 0.3);
        let collapsed = measure(&real, &one, "test", &cfg).expect("collapsed");
        assert!(
            collapsed
                .failures
                .iter()
                .any(|f| f.starts_with("diversity")),
            "{collapsed:?}"
        );
        assert!(
            collapsed.failures.iter().any(|f| f.starts_with("recall")),
            "{collapsed:?}"
        );

        // far from the real images (noise maps elsewhere): no coverage
        let far = measure(&real, &gaussian(125, 16, 4, 1.0, 6.0), "test", &cfg).expect("far");
        assert!(
            far.failures.iter().any(|f| f.starts_with("coverage")),
            "{far:?}"
        );
        // ... and FID grows by the squared mean shift (6² per dimension × 16 = 576), KID too
        let d = far.distances.expect("distances");
        assert!(d.fid > 500.0 && d.fid > 50.0 * d.fid_real, "{d:?}");
        assert!(d.kid > 100.0 * d.kid_real.abs().max(1e-3), "{d:?}");

        let tiny = measure(&real.select(Axis(0), &[0, 1, 2, 3]), &one, "test", &cfg);
        assert!(matches!(tiny, Err(MetricsError::TooFewSamples { .. })));
    }
}
