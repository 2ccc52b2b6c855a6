//! DICOM folders (the `dicom` feature): Hounsfield units through the rescale, the window,
//! MONOCHROME1, multi-frame files as slices, and the bad files a PACS export holds.
#![cfg(feature = "dicom")]

use std::path::Path;

use ganaug_data::fixture::dicom_ct_bytes;
use ganaug_data::{decode, DataError, FolderConfig, ImageFolder, ImageSpec, LoadOptions, Window};

/// A 4×4 CT slice whose HU run from −1000 (air) to +350 in steps of 90.
fn ramp_hu() -> Vec<f32> {
    (0..16).map(|i| -1000.0 + 90.0 * i as f32).collect()
}

fn dcm(frames: &[Vec<f32>], monochrome1: bool) -> Vec<u8> {
    dicom_ct_bytes(frames, 4, monochrome1, Path::new("t.dcm")).expect("dicom")
}

fn decode_with(bytes: &[u8], window: Window, frame: u32) -> ganaug_data::Result<Vec<u8>> {
    let spec = ImageSpec::with_size(4).with_window(window);
    decode::decode(bytes, Path::new("t.dcm"), &spec, frame).map(|i| i.pixels)
}

#[test]
fn hounsfield_units_go_through_the_lung_window() {
    let px = decode_with(&dcm(&[ramp_hu()], false), Window::LUNG, 0).expect("decode");
    // Lung window: −1350 … +150 HU onto 0 … 255.
    let want: Vec<u8> = ramp_hu()
        .iter()
        .map(|&hu| ((f64::from(hu) + 1350.0) / 1500.0).clamp(0.0, 1.0))
        .map(|t| (t * 255.0).round() as u8)
        .collect();
    assert_eq!(px, want);
    assert_eq!(*px.last().expect("px"), 255, "+350 HU clips to white");
    // Another window, another mapping: mediastinum −160 … +240.
    let soft = decode_with(&dcm(&[ramp_hu()], false), Window::MEDIASTINUM, 0).expect("decode");
    assert_eq!(soft[0], 0);
    assert!(
        soft[10] > 0 && soft[10] < 255,
        "−100 HU is mid-gray: {}",
        soft[10]
    );
}

#[test]
fn monochrome1_is_inverted() {
    let m2 = decode_with(&dcm(&[ramp_hu()], false), Window::LUNG, 0).expect("m2");
    let m1 = decode_with(&dcm(&[ramp_hu()], true), Window::LUNG, 0).expect("m1");
    for (a, b) in m1.iter().zip(&m2) {
        assert_eq!(u16::from(*a) + u16::from(*b), 255);
    }
}

#[test]
fn multi_frame_files_become_one_entry_per_frame_in_one_split() {
    let dir = tempfile::tempdir().expect("tempdir");
    let frames: Vec<Vec<f32>> = (0..3)
        .map(|k| vec![-900.0 + 300.0 * k as f32; 16])
        .collect();
    for class in ["a", "b"] {
        std::fs::create_dir_all(dir.path().join(class)).expect("mkdir");
        std::fs::write(
            dir.path().join(class).join("series.dcm"),
            dcm(&frames, false),
        )
        .expect("write");
        std::fs::write(
            dir.path().join(class).join("single.dcm"),
            dcm(&[ramp_hu()], false),
        )
        .expect("write");
    }
    let (cfg, _) = FolderConfig::discover(dir.path()).expect("discover");
    let folder = ImageFolder::open(dir.path(), &cfg).expect("open");
    let series: Vec<_> = folder
        .entries()
        .iter()
        .filter(|e| e.label == 0 && e.name.starts_with("series.dcm"))
        .collect();
    let names: Vec<&str> = series.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["series.dcm#0", "series.dcm#1", "series.dcm#2"]);
    assert!(series.iter().all(|e| e.split == series[0].split));
    let all = ganaug_data::load_entries(
        folder.entries(),
        &folder.class_names(),
        "dicom",
        &LoadOptions::with_size(4),
    )
    .expect("load")
    .0;
    assert_eq!(all.len(), 8);
    // The frames differ (−900, −600, −300 HU), the files are read once per frame.
    let means: Vec<f64> = (0..3)
        .map(|k| {
            let name = format!("series.dcm#{k}");
            let i = all.names.iter().position(|n| *n == name).expect("frame");
            all.images
                .get(i as i64)
                .mean(tch::Kind::Float)
                .double_value(&[])
        })
        .collect();
    assert!(means[0] < means[1] && means[1] < means[2], "{means:?}");
}

#[test]
fn bad_dicom_files_are_typed_errors_naming_the_file() {
    let p = Path::new("bad.dcm");
    let spec = ImageSpec::with_size(4);
    // Garbage after the preamble and magic.
    let mut garbage = vec![0u8; 128];
    garbage.extend_from_slice(b"DICM");
    garbage.extend_from_slice(&[0xAB; 64]);
    match decode::decode(&garbage, p, &spec, 0) {
        Err(e @ DataError::Decode { .. }) => assert!(e.to_string().contains("bad.dcm"), "{e}"),
        other => panic!("{other:?}"),
    }
    // A valid file without pixel data (a report, a presentation state).
    let mut no_pixels = dcm(&[ramp_hu()], false);
    let at = no_pixels
        .windows(4)
        .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00])
        .expect("pixel data tag");
    no_pixels.truncate(at);
    match decode::decode(&no_pixels, p, &spec, 0) {
        Err(DataError::NoPixelData { path }) => assert_eq!(path, p),
        other => panic!("{other:?}"),
    }
    // A window entirely above the data: every pixel would be black.
    let high = Window {
        center: 3000,
        width: 100,
    };
    match decode_with(&dcm(&[ramp_hu()], false), high, 0) {
        Err(e @ DataError::WindowOutsideData { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("-1000") && msg.contains("350"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert!(Window::parse("40,0").is_err() && Window::parse("lung").is_ok());
    assert_eq!(Window::parse("-600,1500").expect("window"), Window::LUNG);
}
