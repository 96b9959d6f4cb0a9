//! PPO (Schulman et al. 2017) on per-step scores, rebel.md §4: clipped ratio, GAE, a separate value
//! MLP, an optional per-step KL-to-reference penalty.
//!
//! Read top to bottom: the batch is whole episodes (one segment per environment, from
//! [`crate::rollout::collect_groups`] with `k = 1` and no branching). Per-step scores come from the
//! scorer (true reward or reward net); optionally the KL penalty is folded in; optionally rewards are
//! scaled by a running standard deviation of the discounted return (SB3's `VecNormalize`); the value
//! net (its input optionally standardised with running observation statistics) gives `V(s_t)` and,
//! at a truncation, `V` of the TRUE final observation (Swimmer never terminates, it only truncates:
//! treating the time limit as a termination would bias every advantage near the end); then GAE, and
//! `epochs` passes of shuffled minibatches of the clipped surrogate and the value regression.
//!
//! The policy's own input is the raw observation unless the policy itself standardises it
//! (`policy.normalize_obs`, SB3's `VecNormalize` for both networks; off by default because all rows of the
//! comparison start from the same reference policy): then this update refreshes the policy's statistics with
//! the batch before computing the old log-probabilities. `normalize_obs` here standardises the value
//! net's input (its own statistics, updated from the same observations).
//!
//! Defaults are the RL-Zoo tuned values for Swimmer-v3 PPO (n_envs 4, n_steps 1024, batch 256,
//! lr 6e-4, γ 0.9999, λ 0.98, normalize), except that a batch is `n_envs` whole episodes (4 × 1000
//! steps here instead of 4 × 1024).

use crate::seeding::ChaCha8Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::adam::{Adam, AdamConfig};
use crate::algorithm::{AlgoConfig, AlgoError, Algorithm, Batch, Collect, Ctx, Init, Update};
use crate::checkpoint::Checkpoint;
use crate::mlp::{Activation, Mlp};
use crate::losses::{gae, ppo_clip_loss, ppo_diagnostics, value_loss};
use crate::policy::{standardize, GaussianPolicy};
use crate::rollout::{PairSpec, SegmentBatch, SegmentTensors};
pub use crate::util::RunningMeanStd;
use rebel_dist::{Collective, SingleProcess};

use super::{global_count_mean_std, global_sum, minibatches_sized, obs_rows, update_policy_obs_stats, update_running};

/// PPO's hyperparameters (`--set ppo.KEY=V`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Adam learning rate of the policy and of the value net. Default 6e-4.
    pub lr: f64,
    /// Parallel environments; one whole episode each per iteration. Default 4.
    pub n_envs: usize,
    /// The fewest env steps of a batch: further rounds of `n_envs` whole episodes are collected until the batch
    /// holds this many (SB3's `n_steps × n_envs`, for environments whose episodes terminate early). 0 (the
    /// default): one round.
    pub min_steps: usize,
    /// Passes over the batch per iteration. Default 10.
    pub epochs: usize,
    /// Minibatch size in steps. Default 256.
    pub batch: usize,
    /// Ratio clip ε. Default 0.2.
    pub clip: f64,
    /// Discount γ. Default 0.9999 (what the tuned Swimmer agents use).
    pub gamma: f64,
    /// GAE λ. Default 0.98.
    pub gae_lambda: f64,
    /// Hidden widths of the value MLP. Default [64, 64].
    pub vf_hidden: Vec<usize>,
    /// Nonlinearity of the value MLP's hidden layers (`"tanh"`, `"relu"`). Default tanh.
    pub vf_activation: Activation,
    /// Entropy bonus: `ent_coef · H(π)` is subtracted from the policy loss (SB3's `ent_coef`). Default 0.
    pub ent_coef: f64,
    /// Clip the value update around the old values by this (0: off). Default 0.
    pub vf_clip: f64,
    /// Clip each network's gradient norm to this (0: off). Default 0.5.
    pub max_grad_norm: f64,
    /// Standardise the advantages per minibatch. Default true.
    pub normalize_advantages: bool,
    /// Standardise the value net's input with running observation statistics. Default true.
    pub normalize_obs: bool,
    /// Divide the per-step rewards by the running standard deviation of the discounted return.
    /// Default true.
    pub normalize_rewards: bool,
    /// Per-step penalty `kl_coef·(ln π_t(a|s) − ln π_ref(a|s))` subtracted from the reward (0: off).
    /// Default 0.
    pub kl_coef: f64,
    /// Stop the epochs of an iteration early once the approximate KL exceeds this (0: off). Default 0.
    pub target_kl: f64,
    /// Decay both learning rates linearly to 0 over the run's env-step budget (CleanRL's `anneal_lr`): an
    /// iteration's rate is `lr · (1 − env steps done before it / env_steps)`. Default false.
    pub anneal_lr: bool,
}

