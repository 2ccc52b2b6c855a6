//! How every image becomes the dataset's pixels: size, resampling filter, aspect policy,
//! colour mode and the decompression-bomb guard.

use fast_image_resize::{FilterType, ResizeAlg};
use serde::{Deserialize, Serialize};

use crate::{DataError, Result};

/// Gray or colour pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ColorMode {
    /// One channel: ITU-R BT.601 luma of colour files (JPEG's Y channel, Pillow's
    /// `convert("L")`).
    #[default]
    Gray,
    /// Three channels, R, G, B (alpha dropped, CMYK converted).
    Rgb,
    /// Decided from the pixels when the dataset is loaded: gray when every file's R, G and B
    /// differ by at most [`ColorMode::AUTO_TOLERANCE`] (files stored as RGB or RGBA whose
    /// channels are equal, with a little JPEG chroma noise), RGB otherwise. The load report
    /// says what was decided and why.
    Auto,
}

/// Bits per sample kept from the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Depth {
    /// 8 bits (16-bit files are reduced; the default, and COVID-CT's).
    #[default]
    Eight,
    /// 16 bits: 16-bit PNG/TIFF and DICOM (after its window) keep their full precision; 8-bit
    /// files are scaled by 257, which gives exactly the same values in [0, 1].
    Sixteen,
    /// 16 bits when any file is 16-bit (PNG/TIFF) or a DICOM storing more than 8 bits (read
    /// from the headers), else 8. The load report says what was decided.
    Auto,
}

impl Depth {
    /// Whether this is [`Depth::Eight`].
    pub fn is_eight(&self) -> bool {
        *self == Depth::Eight
    }

    /// Bytes per sample of a decided depth (`Auto` counts as 1).
    pub fn bytes(self) -> usize {
        match self {
            Depth::Sixteen => 2,
            Depth::Eight | Depth::Auto => 1,
        }
    }

    /// Parses `8`, `16` or `auto`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "8" => Ok(Depth::Eight),
            "16" => Ok(Depth::Sixteen),
            "auto" => Ok(Depth::Auto),
            other => Err(DataError::config(
                "depth",
                format!("{other:?} is not one of 8, 16, auto"),
            )),
        }
    }
}

impl ColorMode {
    /// Largest channel difference (of 255) a gray-looking colour file may have under
    /// [`ColorMode::Auto`].
    pub const AUTO_TOLERANCE: u8 = 3;

    /// Whether this is [`ColorMode::Gray`].
    pub fn is_gray(&self) -> bool {
        *self == ColorMode::Gray
    }

    /// Channels of a decided mode (1 or 3); `None` for [`ColorMode::Auto`].
    pub fn channels(self) -> Option<i64> {
        match self {
            ColorMode::Gray => Some(1),
            ColorMode::Rgb => Some(3),
            ColorMode::Auto => None,
        }
    }

    /// `"gray"`, `"rgb"` or `"auto"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ColorMode::Gray => "gray",
            ColorMode::Rgb => "rgb",
            ColorMode::Auto => "auto",
        }
    }

    /// Parses `gray`, `rgb` or `auto` (the command-line spelling).
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "gray" | "grey" => Ok(ColorMode::Gray),
            "rgb" | "color" | "colour" => Ok(ColorMode::Rgb),
            "auto" => Ok(ColorMode::Auto),
            other => Err(DataError::config(
                "color",
                format!("{other:?} is not one of gray, rgb, auto"),
            )),
        }
    }
}

/// An intensity window for DICOM images, in the modality's units after the rescale slope and
/// intercept (Hounsfield units for CT): values from `center − width/2` to `center + width/2`
/// map to black … white, values outside are clipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    /// Window centre (level).
    pub center: i32,
    /// Window width, at least 1.
    pub width: u32,
}

impl Default for Window {
    /// [`Window::LUNG`].
    fn default() -> Self {
        Window::LUNG
    }
}

impl Window {
    /// The lung window, centre −600 HU, width 1500 HU (the default: chest CT).
    pub const LUNG: Window = Window {
        center: -600,
        width: 1500,
    };
    /// The mediastinal (soft-tissue) window, centre 40 HU, width 400 HU.
    pub const MEDIASTINUM: Window = Window {
        center: 40,
        width: 400,
    };

    /// Whether this is [`Window::LUNG`].
    pub fn is_lung(&self) -> bool {
        *self == Window::LUNG
    }

    /// Lowest and highest value of the window.
    pub fn range(&self) -> (f64, f64) {
        let half = f64::from(self.width) / 2.0;
        (f64::from(self.center) - half, f64::from(self.center) + half)
    }

