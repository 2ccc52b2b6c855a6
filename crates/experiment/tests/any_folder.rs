//! Any image-folder dataset: a generated 3-class RGB folder without split lists is discovered,
//! decided RGB, split per class, and goes through the tiny preset end to end (RGB GANs, a
//! 3-class conditional GAN, 3-class classifiers, macro metrics, a report without the paper's
//! numbers); gray images stored as RGB are decided gray.

use ganaug_data::fixture::{write_class_folders, FixtureFormat, FolderFixture};
use ganaug_data::{ColorMode, DataSource, FolderSource, Layout, Split};
use ganaug_experiment::{self as experiment, ReproConfig};
use ganaug_train::Silent;

#[test]
fn a_three_class_rgb_folder_runs_the_tiny_preset_with_a_full_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = FolderFixture::new(3, 12, 40, FixtureFormat::RgbPng);
    write_class_folders(dir.path(), &fixture).expect("fixture");

    let folder = FolderSource::discover(dir.path()).expect("discover");
    assert_eq!(folder.layout, Layout::ClassFolders);
    assert_eq!(folder.color, ColorMode::Auto);
    let names: Vec<&str> = folder
        .config
        .classes
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["class-a", "class-b", "class-c"]);
    let data = DataSource::Folder(Box::new(folder));
    let splits = data.load(32, tch::Device::Cpu).expect("load");
    let decision = splits.report.color.as_ref().expect("auto decided");
    assert_eq!(decision.mode, ColorMode::Rgb, "{decision}");
    assert_eq!(splits.train.channels(), 3);
    // 70/15/15 of 12 per class: 8 / 2 / 2 each.
    for split in Split::ALL {
        let want = if split == Split::Train { 8 } else { 2 };
        assert_eq!(splits.get(split).class_counts(), vec![want; 3], "{split}");
    }

    let out = tempfile::tempdir().expect("out");
    let cfg = ReproConfig::preset("tiny").expect("tiny preset");
    let r = experiment::run(&cfg, &data, out.path(), tch::Device::Cpu, &Silent).expect("run");
    assert!(!r.is_covid_ct() && !r.synthetic_data);
    assert_eq!(r.class_names, ["class-a", "class-b", "class-c"]);
    assert_eq!(r.config.gan.gan.channels, 3);
    assert_eq!(
        r.cells.len(),
        cfg.models.len() * cfg.scenarios.len() * cfg.seeds
    );
    for c in &r.cells {
        assert!(c.probs.iter().all(|p| p.len() == 3), "{}", c.scenario);
        assert_eq!(c.confusion.len(), 3);
        assert_eq!(
            c.confusion.iter().flatten().sum::<u64>() as usize,
            c.labels.len()
        );
        assert!(c.auc.is_some(), "macro one-vs-rest AUC");
        assert!(c.roc_fpr.is_empty(), "no binary ROC with 3 classes");
    }
    let report = std::fs::read_to_string(out.path().join("report.md")).expect("report");
    assert!(
        report.contains("on 3 classes (class-a, class-b, class-c)"),
        "{report}"
    );
    assert!(report.contains("## Confusion matrices"));
    assert!(report.contains("Per class: class-a: precision"), "{report}");
    assert!(report.contains("macro averages over the 3 classes"));
    assert!(!report.contains("ours vs the paper"));
    assert!(
        report.contains("image folder"),
        "the report names the dataset"
    );
    // The GAN sample grids are colour PNGs.
    let grid = r.synthetic.first().expect("a synthetic set").grid.clone();
    let img = image::open(out.path().join(grid)).expect("grid");
    assert_eq!(img.color(), image::ColorType::Rgb8);
}

#[test]
fn gray_images_stored_as_rgb_are_decided_gray() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = FolderFixture::new(2, 4, 24, FixtureFormat::GrayPng);
    let files = write_class_folders(dir.path(), &fixture).expect("fixture");
    // Re-save the gray PNGs as RGB and RGBA with equal channels (as COVID-CT's PNGs are).
    for (i, f) in files.iter().enumerate() {
        let g = image::open(f).expect("open").to_luma8();
        let img = if i % 2 == 0 {
            image::DynamicImage::ImageLuma8(g).to_rgb8().into()
        } else {
            image::DynamicImage::ImageLuma8(g).to_rgba8().into()
        };
        let img: image::DynamicImage = img;
        img.save(f).expect("save");
    }
    let data = DataSource::folder_or_phantom(Some(dir.path())).expect("discover");
    let splits = data.load(16, tch::Device::Cpu).expect("load");
    let decision = splits.report.color.as_ref().expect("decided");
    assert_eq!(decision.mode, ColorMode::Gray, "{decision}");
    assert_eq!(splits.train.channels(), 1);
    assert!(decision.to_string().contains("gray"), "{decision}");
}
