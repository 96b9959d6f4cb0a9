//! The run directory of a training run: created new, given, or resumed; the resolved
//! configuration (`config.toml`) and its hash, which a resume must match.
//!
//! Layout (`runs/{env}__{algo}__{seed}__{time}`): `config.toml` (the resolved config, with only
//! the chosen algorithm's section), `metrics.jsonl` and `tb/` (the same tags),
//! `checkpoint.safetensors` (policy, Adam, the algorithm's state and the counters, written
//! atomically after every iteration), `summary.json` at the end.

use std::collections::{BTreeMap, BTreeSet};

use crate::checkpoint::{Checkpoint, CheckpointMeta};
use crate::io::fnv1a_hex;
use crate::logging::{write_config, RunDir};
use crate::machine::MachinePart;
use crate::runconfig::to_toml_string;
use crate::train::{EnvSection, RunOptions, TrainConfig, TrainError};

/// The checkpoint's file name inside a run directory.
pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// An open run directory with the configuration it runs.
pub struct Run {
    pub dir: RunDir,
    /// The resolved configuration as written to `config.toml`.
    pub toml_text: String,
    /// Hash of the configuration without `env_steps` (the budget may grow on resume).
    pub config_hash: String,
    /// The environment and its options (recorded in every checkpoint).
    env: EnvSection,
    /// Every setting of the environment the run steps in, defaults included (recorded in every checkpoint).
    pub env_settings: toml::Table,
    /// The revision of the environment's dynamics in this build (recorded in every checkpoint).
    pub env_revision: Option<u32>,
    /// The machines the run ran on, this one last (recorded in every checkpoint and in `summary.json`).
    pub machines: Vec<MachinePart>,
    algo: String,
    seed: u64,
}

/// The hash a resume must match: the configuration's TOML with `env_steps = 0`.
pub fn config_hash(cfg: &TrainConfig) -> Result<String, TrainError> {
    let c = TrainConfig { env_steps: 0, ..cfg.clone() };
    Ok(fnv1a_hex(to_toml_string(&c).map_err(|e| TrainError::Config(e.to_string()))?.as_bytes()))
}

impl Run {
    /// Opens the run directory of `opts` (new, given or resumed) for the resolved `cfg`, checks a
    /// resumed checkpoint's config hash and writes `config.toml`. Returns the checkpoint to resume: `loaded` if
    /// given (the resumed run's, already read), else read from the run directory.
    pub fn open(cfg: &TrainConfig, opts: &RunOptions, loaded: Option<Checkpoint>) -> Result<(Run, Option<Checkpoint>), TrainError> {
        let toml_text = to_toml_string(cfg).map_err(|e| TrainError::Config(e.to_string()))?;
        let config_hash = config_hash(cfg)?;
        let (dir, resumed) = match (&opts.resume, &opts.run_dir) {
            (Some(dir), _) if !dir.join(CHECKPOINT).exists() && dir.join("config.toml").is_file() => {
                // Killed before its first checkpoint: nothing to continue from, so the run starts
                // again from the beginning (its partial logs are replaced, not appended to).
                let run = RunDir::open_existing(dir)?;
                eprintln!("{} has no checkpoint yet (the run stopped before its first one): starting it from the beginning", dir.display());
                clear_logs(&run)?;
                (run, None)
            }
            (Some(dir), _) => {
                let ck = match loaded {
                    Some(ck) => ck,
                    None => Checkpoint::load(dir.join(CHECKPOINT))?,
                };
                (RunDir::open_existing(dir)?, Some(ck))
            }
            (None, Some(dir)) => {
                let held: Vec<&str> = ["config.toml", "metrics.jsonl", CHECKPOINT, "summary.json"]
                    .into_iter()
                    .filter(|f| dir.join(f).exists())
                    .collect();
                if !held.is_empty() {
                    return Err(TrainError::Config(format!(
                        "--run-dir {} already holds a run ({}): continue it with --resume {}, or give a new or empty --run-dir",
                        dir.display(),
                        held.join(", "),
                        dir.display()
                    )));
                }
                std::fs::create_dir_all(dir).map_err(|e| TrainError::Config(format!("cannot create {}: {e}", dir.display())))?;
                (RunDir::open_existing(dir)?, None)
            }
            (None, None) => (RunDir::create(&opts.runs_base, &cfg.env.id, &cfg.algo, cfg.seed)?, None),
        };
        if let Some(ck) = &resumed {
            if ck.meta.config_hash != config_hash {
                let old = std::fs::read_to_string(dir.config_path()).unwrap_or_default();
                if !same_with_todays_defaults(&old, &config_hash) {
                    return Err(TrainError::ResumeMismatch { run: dir.path().display().to_string(), keys: differing_keys(&old, &toml_text) });
                }
            }
        }
        write_config(dir.path(), &toml_text)?;
        let run = Run { dir, toml_text, config_hash, env: cfg.env.clone(), env_settings: toml::Table::new(), env_revision: None, machines: Vec::new(), algo: cfg.algo.clone(), seed: cfg.seed };
        Ok((run, resumed))
    }

