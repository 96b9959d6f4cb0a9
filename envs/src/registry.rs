//! The environment registry: `make("Swimmer-v5", &config)` (Gymnasium's `gymnasium.make` and
//! `gymnasium.register`).
//!
//! | id           | constructor                          | max_episode_steps |
//! |--------------|--------------------------------------|-------------------|
//! | `Swimmer-v5` | [`crate::swimmer::Swimmer::new`]     | 1000              |
//! | `Reacher-v5` | [`crate::reacher::Reacher::new`]     | 50                |
//! | `InvertedPendulum-v5` | [`crate::inverted_pendulum::InvertedPendulum::new`] | 1000 |
//! | `InvertedDoublePendulum-v5` | [`crate::inverted_double_pendulum::InvertedDoublePendulum::new`] | 1000 |
//! | `HalfCheetah-v5` | [`crate::half_cheetah::SPEC`] | 1000 |
//! | `Hopper-v5` | [`crate::hopper::SPEC`] | 1000 |
//! | `Walker2d-v5` | [`crate::walker2d::SPEC`] | 1000 |
//! | `Ant-v5` | [`crate::ant::Ant::new`] | 1000 |
//! | `Humanoid-v5` | [`crate::humanoid::Humanoid::new`] | 1000 |
//!
//! The built-in ids are registered the first time the registry is used. Other crates add their
//! own with [`register`]. [`make`] wraps every environment that has a limit in a
//! [`TimeLimit`]; the option `max_episode_steps` (a whole number >= 1) overrides the registered
//! limit and is taken out of the options before the constructor sees them.

use std::collections::BTreeMap;
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::config::{ConfigValue, EnvConfig};
use crate::env::Env;
use crate::error::EnvError;
use crate::wrappers::{ClipAction, TimeLimit};

/// A constructor: options in, environment out. It must reject options it does not know.
pub type EnvCtor = fn(&EnvConfig) -> Result<Box<dyn Env>, EnvError>;

/// An option that [`make`] reads itself and never passes to constructors: the episode limit.
pub const MAX_EPISODE_STEPS_KEY: &str = "max_episode_steps";

/// An option that [`make`] reads itself and never passes to constructors: `true` wraps the environment in
/// [`ClipAction`], so that its reward sees actions clipped to the action space, as SB3 (which clips before
/// `env.step`) and CleanRL (Gymnasium's `ClipAction`) train. Default false: the action is passed on as given
/// (the actuators clamp it to their control range, and the control cost is charged on it, as in Gymnasium).
pub const CLIP_ACTIONS_KEY: &str = "clip_actions";

/// The first revision of a built-in environment's dynamics: what it stepped when revisions began to be recorded.
pub const FIRST_REVISION: &str =
    "the dynamics of rebel-rs on 2026-12-07 (session 27), when checkpoints began to record their revision";

/// One registered environment.
#[derive(Clone, Copy)]
struct Entry {
    max_episode_steps: Option<usize>,
    ctor: EnvCtor,
    history: &'static [&'static str],
}

fn swimmer_ctor(config: &EnvConfig) -> Result<Box<dyn Env>, EnvError> {
    Ok(Box::new(crate::swimmer::Swimmer::new(config)?))
}

fn reacher_ctor(config: &EnvConfig) -> Result<Box<dyn Env>, EnvError> {
    Ok(Box::new(crate::reacher::Reacher::new(config)?))
}

fn inverted_pendulum_ctor(config: &EnvConfig) -> Result<Box<dyn Env>, EnvError> {
    Ok(Box::new(crate::inverted_pendulum::InvertedPendulum::new(config)?))
}

fn inverted_double_pendulum_ctor(config: &EnvConfig) -> Result<Box<dyn Env>, EnvError> {
    Ok(Box::new(crate::inverted_double_pendulum::InvertedDoublePendulum::new(config)?))
}

fn half_cheetah_ctor(config: &EnvConfig) -> Result<Box<dyn Env>, EnvError> {
    Ok(Box::new(crate::half_cheetah::SPEC.make(config)?))
}

