//! Wrappers that change how an environment is driven, not what it simulates (Gymnasium's
//! `gymnasium.wrappers`).
//!
//! | wrapper        | what it does                                                               | state in snapshots |
//! |----------------|----------------------------------------------------------------------------|--------------------|
//! | [`TimeLimit`]  | `truncated = true` on step `max_steps`; refuses steps after the episode end | step counter       |
//! | [`ClipAction`] | clips actions into the inner action space; its own space is unbounded      | none               |
//!
//! Both keep the inner environment's id, so a snapshot of a wrapped environment restores into
//! an environment made the same way (for example by [`crate::make`]) and into nothing else.

use crate::env::{check_action, BoxSpace, Env, Info, PlanarScene, Snapshot, Step};
use crate::error::EnvError;

/// Truncates episodes after `max_steps` steps (Gymnasium's `TimeLimit`).
///
/// * On the step that reaches `max_steps`, `truncated` is set to `true`. A step that is both
///   terminal and the last one reports `terminated = true` *and* `truncated = true`, as Gymnasium
///   does; learners must give `terminated` precedence (no bootstrapping).
/// * `step` before the first `reset`, or after an episode ended (terminated or truncated) without
///   a `reset` in between, is [`EnvError::NeedsReset`].
/// * [`Env::snapshot`] stores the inner snapshot together with the step counter and the
///   episode-over flag, under the inner environment's id.
pub struct TimeLimit<E: Env> {
    env: E,
    max_steps: usize,
    elapsed: usize,
    /// `true` before the first reset and after an episode ended.
    needs_reset: bool,
}

/// What a [`TimeLimit`] puts in its snapshots.
struct TimeLimitState {
    inner: Snapshot,
    elapsed: usize,
    needs_reset: bool,
}

impl<E: Env> TimeLimit<E> {
    /// Wraps `env` with a limit of `max_steps` steps per episode (`max_steps >= 1`, else
    /// [`EnvError::BadOption`] for key `max_episode_steps`).
    pub fn new(env: E, max_steps: usize) -> Result<Self, EnvError> {
        if max_steps == 0 {
            return Err(EnvError::BadOption {
                env: env.id().to_string(),
                key: "max_episode_steps".into(),
                msg: "must be >= 1, got 0".into(),
            });
        }
        Ok(TimeLimit { env, max_steps, elapsed: 0, needs_reset: true })
    }

    /// Steps taken in the current episode.
    pub fn elapsed_steps(&self) -> usize {
        self.elapsed
    }

    /// The limit.
    pub fn max_steps(&self) -> usize {
        self.max_steps
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.env
    }

    /// The wrapped environment, mutably (stepping it directly bypasses the counter).
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.env
    }

    /// Unwraps.
    pub fn into_inner(self) -> E {
        self.env
    }
}