impl Default for PpoConfig {
    fn default() -> Self {
        PpoConfig {
            lr: 6e-4,
            n_envs: 4,
            min_steps: 0,
            epochs: 10,
            batch: 256,
            clip: 0.2,
            gamma: 0.9999,
            gae_lambda: 0.98,
            vf_hidden: vec![64, 64],
            vf_activation: Activation::Tanh,
            ent_coef: 0.0,
            vf_clip: 0.0,
            max_grad_norm: 0.5,
            normalize_advantages: true,
            normalize_obs: true,
            normalize_rewards: true,
            kl_coef: 0.0,
            target_kl: 0.0,
            anneal_lr: false,
        }
    }
}

impl AlgoConfig for PpoConfig {
    const NAME: &'static str = "ppo";

    fn build(&self, init: &Init) -> Result<Box<dyn Algorithm>, String> {
        let value = ValueNet::new(init.obs_dim, &self.vf_hidden, self.vf_activation, self.normalize_obs, init.device, init.seed.wrapping_add(0x5EED));
        let vadam = Adam::new(value.named_parameters(), AdamConfig { lr: self.lr, ..AdamConfig::default() });
        Ok(Box::new(Ppo { cfg: self.clone(), value, vadam, scaler: RewardScaler::default() }))
    }

    fn validate(&self) -> Result<(), String> {
        if self.n_envs == 0 || self.epochs == 0 || self.batch == 0 {
            return Err("ppo.n_envs, ppo.epochs and ppo.batch must be ≥ 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("ppo.lr must be > 0, got {}", self.lr));
        }
        if !(self.clip > 0.0 && self.clip < 1.0) {
            return Err(format!("ppo.clip must be in (0, 1), got {}", self.clip));
        }
        if !(0.0..=1.0).contains(&self.gamma) || !(0.0..=1.0).contains(&self.gae_lambda) {
            return Err("ppo.gamma and ppo.gae_lambda must be in [0, 1]".into());
        }
        if self.vf_hidden.contains(&0) {
            return Err("ppo.vf_hidden widths must be ≥ 1".into());
        }
        if !(self.vf_clip >= 0.0 && self.max_grad_norm >= 0.0 && self.kl_coef >= 0.0 && self.target_kl >= 0.0 && self.ent_coef >= 0.0) {
            return Err("ppo.vf_clip, ppo.max_grad_norm, ppo.kl_coef, ppo.target_kl and ppo.ent_coef must be ≥ 0".into());
        }
        Ok(())
    }
}

/// The value MLP `V(s)`: `obs_dim → vf_hidden (vf_activation) → 1`, input standardised with `obs_rms` when
/// enabled. Initialised from a seed with PyTorch's default `U(±1/√fan_in)` for every layer.
#[derive(Debug)]
pub struct ValueNet {
    mlp: Mlp,
    /// Running observation statistics (used when `normalize_obs`).
    pub obs_rms: RunningMeanStd,
    normalize: bool,
    device: Device,
}

impl ValueNet {
    /// A fresh value net for observations of `obs_dim`.
    pub fn new(obs_dim: usize, hidden: &[usize], activation: Activation, normalize: bool, device: Device, seed: u64) -> Self {
        let mut rng = crate::seeding::stream(seed, crate::seeding::Domain::Init, 1);
        let mut sizes = vec![obs_dim];
        sizes.extend(hidden);
        sizes.push(1);
        let mlp = Mlp::new(&sizes, activation, &mut rng, device);
        ValueNet { mlp, obs_rms: RunningMeanStd::new(obs_dim), normalize, device }
    }

