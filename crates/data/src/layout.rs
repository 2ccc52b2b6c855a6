//! Finding a dataset's layout from its files, and splits grouped by a patient/study key.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::{ClassSpec, DataError, FolderConfig, Result, Split, SplitSource};

/// The dataset layouts [`FolderConfig::discover`] recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// COVID-CT: `CT_COVID/`, `CT_NonCOVID/` and the official `Data-split/` lists.
    CovidCt,
    /// One folder per class (sorted names), optional lists `splits/<class>/<split>.txt`.
    ClassFolders,
}

impl Layout {
    /// The layout's name in words.
    pub fn describe(self) -> &'static str {
        match self {
            Layout::CovidCt => "COVID-CT",
            Layout::ClassFolders => "class folders",
        }
    }
}

/// Folders at the dataset root that never are classes.
const NOT_CLASSES: [&str; 3] = ["splits", "Data-split", "__MACOSX"];

impl FolderConfig {
    /// Finds the layout of the dataset at `root`: COVID-CT when `CT_COVID/` and
    /// `CT_NonCOVID/` are there, else one class per sub-folder (sorted by name; hidden folders
    /// and `splits/` left out), with split lists `splits/<class>/{train,val,test}.txt` used
    /// when all are present and a seeded stratified split (70/15/15) otherwise. At least two
    /// classes are needed; a folder name that is not UTF-8 or holds control characters is
    /// refused (other characters are kept as they are in names and reports).
    pub fn discover(root: impl AsRef<Path>) -> Result<(FolderConfig, Layout)> {
        let root = root.as_ref();
        if !root.is_dir() {
            return Err(DataError::MissingDir {
                path: root.into(),
                what: "the dataset root (a folder with one sub-folder per class)".into(),
            });
        }
        if root.join("CT_COVID").is_dir() && root.join("CT_NonCOVID").is_dir() {
            return Ok((FolderConfig::covid_ct(), Layout::CovidCt));
        }
        // COVID-CT's lists without one of its class folders: name the missing folder
        let covid = FolderConfig::covid_ct();
        for class in &covid.classes {
            let lists: Vec<PathBuf> = Split::ALL
                .iter()
                .map(|&s| covid.list_path(root, class, s))
                .filter(|p| p.is_file())
                .collect();
            if !lists.is_empty() && !root.join(&class.folder).is_dir() {
                return Err(listed_class_missing(root, &class.folder, &lists));
            }
        }
        Ok((Self::class_folders(root)?, Layout::ClassFolders))
    }

    /// The [`Layout::ClassFolders`] reading of `root` (see [`FolderConfig::discover`]).
    pub fn class_folders(root: impl AsRef<Path>) -> Result<FolderConfig> {
        let root = root.as_ref();
        if !root.is_dir() {
            return Err(DataError::MissingDir {
                path: root.into(),
                what: "the dataset root (a folder with one sub-folder per class)".into(),
            });
        }
        let bad = |reason: String| DataError::Classes {
            root: root.into(),
            reason,
        };
        let mut names = Vec::new();
        for item in std::fs::read_dir(root).map_err(|e| DataError::io(root, e))? {
            let item = item.map_err(|e| DataError::io(root, e))?;
            if !item.path().is_dir() {
                continue;
            }
            let raw = item.file_name();
            let name = raw
                .to_str()
                .ok_or_else(|| bad(format!("folder name {raw:?} is not UTF-8")))?
                .to_string();
            if name.starts_with('.') || NOT_CLASSES.contains(&name.as_str()) {
                continue;
            }
            if name.chars().any(char::is_control) {
                return Err(bad(format!(
                    "folder name {name:?} holds control characters"
                )));
            }
            names.push(name);
        }
        names.sort();
        // split lists `splits/<class>/` for a class without its folder
        if let Ok(listed) = std::fs::read_dir(root.join("splits")) {
            for item in listed.flatten() {
                let tag = item.file_name().to_string_lossy().into_owned();
                if item.path().is_dir() && !tag.starts_with('.') && !names.contains(&tag) {
                    let lists: Vec<PathBuf> = std::fs::read_dir(item.path())
                        .map(|d| {
                            d.flatten()
                                .map(|f| f.path())
                                .filter(|p| p.is_file())
                                .collect()
                        })
                        .unwrap_or_default();
                    if !lists.is_empty() {
                        return Err(listed_class_missing(root, &tag, &lists));
                    }
                }
            }
        }
        match names.len() {
            0 => Err(bad(
                "no class folders (one sub-folder per class is expected)".into(),
            )),
            1 => Err(bad(format!(
                "one class folder ({}); at least two classes are needed",
                names[0]
            ))),
            _ => Ok(FolderConfig {
                classes: names.iter().map(|n| ClassSpec::named(n)).collect(),
                list_template: "splits/{tag}/{split}.txt".into(),
                split_source: SplitSource::Auto,
                ratios: [0.7, 0.15, 0.15],
                ..FolderConfig::covid_ct()
            }),
        }
    }