impl<E: Env> Env for TimeLimit<E> {
    fn id(&self) -> &str {
        self.env.id()
    }
    fn observation_space(&self) -> &BoxSpace {
        self.env.observation_space()
    }
    fn action_space(&self) -> &BoxSpace {
        self.env.action_space()
    }
    fn dt(&self) -> f64 {
        self.env.dt()
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError> {
        let out = self.env.reset(seed)?;
        self.elapsed = 0;
        self.needs_reset = false;
        Ok(out)
    }

    fn step(&mut self, action: &[f32]) -> Result<Step, EnvError> {
        if self.needs_reset {
            return Err(EnvError::NeedsReset(if self.elapsed == 0 {
                "before reset()"
            } else {
                "after the episode ended (terminated or truncated)"
            }));
        }
        let mut step = self.env.step(action)?;
        self.elapsed += 1;
        if self.elapsed >= self.max_steps {
            step.truncated = true;
        }
        if step.done() {
            self.needs_reset = true;
        }
        Ok(step)
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new(
            self.env.id(),
            TimeLimitState { inner: self.env.snapshot(), elapsed: self.elapsed, needs_reset: self.needs_reset },
        )
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), EnvError> {
        let state = snapshot.get::<TimeLimitState>(self.env.id())?;
        self.env.restore(&state.inner)?;
        self.elapsed = state.elapsed;
        self.needs_reset = state.needs_reset;
        Ok(())
    }

    fn planar_scene(&self) -> Option<PlanarScene> {
        self.env.planar_scene()
    }

    fn max_episode_steps(&self) -> Option<usize> {
        Some(self.max_steps)
    }
    fn qpos_qvel(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        self.env.qpos_qvel()
    }
}

/// Clips every action into the inner environment's action space before passing it on
/// (Gymnasium's `ClipAction`).
///
/// Its own action space is unbounded (`-inf..inf` in each dimension, as in Gymnasium), so any
/// finite action of the right length is accepted; NaN or infinite entries are still errors.
/// Log-probabilities should be computed for the unclipped action the policy sampled.
pub struct ClipAction<E: Env> {
    env: E,
    space: BoxSpace,
}

impl<E: Env> ClipAction<E> {
    /// Wraps `env`.
    pub fn new(env: E) -> Self {
        let space = BoxSpace::uniform(env.action_space().dim(), f32::NEG_INFINITY, f32::INFINITY);
        ClipAction { env, space }
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.env
    }

    /// The wrapped environment, mutably.
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.env
    }

    /// Unwraps.
    pub fn into_inner(self) -> E {
        self.env
    }
}

impl<E: Env> Env for ClipAction<E> {
    fn id(&self) -> &str {
        self.env.id()
    }
    fn observation_space(&self) -> &BoxSpace {
        self.env.observation_space()
    }
    /// Unbounded: `[-inf, inf]^act_dim`.
    fn action_space(&self) -> &BoxSpace {
        &self.space
    }
    fn dt(&self) -> f64 {
        self.env.dt()
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError> {
        self.env.reset(seed)
    }
    fn step(&mut self, action: &[f32]) -> Result<Step, EnvError> {
        check_action(&self.space, action)?;
        let clipped = self.env.action_space().clip(action);
        self.env.step(&clipped)
    }
    /// The inner snapshot: this wrapper has no state of its own.
    fn snapshot(&self) -> Snapshot {
        self.env.snapshot()
    }
    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), EnvError> {
        self.env.restore(snapshot)
    }
    fn planar_scene(&self) -> Option<PlanarScene> {
        self.env.planar_scene()
    }
    fn max_episode_steps(&self) -> Option<usize> {
        self.env.max_episode_steps()
    }
    fn qpos_qvel(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        self.env.qpos_qvel()
    }
}

