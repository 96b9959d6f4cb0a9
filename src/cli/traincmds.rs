//! `train` and `eval`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use rebel_agents::runconfig::load_config;
use rebel_agents::train::{self, RunOptions, TrainConfig};
use rebel_envs::vec_env::VecEnv;

use super::{checkpoint_env, options_json, EnvArgs};

/// The configuration `swimmer` runs with no arguments (also shipped as a file under experiments/).
pub const DEFAULT_CONFIG: &str = include_str!("../../experiments/swimmer_rebel_true.toml");

/// `train`: run an algorithm and log everything into a run directory.
#[derive(Args, Debug, Clone, Default)]
pub struct TrainArgs {
    /// Algorithm (sets `algo`).
    #[arg(long)]
    pub algo: Option<String>,
    /// What scores trajectories (sets `reward`): `true`.
    #[arg(long)]
    pub reward: Option<String>,
    /// Environment-step budget (sets `env_steps`).
    #[arg(long)]
    pub env_steps: Option<u64>,
    /// Master seed (sets `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Device: cpu, cuda, cuda:N, auto (sets `device`).
    #[arg(long)]
    pub device: Option<String>,
    /// A TOML file merged over the default configuration.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override any key: `--set rebel.eta=2 --set eval.episodes=5`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Run directory (default: runs/{env}__{algo}__{seed}__{time}).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Continue the killed or finished run in this directory (with its own config.toml).
    #[arg(long, conflicts_with = "run_dir")]
    pub resume: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Resolves the configuration: default, file, flags, `--set`s (later wins).
pub fn resolve_config(env: &EnvArgs, a: &TrainArgs) -> Result<TrainConfig> {
    let mut sets = env.sets("env")?;
    if let Some(x) = &a.algo { sets.push(format!("algo={x:?}")); }
    if let Some(x) = &a.reward { sets.push(format!("reward={x:?}")); }
    if let Some(x) = a.env_steps { sets.push(format!("env_steps={x}")); }
    if let Some(x) = a.seed { sets.push(format!("seed={x}")); }
    if let Some(x) = &a.device { sets.push(format!("device={x:?}")); }
    sets.extend(a.sets.iter().cloned());
    let base = match &a.resume {
        Some(dir) => std::fs::read_to_string(dir.join("config.toml"))
            .with_context(|| format!("{} is not a run directory with a config.toml", dir.display()))?,
        None => DEFAULT_CONFIG.to_string(),
    };
    let cfg: TrainConfig = load_config(&base, a.config.as_deref(), &sets)?;
    Ok(cfg)
}

/// Runs `train`.
pub fn train_cmd(env: &EnvArgs, a: &TrainArgs) -> Result<()> {
    let cfg = resolve_config(env, a)?;
    let opts = RunOptions {
        runs_base: PathBuf::from("runs"),
        run_dir: a.run_dir.clone(),
        resume: a.resume.clone(),
        progress: !a.quiet,
        stop_at_eval: None,
        start_policy_noted: false,
    };
    // under mpirun/srun (built with the feature `mpi`): data-parallel training over the ranks
    let world = rebel_dist::from_env().map_err(|e| anyhow::anyhow!("{e}"))?;
    let opts = RunOptions { progress: opts.progress && world.is_root(), ..opts };
    let s = train::train_in(&cfg, &opts, world.as_ref())?;
    if !world.is_root() {
        eprintln!("rank {} of {}: done", world.rank(), world.size());
        return Ok(());
    }
    println!(
        "{} on {}: eval true return {:.1} ± {:.1} over {} episodes (start {:.1}), win rate {:.2}, {} env steps, {:.0} s\nrun: {}\nTensorBoard: tensorboard --logdir {}",
        s.algo, s.env, s.eval_true_return_mean, s.eval_true_return_std, s.eval_episodes,
        s.initial_eval_true_return_mean, s.win_rate, s.env_steps, s.wall_time_s, s.run_dir, s.run_dir
    );
    println!("{}", serde_json::to_string(&s)?);
    Ok(())
}

/// `eval`: true returns of a checkpoint's policy on the fixed evaluation seeds.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// A checkpoint written by `train`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Episodes (seeds seed_base, seed_base+1, … under the evaluation tag of rebel_agents::seeding).
    #[arg(long, default_value_t = 10)]
    pub episodes: usize,
    /// First evaluation seed.
    #[arg(long, default_value_t = 1_000_000)]
    pub seed_base: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// Runs `eval`; the last stdout line is JSON.
pub fn eval_cmd(env: &EnvArgs, a: &EvalArgs) -> Result<()> {
    if a.episodes == 0 {
        bail!("--episodes must be ≥ 1");
    }
    let (policy, meta) = rebel_agents::eval::load_policy_and_meta(&a.checkpoint, tch::Device::Cpu)?;
    let (env_id, env_cfg) = checkpoint_env(env, &meta, &a.checkpoint)?;
    let mut venv = VecEnv::make(&env_id, &env_cfg, a.episodes.min(16), a.threads.max(1))?;
    if venv.obs_dim() != policy.obs_dim() || venv.act_dim() != policy.act_dim() {
        bail!(
            "{} holds a policy for observations of {} and actions of {} (trained on {}), but {env_id} has {} and {}",
            a.checkpoint.display(), policy.obs_dim(), policy.act_dim(), meta.env_id, venv.obs_dim(), venv.act_dim()
        );
    }
    let seeds: Vec<u64> = (0..a.episodes as u64).map(|i| rebel_agents::seeding::eval_env_seed(a.seed_base, i)).collect();
    let r = rebel_agents::rollout::episode_returns(&mut venv, &policy, &seeds, None)?;
    // the run's own evaluation's statistics (`evaluate`), so the same episodes give the same digits
    let (mean, std) = rebel_agents::util::mean_std(&r);
    println!("{}: true return {mean:.2} ± {std:.2} over {} episodes (mean action)", a.checkpoint.display(), r.len());
    println!("{}", serde_json::json!({"checkpoint": a.checkpoint, "env": env_id, "env_options": options_json(&env_cfg), "episodes": r.len(), "eval_true_return_mean": mean, "eval_true_return_std": std, "returns": r}));
    Ok(())
}

/// `pretrain`: the reference policy of the preference experiment — REBEL on the true reward from a
/// random policy, stopped at the first evaluation whose mean true return reaches `--target`.
/// Deterministic for a seed and thread count.
#[derive(Args, Debug, Clone)]
pub struct PretrainArgs {
    /// Stop at the first evaluation at or above this mean true return.
    #[arg(long, default_value_t = 170.0)]
    pub target: f64,
    /// Give up after this many env steps.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_env_steps: u64,
    /// Master seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the policy checkpoint.
    #[arg(long, default_value = "experiments/swimmer/reference_policy.safetensors")]
    pub out: PathBuf,
    /// Run directory of the pretraining run (default: a new one under runs/).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Override any training key (see `train --set`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

/// Runs `pretrain`.
pub fn pretrain_cmd(env: &EnvArgs, a: &PretrainArgs) -> Result<()> {
    let mut sets = vec!["eval.every_iters=1".to_string()];
    sets.extend(a.sets.iter().cloned());
    let targs = TrainArgs {
        env_steps: Some(a.max_env_steps),
        seed: Some(a.seed),
        reward: Some("true".into()),
        algo: Some("rebel".into()),
        sets,
        run_dir: a.run_dir.clone(),
        quiet: true,
        ..TrainArgs::default()
    };
    let cfg = resolve_config(env, &targs)?;
    let opts = RunOptions { runs_base: PathBuf::from("runs"), run_dir: a.run_dir.clone(), resume: None, progress: false, stop_at_eval: Some(a.target), start_policy_noted: false };
    let s = train::train(&cfg, &opts)?;
    if s.eval_true_return_mean < a.target {
        bail!(
            "pretraining reached only {:.1} (target {:.1}) in {} env steps; raise --max-env-steps or lower --target (run: {})",
            s.eval_true_return_mean, a.target, s.env_steps, s.run_dir
        );
    }
    let ck = PathBuf::from(&s.run_dir).join("checkpoint.safetensors");
    if let Some(dir) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let bytes = std::fs::read(&ck).with_context(|| format!("cannot read {}", ck.display()))?;
    super::envcmds::write_atomic(&a.out, &bytes)?;
    println!(
        "reference policy: eval true return {:.1} ± {:.1} after {} env steps -> {}",
        s.eval_true_return_mean, s.eval_true_return_std, s.env_steps, a.out.display()
    );
    println!("{}", serde_json::json!({"out": a.out, "eval_true_return_mean": s.eval_true_return_mean, "eval_true_return_std": s.eval_true_return_std, "env_steps": s.env_steps, "seed": a.seed, "run_dir": s.run_dir}));
    Ok(())
}

/// The default run's configuration (also shipped as experiments/swimmer.toml).
pub const EXPERIMENT_CONFIG: &str = include_str!("../../experiments/swimmer.toml");

/// `experiment`: reference policy → preference labels → reward net → REBEL on it (the default run).
#[derive(Args, Debug, Clone, Default)]
pub struct ExperimentArgs {
    /// A TOML file merged over the default experiment configuration.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override any key: `--set labels=500 --set train.env_steps=500000`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Output folder (default: runs/{env}__preferences__{seed}__{time}).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Active querying: fixed (one set of labels from the reference policy, the default), uniform,
    /// disagreement or entropy (sets `query.mode`).
    #[arg(long, value_name = "MODE")]
    pub query: Option<String>,
    /// Rounds of querying, retraining the reward net and continuing REBEL (sets `query.rounds`).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Labels per round (sets `query.labels_per_round`, and `labels` to rounds × this unless `--set labels=` is
    /// given).
    #[arg(long)]
    pub labels_per_round: Option<usize>,
    /// Who answers the rounds' queries: `simulated` (the `[teacher]` of the config, from the true reward) or
    /// `page` (you, in the browser: each round serves its pairs on the labelling page; sets `query.teacher`).
    #[arg(long, value_name = "TEACHER")]
    pub teacher: Option<String>,
    /// The labelling page's settings, with --teacher page.
    #[command(flatten)]
    pub page: super::labelcmd::PageArgs,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `experiment` and prints the report; the last stdout line is JSON.
pub fn experiment_cmd(env: &EnvArgs, a: &ExperimentArgs) -> Result<()> {
    use rebel_agents::experiment::{new_folder, ExperimentConfig};
    let mut sets = env.sets("train.env")?;
    // The default run's environment options are the Swimmer's fast solver on Rapier's step: another environment,
    // chosen with --env and no --config, starts from its own defaults (before --env-opt and --set), and so does the
    // Swimmer when --env-opt asks for MuJoCo's RK4 step (its default since session 30), which the fast solver's
    // projected limits cannot go with.
    let rk4_asked = env.env_opts.iter().any(|kv| kv.split_once('=').is_some_and(|(k, v)| k.trim() == "rk4_integrator" && v.trim() == "true"));
    if (env.env != super::DEFAULT_ENV || rk4_asked) && a.config.is_none() {
        let after_id = usize::from(env.env != super::DEFAULT_ENV);
        sets.insert(after_id, "train.env.options={}".to_string());
    }
    if let Some(x) = &a.query { sets.push(format!("query.mode={x:?}")); }
    if let Some(x) = a.rounds { sets.push(format!("query.rounds={x}")); }
    if let Some(x) = a.labels_per_round { sets.push(format!("query.labels_per_round={x}")); }
    if let Some(x) = &a.teacher { sets.push(format!("query.teacher={x:?}")); }
    sets.extend(a.sets.iter().cloned());
    let mut cfg: ExperimentConfig = load_config(EXPERIMENT_CONFIG, a.config.as_deref(), &sets)?;
    if a.labels_per_round.is_some() && !a.sets.iter().any(|s| s.trim_start().starts_with("labels=")) {
        cfg.labels = cfg.query.rounds * cfg.query.labels_per_round;
    }
    let folder = a.out.clone().unwrap_or_else(|| new_folder(std::path::Path::new("runs"), &cfg.train.env.id, cfg.train.seed));
    let mut page = match cfg.query.teacher {
        rebel_agents::preferences::query::RoundTeacher::Page => Some(super::labelcmd::PageTeacher {
            opts: a.page.options()?,
            lease: std::time::Duration::from_secs(a.page.lease_secs),
            env_id: cfg.train.env.id.clone(),
            env_config: cfg.train.env.env_config().map_err(anyhow::Error::msg)?,
        }),
        rebel_agents::preferences::query::RoundTeacher::Simulated => None,
    };
    let person = page.as_mut().map(|p| p as &mut dyn rebel_agents::active::PersonTeacher);
    let r = rebel_agents::experiment::run_experiment_with(&cfg, &folder, !a.quiet, person)?;
    let s = &r.rebel;
    println!("REBEL from preferences on {}", s.env);
    println!("  reference policy eval true return  {:8.1}", r.reference_eval_true_return_mean);
    println!("  after REBEL on the reward net       {:8.1} ± {:.1} ({} episodes, win rate {:.2} vs reference)", s.eval_true_return_mean, s.eval_true_return_std, s.eval_episodes, s.win_rate);
    println!("  labels used                         {:8}", r.labels_used);
    if let Some(q) = &r.query {
        println!("  querying                            {} over {} rounds (round 0 uniform)", q.mode.name(), r.rounds.len());
        for x in &r.rounds {
            println!(
                "    round {}: {:4} labels ({}), reward net held-out accuracy {:.3}, REBEL at {} env steps: eval {:.1}",
                x.round, x.labels_total, x.mode, x.reward_net.holdout_accuracy, x.env_steps, x.eval_true_return_mean
            );
        }
    }
    println!("  reward net accuracy / spearman      {} / {} on fresh pairs", r.reward_model_check_accuracy.map(|v| format!("{v:.3}")).unwrap_or("-".into()), r.reward_model_check_spearman.map(|v| format!("{v:.3}")).unwrap_or("-".into()));
    println!("  env steps (REBEL)                   {:8}", s.env_steps);
    println!("  wall time                           {:8.0} s", r.wall_time_s);
    println!("  files                               {}", r.folder);
    println!("  TensorBoard                         tensorboard --logdir {}", r.folder);
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}
