//! The training run, the loop only: collect → score → update → log → evaluate → checkpoint, until
//! the env-step budget is spent (or the algorithm's iteration budget: offline and iterative DPO).
//!
//! `algo` names a registered [`crate::algorithm::Algorithm`] (built-ins: REBEL, PPO, REINFORCE,
//! RLOO, DPO; one file each under `algos/`); the loop, the scorer (`reward`), the evaluation
//! ([`crate::eval`]), the logs and the checkpoints are shared, so every algorithm is measured the
//! same way. Each algorithm checkpoints its own state besides the policy and its Adam, so every
//! algorithm resumes exactly. The run directory (creation, config hash, resume) is
//! [`crate::run_dir`]'s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

use rebel_envs::vec_env::VecEnv;
use rebel_envs::{ConfigValue, EnvConfig};

use crate::adam::{Adam, AdamConfig};
use crate::algorithm::{self, AlgoConfig, AlgoError, Algorithm, Batch, Collect, Ctx, Init, Update};
use crate::checkpoint::{Checkpoint, CheckpointMeta};
use crate::seeding::{train_env_seed, train_stream};
use rebel_dist::{share, Collective, SingleProcess};
use crate::eval::{evaluate, reference_returns, EvalResult};
pub use crate::eval::{load_policy, EvalSection};
use crate::logging::{write_summary, MetricsLogger};
use crate::policy::{GaussianPolicy, PolicyConfig};
use crate::mlp::Activation;
use crate::rollout::collect_groups;
use crate::machine::Machine;
use crate::run_dir::{as_recorded, settings_drift, shown_options, start_policy_note, undoing_options, Run, CHECKPOINT};
use crate::scorer::{Scorer, TrueReward};
use crate::util::{mean_std, peak_rss_mb, resolve_path};

/// The environment of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnvSection {
    /// Registry id. Default "Swimmer-v5".
    pub id: String,
    /// Constructor options, e.g. `{ reset_noise_scale = 0.1 }`.
    pub options: toml::Table,
}

impl Default for EnvSection {
    fn default() -> Self {
        EnvSection { id: "Swimmer-v5".into(), options: toml::Table::new() }
    }
}

impl EnvSection {
    /// The options as an [`EnvConfig`].
    pub fn env_config(&self) -> Result<EnvConfig, String> {
        let mut c = EnvConfig::new();
        for (k, v) in &self.options {
            let cv = match v {
                toml::Value::Float(f) => ConfigValue::Float(*f),
                toml::Value::Integer(i) => ConfigValue::Int(*i),
                toml::Value::Boolean(b) => ConfigValue::Bool(*b),
                toml::Value::String(s) => ConfigValue::Str(s.clone()),
                other => return Err(format!("env.options.{k}: unsupported value {other}")),
            };
            c.set(k, cv);
        }
        Ok(c)
    }

    /// Every setting of this environment with its value in effect, defaults included ([`rebel_envs::settings`]).
    pub fn settings(&self) -> Result<toml::Table, String> {
        let cfg = self.env_config()?;
        let s = rebel_envs::settings(&self.id, &cfg).map_err(|e| format!("env {}: {e}", self.id))?;
        Ok(options_table(&s))
    }
}

/// Environment options as a TOML table (what [`EnvSection::env_config`] reads back).
pub fn options_table(cfg: &EnvConfig) -> toml::Table {
    cfg.values()
        .iter()
        .map(|(k, v)| {
            let v = match v {
                ConfigValue::Float(f) => toml::Value::Float(*f),
                ConfigValue::Int(i) => toml::Value::Integer(*i),
                ConfigValue::Bool(b) => toml::Value::Boolean(*b),
                ConfigValue::Str(s) => toml::Value::String(s.clone()),
            };
            (k.clone(), v)
        })
        .collect()
}

/// The policy network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    /// Hidden layer widths. Default [64, 64].
    pub hidden: Vec<usize>,
    /// Initial log standard deviation. Default −0.5.
    pub log_std_init: f64,
    /// Hidden-layer nonlinearity, `"tanh"` or `"relu"`. Default tanh.
    pub activation: Activation,
    /// Orthogonal initialisation (default) or, when false, PyTorch's `nn.Linear` default (SB3's `ortho_init`).
    pub ortho_init: bool,
    /// The policy standardises its input with running statistics it holds (SB3's `VecNormalize`); only an
    /// algorithm that updates them (PPO) can train such a policy from scratch. Default false.
    pub normalize_obs: bool,
    /// Start from this checkpoint's policy instead of a random one ("" = random).
    pub init: String,
}

impl Default for PolicySection {
    fn default() -> Self {
        // the policy's own defaults (PolicyConfig::new), in one place
        let d = PolicyConfig::new(1, 1);
        PolicySection {
            hidden: d.hidden,
            log_std_init: d.log_std_init,
            activation: d.activation,
            ortho_init: d.ortho_init,
            normalize_obs: d.normalize_obs,
            init: String::new(),
        }
    }
}

impl PolicySection {
    /// The policy's configuration for an environment's sizes.
    pub fn policy_config(&self, obs_dim: usize, act_dim: usize) -> PolicyConfig {
        PolicyConfig {
            obs_dim,
            act_dim,
            hidden: self.hidden.clone(),
            log_std_init: self.log_std_init,
            activation: self.activation,
            ortho_init: self.ortho_init,
            normalize_obs: self.normalize_obs,
        }
    }

    /// Takes the architecture (hidden sizes, activation, normalisation) of `stored`, the config of the
    /// checkpoint the policy starts from.
    pub fn adopt_architecture(&mut self, stored: &PolicyConfig) {
        self.hidden = stored.hidden.clone();
        self.activation = stored.activation;
        self.normalize_obs = stored.normalize_obs;
    }
}

/// What scores trajectories.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RewardSource {
    /// The environment's reward.
    #[default]
    True,
    /// The reward ensemble in `reward_model` (written by `rm train`).
    Model,
}

