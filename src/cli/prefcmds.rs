//! `prefs collect`, `rm train`, `rm eval`: preference datasets and reward models.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use rebel_agents::io::fnv1a_hex;
use rebel_agents::policy::{GaussianPolicy, PolicyConfig};
use rebel_agents::preferences::{
    collect_preferences, CollectConfig, PolicySource, PreferenceDataset, TeacherConfig, TeacherKind,
};
use rebel_agents::reward_model::{self, evaluate, RewardEnsemble, RewardModelConfig};
use rebel_envs::vec_env::VecEnv;

use super::{env_config, EnvArgs};

/// `prefs …`
#[derive(Subcommand, Debug, Clone)]
pub enum PrefsCommand {
    /// Sample pairs from a policy and label them with a simulated teacher (true reward); write a dataset file.
    Collect(CollectArgs),
}

/// `rm …`
#[derive(Subcommand, Debug, Clone)]
pub enum RmCommand {
    /// Train a reward-model ensemble on a preference dataset.
    Train(RmTrainArgs),
    /// Evaluate a reward model on a preference dataset (last stdout line: JSON).
    Eval(RmEvalArgs),
}

/// `prefs collect`
#[derive(Args, Debug, Clone)]
pub struct CollectArgs {
    /// A checkpoint written by `train` (its policy is used), or `random` for a freshly initialised policy.
    #[arg(long)]
    pub policy: String,
    /// Labelled pairs to collect (skipped queries do not count).
    #[arg(long)]
    pub labels: usize,
    /// Output dataset file (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// Teacher preset: bt, oracle, noisy, mistake, myopic, skip, equal.
    #[arg(long, default_value = "oracle")]
    pub teacher: String,
    /// Override the teacher's inverse temperature β (Bradley–Terry: P(a≻b) = σ(β·ΔR)).
    #[arg(long)]
    pub beta: Option<f64>,
    /// Override the teacher's mistake probability ε.
    #[arg(long)]
    pub eps: Option<f64>,
    /// Override the teacher's myopic discount γ.
    #[arg(long)]
    pub gamma: Option<f64>,
    /// Override the teacher's skip threshold (return units).
    #[arg(long)]
    pub skip_threshold: Option<f64>,
    /// Override the teacher's equal threshold (return units).
    #[arg(long)]
    pub equal_threshold: Option<f64>,
    /// Piece length in steps; 0 = whole episodes.
    #[arg(long, default_value_t = 50)]
    pub segment_len: usize,
    /// Both pieces of a pair start from the same simulator state.
    #[arg(long)]
    pub same_start: bool,
    /// Seed of the collection.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Parallel environments (even).
    #[arg(long, default_value_t = 16)]
    pub envs: usize,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// `rm train`
#[derive(Args, Debug, Clone)]
pub struct RmTrainArgs {
    /// Preference dataset written by `prefs collect`.
    #[arg(long)]
    pub prefs: PathBuf,
    /// Output model file (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// Epochs per member (default: RewardModelConfig's).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed of the split, resamples and initialisation.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Ensemble members.
    #[arg(long)]
    pub members: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Pairs per minibatch.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Held-out fraction.
    #[arg(long)]
    pub holdout: Option<f64>,
    /// Assumed random-answer probability in the likelihood.
    #[arg(long)]
    pub eps_random: Option<f64>,
    /// Adam L2 weight decay.
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Libtorch threads of each member (the members train concurrently, one per core; 1 is fastest for these small
    /// networks).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// `rm eval`
#[derive(Args, Debug, Clone)]
pub struct RmEvalArgs {
    /// Model written by `rm train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Preference dataset to evaluate on (use one collected with another seed than the training data).
    #[arg(long)]
    pub prefs: PathBuf,
    /// Libtorch threads (1 is fastest for these small networks on a loaded machine).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// Runs `prefs …`.
pub fn prefs_cmd(env: &EnvArgs, cmd: &PrefsCommand) -> Result<()> {
    match cmd {
        PrefsCommand::Collect(a) => collect_cmd(env, a),
    }
}

/// Runs `rm …`.
pub fn rm_cmd(env: &EnvArgs, cmd: &RmCommand) -> Result<()> {
    match cmd {
        RmCommand::Train(a) => rm_train_cmd(a),
        RmCommand::Eval(a) => rm_eval_cmd(env, a),
    }
}

fn collect_cmd(env: &EnvArgs, a: &CollectArgs) -> Result<()> {
    if a.labels == 0 {
        bail!("--labels must be ≥ 1");
    }
    let mut teacher = TeacherConfig::preset(TeacherKind::parse(&a.teacher)?);
    if let Some(b) = a.beta {
        teacher.beta = Some(b);
    }
    if let Some(e) = a.eps {
        teacher.eps = e;
    }
    if let Some(g) = a.gamma {
        teacher.gamma = g;
    }
    if let Some(s) = a.skip_threshold {
        teacher.skip_threshold = Some(s);
    }
    if let Some(e) = a.equal_threshold {
        teacher.equal_threshold = Some(e);
    }
    teacher.validate()?;
    tch::set_num_threads(1);
    let n_envs = a.envs.max(2) + a.envs.max(2) % 2;
    let mut venv = VecEnv::make(&env.env, &env_config(env)?, n_envs, a.threads.max(1))?;
    let (policy, source) = if a.policy == "random" {
        let p = GaussianPolicy::new(
            PolicyConfig::new(venv.obs_dim(), venv.act_dim()),
            tch::Device::Cpu,
            tch::Kind::Float,
            a.seed,
        );
        (p, PolicySource { path: format!("random:{}", a.seed), hash: String::new() })
    } else {
        let path = PathBuf::from(&a.policy);
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read policy checkpoint {}", path.display()))?;
        let (p, meta) = rebel_agents::eval::load_policy_and_meta(&path, tch::Device::Cpu)?;
        super::note_other_options(env, &meta, &path)?;
        (p, PolicySource { path: a.policy.clone(), hash: fnv1a_hex(&bytes) })
    };
    let cfg = CollectConfig {
        n_labels: a.labels,
        segment_len: (a.segment_len > 0).then_some(a.segment_len),
        same_start: a.same_start,
        seed: a.seed,
    };
    let t0 = std::time::Instant::now();
    let ds = collect_preferences(&mut venv, &policy, source, &cfg, &teacher)?;
    ds.save(&a.out)?;
    let returns = ds.segment_batch().true_returns();
    let mean = returns.iter().sum::<f64>() / returns.len() as f64;
    let sd = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / returns.len() as f64).sqrt();
    let ties = ds.pairs.iter().filter(|p| p.label == 0.5).count();
    println!(
        "{} labelled pairs ({} queries, {} equal) of {} pieces from {} → {} in {:.1} s; piece true return {:.2} ± {:.2}",
        ds.len(),
        ds.meta.queries,
        ties,
        cfg.segment_len.map_or("whole-episode".to_string(), |l| format!("{l}-step")),
        ds.meta.policy.path,
        a.out.display(),
        t0.elapsed().as_secs_f64(),
        mean,
        sd
    );
    println!(
        "{}",
        serde_json::json!({"pairs": ds.len(), "queries": ds.meta.queries, "equal": ties,
            "piece_return_mean": mean, "piece_return_std": sd, "out": a.out.display().to_string()})
    );
    Ok(())
}

fn rm_train_cmd(a: &RmTrainArgs) -> Result<()> {
    tch::set_num_threads(a.threads.max(1) as i32);
    let bytes = std::fs::read(&a.prefs).ok();
    let ds = PreferenceDataset::load(&a.prefs)?;
    let mut cfg = RewardModelConfig::default();
    if let Some(x) = a.epochs { cfg.epochs = x; }
    if let Some(x) = a.seed { cfg.seed = x; }
    if let Some(x) = a.members { cfg.members = x; }
    if let Some(x) = a.lr { cfg.lr = x; }
    if let Some(x) = a.batch { cfg.batch = x; }
    if let Some(x) = a.holdout { cfg.holdout = x; }
    if let Some(x) = a.eps_random { cfg.eps_random = x; }
    if let Some(x) = a.weight_decay { cfg.weight_decay = x; }
    let (mut model, report) = reward_model::train(&ds, &cfg)?;
    reward_model::set_dataset_hash(&mut model, bytes.map(|b| fnv1a_hex(&b)).unwrap_or_default());
    model.save(&a.out, &ds.meta.env_id)?;
    println!(
        "reward model ({} members) on {} pairs ({} held out): train accuracy {:.3}, held-out accuracy {:.3}, {:.1} s → {}",
        cfg.members,
        report.train_pairs,
        report.holdout_pairs,
        report.train_accuracy,
        report.holdout_accuracy,
        report.seconds,
        a.out.display()
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn rm_eval_cmd(env: &EnvArgs, a: &RmEvalArgs) -> Result<()> {
    tch::set_num_threads(a.threads.max(1) as i32);
    let (model, model_env) = RewardEnsemble::load(&a.model)?;
    let ds = PreferenceDataset::load(&a.prefs)?;
    if model.obs_dim() != ds.meta.obs_dim || model.act_dim() != ds.meta.act_dim {
        bail!(
            "the model takes obs_dim {}, act_dim {} but the dataset has {}, {}: evaluate on data of the model's \
             environment",
            model.obs_dim(),
            model.act_dim(),
            ds.meta.obs_dim,
            ds.meta.act_dim
        );
    }
    if model_env != ds.meta.env_id {
        bail!("the model was trained on {model_env} but the dataset is from {}", ds.meta.env_id);
    }
    if ds.meta.env_id != env.env {
        eprintln!("note: the dataset is from {}, --env is {} (the dataset's environment is used)", ds.meta.env_id, env.env);
    }
    let r = evaluate(&model, &ds);
    println!(
        "{} pairs: accuracy {:.3} (vs labels), {:.3} (vs true order; teacher {:.3}), Spearman {:.3}",
        r.pairs, r.accuracy, r.true_accuracy, r.teacher_true_accuracy, r.spearman
    );
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}
