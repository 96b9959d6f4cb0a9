//! Fuzzing of every parser of user files, on stable Rust: mutations of valid inputs (bit flips,
//! truncations, splices, extreme numbers in the safetensors header and in the JSON metadata, broken
//! TOML and CSV), each fed to the parser the program uses, which must return `Ok` or a clear error
//! and never panic. Aborts (an allocation driven by an unchecked size) end the process: the fuzz
//! command runs under an address-space limit so that such an allocation fails at once.
//!
//! `cargo run --release --example fuzz -- --cases 100000` runs every target; `tests/fuzz_sample.rs`
//! runs a seeded sample in the test suite.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use rebel_agents::checkpoint::Checkpoint;
use rebel_agents::preferences::{collect_preferences, CollectConfig, PolicySource, PreferenceDataset, TeacherConfig, TeacherKind};
use rebel_agents::reward_model::{self, RewardEnsemble, RewardModelConfig};
use rebel_agents::runconfig::load_config;
use rebel_agents::train::TrainConfig;

use crate::cli::DEFAULT_CONFIG;

/// A parser of user input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A policy checkpoint (`eval --checkpoint`, `policy.init`): container, metadata, the policy built from it.
    Checkpoint,
    /// A reward-model file (`reward_model = ...`).
    RewardModel,
    /// A preference dataset (`rm train --prefs`).
    Dataset,
    /// An action CSV (`replay --actions`).
    ActionCsv,
    /// A TOML configuration (`--config`), resolved as `train` resolves it.
    TomlConfig,
    /// `--set KEY=VALUE` arguments.
    SetValue,
}

impl Target {
    pub const ALL: [Target; 6] =
        [Target::Checkpoint, Target::RewardModel, Target::Dataset, Target::ActionCsv, Target::TomlConfig, Target::SetValue];

    pub fn name(self) -> &'static str {
        match self {
            Target::Checkpoint => "checkpoint",
            Target::RewardModel => "reward-model",
            Target::Dataset => "preference-dataset",
            Target::ActionCsv => "action-csv",
            Target::TomlConfig => "toml-config",
            Target::SetValue => "set-value",
        }
    }

    pub fn parse(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// What a fuzz run found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub target: String,
    pub cases: u64,
    /// Inputs refused with an error.
    pub refused: u64,
    /// Inputs accepted (mutations that left a valid file).
    pub accepted: u64,
    /// Panics: (case number, message). Must be empty.
    pub panics: Vec<(u64, String)>,
}

/// Valid inputs that the mutations start from.
pub struct Seeds {
    checkpoint: Vec<u8>,
    reward_model: Vec<u8>,
    dataset: Vec<u8>,
    csv: String,
    tomls: Vec<String>,
    keys: Vec<String>,
    dir: tempfile::TempDir,
}

