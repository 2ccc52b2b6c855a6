//! Medical files as they come, on fixtures written by `scripts/medical_fixtures.py` (pydicom,
//! imagecodecs and nibabel from PyPI, installed in `.venv` by `scripts/setup.sh`): DICOM in
//! every transfer syntax, without meta, with a TIFF preamble, YBR_FULL_422, 32 bits allocated,
//! a series in shuffled file order, a NIfTI volume stored in a non-identity orientation.
#![cfg(feature = "dicom")]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ganaug_data::decode::{Format, Image16};
use ganaug_data::decode16::decode16;
use ganaug_data::{
    ColorMode, DataError, FolderConfig, ImageFolder, ImageSpec, Slices, Split, Window,
};
use serde_json::Value;

/// The fixtures, written once per test run; `None` (the tests skip) where the fixture tools
/// are missing and not required.
fn fixtures() -> Option<&'static (tempfile::TempDir, Value)> {
    static DIR: OnceLock<Option<(tempfile::TempDir, Value)>> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = root.join(".venv/bin/python");
        let have = std::process::Command::new(&python)
            .args(["-c", "import pydicom, imagecodecs, nibabel"])
            .status()
            .is_ok_and(|s| s.success());
        if !have {
            assert!(
                std::env::var_os("GANAUG_REQUIRE_FIXTURE_TOOLS").is_none(),
                "pydicom, imagecodecs and nibabel are missing from .venv: run scripts/setup.sh"
            );
            eprintln!("skipping: the medical fixture tools are not installed (scripts/setup.sh)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let status = std::process::Command::new(&python)
            .arg(root.join("scripts/medical_fixtures.py"))
            .arg(dir.path())
            .status()
            .expect("run medical_fixtures.py");
        assert!(status.success(), "medical_fixtures.py failed");
        let expected = std::fs::read_to_string(dir.path().join("expected.json")).expect("json");
        let expected = serde_json::from_str(&expected).expect("expected.json");
        Some((dir, expected))
    })
    .as_ref()
}

/// A window over −1100 … +1100 HU onto 0 … 65535, wide enough for every fixture value.
fn wide() -> ImageSpec {
    ImageSpec::with_size(16).with_window(Window {
        center: 0,
        width: 2200,
    })
}

fn level(hu: f64) -> f64 {
    ((hu + 1100.0) / 2200.0).clamp(0.0, 1.0) * 65535.0
}

fn read(path: &Path, spec: &ImageSpec) -> ganaug_data::Result<Image16> {
    let bytes = std::fs::read(path).expect("read");
    decode16(&bytes, path, spec, 0)
}

fn dicom(name: &str) -> PathBuf {
    fixtures()
        .expect("fixtures")
        .0
        .path()
        .join(format!("dicom/{name}.dcm"))
}

/// The feature a fixture needs, if any.
fn needs(name: &str) -> Option<(&'static str, bool)> {
    match name {
        "jpeg_ls" => Some(("dicom-jpegls", cfg!(feature = "dicom-jpegls"))),
        "jpeg2000" => Some(("dicom-jpeg2000", cfg!(feature = "dicom-jpeg2000"))),
        _ => None,
    }
}

