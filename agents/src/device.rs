//! Choosing the libtorch device from a string: `"cpu"`, `"cuda"`, `"cuda:N"` or `"auto"`.
//!
//! The binaries do not link libtorch's CUDA library (the linker drops it, see `build_support/libtorch_rpath.rs`),
//! so a CPU run never maps the CUDA stack. Asking for `"cuda"`, `"cuda:N"` or `"auto"` opens `libtorch_cuda.so`
//! first ([`load_cuda`]); its static initialisers register libtorch's CUDA hooks, kernels and device guard. That
//! must happen before the process's first CUDA query or first backward pass (libtorch caches both), which is why
//! `train` and `experiment` resolve their device before any other libtorch work.

use std::sync::OnceLock;
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
    /// CUDA was asked for but libtorch's CUDA library could not be opened.
    #[error(
        "device {requested:?} asked for, but libtorch's CUDA library could not be loaded ({why}); use --device cpu, \
         or point LIBTORCH at a CUDA build of libtorch and rebuild"
    )]
    CudaLibrary {
        /// The string that was asked for.
        requested: String,
        /// What the dynamic loader said.
        why: String,
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
///
/// `"cpu"` touches nothing of CUDA; the other forms load libtorch's CUDA library first ([`load_cuda`]).
pub fn parse_device(s: &str) -> Result<Device, DeviceError> {
    // the form first: "cpu" and unknown strings never load CUDA
    if parse_device_with(s, true, usize::MAX)? == Device::Cpu {
        return Ok(Device::Cpu);
    }
    if let Err(why) = load_cuda() {
        if s.trim().eq_ignore_ascii_case("auto") {
            return Ok(Device::Cpu);
        }
        return Err(DeviceError::CudaLibrary { requested: s.to_string(), why });
    }
    parse_device_with(s, Cuda::is_available(), Cuda::device_count().max(0) as usize)
}

/// The libtorch library folder the binaries were linked against (set by the build script), if known.
fn linked_libtorch_dir() -> Option<&'static str> {
    option_env!("REBEL_LIBTORCH_LIB")
}

/// Opens `libtorch_cuda.so` once per process (`RTLD_NOW | RTLD_GLOBAL`, never closed) and says whether it
/// could. It is looked for in the libtorch folder the build linked against, then by the loader's own search
/// (the binary's rpath, `LD_LIBRARY_PATH`). Returns the loader's message when neither works, for example with
/// a CPU-only libtorch.
pub fn load_cuda() -> Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED.get_or_init(open_cuda_library).clone()
}

fn open_cuda_library() -> Result<(), String> {
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
    let mut candidates = Vec::new();
    if let Some(dir) = linked_libtorch_dir() {
        let p = std::path::Path::new(dir).join("libtorch_cuda.so");
        if p.exists() {
            candidates.push(p.into_os_string());
        }
    }
    candidates.push("libtorch_cuda.so".into());
    let mut errors = Vec::new();
    for c in candidates {
        // SAFETY: libtorch_cuda's initialisers only register CUDA kernels and hooks with the libtorch already
        // loaded; the library stays open for the life of the process.
        match unsafe { Library::open(Some(&c), RTLD_NOW | RTLD_GLOBAL) } {
            Ok(lib) => {
                std::mem::forget(lib);
                return Ok(());
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(errors.join("; "))
}

/// Whether libtorch's CUDA library is mapped into this process (read from `/proc/self/maps`; false where that
/// cannot be read).
pub fn cuda_library_mapped() -> bool {
    std::fs::read_to_string("/proc/self/maps").map(|m| m.contains("libtorch_cuda.so")).unwrap_or(false)
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

    /// The real query must not crash on a machine without a GPU (libtorch_cuda is opened on demand).
    #[test]
    fn real_query_does_not_crash() {
        let d = parse_device("auto").unwrap();
        assert_eq!(d == Device::Cpu, !Cuda::is_available());
        if !Cuda::is_available() {
            let e = parse_device("cuda").unwrap_err();
            assert!(matches!(e, DeviceError::CudaUnavailable { .. } | DeviceError::CudaLibrary { .. }), "{e}");
        }
    }
}
