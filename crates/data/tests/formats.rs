//! Any class-folder dataset: formats (TIFF, BMP, WebP, CMYK JPEG), colour modes, layout
//! discovery, patient-grouped splits, and every kind of bad input a user's folder can hold —
//! each a typed error naming what was wrong, or a documented handling.

use std::path::Path;

use ganaug_data::{
    decode, ColorMode, DataError, DataSource, FolderConfig, FolderSource, GroupBy, ImageFolder,
    ImageSpec, Layout, LoadOptions, Split,
};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

fn rgb_image(w: u32, h: u32, c: [u8; 3]) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, Rgb(c)))
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, format).expect("encode");
    buf.into_inner()
}

fn cmyk_jpeg(w: u16, h: u16, cmyk: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    let enc = jpeg_encoder::Encoder::new(&mut out, 95);
    let n = w as usize * h as usize;
    enc.encode(&cmyk.repeat(n), w, h, jpeg_encoder::ColorType::Cmyk)
        .expect("encode cmyk");
    out
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, bytes).expect("write");
}

fn rgb_spec(size: u32) -> ImageSpec {
    ImageSpec::with_size(size).with_color(ColorMode::Rgb)
}

#[test]
fn tiff_bmp_webp_and_cmyk_jpeg_decode_gray_and_rgb() {
    let c = [200u8, 40, 90];
    let img = rgb_image(9, 7, c);
    let luma = ((299 * 200 + 587 * 40 + 114 * 90 + 500) / 1000) as u8;
    for format in [
        ImageFormat::Tiff,
        ImageFormat::Bmp,
        ImageFormat::WebP,
        ImageFormat::Png,
    ] {
        let bytes = encode(&img, format);
        let p = Path::new("x");
        let rgb = decode::decode_rgb(&bytes, p, 1 << 20).expect("rgb");
        assert_eq!(
            (rgb.width, rgb.height, rgb.channels),
            (9, 7, 3),
            "{format:?}"
        );
        assert_eq!(&rgb.pixels[..3], &c, "{format:?}");
        let gray = decode::decode_gray(&bytes, p, 1 << 20).expect("gray");
        assert_eq!(gray.channels, 1);
        assert!(gray.pixels.iter().all(|&v| v == luma), "{format:?}");
    }
    // CMYK (Adobe) JPEG: refused before as "Unimplemented colorspace mapping from CMYK to Luma".
    let bytes = cmyk_jpeg(16, 8, [0, 255, 255, 0]);
    let rgb = decode::decode_rgb(&bytes, Path::new("cmyk.jpg"), 1 << 20).expect("cmyk rgb");
    assert_eq!(rgb.channels, 3);
    let gray = decode::decode_gray(&bytes, Path::new("cmyk.jpg"), 1 << 20).expect("cmyk gray");
    assert_eq!(gray.pixels.len(), 16 * 8);
    // Whatever the CMYK convention, gray is the luma of the decoded RGB.
    let (r, g, b) = (
        rgb.pixels[0] as u32,
        rgb.pixels[1] as u32,
        rgb.pixels[2] as u32,
    );
    let want = ((299 * r + 587 * g + 114 * b + 500) / 1000) as u8;
    assert!(
        gray.pixels[0].abs_diff(want) <= 1,
        "{} vs {want}",
        gray.pixels[0]
    );
}

#[test]
fn class_folders_are_discovered_sorted_with_odd_names_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let names = ["zebra", "Ärzte & co", "a b#1"];
    for (k, n) in names.iter().enumerate() {
        for i in 0..5 {
            let v = 40 * k as u8 + i as u8;
            write(
                dir.path(),
                &format!("{n}/{i}.png"),
                &encode(&rgb_image(8, 8, [v; 3]), ImageFormat::Png),
            );
        }
    }
    // Not classes: hidden folders, `splits/` and loose files.
    std::fs::create_dir_all(dir.path().join(".thumbs")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("splits")).expect("mkdir");
    write(dir.path(), "README.txt", b"notes");
    let (cfg, layout) = FolderConfig::discover(dir.path()).expect("discover");
    assert_eq!(layout, Layout::ClassFolders);
    let got: Vec<&str> = cfg.classes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        got,
        ["a b#1", "zebra", "Ärzte & co"],
        "sorted by name, kept as they are"
    );
    let folder = ImageFolder::open(dir.path(), &cfg).expect("open");
    assert_eq!(folder.entries().len(), 15);
    // --classes: a subset in a chosen order; an unknown name lists the classes there are.
    let two = cfg
        .clone()
        .with_classes(&["zebra".into(), "a b#1".into()])
        .expect("subset");
    assert_eq!(two.classes[0].name, "zebra");
    let err = cfg
        .with_classes(&["zebra".into(), "horse".into()])
        .expect_err("unknown");
    assert!(
        err.to_string().contains("horse") && err.to_string().contains("zebra"),
        "{err}"
    );
}

