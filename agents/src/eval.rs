//! Evaluation: the policy's mean-action true return on fixed seeds, its stochastic return, and
//! its win rate against a reference policy, the same protocol for every algorithm.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

use rebel_envs::vec_env::VecEnv;

use crate::checkpoint::{Checkpoint, CheckpointMeta};
use crate::seeding::{eval_env_seed, stream, Domain};
use crate::policy::GaussianPolicy;
use crate::rollout::{episode_returns, run_episodes};
use crate::train::TrainError;
use crate::util::mean_std;

/// Evaluation protocol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// Evaluate every this many iterations (and at the end). Default 10.
    pub every_iters: usize,
    /// Episodes per evaluation, with the fixed seeds `seed_base + i`. Default 10.
    pub episodes: usize,
    /// First evaluation seed (disjoint from training seeds). Default 1_000_000.
    pub seed_base: u64,
    /// Reference policy for the win rate ("" = the initial policy of the run).
    pub reference: String,
    /// Also evaluate with sampled actions (`eval/stochastic_return`): one more pass of `episodes`
    /// episodes at every evaluation. Default false.
    pub stochastic: bool,
}

impl Default for EvalSection {
    fn default() -> Self {
        EvalSection { every_iters: 10, episodes: 10, seed_base: 1_000_000, reference: String::new(), stochastic: false }
    }
}

impl EvalSection {
    /// The evaluation seeds `seed_base .. seed_base + episodes`.
    pub fn seeds(&self) -> Vec<u64> {
        (0..self.episodes as u64).map(|i| eval_env_seed(self.seed_base, i)).collect()
    }
}

/// Result of one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalResult {
    pub returns: Vec<f64>,
    pub mean: f64,
    pub std: f64,
    /// With `eval.stochastic`: the mean return with sampled actions.
    pub stochastic_mean: Option<f64>,
    pub win_rate: f64,
    /// Env steps this evaluation ran (with the reference's episodes when they were run for it).
    pub env_steps: u64,
}

/// Evaluates `policy` on the fixed seeds: mean-action returns, (with `eval.stochastic`) sampled-
/// action returns, and the win rate against the reference's mean-action returns on the same start
/// states, `reference_returns` (ties count half; the reference is fixed, so they are computed once
/// per run, [`episode_returns`] of the reference on `eval.seeds()`).
pub fn evaluate(
    venv: &mut VecEnv,
    policy: &GaussianPolicy,
    reference_returns: &[f64],
    eval: &EvalSection,
    seed: u64,
) -> Result<EvalResult, rebel_envs::EnvError> {
    let seeds = eval.seeds();
    let (returns, mut env_steps) = run_episodes(venv, policy, &seeds, None)?;
    let stochastic_mean = if eval.stochastic {
        let mut rng = stream(seed, Domain::Eval, 0);
        let (sampled, steps) = run_episodes(venv, policy, &seeds, Some(&mut rng))?;
        env_steps += steps;
        Some(mean_std(&sampled).0)
    } else {
        None
    };
    let wins: f64 = returns
        .iter()
        .zip(reference_returns)
        .map(|(a, b)| if a > b { 1.0 } else if a == b { 0.5 } else { 0.0 })
        .sum();
    let (mean, std) = mean_std(&returns);
    Ok(EvalResult { mean, std, stochastic_mean, win_rate: wins / seeds.len() as f64, returns, env_steps })
}

/// The mean-action true returns of `reference` on the evaluation seeds.
pub fn reference_returns(venv: &mut VecEnv, reference: &GaussianPolicy, eval: &EvalSection) -> Result<Vec<f64>, rebel_envs::EnvError> {
    episode_returns(venv, reference, &eval.seeds(), None)
}

/// Loads the policy stored in a checkpoint file.
pub fn load_policy(path: &Path, device: Device) -> Result<GaussianPolicy, TrainError> {
    Ok(load_policy_and_meta(path, device)?.0)
}

/// Loads the policy stored in a checkpoint file, with the checkpoint's metadata (its environment and options).
pub fn load_policy_and_meta(path: &Path, device: Device) -> Result<(GaussianPolicy, CheckpointMeta), TrainError> {
    let ck = Checkpoint::load(path)?;
    Ok((ck.build_policy("policy", device, Kind::Float)?, ck.meta))
}
