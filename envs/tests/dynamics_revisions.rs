//! Every built-in environment's dynamics are pinned to its revision ([`rebel_envs::dynamics_revision`]): a fixed
//! open-loop rollout's states, stored in `data/dynamics_fingerprints.txt` with the revision they were taken at, must
//! come back the same. A change that makes the same options step differently fails here until the environment's
//! `DYNAMICS_HISTORY` says what changed (so that a checkpoint trained before it is told, see `rebel eval`) and the
//! fingerprint is taken again:
//!
//!     REBEL_BLESS_DYNAMICS=1 cargo test -p rebel-envs --test dynamics_revisions
//!
//! The rollout: `reset(Some(7))`, then up to 150 steps of a saturating sinusoid per action (joint limits and, on the
//! locomotion tasks, floor contacts and falls are all reached), with the default options. The fingerprint holds the
//! generalised positions and velocities (the observation where an environment has none) and the summed reward after
//! steps 1, 2, 5, 10, 25, 50, 100 and 150, and the step at which the episode ended, if it did.
//!
//! The check is bit-level in practice: the bodies are simulated in f32, and a reset noise one part in a million
//! larger moves the Ant's and the HalfCheetah's fingerprints far past the tolerance by step 150. It therefore also
//! depends on the processor's and the C library's floating point (the environments do not use libtorch, whose kernels
//! depend on the processor; glibc's `sinf` and `expf` pick a variant by processor). If it fails on code that did not
//! change (the commit that took the fingerprint fails too), the machine rounds differently: take the fingerprint
//! again, with no history line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rebel_envs::{dynamics_revision, inert_options, make, options_for_revision, registered, ConfigValue, EnvConfig};

const STEPS: usize = 150;
const RECORDED_AT: [usize; 8] = [1, 2, 5, 10, 25, 50, 100, 150];
/// Relative tolerance (and absolute, below 1). The states are f32 (Rapier's), so one rounding step is 6e-8 relative and
/// the check is exact in practice (see the module's comment).
const TOL: f64 = 1e-9;
const BLESS: &str = "REBEL_BLESS_DYNAMICS";

fn data_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/dynamics_fingerprints.txt")
}

/// The fingerprints of earlier revisions, kept when a revision is superseded.
fn earlier_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/dynamics_fingerprints_earlier.txt")
}

/// The fingerprint of `id` made with `config`: the values described in the module's comment, with the number of steps
/// taken last.
fn fingerprint(id: &str, config: &EnvConfig) -> Vec<f64> {
    let mut env = make(id, config).unwrap_or_else(|e| panic!("{id}: {e}"));
    env.reset(Some(7)).unwrap();
    let space = env.action_space().clone();
    let (mut values, mut total, mut taken) = (Vec::new(), 0.0f64, 0usize);
    for t in 1..=STEPS {
        let action: Vec<f32> = (0..space.dim())
            .map(|j| {
                let s = (1.5 * (0.35 * t as f64 + 1.7 * j as f64).sin()).clamp(-1.0, 1.0) as f32;
                let (lo, hi) = (space.low[j], space.high[j]);
                0.5 * (lo + hi) + 0.5 * (hi - lo) * s
            })
            .collect();
        let step = env.step(&action).unwrap_or_else(|e| panic!("{id}, step {t}: {e}"));
        total += step.reward;
        taken = t;
        if RECORDED_AT.contains(&t) || step.done() {
            match env.qpos_qvel() {
                Some((q, v)) => values.extend(q.into_iter().chain(v)),
                None => values.extend(step.obs.iter().map(|&x| x as f64)),
            }
            values.push(total);
        }
        if step.done() {
            break;
        }
    }
    values.push(taken as f64);
    values
}

/// The first place where `now` differs from `stored` by more than the tolerance, in words.
fn difference(stored: &[f64], now: &[f64]) -> Option<String> {
    if stored.len() != now.len() {
        return Some(format!("{} values stored, {} now (the episode ends at another step)", stored.len(), now.len()));
    }
    stored.iter().zip(now).enumerate().find(|(_, (a, b))| !((*a - *b).abs() <= TOL * a.abs().max(1.0))).map(|(i, (a, b))| {
        format!("value {i} of {} was {a:?}, is {b:?} (tolerance {TOL:e} relative)", stored.len())
    })
}

/// The fingerprints stored in `file`: (id, revision, values), one per line.
fn lines(file: &PathBuf) -> Vec<(String, u32, Vec<f64>)> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let (id, rev) = (words.next().unwrap(), words.next().unwrap().parse().unwrap());
        let values = words.map(|w| w.parse::<f64>().unwrap()).collect();
        out.push((id.to_string(), rev, values));
    }
    out
}

