//! Rollouts: the only place where environment `Vec<f32>`s become tensors.
//!
//! [`collect_groups`] samples, for each of G start states, `k` trajectory pieces ("segments") from
//! the current policy that all start from the SAME simulator state (rebel.md §2):
//!
//! * **episode mode** (`branch_len = None`): the k members of a group reset with the same seed and
//!   run whole episodes; one segment per member per episode.
//! * **branch mode** (`branch_len = Some(L)`): member 0 runs an episode (the trunk); every L steps its
//!   state is snapshotted and restored into the other members, and all k continue for L steps from
//!   it. One episode of the trunk yields ⌈T/L⌉ groups of k segments, each sharing its start state.
//!   Member 0's continuation is the trunk's next window (it is a sample of π_t like the others).
//!
//! Episodes never auto-reset inside a collection: a member that terminates or is truncated stops,
//! and its segment is shorter (padded and masked in the tensors).

use crate::seeding::ChaCha8Rng;
use rebel_envs::vec_env::VecEnv;
use rebel_envs::{EnvError, Step};
use tch::{Device, Kind, Tensor};

use crate::policy::{Actor, GaussianPolicy};

/// One trajectory piece of one environment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Segment {
    /// Observations `[len, obs_dim]`, row-major; row t is the observation the action of step t saw.
    pub obs: Vec<f32>,
    /// Unclipped actions `[len, act_dim]`.
    pub act: Vec<f32>,
    /// True environment rewards `[len]`.
    pub rewards: Vec<f64>,
    /// The last step ended the episode by termination.
    pub terminated: bool,
    /// The last step ended the episode by truncation (time limit).
    pub truncated: bool,
    /// Index of the start state (group) this segment belongs to, within its batch.
    pub group: usize,
    /// Leading steps whose actions are the policy's response (they enter the log-prob); the
    /// remaining steps are a common-random-numbers continuation that only adds reward.
    pub response_len: usize,
    /// `[obs_dim]`: the observation after the last step when that step ended the episode
    /// (terminated or truncated; the true final observation, never a reset one), for value
    /// bootstrapping at truncations. Empty when the segment ended without ending its episode.
    pub final_obs: Vec<f32>,
}

impl Segment {
    /// Number of steps.
    pub fn len(&self) -> usize {
        self.rewards.len()
    }
    /// Whether the segment has no step.
    pub fn is_empty(&self) -> bool {
        self.rewards.is_empty()
    }
    /// Sum of the true rewards.
    pub fn true_return(&self) -> f64 {
        self.rewards.iter().sum()
    }
}

/// Segments grouped by start state: group g is `segments[g*k .. g*k + k]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentBatch {
    /// Observation size.
    pub obs_dim: usize,
    /// Action size.
    pub act_dim: usize,
    /// Segments per group.
    pub k: usize,
    /// All segments, groups consecutive.
    pub segments: Vec<Segment>,
    /// Environment steps spent collecting (all members).
    pub env_steps: u64,
    /// Returns of the trunk episodes that ended during the collection (true reward).
    pub episode_returns: Vec<f64>,
}

impl SegmentBatch {
    /// This batch followed by `more` (collected after it, with the same spec): segments, env steps and
    /// ended episodes in order.
    pub fn append(mut self, more: SegmentBatch) -> SegmentBatch {
        debug_assert_eq!((self.obs_dim, self.act_dim, self.k), (more.obs_dim, more.act_dim, more.k));
        self.segments.extend(more.segments);
        self.env_steps += more.env_steps;
        self.episode_returns.extend(more.episode_returns);
        self
    }
}

/// Padded tensors of a [`SegmentBatch`].
#[derive(Debug)]
pub struct SegmentTensors {
    /// `[S, L, obs_dim]`, zero-padded.
    pub obs: Tensor,
    /// `[S, L, act_dim]`, zero-padded.
    pub act: Tensor,
    /// `[S, L]`: 1 for real steps, 0 for padding.
    pub mask: Tensor,
    /// True per-step rewards `[S, L]` (0 on padding).
    pub rewards: Tensor,
    /// `[S, L]`: 1 for the response steps whose actions enter the log-prob (a prefix of `mask`).
    pub logp_mask: Tensor,
}

