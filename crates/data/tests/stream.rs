//! Streaming from the decode cache gives what the in-memory load gives: the same images (bit
//! for bit), labels, names and fingerprint, batches in the same seeded order with or without a
//! background reader; a warm stream decodes nothing; a cache rewritten in place under a
//! running stream is an error naming the file, a cache replaced by a new file is not.

use std::path::Path;

use ganaug_data::fixture::{write_class_folders, FixtureFormat, FolderFixture};
use ganaug_data::stream::{fingerprint, for_each_batch, BatchPlan, ImageSource};
use ganaug_data::{
    BatchOrder, ColorMode, DataError, Depth, ImageFolder, ImageSpec, LoadOptions, StreamDataset,
    TensorDataset,
};
use tch::{Device, Tensor};

fn discover(dir: &Path) -> ImageFolder {
    let (cfg, _) = ganaug_data::FolderConfig::discover(dir).expect("layout");
    ImageFolder::open(dir, &cfg).expect("folder")
}

fn options(cache: &Path, spec: ImageSpec) -> LoadOptions {
    LoadOptions::with_size(spec.size)
        .with_spec(spec)
        .with_cache(cache)
}

/// Every batch of `src` under `plan`: (indices, images, labels) on the CPU.
fn batches(src: &dyn ImageSource, plan: BatchPlan) -> Vec<(Vec<i64>, Tensor, Tensor)> {
    let mut out = Vec::new();
    for_each_batch::<DataError>(src, plan, |b| {
        out.push((b.indices, b.images, b.labels));
        Ok(())
    })
    .expect("batches");
    out
}

fn same_batches(a: &[(Vec<i64>, Tensor, Tensor)], b: &[(Vec<i64>, Tensor, Tensor)]) {
    assert_eq!(a.len(), b.len());
    for ((ia, xa, ya), (ib, xb, yb)) in a.iter().zip(b) {
        assert_eq!(ia, ib, "batch order");
        assert!(xa.equal(xb), "images of batch {ia:?}");
        assert!(ya.equal(yb), "labels of batch {ia:?}");
    }
}

fn check_same(memory: &TensorDataset, stream: &StreamDataset) {
    assert_eq!(memory.names, stream.names());
    assert!(memory.labels.equal(stream.labels()));
    assert_eq!(memory.channels(), ImageSource::channels(stream));
    let plan = BatchPlan {
        prefetch: 0,
        ..BatchPlan::new(5, BatchOrder::Shuffled { seed: 11 }, Device::Cpu)
    };
    let mem = batches(memory, plan);
    same_batches(&mem, &batches(stream, plan));
    // read ahead on a thread: the same batches
    same_batches(
        &mem,
        &batches(
            stream,
            BatchPlan {
                prefetch: 2,
                ..plan
            },
        ),
    );
    // the last, smaller batch left out
    let dropped = batches(
        stream,
        BatchPlan {
            drop_last: true,
            ..plan
        },
    );
    assert_eq!(dropped.len(), memory.len() / 5);
    assert_eq!(
        memory.fingerprint().expect("fingerprint"),
        fingerprint(stream).expect("fingerprint")
    );
    assert!(memory
        .images
        .equal(&stream.to_memory(Device::Cpu).expect("to memory").images));
}

