//! Precision / recall / density / coverage and mean pairwise distance against the `prdc`
//! package on fixed features. `prdc_reference.json` is written by
//! `scripts/reference/prdc_reference.py`.

use ganaug_metrics::{mean_pairwise_distance, prdc};
use ndarray::Array2;
use serde_json::Value;

fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).expect("rows");
    let (n, d) = (rows.len(), rows[0].len());
    Array2::from_shape_vec((n, d), rows.into_iter().flatten().collect()).expect("shape")
}

#[test]
fn prdc_and_diversity_match_the_reference_package() {
    let r: Value = serde_json::from_str(include_str!("prdc_reference.json")).expect("json");
    let real = matrix(&r["real"]);
    for case in r["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let k = case["k"].as_u64().expect("k") as usize;
        let got = prdc(&real, &matrix(&r["fake"][name]), k).expect("prdc");
        for (what, v) in [
            ("precision", got.precision),
            ("recall", got.recall),
            ("density", got.density),
            ("coverage", got.coverage),
        ] {
            let want = case[what].as_f64().expect("value");
            assert!(
                (v - want).abs() < 1e-12,
                "{name} k={k} {what}: {v} vs {want}"
            );
        }
    }
    let mp = &r["mean_pairwise"];
    for (name, x) in [
        ("real", real.clone()),
        ("shifted", matrix(&r["fake"]["shifted"])),
        ("collapsed", matrix(&r["fake"]["collapsed"])),
    ] {
        let got = mean_pairwise_distance(&x).expect("distance");
        let want = mp[name].as_f64().expect("value");
        assert!(
            (got - want).abs() < 1e-9 * want.max(1.0),
            "{name}: {got} vs {want}"
        );
    }
}
