//! ganaug-metrics against scikit-learn and SciPy on fixed inputs.
//!
//! `reference.json` is written by `scripts/reference/metrics_reference.py`; rerun it to
//! regenerate. Tolerances: 1e-12 for statistics that are ratios of counts (they should agree to
//! the last bits), looser where the two sides compute differently (FID: eigendecompositions here,
//! `scipy.linalg.sqrtm` there).

use ganaug_metrics::{
    fid, fid_from_stats, kid, mcnemar_exact, mcnemar_exact_p, nearest_neighbours, normal_quantile,
    roc_auc, roc_auc_ovr, roc_curve, summarize, wilson_interval, Average, ClassificationReport,
    ConfusionMatrix, FeatureStats, KidConfig, ReportConfig, RocCurve,
};
use ndarray::{Array1, Array2};
use serde_json::Value;

fn reference() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference.json");
    let text = std::fs::read_to_string(path).expect("tests/reference.json is committed");
    serde_json::from_str(&text).expect("reference.json is valid JSON")
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("a number")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("an array").iter().map(f).collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_u64().expect("an unsigned integer") as usize)
        .collect()
}

fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = v.as_array().expect("rows").iter().map(floats).collect();
    let cols = rows.first().map_or(0, Vec::len);
    Array2::from_shape_vec((rows.len(), cols), rows.concat()).expect("rectangular")
}

#[track_caller]
fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{what}: got {got}, want {want} (tol {tol})"
    );
}

#[track_caller]
fn assert_all_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_close(*g, *w, tol, &format!("{what}[{i}]"));
    }
}

const EXACT: f64 = 1e-12;

fn check_classification(case: &Value) {
    let name = case["name"].as_str().expect("name");
    let labels = usizes(&case["labels"]);
    let probs = matrix(&case["probs"]);
    let c = probs.ncols();
    let cm = ConfusionMatrix::from_probs(&labels, &probs).expect("confusion");
    let want_cm: Vec<Vec<u64>> = case["confusion"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| usizes(r).into_iter().map(|x| x as u64).collect())
        .collect();
    assert_eq!(cm.counts(), want_cm.as_slice(), "{name}: confusion");
    assert_close(cm.accuracy(), f(&case["accuracy"]), EXACT, name);
    assert_close(
        cm.balanced_accuracy(),
        f(&case["balanced_accuracy"]),
        EXACT,
        name,
    );
    assert_close(cm.mcc(), f(&case["mcc"]), EXACT, &format!("{name}: mcc"));

    let per = |stat: fn(&ConfusionMatrix, Average) -> ganaug_metrics::Result<f64>| -> Vec<f64> {
        (0..c)
            .map(|k| stat(&cm, Average::Binary { positive: k }).expect("class stat"))
            .collect()
    };
    assert_all_close(
        &per(ConfusionMatrix::precision),
        &floats(&case["precision_per_class"]),
        EXACT,
        name,
    );
    assert_all_close(
        &per(ConfusionMatrix::recall),
        &floats(&case["recall_per_class"]),
        EXACT,
        name,
    );
    assert_all_close(
        &per(ConfusionMatrix::f1),
        &floats(&case["f1_per_class"]),
        EXACT,
        name,
    );
    assert_all_close(
        &per(ConfusionMatrix::specificity),
        &floats(&case["specificity_per_class"]),
        EXACT,
        name,
    );
    for (avg, key) in [(Average::Macro, "macro"), (Average::Weighted, "weighted")] {
        let what = format!("{name}: {key}");
        assert_close(
            cm.precision(avg).expect("p"),
            f(&case[format!("precision_{key}")]),
            EXACT,
            &what,
        );
        assert_close(
            cm.recall(avg).expect("r"),
            f(&case[format!("recall_{key}")]),
            EXACT,
            &what,
        );
        assert_close(
            cm.f1(avg).expect("f1"),
            f(&case[format!("f1_{key}")]),
            EXACT,
            &what,
        );
    }

    // Per-class one-vs-rest AUC, and the report's copy of all of the above.
    let report = ClassificationReport::new(
        &labels,
        &probs,
        &ReportConfig {
            resamples: 200,
            ..ReportConfig::default()
        },
    )
    .expect("report");
    for (k, want) in case["auc_per_class"]
        .as_array()
        .expect("aucs")
        .iter()
        .enumerate()
    {
        let want = f(want);
        let got = roc_auc_ovr(&labels, &probs, Average::Binary { positive: k }).expect("auc");
        assert_close(got, want, EXACT, &format!("{name}: auc class {k}"));
        assert_close(report.per_class[k].auc.expect("auc"), want, EXACT, name);
        assert_close(
            report.per_class[k].f1,
            f(&case["f1_per_class"][k]),
            EXACT,
            name,
        );
    }
    assert_close(report.accuracy.estimate, f(&case["accuracy"]), EXACT, name);
    assert_close(report.macro_avg.f1, f(&case["f1_macro"]), EXACT, name);
    assert_close(
        report.weighted_avg.recall,
        f(&case["recall_weighted"]),
        EXACT,
        name,
    );
    assert_close(report.mcc, f(&case["mcc"]), EXACT, name);
    if let Some(want) = case.get("auc_ovr_macro") {
        let got = roc_auc_ovr(&labels, &probs, Average::Macro).expect("auc");
        assert_close(got, f(want), EXACT, &format!("{name}: macro ovr auc"));
        assert_close(report.auc.expect("auc").estimate, f(want), EXACT, name);
        let got = roc_auc_ovr(&labels, &probs, Average::Weighted).expect("auc");
        assert_close(got, f(&case["auc_ovr_weighted"]), EXACT, name);
    }
}

