//! A CPU run never maps libtorch's CUDA library; asking for a CUDA device (or "auto") opens it.
//! One test in its own binary: the process's mapped libraries are the thing checked.

use rebel_agents::device::{cuda_library_mapped, load_cuda, parse_device};
use rebel_agents::policy::{GaussianPolicy, PolicyConfig};
use tch::{Device, Kind, Tensor};

#[test]
fn cuda_library_is_opened_only_on_demand() {
    // CPU work, a backward pass included, and a "cpu" request: no CUDA library in the process
    let policy = GaussianPolicy::new(PolicyConfig::new(8, 2), Device::Cpu, Kind::Float, 1);
    let obs = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
    policy.mean(&obs).sum(Kind::Float).backward();
    assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
    assert!(parse_device("tpu").is_err());
    assert!(!cuda_library_mapped(), "a CPU-only process mapped libtorch_cuda.so");

    // "auto" opens it where the linked libtorch has one, and falls back to the CPU without a GPU
    let linked_has_cuda = option_env!("REBEL_LIBTORCH_LIB")
        .map(|d| std::path::Path::new(d).join("libtorch_cuda.so").exists())
        .unwrap_or(false);
    let auto = parse_device("auto").unwrap();
    assert_eq!(load_cuda().is_ok(), linked_has_cuda, "{:?}", load_cuda());
    assert_eq!(cuda_library_mapped(), linked_has_cuda);
    if !tch::Cuda::is_available() {
        assert_eq!(auto, Device::Cpu);
        let e = parse_device("cuda").unwrap_err().to_string();
        assert!(e.contains("--device cpu"), "{e}");
    }
}
