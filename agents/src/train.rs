//! The training run: collect → score → update → log → evaluate → checkpoint, until the env-step
//! budget is spent (offline DPO: `dpo.iterations`). Resumable from its run directory.
//!
//! `algo` picks the learner (REBEL, PPO, REINFORCE, RLOO, DPO; one file each under `algos/`); the
//! loop, the scorer (`reward`), the evaluation, the logs and the checkpoints are shared, so every
//! algorithm is measured the same way. Algorithm state besides the policy and its Adam (PPO's value
//! net, its Adam and its normalisation statistics; REINFORCE's baseline; DPO's label count) is
//! checkpointed too, so every algorithm resumes exactly.
//!
//! Run directory (`runs/{env}__{algo}__{seed}__{time}`): `config.toml` (the resolved config),
//! `metrics.jsonl` and `tb/` (the same tags), `checkpoint.safetensors` (policy, Adam and counters,
//! written atomically after every iteration), `summary.json` at the end.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

use rebel_envs::vec_env::VecEnv;
use rebel_envs::{ConfigValue, EnvConfig};

use crate::adam::{Adam, AdamConfig};
use crate::algos::dpo::{self, DpoConfig, DpoData};
use crate::algos::ppo::{self, PpoConfig, RewardScaler, ValueNet};
use crate::algos::rebel::{self, RebelConfig};
use crate::algos::reinforce::{self, ReinforceConfig};
use crate::algos::rloo::{self, RlooConfig};
use crate::checkpoint::{Checkpoint, CheckpointMeta};
use crate::io::fnv1a_hex;
use crate::seeding::{eval_env_seed, stream, train_env_seed, Domain};
use crate::logging::{write_config, write_summary, MetricsLogger, RunDir};
use crate::policy::{GaussianPolicy, PolicyConfig};
use crate::rollout::{collect_groups, episode_returns, PairSpec};
use crate::runconfig::to_toml_string;
use crate::scorer::{Scorer, TrueReward};

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
}

/// The policy network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    /// Hidden layer widths (tanh). Default [64, 64].
    pub hidden: Vec<usize>,
    /// Initial log standard deviation. Default −0.5.
    pub log_std_init: f64,
    /// Start from this checkpoint's policy instead of a random one ("" = random).
    pub init: String,
}

impl Default for PolicySection {
    fn default() -> Self {
        PolicySection { hidden: vec![64, 64], log_std_init: -0.5, init: String::new() }
    }
}

/// Evaluation protocol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// Evaluate every this many iterations (and at the end). Default 10.
    pub every_iters: usize,
    /// Episodes per evaluation, with the fixed seeds `seed_base + i`. Default 10.
    pub episodes: usize,
    /// First evaluation seed (disjoint from training seeds). Default 1_000_000.
    pub seed_base: u64,
    /// Reference policy for the win rate ("" = the initial policy of the run).
    pub reference: String,
}

impl Default for EvalSection {
    fn default() -> Self {
        EvalSection { every_iters: 10, episodes: 10, seed_base: 1_000_000, reference: String::new() }
    }
}

/// A whole training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Algorithm: "rebel", "ppo", "reinforce", "rloo" or "dpo" (each has its section). Default "rebel".
    pub algo: String,
    /// What scores trajectories: "true" (the environment reward) or "model" (the reward
    /// ensemble in `reward_model`).
    pub reward: String,
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
    /// REBEL's hyperparameters.
    pub rebel: RebelConfig,
    /// PPO's hyperparameters.
    pub ppo: PpoConfig,
    /// REINFORCE's hyperparameters.
    pub reinforce: ReinforceConfig,
    /// RLOO's hyperparameters.
    pub rloo: RlooConfig,
    /// DPO's hyperparameters (offline or iterative; `dpo.iterations` is its budget, not `env_steps`).
    pub dpo: DpoConfig,
    /// Evaluation.
    pub eval: EvalSection,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            algo: "rebel".into(),
            reward: "true".into(),
            reward_model: String::new(),
            reward_pessimism: 0.0,
            seed: 1,
            env_steps: 3_000_000,
            threads: 2,
            learner_threads: 1,
            device: "cpu".into(),
            env: EnvSection::default(),
            policy: PolicySection::default(),
            rebel: RebelConfig::default(),
            ppo: PpoConfig::default(),
            reinforce: ReinforceConfig::default(),
            rloo: RlooConfig::default(),
            dpo: DpoConfig::default(),
            eval: EvalSection::default(),
        }
    }
}

