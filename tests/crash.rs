//! Crash tests: `kill -9` (SIGKILL) at several points of `train`, `prefs collect`, `experiment` and
//! `compare`, then the same command again (or `--resume`): the result equals an uninterrupted
//! run's, timings aside. The kill points are states of the output folder (a file appears, a log
//! reaches n lines), so each test kills where it says.

mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts the `swimmer` binary with `args` and kills it (SIGKILL) as soon as `point()` holds;
/// returns false when the process ended before that.
fn kill_at(args: &[&str], point: impl Fn() -> bool) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_swimmer"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run swimmer");
    let t0 = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if point() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return true;
        }
        assert!(t0.elapsed() < Duration::from_secs(600), "the kill point was never reached");
        std::thread::sleep(Duration::from_millis(2));
    }
}


fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p).map(|t| t.lines().count()).unwrap_or(0)
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// A JSON value without the fields that measure time or memory (they differ run to run).
fn untimed(v: &serde_json::Value) -> serde_json::Value {
    const TIMED: [&str; 17] = [
        "wall_time_s",
        "charts/env_steps_per_sec",
        "charts/learner_s_per_iter",
        "learner_s_per_iter",
        "peak_rss_mb",
        "folder",
        "run_dir",
        "learner_s_per_1k_env_steps",
        "learner_s_per_1k_steps",
        "learner_s_total",
        "learner_mem_mb",
        "learner_phase_mem_mb",
        "learner_phase_alloc_mb",
        "learner_update_mem_mb",
        "learner_update_mem_later_mb",
        "learner_update_alloc_mb",
        "learner_update_alloc_later_mb",
    ];
    match v {
        serde_json::Value::Object(m) => {
            serde_json::Value::Object(m.iter().filter(|(k, _)| !TIMED.contains(&k.as_str())).map(|(k, v)| (k.clone(), untimed(v))).collect())
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(untimed).collect()),
        other => other.clone(),
    }
}

