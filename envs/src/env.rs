//! The environment interface: Gymnasium's semantics in plain Rust.
//!
//! * `reset(seed)` returns the first observation and an info map; a `Some(seed)` re-seeds the
//!   environment's random generator (Gymnasium's `reset(seed=...)`), `None` continues its stream.
//! * `step(action)` returns a [`Step`]: observation, reward, `terminated` (a terminal state of the
//!   MDP) and `truncated` (cut by a time limit or similar) kept apart, and an info map whose reward
//!   terms add up to the reward.
//! * Observations and actions are `f32` slices, never tensors; rewards and info values are `f64`.
//! * [`Env::snapshot`] / [`Env::restore`] capture the complete simulator state, random generator
//!   and step counters included, so that two rollouts can start from the same state. A restored
//!   run is bit-identical to the original run from that state.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::error::EnvError;

/// Named scalar values reported by `reset` and `step` (Gymnasium's `info` dict): reward terms,
/// positions, velocities.
///
/// Names are `&'static str` and the values sit in one small vector in the order they were first set,
/// so a step allocates no string per name: building the Swimmer's seven values costs a fifth of what the
/// `BTreeMap<String, f64>` it replaces did (`examples/info_cost.rs`). Lookups scan the few names with
/// equality tests, which is faster here than keeping them sorted (string comparisons).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Info(Vec<(&'static str, f64)>);

impl Info {
    /// No values.
    pub fn new() -> Self {
        Info(Vec::new())
    }

    /// Room for `n` values without reallocating.
    pub fn with_capacity(n: usize) -> Self {
        Info(Vec::with_capacity(n))
    }

    /// Sets `name` to `value`; returns the value it replaces, if any (the name keeps its place).
    pub fn insert(&mut self, name: &'static str, value: f64) -> Option<f64> {
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(e) => Some(std::mem::replace(&mut e.1, value)),
            None => {
                self.0.push((name, value));
                None
            }
        }
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&f64> {
        self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// Whether `name` has a value.
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Names and values, in the order the names were first set.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        self.0.iter().copied()
    }

    /// Names, in the order they were first set.
    pub fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|(k, _)| *k)
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Index<&str> for Info {
    type Output = f64;

    /// The value of `name`; panics when there is none (as a map's index does).
    fn index(&self, name: &str) -> &f64 {
        self.get(name).unwrap_or_else(|| panic!("no info value named {name:?}"))
    }
}

impl<'a> IntoIterator for &'a Info {
    type Item = (&'static str, f64);
    type IntoIter = std::iter::Copied<std::slice::Iter<'a, (&'static str, f64)>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().copied()
    }
}

impl FromIterator<(&'static str, f64)> for Info {
    fn from_iter<I: IntoIterator<Item = (&'static str, f64)>>(iter: I) -> Self {
        let mut info = Info::new();
        for (k, v) in iter {
            info.insert(k, v);
        }
        info
    }
}

/// A box in R^n: `low[i] <= x[i] <= high[i]` (bounds may be infinite), like `gymnasium.spaces.Box`.
#[derive(Clone, Debug, PartialEq)]
pub struct BoxSpace {
    /// Lower bounds, one per dimension.
    pub low: Vec<f32>,
    /// Upper bounds, one per dimension.
    pub high: Vec<f32>,
}

impl BoxSpace {
    /// A box with the given bounds. Panics if the lengths differ or a low bound exceeds its high
    /// bound (a programming error in an environment's definition).
    pub fn new(low: Vec<f32>, high: Vec<f32>) -> Self {
        assert_eq!(low.len(), high.len(), "BoxSpace: low and high differ in length");
        assert!(
            low.iter().zip(&high).all(|(l, h)| l <= h),
            "BoxSpace: a low bound exceeds its high bound"
        );
        BoxSpace { low, high }
    }

