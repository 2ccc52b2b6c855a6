//! A run that streams its images from the decode cache (`--stream on`) is the same run in
//! memory: its GANs train on each class streamed and their candidates are checked against the
//! class's images read a chunk at a time (the same synthetic sets, selections and measures),
//! and every cell has the in-memory per-image test probabilities — the real splits read batch
//! by batch, the synthetic images and the classic copies (made when read) in the same training
//! sets. A source that cannot stream (the generated phantom) is refused by name.

use ganaug_data::fixture::{write_class_folders, FixtureFormat, FolderFixture};
use ganaug_data::{DataSource, FolderSource, PhantomConfig, Streaming};
use ganaug_experiment::{self as experiment, ReproConfig, RunOptions, Scenario};

/// A result's part as JSON, to compare whole.
fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("serializable")
}

fn run(data: &DataSource, streaming: Streaming) -> experiment::Result<experiment::ReproResults> {
    run_cfg(
        data,
        streaming,
        &ReproConfig::preset("tiny").expect("tiny preset"),
    )
}

/// Every set file under `dir`, by path relative to it.
fn set_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("test io").flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.file_name().is_some_and(|n| n == "images.safetensors") {
                out.push(p.strip_prefix(dir).expect("under dir").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn run_cfg(
    data: &DataSource,
    streaming: Streaming,
    cfg: &experiment::CheckedConfig,
) -> experiment::Result<experiment::ReproResults> {
    let out = tempfile::tempdir().expect("out");
    run_in(data, streaming, cfg, out.path())
}

fn run_in(
    data: &DataSource,
    streaming: Streaming,
    cfg: &experiment::CheckedConfig,
    out: &std::path::Path,
) -> experiment::Result<experiment::ReproResults> {
    let opts = RunOptions {
        streaming,
        ..RunOptions::default()
    };
    experiment::run_with(cfg, data, out, tch::Device::Cpu, &opts)
}

#[test]
fn streamed_cells_give_the_in_memory_probabilities() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_class_folders(
        dir.path(),
        &FolderFixture::new(2, 14, 40, FixtureFormat::GrayPng),
    )
    .expect("fixture");
    let data = DataSource::Folder(Box::new(
        FolderSource::discover(dir.path()).expect("folder"),
    ));
    let tiny = ReproConfig::preset("tiny").expect("tiny preset");
    let (out_memory, out_streamed) = (
        tempfile::tempdir().expect("out"),
        tempfile::tempdir().expect("out"),
    );
    let memory = run_in(&data, Streaming::Off, &tiny, out_memory.path()).expect("in memory");
    let streamed = run_in(&data, Streaming::On, &tiny, out_streamed.path()).expect("streamed");
    // each synthetic set is written as a set file (its exact images), the same in both runs;
    // the streamed run's cells read their synthetic images from it
    let files = set_files(out_memory.path());
    assert!(!files.is_empty(), "no set file written");
    assert_eq!(files, set_files(out_streamed.path()));
    for f in &files {
        let read = |dir: &std::path::Path| {
            let set = ganaug_data::stream::open_set_file(&dir.join(f)).expect("a set file");
            let all: Vec<i64> = (0..ganaug_data::ImageSource::len(&set) as i64).collect();
            let mut reader = ganaug_data::ImageSource::reader(&set).expect("reader");
            (
                ganaug_data::ImageSource::names(&set).to_vec(),
                reader.read(&all).expect("read"),
            )
        };
        let (a, b) = (read(out_memory.path()), read(out_streamed.path()));
        assert!(!a.0.is_empty());
        assert_eq!(a.0, b.0, "{f:?}");
        assert!(a.1.equal(&b.1), "{f:?}");
    }
    assert!(
        streamed.decisions.iter().any(|d| d.contains("streamed")),
        "{:?}",
        streamed.decisions
    );
    assert!(!memory.decisions.iter().any(|d| d.contains("streamed")));
    // the GAN stage, streamed: the same selections (near-copy distances), measures and CAS
    assert!(!memory.synthetic.is_empty());
    assert!(memory.synthetic.iter().all(|s| s.selection.nn_min > 0.0));
    if std::env::var_os("GANAUG_REQUIRE_WEIGHTS").is_some() {
        // the features (FID, the gate's measures) were computed, so compared too
        assert!(memory
            .synthetic
            .iter()
            .all(|s| s.fid.is_some() && s.measures.is_some()));
    }
    assert_eq!(json(&memory.synthetic), json(&streamed.synthetic));
    assert_eq!(json(&memory.cas), json(&streamed.cas));
    assert_eq!(json(&memory.refused), json(&streamed.refused));
    // the classic copies and the synthetic sets are in the cells compared
    let scenarios: Vec<Scenario> = memory.cells.iter().map(|c| c.scenario).collect();
    assert!(scenarios.contains(&Scenario::GanClassic), "{scenarios:?}");
    assert_eq!(memory.cells.len(), streamed.cells.len());
    for (a, b) in memory.cells.iter().zip(&streamed.cells) {
        assert_eq!((a.model, a.scenario, a.seed), (b.model, b.scenario, b.seed));
        assert_eq!(
            a.train_images, b.train_images,
            "{:?} {:?}",
            a.model, a.scenario
        );
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.probs, b.probs, "{:?} {:?}", a.model, a.scenario);
        assert_eq!(a.epochs, b.epochs);
    }
}

#[test]
fn what_cannot_stream_is_refused_by_name() {
    // the phantom is generated in memory
    let phantom = DataSource::Phantom(PhantomConfig::tiny(16, 12, 0));
    let err = run(&phantom, Streaming::On).expect_err("the phantom does not stream");
    assert!(
        err.to_string().contains("only an image folder streams"),
        "{err}"
    );
    // auto keeps it in memory (no run here: this file's other test trains, and two runs in
    // one process at once would share libtorch's random generator)
    let decision = phantom.stream_decision(16, Streaming::Auto).expect("auto");
    assert!(!decision.stream);
}
