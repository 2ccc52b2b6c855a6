//! Image-folder datasets: one folder per class, with split lists or a seeded stratified split.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::layout::{group_keys, grouped_split, GroupBy};
use crate::lists::find_lists;
pub use crate::lists::read_list;
use crate::scan::{check_inside, scan_images};
use crate::volume::{self, FileKind, Slices};
use crate::{DataError, Result};

/// One of the three dataset splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Split {
    /// Training split.
    Train,
    /// Validation split.
    Val,
    /// Test split.
    Test,
}

impl Split {
    /// All splits, in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// `"train"`, `"val"` or `"test"` (the word used in the COVID-CT list names).
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One class: its display name, its image folder, and the tag used in its split-list paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassSpec {
    /// Name shown in reports (`"COVID"`).
    pub name: String,
    /// Folder under the dataset root holding its images (`"CT_COVID"`).
    pub folder: String,
    /// Replaces `{tag}` in [`FolderConfig::list_template`] (`"COVID"`).
    pub list_tag: String,
}

impl ClassSpec {
    /// A class whose name, folder and list tag are all `name`.
    pub fn named(name: &str) -> Self {
        ClassSpec {
            name: name.into(),
            folder: name.into(),
            list_tag: name.into(),
        }
    }
}

/// Where the train/val/test assignment comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SplitSource {
    /// The split lists when present, a seeded stratified split by ratios when there are none.
    #[default]
    Auto,
    /// The split lists; an error if any is missing.
    Lists,
    /// Ignore any lists; seeded stratified split by ratios.
    Ratios,
}

/// What to do with a file that cannot be used (missing, unreadable, corrupt, too large).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum OnBadFile {
    /// Stop with the file's error (the default).
    #[default]
    Fail,
    /// Leave the file out and list it in the load report.
    Skip,
}

/// A file that was left out in [`OnBadFile::Skip`] mode, and why.
#[derive(Debug)]
pub struct BadFile {
    /// The file.
    pub path: PathBuf,
    /// Why it was left out.
    pub error: DataError,
}

/// How to read an image-folder dataset. `Default` is the COVID-CT layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FolderConfig {
    /// Classes in label order (label `i` is `classes[i]`).
    pub classes: Vec<ClassSpec>,
    /// Path of one split list relative to the root; `{tag}` and `{split}` are substituted.
    pub list_template: String,
    /// Where the split assignment comes from.
    pub split_source: SplitSource,
    /// Train/val/test fractions for the stratified split when there are no lists.
    pub ratios: [f64; 3],
    /// Seed of the stratified split.
    pub seed: u64,
    /// File extensions (lowercase, no dot) that count as images when scanning a folder.
    pub extensions: Vec<String>,
    /// What to do with a listed file that is missing.
    pub on_bad_file: OnBadFile,
    /// How a ratio split keeps images of one patient/study together (without it, the files
    /// of one DICOM series stay together).
    #[serde(default)]
    pub group_by: GroupBy,
    /// Which slices of each volume (multi-frame DICOM, DICOM series, NIfTI) are taken.
    #[serde(default, skip_serializing_if = "Slices::is_all")]
    pub slices: Slices,
}

impl Default for FolderConfig {
    fn default() -> Self {
        Self::covid_ct()
    }
}

impl FolderConfig {
    /// The COVID-CT layout: `CT_COVID/`, `CT_NonCOVID/` and
    /// `Data-split/{COVID,NonCOVID}/{train,val,test}CT_{COVID,NonCOVID}.txt`.
    /// Ratios without lists follow the official split's proportions (425/118/203).
    pub fn covid_ct() -> Self {
        let class = |name: &str, folder: &str| ClassSpec {
            name: name.into(),
            folder: folder.into(),
            list_tag: name.into(),
        };
        FolderConfig {
            classes: vec![class("COVID", "CT_COVID"), class("NonCOVID", "CT_NonCOVID")],
            list_template: "Data-split/{tag}/{split}CT_{tag}.txt".into(),
            split_source: SplitSource::Auto,
            ratios: [0.57, 0.16, 0.27],
            seed: 0,
            extensions: [
                "png", "jpg", "jpeg", "tif", "tiff", "bmp", "webp", "dcm", "dicom", "nii",
            ]
            .map(String::from)
            .to_vec(),
            on_bad_file: OnBadFile::Fail,
            group_by: GroupBy::None,
            slices: Slices::All,
        }
    }

