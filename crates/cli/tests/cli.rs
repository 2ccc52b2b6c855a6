//! The installed program as a user meets it: every subcommand's help, clear errors for wrong
//! arguments, a dataset made and summarised, a dry run, and `watch` on a job's progress file.

use std::path::Path;
use std::process::{Command, Output};

fn ganaug(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ganaug"))
        .args(args)
        .output()
        .expect("ganaug runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const COMMANDS: &[&str] = &[
    "reproduce",
    "train-gan",
    "synthesize",
    "assess",
    "train-classifier",
    "train-probe",
    "predict",
    "summary",
    "augment",
    "make-dataset",
    "device",
    "watch",
    "probe-ablation",
    "synthetic-sweep",
];

#[test]
fn every_command_has_help_and_the_program_lists_them() {
    let top = ganaug(&["--help"]);
    assert!(top.status.success(), "{}", text(&top));
    for c in COMMANDS {
        assert!(text(&top).contains(c), "`ganaug --help` does not list {c}");
        let o = ganaug(&[c, "--help"]);
        assert!(o.status.success(), "ganaug {c} --help: {}", text(&o));
        assert!(text(&o).contains("Usage: ganaug"), "{}", text(&o));
    }
}

#[test]
fn wrong_arguments_are_refused_with_what_was_wrong() {
    for (args, expected) in [
        (&["assess"][..], "--synthetic"),
        (&["reproduce", "--device", "tpu"][..], "tpu"),
        (
            &["reproduce", "--stream", "sometimes", "--print-config"][..],
            "expected on, off or auto",
        ),
        (
            &["train-gan", "--stream", "always"][..],
            "expected on, off or auto",
        ),
        (
            &["reproduce", "--preset", "nope", "--print-config"][..],
            "nope",
        ),
        (&["frobnicate"][..], "frobnicate"),
        (
            &["watch", "/no/such/folder", "--once"][..],
            "/no/such/folder",
        ),
        (&["watch", ".", "--interval", "0"][..], "positive"),
        (
            &["assess", "--synthetic", ".", "--worth", "x"][..],
            "--effect",
        ),
        (
            &[
                "assess",
                "--synthetic",
                ".",
                "--effect",
                "cnn",
                "--worth",
                "/no/such/study",
            ][..],
            "/no/such/study",
        ),
    ] {
        let o = ganaug(args);
        assert!(!o.status.success(), "ganaug {args:?} succeeded");
        assert!(
            text(&o).contains(expected),
            "ganaug {args:?} does not say {expected:?}: {}",
            text(&o)
        );
    }
}

#[test]
fn a_made_dataset_is_summarised_and_planned() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let d = data.to_str().expect("utf-8");
    let o = ganaug(&[
        "make-dataset",
        "--out",
        d,
        "--per-class",
        "8",
        "--size",
        "32",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ganaug(&[
        "summary",
        "--data",
        d,
        "--out",
        tmp.path().join("s").to_str().expect("p"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // planned in memory, and streamed as the run would stream (a set larger than memory is
    // never loaded)
    let out = tmp.path().join("plan");
    for stream in ["off", "on"] {
        let o = ganaug(&[
            "reproduce",
            "--data",
            d,
            "--preset",
            "tiny",
            "--dry-run",
            "--stream",
            stream,
            "--quiet",
            "--out",
            out.to_str().expect("utf-8"),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("Estimated for this run"), "{}", text(&o));
    }

    // a classifier trained on it streamed is the one trained in memory: the same report, the
    // same history (classic copies made when read)
    let train = |stream: &str| {
        let out = tmp.path().join(format!("cnn-{stream}"));
        let o = ganaug(&[
            "train-classifier",
            "--data",
            d,
            "--model",
            "cnn",
            "--size",
            "32",
            "--epochs",
            "2",
            "--classic",
            "1",
            "--stream",
            stream,
            "--out",
            out.to_str().expect("utf-8"),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let t = String::from_utf8_lossy(&o.stdout).to_string();
        let report = t[t.find("training images").expect("the training set")..]
            .lines()
            .filter(|l| !l.contains("history, curves"))
            .collect::<Vec<_>>()
            .join("\n");
        let history: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("history.json")).expect("history.json"))
                .expect("json");
        (report, history)
    };
    let (memory, streamed) = (train("off"), train("on"));
    assert!(memory.0.contains("accuracy"), "{}", memory.0);
    assert_eq!(memory.0, streamed.0);
    // every epoch's losses and accuracies (not its wall time)
    let epochs = |h: &serde_json::Value| {
        let mut e = h["history"].clone();
        for epoch in e.as_array_mut().expect("epochs") {
            epoch.as_object_mut().expect("an epoch").remove("seconds");
        }
        e
    };
    assert_eq!(epochs(&memory.1).as_array().map(Vec::len), Some(2));
    assert_eq!(epochs(&memory.1), epochs(&streamed.1));
}

#[test]
fn watch_prints_where_a_job_stands() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = ganaug::train::ProgressFile::new(tmp.path().join("progress.json"), 5);
    ganaug::train::Observer::unit_started(&p, "cell", "cnn × raw (seed 0)", 3, 5);
    let o = ganaug(&["watch", tmp.path().to_str().expect("utf-8"), "--once"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("running [3/5] cell cnn × raw (seed 0)"), "{t}");
    p.finish(Ok(()));
    // a finished job: printed once, and watch ends
    let o = ganaug(&["watch", tmp.path().to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).starts_with("finished [5/5]"), "{}", text(&o));

    // a run folder without progress.json: its newest metrics.jsonl
    let run = tmp.path().join("run").join("cnn");
    std::fs::create_dir_all(&run).expect("mkdir");
    let line = r#"{"run":"cnn","epoch":4,"epochs":40,"seconds":1.5,"metrics":{"loss":0.25}}"#;
    std::fs::write(run.join("metrics.jsonl"), format!("{line}\n")).expect("write");
    let o = ganaug(&[
        "watch",
        tmp.path().join("run").to_str().expect("p"),
        "--once",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("cnn epoch 4/40"), "{}", text(&o));
    assert!(Path::new(&run).is_dir());
}
