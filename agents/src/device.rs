//! Choosing the libtorch device from a string: `"cpu"`, `"cuda"`, `"cuda:N"` or `"auto"`.

use tch::{Cuda, Device};

/// Why a device string could not be turned into a [`tch::Device`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    /// The string is none of the accepted forms.
    #[error("unknown device {0:?}: use \"cpu\", \"cuda\", \"cuda:N\" (N = GPU index) or \"auto\"")]
    Unknown(String),
    /// CUDA was asked for but libtorch sees no GPU.
    #[error(
        "device {requested:?} asked for, but CUDA is not available to libtorch (no GPU, no driver, or a \
         CPU-only libtorch); use --device cpu or \"auto\""
    )]
    CudaUnavailable {
        /// The string that was asked for.
        requested: String,
    },
    /// A GPU index beyond the number of visible GPUs.
    #[error("device {requested:?} asked for, but only {count} CUDA device(s) are visible (indices 0..{count})")]
    NoSuchGpu {
        /// The string that was asked for.
        requested: String,
        /// Number of GPUs libtorch sees.
        count: usize,
    },
}

/// Parses a device string (case-insensitive, surrounding spaces ignored).
///
/// * `"cpu"` → `Device::Cpu`;
/// * `"cuda"` → `Device::Cuda(0)`, `"cuda:N"` → `Device::Cuda(N)`; both fail with a [`DeviceError`] when CUDA
///   is unavailable or `N` is out of range;
/// * `"auto"` → `Device::Cuda(0)` when CUDA is available, else `Device::Cpu`.
pub fn parse_device(s: &str) -> Result<Device, DeviceError> {
    parse_device_with(s, Cuda::is_available(), Cuda::device_count().max(0) as usize)
}

/// [`parse_device`] with CUDA availability and the GPU count given explicitly (testable without a GPU).
pub fn parse_device_with(s: &str, cuda_available: bool, gpu_count: usize) -> Result<Device, DeviceError> {
    let norm = s.trim().to_ascii_lowercase();
    let cuda_index = match norm.as_str() {
        "cpu" => return Ok(Device::Cpu),
        "auto" => return Ok(if cuda_available && gpu_count > 0 { Device::Cuda(0) } else { Device::Cpu }),
        "cuda" | "gpu" => 0usize,
        other => match other.strip_prefix("cuda:") {
            Some(n) => n.parse::<usize>().map_err(|_| DeviceError::Unknown(s.to_string()))?,
            None => return Err(DeviceError::Unknown(s.to_string())),
        },
    };
    if !cuda_available {
        return Err(DeviceError::CudaUnavailable { requested: s.to_string() });
    }
    if cuda_index >= gpu_count {
        return Err(DeviceError::NoSuchGpu { requested: s.to_string(), count: gpu_count });
    }
    Ok(Device::Cuda(cuda_index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms() {
        assert_eq!(parse_device_with("cpu", false, 0), Ok(Device::Cpu));
        assert_eq!(parse_device_with(" CPU ", true, 2), Ok(Device::Cpu));
        assert_eq!(parse_device_with("auto", false, 0), Ok(Device::Cpu));
        assert_eq!(parse_device_with("auto", true, 1), Ok(Device::Cuda(0)));
        assert_eq!(parse_device_with("cuda", true, 1), Ok(Device::Cuda(0)));
        assert_eq!(parse_device_with("cuda:1", true, 2), Ok(Device::Cuda(1)));
    }

    #[test]
    fn errors_are_typed_and_say_what_to_do() {
        let e = parse_device_with("cuda", false, 0).unwrap_err();
        assert!(matches!(e, DeviceError::CudaUnavailable { .. }));
        assert!(e.to_string().contains("--device cpu"));
        assert!(matches!(parse_device_with("cuda:3", true, 2), Err(DeviceError::NoSuchGpu { count: 2, .. })));
        assert!(matches!(parse_device_with("tpu", true, 2), Err(DeviceError::Unknown(_))));
        assert!(matches!(parse_device_with("cuda:x", true, 2), Err(DeviceError::Unknown(_))));
    }

    /// The real query must not crash on a machine without a GPU (libtorch_cuda is linked by build.rs).
    #[test]
    fn real_query_does_not_crash() {
        let d = parse_device("auto").unwrap();
        assert_eq!(d == Device::Cpu, !Cuda::is_available());
        if !Cuda::is_available() {
            assert!(matches!(parse_device("cuda"), Err(DeviceError::CudaUnavailable { .. })));
        }
    }
}