#[test]
fn a_stream_holds_the_in_memory_loads_images_in_the_same_order() {
    for (format, color) in [
        (FixtureFormat::GrayPng, ColorMode::Gray),
        (FixtureFormat::RgbPng, ColorMode::Rgb),
        (FixtureFormat::RgbPng, ColorMode::Auto),
        (FixtureFormat::GrayPng, ColorMode::Auto),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        write_class_folders(dir.path(), &FolderFixture::new(3, 9, 24, format)).expect("fixture");
        let folder = discover(dir.path());
        let spec = ImageSpec::with_size(16).with_color(color);
        let (mem_cache, stream_cache) = (
            tempfile::tempdir().expect("test io"),
            tempfile::tempdir().expect("test io"),
        );
        let memory = folder
            .load_splits(&options(mem_cache.path(), spec))
            .expect("load");
        let cold = folder
            .stream_splits(&options(stream_cache.path(), spec))
            .expect("stream");
        assert_eq!(
            cold.report.decoded, 27,
            "{format:?} {color:?}: a cold cache decodes every image"
        );
        assert_eq!(
            memory.report.color.as_ref().map(|c| c.mode),
            cold.report.color.as_ref().map(|c| c.mode),
            "the same colour decision"
        );
        check_same(&memory.train, &cold.train);
        check_same(&memory.val, &cold.val);
        check_same(&memory.test, &cold.test);
        // warm: nothing decoded, and the in-memory load reads the stream's cache as its own
        let warm = folder
            .stream_splits(&options(stream_cache.path(), spec))
            .expect("stream");
        assert_eq!((warm.report.decoded, warm.report.from_cache % 27), (0, 0));
        let from_stream_cache = folder
            .load_splits(&options(stream_cache.path(), spec))
            .expect("load");
        assert_eq!(from_stream_cache.report.decoded, 0);
        assert!(from_stream_cache.train.images.equal(&memory.train.images));
        // no spill file is left behind
        let left: Vec<_> = std::fs::read_dir(stream_cache.path())
            .expect("test io")
            .map(|e| {
                e.expect("test io")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|n| n.contains("spill") || n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[test]
fn sixteen_bit_images_stream_at_sixteen_bits() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (c, class) in ["a", "b"].iter().enumerate() {
        let d = dir.path().join(class);
        std::fs::create_dir_all(&d).expect("test io");
        for i in 0..6u16 {
            let img = image::ImageBuffer::from_fn(12, 12, |x, y| {
                image::Luma([(x as u16 * 4099 + y as u16 * 257 + i * 1000 + c as u16 * 7) % 65535])
            });
            image::DynamicImage::ImageLuma16(img)
                .save(d.join(format!("{i}.png")))
                .expect("test io");
        }
    }
    let folder = discover(dir.path());
    let spec = ImageSpec::with_size(8)
        .with_color(ColorMode::Gray)
        .with_depth(Depth::Auto);
    let (a, b) = (
        tempfile::tempdir().expect("test io"),
        tempfile::tempdir().expect("test io"),
    );
    let memory = folder.load_splits(&options(a.path(), spec)).expect("load");
    let stream = folder
        .stream_splits(&options(b.path(), spec))
        .expect("stream");
    assert_eq!(
        stream.report.depth.as_ref().map(|d| d.depth),
        Some(Depth::Sixteen)
    );
    check_same(&memory.train, &stream.train);
}

#[test]
fn a_cache_rewritten_under_a_stream_is_named_a_replaced_one_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_class_folders(
        dir.path(),
        &FolderFixture::new(2, 6, 16, FixtureFormat::GrayPng),
    )
    .expect("fixture");
    let folder = discover(dir.path());
    let cache = tempfile::tempdir().expect("test io");
    let spec = ImageSpec::with_size(8).with_color(ColorMode::Gray);
    let s = folder
        .stream_splits(&options(cache.path(), spec))
        .expect("stream");
    let file = s.report.cache_file.clone().expect("a cache file");
    let all: Vec<i64> = (0..s.train.len() as i64).collect();
    let before = s.train.reader().expect("test io").read(&all).expect("read");

    // replaced atomically (what ganaug's own writes do): the stream keeps its mapped file
    let copy = cache.path().join("copy");
    std::fs::copy(&file, &copy).expect("test io");
    std::fs::rename(&copy, &file).expect("test io");
    assert!(before.equal(
        &s.train
            .reader()
            .expect("test io")
            .read(&all)
            .expect("still readable")
    ));

    // a stream opened now maps the new file; then the file is rewritten in place
    let s = folder
        .stream_splits(&options(
            cache.path(),
            ImageSpec::with_size(8).with_color(ColorMode::Gray),
        ))
        .expect("stream");
    let mut reader = s.train.reader().expect("test io");
    let _ = reader.read(&all).expect("read");
    let mut bytes = std::fs::read(&file).expect("test io");
    bytes.extend_from_slice(&[0; 8]);
    std::fs::write(&file, &bytes).expect("test io");
    let err = reader.read(&all).expect_err("changed under the stream");
    assert!(matches!(err, DataError::CacheChanged { .. }), "{err}");
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_stream_needs_a_cache_folder_and_an_error_stops_the_walk() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_class_folders(
        dir.path(),
        &FolderFixture::new(2, 8, 16, FixtureFormat::GrayPng),
    )
    .expect("fixture");
    let folder = discover(dir.path());
    let err = folder
        .stream_splits(&LoadOptions::with_size(8))
        .expect_err("no cache folder");
    assert!(err.to_string().contains("cache"), "{err}");
    let cache = tempfile::tempdir().expect("test io");
    let s = folder
        .stream_splits(&options(
            cache.path(),
            ImageSpec::with_size(8).with_color(ColorMode::Gray),
        ))
        .expect("stream");
    let mut seen = 0;
    let plan = BatchPlan::new(2, BatchOrder::Sequential, Device::Cpu);
    let r = for_each_batch(&s.train, plan, |_| {
        seen += 1;
        if seen == 2 {
            return Err(DataError::EmptyFile {
                path: "stop here".into(),
            });
        }
        Ok(())
    });
    assert!(r.is_err() && seen == 2, "{seen}");
}

#[test]
fn the_switch_decides_by_size_against_available_memory_and_says_so() {
    use ganaug_data::{DataSource, PhantomConfig, Streaming};
    let err = Streaming::parse("sometimes")
        .expect_err("not a mode")
        .to_string();
    assert!(err.contains("sometimes"), "{err}");
    assert!(Streaming::On.decide(10, 1, 8).stream);
    assert!(!Streaming::Off.decide(10_000_000, 3, 224).stream);
    let tiny = Streaming::Auto.decide(10, 1, 8);
    assert!(!tiny.stream, "{tiny}");
    let huge = Streaming::Auto.decide(100_000_000, 3, 1024);
    assert_eq!(huge.stream, huge.available.is_some(), "{huge}");
    assert!(huge.to_string().contains("GB as f32"), "{huge}");
    // the phantom is generated in memory: on is refused, auto keeps it in memory
    let phantom = DataSource::Phantom(PhantomConfig::tiny(16, 4, 2));
    let spec = ImageSpec::with_size(16);
    let err = phantom
        .open_spec(spec, Device::Cpu, Streaming::On)
        .expect_err("the phantom does not stream")
        .to_string();
    assert!(err.contains("phantom"), "{err}");
    let (splits, decision) = phantom
        .open_spec(spec, Device::Cpu, Streaming::Auto)
        .expect("in memory");
    assert!(!decision.stream);
    assert!(splits.get(ganaug_data::Split::Train).in_memory().is_some());
}
