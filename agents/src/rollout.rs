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

use rand::rngs::StdRng;
use rebel_envs::vec_env::VecEnv;
use rebel_envs::{EnvError, Step};
use tch::{Device, Kind, Tensor};

use crate::policy::GaussianPolicy;

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
        let mut obs = vec![0f32; s * l * od];
        let mut act = vec![0f32; s * l * ad];
        let mut mask = vec![0f32; s * l];
        let mut rew = vec![0f32; s * l];
        for (i, seg) in self.segments.iter().enumerate() {
            let n = seg.len();
            obs[i * l * od..i * l * od + n * od].copy_from_slice(&seg.obs);
            act[i * l * ad..i * l * ad + n * ad].copy_from_slice(&seg.act);
            for t in 0..n {
                mask[i * l + t] = 1.0;
                rew[i * l + t] = seg.rewards[t] as f32;
            }
        }
        let (s, l, od, ad) = (s as i64, l as i64, od as i64, ad as i64);
        SegmentTensors {
            obs: Tensor::from_slice(&obs).view([s, l, od]).to_device(device),
            act: Tensor::from_slice(&act).view([s, l, ad]).to_device(device),
            mask: Tensor::from_slice(&mask).view([s, l]).to_device(device),
            rewards: Tensor::from_slice(&rew).view([s, l]).to_device(device),
        }
    }
}

/// Log-probability of each padded segment under `policy`: `obs [S, L, o], act [S, L, a], mask [S, L] → [S]`.
pub fn segment_log_prob(policy: &GaussianPolicy, t: &SegmentTensors) -> Tensor {
    (policy.log_prob(&t.obs, &t.act) * &t.mask).sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
}

/// Samples actions for the stacked observations `[N*obs_dim]` of all envs: `(unclipped actions
/// [N*act_dim])`. Stochastic with `rng`, or the mean when `rng` is `None`.
pub fn policy_actions(policy: &GaussianPolicy, obs: &[f32], n: usize, rng: Option<&mut StdRng>) -> Vec<f32> {
    let o = Tensor::from_slice(obs).view([n as i64, policy.obs_dim() as i64]).to_device(policy.device());
    let a = tch::no_grad(|| match rng {
        Some(r) => policy.sample(&o, r),
        None => policy.mean(&o),
    });
    Vec::<f32>::try_from(a.to_kind(Kind::Float).to_device(Device::Cpu).view([-1])).expect("float actions")
}

/// Collects `seeds.len()` groups of `k` same-start segments with `policy` (see the module docs).
/// `venv` must have exactly `seeds.len() * k` environments; group g uses envs `g*k .. g*k+k` and
/// starts its episode with `reset(Some(seeds[g]))`.
pub fn collect_groups(
    venv: &mut VecEnv,
    policy: &GaussianPolicy,
    seeds: &[u64],
    k: usize,
    branch_len: Option<usize>,
    rng: &mut StdRng,
) -> Result<SegmentBatch, EnvError> {
    let g_n = seeds.len();
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
    let (od, ad) = (venv.obs_dim(), venv.act_dim());
    // Reset the trunks, then copy their state into the other members.
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
    sync_members(venv, k)?;

    let mut batch = SegmentBatch { obs_dim: od, act_dim: ad, k, segments: Vec::new(), env_steps: 0, episode_returns: Vec::new() };
    let mut episode_return = vec![0f64; g_n];
    let mut group_alive = vec![true; g_n];
    let mut windows = 0usize;
    while group_alive.iter().any(|a| *a) {
        // one window: every member of a live group runs until done or L steps
        let mut cur: Vec<Segment> = (0..n).map(|i| Segment { group: i / k, ..Segment::default() }).collect();
        let mut alive: Vec<bool> = (0..n).map(|i| group_alive[i / k]).collect();
        let mut t = 0usize;
        while alive.iter().any(|a| *a) && branch_len.is_none_or(|l| t < l) {
            let actions = policy_actions(policy, &obs, n, Some(rng));
            let alive_now = alive.clone();
            let results: Vec<Option<Result<Step, EnvError>>> = venv.par_map(|i, env| {
                alive_now[i].then(|| env.step(&actions[i * ad..(i + 1) * ad]))
            });
            for (i, r) in results.into_iter().enumerate() {
                let Some(r) = r else { continue };
                let s = r.map_err(|e| EnvError::InVecEnv { index: i, source: Box::new(e) })?;
                let seg = &mut cur[i];
                seg.obs.extend_from_slice(&obs[i * od..(i + 1) * od]);
                seg.act.extend_from_slice(&actions[i * ad..(i + 1) * ad]);
                seg.rewards.push(s.reward);
                batch.env_steps += 1;
                if i % k == 0 {
                    episode_return[i / k] += s.reward;
                }
                obs[i * od..(i + 1) * od].copy_from_slice(&s.obs);
                if s.done() {
                    seg.terminated = s.terminated;
                    seg.truncated = s.truncated;
                    alive[i] = false;
                }
            }
            t += 1;
        }
        windows += 1;
        for g in 0..g_n {
            if !group_alive[g] {
                continue;
            }
            let trunk_done = cur[g * k].terminated || cur[g * k].truncated;
            if branch_len.is_none() || trunk_done {
                group_alive[g] = false;
                batch.episode_returns.push(episode_return[g]);
            }
        }
        batch.segments.extend(cur.into_iter().filter(|s| group_alive_or_recorded(s)));
        if branch_len.is_some() && group_alive.iter().any(|a| *a) {
            // continue every live group from its trunk's state
            sync_members(venv, k)?;
            for i in 0..n {
                if i % k != 0 {
                    let (src, dst) = (i - i % k, i);
                    let o: Vec<f32> = obs[src * od..(src + 1) * od].to_vec();
                    obs[dst * od..(dst + 1) * od].copy_from_slice(&o);
                }
            }
        }
        if windows > 1_000_000 {
            return Err(EnvError::Io("rollout: more than a million windows; is the episode endless?".into()));
        }
    }
    // Groups whose members all had zero steps cannot occur: every live group steps at least once.
    Ok(batch)
}

fn group_alive_or_recorded(s: &Segment) -> bool {
    !s.is_empty()
}

/// Copies member 0's state of every group into its other members.
fn sync_members(venv: &mut VecEnv, k: usize) -> Result<(), EnvError> {
    if k == 1 {
        return Ok(());
    }
    let snaps: Vec<_> = venv.envs().iter().step_by(k).map(|e| e.snapshot()).collect();
    let res: Vec<Result<(), EnvError>> =
        venv.par_map(|i, env| if i % k == 0 { Ok(()) } else { env.restore(&snaps[i / k]) });
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
    mut rng: Option<&mut StdRng>,
) -> Result<Vec<f64>, EnvError> {
    let mut out = Vec::with_capacity(seeds.len());
    let (od, ad, n_env) = (venv.obs_dim(), venv.act_dim(), venv.num_envs());
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
            let actions = policy_actions(policy, &obs, n_env, rng.as_deref_mut());
            let alive_now = alive.clone();
            let results: Vec<Option<Result<Step, EnvError>>> =
                venv.par_map(|i, env| alive_now[i].then(|| env.step(&actions[i * ad..(i + 1) * ad])));
            for (i, r) in results.into_iter().enumerate() {
                let Some(r) = r else { continue };
                let s = r.map_err(|e| EnvError::InVecEnv { index: i, source: Box::new(e) })?;
                ret[i] += s.reward;
                obs[i * od..(i + 1) * od].copy_from_slice(&s.obs);
                if s.done() {
                    alive[i] = false;
                }
            }
        }
        out.extend(ret);
    }
    Ok(out)
}
