//! REBEL: Regressing Relative Rewards (Gao et al., NeurIPS 2024), rebel.md §1–2.
//!
//! For groups of `k` segments sampled by π_t from the same start state, regress the difference of
//! log-ratios onto the difference of rewards:
//!
//! `θ_{t+1} = argmin_θ Σ_pairs ( (1/η)[ln π_θ(τ)/π_t(τ) − ln π_θ(τ')/π_t(τ')] − [r(τ) − r(τ')] )²`
//!
//! Read top to bottom: score the segments, optionally fold in a KL penalty to a reference policy,
//! optionally standardise the rewards, compute `ln π_t` ONCE with the same code path as training
//! (so that the log-ratio is exactly 0 at θ_t), then `epochs` passes of minibatch least squares with
//! Adam over shuffled groups. No clipping, no value network.

use crate::seeding::ChaCha8Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::adam::Adam;
use crate::algorithm::{AlgoConfig, AlgoError, Algorithm, Batch, Collect, Ctx, Init, Update};
use crate::losses::{k3_kl, rebel_loss_grouped};
use crate::policy::GaussianPolicy;
use crate::rollout::{segment_log_prob, step_log_prob_nograd, PairSpec, SegmentTensors};
use rebel_dist::{Collective, SingleProcess};

use super::{global_mean_std, global_sum, minibatches_of};

/// REBEL's hyperparameters. Every field has a default (shown) and can be set with `--set rebel.KEY=V`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RebelConfig {
    /// η: the regression target is η·Δr in log-ratio units; larger η allows larger policy steps.
    /// Default 100 (with standardised rewards), with `lr` 3e-4: the pair the comparison protocol picked
    /// for REBEL from a random policy on the Swimmer (`experiments/swimmer_scratch.toml`, README "REBEL
    /// with the true reward"); 10 with 1e-3 before, which stalled on 3 of 10 seeds.
    pub eta: f64,
    /// Passes over the batch per iteration. Default 8 (the official code uses 4).
    pub epochs: usize,
    /// Minibatches per epoch (the groups are split evenly). Default 4.
    pub minibatches: usize,
    /// Adam learning rate. Default 3e-4 (see `eta`).
    pub lr: f64,
    /// Clip the gradient norm to this (0: no clipping). Default 1.0.
    pub max_grad_norm: f64,
    /// Divide the rewards by their batch standard deviation (η then means the same at any reward
    /// scale). Default true.
    pub standardize_rewards: bool,
    /// γ_KL: fold `−γ_KL·(ln π_t − ln π_ref)` into each segment's reward (0: off). Default 0.
    pub kl_coef: f64,
    /// Segments per start state. Default 2 (pairs).
    pub k: usize,
    /// Branch length L in steps: pairs branch from snapshots every L steps of a trunk episode; 0
    /// means whole episodes from the same reset seed. Default 250.
    pub branch_len: usize,
    /// Start states (trunk episodes) per iteration; the vectorised env has `groups·k` envs.
    /// Default 4.
    pub groups: usize,
    /// With branches: steps of common-random-numbers continuation after each branch, whose reward
    /// is added to the branch's (a longer horizon at lower variance; the tail is not in the
    /// log-prob). 0: off. Default 250.
    pub tail_len: usize,
    /// Stop an iteration's epochs early once the per-step KL(π_t‖π_θ) estimate on the batch
    /// exceeds this (0: never). Default 0.
    pub target_kl: f64,
    /// Keep the policy's observation statistics (`policy.normalize_obs`, which this needs) up to date: before each
    /// update, every observation of the batch joins them, as in PPO (SB3's `VecNormalize`), and ln π_t is computed
    /// with them. Default false: a policy that standardises its input (one made by PPO) keeps its statistics.
    pub normalize_obs: bool,
    /// Pieces each minibatch's gradient is computed in: its groups split into this many parts, each part's loss
    /// (weighted by its share of the groups) made, differentiated and dropped before the next, and the gradients
    /// summed, so that the learner holds one part's autograd graph at a time instead of the minibatch's. The step
    /// is the minibatch's up to float rounding (the sums' order changes, and REBEL's training being chaotic, a run
    /// then lands elsewhere within its seed spread). Default 1: the whole minibatch at once, the bits of earlier
    /// builds (left out of a saved configuration at 1, so that earlier runs' configuration hashes still match).
    #[serde(skip_serializing_if = "is_one")]
    pub grad_chunks: usize,
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

