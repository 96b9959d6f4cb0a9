//! MuJoCo-style environments on Rapier with Gymnasium's semantics. No libtorch in here.
//!
//! * [`Env`]: the environment trait (reset/step/snapshot/restore), [`BoxSpace`], [`Step`].
//! * [`make`] and [`register`]: the registry (`make("Swimmer-v5", &config)`).
//! * [`swimmer::Swimmer`]: MuJoCo's Swimmer-v5 on Rapier, with MuJoCo's fluid forces ([`fluid`]).
//! * [`reacher::Reacher`], [`inverted_pendulum::InvertedPendulum`]: Reacher-v5 and
//!   InvertedPendulum-v5 on Rapier multibodies.
//! * [`locomotion::Locomotion`]: MuJoCo's planar runners with contacts (floor, friction):
//!   [`half_cheetah`] (HalfCheetah-v5), [`hopper`] (Hopper-v5), [`walker2d`] (Walker2d-v5).
//! * [`ant::Ant`], [`humanoid::Humanoid`]: Ant-v5 and Humanoid-v5 on floating bases.
//! * [`vec_env::VecEnv`]: many environments stepped on a thread pool, with auto-reset.
//! * [`render`]: top-down pictures of planar environments, PNG and animated GIF.

pub mod ant;
pub mod config;
pub mod csvio;
pub mod env;
pub mod error;
pub mod fidelity;
pub mod fluid;
pub mod free_base;
pub mod rapier_world;
#[cfg(feature = "gymnasium")]
pub mod gymnasium;
pub mod half_cheetah;
pub mod locomotion;
pub mod hopper;
pub mod humanoid;
pub mod inverted_double_pendulum;
pub mod inverted_pendulum;
pub mod mjcf;
pub mod reacher;
pub mod swimmer;
pub mod registry;
pub mod render;
mod step_pool;
pub mod vec_env;
pub mod walker2d;
pub mod wrappers;

pub use config::{ConfigValue, EnvConfig};
pub use env::{check_action, BoxSpace, Capsule2, Env, Info, PlanarScene, Snapshot, Step};
pub use error::EnvError;
pub use registry::{
    dynamics_history, dynamics_revision, given_without_effect, inert_options, make, options_for_revision, register, register_with_history, registered, settings,
};
pub use vec_env::{VecEnv, VecStep};
pub use wrappers::{ClipAction, TimeLimit};
