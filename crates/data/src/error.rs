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
    /// The bytes are not a PNG or JPEG image (whatever the extension says).
    #[error("not a PNG or JPEG image (by its first bytes): {path}")]
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
    /// An error from libtorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
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
        )
    }
}