impl Default for RebelConfig {
    fn default() -> Self {
        RebelConfig {
            eta: 100.0,
            epochs: 8,
            minibatches: 4,
            lr: 3e-4,
            max_grad_norm: 1.0,
            standardize_rewards: true,
            kl_coef: 0.0,
            k: 2,
            branch_len: 250,
            groups: 4,
            tail_len: 250,
            target_kl: 0.0,
            normalize_obs: false,
            grad_chunks: 1,
        }
    }
}

impl AlgoConfig for RebelConfig {
    const NAME: &'static str = "rebel";

    fn build(&self, init: &Init) -> Result<Box<dyn Algorithm>, String> {
        super::check_obs_norm(Self::NAME, self.normalize_obs, init)?;
        Ok(Box::new(Rebel(self.clone())))
    }

    fn validate(&self) -> Result<(), String> {
        if !(self.eta.is_finite() && self.eta > 0.0) {
            return Err(format!("rebel.eta must be > 0, got {}", self.eta));
        }
        if self.epochs == 0 || self.minibatches == 0 || self.groups == 0 || self.grad_chunks == 0 {
            return Err("rebel.epochs, rebel.minibatches, rebel.groups and rebel.grad_chunks must be ≥ 1".into());
        }
        if self.k < 2 {
            return Err(format!("rebel.k must be ≥ 2 (REBEL regresses differences), got {}", self.k));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("rebel.lr must be > 0, got {}", self.lr));
        }
        if !(self.kl_coef.is_finite() && self.kl_coef >= 0.0) || !(self.max_grad_norm >= 0.0) {
            return Err("rebel.kl_coef and rebel.max_grad_norm must be ≥ 0".into());
        }
        super::check_branches("rebel", self.branch_len, self.tail_len)?;
        if !(self.target_kl.is_finite() && self.target_kl >= 0.0) {
            return Err(format!("rebel.target_kl must be ≥ 0 (0: never stop early), got {}", self.target_kl));
        }
        Ok(())
    }
}

/// What one update did (all logged).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpdateStats {
    /// Mean regression loss over the minibatches of the last epoch run.
    pub loss: f64,
    /// Mean, standard deviation and largest |·| of the segment log-ratios ln π_{t+1}/π_t after the update.
    pub logratio_mean: f64,
    pub logratio_std: f64,
    pub logratio_absmax: f64,
    /// Per-step estimate of KL(π_t‖π_{t+1}) on the batch's states (k3 estimator).
    pub approx_kl: f64,
    /// Policy entropy after the update.
    pub entropy: f64,
    /// Mean gradient norm (before clipping).
    pub grad_norm: f64,
    /// Standard deviation of the segment rewards before standardisation.
    pub reward_std: f64,
    /// Fraction of the regression target explained: 1 − Var(residual)/Var(η·Δr) over pairs.
    pub explained: f64,
}

/// One REBEL iteration on a batch of `S = G·k` segments (groups consecutive):
/// `t` the padded segments, `rewards [S]` their scores, `reference` for the optional KL term.
/// Returns `Err` with a message when the loss or a gradient is not finite (nothing is applied then
/// for that minibatch, and the caller must stop).
pub fn update(
    policy: &GaussianPolicy,
    adam: &mut Adam,
    t: &SegmentTensors,
    rewards: &Tensor,
    reference: Option<&GaussianPolicy>,
    cfg: &RebelConfig,
    rng: &mut ChaCha8Rng,
) -> Result<UpdateStats, String> {
    update_shared(policy, adam, t, rewards, reference, cfg, rng, &SingleProcess)
}