/// A whole training run. Besides the keys below, the table `[NAME]` of the chosen algorithm holds
/// its hyperparameters (`[rebel]`, `[ppo]`, …); sections of other registered algorithms are allowed
/// (a shared base configuration) and dropped by [`TrainConfig::resolve`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Algorithm: a registered name (built-ins "rebel", "ppo", "reinforce", "rloo", "dpo"). Default "rebel".
    pub algo: String,
    /// What scores trajectories: "true" or "model".
    pub reward: RewardSource,
    /// Reward model file (written by `rm train`) used when `reward = "model"`.
    pub reward_model: String,
    /// With `reward = "model"`: score steps by the members' mean minus this times their standard
    /// deviation, so that the policy is not paid for going where the ensemble disagrees. Default 0.
    pub reward_pessimism: f64,
    /// Master seed. Default 1.
    pub seed: u64,
    /// Environment-step budget. Default 3_000_000.
    pub env_steps: u64,
    /// Worker threads for the environments. Default 2.
    pub threads: usize,
    /// libtorch threads of the learner (its batches are small: more threads mostly contend with
    /// the environment workers). Default 1.
    pub learner_threads: usize,
    /// "cpu", "cuda", "cuda:N" or "auto". Default "cpu".
    pub device: String,
    /// The environment.
    pub env: EnvSection,
    /// The policy.
    pub policy: PolicySection,
    /// Evaluation.
    pub eval: EvalSection,
    /// The algorithm sections by name.
    #[serde(flatten)]
    pub algos: BTreeMap<String, toml::Value>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            algo: "rebel".into(),
            reward: RewardSource::True,
            reward_model: String::new(),
            reward_pessimism: 0.0,
            seed: 1,
            env_steps: 3_000_000,
            threads: 2,
            learner_threads: 1,
            device: "cpu".into(),
            env: EnvSection::default(),
            policy: PolicySection::default(),
            eval: EvalSection::default(),
            algos: BTreeMap::new(),
        }
    }
}

const KEYS: [&str; 12] =
    ["algo", "reward", "reward_model", "reward_pessimism", "seed", "env_steps", "threads", "learner_threads", "device", "env", "policy", "eval"];

impl TrainConfig {
    /// The configuration as run: every value checked, and of the algorithm sections only `algo`'s,
    /// complete with its defaults (what `config.toml` holds).
    pub fn resolve(&self) -> Result<TrainConfig, String> {
        if !algorithm::is_registered(&self.algo) {
            let valid: Vec<String> = algorithm::names().iter().map(|a| format!("{a:?}")).collect();
            return Err(format!("algo = {:?} is not known; valid: {}", self.algo, valid.join(", ")));
        }
        let mut out = TrainConfig { algos: BTreeMap::new(), ..self.clone() };
        for (name, section) in &self.algos {
            let Some(table) = section.as_table().filter(|_| algorithm::is_registered(name)) else {
                return Err(format!(
                    "unknown key `{name}`: valid keys are {} and the algorithm sections {}",
                    KEYS.join(", "),
                    algorithm::names().join(", ")
                ));
            };
            let resolved = algorithm::resolve_section(name, table, *name == self.algo)?;
            if *name == self.algo {
                out.algos.insert(name.clone(), toml::Value::Table(resolved));
            }
        }
        if !out.algos.contains_key(&self.algo) {
            out.algos.insert(self.algo.clone(), toml::Value::Table(algorithm::resolve_section(&self.algo, &toml::Table::new(), true)?));
        }
        match self.reward {
            RewardSource::Model if self.reward_model.is_empty() => {
                return Err("reward = \"model\" needs reward_model = \"<file written by rm train>\"".into())
            }
            _ => {}
        }
        if self.policy.hidden.contains(&0) {
            return Err(format!("policy.hidden widths must be ≥ 1, got {:?}", self.policy.hidden));
        }
        crate::policy::check_log_std_init(self.policy.log_std_init).map_err(|e| format!("policy.{}", e.trim_start_matches("policy ")))?;
        if !self.reward_pessimism.is_finite() {
            return Err(format!(
                "reward_pessimism must be a finite number (scores are mean − reward_pessimism·std over the reward model's members; 0: the mean), got {}",
                self.reward_pessimism
            ));
        }
        if self.threads == 0 || self.env_steps == 0 || self.eval.episodes == 0 || self.eval.every_iters == 0 {
            return Err("threads, env_steps, eval.episodes and eval.every_iters must be ≥ 1".into());
        }
        Ok(out)
    }

    /// Checks values that serde cannot (see [`TrainConfig::resolve`]).
    pub fn validate(&self) -> Result<(), String> {
        self.resolve().map(|_| ())
    }

    /// The section of algorithm `C` (its defaults where absent).
    pub fn algo_config<C: AlgoConfig>(&self) -> Result<C, String> {
        match self.algos.get(C::NAME) {
            Some(toml::Value::Table(t)) => algorithm::parse_section(t),
            Some(_) => Err(format!("`{}` must be a table", C::NAME)),
            None => Ok(C::default()),
        }
    }

    /// Chooses algorithm `C` with configuration `c`.
    pub fn set_algo<C: AlgoConfig>(&mut self, c: &C) {
        self.algo = C::NAME.into();
        self.algos.insert(C::NAME.into(), toml::Value::Table(algorithm::to_section(c)));
    }

    fn algo_section(&self) -> toml::Table {
        self.algos.get(&self.algo).and_then(|v| v.as_table()).cloned().unwrap_or_default()
    }
}

