//! Many environments stepped in parallel on a thread pool (the calling thread works in it), with auto-reset (Gymnasium's
//! `SyncVectorEnv`/`AsyncVectorEnv` with `autoreset_mode=SAME_STEP`).
//!
//! * Observations and actions are flat, env-major: obs `[N * obs_dim]`, actions `[N * act_dim]`.
//! * An environment whose episode ended in a `step` is reset (`reset(None)`: its random stream
//!   continues) in the same call; the observation that ended the episode is kept in
//!   [`VecStep::final_obs`], the batch carries the first observation of the next episode.
//! * Each environment owns its random generator, so results do not depend on the number of
//!   threads: the same seeds give the same numbers on 1 or 16 threads.
//! * An error of environment `i` is returned as [`EnvError::InVecEnv`] (the lowest failing
//!   index); no half-filled batch is ever returned. The other environments have stepped; call
//!   [`VecEnv::reset`] before stepping again if the error was fatal for the episode.

use std::sync::Mutex;

use crate::config::EnvConfig;
use crate::env::{BoxSpace, Env, Info};
use crate::error::EnvError;
use crate::registry;
use crate::step_pool::StepPool;

/// What [`VecEnv::step`] returns. Index `i` is environment `i`.
#[derive(Clone, Debug, PartialEq)]
pub struct VecStep {
    /// Observations after the step and after any auto-reset, `[N * obs_dim]`.
    pub obs: Vec<f32>,
    /// Rewards, `[N]`.
    pub rewards: Vec<f64>,
    /// Terminal state reached, `[N]`.
    pub terminated: Vec<bool>,
    /// Episode cut (time limit), `[N]`.
    pub truncated: Vec<bool>,
    /// For environments whose episode ended in this step: the last observation of that episode
    /// (`[obs_dim]`; bootstrap from it on truncation). `None` otherwise.
    pub final_obs: Vec<Option<Vec<f32>>>,
    /// The step's info maps (of the finished episode's last step where one ended; the reset's
    /// info is not kept).
    pub infos: Vec<Info>,
}

/// One environment's part of a [`VecStep`]: obs, reward, terminated, truncated, final obs, info.
type EnvOutcome = (Vec<f32>, f64, bool, bool, Option<Vec<f32>>, Info);

/// `N` environments with identical spaces, stepped on a pool of `T` threads.
pub struct VecEnv {
    envs: Vec<Box<dyn Env>>,
    pool: StepPool,
    threads: usize,
    observation_space: BoxSpace,
    action_space: BoxSpace,
    needs_reset: bool,
}

fn bad(key: &str, msg: String) -> EnvError {
    EnvError::BadOption { env: "VecEnv".into(), key: key.into(), msg }
}

impl VecEnv {
    /// Takes ownership of `envs` (at least one, all with the same observation and action spaces)
    /// and builds a pool of `threads >= 1` threads. Errors are [`EnvError::BadOption`].
    pub fn new(envs: Vec<Box<dyn Env>>, threads: usize) -> Result<Self, EnvError> {
        if envs.is_empty() {
            return Err(bad("num_envs", "need at least one environment".into()));
        }
        if threads == 0 {
            return Err(bad("threads", "need at least one thread".into()));
        }
        let observation_space = envs[0].observation_space().clone();
        let action_space = envs[0].action_space().clone();
        for (i, e) in envs.iter().enumerate().skip(1) {
            if e.observation_space() != &observation_space || e.action_space() != &action_space {
                return Err(bad(
                    "envs",
                    format!(
                        "environment {i} ({}) has other spaces than environment 0 ({}): all must match",
                        e.id(),
                        envs[0].id()
                    ),
                ));
            }
        }
        let pool =
            StepPool::new(threads).map_err(|e| bad("threads", format!("could not start {threads} threads: {e}")))?;
        Ok(VecEnv { envs, pool, threads, observation_space, action_space, needs_reset: true })
    }