impl TrainConfig {
    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if !ALGOS.contains(&self.algo.as_str()) {
            return Err(format!("algo = {:?} is not known; valid: {}", self.algo, ALGOS.map(|a| format!("{a:?}")).join(", ")));
        }
        match self.reward.as_str() {
            "true" => {}
            "model" if !self.reward_model.is_empty() => {}
            "model" => return Err("reward = \"model\" needs reward_model = \"<file written by rm train>\"".into()),
            other => return Err(format!("reward = {other:?} is not known; valid: \"true\", \"model\"")),
        }
        if self.threads == 0 || self.env_steps == 0 || self.eval.episodes == 0 || self.eval.every_iters == 0 {
            return Err("threads, env_steps, eval.episodes and eval.every_iters must be ≥ 1".into());
        }
        match self.algo.as_str() {
            "ppo" => self.ppo.validate(),
            "reinforce" => self.reinforce.validate(),
            "rloo" => self.rloo.validate(),
            "dpo" => self.dpo.validate(),
            _ => self.rebel.validate(),
        }
    }

    /// Environments the algorithm's collection uses (0 for offline DPO).
    pub fn num_envs(&self) -> usize {
        match self.algo.as_str() {
            "ppo" => self.ppo.n_envs,
            "reinforce" => self.reinforce.groups,
            "rloo" => self.rloo.groups * self.rloo.k,
            "dpo" if self.dpo.iterative => self.dpo.collect_envs,
            "dpo" => 0,
            _ => self.rebel.groups * self.rebel.k,
        }
    }

    /// The policy's Adam learning rate.
    pub fn lr(&self) -> f64 {
        match self.algo.as_str() {
            "ppo" => self.ppo.lr,
            "reinforce" => self.reinforce.lr,
            "rloo" => self.rloo.lr,
            "dpo" => self.dpo.lr,
            _ => self.rebel.lr,
        }
    }
}

/// The algorithms `train` runs.
pub const ALGOS: [&str; 5] = ["rebel", "ppo", "reinforce", "rloo", "dpo"];

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
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// A non-finite loss or gradient: the run stopped, the last good checkpoint is kept.
    #[error("training diverged at iteration {iteration}: {msg}. The last good checkpoint ({checkpoint}) is kept; resume from it with other hyperparameters")]
    Diverged { iteration: u64, msg: String, checkpoint: String },
    /// Resuming with a configuration that differs from the run's.
    #[error("cannot resume {run}: the configuration differs from the run's config.toml in {keys}; resume without --config/--set (or with the same values), or start a new run")]
    ResumeMismatch { run: String, keys: String },
}

/// What a finished run reports (also written to `summary.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub algo: String,
    pub env: String,
    pub seed: u64,
    pub env_steps: u64,
    pub labels_used: u64,
    pub wall_time_s: f64,
    pub eval_true_return_mean: f64,
    pub eval_true_return_std: f64,
    pub eval_episodes: usize,
    pub eval_stochastic_return_mean: f64,
    pub win_rate: f64,
    pub initial_eval_true_return_mean: f64,
    /// The reference policy's eval true return under the same protocol (the win-rate opponent).
    pub reference_eval_true_return_mean: f64,
    pub iterations: u64,
    /// Mean seconds of the learner (scoring + update, not collection or evaluation) per iteration
    /// of this process.
    pub learner_s_per_iter: f64,
    /// Peak resident memory of the process (VmHWM), MiB; NaN where /proc is unavailable.
    pub peak_rss_mb: f64,
    pub run_dir: String,
}

/// Result of one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalResult {
    pub returns: Vec<f64>,
    pub mean: f64,
    pub std: f64,
    pub stochastic_mean: f64,
    pub win_rate: f64,
}

fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len().max(1) as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n;
    (m, v.sqrt())
}