    /// `obs [..., obs_dim] → [...]`.
    pub fn forward(&self, obs: &Tensor) -> Tensor {
        let h = if self.normalize {
            let stat = |x: &[f64]| Tensor::from_slice(x).to_kind(Kind::Float).to_device(self.device);
            standardize(obs, &stat(&self.obs_rms.mean), &stat(&self.obs_rms.var))
        } else {
            obs.shallow_clone()
        };
        self.mlp.forward(&h).squeeze_dim(-1)
    }

    /// Parameters by name (`layer{i}.weight`, `layer{i}.bias`), shallow clones, for Adam and checkpoints.
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        self.mlp.named_parameters("")
    }
}

/// The state PPO keeps between iterations besides the networks: the return-scaling statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RewardScaler {
    /// Running variance of the discounted return.
    pub ret_rms: RunningMeanStd,
}

impl Default for RewardScaler {
    fn default() -> Self {
        RewardScaler { ret_rms: RunningMeanStd::new(1) }
    }
}

impl RewardScaler {
    /// Updates the statistics with the discounted returns `G_t = γ·G_{t−1} + r_t` of each row of
    /// `rewards [S][len_s]` (every row starts an episode at G = 0) and returns the factor
    /// `1/sqrt(var + 1e-8)` to multiply the rewards with.
    pub fn update(&mut self, rewards: &[Vec<f64>], gamma: f64) -> f64 {
        self.ret_rms.update(&discounted_returns(rewards, gamma));
        self.factor()
    }

    /// [`RewardScaler::update`] with the rows of every rank of `world` (the same statistics on every rank).
    pub fn update_shared(&mut self, rewards: &[Vec<f64>], gamma: f64, world: &dyn Collective) -> Result<f64, String> {
        update_running(world, &mut self.ret_rms, discounted_returns(rewards, gamma).chunks(1))?;
        Ok(self.factor())
    }

    fn factor(&self) -> f64 {
        1.0 / (self.ret_rms.var[0] + 1e-8).sqrt()
    }
}

/// The running discounted returns of each row, every row from G = 0.
fn discounted_returns(rewards: &[Vec<f64>], gamma: f64) -> Vec<f64> {
    let mut g_all = Vec::new();
    for row in rewards {
        let mut g = 0.0;
        for r in row {
            g = gamma * g + r;
            g_all.push(g);
        }
    }
    g_all
}

/// What one update did (all logged).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PpoStats {
    pub policy_loss: f64,
    pub value_loss: f64,
    pub approx_kl: f64,
    pub clip_fraction: f64,
    pub entropy: f64,
    pub explained_variance: f64,
    pub grad_norm: f64,
    /// Factor the per-step rewards were multiplied with (1 without reward normalisation).
    pub reward_scale: f64,
    /// Epochs actually run (fewer when `target_kl` stopped them).
    pub epochs: usize,
}

/// Flat per-step training data of a batch of whole episodes.
struct Flat {
    obs: Tensor,
    act: Tensor,
    logp_old: Tensor,
    adv: Tensor,
    ret: Tensor,
    v_old: Tensor,
}

