#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod aggregate;
mod confusion;
mod error;
mod extractor;
mod fid;
mod input;
mod intervals;
mod kid;
mod nearest;
mod paired;
mod prdc;
mod report;
mod roc;
mod seeds;
mod stream;
mod worth;

pub use aggregate::{summarize, Summary};
pub use confusion::{Average, ClassCounts, ConfusionMatrix};
pub use error::{MetricsError, Result};
pub use extractor::{extract_features, extract_stats, FeatureExtractor};
pub use fid::{fid, fid_from_stats, FeatureStats};
pub use input::{argmax_rows, labels_from_i64, probs_from_scores, MatrixInput};
pub use intervals::{
    bootstrap, bootstrap_auc, bootstrap_by_index, bootstrap_f1, normal_quantile, wilson_interval,
    BootstrapConfig, BootstrapInterval, Interval, Proportion,
};
pub use kid::{kid, Kid, KidConfig};
pub use nearest::{nearest_neighbours, NearestNeighbours};
pub use paired::{
    compare_models, mcnemar_exact, mcnemar_exact_p, paired_bootstrap, McNemar, PairedComparison,
    PairedDiff,
};
pub use prdc::{mean_pairwise_distance, prdc, Prdc};
pub use report::{Averages, ClassReport, ClassificationReport, ReportConfig};
pub use roc::{roc_auc, roc_auc_ovr, roc_curve, RocCurve};
pub use seeds::{compare_over_seeds, paired_bootstrap_seeds, SeedComparison, SeedPair};
pub use stream::{ConfusionAccumulator, FeatureStatsAccumulator, ScoreAccumulator};
pub use worth::{monotone_curve, worth, worth_on_curve, Outcomes, Worth, WorthEstimate};

#[cfg(test)]
mod testutil {
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// `n` samples of `d` independent normals (Box–Muller) times `scale`, plus `shift`.
    pub(crate) fn gaussian(n: usize, d: usize, shift: f64, scale: f64, seed: u64) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_simple_fn((n, d), || {
            let u1: f64 = rng.random::<f64>().max(1e-300);
            let u2: f64 = rng.random();
            shift + scale * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
    }
}
