//! One file per algorithm: its Config and its update, readable top to bottom.
pub mod rebel;