#[test]
fn every_transfer_syntax_decodes_to_its_hounsfield_units_or_names_the_feature() {
    let Some((_, expected)) = fixtures() else {
        return;
    };
    let cases = expected["dicom"].as_object().expect("dicom cases");
    assert!(cases.len() >= 12, "{} cases", cases.len());
    for (name, case) in cases {
        let path = dicom(name);
        if let Some((feature, false)) = needs(name) {
            let e = read(&path, &wide()).expect_err(name);
            assert!(
                matches!(e, DataError::UnsupportedEncoding { .. })
                    && e.to_string().contains(&format!("`{feature}`")),
                "{name}: {e}"
            );
            continue;
        }
        let tol = case["tolerance"].as_f64().expect("tolerance");
        // the 8-bit baseline fixture holds gray levels 0..255, not HU
        let (spec, to_level): (ImageSpec, Box<dyn Fn(f64) -> f64>) = if name == "jpeg_baseline" {
            let spec = ImageSpec::with_size(16).with_window(Window {
                center: 128,
                width: 256,
            });
            (spec, Box::new(|v| v / 256.0 * 65535.0))
        } else {
            (wide(), Box::new(level))
        };
        let img = read(&path, &spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((img.width, img.height, img.channels), (16, 16, 1), "{name}");
        let want: Vec<f64> = case["hu"]
            .as_array()
            .expect("hu")
            .iter()
            .flat_map(|row| {
                row.as_array()
                    .expect("row")
                    .iter()
                    .map(|v| v.as_f64().expect("v"))
            })
            .collect();
        let step = if tol == 0.0 {
            1.0
        } else {
            to_level(tol) - to_level(0.0)
        };
        for (i, (&got, &hu)) in img.pixels.iter().zip(&want).enumerate() {
            let diff = (f64::from(got) - to_level(hu)).abs();
            assert!(
                diff <= step,
                "{name}: pixel {i}: {got} vs {} ({hu})",
                to_level(hu)
            );
        }
    }
}

#[test]
fn twelve_bit_lossy_jpeg_is_refused_by_its_name_with_what_to_do() {
    if fixtures().is_none() {
        return;
    }
    let e = read(&dicom("jpeg_extended12"), &wide()).expect_err("12-bit lossy JPEG");
    let msg = e.to_string();
    assert!(matches!(e, DataError::UnsupportedEncoding { .. }), "{msg}");
    for part in [
        "JPEG Extended",
        "1.2.840.10008.1.2.4.51",
        "jpeg_extended12.dcm",
        "gdcmconv",
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
}

#[test]
fn a_tiff_preamble_and_a_missing_meta_group_are_still_dicom() {
    if fixtures().is_none() {
        return;
    }
    for name in ["tiff_preamble", "no_meta"] {
        let bytes = std::fs::read(dicom(name)).expect("read");
        assert_eq!(Format::sniff(&bytes), Some(Format::Dicom), "{name}");
    }
    let tiff = std::fs::read(dicom("tiff_preamble")).expect("read");
    assert!(
        tiff.starts_with(b"II*\0"),
        "the fixture's preamble holds a TIFF header"
    );
    let raw = std::fs::read(dicom("no_meta")).expect("read");
    assert!(
        !raw.windows(4).any(|w| w == b"DICM"),
        "the fixture has no meta group"
    );
}

#[test]
fn uncompressed_ybr_full_422_becomes_rgb() {
    let Some((_, expected)) = fixtures() else {
        return;
    };
    let spec = wide().with_color(ColorMode::Rgb);
    let bytes = std::fs::read(dicom("ybr_full_422")).expect("read");
    let img = ganaug_data::decode::decode(&bytes, &dicom("ybr_full_422"), &spec, 0)
        .expect("YBR_FULL_422");
    assert_eq!((img.width, img.height, img.channels), (16, 16, 3));
    let want = expected["ybr_full_422_rgb"].as_array().expect("rgb");
    let worst = img
        .pixels
        .iter()
        .zip(want)
        .map(|(&g, w)| (i64::from(g) - w.as_i64().expect("v")).abs())
        .max()
        .expect("pixels");
    // chroma is shared by pixel pairs, so neighbours differ a little from the original
    assert!(worst <= 12, "largest difference {worst}");
}

/// A two-class folder: `a/` holds the series (in a sub-folder), `b/` the NIfTI volume and
/// loose copies of single files.
fn volume_folder(slices: Slices) -> Option<(tempfile::TempDir, ImageFolder)> {
    let (fx, _) = fixtures()?;
    let dir = tempfile::tempdir().expect("tempdir");
    let series = dir.path().join("a/patient1");
    std::fs::create_dir_all(&series).expect("mkdir");
    for f in ["a.dcm", "b.dcm", "c.dcm", "other0.dcm", "other1.dcm"] {
        std::fs::copy(fx.path().join("series").join(f), series.join(f)).expect("copy");
    }
    std::fs::create_dir_all(dir.path().join("b")).expect("mkdir");
    // (without the feature a NIfTI file stops the load: a_nifti_volume_without_the_feature…)
    if cfg!(feature = "nifti") {
        let vol = fx.path().join("nifti/volume.nii.gz");
        std::fs::copy(vol, dir.path().join("b/vol.nii.gz")).expect("copy");
    }
    for f in ["explicit_le", "rle", "no_meta"] {
        std::fs::copy(dicom(f), dir.path().join(format!("b/{f}.dcm"))).expect("copy");
    }
    let config = FolderConfig::plain(&["a", "b"])
        .with_ratios([0.5, 0.25, 0.25], 3)
        .with_slices(slices);
    let folder = ImageFolder::open(dir.path(), &config).expect("open");
    Some((dir, folder))
}

#[test]
fn a_series_is_one_group_in_slice_order_and_a_volume_is_its_slices() {
    let Some((_, folder)) = volume_folder(Slices::All) else {
        return;
    };
    let (_, expected) = fixtures().expect("fixtures");
    let entries = folder.entries();
    let first: Vec<&str> = entries
        .iter()
        .filter(|e| e.name.starts_with("patient1/") && !e.name.contains("other"))
        .map(|e| e.name.as_str())
        .collect();
    let order: Vec<String> = expected["series"]["order"]
        .as_array()
        .expect("order")
        .iter()
        .map(|v| format!("patient1/{}", v.as_str().expect("name")))
        .collect();
    assert_eq!(first, order, "slices in position order, not file order");
    let split_of = |pred: &dyn Fn(&str) -> bool| -> Vec<Split> {
        let mut s: Vec<Split> = entries
            .iter()
            .filter(|e| pred(&e.name))
            .map(|e| e.split)
            .collect();
        s.dedup();
        s
    };
    assert_eq!(
        split_of(&|n| order.iter().any(|o| o == n)).len(),
        1,
        "one series, one split"
    );
    assert_eq!(split_of(&|n| n.starts_with("patient1/other")).len(), 1);
    let vol: Vec<&str> = entries
        .iter()
        .filter(|e| e.name.starts_with("vol.nii.gz#"))
        .map(|e| e.name.as_str())
        .collect();
    if cfg!(feature = "nifti") {
        assert_eq!(vol, ["vol.nii.gz#0", "vol.nii.gz#1", "vol.nii.gz#2"]);
        assert_eq!(split_of(&|n| n.starts_with("vol.nii.gz")).len(), 1);
    }
    // the middle slice only
    let Some((_, mid)) = volume_folder(Slices::Middle(1)) else {
        return;
    };
    let names: Vec<&str> = mid.entries().iter().map(|e| e.name.as_str()).collect();
    assert!(
        names.contains(&"patient1/a.dcm") && !names.contains(&"patient1/b.dcm"),
        "{names:?}"
    );
    if cfg!(feature = "nifti") {
        assert!(names.contains(&"vol.nii.gz#1") && !names.contains(&"vol.nii.gz#0"));
    }
}

#[cfg(feature = "nifti")]
#[test]
fn a_nifti_volume_is_turned_to_the_radiological_axial_view() {
    let Some((fx, expected)) = fixtures() else {
        return;
    };
    let path = fx.path().join("nifti/volume.nii.gz");
    let v = ganaug_data::nifti::read(&path).expect("nifti");
    let shape: Vec<usize> = expected["nifti"]["shape_ras"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|x| x.as_u64().expect("n") as usize)
        .collect();
    let (slope, inter) = (
        expected["nifti"]["slope"].as_f64().expect("slope"),
        expected["nifti"]["inter"].as_f64().expect("inter"),
    );
    assert_eq!((v.width, v.height, v.depth), (shape[0], shape[1], shape[2]));
    // canonical (RAS) value i_R + 10 j_A + 100 k_S: columns run to the left (i falls), rows
    // to posterior (j falls), slices to superior (k rises)
    for k in 0..v.depth {
        let s = v.slice(k);
        for row in 0..v.height {
            for col in 0..v.width {
                let (i, j) = (v.width - 1 - col, v.height - 1 - row);
                let want = (i + 10 * j + 100 * k) as f64 * slope + inter;
                assert_eq!(
                    f64::from(s[row * v.width + col]),
                    want,
                    "slice {k} ({row}, {col})"
                );
            }
        }
    }
}

#[cfg(not(feature = "nifti"))]
#[test]
fn a_nifti_volume_without_the_feature_names_the_feature() {
    let Some((fx, _)) = fixtures() else { return };
    let e = read(&fx.path().join("nifti/volume.nii.gz"), &wide()).expect_err("no feature");
    assert!(e.to_string().contains("`nifti` feature"), "{e}");
    // in a class folder, opening it says the same
    let dir = tempfile::tempdir().expect("tempdir");
    for class in ["a", "b"] {
        std::fs::create_dir_all(dir.path().join(class)).expect("mkdir");
        std::fs::copy(dicom("explicit_le"), dir.path().join(class).join("x.dcm")).expect("copy");
    }
    std::fs::copy(
        fx.path().join("nifti/volume.nii.gz"),
        dir.path().join("b/v.nii.gz"),
    )
    .expect("copy");
    let e = ImageFolder::open(dir.path(), &FolderConfig::plain(&["a", "b"])).expect_err("nifti");
    assert!(
        e.to_string().contains("`nifti` feature") && e.to_string().contains("v.nii.gz"),
        "{e}"
    );
}
