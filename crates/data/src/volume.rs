//! Volumes as slices: a multi-frame DICOM file, a DICOM series (one file per slice, grouped by
//! SeriesInstanceUID and ordered by position along the slice normal, else instance number)
//! and a NIfTI volume each become a run of 2-D slices, of which [`Slices`] chooses some.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::decode::Format;
use crate::dicom::SliceInfo;
use crate::{DataError, Entry, Result};

/// Which slices of each volume (multi-frame DICOM, DICOM series, NIfTI file) are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Slices {
    /// Every slice.
    #[default]
    All,
    /// The `k` slices around the middle of the volume.
    Middle(u32),
    /// Every `n`-th slice, from the first.
    Every(u32),
}

impl Slices {
    /// `all`, `middle:K` or `every:N` (K, N ≥ 1).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            DataError::config(
                "slices",
                format!("{s:?}: {why} (expected all, middle:K or every:N)"),
            )
        };
        if s == "all" {
            return Ok(Slices::All);
        }
        let (kind, n) = s.split_once(':').ok_or_else(|| bad("unknown choice"))?;
        let n: u32 = n.parse().map_err(|_| bad("not a whole number"))?;
        if n == 0 {
            return Err(bad("must be at least 1"));
        }
        match kind {
            "middle" => Ok(Slices::Middle(n)),
            "every" => Ok(Slices::Every(n)),
            _ => Err(bad("unknown choice")),
        }
    }

    /// Whether this is [`Slices::All`].
    pub fn is_all(&self) -> bool {
        *self == Slices::All
    }

    /// The indices kept of a volume of `n` slices, in order.
    pub fn pick(self, n: usize) -> Vec<usize> {
        match self {
            Slices::All => (0..n).collect(),
            Slices::Middle(k) => {
                let k = (k as usize).min(n);
                let start = (n - k) / 2;
                (start..start + k).collect()
            }
            Slices::Every(step) => (0..n).step_by(step as usize).collect(),
        }
    }
}

impl std::fmt::Display for Slices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Slices::All => f.write_str("all"),
            Slices::Middle(k) => write!(f, "middle:{k}"),
            Slices::Every(n) => write!(f, "every:{n}"),
        }
    }
}

/// What a file is, as far as volumes go.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FileKind {
    /// A 2-D image (PNG, JPEG, …).
    Image,
    /// A DICOM file: its frames, series and position.
    Dicom(SliceInfo),
    /// A NIfTI volume of this many axial slices.
    Nifti(u32),
}

/// Whether a file may be a volume or DICOM, from its name: `.dcm`, `.dicom`, `.nii`,
/// `.nii.gz`, or no extension (DICOM series are often written so). Other files are 2-D
/// images and are not opened before decoding.
pub(crate) fn may_be_medical(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let file = lower.rsplit('/').next().unwrap_or(&lower);
    crate::nifti::is_nifti_name(file)
        || file.ends_with(".dcm")
        || file.ends_with(".dicom")
        || !file.contains('.')
}

/// The kind of a file, from its first bytes and header.
pub(crate) fn file_kind(path: &Path) -> Result<FileKind> {
    let mut head = Vec::with_capacity(348);
    std::fs::File::open(path)
        .and_then(|f| f.take(348).read_to_end(&mut head))
        .map_err(|e| DataError::io(path, e))?;
    if head.is_empty() {
        return Err(DataError::EmptyFile { path: path.into() });
    }
    match Format::sniff(&head) {
        Some(Format::Dicom) => Ok(FileKind::Dicom(crate::dicom::slice_info(path)?)),
        Some(Format::Nifti) => Ok(FileKind::Nifti(crate::nifti::slices(path)?)),
        _ => Ok(FileKind::Image),
    }
}

/// Whether an extensionless file is DICOM (by its first bytes), for folder scans.
pub(crate) fn is_dicom_file(path: &Path) -> bool {
    let mut head = Vec::with_capacity(132);
    std::fs::File::open(path)
        .and_then(|f| f.take(132).read_to_end(&mut head))
        .is_ok()
        && Format::sniff(&head) == Some(Format::Dicom)
}

/// The series a single-frame DICOM file belongs to.
fn series_of(kind: Option<&FileKind>) -> Option<&SliceInfo> {
    match kind {
        Some(FileKind::Dicom(info)) if info.frames == 1 && info.series.is_some() => Some(info),
        _ => None,
    }
}

/// The group key of each file of a ratio split when none is configured: the series of a
/// single-frame DICOM file, the file itself otherwise. `None` when no file is in a series.
pub(crate) fn series_keys(
    files: &[(i64, String)],
    paths: &[PathBuf],
    kinds: &HashMap<PathBuf, FileKind>,
) -> Option<Vec<String>> {
    let keys: Vec<String> = files
        .iter()
        .zip(paths)
        .map(|((label, name), path)| match series_of(kinds.get(path)) {
            Some(info) => format!("series {}", info.series.as_deref().unwrap_or_default()),
            None => format!("{label}/{name}"),
        })
        .collect();
    keys.iter()
        .any(|k| k.starts_with("series "))
        .then_some(keys)
}

