//! The preference experiment of the lecture (rebel.md §4–5), end to end:
//!
//! 1. load the reference policy (about 180 true return) and evaluate it;
//! 2. collect `labels` preference pairs from it, labelled by a simulated teacher from the TRUE
//!    reward;
//! 3. train the reward-net ensemble on them (and check it on fresh pairs of another seed);
//! 4. run REBEL from the reference policy on fresh online rollouts scored by the reward net;
//! 5. report the true return before and after, labels used, env steps, wall time.
//!
//! Everything lands in one folder: `prefs.safetensors`, `reward_model.safetensors`,
//! `reward_model_report.json`, the REBEL run directory `rebel/`, and `experiment.json`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

use rebel_envs::vec_env::VecEnv;

use crate::active::{run_rounds, PersonTeacher, RoundReport, Setup};
use crate::checkpoint::Checkpoint;
use crate::io::fnv1a_hex;
use crate::preferences::query::{QueryConfig, QueryMode, RoundTeacher};
use crate::preferences::{collect_preferences, CollectConfig, PolicySource, PreferenceDataset, TeacherConfig};
use crate::reward_model::{self, RewardModelConfig, TrainReport};
use crate::train::{train, RewardSource, RunOptions, Summary, TrainConfig, TrainError};
use crate::util::resolve_path;

/// The experiment's configuration (`experiments/swimmer.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExperimentConfig {
    /// The policy that produces the labelled pairs and that REBEL starts from.
    pub reference_policy: String,
    /// Preference labels to collect.
    pub labels: usize,
    /// Piece length in steps (0: whole episodes).
    pub segment_len: usize,
    /// Both pieces of a pair start from the same state.
    pub same_start: bool,
    /// Seed of the label collection (the reward model's check uses `label_seed + 1`).
    pub label_seed: u64,
    /// Pairs collected with another seed to check the reward net (0: skip the check).
    pub check_pairs: usize,
    /// The simulated teacher.
    pub teacher: TeacherConfig,
    /// The reward net.
    pub reward_model: RewardModelConfig,
    /// The REBEL run (its `reward`, `reward_model`, `policy.init` and `eval.reference` are set by
    /// the experiment).
    pub train: TrainConfig,
    /// Active querying: `mode = "fixed"` (default) is one set of `labels` from the reference policy; the other
    /// modes run rounds of querying, retraining and REBEL ([`crate::active`]).
    pub query: QueryConfig,
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        ExperimentConfig {
            reference_policy: "experiments/swimmer/reference_policy.safetensors".into(),
            labels: 1000,
            segment_len: 50,
            same_start: false,
            label_seed: 1,
            check_pairs: 500,
            teacher: TeacherConfig::default(),
            reward_model: RewardModelConfig::default(),
            train: TrainConfig::default(),
            query: QueryConfig::default(),
        }
    }
}

/// What the experiment reports (also `experiment.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentReport {
    pub folder: String,
    pub reference_eval_true_return_mean: f64,
    pub labels_used: u64,
    pub reward_model_holdout_accuracy: f64,
    pub reward_model_check_accuracy: Option<f64>,
    pub reward_model_check_spearman: Option<f64>,
    /// Steps in the labelled pieces.
    pub label_env_steps: u64,
    pub rebel: Summary,
    pub wall_time_s: f64,
    /// The querying settings (absent for the fixed set of labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<QueryConfig>,
    /// Each round of active querying (empty for the fixed set of labels).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<RoundReport>,
}

pub(crate) fn err(e: impl std::fmt::Display) -> TrainError {
    TrainError::Config(e.to_string())
}

impl ExperimentConfig {
    /// The piece length as [`CollectConfig`] takes it (`None`: whole episodes).
    pub(crate) fn piece_len(&self) -> Option<usize> {
        (self.segment_len > 0).then_some(self.segment_len)
    }
}