    /// Plain class folders named after the classes, no split lists.
    pub fn plain(class_names: &[&str]) -> Self {
        FolderConfig {
            classes: class_names.iter().map(|c| ClassSpec::named(c)).collect(),
            split_source: SplitSource::Ratios,
            ..Self::covid_ct()
        }
    }

    /// Sets the split source.
    pub fn with_split_source(mut self, source: SplitSource) -> Self {
        self.split_source = source;
        self
    }

    /// Sets the bad-file policy.
    pub fn with_on_bad_file(mut self, policy: OnBadFile) -> Self {
        self.on_bad_file = policy;
        self
    }

    /// Sets which slices of each volume are taken.
    pub fn with_slices(mut self, slices: Slices) -> Self {
        self.slices = slices;
        self
    }

    /// Sets the grouping of the ratio split (by patient, study, …).
    pub fn with_group_by(mut self, group_by: GroupBy) -> Self {
        self.group_by = group_by;
        self
    }

    /// Sets the ratios and seed of the stratified split.
    pub fn with_ratios(mut self, ratios: [f64; 3], seed: u64) -> Self {
        self.ratios = ratios;
        self.seed = seed;
        self
    }

    fn validate(&self) -> Result<()> {
        if self.classes.is_empty() {
            return Err(DataError::config("classes", "at least one class is needed"));
        }
        if self.ratios.iter().any(|r| !r.is_finite() || *r < 0.0)
            || self.ratios.iter().sum::<f64>() <= 0.0
        {
            return Err(DataError::config(
                "ratios",
                format!(
                    "{:?} must be finite, non-negative, not all zero",
                    self.ratios
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn list_path(&self, root: &Path, class: &ClassSpec, split: Split) -> PathBuf {
        root.join(
            self.list_template
                .replace("{tag}", &class.list_tag)
                .replace("{split}", split.as_str()),
        )
    }
}

/// One image of the dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Full path of the file.
    pub path: PathBuf,
    /// File name relative to its class folder.
    pub name: String,
    /// Class index.
    pub label: i64,
    /// The split it belongs to.
    pub split: Split,
    /// The frame of a multi-frame DICOM file (0 otherwise).
    pub frame: u32,
}

/// Where the split came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitOrigin {
    /// The dataset's split lists.
    Lists,
    /// A seeded stratified split by ratios.
    Ratios {
        /// Its seed.
        seed: u64,
    },
}

/// An indexed (not yet decoded) image-folder dataset.
#[derive(Debug)]
pub struct ImageFolder {
    root: PathBuf,
    config: FolderConfig,
    entries: Vec<Entry>,
    origin: SplitOrigin,
    skipped: Vec<BadFile>,
    unlisted: Vec<PathBuf>,
    pub(crate) kinds: HashMap<PathBuf, FileKind>,
}

impl ImageFolder {
    /// Indexes the dataset at `root`: finds the class folders, reads and checks the split lists
    /// (or makes a stratified split). Decodes nothing.
    pub fn open(root: impl AsRef<Path>, config: &FolderConfig) -> Result<Self> {
        config.validate()?;
        let root = root.as_ref().to_path_buf();
        if !root.is_dir() {
            return Err(DataError::MissingDir {
                path: root,
                what: "the dataset root".into(),
            });
        }
        let canonical = root.canonicalize().map_err(|e| DataError::io(&root, e))?;
        let mut files_per_class: Vec<Vec<String>> = Vec::with_capacity(config.classes.len());
        for class in &config.classes {
            let dir = root.join(&class.folder);
            let files = scan_images(&dir, &config.extensions, &class.name, &canonical)?;
            if files.is_empty() {
                return Err(DataError::EmptyClass {
                    class: class.name.clone(),
                    path: dir,
                });
            }
            files_per_class.push(files);
        }
        let lists = find_lists(&root, config)?;
        let mut folder = ImageFolder {
            root,
            config: config.clone(),
            entries: Vec::new(),
            origin: SplitOrigin::Lists,
            skipped: Vec::new(),
            unlisted: Vec::new(),
            kinds: HashMap::new(),
        };
        // with split lists only listed files are opened (add_listed_kinds, below)
        let mut kinds = match lists {
            Some(_) => HashMap::new(),
            None => folder.medical_kinds(&mut files_per_class)?,
        };
        match lists {
            Some(lists) => folder.assign_from_lists(&lists, &files_per_class, &canonical)?,
            None if config.group_by != GroupBy::None => {
                let keys = group_keys(
                    &folder.root,
                    &config.classes,
                    &config.group_by,
                    &flatten(&files_per_class),
                )?;
                folder.assign_by_groups(&files_per_class, keys);
            }
            None => {
                let flat = flatten(&files_per_class);
                let paths: Vec<PathBuf> = flat.iter().map(|(l, n)| folder.path_of(*l, n)).collect();
                match volume::series_keys(&flat, &paths, &kinds) {
                    Some(keys) => folder.assign_by_groups(&files_per_class, keys),
                    None => folder.assign_by_ratios(&files_per_class),
                }
            }
        }
        folder.add_listed_kinds(&mut kinds)?;
        folder.entries = volume::expand(std::mem::take(&mut folder.entries), &kinds, config.slices);
        folder.kinds = kinds;
        Ok(folder)
    }

    /// The path of file `name` of class `label`.
    fn path_of(&self, label: i64, name: &str) -> PathBuf {
        self.root
            .join(&self.config.classes[label as usize].folder)
            .join(name)
    }

    /// The kind of each file that may be DICOM or a volume (read from its header, in
    /// parallel); a file that cannot be read is an error, or left out and listed in
    /// [`OnBadFile::Skip`] mode.
    fn medical_kinds(&mut self, files: &mut [Vec<String>]) -> Result<HashMap<PathBuf, FileKind>> {
        use rayon::prelude::*;
        let candidates: Vec<PathBuf> = files
            .iter()
            .enumerate()
            .flat_map(|(l, names)| {
                names
                    .iter()
                    .filter(|n| volume::may_be_medical(n))
                    .map(move |n| (l as i64, n))
            })
            .map(|(l, n)| self.path_of(l, n))
            .collect();
        let read: Vec<(PathBuf, Result<FileKind>)> = candidates
            .into_par_iter()
            .map(|p| {
                let kind = volume::file_kind(&p);
                (p, kind)
            })
            .collect();
        let mut kinds = HashMap::new();
        let mut bad = std::collections::HashSet::new();
        for (path, kind) in read {
            match kind {
                Ok(k) => {
                    kinds.insert(path, k);
                }
                Err(error) if self.config.on_bad_file == OnBadFile::Skip => {
                    bad.insert(path.clone());
                    self.skipped.push(BadFile { path, error });
                }
                Err(error) => return Err(error),
            }
        }
        if !bad.is_empty() {
            for (l, names) in files.iter_mut().enumerate() {
                let dir = self.root.join(&self.config.classes[l].folder);
                names.retain(|n| !bad.contains(&dir.join(n)));
            }
        }
        Ok(kinds)
    }

    /// Kinds of listed files the folder scan did not see (lists may name files in
    /// sub-folders or without the usual extensions); listed files that cannot be read are
    /// an error or, in [`OnBadFile::Skip`] mode, dropped and listed.
    fn add_listed_kinds(&mut self, kinds: &mut HashMap<PathBuf, FileKind>) -> Result<()> {
        let mut keep = Vec::with_capacity(self.entries.len());
        for e in std::mem::take(&mut self.entries) {
            if !kinds.contains_key(&e.path) && volume::may_be_medical(&e.name) {
                match volume::file_kind(&e.path) {
                    Ok(k) => {
                        kinds.insert(e.path.clone(), k);
                    }
                    Err(error) if self.config.on_bad_file == OnBadFile::Skip => {
                        self.skipped.push(BadFile {
                            path: e.path.clone(),
                            error,
                        });
                        continue;
                    }
                    Err(error) => return Err(error),
                }
            }
            keep.push(e);
        }
        self.entries = keep;
        Ok(())
    }

    /// A ratio split of whole groups (`keys[i]` is the group of the `i`-th file, class by
    /// class).
    fn assign_by_groups(&mut self, files: &[Vec<String>], keys: Vec<String>) {
        let flat = flatten(files);
        let splits = grouped_split(
            &flat,
            &keys,
            self.config.classes.len(),
            self.config.ratios,
            self.config.seed,
        );
        for ((label, name), split) in flat.into_iter().zip(splits) {
            let folder = &self.config.classes[label as usize].folder;
            self.entries.push(Entry {
                path: self.root.join(folder).join(&name),
                name,
                label,
                split,
                frame: 0,
            });
        }
        self.origin = SplitOrigin::Ratios {
            seed: self.config.seed,
        };
    }

    fn assign_from_lists(
        &mut self,
        lists: &[Vec<PathBuf>],
        files: &[Vec<String>],
        canonical_root: &Path,
    ) -> Result<()> {
        for (label, (class, class_lists)) in self.config.classes.iter().zip(lists).enumerate() {
            let dir = self.root.join(&class.folder);
            let mut seen: HashMap<String, (PathBuf, usize)> = HashMap::new();
            for (split, list) in Split::ALL.iter().zip(class_lists) {
                for (line, name) in read_list(list)? {
                    if let Some((first_list, first_line)) = seen.get(&name) {
                        return Err(DataError::DuplicateEntry {
                            name,
                            first_list: first_list.clone(),
                            first_line: *first_line,
                            second_list: list.clone(),
                            second_line: line,
                        });
                    }
                    seen.insert(name.clone(), (list.clone(), line));
                    let path = dir.join(&name);
                    if !path.is_file() {
                        let error = DataError::ListedFileMissing {
                            list: list.clone(),
                            line,
                            name,
                            dir: dir.clone(),
                        };
                        match self.config.on_bad_file {
                            OnBadFile::Fail => return Err(error),
                            OnBadFile::Skip => self.skipped.push(BadFile { path, error }),
                        }
                        continue;
                    }
                    check_inside(&path, canonical_root, &self.root)?;
                    self.entries.push(Entry {
                        path,
                        name,
                        label: label as i64,
                        split: *split,
                        frame: 0,
                    });
                }
            }
            self.unlisted.extend(
                files[label]
                    .iter()
                    .filter(|f| !seen.contains_key(*f))
                    .map(|f| dir.join(f)),
            );
        }
        self.origin = SplitOrigin::Lists;
        Ok(())
    }

    fn assign_by_ratios(&mut self, files: &[Vec<String>]) {
        let total: f64 = self.config.ratios.iter().sum();
        for (label, (class, names)) in self.config.classes.iter().zip(files).enumerate() {
            let mut names = names.clone();
            // One stream per class, so adding a class does not reshuffle the others.
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
                self.config.seed ^ (label as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            names.shuffle(&mut rng);
            let n = names.len() as f64;
            let n_train = (n * self.config.ratios[0] / total).round() as usize;
            let n_val = ((n * self.config.ratios[1] / total).round() as usize)
                .min(names.len() - n_train.min(names.len()));
            for (i, name) in names.into_iter().enumerate() {
                let split = if i < n_train {
                    Split::Train
                } else if i < n_train + n_val {
                    Split::Val
                } else {
                    Split::Test
                };
                self.entries.push(Entry {
                    path: self.root.join(&class.folder).join(&name),
                    name,
                    label: label as i64,
                    split,
                    frame: 0,
                });
            }
        }
        self.origin = SplitOrigin::Ratios {
            seed: self.config.seed,
        };
    }

    /// The dataset root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Class names in label order.
    pub fn class_names(&self) -> Vec<String> {
        self.config.classes.iter().map(|c| c.name.clone()).collect()
    }

    /// All entries, in list (or split) order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries of one split.
    pub fn split(&self, split: Split) -> Vec<Entry> {
        self.entries
            .iter()
            .filter(|e| e.split == split)
            .cloned()
            .collect()
    }

    /// Number of images per class in one split.
    pub fn counts(&self, split: Split) -> Vec<usize> {
        let mut counts = vec![0; self.config.classes.len()];
        for e in self.entries.iter().filter(|e| e.split == split) {
            counts[e.label as usize] += 1;
        }
        counts
    }

    /// Where the split came from.
    pub fn origin(&self) -> &SplitOrigin {
        &self.origin
    }

    /// Listed files that were missing and skipped ([`OnBadFile::Skip`] only).
    pub fn skipped(&self) -> &[BadFile] {
        &self.skipped
    }

    /// Image files present in a class folder but in no split list (not loaded).
    pub fn unlisted(&self) -> &[PathBuf] {
        &self.unlisted
    }
}

/// `(label, name)` of every file, class by class.
fn flatten(files: &[Vec<String>]) -> Vec<(i64, String)> {
    files
        .iter()
        .enumerate()
        .flat_map(|(l, names)| names.iter().map(move |n| (l as i64, n.clone())))
        .collect()
}