    /// An empty checkpoint stamped with this run's env and its options, algorithm, seed and config hash.
    pub fn new_checkpoint(&self) -> Checkpoint {
        let mut meta = CheckpointMeta::new(&self.env.id, &self.algo, self.seed, &self.config_hash);
        meta.env_options = self.env.options.clone();
        meta.env_settings = self.env_settings.clone();
        meta.env_revision = self.env_revision;
        meta.machines = self.machines.clone();
        Checkpoint::new(meta)
    }
}

/// What a checkpoint's policy meets where this build's dynamics of `id`, its environment, are not those it was trained
/// on ([`rebel_envs::dynamics_revision`]): the changes since, one per revision, or that it comes from a newer build.
/// `None` where they are the same, where the checkpoint records no revision (written before they were recorded) or
/// another environment, or where `id` is not registered.
pub fn dynamics_note(meta: &CheckpointMeta, id: &str) -> Option<String> {
    let recorded = meta.env_revision.filter(|_| meta.env_id == id)?;
    let history = rebel_envs::dynamics_history(id).ok()?;
    let now = history.len() as u32;
    if recorded == now {
        return None;
    }
    if recorded > now {
        return Some(format!(
            "it was trained on revision {recorded} of {id}'s dynamics, newer than this build's {now}: its returns here may \
             differ from its run's (run it with the build it was trained with to reproduce them)"
        ));
    }
    let changes: Vec<String> =
        history.iter().enumerate().skip(recorded as usize).map(|(i, what)| format!("revision {}: {what}", i + 1)).collect();
    let remedy = match rebel_envs::options_for_revision(id, recorded).ok().flatten() {
        Some(cfg) if !cfg.values().is_empty() => {
            let shown: Vec<String> = cfg.values().iter().map(|(k, v)| format!("--env-opt {k}={v}")).collect();
            format!("{} steps as it was trained", shown.join(" "))
        }
        _ => "no option restores them, so its returns here may differ from its run's".to_string(),
    };
    Some(format!("{id}'s dynamics changed since it was trained (revision {recorded}, this build {now}; {}); {remedy}", changes.join("; ")))
}

/// The options with which this build steps `id` as the revision `meta` records did ([`rebel_envs::options_for_revision`]),
/// less the keys `given` sets (which win): what `eval`, `render` and `train --resume` apply to a checkpoint of an
/// earlier revision. Empty where the revisions agree, none is recorded, the checkpoint is of another environment, or
/// no option undoes the changes (its [`dynamics_note`] says so).
pub fn undoing_options(meta: &CheckpointMeta, id: &str, given: impl Fn(&str) -> bool) -> rebel_envs::EnvConfig {
    let mut out = rebel_envs::EnvConfig::new();
    let Some(recorded) = meta.env_revision.filter(|_| meta.env_id == id) else { return out };
    let Ok(Some(cfg)) = rebel_envs::options_for_revision(id, recorded) else { return out };
    for (k, v) in cfg.values().iter().filter(|(k, _)| !given(k)) {
        out.set(k, v.clone());
    }
    out
}