/// Per-step advantages and returns of a batch: `values [S, L]` = V(s_t), `final_values [S]` = V of
/// each segment's final observation, `rewards [S, L]` the per-step (scaled) rewards, `mask [S, L]`,
/// and the segments' `terminated`/`truncated` flags (a segment that ends neither is treated as a
/// truncation of its last step). Returns `(adv [S, L], returns [S, L])` (0 on padding), via
/// [`crate::losses::gae`] on the transposed `[L, S]` layout.
#[allow(clippy::too_many_arguments)]
pub fn advantages(
    rewards: &Tensor,
    values: &Tensor,
    final_values: &Tensor,
    mask: &Tensor,
    terminated: &[bool],
    gamma: f64,
    lambda: f64,
) -> (Tensor, Tensor) {
    let (s, l) = rewards.size2().expect("rewards [S, L]");
    let to_vec = |t: &Tensor| Vec::<f64>::try_from(t.detach().to_kind(Kind::Double).to_device(Device::Cpu).reshape([-1])).expect("f64");
    let (m, v, fv) = (to_vec(mask), to_vec(values), to_vec(final_values));
    let (su, lu) = (s as usize, l as usize);
    let mut next = vec![0.0; su * lu];
    let mut term = vec![0.0; su * lu];
    let mut trunc = vec![0.0; su * lu];
    for i in 0..su {
        let len = (0..lu).filter(|&t| m[i * lu + t] > 0.5).count();
        for t in 0..len {
            next[i * lu + t] = if t + 1 < len { v[i * lu + t + 1] } else { fv[i] };
        }
        if len > 0 {
            if terminated[i] {
                term[i * lu + len - 1] = 1.0;
            } else {
                trunc[i * lu + len - 1] = 1.0;
            }
        }
        // padding: its own one-step "episodes", never leaking into real steps
        for t in len..lu {
            trunc[i * lu + t] = 1.0;
        }
    }
    let mk = |x: &[f64]| Tensor::from_slice(x).view([s, l]).tr().contiguous();
    let (adv, ret) = gae(&mk(&to_vec(&(rewards * mask))), &mk(&v), &mk(&next), &mk(&term), &mk(&trunc), gamma, lambda);
    let mk_back = |x: Tensor| x.tr().contiguous().to_kind(Kind::Float).to_device(rewards.device()) * mask;
    (mk_back(adv), mk_back(ret))
}

/// One PPO iteration on a batch of whole episodes. `t` the padded segments of `batch`,
/// `step_rewards [S, L]` their per-step scores, `reference` for the optional KL penalty.
/// Updates `value.obs_rms` and `scaler` first. `Err` when a loss or gradient is not finite.
#[allow(clippy::too_many_arguments)]
pub fn update(
    policy: &GaussianPolicy,
    adam: &mut Adam,
    value: &mut ValueNet,
    vadam: &mut Adam,
    scaler: &mut RewardScaler,
    batch: &SegmentBatch,
    t: &SegmentTensors,
    step_rewards: &Tensor,
    reference: Option<&GaussianPolicy>,
    cfg: &PpoConfig,
    rng: &mut ChaCha8Rng,
) -> Result<PpoStats, String> {
    let nets = Nets { policy, adam, value, vadam, scaler };
    update_shared(nets, batch, t, step_rewards, reference, cfg, rng, &SingleProcess)
}

/// What a PPO update trains: the policy and the value net with their Adams, and the return scaler.
pub struct Nets<'a> {
    pub policy: &'a GaussianPolicy,
    pub adam: &'a mut Adam,
    pub value: &'a mut ValueNet,
    pub vadam: &'a mut Adam,
    pub scaler: &'a mut RewardScaler,
}

