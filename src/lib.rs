//! rebel-rs: REBEL (Regressing Relative Rewards) for continuous control on Rapier, with libtorch.
//!
//! This crate holds the command line shared by the `swimmer` and `rebel` binaries; the
//! environments live in `rebel-envs`, everything that touches tch in `rebel-agents`.

pub mod cli;
pub mod fuzz;

/// jemalloc for every allocation of the binaries: Rust's, and, since its `malloc`, `free` and the rest are exported
/// unprefixed (the feature `unprefixed_malloc_on_supported_platforms`), libtorch's and every other C or C++
/// library's in the process. Against glibc's allocator: the default run 3–4 % faster and about 10 MiB lower at its
/// peak with jemalloc for Rust alone, 8 MiB lower again with libtorch on it too (README, "Memory").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
