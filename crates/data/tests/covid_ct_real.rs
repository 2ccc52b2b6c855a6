//! The real COVID-CT dataset, when `COVID_CT_DIR` points at it (`.ci/run` sets it).
//! Without it these tests print why and check nothing else.

use std::path::PathBuf;

use ganaug_data::{FolderConfig, ImageFolder, LoadOptions, Split, SplitOrigin};
use tch::Kind;

fn dataset_dir() -> Option<PathBuf> {
    match std::env::var_os("COVID_CT_DIR").map(PathBuf::from) {
        Some(p) if p.is_dir() => Some(p),
        Some(p) => panic!("COVID_CT_DIR={} is not a folder", p.display()),
        None => {
            eprintln!("COVID_CT_DIR not set: real-dataset test not run");
            None
        }
    }
}

#[test]
fn official_split_counts_per_class() {
    let Some(dir) = dataset_dir() else { return };
    let folder = ImageFolder::open(&dir, &FolderConfig::covid_ct()).expect("open COVID-CT");
    assert_eq!(folder.origin(), &SplitOrigin::Lists);
    assert_eq!(folder.counts(Split::Train), vec![191, 234]);
    assert_eq!(folder.counts(Split::Val), vec![60, 58]);
    assert_eq!(folder.counts(Split::Test), vec![98, 105]);
    assert!(folder.unlisted().is_empty());
    assert!(folder.skipped().is_empty());
}

#[test]
fn every_real_image_decodes() {
    let Some(dir) = dataset_dir() else { return };
    let folder = ImageFolder::open(&dir, &FolderConfig::covid_ct()).expect("open COVID-CT");
    let splits = folder
        .load_splits(&LoadOptions::with_size(64))
        .expect("load all 746 images");
    assert_eq!(splits.report.decoded, 746);
    assert_eq!(splits.train.images.size(), [425, 1, 64, 64]);
    assert_eq!(splits.val.class_counts(), vec![60, 58]);
    assert_eq!(splits.test.class_counts(), vec![98, 105]);
    for split in Split::ALL {
        let ds = splits.get(split);
        // Real CT slices: neither blank nor saturated, per image.
        let per_image = ds.images.flatten(1, -1).std_dim(1, true, false);
        let flat = per_image.min().double_value(&[]);
        assert!(
            flat > 0.02,
            "{split}: some image is nearly uniform (std {flat})"
        );
        let mean = ds.images.mean(Kind::Float).double_value(&[]);
        assert!((0.2..0.8).contains(&mean), "{split}: mean {mean}");
    }
    // One of the 34 COVID ".png" files that hold JPEG data.
    let jpeg_named_png = "2020.03.16.20035105-p6-64-1.png";
    assert!(splits
        .get(Split::Train)
        .names
        .iter()
        .chain(&splits.val.names)
        .chain(&splits.test.names)
        .any(|n| n == jpeg_named_png));
}
