//! A set file holds a program's images exactly: written from memory (or from a stream) and
//! read back as a stream, the same `f32` values bit for bit — values 8 or 16 bits could not
//! hold —, labels, names, classes and fingerprint; subsets stay streamed. A file that is not a
//! set file, a damaged one, or one changed under a reader is a typed error naming it; a failed
//! write leaves the old file in place.

use std::path::Path;

use ganaug_data::stream::{
    fingerprint, for_each_batch, open_set_file, write_set_file, BatchPlan, ImageSource,
};
use ganaug_data::{BatchOrder, DataError, TensorDataset};
use tch::{Device, Kind, Tensor};

/// `n` images of `channels` × `side`² with values no 8- or 16-bit sample holds, two classes.
fn odd_values(n: i64, channels: i64, side: i64) -> TensorDataset {
    tch::manual_seed(3);
    let images = Tensor::rand([n, channels, side, side], (Kind::Float, Device::Cpu)) * 0.999 + 1e-4;
    let labels = Tensor::from_slice(&(0..n).map(|i| (i * 7) % 2).collect::<Vec<i64>>());
    TensorDataset::new(
        images,
        labels,
        (0..n).map(|i| format!("gan/{i:03}.png")).collect(),
        vec!["COVID".into(), "NonCOVID".into()],
        "a GAN's set",
    )
    .expect("dataset")
}

fn read_all(source: &dyn ImageSource) -> Tensor {
    let all: Vec<i64> = (0..source.len() as i64).collect();
    source.reader().expect("reader").read(&all).expect("read")
}

#[test]
fn a_set_file_reads_back_the_values_written_bit_for_bit() {
    let dir = tempfile::tempdir().expect("tempdir");
    for channels in [1, 3] {
        let set = odd_values(13, channels, 9);
        let path = dir.path().join(format!("set{channels}.safetensors"));
        write_set_file(&path, &set).expect("write");
        let stream = open_set_file(&path).expect("open");
        assert_eq!(ImageSource::len(&stream), 13);
        assert_eq!(stream.image_size(), (9, 9));
        assert_eq!(ImageSource::channels(&stream), channels);
        assert_eq!(stream.names(), &set.names[..]);
        assert_eq!(stream.class_names(), &set.class_names[..]);
        assert_eq!(stream.description(), "a GAN's set");
        assert!(stream.labels().equal(&set.labels));
        // not one value rounded: the images are the same tensor bit for bit
        assert!(read_all(&stream).equal(&set.images));
        assert_eq!(
            fingerprint(&stream).expect("fingerprint"),
            fingerprint(&set).expect("fingerprint")
        );
        // the same shuffled batches as the set in memory, read ahead or not
        for prefetch in [0, 2] {
            let plan = BatchPlan {
                prefetch,
                ..BatchPlan::new(4, BatchOrder::Shuffled { seed: 5 }, Device::Cpu)
            };
            let mut got = Vec::new();
            for_each_batch::<DataError>(&stream, plan, |b| {
                got.push((b.indices, b.images));
                Ok(())
            })
            .expect("batches");
            let mut want = Vec::new();
            for_each_batch::<DataError>(&set, plan, |b| {
                want.push((b.indices, b.images));
                Ok(())
            })
            .expect("batches");
            assert_eq!(got.len(), want.len());
            for ((ia, xa), (ib, xb)) in got.iter().zip(&want) {
                assert_eq!(ia, ib);
                assert!(xa.equal(xb), "batch {ia:?}");
            }
        }
        // a class of it, still streamed, and written again from the stream
        let class = stream.class_subset(1).expect("class");
        let again = dir.path().join(format!("class{channels}.safetensors"));
        write_set_file(&again, &class).expect("write from a stream");
        let class_back = open_set_file(&again).expect("open");
        let in_memory = set.class_subset(1).expect("class");
        assert!(read_all(&class_back).equal(&in_memory.images));
        assert_eq!(class_back.names(), &in_memory.names[..]);
    }
    // an empty set is a set of nothing, with its shape
    let empty = odd_values(4, 1, 5).subset(&[]).expect("empty");
    let path = dir.path().join("empty.safetensors");
    write_set_file(&path, &empty).expect("write");
    let back = open_set_file(&path).expect("open");
    assert_eq!(ImageSource::len(&back), 0);
    assert_eq!(back.image_size(), (5, 5));
}

fn set_error(path: &Path) -> DataError {
    open_set_file(path).expect_err("not a usable set file")
}

#[test]
fn files_that_are_not_set_files_and_changed_ones_are_named_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("set.safetensors");
    write_set_file(&path, &odd_values(6, 1, 4)).expect("write");

    // another safetensors file (a model's weights): no set metadata
    let weights = dir.path().join("weights.safetensors");
    let w = Tensor::zeros([2, 2], (Kind::Float, Device::Cpu));
    Tensor::write_safetensors(&[("w", &w)], &weights).expect("test io");
    let err = set_error(&weights);
    assert!(matches!(err, DataError::SetFile { .. }), "{err}");
    assert!(err.to_string().contains("weights.safetensors"), "{err}");

    // not safetensors at all, and a truncated set
    let text = dir.path().join("notes.safetensors");
    std::fs::write(&text, "hello").expect("test io");
    assert!(matches!(set_error(&text), DataError::SetFile { .. }));
    let bytes = std::fs::read(&path).expect("test io");
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).expect("test io");
    let err = set_error(&cut);
    assert!(matches!(err, DataError::SetFile { .. }), "{err}");

    // rewritten in place under a reader: named, not read as garbage
    let stream = open_set_file(&path).expect("open");
    let mut reader = stream.reader().expect("reader");
    let _ = reader.read(&[0, 5]).expect("read");
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 8]);
    std::fs::write(&path, &longer).expect("test io");
    let err = reader.read(&[0]).expect_err("changed under the reader");
    assert!(matches!(err, DataError::SetFile { .. }), "{err}");
    assert!(err.to_string().contains("set.safetensors"), "{err}");
    assert!(err.to_string().contains("changed"), "{err}");

    // a write whose images cannot be read fails, and the file it would replace stays
    let keep = dir.path().join("keep.safetensors");
    let kept = odd_values(3, 1, 4);
    write_set_file(&keep, &kept).expect("write");
    assert!(write_set_file(&keep, &stream).is_err());
    assert!(read_all(&open_set_file(&keep).expect("the old file")).equal(&kept.images));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("test io")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}
