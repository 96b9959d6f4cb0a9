//! The command line of the `swimmer` and `rebel` binaries.
//!
//! `swimmer` is `rebel` with `--env Swimmer-v5` fixed. Every subcommand reports errors with
//! what was wrong and what to do, and exits non-zero.

mod comparecmd;
mod curvescmd;
mod envcmds;
mod labelcmd;
mod prefcmds;
mod servecmd;
mod traincmds;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use rebel_agents::checkpoint::CheckpointMeta;
use rebel_agents::run_dir::{
    as_recorded, changed_defaults, dynamics_note, settings_drift, shown_options, undoing_options, CONTACT_LAW_TASKS, SESSION_19_CONTACTS,
};
use rebel_agents::train::{options_table, EnvSection};

pub use comparecmd::{compare_cmd, CompareArgs, COMPARE_CONFIG};
pub use curvescmd::{curves_cmd, CurvesArgs};
pub use labelcmd::{label_cmd, LabelCommand};
pub use envcmds::{bench, render, replay, BenchArgs, RenderArgs, ReplayArgs};
pub use prefcmds::{prefs_cmd, rm_cmd, PrefsCommand, RmCommand};
pub use servecmd::{serve_env, ServeEnvArgs};
pub use traincmds::{eval_cmd, experiment_cmd, ExperimentArgs, pretrain_cmd, resolve_config, train_cmd, EvalArgs, PretrainArgs, TrainArgs, DEFAULT_CONFIG};

/// The environment of a command without `--env`.
const DEFAULT_ENV: &str = "Swimmer-v5";

/// Options shared by every subcommand.
#[derive(Args, Debug, Clone)]
pub struct EnvArgs {
    /// Environment id (see `rebel envs`) [default: Swimmer-v5; `eval` and `render --checkpoint`: the checkpoint's].
    #[arg(long = "env", value_name = "ENV", global = true)]
    env_flag: Option<String>,
    /// The environment id: `--env`, else Swimmer-v5.
    #[arg(skip)]
    pub env: String,
    /// Whether the environment was chosen (`--env`, or the binary's fixed one).
    #[arg(skip)]
    pub env_chosen: bool,
    /// Environment constructor options, `key=value` (repeatable), e.g. `reset_noise_scale=0`.
    #[arg(long = "env-opt", value_name = "KEY=VALUE", global = true)]
    pub env_opts: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Replay an action CSV from the exact rest state and write every state to a CSV.
    Replay(ReplayArgs),
    /// Step environments with random actions and report env steps per second (last line: JSON).
    Bench(BenchArgs),
    /// Render an episode to an animated GIF (or its last frame to PNG).
    Render(RenderArgs),
    /// Serve the environment over stdin/stdout, one JSON object per line (for Python: scripts/rebel_gym.py).
    ServeEnv(ServeEnvArgs),
    /// The default run: reference policy → preference labels → reward net → REBEL on it.
    Experiment(ExperimentArgs),
    /// Train a policy (REBEL by default) and log it into a run directory.
    Train(TrainArgs),
    /// Evaluate a checkpoint's policy (true return, mean action).
    Eval(EvalArgs),
    /// Make the reference policy: REBEL on the true reward until an evaluation reaches --target.
    Pretrain(PretrainArgs),
    /// Compare REBEL with its baselines (reference, DPO, REINFORCE, RLOO, PPO) over seeds.
    Compare(CompareArgs),
    /// Plot learning curves of any runs, grouped into series (mean and 95 % bootstrap band).
    Curves(CurvesArgs),
    /// List the registered environments; with `--settings`, every setting of the one chosen (`--env`, `--env-opt`).
    Envs(EnvsArgs),
    /// Preference datasets: `prefs collect`.
    Prefs {
        #[command(subcommand)]
        cmd: PrefsCommand,
    },
    /// Reward models: `rm train`, `rm eval`.
    Rm {
        #[command(subcommand)]
        cmd: RmCommand,
    },
    /// Label preference pairs in a browser: `label serve`, `label pairs`.
    Label {
        #[command(subcommand)]
        cmd: LabelCommand,
    },
}

