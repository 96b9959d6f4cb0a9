//! The comparison of the lecture's table (rebel.md §4–5): the reference policy (SFT), DPO (logistic,
//! square, iterative), REINFORCE, RLOO (k = 2, 4), PPO and REBEL, on the same environment, policy,
//! reward net, labels and evaluation; PPO and REBEL also on the true reward (oracle rows).
//!
//! This module holds everything but the process pool (in the CLI, `swimmer compare`):
//! * [`CompareConfig`]: the shared settings (reference policy, labels, teacher, reward net, the base
//!   [`TrainConfig`] whose `env_steps` is every online row's budget) and the rows;
//! * [`prepare_seed`]: per seed, the preference dataset from the reference policy and the reward net
//!   trained on it (shared by every row of that seed);
//! * [`run_config`]: a row's resolved [`TrainConfig`] for a seed;
//! * [`read_run`], [`plot_curves`]: a run directory's final value and curve, and the plot with
//!   bootstrap bands; the protocol (tuning, report, statistics) is [`crate::protocol`].
//!
//! Equal budgets: every online row gets the same `env_steps`; every row that uses labels gets the
//! same number (the reward net's dataset, offline DPO's dataset, and iterative DPO's
//! `labels_per_round × iterations`, set by [`run_config`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

use rebel_envs::vec_env::VecEnv;

use crate::checkpoint::Checkpoint;
use crate::io::fnv1a_hex;
use crate::preferences::{collect_preferences, CollectConfig, PolicySource, TeacherConfig, TeacherKind};
use crate::reward_model::{self, RewardModelConfig};
use crate::runconfig::{load_config, to_toml_string, ConfigError};
use crate::algorithm::AlgoConfig;
use crate::algos::dpo::DpoConfig;
use crate::train::{RewardSource, TrainConfig, TrainError};
use crate::protocol::{ProtocolConfig, Space};
use crate::util::resolve_path;

/// One row of the table: an algorithm, what scores it, and extra `--set`s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowSpec {
    /// Row name in the results (`ppo-true`, `rloo-k4`, …).
    pub name: String,
    /// `train`'s `algo`.
    pub algo: String,
    /// "model" (the seed's reward net) or "true". Ignored by DPO (it uses the labels directly).
    #[serde(default = "model")]
    pub reward: RewardSource,
    /// Extra `KEY=VALUE` overrides of the row's training configuration.
    #[serde(default)]
    pub set: Vec<String>,
    /// Where the row's policy starts: the reference policy (default) or a fresh random policy
    /// (`scratch`: `policy.*` of the base configuration, initialised from the run's seed).
    #[serde(default)]
    pub start: Start,
}

/// Where a row's policy starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// The reference policy (`reference_policy`).
    #[default]
    Reference,
    /// A random policy drawn from the run's seed.
    Scratch,
}

fn model() -> RewardSource {
    RewardSource::Model
}

impl RowSpec {
    /// The row needs the seed's labels: DPO trains on them, a `model` row on the reward net fitted to them.
    pub fn uses_labels(&self) -> bool {
        self.algo == DpoConfig::NAME || self.reward == RewardSource::Model
    }
}

fn row(name: &str, algo: &str, reward: &str, set: &[&str]) -> RowSpec {
    let reward = if reward == "true" { RewardSource::True } else { RewardSource::Model };
    RowSpec { name: name.into(), algo: algo.into(), reward, set: set.iter().map(|s| s.to_string()).collect(), start: Start::Reference }
}

/// The rows of the lecture's table (the `reference` row is always added).
pub fn default_rows() -> Vec<RowSpec> {
    vec![
        row("dpo", "dpo", "model", &[]),
        row("dpo-square", "dpo", "model", &["dpo.loss=\"square\""]),
        row("dpo-iterative", "dpo", "model", &["dpo.iterative=true"]),
        row("reinforce", "reinforce", "model", &[]),
        row("rloo-k2", "rloo", "model", &["rloo.k=2"]),
        // k = 4 with half the groups: the same env steps per iteration as k = 2
        row("rloo-k4", "rloo", "model", &["rloo.k=4", "rloo.groups=2"]),
        row("ppo", "ppo", "model", &[]),
        row("ppo-true", "ppo", "true", &[]),
        row("rebel", "rebel", "model", &[]),
        row("rebel-true", "rebel", "true", &[]),
        // confounds as rows: REBEL on whole episodes and without the tail; RLOO(2) and REINFORCE
        // with REBEL's number of updates (importance-weighted)
        row("rebel-episodes", "rebel", "model", &["rebel.branch_len=0", "rebel.tail_len=0"]),
        row("rebel-notail", "rebel", "model", &["rebel.tail_len=0"]),
        row("rloo-k2-epochs", "rloo", "model", &["rloo.k=2", "rloo.epochs=8", "rloo.minibatches=4", "rloo.importance_clip=2.0"]),
        row("reinforce-epochs", "reinforce", "model", &["reinforce.epochs=8", "reinforce.minibatches=4", "reinforce.importance_clip=2.0"]),
    ]
}

