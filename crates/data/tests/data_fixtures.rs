//! ganaug-data against tiny datasets these tests write themselves: every quirk of the real
//! COVID-CT files, and every kind of bad input.

use std::path::{Path, PathBuf};

use ganaug_data::{
    DataError, FolderConfig, ImageFolder, ImageSpec, LoadOptions, OnBadFile, ResizePolicy, Split,
    SplitOrigin,
};
use image::{GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};
use tch::Kind;

const LONG: &str = "impact_of_covid19_infection_on_pregnancy_outcomes_and_the_risk_of_maternal_to_neonatal_intrapartum_transmission_of_covid19_natural_birth-p8-41%1.png";

fn png_rgb(w: u32, h: u32, c: [u8; 3]) -> Vec<u8> {
    encode(image::DynamicImage::ImageRgb8(RgbImage::from_pixel(
        w,
        h,
        Rgb(c),
    )))
}

fn png_rgba(w: u32, h: u32, c: [u8; 4]) -> Vec<u8> {
    encode(image::DynamicImage::ImageRgba8(RgbaImage::from_pixel(
        w,
        h,
        Rgba(c),
    )))
}

fn png_gray(w: u32, h: u32, v: u8) -> Vec<u8> {
    encode(image::DynamicImage::ImageLuma8(GrayImage::from_pixel(
        w,
        h,
        Luma([v]),
    )))
}

fn encode(img: image::DynamicImage) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)
        .expect("encode png");
    buf.into_inner()
}

fn jpeg(w: u16, h: u16, rgb: Option<[u8; 3]>, gray: u8, progressive: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 95);
    enc.set_progressive(progressive);
    let n = w as usize * h as usize;
    match rgb {
        Some(c) => enc.encode(&c.repeat(n), w, h, jpeg_encoder::ColorType::Rgb),
        None => enc.encode(&vec![gray; n], w, h, jpeg_encoder::ColorType::Luma),
    }
    .expect("encode jpeg");
    out
}

/// BT.601 luma of a colour, as the loader computes it.
fn luma(c: [u8; 3]) -> f64 {
    (299.0 * c[0] as f64 + 587.0 * c[1] as f64 + 114.0 * c[2] as f64) / 1000.0 / 255.0
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let f = Fixture {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        for sub in [
            "CT_COVID",
            "CT_NonCOVID",
            "Data-split/COVID",
            "Data-split/NonCOVID",
        ] {
            std::fs::create_dir_all(f.root().join(sub)).expect("mkdir");
        }
        f
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn put(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.root().join(rel);
        std::fs::write(&p, bytes).expect("write fixture");
        p
    }

    fn list(&self, class: &str, split: &str, text: &str) {
        self.put(
            &format!("Data-split/{class}/{split}CT_{class}.txt"),
            text.as_bytes(),
        );
    }

    /// The quirky-but-valid dataset: 6 COVID and 4 NonCOVID images.
    fn quirky() -> Self {
        let f = Fixture::new();
        f.put("CT_COVID/rgb.png", &png_rgb(40, 30, [200, 100, 50]));
        f.put("CT_COVID/rgba.png", &png_rgba(33, 47, [10, 200, 30, 128]));
        f.put("CT_COVID/gray.png", &png_gray(64, 64, 77));
        f.put(
            "CT_COVID/2020.03.16.20035105-p6-64-1.png",
            &jpeg(50, 40, Some([90, 180, 200]), 0, false),
        );
        f.put(
            "CT_COVID/progressive-jpeg.png",
            &jpeg(61, 148, None, 150, true),
        );
        f.put(
            &format!("CT_COVID/{LONG}"),
            &png_rgb(148, 61, [255, 255, 255]),
        );
        f.put(
            "CT_NonCOVID/base.jpg",
            &jpeg(139, 102, Some([30, 30, 30]), 0, false),
        );
        f.put("CT_NonCOVID/prog-gray.jpg", &jpeg(80, 60, None, 222, true));
        f.put(
            "CT_NonCOVID/prog-rgb.jpg",
            &jpeg(70, 90, Some([120, 60, 240]), 0, true),
        );
        f.put("CT_NonCOVID/plain.png", &png_gray(20, 20, 0));
        f.put("CT_NonCOVID/notes.txt", b"not an image, not listed");
        // COVID lists: LF, no final newline. NonCOVID lists: CRLF, blank lines, spaces.
        f.list("COVID", "train", &format!("rgb.png\nrgba.png\n{LONG}"));
        f.list("COVID", "val", "gray.png");
        f.list(
            "COVID",
            "test",
            "2020.03.16.20035105-p6-64-1.png\nprogressive-jpeg.png",
        );
        f.list("NonCOVID", "train", "base.jpg\r\n\r\n prog-gray.jpg \r\n");
        f.list("NonCOVID", "val", "prog-rgb.jpg\r\n");
        f.list("NonCOVID", "test", "plain.png");
        f
    }
}

fn mean_of(ds: &ganaug_data::TensorDataset, name: &str) -> f64 {
    let i = ds
        .names
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("{name} not loaded"));
    ds.images.get(i as i64).mean(Kind::Float).double_value(&[])
}