/// Evaluates `policy` on the fixed seeds: mean-action returns, stochastic returns, and the win
/// rate against `reference` (mean actions, same start states; ties count half).
pub fn evaluate(
    venv: &mut VecEnv,
    policy: &GaussianPolicy,
    reference: &GaussianPolicy,
    eval: &EvalSection,
    seed: u64,
) -> Result<EvalResult, rebel_envs::EnvError> {
    let seeds: Vec<u64> = (0..eval.episodes as u64).map(|i| eval_env_seed(eval.seed_base, i)).collect();
    let returns = episode_returns(venv, policy, &seeds, None)?;
    let mut rng = stream(seed, Domain::Eval, 0);
    let stochastic = episode_returns(venv, policy, &seeds, Some(&mut rng))?;
    let reference_returns = episode_returns(venv, reference, &seeds, None)?;
    let wins: f64 = returns
        .iter()
        .zip(&reference_returns)
        .map(|(a, b)| if a > b { 1.0 } else if a == b { 0.5 } else { 0.0 })
        .sum();
    let (mean, std) = mean_std(&returns);
    Ok(EvalResult { mean, std, stochastic_mean: mean_std(&stochastic).0, win_rate: wins / seeds.len() as f64, returns })
}

/// Loads the policy stored in a checkpoint file.
pub fn load_policy(path: &Path, device: Device) -> Result<GaussianPolicy, TrainError> {
    Ok(Checkpoint::load(path)?.build_policy("policy", device, Kind::Float)?)
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
}

const CHECKPOINT: &str = "checkpoint.safetensors";