    /// `n` copies of [`registry::make`]`(id, config)` on `threads` threads.
    pub fn make(id: &str, config: &EnvConfig, n: usize, threads: usize) -> Result<Self, EnvError> {
        if n == 0 {
            return Err(bad("num_envs", "need at least one environment".into()));
        }
        let envs = (0..n).map(|_| registry::make(id, config)).collect::<Result<Vec<_>, _>>()?;
        Self::new(envs, threads)
    }

    /// Number of environments `N`.
    pub fn num_envs(&self) -> usize {
        self.envs.len()
    }
    /// Length of one observation.
    pub fn obs_dim(&self) -> usize {
        self.observation_space.dim()
    }
    /// Length of one action.
    pub fn act_dim(&self) -> usize {
        self.action_space.dim()
    }
    /// The (common) observation space of one environment.
    pub fn observation_space(&self) -> &BoxSpace {
        &self.observation_space
    }
    /// The (common) action space of one environment.
    pub fn action_space(&self) -> &BoxSpace {
        &self.action_space
    }
    /// Size of the thread pool.
    pub fn threads(&self) -> usize {
        self.threads
    }
    /// The environments.
    pub fn envs(&self) -> &[Box<dyn Env>] {
        &self.envs
    }
    /// The environments, mutably (for snapshot/restore; stepping them here bypasses auto-reset).
    pub fn envs_mut(&mut self) -> &mut [Box<dyn Env>] {
        &mut self.envs
    }

    /// Runs `f(i, env_i)` for every environment on the pool; the results in environment order.
    ///
    /// With one thread (or one environment) `f` runs on the calling thread, in order. Which thread
    /// runs which environment otherwise varies from call to call ([`crate::step_pool`]).
    pub fn par_map<R: Send>(&mut self, f: impl Fn(usize, &mut Box<dyn Env>) -> R + Sync + Send) -> Vec<R> {
        if self.threads == 1 || self.envs.len() == 1 {
            return self.envs.iter_mut().enumerate().map(|(i, e)| f(i, e)).collect();
        }
        // One uncontended lock per environment and call (each index is taken by one thread).
        let envs: Vec<Mutex<&mut Box<dyn Env>>> = self.envs.iter_mut().map(Mutex::new).collect();
        let out: Vec<Mutex<Option<R>>> = envs.iter().map(|_| Mutex::new(None)).collect();
        self.pool.run(envs.len(), &|i| {
            let r = f(i, &mut envs[i].lock().unwrap());
            *out[i].lock().unwrap() = Some(r);
        });
        out.into_iter().map(|m| m.into_inner().unwrap().expect("every index ran")).collect()
    }

    /// Resets every environment: environment `i` with seed `seed + i` (wrapping), or with `None`
    /// (each continues its own stream). Returns the observations, `[N * obs_dim]`.
    pub fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f32>, EnvError> {
        let results = self.par_map(|i, env| env.reset(seed.map(|s| s.wrapping_add(i as u64))));
        let mut obs = Vec::with_capacity(self.num_envs() * self.obs_dim());
        for (i, r) in results.into_iter().enumerate() {
            let (o, _info) = r.map_err(|e| EnvError::InVecEnv { index: i, source: Box::new(e) })?;
            obs.extend_from_slice(&o);
        }
        self.needs_reset = false;
        Ok(obs)
    }