fn hopper_ctor(config: &EnvConfig) -> Result<Box<dyn Env>, EnvError> {
    Ok(Box::new(crate::hopper::SPEC.make(config)?))
}

fn walker2d_ctor(config: &EnvConfig) -> Result<Box<dyn Env>, EnvError> {
    Ok(Box::new(crate::walker2d::SPEC.make(config)?))
}

fn ant_ctor(config: &EnvConfig) -> Result<Box<dyn Env>, EnvError> {
    Ok(Box::new(crate::ant::Ant::new(config)?))
}

fn humanoid_ctor(config: &EnvConfig) -> Result<Box<dyn Env>, EnvError> {
    Ok(Box::new(crate::humanoid::Humanoid::new(config)?))
}

fn table() -> &'static RwLock<BTreeMap<String, Entry>> {
    static TABLE: OnceLock<RwLock<BTreeMap<String, Entry>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut m = BTreeMap::new();
        m.insert(
            "Swimmer-v5".to_string(),
            Entry { max_episode_steps: Some(crate::swimmer::MAX_EPISODE_STEPS), ctor: swimmer_ctor, history: crate::swimmer::DYNAMICS_HISTORY },
        );
        m.insert(
            crate::reacher::ID.to_string(),
            Entry { max_episode_steps: Some(crate::reacher::MAX_EPISODE_STEPS), ctor: reacher_ctor, history: crate::reacher::DYNAMICS_HISTORY },
        );
        m.insert(
            crate::inverted_pendulum::ID.to_string(),
            Entry {
                max_episode_steps: Some(crate::inverted_pendulum::MAX_EPISODE_STEPS),
                ctor: inverted_pendulum_ctor,
                history: crate::inverted_pendulum::DYNAMICS_HISTORY,
            },
        );
        m.insert(
            crate::inverted_double_pendulum::ID.to_string(),
            Entry {
                max_episode_steps: Some(crate::inverted_double_pendulum::MAX_EPISODE_STEPS),
                ctor: inverted_double_pendulum_ctor,
                history: crate::inverted_double_pendulum::DYNAMICS_HISTORY,
            },
        );
        m.insert(
            crate::half_cheetah::ID.to_string(),
            Entry { max_episode_steps: Some(crate::half_cheetah::MAX_EPISODE_STEPS), ctor: half_cheetah_ctor, history: crate::half_cheetah::DYNAMICS_HISTORY },
        );
        m.insert(
            crate::hopper::ID.to_string(),
            Entry { max_episode_steps: Some(crate::hopper::MAX_EPISODE_STEPS), ctor: hopper_ctor, history: crate::hopper::DYNAMICS_HISTORY },
        );
        m.insert(
            crate::walker2d::ID.to_string(),
            Entry { max_episode_steps: Some(crate::walker2d::MAX_EPISODE_STEPS), ctor: walker2d_ctor, history: crate::walker2d::DYNAMICS_HISTORY },
        );
        m.insert(crate::ant::ID.to_string(), Entry { max_episode_steps: Some(crate::ant::MAX_EPISODE_STEPS), ctor: ant_ctor, history: crate::ant::DYNAMICS_HISTORY });
        m.insert(
            crate::humanoid::ID.to_string(),
            Entry { max_episode_steps: Some(crate::humanoid::MAX_EPISODE_STEPS), ctor: humanoid_ctor, history: crate::humanoid::DYNAMICS_HISTORY },
        );
        RwLock::new(m)
    })
}

// The table holds only plain data, so a panic elsewhere cannot leave it half-written: a
// poisoned lock is safe to keep using.
fn read() -> RwLockReadGuard<'static, BTreeMap<String, Entry>> {
    table().read().unwrap_or_else(|e| e.into_inner())
}

fn write() -> RwLockWriteGuard<'static, BTreeMap<String, Entry>> {
    table().write().unwrap_or_else(|e| e.into_inner())
}

