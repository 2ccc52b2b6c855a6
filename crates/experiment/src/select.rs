//! Choosing which generated candidates become a class's synthetic set, beyond the
//! discriminator's score: by a real-trained classifier's confidence, by closeness to the class's
//! real features, or greedily for coverage of them. Near-copies of training images are never
//! eligible, whatever the rule.

use ndarray::{Array2, ArrayView1};
use serde::{Deserialize, Serialize};

/// How a class's candidates are ranked (the first `keep_per_class` are kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelectBy {
    /// The GAN's discriminator probability, highest first (the original rule).
    #[default]
    Discriminator,
    /// A linear probe trained on the real training images' features (all classes): the
    /// probability of the intended class, highest first.
    Confidence,
    /// Mean feature distance to the class's `k` nearest real training images, nearest first.
    Nearest,
    /// Greedy coverage: each pick is the candidate that falls inside the most not-yet-covered
    /// real images' k-nearest-neighbour balls (the balls of Naeem et al.'s coverage); once no
    /// candidate adds coverage, the rest follow by [`SelectBy::Nearest`].
    Coverage,
}

impl SelectBy {
    /// Every rule, in the order of the report.
    pub const ALL: [SelectBy; 4] = [
        SelectBy::Discriminator,
        SelectBy::Confidence,
        SelectBy::Nearest,
        SelectBy::Coverage,
    ];

    /// `discriminator`, `confidence`, `nearest` or `coverage`.
    pub fn name(self) -> &'static str {
        match self {
            SelectBy::Discriminator => "discriminator",
            SelectBy::Confidence => "confidence",
            SelectBy::Nearest => "nearest",
            SelectBy::Coverage => "coverage",
        }
    }

    /// Parses [`SelectBy::name`].
    pub fn parse(s: &str) -> Option<Self> {
        SelectBy::ALL.into_iter().find(|x| x.name() == s)
    }

    /// Whether the rule needs the candidates' features.
    pub fn needs_features(self) -> bool {
        self != SelectBy::Discriminator
    }
}

/// The selection rule and its neighbourhood size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The rule.
    pub by: SelectBy,
    /// Neighbours for [`SelectBy::Nearest`] and the coverage balls.
    pub k: usize,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            by: SelectBy::Discriminator,
            k: 5,
        }
    }
}