/// The comparison's configuration (`experiments/swimmer_compare.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompareConfig {
    /// The reference policy: the SFT row, the start of every row, the producer of the labels, and
    /// the win-rate opponent. Empty: none (every row from scratch on the true reward; no reference row, and each
    /// run's win rate is against its own starting policy). `compare --env` on another environment than the
    /// Swimmer starts with none, as the shipped one is a Swimmer policy.
    pub reference_policy: String,
    /// Preference labels per seed (the reward net's dataset; offline DPO's dataset; iterative DPO's
    /// total).
    pub labels: usize,
    /// Piece length in steps (0: whole episodes).
    pub segment_len: usize,
    /// Both pieces of a pair start from the same state.
    pub same_start: bool,
    /// Report seeds: `first_seed .. first_seed + seeds`. Default 10.
    pub seeds: usize,
    /// First report seed. Default 1.
    pub first_seed: u64,
    /// Training processes at a time (each with `threads = 1`). Default 2.
    pub parallel: usize,
    /// The simulated teacher.
    pub teacher: TeacherConfig,
    /// The reward net.
    pub reward_model: RewardModelConfig,
    /// The base training configuration of every row (`env_steps`: the online budget).
    pub train: TrainConfig,
    /// The rows (default: [`default_rows`]).
    pub rows: Vec<RowSpec>,
    /// Tuning and report settings.
    pub protocol: ProtocolConfig,
    /// Search spaces by row or algorithm name: full training key → values (`[search.rebel] "rebel.eta" =
    /// [1.0, 10.0]`). A row's own entry (`[search."rebel-scratch"]`) wins over its algorithm's.
    pub search: BTreeMap<String, Space>,
}

impl Default for CompareConfig {
    fn default() -> Self {
        CompareConfig {
            reference_policy: "experiments/swimmer/reference_policy.safetensors".into(),
            labels: 1000,
            segment_len: 50,
            same_start: false,
            seeds: 10,
            first_seed: 1,
            parallel: 2,
            teacher: TeacherConfig { beta: Some(1.0), ..TeacherConfig::preset(TeacherKind::Bt) },
            reward_model: RewardModelConfig::default(),
            train: TrainConfig::default(),
            rows: default_rows(),
            protocol: ProtocolConfig::default(),
            search: BTreeMap::new(),
        }
    }
}

impl CompareConfig {
    /// The seeds of the comparison.
    pub fn seed_list(&self) -> Vec<u64> {
        (0..self.seeds as u64).map(|i| self.first_seed + i).collect()
    }

    /// Some row needs labels (and so the reward net).
    pub fn needs_labels(&self) -> bool {
        self.rows.iter().any(RowSpec::uses_labels)
    }

    /// The search space of `row`: its own (`[search."ROW"]`), else its algorithm's.
    pub fn space(&self, row: &RowSpec) -> Option<&Space> {
        self.search.get(&row.name).or_else(|| self.search.get(&row.algo))
    }

    /// Checks what the rows need.
    pub fn validate(&self) -> Result<(), String> {
        if self.seeds == 0 || self.parallel == 0 {
            return Err("seeds and parallel must be ≥ 1".into());
        }
        if self.reference_policy.is_empty() {
            if let Some(r) = self.rows.iter().find(|r| r.start == Start::Reference || r.uses_labels()) {
                let why = if r.start == Start::Reference { "starts from the reference policy" } else { "needs labels, which the reference policy makes" };
                return Err(format!(
                    "row {} {why}, but there is none (reference_policy = \"\"; `compare --env` on another environment than \
                     the Swimmer has none, as the shipped one is a Swimmer policy): give `reference_policy` a policy of {} \
                     (e.g. one made by `rebel --env {} pretrain`), or give every row start = \"scratch\" and reward = \"true\" (as \
                     experiments/halfcheetah_compare.toml does)",
                    r.name, self.train.env.id, self.train.env.id
                ));
            }
        }
        if self.labels == 0 && self.needs_labels() {
            let r = self.rows.iter().find(|r| r.uses_labels()).expect("a row with labels");
            return Err(format!("labels = 0, but row {} needs labels (DPO, or reward = \"model\")", r.name));
        }
        let mut names: Vec<&str> = self.rows.iter().map(|r| r.name.as_str()).collect();
        names.sort();
        if names.windows(2).any(|w| w[0] == w[1]) || names.contains(&"reference") {
            return Err("row names must be unique and not `reference`".into());
        }
        if let Some(r) = self.rows.iter().find(|r| r.name.is_empty() || r.name.contains(['/', '\\']) || r.name.starts_with('.')) {
            return Err(format!("row name {:?} cannot name a folder", r.name));
        }
        self.protocol.check(&self.seed_list(), self.train.eval.seed_base, self.train.eval.episodes)?;
        for row in &self.rows {
            crate::protocol::candidates(&self.protocol, &row.name, self.space(row), &row.set)?;
        }
        self.check_policy_treatment()
    }