/// Registers `id` with its constructor and default episode limit (`None`: no [`TimeLimit`]), without a history of
/// its dynamics (revision 0 always; see [`register_with_history`]).
///
/// Errors: [`EnvError::AlreadyRegistered`] if `id` exists (built-ins included);
/// [`EnvError::BadOption`] for an empty id or a limit of 0.
pub fn register(id: &str, max_episode_steps: Option<usize>, ctor: EnvCtor) -> Result<(), EnvError> {
    register_with_history(id, max_episode_steps, ctor, &[])
}

/// [`register`], with the history of the environment's dynamics: one line per change that makes the same options
/// step differently (a fix, a new contact law), oldest first, saying what changed and when. Its length is the
/// dynamics' revision ([`dynamics_revision`]), which every checkpoint records, so that a policy run on a build whose
/// dynamics changed since it was trained is told which changes it meets. A change that an option can undo needs no
/// line: the checkpoint records every setting ([`settings`]).
///
/// Errors: those of [`register`].
pub fn register_with_history(
    id: &str,
    max_episode_steps: Option<usize>,
    ctor: EnvCtor,
    history: &'static [&'static str],
) -> Result<(), EnvError> {
    if id.trim().is_empty() {
        return Err(EnvError::BadOption { env: "registry".into(), key: "id".into(), msg: "must not be empty".into() });
    }
    if max_episode_steps == Some(0) {
        return Err(EnvError::BadOption {
            env: id.to_string(),
            key: MAX_EPISODE_STEPS_KEY.into(),
            msg: "must be >= 1 (or None for no limit), got 0".into(),
        });
    }
    let mut t = write();
    if t.contains_key(id) {
        return Err(EnvError::AlreadyRegistered(id.to_string()));
    }
    t.insert(id.to_string(), Entry { max_episode_steps, ctor, history });
    Ok(())
}

/// The registered ids, sorted.
pub fn registered() -> Vec<String> {
    read().keys().cloned().collect()
}

/// The registered episode limit of `id` (`Ok(None)`: no limit), or [`EnvError::UnknownEnv`].
pub fn registered_max_episode_steps(id: &str) -> Result<Option<usize>, EnvError> {
    Ok(lookup(id)?.max_episode_steps)
}

/// The history of `id`'s dynamics, oldest first (see [`register_with_history`]): line `r - 1` says what revision `r`
/// changed. Or [`EnvError::UnknownEnv`].
pub fn dynamics_history(id: &str) -> Result<&'static [&'static str], EnvError> {
    Ok(lookup(id)?.history)
}

/// The revision of `id`'s dynamics in this build: the length of its [`dynamics_history`] (0 for an environment
/// registered without one). Or [`EnvError::UnknownEnv`].
pub fn dynamics_revision(id: &str) -> Result<u32, EnvError> {
    Ok(dynamics_history(id)?.len() as u32)
}

/// The `(key, value)` options that undo a revision's change.
type Undoing = &'static [(&'static str, &'static str)];

/// Options that make this build step as a built-in environment did before a revision of its dynamics: (id, the
/// revision whose change they undo, its `(key, value)` pairs). A revision that no option undoes is not listed.
/// `envs/tests/dynamics_revisions.rs` holds each to the fingerprint the earlier revision had.
const UNDONE_BY: &[(&str, u32, Undoing)] = &[
    (crate::hopper::ID, 2, &[("rk4_integrator", "false")]),
    (crate::walker2d::ID, 2, &[("rk4_integrator", "false")]),
    (crate::ant::ID, 2, &[("rk4_integrator", "false")]),
    (crate::reacher::ID, 2, &[("rk4_integrator", "false")]),
    (crate::inverted_pendulum::ID, 2, &[("rk4_integrator", "false")]),
    (crate::inverted_double_pendulum::ID, 2, &[("rk4_integrator", "false")]),
    (crate::swimmer::ID, 2, &[("rk4_integrator", "false")]),
    (crate::half_cheetah::ID, 2, &[("mujoco_euler", "false")]),
];

