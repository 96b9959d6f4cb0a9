//! End-to-end tests of the baselines in `train` (PPO, REINFORCE, RLOO, DPO) and of `compare`, at a
//! tiny scale: 100-step episodes, a few iterations.

mod common;
use common::*;

use std::path::Path;
use std::process::Output;

const TINY: &[&str] = &[
    "--quiet",
    "--env-opt", "max_episode_steps=100",
    "--set", "eval.episodes=2",
    "--set", "eval.every_iters=2",
    "--set", "threads=1",
    "--set", "reinforce.branch_len=25",
    "--set", "reinforce.tail_len=25",
    "--set", "reinforce.groups=2",
    "--set", "rloo.branch_len=25",
    "--set", "rloo.tail_len=25",
    "--set", "rloo.groups=2",
    "--set", "dpo.iterations=3",
];

fn train(dir: &Path, algo: &str, steps: u64, extra: &[&str]) -> Output {
    let steps = steps.to_string();
    let r = reference();
    let init = format!("policy.init={r:?}");
    let mut args = vec!["train", "--algo", algo, "--run-dir", dir.to_str().unwrap(), "--env-steps", &steps, "--set", &init];
    args.extend_from_slice(TINY);
    args.extend_from_slice(extra);
    swimmer(&args)
}

fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn untimed_training(m: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    m.into_iter()
        .filter(|v| v.get("charts/iteration").is_some())
        .map(|mut v| {
            v.as_object_mut().unwrap().retain(|k, _| {
                !k.starts_with("eval/") && k != "wall_time_s" && k != "charts/env_steps_per_sec" && k != "charts/learner_s_per_iter"
            });
            v
        })
        .collect()
}