/// The stored fingerprints: id → (revision, values).
fn stored() -> BTreeMap<String, (u32, Vec<f64>)> {
    lines(&data_file()).into_iter().map(|(id, rev, values)| (id, (rev, values))).collect()
}

/// One line of a fingerprint file.
fn line(id: &str, rev: u32, values: &[f64]) -> String {
    let shown: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("{id} {rev} {}\n", shown.join(" "))
}

fn bless(now: &BTreeMap<String, (u32, Vec<f64>)>) {
    let mut text = String::from(
        "# The dynamics of every built-in environment at its revision: id, revision, then the fingerprint of\n\
         # envs/tests/dynamics_revisions.rs. Written by REBEL_BLESS_DYNAMICS=1 cargo test -p rebel-envs --test dynamics_revisions\n",
    );
    for (id, (rev, values)) in now {
        text.push_str(&line(id, *rev, values));
    }
    // a superseded revision's fingerprint goes to the earlier ones
    let mut earlier = std::fs::read_to_string(earlier_file()).unwrap_or_default();
    let kept = lines(&earlier_file());
    for (id, (rev, values)) in stored() {
        let superseded = now.get(&id).is_some_and(|(r, _)| *r > rev);
        if superseded && !kept.iter().any(|(i, r, _)| *i == id && *r == rev) {
            earlier.push_str(&line(&id, rev, &values));
        }
    }
    std::fs::write(earlier_file(), earlier).unwrap();
    let dir = data_file().parent().unwrap().to_path_buf();
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).unwrap();
    std::io::Write::write_all(&mut tmp, text.as_bytes()).unwrap();
    tmp.persist(data_file()).unwrap();
}

/// The dynamics of every built-in environment are those its revision was taken at: a change fails here with what to do.
#[test]
fn every_environment_steps_as_its_revision_recorded() {
    let now: BTreeMap<String, (u32, Vec<f64>)> = registered()
        .into_iter()
        .map(|id| {
            let rev = dynamics_revision(&id).unwrap();
            let values = fingerprint(&id, &EnvConfig::new());
            (id, (rev, values))
        })
        .collect();
    if std::env::var_os(BLESS).is_some() {
        bless(&now);
        eprintln!("wrote {}", data_file().display());
        return;
    }
    let stored = stored();
    let mut problems = Vec::new();
    for (id, (rev, values)) in &now {
        let Some((stored_rev, stored_values)) = stored.get(id) else {
            problems.push(format!("{id}: no fingerprint stored; take one with {BLESS}=1"));
            continue;
        };
        match (stored_rev == rev, difference(stored_values, values)) {
            (true, None) => {}
            (true, Some(d)) => problems.push(format!(
                "{id}: its dynamics changed at revision {rev} ({d}). A checkpoint trained before would run differently \
                 without a word: add a line to its DYNAMICS_HISTORY saying what changed (the revision goes up, and eval \
                 tells older checkpoints), then take the fingerprint again with {BLESS}=1. If the change is an option's \
                 new default, the checkpoints' recorded settings cover it and only the fingerprint is taken again. If \
                 the code did not change (the commit that took the fingerprint fails here too), this machine's floating \
                 point differs from that machine's: take the fingerprint again, with no history line."
            )),
            (false, _) => problems.push(format!(
                "{id}: revision {rev} in this build, {stored_rev} in the fingerprints: take the fingerprint of the new \
                 revision with {BLESS}=1"
            )),
        }
    }
    for id in stored.keys().filter(|id| !now.contains_key(*id)) {
        problems.push(format!("{id}: a fingerprint is stored but no such environment is registered; take them again with {BLESS}=1"));
    }
    assert!(problems.is_empty(), "{} (file {})", problems.join("\n"), data_file().display());
}

/// An earlier revision whose changes options undo ([`options_for_revision`], which `rebel eval`, `render` and `train
/// --resume` apply to a checkpoint of it) steps again as it did: this build with those options gives the fingerprint
/// the revision had (the Hopper's and the Walker2d's Rapier step before session 28, the Ant's before session 29).
#[test]
fn earlier_revisions_step_again_with_the_options_that_undo_them() {
    let earlier = lines(&earlier_file());
    assert!(!earlier.is_empty(), "no earlier fingerprints in {}", earlier_file().display());
    for (id, rev, values) in earlier {
        let now = dynamics_revision(&id).unwrap();
        assert!(rev < now, "{id}: revision {rev} is not earlier than this build's {now}");
        let Some(cfg) = options_for_revision(&id, rev).unwrap() else { continue };
        assert!(!cfg.values().is_empty(), "{id}: revision {rev} differs from {now}, so some option must undo it");
        let again = fingerprint(&id, &cfg);
        assert_eq!(difference(&values, &again), None, "{id} with {:?} does not step as revision {rev} did", cfg.values());
    }
    // what no option undoes is said so, and this build's revision needs nothing
    assert_eq!(options_for_revision("Hopper-v5", 2).unwrap().map(|c| c.values().len()), Some(0));
    assert!(options_for_revision("Nope-v0", 1).is_err());
}