    /// The same bounds `[low, high]` in every one of `dim` dimensions.
    pub fn uniform(dim: usize, low: f32, high: f32) -> Self {
        BoxSpace::new(vec![low; dim], vec![high; dim])
    }

    /// Number of dimensions.
    pub fn dim(&self) -> usize {
        self.low.len()
    }

    /// Whether `x` has the right length and lies inside the box.
    pub fn contains(&self, x: &[f32]) -> bool {
        x.len() == self.dim()
            && x.iter().zip(self.low.iter().zip(&self.high)).all(|(v, (l, h))| *v >= *l && *v <= *h)
    }

    /// `x` clipped into the box (same length as `x`; extra entries are left as they are).
    pub fn clip(&self, x: &[f32]) -> Vec<f32> {
        x.iter()
            .zip(self.low.iter().zip(&self.high))
            .map(|(v, (l, h))| v.clamp(*l, *h))
            .collect()
    }
}

/// What one `step` returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Observation after the step, `[obs_dim]`.
    pub obs: Vec<f32>,
    /// Reward of the transition (the sum of the `reward_*` terms in `info`).
    pub reward: f64,
    /// The new state is terminal: no future reward, do not bootstrap.
    pub terminated: bool,
    /// The episode was cut (time limit): bootstrap from `obs` if you estimate values.
    pub truncated: bool,
    /// Named scalars: reward terms, positions, velocities.
    pub info: Info,
}

impl Step {
    /// `terminated || truncated`: the episode is over and `reset` must be called.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// An opaque, cheaply cloneable copy of an environment's full state.
///
/// Made by [`Env::snapshot`], consumed by [`Env::restore`] of an environment with the same id.
#[derive(Clone)]
pub struct Snapshot {
    env_id: String,
    data: Arc<dyn Any + Send + Sync>,
}

impl Snapshot {
    /// Wraps environment-specific state `data` for the environment `env_id`.
    pub fn new<T: Any + Send + Sync>(env_id: &str, data: T) -> Self {
        Snapshot { env_id: env_id.to_string(), data: Arc::new(data) }
    }

    /// Id of the environment that made this snapshot.
    pub fn env_id(&self) -> &str {
        &self.env_id
    }

    /// The state, if it is of type `T` and was made by `env_id`; a clear error otherwise.
    pub fn get<T: Any>(&self, env_id: &str) -> Result<&T, EnvError> {
        if self.env_id != env_id {
            return Err(EnvError::SnapshotMismatch {
                expected: env_id.to_string(),
                found: self.env_id.clone(),
            });
        }
        self.data.downcast_ref::<T>().ok_or_else(|| EnvError::SnapshotMismatch {
            expected: env_id.to_string(),
            found: format!("{} (a different state layout)", self.env_id),
        })
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Snapshot({})", self.env_id)
    }
}

/// A capsule (a segment `a`–`b` swept by a disc of `radius`) in the horizontal plane, for drawing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Capsule2 {
    /// One end of the segment (world x, y).
    pub a: [f64; 2],
    /// The other end.
    pub b: [f64; 2],
    /// Radius, metres.
    pub radius: f64,
}

/// What a top-down picture of a planar environment shows (see `render`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanarScene {
    /// The bodies, drawn as filled capsules.
    pub capsules: Vec<Capsule2>,
    /// Points of interest (targets, markers), drawn as small discs: (x, y, radius).
    pub markers: Vec<[f64; 3]>,
    /// The point the camera follows (e.g. the centre of mass).
    pub focus: [f64; 2],
    /// Half-width of the square world window to draw, metres.
    pub view_half_width: f64,
}