#[test]
fn quirky_files_all_load_with_the_right_splits_and_values() {
    let f = Fixture::quirky();
    let folder = ImageFolder::open(f.root(), &FolderConfig::covid_ct()).expect("open");
    assert_eq!(folder.origin(), &SplitOrigin::Lists);
    assert_eq!(folder.counts(Split::Train), vec![3, 2]);
    assert_eq!(folder.counts(Split::Val), vec![1, 1]);
    assert_eq!(folder.counts(Split::Test), vec![2, 1]);
    let splits = folder
        .load_splits(&LoadOptions::with_size(32))
        .expect("load");
    assert_eq!(splits.report.decoded, 10);
    assert_eq!(splits.train.images.size(), [5, 1, 32, 32]);
    assert_eq!(splits.train.labels.kind(), Kind::Int64);
    assert_eq!(splits.train.class_counts(), vec![3, 2]);
    let all = [&splits.train, &splits.val, &splits.test];
    for ds in all {
        let (lo, hi) = (
            ds.images.min().double_value(&[]),
            ds.images.max().double_value(&[]),
        );
        assert!(lo >= 0.0 && hi <= 1.0, "{lo} {hi}");
    }
    // Solid colours come out as their BT.601 gray level, whatever the container.
    let close =
        |got: f64, want: f64, tol: f64| assert!((got - want).abs() < tol, "got {got}, want {want}");
    close(
        mean_of(&splits.train, "rgb.png"),
        luma([200, 100, 50]),
        1.0 / 255.0,
    );
    close(
        mean_of(&splits.train, "rgba.png"),
        luma([10, 200, 30]),
        1.0 / 255.0,
    );
    close(mean_of(&splits.train, LONG), 1.0, 1e-6);
    close(mean_of(&splits.val, "gray.png"), 77.0 / 255.0, 1e-6);
    close(
        mean_of(&splits.test, "2020.03.16.20035105-p6-64-1.png"),
        luma([90, 180, 200]),
        4.0 / 255.0,
    );
    close(
        mean_of(&splits.test, "progressive-jpeg.png"),
        150.0 / 255.0,
        3.0 / 255.0,
    );
    close(
        mean_of(&splits.train, "prog-gray.jpg"),
        222.0 / 255.0,
        3.0 / 255.0,
    );
    close(
        mean_of(&splits.val, "prog-rgb.jpg"),
        luma([120, 60, 240]),
        4.0 / 255.0,
    );
    close(
        mean_of(&splits.train, "base.jpg"),
        luma([30, 30, 30]),
        3.0 / 255.0,
    );
}

#[test]
fn stratified_split_without_lists_is_seeded_and_disjoint() {
    let f = Fixture::new();
    for i in 0..20 {
        f.put(&format!("CT_COVID/c{i:02}.png"), &png_gray(8, 8, i as u8));
    }
    for i in 0..10 {
        f.put(
            &format!("CT_NonCOVID/n{i:02}.png"),
            &png_gray(8, 8, 100 + i as u8),
        );
    }
    let cfg = FolderConfig::covid_ct().with_ratios([0.6, 0.2, 0.2], 7);
    let a = ImageFolder::open(f.root(), &cfg).expect("open");
    assert_eq!(a.origin(), &SplitOrigin::Ratios { seed: 7 });
    assert_eq!(a.counts(Split::Train), vec![12, 6]);
    assert_eq!(a.counts(Split::Val), vec![4, 2]);
    assert_eq!(a.counts(Split::Test), vec![4, 2]);
    let b = ImageFolder::open(f.root(), &cfg).expect("open");
    assert_eq!(a.entries(), b.entries());
    let c =
        ImageFolder::open(f.root(), &cfg.clone().with_ratios([0.6, 0.2, 0.2], 8)).expect("open");
    assert_ne!(a.split(Split::Train), c.split(Split::Train));
    let mut names: Vec<_> = a.entries().iter().map(|e| e.path.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 30, "every image in exactly one split");
}