/// Defaults that changed in a way that changes an environment's dynamics, for checkpoints that predate the record
/// of their environment's settings: (environment, option, its value before, the session that changed it).
pub const CHANGED_DEFAULTS: &[(&str, &str, &str, u32)] = &[
    ("HalfCheetah-v5", "mujoco_contacts", "false", 15),
    ("HalfCheetah-v5", "mujoco_limits", "false", 15),
    ("Hopper-v5", "mujoco_contacts", "false", 15),
    ("Hopper-v5", "mujoco_limits", "false", 15),
    ("Walker2d-v5", "mujoco_contacts", "false", 15),
    ("Walker2d-v5", "mujoco_limits", "false", 15),
    ("Ant-v5", "mujoco_contacts", "false", 15),
    ("Ant-v5", "mujoco_limits", "false", 15),
    ("HalfCheetah-v5", "euler_integrator", "false", 25),
    ("Swimmer-v5", "rk4_integrator", "false", 30),
    ("Reacher-v5", "rk4_integrator", "false", 30),
    ("InvertedPendulum-v5", "rk4_integrator", "false", 30),
    ("InvertedDoublePendulum-v5", "rk4_integrator", "false", 30),
    ("HalfCheetah-v5", "mujoco_euler", "false", 31),
];

/// The environments whose dynamics changed in a way no option undoes before checkpoints recorded the revision of
/// their dynamics (MuJoCo's contact and limit laws, sessions 18 and 19), and what their checkpoints without recorded
/// settings are told about it.
pub const CONTACT_LAW_TASKS: [&str; 5] = ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5"];

pub const SESSION_19_CONTACTS: &str = "if it was trained before session 19 (2026-12-06), its dynamics have changed since, and no \
    option brings them back: MuJoCo's contact and limit laws gained the Coriolis terms in their free acceleration in \
    session 18 (commit d740651) and became one constraint problem in session 19 (commit 23f473b)";

/// For a checkpoint of `id` that does not record its environment's settings (`meta`), each default of
/// [`CHANGED_DEFAULTS`] that neither its recorded options nor `given` set, as `--env-opt key=before if it was trained
/// before session S`.
pub fn changed_defaults(id: &str, meta: &CheckpointMeta, given: impl Fn(&str) -> bool) -> Vec<String> {
    CHANGED_DEFAULTS
        .iter()
        .filter(|(env, key, ..)| *env == id && !meta.env_options.contains_key(*key) && !given(key))
        .map(|(_, key, before, session)| format!("--env-opt {key}={before} if it was trained before session {session}"))
        .collect()
}

/// Says on stderr, once per process, which options given for environment `id` its other settings leave without
/// effect ([`rebel_envs::given_without_effect`]), with why and how to give them effect. The run goes on: nothing
/// it steps changes, and a configuration holding every setting at its default is told nothing.
pub fn note_given_without_effect(id: &str, config: &rebel_envs::EnvConfig) {
    note_without_effect_of(id, config, |_| true);
}

/// [`note_given_without_effect`] for the keys of `config` that `named` picks (those the command line gave, where
/// `config` also holds options a checkpoint recorded); the others still decide what is without effect.
pub fn note_without_effect_of(id: &str, config: &rebel_envs::EnvConfig, named: impl Fn(&str) -> bool) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !config.values().keys().any(|k| named(k)) {
        return;
    }
    let said: Vec<String> =
        rebel_envs::given_without_effect(id, config).unwrap_or_default().into_iter().filter(|(k, _)| named(k)).map(|(_, text)| text).collect();
    if !said.is_empty() && !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        eprintln!("note: {id}: without effect here: {}", said.join("; "));
    }
}

