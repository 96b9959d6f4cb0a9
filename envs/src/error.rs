//! Typed errors of the environment crate. Each message says what was wrong and what to do.

use thiserror::Error;

/// Everything that can go wrong when making, stepping or restoring an environment.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum EnvError {
    /// The action has the wrong number of entries.
    #[error("action has {found} entries but the action space has {expected}: pass one value per actuator")]
    ActionShape { expected: usize, found: usize },
    /// An action entry is NaN or infinite.
    #[error("action[{index}] = {value} is not finite: check the policy output for NaN/inf before stepping")]
    NonFiniteAction { index: usize, value: f32 },
    /// The simulation produced a non-finite state; the episode cannot continue.
    #[error("physics blew up at step {step} of the episode ({what}: not finite or far beyond physical): reset the environment; if it recurs, lower the action scale or report the action sequence")]
    PhysicsBlowUp { step: usize, what: String },
    /// `step` was called before `reset`, or after the episode ended.
    #[error("step() called {0}: call reset() first")]
    NeedsReset(&'static str),
    /// `make` was asked for an id that is not registered.
    #[error("unknown environment '{name}'{hint}; registered environments: {known}")]
    UnknownEnv {
        name: String,
        known: String,
        /// What the name is closest to, with a leading space (or empty): Gymnasium's environment that is not
        /// built yet and why, the version that is, or a near spelling.
        hint: String,
    },
    /// A configuration key this environment does not take.
    #[error("unknown option '{key}' for {env}; valid options: {valid}")]
    UnknownOption { env: String, key: String, valid: String },
    /// A configuration value of the wrong type or out of range.
    #[error("option '{key}' for {env}: {msg}")]
    BadOption { env: String, key: String, msg: String },
    /// A snapshot from another environment (or another configuration) was given to `restore`.
    #[error("snapshot was made by {found} but restored into {expected}: restore only into an environment made with the same id and options")]
    SnapshotMismatch { expected: String, found: String },
    /// Registration of an id that exists already.
    #[error("environment id '{0}' is already registered; choose another id or version suffix")]
    AlreadyRegistered(String),
    /// An error of environment `index` inside a vectorised environment.
    #[error("environment {index} of the vectorised env: {source}")]
    InVecEnv { index: usize, source: Box<EnvError> },
    /// Anything about reading or writing files (renders, CSVs).
    #[error("{0}")]
    Io(String),
}
