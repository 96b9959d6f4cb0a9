// Shared by the build scripts of `rebel-rs` (./build.rs) and `rebel-agents` (agents/build.rs) through
// `include!`; a package that links tch must depend directly on `torch-sys` for DEP_TCH_LIBTORCH_LIB to be set
// (torch-sys declares `links = "tch"`).
//
// torch-sys adds no rpath, so without this a binary fails with `libtorch_cpu.so: cannot open shared object
// file` unless LD_LIBRARY_PATH is set. And the linker drops libtorch_cuda.so as unused (`--as-needed`), which
// makes `tch::Cuda::is_available()` false even on a GPU host; linking it with `--no-as-needed` keeps CUDA
// usable (such a binary still runs on a machine without a GPU).

/// Prints the cargo instructions that embed libtorch's lib folder as an rpath and keep libtorch_cuda linked.
fn emit_libtorch_link_args() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib = match std::env::var("DEP_TCH_LIBTORCH_LIB") {
        Ok(lib) => lib,
        Err(_) => {
            println!(
                "cargo:warning=DEP_TCH_LIBTORCH_LIB is not set (does this package depend directly on torch-sys?); \
                 binaries will need LD_LIBRARY_PATH to find libtorch"
            );
            return;
        }
    };
    let lib = std::path::Path::new(&lib);
    let lib = std::fs::canonicalize(lib).unwrap_or_else(|_| lib.to_path_buf());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