/// [`update`] on this rank's episodes of a batch spread over the ranks of `world` (data-parallel training, as
/// OpenAI's baselines scale PPO): the observation and return statistics, every minibatch's advantage
/// standardisation, both nets' gradients (averaged with an all-reduce weighted by each rank's steps), the
/// early-stopping KL and the logged diagnostics are reduced over the ranks, so every rank takes the same steps
/// and ends with the same bits. GAE runs per episode, which a rank holds whole. Each rank shuffles its own
/// steps; the minibatches interleave the ranks' steps, one process's `⌈steps/batch⌉` of `batch` steps each.
/// With one minibatch per epoch this is one process's update on all ranks' episodes.
#[allow(clippy::too_many_arguments)]
pub fn update_shared(
    nets: Nets,
    batch: &SegmentBatch,
    t: &SegmentTensors,
    step_rewards: &Tensor,
    reference: Option<&GaussianPolicy>,
    cfg: &PpoConfig,
    rng: &mut ChaCha8Rng,
    world: &dyn Collective,
) -> Result<PpoStats, String> {
    let Nets { policy, adam, value, vadam, scaler } = nets;
    let od = batch.obs_dim;
    // every rank learns whether any rank lacks a final observation (no rank may leave the collectives alone)
    let missing = batch.segments.iter().find(|s| s.final_obs.len() != od).map(|s| s.len());
    if global_sum(world, &[missing.is_some() as u8 as f64])?[0] > 0.0 {
        let len = missing.map_or_else(|| "another rank's".to_string(), |l| format!("a {l}-step"));
        return Err(format!("PPO needs whole episodes with their final observation; {len} segment has none"));
    }
    // statistics first (SB3 normalises with statistics that include the current batch)
    let policy_stats = policy.config().normalize_obs;
    if cfg.normalize_obs || policy_stats {
        if cfg.normalize_obs {
            update_running(world, &mut value.obs_rms, obs_rows(batch))?;
        }
        if policy_stats {
            update_policy_obs_stats(world, policy, obs_rows(batch))?;
        }
    }
    let step_logp_old = tch::no_grad(|| policy.log_prob(&t.obs, &t.act));
    let mut r = step_rewards.to_kind(Kind::Float) * &t.mask;
    if cfg.kl_coef > 0.0 {
        if let Some(reference) = reference {
            let lp_ref = tch::no_grad(|| reference.log_prob(&t.obs, &t.act));
            r -= (&step_logp_old - lp_ref) * &t.mask * cfg.kl_coef;
        }
    }
    let reward_scale = if cfg.normalize_rewards {
        let (s, l) = r.size2().expect("[S, L]");
        let rv = Vec::<f64>::try_from(r.to_kind(Kind::Double).to_device(Device::Cpu).reshape([-1])).expect("f64");
        let rows: Vec<Vec<f64>> =
            (0..s as usize).map(|i| rv[i * l as usize..i * l as usize + batch.segments[i].len()].to_vec()).collect();
        scaler.update_shared(&rows, cfg.gamma, world)?
    } else {
        1.0
    };
    let r = r * reward_scale;
    let flat = flatten(value, batch, t, &r, &step_logp_old, cfg);
    let mut st = epochs(Nets { policy, adam, value, vadam, scaler }, &flat, cfg, rng, world)?;
    st.explained_variance = {
        let (_, _, sd_ret) = global_count_mean_std(world, &flat.ret)?;
        let (_, _, sd_res) = global_count_mean_std(world, &(&flat.ret - &flat.v_old))?;
        if sd_ret > 0.0 { 1.0 - (sd_res / sd_ret).powi(2) } else { f64::NAN }
    };
    st.reward_scale = reward_scale;
    st.entropy = f64::try_from(policy.entropy()).unwrap_or(f64::NAN);
    Ok(st)
}

/// Values, GAE and the flat per-step training data of the real (unpadded) steps.
fn flatten(value: &ValueNet, batch: &SegmentBatch, t: &SegmentTensors, r: &Tensor, step_logp_old: &Tensor, cfg: &PpoConfig) -> Flat {
    let (od, dev) = (batch.obs_dim, t.obs.device());
    let final_obs: Vec<f32> = batch.segments.iter().flat_map(|s| s.final_obs.iter().copied()).collect();
    let final_obs = Tensor::from_slice(&final_obs).view([batch.segments.len() as i64, od as i64]).to_device(dev);
    let (values, final_values) = tch::no_grad(|| (value.forward(&t.obs), value.forward(&final_obs)));
    let terminated: Vec<bool> = batch.segments.iter().map(|s| s.terminated).collect();
    let (adv, ret) = advantages(r, &values, &final_values, &t.mask, &terminated, cfg.gamma, cfg.gae_lambda);

    // flatten the real steps
    let sel = t.mask.view([-1]).gt(0.5).nonzero().squeeze_dim(1);
    Flat {
        obs: t.obs.view([-1, od as i64]).index_select(0, &sel),
        act: t.act.view([-1, batch.act_dim as i64]).index_select(0, &sel),
        logp_old: step_logp_old.view([-1]).index_select(0, &sel),
        adv: adv.view([-1]).index_select(0, &sel),
        ret: ret.view([-1]).index_select(0, &sel),
        v_old: values.view([-1]).index_select(0, &sel),
    }
}