/// TensorBoard's own reading of a run's `tb/` (scripts/read_tb.py in the managed venv's Python);
/// None when that Python is missing and REBEL_SKIP_PYTHON_TESTS=1.
fn tensorboard_scalars(run: &Path) -> Option<serde_json::Value> {
    let py = common::managed_python();
    if !py.exists() && std::env::var("REBEL_SKIP_PYTHON_TESTS").is_ok_and(|v| v == "1") {
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/read_tb.py");
    let o = Command::new(&py).arg(script).arg(run.join("tb")).output().expect("run read_tb.py (scripts/setup.sh installs tensorboard)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    Some(v["scalars"].clone())
}

fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines().map(|l| untimed(&serde_json::from_str(l).unwrap())).collect()
}


#[test]
fn train_killed_at_four_points_resumes_to_the_uninterrupted_run() {
    let d = tempfile::tempdir().unwrap();
    let full = d.path().join("full");
    let mut args = vec!["train", "--env-steps", "6000"];
    args.extend_from_slice(TINY_TRAIN);
    args.extend(["--run-dir", full.to_str().unwrap()]);
    let o = swimmer(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let n = lines(&full.join("metrics.jsonl"));
    assert!(n >= 6, "{n} lines");
    // before the first checkpoint, after it, and twice mid-run
    let points: [(&str, Box<dyn Fn(&Path) -> bool>); 4] = [
        ("config", Box::new(|r: &Path| r.join("config.toml").exists())),
        ("first checkpoint", Box::new(|r: &Path| r.join("checkpoint.safetensors").exists())),
        ("3 lines", Box::new(|r: &Path| lines(&r.join("metrics.jsonl")) >= 3)),
        ("n-1 lines", Box::new(move |r: &Path| lines(&r.join("metrics.jsonl")) >= n - 1)),
    ];
    for (i, (what, point)) in points.iter().enumerate() {
        let run = d.path().join(format!("k{i}"));
        let mut args = vec!["train", "--env-steps", "6000"];
        args.extend_from_slice(TINY_TRAIN);
        args.extend(["--run-dir", run.to_str().unwrap()]);
        assert!(kill_at(&args, || point(&run)), "killed at {what}");
        let o = swimmer(&["train", "--quiet", "--resume", run.to_str().unwrap()]);
        assert!(o.status.success(), "resume after a kill at {what}: {}", stderr(&o));
        assert_eq!(metrics(&run), metrics(&full), "killed at {what}");
        assert_eq!(untimed(&json(&run.join("summary.json"))), untimed(&json(&full.join("summary.json"))), "killed at {what}");
        // TensorBoard shows the uninterrupted run's points (timing charts aside), none twice
        if let (Some(mut a), Some(mut b)) = (tensorboard_scalars(&run), tensorboard_scalars(&full)) {
            for m in [&mut a, &mut b] {
                let m = m.as_object_mut().unwrap();
                m.remove("charts/env_steps_per_sec");
                m.remove("charts/learner_s_per_iter");
            }
            assert_eq!(a, b, "TensorBoard after a kill at {what}");
        }
    }
}

/// PPO with its learning rate annealed over the budget, killed mid-run: the resumed run takes up the schedule where
/// it stood (the rate follows the checkpointed env steps) and ends as the uninterrupted run does.
#[test]
fn ppo_with_an_annealed_learning_rate_killed_mid_run_resumes_to_the_uninterrupted_run() {
    let d = tempfile::tempdir().unwrap();
    let args = |run: &Path| -> Vec<String> {
        let mut a: Vec<String> = ["train", "--env-steps", "1000", "--set", "algo=\"ppo\"", "--set", "ppo.n_envs=1", "--set", "ppo.epochs=2",
            "--set", "ppo.batch=50", "--set", "ppo.anneal_lr=true", "--set", "eval.every_iters=1"]
            .iter().map(|s| s.to_string()).collect();
        a.extend(TINY_TRAIN.iter().map(|s| s.to_string()));
        a.extend(["--run-dir".to_string(), run.display().to_string()]);
        a
    };
    let full = d.path().join("full");
    let o = swimmer(&strs(&args(&full)));
    assert!(o.status.success(), "{}", stderr(&o));
    let run = d.path().join("killed");
    assert!(kill_at(&strs(&args(&run)), || lines(&run.join("metrics.jsonl")) >= 6), "killed after 6 lines");
    let o = swimmer(&["train", "--quiet", "--resume", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(metrics(&run), metrics(&full));
    assert!(metrics(&full).iter().filter(|v| v.get("charts/learning_rate").is_some()).count() == 10);
}

#[test]
fn prefs_collect_killed_leaves_no_partial_file_and_the_rerun_is_byte_identical() {
    let d = tempfile::tempdir().unwrap();
    let r = reference();
    let collect = |out: &Path| -> Vec<String> {
        ["prefs", "collect", "--policy", &r, "--labels", "400", "--seed", "3", "--teacher", "bt", "--out", out.to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let full = d.path().join("full.st");
    let args = collect(&full);
    let o = swimmer(&strs(&args));
    assert!(o.status.success(), "{}", stderr(&o));
    let want = std::fs::read(&full).unwrap();
    for (i, after_ms) in [50u64, 400].into_iter().enumerate() {
        let out = d.path().join(format!("k{i}.st"));
        // a dataset from an earlier collection sits at --out: a killed run must leave it whole
        std::fs::write(&out, b"an earlier dataset").unwrap();
        let args = collect(&out);
        let t0 = Instant::now();
        assert!(kill_at(&strs(&args), || t0.elapsed() >= Duration::from_millis(after_ms)));
        assert!(std::fs::read(&out).unwrap() == b"an earlier dataset", "killed after {after_ms} ms: the earlier file is whole");
        let o = swimmer(&strs(&args));
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(std::fs::read(&out).unwrap() == want, "the rerun after a kill at {after_ms} ms writes the same bytes");
    }
}

#[test]
fn experiment_killed_in_each_phase_continues_to_the_uninterrupted_result() {
    let d = tempfile::tempdir().unwrap();
    let run = |out: &Path| -> Vec<String> {
        ["experiment", "--out", out.to_str().unwrap(), "--set", "labels=150", "--set", "train.env_steps=3000"]
            .iter()
            .chain(TINY_EXPERIMENT)
            .map(|s| s.to_string())
            .collect()
    };
    let full = d.path().join("full");
    let o = swimmer(&strs(&run(&full)));
    assert!(o.status.success(), "{}", stderr(&o));
    let points: [(&str, Box<dyn Fn(&Path) -> bool>); 3] = [
        ("collecting labels", Box::new(|f: &Path| f.exists())),
        ("training the reward net", Box::new(|f: &Path| f.join("prefs.safetensors").exists())),
        ("running REBEL", Box::new(|f: &Path| lines(&f.join("rebel/metrics.jsonl")) >= 2)),
    ];
    for (i, (what, point)) in points.iter().enumerate() {
        let out = d.path().join(format!("k{i}"));
        assert!(kill_at(&strs(&run(&out)), || point(&out)), "killed while {what}");
        let o = swimmer(&strs(&run(&out)));
        assert!(o.status.success(), "rerun after a kill while {what}: {}", stderr(&o));
        assert_eq!(untimed(&json(&out.join("experiment.json"))), untimed(&json(&full.join("experiment.json"))), "killed while {what}");
        assert_eq!(metrics(&out.join("rebel")), metrics(&full.join("rebel")), "killed while {what}");
        // (the REBEL checkpoint names its folder's reward model, so its bytes differ between folders)
        for f in ["prefs.safetensors", "reward_model.safetensors"] {
            assert!(std::fs::read(out.join(f)).unwrap() == std::fs::read(full.join(f)).unwrap(), "{f} after a kill while {what}");
        }
    }
    // other labels into a folder whose REBEL run used the old reward net: refused, nothing touched
    let before: Vec<Vec<u8>> =
        ["rebel/metrics.jsonl", "prefs.safetensors", "reward_model.safetensors"].iter().map(|f| std::fs::read(full.join(f)).unwrap()).collect();
    let mut other = run(&full);
    other.extend(["--set".to_string(), "labels=120".to_string()]);
    let o = swimmer(&strs(&other));
    assert!(!o.status.success() && stderr(&o).contains("use a new --out"), "{}", stderr(&o));
    let after: Vec<Vec<u8>> =
        ["rebel/metrics.jsonl", "prefs.safetensors", "reward_model.safetensors"].iter().map(|f| std::fs::read(full.join(f)).unwrap()).collect();
    assert!(after == before, "the folder's files are untouched");
}

#[test]
fn active_querying_killed_between_rounds_continues_to_the_uninterrupted_result() {
    let d = tempfile::tempdir().unwrap();
    let run = |out: &Path| -> Vec<String> {
        [
            "experiment", "--out", out.to_str().unwrap(), "--query", "entropy", "--rounds", "2", "--labels-per-round", "40",
            "--set", "train.env_steps=4000",
        ]
        .iter()
        .chain(TINY_EXPERIMENT)
        .map(|s| s.to_string())
        .collect()
    };
    let full = d.path().join("full");
    let o = swimmer(&strs(&run(&full)));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = d.path().join("killed");
    // killed once round 1 has its labels (its net in training, or REBEL's second part under way)
    assert!(kill_at(&strs(&run(&out)), || out.join("round1/prefs.safetensors").exists()));
    let o = swimmer(&strs(&run(&out)));
    assert!(o.status.success(), "rerun after a kill in round 1: {}", stderr(&o));
    let (a, b) = (json(&out.join("experiment.json")), json(&full.join("experiment.json")));
    for r in 0..2 {
        for k in ["labels_total", "env_steps", "eval_true_return_mean", "prefs_hash"] {
            assert_eq!(a["rounds"][r][k], b["rounds"][r][k], "round {r}: {k}");
        }
    }
    assert_eq!(untimed(&a["rebel"]), untimed(&b["rebel"]));
    assert_eq!(metrics(&out.join("rebel")), metrics(&full.join("rebel")));
    // (round 1's own file names its folder's policy copy, so its bytes differ between folders; prefs_hash covers its pairs)
    for f in ["round0/prefs.safetensors", "round1/reward_model.safetensors", "prefs.safetensors"] {
        assert!(std::fs::read(out.join(f)).unwrap() == std::fs::read(full.join(f)).unwrap(), "{f} after a kill");
    }
}

/// The run folders (holding a `config.toml`) anywhere below `dir`.
fn cells_below(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for p in std::fs::read_dir(dir).map(|r| r.flatten().map(|e| e.path()).collect::<Vec<_>>()).unwrap_or_default() {
        if p.join("config.toml").exists() {
            out.push(p);
        } else if p.is_dir() {
            out.extend(cells_below(&p));
        }
    }
    out
}

#[test]
fn compare_killed_mid_cell_continues_to_the_uninterrupted_table() {
    let d = tempfile::tempdir().unwrap();
    let args = |out: &Path| tiny_compare(out, 2, 1500);
    let full = d.path().join("full");
    let o = swimmer(&strs(&args(&full)));
    assert!(o.status.success(), "{}", stderr(&o));
    let killed = d.path().join("killed");
    // two cells finished and a third one part-way (its first lines logged, no summary yet)
    let point = || {
        let cells: Vec<std::path::PathBuf> = cells_below(&killed);
        let done = cells.iter().filter(|c| c.join("summary.json").exists()).count();
        done >= 2 && cells.iter().any(|c| !c.join("summary.json").exists() && lines(&c.join("metrics.jsonl")) >= 2)
    };
    assert!(kill_at(&strs(&args(&killed)), point), "killed mid-cell");
    let o = swimmer(&strs(&args(&killed)));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("already finished, reused"), "{}", stderr(&o));
    assert_eq!(untimed(&json(&killed.join("results.json"))), untimed(&json(&full.join("results.json"))));
    assert_eq!(json(&killed.join("tuning.json")), json(&full.join("tuning.json")));
}