/// A reinforcement-learning environment with Gymnasium's semantics.
pub trait Env: Send {
    /// Registry id, e.g. `"Swimmer-v5"`.
    fn id(&self) -> &str;
    /// The observation space.
    fn observation_space(&self) -> &BoxSpace;
    /// The action space.
    fn action_space(&self) -> &BoxSpace;
    /// Seconds of simulated time per `step`.
    fn dt(&self) -> f64;
    /// Starts a new episode. `Some(seed)` re-seeds the environment's generator first.
    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError>;
    /// Advances one step. A wrong action length or a non-finite action is an error, and so is a
    /// simulation that produced a non-finite state (the episode must then be reset).
    fn step(&mut self, action: &[f32]) -> Result<Step, EnvError>;
    /// Complete state, including the random generator and counters.
    fn snapshot(&self) -> Snapshot;
    /// Restores a state made by `snapshot` of an environment with the same id and configuration.
    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), EnvError>;
    /// A top-down view of the current state, for planar environments; `None` otherwise.
    fn planar_scene(&self) -> Option<PlanarScene> {
        None
    }
    /// The episode length after which a `TimeLimit` truncates, if any.
    fn max_episode_steps(&self) -> Option<usize> {
        None
    }
    /// MuJoCo-style generalised positions and velocities `(qpos, qvel)`, where the environment
    /// has them (used by `replay` to write full states).
    fn qpos_qvel(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        None
    }
}

impl Env for Box<dyn Env> {
    fn id(&self) -> &str {
        (**self).id()
    }
    fn observation_space(&self) -> &BoxSpace {
        (**self).observation_space()
    }
    fn action_space(&self) -> &BoxSpace {
        (**self).action_space()
    }
    fn dt(&self) -> f64 {
        (**self).dt()
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError> {
        (**self).reset(seed)
    }
    fn step(&mut self, action: &[f32]) -> Result<Step, EnvError> {
        (**self).step(action)
    }
    fn snapshot(&self) -> Snapshot {
        (**self).snapshot()
    }
    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), EnvError> {
        (**self).restore(snapshot)
    }
    fn planar_scene(&self) -> Option<PlanarScene> {
        (**self).planar_scene()
    }
    fn max_episode_steps(&self) -> Option<usize> {
        (**self).max_episode_steps()
    }
    fn qpos_qvel(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        (**self).qpos_qvel()
    }
}

/// Checks an action's length and finiteness against `space`; the error says what was wrong.
pub fn check_action(space: &BoxSpace, action: &[f32]) -> Result<(), EnvError> {
    if action.len() != space.dim() {
        return Err(EnvError::ActionShape { expected: space.dim(), found: action.len() });
    }
    if let Some(i) = action.iter().position(|a| !a.is_finite()) {
        return Err(EnvError::NonFiniteAction { index: i, value: action[i] });
    }
    Ok(())
}

#[cfg(test)]
mod info_tests {
    use super::Info;

    #[test]
    fn info_sets_replaces_and_reads_values_by_name() {
        let mut info = Info::with_capacity(2);
        assert!(info.is_empty() && info.get("x").is_none());
        assert_eq!(info.insert("reward_forward", 1.5), None);
        assert_eq!(info.insert("reward_ctrl", -0.25), None);
        assert_eq!(info.insert("reward_forward", 2.0), Some(1.5), "a second value replaces the first");
        assert_eq!(info.len(), 2);
        assert_eq!((info["reward_forward"], info.get("reward_ctrl")), (2.0, Some(&-0.25)));
        assert!(info.contains_key("reward_ctrl") && !info.contains_key("reward"));
        assert_eq!(info.iter().collect::<Vec<_>>(), vec![("reward_forward", 2.0), ("reward_ctrl", -0.25)], "first-set order");
        let same: Info = [("reward_forward", 2.0), ("reward_ctrl", -0.25)].into_iter().collect();
        assert_eq!(same, info);
        // a name built at run time compares by its text, not its address
        let name = String::from("reward_ctrl");
        assert_eq!(info.get(&name), Some(&-0.25));
    }

    #[test]
    #[should_panic(expected = "no info value named \"missing\"")]
    fn indexing_a_missing_name_panics_with_it() {
        let _ = Info::new()["missing"];
    }
}
