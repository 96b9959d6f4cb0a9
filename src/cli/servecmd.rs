//! `serve-env`: one environment over standard input and output, one JSON object per line, so that a
//! program in another language (Python's `scripts/rebel_gym.py`, a Gymnasium `Env`) steps our environments.
//!
//! The protocol (version 2). On start the server writes a hello line:
//! `{"protocol":2,"env":ID,"obs_low":[..],"obs_high":[..],"act_low":[..],"act_high":[..],"dt":F,
//! "max_episode_steps":N|null,"options":{..}}` (an infinite bound is `null`: JSON has no infinity). Then, for each
//! request line, one answer line:
//! * `{"cmd":"reset","seed":S|null}` → `{"obs":[..],"info":{..}}`;
//! * `{"cmd":"step","action":[..]}` → `{"obs":[..],"reward":R,"terminated":B,"truncated":B,"info":{..}}`;
//! * `{"cmd":"render","width":W,"height":H}` (each 1 to 4096, default 480) → `{"width":W,"height":H,"rgb":B64}`: the
//!   top-down picture of the state now that `rebel render` draws (`rebel_envs::render::render_rgb`), row-major RGB
//!   bytes, top row first, base64 (standard alphabet, padded); added in version 2;
//! * `{"cmd":"close"}` (or the end of the input) → the server exits with status 0.
//!
//! A request that is not one of these, an action of the wrong length or with a non-finite value, a step before
//! the first reset or after the end of an episode (the environment's own errors: the time limit's wrapper and each
//! environment refuse those): the answer is `{"error":MESSAGE}` and the server keeps serving (the environment is
//! as it was). Observations are the environment's f32 values, written so that parsing them
//! into f32 gives the same bits; rewards and info values are f64, likewise. A simulation that fails (a non-finite
//! state) answers an error as well; the episode must then be reset.

use std::io::{BufRead, Write};

use anyhow::{Context, Result};
use clap::Args;
use rebel_envs::{registry, Env, Info};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{env_config, options_json, EnvArgs};

/// `serve-env` takes no options of its own: `--env` and `--env-opt` choose the environment.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeEnvArgs {}

/// One request line.
#[derive(Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
enum Request {
    Reset {
        #[serde(default)]
        seed: Option<u64>,
    },
    Step {
        action: Vec<f32>,
    },
    Render {
        #[serde(default = "default_side")]
        width: u32,
        #[serde(default = "default_side")]
        height: u32,
    },
    Close,
}

/// The protocol's version, in the hello line (`scripts/rebel_gym.py` checks it).
pub const PROTOCOL: u32 = 2;
/// Largest picture side `render` draws, in pixels (a 4096 × 4096 picture is 48 MiB of RGB).
pub const MAX_RENDER_SIDE: u32 = 4096;

fn default_side() -> u32 {
    480
}

/// Runs `serve-env` on standard input and output.
pub fn serve_env(env_args: &EnvArgs, _a: &ServeEnvArgs) -> Result<()> {
    let cfg = env_config(env_args)?;
    let env = registry::make(&env_args.env, &cfg).with_context(|| format!("cannot make environment {}", env_args.env))?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    serve(env, options_json(&cfg), stdin.lock(), stdout.lock())
}

/// The protocol loop over any reader and writer (the tests drive it in memory).
pub fn serve(mut env: Box<dyn Env>, options: Value, input: impl BufRead, mut out: impl Write) -> Result<()> {
    let bounds = |v: &[f32]| -> Vec<Value> { v.iter().map(|&x| if x.is_finite() { json!(x) } else { Value::Null }).collect() };
    let hello = json!({
        "protocol": PROTOCOL, "env": env.id(),
        "obs_low": bounds(&env.observation_space().low), "obs_high": bounds(&env.observation_space().high),
        "act_low": bounds(&env.action_space().low), "act_high": bounds(&env.action_space().high),
        "dt": env.dt(), "max_episode_steps": env.max_episode_steps(), "options": options,
    });
    write_line(&mut out, &hello)?;
    for line in input.lines() {
        let line = line.context("cannot read the next request from standard input")?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Request>(&line) {
            Err(e) => error(format!(
                "bad request {}: {e}; send {{\"cmd\":\"reset\",\"seed\":S}}, {{\"cmd\":\"step\",\"action\":[..]}}, \
                 {{\"cmd\":\"render\",\"width\":W,\"height\":H}} or {{\"cmd\":\"close\"}}",
                clip(&line)
            )),
            Ok(Request::Close) => break,
            Ok(Request::Reset { seed }) => match env.reset(seed) {
                Ok((obs, info)) => json!({"obs": obs, "info": info_json(&info)}),
                Err(e) => error(format!("reset failed: {e}")),
            },
            // a step before the first reset or after the episode ended is the environment's own `NeedsReset`
            Ok(Request::Step { action }) => match env.step(&action) {
                Ok(s) => json!({"obs": s.obs, "reward": s.reward, "terminated": s.terminated, "truncated": s.truncated,
                                "info": info_json(&s.info)}),
                Err(e) => error(format!("step failed: {e}")),
            },
            Ok(Request::Render { width, height }) => render(env.as_ref(), width, height),
        };
        write_line(&mut out, &answer)?;
    }
    Ok(())
}

