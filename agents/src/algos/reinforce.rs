//! REINFORCE with a moving-average baseline, rebel.md §4: `Σ_t ∇ln π(a_t|s_t)·(R(τ) − b)`.
//!
//! Read top to bottom: the batch is segments of the current policy, built by the same
//! [`crate::rollout::PairSpec`] machinery as REBEL but with one member per start state (`k = 1`), so
//! that the env steps per iteration can be matched to REBEL's by `groups`. A segment's return `R` is
//! the sum of its scores (reward net or true reward; with a common-random-numbers tail, the tail's
//! reward too). The baseline `b` is an exponential moving average of past batch means (the first
//! batch initialises it); optionally the weights `R − b` are divided by the batch's return standard
//! deviation. Then `epochs × minibatches` gradient steps of [`crate::losses::reinforce_loss`]
//! (default one step: the estimator is on-policy).

use crate::seeding::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use rebel_dist::{Collective, SingleProcess};

use super::{global_mean_std, kl_entropy, pg_steps, segment_scores};
pub use super::PgStats;
use crate::adam::Adam;
use crate::algorithm::{AlgoConfig, AlgoError, Algorithm, Batch, Collect, Ctx, Init, Update};
use crate::checkpoint::Checkpoint;
use crate::losses::reinforce_loss;
use crate::policy::GaussianPolicy;
use crate::rollout::{PairSpec, SegmentTensors};

/// REINFORCE's hyperparameters (`--set reinforce.KEY=V`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReinforceConfig {
    /// Adam learning rate. Default 1e-3.
    pub lr: f64,
    /// Weight of the newest batch mean in the moving-average baseline. Default 0.1.
    pub baseline_decay: f64,
    /// Divide `R − b` by the batch's return standard deviation. Default true.
    pub normalize: bool,
    /// Passes over the batch per iteration. Default 1.
    pub epochs: usize,
    /// Minibatches per pass. Default 1.
    pub minibatches: usize,
    /// Clip the gradient norm to this (0: off). Default 1.0.
    pub max_grad_norm: f64,
    /// 0 (default): every step of a multi-epoch update is a plain score-function step. > 0: each
    /// segment's term is weighted by its truncated importance ratio min(π/π_old, c) with this c, so
    /// that `epochs × minibatches` steps follow the current policy's gradient (the confound rows that
    /// give RLOO and REINFORCE as many updates as REBEL).
    pub importance_clip: f64,
    /// Branch length L (0: whole episodes), as `rebel.branch_len`. Default 250.
    pub branch_len: usize,
    /// Common-random-numbers tail after each branch, as `rebel.tail_len`. Default 250.
    pub tail_len: usize,
    /// Trunk episodes per iteration. Default 8 (= REBEL's 4 groups × k = 2 in env steps).
    pub groups: usize,
    /// Keep the policy's observation statistics up to date before each update, as `rebel.normalize_obs`
    /// (needs `policy.normalize_obs`). Default false.
    pub normalize_obs: bool,
}

impl Default for ReinforceConfig {
    fn default() -> Self {
        ReinforceConfig {
            lr: 1e-3,
            baseline_decay: 0.1,
            normalize: true,
            epochs: 1,
            minibatches: 1,
            max_grad_norm: 1.0,
            importance_clip: 0.0,
            branch_len: 250,
            tail_len: 250,
            groups: 8,
            normalize_obs: false,
        }
    }
}

impl AlgoConfig for ReinforceConfig {
    const NAME: &'static str = "reinforce";

    fn build(&self, init: &Init) -> Result<Box<dyn Algorithm>, String> {
        super::check_obs_norm(Self::NAME, self.normalize_obs, init)?;
        Ok(Box::new(Reinforce { cfg: self.clone(), baseline: None }))
    }

