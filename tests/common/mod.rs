//! Helpers shared by the command-line tests: run a binary, read its output.
#![allow(dead_code)] // each test file uses a different subset

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the `swimmer` binary with `args`.
pub fn swimmer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swimmer")).args(args).output().expect("run swimmer")
}

/// Runs the generic `rebel` binary with `args`.
pub fn rebel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rebel")).args(args).output().expect("run rebel")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The last stdout line, parsed as JSON (panics with stderr when there is none).
pub fn last_json(o: &Output) -> serde_json::Value {
    let out = stdout(o);
    let line = out.lines().last().unwrap_or_else(|| panic!("no stdout; stderr: {}", stderr(o)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {line}"))
}

/// The shipped reference policy.
pub fn reference() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("experiments/swimmer/reference_policy.safetensors").display().to_string()
}

/// A tiny `train` configuration: 100-step episodes, 2 groups, branches of 25 steps with 25-step
/// tails: 800 env steps per iteration.
pub const TINY_TRAIN: &[&str] = &[
    "--quiet",
    "--env-opt", "max_episode_steps=100",
    "--set", "rebel.groups=2",
    "--set", "rebel.branch_len=25",
    "--set", "rebel.tail_len=25",
    "--set", "rebel.epochs=2",
    "--set", "eval.episodes=2",
    "--set", "eval.every_iters=2",
    "--set", "threads=1",
];

/// A tiny `experiment` configuration (add `--out`, the labels and `train.env_steps`): 100-step episodes, 2
/// groups, 25-step branches and tails, 50 check pairs, 5 reward-net epochs, one thread.
pub const TINY_EXPERIMENT: &[&str] = &[
    "--quiet",
    "--set", "check_pairs=50", "--set", "reward_model.epochs=5", "--set", "train.threads=1",
    "--set", "train.rebel.groups=2", "--set", "train.rebel.branch_len=25", "--set", "train.rebel.tail_len=25",
    "--set", "train.eval.episodes=2", "--set", "train.env.options.max_episode_steps=100",
];

/// `compare` at a tiny scale into `out`: 100-step episodes, 40 labels, `env_steps` per run.
pub fn tiny_compare(out: &std::path::Path, seeds: u32, env_steps: u64) -> Vec<String> {
    let mut v: Vec<String> = vec!["compare".into(), "--out".into(), out.display().to_string(), "--seeds".into(), seeds.to_string()];
    v.push(format!("--set=train.env_steps={env_steps}"));
    for a in [
        "--env-opt", "max_episode_steps=100",
        "--set", "labels=40", "--set", "segment_len=25", "--set", "reward_model.epochs=3",
        "--set", "train.rebel.branch_len=25", "--set", "train.rebel.tail_len=25", "--set", "train.rebel.groups=2",
        "--set", "train.reinforce.branch_len=25", "--set", "train.reinforce.tail_len=25",
        "--set", "train.rloo.branch_len=25", "--set", "train.rloo.tail_len=25",
        "--set", "train.dpo.iterations=2", "--set", "train.eval.episodes=2", "--set", "train.eval.every_iters=2",
        // the protocol at its smallest: one configuration per row (no search), one tuning seed
        "--set", "protocol.tune_configs=1", "--set", "protocol.tune_seeds=[101]", "--set", "protocol.tune_env_steps=0",
        "--set", "protocol.bootstrap_reps=1000",
    ] {
        v.push(a.to_string());
    }
    v
}

/// `&str`s of owned arguments.
pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// No file `cmd`'s process writes may pass `limit` bytes (RLIMIT_FSIZE, with SIGXFSZ ignored so
/// that a write past it fails with EFBIG, as a write to a full disk fails with ENOSPC).
pub fn limit_file_size(cmd: &mut Command, limit: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit and signal are async-signal-safe and act on the child only.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
}

/// The managed venv's Python (`scripts/setup.sh` puts tensorboard there, and with `--test` Gymnasium):
/// `REBEL_PYTHON`, else `${REBEL_CACHE:-$HOME/.cache/rebel-rs}/torch-2.11.0/bin/python`.
pub fn managed_python() -> PathBuf {
    if let Some(p) = std::env::var_os("REBEL_PYTHON") {
        return PathBuf::from(p);
    }
    let home = || PathBuf::from(std::env::var_os("HOME").expect("HOME is not set")).join(".cache/rebel-rs");
    std::env::var_os("REBEL_CACHE").map(PathBuf::from).unwrap_or_else(home).join("torch-2.11.0/bin/python")
}

/// The observation statistics of the policy in a run's checkpoint (the policy must standardise its input).
pub fn policy_obs_stats(run: &std::path::Path) -> rebel_agents::util::RunningMeanStd {
    let ck = rebel_agents::checkpoint::Checkpoint::load(run.join("checkpoint.safetensors")).unwrap();
    ck.build_policy("policy", tch::Device::Cpu, tch::Kind::Float).unwrap().obs_rms().expect("the policy has observation statistics")
}