fn check_curve(got: &RocCurve, want: &Value, what: &str) {
    assert_all_close(
        &got.fpr,
        &floats(&want["fpr"]),
        EXACT,
        &format!("{what} fpr"),
    );
    assert_all_close(
        &got.tpr,
        &floats(&want["tpr"]),
        EXACT,
        &format!("{what} tpr"),
    );
    let thr = want["thresholds"].as_array().expect("thresholds");
    assert!(
        thr[0].is_null() && got.thresholds[0] == f64::INFINITY,
        "{what}: first threshold"
    );
    let rest: Vec<f64> = thr[1..].iter().map(f).collect();
    assert_all_close(
        &got.thresholds[1..],
        &rest,
        0.0,
        &format!("{what} thresholds"),
    );
}

#[test]
fn binary_statistics_match_sklearn() {
    let r = reference();
    for case in r["binary"].as_array().expect("cases") {
        check_classification(case);
        let name = case["name"].as_str().expect("name");
        let labels = usizes(&case["labels"]);
        let probs = matrix(&case["probs"]);
        let cm = ConfusionMatrix::from_probs(&labels, &probs).expect("confusion");
        for pos in case["by_positive"].as_array().expect("positives") {
            let positive = pos["positive"].as_u64().expect("positive") as usize;
            let what = format!("{name} positive={positive}");
            let avg = Average::Binary { positive };
            assert_close(
                cm.precision(avg).expect("p"),
                f(&pos["precision"]),
                EXACT,
                &what,
            );
            assert_close(cm.recall(avg).expect("r"), f(&pos["recall"]), EXACT, &what);
            assert_close(
                cm.specificity(avg).expect("s"),
                f(&pos["specificity"]),
                EXACT,
                &what,
            );
            assert_close(cm.f1(avg).expect("f1"), f(&pos["f1"]), EXACT, &what);
            let scores: Vec<f64> = probs.column(positive).to_vec();
            assert_close(
                roc_auc(&labels, &scores, positive).expect("auc"),
                f(&pos["auc"]),
                EXACT,
                &what,
            );
            let curve = roc_curve(&labels, &scores, positive).expect("curve");
            check_curve(&curve, &pos["roc_full"], &format!("{what} full"));
            check_curve(
                &curve.drop_intermediate(),
                &pos["roc_dropped"],
                &format!("{what} dropped"),
            );
            assert_close(curve.auc(), f(&pos["auc"]), EXACT, &what);

            let report = ClassificationReport::new(
                &labels,
                &probs,
                &ReportConfig {
                    positive,
                    resamples: 200,
                    ..ReportConfig::default()
                },
            )
            .expect("report");
            let pc = report.positive_class().expect("binary");
            assert_close(pc.recall.estimate, f(&pos["recall"]), EXACT, &what);
            assert_close(
                pc.specificity.estimate,
                f(&pos["specificity"]),
                EXACT,
                &what,
            );
            assert_close(report.f1.estimate, f(&pos["f1"]), EXACT, &what);
            assert_close(
                report.auc.expect("auc").estimate,
                f(&pos["auc"]),
                EXACT,
                &what,
            );
        }
    }
}

#[test]
fn multiclass_statistics_match_sklearn() {
    let r = reference();
    for case in r["multiclass"].as_array().expect("cases") {
        check_classification(case);
    }
}

#[test]
fn wilson_intervals_match_scipy() {
    let r = reference();
    for case in r["wilson"].as_array().expect("cases") {
        let (s, n) = (
            case["successes"].as_u64().expect("s"),
            case["trials"].as_u64().expect("n"),
        );
        let ci = wilson_interval(s, n, f(&case["confidence"])).expect("interval");
        let what = format!("wilson {s}/{n} at {}", case["confidence"]);
        assert_close(ci.lower, f(&case["lower"]), 1e-12, &what);
        assert_close(ci.upper, f(&case["upper"]), 1e-12, &what);
    }
}