/// What a new run should say when the policy it starts from (`policy.init`, an experiment's or a comparison's
/// reference policy), the checkpoint at `path` with `meta`, was trained in `env`'s environment on other dynamics or
/// settings than `env` (id and options) steps: the revision it was trained on and the options that give it back, the
/// recorded settings that differ, or, for a checkpoint that records neither, the changed defaults that may apply. The
/// run keeps its own environment (the note says how to match the policy's). `None` where they agree, or where the
/// checkpoint is of another environment (its sizes are checked elsewhere).
pub fn start_policy_note(meta: &CheckpointMeta, path: &std::path::Path, env: &EnvSection) -> Option<String> {
    let id = env.id.as_str();
    if meta.env_id != id {
        return None;
    }
    let cfg = env.env_config().ok()?;
    let mut said = Vec::new();
    // a checkpoint that records neither its settings nor its revision may or may not have been stepped otherwise
    let known = meta.env_revision.is_some() || !meta.env_settings.is_empty();
    let now = rebel_envs::dynamics_revision(id).ok()?;
    if let Some(r) = meta.env_revision.filter(|r| *r != now) {
        let undo = rebel_envs::options_for_revision(id, r).ok().flatten().filter(|u| !u.values().is_empty());
        match undo {
            Some(u) if u.values().iter().all(|(k, v)| cfg.values().get(k) == Some(v)) => {}
            Some(u) => {
                let shown: Vec<String> = u.values().iter().map(|(k, v)| format!("--env-opt {k}={v}")).collect();
                said.push(format!(
                    "it was trained on revision {r} of the dynamics, this run steps revision {now} ({} steps revision {r})",
                    shown.join(" ")
                ));
            }
            None if r > now => said.push(format!("it was trained on revision {r} of the dynamics, newer than this build's {now}")),
            None => said.push(format!("it was trained on revision {r} of the dynamics, this run steps revision {now}, and no option gives {r} back")),
        }
    }
    if !meta.env_settings.is_empty() {
        let today = env.settings().ok()?;
        // a setting added since the checkpoint was written is the revision's business (above)
        let drift: Vec<String> =
            settings_drift(&meta.env_settings, &today, &toml::Table::new()).iter().filter(|d| d.recorded.is_some()).map(|d| d.to_string()).collect();
        if !drift.is_empty() {
            said.push(format!("its settings differ: {}", drift.join(", ")));
        }
    } else if meta.env_revision.is_none() {
        let changed = changed_defaults(id, meta, |k| env.options.contains_key(k));
        if !changed.is_empty() {
            said.push(format!("it does not record its environment's settings; to step those of its time, add {}", changed.join(", ")));
        }
        if CONTACT_LAW_TASKS.contains(&id) {
            said.push(SESSION_19_CONTACTS.to_string());
        }
    }
    (!said.is_empty()).then(|| {
        format!(
            "note: {}, the policy this run starts from, {} on {id} stepped otherwise: {}. The run keeps its own \
             environment options",
            path.display(),
            if known { "was trained" } else { "may have been trained" },
            said.join("; ")
        )
    })
}

/// `options` as `key=value, ...`, for the notes.
pub fn shown_options(options: &rebel_envs::EnvConfig) -> String {
    options.values().iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

/// A setting of an environment whose value a checkpoint recorded and the value the same environment has today
/// differ: a default that changed (both set), an option this build no longer has (`today` unset), or one added
/// since the checkpoint was written (`recorded` unset).
#[derive(Clone, Debug, PartialEq)]
pub struct Drift {
    pub key: String,
    pub recorded: Option<toml::Value>,
    pub today: Option<toml::Value>,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.recorded, &self.today) {
            (Some(r), Some(t)) => write!(f, "{} = {r} when trained, {t} now", self.key),
            (Some(r), None) => write!(f, "{} = {r} when trained, not an option now (left out)", self.key),
            (None, Some(t)) => write!(f, "{} not recorded (added since), {t} now", self.key),
            (None, None) => write!(f, "{}", self.key),
        }
    }
}

/// How the settings a checkpoint recorded differ from `today`'s (the same environment made now from the same
/// options), leaving out the keys `given` holds (options set explicitly now, which win).
pub fn settings_drift(recorded: &toml::Table, today: &toml::Table, given: &toml::Table) -> Vec<Drift> {
    let keys: BTreeSet<&String> = recorded.keys().chain(today.keys()).collect();
    keys.into_iter()
        .filter(|k| !given.contains_key(*k) && recorded.get(*k) != today.get(*k))
        .map(|k| Drift { key: k.clone(), recorded: recorded.get(k).cloned(), today: today.get(k).cloned() })
        .collect()
}