fn distance(a: ArrayView1<'_, f64>, b: ArrayView1<'_, f64>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

/// `[A, B]` Euclidean distances between the rows of `a` and of `b`.
fn distances(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
    Array2::from_shape_fn((a.nrows(), b.nrows()), |(i, j)| {
        distance(a.row(i), b.row(j))
    })
}

/// Mean of the `k` smallest values of `row` (all of them when fewer).
fn mean_smallest(row: ArrayView1<'_, f64>, k: usize) -> f64 {
    let mut v: Vec<f64> = row.to_vec();
    v.sort_by(f64::total_cmp);
    let k = k.clamp(1, v.len());
    v[..k].iter().sum::<f64>() / k as f64
}

/// `eligible` candidates ordered by closeness: mean distance of each candidate's features to
/// its `k` nearest rows of `real`, smallest first.
pub fn by_nearest(
    candidates: &Array2<f64>,
    real: &Array2<f64>,
    eligible: &[usize],
    k: usize,
) -> Vec<usize> {
    let d = distances(candidates, real);
    let score: Vec<f64> = (0..candidates.nrows())
        .map(|i| mean_smallest(d.row(i), k))
        .collect();
    let mut order = eligible.to_vec();
    order.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    order
}

/// `eligible` candidates ordered by `confidence` (the intended class's probability), highest
/// first.
pub fn by_confidence(confidence: &[f64], eligible: &[usize]) -> Vec<usize> {
    let mut order = eligible.to_vec();
    order.sort_by(|&a, &b| confidence[b].total_cmp(&confidence[a]));
    order
}

/// `eligible` candidates in greedy coverage order (see [`SelectBy::Coverage`]).
pub fn by_coverage(
    candidates: &Array2<f64>,
    real: &Array2<f64>,
    eligible: &[usize],
    k: usize,
) -> Vec<usize> {
    let among_real = distances(real, real);
    // the k-th nearest other real image (index k: the 0th is itself)
    let radius: Vec<f64> = (0..real.nrows())
        .map(|j| {
            let mut v = among_real.row(j).to_vec();
            v.sort_by(f64::total_cmp);
            v[k.min(v.len() - 1)]
        })
        .collect();
    let d = distances(candidates, real);
    let mut covered = vec![false; real.nrows()];
    let mut left: Vec<usize> = eligible.to_vec();
    let mut order = Vec::with_capacity(left.len());
    loop {
        let gain = |i: usize| {
            (0..real.nrows())
                .filter(|&j| !covered[j] && d[[i, j]] < radius[j])
                .count()
        };
        let best = left
            .iter()
            .enumerate()
            .map(|(pos, &i)| (pos, gain(i)))
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
        match best {
            Some((pos, g)) if g > 0 => {
                let i = left.remove(pos);
                (0..real.nrows())
                    .filter(|&j| d[[i, j]] < radius[j])
                    .for_each(|j| covered[j] = true);
                order.push(i);
            }
            _ => break,
        }
    }
    let rest = by_nearest(candidates, real, &left, k);
    order.extend(rest);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real points on a line 0..10; candidates: far outliers, a cluster at 2, and one each
    /// near 5 and 8.
    fn data() -> (Array2<f64>, Array2<f64>) {
        let real = Array2::from_shape_fn((11, 2), |(i, j)| if j == 0 { i as f64 } else { 0.0 });
        let pts = [
            [100.0, 0.0],
            [2.0, 0.01],
            [2.0, 0.02],
            [2.0, 0.03],
            [5.0, 0.1],
            [8.0, 0.1],
            [-50.0, 3.0],
        ];
        let cand = Array2::from_shape_fn((pts.len(), 2), |(i, j)| pts[i][j]);
        (cand, real)
    }

    #[test]
    fn nearest_puts_outliers_last_and_keeps_only_eligible_candidates() {
        let (c, r) = data();
        let eligible = [0, 1, 2, 4, 5, 6];
        let order = by_nearest(&c, &r, &eligible, 1);
        assert_eq!(order.len(), eligible.len());
        assert!(!order.contains(&3));
        assert_eq!(&order[order.len() - 2..], &[6, 0]);
        assert_eq!(&order[..2], &[1, 2]);
    }

    #[test]
    fn coverage_spreads_its_first_picks_over_the_real_points() {
        let (c, r) = data();
        let eligible: Vec<usize> = (0..c.nrows()).collect();
        let order = by_coverage(&c, &r, &eligible, 1);
        assert_eq!(order.len(), eligible.len());
        // one from the cluster at 2 and those at 5 and 8 come before a second cluster member
        let first: std::collections::BTreeSet<usize> = order[..3].iter().copied().collect();
        assert!(first.contains(&4) && first.contains(&5), "{order:?}");
        assert_eq!(first.iter().filter(|i| (1..=3).contains(*i)).count(), 1);
        // nearest order for the rest puts the outliers last
        assert_eq!(&order[order.len() - 2..], &[6, 0]);
        // by nearest alone, the whole cluster comes first
        let near = by_nearest(&c, &r, &eligible, 1);
        assert!(near[..3].iter().all(|i| (1..=3).contains(i)), "{near:?}");
    }

    #[test]
    fn confidence_orders_by_probability_and_names_parse() {
        assert_eq!(by_confidence(&[0.1, 0.9, 0.5], &[0, 1, 2]), vec![1, 2, 0]);
        assert_eq!(by_confidence(&[0.1, 0.9, 0.5], &[0, 2]), vec![2, 0]);
        for s in SelectBy::ALL {
            assert_eq!(SelectBy::parse(s.name()), Some(s));
        }
        assert_eq!(SelectBy::parse("best"), None);
    }
}