/// Errors of a run, with what to do.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Invalid configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// Environment failure.
    #[error("environment: {0}")]
    Env(#[from] rebel_envs::EnvError),
    /// Logging / run directory failure.
    #[error("run directory: {0}")]
    Log(#[from] crate::logging::LogError),
    /// Checkpoint failure.
    #[error("{0}")]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// A non-finite loss or gradient: the run stopped, the last good checkpoint is kept.
    #[error("training diverged at iteration {iteration}: {msg}. The last good checkpoint ({checkpoint}) is kept; resume from it with other hyperparameters")]
    Diverged { iteration: u64, msg: String, checkpoint: String },
    /// A result file (a table, a picture) could not be written.
    #[error("{0}")]
    Output(String),
    /// A collective of a data-parallel run failed (a rank left, the ranks diverged).
    #[error("data-parallel training: {0}")]
    Dist(#[from] rebel_dist::DistError),
    /// Resuming with a configuration that differs from the run's.
    #[error("cannot resume {run}: the configuration differs from the run's config.toml in {keys}; resume without --config/--set (or with the same values), or start a new run")]
    ResumeMismatch { run: String, keys: String },
}

impl From<AlgoError> for TrainError {
    fn from(e: AlgoError) -> Self {
        match e {
            AlgoError::Diverged(msg) | AlgoError::Failed(msg) => TrainError::Config(msg),
            AlgoError::Checkpoint(e) => TrainError::Checkpoint(e),
        }
    }
}

/// What a finished run reports (also written to `summary.json`; a number that is not defined, such as the learner's
/// time of a resumed run that had no iteration left, is written as null and read back as NaN).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub algo: String,
    pub env: String,
    pub seed: u64,
    pub env_steps: u64,
    pub labels_used: u64,
    #[serde(deserialize_with = "crate::util::f64_or_null")]
    pub wall_time_s: f64,
    #[serde(deserialize_with = "crate::util::f64_or_null")]
    pub eval_true_return_mean: f64,
    #[serde(deserialize_with = "crate::util::f64_or_null")]
    pub eval_true_return_std: f64,
    pub eval_episodes: usize,
    /// With `eval.stochastic`; null otherwise.
    pub eval_stochastic_return_mean: Option<f64>,
    #[serde(deserialize_with = "crate::util::f64_or_null")]
    pub win_rate: f64,
    #[serde(deserialize_with = "crate::util::f64_or_null")]
    pub initial_eval_true_return_mean: f64,
    /// The reference policy's eval true return under the same protocol (the win-rate opponent).
    #[serde(deserialize_with = "crate::util::f64_or_null")]
    pub reference_eval_true_return_mean: f64,
    pub iterations: u64,
    /// Mean seconds of the learner (scoring + update, not collection or evaluation) per iteration
    /// of this process.
    #[serde(deserialize_with = "crate::util::f64_or_null")]
    pub learner_s_per_iter: f64,
    /// `learner_s_per_iter × iterations`: the learner's seconds over the whole run (estimated from
    /// this process's mean for a resumed run).
    #[serde(deserialize_with = "crate::util::f64_or_null")]
    pub learner_s_total: f64,
    /// Peak resident memory of the process (VmHWM), MiB; NaN where /proc is unavailable.
    #[serde(deserialize_with = "crate::util::f64_or_null")]
    pub peak_rss_mb: f64,
    /// Peak RSS above the level once libtorch, the environments and the nets were up (MiB): the
    /// memory that training itself (rollout buffers, the learner's tensors) added.
    #[serde(deserialize_with = "crate::util::f64_or_null")]
    pub learner_mem_mb: f64,
    /// The most the resident memory rose during one learner phase (the batch's tensors, scoring and the
    /// update) above its level just before it, over this process's iterations (MiB): the learner's own
    /// memory, without the rollout's. None unless `REBEL_LEARNER_MEMORY=1` (see
    /// [`crate::util::learner_memory_measured`]) and the kernel lets a process reset its peak.
    #[serde(default)]
    pub learner_update_mem_mb: Option<f64>,
    /// The same over the learner phases after this process's first (which holds libtorch's one-time
    /// setup), MiB: the learner's memory in steady state (None: no later phase measured).
    #[serde(default)]
    pub learner_update_mem_later_mb: Option<f64>,
    /// The most bytes the learner's allocations held at once in one learner phase, above what they held just before
    /// it, over this process's iterations (MiB; [`crate::util::AllocWindow`]): the learner's memory as the allocator
    /// counts it, on the learner's thread (all of it with one libtorch thread), without what the allocator kept from the
    /// rollout. None unless `REBEL_LEARNER_MEMORY=1`, libtorch runs on one thread (`learner_threads = 1`; with more,
    /// the other threads' allocations would go uncounted) and the binary's allocator counts (ours: jemalloc).
    #[serde(default)]
    pub learner_update_alloc_mb: Option<f64>,
    /// The same over the learner phases after this process's first (MiB).
    #[serde(default)]
    pub learner_update_alloc_later_mb: Option<f64>,
    pub run_dir: String,
    /// The machines the run ran on ([`crate::machine`]; from the env steps where each took over). Empty in
    /// summaries written before they were recorded.
    #[serde(default)]
    pub machines: Vec<crate::machine::MachinePart>,
}

/// Options of [`train`] that are not part of the configuration.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Base folder of new run directories (`runs`).
    pub runs_base: PathBuf,
    /// Use exactly this run directory (created if missing).
    pub run_dir: Option<PathBuf>,
    /// Continue the run in this directory.
    pub resume: Option<PathBuf>,
    /// Show a progress bar.
    pub progress: bool,
    /// Stop as soon as an evaluation's mean true return reaches this (used by `pretrain`).
    pub stop_at_eval: Option<f64>,
    /// The caller already said how `policy.init`'s environment differs from the run's ([`start_policy_note`]).
    pub start_policy_noted: bool,
}

/// Everything a run holds besides its directory.
struct Parts {
    venv: VecEnv,
    eval_env: VecEnv,
    policy: GaussianPolicy,
    reference: GaussianPolicy,
    /// The reference's mean-action returns on the evaluation seeds (computed once per run).
    reference_returns: Option<Vec<f64>>,
    adam: Adam,
    scorer: Box<dyn Scorer>,
    algo: Box<dyn Algorithm>,
    device: Device,
    /// Resident memory once everything above was built (MiB).
    rss_start_mb: f64,
    /// The largest rise of resident memory in one learner phase (MiB).
    learner_rise_mb: PhasePeaks,
    /// The most bytes the learner's allocations held in one learner phase (MiB).
    learner_alloc_mb: PhasePeaks,
}

/// The largest rise of resident memory in one learner phase: in the process's first phase (which holds
/// libtorch's one-time setup: its thread pools, the first autograd graph, Adam's state) and in the later
/// ones (None: none measured).
#[derive(Clone, Copy, Debug, Default)]
struct PhasePeaks {
    first: Option<f64>,
    later: Option<f64>,
}

impl PhasePeaks {
    fn record(&mut self, rise: f64) {
        if self.first.is_none() {
            self.first = Some(rise);
        } else {
            self.later = Some(self.later.map_or(rise, |l| l.max(rise)));
        }
    }

    fn all(&self) -> Option<f64> {
        // `later` is only set once `first` is
        self.first.map(|f| self.later.map_or(f, |l| f.max(l)))
    }
}

/// Counters of a run (checkpointed).
#[derive(Clone, Copy, Debug)]
struct Progress {
    iteration: u64,
    env_steps: u64,
    initial_eval: f64,
}

