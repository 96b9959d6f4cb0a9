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
use crate::algorithm::{Ctx, Init};
use crate::losses::k3_kl;
use crate::policy::GaussianPolicy;
use crate::rollout::{segment_log_prob, SegmentBatch, SegmentTensors};
use crate::util::RunningMeanStd;
use rebel_dist::Collective;

/// Element-wise sums over the ranks of a data-parallel run (f64; the identity on one process).
pub(crate) fn global_sum(world: &dyn Collective, local: &[f64]) -> Result<Vec<f64>, String> {
    let mut v = local.to_vec();
    world.all_reduce_sum_f64(&mut v).map_err(|e| format!("the batch statistics' all-reduce failed: {e}"))?;
    Ok(v)
}

/// Mean and unbiased standard deviation of `x` over the values of every rank.
pub(crate) fn global_mean_std(world: &dyn Collective, x: &Tensor) -> Result<(f64, f64), String> {
    global_count_mean_std(world, x).map(|(_, mean, std)| (mean, std))
}

/// Number, mean and unbiased standard deviation of `x` over the values of every rank (a rank may hold none).
pub(crate) fn global_count_mean_std(world: &dyn Collective, x: &Tensor) -> Result<(f64, f64, f64), String> {
    let x = x.to_kind(Kind::Double);
    let local = [x.numel() as f64, f64::try_from(x.sum(Kind::Double)).unwrap_or(f64::NAN), f64::try_from(x.square().sum(Kind::Double)).unwrap_or(f64::NAN)];
    let [n, s, ss] = global_sum(world, &local)?[..] else { unreachable!("three sums") };
    let mean = s / n.max(1.0);
    let var = if n > 1.0 { ((ss - n * mean * mean) / (n - 1.0)).max(0.0) } else { 0.0 };
    Ok((n, mean, var.sqrt()))
}

/// [`RunningMeanStd::update_rows`] with the `rows` (each `dim` values, walked twice) of every rank of `world`. One
/// process merges its rows as `update_rows` does; several ranks merge the per-dimension mean and population variance of all ranks' rows,
/// in two passes of one all-reduce each (the mean first, then the squared deviations from it), so that every
/// rank holds the same statistics.
pub(crate) fn update_running<'a, T: Copy + Into<f64> + 'a>(world: &dyn Collective, rms: &mut RunningMeanStd, rows: impl Iterator<Item = &'a [T]> + Clone) -> Result<(), String> {
    if world.size() == 1 {
        rms.update_rows(rows);
        return Ok(());
    }
    let dim = rms.mean.len();
    let (mut sums, n) = crate::util::batch_sums(rows.clone(), dim);
    sums.push(n as f64);
    let sums = global_sum(world, &sums)?;
    let n = sums[dim];
    let mean: Vec<f64> = sums[..dim].iter().map(|s| s / n.max(1.0)).collect();
    let dev = crate::util::batch_sq_dev(rows, &mean);
    let var: Vec<f64> = global_sum(world, &dev)?.into_iter().map(|d| d / n.max(1.0)).collect();
    rms.merge(&mean, &var, n);
    Ok(())
}

/// This rank's minibatches of one epoch over its shuffled `units`, as many and as large as one process
/// holding all ranks' units cuts them into (`⌈U/minibatches⌉` each): the ranks' units interleaved (rank r's
/// i-th at position r + i·ranks, which numbers 0..U when the units are shared round robin, as `train` shares
/// the groups) and cut into chunks. A rank may hold none of a minibatch. One process: `units.chunks(mb)`.
pub(crate) fn minibatches_of(world: &dyn Collective, units: &[i64], minibatches: usize) -> Result<Vec<Vec<i64>>, String> {
    if world.size() == 1 {
        let mb = units.len().div_ceil(minibatches).max(1);
        return Ok(units.chunks(mb).map(<[i64]>::to_vec).collect());
    }
    let total = global_sum(world, &[units.len() as f64])?[0] as usize;
    minibatches_sized(world, units, total.div_ceil(minibatches).max(1))
}

/// [`minibatches_of`] for minibatches of a given size `mb` (PPO's `batch` of steps): `⌈U/mb⌉` of them
/// over all ranks' units (the last one takes what a rank holding more than its share has left over).
pub(crate) fn minibatches_sized(world: &dyn Collective, units: &[i64], mb: usize) -> Result<Vec<Vec<i64>>, String> {
    let mb = mb.max(1);
    if world.size() == 1 {
        return Ok(units.chunks(mb).map(<[i64]>::to_vec).collect());
    }
    let total = global_sum(world, &[units.len() as f64])?[0] as usize;
    let steps = total.div_ceil(mb).max(1);
    let (rank, n) = (world.rank(), world.size());
    let mut parts = vec![Vec::new(); steps];
    for (i, &u) in units.iter().enumerate() {
        parts[((rank + i * n) / mb).min(steps - 1)].push(u);
    }
    Ok(parts)
}

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

/// `ALGO.normalize_obs = true` needs a policy that standardises its input (`policy.normalize_obs = true`, or a
/// `policy.init` checkpoint that does); shared by REBEL, RLOO and REINFORCE.
pub(crate) fn check_obs_norm(algo: &str, on: bool, init: &Init) -> Result<(), String> {
    if on && init.initial.obs_rms().is_none() {
        return Err(format!(
            "{algo}.normalize_obs = true keeps the policy's observation statistics up to date, but this policy does not \
             standardise its input: set policy.normalize_obs = true as well (or {algo}.normalize_obs = false)"
        ));
    }
    Ok(())
}