/// The reward net's accuracy and Spearman on `check_pairs` fresh pairs of the reference policy (seed
/// `label_seed + 1`); `None` when `check_pairs` is 0.
pub(crate) fn check_net(
    cfg: &ExperimentConfig,
    venv: &mut VecEnv,
    reference: &crate::policy::GaussianPolicy,
    source: PolicySource,
    model: &reward_model::RewardEnsemble,
) -> Result<(Option<f64>, Option<f64>), TrainError> {
    if cfg.check_pairs == 0 {
        return Ok((None, None));
    }
    let check_cfg =
        CollectConfig { n_labels: cfg.check_pairs, segment_len: cfg.piece_len(), same_start: cfg.same_start, seed: cfg.label_seed + 1 };
    let check = collect_preferences(venv, reference, source, &check_cfg, &cfg.teacher).map_err(err)?;
    let ev = reward_model::evaluate(model, &check);
    Ok((Some(ev.accuracy), Some(ev.spearman)))
}

/// REBEL from the reference policy on the reward net in `reward_model`, new in `run_dir` or continued from
/// where that run stopped, up to `env_steps`.
pub(crate) fn run_rebel(s: &Setup, reward_model: &Path, run_dir: &Path, env_steps: u64) -> Result<Summary, TrainError> {
    let mut tc = s.cfg.train.clone();
    tc.reward = RewardSource::Model;
    tc.reward_model = reward_model.display().to_string();
    tc.policy.init = s.reference_path.display().to_string();
    // the policy is the reference's (already loaded): its sizes, activation and observation statistics
    tc.policy.adopt_architecture(s.reference.config());
    tc.eval.reference = s.reference_path.display().to_string();
    tc.env_steps = env_steps;
    let progress = s.progress;
    let opts = if run_dir.join("config.toml").is_file() {
        eprintln!("continuing the REBEL run in {}", run_dir.display());
        RunOptions { resume: Some(run_dir.to_path_buf()), progress, start_policy_noted: true, ..RunOptions::default() }
    } else {
        RunOptions { run_dir: Some(run_dir.to_path_buf()), progress, start_policy_noted: true, ..RunOptions::default() }
    };
    train(&tc, &opts)
}

/// `reward_model_report.json`: the reward net's training report and its check on fresh pairs,
/// with what a rerun needs to know whether the model can be reused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RewardModelReport {
    pub train: TrainReport,
    pub check_accuracy: Option<f64>,
    pub check_spearman: Option<f64>,
    pub check_pairs: usize,
    /// The configuration it was trained with.
    pub config: RewardModelConfig,
    /// FNV-1a of the `prefs.safetensors` it was trained on.
    pub prefs_hash: String,
}

/// Runs the experiment into `folder` (created). Rerun into the same folder, it continues: steps
/// whose output is there with the same inputs are reused, the REBEL run is resumed.
pub fn run_experiment(cfg: &ExperimentConfig, folder: &Path, progress: bool) -> Result<ExperimentReport, TrainError> {
    run_experiment_with(cfg, folder, progress, None)
}

/// [`run_experiment`] with a person answering the rounds' queries, as `query.teacher = "page"` asks (the command
/// line passes the labelling page); `person` must be given exactly when the configuration says `page`.
pub fn run_experiment_with(
    cfg: &ExperimentConfig,
    folder: &Path,
    progress: bool,
    person: Option<&mut dyn PersonTeacher>,
) -> Result<ExperimentReport, TrainError> {
    let t0 = Instant::now();
    check_teacher(cfg, person.is_some())?;
    // the device first: CUDA must be loaded before the reward net's first backward pass (see crate::device)
    crate::device::parse_device(&cfg.train.device).map_err(|e| err(e.to_string()))?;
    if cfg.query.mode != QueryMode::Fixed {
        cfg.query.per_round(cfg.labels).map_err(err)?;
    }
    let reference_path = resolve_path(&cfg.reference_policy);
    let bytes = std::fs::read(&reference_path)
        .map_err(|e| err(format!("reference policy {}: {e} (make one with `swimmer pretrain`)", reference_path.display())))?;
    let reference_ck = Checkpoint::from_bytes(&bytes, &reference_path)?;
    let reference = reference_ck.build_policy("policy", Device::Cpu, Kind::Float)?;
    tch::set_num_threads(1);
    let env_cfg = cfg.train.env.env_config().map_err(err)?;
    let mut venv = VecEnv::make(&cfg.train.env.id, &env_cfg, 16, cfg.train.threads)?;
    if (reference.obs_dim(), reference.act_dim()) != (venv.obs_dim(), venv.act_dim()) {
        let id = &cfg.train.env.id;
        return Err(err(format!(
            "reference policy {} acts on {} observations and {} actions, {id} has {} and {}: it was made for another \
             environment; make one with `rebel --env {id} pretrain --out PATH` (or any `train` run's checkpoint) and \
             pass --set reference_policy=PATH",
            reference_path.display(),
            reference.obs_dim(),
            reference.act_dim(),
            venv.obs_dim(),
            venv.act_dim()
        )));
    }
    if let Some(note) = crate::run_dir::start_policy_note(&reference_ck.meta, &reference_path, &cfg.train.env) {
        eprintln!("{note}");
    }
    // only once the reference and the environment are known to work: a refused run leaves no empty folder
    std::fs::create_dir_all(folder).map_err(|e| err(format!("cannot create {}: {e}", folder.display())))?;
    let reference_source = PolicySource { path: reference_path.display().to_string(), hash: fnv1a_hex(&bytes) };
    let setup = Setup { cfg, folder, reference: &reference, reference_path: &reference_path, reference_source, progress };
    if cfg.query.mode != QueryMode::Fixed {
        return run_rounds(&setup, &mut venv, person, t0);
    }
    run_fixed(&setup, &mut venv, t0)
}