impl Parts {
    /// `note_init`: say, on rank 0, how the environment `policy.init`'s checkpoint was trained in differs from the
    /// run's ([`start_policy_note`]).
    fn new(cfg: &TrainConfig, device: Device, world: &dyn Collective, note_init: bool) -> Result<Parts, TrainError> {
        let config = |e: String| TrainError::Config(e);
        let env_cfg = cfg.env.env_config().map_err(config)?;
        let eval_env = VecEnv::make(&cfg.env.id, &env_cfg, cfg.eval.episodes.min(16), cfg.threads)?;
        let (obs_dim, act_dim) = (eval_env.obs_dim(), eval_env.act_dim());
        let pcfg = cfg.policy.policy_config(obs_dim, act_dim);
        let mut policy = GaussianPolicy::new(pcfg, device, Kind::Float, cfg.seed);
        let mut init_note = None;
        if !cfg.policy.init.is_empty() {
            let path = resolve_path(&cfg.policy.init);
            let init = Checkpoint::load(&path)?;
            init.restore_policy("policy", &mut policy)?;
            init_note = (note_init && world.is_root()).then(|| start_policy_note(&init.meta, &path, &cfg.env)).flatten();
        }
        let initial = policy.try_clone().map_err(|e| config(e.to_string()))?;
        let init = Init { env_id: &cfg.env.id, obs_dim, act_dim, device, seed: cfg.seed, initial: &initial };
        let algo = algorithm::make_algorithm(&cfg.algo, &cfg.algo_section(), &init).map_err(config)?;
        check_data_parallel(cfg, algo.as_ref(), world)?;
        if cfg.policy.normalize_obs && cfg.policy.init.is_empty() && !algo.updates_obs_norm() {
            // the algorithm's own switch, where its section has one (rebel, rloo, reinforce)
            let switch = algorithm::resolve_section(&cfg.algo, &cfg.algo_section(), false).is_ok_and(|s| s.contains_key("normalize_obs"));
            let start = if switch {
                format!("Set {}.normalize_obs = true, start", cfg.algo)
            } else {
                "Start".to_string()
            };
            return Err(config(format!(
                "policy.normalize_obs = true on a new policy needs an algorithm that updates its observation statistics \
                 (ppo; rebel, rloo or reinforce with their normalize_obs = true); {} as set would keep them at mean 0, \
                 variance 1. {start} from a policy that has statistics (policy.init), or set policy.normalize_obs = false",
                cfg.algo
            )));
        }
        // an offline algorithm collects nothing; its env is never stepped. A rank steps its share of the groups.
        let envs = match algo.collect() {
            Collect::Segments { groups, spec } => share(groups, world.rank(), world.size()).count() * spec.k,
            other => other.num_envs(),
        };
        let venv = VecEnv::make(&cfg.env.id, &env_cfg, envs.max(1), cfg.threads)?;
        let reference = if cfg.eval.reference.is_empty() { initial } else { load_reference(cfg, obs_dim, act_dim, device)? };
        let adam = Adam::new(policy.named_parameters(), AdamConfig { lr: algo.lr(), ..AdamConfig::default() });
        let scorer = make_scorer(cfg, obs_dim, act_dim)?;
        // the memory floor (libtorch, the environments and the nets), against which the learner's is measured
        let rss_start_mb = crate::util::current_rss_mb();
        // said once the parts are built, as a run that is refused says nothing of its start
        if let Some(note) = init_note {
            eprintln!("{note}");
        }
        Ok(Parts { venv, eval_env, policy, reference, reference_returns: None, adam, scorer, algo, device, rss_start_mb, learner_rise_mb: PhasePeaks::default(), learner_alloc_mb: PhasePeaks::default() })
    }

    fn save(&self, run: &Run, p: Progress) -> Result<(), TrainError> {
        let ck = self.checkpoint(run, p)?;
        ck.save(run.dir.path().join(CHECKPOINT))?;
        Ok(())
    }