#[test]
fn resize_policies_apply_through_the_loader() {
    let f = Fixture::new();
    f.put("CT_COVID/wide.png", &png_rgb(100, 50, [255, 255, 255]));
    f.put("CT_NonCOVID/tall.png", &png_rgb(50, 100, [255, 255, 255]));
    let folder = ImageFolder::open(
        f.root(),
        &FolderConfig::covid_ct().with_ratios([1.0, 0.0, 0.0], 0),
    )
    .expect("open");
    let load = |policy| {
        let spec = ImageSpec {
            size: 20,
            policy,
            ..ImageSpec::default()
        };
        folder
            .load(Split::Train, &LoadOptions::default().with_spec(spec))
            .expect("load")
            .0
    };
    let pad = load(ResizePolicy::Pad);
    // Half of each padded image is black border.
    assert!((pad.images.mean(Kind::Float).double_value(&[]) - 0.5).abs() < 0.02);
    for policy in [ResizePolicy::Stretch, ResizePolicy::CenterCrop] {
        assert!((load(policy).images.mean(Kind::Float).double_value(&[]) - 1.0).abs() < 1e-6);
    }
}

/// Opens and loads `f` with the default config; returns the error.
fn load_err(f: &Fixture) -> DataError {
    let result = ImageFolder::open(f.root(), &FolderConfig::covid_ct())
        .and_then(|folder| folder.load_splits(&LoadOptions::with_size(16)).map(|_| ()));
    match result {
        Err(e) => e,
        Ok(()) => panic!("expected an error"),
    }
}

/// One valid image per class with complete lists; `bad` replaces the COVID test image.
fn with_bad_covid_image(bad: &[u8]) -> Fixture {
    let f = Fixture::new();
    f.put("CT_COVID/ok.png", &png_gray(16, 16, 1));
    f.put("CT_COVID/bad.png", bad);
    f.put("CT_NonCOVID/ok.png", &png_gray(16, 16, 2));
    f.list("COVID", "train", "ok.png");
    f.list("COVID", "val", "");
    f.list("COVID", "test", "bad.png");
    f.list("NonCOVID", "train", "ok.png");
    f.list("NonCOVID", "val", "");
    f.list("NonCOVID", "test", "");
    f
}

fn assert_names_bad_file(e: &DataError) {
    assert!(
        e.to_string().contains("bad.png"),
        "error must name the file: {e}"
    );
}

#[test]
fn empty_file_is_a_typed_error() {
    let e = load_err(&with_bad_covid_image(b""));
    assert!(matches!(e, DataError::EmptyFile { .. }), "{e:?}");
    assert_names_bad_file(&e);
}

#[test]
fn non_image_bytes_are_a_typed_error() {
    let e = load_err(&with_bad_covid_image(b"GIF89a not what we read"));
    assert!(matches!(e, DataError::UnknownFormat { .. }), "{e:?}");
    assert_names_bad_file(&e);
}

#[test]
fn truncated_png_and_jpeg_are_decode_errors() {
    let png = png_rgb(64, 64, [1, 2, 3]);
    let jpg = jpeg(64, 64, Some([9, 99, 199]), 0, false);
    let pjpg = jpeg(64, 64, None, 99, true);
    for bytes in [
        &png[..png.len() / 2],
        &jpg[..jpg.len() / 2],
        &pjpg[..pjpg.len() / 2],
    ] {
        let e = load_err(&with_bad_covid_image(bytes));
        assert!(matches!(e, DataError::Decode { .. }), "{e:?}");
        assert_names_bad_file(&e);
    }
}

#[test]
fn corrupt_png_data_is_a_decode_error() {
    let mut png = png_rgb(64, 64, [1, 2, 3]);
    let n = png.len();
    // Scramble the compressed pixel data (keep the signature and header).
    for b in &mut png[60..n - 20] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    let e = load_err(&with_bad_covid_image(&png));
    assert!(matches!(e, DataError::Decode { .. }), "{e:?}");
}

