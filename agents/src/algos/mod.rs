//! One file per algorithm: its config (an [`crate::algorithm::AlgoConfig`]) and its learner (an
//! [`crate::algorithm::Algorithm`]), readable top to bottom; registered in
//! [`crate::algorithm`]. What several of them share lives here.
pub mod dpo;
pub mod ppo;
pub mod rebel;
pub mod reinforce;
pub mod rloo;

use crate::seeding::ChaCha8Rng;
use rand::seq::SliceRandom;
use tch::{Kind, Tensor};

use crate::adam::Adam;
use crate::algorithm::Ctx;
use crate::losses::k3_kl;
use crate::policy::GaussianPolicy;
use crate::rollout::{segment_log_prob, SegmentTensors};

/// Checks an algorithm's pair scheme: a common-random-numbers tail follows a branch, so it needs
/// branches (`branch_len > 0`); whole episodes (`branch_len = 0`) have no tail.
pub(crate) fn check_branches(algo: &str, branch_len: usize, tail_len: usize) -> Result<(), String> {
    if branch_len == 0 && tail_len > 0 {
        return Err(format!(
            "{algo}.tail_len = {tail_len} needs branches, but {algo}.branch_len = 0 means whole episodes (which have no tail); set {algo}.tail_len=0, or {algo}.branch_len > 0"
        ));
    }
    Ok(())
}

/// `ALGO.importance_clip` must be ≥ 0 (0: off); shared by RLOO and REINFORCE.
pub(crate) fn check_importance_clip(algo: &str, clip: f64) -> Result<(), String> {
    if clip.is_nan() || clip < 0.0 {
        return Err(format!("{algo}.importance_clip must be ≥ 0 (0: off), got {clip}"));
    }
    Ok(())
}

/// Segment scores `[S]` of the batch from the run's scorer, and their mean (logged as `charts/segment_score`).
pub(crate) fn segment_scores(ctx: &Ctx, t: &SegmentTensors) -> (Tensor, f64) {
    let rewards = ctx.scorer.segment_scores(t);
    let mean = f64::try_from(rewards.mean(Kind::Float)).unwrap_or(f64::NAN);
    (rewards, mean)
}

/// What one policy-gradient update (REINFORCE, RLOO) did (all logged).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PgStats {
    /// Mean loss over the minibatches of the last pass.
    pub loss: f64,
    /// The baseline used for this batch (REINFORCE) or the mean leave-one-out baseline (RLOO).
    pub baseline: f64,
    /// Standard deviation of the batch's returns.
    pub return_std: f64,
    /// Per-step k3 estimate of KL(π_t‖π_{t+1}) on the batch.
    pub approx_kl: f64,
    /// Policy entropy after the update.
    pub entropy: f64,
    /// Mean gradient norm (before clipping).
    pub grad_norm: f64,
}

impl PgStats {
    /// The logged scalars, the loss under `loss_tag`.
    pub(crate) fn scalars(&self, loss_tag: &'static str) -> Vec<(&'static str, f64)> {
        vec![
            (loss_tag, self.loss),
            ("losses/baseline", self.baseline),
            ("losses/return_std", self.return_std),
            ("losses/approx_kl", self.approx_kl),
            ("losses/entropy", self.entropy),
            ("losses/grad_norm", self.grad_norm),
        ]
    }
}

/// Gradient steps of `loss_fn(logp [B], idx)` over shuffled minibatches of `units` groups of `k`
/// consecutive segments; shared by REINFORCE (`k = 1`) and RLOO. Returns
/// `(mean loss of the last pass, mean gradient norm)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pg_steps(
    policy: &GaussianPolicy,
    adam: &mut Adam,
    t: &SegmentTensors,
    k: i64,
    epochs: usize,
    minibatches: usize,
    max_grad_norm: f64,
    importance_clip: f64,
    rng: &mut ChaCha8Rng,
    loss_fn: &dyn Fn(&Tensor, &Tensor) -> Tensor,
) -> Result<(f64, f64), String> {
    let s = t.obs.size()[0];
    // with importance_clip > 0, each segment's log-probability is weighted by its truncated ratio
    // min(π/π_old, c) (constant in the gradient), so that later steps of a multi-epoch update
    // estimate the current policy's gradient from the old policy's samples
    let lp_old = (importance_clip > 0.0).then(|| tch::no_grad(|| segment_log_prob(policy, t)));
    let mut units: Vec<i64> = (0..s / k).collect();
    let mb = units.len().div_ceil(minibatches).max(1);
    let (mut loss_sum, mut loss_n, mut gn_sum, mut gn_n) = (0.0, 0usize, 0.0, 0usize);
    for epoch in 0..epochs {
        units.shuffle(rng);
        for chunk in units.chunks(mb) {
            let idx: Vec<i64> = chunk.iter().flat_map(|&u| (0..k).map(move |j| u * k + j)).collect();
            let idx = Tensor::from_slice(&idx).to_device(t.obs.device());
            let mut lp = segment_log_prob(policy, &t.select(&idx));
            if let Some(old) = &lp_old {
                let rho = tch::no_grad(|| (&lp - old.index_select(0, &idx)).exp().clamp_max(importance_clip));
                lp = lp * rho;
            }
            let loss = loss_fn(&lp, &idx);
            let (lv, gn) = adam.minimize(&loss, max_grad_norm, "policy-gradient", epoch)?;
            gn_sum += gn;
            gn_n += 1;
            if epoch + 1 == epochs {
                loss_sum += lv;
                loss_n += 1;
            }
        }
    }
    Ok((loss_sum / loss_n.max(1) as f64, gn_sum / gn_n.max(1) as f64))
}

/// Per-step k3 estimate of KL(π_old‖π) on the batch's response steps, and the entropy.
pub(crate) fn kl_entropy(policy: &GaussianPolicy, t: &SegmentTensors, step_logp_old: &Tensor) -> (f64, f64) {
    tch::no_grad(|| {
        let rho = (policy.log_prob(&t.obs, &t.act) - step_logp_old) * &t.logp_mask;
        (k3_kl(&rho, &t.logp_mask), f64::try_from(policy.entropy()).unwrap_or(f64::NAN))
    })
}
