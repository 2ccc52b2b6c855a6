//! Finding a class folder's images: its files and sub-folders (a DICOM series is often a
//! folder of its own), each checked to lie inside the dataset.

use std::path::Path;

use crate::volume;
use crate::{DataError, Result};

/// Refuses a path whose real location (symbolic links followed) is outside the dataset.
pub(crate) fn check_inside(path: &Path, canonical_root: &Path, root: &Path) -> Result<()> {
    let target = path.canonicalize().map_err(|e| DataError::io(path, e))?;
    if target.starts_with(canonical_root) {
        Ok(())
    } else {
        Err(DataError::OutsideRoot {
            path: path.into(),
            target,
            root: root.into(),
        })
    }
}

/// Image files of a class folder and its sub-folders (a DICOM series is often a folder of
/// its own), as paths relative to the class folder (`/`-separated), sorted. A file counts by
/// its extension, `.nii.gz`, or — without an extension — by DICOM's first bytes. The folder
/// and every file must lie inside the dataset once symbolic links are followed; hidden files
/// and folders are left out.
pub(crate) fn scan_images(
    dir: &Path,
    extensions: &[String],
    class: &str,
    canonical_root: &Path,
) -> Result<Vec<String>> {
    if !dir.is_dir() {
        return Err(DataError::MissingDir {
            path: dir.into(),
            what: format!("the image folder of class '{class}'"),
        });
    }
    check_inside(dir, canonical_root, canonical_root)?;
    let mut names = Vec::new();
    scan_into(dir, "", extensions, canonical_root, 0, &mut names)?;
    names.sort();
    Ok(names)
}

/// Sub-folders deeper than this are not scanned.
const MAX_DEPTH: usize = 8;

fn scan_into(
    dir: &Path,
    prefix: &str,
    extensions: &[String],
    root: &Path,
    depth: usize,
    names: &mut Vec<String>,
) -> Result<()> {
    for item in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let item = item.map_err(|e| DataError::io(dir, e))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = item.path();
        let rel = format!("{prefix}{name}");
        // a DICOM export's index file: DICOM, but no image
        if name.eq_ignore_ascii_case("DICOMDIR") {
            continue;
        }
        if path.is_dir() {
            // linked sub-folders are not followed: a link to a folder above would list the
            // same files under two names, which a split could then put on both sides
            let linked = item
                .file_type()
                .map_err(|e| DataError::io(&path, e))?
                .is_symlink();
            if depth < MAX_DEPTH && !linked {
                check_inside(&path, root, root)?;
                scan_into(
                    &path,
                    &format!("{rel}/"),
                    extensions,
                    root,
                    depth + 1,
                    names,
                )?;
            }
            continue;
        }
        let ext = Path::new(&name)
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase());
        let counts = match ext {
            Some(ext) => {
                extensions.contains(&ext)
                    || (crate::nifti::is_nifti_name(&name) && extensions.iter().any(|e| e == "nii"))
            }
            None => volume::is_dicom_file(&path),
        };
        if counts && path.is_file() {
            check_inside(&path, root, root)?;
            names.push(rel);
        }
    }
    Ok(())
}
