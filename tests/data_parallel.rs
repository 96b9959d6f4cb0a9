//! Data-parallel `train` with ranks as threads (the MPI launch is `tests/mpi_ranks.rs`): rank 0 alone writes the
//! run, the ranks share each iteration's start states and end equal, the run resumes, and an algorithm whose
//! update keeps per-process statistics is refused on every rank.

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
fn unsupported_algorithms_and_too_few_groups_are_refused_on_every_rank() {
    let d = tempfile::tempdir().unwrap();
    let opts = RunOptions { run_dir: Some(d.path().join("ppo")), ..RunOptions::default() };
    for r in on_ranks(2, &config(&["algo=\"ppo\""]), &opts) {
        let e = r.unwrap_err();
        assert!(e.contains("does not support data-parallel") && e.contains("\"rebel\""), "{e}");
    }
    assert!(!d.path().join("ppo").exists(), "nothing is written before the ranks agree");
    for r in on_ranks(3, &config(&[]), &opts) {
        let e = r.unwrap_err();
        assert!(e.contains("rebel.groups = 2") && e.contains("at least 3"), "{e}");
    }
}