    fn checkpoint(&self, run: &Run, p: Progress) -> Result<Checkpoint, TrainError> {
        let mut ck = run.new_checkpoint();
        ck.meta.counters.insert("iteration".into(), p.iteration);
        ck.meta.counters.insert("env_steps".into(), p.env_steps);
        ck.meta.extra = serde_json::json!({ "initial_eval": p.initial_eval });
        ck.add_policy("policy", &self.policy)?;
        ck.add_adam("adam", &self.adam)?;
        self.algo.save(&mut ck)?;
        Ok(ck)
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<Progress, TrainError> {
        ck.restore_policy("policy", &mut self.policy)?;
        ck.restore_adam("adam", &mut self.adam)?;
        self.algo.restore(ck)?;
        let counter = |k: &str| ck.meta.counters.get(k).copied().unwrap_or(0);
        let initial_eval = ck.meta.extra.get("initial_eval").and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        Ok(Progress { iteration: counter("iteration"), env_steps: counter("env_steps"), initial_eval })
    }

    fn evaluate(&mut self, cfg: &TrainConfig) -> Result<EvalResult, TrainError> {
        let mut reference_steps = 0;
        if self.reference_returns.is_none() {
            let (returns, steps) = crate::rollout::run_episodes(&mut self.eval_env, &self.reference, &cfg.eval.seeds(), None)?;
            (self.reference_returns, reference_steps) = (Some(returns), steps);
        }
        let reference = self.reference_returns.as_deref().expect("just computed");
        let mut e = evaluate(&mut self.eval_env, &self.policy, reference, &cfg.eval, cfg.seed)?;
        e.env_steps += reference_steps;
        Ok(e)
    }

    /// Whether the budget is spent.
    fn finished(&self, cfg: &TrainConfig, p: Progress) -> bool {
        match self.algo.iterations() {
            Some(n) => p.iteration >= n,
            None => p.env_steps >= cfg.env_steps,
        }
    }

    /// One iteration: collect (unless the algorithm brings its data), then the update. `p`: the run's counters
    /// with this iteration's number, its env steps those done before it (the algorithm's `progress`).
    /// Returns the update, the env steps spent, the returns of the episodes that ended, the true
    /// returns of the scored segments and the learner's seconds.
    /// Under data parallelism, this rank collects its share of the groups (round robin, so the ranks together
    /// start from the start states of a one-process run) with its own action stream.
    fn iterate(&mut self, cfg: &TrainConfig, p: Progress, world: &dyn Collective) -> Result<(Update, Vec<f64>, f64), AlgoError> {
        let iteration = p.iteration;
        let mut rng = train_stream(cfg.seed, world.rank(), iteration);
        let batch = match self.algo.collect() {
            Collect::Segments { groups, spec } => {
                // round r takes the start states r·groups … r·groups + groups − 1 (round 0: those of one round)
                let mut collect_round = |round: usize| {
                    let seeds: Vec<u64> = share(groups, world.rank(), world.size())
                        .map(|g| train_env_seed(cfg.seed, iteration, (round * groups + g) as u64))
                        .collect();
                    collect_groups(&mut self.venv, &self.policy, &seeds, spec, &mut rng)
                        .map_err(|e| AlgoError::Failed(format!("environment: {e}")))
                };
                let mut batch = collect_round(0)?;
                let mut round = 1;
                while (batch.env_steps as usize) < self.algo.min_steps() {
                    batch = batch.append(collect_round(round)?);
                    round += 1;
                }
                Some(batch)
            }
            Collect::Own { .. } | Collect::Offline => None,
        };
        let measured = crate::util::learner_memory_measured();
        let window = if measured { crate::util::PeakWindow::open() } else { None };
        // the allocator counts the learner's thread, which does all of libtorch's work only with one libtorch thread
        let alloc_window = if measured && tch::get_num_threads() == 1 { crate::util::AllocWindow::open() } else { None };
        let t_learn = Instant::now();
        let batch = batch.map(|segments| Batch { tensors: segments.to_tensors(self.device), segments });
        let mut ctx = Ctx {
            policy: &self.policy,
            adam: &mut self.adam,
            reference: &self.reference,
            scorer: self.scorer.as_ref(),
            venv: &mut self.venv,
            device: self.device,
            seed: cfg.seed,
            iteration,
            progress: (p.env_steps as f64 / cfg.env_steps as f64).min(1.0),
            rng: &mut rng,
            world,
        };
        let mut up = self.algo.update(&mut ctx, batch.as_ref())?;
        let learn_s = t_learn.elapsed().as_secs_f64() - up.collect_s;
        if let Some(w) = window {
            self.learner_rise_mb.record(w.rise_mb());
        }
        if let Some(w) = alloc_window {
            self.learner_alloc_mb.record(w.peak_mb());
        }
        let mut episodes = Vec::new();
        if let Some(b) = batch {
            up.env_steps = b.segments.env_steps;
            up.segment_true = b.segments.true_returns();
            episodes = b.segments.episode_returns;
        }
        Ok((up, episodes, learn_s))
    }
}

/// The win-rate opponent `eval.reference`, refused (not run) when it acts in another space than the environment's.
fn load_reference(cfg: &TrainConfig, obs_dim: usize, act_dim: usize, device: Device) -> Result<GaussianPolicy, TrainError> {
    let path = resolve_path(&cfg.eval.reference);
    let (reference, meta) = crate::eval::load_policy_and_meta(&path, device)?;
    if reference.obs_dim() != obs_dim || reference.act_dim() != act_dim {
        let trained = if meta.env_id.is_empty() { String::new() } else { format!(", trained on {}", meta.env_id) };
        return Err(TrainError::Config(format!(
            "eval.reference {} is a policy of {} observations and {} actions{trained}, but {} has {obs_dim} and {act_dim}: \
             give eval.reference a policy of this environment, or leave it empty (the run's starting policy is then the \
             win-rate opponent)",
            path.display(),
            reference.obs_dim(),
            reference.act_dim(),
            cfg.env.id
        )));
    }
    Ok(reference)
}

fn make_scorer(cfg: &TrainConfig, obs_dim: usize, act_dim: usize) -> Result<Box<dyn Scorer>, TrainError> {
    Ok(match cfg.reward {
        RewardSource::True => Box::new(TrueReward),
        RewardSource::Model => {
            let path = resolve_path(&cfg.reward_model);
            let (model, env_id) = crate::reward_model::RewardEnsemble::load(&path)
                .map_err(|e| TrainError::Config(format!("reward_model: {e}")))?;
            if env_id != cfg.env.id || model.obs_dim() != obs_dim || model.act_dim() != act_dim {
                return Err(TrainError::Config(format!(
                    "reward model {} was trained on {env_id} ({} obs, {} act), not on {} ({obs_dim} obs, {act_dim} act)",
                    path.display(), model.obs_dim(), model.act_dim(), cfg.env.id
                )));
            }
            Box::new(model.with_pessimism(cfg.reward_pessimism))
        }
    })
}

/// The scalars of one iteration (before evaluation).
fn iteration_scalars(iteration: u64, up: &Update, episodes: &[f64], iter_s: f64, learn_s: f64) -> Vec<(&'static str, f64)> {
    let mut scalars = vec![
        ("charts/iteration", iteration as f64),
        ("charts/env_steps_per_sec", up.env_steps as f64 / iter_s),
        ("charts/learner_s_per_iter", learn_s),
    ];
    if !episodes.is_empty() {
        scalars.push(("charts/episode_return", mean_std(episodes).0));
    }
    if !up.segment_true.is_empty() {
        scalars.push(("charts/segment_true_return", mean_std(&up.segment_true).0));
        // the scorer's view of the same segments: diverging from the true return = reward hacking
        scalars.push(("charts/segment_score", up.segment_score));
    }
    scalars.extend(up.stats.iter().copied());
    scalars
}

fn eval_scalars(e: &EvalResult) -> Vec<(&'static str, f64)> {
    let mut v = vec![("eval/true_return", e.mean), ("eval/true_return_std", e.std)];
    if let Some(m) = e.stochastic_mean {
        v.push(("eval/stochastic_return", m));
    }
    v.push(("eval/win_rate", e.win_rate));
    v.push(("eval/env_steps", e.env_steps as f64));
    v
}

/// Runs (or resumes) training with `cfg` and returns its summary.
pub fn train(cfg: &TrainConfig, opts: &RunOptions) -> Result<Summary, TrainError> {
    train_in(cfg, opts, &SingleProcess)
}

/// [`train`] on one rank of `world` (data-parallel training when it has more than one): every rank collects
/// its share of each iteration's groups and the update averages the gradients over the ranks; rank 0 alone
/// opens the run directory, evaluates, logs and checkpoints, and sends its state (a new run's initial policy,
/// or the checkpoint it resumes) to the others before the first iteration; the policies are checked equal
/// every `eval.every_iters` iterations. Every rank returns rank 0's summary.
pub fn train_in(cfg: &TrainConfig, opts: &RunOptions, world: &dyn Collective) -> Result<Summary, TrainError> {
    let cfg = &cfg.resolve().map_err(TrainError::Config)?;
    let device = crate::device::parse_device(&cfg.device).map_err(|e| TrainError::Config(e.to_string()))?;
    tch::set_num_threads(cfg.learner_threads.max(1) as i32);
    if world.size() > 1 {
        let text = crate::runconfig::to_toml_string(cfg).map_err(|e| TrainError::Config(e.to_string()))?;
        world.check_equal("the resolved configuration (start every rank with the same command)", text.as_bytes())?;
    }
    // the configuration as written (its hash is what a resume must match) and the one the run steps in
    let (env, loaded) = env_as_started(cfg, opts, world)?;
    let (written, cfg) = (cfg, &TrainConfig { env, ..cfg.clone() });
    let note_init = opts.resume.is_none() && !opts.start_policy_noted;
    let mut parts = agree(world, Parts::new(cfg, device, world, note_init))?;
    // said once the parts are built, as the starting policy's note is: a run that is refused says nothing of its start
    if opts.resume.is_none() && world.is_root() {
        crate::run_dir::note_given_without_effect(&cfg.env.id, &cfg.env.env_config().map_err(TrainError::Config)?);
    }
    let opened = if world.is_root() {
        Run::open(written, opts, loaded).and_then(|(mut run, resumed)| {
            run.env_settings = cfg.env.settings().map_err(TrainError::Config)?;
            run.env_revision = rebel_envs::dynamics_revision(&cfg.env.id).ok();
            Ok(Some((run, resumed)))
        })
    } else {
        Ok(None)
    };
    let opened = agree(world, opened)?;
    let ranks = rank_machines(world)?;
    let root = opened.map(|(run, resumed)| RootRun::start(cfg, opts, &mut parts, run, resumed, &ranks)).transpose();
    let mut root = agree(world, root)?;
    let mut p = share_state(world, &mut parts, root.as_ref())?;
    let checkpoint = match &root {
        Some(r) => r.run.dir.path().join(CHECKPOINT).display().to_string(),
        None => format!("rank 0's {CHECKPOINT}"),
    };
    let (mut learn_total_s, mut learn_iters) = (0.0f64, 0u64);
    while !parts.finished(cfg, p) {
        p.iteration += 1;
        let t_iter = Instant::now();
        let (mut up, mut episodes, learn_s) = parts.iterate(cfg, p, world).map_err(|e| match e {
            AlgoError::Diverged(msg) => TrainError::Diverged { iteration: p.iteration, msg, checkpoint: checkpoint.clone() },
            other => other.into(),
        })?;
        merge_ranks(world, &mut up, &mut episodes)?;
        p.env_steps += up.env_steps;
        (learn_total_s, learn_iters) = (learn_total_s + learn_s, learn_iters + 1);
        let mut stop = false;
        if let Some(r) = root.as_mut() {
            stop = r.after_iteration(cfg, opts, &mut parts, p, (&up, &episodes), t_iter.elapsed().as_secs_f64(), learn_s)?;
        }
        if world.size() > 1 {
            let mut flag = vec![stop as u8];
            world.broadcast(0, &mut flag)?;
            stop = flag.first() == Some(&1);
            if p.iteration % cfg.eval.every_iters as u64 == 0 || stop || parts.finished(cfg, p) {
                world.check_equal("the policy (its parameters and observation statistics)", &policy_bytes(&parts.policy))?;
            }
        }
        if stop {
            break;
        }
    }
    let learner_s_per_iter = if learn_iters > 0 { learn_total_s / learn_iters as f64 } else { f64::NAN };
    let mut summary_json = match root {
        Some(r) => {
            let s = r.finish(cfg, &mut parts, p, learner_s_per_iter)?;
            serde_json::to_vec(&s).expect("summary serialises")
        }
        None => Vec::new(),
    };
    world.broadcast(0, &mut summary_json)?;
    serde_json::from_slice(&summary_json).map_err(|e| TrainError::Output(format!("rank 0's summary does not parse: {e}")))
}

/// The environment a run steps in: its configuration's, except that a resumed run whose checkpoint recorded its
/// environment's settings keeps those whose default has changed since (a newer build), so that it goes on in the
/// environment it started in, and says so. Rank 0 reads the checkpoint, tells the other ranks, and returns it
/// (to [`Run::open`], which then does not read it again).
fn env_as_started(cfg: &TrainConfig, opts: &RunOptions, world: &dyn Collective) -> Result<(EnvSection, Option<Checkpoint>), TrainError> {
    let mut env = cfg.env.clone();
    let recorded = || -> Result<(Option<toml::Table>, Option<Checkpoint>), TrainError> {
        let path = match &opts.resume {
            Some(dir) if dir.join(CHECKPOINT).exists() => dir.join(CHECKPOINT),
            _ => return Ok((None, None)),
        };
        let ck = Checkpoint::load(&path)?;
        Ok((settings_as_started(&env, &ck.meta, &path)?, Some(ck)))
    };
    let (mine, loaded) = match world.is_root().then(recorded).transpose() {
        Ok(Some((options, ck))) => (Ok(options), ck),
        Ok(None) => (Ok(None), None),
        Err(e) => (Err(e), None),
    };
    let mut bytes = agree(world, mine)?.map(|t| toml::to_string(&t).expect("a table of values serialises")).unwrap_or_default().into_bytes();
    if world.size() > 1 {
        world.broadcast(0, &mut bytes)?;
    }
    if !bytes.is_empty() {
        let text = String::from_utf8_lossy(&bytes);
        env.options = text.parse().map_err(|e| TrainError::Config(format!("rank 0's environment options do not parse: {e}")))?;
    }
    Ok((env, loaded))
}

/// The options a run resumed from the checkpoint at `path` (its `meta`) steps in where they differ from `env`'s
/// (the options that undo the changes of its dynamics since the revision it started on, and defaults changed since,
/// kept as recorded; each said), or `None`; notes other dynamics.
fn settings_as_started(env: &EnvSection, meta: &CheckpointMeta, path: &std::path::Path) -> Result<Option<toml::Table>, TrainError> {
    if let Some(note) = crate::run_dir::dynamics_note(meta, &env.id) {
        eprintln!("note: {} resumes on other dynamics: {note}", path.display());
    }
    // a run of an earlier revision of the dynamics goes on as it started where options undo the changes since
    let undo = undoing_options(meta, &env.id, |k| env.options.contains_key(k));
    let mut env = env.clone();
    let undone = !undo.values().is_empty();
    if undone {
        eprintln!(
            "{} resumes {} as revision {} of its dynamics stepped, the one it started on: {} (set the key in env.options to override)",
            path.display(),
            env.id,
            meta.env_revision.unwrap_or(0),
            shown_options(&undo)
        );
        env.options.extend(options_table(&undo));
    }
    if meta.env_id != env.id || meta.env_settings.is_empty() {
        return Ok(undone.then_some(env.options));
    }
    let drift = settings_drift(&meta.env_settings, &env.settings().map_err(TrainError::Config)?, &env.options);
    if drift.is_empty() {
        return Ok(undone.then_some(env.options));
    }
    let shown: Vec<String> = drift.iter().map(|d| d.to_string()).collect();
    eprintln!("{} resumes {} with the settings it started with: {}", path.display(), env.id, shown.join(", "));
    let options = as_recorded(&env.options, &drift);
    EnvSection { id: env.id.clone(), options: options.clone() }.settings().map_err(|e| {
        TrainError::Config(format!(
            "{}: the settings it records do not make {} in this build: {e}; set the key named in env.options",
            path.display(),
            env.id
        ))
    })?;
    Ok(Some(options))
}

/// What only rank 0 holds: the run directory, its logs, the progress bar and the evaluation state.
struct RootRun {
    run: Run,
    log: MetricsLogger,
    bar: Option<indicatif::ProgressBar>,
    reference_eval: f64,
    last_eval: Option<EvalResult>,
    progress: Progress,
    t_start: Instant,
    steps_at_start: u64,
}

impl RootRun {
    /// Resumes the checkpoint, or starts a new run with its initial evaluation and checkpoint.
    /// `ranks`: the machine of each rank, rank 0's first.
    fn start(cfg: &TrainConfig, opts: &RunOptions, parts: &mut Parts, run: Run, resumed: Option<Checkpoint>, ranks: &[Machine]) -> Result<RootRun, TrainError> {
        let offline = parts.algo.collect() == Collect::Offline;
        let mut run = run;
        let (log, p) = match &resumed {
            Some(ck) => {
                let p = parts.restore(ck)?;
                record_machines(&mut run, &ck.meta.machines, p.env_steps, ranks);
                // an offline algorithm logs against its iteration (it spends no env steps)
                let log = MetricsLogger::open_at(&run.dir, Some(if offline { p.iteration } else { p.env_steps }))?;
                eprintln!("resuming {} at iteration {}, {} env steps", run.dir.path().display(), p.iteration, p.env_steps);
                (log, p)
            }
            None => {
                record_machines(&mut run, &[], 0, ranks);
                let mut log = MetricsLogger::open(&run.dir)?;
                log.log_config(&run.toml_text)?;
                let e = parts.evaluate(cfg)?;
                log.log(0, &eval_scalars(&e))?;
                let p = Progress { iteration: 0, env_steps: 0, initial_eval: e.mean };
                parts.save(&run, p)?;
                (log, p)
            }
        };
        if parts.reference_returns.is_none() {
            parts.reference_returns = Some(reference_returns(&mut parts.eval_env, &parts.reference, &cfg.eval)?);
        }
        let reference_eval = mean_std(parts.reference_returns.as_deref().expect("just computed")).0;
        let bar = opts.progress.then(|| progress_bar(cfg.env_steps, p.env_steps));
        Ok(RootRun { run, log, bar, reference_eval, last_eval: None, progress: p, t_start: Instant::now(), steps_at_start: p.env_steps })
    }

