//! Collection of labelled pairs (module docs of [`crate::preferences`]).

use rand::seq::SliceRandom;
use rand::RngExt;
use rebel_envs::vec_env::VecEnv;

use super::{DatasetMeta, PolicySource, PreferenceDataset, PreferenceError, PreferencePair, TeacherConfig, DATASET_VERSION};
use crate::policy::GaussianPolicy;
use crate::rollout::{collect_groups, PairSpec, Segment};
use crate::seeding::{env_seed, stream, Domain};


/// What [`collect_preferences`] collects.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectConfig {
    /// Labelled pairs to store (skipped queries do not count).
    pub n_labels: usize,
    /// Piece length in steps; `None` = whole episodes.
    pub segment_len: Option<usize>,
    /// Both pieces of a pair start from the same simulator state.
    pub same_start: bool,
    /// Seed of everything random in the collection.
    pub seed: u64,
}

/// Collects `cfg.n_labels` labelled pairs of pieces sampled from `policy` in `venv` (module docs). Random
/// streams derive from `cfg.seed` ([`crate::seeding`], domain `Preferences`): stream 1 the teacher, 2 the pairing, 1000 + r round r's
/// episode seeds and actions. The same seed, env and policy give the same dataset.
pub fn collect_preferences(
    venv: &mut VecEnv,
    policy: &GaussianPolicy,
    source: PolicySource,
    cfg: &CollectConfig,
    teacher: &TeacherConfig,
) -> Result<PreferenceDataset, PreferenceError> {
    check_args(venv, policy, cfg, teacher)?;
    let k = if cfg.same_start { 2 } else { 1 };
    let n_env = venv.num_envs();
    let env_id = venv.envs().first().map(|e| e.id().to_string()).unwrap_or_default();
    let g_n = n_env / k;
    let mut teacher_rng = stream(cfg.seed, Domain::Preferences, 1);
    let mut pair_rng = stream(cfg.seed, Domain::Preferences, 2);
    let mut pairs: Vec<PreferencePair> = Vec::with_capacity(cfg.n_labels);
    let mut queries = 0u64;
    let mut pool: Vec<(u64, Segment)> = Vec::new(); // not-same-start: (episode id, piece) awaiting a partner
    let mut round = 0u64;
    let mut simulated = 0u64;
    while pairs.len() < cfg.n_labels {
        if round > 0 && round.is_multiple_of(200) && pairs.is_empty() {
            return Err(PreferenceError::Collect(format!(
                "{queries} queries in {round} rounds gave no label: the skip threshold {:?} is too strict for this \
                 policy",
                teacher.skip_threshold
            )));
        }
        let mut rng = stream(cfg.seed, Domain::Preferences, 1000 + round);
        let seeds: Vec<u64> = (0..g_n).map(|_| env_seed(cfg.seed, Domain::Preferences, rng.random::<u64>() >> 8)).collect();
        let batch = collect_groups(venv, policy, &seeds, PairSpec { k, branch_len: cfg.segment_len, tail_len: 0 }, &mut rng)?;
        simulated += batch.env_steps;
        let candidates = candidates(batch.segments, cfg, &mut pool, round * g_n as u64, &mut pair_rng);
        for (mut a, mut b) in candidates {
            if pairs.len() == cfg.n_labels {
                break;
            }
            queries += 1;
            if let Some(label) = teacher.label(&a.rewards, &b.rewards, &mut teacher_rng) {
                let idx = pairs.len();
                for s in [&mut a, &mut b] {
                    s.group = idx;
                    s.response_len = s.len();
                }
                pairs.push(PreferencePair { a, b, label });
            }
        }
        round += 1;
    }
    Ok(PreferenceDataset {
        meta: DatasetMeta {
            format_version: DATASET_VERSION,
            env_id,
            obs_dim: venv.obs_dim(),
            act_dim: venv.act_dim(),
            teacher: teacher.clone(),
            policy: source,
            seed: cfg.seed,
            segment_len: cfg.segment_len,
            same_start: cfg.same_start,
            queries,
            simulated_env_steps: simulated,
        },
        pairs,
    })
}


/// Checks the collection's arguments against each other and against the policy and environment.
fn check_args(venv: &VecEnv, policy: &GaussianPolicy, cfg: &CollectConfig, teacher: &TeacherConfig) -> Result<(), PreferenceError> {
    teacher.validate()?;
    if cfg.n_labels == 0 {
        return Err(PreferenceError::Collect("the number of labels must be ≥ 1".into()));
    }
    if cfg.segment_len == Some(0) {
        return Err(PreferenceError::Collect("segment length must be ≥ 1".into()));
    }
    let n_env = venv.num_envs();
    let k = if cfg.same_start { 2 } else { 1 };
    if n_env < 2 || !n_env.is_multiple_of(k) {
        return Err(PreferenceError::Collect(format!(
            "the vectorised env has {n_env} envs; use an even number ≥ 2"
        )));
    }
    if venv.obs_dim() != policy.obs_dim() || venv.act_dim() != policy.act_dim() {
        return Err(PreferenceError::Collect(format!(
            "the policy has obs_dim {}, act_dim {} but the environment {}, {}",
            policy.obs_dim(),
            policy.act_dim(),
            venv.obs_dim(),
            venv.act_dim()
        )));
    }
    Ok(())
}

/// The pairs to ask the teacher about, from one round's pieces: the two members of each group with
/// `same_start`; otherwise pieces of different episodes (episode id = `episode0` + group), drawn from `pool`,
/// where an unmatched remainder waits for the next round. Only full-length pieces are kept in segment mode.
fn candidates(
    segs: Vec<Segment>,
    cfg: &CollectConfig,
    pool: &mut Vec<(u64, Segment)>,
    episode0: u64,
    pair_rng: &mut crate::seeding::ChaCha8Rng,
) -> Vec<(Segment, Segment)> {
    let keep = |s: &Segment| cfg.segment_len.is_none_or(|l| s.len() == l);
    let mut candidates: Vec<(Segment, Segment)> = Vec::new();
    if cfg.same_start {
        let mut i = 0;
        while i + 1 < segs.len() {
            if segs[i].group == segs[i + 1].group {
                if keep(&segs[i]) && keep(&segs[i + 1]) {
                    candidates.push((segs[i].clone(), segs[i + 1].clone()));
                }
                i += 2;
            } else {
                i += 1;
            }
        }
        return candidates;
    }
    for s in segs.into_iter().filter(|s| keep(s)) {
        pool.push((episode0 + s.group as u64, s));
    }
    pool.shuffle(pair_rng);
    let mut rest = Vec::new();
    while let Some((ea, a)) = pool.pop() {
        match pool.iter().rposition(|(e, _)| *e != ea) {
            Some(j) => {
                let (_, b) = pool.remove(j);
                candidates.push((a, b));
            }
            None => rest.push((ea, a)),
        }
    }
    *pool = rest;
    candidates
}