impl SegmentTensors {
    /// The segments cut to the steps whose actions enter the log-probability (`logp_mask`),
    /// dropping a common-random-numbers tail, which only adds reward: all the learner's
    /// log-probabilities need (REBEL's and REINFORCE's 250 + 250-step segments: half the work).
    pub fn response(&self) -> SegmentTensors {
        let l = self.logp_mask.size()[1];
        let used = self.logp_mask.sum_dim_intlist([0i64].as_slice(), false, Kind::Float).gt(0.0).nonzero();
        let n = if used.numel() == 0 { 0 } else { used.max().int64_value(&[]) + 1 };
        let cut = |x: &Tensor| if n >= l || x.dim() < 2 || x.size()[1] != l { x.shallow_clone() } else { x.narrow(1, 0, n) };
        SegmentTensors {
            obs: cut(&self.obs),
            act: cut(&self.act),
            mask: cut(&self.mask),
            rewards: cut(&self.rewards),
            logp_mask: cut(&self.logp_mask),
        }
    }

    /// The segments at `idx` (a 1-D int64 tensor on the same device).
    pub fn select(&self, idx: &Tensor) -> SegmentTensors {
        SegmentTensors {
            obs: self.obs.index_select(0, idx),
            act: self.act.index_select(0, idx),
            mask: self.mask.index_select(0, idx),
            rewards: self.rewards.index_select(0, idx),
            logp_mask: self.logp_mask.index_select(0, idx),
        }
    }
}

impl SegmentBatch {
    /// Number of groups.
    pub fn groups(&self) -> usize {
        self.segments.len() / self.k.max(1)
    }

    /// Length of the longest segment.
    pub fn max_len(&self) -> usize {
        self.segments.iter().map(Segment::len).max().unwrap_or(0)
    }

    /// True returns of all segments, `[S]`.
    pub fn true_returns(&self) -> Vec<f64> {
        self.segments.iter().map(Segment::true_return).collect()
    }

    /// Padded tensors on `device` (float32).
    pub fn to_tensors(&self, device: Device) -> SegmentTensors {
        let (s, l) = (self.segments.len(), self.max_len().max(1));
        let (od, ad) = (self.obs_dim, self.act_dim);
        let (si, li) = (s as i64, l as i64);
        // each tensor is written in place, so that the learner's peak holds the batch once, not a staging copy too
        let rows = |dim: usize, fill: &dyn Fn(&Segment, &mut [f32])| {
            filled(&[si, li, dim as i64], |x| {
                for (i, seg) in self.segments.iter().enumerate() {
                    fill(seg, &mut x[i * l * dim..(i + 1) * l * dim]);
                }
            })
        };
        let obs = rows(od, &|seg, x| x[..seg.obs.len()].copy_from_slice(&seg.obs));
        let act = rows(ad, &|seg, x| x[..seg.act.len()].copy_from_slice(&seg.act));
        let mask = rows(1, &|seg, x| x[..seg.len()].fill(1.0));
        let rewards = rows(1, &|seg, x| x.iter_mut().zip(&seg.rewards).for_each(|(x, r)| *x = *r as f32));
        let logp_mask = rows(1, &|seg, x| x[..seg.response_len.min(seg.len())].fill(1.0));
        SegmentTensors {
            obs: obs.to_device(device),
            act: act.to_device(device),
            mask: mask.view([si, li]).to_device(device),
            rewards: rewards.view([si, li]).to_device(device),
            logp_mask: logp_mask.view([si, li]).to_device(device),
        }
    }
}

/// A zeroed, contiguous f32 CPU tensor of `shape`, written in place by `fill` (no staging buffer).
fn filled(shape: &[i64], fill: impl FnOnce(&mut [f32])) -> Tensor {
    let t = Tensor::zeros(shape, (Kind::Float, Device::Cpu));
    let n = t.numel();
    if n > 0 {
        // SAFETY: `t` was just allocated, contiguous, on the CPU, with `n` f32 elements, and nothing else refers to it
        let data = unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, n) };
        fill(data);
    }
    t
}