impl Seeds {
    /// The shipped reference policy, and a small preference dataset and reward model made from it.
    pub fn make(reference_policy: &Path) -> anyhow::Result<Seeds> {
        let checkpoint = std::fs::read(reference_policy)?;
        let policy = Checkpoint::from_bytes(&checkpoint, reference_policy)?.build_policy("policy", tch::Device::Cpu, tch::Kind::Float)?;
        let mut venv = rebel_envs::vec_env::VecEnv::make("Swimmer-v5", &rebel_envs::EnvConfig::new(), 2, 1)?;
        let cfg = CollectConfig { n_labels: 6, segment_len: Some(8), same_start: false, seed: 5 };
        let source = PolicySource { path: reference_policy.display().to_string(), hash: String::new() };
        let ds = collect_preferences(&mut venv, &policy, source, &cfg, &TeacherConfig::preset(TeacherKind::Oracle))?;
        let dir = tempfile::tempdir()?;
        let ds_path = dir.path().join("prefs.safetensors");
        ds.save(&ds_path)?;
        let rm_cfg = RewardModelConfig { hidden: vec![4], members: 2, epochs: 1, batch: 4, ..RewardModelConfig::default() };
        let (model, _) = reward_model::train(&ds, &rm_cfg)?;
        let rm_path = dir.path().join("rm.safetensors");
        model.save(&rm_path, "Swimmer-v5")?;
        let mut csv = String::from("action0,action1\n");
        for k in 0..20 {
            csv.push_str(&format!("{},{}\n", (k as f64 * 0.3).sin(), -(k as f64 * 0.2).cos()));
        }
        let tomls = vec![
            DEFAULT_CONFIG.to_string(),
            "algo = \"ppo\"\nenv_steps = 1000\n[ppo]\nlr = 3e-4\nclip = 0.2\n[eval]\nepisodes = 3\n".to_string(),
            "reward = \"model\"\nreward_model = \"rm.safetensors\"\nreward_pessimism = 0.5\n[env]\nid = \"Reacher-v5\"\n[env.options]\nreward_dist_weight = 2.0\n".to_string(),
        ];
        let mut keys = Vec::new();
        let cfg: TrainConfig = load_config(DEFAULT_CONFIG, None, &[])?;
        flatten("", &toml::Value::try_from(&cfg)?, &mut keys);
        Ok(Seeds {
            checkpoint,
            reward_model: std::fs::read(&rm_path)?,
            dataset: std::fs::read(&ds_path)?,
            csv,
            tomls,
            keys,
            dir,
        })
    }
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut Vec<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                flatten(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, v, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

/// Runs `cases` mutated inputs of `target` (seeded by `seed`) through its parser.
pub fn run(target: Target, seeds: &Seeds, cases: u64, seed: u64) -> Report {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (target as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut report = Report { target: target.name().into(), ..Report::default() };
    let toml_path: PathBuf = seeds.dir.path().join("fuzz.toml");
    let origin = Path::new("fuzz-input");
    for case in 0..cases {
        let result = match target {
            Target::Checkpoint => {
                let input = mutate_container(&mut rng, &seeds.checkpoint);
                guarded(|| {
                    let ck = Checkpoint::from_bytes(&input, origin).map_err(|e| e.to_string())?;
                    ck.build_policy("policy", tch::Device::Cpu, tch::Kind::Float).map(|_| ()).map_err(|e| e.to_string())
                })
            }
            Target::RewardModel => {
                let input = mutate_container(&mut rng, &seeds.reward_model);
                guarded(|| RewardEnsemble::from_bytes(&input, origin).map(|_| ()).map_err(|e| e.to_string()))
            }
            Target::Dataset => {
                let input = mutate_container(&mut rng, &seeds.dataset);
                guarded(|| PreferenceDataset::from_bytes(&input, origin).map(|_| ()).map_err(|e| e.to_string()))
            }
            Target::ActionCsv => {
                let input = mutate_text(&mut rng, &seeds.csv);
                guarded(|| rebel_envs::csvio::parse_actions(&input, "fuzz.csv", 2).map(|_| ()).map_err(|e| e.to_string()))
            }
            Target::TomlConfig => {
                let base = &seeds.tomls[rng.random_range(0..seeds.tomls.len())];
                let input = mutate_text(&mut rng, base);
                if std::fs::write(&toml_path, &input).is_err() {
                    continue;
                }
                guarded(|| {
                    let cfg: TrainConfig = load_config(DEFAULT_CONFIG, Some(&toml_path), &[]).map_err(|e| e.to_string())?;
                    cfg.resolve().map(|_| ())
                })
            }
            Target::SetValue => {
                let sets: Vec<String> = (0..rng.random_range(1..4)).map(|_| random_set(&mut rng, &seeds.keys)).collect();
                guarded(|| {
                    let cfg: TrainConfig = load_config(DEFAULT_CONFIG, None, &sets).map_err(|e| e.to_string())?;
                    cfg.resolve().map(|_| ())
                })
            }
        };
        report.cases += 1;
        match result {
            Ok(Ok(())) => report.accepted += 1,
            Ok(Err(msg)) => {
                report.refused += 1;
                debug_assert!(!msg.is_empty(), "an empty error message");
            }
            Err(panic) => report.panics.push((case, panic)),
        }
    }
    report
}

/// Runs `f`, turning a panic into `Err(message)`.
fn guarded(f: impl FnOnce() -> Result<(), String>) -> Result<Result<(), String>, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
    })
}

/// Numbers that break parsers: zero, negatives, huge, beyond the integer and float ranges.
const EXTREME: [&str; 16] = [
    "0",
    "-1",
    "1",
    "1000000000",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "99999999999999999999999",
    "1e308",
    "1e309",
    "-1e308",
    "1e-400",
    "nan",
    "inf",
    "-0",
    "2147483648",
];