    /// Keeps only the classes named in `names`, in that order (labels follow it). A name that
    /// is not a class of the dataset is an error listing the classes there are.
    pub fn with_classes(mut self, names: &[String]) -> Result<Self> {
        let mut kept = Vec::with_capacity(names.len());
        for n in names {
            let class = self.classes.iter().find(|c| &c.name == n).ok_or_else(|| {
                DataError::config(
                    "classes",
                    format!(
                        "{n:?} is not a class here (classes: {})",
                        self.classes
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            kept.push(class.clone());
        }
        if kept.len() < 2 {
            return Err(DataError::config(
                "classes",
                "at least two classes are needed",
            ));
        }
        self.classes = kept;
        Ok(self)
    }
}

fn listed_class_missing(root: &Path, folder: &str, lists: &[PathBuf]) -> DataError {
    DataError::ListedClassMissing {
        class: folder.to_string(),
        path: root.join(folder),
        lists: lists
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// How images are grouped (by patient, study, …) so that a ratio split never puts one group
/// in two splits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum GroupBy {
    /// Every image on its own (a stratified split per class).
    #[default]
    None,
    /// A regular expression on the file name (relative to its class folder): its first
    /// capture group, or the whole match without one, is the key. A name it does not match is
    /// an error. E.g. `^(patient\d+)_` for `patient12_slice3.png`.
    Pattern(String),
    /// A CSV file (relative to the dataset root, or absolute) with a header and columns `file`
    /// (the name in its class folder, or `class/name`) and `group`. A file it does not list is
    /// an error.
    Csv(PathBuf),
}

/// The group key of each `(label, name)`, in order.
pub(crate) fn group_keys(
    root: &Path,
    classes: &[ClassSpec],
    by: &GroupBy,
    files: &[(i64, String)],
) -> Result<Vec<String>> {
    match by {
        GroupBy::None => Ok(files.iter().map(|(l, n)| format!("{l}/{n}")).collect()),
        GroupBy::Pattern(p) => {
            let re = regex::Regex::new(p)
                .map_err(|e| DataError::config("group_by", format!("pattern {p:?}: {e}")))?;
            files
                .iter()
                .map(|(_, name)| {
                    let caps = re.captures(name).ok_or_else(|| DataError::GroupKey {
                        name: name.clone(),
                        reason: format!("the pattern {p:?} does not match it"),
                    })?;
                    Ok(caps
                        .get(1)
                        .or_else(|| caps.get(0))
                        .map_or_else(String::new, |m| m.as_str().to_string()))
                })
                .collect()
        }
        GroupBy::Csv(path) => {
            let path = if path.is_absolute() {
                path.clone()
            } else {
                root.join(path)
            };
            let table = read_group_csv(&path)?;
            files
                .iter()
                .map(|(label, name)| {
                    let folder = &classes[*label as usize].folder;
                    table
                        .get(&format!("{folder}/{name}"))
                        .or_else(|| table.get(name))
                        .cloned()
                        .ok_or_else(|| DataError::GroupKey {
                            name: name.clone(),
                            reason: format!("not listed in {}", path.display()),
                        })
                })
                .collect()
        }
    }
}

fn read_group_csv(path: &Path) -> Result<HashMap<String, String>> {
    let bad =
        |reason: String| DataError::config("group_by", format!("{}: {reason}", path.display()));
    let mut reader = csv::Reader::from_path(path).map_err(|e| bad(e.to_string()))?;
    let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
            .ok_or_else(|| bad(format!("no column {name:?} (columns: {headers:?})")))
    };
    let (file, group) = (col("file")?, col("group")?);
    let mut table = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(format!("row {}: {e}", i + 2)))?;
        let (Some(f), Some(g)) = (record.get(file), record.get(group)) else {
            return Err(bad(format!("row {}: missing a column", i + 2)));
        };
        table.insert(f.trim().to_string(), g.trim().to_string());
    }
    Ok(table)
}

/// A seeded split of whole groups, stratified as well as whole groups allow: groups are
/// shuffled, placed largest first, each into the split whose per-class counts are furthest
/// below their targets. Returns each file's split.
pub(crate) fn grouped_split(
    files: &[(i64, String)],
    keys: &[String],
    n_classes: usize,
    ratios: [f64; 3],
    seed: u64,
) -> Vec<Split> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        groups.entry(k.as_str()).or_default().push(i);
    }
    let mut order: Vec<(&str, Vec<usize>)> = groups.into_iter().collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    order.shuffle(&mut rng);
    order.sort_by_key(|(_, members)| std::cmp::Reverse(members.len()));
    let total: f64 = ratios.iter().sum();
    let mut per_class = vec![0usize; n_classes];
    for (label, _) in files {
        per_class[*label as usize] += 1;
    }
    let target = |s: usize, c: usize| per_class[c] as f64 * ratios[s] / total;
    let mut count = vec![[0usize; 3]; n_classes];
    let mut out = vec![Split::Train; files.len()];
    for (_, members) in order {
        let mut in_group = vec![0usize; n_classes];
        for &m in &members {
            in_group[files[m].0 as usize] += 1;
        }
        let need = |s: usize| -> f64 {
            (0..n_classes)
                .map(|c| in_group[c] as f64 * (target(s, c) - count[c][s] as f64))
                .sum()
        };
        let best = (0..3)
            .filter(|&s| ratios[s] > 0.0)
            .max_by(|&a, &b| need(a).total_cmp(&need(b)).then(b.cmp(&a)))
            .unwrap_or(0);
        for c in 0..n_classes {
            count[c][best] += in_group[c];
        }
        for m in members {
            out[m] = Split::ALL[best];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_never_straddle_splits_and_ratios_are_roughly_kept() {
        // 40 patients × 5 slices in two classes.
        let mut files = Vec::new();
        for p in 0..40 {
            for s in 0..5 {
                files.push(((p % 2) as i64, format!("patient{p}_slice{s}.png")));
            }
        }
        let classes = [ClassSpec::named("a"), ClassSpec::named("b")];
        let by = GroupBy::Pattern(r"^(patient\d+)_".into());
        let keys = group_keys(Path::new("."), &classes, &by, &files).expect("keys");
        assert_eq!(keys[0], "patient0");
        let splits = grouped_split(&files, &keys, 2, [0.6, 0.2, 0.2], 7);
        let mut of_group: HashMap<&str, Split> = HashMap::new();
        for (k, s) in keys.iter().zip(&splits) {
            assert_eq!(*of_group.entry(k).or_insert(*s), *s, "{k} in two splits");
        }
        let train = splits.iter().filter(|s| **s == Split::Train).count();
        assert!((110..=130).contains(&train), "{train} of 200 in train");
        // Same seed, same split; another seed, another.
        assert_eq!(splits, grouped_split(&files, &keys, 2, [0.6, 0.2, 0.2], 7));
        assert_ne!(splits, grouped_split(&files, &keys, 2, [0.6, 0.2, 0.2], 8));
    }

    #[test]
    fn a_name_the_pattern_misses_is_an_error_naming_it() {
        let files = vec![(0, "p1_a.png".to_string()), (0, "scan.png".to_string())];
        let by = GroupBy::Pattern(r"^(p\d+)_".into());
        let err = group_keys(Path::new("."), &[ClassSpec::named("a")], &by, &files)
            .expect_err("scan.png has no key");
        assert!(err.to_string().contains("scan.png"), "{err}");
        let bad = GroupBy::Pattern("(".into());
        assert!(group_keys(Path::new("."), &[ClassSpec::named("a")], &bad, &files).is_err());
    }

    #[test]
    fn split_lists_naming_a_class_without_its_folder_say_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("CT_NonCOVID")).expect("mkdir");
        std::fs::create_dir_all(root.join("Data-split/COVID")).expect("mkdir");
        std::fs::write(root.join("Data-split/COVID/trainCT_COVID.txt"), "a.png\n").expect("w");
        let e = FolderConfig::discover(root).expect_err("CT_COVID is missing");
        let msg = e.to_string();
        assert!(matches!(e, DataError::ListedClassMissing { .. }), "{msg}");
        assert!(
            msg.contains("CT_COVID") && msg.contains("trainCT_COVID.txt"),
            "{msg}"
        );
        // class folders: splits/<class>/ without <class>/
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for d in ["cats", "dogs", "splits/cats", "splits/birds"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::write(root.join("splits/birds/train.txt"), "x.png\n").expect("w");
        let e = FolderConfig::discover(root).expect_err("birds/ is missing");
        assert!(e.to_string().contains("birds"), "{e}");
    }

    #[test]
    fn csv_keys_by_name_or_class_and_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("groups.csv"),
            "file,group\na/x.png,P1\ny.png,P2\n",
        )
        .expect("write");
        let files = vec![(0, "x.png".to_string()), (0, "y.png".to_string())];
        let by = GroupBy::Csv("groups.csv".into());
        let keys = group_keys(dir.path(), &[ClassSpec::named("a")], &by, &files).expect("keys");
        assert_eq!(keys, ["P1", "P2"]);
        let missing = vec![(0, "z.png".to_string())];
        assert!(group_keys(dir.path(), &[ClassSpec::named("a")], &by, &missing).is_err());
    }
}
