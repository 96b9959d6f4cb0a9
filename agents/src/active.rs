//! The preference experiment with active querying and a reward net that keeps learning (`[query]` with a
//! `mode` other than `fixed`; [`crate::preferences::query`] for the modes).
//!
//! Round `r` of `R`, `K` labels each:
//! 1. the policy of the pool: the reference policy in round 0, else the REBEL run's checkpoint, copied to
//!    `round{r}/policy.safetensors`;
//! 2. `pool_factor × K` candidate pairs of pieces from its fresh rollouts (seed
//!    [`crate::seeding::query_round_seed`]); the first `K` the teacher answers, in the order of
//!    [`crate::preferences::query::select`] (round 0 uniform: there is no reward net yet), are this round's
//!    labels, `round{r}/prefs.safetensors`;
//! 3. the reward net trained afresh on every label so far (`prefs.safetensors` holds them all), saved as
//!    `round{r}/reward_model.safetensors` and copied to `reward_model.safetensors`, the file REBEL scores with;
//! 4. REBEL continues its run in `rebel/` (same optimiser state and curves) up to `(r + 1)/R` of
//!    `train.env_steps`, scored by the new net.
//!
//! With `query.teacher = "page"` a person answers instead of the simulated teacher: steps 2's pool, ranking and
//! asking are the [`PersonTeacher`]'s (the command line's serves the labelling page of crate `rebel-label` with
//! the round's `K` top-ranked pairs and returns once every one is answered; "can't tell" answers give no label).
//!
//! Each round's outputs are kept and reused by a rerun whose inputs match, so a killed experiment rerun with the
//! same command continues where it stopped and ends with the uninterrupted result. `round{r}/round.json`
//! records the round ([`RoundReport`]).

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

use rebel_envs::vec_env::VecEnv;

use crate::checkpoint::Checkpoint;
use crate::experiment::{check_net, err, run_rebel, ExperimentConfig, ExperimentReport};
use crate::io::fnv1a_hex;
use crate::policy::GaussianPolicy;
use crate::preferences::query::{select, QueryMode};
use crate::preferences::{collect_candidates, label_pairs, CollectConfig, PolicySource, PreferenceDataset};
use crate::reward_model::{self, RewardEnsemble, TrainReport};
use crate::run_dir::CHECKPOINT;
use crate::seeding::{query_round_seed, stream, Domain};
use crate::train::{Summary, TrainError};

/// What one round did (`round{r}/round.json`, and `rounds` of `experiment.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundReport {
    /// Round index (0-based).
    pub round: usize,
    /// How this round's pairs were chosen (`uniform` in round 0).
    pub mode: String,
    /// Labels this round, and all labels so far.
    pub labels: usize,
    pub labels_total: usize,
    /// Pairs shown to the teacher this round (skipped ones included), out of `pool` candidates.
    pub queries: u64,
    pub pool: usize,
    /// Env steps simulated for the candidates.
    pub candidate_env_steps: u64,
    /// FNV-1a of `prefs.safetensors` (all labels so far) the reward net was trained on.
    pub prefs_hash: String,
    /// The reward net's training report.
    pub reward_net: TrainReport,
    /// The REBEL run after this round: env steps, evaluation (true return, deterministic policy).
    pub env_steps: u64,
    pub eval_true_return_mean: f64,
}

/// How a round's pairs were chosen (`round{r}/labels.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct LabelChoice {
    mode: String,
    pool: usize,
}

impl LabelChoice {
    fn of(q: &RoundQuery<'_>) -> Self {
        LabelChoice { mode: q.mode.name().into(), pool: q.pool }
    }
}

/// The inputs the rounds share.
pub(crate) struct Setup<'a> {
    pub cfg: &'a ExperimentConfig,
    pub folder: &'a Path,
    pub reference: &'a GaussianPolicy,
    pub reference_path: &'a Path,
    pub reference_source: PolicySource,
    pub progress: bool,
}

