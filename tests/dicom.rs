//! The tiny preset end to end on a generated DICOM class folder (the `dicom` feature); the
//! DICOM decoding itself is tested in `crates/data/tests/dicom.rs`.
#![cfg(feature = "dicom")]

use ganaug::data::fixture::{write_class_folders, FixtureFormat, FolderFixture};
use ganaug::data::DataSource;
use ganaug::experiment::{self, ReproConfig};
use ganaug::train::Silent;

#[test]
fn the_tiny_preset_runs_on_a_dicom_class_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = FolderFixture::new(2, 12, 32, FixtureFormat::Dicom);
    write_class_folders(dir.path(), &fixture).expect("fixture");
    let data = DataSource::folder_or_phantom(Some(dir.path())).expect("discover");
    let out = tempfile::tempdir().expect("out");
    let cfg = ReproConfig::preset("tiny").expect("tiny");
    let r = experiment::run(&cfg, &data, out.path(), tch::Device::Cpu, &Silent).expect("run");
    assert_eq!(r.class_names, ["class-a", "class-b"]);
    assert_eq!(r.config.gan.gan.channels, 1, "CT is gray");
    let decided = r.decisions.join("; ");
    assert!(decided.contains("colour mode auto: gray"), "{decided}");
    assert!(
        decided.contains("bit depth auto: 16"),
        "CT stores 12 bits: {decided}"
    );
    assert_eq!(
        r.cells.len(),
        cfg.models.len() * cfg.scenarios.len() * cfg.seeds
    );
    let report = std::fs::read_to_string(out.path().join("report.md")).expect("report");
    assert!(report.contains("COVID-CT and are not shown"), "{report}");
}
