//! Data-parallel `train` with ranks as threads (the MPI launch is `tests/mpi_ranks.rs`): rank 0 alone writes the
//! run, the ranks share each iteration's start states and end equal, the run resumes, PPO and DPO (offline and
//! iterative) train data-parallel, and too few start states are refused on every rank.

mod common;

use std::path::Path;
use std::sync::Arc;

use rebel_agents::runconfig::load_config;
use rebel_agents::train::{train, train_in, RunOptions, Summary, TrainConfig};
use rebel_dist::{Collective, ThreadGroup};

const BASE: &str = "algo = \"rebel\"\nenv_steps = 10000\nthreads = 1\n[rebel]\ngroups = 2\n[eval]\nevery_iters = 1\nepisodes = 2\n";

fn config(sets: &[&str]) -> TrainConfig {
    load_config(BASE, None, &sets.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
}

/// `train_in` on each of `n` thread ranks, every rank with the same configuration and options.
fn on_ranks(n: usize, cfg: &TrainConfig, opts: &RunOptions) -> Vec<Result<Summary, String>> {
    let (cfg, opts) = (Arc::new(cfg.clone()), Arc::new(opts.clone()));
    let handles: Vec<_> = ThreadGroup::new(n)
        .into_iter()
        .map(|r| {
            let (cfg, opts) = (cfg.clone(), opts.clone());
            std::thread::spawn(move || train_in(&cfg, &opts, &r as &dyn Collective).map_err(|e| e.to_string()))
        })
        .collect();
    handles.into_iter().map(|h| h.join().expect("rank thread panicked")).collect()
}

fn metrics_steps(dir: &Path) -> Vec<u64> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["env_steps"].as_u64().unwrap())
        .collect()
}

#[test]
fn two_ranks_share_the_iterations_of_one_process_and_resume() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(&[]);
    let one = train(&cfg, &RunOptions { run_dir: Some(d.path().join("one")), ..RunOptions::default() }).unwrap();

    let run = d.path().join("two");
    let opts = RunOptions { run_dir: Some(run.clone()), ..RunOptions::default() };
    let out: Vec<Summary> = on_ranks(2, &cfg, &opts).into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(out[0], out[1], "every rank returns rank 0's summary");
    // the ranks' shares add up to one process's iterations: the same start states, the same env steps
    assert_eq!((out[0].iterations, out[0].env_steps), (one.iterations, one.env_steps));
    assert!(out[0].iterations >= 2, "{} iterations", out[0].iterations);
    // one run directory, written by rank 0: one line per iteration plus the initial evaluation
    assert_eq!(metrics_steps(&run).len() as u64, out[0].iterations + 1);
    assert!(run.join("checkpoint.safetensors").is_file() && run.join("summary.json").is_file());

    // resume with a larger budget on both ranks: the run continues where it stopped
    let more = config(&["env_steps=20000"]);
    let opts = RunOptions { resume: Some(run.clone()), ..RunOptions::default() };
    let resumed: Vec<Summary> = on_ranks(2, &more, &opts).into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(resumed[0], resumed[1]);
    assert!(resumed[0].iterations > out[0].iterations && resumed[0].env_steps >= 20000, "{:?}", resumed[0]);
    let steps = metrics_steps(&run);
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "the resumed metrics continue the old ones: {steps:?}");
}

#[test]
fn too_few_start_states_are_refused_on_every_rank() {
    let d = tempfile::tempdir().unwrap();
    let opts = RunOptions { run_dir: Some(d.path().join("run")), ..RunOptions::default() };
    for r in on_ranks(3, &config(&[]), &opts) {
        let e = r.unwrap_err();
        assert!(e.contains("rebel.groups = 2") && e.contains("at least 3"), "{e}");
    }
    // PPO's start states are its environments, and the message names its key
    for r in on_ranks(3, &config(&["algo=\"ppo\"", "ppo.n_envs=2"]), &opts) {
        let e = r.unwrap_err();
        assert!(e.contains("ppo.n_envs = 2") && e.contains("set ppo.n_envs to at least 3"), "{e}");
    }
    assert!(!d.path().join("run").exists(), "nothing is written before the ranks agree");
}