/// Runs (or resumes) training with `cfg` and returns its summary.
pub fn train(cfg: &TrainConfig, opts: &RunOptions) -> Result<Summary, TrainError> {
    cfg.validate().map_err(TrainError::Config)?;
    let device = crate::device::parse_device(&cfg.device).map_err(|e| TrainError::Config(e.to_string()))?;
    tch::set_num_threads(cfg.learner_threads.max(1) as i32);
    let toml_text = to_toml_string(cfg).map_err(|e| TrainError::Config(e.to_string()))?;
    // The budget may grow on resume (`--resume DIR --env-steps N`); everything else must match.
    let config_hash = {
        let mut c = cfg.clone();
        c.env_steps = 0;
        fnv1a_hex(to_toml_string(&c).map_err(|e| TrainError::Config(e.to_string()))?.as_bytes())
    };

    // run directory: new, given, or resumed
    let (run, resumed) = match (&opts.resume, &opts.run_dir) {
        (Some(dir), _) => {
            let run = RunDir::open_existing(dir)?;
            (run, Some(Checkpoint::load(dir.join(CHECKPOINT))?))
        }
        (None, Some(dir)) => {
            std::fs::create_dir_all(dir).map_err(|e| TrainError::Config(format!("cannot create {}: {e}", dir.display())))?;
            (RunDir::open_existing(dir)?, None)
        }
        (None, None) => (RunDir::create(&opts.runs_base, &cfg.env.id, &cfg.algo, cfg.seed)?, None),
    };
    if let Some(ck) = &resumed {
        if ck.meta.config_hash != config_hash {
            let old = std::fs::read_to_string(run.config_path()).unwrap_or_default();
            return Err(TrainError::ResumeMismatch { run: run.path().display().to_string(), keys: differing_keys(&old, &toml_text) });
        }
    }
    write_config(run.path(), &toml_text)?;
    let mut log = MetricsLogger::open(&run)?;
    if resumed.is_none() {
        log.log_config(&toml_text)?;
    }

    let env_cfg = cfg.env.env_config().map_err(TrainError::Config)?;
    let mut eval_env = VecEnv::make(&cfg.env.id, &env_cfg, cfg.eval.episodes.min(16), cfg.threads)?;
    // offline DPO collects nothing; its env is never stepped
    let mut venv = VecEnv::make(&cfg.env.id, &env_cfg, cfg.num_envs().max(1), cfg.threads)?;
    let (obs_dim, act_dim) = (venv.obs_dim(), venv.act_dim());

    // policy: fresh, from a checkpoint, or resumed
    let pcfg = PolicyConfig { obs_dim, act_dim, hidden: cfg.policy.hidden.clone(), log_std_init: cfg.policy.log_std_init };
    let mut policy = GaussianPolicy::new(pcfg.clone(), device, Kind::Float, cfg.seed);
    if !cfg.policy.init.is_empty() {
        let init = Checkpoint::load(resolve_path(&cfg.policy.init))?;
        init.restore_policy("policy", &mut policy)?;
    }
    let initial = policy.try_clone().map_err(|e| TrainError::Config(e.to_string()))?;
    let reference = if cfg.eval.reference.is_empty() { initial } else { load_policy(&resolve_path(&cfg.eval.reference), device)? };
    let mut adam = Adam::new(policy.named_parameters(), AdamConfig { lr: cfg.lr(), ..AdamConfig::default() });
    let scorer: Box<dyn Scorer> = match cfg.reward.as_str() {
        "model" => {
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
        _ => Box::new(TrueReward),
    };
    let mut learner = Learner::new(cfg, &policy, obs_dim, device)?;

    let (mut iteration, mut env_steps, mut initial_eval) = (0u64, 0u64, f64::NAN);
    if let Some(ck) = &resumed {
        ck.restore_policy("policy", &mut policy)?;
        ck.restore_adam("adam", &mut adam)?;
        learner.restore(ck)?;
        iteration = ck.meta.counters.get("iteration").copied().unwrap_or(0);
        env_steps = ck.meta.counters.get("env_steps").copied().unwrap_or(0);
        initial_eval = ck.meta.extra.get("initial_eval").and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        eprintln!("resuming {} at iteration {iteration}, {env_steps} env steps", run.path().display());
    }
    let save = |policy: &GaussianPolicy, adam: &Adam, learner: &Learner, iteration: u64, env_steps: u64, initial_eval: f64| -> Result<(), TrainError> {
        let mut meta = CheckpointMeta::new(&cfg.env.id, &cfg.algo, cfg.seed, &config_hash);
        meta.counters.insert("iteration".into(), iteration);
        meta.counters.insert("env_steps".into(), env_steps);
        meta.extra = serde_json::json!({ "initial_eval": initial_eval });
        let mut ck = Checkpoint::new(meta);
        ck.add_policy("policy", policy)?;
        ck.add_adam("adam", adam)?;
        learner.save(&mut ck)?;
        ck.save(run.path().join(CHECKPOINT))?;
        Ok(())
    };
    if resumed.is_none() {
        let e = evaluate(&mut eval_env, &policy, &reference, &cfg.eval, cfg.seed)?;
        initial_eval = e.mean;
        log.log(0, &[("eval/true_return", e.mean), ("eval/true_return_std", e.std), ("eval/stochastic_return", e.stochastic_mean), ("eval/win_rate", e.win_rate)])?;
        save(&policy, &adam, &learner, 0, 0, initial_eval)?;
    }

    let reference_eval = {
        let seeds: Vec<u64> = (0..cfg.eval.episodes as u64).map(|i| eval_env_seed(cfg.eval.seed_base, i)).collect();
        mean_std(&episode_returns(&mut eval_env, &reference, &seeds, None)?).0
    };
    let bar = opts.progress.then(|| progress_bar(cfg.env_steps, env_steps));
    let t_start = Instant::now();
    let steps_at_start = env_steps;
    let mut last_eval: Option<EvalResult> = None;
    let mut last_ret = f64::NAN;
    let (mut learn_total_s, mut learn_iters) = (0.0f64, 0u64);
    // offline DPO spends no env steps: its budget is dpo.iterations
    let finished = |iteration: u64, env_steps: u64| {
        if cfg.algo == "dpo" { iteration >= cfg.dpo.iterations as u64 } else { env_steps >= cfg.env_steps }
    };
    while !finished(iteration, env_steps) {
        iteration += 1;
        let mut rng = stream(cfg.seed, Domain::Train, iteration);
        let t_iter = Instant::now();
        let ctx = IterCtx { cfg, policy: &policy, reference: &reference, scorer: scorer.as_ref(), device, iteration };
        let out = match learner.iterate(&ctx, &mut adam, &mut venv, &mut rng)? {
            Ok(o) => o,
            Err(msg) => {
                return Err(TrainError::Diverged { iteration, msg, checkpoint: run.path().join(CHECKPOINT).display().to_string() })
            }
        };
        let iter_s = t_iter.elapsed().as_secs_f64();
        env_steps += out.env_steps;
        learn_total_s += out.learn_s;
        learn_iters += 1;
        let learn_s = out.learn_s;
        let (ret_mean, _) = mean_std(&out.episode_returns);
        last_ret = ret_mean;
        let mut scalars: Vec<(&str, f64)> = vec![
            ("charts/iteration", iteration as f64),
            ("charts/env_steps_per_sec", out.env_steps as f64 / iter_s),
            ("charts/learner_s_per_iter", learn_s),
        ];
        if !out.episode_returns.is_empty() {
            scalars.push(("charts/episode_return", ret_mean));
        }
        if !out.segment_true.is_empty() {
            scalars.push(("charts/segment_true_return", mean_std(&out.segment_true).0));
            // the scorer's view of the same segments: diverging from the true return = reward hacking
            scalars.push(("charts/segment_score", out.segment_score));
        }
        scalars.extend(out.scalars.iter().map(|(k, v)| (*k, *v)));
        let final_iter = finished(iteration, env_steps);
        if iteration % cfg.eval.every_iters as u64 == 0 || final_iter {
            let e = evaluate(&mut eval_env, &policy, &reference, &cfg.eval, cfg.seed)?;
            scalars.extend([
                ("eval/true_return", e.mean),
                ("eval/true_return_std", e.std),
                ("eval/stochastic_return", e.stochastic_mean),
                ("eval/win_rate", e.win_rate),
            ]);
            last_eval = Some(e);
        }
        // offline DPO logs against its iteration (it spends no env steps)
        let step = if cfg.algo == "dpo" && !cfg.dpo.iterative { iteration } else { env_steps };
        log.log(step, &scalars)?;
        save(&policy, &adam, &learner, iteration, env_steps, initial_eval)?;
        let reached = matches!((&last_eval, opts.stop_at_eval), (Some(e), Some(t)) if e.mean >= t);
        if let Some(b) = &bar {
            b.set_position(env_steps.min(cfg.env_steps));
            let sps = (env_steps - steps_at_start) as f64 / t_start.elapsed().as_secs_f64();
            let ev = last_eval.as_ref().map(|e| format!("{:.1}", e.mean)).unwrap_or("-".into());
            b.set_message(format!("{sps:.0} steps/s | return {ret_mean:.1} | eval {ev}"));
        }
        if reached {
            break;
        }
    }
    if let Some(b) = bar {
        b.finish();
    }
    let e = match last_eval {
        Some(e) => e,
        None => evaluate(&mut eval_env, &policy, &reference, &cfg.eval, cfg.seed)?,
    };
    let _ = last_ret;
    log.flush()?;
    let summary = Summary {
        algo: cfg.algo.clone(),
        env: cfg.env.id.clone(),
        seed: cfg.seed,
        env_steps,
        labels_used: learner.labels_used().unwrap_or_else(|| scorer.labels_used()),
        wall_time_s: log.wall_time_s(),
        eval_true_return_mean: e.mean,
        eval_true_return_std: e.std,
        eval_episodes: e.returns.len(),
        eval_stochastic_return_mean: e.stochastic_mean,
        win_rate: e.win_rate,
        initial_eval_true_return_mean: initial_eval,
        reference_eval_true_return_mean: reference_eval,
        iterations: iteration,
        learner_s_per_iter: if learn_iters > 0 { learn_total_s / learn_iters as f64 } else { f64::NAN },
        peak_rss_mb: peak_rss_mb(),
        run_dir: run.path().display().to_string(),
    };
    write_summary(run.path(), &serde_json::to_value(&summary).expect("summary serialises"))?;
    Ok(summary)
}

/// Peak resident memory of this process (VmHWM of /proc/self/status) in MiB; NaN if unreadable.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// What an iteration needs besides the learner's own state.
struct IterCtx<'a> {
    cfg: &'a TrainConfig,
    policy: &'a GaussianPolicy,
    reference: &'a GaussianPolicy,
    scorer: &'a dyn Scorer,
    device: Device,
    iteration: u64,
}