/// What a round asks a person about.
pub struct RoundQuery<'a> {
    /// Round index (0-based).
    pub round: usize,
    /// Pairs to ask about (the round's `K`).
    pub labels: usize,
    /// Candidate pairs to rank before asking (`pool_factor × K`).
    pub pool: usize,
    /// How to rank them ([`select`]; round 0 is uniform).
    pub mode: QueryMode,
    /// The reward net so far (none in round 0).
    pub model: Option<&'a RewardEnsemble>,
    /// The policy whose rollouts make the candidates, and its provenance.
    pub policy: &'a GaussianPolicy,
    pub source: PolicySource,
    /// Seed of the candidates and of the uniform ranking.
    pub seed: u64,
    /// Piece length in steps.
    pub segment_len: usize,
    /// Both pieces of a pair start from the same state.
    pub same_start: bool,
    /// The round's dataset file (`round{r}/prefs.safetensors`); a person teacher keeps its session beside it.
    pub dataset: std::path::PathBuf,
}

/// A person answering the rounds' queries (`query.teacher = "page"`); the command line's serves the labelling
/// page. Errors are messages for the user.
pub trait PersonTeacher {
    /// The round's labels when a session of the same pairs is there and every pair is answered (a rerun), without
    /// asking; `None` when there is something left to ask.
    fn answered(&mut self, q: &RoundQuery<'_>) -> Result<Option<PreferenceDataset>, String>;
    /// Asks about the round's pairs (continuing a session that is there) and returns the labels once every pair
    /// is answered.
    fn ask(&mut self, q: &RoundQuery<'_>) -> Result<PreferenceDataset, String>;
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), TrainError> {
    crate::logging::write_atomic(path, serde_json::to_string_pretty(v).expect("json").as_bytes())?;
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Runs every round (module docs) and returns the experiment's report.
pub(crate) fn run_rounds(
    s: &Setup,
    venv: &mut VecEnv,
    mut person: Option<&mut dyn PersonTeacher>,
    t0: std::time::Instant,
) -> Result<ExperimentReport, TrainError> {
    let cfg = s.cfg;
    let q = &cfg.query;
    q.per_round(cfg.labels).map_err(err)?;
    let run_dir = s.folder.join("rebel");
    let mut parts: Vec<PreferenceDataset> = Vec::new();
    let mut model: Option<RewardEnsemble> = None;
    let mut rounds = Vec::new();
    let mut summary: Option<Summary> = None;
    let mut last_train = None;
    for r in 0..q.rounds {
        let rdir = s.folder.join(format!("round{r}"));
        std::fs::create_dir_all(&rdir).map_err(|e| err(format!("cannot create {}: {e}", rdir.display())))?;
        let mode = if r == 0 { QueryMode::Uniform } else { q.mode };
        let labels = labels_of_round(s, venv, person.as_deref_mut(), r, mode, model.as_ref(), &rdir, &run_dir)?;
        parts.push(labels);
        let all = concat(&parts);
        let all_bytes = all.to_bytes().map_err(err)?;
        crate::logging::write_atomic(&s.folder.join("prefs.safetensors"), &all_bytes)?;
        let prefs_hash = fnv1a_hex(&all_bytes);
        let (m, report) = round_reward_net(s, r, &rdir, &all, &prefs_hash, &run_dir)?;
        let rm_bytes = std::fs::read(rdir.join("reward_model.safetensors")).map_err(|e| err(format!("{}: {e}", rdir.display())))?;
        crate::logging::write_atomic(&s.folder.join("reward_model.safetensors"), &rm_bytes)?;
        // a round whose REBEL part finished on these labels and this net is reused as it was (the last round's
        // run is still opened, to report its summary)
        let done = read_json::<RoundReport>(&rdir.join("round.json"))
            .filter(|x| x.prefs_hash == prefs_hash && x.reward_net == report && x.labels == parts[r].len());
        let sm = match done {
            Some(x) if r + 1 < q.rounds => {
                rounds.push(x);
                model = Some(m);
                last_train = Some(report);
                continue;
            }
            _ => run_rebel(s, &s.folder.join("reward_model.safetensors"), &run_dir, round_end(cfg, r))?,
        };
        let rr = round_report(s, r, mode, &parts[r], all.len(), prefs_hash, &report, &sm);
        write_json(&rdir.join("round.json"), &rr)?;
        rounds.push(rr);
        model = Some(m);
        summary = Some(sm);
        last_train = Some(report);
    }
    let (summary, report, model) = (summary.expect("≥ 1 round"), last_train.expect("≥ 1 round"), model.expect("≥ 1 round"));
    let (check_accuracy, check_spearman) = check_net(cfg, venv, s.reference, s.reference_source.clone(), &model)?;
    let out = ExperimentReport {
        folder: s.folder.display().to_string(),
        reference_eval_true_return_mean: summary.reference_eval_true_return_mean,
        labels_used: summary.labels_used,
        reward_model_holdout_accuracy: report.holdout_accuracy,
        reward_model_check_accuracy: check_accuracy,
        reward_model_check_spearman: check_spearman,
        label_env_steps: parts.iter().flat_map(|d| &d.pairs).map(|p| (p.a.len() + p.b.len()) as u64).sum(),
        rebel: summary,
        wall_time_s: t0.elapsed().as_secs_f64(),
        query: Some(cfg.query.clone()),
        rounds,
    };
    write_json(&s.folder.join("experiment.json"), &out)?;
    Ok(out)
}

/// Round `r`'s labels, asked about the round's policy's rollouts: from the person when there is one, else from the
/// simulated teacher.
#[allow(clippy::too_many_arguments)]
fn labels_of_round(
    s: &Setup,
    venv: &mut VecEnv,
    person: Option<&mut (dyn PersonTeacher + '_)>,
    r: usize,
    mode: QueryMode,
    model: Option<&RewardEnsemble>,
    rdir: &Path,
    run_dir: &Path,
) -> Result<PreferenceDataset, TrainError> {
    let (cfg, q) = (s.cfg, &s.cfg.query);
    let k = q.per_round(cfg.labels).map_err(err)?;
    let (own, source) = round_policy(s, r, rdir, run_dir)?;
    let ctx = RoundQuery {
        round: r,
        labels: k,
        pool: q.pool_factor * k,
        mode,
        model,
        policy: own.as_ref().unwrap_or(s.reference),
        source,
        seed: query_round_seed(cfg.label_seed, r as u64),
        segment_len: cfg.segment_len,
        same_start: cfg.same_start,
        dataset: rdir.join("prefs.safetensors"),
    };
    match person {
        Some(p) => person_labels(p, &ctx, rdir, run_dir),
        None => round_labels(s, venv, &ctx, rdir, run_dir),
    }
}

/// What round `r` did (its labels `part`, `labels_total` so far, the net's `report`, REBEL's summary `sm`), also
/// printed as a progress line.
#[allow(clippy::too_many_arguments)]
fn round_report(
    s: &Setup,
    r: usize,
    mode: QueryMode,
    part: &PreferenceDataset,
    labels_total: usize,
    prefs_hash: String,
    report: &TrainReport,
    sm: &Summary,
) -> RoundReport {
    let q = &s.cfg.query;
    if s.progress {
        eprintln!(
            "round {}/{}: {labels_total} labels ({}), reward net held-out accuracy {:.3}, REBEL at {} env steps: eval {:.1}",
            r + 1,
            q.rounds,
            mode.name(),
            report.holdout_accuracy,
            sm.env_steps,
            sm.eval_true_return_mean
        );
    }
    RoundReport {
        round: r,
        mode: mode.name().into(),
        labels: part.len(),
        labels_total,
        queries: part.meta.queries,
        pool: q.pool_factor * q.per_round(s.cfg.labels).unwrap_or(0),
        candidate_env_steps: part.meta.simulated_env_steps,
        prefs_hash,
        reward_net: report.clone(),
        env_steps: sm.env_steps,
        eval_true_return_mean: sm.eval_true_return_mean,
    }
}

/// REBEL's env-step budget at the end of round `r`: `(r + 1)/R` of `train.env_steps`.
fn round_end(cfg: &ExperimentConfig, r: usize) -> u64 {
    let rounds = cfg.query.rounds.max(1) as u64;
    if r as u64 + 1 >= rounds { cfg.train.env_steps } else { cfg.train.env_steps * (r as u64 + 1) / rounds }
}

/// Refuses to make round `r`'s labels or reward net again when the REBEL run in `run_dir` has gone past the
/// round's start: that run was scored by the old ones, and continuing it would mix two experiments.
/// The round's start is the env steps of the policy its candidates came from (`round{r}/policy.safetensors`).
fn refuse_if_past(r: usize, rdir: &Path, run_dir: &Path, what: &str) -> Result<(), TrainError> {
    let done = checkpoint_env_steps(&run_dir.join(CHECKPOINT));
    let start = if r == 0 { 0 } else { checkpoint_env_steps(&rdir.join("policy.safetensors")) };
    if done > start || (r == 0 && run_dir.join("config.toml").is_file()) {
        return Err(err(format!(
            "{} holds a REBEL run at {done} env steps, past the start of round {r} ({start}), but round {r}'s {what} \
             changed (they would be made again): use a new --out, or move {} away",
            run_dir.display(),
            run_dir.display()
        )));
    }
    Ok(())
}

/// The env steps a training checkpoint records (0 when it cannot be read).
fn checkpoint_env_steps(path: &Path) -> u64 {
    std::fs::read(path)
        .ok()
        .and_then(|b| Checkpoint::from_bytes(&b, path).ok())
        .and_then(|c| c.meta.counters.get("env_steps").copied())
        .unwrap_or(0)
}

/// The policy whose rollouts make round `r`'s candidates, and its provenance: the reference policy in round 0;
/// later, `round{r}/policy.safetensors`, a copy of the REBEL run's checkpoint made when the round first started
/// (reused on a rerun, so the round's candidates do not depend on how far a killed run had gone since).
/// `None` stands for the reference policy.
fn round_policy(s: &Setup, r: usize, rdir: &Path, run_dir: &Path) -> Result<(Option<GaussianPolicy>, PolicySource), TrainError> {
    if r == 0 {
        return Ok((None, s.reference_source.clone()));
    }
    let copy = rdir.join("policy.safetensors");
    let bytes = match std::fs::read(&copy) {
        Ok(b) if Checkpoint::from_bytes(&b, &copy).is_ok() => b,
        _ => {
            let src = run_dir.join(CHECKPOINT);
            let b = std::fs::read(&src).map_err(|e| err(format!("the REBEL checkpoint {}: {e}", src.display())))?;
            crate::logging::write_atomic(&copy, &b)?;
            b
        }
    };
    let policy = Checkpoint::from_bytes(&bytes, &copy)?.build_policy("policy", Device::Cpu, Kind::Float)?;
    Ok((Some(policy), PolicySource { path: copy.display().to_string(), hash: fnv1a_hex(&bytes) }))
}

/// Round `r`'s labels from the simulated teacher (reused from `round{r}/prefs.safetensors` when they were made from
/// the same policy, seed, teacher and settings; its `simulated_env_steps` are the candidates' cost).
fn round_labels(s: &Setup, venv: &mut VecEnv, q: &RoundQuery<'_>, rdir: &Path, run_dir: &Path) -> Result<PreferenceDataset, TrainError> {
    let (cfg, r, k) = (s.cfg, q.round, q.labels);
    let path = &q.dataset;
    let segment_len = cfg.piece_len();
    let collect = CollectConfig { n_labels: k, segment_len, same_start: cfg.same_start, seed: q.seed };
    // how the labels were chosen, which the dataset's own metadata does not say
    let choice = LabelChoice::of(q);
    let choice_path = rdir.join("labels.json");
    let loaded = PreferenceDataset::load(path);
    let unreadable = match (&loaded, path.exists()) {
        (Err(e), true) => Some(format!("labels ({} is unreadable: {e})", path.display())),
        _ => None,
    };
    let kept = loaded.ok().filter(|d| {
        let m = &d.meta;
        d.pairs.len() == k
            && m.env_id == cfg.train.env.id
            && m.seed == q.seed
            && m.segment_len == segment_len
            && m.same_start == cfg.same_start
            && m.teacher == cfg.teacher
            && m.policy == q.source
            && read_json::<LabelChoice>(&choice_path).as_ref() == Some(&choice)
    });
    if let Some(d) = kept {
        return Ok(d);
    }
    refuse_if_past(r, rdir, run_dir, unreadable.as_deref().unwrap_or("labels"))?;
    let (pool, simulated) = collect_candidates(venv, q.policy, &collect, q.pool).map_err(err)?;
    let order = select(q.mode, q.model, &pool, &mut stream(q.seed, Domain::Preferences, 3));
    let mut slots: Vec<Option<_>> = pool.into_iter().map(Some).collect();
    let ranked: Vec<_> = order.into_iter().filter_map(|i| slots[i].take()).collect();
    let d = label_pairs(venv, ranked, q.source.clone(), &collect, &cfg.teacher, simulated).map_err(err)?;
    if d.len() < k {
        return Err(err(format!(
            "round {r}: the teacher answered only {} of the {} candidates (skip threshold {:?}); raise \
             query.pool_factor or lower the threshold",
            d.len(),
            q.pool,
            cfg.teacher.skip_threshold
        )));
    }
    d.save(path).map_err(err)?;
    write_json(&choice_path, &choice)?;
    Ok(d)
}

/// Round `r`'s labels from a person: those of a finished session, else (after the same refusal as the simulated
/// teacher's when REBEL already went past the round) the person's answers.
fn person_labels(p: &mut dyn PersonTeacher, q: &RoundQuery<'_>, rdir: &Path, run_dir: &Path) -> Result<PreferenceDataset, TrainError> {
    if let Some(d) = p.answered(q).map_err(err)? {
        return Ok(d);
    }
    refuse_if_past(q.round, rdir, run_dir, "labels")?;
    let d = p.ask(q).map_err(err)?;
    write_json(&rdir.join("labels.json"), &LabelChoice::of(q))?;
    Ok(d)
}

/// The reward net of round `r`, trained afresh on all labels so far (reused when `round.json` says it was
/// trained on the same labels with the same settings and the file is whole).
fn round_reward_net(
    s: &Setup,
    r: usize,
    rdir: &Path,
    all: &PreferenceDataset,
    prefs_hash: &str,
    run_dir: &Path,
) -> Result<(RewardEnsemble, TrainReport), TrainError> {
    let path = rdir.join("reward_model.safetensors");
    let report_path = rdir.join("reward_model_report.json");
    #[derive(Serialize, Deserialize)]
    struct Kept {
        prefs_hash: String,
        config: reward_model::RewardModelConfig,
        train: TrainReport,
    }
    if let Some(k) = read_json::<Kept>(&report_path).filter(|k| k.prefs_hash == prefs_hash && k.config == s.cfg.reward_model) {
        if let Ok((m, _)) = RewardEnsemble::load(&path) {
            return Ok((m, k.train));
        }
    }
    refuse_if_past(r, rdir, run_dir, "reward-net settings")?;
    let (m, report) = reward_model::train(all, &s.cfg.reward_model).map_err(err)?;
    m.save(&path, &s.cfg.train.env.id).map_err(err)?;
    write_json(&report_path, &Kept { prefs_hash: prefs_hash.into(), config: s.cfg.reward_model.clone(), train: report.clone() })?;
    Ok((m, report))
}

/// The labels of several rounds as one dataset: pairs in order, queries and simulated steps summed, the
/// provenance (policy, seed) of the first part; each part's own file keeps its own.
fn concat(parts: &[PreferenceDataset]) -> PreferenceDataset {
    let mut meta = parts[0].meta.clone();
    meta.queries = parts.iter().map(|p| p.meta.queries).sum();
    meta.simulated_env_steps = parts.iter().map(|p| p.meta.simulated_env_steps).sum();
    let mut pairs = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        for pair in &p.pairs {
            let mut pair = pair.clone();
            pair.a.group = pairs.len();
            pair.b.group = pairs.len();
            pairs.push(pair);
        }
    }
    PreferenceDataset { meta, pairs }
}