/// A tiny deterministic environment for the crate's unit tests: a 1-D point mass.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::env::{check_action, BoxSpace, Capsule2, Env, Info, PlanarScene, Snapshot, Step};
    use crate::error::EnvError;

    /// A unit mass on a line, pushed by a force in [-1, 1], semi-implicit Euler with dt 0.05.
    /// Reward `-x^2 - 0.1 a^2` (terms `reward_dist`, `reward_ctrl`); terminated when `|x| > 2`.
    /// Starts at `x ~ U(-0.5, 0.5)`, `v = 0` from a seeded SplitMix64 stream.
    #[derive(Clone)]
    pub(crate) struct PointMass {
        pub x: f64,
        pub v: f64,
        rng: u64,
        steps: usize,
        obs_space: BoxSpace,
        act_space: BoxSpace,
    }

    #[derive(Clone)]
    struct PmState {
        x: f64,
        v: f64,
        rng: u64,
        steps: usize,
    }

    impl PointMass {
        pub(crate) fn new() -> Self {
            PointMass {
                x: 0.0,
                v: 0.0,
                rng: 0,
                steps: 0,
                obs_space: BoxSpace::uniform(2, f32::NEG_INFINITY, f32::INFINITY),
                act_space: BoxSpace::uniform(1, -1.0, 1.0),
            }
        }
        fn next_uniform(&mut self) -> f64 {
            self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64
        }
        fn obs(&self) -> Vec<f32> {
            vec![self.x as f32, self.v as f32]
        }
    }

    impl Env for PointMass {
        fn id(&self) -> &str {
            "PointMass-test"
        }
        fn observation_space(&self) -> &BoxSpace {
            &self.obs_space
        }
        fn action_space(&self) -> &BoxSpace {
            &self.act_space
        }
        fn dt(&self) -> f64 {
            0.05
        }
        fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError> {
            if let Some(s) = seed {
                self.rng = s;
            }
            self.x = self.next_uniform() - 0.5;
            self.v = 0.0;
            self.steps = 0;
            Ok((self.obs(), Info::new()))
        }
        fn step(&mut self, action: &[f32]) -> Result<Step, EnvError> {
            check_action(&self.act_space, action)?;
            let a = action[0] as f64;
            self.v += a * self.dt();
            self.x += self.v * self.dt();
            self.steps += 1;
            let mut info = Info::with_capacity(8);
            info.insert("reward_dist", -self.x * self.x);
            info.insert("reward_ctrl", -0.1 * a * a);
            info.insert("x_position", self.x);
            Ok(Step {
                obs: self.obs(),
                reward: -self.x * self.x - 0.1 * a * a,
                terminated: self.x.abs() > 2.0,
                truncated: false,
                info,
            })
        }
        fn snapshot(&self) -> Snapshot {
            Snapshot::new(self.id(), PmState { x: self.x, v: self.v, rng: self.rng, steps: self.steps })
        }
        fn restore(&mut self, snapshot: &Snapshot) -> Result<(), EnvError> {
            let s = snapshot.get::<PmState>("PointMass-test")?;
            self.x = s.x;
            self.v = s.v;
            self.rng = s.rng;
            self.steps = s.steps;
            Ok(())
        }
        fn planar_scene(&self) -> Option<PlanarScene> {
            Some(PlanarScene {
                capsules: vec![Capsule2 { a: [self.x - 0.1, 0.0], b: [self.x + 0.1, 0.0], radius: 0.1 }],
                markers: vec![[0.0, 0.0, 0.05]],
                focus: [self.x, 0.0],
                view_half_width: 1.0,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::PointMass;
    use super::*;

    #[test]
    fn time_limit_truncates_exactly_at_max_steps() {
        let mut env = TimeLimit::new(PointMass::new(), 5).unwrap();
        env.reset(Some(1)).unwrap();
        for i in 1..=5 {
            let s = env.step(&[0.0]).unwrap();
            assert_eq!(env.elapsed_steps(), i);
            assert!(!s.terminated);
            assert_eq!(s.truncated, i == 5, "step {i}");
        }
        assert_eq!(env.max_episode_steps(), Some(5));
        // Stepping past the end without reset is refused, and the state does not move.
        let x = env.inner().x;
        assert!(matches!(env.step(&[1.0]), Err(EnvError::NeedsReset(_))));
        assert_eq!(env.inner().x, x);
        env.reset(None).unwrap();
        assert_eq!(env.elapsed_steps(), 0);
        assert!(!env.step(&[0.0]).unwrap().truncated);
    }

    #[test]
    fn time_limit_refuses_step_before_reset_and_zero_limit() {
        let mut env = TimeLimit::new(PointMass::new(), 3).unwrap();
        assert!(matches!(env.step(&[0.0]), Err(EnvError::NeedsReset(m)) if m.contains("before")));
        assert!(matches!(TimeLimit::new(PointMass::new(), 0), Err(EnvError::BadOption { .. })));
    }

    #[test]
    fn terminated_and_truncated_both_set_on_last_step() {
        // Full thrust from x0 in [-0.5, 0.5]: x(t) = x0 + dt^2 t(t+1)/2 crosses 2 in 40-50 steps.
        let mut probe = TimeLimit::new(PointMass::new(), 1000).unwrap();
        probe.reset(Some(7)).unwrap();
        let mut n = 0;
        loop {
            n += 1;
            if probe.step(&[1.0]).unwrap().terminated {
                break;
            }
        }
        assert!((40..=50).contains(&n), "terminated after {n} steps");
        // Same episode with the limit at exactly that step: both flags.
        let mut env = TimeLimit::new(PointMass::new(), n).unwrap();
        env.reset(Some(7)).unwrap();
        for _ in 1..n {
            let s = env.step(&[1.0]).unwrap();
            assert!(!s.done());
        }
        let last = env.step(&[1.0]).unwrap();
        assert!(last.terminated && last.truncated);
        // Termination before the limit: truncated stays false, and a reset is required.
        let mut env = TimeLimit::new(PointMass::new(), n + 10).unwrap();
        env.reset(Some(7)).unwrap();
        let s = (0..n).map(|_| env.step(&[1.0]).unwrap()).last().unwrap();
        assert!(s.terminated && !s.truncated);
        assert!(matches!(env.step(&[0.0]), Err(EnvError::NeedsReset(m)) if m.contains("ended")));
    }

    #[test]
    fn inner_error_does_not_count_as_a_step() {
        let mut env = TimeLimit::new(PointMass::new(), 2).unwrap();
        env.reset(Some(0)).unwrap();
        assert!(matches!(env.step(&[0.0, 1.0]), Err(EnvError::ActionShape { expected: 1, found: 2 })));
        assert_eq!(env.elapsed_steps(), 0);
        assert!(!env.step(&[0.0]).unwrap().truncated);
        assert!(env.step(&[0.0]).unwrap().truncated);
    }

    #[test]
    fn time_limit_snapshot_restores_counter_and_state() {
        let mut env = TimeLimit::new(PointMass::new(), 10).unwrap();
        env.reset(Some(3)).unwrap();
        for _ in 0..4 {
            env.step(&[0.3]).unwrap();
        }
        let snap = env.snapshot();
        assert_eq!(snap.env_id(), "PointMass-test");
        let run = |env: &mut TimeLimit<PointMass>| -> Vec<(Vec<f32>, f64, bool)> {
            (0..6).map(|_| env.step(&[-0.2]).unwrap()).map(|s| (s.obs, s.reward, s.truncated)).collect()
        };
        let first = run(&mut env);
        assert!(first[5].2, "step 10 truncates");
        assert!(env.step(&[0.0]).is_err());
        env.restore(&snap).unwrap();
        assert_eq!(env.elapsed_steps(), 4);
        let second = run(&mut env);
        assert_eq!(first, second);
        // The inner snapshot alone is not a TimeLimit snapshot.
        let inner_snap = env.inner().snapshot();
        assert!(matches!(env.restore(&inner_snap), Err(EnvError::SnapshotMismatch { .. })));
    }

    #[test]
    fn clip_action_clips_into_inner_space() {
        let mut clipped = ClipAction::new(PointMass::new());
        let mut plain = PointMass::new();
        assert_eq!(clipped.action_space().dim(), 1);
        assert!(clipped.action_space().contains(&[1e30]));
        clipped.reset(Some(5)).unwrap();
        plain.reset(Some(5)).unwrap();
        let a = clipped.step(&[7.5]).unwrap();
        let b = plain.step(&[1.0]).unwrap();
        assert_eq!(a, b);
        let a = clipped.step(&[-3.0]).unwrap();
        let b = plain.step(&[-1.0]).unwrap();
        assert_eq!(a, b);
        assert!(matches!(clipped.step(&[f32::NAN]), Err(EnvError::NonFiniteAction { .. })));
        assert!(matches!(clipped.step(&[]), Err(EnvError::ActionShape { .. })));
    }
}
