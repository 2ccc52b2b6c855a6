//! What a folder holds, file kind by file kind: how many files, slices taken, the encodings
//! met (DICOM transfer syntaxes), and what was refused and why.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::volume::FileKind;
use crate::{BadFile, DataError, ImageFolder};

/// One kind of file in a [`FileSummary`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KindSummary {
    /// `PNG`, `JPEG`, `TIFF`, `BMP`, `WebP` (by extension), `DICOM` or `NIfTI` (by content).
    pub kind: String,
    /// Files of this kind found (refused ones included).
    pub files: usize,
    /// 2-D images taken from them (slices of volumes, frames of multi-frame files).
    pub slices: usize,
    /// Encodings met and how many files use each (DICOM: the transfer syntax).
    pub encodings: BTreeMap<String, usize>,
    /// Files refused, by reason.
    pub refused: BTreeMap<String, usize>,
}

/// A folder's files, kind by kind ([`ImageFolder::file_summary`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileSummary {
    /// One row per kind, by name.
    pub kinds: Vec<KindSummary>,
}

/// A kind's name from a file's extension (2-D images are not opened to index a folder).
fn kind_by_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if crate::nifti::is_nifti_name(&name) {
        return "NIfTI".into();
    }
    match name.rsplit_once('.').map(|(_, e)| e) {
        Some("png") => "PNG",
        Some("jpg" | "jpeg") => "JPEG",
        Some("tif" | "tiff") => "TIFF",
        Some("bmp") => "BMP",
        Some("webp") => "WebP",
        Some("dcm" | "dicom") | None => "DICOM",
        Some(other) => return other.to_uppercase(),
    }
    .into()
}

/// Why a file was refused, without its path (so that files refused alike count together).
fn reason(e: &DataError) -> String {
    match e {
        DataError::UnsupportedEncoding {
            encoding, remedy, ..
        } => format!("{encoding}: {remedy}"),
        DataError::Decode { reason, .. } => reason.clone(),
        DataError::NoPixelData { .. } => "no pixel data".into(),
        DataError::EmptyFile { .. } => "empty file".into(),
        DataError::UnknownFormat { .. } => "not an image format ganaug reads".into(),
        DataError::WindowOutsideData { window, .. } => format!(
            "the window (centre {}, width {}) misses every value",
            window.center, window.width
        ),
        other => other.to_string(),
    }
}

/// The row of `kind`, made when first met.
fn row<'a>(rows: &'a mut BTreeMap<String, KindSummary>, kind: &str) -> &'a mut KindSummary {
    rows.entry(kind.to_string()).or_insert_with(|| KindSummary {
        kind: kind.to_string(),
        ..KindSummary::default()
    })
}

impl ImageFolder {
    /// The folder's files kind by kind; `refused` adds files a load left out (its
    /// [`LoadReport::skipped`](crate::LoadReport::skipped)) to those the index left out.
    pub fn file_summary(&self, refused: &[BadFile]) -> FileSummary {
        let mut rows: BTreeMap<String, KindSummary> = BTreeMap::new();
        let kind_of = |path: &Path| match self.kinds.get(path) {
            Some(FileKind::Dicom(_)) => "DICOM".to_string(),
            Some(FileKind::Nifti(_)) => "NIfTI".to_string(),
            _ => kind_by_name(path),
        };
        let refused_paths: HashMap<&PathBuf, &DataError> = self
            .skipped()
            .iter()
            .chain(refused)
            .map(|b| (&b.path, &b.error))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for e in self.entries() {
            let kind = kind_of(&e.path);
            let r = row(&mut rows, &kind);
            if refused_paths.contains_key(&e.path) {
                continue;
            }
            r.slices += 1;
            if seen.insert(e.path.clone()) {
                r.files += 1;
                let encoding = match self.kinds.get(&e.path) {
                    Some(FileKind::Dicom(info)) => info.syntax.clone(),
                    Some(FileKind::Nifti(_)) => "NIfTI-1".into(),
                    _ => kind.clone(),
                };
                *r.encodings.entry(encoding).or_default() += 1;
            }
        }
        for (path, error) in refused_paths {
            let r = row(&mut rows, &kind_of(path));
            r.files += 1;
            *r.refused.entry(reason(error)).or_default() += 1;
        }
        FileSummary {
            kinds: rows.into_values().collect(),
        }
    }
}

impl std::fmt::Display for FileSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<7} {:>7} {:>7} {:>8}  encodings",
            "kind", "files", "slices", "refused"
        )?;
        for k in &self.kinds {
            let refused: usize = k.refused.values().sum();
            let encodings: Vec<String> = k
                .encodings
                .iter()
                .map(|(e, n)| format!("{e} ×{n}"))
                .collect();
            writeln!(
                f,
                "{:<7} {:>7} {:>7} {:>8}  {}",
                k.kind,
                k.files,
                k.slices,
                refused,
                encodings.join(", ")
            )?;
            for (why, n) in &k.refused {
                writeln!(f, "        refused ×{n}: {why}")?;
            }
        }
        Ok(())
    }
}