/// `cfg.epochs` passes of shuffled minibatches (fewer when `target_kl` is reached), on the ranks of `world`
/// as [`update_shared`] says.
fn epochs(nets: Nets, flat: &Flat, cfg: &PpoConfig, rng: &mut ChaCha8Rng, world: &dyn Collective) -> Result<PpoStats, String> {
    let Nets { policy, adam, value, vadam, .. } = nets;
    let dev = flat.obs.device();
    let n = flat.adv.size()[0] as usize;
    let mut idx: Vec<i64> = (0..n as i64).collect();
    let (mut pl_sum, mut vl_sum, mut cnt, mut gn_sum, mut gn_n) = (0.0, 0.0, 0usize, 0.0, 0usize);
    let (mut kl, mut clip_frac) = (0.0, 0.0);
    let mut epochs_run = 0;
    'epochs: for epoch in 0..cfg.epochs {
        idx.shuffle(rng);
        epochs_run += 1;
        let (mut ep_pl, mut ep_vl, mut ep_n) = (0.0, 0.0, 0usize);
        for chunk in minibatches_sized(world, &idx, cfg.batch)? {
            let bi = Tensor::from_slice(&chunk).to_device(dev);
            let obs = flat.obs.index_select(0, &bi);
            let a = standardised(world, flat.adv.index_select(0, &bi), cfg.normalize_advantages)?;
            let losses = (!chunk.is_empty()).then(|| {
                let lp_new = policy.log_prob(&obs, &flat.act.index_select(0, &bi));
                let mut pl = ppo_clip_loss(&lp_new, &flat.logp_old.index_select(0, &bi), &a, cfg.clip);
                if cfg.ent_coef > 0.0 {
                    pl = pl - policy.entropy() * cfg.ent_coef;
                }
                let v_old = flat.v_old.index_select(0, &bi);
                let vl = value_loss(&value.forward(&obs), &flat.ret.index_select(0, &bi), (cfg.vf_clip > 0.0).then_some((&v_old, cfg.vf_clip)));
                (pl, vl)
            });
            let (pl, vl) = losses.unzip();
            let (plv, gn) = adam.minimize_shared(world, pl.as_ref(), chunk.len(), cfg.max_grad_norm, "PPO policy", epoch)?;
            let (vlv, _) = vadam.minimize_shared(world, vl.as_ref(), chunk.len(), cfg.max_grad_norm, "PPO value", epoch)?;
            ep_vl += vlv;
            gn_sum += gn;
            gn_n += 1;
            ep_pl += plv;
            ep_n += 1;
        }
        (pl_sum, vl_sum, cnt) = (ep_pl, ep_vl, ep_n);
        let lp_new = tch::no_grad(|| policy.log_prob(&flat.obs, &flat.act));
        (kl, clip_frac) = diagnostics(world, &lp_new, &flat.logp_old, cfg.clip)?;
        if cfg.target_kl > 0.0 && kl > cfg.target_kl {
            break 'epochs;
        }
    }
    Ok(PpoStats {
        policy_loss: pl_sum / cnt.max(1) as f64,
        value_loss: vl_sum / cnt.max(1) as f64,
        approx_kl: kl,
        clip_fraction: clip_frac,
        grad_norm: gn_sum / gn_n.max(1) as f64,
        epochs: epochs_run,
        ..PpoStats::default()
    })
}

