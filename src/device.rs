//! Device selection shared by the examples: CUDA when available, overridable by name.

use std::str::FromStr;

use tch::Device;

/// A device request: `auto` (CUDA if available, else CPU), `cpu`, `cuda` or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CUDA device 0 if available, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device N.
    Cuda(usize),
}

/// An unparseable or unavailable device request.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The text is not a device name.
    #[error("unknown device '{0}': use auto, cpu, cuda or cuda:N")]
    Unknown(String),
    /// CUDA was asked for but is not there.
    #[error("device cuda:{index} requested but libtorch sees {available} CUDA device(s)")]
    Unavailable {
        /// The index asked for.
        index: usize,
        /// How many CUDA devices libtorch sees.
        available: usize,
    },
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| DeviceError::Unknown(s.to_string())),
        }
    }
}

impl DeviceChoice {
    /// Resolves the request against what libtorch sees.
    pub fn resolve(self) -> Result<Device, DeviceError> {
        match self {
            DeviceChoice::Auto => Ok(Device::cuda_if_available()),
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda(index) => {
                let available = tch::Cuda::device_count() as usize;
                if index < available {
                    Ok(Device::Cuda(index))
                } else {
                    Err(DeviceError::Unavailable { index, available })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!(
            "auto".parse::<DeviceChoice>().ok(),
            Some(DeviceChoice::Auto)
        );
        assert_eq!("CPU".parse::<DeviceChoice>().ok(), Some(DeviceChoice::Cpu));
        assert_eq!(
            "cuda".parse::<DeviceChoice>().ok(),
            Some(DeviceChoice::Cuda(0))
        );
        assert_eq!(
            "cuda:3".parse::<DeviceChoice>().ok(),
            Some(DeviceChoice::Cuda(3))
        );
        assert!("tpu".parse::<DeviceChoice>().is_err());
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn unavailable_cuda_is_an_error_not_a_silent_cpu() {
        let n = tch::Cuda::device_count() as usize;
        assert!(matches!(
            DeviceChoice::Cuda(n).resolve(),
            Err(DeviceError::Unavailable { index, available }) if index == n && available == n
        ));
        assert_eq!(DeviceChoice::Cpu.resolve().ok(), Some(Device::Cpu));
    }
}