    /// Logs an iteration, evaluates when due, checkpoints; returns whether to stop early (`stop_at_eval`).
    #[allow(clippy::too_many_arguments)]
    fn after_iteration(
        &mut self,
        cfg: &TrainConfig,
        opts: &RunOptions,
        parts: &mut Parts,
        p: Progress,
        (up, episodes): (&Update, &[f64]),
        iter_s: f64,
        learn_s: f64,
    ) -> Result<bool, TrainError> {
        let offline = parts.algo.collect() == Collect::Offline;
        let mut scalars = iteration_scalars(p.iteration, up, episodes, iter_s, learn_s);
        if p.iteration.is_multiple_of(cfg.eval.every_iters as u64) || parts.finished(cfg, p) {
            let e = parts.evaluate(cfg)?;
            scalars.extend(eval_scalars(&e));
            self.last_eval = Some(e);
        }
        // an offline algorithm logs against its iteration (it spends no env steps)
        self.log.log(if offline { p.iteration } else { p.env_steps }, &scalars)?;
        parts.save(&self.run, p)?;
        self.progress = p;
        if let Some(b) = &self.bar {
            b.set_position(p.env_steps.min(cfg.env_steps));
            let sps = (p.env_steps - self.steps_at_start) as f64 / self.t_start.elapsed().as_secs_f64();
            let ev = self.last_eval.as_ref().map(|e| format!("{:.1}", e.mean)).unwrap_or("-".into());
            b.set_message(format!("{sps:.0} steps/s | return {:.1} | eval {ev}", mean_std(episodes).0));
        }
        Ok(matches!((&self.last_eval, opts.stop_at_eval), (Some(e), Some(t)) if e.mean >= t))
    }

