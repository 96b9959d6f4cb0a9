//! Embeds libtorch's library folder as an rpath in the `rebel-rs` binaries.
//! The logic is shared with `agents/build.rs`.
//!
//! Also sets `REBEL_SOURCE_HASH`: a hash of every source file that decides what a training run computes
//! (`agents/src`, `envs/src`, `envs/models`, `src`, `Cargo.lock`). `compare` keys its caches by it, so a
//! comparison never mixes runs made by different code.
include!("build_support/libtorch_rpath.rs");

fn hash_tree(path: &std::path::Path, h: &mut u64) {
    let Ok(meta) = std::fs::metadata(path) else { return };
    if meta.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path).into_iter().flatten().flatten().map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            hash_tree(&e, h);
        }
    } else if let Ok(bytes) = std::fs::read(path) {
        // FNV-1a over the path (relative, '/'-separated) and the contents
        for b in path.to_string_lossy().replace('\\', "/").bytes().chain([0]).chain(bytes).chain([0]) {
            *h = (*h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
}

fn main() {
    emit_libtorch_link_args();
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for p in ["agents/src", "envs/src", "envs/models", "src", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={p}");
        hash_tree(std::path::Path::new(p), &mut h);
    }
    println!("cargo:rustc-env=REBEL_SOURCE_HASH={h:016x}");
}
