//! Under `mpirun -np 2`: `swimmer compare` spreads its runs over the two ranks and rank 0 writes the
//! same results as one process; `swimmer train` trains data-parallel, rank 0 alone writes the run, and
//! `--resume` continues it; PPO trains data-parallel as well. Built only with the `mpi` feature (`.ci/run` runs it).
#![cfg(feature = "mpi")]

mod common;
use common::*;

use std::process::Command;

fn untimed_rows(path: &std::path::Path) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["rows"].as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            for k in ["wall_time_s", "learner_s_per_1k_steps", "learner_mem_mb", "learner_phase_mem_mb", "learner_phase_alloc_mb", "peak_rss_mb"] {
                r.as_object_mut().unwrap().remove(k);
            }
            r
        })
        .collect()
}

#[test]
fn two_mpi_ranks_give_the_results_of_one_process() {
    let d = tempfile::tempdir().unwrap();
    let (one, two) = (d.path().join("one"), d.path().join("two"));
    let mut args = tiny_compare(&one, 1, 1000);
    args.extend(["--set".to_string(), "parallel=1".to_string()]);
    let o = swimmer(&strs(&args));
    assert!(o.status.success(), "{}", stderr(&o));

    let mut args = tiny_compare(&two, 1, 1000);
    args.extend(["--set".to_string(), "parallel=1".to_string()]);
    let o = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "2", env!("CARGO_BIN_EXE_swimmer")])
        .args(&args)
        .output()
        .expect("mpirun not found: install openmpi-bin (Debian) to run the MPI tests");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("rank 1 of 2:"), "rank 1 ran its share: {err}");
    let tuning = |p: &std::path::Path| std::fs::read_to_string(p.join("tuning.json")).unwrap();
    assert_eq!(tuning(&two), tuning(&one), "the same tuning table");
    assert_eq!(untimed_rows(&two.join("results.json")), untimed_rows(&one.join("results.json")));
}

fn mpirun(args: &[&str]) -> std::process::Output {
    Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "2", env!("CARGO_BIN_EXE_swimmer")])
        .args(args)
        .output()
        .expect("mpirun not found: install openmpi-bin (Debian) to run the MPI tests")
}

#[test]
fn mpirun_train_is_data_parallel_and_resumes() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    let run_s = run.to_str().unwrap();
    let sets = ["--set", "threads=1", "--set", "rebel.groups=2", "--set", "eval.episodes=2", "--set", "eval.every_iters=1"];
    let mut args = vec!["train", "--quiet", "--env-steps", "10000", "--run-dir", run_s];
    args.extend(sets);
    let o = mpirun(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("rank 1 of 2: done"), "rank 1 trained its share: {err}");
    let first = last_json(&o);
    assert!(first["iterations"].as_u64().unwrap() >= 2, "{first}");
    // rank 0 alone printed the summary and wrote the run
    assert_eq!(stdout(&o).matches("\"algo\"").count(), 1, "{}", stdout(&o));
    let lines = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines().count() as u64;
    assert_eq!(lines, first["iterations"].as_u64().unwrap() + 1);

    let mut args = vec!["train", "--quiet", "--env-steps", "20000", "--resume", run_s];
    args.extend(sets);
    let o = mpirun(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed = last_json(&o);
    assert!(resumed["iterations"].as_u64().unwrap() > first["iterations"].as_u64().unwrap(), "{resumed}");
    assert!(resumed["env_steps"].as_u64().unwrap() >= 20000, "{resumed}");

    // PPO trains data-parallel too: each rank runs one of the two episodes of an iteration
    let ppo = d.path().join("ppo");
    let o = mpirun(&["train", "--quiet", "--algo", "ppo", "--env-steps", "1600", "--set", "ppo.n_envs=2", "--set", "env.options.max_episode_steps=200", "--set", "threads=1", "--set", "eval.episodes=2", "--run-dir", ppo.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = last_json(&o);
    assert_eq!((s["algo"].as_str(), s["env_steps"].as_u64(), s["iterations"].as_u64()), (Some("ppo"), Some(1600), Some(4)), "{s}");
    assert!(stderr(&o).contains("rank 1 of 2: done"), "{}", stderr(&o));
}
