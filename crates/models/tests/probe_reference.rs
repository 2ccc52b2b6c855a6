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