    fn validate(&self) -> Result<(), String> {
        if self.epochs == 0 || self.minibatches == 0 || self.groups == 0 {
            return Err("reinforce.epochs, reinforce.minibatches and reinforce.groups must be ≥ 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("reinforce.lr must be > 0, got {}", self.lr));
        }
        if !(self.baseline_decay > 0.0 && self.baseline_decay <= 1.0) {
            return Err(format!("reinforce.baseline_decay must be in (0, 1], got {}", self.baseline_decay));
        }
        super::check_importance_clip("reinforce", self.importance_clip)?;
        if self.max_grad_norm.is_nan() || self.max_grad_norm < 0.0 {
            return Err("reinforce.max_grad_norm must be ≥ 0".into());
        }
        super::check_branches("reinforce", self.branch_len, self.tail_len)?;
        Ok(())
    }
}

/// Moves the baseline towards the batch mean: `b ← (1 − decay)·b + decay·mean` (`None`: `b = mean`).
pub fn next_baseline(baseline: Option<f64>, batch_mean: f64, decay: f64) -> f64 {
    match baseline {
        None => batch_mean,
        Some(b) => (1.0 - decay) * b + decay * batch_mean,
    }
}

/// One REINFORCE iteration on `S` segments with scores `returns [S]`; `baseline` is the moving
/// average before this batch (`None` at the first) and is advanced in place.
pub fn update(
    policy: &GaussianPolicy,
    adam: &mut Adam,
    t: &SegmentTensors,
    returns: &Tensor,
    baseline: &mut Option<f64>,
    cfg: &ReinforceConfig,
    rng: &mut ChaCha8Rng,
) -> Result<PgStats, String> {
    update_shared(policy, adam, t, returns, baseline, cfg, rng, &SingleProcess)
}

/// [`update`] on this rank's shard of a batch spread over the ranks of `world` (data-parallel training): the
/// returns' mean (hence the moving baseline, equal on every rank) and standard deviation and the gradients
/// are reduced over the ranks, and every rank takes one process's number of steps.
#[allow(clippy::too_many_arguments)]
pub fn update_shared(
    policy: &GaussianPolicy,
    adam: &mut Adam,
    t: &SegmentTensors,
    returns: &Tensor,
    baseline: &mut Option<f64>,
    cfg: &ReinforceConfig,
    rng: &mut ChaCha8Rng,
    world: &dyn Collective,
) -> Result<PgStats, String> {
    // the log-probabilities need only the response steps, not the reward-only tail
    let t = &t.response();
    let r = returns.to_kind(Kind::Float);
    let (mean, std) = if world.size() > 1 {
        global_mean_std(world, &r)?
    } else {
        (f64::try_from(r.mean(Kind::Float)).unwrap_or(f64::NAN), f64::try_from(r.std(true)).unwrap_or(0.0))
    };
    let b = baseline.unwrap_or(mean);
    let scale = if cfg.normalize && std > 1e-8 { 1.0 / std } else { 1.0 };
    let rs = &r * scale;
    let step_logp_old = tch::no_grad(|| policy.log_prob(&t.obs, &t.act));
    let (loss, grad_norm) = pg_steps(policy, adam, t, 1, cfg.epochs, cfg.minibatches, cfg.max_grad_norm, cfg.importance_clip, rng, world, &|lp, idx| {
        reinforce_loss(lp, &rs.index_select(0, idx), b * scale)
    })?;
    *baseline = Some(next_baseline(*baseline, mean, cfg.baseline_decay));
    let (approx_kl, entropy) = kl_entropy(policy, t, &step_logp_old);
    Ok(PgStats { loss, baseline: b, return_std: std, approx_kl, entropy, grad_norm })
}

/// The REINFORCE learner; its moving-average baseline is checkpointed.
struct Reinforce {
    cfg: ReinforceConfig,
    baseline: Option<f64>,
}

impl Algorithm for Reinforce {
    fn collect(&self) -> Collect {
        let c = &self.cfg;
        Collect::Segments { groups: c.groups, spec: PairSpec::new(1, c.branch_len, c.tail_len) }
    }

    fn data_parallel(&self) -> bool {
        true
    }

    fn lr(&self) -> f64 {
        self.cfg.lr
    }

    fn updates_obs_norm(&self) -> bool {
        self.cfg.normalize_obs
    }

    fn update(&mut self, ctx: &mut Ctx, batch: Option<&Batch>) -> Result<Update, AlgoError> {
        let batch = batch.expect("REINFORCE collects segments");
        if self.cfg.normalize_obs {
            super::update_policy_obs_stats(ctx.world, ctx.policy, super::obs_rows(&batch.segments)).map_err(AlgoError::Failed)?;
        }
        let t = &batch.tensors;
        let (rewards, segment_score) = segment_scores(ctx, t);
        let st = update_shared(ctx.policy, ctx.adam, t, &rewards, &mut self.baseline, &self.cfg, ctx.rng, ctx.world)
            .map_err(AlgoError::Diverged)?;
        Ok(Update { stats: st.scalars("losses/reinforce"), segment_score, ..Update::default() })
    }

    fn save(&self, ck: &mut Checkpoint) -> Result<(), AlgoError> {
        let extra = ck.meta.extra.as_object_mut().expect("extra is an object");
        extra.insert("reinforce_baseline".into(), serde_json::json!(self.baseline));
        Ok(())
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<(), AlgoError> {
        self.baseline = ck.meta.extra.get("reinforce_baseline").and_then(|v| v.as_f64());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_is_an_exponential_moving_average() {
        let b = next_baseline(None, 10.0, 0.1);
        assert_eq!(b, 10.0);
        let b = next_baseline(Some(b), 20.0, 0.1);
        assert!((b - 11.0).abs() < 1e-12);
        let b = next_baseline(Some(b), 0.0, 0.5);
        assert!((b - 5.5).abs() < 1e-12);
    }
}