fn extreme_json(rng: &mut ChaCha8Rng) -> serde_json::Value {
    match rng.random_range(0..12) {
        0 => serde_json::json!(0),
        1 => serde_json::json!(-1),
        2 => serde_json::json!(1_000_000_000u64),
        3 => serde_json::json!(u64::MAX),
        4 => serde_json::json!(i64::MIN),
        5 => serde_json::json!(1e308),
        6 => serde_json::json!(""),
        7 => serde_json::json!("x".repeat(rng.random_range(1..5000))),
        8 => serde_json::Value::Null,
        9 => serde_json::json!([]),
        10 => serde_json::json!({}),
        _ => serde_json::json!(vec![1_000_000_000u64; rng.random_range(1..8)]),
    }
}

/// Replaces a random leaf of `v` (an object field, an array element or `v` itself).
fn mutate_json(rng: &mut ChaCha8Rng, v: &mut serde_json::Value) {
    let go_deeper = rng.random_range(0..4) != 0;
    match v {
        serde_json::Value::Object(m) if !m.is_empty() && go_deeper => {
            let k = m.keys().nth(rng.random_range(0..m.len())).cloned().expect("key");
            if rng.random_range(0..10) == 0 {
                m.remove(&k);
            } else {
                mutate_json(rng, m.get_mut(&k).expect("value"));
            }
        }
        serde_json::Value::Array(a) if !a.is_empty() && go_deeper => {
            let i = rng.random_range(0..a.len());
            mutate_json(rng, &mut a[i]);
        }
        _ => *v = extreme_json(rng),
    }
}