/// `options` with every recorded value of `drift` that today's environment still has (defaults that changed since).
pub fn as_recorded(options: &toml::Table, drift: &[Drift]) -> toml::Table {
    let mut out = options.clone();
    for d in drift {
        if let (Some(r), Some(_)) = (&d.recorded, &d.today) {
            out.insert(d.key.clone(), r.clone());
        }
    }
    out
}

/// Removes the logs of a run attempt that never reached a checkpoint (`metrics.jsonl`, the event
/// files in `tb/`), so that the run started again writes them as an uninterrupted run would.
fn clear_logs(run: &RunDir) -> Result<(), TrainError> {
    let gone = |r: std::io::Result<()>, p: &std::path::Path| match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(TrainError::Config(format!("cannot remove {} to restart the run: {e}", p.display())))
        }
        _ => Ok(()),
    };
    let m = run.metrics_path();
    gone(std::fs::remove_file(&m), &m)?;
    run.remove_event_files()?;
    Ok(())
}

/// Whether a run's `config.toml`, written by an earlier version that lacked some keys, is read today (the
/// missing keys at their defaults, which keep the earlier behaviour) as the configuration hashed to `hash`:
/// such a run resumes, and its later checkpoints carry today's hash.
fn same_with_todays_defaults(stored: &str, hash: &str) -> bool {
    toml::from_str::<TrainConfig>(stored)
        .ok()
        .and_then(|c| c.resolve().ok())
        .and_then(|c| config_hash(&c).ok())
        .is_some_and(|h| h == hash)
}