/// What an iteration did.
#[derive(Default)]
struct IterOut {
    env_steps: u64,
    /// True returns of the episodes that ended (trunks).
    episode_returns: Vec<f64>,
    /// True returns and mean score of the scored segments.
    segment_true: Vec<f64>,
    segment_score: f64,
    /// Seconds of scoring + update.
    learn_s: f64,
    /// The algorithm's `losses/…` scalars.
    scalars: Vec<(&'static str, f64)>,
}

/// Per-algorithm state besides the policy and its Adam, checkpointed with them.
#[allow(clippy::large_enum_variant)] // one per run
enum Learner {
    Rebel,
    Ppo { value: ValueNet, vadam: Adam, scaler: RewardScaler },
    Reinforce { baseline: Option<f64> },
    Rloo,
    /// `data`: the offline dataset (None for iterative DPO, which labels fresh pairs each round);
    /// `initial`: the policy the run started from (the fixed reference); `labels`: labels spent.
    Dpo { data: Option<DpoData>, dataset: crate::preferences::PreferenceDataset, initial: GaussianPolicy, labels: u64 },
}

impl Learner {
    fn new(cfg: &TrainConfig, initial: &GaussianPolicy, obs_dim: usize, device: Device) -> Result<Learner, TrainError> {
        Ok(match cfg.algo.as_str() {
            "ppo" => {
                let p = &cfg.ppo;
                let value = ValueNet::new(obs_dim, &p.vf_hidden, p.normalize_obs, device, cfg.seed.wrapping_add(0x5EED));
                let vadam = Adam::new(value.named_parameters(), AdamConfig { lr: p.lr, ..AdamConfig::default() });
                Learner::Ppo { value, vadam, scaler: RewardScaler::default() }
            }
            "reinforce" => Learner::Reinforce { baseline: None },
            "rloo" => Learner::Rloo,
            "dpo" => {
                let path = resolve_path(&cfg.dpo.dataset);
                let dataset = crate::preferences::PreferenceDataset::load(&path)
                    .map_err(|e| TrainError::Config(format!("dpo.dataset: {e}")))?;
                if dataset.meta.obs_dim != obs_dim || dataset.meta.env_id != cfg.env.id {
                    return Err(TrainError::Config(format!(
                        "dpo.dataset {} holds {} pieces with {} obs, not {} with {obs_dim}",
                        path.display(), dataset.meta.env_id, dataset.meta.obs_dim, cfg.env.id
                    )));
                }
                let initial = initial.try_clone().map_err(|e| TrainError::Config(e.to_string()))?;
                let (data, labels) = if cfg.dpo.iterative {
                    (None, 0)
                } else {
                    let d = DpoData::new(&dataset, &initial, device)
                        .ok_or_else(|| TrainError::Config(format!("dpo.dataset {} has no strict preference", path.display())))?;
                    (Some(d), dataset.len() as u64)
                };
                Learner::Dpo { data, dataset, initial, labels }
            }
            _ => Learner::Rebel,
        })
    }