#[derive(Parser, Debug)]
#[command(version, about = "REBEL on Rapier: environments, training and evaluation")]
struct Cli {
    #[command(flatten)]
    env: EnvArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Runs the command line. `fixed_env` pins the environment (the `swimmer` binary).
pub fn main(fixed_env: Option<&str>) -> ExitCode {
    let mut cli = Cli::parse();
    crate::register_alloc_peak_probe();
    cli.env.env_chosen = cli.env.env_flag.is_some() || fixed_env.is_some();
    cli.env.env = cli.env.env_flag.clone().unwrap_or_else(|| DEFAULT_ENV.into());
    if let Some(id) = fixed_env {
        if cli.env.env != id && cli.env.env != DEFAULT_ENV {
            eprintln!("error: this binary runs {id} only; use `rebel --env {}` for other environments", cli.env.env);
            return ExitCode::from(2);
        }
        cli.env.env = id.to_string();
    }
    if matches!(cli.command, Some(Command::Replay(_) | Command::Bench(_) | Command::Eval(_) | Command::Envs(_) | Command::Curves(_))) {
        quiet_broken_pipe();
    }
    // a run (train, experiment, compare, pretrain) says it where it starts, once its configuration is whole
    let starts_runs = matches!(cli.command, Some(Command::Train(_) | Command::Experiment(_) | Command::Compare(_) | Command::Pretrain(_)));
    // `eval` and `render` of a checkpoint say it where they know the checkpoint's environment (`checkpoint_env`)
    let of_checkpoint = matches!(&cli.command, Some(Command::Eval(_))) || matches!(&cli.command, Some(Command::Render(a)) if a.checkpoint.is_some());
    if !starts_runs && !of_checkpoint {
        if let Ok(cfg) = env_config(&cli.env) {
            rebel_agents::run_dir::note_given_without_effect(&cli.env.env, &cfg);
        }
    }
    let result = match cli.command {
        Some(Command::Replay(a)) => replay(&cli.env, &a),
        Some(Command::Bench(a)) => bench(&cli.env, &a),
        Some(Command::Render(a)) => render(&cli.env, &a),
        Some(Command::ServeEnv(a)) => serve_env(&cli.env, &a),
        Some(Command::Experiment(a)) => experiment_cmd(&cli.env, &a),
        Some(Command::Train(a)) => train_cmd(&cli.env, &a),
        Some(Command::Eval(a)) => eval_cmd(&cli.env, &a),
        Some(Command::Pretrain(a)) => pretrain_cmd(&cli.env, &a),
        Some(Command::Prefs { cmd }) => prefs_cmd(&cli.env, &cmd),
        Some(Command::Rm { cmd }) => rm_cmd(&cli.env, &cmd),
        Some(Command::Label { cmd }) => label_cmd(&cli.env, &cmd),
        Some(Command::Compare(a)) => compare_cmd(&cli.env, &a),
        Some(Command::Curves(a)) => curves_cmd(&a),
        Some(Command::Envs(a)) => envs_cmd(&cli.env, &a),
        // no subcommand: the default experiment
        None => experiment_cmd(&cli.env, &ExperimentArgs::default()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// Lets a closed standard output end the process as it ends `cat` or `grep` (`rebel bench | head -1`): the
/// default action of SIGPIPE, where Rust's runtime ignores the signal and the next `println!` panics. Only for the
/// commands that print and write nothing that a kill would leave half-done (a server's write to a client that left
/// must stay an error it handles, and training writes checkpoints).
fn quiet_broken_pipe() {
    // SAFETY: sets a signal's disposition to its default before any thread is started; no handler runs Rust code
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// An error and its causes on one line, each said once: a cause whose text the message already
/// holds (an error type that prints its source, `"environment: {0}"`) is not repeated.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

impl EnvArgs {
    /// `--env` and the `--env-opt`s as `--set` lines for the section at `prefix` (`env` in a training
    /// configuration, `train.env` in an experiment's or a comparison's).
    pub fn sets(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let mut sets = Vec::new();
        if self.env != DEFAULT_ENV {
            sets.push(format!("{prefix}.id={:?}", self.env));
        }
        for kv in &self.env_opts {
            let (k, v) = kv.split_once('=').ok_or_else(|| anyhow::anyhow!("--env-opt takes KEY=VALUE, got {kv}"))?;
            sets.push(format!("{prefix}.options.{k}={v}"));
        }
        Ok(sets)
    }
}

#[derive(Args, Debug)]
struct EnvsArgs {
    /// Print every setting of the environment chosen with `--env` (and `--env-opt`), defaults included, with the value
    /// in effect, as TOML lines for a configuration's `[env.options]` (what a checkpoint records), after a comment
    /// naming the revision of its dynamics; a setting the others leave without effect has a comment saying why.
    #[arg(long)]
    settings: bool,
}

/// `envs`: the registered ids, or one environment's settings.
fn envs_cmd(env: &EnvArgs, a: &EnvsArgs) -> anyhow::Result<()> {
    if !a.settings {
        for id in rebel_envs::registry::registered() {
            println!("{id}");
        }
        return Ok(());
    }
    let cfg = env_config(env)?;
    let (settings, inert) = (rebel_envs::settings(&env.env, &cfg)?, rebel_envs::inert_options(&env.env, &cfg)?);
    let history = rebel_envs::dynamics_history(&env.env)?;
    if let Some(last) = history.last() {
        println!("# {}: dynamics revision {} ({last})", env.env, history.len());
    }
    for line in toml::to_string(&options_table(&settings))?.lines() {
        match line.split_once(" = ").and_then(|(k, _)| inert.get(k)) {
            Some(why) => println!("{line}  # without effect: {why}"),
            None => println!("{line}"),
        }
    }
    Ok(())
}

/// Parses `--env-opt` pairs into an environment configuration.
pub fn env_config(args: &EnvArgs) -> anyhow::Result<rebel_envs::EnvConfig> {
    Ok(rebel_envs::EnvConfig::from_pairs(&args.env_opts)?)
}

/// Environment options as a JSON object (for the commands' JSON lines).
pub fn options_json(cfg: &rebel_envs::EnvConfig) -> serde_json::Value {
    serde_json::json!(options_table(cfg))
}

/// Says on stderr when a policy checkpoint collects data (`prefs collect`, `label`) in the environment it was
/// trained on but with other settings (the data is the environment's as given, which may not be what was meant).
pub fn note_other_options(args: &EnvArgs, meta: &CheckpointMeta, path: &std::path::Path) -> anyhow::Result<()> {
    if meta.env_id != args.env {
        return Ok(());
    }
    note_dynamics(meta, &args.env, path);
    let given = env_config(args)?;
    if !meta.env_settings.is_empty() {
        let here = options_table(&rebel_envs::settings(&args.env, &given)?);
        let drift = settings_drift(&meta.env_settings, &here, &toml::Table::new());
        if !drift.is_empty() {
            let shown: Vec<String> = drift.iter().map(|d| d.to_string()).collect();
            eprintln!(
                "note: {} was trained on {} with other settings than this run's: {} (give --env-opt KEY=VALUE to match)",
                path.display(), meta.env_id, shown.join(", ")
            );
        }
        return Ok(());
    }
    let recorded = recorded_config(meta, path)?;
    if recorded != given {
        eprintln!(
            "note: {} was trained on {} with the options {}; this runs it with {} (give its --env-opt to match)",
            path.display(), meta.env_id, options_json(&recorded), options_json(&given)
        );
    }
    note_changed_defaults(&args.env, meta, &given, path);
    Ok(())
}

/// Says on stderr what a checkpoint's policy meets where the dynamics of its environment `id` changed since it was
/// trained ([`dynamics_note`]).
fn note_dynamics(meta: &CheckpointMeta, id: &str, path: &std::path::Path) {
    if let Some(note) = dynamics_note(meta, id) {
        eprintln!("note: {}: {note}", path.display());
    }
}

/// For a checkpoint without recorded settings (written before they were), names on stderr the defaults of its
/// environment known to have changed, with the session of each, unless its options or the `--env-opt`s set them,
/// and the changes of its dynamics that no option undoes.
fn note_changed_defaults(id: &str, meta: &CheckpointMeta, given: &rebel_envs::EnvConfig, path: &std::path::Path) {
    if let Some(note) = changed_defaults_note(id, meta, given, path) {
        eprintln!("{note}");
    }
}

/// The note of [`note_changed_defaults`], if it has one.
fn changed_defaults_note(id: &str, meta: &CheckpointMeta, given: &rebel_envs::EnvConfig, path: &std::path::Path) -> Option<String> {
    if !meta.env_settings.is_empty() {
        return None;
    }
    let changed = changed_defaults(id, meta, |k| given.values().contains_key(k));
    let contact_laws = CONTACT_LAW_TASKS.contains(&id);
    if changed.is_empty() && !contact_laws {
        return None;
    }
    let mut note = format!(
        "note: {} does not record its environment's settings (written before they were recorded), so it runs on today's \
         defaults",
        path.display()
    );
    if !changed.is_empty() {
        note.push_str(&format!("; to run it on those of its time, add {}", changed.join(", ")));
    }
    if contact_laws {
        note.push_str(&format!("; {SESSION_19_CONTACTS}"));
    }
    Some(note)
}

/// The environment options a checkpoint records, as the environment reads them.
fn recorded_config(meta: &CheckpointMeta, path: &std::path::Path) -> anyhow::Result<rebel_envs::EnvConfig> {
    EnvSection { id: meta.env_id.clone(), options: meta.env_options.clone() }
        .env_config()
        .map_err(|e| anyhow::anyhow!("{}: the recorded environment options: {e}", path.display()))
}

/// The environment a checkpoint's policy runs in (`eval`, `render`), id and options: the one it was trained on
/// unless `--env` (or the binary) chose another; there, the options its run was made with (the checkpoint records
/// them), each replaced by an `--env-opt` of the same key, and every recorded setting whose default has changed
/// since at its recorded value (unless an `--env-opt` sets it); in another environment, the `--env-opt`s alone. Says
/// on stderr which recorded options and settings apply, so that a return that differs from the run's own is not a
/// surprise.
pub fn checkpoint_env(args: &EnvArgs, meta: &CheckpointMeta, path: &std::path::Path) -> anyhow::Result<(String, rebel_envs::EnvConfig)> {
    let given = env_config(args)?;
    let (id, cfg) = checkpoint_env_config(args, &given, meta, path)?;
    // the options given on the command line that the settings it runs with leave without effect
    rebel_agents::run_dir::note_without_effect_of(&id, &cfg, |k| given.values().contains_key(k));
    Ok((id, cfg))
}

/// [`checkpoint_env`] without its note; `given`: the command line's options (`env_config(args)`).
fn checkpoint_env_config(
    args: &EnvArgs,
    given: &rebel_envs::EnvConfig,
    meta: &CheckpointMeta,
    path: &std::path::Path,
) -> anyhow::Result<(String, rebel_envs::EnvConfig)> {
    let id = if args.env_chosen || meta.env_id.is_empty() { args.env.clone() } else { meta.env_id.clone() };
    if meta.env_id != id {
        if !meta.env_options.is_empty() {
            eprintln!(
                "note: {} was trained on {}, run here on {id}: the options it was trained with are not applied",
                path.display(), meta.env_id
            );
        }
        return Ok((id, given.clone()));
    }
    note_dynamics(meta, &id, path);
    let mut cfg = recorded_config(meta, path)?;
    if !meta.env_options.is_empty() {
        let mut shown = Vec::new();
        for (k, v) in &meta.env_options {
            let overridden = given.values().contains_key(k);
            shown.push(format!("{k}={v}{}", if overridden { " (replaced by --env-opt)" } else { "" }));
        }
        eprintln!("{} on {id} with the options it was trained with: {}", path.display(), shown.join(", "));
    }
    for (k, v) in given.values() {
        cfg.set(k, v.clone());
    }
    // a checkpoint of an earlier revision of the dynamics steps as it was trained where options undo the changes since
    let undo = undoing_options(meta, &id, |k| given.values().contains_key(k));
    let mut fixed = given.clone();
    if !undo.values().is_empty() {
        eprintln!(
            "{} on {id} as revision {} of its dynamics stepped, the one it was trained on: {} (an --env-opt of the key overrides)",
            path.display(),
            meta.env_revision.unwrap_or(0),
            shown_options(&undo)
        );
        for (k, v) in undo.values() {
            cfg.set(k, v.clone());
            fixed.set(k, v.clone());
        }
    }
    if meta.env_settings.is_empty() {
        note_changed_defaults(&id, meta, given, path);
        return Ok((id, cfg));
    }
    let today = options_table(&rebel_envs::settings(&id, &cfg)?);
    let drift = settings_drift(&meta.env_settings, &today, &options_table(&fixed));
    if drift.is_empty() {
        return Ok((id, cfg));
    }
    let shown: Vec<String> = drift.iter().map(|d| d.to_string()).collect();
    eprintln!(
        "{} on {id} with the settings it was trained with where today's differ: {} (an --env-opt of the key overrides)",
        path.display(), shown.join(", ")
    );
    let section = EnvSection { id: id.clone(), options: as_recorded(&options_table(&cfg), &drift) };
    section.settings().map_err(|e| {
        anyhow::anyhow!("{}: the settings it records do not make {id} in this build: {e}; give --env-opt KEY=VALUE for the key named", path.display())
    })?;
    let cfg = section.env_config().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((id, cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint without recorded settings is told which of its environment's defaults changed since, leaving out
    /// the keys it or the command line set; one with recorded settings, or of an environment without such changes,
    /// is told nothing.
    #[test]
    fn an_old_checkpoint_is_told_the_defaults_that_changed_since() {
        let path = std::path::Path::new("old.safetensors");
        let mut meta = CheckpointMeta::new("HalfCheetah-v5", "ppo", 1, "h");
        let none = rebel_envs::EnvConfig::new();
        let note = changed_defaults_note("HalfCheetah-v5", &meta, &none, path).unwrap();
        assert!(note.contains("old.safetensors") && note.contains("--env-opt euler_integrator=false if it was trained before session 25"), "{note}");
        assert!(note.contains("--env-opt mujoco_contacts=false if it was trained before session 15"), "{note}");
        let given = rebel_envs::EnvConfig::new().with("euler_integrator", rebel_envs::ConfigValue::Bool(true));
        let note = changed_defaults_note("HalfCheetah-v5", &meta, &given, path).unwrap();
        assert!(!note.contains("euler_integrator") && note.contains("mujoco_limits"), "{note}");
        assert!(note.contains("before session 19") && note.contains("23f473b"), "{note}");
        let note = changed_defaults_note("Swimmer-v5", &meta, &none, path).unwrap();
        assert!(note.contains("--env-opt rk4_integrator=false if it was trained before session 30"), "{note}");
        let rk4 = rebel_envs::EnvConfig::new().with("rk4_integrator", rebel_envs::ConfigValue::Bool(true));
        assert!(changed_defaults_note("Swimmer-v5", &meta, &rk4, path).is_none(), "nothing to tell where the command line sets it");
        let note = changed_defaults_note("Humanoid-v5", &meta, &none, path).unwrap();
        assert!(!note.contains("--env-opt") && note.contains("no option brings them back"), "{note}");
        meta.env_settings.insert("frame_skip".into(), toml::Value::Integer(5));
        assert!(changed_defaults_note("HalfCheetah-v5", &meta, &none, path).is_none());
    }
}