/// Dotted keys whose values differ between two TOML documents (`env_steps` left out).
pub fn differing_keys(a: &str, b: &str) -> String {
    fn flat(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
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
    let (mut fa, mut fb) = (BTreeMap::new(), BTreeMap::new());
    flat("", &parse(a), &mut fa);
    flat("", &parse(b), &mut fb);
    let keys: BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    let diff: Vec<String> = keys
        .into_iter()
        .filter(|k| k.as_str() != "env_steps" && fa.get(*k) != fb.get(*k))
        .map(|k| format!("{k} ({} → {})", fa.get(k).map(String::as_str).unwrap_or("unset"), fb.get(k).map(String::as_str).unwrap_or("unset")))
        .collect();
    if diff.is_empty() { "the checkpoint's config hash (config.toml was edited?)".into() } else { diff.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The note on other dynamics names each revision since the recorded one, and says nothing where there is no
    /// record, the same revision, another environment or an unknown one.
    #[test]
    fn the_dynamics_note_names_the_revisions_since() {
        let now = rebel_envs::dynamics_revision("Hopper-v5").unwrap();
        let mut meta = CheckpointMeta::new("Hopper-v5", "ppo", 1, "h");
        assert_eq!(dynamics_note(&meta, "Hopper-v5"), None);
        meta.env_revision = Some(now);
        assert_eq!(dynamics_note(&meta, "Hopper-v5"), None);
        meta.env_revision = Some(0);
        let note = dynamics_note(&meta, "Hopper-v5").unwrap();
        for r in 1..=now {
            assert!(note.contains(&format!("revision {r}: ")), "{note}");
        }
        assert!(note.contains(&format!("(revision 0, this build {now};")), "{note}");
        // revision 1's first change no option undoes; the RK4 step of revision 2, `rk4_integrator=false` does
        assert!(note.ends_with("no option restores them, so its returns here may differ from its run's"), "{note}");
        assert!(undoing_options(&meta, "Hopper-v5", |_| false).values().is_empty());
        meta.env_revision = Some(1);
        let note = dynamics_note(&meta, "Hopper-v5").unwrap();
        assert!(note.ends_with("; --env-opt rk4_integrator=false steps as it was trained"), "{note}");
        let undo = undoing_options(&meta, "Hopper-v5", |_| false);
        assert_eq!(undo, rebel_envs::EnvConfig::new().with("rk4_integrator", rebel_envs::ConfigValue::Bool(false)));
        assert_eq!(shown_options(&undo), "rk4_integrator=false");
        assert!(undoing_options(&meta, "Hopper-v5", |k| k == "rk4_integrator").values().is_empty(), "a key given wins");
        assert!(undoing_options(&meta, "Walker2d-v5", |_| false).values().is_empty(), "another environment's checkpoint");
        assert_eq!(dynamics_note(&meta, "Walker2d-v5"), None);
        meta.env_id = "Nope-v0".into();
        assert_eq!(dynamics_note(&meta, "Nope-v0"), None);
    }

    /// A run that starts from a checkpoint's policy hears how the environment it steps differs from the one the
    /// policy was trained in: an earlier revision not undone (and nothing once the undoing option is set), a recorded
    /// setting it changes, the changed defaults for a checkpoint that records neither; nothing for another environment.
    #[test]
    fn a_start_policy_trained_on_other_dynamics_is_noted() {
        let path = std::path::Path::new("ref.safetensors");
        let plain = EnvSection { id: "Swimmer-v5".into(), options: toml::Table::new() };
        let mut pinned = plain.clone();
        pinned.options.insert("rk4_integrator".into(), toml::Value::Boolean(false));
        // written before the settings and the revision were recorded
        let mut meta = CheckpointMeta::new("Swimmer-v5", "rebel", 1, "h");
        let note = start_policy_note(&meta, path, &plain).unwrap();
        assert!(note.starts_with("note: ref.safetensors, the policy this run starts from, may have been trained on Swimmer-v5"), "{note}");
        assert!(note.contains("--env-opt rk4_integrator=false if it was trained before session 30"), "{note}");
        assert_eq!(start_policy_note(&meta, path, &pinned), None, "the run sets the changed default itself");
        // revision 1, recorded
        meta.env_revision = Some(1);
        let note = start_policy_note(&meta, path, &plain).unwrap();
        assert!(note.contains("starts from, was trained on Swimmer-v5 stepped otherwise"), "{note}");
        assert!(note.contains("trained on revision 1 of the dynamics, this run steps revision 2 (--env-opt rk4_integrator=false steps revision 1)"), "{note}");
        assert_eq!(start_policy_note(&meta, path, &pinned), None, "the run steps revision 1");
        // today's revision with its settings recorded: a setting the run changes is named
        meta.env_revision = Some(rebel_envs::dynamics_revision("Swimmer-v5").unwrap());
        meta.env_settings = plain.settings().unwrap();
        assert_eq!(start_policy_note(&meta, path, &plain), None);
        let note = start_policy_note(&meta, path, &pinned).unwrap();
        assert!(note.contains("rk4_integrator = true when trained, false now"), "{note}");
        // a policy of another environment is not this note's business
        let other = EnvSection { id: "Hopper-v5".into(), options: toml::Table::new() };
        assert_eq!(start_policy_note(&meta, path, &other), None);
    }

    /// A run written before a key existed (its config.toml lacks it) resumes when today's default of the key
    /// is what the file means; a value that really differs is still refused.
    #[test]
    fn a_config_lacking_keys_added_since_matches_at_their_defaults() {
        let cfg = TrainConfig { algo: "ppo".into(), ..TrainConfig::default() }.resolve().unwrap();
        let hash = config_hash(&cfg).unwrap();
        let full = to_toml_string(&cfg).unwrap();
        let older: String = full
            .lines()
            .filter(|l| !l.starts_with("min_steps") && !l.starts_with("normalize_obs = false") && !l.starts_with("activation"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(older.len() < full.len() && older.contains("[ppo]"), "{older}");
        assert!(same_with_todays_defaults(&older, &hash));
        assert!(!same_with_todays_defaults(&older.replace("seed = 1", "seed = 2"), &hash));
        assert!(!same_with_todays_defaults("not toml [", &hash));
    }
}