#[test]
fn every_baseline_trains_and_reports_its_losses() {
    let d = tempfile::tempdir().unwrap();
    for (algo, extra, tag) in [
        ("ppo", vec![], "losses/value_loss"),
        ("reinforce", vec![], "losses/reinforce"),
        ("rloo", vec!["--set", "rloo.k=4"], "losses/rloo"),
    ] {
        let run = d.path().join(algo);
        let o = train(&run, algo, 1500, &extra);
        assert!(o.status.success(), "{algo}: {}", stderr(&o));
        let s = last_json(&o);
        assert_eq!(s["algo"], algo);
        assert!(s["env_steps"].as_u64().unwrap() >= 1500);
        assert!(s["learner_s_per_iter"].as_f64().unwrap() > 0.0 && s["peak_rss_mb"].as_f64().unwrap() > 10.0, "{s}");
        let m = metrics(&run);
        assert!(m.iter().any(|v| v.get(tag).is_some_and(|x| x.as_f64().unwrap().is_finite())), "{algo} lacks {tag}");
        assert!(m.iter().filter(|v| v.get("eval/true_return").is_some()).count() >= 2);
    }
    // DPO needs a dataset
    let prefs = d.path().join("prefs.st");
    let o = swimmer(&["prefs", "collect", "--policy", &reference(), "--labels", "30", "--segment-len", "25", "--out", prefs.to_str().unwrap(), "--teacher", "bt", "--env-opt", "max_episode_steps=100"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ds = format!("dpo.dataset={:?}", prefs.display().to_string());
    for (name, extra, labels, online) in [
        ("dpo", vec![], 30, false),
        ("dpo-square", vec!["--set", "dpo.loss=\"square\""], 30, false),
        ("dpo-iterative", vec!["--set", "dpo.iterative=true", "--set", "dpo.labels_per_round=10"], 30, true),
    ] {
        let run = d.path().join(name);
        let mut args = vec!["--set", ds.as_str()];
        args.extend(extra);
        let o = train(&run, "dpo", 1, &args);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let s = last_json(&o);
        assert_eq!(s["iterations"], 3, "{name}: dpo.iterations is the budget");
        assert_eq!(s["labels_used"], labels, "{name}");
        assert_eq!(s["env_steps"].as_u64().unwrap() > 0, online, "{name}: {s}");
        assert!(metrics(&run).iter().any(|v| v.get("losses/dpo_accuracy").is_some()));
    }
    let o = train(&d.path().join("x"), "dpo", 1, &[]);
    assert!(!o.status.success() && stderr(&o).contains("dpo.dataset"), "{}", stderr(&o));
    let o = train(&d.path().join("y"), "a2c", 1, &[]);
    assert!(!o.status.success() && stderr(&o).contains("ppo"), "{}", stderr(&o));
}

#[test]
fn ppo_resumes_exactly_with_its_value_net_and_statistics() {
    let d = tempfile::tempdir().unwrap();
    let (full, part) = (d.path().join("full"), d.path().join("part"));
    assert!(train(&full, "ppo", 1600, &[]).status.success());
    assert!(train(&part, "ppo", 800, &[]).status.success());
    let o = swimmer(&["train", "--resume", part.to_str().unwrap(), "--env-steps", "1600", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (mf, mp) = (untimed_training(metrics(&full)), untimed_training(metrics(&part)));
    assert_eq!(mf.len(), 4);
    assert_eq!(mf, mp);
}

#[test]
fn compare_tunes_then_reports_with_intervals_and_refuses_to_mix() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("cmp");
    let args = tiny_compare(&out, 2, 1500);
    let args = strs(&args);
    let o = swimmer(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["row"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "reference", "dpo", "dpo-square", "dpo-iterative", "reinforce", "rloo-k2", "rloo-k4", "ppo", "ppo-true", "rebel",
            "rebel-true", "rebel-episodes", "rebel-notail", "rloo-k2-epochs", "reinforce-epochs"
        ]
    );
    for r in rows {
        for k in ["mean", "iqm"] {
            let (p, lo, hi) = (r[k]["point"].as_f64().unwrap(), r[k]["lo"].as_f64().unwrap(), r[k]["hi"].as_f64().unwrap());
            assert!(lo <= p && p <= hi, "{} {k}: {lo} {p} {hi}", r["row"]);
        }
        assert_eq!(r["final_return_per_seed"].as_array().unwrap().len(), 2, "every seed's final value");
        assert_eq!(r["seeds"], serde_json::json!([1, 2]));
        assert_eq!(r["reach"].as_array().unwrap().len(), 2);
        // the learner's bytes per update, recorded by every run that has a learner phase after its first
        if r["row"] == "rebel" || r["row"] == "ppo" {
            assert!(r["learner_phase_alloc_mb"].as_f64().is_some_and(|b| b > 0.0), "{}: {}", r["row"], r["learner_phase_alloc_mb"]);
        }
    }
    let row = |n: &str| rows.iter().find(|r| r["row"] == n).unwrap();
    // equal budgets: every label-using row has the same labels, the oracle rows none
    for n in ["dpo", "dpo-square", "dpo-iterative", "reinforce", "rloo-k2", "rloo-k4", "ppo", "rebel", "rebel-episodes"] {
        assert_eq!(row(n)["labels_used"], 40.0, "{n}");
        assert!(row(n)["label_env_steps"].as_f64().unwrap() >= 40.0 * 2.0 * 25.0, "{n}: the labels' pieces and their trunks");
    }
    for n in ["reference", "ppo-true", "rebel-true"] {
        assert_eq!(row(n)["labels_used"], 0.0, "{n}");
        assert_eq!(row(n)["label_env_steps"], 0.0, "{n}");
    }
    // every simulated env step is counted: the online rows spend their budget, iterative DPO its
    // rollouts (more than its labelled pieces), offline DPO none; evaluation in its own column
    for n in ["reinforce", "rloo-k2", "ppo", "rebel", "rebel-true", "rebel-episodes", "rloo-k2-epochs"] {
        assert!(row(n)["env_steps"].as_f64().unwrap() >= 1500.0, "{n}");
        assert!(row(n)["eval_env_steps"].as_f64().unwrap() > 0.0, "{n}");
        assert!(row(n)["learner_s_per_1k_steps"].as_f64().unwrap() > 0.0, "{n}");
    }
    assert!(row("dpo-iterative")["env_steps"].as_f64().unwrap() > 40.0 * 2.0 * 25.0);
    assert_eq!(row("dpo")["env_steps"], 0.0);
    // the probability of improvement of REBEL over each row of its reward source
    let imps = v["improvement"].as_array().unwrap();
    assert!(imps.iter().any(|i| i["row"] == "rebel" && i["over"] == "ppo"));
    assert!(imps.iter().any(|i| i["row"] == "rebel-true" && i["over"] == "ppo-true"));
    assert!(!imps.iter().any(|i| i["row"] == "rebel" && i["over"] == "ppo-true"), "only the same reward source");
    // seeds and evaluation start states: tuning and report disjoint
    let cfg = |p: std::path::PathBuf| -> toml::Value { toml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let tune = cfg(out.join("tune/configs/rebel__c0__s101.toml"));
    let rep = cfg(out.join("report/configs/rebel__s1.toml"));
    assert_eq!((tune["seed"].as_integer(), tune["eval"]["seed_base"].as_integer()), (Some(101), Some(2_000_000)));
    assert_eq!((rep["seed"].as_integer(), rep["eval"]["seed_base"].as_integer()), (Some(1), Some(1_000_000)));
    for f in ["tuning.md", "tuning.json", "results.md", "learning_curves.png", "learning_curves.svg"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("| rebel | 2 | ") && md.contains("fewer than 10, not evidence"), "{md}");
    // the machine every run ran on is named, in both reports and in results.json
    let tuning_md = std::fs::read_to_string(out.join("tuning.md")).unwrap();
    for text in [&md, &tuning_md] {
        assert!(text.contains("Machine: every run that records one ran on ") && text.contains(" kernels, libtorch "), "{text}");
    }
    assert_eq!(v["machines"].as_array().unwrap().len(), 1, "{}", v["machines"]);
    assert_eq!(v["machines"][0]["runs"], 28, "14 rows × 2 seeds");
    // one TensorBoard run per row and seed, side by side
    for n in ["ppo__s1", "rebel-true__s2", "dpo-iterative__s1"] {
        assert!(std::fs::read_dir(out.join("report").join(n).join("tb")).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with("events.out.tfevents")), "{n}");
    }
    // a second run into the same folder reuses the finished runs; one of them ran on another machine (its
    // record edited), and the report says that its rows are not one machine's draws
    let summary = out.join("report/rebel__s1/summary.json");
    let mut s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    s["machines"][0]["machine"]["cpu"] = "Another CPU".into();
    std::fs::write(&summary, serde_json::to_string(&s).unwrap()).unwrap();
    let o = swimmer(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("already finished"), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("**The runs ran on 2 machines that compute differently") && md.contains("Another CPU (") && md.contains(" (27 runs); "), "{md}");
    // another configuration (or a subset of the rows) into the same folder is refused, not mixed
    for extra in [&["--set", "train.rebel.eta=3"][..], &["--only", "rebel,ppo"][..]] {
        let mut a2 = args.clone();
        a2.extend_from_slice(extra);
        let o = swimmer(&a2);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("another configuration") && stderr(&o).contains("new --out"), "{}", stderr(&o));
    }
    // a folder that is not a comparison is refused too
    let o = swimmer(&strs(&tiny_compare(d.path(), 2, 1500)));
    assert!(stderr(&o).contains("not a comparison folder"), "{}", stderr(&o));
}

#[test]
fn compare_refuses_tuning_on_reported_seeds_and_unequal_budgets() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("cmp");
    let base = tiny_compare(&out, 2, 1500);
    let run = |extra: &[&str]| {
        let mut a = strs(&base);
        a.extend_from_slice(extra);
        swimmer(&a)
    };
    let o = run(&["--set", "protocol.tune_seeds=[2, 101]"]);
    assert!(!o.status.success() && stderr(&o).contains("seed 2 is both a tuning seed"), "{}", stderr(&o));
    let o = run(&["--set", "protocol.tune_eval_seed_base=1000001"]);
    assert!(!o.status.success() && stderr(&o).contains("overlap"), "{}", stderr(&o));
    // a grid whose size differs from tune_configs would give the rows different budgets
    let o = run(&["--set", "protocol.tune_configs=4", "--set", "protocol.search=\"grid\""]);
    assert!(!o.status.success() && stderr(&o).contains("same budget"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing is written before the configuration is accepted");
}

#[test]
fn compare_on_another_environment_runs_from_scratch_without_a_reference() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("pendulum.toml");
    std::fs::write(
        &cfg,
        r#"
labels = 0
seeds = 2
first_seed = 201
[protocol]
tune_configs = 1
tune_seeds = [301]
tune_env_steps = 0
tune_eval_seed_base = 4000000
thresholds = [50.0]
bootstrap_reps = 1000
focus = ["rebel"]
[train]
env_steps = 1500
[train.eval]
seed_base = 3000000
episodes = 2
every_iters = 2
[train.rebel]
branch_len = 25
tail_len = 25
groups = 2
[[rows]]
name = "rebel"
algo = "rebel"
reward = "true"
start = "scratch"
[[rows]]
name = "ppo"
algo = "ppo"
reward = "true"
start = "scratch"
"#,
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let out = d.path().join("cmp");
    let o = rebel(&["--env", "InvertedPendulum-v5", "--env-opt", "max_episode_steps=100", "compare", "--config", cfg, "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let names: Vec<&str> = v["rows"].as_array().unwrap().iter().map(|r| r["row"].as_str().unwrap()).collect();
    assert_eq!(names, ["rebel", "ppo"], "no reference row");
    for r in v["rows"].as_array().unwrap() {
        assert_eq!(r["seeds"], serde_json::json!([201, 202]));
        assert!(r["final_return_per_seed"].as_array().unwrap().iter().all(|x| x.as_f64().is_some_and(f64::is_finite)), "{r}");
    }
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("InvertedPendulum-v5, no reference policy; every row starts from a random policy (each run's win rate is against its own starting policy)"), "{md}");
    // each run is on the pendulum, from a random policy, with no reference
    let run: toml::Value = toml::from_str(&std::fs::read_to_string(out.join("report/configs/ppo__s201.toml")).unwrap()).unwrap();
    assert_eq!(run["env"]["id"].as_str(), Some("InvertedPendulum-v5"));
    for key in ["init", "reference"] {
        let section = if key == "init" { "policy" } else { "eval" };
        assert!(run[section].get(key).and_then(|x| x.as_str()).unwrap_or("").is_empty(), "{section}.{key}: {run}");
    }
    // the shipped rows need the Swimmer's reference, which another environment has not: refused, nothing written
    let none = d.path().join("none");
    let o = rebel(&["--env", "InvertedPendulum-v5", "compare", "--out", none.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("starts from the reference policy, but there is none") && stderr(&o).contains("start = \"scratch\""), "{}", stderr(&o));
    // and a reference policy of another environment is refused before anything runs
    let set = format!("reference_policy={:?}", reference());
    let o = rebel(&["--env", "InvertedPendulum-v5", "compare", "--config", cfg, "--set", &set, "--out", none.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("was trained on Swimmer-v5, not on InvertedPendulum-v5"), "{}", stderr(&o));
    // so is a policy knob tuned for one row from scratch and not the other
    let knob = d.path().join("knob.toml");
    let text = std::fs::read_to_string(cfg).unwrap() + "[search.ppo]\n\"policy.log_std_init\" = [-1.0, 0.0]\n";
    std::fs::write(&knob, text).unwrap();
    let o = rebel(&["--env", "InvertedPendulum-v5", "compare", "--config", knob.to_str().unwrap(), "--out", none.to_str().unwrap()]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("rows rebel and ppo start from scratch but treat policy.log_std_init differently (left at [train.policy]'s value against tuned over [-1.0, 0.0])"), "{e}");
    assert_eq!(e.matches("policy.log_std_init differently").count(), 1, "one error: {e}");
    assert!(!none.exists(), "nothing is written before the configuration is accepted");
}