/// [`update`] on this rank's shard of a batch spread over the ranks of `world` (data-parallel training): every
/// batch statistic the update depends on (the reward mean and standard deviation, the `target_kl` estimate,
/// the number of groups) is computed over all ranks, each minibatch's gradient is the all-ranks average
/// weighted by groups ([`Adam::minimize_shared`]), and every rank takes the same number of steps (that of one
/// process holding all `G` groups; a rank may hold none of a minibatch's). With one minibatch per epoch the
/// result equals one process's update on the union of the shards, up to float rounding; with several, each
/// minibatch is a chunk of the ranks' shuffled groups interleaved, of one process's size and number but not
/// from one process's shuffle. The statistics returned (`loss` and `grad_norm` aside) are this rank's.
#[allow(clippy::too_many_arguments)]
pub fn update_shared(
    policy: &GaussianPolicy,
    adam: &mut Adam,
    t: &SegmentTensors,
    rewards: &Tensor,
    reference: Option<&GaussianPolicy>,
    cfg: &RebelConfig,
    rng: &mut ChaCha8Rng,
    world: &dyn Collective,
) -> Result<UpdateStats, String> {
    let shared = world.size() > 1;
    // the log-probabilities need only the response steps, not the reward-only tail
    let t = &t.response();
    let k = cfg.k as i64;
    let s = rewards.size()[0];
    if (s == 0 && !shared) || s % k != 0 {
        return Err(format!("a batch of {s} segments is not made of groups of {k}"));
    }
    let g = s / k;
    // ln π_t once, per step and per segment, with the training code path
    let step_logp_old = step_log_prob_nograd(policy, t, k);
    let logp_old = step_logp_old.sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
    let mut r = rewards.to_kind(Kind::Float);
    if cfg.kl_coef > 0.0 {
        if let Some(reference) = reference {
            let logp_ref = tch::no_grad(|| segment_log_prob(reference, t));
            r = r - (&logp_old - logp_ref) * cfg.kl_coef;
        }
    }
    let (reward_mean, reward_std) = if shared {
        global_mean_std(world, &r)?
    } else {
        (f64::NAN, f64::try_from(r.std(true)).unwrap_or(0.0))
    };
    if cfg.standardize_rewards {
        r = if shared { (&r - reward_mean) / (reward_std + 1e-8) } else { (&r - r.mean(Kind::Float)) / (reward_std + 1e-8) };
    }
    let mut groups: Vec<i64> = (0..g).collect();
    let (mut loss_sum, mut loss_n, mut gn_sum, mut gn_n) = (0.0, 0usize, 0.0, 0usize);
    // per-step k3 estimate of KL(π_t‖π_θ) on the batch's response steps
    let kl_now = || -> Result<f64, String> {
        tch::no_grad(|| {
            let rho = step_log_prob_nograd(policy, t, k) - &step_logp_old;
            if !shared {
                return Ok(k3_kl(&rho, &t.logp_mask));
            }
            let kl = ((rho.exp() - 1.0) - &rho) * &t.logp_mask;
            let local = [f64::try_from(kl.sum(Kind::Double)).unwrap_or(f64::NAN), f64::try_from(t.logp_mask.sum(Kind::Double)).unwrap_or(0.0)];
            let all = global_sum(world, &local)?;
            Ok(all[0] / all[1])
        })
    };
    for epoch in 0..cfg.epochs {
        if cfg.target_kl > 0.0 && epoch > 0 && kl_now()? > cfg.target_kl {
            break; // trust region reached: stop this iteration's epochs early
        }
        (loss_sum, loss_n) = (0.0, 0); // report the last epoch run
        groups.shuffle(rng);
        for chunk in minibatches_of(world, &groups, cfg.minibatches)? {
            // the minibatch's loss in `parts` pieces of its groups, each weighted by its share (one piece: the loss)
            let parts = cfg.grad_chunks.clamp(1, chunk.len().max(1));
            let pieces: Vec<&[i64]> = chunk.chunks(chunk.len().div_ceil(parts).max(1)).collect();
            let loss_of = |p: usize| {
                let piece = pieces.get(p)?;
                let idx: Vec<i64> = piece.iter().flat_map(|&gi| (0..k).map(move |j| gi * k + j)).collect();
                let idx = Tensor::from_slice(&idx).to_device(rewards.device());
                let logp_new = segment_log_prob(policy, &t.select(&idx));
                let loss = rebel_loss_grouped(&logp_new, &logp_old.index_select(0, &idx), &r.index_select(0, &idx), cfg.eta, k);
                Some(if pieces.len() == 1 { loss } else { loss * (piece.len() as f64 / chunk.len() as f64) })
            };
            let (lv, gn) = adam.minimize_parts_shared(world, pieces.len(), loss_of, chunk.len(), cfg.max_grad_norm, "REBEL", epoch)?;
            gn_sum += gn;
            gn_n += 1;
            loss_sum += lv;
            loss_n += 1;
        }
    }
    let (loss, grad_norm) = (loss_sum / loss_n.max(1) as f64, gn_sum / gn_n.max(1) as f64);
    Ok(after_update(policy, t, &step_logp_old, &r, cfg, loss, grad_norm, reward_std))
}

