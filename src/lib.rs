//! rebel-rs: REBEL (Regressing Relative Rewards) for continuous control on Rapier, with libtorch.
//!
//! This crate holds the command line shared by the `swimmer` and `rebel` binaries; the
//! environments live in `rebel-envs`, everything that touches tch in `rebel-agents`.

pub mod cli;
pub mod fuzz;

/// jemalloc for every Rust allocation of the binaries (libtorch keeps the C library's `malloc`): the default
/// run 3–4 % faster and about 10 MiB lower at its peak than with glibc's allocator (README, "Memory").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