/// The answer to `render`: the picture, or an error for a size out of range or an environment without a view.
fn render(env: &dyn Env, width: u32, height: u32) -> Value {
    use base64::Engine;
    if let Err(e) = rebel_envs::render::check_size(width, height, MAX_RENDER_SIDE) {
        return error(format!("render size out of range: {e}"));
    }
    match env.planar_scene() {
        Some(scene) => {
            let rgb = rebel_envs::render::render_rgb(&scene, width, height);
            json!({"width": width, "height": height, "rgb": base64::engine::general_purpose::STANDARD.encode(rgb)})
        }
        None => error(format!("{} has no top-down view to render", env.id())),
    }
}

fn info_json(info: &Info) -> Value {
    Value::Object(info.iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
}

fn error(msg: String) -> Value {
    json!({ "error": msg })
}

/// The start of a long request line, for an error message.
fn clip(line: &str) -> String {
    let short: String = line.chars().take(120).collect();
    if short.len() < line.len() { format!("`{short}...`") } else { format!("`{short}`") }
}

fn write_line(out: &mut impl Write, v: &Value) -> Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    out.write_all(b"\n")?;
    out.flush().context("cannot write to standard output (has the client gone?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer lines, raw and parsed.
    fn run_raw(id: &str, requests: &[&str]) -> (Vec<String>, Vec<Value>) {
        let env = registry::make(id, &rebel_envs::EnvConfig::new()).unwrap();
        let input = requests.join("\n");
        let mut out = Vec::new();
        serve(env, json!({}), input.as_bytes(), &mut out).unwrap();
        let lines: Vec<String> = String::from_utf8(out).unwrap().lines().map(str::to_string).collect();
        let values = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        (lines, values)
    }

    fn run(id: &str, requests: &[&str]) -> Vec<Value> {
        run_raw(id, requests).1
    }

    /// A number as written after `"key":`, parsed by Rust's correctly rounded `parse` (serde_json's own parser
    /// may miss the last bit of an f64 without its `float_roundtrip` feature; Python's does not).
    fn raw_number(line: &str, key: &str) -> f64 {
        let at = line.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("no {key} in {line}")) + key.len() + 3;
        let end = line[at..].find([',', '}']).unwrap() + at;
        line[at..end].parse().unwrap()
    }

    fn f32s(v: &Value) -> Vec<f32> {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
    }

    #[test]
    fn answers_are_the_environments_own_bits() {
        let actions = [[0.3f32, -0.7, 0.9], [-1.0, 0.25, 0.5], [0.1, 0.2, -0.3]];
        let mut reqs = vec![r#"{"cmd":"reset","seed":7}"#.to_string()];
        reqs.extend(actions.iter().map(|a| json!({"cmd": "step", "action": a}).to_string()));
        let refs: Vec<&str> = reqs.iter().map(String::as_str).collect();
        let (lines, answers) = run_raw("Hopper-v5", &refs);
        assert_eq!(answers.len(), 1 + reqs.len());
        let hello = &answers[0];
        assert_eq!(hello["protocol"], PROTOCOL);
        assert_eq!(hello["env"], "Hopper-v5");
        assert_eq!(hello["max_episode_steps"], 1000);
        assert_eq!(f32s(&hello["act_low"]), vec![-1.0; 3]);
        assert!(hello["obs_low"].as_array().unwrap().iter().all(Value::is_null), "infinite bounds are null");

        let mut env = registry::make("Hopper-v5", &rebel_envs::EnvConfig::new()).unwrap();
        let (obs0, _) = env.reset(Some(7)).unwrap();
        assert_eq!(f32s(&answers[1]["obs"]), obs0);
        for (k, a) in actions.iter().enumerate() {
            let s = env.step(a).unwrap();
            let got = &answers[2 + k];
            assert_eq!(f32s(&got["obs"]), s.obs, "step {k}");
            assert_eq!(raw_number(&lines[2 + k], "reward").to_bits(), s.reward.to_bits(), "step {k}");
            assert_eq!(got["terminated"], s.terminated);
            assert_eq!(got["info"]["x_velocity"].as_f64().unwrap(), s.info.get("x_velocity").copied().unwrap());
        }
    }

    #[test]
    fn bad_requests_get_an_error_and_the_server_goes_on() {
        let answers = run(
            "Hopper-v5",
            &[
                r#"{"cmd":"step","action":[0,0,0]}"#,
                "not json",
                r#"{"cmd":"jump"}"#,
                r#"{"cmd":"reset","seed":1}"#,
                r#"{"cmd":"step","action":[0,0]}"#,
                r#"{"cmd":"step","action":[0,0,1e999]}"#,
                r#"{"cmd":"step","action":[0,0,0]}"#,
                r#"{"cmd":"close"}"#,
                r#"{"cmd":"reset"}"#,
            ],
        );
        let err = |i: usize| answers[i]["error"].as_str().unwrap_or_else(|| panic!("answer {i}: {}", answers[i])).to_string();
        assert!(err(1).contains("reset"), "{}", err(1));
        assert!(err(2).contains("bad request") && err(2).contains("not json"), "{}", err(2));
        assert!(err(3).contains("bad request") && err(3).contains("jump"), "{}", err(3));
        assert!(answers[4].get("obs").is_some());
        assert!(err(5).contains("step failed"), "{}", err(5));
        assert!(err(6).contains("bad request") || err(6).contains("step failed"), "{}", err(6));
        assert!(answers[7].get("reward").is_some(), "a good step after bad ones: {}", answers[7]);
        assert_eq!(answers.len(), 8, "close ends the session");
    }

    #[test]
    fn render_answers_the_picture_of_the_state_now() {
        use base64::Engine;
        let answers = run(
            "Swimmer-v5",
            &[
                r#"{"cmd":"reset","seed":5}"#,
                r#"{"cmd":"step","action":[1,-1]}"#,
                r#"{"cmd":"render","width":64,"height":48}"#,
                r#"{"cmd":"render","width":0,"height":48}"#,
                r#"{"cmd":"render","width":5000}"#,
                r#"{"cmd":"render","width":-3}"#,
                r#"{"cmd":"render"}"#,
            ],
        );
        let mut env = registry::make("Swimmer-v5", &rebel_envs::EnvConfig::new()).unwrap();
        env.reset(Some(5)).unwrap();
        env.step(&[1.0, -1.0]).unwrap();
        let want = rebel_envs::render::render_rgb(&env.planar_scene().unwrap(), 64, 48);
        let got = base64::engine::general_purpose::STANDARD.decode(answers[3]["rgb"].as_str().unwrap()).unwrap();
        assert_eq!((answers[3]["width"].as_u64(), answers[3]["height"].as_u64()), (Some(64), Some(48)));
        assert_eq!(got.len(), 64 * 48 * 3);
        assert_eq!(got, want, "the picture of the state after the step");
        assert!(got.chunks(3).any(|p| p != &got[..3]), "not a blank picture");
        for i in [4, 5] {
            let e = answers[i]["error"].as_str().unwrap();
            assert!(e.contains("out of range") && e.contains("4096"), "{e}");
        }
        assert!(answers[6]["error"].as_str().unwrap().contains("bad request"), "{}", answers[6]);
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(answers[7]["rgb"].as_str().unwrap()).unwrap().len(), 480 * 480 * 3);
    }

    #[test]
    fn a_finished_episode_needs_a_reset() {
        let mut reqs = vec![r#"{"cmd":"reset","seed":3}"#.to_string()];
        // Swimmer-v5 ends by its time limit (1000 steps) only; a limit of 2 through the registry's option.
        let env = registry::make("Swimmer-v5", &rebel_envs::EnvConfig::from_pairs(&["max_episode_steps=2"]).unwrap()).unwrap();
        reqs.extend(std::iter::repeat_n(r#"{"cmd":"step","action":[0.5,-0.5]}"#.to_string(), 3));
        let mut out = Vec::new();
        serve(env, json!({}), reqs.join("\n").as_bytes(), &mut out).unwrap();
        let answers: Vec<Value> = String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(answers[3]["truncated"], true);
        assert!(answers[4]["error"].as_str().unwrap().contains("reset"));
    }
}