/// The fingerprint sees changes of the dynamics as small as the ones revisions are for: the HalfCheetah's Euler step
/// as a correction of Rapier's step instead of taken whole (each within 1e-5 of MuJoCo's from MuJoCo's states), the Swimmer with two RK4 steps per
/// time step (its states within 1e-6 of MuJoCo's either way), the Hopper on Rapier's semi-implicit step instead of MuJoCo's RK4; and it is the same twice.
#[test]
fn a_change_of_the_dynamics_moves_the_fingerprint() {
    for (id, key, value) in [
        ("HalfCheetah-v5", "mujoco_euler", ConfigValue::Bool(false)),
        ("Swimmer-v5", "substeps", ConfigValue::Int(2)),
        ("Hopper-v5", "rk4_integrator", ConfigValue::Bool(false)),
    ] {
        let base = fingerprint(id, &EnvConfig::new());
        assert_eq!(difference(&base, &fingerprint(id, &EnvConfig::new())), None, "{id} twice");
        let changed = fingerprint(id, &EnvConfig::new().with(key, value));
        assert!(difference(&base, &changed).is_some(), "{id} with {key} changed has the same fingerprint");
    }
}

/// Every option an environment reports as without effect ([`inert_options`]) leaves its fingerprint as it is when
/// changed, and acts once the settings its reason names are given: it is then no longer reported and changing it
/// moves the fingerprint. The HalfCheetah's `euler_integrator` under `mujoco_euler` is one of them.
#[test]
fn an_option_reported_without_effect_has_none_and_acts_as_its_reason_says() {
    let changed = |v: &ConfigValue| match v {
        ConfigValue::Bool(b) => ConfigValue::Bool(!b),
        ConfigValue::Float(x) => ConfigValue::Float(0.5 * x),
        other => panic!("no change made for {other:?}"),
    };
    let mut checked = Vec::new();
    for id in registered() {
        let inert = inert_options(&id, &EnvConfig::new()).unwrap();
        if inert.is_empty() {
            continue;
        }
        let settings = rebel_envs::settings(&id, &EnvConfig::new()).unwrap();
        let base = fingerprint(&id, &EnvConfig::new());
        for (key, why) in &inert {
            let other = changed(&settings.values()[key]);
            let moved = EnvConfig::new().with(key, other.clone());
            assert_eq!(difference(&base, &fingerprint(&id, &moved)), None, "{id}: {key} is said to have no effect ({why})");
            // the reason ends "(it acts with k=v, k=v)"
            let acts = why.rsplit_once("it acts with ").and_then(|(_, rest)| rest.strip_suffix(')')).expect(why);
            let given = EnvConfig::from_pairs(&acts.split(", ").collect::<Vec<_>>()).unwrap();
            assert!(!inert_options(&id, &given).unwrap().contains_key(key), "{id}: {key} still without effect with {acts}");
            let before = fingerprint(&id, &given);
            let mut after = given.clone();
            after.set(key, other);
            assert!(difference(&before, &fingerprint(&id, &after)).is_some(), "{id}: {key} has no effect with {acts}");
            checked.push(format!("{id} {key}"));
        }
    }
    for expected in ["HalfCheetah-v5 euler_integrator", "HalfCheetah-v5 contact_natural_frequency", "Hopper-v5 limit_damping_ratio", "Ant-v5 limit_natural_frequency"] {
        assert!(checked.iter().any(|c| c == expected), "{expected} not reported without effect: {checked:?}");
    }
}

/// The tolerance compares what it should: equal values pass, a change beyond it anywhere, or another length, fails.
#[test]
fn difference_finds_the_first_value_out_of_tolerance() {
    let a = [1.0, -2000.0, 1e-12, 150.0];
    assert_eq!(difference(&a, &a), None);
    assert_eq!(difference(&a, &[1.0, -2000.0 * (1.0 + 1e-10), 1e-12, 150.0]), None);
    assert!(difference(&a, &[1.0, -2000.0 * (1.0 + 1e-8), 1e-12, 150.0]).unwrap().starts_with("value 1 of 4"));
    assert!(difference(&a, &[1.0, -2000.0, 2e-9, 150.0]).unwrap().starts_with("value 2 of 4"));
    assert!(difference(&a, &[1.0, -2000.0, 1e-12, f64::NAN]).unwrap().starts_with("value 3 of 4"));
    assert!(difference(&a, &a[..3]).unwrap().contains("4 values stored, 3 now"));
}
