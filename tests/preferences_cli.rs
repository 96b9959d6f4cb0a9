//! End-to-end tests of the preference pipeline's command line: `prefs collect`, `rm train`,
//! `rm eval`, and the default experiment at a tiny scale.

mod common;
use common::*;

#[test]
fn collect_train_and_evaluate_a_reward_model() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| d.path().join(n).display().to_string();
    let reference = reference();
    let o = swimmer(&["prefs", "collect", "--policy", &reference, "--labels", "300", "--out", &p("train.st"), "--seed", "1", "--teacher", "bt"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = swimmer(&["prefs", "collect", "--policy", &reference, "--labels", "200", "--out", &p("check.st"), "--seed", "2", "--teacher", "bt"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = swimmer(&["rm", "train", "--prefs", &p("train.st"), "--out", &p("rm.st")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = swimmer(&["rm", "eval", "--model", &p("rm.st"), "--prefs", &p("check.st")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert_eq!(j["pairs"], 200);
    // Bradley–Terry labels on 50-step pieces of the reference policy: the model ranks pieces by
    // their true return almost perfectly even from 300 labels
    assert!(j["accuracy"].as_f64().unwrap() > 0.8, "{j}");
    assert!(j["spearman"].as_f64().unwrap() > 0.8, "{j}");

    // a truncated dataset is a clear error, not a panic
    let bytes = std::fs::read(p("check.st")).unwrap();
    std::fs::write(p("cut.st"), &bytes[..bytes.len() / 2]).unwrap();
    let o = swimmer(&["rm", "eval", "--model", &p("rm.st"), "--prefs", &p("cut.st")]);
    assert!(!o.status.success());
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert!(stderr(&o).to_lowercase().contains("truncated") || stderr(&o).to_lowercase().contains("corrupt"), "{}", stderr(&o));
    // a dataset given as a reward model is refused
    let o = swimmer(&["rm", "eval", "--model", &p("check.st"), "--prefs", &p("check.st")]);
    assert!(!o.status.success());
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn the_default_experiment_runs_end_to_end_at_a_tiny_scale() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("exp");
    let mut args = vec![
        "experiment", "--out", out.to_str().unwrap(), "--set", "labels=100", "--set", "train.env_steps=2000", "--env-opt",
        "solver_iterations=3",
    ];
    args.extend_from_slice(TINY_EXPERIMENT);
    let o = swimmer(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert_eq!(j["labels_used"], 100);
    // `--env-opt` reaches the experiment's environment, merged over the shipped configuration's options
    let cfg = std::fs::read_to_string(out.join("rebel/config.toml")).unwrap();
    assert!(cfg.contains("solver_iterations = 3") && cfg.contains("limit_projection = true"), "{cfg}");
    assert!(j["reference_eval_true_return_mean"].as_f64().unwrap().is_finite());
    for f in ["prefs.safetensors", "reward_model.safetensors", "reward_model_report.json", "experiment.json", "rebel/summary.json", "rebel/metrics.jsonl"] {
        assert!(out.join(f).exists(), "missing {f}");
    }
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("rebel/summary.json")).unwrap()).unwrap();
    assert_eq!(s["labels_used"], 100);
    assert!(s.get("reference_eval_true_return_mean").is_some());
    let m = std::fs::read_to_string(out.join("rebel/metrics.jsonl")).unwrap();
    assert!(m.contains("charts/segment_score") && m.contains("charts/segment_true_return"), "both returns are logged");
}

/// A bad `--env-opt` or reference policy is refused with the reason, before the experiment's folder exists.
#[test]
fn a_refused_experiment_leaves_no_folder() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("exp");
    let o = swimmer(&["experiment", "--out", out.to_str().unwrap(), "--env-opt", "solver_iteration=2", "--quiet"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unknown option 'solver_iteration'") && stderr(&o).contains("solver_iterations"), "{}", stderr(&o));
    let missing = format!("reference_policy={:?}", d.path().join("none.safetensors").display().to_string());
    let o = swimmer(&["experiment", "--out", out.to_str().unwrap(), "--set", &missing, "--quiet"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("make one with `swimmer pretrain`"), "{}", stderr(&o));
    assert!(!out.exists(), "a refused experiment created {}", out.display());
}

/// The experiment from a reference trained with RL Zoo-like settings (ReLU, its own observation statistics):
/// REBEL's policy takes the reference's architecture and statistics, so it starts where the reference is.
#[test]
fn the_experiment_adopts_its_reference_policys_architecture() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("ppo");
    let o = swimmer(&[
        "train", "--quiet", "--run-dir", run.to_str().unwrap(), "--env-steps", "400", "--env-opt", "max_episode_steps=100",
        "--set", "algo=\"ppo\"", "--set", "ppo.n_envs=1", "--set", "ppo.epochs=1", "--set", "policy.activation=\"relu\"",
        "--set", "policy.normalize_obs=true", "--set", "policy.hidden=[16]", "--set", "threads=1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = run.join("checkpoint.safetensors");
    let out = d.path().join("exp");
    let set_ref = format!("reference_policy={:?}", reference.display().to_string());
    let mut args = vec!["experiment", "--out", out.to_str().unwrap(), "--set", "labels=40", "--set", "train.env_steps=400", "--set", &set_ref];
    args.extend_from_slice(TINY_EXPERIMENT);
    let o = swimmer(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("rebel/summary.json")).unwrap()).unwrap();
    assert_eq!(s["initial_eval_true_return_mean"], s["reference_eval_true_return_mean"], "REBEL starts as the reference: {s}");
    let cfg = std::fs::read_to_string(out.join("rebel/config.toml")).unwrap();
    assert!(cfg.contains("activation = \"relu\"") && cfg.contains("normalize_obs = true") && cfg.contains("hidden = [16]"), "{cfg}");
}

/// `rebel --env ID experiment` on another environment: the default run's Swimmer options (its fast solver) are
/// not handed to it (they were, and every other environment refused `limit_projection`), and the Swimmer's
/// reference policy is refused with what to do.
#[test]
fn another_environment_runs_the_experiment_from_its_own_reference() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("exp");
    let env = ["--env", "InvertedPendulum-v5"];
    let mut args = env.to_vec();
    args.extend_from_slice(&["experiment", "--out", out.to_str().unwrap(), "--set", "labels=40", "--set", "train.env_steps=400"]);
    args.extend_from_slice(TINY_EXPERIMENT);
    let o = rebel(&args);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("made for another environment") && e.contains("rebel --env InvertedPendulum-v5 pretrain"), "{e}");
    assert!(!out.exists());
    let run = d.path().join("ref");
    let mut train = env.to_vec();
    train.extend_from_slice(&["train", "--quiet", "--run-dir", run.to_str().unwrap(), "--env-steps", "400", "--set", "threads=1"]);
    let o = rebel(&train);
    assert!(o.status.success(), "{}", stderr(&o));
    let set_ref = format!("reference_policy={:?}", run.join("checkpoint.safetensors").display().to_string());
    args.extend_from_slice(&["--set", &set_ref]);
    let o = rebel(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = std::fs::read_to_string(out.join("rebel/config.toml")).unwrap();
    assert!(cfg.contains("InvertedPendulum-v5") && !cfg.contains("limit_projection") && cfg.contains("max_episode_steps = 100"), "{cfg}");
}

/// `swimmer --env-opt rk4_integrator=true experiment` runs the default run on MuJoCo's RK4 step (the Swimmer's default
/// since session 30): the default run's fast solver, whose projected limits cannot go with it, is left out, and the
/// other --env-opt and --set keys stay.
#[test]
fn the_default_run_takes_mujocos_rk4_step_when_asked() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("exp");
    let mut args = vec!["--env-opt", "rk4_integrator=true", "--env-opt", "ctrl_cost_weight=0.001"];
    args.extend_from_slice(&["experiment", "--out", out.to_str().unwrap(), "--set", "labels=40", "--set", "train.env_steps=400"]);
    args.extend_from_slice(TINY_EXPERIMENT);
    let o = swimmer(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = std::fs::read_to_string(out.join("rebel/config.toml")).unwrap();
    assert!(cfg.contains("rk4_integrator = true") && cfg.contains("ctrl_cost_weight = 0.001") && cfg.contains("max_episode_steps = 100"), "{cfg}");
    assert!(!cfg.contains("limit_projection") && !cfg.contains("solver_iterations"), "{cfg}");
}

/// `experiment --query MODE --rounds 2 --labels-per-round 40` at a tiny scale.
fn active(out: &std::path::Path, mode: &str) -> std::process::Output {
    let mut args = vec![
        "experiment", "--out", out.to_str().unwrap(), "--query", mode, "--rounds", "2", "--labels-per-round", "40",
        "--set", "train.env_steps=4000",
    ];
    args.extend_from_slice(TINY_EXPERIMENT);
    swimmer(&args)
}

#[test]
fn active_querying_runs_its_rounds_and_a_rerun_reuses_them() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("dis");
    let o = active(&out, "disagreement");
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert_eq!(j["labels_used"], 80);
    assert_eq!(j["query"]["mode"], "disagreement");
    let rounds = j["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2);
    assert_eq!((rounds[0]["mode"].as_str(), rounds[1]["mode"].as_str()), (Some("uniform"), Some("disagreement")));
    assert_eq!((rounds[0]["labels_total"].as_u64(), rounds[1]["labels_total"].as_u64()), (Some(40), Some(80)));
    assert_eq!((rounds[0]["pool"].as_u64(), rounds[1]["queries"].as_u64()), (Some(400), Some(40)));
    let (s0, s1) = (rounds[0]["env_steps"].as_u64().unwrap(), rounds[1]["env_steps"].as_u64().unwrap());
    assert!((2000..4000).contains(&s0) && s1 >= 4000, "REBEL's budget is split over the rounds: {s0}, {s1}");
    assert_eq!(rounds[1]["reward_net"]["train_pairs"].as_u64().unwrap() + rounds[1]["reward_net"]["holdout_pairs"].as_u64().unwrap(), 80);
    for f in ["prefs.safetensors", "reward_model.safetensors", "experiment.json", "rebel/summary.json", "round0/prefs.safetensors",
        "round0/reward_model.safetensors", "round1/policy.safetensors", "round1/prefs.safetensors", "round1/round.json"] {
        assert!(out.join(f).exists(), "missing {f}");
    }
    // the folder's prefs.safetensors holds every label so far: a reward net trains on it
    let o = swimmer(&["rm", "train", "--prefs", out.join("prefs.safetensors").to_str().unwrap(), "--out", d.path().join("rm.st").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    // a rerun reuses every round: same labels, same nets, same returns
    let files = |p: &std::path::Path| -> Vec<Vec<u8>> {
        ["round0/prefs.safetensors", "round1/prefs.safetensors", "round1/reward_model.safetensors", "rebel/metrics.jsonl"]
            .iter().map(|f| std::fs::read(p.join(f)).unwrap()).collect()
    };
    let before = files(&out);
    let o = active(&out, "disagreement");
    assert!(o.status.success(), "{}", stderr(&o));
    let j2 = last_json(&o);
    assert!(files(&out) == before);
    for k in ["labels_total", "env_steps", "eval_true_return_mean", "prefs_hash"] {
        assert_eq!(j2["rounds"][1][k], j["rounds"][1][k], "{k}");
        assert_eq!(j2["rounds"][0][k], j["rounds"][0][k], "{k}");
    }

    // the mode decides round 1's pairs (round 0 is uniform either way)
    let uni = d.path().join("uni");
    let o = active(&uni, "uniform");
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |p: &std::path::Path, f: &str| std::fs::read(p.join(f)).unwrap();
    assert!(read(&uni, "round0/prefs.safetensors") == read(&out, "round0/prefs.safetensors"));
    assert!(read(&uni, "round1/prefs.safetensors") != read(&out, "round1/prefs.safetensors"));

    // another mode into a folder whose REBEL run went past round 1's start: refused, nothing touched
    let o = active(&out, "entropy");
    assert!(!o.status.success() && stderr(&o).contains("use a new --out"), "{}", stderr(&o));
    assert!(files(&out) == before);

    // a damaged round file behind a REBEL run that went past it: refused, saying which file and why
    let r1 = out.join("round1/prefs.safetensors");
    let good = std::fs::read(&r1).unwrap();
    std::fs::write(&r1, &good[..good.len() / 2]).unwrap();
    let o = active(&out, "disagreement");
    assert!(!o.status.success() && stderr(&o).contains("is unreadable") && stderr(&o).contains("round1/prefs.safetensors"), "{}", stderr(&o));
    std::fs::write(&r1, &good).unwrap();
    assert!(files(&out) == before);
    // settings that do not add up, and an unknown mode: errors that say what to set
    let o = swimmer(&["experiment", "--out", d.path().join("x").to_str().unwrap(), "--query", "entropy", "--rounds", "3", "--set", "labels=100"]);
    assert!(!o.status.success() && stderr(&o).contains("set labels = 99"), "{}", stderr(&o));
    let o = swimmer(&["experiment", "--out", d.path().join("x").to_str().unwrap(), "--query", "smart"]);
    assert!(!o.status.success() && stderr(&o).contains("disagreement"), "{}", stderr(&o));
    assert!(!d.path().join("x").exists());
}