    /// Every row from scratch gets the same policy class and initialisation: a `policy.*` key that one such row's
    /// search space tunes, or its `set` fixes, every other such row tunes over the same values, or fixes to the same
    /// value. (Tuning the initial log std for one algorithm alone would give it a knob the others lack.)
    fn check_policy_treatment(&self) -> Result<(), String> {
        // values compared as TOML values, as a run's configuration reads them (`[256,256]` is `[256, 256]`); a row
        // cannot both tune and fix a key (protocol::candidates refuses it)
        #[derive(PartialEq)]
        enum Knob {
            Tuned(Vec<toml::Value>),
            Set(toml::Value),
        }
        let treatment = |row: &RowSpec| -> BTreeMap<String, Knob> {
            let tuned = (self.space(row).into_iter().flatten()).map(|(k, vs)| (k.clone(), Knob::Tuned(vs.clone())));
            let set = (row.set.iter().filter_map(|s| crate::runconfig::parse_set(s).ok())).map(|(keys, v)| (keys.join("."), Knob::Set(v)));
            tuned.chain(set).filter(|(k, _)| k.starts_with("policy.")).collect()
        };
        let mut scratch = self.rows.iter().filter(|r| r.start == Start::Scratch);
        let Some(first) = scratch.next() else { return Ok(()) };
        let want = treatment(first);
        for row in scratch {
            let got = treatment(row);
            if let Some(key) = want.keys().chain(got.keys()).find(|k| want.get(*k) != got.get(*k)).cloned() {
                let say = |t: &BTreeMap<String, Knob>| match t.get(&key) {
                    Some(Knob::Tuned(vs)) => format!("tuned over [{}]", vs.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")),
                    Some(Knob::Set(v)) => format!("set to {v}"),
                    None => "left at [train.policy]'s value".into(),
                };
                return Err(format!(
                    "rows {} and {} start from scratch but treat {key} differently ({} against {}): every row from scratch \
                     has the same policy class and initialisation, so tune {key} over the same values in every such row's \
                     [search.NAME], or set it once in [train.policy]",
                    first.name,
                    row.name,
                    say(&want),
                    say(&got)
                ));
            }
        }
        Ok(())
    }

    /// Refuses a reference policy trained on another environment than the rows', or one whose observation and
    /// action sizes are not those of the rows' environment with its options (a file that does not load is reported
    /// where it is first read).
    pub fn check_reference_env(&self) -> Result<(), String> {
        if self.reference_policy.is_empty() {
            return Ok(());
        }
        let path = resolve_path(&self.reference_policy);
        let Ok(ck) = Checkpoint::load(&path) else { return Ok(()) };
        let id = &self.train.env.id;
        let fix = format!(
            "give `reference_policy` a policy of {id} as configured (e.g. one made by `rebel --env {id} pretrain` with \
             the same --env-opt), or set reference_policy = \"\" with every row start = \"scratch\" and reward = \"true\""
        );
        if !ck.meta.env_id.is_empty() && &ck.meta.env_id != id {
            return Err(format!("reference policy {} was trained on {}, not on {id}, the environment of the rows: {fix}", path.display(), ck.meta.env_id));
        }
        if let Some(p) = &ck.meta.policy {
            let env = VecEnv::make(id, &self.train.env.env_config()?, 1, 1).map_err(|e| format!("environment {id}: {e}"))?;
            if (p.obs_dim, p.act_dim) != (env.obs_dim(), env.act_dim()) {
                return Err(format!(
                    "reference policy {} is a policy of {} observations and {} actions, but {id} with the rows' options has \
                     {} and {}: {fix}",
                    path.display(),
                    p.obs_dim,
                    p.act_dim,
                    env.obs_dim(),
                    env.act_dim()
                ));
            }
        }
        Ok(())
    }
}

/// The comparison's configuration: `base` (the shipped one), then `file`, then the `--set`s, layered as by
/// [`load_config`], except that a search space the file gives (`[search.NAME]`) replaces the base's space of that
/// name whole. A space lists what is tuned: keys of the base's left in it would tune what the file does not name.
pub fn load_compare_config(base: &str, file: Option<&Path>, sets: &[String]) -> Result<CompareConfig, ConfigError> {
    let mut base_table: toml::Table = toml::from_str(base).map_err(ConfigError::Default)?;
    // a file that does not read or parse is reported by load_config
    let given = file.and_then(|f| std::fs::read_to_string(f).ok()).and_then(|t| toml::from_str::<toml::Table>(&t).ok());
    if let (Some(toml::Value::Table(spaces)), Some(toml::Value::Table(base_spaces))) =
        (given.as_ref().and_then(|g| g.get("search")), base_table.get_mut("search"))
    {
        for name in spaces.keys() {
            base_spaces.remove(name);
        }
    }
    load_config(&toml::to_string(&base_table).map_err(ConfigError::Serialize)?, file, sets)
}

/// The files one seed's rows share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedData {
    pub seed: u64,
    pub prefs: PathBuf,
    pub reward_model: PathBuf,
    pub labels: u64,
    /// Env steps simulated to collect the labels (trunks and discarded pieces included).
    pub label_env_steps: u64,
    pub reward_model_holdout_accuracy: f64,
}

fn err(e: impl std::fmt::Display) -> TrainError {
    TrainError::Config(e.to_string())
}