    /// Parses `lung`, `mediastinum` or `CENTER,WIDTH` (e.g. `-600,1500`).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| DataError::config("window", format!("{s:?}: {why}"));
        match s.to_ascii_lowercase().as_str() {
            "lung" => return Ok(Window::LUNG),
            "mediastinum" | "soft-tissue" => return Ok(Window::MEDIASTINUM),
            _ => {}
        }
        let (c, w) = s
            .split_once(',')
            .ok_or_else(|| bad("expected lung, mediastinum or CENTER,WIDTH"))?;
        let center = c
            .trim()
            .parse()
            .map_err(|_| bad("the centre is not an integer"))?;
        let width: u32 = w
            .trim()
            .parse()
            .map_err(|_| bad("the width is not a positive integer"))?;
        if width == 0 {
            return Err(bad("the width must be at least 1"));
        }
        Ok(Window { center, width })
    }
}

impl std::fmt::Display for ColorMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Resampling filter used when resizing to the square output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ResizeFilter {
    /// Nearest neighbour.
    Nearest,
    /// Box (area average).
    Box,
    /// Bilinear, antialiased when shrinking (as Pillow's `BILINEAR`).
    #[default]
    Bilinear,
    /// Hamming.
    Hamming,
    /// Catmull-Rom bicubic.
    CatmullRom,
    /// Mitchell-Netravali bicubic.
    Mitchell,
    /// Lanczos with 3 lobes.
    Lanczos3,
}

impl ResizeFilter {
    pub(crate) fn algorithm(self) -> ResizeAlg {
        let f = match self {
            ResizeFilter::Nearest => return ResizeAlg::Nearest,
            ResizeFilter::Box => FilterType::Box,
            ResizeFilter::Bilinear => FilterType::Bilinear,
            ResizeFilter::Hamming => FilterType::Hamming,
            ResizeFilter::CatmullRom => FilterType::CatmullRom,
            ResizeFilter::Mitchell => FilterType::Mitchell,
            ResizeFilter::Lanczos3 => FilterType::Lanczos3,
        };
        ResizeAlg::Convolution(f)
    }
}

/// How a non-square image is fitted into the square output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ResizePolicy {
    /// Scale each axis independently (aspect ratio not kept).
    #[default]
    Stretch,
    /// Keep the aspect ratio, fit inside, pad the borders with black.
    Pad,
    /// Keep the aspect ratio, fill the square, crop the overflow around the centre.
    CenterCrop,
}

/// How every image is turned into the dataset's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageSpec {
    /// Output side length in pixels (the output is `size x size`).
    pub size: u32,
    /// Resampling filter.
    pub filter: ResizeFilter,
    /// Aspect-ratio policy.
    pub policy: ResizePolicy,
    /// Largest accepted image, in pixels (width x height), checked from the header before
    /// decoding: a guard against decompression bombs.
    pub max_pixels: u64,
    /// Gray, RGB, or decided from the pixels ([`ColorMode::Auto`]); not written when gray, so
    /// that specs from before colour keep their meaning.
    #[serde(default, skip_serializing_if = "ColorMode::is_gray")]
    pub color: ColorMode,
    /// The intensity window of DICOM images (other formats ignore it); not written when it is
    /// the default lung window.
    #[serde(default, skip_serializing_if = "Window::is_lung")]
    pub window: Window,
    /// Bits per sample kept; not written when 8.
    #[serde(default, skip_serializing_if = "Depth::is_eight")]
    pub depth: Depth,
}

impl Default for ImageSpec {
    /// 224x224, gray, bilinear, stretched (what the paper's classifiers take), at most 64 megapixels.
    fn default() -> Self {
        ImageSpec {
            size: 224,
            filter: ResizeFilter::Bilinear,
            policy: ResizePolicy::Stretch,
            max_pixels: 64 << 20,
            color: ColorMode::Gray,
            window: Window::LUNG,
            depth: Depth::Eight,
        }
    }
}

impl ImageSpec {
    /// A spec with the given output size and the other fields at their defaults.
    pub fn with_size(size: u32) -> Self {
        ImageSpec {
            size,
            ..Self::default()
        }
    }

    /// The same spec with another colour mode.
    pub fn with_color(mut self, color: ColorMode) -> Self {
        self.color = color;
        self
    }

    /// The same spec with another bit depth.
    pub fn with_depth(mut self, depth: Depth) -> Self {
        self.depth = depth;
        self
    }

    /// The same spec with another DICOM window.
    pub fn with_window(mut self, window: Window) -> Self {
        self.window = window;
        self
    }

    /// Checks the fields.
    pub fn validate(&self) -> Result<()> {
        if self.size == 0 || self.size > 8192 {
            return Err(DataError::config(
                "size",
                format!("{} is not in 1..=8192", self.size),
            ));
        }
        if self.window.width == 0 {
            return Err(DataError::config("window", "the width must be at least 1"));
        }
        if self.max_pixels == 0 {
            return Err(DataError::config("max_pixels", "must be positive"));
        }
        Ok(())
    }
}
