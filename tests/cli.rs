//! End-to-end tests of the `swimmer` command line: replay, bench, render, train, resume, eval,
//! and the errors a user meets first.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Output;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("envs/tests/data/mujoco").join(name)
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

#[test]
fn replay_writes_every_state_with_17_digits_and_tracks_mujoco() {
    let d = tmp();
    let out = d.path().join("out.csv");
    // the good-gait reference: extract its actions into an action file
    let reference = std::fs::read_to_string(data("swimmer_v5_c1_sin_w2.9_phi-25deg_goodgait.csv")).unwrap();
    let mut actions = String::from("action0,action1\n");
    let mut ref_return = 0.0;
    for line in reference.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        actions.push_str(&format!("{},{}\n", f[2], f[3]));
        ref_return += f[22].parse::<f64>().unwrap();
    }
    let act = d.path().join("actions.csv");
    std::fs::write(&act, actions).unwrap();
    let o = swimmer(&["replay", "--actions", act.to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "step,qpos0,qpos1,qpos2,qpos3,qpos4,qvel0,qvel1,qvel2,qvel3,qvel4,obs0,obs1,obs2,obs3,obs4,obs5,obs6,obs7,reward,x_velocity"
    );
    let rows: Vec<Vec<f64>> = lines.map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    assert_eq!(rows.len(), 1000);
    assert!(rows.iter().enumerate().all(|(k, r)| r[0] == k as f64 && r.len() == 21));
    // obs = qpos[2..] ++ qvel (as f32), reward sums to MuJoCo's return within the fidelity tolerance
    for r in &rows {
        for i in 0..8 {
            assert_eq!(r[11 + i], r[3 + i] as f32 as f64);
        }
    }
    let ret: f64 = rows.iter().map(|r| r[19]).sum();
    assert!((ret - ref_return).abs() < f64::max(10.0, 0.05 * ref_return.abs()), "{ret} vs {ref_return}");
    // 17 significant digits: values round-trip exactly
    assert!(text.lines().nth(5).unwrap().split(',').skip(1).any(|v| v.trim_start_matches('-').len() >= 17));
}

