//! Opening DICOM files: with the 128-byte preamble and meta group, or as a raw data set (no
//! preamble, no meta: the transfer syntax read from its first element); checking that the
//! transfer syntax can be decoded by this build; reading where a file sits in a volume.

use std::io::Read;
use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::{DefaultDicomObject, FileMetaTableBuilder, InMemDicomObject};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::syntax::{self, remedy};
use super::{fail, raw_dataset_syntax, SliceInfo};
use crate::{DataError, Result};

/// A DICOM file from its bytes: `DICM` at 128 (the standard's form), `DICM` at 0 (a file
/// written without preamble) or a raw data set.
pub(crate) fn open(bytes: &[u8], path: &Path) -> Result<DefaultDicomObject> {
    let body = if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        &bytes[128..]
    } else if bytes.starts_with(b"DICM") {
        bytes
    } else {
        return open_raw(bytes, path);
    };
    dicom_object::OpenFileOptions::new()
        .from_reader(body)
        .map_err(|e| fail(path, e))
}

/// A data set without meta group, in the transfer syntax its first element implies, given the
/// meta group it lacks (a secondary-capture SOP class when it names none).
fn open_raw(bytes: &[u8], path: &Path) -> Result<DefaultDicomObject> {
    let uid = raw_dataset_syntax(bytes).ok_or_else(|| {
        fail(
            path,
            "no DICM marker at byte 128 or 0, and not a raw data set (a first element in \
             group 0008)",
        )
    })?;
    let ts = TransferSyntaxRegistry
        .get(uid)
        .ok_or_else(|| fail(path, format!("transfer syntax {uid} is not registered")))?;
    let obj = InMemDicomObject::read_dataset_with_ts(bytes, ts).map_err(|e| {
        fail(
            path,
            format!("raw data set (no meta group, read as {}): {e}", ts.name()),
        )
    })?;
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uid)
        .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
        .media_storage_sop_instance_uid("2.25.0");
    obj.with_meta(meta).map_err(|e| fail(path, e))
}

/// A DICOM file's header: everything before the pixel data (which is not read, except for a
/// raw data set, read whole).
fn header(path: &Path) -> Result<DefaultDicomObject> {
    let mut head = Vec::with_capacity(132);
    std::fs::File::open(path)
        .and_then(|f| f.take(132).read_to_end(&mut head))
        .map_err(|e| DataError::io(path, e))?;
    if head.len() == 132 && &head[128..] == b"DICM" {
        return dicom_object::OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(path)
            .map_err(|e| fail(path, e));
    }
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    open(&bytes, path)
}

/// The transfer syntax UID of an object (without the padding NUL).
pub(crate) fn syntax_uid(obj: &DefaultDicomObject) -> &str {
    obj.meta().transfer_syntax().trim_end_matches(['\0', ' '])
}

/// Refuses a transfer syntax whose pixel data this build cannot decode, naming it and what
/// would read it.
pub(crate) fn check_syntax(obj: &DefaultDicomObject, path: &Path) -> Result<()> {
    let uid = syntax_uid(obj);
    let unsupported = |encoding: String, remedy: String| DataError::UnsupportedEncoding {
        path: path.into(),
        encoding,
        remedy,
    };
    let Some(ts) = TransferSyntaxRegistry.get(uid) else {
        return Err(unsupported(
            format!("unknown DICOM transfer syntax {uid}"),
            remedy(uid),
        ));
    };
    if ts.is_unsupported_pixel_encapsulation() || !ts.can_decode_all() {
        return Err(unsupported(
            format!("DICOM transfer syntax {} ({uid})", ts.name()),
            remedy(uid),
        ));
    }
    if uid == syntax::JPEG_EXTENDED && int(obj, tags::BITS_STORED).unwrap_or(8) > 8 {
        return Err(unsupported(
            format!(
                "12-bit lossy JPEG, DICOM transfer syntax {} ({uid})",
                ts.name()
            ),
            "no maintained pure-Rust decoder reads 12-bit lossy JPEG: convert the file to an \
             uncompressed transfer syntax first (e.g. `gdcmconv --raw IN OUT`, or DCMTK's \
             `dcmdjpeg IN OUT`)"
                .into(),
        ));
    }
    Ok(())
}

/// An integer attribute, when present and readable.
pub(crate) fn int(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<i64> {
    obj.element_opt(tag).ok().flatten()?.to_int::<i64>().ok()
}

/// A multi-valued decimal attribute, when present and readable.
pub(crate) fn floats(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<Vec<f64>> {
    obj.element_opt(tag).ok().flatten()?.to_multi_float64().ok()
}

/// A text attribute, trimmed, when present and not empty.
pub(crate) fn text(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<String> {
    let s = obj.element_opt(tag).ok().flatten()?.to_str().ok()?;
    let s = s.trim_end_matches(['\0', ' ']).trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// Where a DICOM file sits in a volume, read from its header.
pub(crate) fn slice_info(path: &Path) -> Result<SliceInfo> {
    let obj = header(path)?;
    let frames = match obj.element_opt(tags::NUMBER_OF_FRAMES) {
        Ok(Some(e)) => e
            .to_int::<u32>()
            .map_err(|e| fail(path, format!("NumberOfFrames: {e}")))?
            .max(1),
        Ok(None) => 1,
        Err(e) => return Err(fail(path, e)),
    };
    let position = match (
        floats(&obj, tags::IMAGE_POSITION_PATIENT),
        floats(&obj, tags::IMAGE_ORIENTATION_PATIENT),
    ) {
        (Some(p), Some(o)) if p.len() == 3 && o.len() == 6 => {
            // the slice normal: row direction × column direction
            let n = [
                o[1] * o[5] - o[2] * o[4],
                o[2] * o[3] - o[0] * o[5],
                o[0] * o[4] - o[1] * o[3],
            ];
            Some(p[0] * n[0] + p[1] * n[1] + p[2] * n[2])
        }
        _ => None,
    };
    let uid = syntax_uid(&obj);
    let syntax = TransferSyntaxRegistry
        .get(uid)
        .map_or_else(|| uid.to_string(), |ts| ts.name().to_string());
    Ok(SliceInfo {
        frames,
        syntax,
        series: text(&obj, tags::SERIES_INSTANCE_UID),
        position,
        instance: int(&obj, tags::INSTANCE_NUMBER),
    })
}

/// Whether a DICOM file stores more than 8 bits per sample (read from its header).
pub(crate) fn high_bit_depth(path: &Path) -> Result<bool> {
    let obj = header(path)?;
    Ok(int(&obj, tags::BITS_STORED).is_some_and(|b| b > 8))
}