/// The options with which this build steps `id` as revision `revision` of its dynamics did (those that undo every
/// change since, in order), or `None` where some change since has no such option (or `revision` is this build's or
/// newer: then nothing is to undo, and the options are empty). Or [`EnvError::UnknownEnv`].
pub fn options_for_revision(id: &str, revision: u32) -> Result<Option<EnvConfig>, EnvError> {
    let now = dynamics_revision(id)?;
    let mut cfg = EnvConfig::new();
    for r in revision.saturating_add(1)..=now {
        let Some((_, _, pairs)) = UNDONE_BY.iter().find(|(e, rev, _)| *e == id && *rev == r) else {
            return Ok(None);
        };
        for (k, v) in pairs.iter() {
            cfg.set(k, ConfigValue::parse(v));
        }
    }
    Ok(Some(cfg))
}

fn lookup(id: &str) -> Result<Entry, EnvError> {
    let t = read();
    t.get(id).copied().ok_or_else(|| {
        let known: Vec<&str> = t.keys().map(String::as_str).collect();
        EnvError::UnknownEnv { name: id.to_string(), known: known.join(", "), hint: unknown_hint(id, &known) }
    })
}

const NOT_YET: &str = "is not built in rebel-rs yet";

/// Gymnasium's MuJoCo environments that are not built here.
const NOT_BUILT: [(&str, &str); 2] = [("HumanoidStandup", NOT_YET), ("Pusher", NOT_YET)];

/// Why `id` is unknown, when a reason is close at hand: one of Gymnasium's environments not built here,
/// another version of a registered one, or a near spelling of a registered id (edit distance ≤ 2).
fn unknown_hint(id: &str, known: &[&str]) -> String {
    let family = id.rsplit_once("-v").map_or(id, |(f, _)| f);
    if let Some((name, why)) = NOT_BUILT.iter().find(|(n, _)| n.eq_ignore_ascii_case(family)) {
        return format!(" (Gymnasium's {name} {why})");
    }
    if let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(id)) {
        return format!(" (did you mean '{k}'? ids are case-sensitive)");
    }
    if let Some(k) = known.iter().find(|k| k.rsplit_once("-v").is_some_and(|(f, _)| f.eq_ignore_ascii_case(family))) {
        return format!(" (rebel-rs has {k}, the version Gymnasium 1.4 defines)");
    }
    let near = known.iter().map(|k| (edit_distance(&id.to_ascii_lowercase(), &k.to_ascii_lowercase()), *k)).min();
    match near {
        Some((d, k)) if d <= 2 => format!(" (did you mean '{k}'?)"),
        _ => String::new(),
    }
}

/// Levenshtein distance between two strings, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Makes the environment `id` with options `config`, wrapped in a [`TimeLimit`] when it has a
/// limit (registered, or `max_episode_steps` in `config`, which wins), and in a [`ClipAction`] with
/// `clip_actions = true`.
///
/// Errors: [`EnvError::UnknownEnv`] listing the registered ids; [`EnvError::BadOption`] for a
/// `max_episode_steps` that is not a whole number >= 1 or a `clip_actions` that is not a flag; whatever
/// the constructor returns (an unknown option's list of valid ones then names these two as well).
pub fn make(id: &str, config: &EnvConfig) -> Result<Box<dyn Env>, EnvError> {
    let entry = lookup(id)?;
    let mut limit = entry.max_episode_steps;
    let mut clip = false;
    let mut rest = std::collections::BTreeMap::new();
    for (k, v) in config.values() {
        if k == CLIP_ACTIONS_KEY {
            clip = match v {
                ConfigValue::Bool(b) => *b,
                other => {
                    return Err(EnvError::BadOption {
                        env: id.to_string(),
                        key: CLIP_ACTIONS_KEY.into(),
                        msg: format!("expected true or false, got {other:?}"),
                    })
                }
            };
        } else if k == MAX_EPISODE_STEPS_KEY {
            limit = match v {
                ConfigValue::Int(i) if *i >= 1 => Some(*i as usize),
                other => {
                    return Err(EnvError::BadOption {
                        env: id.to_string(),
                        key: MAX_EPISODE_STEPS_KEY.into(),
                        msg: format!("expected a whole number >= 1, got {other:?}"),
                    })
                }
            };
        } else {
            rest.insert(k.clone(), v.clone());
        }
    }
    let rest = config.noting_like(rest);
    let env = (entry.ctor)(&rest).map_err(|e| match e {
        EnvError::UnknownOption { env, key, valid } => {
            EnvError::UnknownOption { env, key, valid: format!("{valid}, and for every environment {CLIP_ACTIONS_KEY}, {MAX_EPISODE_STEPS_KEY}") }
        }
        other => other,
    })?;
    let env: Box<dyn Env> = if clip { Box::new(ClipAction::new(env)) } else { env };
    Ok(match limit {
        Some(n) => Box::new(TimeLimit::new(env, n)?),
        None => env,
    })
}

