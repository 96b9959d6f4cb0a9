//! The locomotion environments' dynamics one env step at a time, against the real MuJoCo's reference
//! rollouts (`tests/data/mujoco/*_v5_*.csv`, [`rebel_envs::locomotion::one_step_errors`]): from each of
//! MuJoCo's states, one env step with MuJoCo's action, and the error of our qvel after it relative to
//! MuJoCo's change of qvel in that step. Open-loop returns over hundreds of steps are chaotic: "apart at" is
//! the first step at which a replay from MuJoCo's first state (each step from our own state) has a qpos entry
//! more than 0.1 from MuJoCo's.
//!
//!     cargo run --release -p rebel-envs --example one_step_fidelity -- [--env ID] [--table FILE.csv ...] [key=value ...]
//!
//! `--table` (repeatable) measures rollouts of your own in the same format instead of the shipped ones, e.g. a
//! policy's episode in MuJoCo from `scripts/sb3_rollout.py`. Options are the env's. Prints per sequence the median and 90th percentile of the relative error.

use std::path::PathBuf;

use rebel_envs::ant::Ant;
use rebel_envs::csvio::read_table;
use rebel_envs::humanoid::Humanoid;
use rebel_envs::locomotion::{one_step_errors, Locomotion};
use rebel_envs::{ant, half_cheetah, hopper, humanoid, walker2d, Env, EnvConfig, EnvError};

/// Sets MuJoCo's state, steps once with the action, and returns (qpos, qvel) after it.
type Stepper = Box<dyn FnMut(&[f64], &[f64], &[f32]) -> Result<(Vec<f64>, Vec<f64>), EnvError>>;

fn stepper<E: Env + 'static>(
    mut env: E,
    set: fn(&mut E, &[f64], &[f64]) -> Result<(), EnvError>,
    state: fn(&E) -> (Vec<f64>, Vec<f64>),
) -> Stepper {
    Box::new(move |q, v, a| {
        env.reset(None)?;
        set(&mut env, q, v)?;
        env.step(a)?;
        Ok(state(&env))
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let id = match args.iter().position(|a| a == "--env") {
        Some(i) => {
            let id = args.get(i + 1).cloned().ok_or("--env needs an id")?;
            args.drain(i..i + 2);
            id
        }
        None => half_cheetah::ID.to_string(),
    };
    let mut tables = Vec::new();
    while let Some(i) = args.iter().position(|a| a == "--table") {
        tables.push(PathBuf::from(args.get(i + 1).ok_or("--table needs a CSV file")?));
        args.drain(i..i + 2);
    }
    let opts = EnvConfig::from_pairs(&args)?;
    let planar = ["a_zeros", "b_const", "c_wave", "d_uniform_random", "f_air"];
    let (prefix, names, dims, mut step): (&str, &[&str], (usize, usize, usize), Stepper) = match id.as_str() {
        half_cheetah::ID | hopper::ID | walker2d::ID => {
            let (spec, prefix, names): (_, _, &[&str]) = match id.as_str() {
                half_cheetah::ID => (
                    half_cheetah::SPEC,
                    "half_cheetah_v5",
                    &["a_zeros", "b_const", "c_gait", "d_uniform_random", "e_gait_noisy", "f_air_gait", "g_slide"],
                ),
                hopper::ID => (hopper::SPEC, "hopper_v5", &planar),
                _ => (walker2d::SPEC, "walker2d_v5", &planar),
            };
            let env = Locomotion::with_config(spec, spec.config(&opts)?)?;
            (prefix, names, (spec.nq, spec.nq, spec.nu), stepper(env, Locomotion::set_state, |e| (e.qpos(), e.qvel())))
        }
        ant::ID => (
            "ant_v5",
            &["a_zeros", "b_const", "c_gait", "d_uniform_random", "e_gait_noisy", "f_air", "f2_air_inrange", "g_settled_push"],
            (15, 14, 8),
            stepper(Ant::new(&opts)?, Ant::set_state, |e| (e.qpos(), e.qvel())),
        ),
        humanoid::ID => (
            "humanoid_v5",
            &["a_zeros", "b_const", "c_wave", "d_uniform_random", "e_zeros_noisy", "f_air"],
            (24, 23, 17),
            stepper(Humanoid::new(&opts)?, Humanoid::set_state, |e| (e.qpos(), e.qvel())),
        ),
        other => return Err(format!("--env {other}: one of HalfCheetah-v5, Hopper-v5, Walker2d-v5, Ant-v5, Humanoid-v5").into()),
    };
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mujoco");
    println!("{:<18} {:>6} {:>10} {:>10} {:>9}", "sequence", "steps", "median", "90th pct", "apart at");
    if tables.is_empty() {
        tables = names.iter().map(|name| data.join(format!("{prefix}_{name}.csv"))).collect();
    }
    for path in &tables {
        let t = read_table(path)?;
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?").trim_start_matches(prefix).trim_start_matches('_');
        let errs = one_step_errors(|q, v, a| Ok(step(q, v, a)?.1), &t, dims)?;
        let pct = |p: f64| errs.get(((errs.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
        let (q, v, a) = (t.columns("qpos", 0..dims.0)?, t.columns("qvel", 0..dims.1)?, t.columns("action", 0..dims.2)?);
        let col = |c: &[Vec<f64>], k: usize| c.iter().map(|x| x[k]).collect::<Vec<f64>>();
        let (mut qk, mut vk) = (col(&q, 0), col(&v, 0));
        let mut apart = t.rows.len();
        for k in 1..t.rows.len() {
            let act: Vec<f32> = col(&a, k).iter().map(|x| *x as f32).collect();
            match step(&qk, &vk, &act) {
                Ok((q1, v1)) if q1.iter().zip(col(&q, k)).all(|(x, y)| (x - y).abs() <= 0.1) => (qk, vk) = (q1, v1),
                _ => {
                    apart = k;
                    break;
                }
            }
        }
        println!("{name:<18} {:>6} {:>10.4} {:>10.4} {apart:>9}", errs.len(), pct(0.5), pct(0.9));
    }
    Ok(())
}