/// A minibatch's advantages standardised (when `on`) by the mean and standard deviation of the minibatch over
/// every rank; unchanged when the minibatch holds a single step.
fn standardised(world: &dyn Collective, a: Tensor, on: bool) -> Result<Tensor, String> {
    if !on {
        return Ok(a);
    }
    if world.size() == 1 {
        return Ok(if a.size()[0] > 1 { (&a - a.mean(Kind::Float)) / (a.std(true) + 1e-8) } else { a });
    }
    let (n, mean, std) = global_count_mean_std(world, &a)?;
    Ok(if n > 1.0 { (a - mean) / (std + 1e-8) } else { a })
}

/// [`ppo_diagnostics`] over the steps of every rank.
fn diagnostics(world: &dyn Collective, lp_new: &Tensor, lp_old: &Tensor, clip: f64) -> Result<(f64, f64), String> {
    if world.size() == 1 {
        return Ok(ppo_diagnostics(lp_new, lp_old, clip));
    }
    let (kl, frac) = ppo_diagnostics(lp_new, lp_old, clip);
    let n = lp_new.numel() as f64;
    let (kl, frac) = if n > 0.0 { (kl * n, frac * n) } else { (0.0, 0.0) };
    let [kl, frac, n] = global_sum(world, &[kl, frac, n])?[..] else { unreachable!("three sums") };
    Ok((kl / n.max(1.0), frac / n.max(1.0)))
}

/// The PPO learner: the value net, its Adam and the normalisation statistics (all checkpointed).
struct Ppo {
    cfg: PpoConfig,
    value: ValueNet,
    vadam: Adam,
    scaler: RewardScaler,
}

impl Algorithm for Ppo {
    fn collect(&self) -> Collect {
        Collect::Segments { groups: self.cfg.n_envs, spec: PairSpec::new(1, 0, 0) }
    }

    fn lr(&self) -> f64 {
        self.cfg.lr
    }

    fn data_parallel(&self) -> bool {
        true
    }