/// A mutation of a safetensors container: raw byte damage, or a well-formed header whose numbers
/// or metadata were changed (so the parser's own checks, not the JSON reader, are exercised).
pub fn mutate_container(rng: &mut ChaCha8Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    let n = u64::from_le_bytes(b[..8].try_into().expect("8 bytes")) as usize;
    let split = |b: &[u8]| -> Option<(serde_json::Value, Vec<u8>)> {
        let header = serde_json::from_slice(b.get(8..8 + n)?).ok()?;
        Some((header, b[8 + n..].to_vec()))
    };
    let join = |header: &serde_json::Value, data: &[u8]| -> Vec<u8> {
        let h = header.to_string();
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out
    };
    match rng.random_range(0..8) {
        0 => {
            for _ in 0..rng.random_range(1..9) {
                let i = rng.random_range(0..b.len());
                b[i] ^= 1 << rng.random_range(0..8);
            }
            b
        }
        1 => {
            // header bytes only (where the structure lives)
            for _ in 0..rng.random_range(1..5) {
                let i = rng.random_range(0..(8 + n).min(b.len()));
                b[i] = [0u8, 0xff, b'"', b'}', b'9', b'-', b'['][rng.random_range(0..7)];
            }
            b
        }
        2 => {
            b.truncate(rng.random_range(0..b.len()));
            b
        }
        3 => {
            let at = rng.random_range(0..=b.len());
            let extra: Vec<u8> = (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
            b.splice(at..at, extra);
            b
        }
        4 => {
            // the length prefix itself
            let v: u64 = [0, 1, n as u64 - 1, n as u64 + 1, u64::MAX, 1 << 40][rng.random_range(0..6)];
            b[..8].copy_from_slice(&v.to_le_bytes());
            b
        }
        5 | 6 => {
            // the JSON `meta` record inside `__metadata__` (policy widths, RM config, dataset meta)
            let Some((mut header, data)) = split(&b) else { return b };
            let meta = header.get("__metadata__").and_then(|m| m.get("meta")).and_then(|m| m.as_str()).map(str::to_string);
            if let Some(mut meta) = meta.and_then(|m| serde_json::from_str::<serde_json::Value>(&m).ok()) {
                mutate_json(rng, &mut meta);
                header["__metadata__"]["meta"] = serde_json::Value::String(meta.to_string());
            }
            join(&header, &data)
        }
        _ => {
            // a tensor's shape, dtype or data offsets
            let Some((mut header, data)) = split(&b) else { return b };
            let names: Vec<String> = header.as_object().map(|o| o.keys().filter(|k| *k != "__metadata__").cloned().collect()).unwrap_or_default();
            if names.is_empty() {
                return b;
            }
            let t = &mut header[&names[rng.random_range(0..names.len())]];
            match rng.random_range(0..3) {
                0 => mutate_json(rng, &mut t["shape"]),
                1 => t["dtype"] = serde_json::json!(["F16", "I64", "U8", "BOOL", "F64", "X"][rng.random_range(0..6)]),
                _ => mutate_json(rng, &mut t["data_offsets"]),
            }
            join(&header, &data)
        }
    }
}

/// A mutation of a text input (CSV, TOML).
pub fn mutate_text(rng: &mut ChaCha8Rng, seed: &str) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    let rounds = rng.random_range(1..4);
    for _ in 0..rounds {
        if chars.is_empty() {
            chars.push('x');
        }
        match rng.random_range(0..7) {
            0 => {
                // a number (a digit run) replaced by an extreme one
                let digits: Vec<usize> = (0..chars.len()).filter(|i| chars[*i].is_ascii_digit()).collect();
                if let Some(&i) = digits.get(rng.random_range(0..digits.len().max(1))) {
                    let (mut s, mut e) = (i, i);
                    while s > 0 && (chars[s - 1].is_ascii_digit() || chars[s - 1] == '.' || chars[s - 1] == '-') {
                        s -= 1;
                    }
                    while e + 1 < chars.len() && (chars[e + 1].is_ascii_alphanumeric() || chars[e + 1] == '.' || chars[e + 1] == '-') {
                        e += 1;
                    }
                    let x = EXTREME[rng.random_range(0..EXTREME.len())];
                    chars.splice(s..=e, x.chars());
                }
            }
            1 => {
                let s = rng.random_range(0..chars.len());
                let e = (s + rng.random_range(1..20)).min(chars.len());
                chars.drain(s..e);
            }
            2 => {
                const ODD: [char; 16] = ['"', '\'', '[', ']', '{', '}', '=', ',', '\n', '#', '\\', '.', 'é', '\0', ' ', '\t'];
                for _ in 0..rng.random_range(1..6) {
                    let at = rng.random_range(0..=chars.len());
                    chars.insert(at, ODD[rng.random_range(0..ODD.len())]);
                }
            }
            3 => {
                // a line repeated many times (too many rows, duplicate keys)
                let text: String = chars.iter().collect();
                let lines: Vec<&str> = text.lines().collect();
                let line = lines[rng.random_range(0..lines.len().max(1)).min(lines.len().saturating_sub(1))].to_string();
                let times = [2usize, 10, 3000][rng.random_range(0..3)];
                let mut out = text.clone();
                for _ in 0..times {
                    out.push('\n');
                    out.push_str(&line);
                }
                chars = out.chars().collect();
            }
            4 => chars.truncate(rng.random_range(0..chars.len())),
            5 => {
                let text: String = chars.iter().collect();
                let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
                if lines.len() > 1 {
                    let (i, j) = (rng.random_range(0..lines.len()), rng.random_range(0..lines.len()));
                    lines.swap(i, j);
                }
                chars = lines.join("\n").chars().collect();
            }
            _ => {
                let i = rng.random_range(0..chars.len());
                chars[i] = char::from_u32(rng.random_range(0..0x80)).unwrap_or('?');
            }
        }
    }
    chars.into_iter().collect()
}

/// A `--set KEY=VALUE` argument: a real key (or a damaged one) with an odd value.
pub fn random_set(rng: &mut ChaCha8Rng, keys: &[String]) -> String {
    let key = match rng.random_range(0..6) {
        0 => ["", "a.b.c.d.e", "rebel..eta", ".", "env.options.", "=", "algo.x", "eval.episodes.x"][rng.random_range(0..8)].to_string(),
        1 => format!("{}.{}", keys[rng.random_range(0..keys.len())], "deeper"),
        _ => keys[rng.random_range(0..keys.len())].clone(),
    };
    let value = match rng.random_range(0..5) {
        0 => EXTREME[rng.random_range(0..EXTREME.len())].to_string(),
        1 => ["\"text", "[1, 2", "{a = 1}", "[1e999]", "true", "\"\"", "[]", "{}", "\"Nope-v0\"", "'x'", "1980-01-01"][rng.random_range(0..11)]
            .to_string(),
        2 => format!("[{}]", (0..rng.random_range(0..5)).map(|_| EXTREME[rng.random_range(0..EXTREME.len())]).collect::<Vec<_>>().join(",")),
        3 => mutate_text(rng, "[64, 64]"),
        _ => "-".repeat(rng.random_range(0..4)) + &rng.random::<u32>().to_string(),
    };
    format!("{key}={value}")
}
