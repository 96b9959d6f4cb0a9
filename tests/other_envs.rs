//! Every algorithm on every registered environment, terminating ones included, through the
//! generic `rebel` binary.

mod common;
use common::*;

#[test]
fn every_algorithm_trains_on_every_environment() {
    let d = tempfile::tempdir().unwrap();
    for env in ["InvertedPendulum-v5", "Reacher-v5"] {
        let common = [
            "--quiet", "--set", "threads=1", "--set", "eval.episodes=2", "--set", "eval.every_iters=1",
            "--set", "rebel.groups=2", "--set", "rebel.branch_len=10", "--set", "rebel.tail_len=10",
            "--set", "reinforce.groups=2", "--set", "reinforce.branch_len=10", "--set", "reinforce.tail_len=10",
            "--set", "rloo.groups=2", "--set", "rloo.branch_len=10", "--set", "rloo.tail_len=10",
        ];
        for algo in ["rebel", "ppo", "reinforce", "rloo"] {
            let run = d.path().join(format!("{env}-{algo}"));
            let mut args = vec!["--env", env, "train", "--algo", algo, "--env-steps", "1500", "--run-dir", run.to_str().unwrap()];
            args.extend_from_slice(&common);
            let o = rebel(&args);
            assert!(o.status.success(), "{env} {algo}: {}", stderr(&o));
            let s = last_json(&o);
            assert_eq!(s["env"], env);
            assert!(s["eval_true_return_mean"].as_f64().unwrap().is_finite(), "{env} {algo}: {s}");
            if algo == "rebel" {
                // `eval` without --env runs the checkpoint in the environment it was trained on (not Swimmer-v5)
                let ck = run.join("checkpoint.safetensors");
                let o = rebel(&["eval", "--checkpoint", ck.to_str().unwrap(), "--episodes", "2", "--threads", "1"]);
                assert!(o.status.success(), "{env} eval: {}", stderr(&o));
                assert_eq!(last_json(&o)["env"], env);
                assert_eq!(last_json(&o)["eval_true_return_mean"], s["eval_true_return_mean"], "{env}: the run's own final evaluation");
            }
        }
        // offline DPO on preferences collected in the same environment
        let prefs = d.path().join(format!("{env}-prefs.st"));
        let o = rebel(&["--env", env, "prefs", "collect", "--policy", "random", "--labels", "20", "--segment-len", "5", "--out", prefs.to_str().unwrap()]);
        assert!(o.status.success(), "{env} prefs: {}", stderr(&o));
        let ds = format!("dpo.dataset={:?}", prefs.display().to_string());
        let run = d.path().join(format!("{env}-dpo"));
        let o = rebel(&["--env", env, "train", "--algo", "dpo", "--env-steps", "1", "--run-dir", run.to_str().unwrap(), "--quiet", "--set", &ds, "--set", "dpo.iterations=2", "--set", "threads=1", "--set", "eval.episodes=2"]);
        assert!(o.status.success(), "{env} dpo: {}", stderr(&o));
        assert_eq!(last_json(&o)["labels_used"], 20);
    }
}
