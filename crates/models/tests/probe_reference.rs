//! The linear probe against scikit-learn's multinomial `LogisticRegression` on fixed features
//! (`scripts/reference/probe_reference.py` wrote `probe_reference.json`).

use ganaug_models::{fit_at, ProbeConfig};
use ndarray::Array2;

fn matrix(v: &serde_json::Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).expect("rows");
    let (n, d) = (rows.len(), rows[0].len());
    Array2::from_shape_fn((n, d), |(i, j)| rows[i][j])
}

#[test]
fn the_probe_gives_scikit_learns_probabilities() {
    let text = include_str!("probe_reference.json");
    let r: serde_json::Value = serde_json::from_str(text).expect("json");
    let x = matrix(&r["x"]);
    let x_test = matrix(&r["x_test"]);
    let y: Vec<usize> = serde_json::from_value(r["y"].clone()).expect("labels");
    let classes = r["classes"].as_u64().expect("classes") as usize;
    let cfg = ProbeConfig {
        tolerance: 1e-10,
        max_iterations: 20_000,
        ..ProbeConfig::default()
    };
    let fits = r["fits"].as_array().expect("fits");
    assert_eq!(fits.len(), 4);
    for fit in fits {
        let c = fit["c"].as_f64().expect("c");
        let want = matrix(&fit["test_probs"]);
        let probe = fit_at(&x, &y, classes, c, &cfg).expect("fit");
        let got = probe.predict_proba(&x_test).expect("predict");
        let diff = (&got - &want).mapv(f64::abs).fold(0.0f64, |m, &v| m.max(v));
        assert!(diff < 1e-5, "C = {c}: probabilities differ by {diff}");
    }
}

#[test]
fn weighted_fits_and_out_of_fold_probabilities_match_scikit_learn() {
    use ganaug_models::{fit_at_weighted, out_of_fold_proba};
    let r: serde_json::Value =
        serde_json::from_str(include_str!("probe_reference.json")).expect("json");
    let (x, x_test) = (matrix(&r["x"]), matrix(&r["x_test"]));
    let y: Vec<usize> = serde_json::from_value(r["y"].clone()).expect("labels");
    let w: Vec<f64> = serde_json::from_value(r["weights"].clone()).expect("weights");
    let classes = r["classes"].as_u64().expect("classes") as usize;
    let cfg = ProbeConfig {
        tolerance: 1e-10,
        max_iterations: 20_000,
        ..ProbeConfig::default()
    };
    let max_diff =
        |a: &Array2<f64>, b: &Array2<f64>| (a - b).mapv(f64::abs).fold(0.0f64, |m, &v| m.max(v));
    for fit in r["weighted_fits"].as_array().expect("weighted fits") {
        let c = fit["c"].as_f64().expect("c");
        let probe = fit_at_weighted(&x, &y, Some(&w), classes, c, &cfg).expect("fit");
        let got = probe.predict_proba(&x_test).expect("predict");
        let diff = max_diff(&got, &matrix(&fit["test_probs"]));
        assert!(
            diff < 1e-5,
            "weighted, C = {c}: probabilities differ by {diff}"
        );
    }
    let o = &r["oof"];
    let ys: Vec<usize> = serde_json::from_value(o["y"].clone()).expect("labels");
    let got = out_of_fold_proba(
        (&matrix(&o["x"]), &ys),
        2,
        o["k"].as_u64().expect("k") as usize,
        o["c"].as_f64().expect("c"),
        &cfg,
    )
    .expect("out of fold");
    let diff = max_diff(&got, &matrix(&o["probs"]));
    assert!(diff < 1e-5, "out-of-fold probabilities differ by {diff}");
}