    /// Labels this learner spent itself (DPO); `None`: those of the scorer.
    fn labels_used(&self) -> Option<u64> {
        match self {
            Learner::Dpo { labels, .. } => Some(*labels),
            _ => None,
        }
    }

    fn save(&self, ck: &mut Checkpoint) -> Result<(), TrainError> {
        let extra = ck.meta.extra.as_object_mut().expect("extra is an object");
        match self {
            Learner::Ppo { value, vadam, scaler } => {
                ck.add_tensors("value", &value.named_parameters())?;
                ck.add_adam("value_adam", vadam)?;
                let extra = ck.meta.extra.as_object_mut().expect("extra is an object");
                extra.insert("ppo_obs_rms".into(), serde_json::to_value(&value.obs_rms).expect("serialises"));
                extra.insert("ppo_reward_scaler".into(), serde_json::to_value(scaler).expect("serialises"));
            }
            Learner::Reinforce { baseline } => {
                extra.insert("reinforce_baseline".into(), serde_json::json!(baseline));
            }
            Learner::Dpo { labels, .. } => {
                ck.meta.counters.insert("labels".into(), *labels);
            }
            Learner::Rebel | Learner::Rloo => {}
        }
        Ok(())
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<(), TrainError> {
        let bad = |k: &str, e: serde_json::Error| TrainError::Config(format!("checkpoint extra {k} does not parse: {e}"));
        match self {
            Learner::Ppo { value, vadam, scaler } => {
                ck.restore_tensors("value", &value.named_parameters())?;
                ck.restore_adam("value_adam", vadam)?;
                if let Some(v) = ck.meta.extra.get("ppo_obs_rms") {
                    value.obs_rms = serde_json::from_value(v.clone()).map_err(|e| bad("ppo_obs_rms", e))?;
                }
                if let Some(v) = ck.meta.extra.get("ppo_reward_scaler") {
                    *scaler = serde_json::from_value(v.clone()).map_err(|e| bad("ppo_reward_scaler", e))?;
                }
            }
            Learner::Reinforce { baseline } => {
                *baseline = ck.meta.extra.get("reinforce_baseline").and_then(|v| v.as_f64());
            }
            Learner::Dpo { labels, .. } => {
                *labels = ck.meta.counters.get("labels").copied().unwrap_or(*labels);
            }
            Learner::Rebel | Learner::Rloo => {}
        }
        Ok(())
    }

    /// One iteration: collect (if online), score, update. `Ok(Err(msg))` when the update diverged.
    fn iterate(&mut self, c: &IterCtx, adam: &mut Adam, venv: &mut VecEnv, rng: &mut crate::seeding::ChaCha8Rng) -> Result<Result<IterOut, String>, TrainError> {
        let cfg = c.cfg;
        let seeds = |groups: usize| -> Vec<u64> {
            (0..groups as u64).map(|g| train_env_seed(cfg.seed, c.iteration, g)).collect()
        };
        let spec = |k: usize, branch_len: usize, tail_len: usize| PairSpec { k, branch_len: (branch_len > 0).then_some(branch_len), tail_len };
        let (groups, pspec) = match (&*self, cfg.algo.as_str()) {
            (Learner::Ppo { .. }, _) => (cfg.ppo.n_envs, spec(1, 0, 0)),
            (Learner::Reinforce { .. }, _) => (cfg.reinforce.groups, spec(1, cfg.reinforce.branch_len, cfg.reinforce.tail_len)),
            (Learner::Rloo, _) => (cfg.rloo.groups, spec(cfg.rloo.k, cfg.rloo.branch_len, cfg.rloo.tail_len)),
            (Learner::Rebel, _) => (cfg.rebel.groups, spec(cfg.rebel.k, cfg.rebel.branch_len, cfg.rebel.tail_len)),
            (Learner::Dpo { .. }, _) => (0, spec(2, 0, 0)),
        };
        if let Learner::Dpo { data, dataset, initial, labels } = self {
            let d = &cfg.dpo;
            let mut out = IterOut::default();
            let round_data;
            let data = if d.iterative {
                // fresh pairs of the current policy, labelled by the dataset's teacher
                let m = &dataset.meta;
                let ccfg = crate::preferences::CollectConfig {
                    n_labels: d.labels_per_round,
                    segment_len: m.segment_len,
                    same_start: m.same_start,
                    seed: train_env_seed(cfg.seed, c.iteration, u64::MAX),
                };
                let src = crate::preferences::PolicySource { path: format!("iteration:{}", c.iteration), hash: String::new() };
                let ds = crate::preferences::collect_preferences(venv, c.policy, src, &ccfg, &m.teacher)
                    .map_err(|e| TrainError::Config(format!("iterative DPO, round {}: {e}", c.iteration)))?;
                *labels += ds.len() as u64;
                // env steps of the labelled pieces (skipped queries and cut-off pieces not counted)
                out.env_steps = ds.pairs.iter().map(|p| (p.a.len() + p.b.len()) as u64).sum();
                out.segment_true = ds.pairs.iter().flat_map(|p| [p.a.true_return(), p.b.true_return()]).collect();
                out.segment_score = f64::NAN;
                let t_learn = Instant::now();
                let reference = if d.reference == "fixed" { &*initial } else { c.policy };
                let Some(rd) = DpoData::new(&ds, reference, c.device) else {
                    out.learn_s = t_learn.elapsed().as_secs_f64();
                    return Ok(Ok(out));
                };
                out.learn_s = t_learn.elapsed().as_secs_f64();
                round_data = rd;
                &round_data
            } else {
                data.as_ref().expect("offline DPO has its data")
            };
            let t_learn = Instant::now();
            let st = match dpo::update(c.policy, adam, data, d, rng) {
                Ok(s) => s,
                Err(m) => return Ok(Err(m)),
            };
            out.learn_s += t_learn.elapsed().as_secs_f64();
            out.scalars = vec![
                ("losses/dpo", st.loss),
                ("losses/dpo_accuracy", st.accuracy),
                ("losses/dpo_margin", st.margin),
                ("losses/logratio_chosen", st.logratio_w),
                ("losses/logratio_rejected", st.logratio_l),
                ("losses/entropy", st.entropy),
                ("losses/grad_norm", st.grad_norm),
                ("charts/labels_used", *labels as f64),
            ];
            return Ok(Ok(out));
        }
        let batch = collect_groups(venv, c.policy, &seeds(groups), pspec, rng)?;
        let t_learn = Instant::now();
        let tensors = batch.to_tensors(c.device);
        let mut out = IterOut { env_steps: batch.env_steps, episode_returns: batch.episode_returns.clone(), segment_true: batch.true_returns(), ..IterOut::default() };
        let result = match self {
            Learner::Ppo { value, vadam, scaler } => {
                let step = c.scorer.step_scores(&tensors).to_kind(Kind::Float) * &tensors.mask;
                let seg = step.sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
                out.segment_score = f64::try_from(seg.mean(Kind::Float)).unwrap_or(f64::NAN);
                ppo::update(c.policy, adam, value, vadam, scaler, &batch, &tensors, &step, Some(c.reference), &cfg.ppo, rng).map(|st| {
                    vec![
                        ("losses/policy_loss", st.policy_loss),
                        ("losses/value_loss", st.value_loss),
                        ("losses/approx_kl", st.approx_kl),
                        ("losses/clip_fraction", st.clip_fraction),
                        ("losses/entropy", st.entropy),
                        ("losses/explained_variance", st.explained_variance),
                        ("losses/grad_norm", st.grad_norm),
                        ("losses/reward_scale", st.reward_scale),
                        ("losses/epochs", st.epochs as f64),
                    ]
                })
            }
            _ => {
                let rewards = c.scorer.segment_scores(&tensors);
                out.segment_score = f64::try_from(rewards.mean(Kind::Float)).unwrap_or(f64::NAN);
                let pg = |st: reinforce::PgStats, name: &'static str| {
                    vec![
                        (name, st.loss),
                        ("losses/baseline", st.baseline),
                        ("losses/return_std", st.return_std),
                        ("losses/approx_kl", st.approx_kl),
                        ("losses/entropy", st.entropy),
                        ("losses/grad_norm", st.grad_norm),
                    ]
                };
                match self {
                    Learner::Reinforce { baseline } => {
                        reinforce::update(c.policy, adam, &tensors, &rewards, baseline, &cfg.reinforce, rng).map(|s| pg(s, "losses/reinforce"))
                    }
                    Learner::Rloo => rloo::update(c.policy, adam, &tensors, &rewards, &cfg.rloo, rng).map(|s| pg(s, "losses/rloo")),
                    _ => rebel::update(c.policy, adam, &tensors, &rewards, Some(c.reference), &cfg.rebel, rng).map(|st| {
                        vec![
                            ("losses/rebel", st.loss),
                            ("losses/logratio_mean", st.logratio_mean),
                            ("losses/logratio_std", st.logratio_std),
                            ("losses/logratio_absmax", st.logratio_absmax),
                            ("losses/approx_kl", st.approx_kl),
                            ("losses/entropy", st.entropy),
                            ("losses/grad_norm", st.grad_norm),
                            ("losses/reward_std", st.reward_std),
                            ("losses/explained", st.explained),
                        ]
                    }),
                }
            }
        };
        out.learn_s = t_learn.elapsed().as_secs_f64();
        Ok(result.map(|scalars| {
            out.scalars = scalars;
            out
        }))
    }
}

/// A path from a configuration: as given if it exists (absolute, or relative to the working
/// directory), else relative to the repository this binary was built from, so that the shipped
/// configurations work from any working directory.
pub fn resolve_path(p: &str) -> PathBuf {
    let given = PathBuf::from(p);
    if given.is_absolute() || given.exists() {
        return given;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p);
    if repo.exists() { repo } else { given }
}

/// Dotted keys whose values differ between two TOML documents.
pub fn differing_keys(a: &str, b: &str) -> String {
    fn flat(prefix: &str, v: &toml::Value, out: &mut std::collections::BTreeMap<String, String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    flat(&p, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let parse = |s: &str| s.parse::<toml::Table>().map(toml::Value::Table).unwrap_or(toml::Value::Table(Default::default()));
    let (mut fa, mut fb) = (Default::default(), Default::default());
    flat("", &parse(a), &mut fa);
    flat("", &parse(b), &mut fb);
    let keys: std::collections::BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    let diff: Vec<String> = keys
        .into_iter()
        .filter(|k| k.as_str() != "env_steps" && fa.get(*k) != fb.get(*k))
        .map(|k| format!("{k} ({} → {})", fa.get(k).map(String::as_str).unwrap_or("unset"), fb.get(k).map(String::as_str).unwrap_or("unset")))
        .collect();
    if diff.is_empty() { "the checkpoint's config hash (config.toml was edited?)".into() } else { diff.join(", ") }
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