/// Log-probability of each padded segment's response under `policy`:
/// `obs [S, L, o], act [S, L, a], logp_mask [S, L] → [S]`.
pub fn segment_log_prob(policy: &GaussianPolicy, t: &SegmentTensors) -> Tensor {
    (policy.log_prob(&t.obs, &t.act) * &t.logp_mask).sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
}

/// Per-step `ln π(a|s)` times `logp_mask`, `[S, L]`, without a gradient, `chunk` segments at a time: the
/// learner's peak memory is one chunk's activations instead of the whole batch's, and every row is the
/// one a single pass gives (libtorch computes rows independently; `chunked_step_log_prob_equals_one_pass`).
pub fn step_log_prob_nograd(policy: &GaussianPolicy, t: &SegmentTensors, chunk: i64) -> Tensor {
    tch::no_grad(|| {
        let s = t.obs.size()[0];
        let chunk = chunk.max(1);
        if s <= chunk {
            return policy.log_prob(&t.obs, &t.act) * &t.logp_mask;
        }
        let parts: Vec<Tensor> = (0..s)
            .step_by(chunk as usize)
            .map(|i| {
                let n = chunk.min(s - i);
                policy.log_prob(&t.obs.narrow(0, i, n), &t.act.narrow(0, i, n))
            })
            .collect();
        Tensor::cat(&parts, 0) * &t.logp_mask
    })
}

/// How [`collect_groups`] builds its segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairSpec {
    /// Segments per start state.
    pub k: usize,
    /// `None`: whole episodes from the same reset; `Some(L)`: branches of L response steps from
    /// snapshots of a trunk episode every L steps.
    pub branch_len: Option<usize>,
    /// With branches: after the L response steps, continue every member `tail_len` more steps with
    /// noise shared within the group (common random numbers), adding their reward to the segment.
    /// The tail is scored but not part of the log-prob. 0: no tail.
    pub tail_len: usize,
}

impl PairSpec {
    /// From a config's `k`, `branch_len` (0: whole episodes) and `tail_len`.
    pub fn new(k: usize, branch_len: usize, tail_len: usize) -> PairSpec {
        PairSpec { k, branch_len: (branch_len > 0).then_some(branch_len), tail_len }
    }
}

/// Steps the envs flagged in `alive` with `actions`, recording into `cur`; returns per-env
/// `(reward, done)` for the stepped envs.
#[allow(clippy::too_many_arguments)]
fn step_recording(
    venv: &mut VecEnv,
    actions: &[f32],
    alive: &mut [bool],
    obs: &mut [f32],
    cur: &mut [Segment],
    env_steps: &mut u64,
) -> Result<Vec<Option<f64>>, EnvError> {
    let (od, ad) = (venv.obs_dim(), venv.act_dim());
    let alive_now = alive.to_vec();
    let results: Vec<Option<Result<Step, EnvError>>> =
        venv.par_map(|i, env| alive_now[i].then(|| env.step(&actions[i * ad..(i + 1) * ad])));
    let mut rewards = vec![None; results.len()];
    for (i, r) in results.into_iter().enumerate() {
        let Some(r) = r else { continue };
        let s = r.map_err(|e| EnvError::InVecEnv { index: i, source: Box::new(e) })?;
        let seg = &mut cur[i];
        seg.obs.extend_from_slice(&obs[i * od..(i + 1) * od]);
        seg.act.extend_from_slice(&actions[i * ad..(i + 1) * ad]);
        seg.rewards.push(s.reward);
        *env_steps += 1;
        rewards[i] = Some(s.reward);
        obs[i * od..(i + 1) * od].copy_from_slice(&s.obs);
        if s.done() {
            seg.terminated = s.terminated;
            seg.truncated = s.truncated;
            seg.final_obs = s.obs.clone();
            alive[i] = false;
        }
    }
    Ok(rewards)
}