/// The update's statistics, from the policy after it: the log-ratios ln π_new/π_t per segment (mean, std, largest
/// magnitude), the k3 estimate of KL(π_t‖π_new) on the visited steps, the entropy, and how much of the variance of
/// the pairs' reward differences (0 vs 1 of each group) the scaled log-ratio differences explain.
#[allow(clippy::too_many_arguments)]
fn after_update(
    policy: &GaussianPolicy,
    t: &SegmentTensors,
    step_logp_old: &Tensor,
    r: &Tensor,
    cfg: &RebelConfig,
    loss: f64,
    grad_norm: f64,
    reward_std: f64,
) -> UpdateStats {
    let k = cfg.k as i64;
    tch::no_grad(|| {
        let step_logp_new = step_log_prob_nograd(policy, t, k);
        let rho = &step_logp_new - step_logp_old; // per-step ln π_new/π_t, 0 on padding
        let lr = rho.sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
        // per-step k3 estimator of KL(π_t‖π_new) on the visited states (samples of π_t)
        let approx_kl = k3_kl(&rho, &t.logp_mask);
        let x = (&lr / cfg.eta).view([-1, k]);
        let target = r.view([-1, k]);
        let resid = (&x - &target).select(1, 0) - (&x - &target).select(1, 1);
        let dtarget = target.select(1, 0) - target.select(1, 1); // pairs (0, 1) of each group
        let explained = 1.0 - f64::try_from(resid.var(false)).unwrap_or(f64::NAN)
            / f64::try_from(dtarget.var(false)).unwrap_or(f64::NAN).max(1e-12);
        UpdateStats {
            loss,
            logratio_mean: f64::try_from(lr.mean(Kind::Float)).unwrap_or(f64::NAN),
            logratio_std: f64::try_from(lr.std(true)).unwrap_or(f64::NAN),
            logratio_absmax: f64::try_from(lr.abs().max()).unwrap_or(f64::NAN),
            approx_kl,
            entropy: f64::try_from(policy.entropy()).unwrap_or(f64::NAN),
            grad_norm,
            reward_std,
            explained,
        }
    })
}

/// The REBEL learner: no state besides the policy and its Adam.
struct Rebel(RebelConfig);

impl Algorithm for Rebel {
    fn collect(&self) -> Collect {
        let c = &self.0;
        Collect::Segments { groups: c.groups, spec: PairSpec::new(c.k, c.branch_len, c.tail_len) }
    }

    fn lr(&self) -> f64 {
        self.0.lr
    }

    fn data_parallel(&self) -> bool {
        true
    }

    fn updates_obs_norm(&self) -> bool {
        self.0.normalize_obs
    }

    fn update(&mut self, ctx: &mut Ctx, batch: Option<&Batch>) -> Result<Update, AlgoError> {
        let batch = batch.expect("REBEL collects segments");
        if self.0.normalize_obs {
            super::update_policy_obs_stats(ctx.world, ctx.policy, super::obs_rows(&batch.segments)).map_err(AlgoError::Failed)?;
        }
        let t = &batch.tensors;
        let (rewards, segment_score) = super::segment_scores(ctx, t);
        let st = update_shared(ctx.policy, ctx.adam, t, &rewards, Some(ctx.reference), &self.0, ctx.rng, ctx.world)
            .map_err(AlgoError::Diverged)?;
        let stats = vec![
            ("losses/rebel", st.loss),
            ("losses/logratio_mean", st.logratio_mean),
            ("losses/logratio_std", st.logratio_std),
            ("losses/logratio_absmax", st.logratio_absmax),
            ("losses/approx_kl", st.approx_kl),
            ("losses/entropy", st.entropy),
            ("losses/grad_norm", st.grad_norm),
            ("losses/reward_std", st.reward_std),
            ("losses/explained", st.explained),
        ];
        Ok(Update { stats, segment_score, ..Update::default() })
    }
}
