//! RLOO(k) (Ahmadian et al. 2024), rebel.md §4: k samples per start state; the baseline of each is
//! the mean return of the other k − 1.
//!
//! Read top to bottom: the batch is built exactly like REBEL's (same [`crate::rollout::PairSpec`]:
//! groups of `k` same-start segments, branches with common-random-numbers tails by default), so at
//! equal `groups·k` the env steps per iteration are equal and only the update differs. Optionally the
//! returns are divided by their batch standard deviation, then `epochs × minibatches` gradient steps
//! of [`crate::losses::rloo_loss`] over shuffled groups (default one step: the estimator is
//! on-policy). With k = 2 one step is, up to scale, REBEL's first gradient step (rebel.md §3 (b)).

use crate::seeding::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use rebel_dist::{Collective, SingleProcess};

use super::{global_mean_std, kl_entropy, pg_steps, segment_scores, PgStats};
use crate::adam::Adam;
use crate::algorithm::{AlgoConfig, AlgoError, Algorithm, Batch, Collect, Ctx, Init, Update};
use crate::losses::rloo_loss;
use crate::policy::GaussianPolicy;
use crate::rollout::{PairSpec, SegmentTensors};

/// RLOO's hyperparameters (`--set rloo.KEY=V`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RlooConfig {
    /// Samples per start state (≥ 2). Default 2.
    pub k: usize,
    /// Adam learning rate. Default 1e-3.
    pub lr: f64,
    /// Divide the returns by their batch standard deviation. Default true.
    pub normalize: bool,
    /// Passes over the batch per iteration. Default 1.
    pub epochs: usize,
    /// Minibatches (of whole groups) per pass. Default 1.
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
    /// Start states (trunk episodes) per iteration; the vectorised env has `groups·k` envs.
    /// Default 4.
    pub groups: usize,
    /// Keep the policy's observation statistics up to date before each update, as `rebel.normalize_obs`
    /// (needs `policy.normalize_obs`). Default false.
    pub normalize_obs: bool,
}

impl Default for RlooConfig {
    fn default() -> Self {
        RlooConfig { k: 2, lr: 1e-3, normalize: true, epochs: 1, minibatches: 1, max_grad_norm: 1.0, importance_clip: 0.0, branch_len: 250, tail_len: 250, groups: 4, normalize_obs: false }
    }
}

impl AlgoConfig for RlooConfig {
    const NAME: &'static str = "rloo";

    fn build(&self, init: &Init) -> Result<Box<dyn Algorithm>, String> {
        super::check_obs_norm(Self::NAME, self.normalize_obs, init)?;
        Ok(Box::new(Rloo(self.clone())))
    }

    fn validate(&self) -> Result<(), String> {
        if self.k < 2 {
            return Err(format!("rloo.k must be ≥ 2 (the leave-one-out baseline needs another sample), got {}", self.k));
        }
        if self.epochs == 0 || self.minibatches == 0 || self.groups == 0 {
            return Err("rloo.epochs, rloo.minibatches and rloo.groups must be ≥ 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("rloo.lr must be > 0, got {}", self.lr));
        }
        super::check_importance_clip("rloo", self.importance_clip)?;
        if self.max_grad_norm.is_nan() || self.max_grad_norm < 0.0 {
            return Err("rloo.max_grad_norm must be ≥ 0".into());
        }
        super::check_branches("rloo", self.branch_len, self.tail_len)?;
        Ok(())
    }
}

/// One RLOO iteration on `S = G·k` segments (groups consecutive) with scores `returns [S]`.
pub fn update(
    policy: &GaussianPolicy,
    adam: &mut Adam,
    t: &SegmentTensors,
    returns: &Tensor,
    cfg: &RlooConfig,
    rng: &mut ChaCha8Rng,
) -> Result<PgStats, String> {
    update_shared(policy, adam, t, returns, cfg, rng, &SingleProcess)
}

/// [`update`] on this rank's shard of a batch spread over the ranks of `world` (data-parallel training): the
/// returns' standard deviation and the gradients are reduced over the ranks, and every rank takes one
/// process's number of steps (the leave-one-out baselines are within a group, which a rank holds whole).
pub fn update_shared(
    policy: &GaussianPolicy,
    adam: &mut Adam,
    t: &SegmentTensors,
    returns: &Tensor,
    cfg: &RlooConfig,
    rng: &mut ChaCha8Rng,
    world: &dyn Collective,
) -> Result<PgStats, String> {
    // the log-probabilities need only the response steps, not the reward-only tail
    let t = &t.response();
    let k = cfg.k as i64;
    let s = returns.size()[0];
    if s % k != 0 {
        return Err(format!("a batch of {s} segments is not made of groups of {k}"));
    }
    let r = returns.to_kind(Kind::Float);
    let std = if world.size() > 1 { global_mean_std(world, &r)?.1 } else { f64::try_from(r.std(true)).unwrap_or(0.0) };
    let scale = if cfg.normalize && std > 1e-8 { 1.0 / std } else { 1.0 };
    let rs = &r * scale;
    let step_logp_old = tch::no_grad(|| policy.log_prob(&t.obs, &t.act));
    let (loss, grad_norm) = pg_steps(policy, adam, t, k, cfg.epochs, cfg.minibatches, cfg.max_grad_norm, cfg.importance_clip, rng, world, &|lp, idx| {
        rloo_loss(lp, &rs.index_select(0, idx), k)
    })?;
    // mean leave-one-out baseline, for the logs
    let g = r.view([s / k, k]);
    let loo = (g.sum_dim_intlist([1i64].as_slice(), true, Kind::Float) - &g) / ((k - 1) as f64);
    let baseline = f64::try_from(loo.mean(Kind::Float)).unwrap_or(f64::NAN);
    let (approx_kl, entropy) = kl_entropy(policy, t, &step_logp_old);
    Ok(PgStats { loss, baseline, return_std: std, approx_kl, entropy, grad_norm })
}

/// The RLOO learner: no state besides the policy and its Adam.
struct Rloo(RlooConfig);

impl Algorithm for Rloo {
    fn collect(&self) -> Collect {
        let c = &self.0;
        Collect::Segments { groups: c.groups, spec: PairSpec::new(c.k, c.branch_len, c.tail_len) }
    }

    fn data_parallel(&self) -> bool {
        true
    }

    fn lr(&self) -> f64 {
        self.0.lr
    }

    fn updates_obs_norm(&self) -> bool {
        self.0.normalize_obs
    }

    fn update(&mut self, ctx: &mut Ctx, batch: Option<&Batch>) -> Result<Update, AlgoError> {
        let batch = batch.expect("RLOO collects segments");
        if self.0.normalize_obs {
            super::update_policy_obs_stats(ctx.world, ctx.policy, super::obs_rows(&batch.segments)).map_err(AlgoError::Failed)?;
        }
        let t = &batch.tensors;
        let (rewards, segment_score) = segment_scores(ctx, t);
        let st = update_shared(ctx.policy, ctx.adam, t, &rewards, &self.0, ctx.rng, ctx.world).map_err(AlgoError::Diverged)?;
        Ok(Update { stats: st.scalars("losses/rloo"), segment_score, ..Update::default() })
    }
}
