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
    teacher.validate()?;
    check_args(venv, policy, cfg)?;
    let mut teacher_rng = stream(cfg.seed, Domain::Preferences, 1);
    let mut pairs: Vec<PreferencePair> = Vec::with_capacity(cfg.n_labels);
    let mut queries = 0u64;
    let mut cands = Candidates::new(venv, policy, cfg);
    while pairs.len() < cfg.n_labels {
        if cands.round > 0 && cands.round.is_multiple_of(200) && pairs.is_empty() {
            return Err(PreferenceError::Collect(format!(
                "{queries} queries in {} rounds gave no label: the skip threshold {:?} is too strict for this \
                 policy",
                cands.round, teacher.skip_threshold
            )));
        }
        for (a, b) in cands.next_round()? {
            if pairs.len() == cfg.n_labels {
                break;
            }
            queries += 1;
            push_labelled(&mut pairs, a, b, teacher, &mut teacher_rng);
        }
    }
    let simulated = cands.simulated;
    Ok(PreferenceDataset { meta: dataset_meta(venv, source, cfg, teacher, queries, simulated), pairs })
}

/// The first `n` unlabelled candidate pairs of pieces from `policy`'s rollouts, as [`collect_preferences`] with
/// `cfg.seed` would show them to the teacher, and the env steps simulated for them. For active querying: a
/// pool to choose the pairs worth asking about from ([`crate::preferences::query`]).
pub fn collect_candidates(
    venv: &mut VecEnv,
    policy: &GaussianPolicy,
    cfg: &CollectConfig,
    n: usize,
) -> Result<(Vec<(Segment, Segment)>, u64), PreferenceError> {
    check_args(venv, policy, cfg)?;
    let mut cands = Candidates::new(venv, policy, cfg);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        if cands.round > 0 && cands.round.is_multiple_of(200) && out.is_empty() {
            return Err(PreferenceError::Collect(format!("{} rounds of rollouts gave no full-length piece", cands.round)));
        }
        out.extend(cands.next_round()?);
    }
    out.truncate(n);
    Ok((out, cands.simulated))
}

/// Asks `teacher` about `pairs` in order, stopping once `n_labels` have labels (skipped pairs count as
/// queries, not stored); the teacher's stream is stream 1 of `cfg.seed`, as in [`collect_preferences`].
/// `simulated` is the env steps the pieces cost.
pub fn label_pairs(
    venv: &VecEnv,
    pairs: Vec<(Segment, Segment)>,
    source: PolicySource,
    cfg: &CollectConfig,
    teacher: &TeacherConfig,
    simulated: u64,
) -> Result<PreferenceDataset, PreferenceError> {
    teacher.validate()?;
    let mut teacher_rng = stream(cfg.seed, Domain::Preferences, 1);
    let mut out: Vec<PreferencePair> = Vec::with_capacity(cfg.n_labels);
    let mut queries = 0u64;
    for (a, b) in pairs {
        if out.len() == cfg.n_labels {
            break;
        }
        queries += 1;
        push_labelled(&mut out, a, b, teacher, &mut teacher_rng);
    }
    if out.is_empty() {
        return Err(PreferenceError::Collect(format!(
            "the teacher skipped all {queries} pairs asked about (skip threshold {:?})",
            teacher.skip_threshold
        )));
    }
    Ok(PreferenceDataset { meta: dataset_meta(venv, source, cfg, teacher, queries, simulated), pairs: out })
}

/// Asks the teacher about `(a, b)` and stores the pair when it answers (group = the pair's index).
fn push_labelled(
    pairs: &mut Vec<PreferencePair>,
    mut a: Segment,
    mut b: Segment,
    teacher: &TeacherConfig,
    rng: &mut crate::seeding::ChaCha8Rng,
) {
    if let Some(label) = teacher.label(&a.rewards, &b.rewards, rng) {
        let idx = pairs.len();
        for s in [&mut a, &mut b] {
            s.group = idx;
            s.response_len = s.len();
        }
        pairs.push(PreferencePair { a, b, label });
    }
}

fn dataset_meta(
    venv: &VecEnv,
    source: PolicySource,
    cfg: &CollectConfig,
    teacher: &TeacherConfig,
    queries: u64,
    simulated_env_steps: u64,
) -> DatasetMeta {
    DatasetMeta {
        format_version: DATASET_VERSION,
        env_id: venv.envs().first().map(|e| e.id().to_string()).unwrap_or_default(),
        obs_dim: venv.obs_dim(),
        act_dim: venv.act_dim(),
        teacher: teacher.clone(),
        policy: source,
        seed: cfg.seed,
        segment_len: cfg.segment_len,
        same_start: cfg.same_start,
        queries,
        simulated_env_steps,
    }
}

/// Candidate pairs from a policy's rollouts, one round of `num_envs` episodes at a time (the state of one
/// collection: round number, unmatched pieces, pairing stream, env steps simulated).
struct Candidates<'a> {
    venv: &'a mut VecEnv,
    policy: &'a GaussianPolicy,
    cfg: &'a CollectConfig,
    pool: Vec<(u64, Segment)>,
    pair_rng: crate::seeding::ChaCha8Rng,
    round: u64,
    simulated: u64,
}

impl<'a> Candidates<'a> {
    fn new(venv: &'a mut VecEnv, policy: &'a GaussianPolicy, cfg: &'a CollectConfig) -> Self {
        let pair_rng = stream(cfg.seed, Domain::Preferences, 2);
        Candidates { venv, policy, cfg, pool: Vec::new(), pair_rng, round: 0, simulated: 0 }
    }

    /// The candidates of the next round of rollouts.
    fn next_round(&mut self) -> Result<Vec<(Segment, Segment)>, PreferenceError> {
        let k = if self.cfg.same_start { 2 } else { 1 };
        let g_n = self.venv.num_envs() / k;
        let mut rng = stream(self.cfg.seed, Domain::Preferences, 1000 + self.round);
        let seeds: Vec<u64> =
            (0..g_n).map(|_| env_seed(self.cfg.seed, Domain::Preferences, rng.random::<u64>() >> 8)).collect();
        let spec = PairSpec { k, branch_len: self.cfg.segment_len, tail_len: 0 };
        let batch = collect_groups(self.venv, self.policy, &seeds, spec, &mut rng)?;
        self.simulated += batch.env_steps;
        let out = candidates(batch.segments, self.cfg, &mut self.pool, self.round * g_n as u64, &mut self.pair_rng);
        self.round += 1;
        Ok(out)
    }
}

/// Checks the collection's arguments against each other and against the policy and environment.
fn check_args(venv: &VecEnv, policy: &GaussianPolicy, cfg: &CollectConfig) -> Result<(), PreferenceError> {
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