    /// Steps every environment with its slice of `actions` (`[N * act_dim]`), auto-resetting those
    /// whose episode ended. Errors: [`EnvError::NeedsReset`] before the first [`VecEnv::reset`];
    /// [`EnvError::ActionShape`] for a wrong total length; [`EnvError::InVecEnv`] for the lowest
    /// index whose step or reset failed.
    pub fn step(&mut self, actions: &[f32]) -> Result<VecStep, EnvError> {
        if self.needs_reset {
            return Err(EnvError::NeedsReset("on a VecEnv before reset()"));
        }
        let (n, act_dim) = (self.num_envs(), self.act_dim());
        if actions.len() != n * act_dim {
            return Err(EnvError::ActionShape { expected: n * act_dim, found: actions.len() });
        }
        let results = self.par_map(|i, env| -> Result<EnvOutcome, EnvError> {
            let s = env.step(&actions[i * act_dim..(i + 1) * act_dim])?;
            if s.done() {
                let (obs, _info) = env.reset(None)?;
                Ok((obs, s.reward, s.terminated, s.truncated, Some(s.obs), s.info))
            } else {
                Ok((s.obs, s.reward, s.terminated, s.truncated, None, s.info))
            }
        });
        let mut out = VecStep {
            obs: Vec::with_capacity(n * self.obs_dim()),
            rewards: Vec::with_capacity(n),
            terminated: Vec::with_capacity(n),
            truncated: Vec::with_capacity(n),
            final_obs: Vec::with_capacity(n),
            infos: Vec::with_capacity(n),
        };
        for (i, r) in results.into_iter().enumerate() {
            let (obs, reward, term, trunc, fin, info) =
                r.map_err(|e| EnvError::InVecEnv { index: i, source: Box::new(e) })?;
            out.obs.extend_from_slice(&obs);
            out.rewards.push(reward);
            out.terminated.push(term);
            out.truncated.push(trunc);
            out.final_obs.push(fin);
            out.infos.push(info);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrappers::test_support::PointMass;
    use crate::wrappers::TimeLimit;

    fn point_masses(n: usize, limit: usize) -> Vec<Box<dyn Env>> {
        (0..n).map(|_| Box::new(TimeLimit::new(PointMass::new(), limit).unwrap()) as Box<dyn Env>).collect()
    }

    /// A deterministic, env- and step-dependent action pattern in [-1, 1].
    fn actions(n: usize, t: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7 + t * 3) % 11) as f32 / 5.0 - 1.0).collect()
    }

    /// Observations, rewards and final observations of every step.
    type Trace = (Vec<Vec<f32>>, Vec<Vec<f64>>, Vec<Vec<Option<Vec<f32>>>>);

    fn rollout(threads: usize) -> Trace {
        let mut v = VecEnv::new(point_masses(5, 7), threads).unwrap();
        let first = v.reset(Some(11)).unwrap();
        let (mut obs, mut rew, mut fin) = (vec![first], vec![], vec![]);
        for t in 0..30 {
            let s = v.step(&actions(5, t)).unwrap();
            obs.push(s.obs);
            rew.push(s.rewards);
            fin.push(s.final_obs);
        }
        (obs, rew, fin)
    }

    #[test]
    fn same_seeds_same_numbers_on_1_and_2_threads() {
        let a = rollout(1);
        let b = rollout(2);
        assert_eq!(a, b);
        let c = rollout(3);
        assert_eq!(a, c);
    }

    #[test]
    fn reset_seeds_env_i_with_seed_plus_i() {
        let mut v = VecEnv::new(point_masses(3, 10), 2).unwrap();
        let obs = v.reset(Some(100)).unwrap();
        assert_eq!(obs.len(), 3 * 2);
        for i in 0..3 {
            let mut e = PointMass::new();
            let (o, _) = e.reset(Some(100 + i as u64)).unwrap();
            assert_eq!(&obs[i * 2..i * 2 + 2], &o[..]);
        }
        assert_ne!(obs[0], obs[2]);
    }

    #[test]
    fn auto_reset_keeps_final_obs() {
        let mut v = VecEnv::new(point_masses(2, 4), 2).unwrap();
        v.reset(Some(0)).unwrap();
        // A lone copy of env 1 shows what the vectorised one must report.
        let mut lone = TimeLimit::new(PointMass::new(), 4).unwrap();
        lone.reset(Some(1)).unwrap();
        for t in 1..=4 {
            let s = v.step(&[0.5, -0.5]).unwrap();
            let l = lone.step(&[-0.5]).unwrap();
            assert_eq!(s.rewards[1], l.reward);
            assert_eq!(s.truncated, vec![t == 4, t == 4]);
            assert_eq!(s.terminated, vec![false, false]);
            if t < 4 {
                assert_eq!(s.final_obs, vec![None, None]);
                assert_eq!(&s.obs[2..4], &l.obs[..]);
            } else {
                assert_eq!(s.final_obs[1].as_deref(), Some(&l.obs[..]));
                // The batch holds the first observation of the next episode (stream continued).
                let (next, _) = lone.reset(None).unwrap();
                assert_eq!(&s.obs[2..4], &next[..]);
                assert_eq!(s.obs[3], 0.0, "fresh episode starts at rest");
                assert_eq!(s.infos[1]["x_position"], l.info["x_position"]);
            }
        }
        // Stepping continues in the new episode without an explicit reset.
        let s = v.step(&[0.0, 0.0]).unwrap();
        assert_eq!(s.final_obs, vec![None, None]);
    }

    #[test]
    fn errors_carry_the_env_index_and_no_batch() {
        let mut v = VecEnv::new(point_masses(3, 10), 2).unwrap();
        assert!(matches!(v.step(&[0.0; 3]), Err(EnvError::NeedsReset(_))));
        v.reset(Some(0)).unwrap();
        assert!(matches!(v.step(&[0.0; 4]), Err(EnvError::ActionShape { expected: 3, found: 4 })));
        match v.step(&[0.0, f32::NAN, f32::INFINITY]) {
            Err(EnvError::InVecEnv { index, source }) => {
                assert_eq!(index, 1);
                assert!(matches!(*source, EnvError::NonFiniteAction { index: 0, .. }));
            }
            other => panic!("expected InVecEnv, got {other:?}"),
        }
    }

    #[test]
    fn construction_checks() {
        assert!(matches!(VecEnv::new(vec![], 1), Err(EnvError::BadOption { .. })));
        assert!(matches!(VecEnv::new(point_masses(2, 5), 0), Err(EnvError::BadOption { .. })));
        let mut mixed = point_masses(1, 5);
        mixed.push(Box::new(crate::wrappers::ClipAction::new(PointMass::new())));
        assert!(matches!(VecEnv::new(mixed, 1), Err(EnvError::BadOption { key, .. }) if key == "envs"));
        let v = VecEnv::new(point_masses(4, 5), 3).unwrap();
        assert_eq!((v.num_envs(), v.obs_dim(), v.act_dim(), v.threads()), (4, 2, 1, 3));
        assert!(matches!(VecEnv::make("Nope-v0", &EnvConfig::new(), 2, 1), Err(EnvError::UnknownEnv { .. })));
        assert!(matches!(VecEnv::make("Swimmer-v5", &EnvConfig::new(), 0, 1), Err(EnvError::BadOption { .. })));
    }

    #[test]
    fn par_map_snapshot_and_restore_in_env_order() {
        let mut v = VecEnv::new(point_masses(4, 50), 2).unwrap();
        v.reset(Some(9)).unwrap();
        v.step(&[0.1, 0.2, 0.3, 0.4]).unwrap();
        let ids = v.par_map(|i, _| i);
        assert_eq!(ids, vec![0, 1, 2, 3]);
        let snaps = v.par_map(|_, e| e.snapshot());
        let a = v.step(&[-0.3; 4]).unwrap();
        let restored = v.par_map(|i, e| e.restore(&snaps[i]));
        assert!(restored.iter().all(|r| r.is_ok()));
        let b = v.step(&[-0.3; 4]).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn swimmer_vec_env_is_thread_count_independent() {
        let run = |threads| {
            let mut v = VecEnv::make("Swimmer-v5", &EnvConfig::new(), 3, threads).unwrap();
            assert_eq!(v.num_envs(), 3);
            let mut out = v.reset(Some(5)).unwrap();
            let act_dim = v.act_dim();
            for t in 0..20 {
                let a: Vec<f32> = (0..3 * act_dim).map(|k| ((k + t) % 5) as f32 / 2.5 - 0.8).collect();
                let s = v.step(&a).unwrap();
                out.extend(s.obs);
                out.extend(s.rewards.iter().map(|r| *r as f32));
            }
            out
        };
        let a = run(1);
        assert!(a.iter().all(|x| x.is_finite()));
        assert_eq!(a, run(2));
    }
}