    fn groups_key(&self) -> &'static str {
        "n_envs"
    }

    fn updates_obs_norm(&self) -> bool {
        true
    }

    fn min_steps(&self) -> usize {
        self.cfg.min_steps
    }

    fn update(&mut self, ctx: &mut Ctx, batch: Option<&Batch>) -> Result<Update, AlgoError> {
        let b = batch.expect("PPO collects whole episodes");
        let t = &b.tensors;
        let step = ctx.scorer.step_scores(t).to_kind(Kind::Float) * &t.mask;
        let seg = step.sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
        let segment_score = f64::try_from(seg.mean(Kind::Float)).unwrap_or(f64::NAN);
        let lr = if self.cfg.anneal_lr { self.cfg.lr * (1.0 - ctx.progress).max(0.0) } else { self.cfg.lr };
        ctx.adam.set_lr(lr);
        self.vadam.set_lr(lr);
        let nets = Nets { policy: ctx.policy, adam: ctx.adam, value: &mut self.value, vadam: &mut self.vadam, scaler: &mut self.scaler };
        let st = update_shared(nets, &b.segments, t, &step, Some(ctx.reference), &self.cfg, ctx.rng, ctx.world).map_err(AlgoError::Diverged)?;
        let mut stats = vec![
            ("losses/policy_loss", st.policy_loss),
            ("losses/value_loss", st.value_loss),
            ("losses/approx_kl", st.approx_kl),
            ("losses/clip_fraction", st.clip_fraction),
            ("losses/entropy", st.entropy),
            ("losses/explained_variance", st.explained_variance),
            ("losses/grad_norm", st.grad_norm),
            ("losses/reward_scale", st.reward_scale),
            ("losses/epochs", st.epochs as f64),
        ];
        if self.cfg.anneal_lr {
            stats.push(("charts/learning_rate", lr));
        }
        Ok(Update { stats, segment_score, ..Update::default() })
    }

    fn save(&self, ck: &mut Checkpoint) -> Result<(), AlgoError> {
        ck.add_tensors("value", &self.value.named_parameters())?;
        ck.add_adam("value_adam", &self.vadam)?;
        let extra = ck.meta.extra.as_object_mut().expect("extra is an object");
        extra.insert("ppo_obs_rms".into(), serde_json::to_value(&self.value.obs_rms).expect("serialises"));
        extra.insert("ppo_reward_scaler".into(), serde_json::to_value(&self.scaler).expect("serialises"));
        Ok(())
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<(), AlgoError> {
        let bad = |k: &str, e: serde_json::Error| AlgoError::Failed(format!("checkpoint extra {k} does not parse: {e}"));
        ck.restore_tensors("value", &self.value.named_parameters())?;
        ck.restore_adam("value_adam", &mut self.vadam)?;
        if let Some(v) = ck.meta.extra.get("ppo_obs_rms") {
            self.value.obs_rms = serde_json::from_value(v.clone()).map_err(|e| bad("ppo_obs_rms", e))?;
        }
        if let Some(v) = ck.meta.extra.get("ppo_reward_scaler") {
            self.scaler = serde_json::from_value(v.clone()).map_err(|e| bad("ppo_reward_scaler", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_mean_std_matches_the_batch_statistics() {
        let mut r = RunningMeanStd::new(2);
        let a = [1.0, 10.0, 3.0, 14.0];
        let b = [5.0, 12.0, 7.0, 20.0, 9.0, 16.0];
        r.update(&a);
        r.update(&b);
        // all five rows: x0 = 1,3,5,7,9 (mean 5, var 8); x1 = 10,14,12,20,16 (mean 14.4, var 11.84)
        assert!((r.mean[0] - 5.0).abs() < 1e-3 && (r.var[0] - 8.0).abs() < 1e-2, "{r:?}");
        assert!((r.mean[1] - 14.4).abs() < 1e-3 && (r.var[1] - 11.84).abs() < 1e-2, "{r:?}");
    }

    #[test]
    fn advantages_bootstrap_the_truncation_with_the_final_value_and_ignore_padding() {
        // two segments: a 3-step truncated one and a 2-step terminated one (padded to 3)
        let rewards = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 2.0, 2.0, 99.0]).view([2, 3]);
        let values = Tensor::from_slice(&[0.5f32, 0.5, 0.5, 1.0, 1.0, 7.0]).view([2, 3]);
        let mask = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 1.0, 1.0, 0.0]).view([2, 3]);
        let final_values = Tensor::from_slice(&[10.0f32, 50.0]);
        let (g, l) = (0.5, 1.0);
        let (adv, ret) = advantages(&rewards, &values, &final_values, &mask, &[false, true], g, l);
        let adv = Vec::<f32>::try_from(adv.view([-1])).unwrap();
        let ret = Vec::<f32>::try_from(ret.view([-1])).unwrap();
        // segment 0, λ = 1: deltas d2 = 1 + 0.5·10 − 0.5 = 5.5, d1 = 1 + 0.25 − 0.5 = 0.75, d0 = 0.75
        // A2 = 5.5, A1 = 0.75 + 0.5·5.5 = 3.5, A0 = 0.75 + 0.5·3.5 = 2.5
        for (x, e) in adv[..3].iter().zip([2.5, 3.5, 5.5]) {
            assert!((*x as f64 - e).abs() < 1e-5, "{adv:?}");
        }
        // segment 1 terminated: d1 = 2 − 1 = 1 (the final value 50 is ignored), d0 = 2 + 0.5 − 1 = 1.5,
        // A1 = 1, A0 = 1.5 + 0.5 = 2; padding 0
        for (x, e) in adv[3..].iter().zip([2.0, 1.0, 0.0]) {
            assert!((*x as f64 - e).abs() < 1e-5, "{adv:?}");
        }
        assert!((ret[0] - 3.0).abs() < 1e-5 && (ret[4] - 2.0).abs() < 1e-5 && ret[5] == 0.0, "{ret:?}");
    }

    #[test]
    fn reward_scaler_divides_by_the_return_std() {
        let mut s = RewardScaler::default();
        // γ = 1: returns 1, 2, 3, 4 → variance 1.25
        let f = s.update(&[vec![1.0, 1.0, 1.0, 1.0]], 1.0);
        assert!((f - 1.0 / 1.25f64.sqrt()).abs() < 1e-3, "{f}");
    }
}