/// Orders one series' files: by position along the slice normal when every file has one,
/// else by instance number when every file has one, else by name.
fn order_series(members: &mut [(Entry, SliceInfo)]) {
    if members.iter().all(|(_, i)| i.position.is_some()) {
        members.sort_by(|(a, x), (b, y)| {
            x.position
                .unwrap_or_default()
                .total_cmp(&y.position.unwrap_or_default())
                .then_with(|| a.name.cmp(&b.name))
        });
    } else if members.iter().all(|(_, i)| i.instance.is_some()) {
        members.sort_by_key(|(e, i)| (i.instance, e.name.clone()));
    } else {
        members.sort_by(|(a, _), (b, _)| a.name.cmp(&b.name));
    }
}

/// Replaces each volume by the slices `slices` keeps, in slice order: a multi-frame DICOM
/// file or NIfTI volume by entries `name#k`, the files of a DICOM series (same split, class
/// and SeriesInstanceUID) by themselves in position order. Other images stay as they are.
pub(crate) fn expand(
    entries: Vec<Entry>,
    kinds: &HashMap<PathBuf, FileKind>,
    slices: Slices,
) -> Vec<Entry> {
    let key =
        |e: &Entry, info: &SliceInfo| (e.split, e.label, info.series.clone().unwrap_or_default());
    let mut series: HashMap<_, Vec<(Entry, SliceInfo)>> = HashMap::new();
    for e in &entries {
        if let Some(info) = series_of(kinds.get(&e.path)) {
            series
                .entry(key(e, info))
                .or_default()
                .push((e.clone(), info.clone()));
        }
    }
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let kind = kinds.get(&e.path);
        if let Some(info) = series_of(kind) {
            // the whole series where its first file was
            if let Some(mut members) = series.remove(&key(&e, info)) {
                order_series(&mut members);
                for i in slices.pick(members.len()) {
                    out.push(members[i].0.clone());
                }
            }
            continue;
        }
        match kind {
            Some(FileKind::Nifti(n)) => push_frames(&mut out, &e, *n, slices),
            Some(FileKind::Dicom(info)) => push_frames(&mut out, &e, info.frames, slices),
            _ => out.push(e),
        }
    }
    out
}

fn push_frames(out: &mut Vec<Entry>, e: &Entry, frames: u32, slices: Slices) {
    if frames == 1 {
        out.push(e.clone());
        return;
    }
    for k in slices.pick(frames as usize) {
        out.push(Entry {
            name: format!("{}#{k}", e.name),
            frame: k as u32,
            ..e.clone()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Split;

    #[test]
    fn slice_choices_parse_and_pick() {
        assert_eq!(Slices::parse("all").expect("parse"), Slices::All);
        assert_eq!(Slices::parse("middle:3").expect("parse"), Slices::Middle(3));
        assert_eq!(Slices::parse("every:4").expect("parse"), Slices::Every(4));
        for bad in ["", "middle", "middle:0", "every:x", "first:2"] {
            let e = Slices::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("middle:K"), "{e}");
        }
        assert_eq!(Slices::Middle(3).pick(10), [3, 4, 5]);
        assert_eq!(Slices::Middle(1).pick(4), [1]);
        assert_eq!(Slices::Middle(9).pick(4), [0, 1, 2, 3]);
        assert_eq!(Slices::Every(4).pick(10), [0, 4, 8]);
        assert_eq!(Slices::All.pick(3), [0, 1, 2]);
        assert_eq!(
            Slices::parse(&Slices::Middle(5).to_string()).expect("round trip"),
            Slices::Middle(5)
        );
    }

    #[test]
    fn a_series_comes_out_in_position_order_where_its_first_file_was() {
        let entry = |name: &str| Entry {
            path: PathBuf::from(name),
            name: name.into(),
            label: 0,
            split: Split::Train,
            frame: 0,
        };
        let info = |z: f64, inst: i64| {
            FileKind::Dicom(SliceInfo {
                frames: 1,
                series: Some("1.2.3".into()),
                position: Some(z),
                instance: Some(inst),
                syntax: String::new(),
            })
        };
        let kinds: HashMap<PathBuf, FileKind> = [
            ("b.dcm", info(-5.0, 3)),
            ("c.dcm", info(-15.0, 1)),
            ("a.dcm", info(-10.0, 2)),
            ("vol.nii", FileKind::Nifti(5)),
        ]
        .into_iter()
        .map(|(n, k)| (PathBuf::from(n), k))
        .collect();
        let entries = ["x.png", "b.dcm", "c.dcm", "vol.nii", "a.dcm"]
            .map(entry)
            .to_vec();
        let names = |v: Vec<Entry>| v.into_iter().map(|e| e.name).collect::<Vec<_>>();
        assert_eq!(
            names(expand(entries.clone(), &kinds, Slices::All)),
            [
                "x.png",
                "c.dcm",
                "a.dcm",
                "b.dcm",
                "vol.nii#0",
                "vol.nii#1",
                "vol.nii#2",
                "vol.nii#3",
                "vol.nii#4"
            ]
        );
        assert_eq!(
            names(expand(entries, &kinds, Slices::Middle(1))),
            ["x.png", "a.dcm", "vol.nii#2"]
        );
    }
}