/// PPO, REBEL with `rebel.normalize_obs`, offline DPO and iterative DPO train data-parallel: two ranks reach one
/// process's iterations, env steps and labels, one run folder is written, and the policies stay equal (checked by the
/// loop every iteration).
#[test]
fn ppo_and_dpo_train_on_two_ranks() {
    use rebel_agents::policy::{GaussianPolicy, PolicyConfig};
    use rebel_agents::preferences::{collect_preferences, CollectConfig, PolicySource, TeacherConfig};
    let d = tempfile::tempdir().unwrap();
    let prefs = d.path().join("prefs.safetensors");
    let mut env_cfg = rebel_envs::EnvConfig::new();
    env_cfg.set("max_episode_steps", rebel_envs::ConfigValue::Int(100));
    let mut venv = rebel_envs::vec_env::VecEnv::make("Swimmer-v5", &env_cfg, 4, 1).unwrap();
    let p = GaussianPolicy::new(PolicyConfig::new(8, 2), tch::Device::Cpu, tch::Kind::Float, 3);
    let ccfg = CollectConfig { n_labels: 12, segment_len: Some(25), same_start: false, seed: 9 };
    let src = PolicySource { path: "test".into(), hash: String::new() };
    collect_preferences(&mut venv, &p, src, &ccfg, &TeacherConfig::default()).unwrap().save(&prefs).unwrap();
    let ds = format!("dpo.dataset={:?}", prefs.display().to_string());
    for (name, sets, labels) in [
        ("ppo", vec!["algo=\"ppo\"", "ppo.n_envs=2", "ppo.batch=128", "env.options.max_episode_steps=200", "env_steps=1600"], 0),
        // REBEL keeping a standardising policy's statistics: every rank merges all ranks' observations
        ("rebel-obs-norm", vec!["policy.normalize_obs=true", "rebel.normalize_obs=true", "env.options.max_episode_steps=200", "env_steps=3200"], 0),
        ("dpo", vec!["algo=\"dpo\"", ds.as_str(), "dpo.iterations=2", "dpo.batch=4"], 12),
        ("dpo-iterative", vec!["algo=\"dpo\"", ds.as_str(), "dpo.iterations=2", "dpo.iterative=true", "dpo.labels_per_round=5", "dpo.collect_envs=4"], 10),
    ] {
        let cfg = config(&sets);
        let one = train(&cfg, &RunOptions { run_dir: Some(d.path().join(format!("{name}-one"))), ..RunOptions::default() }).unwrap();
        let run = d.path().join(format!("{name}-two"));
        let out: Vec<Summary> = on_ranks(2, &cfg, &RunOptions { run_dir: Some(run.clone()), ..RunOptions::default() }).into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(out[0], out[1], "{name}: every rank returns rank 0's summary");
        assert_eq!(out[0].iterations, one.iterations, "{name}");
        assert!(out[0].iterations >= 2, "{name}: {} iterations", out[0].iterations);
        assert_eq!(out[0].labels_used, one.labels_used, "{name}: the labels of all ranks are counted");
        if labels > 0 {
            assert_eq!(out[0].labels_used, labels, "{name}");
        }
        if name == "dpo" {
            assert_eq!((out[0].env_steps, one.env_steps), (0, 0), "offline DPO simulates nothing");
        } else {
            assert!(out[0].env_steps > 0 && one.env_steps > 0, "{name}: {} vs {}", out[0].env_steps, one.env_steps);
        }
        if name == "ppo" {
            assert_eq!(out[0].env_steps, one.env_steps, "PPO: the ranks' episodes are one process's episodes");
        }
        if name == "rebel-obs-norm" {
            // the statistics hold every rank's observations, as many as one process's (a rank that merged only its own
            // would count half, and the loop, which compares the ranks' policies with their statistics every
            // iteration, would refuse). Their values differ from one process's here (so do the trajectories), so only
            // the count is compared
            let count = |dir: &str| common::policy_obs_stats(&d.path().join(dir)).count;
            let (a, b) = (count("rebel-obs-norm-one"), count("rebel-obs-norm-two"));
            assert!(a > 1000.0 && (a - b).abs() < 1e-3, "{a} vs {b}");
        }
        assert_eq!(metrics_steps(&run).len() as u64, out[0].iterations + 1, "{name}: one metrics line per iteration, by rank 0");
    }
}