/// Every setting of the environment `id` made with `config`, each with the value in effect, defaults included: the
/// options its constructor read (through [`crate::config::ConfigReader`]), [`MAX_EPISODE_STEPS_KEY`] where it has a limit
/// and [`CLIP_ACTIONS_KEY`]. `make(id, &settings(id, config)?)` makes the same environment, today and after a default
/// changes; comparing two environments' settings shows what differs. An environment whose constructor reads its
/// options otherwise reports only the two keys `make` reads.
///
/// Errors: those of [`make`] (the environment is made once to learn them).
pub fn settings(id: &str, config: &EnvConfig) -> Result<EnvConfig, EnvError> {
    let noting = config.noting();
    let env = make(id, &noting)?;
    let mut out = noting.noted();
    if let Some(n) = env.max_episode_steps() {
        out.set(MAX_EPISODE_STEPS_KEY, ConfigValue::Int(n as i64));
    }
    let clip = matches!(config.values().get(CLIP_ACTIONS_KEY), Some(ConfigValue::Bool(true)));
    out.set(CLIP_ACTIONS_KEY, ConfigValue::Bool(clip));
    Ok(out)
}

/// The settings of the environment `id` made with `config` that its other settings leave without effect, each with
/// why and how to give it effect (for example the HalfCheetah's `euler_integrator`, a correction of Rapier's step,
/// while `mujoco_euler` takes MuJoCo's step instead). Only what an environment marks ([`ConfigReader::inert_if`])
/// is reported; `envs --settings` shows it and a run given such an option says so.
///
/// Errors: those of [`make`].
///
/// [`ConfigReader::inert_if`]: crate::config::ConfigReader::inert_if
pub fn inert_options(id: &str, config: &EnvConfig) -> Result<BTreeMap<String, String>, EnvError> {
    let noting = config.noting();
    make(id, &noting)?;
    Ok(noting.noted_inert())
}

