//! Whether a dataset is streamed: on, off, or by its size against the memory available.

use crate::{DataError, Result};

/// Whether a dataset is read into memory or streamed from the decode cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Streaming {
    /// Always streamed.
    On,
    /// Always in memory.
    Off,
    /// Streamed when its `f32` images would take more than [`Streaming::AUTO_SHARE`] of the
    /// memory available when the decision is made.
    #[default]
    Auto,
}

impl Streaming {
    /// The share of available memory above which [`Streaming::Auto`] streams: the images are
    /// not the only thing a run holds (models, features, the page cache of the files).
    pub const AUTO_SHARE: f64 = 0.4;

    /// Parses `on`, `off` or `auto`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "on" => Ok(Streaming::On),
            "off" => Ok(Streaming::Off),
            "auto" => Ok(Streaming::Auto),
            other => Err(DataError::config(
                "stream",
                format!("{other:?}: expected on, off or auto"),
            )),
        }
    }

    /// Decides for `images` images of `channels` × `side`² (all splits together).
    pub fn decide(self, images: usize, channels: i64, side: u32) -> StreamDecision {
        let bytes = images as u64 * channels.max(1) as u64 * u64::from(side).pow(2) * 4;
        let available = available_memory();
        let stream = match self {
            Streaming::On => true,
            Streaming::Off => false,
            Streaming::Auto => {
                available.is_some_and(|a| bytes as f64 > Self::AUTO_SHARE * a as f64)
            }
        };
        StreamDecision {
            mode: self,
            stream,
            bytes,
            available,
        }
    }
}

/// What [`Streaming::decide`] decided, and from what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamDecision {
    /// What was asked.
    pub mode: Streaming,
    /// Whether to stream.
    pub stream: bool,
    /// The images' size as `f32`.
    pub bytes: u64,
    /// Memory available when it was decided (`None` when it cannot be read).
    pub available: Option<u64>,
}

impl std::fmt::Display for StreamDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gb = |b: u64| b as f64 / 1e9;
        let how = if self.stream {
            "streamed from the decode cache"
        } else {
            "in memory"
        };
        write!(f, "images {how} ({:.2} GB as f32", gb(self.bytes))?;
        match (self.mode, self.available) {
            (Streaming::Auto, Some(a)) => write!(
                f,
                "; {:.1} GB available, streaming above {:.0}% of it: --stream auto)",
                gb(a),
                Streaming::AUTO_SHARE * 100.0
            ),
            (Streaming::Auto, None) => write!(f, "; available memory unknown: --stream auto)"),
            (mode, _) => write!(
                f,
                "; --stream {})",
                if mode == Streaming::On { "on" } else { "off" }
            ),
        }
    }
}

/// Memory available to new allocations now (`None` where the system cannot say).
pub fn available_memory() -> Option<u64> {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    Some(sys.available_memory()).filter(|&a| a > 0)
}