/// `g_n` groups of `spec.k` need exactly `g_n·k` envs; branches are at least one step long.
fn check_groups(venv: &VecEnv, g_n: usize, spec: PairSpec) -> Result<(), EnvError> {
    let PairSpec { k, branch_len, .. } = spec;
    let n = g_n * k;
    if k == 0 || n != venv.num_envs() {
        return Err(EnvError::BadOption {
            env: "rollout".into(),
            key: "num_envs".into(),
            msg: format!("{g_n} groups × {k} members need {} envs, the vectorised env has {}", g_n * k, venv.num_envs()),
        });
    }
    if branch_len == Some(0) {
        return Err(EnvError::BadOption { env: "rollout".into(), key: "branch_len".into(), msg: "must be ≥ 1".into() });
    }
    Ok(())
}

/// Collects `seeds.len()` groups of `spec.k` same-start segments with `policy` (see the module
/// docs). `venv` must have exactly `seeds.len() * k` environments; group g uses envs
/// `g*k .. g*k+k` and starts its episode with `reset(Some(seeds[g]))`.
pub fn collect_groups(
    venv: &mut VecEnv,
    policy: &GaussianPolicy,
    seeds: &[u64],
    spec: PairSpec,
    rng: &mut ChaCha8Rng,
) -> Result<SegmentBatch, EnvError> {
    let PairSpec { k, branch_len, tail_len } = spec;
    let g_n = seeds.len();
    let n = g_n * k;
    check_groups(venv, g_n, spec)?;
    let (od, ad) = (venv.obs_dim(), venv.act_dim());
    let actor = policy.actor();
    let mut obs = reset_groups(venv, seeds, k)?;
    let mut batch = SegmentBatch { obs_dim: od, act_dim: ad, k, segments: Vec::new(), env_steps: 0, episode_returns: Vec::new() };
    let mut episode_return = vec![0f64; g_n];
    let mut group_alive = vec![true; g_n];
    let mut windows = 0usize;
    while group_alive.iter().any(|a| *a) {
        // Response phase: every member of a live group runs until done or L steps.
        let mut cur: Vec<Segment> = (0..n).map(|i| Segment { group: i / k, ..Segment::default() }).collect();
        let mut alive: Vec<bool> = (0..n).map(|i| group_alive[i / k]).collect();
        let mut t = 0usize;
        while alive.iter().any(|a| *a) && branch_len.is_none_or(|l| t < l) {
            let actions = actor.act(&obs, n, Some(rng));
            let r = step_recording(venv, &actions, &mut alive, &mut obs, &mut cur, &mut batch.env_steps)?;
            for g in 0..g_n {
                if let Some(r) = r[g * k] {
                    episode_return[g] += r;
                }
            }
            t += 1;
        }
        for seg in cur.iter_mut() {
            seg.response_len = seg.len();
        }
        windows += 1;
        let mut trunk_done = vec![false; g_n];
        for g in 0..g_n {
            if group_alive[g] {
                trunk_done[g] = branch_len.is_none() || cur[g * k].terminated || cur[g * k].truncated;
            }
        }
        // The trunk goes on from member 0's state after the response.
        let snaps: Vec<_> = venv.envs().iter().step_by(k).map(|e| e.snapshot()).collect();
        let trunk_obs: Vec<Vec<f32>> = (0..g_n).map(|g| obs[g * k * od..(g * k + 1) * od].to_vec()).collect();
        if tail_len > 0 && branch_len.is_some() {
            let mut state = Recording { alive: &mut alive, obs: &mut obs, cur: &mut cur, env_steps: &mut batch.env_steps };
            run_tail(venv, &actor, k, tail_len, &mut state, rng)?;
        }
        for g in 0..g_n {
            if group_alive[g] && trunk_done[g] {
                group_alive[g] = false;
                batch.episode_returns.push(episode_return[g]);
            }
        }
        batch.segments.extend(cur.into_iter().filter(|s| !s.is_empty()));
        if branch_len.is_some() && group_alive.iter().any(|a| *a) {
            // every live group continues from its trunk's state
            restore_groups(venv, k, &snaps, tail_len > 0)?;
            for i in 0..n {
                if group_alive[i / k] {
                    obs[i * od..(i + 1) * od].copy_from_slice(&trunk_obs[i / k]);
                }
            }
        }
        if windows > 1_000_000 {
            return Err(EnvError::Io("rollout: more than a million windows; is the episode endless?".into()));
        }
    }
    Ok(batch)
}

