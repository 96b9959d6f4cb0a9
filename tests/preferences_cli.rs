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
    let o = swimmer(&[
        "experiment", "--quiet", "--out", out.to_str().unwrap(),
        "--set", "labels=100", "--set", "check_pairs=50", "--set", "reward_model.epochs=5",
        "--set", "train.env_steps=2000", "--set", "train.threads=1",
        "--set", "train.rebel.groups=2", "--set", "train.rebel.branch_len=25", "--set", "train.rebel.tail_len=25",
        "--set", "train.eval.episodes=2", "--set", "train.env.options.max_episode_steps=100",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert_eq!(j["labels_used"], 100);
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
