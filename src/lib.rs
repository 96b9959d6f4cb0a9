//! rebel-rs: REBEL (Regressing Relative Rewards) for continuous control on Rapier, with libtorch.
//!
//! This crate holds the command line shared by the `swimmer` and `rebel` binaries; the
//! environments live in `rebel-envs`, everything that touches tch in `rebel-agents`.

pub mod cli;
pub mod fuzz;