/// A 1x1 PNG whose header claims `w x h` (with a valid header CRC): a decompression bomb's
/// signature, rejected before any pixel is decoded.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut png = png_gray(1, 1, 0);
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

#[test]
fn oversized_images_are_refused_before_decoding() {
    let e = load_err(&with_bad_covid_image(&png_claiming(60_000, 60_000)));
    match &e {
        DataError::TooLarge { width, height, .. } => {
            assert_eq!((*width, *height), (60_000, 60_000))
        }
        other => panic!("{other:?}"),
    }
    assert_names_bad_file(&e);
    // The limit is configurable: a modest image over a tiny limit is refused too.
    let f = with_bad_covid_image(&png_gray(40, 40, 3));
    let folder = ImageFolder::open(f.root(), &FolderConfig::covid_ct()).expect("open");
    let spec = ImageSpec {
        max_pixels: 1000,
        ..ImageSpec::with_size(8)
    };
    let r = folder.load_splits(&LoadOptions::default().with_spec(spec));
    assert!(
        matches!(r, Err(DataError::TooLarge { limit: 1000, .. })),
        "{r:?}"
    );
}

#[test]
fn skip_mode_loads_the_rest_and_reports_bad_files() {
    let f = with_bad_covid_image(b"\x89PNG\r\n\x1a\ntruncated");
    let folder = ImageFolder::open(f.root(), &FolderConfig::covid_ct()).expect("open");
    let opts = LoadOptions::with_size(16).with_on_bad_file(OnBadFile::Skip);
    let splits = folder.load_splits(&opts).expect("skip mode loads");
    assert_eq!(splits.train.len(), 2);
    assert_eq!(splits.test.len(), 0);
    assert_eq!(splits.report.skipped.len(), 1);
    assert!(splits.report.skipped[0].path.ends_with("CT_COVID/bad.png"));
    assert!(matches!(
        splits.report.skipped[0].error,
        DataError::Decode { .. }
    ));
}