/// The options `config` gives that its other settings leave without effect ([`inert_options`]) at a value other than
/// their default, each as its key and `key = value: why` (a user who set them expects them to act; one who copied
/// every setting, defaults included, is told nothing).
///
/// Errors: those of [`make`].
pub fn given_without_effect(id: &str, config: &EnvConfig) -> Result<Vec<(String, String)>, EnvError> {
    let inert = inert_options(id, config)?;
    if !config.values().keys().any(|k| inert.contains_key(k)) {
        return Ok(Vec::new());
    }
    let (now, defaults) = (settings(id, config)?, settings(id, &EnvConfig::new())?);
    Ok(config
        .values()
        .keys()
        .filter_map(|k| {
            let (why, v) = (inert.get(k)?, now.values().get(k)?);
            (defaults.values().get(k) != Some(v)).then(|| (k.clone(), format!("{k} = {v}: {why}")))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrappers::test_support::PointMass;

    fn point_mass(config: &EnvConfig) -> Result<Box<dyn Env>, EnvError> {
        config.reader("PointMass-unit").finish()?;
        Ok(Box::new(PointMass::new()))
    }

    /// An option given at a value other than its default where the other settings leave it without effect is
    /// named with why; the default value, an option that acts, or one given as the default in another type, is not.
    #[test]
    fn an_option_given_without_effect_is_named() {
        let given = |pairs: &[&str]| {
            let said = given_without_effect("HalfCheetah-v5", &EnvConfig::from_pairs(pairs).unwrap()).unwrap();
            assert!(said.iter().all(|(k, text)| text.starts_with(&format!("{k} = "))), "{said:?}");
            said.into_iter().map(|(_, text)| text).collect::<Vec<_>>()
        };
        let said = given(&["euler_integrator=false", "ctrl_cost_weight=0.2"]);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].starts_with("euler_integrator = false: mujoco_euler = true") && said[0].ends_with("(it acts with mujoco_euler=false)"), "{said:?}");
        assert!(given(&["euler_integrator=true", "contact_natural_frequency=15"]).is_empty());
        assert!(given(&["euler_integrator=false", "mujoco_euler=false"]).is_empty());
        let said = given(&["contact_natural_frequency=20"]);
        assert!(said.len() == 1 && said[0].contains("(it acts with mujoco_contacts=false, mujoco_euler=false)"), "{said:?}");
        assert!(given_without_effect("Swimmer-v5", &EnvConfig::new()).unwrap().is_empty());
        assert!(given_without_effect("Nope-v0", &EnvConfig::new()).is_err());
    }

    #[test]
    fn register_make_and_override_limit() {
        register("PointMass-unit-v0", Some(3), point_mass).unwrap();
        assert!(registered().contains(&"PointMass-unit-v0".to_string()));
        assert_eq!(registered_max_episode_steps("PointMass-unit-v0").unwrap(), Some(3));
        assert!(matches!(
            register("PointMass-unit-v0", None, point_mass),
            Err(EnvError::AlreadyRegistered(id)) if id == "PointMass-unit-v0"
        ));

        let mut env = make("PointMass-unit-v0", &EnvConfig::new()).unwrap();
        assert_eq!(env.max_episode_steps(), Some(3));
        env.reset(Some(0)).unwrap();
        let flags: Vec<bool> = (0..3).map(|_| env.step(&[0.0]).unwrap().truncated).collect();
        assert_eq!(flags, [false, false, true]);

        // The override is removed before the constructor (which rejects unknown keys) runs.
        let cfg = EnvConfig::new().with(MAX_EPISODE_STEPS_KEY, ConfigValue::Int(2));
        let mut env = make("PointMass-unit-v0", &cfg).unwrap();
        assert_eq!(env.max_episode_steps(), Some(2));
        env.reset(Some(0)).unwrap();
        assert!(!env.step(&[0.0]).unwrap().truncated);
        assert!(env.step(&[0.0]).unwrap().truncated);

        // Other unknown keys still reach the constructor and fail there.
        let bad = EnvConfig::new().with("gravity", ConfigValue::Float(1.0));
        assert!(
            matches!(make("PointMass-unit-v0", &bad), Err(EnvError::UnknownOption { key, .. }) if key == "gravity")
        );
        for v in [ConfigValue::Int(0), ConfigValue::Int(-4), ConfigValue::Float(10.0), ConfigValue::Str("x".into())] {
            let cfg = EnvConfig::new().with(MAX_EPISODE_STEPS_KEY, v);
            assert!(matches!(make("PointMass-unit-v0", &cfg), Err(EnvError::BadOption { .. })));
        }
    }

    #[test]
    fn clip_actions_clips_what_the_reward_sees() {
        register("PointMass-unit-clip-v0", Some(5), point_mass).unwrap();
        let ctrl = |cfg: &EnvConfig| {
            let mut env = make("PointMass-unit-clip-v0", cfg).unwrap();
            env.reset(Some(0)).unwrap();
            env.step(&[5.0]).unwrap().info["reward_ctrl"]
        };
        // the point mass charges 0.1·a² on the action it is given; clipped to its space [−1, 1] first: 0.1
        assert!((ctrl(&EnvConfig::new()) + 2.5).abs() < 1e-6);
        assert!((ctrl(&EnvConfig::new().with(CLIP_ACTIONS_KEY, ConfigValue::Bool(false))) + 2.5).abs() < 1e-6);
        let on = EnvConfig::new().with(CLIP_ACTIONS_KEY, ConfigValue::Bool(true)).with(MAX_EPISODE_STEPS_KEY, ConfigValue::Int(2));
        assert!((ctrl(&on) + 0.1).abs() < 1e-6);
        let env = make("PointMass-unit-clip-v0", &on).unwrap();
        assert_eq!(env.max_episode_steps(), Some(2), "both wrappers");
        assert_eq!(env.action_space().high, vec![f32::INFINITY], "Gymnasium's ClipAction: the space it takes is unbounded");
        let bad = EnvConfig::new().with(CLIP_ACTIONS_KEY, ConfigValue::Int(1));
        assert!(matches!(make("PointMass-unit-clip-v0", &bad), Err(EnvError::BadOption { key, .. }) if key == CLIP_ACTIONS_KEY));
        // a misspelt key's error names the two options every environment takes
        let typo = EnvConfig::new().with("clip_action", ConfigValue::Bool(true));
        let e = make("PointMass-unit-clip-v0", &typo).err().unwrap().to_string();
        assert!(e.contains("'clip_action'") && e.contains("clip_actions, max_episode_steps"), "{e}");
    }

    /// An environment registered with a history of its dynamics has that many revisions; one registered without has
    /// revision 0; every built-in one has a history; an unknown id is an error.
    #[test]
    fn the_revision_of_the_dynamics_is_the_length_of_their_history() {
        register_with_history("PointMass-history-v0", None, point_mass, &["first", "a fix"]).unwrap();
        assert_eq!(dynamics_revision("PointMass-history-v0").unwrap(), 2);
        assert_eq!(dynamics_history("PointMass-history-v0").unwrap(), &["first", "a fix"]);
        register("PointMass-nohistory-v0", None, point_mass).unwrap();
        assert_eq!(dynamics_revision("PointMass-nohistory-v0").unwrap(), 0);
        for id in ["Swimmer-v5", "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5", "Reacher-v5"] {
            assert!(dynamics_revision(id).unwrap() >= 1, "{id}");
        }
        assert!(matches!(dynamics_revision("Nope-v0"), Err(EnvError::UnknownEnv { .. })));
        assert!(matches!(register_with_history("Swimmer-v5", None, point_mass, &["x"]), Err(EnvError::AlreadyRegistered(_))));
    }

    #[test]
    fn no_limit_means_no_time_limit() {
        register("PointMass-unit-nolimit-v0", None, point_mass).unwrap();
        let mut env = make("PointMass-unit-nolimit-v0", &EnvConfig::new()).unwrap();
        assert_eq!(env.max_episode_steps(), None);
        env.reset(Some(1)).unwrap();
        for _ in 0..50 {
            assert!(!env.step(&[0.0]).unwrap().truncated);
        }
    }

    #[test]
    fn unknown_id_lists_known_ids() {
        match make("Swimer-v5", &EnvConfig::new()) {
            Err(EnvError::UnknownEnv { name, known, hint }) => {
                assert_eq!(name, "Swimer-v5");
                assert!(known.contains("Swimmer-v5"), "{known}");
                assert_eq!(hint, " (did you mean 'Swimmer-v5'?)");
            }
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("made an unknown env"),
        }
        assert!(matches!(register("", None, point_mass), Err(EnvError::BadOption { .. })));
        assert!(matches!(register("PointMass-zero", Some(0), point_mass), Err(EnvError::BadOption { .. })));
    }

    #[test]
    fn unknown_ids_say_what_they_are_closest_to() {
        let msg = |id: &str| make(id, &EnvConfig::new()).err().expect("unknown").to_string();
        let standup = msg("HumanoidStandup-v5");
        assert!(standup.contains("Gymnasium's HumanoidStandup is not built in rebel-rs yet") && standup.contains("registered environments: "), "{standup}");
        assert!(msg("humanoid-v4").contains("(rebel-rs has Humanoid-v5, the version Gymnasium 1.4 defines)"), "{}", msg("humanoid-v4"));
        assert!(msg("Ant-v4").contains("(rebel-rs has Ant-v5, the version Gymnasium 1.4 defines)"), "{}", msg("Ant-v4"));
        assert!(msg("Hopper-v4").contains("(rebel-rs has Hopper-v5, the version Gymnasium 1.4 defines)"), "{}", msg("Hopper-v4"));
        assert!(msg("halfcheetah-v5").contains("did you mean 'HalfCheetah-v5'? ids are case-sensitive"), "{}", msg("halfcheetah-v5"));
        assert!(msg("Walker-v5").contains("did you mean 'Walker2d-v5'?"), "{}", msg("Walker-v5"));
        let far = msg("CartPole-v1");
        assert!(!far.contains('(') && far.starts_with("unknown environment 'CartPole-v1'; registered"), "{far}");
        assert_eq!((edit_distance("kitten", "sitting"), edit_distance("", "ab"), edit_distance("same", "same")), (3, 2, 0));
    }

    #[test]
    fn swimmer_is_built_in_with_1000_steps() {
        assert!(registered().contains(&"Swimmer-v5".to_string()));
        assert!(matches!(register("Swimmer-v5", None, point_mass), Err(EnvError::AlreadyRegistered(_))));
        let env = make("Swimmer-v5", &EnvConfig::new()).unwrap();
        assert_eq!(env.id(), "Swimmer-v5");
        assert_eq!(env.max_episode_steps(), Some(1000));
        let env = make("Swimmer-v5", &EnvConfig::new().with(MAX_EPISODE_STEPS_KEY, ConfigValue::Int(50))).unwrap();
        assert_eq!(env.max_episode_steps(), Some(50));
    }

    /// `settings` reports every option with its value in effect, defaults included, and they make the same
    /// environment again: as options they are accepted as they are (ranges and floats read back), and they are
    /// their own settings.
    #[test]
    fn settings_hold_every_default_and_make_the_same_environment() {
        let cheetah = settings("HalfCheetah-v5", &EnvConfig::new()).unwrap();
        let v = cheetah.values();
        assert_eq!(v.get("euler_integrator"), Some(&ConfigValue::Bool(true)));
        assert_eq!(v.get("frame_skip"), Some(&ConfigValue::Int(5)));
        assert_eq!(v.get("ctrl_cost_weight"), Some(&ConfigValue::Float(0.1)));
        assert_eq!(v.get(MAX_EPISODE_STEPS_KEY), Some(&ConfigValue::Int(1000)));
        assert_eq!(v.get(CLIP_ACTIONS_KEY), Some(&ConfigValue::Bool(false)));
        let given = EnvConfig::new().with("euler_integrator", ConfigValue::Bool(false)).with(MAX_EPISODE_STEPS_KEY, ConfigValue::Int(7));
        let s = settings("HalfCheetah-v5", &given).unwrap();
        assert_eq!(s.values().get("euler_integrator"), Some(&ConfigValue::Bool(false)));
        assert_eq!(s.values().get(MAX_EPISODE_STEPS_KEY), Some(&ConfigValue::Int(7)));
        assert_eq!(s.values().len(), v.len());
        let hopper = settings("Hopper-v5", &EnvConfig::new()).unwrap();
        assert_eq!(hopper.values().get("healthy_z_range"), Some(&ConfigValue::Str("0.7,inf".into())));
        for id in registered() {
            let s = settings(&id, &EnvConfig::new()).unwrap();
            assert!(s.values().len() > 2 || id.starts_with("PointMass"), "{id}: {s:?}");
            assert_eq!(settings(&id, &s).unwrap(), s, "{id}");
        }
        // the recording is the call's own: the configuration given keeps no trace of it
        assert!(given.noted().values().is_empty());
    }
}