    /// The final evaluation (unless the last iteration had one) and `summary.json`.
    fn finish(self, cfg: &TrainConfig, parts: &mut Parts, p: Progress, learner_s_per_iter: f64) -> Result<Summary, TrainError> {
        if let Some(b) = &self.bar {
            b.finish();
        }
        let e = match self.last_eval {
            Some(e) => e,
            None => parts.evaluate(cfg)?,
        };
        let mut log = self.log;
        log.flush()?;
        let summary = summary(cfg, parts, p, e, self.reference_eval, learner_s_per_iter, log.wall_time_s(), &self.run);
        write_summary(self.run.dir.path(), &serde_json::to_value(&summary).expect("summary serialises"))?;
        Ok(summary)
    }
}

/// Refuses data-parallel training where it would not be the update of one process on all ranks' data.
fn check_data_parallel(cfg: &TrainConfig, algo: &dyn Algorithm, world: &dyn Collective) -> Result<(), TrainError> {
    if world.size() == 1 {
        return Ok(());
    }
    if !algo.data_parallel() {
        return Err(TrainError::Config(format!(
            "algo = {:?} does not support data-parallel training (its update does not reduce its batch statistics and \
             gradients over the ranks; see `Algorithm::data_parallel`); every built-in algorithm does. Run it without \
             mpirun (mpirun does serve `compare` sweeps of every algorithm)",
            cfg.algo
        )));
    }
    if algo.min_steps() > 0 {
        return Err(TrainError::Config(format!(
            "{}.min_steps = {} (batches of at least that many env steps) is single-process only: each rank would collect \
             its own number of rounds. Set it to 0 under mpirun, or run without mpirun",
            cfg.algo,
            algo.min_steps()
        )));
    }
    if let Collect::Segments { groups, .. } = algo.collect() {
        if groups < world.size() {
            let key = algo.groups_key();
            return Err(TrainError::Config(format!(
                "{}.{key} = {groups} start states per iteration cannot be shared by {} ranks; set {}.{key} to at least {} (a multiple of the ranks gives equal shares)",
                cfg.algo, world.size(), cfg.algo, world.size()
            )));
        }
    }
    Ok(())
}

/// `r` on every rank, or on every rank an error when any rank failed (its own, or the first failing rank's).
fn agree<T>(world: &dyn Collective, r: Result<T, TrainError>) -> Result<T, TrainError> {
    if world.size() == 1 {
        return r;
    }
    let mine = r.as_ref().err().map(|e| e.to_string()).unwrap_or_default();
    let all = world.all_gather(mine.as_bytes())?;
    match (r, all.iter().position(|m| !m.is_empty())) {
        (Err(e), _) => Err(e),
        (Ok(_), Some(rank)) => Err(TrainError::Config(format!("rank {rank} failed: {}", String::from_utf8_lossy(&all[rank])))),
        (Ok(v), None) => Ok(v),
    }
}

/// Rank 0's state (policy, Adam, the algorithm's state and the counters, as its checkpoint) on every rank.
fn share_state(world: &dyn Collective, parts: &mut Parts, root: Option<&RootRun>) -> Result<Progress, TrainError> {
    let here = root.map(|r| r.progress);
    if world.size() == 1 {
        return Ok(here.expect("one process is rank 0"));
    }
    let mut bytes = match root {
        Some(r) => parts.checkpoint(&r.run, r.progress)?.to_bytes(std::path::Path::new("<rank 0's state>"))?,
        None => Vec::new(),
    };
    world.broadcast(0, &mut bytes)?;
    let p = match here {
        Some(p) => Ok(p),
        None => Checkpoint::from_bytes(&bytes, std::path::Path::new("<rank 0's state>")).map_err(TrainError::from).and_then(|ck| parts.restore(&ck)),
    };
    let p = agree(world, p)?;
    world.check_equal("the policy (its parameters and observation statistics)", &policy_bytes(&parts.policy))?;
    Ok(p)
}

fn policy_bytes(policy: &GaussianPolicy) -> Vec<u8> {
    let mut v = Vec::<f32>::try_from(policy.flat_params().to_kind(Kind::Float).to_device(Device::Cpu)).unwrap_or_default();
    // the observation statistics too: ranks that standardise with different ones step equal parameters apart
    if let Some(rms) = policy.obs_rms() {
        v.extend(rms.mean.iter().chain(&rms.var).chain([&rms.count]).map(|&x| x as f32));
    }
    rebel_dist::f32_bytes(&v)
}

/// The iteration of all ranks on every rank: env steps summed, the ended episodes' returns and the scored
/// segments' true returns in rank order, the segment score averaged over segments.
fn merge_ranks(world: &dyn Collective, up: &mut Update, episodes: &mut Vec<f64>) -> Result<(), TrainError> {
    if world.size() == 1 {
        return Ok(());
    }
    let mine = serde_json::json!([up.env_steps, episodes, up.segment_true, up.segment_score]);
    let all = world.all_gather(&serde_json::to_vec(&mine).expect("serialises"))?;
    let (mut steps, mut eps, mut seg, mut score_sum) = (0u64, Vec::new(), Vec::new(), 0.0);
    for (rank, b) in all.iter().enumerate() {
        let bad = || TrainError::Output(format!("rank {rank} sent an iteration report that does not parse"));
        let (s, e, t, sc): (u64, Vec<f64>, Vec<f64>, Option<f64>) = serde_json::from_slice(b).map_err(|_| bad())?;
        steps += s;
        score_sum += sc.unwrap_or(f64::NAN) * t.len() as f64;
        eps.extend(e);
        seg.extend(t);
    }
    (up.env_steps, *episodes, up.segment_score) = (steps, eps, score_sum / seg.len().max(1) as f64);
    up.segment_true = seg;
    Ok(())
}

/// Sets `run`'s machine record to `before` (a resumed checkpoint's) going on from `env_steps` on `ranks`' machines,
/// and prints the notes of [`crate::machine::go_on`].
fn record_machines(run: &mut Run, before: &[crate::machine::MachinePart], env_steps: u64, ranks: &[Machine]) {
    let (machines, notes) = crate::machine::go_on(before, env_steps, ranks);
    for note in notes {
        eprintln!("note: {note}");
    }
    run.machines = machines;
}

/// Every rank's machine, in rank order, on every rank.
fn rank_machines(world: &dyn Collective) -> Result<Vec<Machine>, TrainError> {
    let all = world.all_gather(&serde_json::to_vec(&Machine::current()).expect("a machine serialises"))?;
    all.iter()
        .enumerate()
        .map(|(r, b)| serde_json::from_slice(b).map_err(|e| TrainError::Config(format!("rank {r}'s machine record does not parse ({e}): start every rank with the same build"))))
        .collect()
}

/// The summary of a finished run.
#[allow(clippy::too_many_arguments)]
fn summary(cfg: &TrainConfig, parts: &Parts, p: Progress, e: EvalResult, reference_eval: f64, learner_s_per_iter: f64, wall_time_s: f64, run: &Run) -> Summary {
    Summary {
        algo: cfg.algo.clone(),
        env: cfg.env.id.clone(),
        seed: cfg.seed,
        env_steps: p.env_steps,
        labels_used: parts.algo.labels_used().unwrap_or_else(|| parts.scorer.labels_used()),
        wall_time_s,
        eval_true_return_mean: e.mean,
        eval_true_return_std: e.std,
        eval_episodes: e.returns.len(),
        eval_stochastic_return_mean: e.stochastic_mean,
        win_rate: e.win_rate,
        initial_eval_true_return_mean: p.initial_eval,
        reference_eval_true_return_mean: reference_eval,
        iterations: p.iteration,
        learner_s_per_iter,
        learner_s_total: if learner_s_per_iter.is_finite() { learner_s_per_iter * p.iteration as f64 } else { 0.0 },
        peak_rss_mb: peak_rss_mb(),
        learner_mem_mb: peak_rss_mb() - parts.rss_start_mb,
        learner_update_mem_mb: parts.learner_rise_mb.all(),
        learner_update_mem_later_mb: parts.learner_rise_mb.later,
        learner_update_alloc_mb: parts.learner_alloc_mb.all(),
        learner_update_alloc_later_mb: parts.learner_alloc_mb.later,
        run_dir: run.dir.path().display().to_string(),
        machines: run.machines.clone(),
    }
}

fn progress_bar(total: u64, pos: u64) -> indicatif::ProgressBar {
    let b = indicatif::ProgressBar::new(total);
    b.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} env steps {elapsed_precise} | {msg}")
            .expect("valid template"),
    );
    b.set_position(pos);
    b
}

#[cfg(test)]
mod tests {
    use super::PhasePeaks;

    #[test]
    fn phase_peaks_split_the_first_phase_from_the_later_ones() {
        let mut p = PhasePeaks::default();
        assert_eq!((p.all(), p.later), (None, None));
        p.record(12.0);
        assert_eq!((p.all(), p.later), (Some(12.0), None));
        for r in [3.0, 5.5, 4.0] {
            p.record(r);
        }
        assert_eq!((p.first, p.later, p.all()), (Some(12.0), Some(5.5), Some(12.0)));
        p.record(20.0);
        assert_eq!(p.all(), Some(20.0));
    }
}