/// The teacher the configuration names must be the one given, and a person answers in rounds, on pieces.
fn check_teacher(cfg: &ExperimentConfig, person: bool) -> Result<(), TrainError> {
    match (cfg.query.teacher, person) {
        (RoundTeacher::Page, false) => {
            return Err(err("query.teacher = \"page\" needs the labelling page: run `swimmer experiment --teacher page`"))
        }
        (RoundTeacher::Simulated, true) => return Err(err("a person teacher was given but query.teacher is \"simulated\"")),
        _ => {}
    }
    if cfg.query.teacher == RoundTeacher::Page && (cfg.query.mode == QueryMode::Fixed || cfg.segment_len == 0) {
        return Err(err(
            "a person answers in rounds of active querying, on pieces: use --query uniform|disagreement|entropy \
             (--query uniform --rounds 1 is one set from the reference policy) and segment_len ≥ 1",
        ));
    }
    Ok(())
}

/// The refusal to make a step's output again under a REBEL run that was scored by the old one.
fn refuse(run_dir: &Path, what: &str) -> TrainError {
    err(format!(
        "{} holds a REBEL run on this folder's reward net, but the {what} changed (they would be made again): use a new --out, or move {} away",
        run_dir.display(),
        run_dir.display()
    ))
}

/// The experiment with one fixed set of labels from the reference policy (module docs, steps 2–5).
fn run_fixed(s: &Setup, venv: &mut VecEnv, t0: Instant) -> Result<ExperimentReport, TrainError> {
    let (cfg, folder) = (s.cfg, s.folder);
    let run_dir = folder.join("rebel");
    let prefs = fixed_labels(s, venv, &run_dir)?;
    let label_env_steps: u64 = prefs.segment_batch().segments.iter().map(|s| s.len() as u64).sum();
    let rm_path = folder.join("reward_model.safetensors");
    let rm_report = fixed_reward_net(s, venv, &prefs, &rm_path, &run_dir)?;
    let (report, check_acc, check_rho) = (rm_report.train, rm_report.check_accuracy, rm_report.check_spearman);
    eprintln!(
        "reward net: held-out accuracy {:.3}; on {} fresh pairs: accuracy {}, spearman {}",
        report.holdout_accuracy,
        cfg.check_pairs,
        check_acc.map(|v| format!("{v:.3}")).unwrap_or("-".into()),
        check_rho.map(|v| format!("{v:.3}")).unwrap_or("-".into())
    );

    // 4: REBEL on fresh rollouts scored by the reward net, from the reference policy
    let summary = run_rebel(s, &rm_path, &run_dir, cfg.train.env_steps)?;

    let out = ExperimentReport {
        folder: folder.display().to_string(),
        reference_eval_true_return_mean: summary.reference_eval_true_return_mean,
        labels_used: summary.labels_used,
        reward_model_holdout_accuracy: report.holdout_accuracy,
        reward_model_check_accuracy: check_acc,
        reward_model_check_spearman: check_rho,
        label_env_steps,
        rebel: summary,
        wall_time_s: t0.elapsed().as_secs_f64(),
        query: None,
        rounds: Vec::new(),
    };
    crate::logging::write_atomic(&folder.join("experiment.json"), serde_json::to_string_pretty(&out).expect("json").as_bytes())?;
    Ok(out)
}