/// The per-member recording state of a window.
struct Recording<'a> {
    alive: &'a mut Vec<bool>,
    obs: &'a mut Vec<f32>,
    cur: &'a mut Vec<Segment>,
    env_steps: &'a mut u64,
}

/// Tail phase: `tail_len` more steps of every live member, with noise shared within each group
/// (common random numbers).
fn run_tail(venv: &mut VecEnv, actor: &Actor, k: usize, tail_len: usize, st: &mut Recording, rng: &mut ChaCha8Rng) -> Result<(), EnvError> {
    let (n, ad) = (venv.num_envs(), venv.act_dim());
    let g_n = n / k;
    let std = actor.std();
    for _ in 0..tail_len {
        if !st.alive.iter().any(|a| *a) {
            break;
        }
        let mut actions = actor.act(st.obs, n, None);
        let eps: Vec<f32> = (0..g_n * ad).map(|_| rand_distr::Distribution::<f64>::sample(&rand_distr::StandardNormal, rng) as f32).collect();
        for i in 0..n {
            for d in 0..ad {
                actions[i * ad + d] += std[d] * eps[(i / k) * ad + d];
            }
        }
        step_recording(venv, &actions, st.alive, st.obs, st.cur, st.env_steps)?;
    }
    Ok(())
}

/// Resets each group's trunk with its seed and copies its state into the other members; returns
/// the observations `[n·obs_dim]`.
fn reset_groups(venv: &mut VecEnv, seeds: &[u64], k: usize) -> Result<Vec<f32>, EnvError> {
    let (n, od) = (venv.num_envs(), venv.obs_dim());
    let first: Vec<Result<Vec<f32>, EnvError>> = venv.par_map(|i, env| {
        if i % k == 0 {
            env.reset(Some(seeds[i / k])).map(|(o, _)| o)
        } else {
            Ok(Vec::new())
        }
    });
    let mut obs = vec![0f32; n * od];
    for (i, r) in first.into_iter().enumerate() {
        if i % k == 0 {
            let o = r.map_err(|e| EnvError::InVecEnv { index: i, source: Box::new(e) })?;
            for j in 0..k {
                obs[(i + j) * od..(i + j + 1) * od].copy_from_slice(&o);
            }
        }
    }
    let snaps: Vec<_> = venv.envs().iter().step_by(k).map(|e| e.snapshot()).collect();
    restore_groups(venv, k, &snaps, false)?;
    Ok(obs)
}

/// Restores `snaps[g]` into the members of group g (member 0 too when `all`).
fn restore_groups(venv: &mut VecEnv, k: usize, snaps: &[rebel_envs::Snapshot], all: bool) -> Result<(), EnvError> {
    let res: Vec<Result<(), EnvError>> =
        venv.par_map(|i, env| if i % k == 0 && !all { Ok(()) } else { env.restore(&snaps[i / k]) });
    for (i, r) in res.into_iter().enumerate() {
        r.map_err(|e| EnvError::InVecEnv { index: i, source: Box::new(e) })?;
    }
    Ok(())
}

/// Runs one whole episode per seed with `policy` (mean action when `rng` is `None`) and returns
/// the true returns, in seed order. Uses the first `min(seeds, num_envs)` envs in rounds.
pub fn episode_returns(
    venv: &mut VecEnv,
    policy: &GaussianPolicy,
    seeds: &[u64],
    rng: Option<&mut ChaCha8Rng>,
) -> Result<Vec<f64>, EnvError> {
    Ok(run_episodes(venv, policy, seeds, rng)?.0)
}