/// Every observation of `batch`'s segments (their tails included), rows of `obs_dim` values, in order, read where
/// they lie (a copy as f64 took the learner's largest allocation on the HalfCheetah: 42,000 rows, and 12 MiB while
/// the vector grew).
pub(crate) fn obs_rows(batch: &SegmentBatch) -> impl Iterator<Item = &[f32]> + Clone {
    let od = batch.obs_dim.max(1);
    batch.segments.iter().flat_map(move |s| s.obs.chunks(od))
}

/// Merges the observation rows `obs` (every rank's) into the policy's running observation statistics, before an
/// update (SB3's `VecNormalize`: the statistics include the current batch; PPO, and REBEL, RLOO and REINFORCE with
/// their `normalize_obs`). ln π_t is then computed with the statistics the update trains with, so each log-ratio
/// starts at 0.
pub(crate) fn update_policy_obs_stats<'a>(world: &dyn Collective, policy: &GaussianPolicy, obs: impl Iterator<Item = &'a [f32]> + Clone) -> Result<(), String> {
    let mut rms = policy.obs_rms().ok_or("normalize_obs = true needs a policy with policy.normalize_obs = true")?;
    update_running(world, &mut rms, obs)?;
    policy.set_obs_rms(&rms)
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
/// consecutive segments; shared by REINFORCE (`k = 1`) and RLOO. On the ranks of a data-parallel run, the
/// minibatches are [`minibatches_of`]'s and every step averages the gradient over the ranks. Returns
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
    world: &dyn Collective,
    loss_fn: &dyn Fn(&Tensor, &Tensor) -> Tensor,
) -> Result<(f64, f64), String> {
    let s = t.obs.size()[0];
    // with importance_clip > 0, each segment's log-probability is weighted by its truncated ratio
    // min(π/π_old, c) (constant in the gradient), so that later steps of a multi-epoch update
    // estimate the current policy's gradient from the old policy's samples
    let lp_old = (importance_clip > 0.0).then(|| tch::no_grad(|| segment_log_prob(policy, t)));
    let mut units: Vec<i64> = (0..s / k).collect();
    let (mut loss_sum, mut loss_n, mut gn_sum, mut gn_n) = (0.0, 0usize, 0.0, 0usize);
    for epoch in 0..epochs {
        units.shuffle(rng);
        for chunk in minibatches_of(world, &units, minibatches)? {
            let loss = (!chunk.is_empty()).then(|| {
                let idx: Vec<i64> = chunk.iter().flat_map(|&u| (0..k).map(move |j| u * k + j)).collect();
                let idx = Tensor::from_slice(&idx).to_device(t.obs.device());
                let mut lp = segment_log_prob(policy, &t.select(&idx));
                if let Some(old) = &lp_old {
                    let rho = tch::no_grad(|| (&lp - old.index_select(0, &idx)).exp().clamp_max(importance_clip));
                    lp = lp * rho;
                }
                loss_fn(&lp, &idx)
            });
            let (lv, gn) = adam.minimize_shared(world, loss.as_ref(), chunk.len(), max_grad_norm, "policy-gradient", epoch)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyConfig;
    use crate::rollout::Segment;
    use rebel_dist::SingleProcess;
    use tch::Device;

    /// `normalize_obs`: the policy's statistics take in every observation of the batch's segments, tails included,
    /// as one running-statistics update of those rows (the same numbers, stored in the policy's precision).
    #[test]
    fn a_batch_updates_the_policys_observation_statistics_with_all_its_rows() {
        let cfg = PolicyConfig { normalize_obs: true, ..PolicyConfig::new(3, 1) };
        let policy = GaussianPolicy::new(cfg, Device::Cpu, Kind::Float, 0);
        let seg = |obs: Vec<f32>, response_len| Segment { rewards: vec![0.0; obs.len() / 3], act: vec![0.0; obs.len() / 3], obs, response_len, ..Segment::default() };
        let a: Vec<f32> = (0..12).map(|i| (i as f32 * 0.7).sin() * 3.0 + 1.0).collect();
        let b: Vec<f32> = (0..6).map(|i| i as f32 - 10.0).collect();
        let batch = SegmentBatch { obs_dim: 3, act_dim: 1, k: 2, segments: vec![seg(a.clone(), 2), seg(b.clone(), 1)], env_steps: 6, episode_returns: vec![] };
        let mut want = policy.obs_rms().unwrap();
        update_policy_obs_stats(&SingleProcess, &policy, obs_rows(&batch)).unwrap();
        let rows: Vec<f64> = a.iter().chain(&b).map(|&x| x as f64).collect();
        // the rows read where they lie give the bits of the same rows copied out as f64
        let mut copied = want.clone();
        copied.update(&rows);
        let mut streamed = want.clone();
        streamed.update_rows(obs_rows(&batch));
        assert_eq!(streamed, copied);
        want.update(&rows);
        let got = policy.obs_rms().unwrap();
        let f32s = |x: &[f64]| x.iter().map(|&v| v as f32).collect::<Vec<_>>();
        assert_eq!(f32s(&got.mean), f32s(&want.mean));
        assert_eq!(f32s(&got.var), f32s(&want.var));
        assert_eq!(got.count as f32, want.count as f32);
        assert!((got.count - 6.0).abs() < 1e-3, "{}", got.count);
        // a policy without statistics is refused
        let plain = GaussianPolicy::new(PolicyConfig::new(3, 1), Device::Cpu, Kind::Float, 0);
        assert!(update_policy_obs_stats(&SingleProcess, &plain, obs_rows(&batch)).unwrap_err().contains("policy.normalize_obs"));
    }
}