/// Steps 1–2: the labels from the reference policy. A rerun into the same folder (after a kill, or to extend the
/// REBEL budget) reuses each finished step whose inputs are unchanged; everything is deterministic, so the result
/// is the uninterrupted run's.
fn fixed_labels(s: &Setup, venv: &mut VecEnv, run_dir: &Path) -> Result<PreferenceDataset, TrainError> {
    let cfg = s.cfg;
    let segment_len = cfg.piece_len();
    let collect = CollectConfig { n_labels: cfg.labels, segment_len, same_start: cfg.same_start, seed: cfg.label_seed };
    let prefs_path = s.folder.join("prefs.safetensors");
    let kept = PreferenceDataset::load(&prefs_path).ok().filter(|d| {
        let m = &d.meta;
        d.pairs.len() == cfg.labels
            && m.env_id == cfg.train.env.id
            && m.seed == cfg.label_seed
            && m.segment_len == segment_len
            && m.same_start == cfg.same_start
            && m.teacher == cfg.teacher
            && m.policy == s.reference_source
    });
    if kept.is_none() && run_dir.join("config.toml").is_file() {
        return Err(refuse(run_dir, "labels"));
    }
    Ok(match kept {
        Some(d) => {
            eprintln!("reusing the {} labels in {}", d.pairs.len(), prefs_path.display());
            d
        }
        None => {
            eprintln!("collecting {} preference labels from the reference policy ...", cfg.labels);
            let source = s.reference_source.clone();
            let prefs = collect_preferences(venv, s.reference, source, &collect, &cfg.teacher).map_err(err)?;
            prefs.save(&prefs_path).map_err(err)?;
            prefs
        }
    })
}

/// Step 3: the reward net, and its check on fresh pairs (reused when the model, its report and the labels it was
/// fitted on are there).
fn fixed_reward_net(
    s: &Setup,
    venv: &mut VecEnv,
    prefs: &PreferenceDataset,
    rm_path: &Path,
    run_dir: &Path,
) -> Result<RewardModelReport, TrainError> {
    let cfg = s.cfg;
    let prefs_path = s.folder.join("prefs.safetensors");
    let report_path = s.folder.join("reward_model_report.json");
    let prefs_hash = fnv1a_hex(&std::fs::read(&prefs_path).map_err(|e| err(format!("{}: {e}", prefs_path.display())))?);
    let kept = std::fs::read_to_string(&report_path)
        .ok()
        .and_then(|t| serde_json::from_str::<RewardModelReport>(&t).ok())
        .filter(|r| r.prefs_hash == prefs_hash && r.check_pairs == cfg.check_pairs && r.config == cfg.reward_model)
        .filter(|_| reward_model::RewardEnsemble::load(rm_path).is_ok());
    if kept.is_none() && run_dir.join("config.toml").is_file() {
        return Err(refuse(run_dir, "reward-net settings"));
    }
    if let Some(r) = kept {
        eprintln!("reusing the reward net in {}", rm_path.display());
        return Ok(r);
    }
    eprintln!("training the reward net ...");
    let (model, report) = reward_model::train(prefs, &cfg.reward_model).map_err(err)?;
    model.save(rm_path, &cfg.train.env.id).map_err(err)?;
    let (check_accuracy, check_spearman) = check_net(cfg, venv, s.reference, s.reference_source.clone(), &model)?;
    let r = RewardModelReport {
        train: report,
        check_accuracy,
        check_spearman,
        check_pairs: cfg.check_pairs,
        config: cfg.reward_model.clone(),
        prefs_hash,
    };
    crate::logging::write_atomic(&report_path, serde_json::to_string_pretty(&r).expect("json").as_bytes())?;
    Ok(r)
}

/// A fresh experiment folder `{base}/{env}__preferences__{seed}__{unix time}` (suffixed if taken).
pub fn new_folder(base: &Path, env: &str, seed: u64) -> PathBuf {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let stem = base.join(format!("{env}__preferences__{seed}__{t}"));
    let mut p = stem.clone();
    let mut i = 1;
    while p.exists() {
        p = PathBuf::from(format!("{}-{i}", stem.display()));
        i += 1;
    }
    p
}
