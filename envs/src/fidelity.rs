//! Comparison of the Swimmer with reference rollouts of the real MuJoCo Swimmer-v5
//! (`tests/data/mujoco/*.csv`, written by Gymnasium 1.4.0 + MuJoCo 4.0.0 from the exact rest state).

use crate::csvio::Table;
use crate::env::Env;
use crate::error::EnvError;
use crate::swimmer::{Swimmer, SwimmerConfig, JOINT_LIMIT};

/// How closely a replay of a reference action sequence follows MuJoCo.
#[derive(Clone, Debug, PartialEq)]
pub struct FidelityReport {
    /// Steps replayed.
    pub steps: usize,
    /// First step (0-based) after which MuJoCo has a joint past ±100°, if any.
    pub first_limit_contact: Option<usize>,
    /// Largest |qpos − qpos_MuJoCo| over all five coordinates, over the steps before
    /// `first_limit_contact` (all steps if there is none).
    pub max_qpos_err_before_contact: f64,
    /// Largest |qpos − qpos_MuJoCo| over the whole replay.
    pub max_qpos_err: f64,
    /// Our return (sum of rewards).
    pub return_ours: f64,
    /// MuJoCo's return.
    pub return_mujoco: f64,
    /// Whether every one of our states was exactly zero (for the zeros sequence).
    pub exactly_at_rest: bool,
}

/// Replays the actions of a reference rollout `table` from the exact rest state with `cfg`
/// (its `reset_noise_scale` is forced to 0), comparing qpos step by step and the return.
/// `steps` limits the comparison to the first `steps` rows (all when `None`).
pub fn compare(cfg: &SwimmerConfig, table: &Table, steps: Option<usize>) -> Result<FidelityReport, EnvError> {
    let mut cfg = cfg.clone();
    cfg.reset_noise_scale = 0.0;
    let mut env = Swimmer::with_config(cfg)?;
    env.reset(Some(0))?;
    let a0 = table.column("action0")?;
    let a1 = table.column("action1")?;
    let qref = table.columns("qpos", 0..5)?;
    let rref = table.column("reward")?;
    let n = steps.unwrap_or(a0.len()).min(a0.len());
    let first_limit_contact =
        (0..n).find(|&k| qref[3][k].abs() > JOINT_LIMIT || qref[4][k].abs() > JOINT_LIMIT);
    let mut rep = FidelityReport {
        steps: n,
        first_limit_contact,
        max_qpos_err_before_contact: 0.0,
        max_qpos_err: 0.0,
        return_ours: 0.0,
        return_mujoco: rref[..n].iter().sum(),
        exactly_at_rest: true,
    };
    for k in 0..n {
        let s = env.step(&[a0[k] as f32, a1[k] as f32])?;
        rep.return_ours += s.reward;
        let q = env.qpos();
        let err = (0..5).map(|i| (q[i] - qref[i][k]).abs()).fold(0.0, f64::max);
        rep.max_qpos_err = rep.max_qpos_err.max(err);
        if first_limit_contact.is_none_or(|c| k < c) {
            rep.max_qpos_err_before_contact = rep.max_qpos_err_before_contact.max(err);
        }
        if q.iter().chain(env.qvel().iter()).any(|v| *v != 0.0) {
            rep.exactly_at_rest = false;
        }
    }
    Ok(rep)
}