#[test]
fn replay_rejects_too_many_rows_and_malformed_lines() {
    let d = tmp();
    let long = d.path().join("long.csv");
    let mut s = String::from("action0,action1\n");
    for _ in 0..1001 {
        s.push_str("0.5,-0.5\n");
    }
    std::fs::write(&long, s).unwrap();
    let o = swimmer(&["replay", "--actions", long.to_str().unwrap(), "--output", d.path().join("o.csv").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("1001 action rows") && stderr(&o).contains("1000"), "{}", stderr(&o));
    assert!(!d.path().join("o.csv").exists(), "nothing is written on error");

    let bad = d.path().join("bad.csv");
    std::fs::write(&bad, "action0,action1\n0.1,0.2\n0.3,x\n").unwrap();
    let o = swimmer(&["replay", "--actions", bad.to_str().unwrap(), "--output", d.path().join("o.csv").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("bad.csv:3") && stderr(&o).contains("'x' is not a number"), "{}", stderr(&o));

    let hdr = d.path().join("hdr.csv");
    std::fs::write(&hdr, "a,b\n0.1,0.2\n").unwrap();
    let o = swimmer(&["replay", "--actions", hdr.to_str().unwrap(), "--output", d.path().join("o.csv").to_str().unwrap()]);
    assert!(stderr(&o).contains("header must be 'action0,action1'"), "{}", stderr(&o));
}

#[test]
fn bench_ends_with_a_json_line() {
    let o = swimmer(&["bench", "--steps", "2000", "--envs", "2", "--threads", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    for key in ["env", "steps", "envs", "threads", "seconds", "env_steps_per_sec"] {
        assert!(j.get(key).is_some(), "missing {key}: {j}");
    }
    assert_eq!(j["env"], "Swimmer-v5");
    assert_eq!(j["steps"], 2000);
    assert!(j["env_steps_per_sec"].as_f64().unwrap() > 100.0);
}

/// `rebel bench | head -1`: a reader that leaves ends the command as it ends `cat`, by SIGPIPE, without a panic.
#[test]
fn a_closed_standard_output_ends_a_printing_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    for args in [&["bench", "--steps", "20000", "--envs", "1", "--threads", "1"][..], &["envs"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rebel"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run rebel");
        drop(child.stdout.take()); // the reader leaves before the first line (the binary takes far longer to start)
        let o = child.wait_with_output().expect("wait");
        let err = stderr(&o);
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
        assert_eq!(o.status.signal(), Some(libc::SIGPIPE), "{args:?}: {:?}, {err}", o.status);
    }
}

/// `serve-env` through real pipes, as `scripts/rebel_gym.py` drives it: the hello line, a reset, steps that
/// match a `replay` of the same actions, an error answer, and a clean exit on `close`; an unknown environment or
/// option fails at start with the message on stderr.
#[test]
fn serve_env_speaks_json_lines_over_pipes() {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rebel"))
        .args(["--env", "Hopper-v5", "--env-opt", "reset_noise_scale=0", "serve-env"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run rebel serve-env");
    let rows: Vec<String> = (0..5).map(|k| format!("{},{},-0.25", 0.9 - 0.3 * k as f32, 0.1 * k as f32)).collect();
    let mut input = String::from("{\"cmd\":\"reset\",\"seed\":0}\n{\"cmd\":\"step\",\"action\":[1]}\n");
    for r in &rows {
        input.push_str(&format!("{{\"cmd\":\"step\",\"action\":[{r}]}}\n"));
    }
    input.push_str("{\"cmd\":\"close\"}\n");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    let answers: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(answers.len(), 3 + rows.len(), "hello, reset, the bad step, the steps; nothing after close");
    assert_eq!(answers[0]["env"], "Hopper-v5");
    assert_eq!(answers[0]["options"]["reset_noise_scale"], 0.0);
    assert!(answers[2]["error"].as_str().unwrap().contains("3"), "{}", answers[2]);

    // The same actions through `replay` (exact rest state) give the same rewards to the last bit.
    let d = tmp();
    let mut csv = String::from("action0,action1,action2\n");
    rows.iter().for_each(|r| csv.push_str(&format!("{r}\n")));
    std::fs::write(d.path().join("a.csv"), csv).unwrap();
    let out = d.path().join("states.csv");
    let r = rebel(&["--env", "Hopper-v5", "replay", "--actions", d.path().join("a.csv").to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let text = std::fs::read_to_string(out).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "reward").unwrap();
    for (k, line) in text.lines().skip(1).enumerate() {
        let want: f64 = line.split(',').nth(col).unwrap().parse().unwrap();
        // The reward as written, parsed by Rust's correctly rounded parse (as Python's json does).
        let l = &lines[3 + k];
        let at = l.find("\"reward\":").unwrap() + 9;
        let got: f64 = l[at..at + l[at..].find(',').unwrap()].parse().unwrap();
        assert_eq!(got.to_bits(), want.to_bits(), "step {k}");
    }

    let o = rebel(&["--env", "Hoper-v5", "serve-env"]);
    assert!(!o.status.success() && stderr(&o).contains("Hopper-v5"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "no hello line when the environment cannot be made");
}

#[test]
fn render_writes_gif_and_png() {
    let d = tmp();
    let gif = d.path().join("swim.gif");
    let o = swimmer(&["render", "--gait", "2.125,-7.5", "--steps", "40", "--output", gif.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&gif).unwrap();
    assert_eq!(&bytes[..6], b"GIF89a");
    let png = d.path().join("swim.png");
    let o = swimmer(&["render", "--gait", "2.125,-7.5", "--steps", "10", "--size", "200", "--output", png.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 200);
    let o = swimmer(&["render", "--gait", "fast", "--output", png.to_str().unwrap()]);
    assert!(stderr(&o).contains("W,PHI_DEG"), "{}", stderr(&o));
}


fn train(run_dir: &Path, steps: u64, extra: &[&str]) -> Output {
    let steps = steps.to_string();
    let mut args = vec!["train", "--run-dir", run_dir.to_str().unwrap(), "--env-steps", &steps];
    args.extend_from_slice(TINY_TRAIN);
    args.extend_from_slice(extra);
    swimmer(&args)
}

fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Metrics without the timing fields, for determinism checks.
fn untimed(m: &[serde_json::Value]) -> Vec<serde_json::Value> {
    m.iter()
        .map(|v| {
            let mut v = v.clone();
            let o = v.as_object_mut().unwrap();
            o.retain(|k, _| k != "wall_time_s" && k != "charts/env_steps_per_sec" && k != "charts/learner_s_per_iter");
            v
        })
        .collect()
}

#[test]
fn train_writes_a_complete_run_directory_and_is_deterministic() {
    let d = tmp();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    let o = train(&a, 3000, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = last_json(&o);
    for key in ["algo", "env", "seed", "env_steps", "labels_used", "wall_time_s", "eval_true_return_mean", "eval_true_return_std", "eval_episodes"] {
        assert!(s.get(key).is_some(), "summary lacks {key}");
    }
    assert_eq!(s["labels_used"], 0);
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(a.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary, s);
    let cfg = std::fs::read_to_string(a.join("config.toml")).unwrap();
    assert!(cfg.contains("groups = 2") && cfg.contains("[rebel]"), "{cfg}");
    let m = metrics(&a);
    assert!(m.iter().all(|v| v.get("env_steps").is_some() && v.get("wall_time_s").is_some()));
    assert!(m.iter().any(|v| v.get("eval/true_return").is_some()));
    assert!(m.iter().any(|v| v.get("losses/rebel").is_some() && v.get("losses/approx_kl").is_some()));
    assert!(std::fs::read_dir(a.join("tb")).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with("events.out.tfevents")));
    assert!(a.join("checkpoint.safetensors").exists());

    // same seed, same threads: the same numbers
    let o = train(&b, 3000, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(untimed(&metrics(&a)), untimed(&metrics(&b)));

    // eval of the checkpoint
    let ck = a.join("checkpoint.safetensors");
    let o = swimmer(&["eval", "--checkpoint", ck.to_str().unwrap(), "--episodes", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert_eq!(j["episodes"], 2);
    assert!(j["eval_true_return_mean"].as_f64().unwrap().is_finite());
    // render of the checkpoint's policy
    let gif = d.path().join("policy.gif");
    let o = swimmer(&["render", "--checkpoint", ck.to_str().unwrap(), "--steps", "20", "--output", gif.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(gif.exists());
}

/// `eval` of checkpoint `ck` over `episodes` episodes with `extra` arguments, which must succeed.
fn eval_ok(ck: &Path, episodes: &str, extra: &[&str]) -> Output {
    let mut args = vec!["eval", "--checkpoint", ck.to_str().unwrap(), "--episodes", episodes];
    args.extend_from_slice(extra);
    let o = swimmer(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

#[test]
fn eval_and_render_run_the_policy_in_the_environment_it_was_trained_in() {
    let d = tmp();
    let run = d.path().join("r");
    // TINY_TRAIN's max_episode_steps=100, and a control cost 5000 times the Swimmer's
    let o = train(&run, 2000, &["--env-opt", "ctrl_cost_weight=0.5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = last_json(&o);
    let ck = run.join("checkpoint.safetensors");
    let episodes = s["eval_episodes"].to_string();
    let eval = |extra: &[&str]| eval_ok(&ck, &episodes, extra);
    // `eval` with no --env-opt reproduces the run's own final evaluation to the bit (same seeds, same options)
    let o = eval(&[]);
    let j = last_json(&o);
    assert_eq!(j["eval_true_return_mean"], s["eval_true_return_mean"], "{}", stderr(&o));
    assert_eq!(j["eval_true_return_std"], s["eval_true_return_std"]);
    assert_eq!(j["env_options"], serde_json::json!({"ctrl_cost_weight": 0.5, "max_episode_steps": 100}));
    assert!(stderr(&o).contains("options it was trained with: ctrl_cost_weight=0.5, max_episode_steps=100"), "{}", stderr(&o));
    // an --env-opt replaces the recorded value of its key only: without the control cost every return rises
    let o = eval(&["--env-opt", "ctrl_cost_weight=0"]);
    let j = last_json(&o);
    assert_eq!(j["env_options"], serde_json::json!({"ctrl_cost_weight": 0, "max_episode_steps": 100}));
    assert!(j["eval_true_return_mean"].as_f64().unwrap() > s["eval_true_return_mean"].as_f64().unwrap(), "{j}");
    assert!(stderr(&o).contains("ctrl_cost_weight=0.5 (replaced by --env-opt)"), "{}", stderr(&o));
    // `render` plays the same environment: its episode ends at the recorded 100 steps
    let gif = d.path().join("p.gif");
    let o = swimmer(&["render", "--checkpoint", ck.to_str().unwrap(), "--output", gif.to_str().unwrap(), "--every", "10"]);
    assert!(o.status.success() && stderr(&o).contains("rendered 100 steps"), "{}", stderr(&o));
    // collecting labels with it in other options than it was trained with says so (and runs as asked)
    let prefs = d.path().join("p.st");
    let o = swimmer(&["prefs", "collect", "--policy", ck.to_str().unwrap(), "--labels", "4", "--segment-len", "5", "--out", prefs.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("with other settings than this run's: ctrl_cost_weight = 0.5 when trained, 0.0001 now, max_episode_steps = 100 when trained, 1000 now"),
        "{}",
        stderr(&o)
    );
}

/// `envs --settings` prints every setting of the chosen environment with the value in effect, as TOML lines that a
/// configuration's `[env.options]` takes, after a comment naming its dynamics' revision, and a comment at each setting
/// the others leave without effect (an `--env-opt` setting one is named on stderr too); an unknown environment is an
/// error listing the registered ones.
#[test]
fn envs_settings_print_every_default_in_effect() {
    let o = rebel(&["--env", "HalfCheetah-v5", "--env-opt", "frame_skip=2", "envs", "--settings"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t: toml::Table = stdout(&o).parse().unwrap();
    assert_eq!(t["euler_integrator"].as_bool(), Some(true));
    let without = "euler_integrator = true  # without effect: mujoco_euler = true takes MuJoCo's Euler step whole";
    assert!(stdout(&o).lines().any(|l| l.starts_with(without)), "{}", stdout(&o));
    assert!(stdout(&o).lines().any(|l| l == "frame_skip = 2") && !stderr(&o).contains("without effect"), "{}", stderr(&o));
    let o = rebel(&["--env", "HalfCheetah-v5", "--env-opt", "euler_integrator=false", "envs", "--settings"]);
    assert_eq!(stderr(&o).matches("note: HalfCheetah-v5: without effect here: euler_integrator = false: mujoco_euler").count(), 1, "{}", stderr(&o));
    let o = rebel(&["--env", "HalfCheetah-v5", "--env-opt", "euler_integrator=false", "--env-opt", "mujoco_euler=false", "envs", "--settings"]);
    assert!(!stdout(&o).contains("euler_integrator = false  #") && !stderr(&o).contains("without effect"), "{}", stdout(&o));
    assert_eq!(t["frame_skip"].as_integer(), Some(2));
    assert_eq!(t["max_episode_steps"].as_integer(), Some(1000));
    assert_eq!(t["ctrl_cost_weight"].as_float(), Some(0.1));
    let o = rebel(&["--env", "Hopper-v5", "envs", "--settings"]);
    assert!(stdout(&o).contains("healthy_z_range = \"0.7,inf\""), "{}", stdout(&o));
    let rev = rebel_envs::dynamics_revision("Hopper-v5").unwrap();
    assert!(stdout(&o).starts_with(&format!("# Hopper-v5: dynamics revision {rev} (")), "{}", stdout(&o));
    let o = rebel(&["--env", "Cheetah-v9", "envs", "--settings"]);
    assert!(!o.status.success() && stderr(&o).contains("HalfCheetah-v5"), "{}", stderr(&o));
    let o = rebel(&["envs"]);
    assert!(stdout(&o).lines().any(|l| l == "Walker2d-v5"), "{}", stdout(&o));
}

/// The training metrics of a run, without its evaluations (a run evaluates at its last iteration, so a resumed
/// run's evaluations differ from an uninterrupted one's only in when they happen).
fn training_only(m: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    untimed(&m)
        .into_iter()
        .filter(|v| v.get("losses/rebel").is_some())
        .map(|mut v| {
            v.as_object_mut().unwrap().retain(|k, _| !k.starts_with("eval/"));
            v
        })
        .collect()
}

/// Rewrites a run as an older build whose default of `key` was the value the run set would have written it: without
/// the key in `config.toml` and in its checkpoint's options, the checkpoint's config hash that of the edited file.
fn as_if_it_were_the_default(run: &Path, key: &str) {
    use rebel_agents::{checkpoint::Checkpoint, run_dir::config_hash, train::TrainConfig};
    let path = run.join("config.toml");
    let mut t: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    t["env"]["options"].as_table_mut().unwrap().remove(key).unwrap();
    let text = toml::to_string(&t).unwrap();
    std::fs::write(&path, &text).unwrap();
    let cfg: TrainConfig = toml::from_str(&text).unwrap();
    let ck = run.join("checkpoint.safetensors");
    let mut c = Checkpoint::load(&ck).unwrap();
    c.meta.env_options.remove(key).unwrap();
    c.meta.config_hash = config_hash(&cfg.resolve().unwrap()).unwrap();
    assert_eq!(c.meta.env_settings.get(key).and_then(|v| v.as_float()), Some(0.5));
    c.save(&ck).unwrap();
}

/// A checkpoint records every setting of its environment, defaults included. When a default changes after a run
/// (played here by taking an option the run set out of its record, as a build whose default it was would have
/// written it), `eval` runs its policy and a resume continues it with the recorded value, each saying so, and an
/// `--env-opt` still wins.
#[test]
fn a_default_changed_since_a_run_keeps_its_recorded_value() {
    let d = tmp();
    let (full, part) = (d.path().join("full"), d.path().join("part"));
    let opt = ["--env-opt", "ctrl_cost_weight=0.5"];
    assert!(train(&full, 4000, &opt).status.success());
    assert!(train(&part, 2000, &opt).status.success());
    as_if_it_were_the_default(&full, "ctrl_cost_weight");
    as_if_it_were_the_default(&part, "ctrl_cost_weight");
    let said = "ctrl_cost_weight = 0.5 when trained, 0.0001 now";

    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(full.join("summary.json")).unwrap()).unwrap();
    let ck = full.join("checkpoint.safetensors");
    let episodes = s["eval_episodes"].to_string();
    let eval = |extra: &[&str]| eval_ok(&ck, &episodes, extra);
    let o = eval(&[]);
    assert!(stderr(&o).contains(&format!("with the settings it was trained with where today's differ: {said}")), "{}", stderr(&o));
    assert_eq!(last_json(&o)["eval_true_return_mean"], s["eval_true_return_mean"], "{}", stderr(&o));
    let o = eval(&["--env-opt", "ctrl_cost_weight=0.0001"]);
    assert!(!stderr(&o).contains(said), "{}", stderr(&o));
    assert!(last_json(&o)["eval_true_return_mean"].as_f64().unwrap() > s["eval_true_return_mean"].as_f64().unwrap());

    let o = swimmer(&["train", "--resume", part.to_str().unwrap(), "--env-steps", "4000", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("resumes Swimmer-v5 with the settings it started with: {said}")), "{}", stderr(&o));
    let (mf, mp) = (training_only(metrics(&full)), training_only(metrics(&part)));
    assert!(mf.len() >= 4, "{mf:?}");
    assert_eq!(mf, mp);
    // the resumed run's checkpoint records the settings it ran with
    let mut c = rebel_agents::checkpoint::Checkpoint::load(part.join("checkpoint.safetensors")).unwrap();
    assert_eq!(c.meta.env_settings.get("ctrl_cost_weight").and_then(|v| v.as_float()), Some(0.5));
    // a crafted record that this build cannot make is a clear error naming the file and the key
    c.meta.env_settings.insert("ctrl_cost_weight".into(), toml::Value::String("lots".into()));
    c.save(&ck).unwrap();
    let o = swimmer(&["eval", "--checkpoint", ck.to_str().unwrap(), "--episodes", "1"]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("the settings it records do not make Swimmer-v5") && e.contains("ctrl_cost_weight"), "{e}");
}

/// A checkpoint of an earlier revision of its environment's dynamics, where options undo the changes since
/// (`rebel_envs::options_for_revision`), runs as it was trained: `eval` applies them (its return is the run's own) and
/// a resume goes on exactly, each saying so; an `--env-opt` of the key wins. Played here by a Hopper run on revision 1's
/// step (`rk4_integrator=false`) whose record is edited to read as a revision-1 build, which had no such option, wrote it.
#[test]
fn a_checkpoint_of_an_earlier_revision_steps_as_it_was_trained() {
    use rebel_agents::{checkpoint::Checkpoint, run_dir::config_hash, train::TrainConfig};
    let d = tmp();
    let (full, part) = (d.path().join("full"), d.path().join("part"));
    let hopper = |run: &Path, steps: &str| {
        let mut args = vec!["--env", "Hopper-v5", "train", "--run-dir", run.to_str().unwrap(), "--env-steps", steps];
        args.extend_from_slice(TINY_TRAIN);
        args.extend_from_slice(&["--env-opt", "rk4_integrator=false"]);
        let o = rebel(&args);
        assert!(o.status.success(), "{}", stderr(&o));
    };
    hopper(&full, "1200");
    hopper(&part, "600");
    for run in [&full, &part] {
        let path = run.join("config.toml");
        let mut t: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        t["env"]["options"].as_table_mut().unwrap().remove("rk4_integrator").unwrap();
        let text = toml::to_string(&t).unwrap();
        std::fs::write(&path, &text).unwrap();
        let ck = run.join("checkpoint.safetensors");
        let mut c = Checkpoint::load(&ck).unwrap();
        assert_eq!(c.meta.env_revision, Some(2));
        c.meta.env_options.remove("rk4_integrator").unwrap();
        c.meta.env_settings.remove("rk4_integrator").unwrap();
        c.meta.env_revision = Some(1);
        c.meta.config_hash = config_hash(&toml::from_str::<TrainConfig>(&text).unwrap().resolve().unwrap()).unwrap();
        c.save(&ck).unwrap();
    }
    let said = "as revision 1 of its dynamics stepped, the one it was trained on: rk4_integrator=false";
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(full.join("summary.json")).unwrap()).unwrap();
    let ck = full.join("checkpoint.safetensors");
    let episodes = s["eval_episodes"].to_string();
    let o = rebel(&["eval", "--checkpoint", ck.to_str().unwrap(), "--episodes", &episodes]);
    assert!(o.status.success() && stderr(&o).contains(said), "{}", stderr(&o));
    assert!(stderr(&o).contains("--env-opt rk4_integrator=false steps as it was trained"), "{}", stderr(&o));
    assert_eq!(last_json(&o)["eval_true_return_mean"], s["eval_true_return_mean"], "{}", stderr(&o));
    assert_eq!(last_json(&o)["env_options"]["rk4_integrator"], false);
    let o = rebel(&["eval", "--checkpoint", ck.to_str().unwrap(), "--episodes", &episodes, "--env-opt", "rk4_integrator=true"]);
    assert!(o.status.success() && !stderr(&o).contains(said), "{}", stderr(&o));
    assert_eq!(last_json(&o)["env_options"]["rk4_integrator"], true);
    // without --env, an --env-opt the checkpoint's environment leaves without effect is named once, as for a run
    let o = rebel(&["eval", "--checkpoint", ck.to_str().unwrap(), "--episodes", "1", "--env-opt", "limit_natural_frequency=20"]);
    let inert_eval = "note: Hopper-v5: without effect here: limit_natural_frequency = 20.0: mujoco_limits = true";
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o).matches(inert_eval).count(), 1, "{}", stderr(&o));

    // a new run from its policy keeps its own environment and says how to step the policy's
    let start = format!("policy.init={:?}", ck.to_str().unwrap());
    let from = |run: &str, extra: &[&str]| {
        let run = d.path().join(run);
        let mut args = vec!["--env", "Hopper-v5", "train", "--run-dir", run.to_str().unwrap(), "--env-steps", "600", "--set", &start];
        args.extend_from_slice(TINY_TRAIN);
        args.extend_from_slice(extra);
        let o = rebel(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stderr(&o)
    };
    let noted = "the policy this run starts from, was trained on Hopper-v5 stepped otherwise: it was trained on revision 1 of \
                 the dynamics, this run steps revision 2 (--env-opt rk4_integrator=false steps revision 1)";
    let e = from("started", &[]);
    assert_eq!(e.matches(noted).count(), 1, "{e}");
    assert!(!from("started_pinned", &["--env-opt", "rk4_integrator=false"]).contains("starts from"));
    // an option the other settings leave without effect is named once, with how to give it effect
    let e = from("started_inert", &["--env-opt", "limit_natural_frequency=20"]);
    let inert = "note: Hopper-v5: without effect here: limit_natural_frequency = 20.0: mujoco_limits = true: the joint limits \
                 follow MuJoCo's law, not Rapier's softness (it acts with mujoco_limits=false, rk4_integrator=false)";
    assert_eq!(e.matches(inert).count(), 1, "{e}");

    let o = rebel(&["--env", "Hopper-v5", "train", "--resume", part.to_str().unwrap(), "--env-steps", "1200", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resumes Hopper-v5 as revision 1 of its dynamics stepped, the one it started on: rk4_integrator=false"), "{}", stderr(&o));
    let (mf, mp) = (training_only(metrics(&full)), training_only(metrics(&part)));
    assert!(mf.len() >= 2, "{mf:?}");
    assert_eq!(mf, mp);
    let c = Checkpoint::load(part.join("checkpoint.safetensors")).unwrap();
    assert_eq!((c.meta.env_revision, c.meta.env_settings.get("rk4_integrator")), (Some(2), Some(&toml::Value::Boolean(false))));
}

/// A checkpoint records the revision of its environment's dynamics. Where this build's differ (played here by editing
/// the record), `eval` and a resume say which changes the policy meets, or that it comes from a newer build, and run;
/// the resumed run's checkpoint records this build's revision.
#[test]
fn a_checkpoint_of_other_dynamics_is_told_what_changed() {
    use rebel_agents::checkpoint::Checkpoint;
    let d = tmp();
    let run = d.path().join("r");
    assert!(train(&run, 2000, &[]).status.success());
    let ck = run.join("checkpoint.safetensors");
    let now = rebel_envs::dynamics_revision("Swimmer-v5").unwrap();
    assert!(now >= 1);
    let mut c = Checkpoint::load(&ck).unwrap();
    assert_eq!(c.meta.env_revision, Some(now));
    let o = eval_ok(&ck, "1", &[]);
    assert!(!stderr(&o).contains("dynamics"), "{}", stderr(&o));

    c.meta.env_revision = Some(now - 1);
    c.save(&ck).unwrap();
    let o = eval_ok(&ck, "1", &[]);
    let first = rebel_envs::dynamics_history("Swimmer-v5").unwrap()[now as usize - 1];
    let said = format!("Swimmer-v5's dynamics changed since it was trained (revision {}, this build {now}; revision {now}: {first})", now - 1);
    assert!(stderr(&o).contains(&said), "{}", stderr(&o));
    let o = swimmer(&["train", "--resume", run.to_str().unwrap(), "--env-steps", "3000", "--quiet"]);
    assert!(o.status.success() && stderr(&o).contains("resumes on other dynamics") && stderr(&o).contains(&said), "{}", stderr(&o));
    let mut c = Checkpoint::load(&ck).unwrap();
    assert_eq!(c.meta.env_revision, Some(now));
    // the machine: recorded from the start, not repeated by a resume on the same one
    let here = rebel_agents::machine::Machine::current();
    assert_eq!(c.meta.machines.len(), 1, "{:?}", c.meta.machines);
    assert_eq!((c.meta.machines[0].from_env_steps, &c.meta.machines[0].machine.cpu), (0, &here.cpu));
    assert_eq!(c.meta.machines[0].machine.kernels, here.kernels);
    assert!(!stderr(&o).contains("another machine"), "{}", stderr(&o));
    // a resume on a machine that computes differently (the record edited) is told so, and recorded from where it
    // resumed, in the checkpoint and in summary.json
    let steps = c.meta.counters["env_steps"];
    c.meta.machines[0].machine.cpu = "Imaginary CPU".into();
    c.save(&ck).unwrap();
    let o = swimmer(&["train", "--resume", run.to_str().unwrap(), "--env-steps", "4000", "--quiet"]);
    let said = format!("this run goes on from {steps} env steps on another machine than it ran on until now (processor: Imaginary CPU → {}", here.cpu);
    assert!(o.status.success() && stderr(&o).contains(&said), "{}", stderr(&o));
    let s: rebel_agents::train::Summary = serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let mut c = Checkpoint::load(&ck).unwrap();
    assert_eq!(s.machines, c.meta.machines);
    let cpus: Vec<(u64, &str)> = s.machines.iter().map(|p| (p.from_env_steps, p.machine.cpu.as_str())).collect();
    assert_eq!(cpus, [(0, "Imaginary CPU"), (steps, here.cpu.as_str())]);

    c.meta.env_revision = Some(now + 4);
    c.save(&ck).unwrap();
    let o = eval_ok(&ck, "1", &[]);
    let said = format!("it was trained on revision {} of Swimmer-v5's dynamics, newer than this build's {now}", now + 4);
    assert!(stderr(&o).contains(&said), "{}", stderr(&o));
}

#[test]
fn resume_continues_a_run_exactly_and_refuses_another_config() {
    let d = tmp();
    let (full, part) = (d.path().join("full"), d.path().join("part"));
    assert!(train(&full, 4000, &[]).status.success());
    assert!(train(&part, 2000, &[]).status.success());
    // continue the shorter run with a larger budget
    let o = swimmer(&["train", "--resume", part.to_str().unwrap(), "--env-steps", "4000", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // the training metrics of every iteration of the uninterrupted run appear, identical, in the
    // resumed one (evaluations differ only in when they happen: a run evaluates at its last iteration)
    let (mf, mp) = (training_only(metrics(&full)), training_only(metrics(&part)));
    assert!(mf.len() >= 4, "{mf:?}");
    assert_eq!(mf, mp);
    // another configuration is refused with the differing key named
    let o = swimmer(&["train", "--resume", part.to_str().unwrap(), "--set", "rebel.eta=3", "--quiet"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("rebel.eta"), "{}", stderr(&o));
    // resuming a run already at its budget (a rerun of a finished experiment does) reports it again: its
    // learner time, undefined with no iteration, is null in summary.json and read back
    let o = swimmer(&["train", "--resume", full.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert!(j["learner_s_per_iter"].is_null() && j["env_steps"].as_u64().unwrap() >= 4000, "{j}");
    // `curves` draws both runs as one series, and a folder without metrics is an error
    let png = d.path().join("c.png");
    let runs = format!("rebel={},{}", full.display(), part.display());
    let o = swimmer(&["curves", "--out", png.to_str().unwrap(), "--series", &runs]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(last_json(&o)["rebel"]["runs"], 2);
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG") && png.with_extension("svg").exists());
    let o = swimmer(&["curves", "--out", png.to_str().unwrap(), "--series", &format!("x={}", d.path().display())]);
    assert!(!o.status.success() && stderr(&o).contains("no metrics.jsonl"), "{}", stderr(&o));
}

#[test]
fn bad_configuration_and_checkpoints_are_clear_errors() {
    let d = tmp();
    let o = train(&d.path().join("x"), 1000, &["--set", "rebel.etta=2"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("rebel.etta") && e.contains("eta") && e.contains("branch_len"), "{e}");

    let bad = d.path().join("bad.safetensors");
    std::fs::write(&bad, b"this is not a checkpoint").unwrap();
    let o = swimmer(&["eval", "--checkpoint", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("corrupt") || stderr(&o).contains("not a"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));

    // a win-rate opponent of another environment (the Swimmer's reference on the pendulum) is refused, not run
    let run = d.path().join("other-ref");
    let set = format!("eval.reference={:?}", reference());
    let o = rebel(&["--env", "InvertedPendulum-v5", "train", "--quiet", "--env-steps", "1000", "--set", &set, "--run-dir", run.to_str().unwrap()]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("is a policy of 8 observations and 2 actions, trained on Swimmer-v5, but InvertedPendulum-v5 has 4 and 1"), "{e}");
    assert!(!e.contains("panicked") && !run.exists(), "{e}");

    // a diverging run stops with a message and keeps its last good checkpoint
    let run = d.path().join("div");
    let o = train(&run, 6000, &["--set", "rebel.lr=1e6", "--set", "rebel.max_grad_norm=0"]);
    assert!(!o.status.success(), "lr = 1e6 must diverge");
    assert!(stderr(&o).contains("diverged") && stderr(&o).contains("checkpoint"), "{}", stderr(&o));
    let o = swimmer(&["eval", "--checkpoint", run.join("checkpoint.safetensors").to_str().unwrap(), "--episodes", "1"]);
    assert!(o.status.success(), "the kept checkpoint loads: {}", stderr(&o));
}

#[test]
fn out_of_range_values_are_refused_naming_the_key() {
    let d = tmp();
    for (sets, key) in [
        (&["--set", "rebel.target_kl=-1"][..], "rebel.target_kl"),
        (&["--set", "rebel.branch_len=0", "--set", "rebel.tail_len=100"][..], "rebel.tail_len"),
        (&["--set", "reward_pessimism=nan"][..], "reward_pessimism"),
    ] {
        let run = d.path().join(key);
        let o = train(&run, 1000, sets);
        assert!(!o.status.success(), "{sets:?} must be refused");
        let e = stderr(&o);
        assert!(e.contains(key) && e.matches("error").count() == 1, "{sets:?}: {e}");
        assert!(!run.join("metrics.jsonl").exists(), "nothing ran for {sets:?}");
    }
}

#[test]
fn an_error_and_its_cause_are_said_once() {
    let d = tmp();
    let o = rebel(&["train", "--env", "Nope-v0", "--run-dir", d.path().join("r").to_str().unwrap(), "--quiet"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert_eq!(e.matches("unknown environment 'Nope-v0'").count(), 1, "{e}");
}

#[test]
fn a_run_dir_holding_a_run_is_refused_and_a_run_killed_before_its_first_checkpoint_restarts() {
    let d = tmp();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    assert!(train(&a, 2000, &[]).status.success());
    let before = std::fs::read_to_string(a.join("metrics.jsonl")).unwrap();
    let o = train(&a, 2000, &[]);
    assert!(!o.status.success(), "a second run into the same --run-dir must be refused");
    assert!(stderr(&o).contains("--resume"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(a.join("metrics.jsonl")).unwrap(), before, "the run's metrics are untouched");

    // b: as if killed after writing config.toml and a first metrics line, before any checkpoint
    assert!(train(&b, 2000, &[]).status.success());
    let first_line = std::fs::read_to_string(b.join("metrics.jsonl")).unwrap().lines().next().unwrap().to_string();
    std::fs::write(b.join("metrics.jsonl"), format!("{first_line}\n")).unwrap();
    std::fs::remove_file(b.join("checkpoint.safetensors")).unwrap();
    std::fs::remove_file(b.join("summary.json")).unwrap();
    let o = swimmer(&["train", "--resume", b.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("from the beginning"), "{}", stderr(&o));
    assert_eq!(untimed(&metrics(&b)), untimed(&metrics(&a)), "the restarted run equals an uninterrupted one");
    let events = std::fs::read_dir(b.join("tb")).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("events")).count();
    assert_eq!(events, 1, "one event file, as an uninterrupted run has");

    let o = swimmer(&["eval", "--checkpoint", d.path().join("none.safetensors").to_str().unwrap()]);
    assert!(stderr(&o).contains("<run dir>/checkpoint.safetensors"), "{}", stderr(&o));
}

/// RL Zoo's PPO settings (experiments/zoo): a ReLU policy with its own observation statistics trains, resumes
/// to the same bits (the statistics travel in the checkpoint), and evaluates from its checkpoint; a REBEL run
/// cannot start such a policy from scratch (nothing would update the statistics), and a bad activation is named.
#[test]
fn ppo_with_a_normalising_relu_policy_resumes_exactly() {
    let d = tmp();
    let zoo = [
        "--set", "algo=\"ppo\"", "--set", "ppo.n_envs=1", "--set", "ppo.epochs=2", "--set", "ppo.batch=50",
        "--set", "ppo.ent_coef=0.001", "--set", "ppo.vf_activation=\"relu\"",
        "--set", "policy.activation=\"relu\"", "--set", "policy.normalize_obs=true", "--set", "policy.ortho_init=false",
        "--set", "policy.hidden=[32, 32]", "--set", "eval.every_iters=1",
    ];
    let (full, part) = (d.path().join("full"), d.path().join("part"));
    let o = train(&full, 400, &zoo);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(train(&part, 200, &zoo).status.success());
    let o = swimmer(&["train", "--resume", part.to_str().unwrap(), "--env-steps", "400", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (mf, mp) = (untimed(&metrics(&full)), untimed(&metrics(&part)));
    let losses = |m: &[serde_json::Value]| m.iter().filter_map(|v| v.get("losses/policy_loss").cloned()).collect::<Vec<_>>();
    assert!(losses(&mf).len() >= 4 && losses(&mf) == losses(&mp), "{mf:?}\n{mp:?}");
    let last_eval = |m: &[serde_json::Value]| m.iter().rev().find_map(|v| v.get("eval/true_return").cloned()).unwrap();
    assert_eq!(last_eval(&mf), last_eval(&mp));
    // ppo.min_steps: whole 100-step episodes until a batch holds at least 250 steps, 300 per iteration
    let run = d.path().join("min_steps");
    let o = train(&run, 900, &[&zoo[..], &["--set", "ppo.min_steps=250"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let steps: Vec<u64> = metrics(&run).iter().filter(|v| v.get("losses/policy_loss").is_some()).map(|v| v["env_steps"].as_u64().unwrap()).collect();
    assert_eq!(steps, vec![300, 600, 900]);
    let o = swimmer(&["eval", "--checkpoint", full.join("checkpoint.safetensors").to_str().unwrap(), "--episodes", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = train(&d.path().join("rebel"), 400, &["--set", "policy.normalize_obs=true"]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("policy.normalize_obs") && e.contains("ppo"), "{e}");
    let o = train(&d.path().join("sigmoid"), 400, &["--set", "policy.activation=\"sigmoid\""]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("sigmoid") && e.contains("relu"), "{e}");
}

/// `rebel.normalize_obs` (and RLOO's and REINFORCE's): a policy that standardises its input trains from scratch
/// with REBEL, its statistics gathering every observation of each batch (the checkpoint's count is that of the
/// observations seen, the mean no longer 0); the run resumes to the same bits; without a normalising policy, or
/// without the option, the run is refused naming both keys.
#[test]
fn rebel_rloo_and_reinforce_keep_a_normalising_policys_statistics() {
    let d = tmp();
    let norm = ["--set", "policy.normalize_obs=true", "--set", "rebel.normalize_obs=true", "--set", "eval.every_iters=1"];
    let (full, part) = (d.path().join("full"), d.path().join("part"));
    let o = train(&full, 800, &norm);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = policy_obs_stats(&full);
    // every observation of every batch, each counted once: hundreds in 800 env steps, a whole number (the running
    // count starts at 1e-4)
    assert!(s.count > 200.0 && (s.count - s.count.round()).abs() < 1e-3, "{}", s.count);
    assert!(s.mean.iter().any(|m| m.abs() > 1e-3) && s.var.iter().all(|v| v.is_finite() && *v > 0.0), "{s:?}");
    assert!(train(&part, 400, &norm).status.success());
    let o = swimmer(&["train", "--resume", part.to_str().unwrap(), "--env-steps", "800", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let losses = |m: &[serde_json::Value]| m.iter().map(|v| (v.get("losses/rebel").cloned(), v.get("eval/true_return").cloned())).collect::<Vec<_>>();
    assert_eq!(losses(&metrics(&full)), losses(&metrics(&part)));
    let (a, b) = (policy_obs_stats(&full), policy_obs_stats(&part));
    assert!(a.mean == b.mean && a.var == b.var && a.count == b.count);
    for algo in ["rloo", "reinforce"] {
        let on = format!("{algo}.normalize_obs=true");
        let o = train(&d.path().join(algo), 400, &["--set", &format!("algo=\"{algo}\""), "--set", "policy.normalize_obs=true", "--set", &on]);
        assert!(o.status.success(), "{algo}: {}", stderr(&o));
        assert!(policy_obs_stats(&d.path().join(algo)).count > 100.0, "{algo}");
        let o = train(&d.path().join(format!("{algo}_off")), 400, &["--set", &format!("algo=\"{algo}\""), "--set", "policy.normalize_obs=true"]);
        let e = stderr(&o);
        assert!(!o.status.success() && e.contains(&format!("Set {algo}.normalize_obs = true")), "{e}");
    }
    let o = train(&d.path().join("plain"), 400, &["--set", "rebel.normalize_obs=true"]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("rebel.normalize_obs") && e.contains("policy.normalize_obs = true"), "{e}");
}

/// `ppo.anneal_lr`: each iteration's learning rate is `lr · (1 − env steps done before it / env_steps)`, logged as
/// `charts/learning_rate`; without it nothing is logged (tests/crash.rs resumes such a run after a kill).
#[test]
fn ppo_anneals_its_learning_rate_over_the_budget() {
    let d = tmp();
    let ppo = [
        "--set", "algo=\"ppo\"", "--set", "ppo.n_envs=1", "--set", "ppo.epochs=2", "--set", "ppo.batch=50",
        "--set", "ppo.lr=0.001", "--set", "ppo.anneal_lr=true", "--set", "eval.every_iters=1",
    ];
    let run = d.path().join("anneal");
    let o = train(&run, 500, &ppo);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = untimed(&metrics(&run));
    let iters: Vec<&serde_json::Value> = m.iter().filter(|v| v.get("charts/learning_rate").is_some()).collect();
    assert_eq!(iters.len(), 5, "five 100-step iterations: {m:?}");
    let mut before = 0.0;
    for v in &iters {
        let lr = v["charts/learning_rate"].as_f64().unwrap();
        assert!((lr - 0.001 * (1.0 - before / 500.0)).abs() < 1e-12, "{lr} after {before} steps");
        before = v["env_steps"].as_f64().unwrap();
    }
    let plain = d.path().join("plain");
    let o = train(&plain, 200, &["--set", "algo=\"ppo\"", "--set", "ppo.n_envs=1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(metrics(&plain).iter().all(|v| v.get("charts/learning_rate").is_none()));
}

/// Every shipped settings file under experiments/zoo loads and trains its environment with its own settings (the
/// budget, batch and episode length cut down; a mistyped key or an option the environment does not take would
/// fail here), and the run's config keeps the file's environment options.
#[test]
fn every_zoo_settings_file_loads_and_trains() {
    let d = tmp();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("experiments/zoo");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
    files.sort();
    assert!(files.len() >= 5 && files.iter().any(|f| f.ends_with("ppo_cleanrl.toml")), "{files:?}");
    for f in &files {
        let file: toml::Table = std::fs::read_to_string(f).unwrap().parse().unwrap();
        let run = d.path().join(f.file_stem().unwrap());
        let o = rebel(&[
            "train", "--config", f.to_str().unwrap(), "--env-steps", "1", "--run-dir", run.to_str().unwrap(), "--quiet",
            "--set", "ppo.min_steps=200", "--set", "eval.episodes=1", "--set", "env.options.max_episode_steps=100",
        ]);
        assert!(o.status.success(), "{}: {}", f.display(), stderr(&o));
        let s = last_json(&o);
        assert_eq!(s["env"].as_str(), file["env"]["id"].as_str(), "{}", f.display());
        assert!(s["env_steps"].as_u64().unwrap() >= 200 && s["eval_true_return_mean"].as_f64().unwrap().is_finite(), "{s}");
        let cfg: toml::Table = std::fs::read_to_string(run.join("config.toml")).unwrap().parse().unwrap();
        for (k, v) in file["env"].get("options").and_then(|o| o.as_table()).into_iter().flatten() {
            assert_eq!(cfg["env"]["options"].get(k), Some(v), "{}: env option {k}", f.display());
        }
    }
}

/// With `REBEL_LEARNER_MEMORY=1` a run records its learner's bytes (jemalloc's count of the learner's thread) beside
/// its rise of RSS, for the first learner phase and the later ones; with two libtorch threads, whose other thread the
/// count would miss, it records none. `rebel.grad_chunks` at its default is left out of `config.toml` (earlier runs'
/// configuration hashes still match), another value is written, and 0 is refused naming the key.
#[test]
fn a_run_records_its_learners_bytes_with_one_libtorch_thread() {
    let d = tmp();
    let run = |name: &str, extra: &[&str]| {
        let dir = d.path().join(name);
        let mut args = vec!["train", "--run-dir", dir.to_str().unwrap(), "--env-steps", "2400"];
        args.extend_from_slice(TINY_TRAIN);
        args.extend_from_slice(extra);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_swimmer")).args(&args).env("REBEL_LEARNER_MEMORY", "1").output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        (last_json(&o), std::fs::read_to_string(dir.join("config.toml")).unwrap())
    };
    let (s, cfg) = run("one", &[]);
    let (all, later) = (s["learner_update_alloc_mb"].as_f64().unwrap(), s["learner_update_alloc_later_mb"].as_f64().unwrap());
    assert!(later > 0.0 && all >= later && all < 64.0, "{s}");
    assert!(s["learner_update_mem_mb"].as_f64().is_some(), "{s}");
    assert!(!cfg.contains("grad_chunks"), "{cfg}");
    let (s, _) = run("two_threads", &["--set", "learner_threads=2"]);
    assert!(s["learner_update_alloc_mb"].is_null() && s["learner_update_alloc_later_mb"].is_null(), "{s}");
    let (s, cfg) = run("pieces", &["--set", "rebel.grad_chunks=2"]);
    assert!(cfg.contains("grad_chunks = 2") && s["learner_update_alloc_later_mb"].as_f64().unwrap() > 0.0, "{cfg}\n{s}");
    let o = train(&d.path().join("zero"), 800, &["--set", "rebel.grad_chunks=0"]);
    assert!(!o.status.success() && stderr(&o).contains("rebel.grad_chunks must be ≥ 1"), "{}", stderr(&o));
}
