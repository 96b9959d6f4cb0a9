//! One file per algorithm: its Config and its update, readable top to bottom.
pub mod dpo;
pub mod ppo;
pub mod rebel;
pub mod reinforce;
pub mod rloo;