/// Collects `cfg.labels` labelled pairs from the reference policy (collection seed = `seed`) into
/// `dir/prefs.safetensors` and trains the reward net (its seed = `seed`) into
/// `dir/reward_model.safetensors`. Reuses both when `dir/seed_data.json` exists. When no row uses labels,
/// nothing is collected or written (empty paths, no labels).
pub fn prepare_seed(cfg: &CompareConfig, dir: &Path, seed: u64, threads: usize) -> Result<SeedData, TrainError> {
    if !cfg.needs_labels() {
        return Ok(SeedData { seed, prefs: PathBuf::new(), reward_model: PathBuf::new(), labels: 0, label_env_steps: 0, reward_model_holdout_accuracy: f64::NAN });
    }
    // one libtorch thread, as `experiment` and `rm train`: the reward net must not depend on how
    // many cores this process sees (an MPI launcher binds each rank to one)
    tch::set_num_threads(1);
    let record = dir.join("seed_data.json");
    if let Some(d) = std::fs::read_to_string(&record).ok().and_then(|s| serde_json::from_str::<SeedData>(&s).ok()) {
        if d.prefs.exists() && d.reward_model.exists() {
            return Ok(d);
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
    let ref_path = resolve_path(&cfg.reference_policy);
    let bytes = std::fs::read(&ref_path).map_err(|e| err(format!("reference policy {}: {e} (make one with `swimmer pretrain`)", ref_path.display())))?;
    let reference = Checkpoint::from_bytes(&bytes, &ref_path)?.build_policy("policy", Device::Cpu, Kind::Float)?;
    let env_cfg = cfg.train.env.env_config().map_err(err)?;
    let mut venv = VecEnv::make(&cfg.train.env.id, &env_cfg, 16, threads)?;
    let source = PolicySource { path: ref_path.display().to_string(), hash: fnv1a_hex(&bytes) };
    let collect = CollectConfig {
        n_labels: cfg.labels,
        segment_len: (cfg.segment_len > 0).then_some(cfg.segment_len),
        same_start: cfg.same_start,
        seed,
    };
    let prefs = collect_preferences(&mut venv, &reference, source, &collect, &cfg.teacher).map_err(err)?;
    let prefs_path = dir.join("prefs.safetensors");
    prefs.save(&prefs_path).map_err(err)?;
    let rm_cfg = RewardModelConfig { seed, ..cfg.reward_model.clone() };
    let (model, report) = reward_model::train(&prefs, &rm_cfg).map_err(err)?;
    let rm_path = dir.join("reward_model.safetensors");
    model.save(&rm_path, &cfg.train.env.id).map_err(err)?;
    let d = SeedData {
        seed,
        prefs: prefs_path,
        reward_model: rm_path,
        labels: prefs.len() as u64,
        label_env_steps: prefs.meta.simulated_env_steps,
        reward_model_holdout_accuracy: report.holdout_accuracy,
    };
    crate::logging::write_atomic(&record, serde_json::to_string_pretty(&d).expect("json").as_bytes())?;
    Ok(d)
}

/// The resolved training configuration of `row` for a seed: the base config, the row's algorithm
/// and scorer, the seed's data, the reference policy as start (unless the row starts from scratch) and
/// as the win-rate opponent, one thread, then the
/// row's own `set`s, then `extra` (the tuning configuration, the tuning horizon). Iterative DPO gets
/// `labels_per_round = labels / dpo.iterations` (the same label budget as the others; an error if it
/// does not divide).
pub fn run_config(cfg: &CompareConfig, row: &RowSpec, data: &SeedData, extra: &[String]) -> Result<TrainConfig, String> {
    let base = to_toml_string(&cfg.train).map_err(|e| e.to_string())?;
    let q = |p: &Path| format!("{:?}", p.display().to_string());
    let reference = resolve_path(&cfg.reference_policy);
    let mut sets = vec![
        format!("algo={:?}", row.algo),
        format!("reward={}", toml::Value::try_from(row.reward).map_err(|e| e.to_string())?),
        format!("seed={}", data.seed),
        "threads=1".to_string(),
    ];
    if !cfg.reference_policy.is_empty() {
        sets.push(format!("eval.reference={}", q(&reference)));
    }
    if row.start == Start::Reference {
        sets.push(format!("policy.init={}", q(&reference)));
    }
    if row.algo == DpoConfig::NAME {
        sets.push(format!("dpo.dataset={}", q(&data.prefs)));
    }
    if row.reward == RewardSource::Model {
        sets.push(format!("reward_model={}", q(&data.reward_model)));
    }
    sets.extend(row.set.iter().cloned());
    sets.extend(extra.iter().cloned());
    let mut tc: TrainConfig = load_config(&base, None, &sets).map_err(|e| format!("row {}: {e}", row.name))?;
    if row.start == Start::Reference {
        // a row from the reference has the reference's architecture (sizes, activation, statistics); a file
        // that does not load is reported by the run itself, where it restores `policy.init`
        if let Some(stored) = Checkpoint::load(&reference).ok().and_then(|ck| ck.meta.policy) {
            tc.policy.adopt_architecture(&stored);
        }
    }
    let mut dpo: DpoConfig = tc.algo_config().map_err(|e| format!("row {}: {e}", row.name))?;
    if tc.algo == DpoConfig::NAME && dpo.iterative {
        let it = dpo.iterations.max(1);
        if !cfg.labels.is_multiple_of(it) {
            return Err(format!("row {}: labels = {} is not a multiple of dpo.iterations = {it}", row.name, cfg.labels));
        }
        dpo.labels_per_round = cfg.labels / it;
        tc.set_algo(&dpo);
    }
    tc.resolve().map_err(|e| format!("row {}: {e}", row.name))
}

/// A run's learning curve.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// `(env steps, eval true return)` in order.
    pub points: Vec<(f64, f64)>,
}

impl Curve {
    /// The value at `x`: linear between points, held constant outside them (NaN for no points).
    pub fn at(&self, x: f64) -> f64 {
        let p = &self.points;
        let Some(first) = p.first() else { return f64::NAN };
        if x <= first.0 {
            return first.1;
        }
        for w in p.windows(2) {
            if x <= w[1].0 {
                let t = if w[1].0 > w[0].0 { (x - w[0].0) / (w[1].0 - w[0].0) } else { 1.0 };
                return w[0].1 + t * (w[1].1 - w[0].1);
            }
        }
        p[p.len() - 1].1
    }
}

/// A run of a row, finished or failed.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    pub row: String,
    pub seed: u64,
    /// `summary.json`; `null` for a run that failed.
    pub summary: serde_json::Value,
    pub curve: Curve,
    /// The final eval return: the summary's, or a failed run's last evaluation (NaN if it had none).
    pub final_return: f64,
}

impl RunRecord {
    pub fn failed(&self) -> bool {
        self.summary.is_null()
    }
}

/// Reads a run directory: `summary.json` if it finished (with `eval_env_steps` added: the sum of the
/// evaluations' `eval/env_steps` in `metrics.jsonl`), and the eval points of `metrics.jsonl`.
/// Offline runs (summary `env_steps` = 0) get a flat curve at their final value.
pub fn read_run(row: &str, seed: u64, dir: &Path) -> Result<RunRecord, String> {
    let summary: serde_json::Value = match std::fs::read_to_string(dir.join("summary.json")) {
        Ok(s) => serde_json::from_str(&s).map_err(|e| format!("{}: {e}", dir.join("summary.json").display()))?,
        Err(_) => serde_json::Value::Null,
    };
    let m = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap_or_default();
    let mut points = Vec::new();
    let mut eval_steps = 0.0;
    for line in m.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        eval_steps += v.get("eval/env_steps").and_then(|x| x.as_f64()).unwrap_or(0.0);
        if let (Some(x), Some(y)) = (v.get("env_steps").and_then(|x| x.as_f64()), v.get("eval/true_return").and_then(|y| y.as_f64())) {
            points.push((x, y));
        }
    }
    let final_return = match summary.get("eval_true_return_mean").and_then(|v| v.as_f64()) {
        Some(v) => v,
        None => points.last().map(|p| p.1).unwrap_or(f64::NAN),
    };
    if summary.get("env_steps").and_then(|v| v.as_u64()) == Some(0) {
        points = vec![(0.0, final_return)];
    }
    let mut summary = summary;
    if let Some(m) = summary.as_object_mut() {
        // the evaluations' env steps, from the metrics (exact across a resume)
        m.insert("eval_env_steps".into(), serde_json::json!(eval_steps));
    }
    Ok(RunRecord { row: row.into(), seed, summary, curve: Curve { points }, final_return })
}

