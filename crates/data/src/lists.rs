//! Split lists: finding them for a configuration, and reading one.

use std::path::{Component, Path, PathBuf};

use crate::{DataError, FolderConfig, Result, Split, SplitSource};

/// The list files per class and split, or `None` when the split is to be made by ratios.
pub(crate) fn find_lists(root: &Path, config: &FolderConfig) -> Result<Option<Vec<Vec<PathBuf>>>> {
    if config.split_source == SplitSource::Ratios {
        return Ok(None);
    }
    let lists: Vec<Vec<PathBuf>> = config
        .classes
        .iter()
        .map(|c| {
            Split::ALL
                .iter()
                .map(|s| config.list_path(root, c, *s))
                .collect()
        })
        .collect();
    let missing: Vec<PathBuf> = lists
        .iter()
        .flatten()
        .filter(|p| !p.is_file())
        .cloned()
        .collect();
    let expected = config.classes.len() * Split::ALL.len();
    match (missing.len(), config.split_source) {
        (0, _) => Ok(Some(lists)),
        (n, SplitSource::Auto) if n == expected => Ok(None),
        (n, _) => Err(DataError::IncompleteSplitLists {
            present: expected - n,
            missing,
        }),
    }
}

/// Reads a split list: `(line number, name)` for each non-empty line. Handles CRLF, a missing
/// final newline and surrounding whitespace; rejects entries that leave the class folder.
pub fn read_list(path: &Path) -> Result<Vec<(usize, String)>> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let name = raw.trim().trim_start_matches('\u{feff}');
        if name.is_empty() {
            continue;
        }
        let escapes = Path::new(name)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)));
        if escapes {
            return Err(DataError::EscapingEntry {
                list: path.into(),
                line: i + 1,
                name: name.into(),
            });
        }
        out.push((i + 1, name.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parsing_handles_crlf_blank_lines_and_no_final_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("l.txt");
        std::fs::write(&p, "a.png\r\n\r\n  b%20c.jpg \r\nlast.png").expect("write");
        let got = read_list(&p).expect("read");
        assert_eq!(
            got,
            vec![
                (1, "a.png".into()),
                (3, "b%20c.jpg".into()),
                (4, "last.png".into())
            ]
        );
    }

    #[test]
    fn list_entries_may_not_escape() {
        let dir = tempfile::tempdir().expect("tempdir");
        for bad in ["../secret.png", "/etc/passwd", "a/../../b.png"] {
            let p = dir.path().join("l.txt");
            std::fs::write(&p, format!("ok.png\n{bad}\n")).expect("write");
            match read_list(&p) {
                Err(DataError::EscapingEntry { line: 2, name, .. }) => assert_eq!(name, bad),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
