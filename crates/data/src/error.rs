//! The crate's error type: every bad input names the file (or list line) and the reason.

use std::path::PathBuf;

/// Errors of `ganaug-data`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A folder the dataset needs does not exist or is not a folder.
    #[error("missing dataset folder {path}: {what}")]
    MissingDir {
        /// The folder that was looked for.
        path: PathBuf,
        /// What the folder was expected to hold.
        what: String,
    },
    /// A class folder holds no image files.
    #[error("class '{class}' has no images in {path}")]
    EmptyClass {
        /// The class name.
        class: String,
        /// Its folder.
        path: PathBuf,
    },
    /// Reading or writing a file or folder failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is empty (0 bytes).
    #[error("empty image file (0 bytes): {path}")]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// The bytes are not an image format ganaug reads (whatever the extension says).
    #[error("not a PNG, JPEG, TIFF, BMP, WebP, DICOM or NIfTI image (by its first bytes): {path}")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The image could not be decoded: corrupt or truncated data.
    #[error("cannot decode {format} image {path}: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The format detected from the bytes.
        format: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// The image's declared size exceeds the configured limit (decompression-bomb guard).
    #[error("image {path} is {width}x{height} pixels, over the limit of {limit} pixels")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Declared width.
        width: u64,
        /// Declared height.
        height: u64,
        /// The configured limit, in pixels.
        limit: u64,
    },
    /// A split list names a file that does not exist in its class folder.
    #[error("{list}:{line}: listed image '{name}' not found in {dir}")]
    ListedFileMissing {
        /// The list file.
        list: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The entry.
        name: String,
        /// The class folder that was searched.
        dir: PathBuf,
    },
    /// A name appears twice in the split lists of one class (same or different split).
    #[error("'{name}' is listed twice: {first_list}:{first_line} and {second_list}:{second_line}")]
    DuplicateEntry {
        /// The entry.
        name: String,
        /// Where it was first seen.
        first_list: PathBuf,
        /// Line of the first occurrence.
        first_line: usize,
        /// Where it was seen again.
        second_list: PathBuf,
        /// Line of the second occurrence.
        second_line: usize,
    },
    /// A split-list entry is absolute or climbs out of the dataset folder (`../`).
    #[error("{list}:{line}: entry '{name}' escapes the class folder")]
    EscapingEntry {
        /// The list file.
        list: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The entry.
        name: String,
    },
    /// Some but not all split lists exist.
    #[error("incomplete split lists: {present} present, missing {missing:?}")]
    IncompleteSplitLists {
        /// How many list files were found.
        present: usize,
        /// The list files that were expected but not found.
        missing: Vec<PathBuf>,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// A tensor has the wrong shape or dtype.
    #[error("shape mismatch for {what}: expected {expected}, got {got}")]
    Shape {
        /// What was checked.
        what: &'static str,
        /// The expected shape, in words.
        expected: String,
        /// The shape received.
        got: String,
    },
    /// Encoding or writing an image failed.
    #[error("cannot write image {path}: {source}")]
    Encode {
        /// The destination.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: image::ImageError,
    },
    /// Writing would replace an existing file, and overwriting was not asked for.
    #[error("refusing to overwrite existing file {path}")]
    WouldOverwrite {
        /// The existing file.
        path: PathBuf,
    },
    /// A DICOM file without pixel data (a structured report, a presentation state, …).
    #[error("DICOM file {path} holds no pixel data")]
    NoPixelData {
        /// The file.
        path: PathBuf,
    },
    /// A medical file in an encoding this build cannot decode (a DICOM transfer syntax whose
    /// codec is behind a feature, or one no codec here reads).
    #[error("{path}: {encoding} cannot be decoded by this build: {remedy}")]
    UnsupportedEncoding {
        /// The file.
        path: PathBuf,
        /// The encoding by name (and UID for DICOM).
        encoding: String,
        /// What would read it: the feature to enable, or a conversion.
        remedy: String,
    },
    /// A class named by the split lists whose image folder is absent.
    #[error(
        "the split lists name class '{class}' ({lists}) but its image folder {path} is missing"
    )]
    ListedClassMissing {
        /// The class.
        class: String,
        /// Its expected folder.
        path: PathBuf,
        /// The lists that name it.
        lists: String,
    },
    /// The intensity window does not overlap the image's values at all (the image would be
    /// one flat colour).
    #[error("window centre {} width {} ({lo}..{hi}) lies outside the values of {path} ({min}..{max})", window.center, window.width, lo = window.range().0, hi = window.range().1)]
    WindowOutsideData {
        /// The file.
        path: PathBuf,
        /// The window.
        window: crate::Window,
        /// The image's lowest value (after the modality rescale).
        min: f64,
        /// The image's highest value.
        max: f64,
    },
    /// A file or folder of the dataset is a symbolic link that leads outside the dataset folder.
    #[error(
        "{path} leads outside the dataset folder {root} (to {target}); copy the file in instead"
    )]
    OutsideRoot {
        /// The link.
        path: PathBuf,
        /// Where it leads.
        target: PathBuf,
        /// The dataset folder.
        root: PathBuf,
    },
    /// The classes cannot be used as they are.
    #[error("classes of {root}: {reason}")]
    Classes {
        /// The dataset folder.
        root: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A patient/study key could not be found for a file.
    #[error("group key for {name}: {reason}")]
    GroupKey {
        /// The file, relative to its class folder.
        name: String,
        /// Why.
        reason: String,
    },
    /// An error from libtorch.
    #[cfg(feature = "tch")]
    #[error(transparent)]
    Tch(#[from] tch::TchError),
    /// The decode cache a stream reads changed under it (rewritten in place): its rows could
    /// be anything now.
    #[error("the decode cache {path} changed under a running job ({what}): rerun to rebuild it")]
    CacheChanged {
        /// The cache file.
        path: PathBuf,
        /// What changed.
        what: String,
    },
    /// An image set file (a program's images in the cache's format, say a GAN's synthetic
    /// set) cannot be used: not one ganaug wrote, damaged, or changed under a running job.
    #[error("image set file {path}: {reason}")]
    SetFile {
        /// The set file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// `Result` with [`DataError`].
pub type Result<T> = std::result::Result<T, DataError>;

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        DataError::Config {
            field,
            reason: reason.into(),
        }
    }

    /// Whether this error concerns one image file (and so may be skipped in
    /// [`OnBadFile::Skip`](crate::OnBadFile::Skip) mode) rather than the dataset as a whole.
    pub fn is_per_file(&self) -> bool {
        matches!(
            self,
            DataError::EmptyFile { .. }
                | DataError::UnknownFormat { .. }
                | DataError::Decode { .. }
                | DataError::TooLarge { .. }
                | DataError::Io { .. }
                | DataError::ListedFileMissing { .. }
                | DataError::NoPixelData { .. }
                | DataError::UnsupportedEncoding { .. }
                | DataError::WindowOutsideData { .. }
        )
    }
}