/// The mean curve over seeds with its 95 % bootstrap band at each point of the first seed's grid
/// (the other seeds interpolated, [`Curve::at`]).
pub fn mean_band(curves: &[&Curve], reps: usize) -> Vec<crate::plot::BandPoint> {
    let Some(first) = curves.first() else { return Vec::new() };
    let xs: Vec<f64> = first.points.iter().map(|p| p.0).collect();
    let grid: Vec<Vec<f64>> = curves.iter().map(|c| xs.iter().map(|&x| c.at(x)).collect()).collect();
    let b = crate::stats::Bootstrap { reps, size: 0.95, seed: 7 };
    crate::stats::curve_bands(&grid, crate::stats::mean, b)
        .into_iter()
        .zip(xs)
        .map(|(i, x)| crate::plot::BandPoint { x, mean: i.point, lower: i.lo, upper: i.hi })
        .collect()
}

// ───────────────────────────── the plot ─────────────────────────────

/// Draws true return against env steps, mean and band per series, with a legend, into a
/// `width × height` PNG at `path` and an SVG next to it ([`crate::plot`]). A single point at x = 0
/// (offline rows, the reference) is drawn as a dashed line across the whole width.
pub fn plot_curves(path: &Path, series: &[crate::plot::Series], title: &str, width: u32, height: u32) -> Result<(), TrainError> {
    let fig = crate::plot::Figure {
        title: title.into(),
        x_label: "env steps".into(),
        y_label: "eval true return".into(),
        width,
        height,
    };
    crate::plot::learning_curves(path, Some(&path.with_extension("svg")), series, &fig).map_err(|e| TrainError::Output(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A comparison file's `text` loaded as `compare --config FILE` loads it (merged over the shipped Swimmer
    /// comparison), from a folder of its own that is removed after.
    fn load_file(name: &str, text: &str) -> CompareConfig {
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rebel-cfg-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        let cfg = load_compare_config(include_str!("../../experiments/swimmer_compare.toml"), Some(&file), &[]).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        cfg
    }

    #[test]
    fn curves_interpolate_and_bands_hold_the_mean() {
        let a = Curve { points: vec![(0.0, 10.0), (100.0, 20.0)] };
        let b = Curve { points: vec![(0.0, 20.0), (50.0, 30.0), (200.0, 60.0)] };
        // b at 100: 30 + (50/150)·30 = 40; held outside its range
        assert_eq!((b.at(100.0), b.at(-5.0), b.at(500.0)), (40.0, 20.0, 60.0));
        let m = mean_band(&[&a, &b], 1000);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].mean, m[1].mean), (15.0, 30.0));
        assert!(m[1].lower >= 20.0 && m[1].upper <= 40.0 && m[1].lower < m[1].upper, "{m:?}");
    }

    #[test]
    fn run_config_gives_each_row_its_scorer_data_and_label_budget() {
        let cfg = CompareConfig::default();
        let data = SeedData {
            seed: 7,
            prefs: PathBuf::from("/data/prefs.st"),
            reward_model: PathBuf::from("/data/rm.st"),
            labels: 1000,
            label_env_steps: 0,
            reward_model_holdout_accuracy: 1.0,
        };
        let rows = default_rows();
        let get = |name: &str| rows.iter().find(|r| r.name == name).unwrap();
        let it = run_config(&cfg, get("dpo-iterative"), &data, &[]).unwrap();
        let d: DpoConfig = it.algo_config().unwrap();
        assert!(d.iterative && d.labels_per_round * d.iterations == 1000, "{d:?}");
        assert_eq!((it.seed, it.threads, d.dataset.as_str()), (7, 1, "/data/prefs.st"));
        assert_eq!(it.algos.keys().collect::<Vec<_>>(), ["dpo"], "a run's config holds only its algorithm's section");
        let ppo = run_config(&cfg, get("ppo"), &data, &[]).unwrap();
        assert_eq!((ppo.algo.as_str(), ppo.reward, ppo.reward_model.as_str()), ("ppo", RewardSource::Model, "/data/rm.st"));
        let oracle = run_config(&cfg, get("rebel-true"), &data, &[]).unwrap();
        assert_eq!((oracle.reward, oracle.reward_model.as_str()), (RewardSource::True, ""));
        let k4 = run_config(&cfg, get("rloo-k4"), &data, &[]).unwrap();
        let r: crate::algos::rloo::RlooConfig = k4.algo_config().unwrap();
        assert_eq!(r.k * r.groups, 8, "the same envs per iteration as k = 2");
        let odd = CompareConfig { labels: 1001, ..CompareConfig::default() };
        assert!(run_config(&odd, get("dpo-iterative"), &data, &[]).unwrap_err().contains("multiple"));
        let bad = RowSpec { set: vec!["ppo.clip=3".into()], ..get("ppo").clone() };
        assert!(run_config(&cfg, &bad, &data, &[]).unwrap_err().contains("ppo.clip"));
    }

    #[test]
    fn scratch_rows_start_random_and_need_no_labels() {
        let text = include_str!("../../experiments/swimmer_scratch.toml");
        let dir = std::env::temp_dir().join(format!("rebel-scratch-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("scratch.toml");
        std::fs::write(&file, text).unwrap();
        let shipped = include_str!("../../experiments/swimmer_compare.toml");
        let cfg: CompareConfig = load_config(shipped, Some(&file), &[]).unwrap();
        cfg.validate().unwrap();
        assert!(!cfg.needs_labels() && cfg.rows.iter().all(|r| r.start == Start::Scratch && !r.uses_labels()));
        // no labels, no reward net, nothing written
        let data = prepare_seed(&cfg, &dir.join("seed201"), 201, 1).unwrap();
        assert_eq!((data.labels, data.label_env_steps, data.prefs.as_os_str().is_empty()), (0, 0, true));
        assert!(!dir.join("seed201").exists());
        let nokl = cfg.rows.iter().find(|r| r.name == "rebel-scratch-nokl").unwrap();
        let tc = run_config(&cfg, nokl, &data, &[]).unwrap();
        assert_eq!(tc.policy.init, "", "a scratch row starts from a random policy");
        assert!(tc.eval.reference.ends_with("reference_policy.safetensors"), "the reference stays the win-rate opponent");
        assert_eq!(tc.algos.keys().collect::<Vec<_>>(), ["rebel"]);
        let r: crate::algos::rebel::RebelConfig = tc.algo_config().unwrap();
        assert_eq!(r.target_kl, 0.0);
        // a row's own search space wins over its algorithm's
        let with_kl = cfg.rows.iter().find(|r| r.name == "rebel-scratch").unwrap();
        assert!(cfg.space(with_kl).unwrap().contains_key("rebel.target_kl"));
        assert!(!cfg.space(nokl).unwrap().contains_key("rebel.target_kl"));
        let ppo = cfg.rows.iter().find(|r| r.name == "ppo-scratch").unwrap();
        assert_eq!(cfg.space(ppo), cfg.search.get("ppo"));
        // a reference row still starts from the reference policy
        let from_ref = RowSpec { start: Start::Reference, ..nokl.clone() };
        assert!(run_config(&cfg, &from_ref, &data, &[]).unwrap().policy.init.ends_with("reference_policy.safetensors"));
        // with the reference's architecture (the shipped one: [64, 64] tanh), whatever the base config says;
        // a scratch row keeps the base config's
        let mut narrow = cfg.clone();
        narrow.train.policy.hidden = vec![8];
        assert_eq!(run_config(&narrow, &from_ref, &data, &[]).unwrap().policy.hidden, vec![64, 64]);
        assert_eq!(run_config(&narrow, nokl, &data, &[]).unwrap().policy.hidden, vec![8]);
        // labels = 0 with a row that needs them is refused, naming the row
        let mut needs = cfg.clone();
        needs.rows.push(RowSpec { name: "ppo-model".into(), reward: RewardSource::Model, ..ppo.clone() });
        assert!(needs.validate().unwrap_err().contains("ppo-model needs labels"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_comparison_without_a_reference_policy_runs_scratch_rows_on_the_true_reward() {
        // the shipped HalfCheetah comparison: no reference policy, every row from scratch
        let dir = std::env::temp_dir().join(format!("rebel-noref-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hc.toml");
        std::fs::write(&file, include_str!("../../experiments/halfcheetah_compare.toml")).unwrap();
        let cfg = load_compare_config(include_str!("../../experiments/swimmer_compare.toml"), Some(&file), &[]).unwrap();
        cfg.validate().unwrap();
        cfg.check_reference_env().unwrap();
        // the file's spaces replace the shipped ones of their names whole (the shipped REBEL space's target_kl is
        // not tuned here); a space the file leaves out stays the shipped one
        let keys = |name: &str| cfg.search[name].keys().map(String::as_str).collect::<Vec<_>>();
        assert_eq!(keys("rebel"), ["rebel.eta", "rebel.lr"]);
        assert_eq!(keys("ppo-rebel-updates"), ["ppo.clip", "ppo.lr"]);
        assert_eq!(keys("dpo"), ["dpo.beta", "dpo.epochs", "dpo.lr"]);
        let merged: CompareConfig = load_config(include_str!("../../experiments/swimmer_compare.toml"), Some(&file), &[]).unwrap();
        assert!(merged.search["rebel"].contains_key("rebel.target_kl"), "layered key by key, the shipped key would stay");
        let rebel = cfg.rows.iter().find(|r| r.name == "rebel").unwrap();
        let picks = crate::protocol::candidates(&cfg.protocol, "rebel", cfg.space(rebel), &rebel.set).unwrap();
        assert!(picks.iter().all(|sets| sets.len() == 2), "{picks:?}");
        assert_eq!((cfg.reference_policy.as_str(), cfg.train.env.id.as_str()), ("", "HalfCheetah-v5"));
        let data = prepare_seed(&cfg, &dir.join("seed501"), 501, 1).unwrap();
        for row in &cfg.rows {
            let tc = run_config(&cfg, row, &data, &[]).unwrap();
            // no opponent but the run's own starting policy, and no start but a random one
            assert_eq!((tc.eval.reference.as_str(), tc.policy.init.as_str()), ("", ""), "{}", row.name);
            assert_eq!(tc.reward, RewardSource::True, "{}", row.name);
        }
        // every row gets the same policy class
        let classes: Vec<_> = cfg.rows.iter().map(|r| run_config(&cfg, r, &data, &[]).unwrap().policy).collect();
        assert!(classes.windows(2).all(|w| w[0] == w[1]), "{classes:?}");
        // a row that would need the reference is refused, naming the row and what to do
        let scratch = cfg.rows[0].clone();
        for (row, says) in [
            (RowSpec { name: "from-ref".into(), start: Start::Reference, ..scratch.clone() }, "row from-ref starts from the reference policy"),
            (RowSpec { name: "on-model".into(), reward: RewardSource::Model, ..scratch.clone() }, "row on-model needs labels"),
        ] {
            let mut c = cfg.clone();
            c.labels = 100;
            c.rows.push(row);
            let e = c.validate().unwrap_err();
            assert!(e.contains(says) && e.contains("a policy of HalfCheetah-v5") && e.contains("start = \"scratch\""), "{e}");
        }
        // the Swimmer's reference policy on the HalfCheetah is refused before anything runs
        let mut swimmer_ref = cfg.clone();
        swimmer_ref.reference_policy = "experiments/swimmer/reference_policy.safetensors".into();
        let e = swimmer_ref.check_reference_env().unwrap_err();
        assert!(e.contains("was trained on Swimmer-v5, not on HalfCheetah-v5"), "{e}");
        // and so is the Swimmer's reference on a Swimmer of other sizes (four segments, from an MJCF file)
        swimmer_ref.train.env.id = "Swimmer-v5".into();
        let four = concat!(env!("CARGO_MANIFEST_DIR"), "/../experiments/swimmer4.xml");
        swimmer_ref.train.env.options.insert("xml_file".into(), toml::Value::String(four.into()));
        let e = swimmer_ref.check_reference_env().unwrap_err();
        assert!(e.contains("is a policy of 8 observations and 2 actions, but Swimmer-v5 with the rows' options has"), "{e}");
        swimmer_ref.train.env.options.clear();
        swimmer_ref.check_reference_env().unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn every_row_from_scratch_gets_the_same_policy_knobs_and_a_second_run_fresh_seeds() {
        let first = load_file("hc.toml", include_str!("../../experiments/halfcheetah_compare.toml"));
        let wide = load_file("hc-wide.toml", include_str!("../../experiments/halfcheetah_compare_wide.toml"));
        wide.validate().unwrap();
        // every row tunes the initial log std over the same values, and only REBEL's branches are REBEL's own
        for row in &wide.rows {
            let space = wide.space(row).unwrap();
            assert_eq!(space["policy.log_std_init"], [-1.0, -0.5, 0.0].map(toml::Value::Float), "{}", row.name);
        }
        let own: Vec<&str> = wide.rows.iter().filter(|r| wide.space(r).unwrap().contains_key("rebel.branch_len")).map(|r| r.name.as_str()).collect();
        assert_eq!(own, ["rebel"]);
        assert_eq!(wide.protocol.tune_configs, 12);
        // the second run's seeds, report and tuning, and its evaluation start states meet none of the first run's
        let (a, b) = (first.seed_list(), wide.seed_list());
        let used: Vec<u64> = a.iter().chain(&first.protocol.tune_seeds).copied().collect();
        assert!(b.iter().chain(&wide.protocol.tune_seeds).all(|s| !used.contains(s)), "{b:?} {:?}", wide.protocol.tune_seeds);
        let starts = |c: &CompareConfig| [c.train.eval.seed_base, c.protocol.tune_eval_seed_base];
        for x in starts(&wide) {
            assert!(starts(&first).iter().all(|y| x.abs_diff(*y) >= wide.train.eval.episodes as u64), "{x}");
        }
        // a policy knob tuned for one row and not another is refused, naming both rows and what each does
        let mut c = wide.clone();
        c.search.get_mut("ppo").unwrap().remove("policy.log_std_init");
        let e = c.validate().unwrap_err();
        assert!(
            e.contains("rows rebel and ppo start from scratch but treat policy.log_std_init differently (tuned over [-1.0, -0.5, 0.0] against left at [train.policy]'s value)"),
            "{e}"
        );
        // so is a knob tuned over other values, and a row that fixes a knob the others do not
        let mut c = wide.clone();
        c.search.get_mut("ppo-rebel-updates").unwrap().insert("policy.log_std_init".into(), vec![toml::Value::Float(0.0)]);
        assert!(c.validate().unwrap_err().contains("tuned over [-1.0, -0.5, 0.0] against tuned over [0.0]"));
        let mut c = first.clone();
        c.rows[2].set.push("policy.hidden=[256, 256]".into());
        let e = c.validate().unwrap_err();
        assert!(e.contains("rows rebel and ppo start from scratch but treat policy.hidden differently (left at [train.policy]'s value against set to [256, 256])"), "{e}");
        // the same `set` in every row is one policy class (as TOML values: spacing aside), and rows from the reference
        // policy are not scratch rows
        for (i, r) in c.rows.iter_mut().enumerate() {
            r.set.push(if i == 1 { "policy.hidden = [256,256]" } else { "policy.hidden=[256, 256]" }.into());
        }
        c.validate().unwrap();
        let shipped: CompareConfig = load_config(include_str!("../../experiments/swimmer_compare.toml"), None, &[]).unwrap();
        shipped.validate().unwrap();
    }

    #[test]
    fn a_third_run_reaches_past_the_second_runs_edges_and_sizes_its_update_row_on_rebels_fewest_updates() {
        let first = load_file("hc.toml", include_str!("../../experiments/halfcheetah_compare.toml"));
        let wide = load_file("hc-wide.toml", include_str!("../../experiments/halfcheetah_compare_wide.toml"));
        let text = include_str!("../../experiments/halfcheetah_compare_third.toml");
        let third = load_file("hc-third.toml", text);
        third.validate().unwrap();
        let row_of = |c: &CompareConfig, name: &str| c.rows.iter().find(|r| r.name == name).cloned().unwrap();
        assert_eq!(third.rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["rebel", "rebel-episodes", "ppo", "ppo-rebel-updates"]);
        for row in &third.rows {
            assert_eq!(third.space(row).unwrap()["policy.log_std_init"], [-1.5, -1.0].map(toml::Value::Float), "{}", row.name);
        }
        assert_eq!(third.protocol.tune_configs, wide.protocol.tune_configs);
        // its seeds and evaluation start states meet none of the two earlier runs'
        let used: Vec<u64> = [&first, &wide].iter().flat_map(|c| c.seed_list().into_iter().chain(c.protocol.tune_seeds.clone())).collect();
        assert!(third.seed_list().iter().chain(&third.protocol.tune_seeds).all(|s| !used.contains(s)));
        let starts = |c: &CompareConfig| [c.train.eval.seed_base, c.protocol.tune_eval_seed_base];
        for x in starts(&third) {
            assert!([&first, &wide].iter().flat_map(|c| starts(c)).all(|y| x.abs_diff(y) >= third.train.eval.episodes as u64), "{x}");
        }
        // every value the second run picked at an edge of its space is inside the third's space, which holds a value past
        // it; the one exception is REBEL's branch length, fixed at the pick (50, the smallest) in the base configuration
        let raw: toml::Value = toml::from_str(text).unwrap();
        let rebel = &raw["train"]["rebel"];
        assert_eq!(rebel["branch_len"].as_integer(), Some(50));
        let num = |v: &toml::Value| v.as_float().or(v.as_integer().map(|i| i as f64)).unwrap();
        let tuned: Vec<crate::protocol::TuneEntry> = serde_json::from_str(include_str!("../../docs/compare-halfcheetah-wide/tuning.json")).unwrap();
        let mut edges = 0;
        for t in tuned.iter().filter(|t| t.picked) {
            let (row2, row3) = (row_of(&wide, &t.row), row_of(&third, &t.row));
            for set in &t.sets {
                let (key, value) = crate::runconfig::parse_set(set).unwrap();
                let (key, v) = (key.join("."), num(&value));
                let old: Vec<f64> = wide.space(&row2).unwrap()[&key].iter().map(num).collect();
                let (lo, hi) = (old.iter().cloned().fold(f64::MAX, f64::min), old.iter().cloned().fold(f64::MIN, f64::max));
                if v != lo && v != hi {
                    continue;
                }
                edges += 1;
                let Some(new) = third.space(&row3).unwrap().get(&key) else {
                    assert_eq!((t.row.as_str(), key.as_str()), ("rebel", "rebel.branch_len"), "{set}");
                    continue;
                };
                let new: Vec<f64> = new.iter().map(num).collect();
                assert!(new.contains(&v), "{} {set}: {new:?}", t.row);
                assert!(new.iter().any(|&x| if v == lo { x < v } else { x > v }), "{} {set}: {new:?}", t.row);
            }
        }
        assert_eq!(edges, 11);
        // One REBEL iteration's env steps on the HalfCheetah (episodes of 1,000 steps, never terminated early): each of
        // the groups·k members runs the 1,000 steps in windows of the branch length, each window but the last followed
        // by a tail of min(tail, steps left). Whole episodes (branch 0): 1,000 steps a member.
        let (groups, k, minibatches) = (rebel["groups"].as_integer().unwrap(), rebel["k"].as_integer().unwrap(), rebel["minibatches"].as_integer().unwrap());
        let iteration = |branch: i64, tail: i64| -> i64 {
            let tails: i64 = if branch == 0 { 0 } else { (1..=1000 / branch).map(|w| tail.min(1000 - w * branch)).sum() };
            groups * k * (1000 + tails)
        };
        // as the second run's summaries and a one-iteration run measured them (README)
        assert_eq!((iteration(50, 250), iteration(50, 50), iteration(0, 0)), (42_000, 15_600, 8_000));
        // the fewest Adam steps per env step any configuration of REBEL's two spaces takes ...
        let values = |row: &str, key: &str| -> Vec<i64> {
            third.space(&row_of(&third, row)).unwrap()[key].iter().map(|v| v.as_integer().unwrap()).collect()
        };
        // (no other key of REBEL's spaces changes an iteration's size or its number of Adam steps)
        for (name, keys) in [("rebel", &["policy.log_std_init", "rebel.epochs", "rebel.eta", "rebel.lr", "rebel.tail_len"][..]), ("rebel-episodes", &["policy.log_std_init", "rebel.epochs", "rebel.eta", "rebel.lr"][..])] {
            assert_eq!(third.space(&row_of(&third, name)).unwrap().keys().map(String::as_str).collect::<Vec<_>>(), keys, "{name}");
        }
        let mut fewest = f64::MAX;
        for epochs in values("rebel", "rebel.epochs") {
            for tail in values("rebel", "rebel.tail_len") {
                fewest = fewest.min((epochs * minibatches) as f64 / iteration(50, tail) as f64);
            }
        }
        for epochs in values("rebel-episodes", "rebel.epochs") {
            fewest = fewest.min((epochs * minibatches) as f64 / iteration(0, 0) as f64);
        }
        // ... is the update-count row's: epochs × (min_steps / batch) Adam steps per min_steps env steps
        let row = row_of(&third, "ppo-rebel-updates");
        let set = |key: &str| -> i64 {
            let s = row.set.iter().find(|s| s.starts_with(&format!("{key}="))).unwrap();
            crate::runconfig::parse_set(s).unwrap().1.as_integer().unwrap()
        };
        let (min_steps, batch, epochs) = (set("ppo.min_steps"), set("ppo.batch"), set("ppo.epochs"));
        assert_eq!(min_steps % batch, 0);
        assert_eq!((epochs * (min_steps / batch)) as f64 / min_steps as f64, fewest);
        assert_eq!(min_steps, iteration(50, 250));
        assert!(third.space(&row).unwrap().keys().all(|k| !["ppo.min_steps", "ppo.batch", "ppo.epochs"].contains(&k.as_str())));
    }
}
