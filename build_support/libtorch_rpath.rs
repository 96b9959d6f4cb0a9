// Shared by the build scripts of `rebel-rs` (./build.rs) and `rebel-agents` (agents/build.rs) through
// `include!`; a package that links tch must depend directly on `torch-sys` for DEP_TCH_LIBTORCH_LIB to be set
// (torch-sys declares `links = "tch"`).
//
// torch-sys adds no rpath, so without this a binary fails with `libtorch_cpu.so: cannot open shared object
// file` unless LD_LIBRARY_PATH is set. The linker drops libtorch_cuda.so as unused (`--as-needed`), and we let it:
// a CPU run then never maps the CUDA stack (cuDNN, cuBLAS, NCCL, nvshmem: about 250 MB of resident memory).
// `rebel_agents::device` opens libtorch_cuda at run time, before the first CUDA query, when a CUDA device is
// asked for; it finds the folder through the rpath, or through REBEL_LIBTORCH_LIB set here.

/// Prints the cargo instructions that embed libtorch's lib folder as an rpath and name it to the crate.
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
    println!("cargo:rustc-env=REBEL_LIBTORCH_LIB={}", lib.display());
    if let Some(v) = libtorch_version(&lib) {
        println!("cargo:rustc-env=REBEL_LIBTORCH_VERSION={v}");
    }
}

/// libtorch's version from its folder: `build-version` beside `lib/` in a libtorch archive, or `version.py`'s
/// `__version__` beside `lib/` in PyPI's torch package (recorded with every run: `rebel_agents::machine`).
fn libtorch_version(lib: &std::path::Path) -> Option<String> {
    let root = lib.parent()?;
    let (archive, pypi) = (root.join("build-version"), root.join("version.py"));
    // (a path that does not exist would make cargo rerun the script at every build)
    let file = [archive, pypi].into_iter().find(|f| f.is_file())?;
    println!("cargo:rerun-if-changed={}", file.display());
    let text = std::fs::read_to_string(&file).ok()?;
    let v = match file.extension() {
        None => text.trim().to_string(),
        Some(_) => text.lines().find_map(|l| {
            let v = l.strip_prefix("__version__")?.trim_start().strip_prefix('=')?.trim();
            Some(v.trim_matches(|c| c == '\'' || c == '"').to_string())
        })?,
    };
    (!v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || ".+-_".contains(c))).then_some(v)
}