#[test]
fn normal_quantiles_match_scipy() {
    let r = reference();
    for case in r["normal_quantile"].as_array().expect("cases") {
        let p = f(&case["p"]);
        let z = normal_quantile(p).expect("quantile");
        assert_close(z, f(&case["z"]), 1e-13, &format!("ppf({p})"));
    }
}

#[test]
fn mcnemar_matches_scipy_binomtest() {
    let r = reference();
    for case in r["mcnemar"]["counts"].as_array().expect("cases") {
        let (b, c) = (
            case["b"].as_u64().expect("b"),
            case["c"].as_u64().expect("c"),
        );
        // Relative: some p-values are 1e-4 and smaller.
        let (got, want) = (mcnemar_exact_p(b, c), f(&case["p_value"]));
        assert!(
            (got - want).abs() <= 1e-10 * want,
            "mcnemar b={b} c={c}: got {got}, want {want}"
        );
    }
    let p = &r["mcnemar"]["paired"];
    let t = mcnemar_exact(
        &usizes(&p["labels"]),
        &usizes(&p["preds_a"]),
        &usizes(&p["preds_b"]),
    )
    .expect("mcnemar");
    let want = |k: &str| p[k].as_u64().expect("count");
    assert_eq!(
        (t.both_correct, t.only_a, t.only_b, t.both_wrong),
        (
            want("both_correct"),
            want("only_a"),
            want("only_b"),
            want("both_wrong")
        )
    );
    assert_close(t.p_value, f(&p["p_value"]), 1e-10, "paired mcnemar");
}

#[test]
fn fid_matches_scipy_sqrtm() {
    let r = reference();
    let feats = &r["fid"]["features"];
    let (x, y) = (matrix(&feats["x"]), matrix(&feats["y"]));
    let stats = FeatureStats::from_features(&x).expect("stats");
    assert_all_close(
        stats.mean.as_slice().expect("contiguous"),
        &floats(&feats["mean_x"]),
        1e-12,
        "mean",
    );
    let cov = matrix(&feats["cov_x"]);
    assert_all_close(
        stats.cov.as_slice().expect("contiguous"),
        cov.as_slice().expect("contiguous"),
        1e-12,
        "cov",
    );
    assert_close(
        fid(&x, &y).expect("fid"),
        f(&feats["fid"]),
        1e-9,
        "fid features",
    );
    // f32 features (as networks give) go through the same f64 path.
    let (x32, y32) = (x.mapv(|v| v as f32), y.mapv(|v| v as f32));
    assert_close(
        fid(&x32, &y32).expect("fid"),
        f(&feats["fid"]),
        1e-5,
        "fid f32",
    );

    let s = &r["fid"]["stats"];
    let got = fid_from_stats(
        Array1::from(floats(&s["mu1"])).view(),
        matrix(&s["sigma1"]).view(),
        Array1::from(floats(&s["mu2"])).view(),
        matrix(&s["sigma2"]).view(),
    )
    .expect("fid");
    assert_close(got, f(&s["fid"]), 1e-9, "fid stats");
}

#[test]
fn kid_with_full_subsets_matches_numpy() {
    let r = reference();
    let (x, y) = (matrix(&r["kid"]["x"]), matrix(&r["kid"]["y"]));
    let cfg = KidConfig {
        subset_size: x.nrows(),
        subsets: 3,
        seed: 9,
    };
    let k = kid(&x, &y, &cfg).expect("kid");
    assert_close(k.mean, f(&r["kid"]["mmd2"]), 1e-10, "kid");
    assert!(k.sd < 1e-10);
}

#[test]
fn nearest_neighbours_match_scipy_cdist() {
    let r = reference();
    let c = &r["nearest"];
    let nn = nearest_neighbours(&matrix(&c["synthetic"]), &matrix(&c["training"])).expect("nn");
    assert_eq!(nn.indices, usizes(&c["indices"]));
    assert_all_close(&nn.distances, &floats(&c["distances"]), 1e-12, "distances");
    assert_eq!(nn.distances[3], 0.0, "the planted copy");
    assert_close(nn.mean, f(&c["mean"]), 1e-12, "mean");
    assert_close(nn.min, f(&c["min"]), 1e-12, "min");
    assert_close(nn.median, f(&c["median"]), 1e-12, "median");
}

#[test]
fn seed_summary_matches_numpy() {
    let r = reference();
    let c = &r["summary"];
    let s = summarize(&floats(&c["values"])).expect("summary");
    assert_close(s.mean, f(&c["mean"]), 1e-12, "mean");
    assert_close(s.sd.expect("n > 1"), f(&c["sd"]), 1e-12, "sd");
    assert_eq!((s.min, s.max), (f(&c["min"]), f(&c["max"])));
}