/// [`episode_returns`], with the number of env steps the episodes took (for the cost accounting).
pub fn run_episodes(
    venv: &mut VecEnv,
    policy: &GaussianPolicy,
    seeds: &[u64],
    mut rng: Option<&mut ChaCha8Rng>,
) -> Result<(Vec<f64>, u64), EnvError> {
    let mut env_steps = 0u64;
    let mut out = Vec::with_capacity(seeds.len());
    let (od, ad, n_env) = (venv.obs_dim(), venv.act_dim(), venv.num_envs());
    let actor = policy.actor();
    for chunk in seeds.chunks(n_env) {
        let m = chunk.len();
        let res: Vec<Option<Result<Vec<f32>, EnvError>>> =
            venv.par_map(|i, env| (i < m).then(|| env.reset(Some(chunk[i])).map(|(o, _)| o)));
        let mut obs = vec![0f32; n_env * od];
        for (i, r) in res.into_iter().enumerate().take(m) {
            let o = r.expect("reset of a used env").map_err(|e| EnvError::InVecEnv { index: i, source: Box::new(e) })?;
            obs[i * od..(i + 1) * od].copy_from_slice(&o);
        }
        let mut alive: Vec<bool> = (0..n_env).map(|i| i < m).collect();
        let mut ret = vec![0f64; m];
        while alive.iter().any(|a| *a) {
            let actions = actor.act(&obs, n_env, rng.as_deref_mut());
            let alive_now = alive.clone();
            let results: Vec<Option<Result<Step, EnvError>>> =
                venv.par_map(|i, env| alive_now[i].then(|| env.step(&actions[i * ad..(i + 1) * ad])));
            for (i, r) in results.into_iter().enumerate() {
                let Some(r) = r else { continue };
                let s = r.map_err(|e| EnvError::InVecEnv { index: i, source: Box::new(e) })?;
                env_steps += 1;
                ret[i] += s.reward;
                obs[i * od..(i + 1) * od].copy_from_slice(&s.obs);
                if s.done() {
                    alive[i] = false;
                }
            }
        }
        out.extend(ret);
    }
    Ok((out, env_steps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyConfig;
    use tch::Device;

    #[test]
    fn chunked_step_log_prob_equals_one_pass() {
        let policy = GaussianPolicy::new(PolicyConfig::new(8, 2), Device::Cpu, Kind::Float, 3);
        let (s, l) = (7i64, 120i64);
        tch::manual_seed(5);
        let full = SegmentTensors {
            obs: Tensor::randn([s, 2 * l, 8], (Kind::Float, Device::Cpu)),
            act: Tensor::randn([s, 2 * l, 2], (Kind::Float, Device::Cpu)),
            mask: Tensor::ones([s, 2 * l], (Kind::Float, Device::Cpu)),
            rewards: Tensor::zeros([s, 2 * l], (Kind::Float, Device::Cpu)),
            logp_mask: Tensor::cat(&[Tensor::ones([s, l], (Kind::Float, Device::Cpu)), Tensor::zeros([s, l], (Kind::Float, Device::Cpu))], 1),
        };
        // on the response view (non-contiguous), as REBEL calls it
        let t = full.response();
        assert_eq!(t.obs.size(), [s, l, 8]);
        let one = tch::no_grad(|| policy.log_prob(&t.obs, &t.act) * &t.logp_mask);
        for chunk in [1, 2, 3, 7, 100] {
            let c = step_log_prob_nograd(&policy, &t, chunk);
            assert_eq!(c.size(), one.size());
            assert!(c.equal(&one), "chunk {chunk}: not the same bits as one pass");
        }
        // and it differs when the policy does (the check can fail)
        let other = GaussianPolicy::new(PolicyConfig::new(8, 2), Device::Cpu, Kind::Float, 4);
        assert!(!step_log_prob_nograd(&other, &t, 2).equal(&one));
    }
}