#[test]
fn missing_folders_and_empty_classes_are_typed_errors() {
    let gone = ImageFolder::open("/definitely/not/here", &FolderConfig::covid_ct());
    assert!(
        matches!(gone, Err(DataError::MissingDir { .. })),
        "{gone:?}"
    );
    let f = Fixture::new();
    std::fs::remove_dir(f.root().join("CT_NonCOVID")).expect("rm");
    f.put("CT_COVID/a.png", &png_gray(4, 4, 0));
    match ImageFolder::open(f.root(), &FolderConfig::covid_ct()) {
        Err(DataError::MissingDir { path, .. }) => assert!(path.ends_with("CT_NonCOVID")),
        other => panic!("{other:?}"),
    }
    std::fs::create_dir(f.root().join("CT_NonCOVID")).expect("mkdir");
    f.put("CT_NonCOVID/readme.txt", b"no images here");
    match ImageFolder::open(f.root(), &FolderConfig::covid_ct()) {
        Err(DataError::EmptyClass { class, .. }) => assert_eq!(class, "NonCOVID"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn list_problems_are_typed_errors_naming_list_and_line() {
    let base = || {
        let f = Fixture::new();
        for name in ["a.png", "b.png", "c.png"] {
            f.put(&format!("CT_COVID/{name}"), &png_gray(4, 4, 0));
            f.put(&format!("CT_NonCOVID/{name}"), &png_gray(4, 4, 9));
        }
        for s in ["train", "val", "test"] {
            f.list("NonCOVID", s, "");
        }
        f
    };
    let open = |f: &Fixture| ImageFolder::open(f.root(), &FolderConfig::covid_ct());

    let f = base();
    f.list("COVID", "train", "a.png\nmissing.png");
    f.list("COVID", "val", "b.png");
    f.list("COVID", "test", "c.png");
    match open(&f) {
        Err(DataError::ListedFileMissing { line: 2, name, .. }) => assert_eq!(name, "missing.png"),
        other => panic!("{other:?}"),
    }
    let skipping = ImageFolder::open(
        f.root(),
        &FolderConfig::covid_ct().with_on_bad_file(OnBadFile::Skip),
    )
    .expect("skip mode opens");
    assert_eq!(skipping.skipped().len(), 1);
    assert_eq!(skipping.counts(Split::Train), vec![1, 0]);

    f.list("COVID", "train", "a.png\na.png");
    assert!(matches!(
        open(&f),
        Err(DataError::DuplicateEntry {
            first_line: 1,
            second_line: 2,
            ..
        })
    ));

    f.list("COVID", "train", "a.png");
    f.list("COVID", "test", "c.png\na.png");
    match open(&f) {
        Err(e @ DataError::DuplicateEntry { .. }) => {
            assert!(e.to_string().contains("trainCT_COVID.txt:1"))
        }
        other => panic!("{other:?}"),
    }

    f.list("COVID", "test", "../CT_NonCOVID/c.png");
    assert!(matches!(
        open(&f),
        Err(DataError::EscapingEntry { line: 1, .. })
    ));

    std::fs::remove_file(f.root().join("Data-split/COVID/testCT_COVID.txt")).expect("rm");
    match open(&f) {
        Err(DataError::IncompleteSplitLists {
            present: 5,
            missing,
        }) => assert_eq!(missing.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn cache_hits_and_invalidation_by_content() {
    let f = Fixture::quirky();
    let cache = tempfile::tempdir().expect("tempdir");
    let folder = ImageFolder::open(f.root(), &FolderConfig::covid_ct()).expect("open");
    let opts = LoadOptions::with_size(24).with_cache(cache.path());
    let first = folder.load_splits(&opts).expect("cold");
    assert_eq!((first.report.decoded, first.report.from_cache), (10, 0));
    let second = folder.load_splits(&opts).expect("warm");
    assert_eq!((second.report.decoded, second.report.from_cache), (0, 10));
    assert!(second.train.images.equal(&first.train.images));
    assert!(second.test.images.equal(&first.test.images));
    assert_eq!(second.train.names, first.train.names);

    // Another spec is another cache entry: no stale hit at the wrong size.
    let other = folder
        .load_splits(&LoadOptions::with_size(12).with_cache(cache.path()))
        .expect("other size");
    assert_eq!(other.report.decoded, 10);
    assert_eq!(other.train.images.size()[2..], [12, 12]);

    // A changed file misses; the others still hit; the new content is what loads.
    f.put("CT_COVID/gray.png", &png_gray(64, 64, 200));
    let third = folder.load_splits(&opts).expect("after change");
    assert_eq!((third.report.decoded, third.report.from_cache), (1, 9));
    assert!((mean_of(&third.val, "gray.png") - 200.0 / 255.0).abs() < 1e-6);

    // A corrupt cache file is ignored and rebuilt, never an error.
    let cache_file = third.report.cache_file.clone().expect("cache file");
    std::fs::write(&cache_file, b"garbage").expect("corrupt the cache");
    let fourth = folder
        .load_splits(&opts)
        .expect("corrupt cache is not fatal");
    assert_eq!(fourth.report.decoded, 10);
    assert!(fourth.report.cache_note.is_some());
    assert!(fourth.train.images.equal(&third.train.images));
    let fifth = folder.load_splits(&opts).expect("rebuilt");
    assert_eq!(fifth.report.from_cache, 10);
}

#[test]
fn exported_phantom_reads_back_as_an_image_folder() {
    let splits = ganaug_data::phantom_splits(
        &ganaug_data::PhantomConfig::tiny(32, 4, 1),
        tch::Device::Cpu,
    )
    .expect("phantom");
    let dir = tempfile::tempdir().expect("tempdir");
    let written =
        ganaug_data::io::export_image_folder(&splits.train, dir.path(), false).expect("export");
    assert_eq!(written.len(), 8);
    let again = ganaug_data::io::export_image_folder(&splits.train, dir.path(), false);
    assert!(
        matches!(again, Err(DataError::WouldOverwrite { .. })),
        "must not overwrite without being asked"
    );
    let cfg = FolderConfig::plain(&["COVID", "NonCOVID"]).with_ratios([1.0, 0.0, 0.0], 0);
    let folder = ImageFolder::open(dir.path(), &cfg).expect("open export");
    let (back, _) = folder
        .load(Split::Train, &LoadOptions::with_size(32))
        .expect("load export");
    assert_eq!(back.class_counts(), vec![4, 4]);
    // PNG quantises to 8 bits: within half a gray level of the original.
    for (i, name) in back.names.iter().enumerate() {
        let j = splits
            .train
            .names
            .iter()
            .position(|n| format!("{n}.png") == *name)
            .expect("name kept");
        let diff = (back.images.get(i as i64) - splits.train.images.get(j as i64))
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff <= 0.5 / 255.0 + 1e-6, "{name}: {diff}");
    }
}