#[test]
fn split_lists_of_a_class_folder_layout_are_used_when_all_present() {
    let dir = tempfile::tempdir().expect("tempdir");
    for class in ["a", "b"] {
        for i in 0..3 {
            write(
                dir.path(),
                &format!("{class}/{i}.png"),
                &encode(&rgb_image(4, 4, [9; 3]), ImageFormat::Png),
            );
        }
        for (split, name) in [("train", "0.png"), ("val", "1.png"), ("test", "2.png")] {
            write(
                dir.path(),
                &format!("splits/{class}/{split}.txt"),
                name.as_bytes(),
            );
        }
    }
    let (cfg, _) = FolderConfig::discover(dir.path()).expect("discover");
    let folder = ImageFolder::open(dir.path(), &cfg).expect("open");
    assert_eq!(*folder.origin(), ganaug_data::SplitOrigin::Lists);
    assert_eq!(folder.counts(Split::Test), vec![1, 1]);
    // One list missing of six: an error, not a silent ratio split.
    std::fs::remove_file(dir.path().join("splits/b/test.txt")).expect("rm");
    match ImageFolder::open(dir.path(), &cfg) {
        Err(DataError::IncompleteSplitLists { present: 5, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_patient_key_keeps_each_patients_slices_in_one_split() {
    let dir = tempfile::tempdir().expect("tempdir");
    let png = encode(&rgb_image(4, 4, [100; 3]), ImageFormat::Png);
    for p in 0..12 {
        let class = if p % 2 == 0 { "sick" } else { "well" };
        for s in 0..4 {
            write(
                dir.path(),
                &format!("{class}/patient{p:02}_slice{s}.png"),
                &png,
            );
        }
    }
    let (cfg, _) = FolderConfig::discover(dir.path()).expect("discover");
    let grouped = cfg.with_group_by(GroupBy::Pattern(r"^(patient\d+)_".into()));
    let folder = ImageFolder::open(dir.path(), &grouped).expect("open");
    let mut split_of = std::collections::HashMap::new();
    for e in folder.entries() {
        let patient = e.name[..9].to_string();
        assert_eq!(
            *split_of.entry(patient.clone()).or_insert(e.split),
            e.split,
            "{patient}"
        );
    }
    assert!(folder.counts(Split::Train).iter().all(|&n| n > 0));
    // A file the pattern cannot key is an error naming it.
    write(dir.path(), "sick/scan.png", &png);
    let err = ImageFolder::open(dir.path(), &grouped).expect_err("no key");
    assert!(err.to_string().contains("scan.png"), "{err}");
}

#[test]
fn mixed_gray_and_colour_files_decide_rgb_and_gray_ones_are_repeated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gray = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(6, 6, image::Luma([77])));
    write(dir.path(), "a/gray.png", &encode(&gray, ImageFormat::Png));
    write(
        dir.path(),
        "a/red.png",
        &encode(&rgb_image(6, 6, [250, 10, 10]), ImageFormat::Png),
    );
    write(
        dir.path(),
        "b/gray.bmp",
        &encode(&gray.to_rgb8().into(), ImageFormat::Bmp),
    );
    write(
        dir.path(),
        "b/small.png",
        &encode(&rgb_image(3, 5, [1, 2, 3]), ImageFormat::Png),
    );
    let data = DataSource::folder_or_phantom(Some(dir.path())).expect("discover");
    let split = data.load(8, tch::Device::Cpu).expect("load");
    let d = split.report.color.as_ref().expect("auto");
    assert_eq!(d.mode, ColorMode::Rgb);
    assert_eq!(d.colour_images, 1, "{d}");
    assert!(
        d.to_string().contains("red.png"),
        "names the colour file: {d}"
    );
    // Different sizes are all resized to the spec's square (documented).
    for ds in [&split.train, &split.val, &split.test] {
        assert_eq!(ds.image_size(), (8, 8));
        assert_eq!(ds.channels(), 3);
    }
}

#[test]
fn a_single_class_or_no_class_folder_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    match FolderConfig::discover(dir.path()) {
        Err(DataError::Classes { reason, .. }) => assert!(reason.contains("no class"), "{reason}"),
        other => panic!("{other:?}"),
    }
    write(
        dir.path(),
        "only/x.png",
        &encode(&rgb_image(4, 4, [1; 3]), ImageFormat::Png),
    );
    match FolderConfig::discover(dir.path()) {
        Err(DataError::Classes { reason, .. }) => {
            assert!(reason.contains("one class folder (only)"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // An empty class folder: the class is named.
    std::fs::create_dir_all(dir.path().join("empty")).expect("mkdir");
    let (cfg, _) = FolderConfig::discover(dir.path()).expect("two folders");
    match ImageFolder::open(dir.path(), &cfg) {
        Err(DataError::EmptyClass { class, .. }) => assert_eq!(class, "empty"),
        other => panic!("{other:?}"),
    }
}

#[cfg(unix)]
#[test]
fn a_class_folder_name_that_is_not_utf8_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("good")).expect("mkdir");
    let bad = std::ffi::OsStr::from_bytes(b"bad\xff");
    std::fs::create_dir_all(dir.path().join(bad)).expect("mkdir");
    match FolderConfig::discover(dir.path()) {
        Err(e @ DataError::Classes { .. }) => assert!(e.to_string().contains("not UTF-8"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[cfg(unix)]
#[test]
fn symbolic_links_leading_outside_the_dataset_are_refused() {
    let outside = tempfile::tempdir().expect("outside");
    let secret = outside.path().join("secret.png");
    std::fs::write(&secret, encode(&rgb_image(4, 4, [5; 3]), ImageFormat::Png)).expect("write");
    let dir = tempfile::tempdir().expect("tempdir");
    let png = encode(&rgb_image(4, 4, [9; 3]), ImageFormat::Png);
    write(dir.path(), "a/x.png", &png);
    write(dir.path(), "b/y.png", &png);
    // A link inside the dataset is fine.
    std::os::unix::fs::symlink(dir.path().join("a/x.png"), dir.path().join("b/x-again.png"))
        .expect("link");
    let (cfg, _) = FolderConfig::discover(dir.path()).expect("discover");
    assert_eq!(
        ImageFolder::open(dir.path(), &cfg)
            .expect("inside")
            .entries()
            .len(),
        3
    );
    // A file link, and a class folder link, to outside: refused.
    std::os::unix::fs::symlink(&secret, dir.path().join("a/leak.png")).expect("link");
    match ImageFolder::open(dir.path(), &cfg) {
        Err(e @ DataError::OutsideRoot { .. }) => {
            assert!(e.to_string().contains("leak.png"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_file(dir.path().join("a/leak.png")).expect("rm");
    std::os::unix::fs::symlink(outside.path(), dir.path().join("c")).expect("dir link");
    let (cfg, _) = FolderConfig::discover(dir.path()).expect("discover");
    assert!(matches!(
        ImageFolder::open(dir.path(), &cfg),
        Err(DataError::OutsideRoot { .. })
    ));
}

#[test]
fn rgb_loads_through_the_cache_identically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("cache");
    for (k, c) in [[200u8, 30, 30], [30, 200, 30]].iter().enumerate() {
        for i in 0..4 {
            write(
                dir.path(),
                &format!("c{k}/{i}.png"),
                &encode(&rgb_image(10, 6, *c), ImageFormat::Png),
            );
        }
    }
    let (cfg, _) = FolderConfig::discover(dir.path()).expect("discover");
    let folder = ImageFolder::open(dir.path(), &cfg).expect("open");
    let opts = LoadOptions::default()
        .with_spec(rgb_spec(8))
        .with_cache(cache.path());
    let cold = folder.load_splits(&opts).expect("cold");
    let warm = folder.load_splits(&opts).expect("warm");
    assert_eq!(cold.report.decoded, 8);
    assert_eq!(warm.report.from_cache, 8);
    for split in Split::ALL {
        let (a, b) = (cold.get(split), warm.get(split));
        assert_eq!(a.images.size()[1], 3);
        assert_eq!(a.fingerprint().expect("fp"), b.fingerprint().expect("fp"));
    }
    // The planes hold the channels: R of class 0 is 200/255.
    let r = cold
        .train
        .class_subset(0)
        .expect("class 0")
        .images
        .select(1, 0)
        .mean(tch::Kind::Float);
    assert!((r.double_value(&[]) - 200.0 / 255.0).abs() < 1e-6);
    // A gray load of the same folder goes to its own cache file.
    let gray = folder
        .load_splits(&LoadOptions::with_size(8).with_cache(cache.path()))
        .expect("gray");
    assert_eq!(gray.report.from_cache, 0);
    assert_eq!(gray.train.channels(), 1);
}

#[test]
fn a_covid_ct_folder_is_still_read_gray_with_its_lists() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("CT_COVID")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("CT_NonCOVID")).expect("mkdir");
    let f = FolderSource::discover(dir.path()).expect("discover");
    assert_eq!(f.layout, Layout::CovidCt);
    assert_eq!(f.color, ColorMode::Gray);
    assert!(f.is_covid_ct());
    assert!(DataSource::Folder(Box::new(f))
        .describe()
        .starts_with("COVID-CT at "));
}

fn png16(w: u32, h: u32, values: &[u16]) -> Vec<u8> {
    let img =
        image::ImageBuffer::<image::Luma<u16>, _>::from_raw(w, h, values.to_vec()).expect("buffer");
    encode(&DynamicImage::ImageLuma16(img), ImageFormat::Png)
}

#[test]
fn sixteen_bit_files_keep_full_precision_through_the_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("cache");
    let values: Vec<u16> = (0..16).map(|i| 30_000 + 13 * i).collect();
    for class in ["a", "b"] {
        for i in 0..3 {
            write(
                dir.path(),
                &format!("{class}/{i}.png"),
                &png16(4, 4, &values),
            );
        }
    }
    // A 16-bit TIFF is found from its header too; an 8-bit PNG beside them is widened exactly.
    let tiff =
        image::ImageBuffer::<image::Luma<u16>, _>::from_raw(4, 4, values.clone()).expect("buffer");
    write(
        dir.path(),
        "a/t.tif",
        &encode(&DynamicImage::ImageLuma16(tiff), ImageFormat::Tiff),
    );
    let eight = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(4, 4, image::Luma([51])));
    write(dir.path(), "b/eight.png", &encode(&eight, ImageFormat::Png));
    assert!(decode::is_high_bit_depth(&dir.path().join("a/t.tif")).expect("tiff header"));
    assert!(!decode::is_high_bit_depth(&dir.path().join("b/eight.png")).expect("png header"));

    let (cfg, _) = FolderConfig::discover(dir.path()).expect("discover");
    let folder = ImageFolder::open(dir.path(), &cfg).expect("open");
    let spec = ImageSpec {
        filter: ganaug_data::ResizeFilter::Nearest,
        depth: ganaug_data::Depth::Auto,
        ..ImageSpec::with_size(4)
    };
    let opts = LoadOptions::default()
        .with_spec(spec)
        .with_cache(cache.path());
    let cold = folder.load_splits(&opts).expect("cold");
    let d = cold.report.depth.as_ref().expect("decided");
    assert_eq!(d.depth, ganaug_data::Depth::Sixteen, "{d}");
    assert_eq!(d.high_depth_files, 7, "{d}");
    let warm = folder.load_splits(&opts).expect("warm");
    assert_eq!(warm.report.from_cache, 8);
    let all = tch::Tensor::cat(
        &[&warm.train.images, &warm.val.images, &warm.test.images],
        0,
    );
    let names: Vec<&String> = [&warm.train, &warm.val, &warm.test]
        .iter()
        .flat_map(|d| d.names.iter())
        .collect();
    for (i, name) in names.iter().enumerate() {
        let got: Vec<f32> = Vec::try_from(all.get(i as i64).flatten(0, -1)).expect("values");
        if name.as_str() == "eight.png" {
            assert!(
                got.iter().all(|&v| v == 51.0 / 255.0),
                "8-bit widened exactly"
            );
        } else {
            let want: Vec<f32> = values.iter().map(|&v| f32::from(v) / 65535.0).collect();
            assert_eq!(got, want, "{name}: every 16-bit level kept");
        }
    }
    // At 8 bits the same files lose their low bits (30000 and 30013 are both 117/255).
    let eight_bit = folder
        .load_splits(&LoadOptions::default().with_spec(ImageSpec {
            depth: ganaug_data::Depth::Eight,
            ..spec
        }))
        .expect("8-bit");
    assert_eq!(eight_bit.report.depth, None);
}
