//! A planar runner (HalfCheetah-v5, Hopper-v5, Walker2d-v5) against the real MuJoCo's reference
//! rollouts (`tests/data/mujoco/{half_cheetah,hopper,walker2d}_v5_*.csv`), for choosing the contact and
//! limit settings:
//!
//!     cargo run --release -p rebel-envs --example locomotion_fidelity -- [--env ID] [--quick] [key=value ...]
//!
//! Options are the env's (`contact_natural_frequency=20 limit_natural_frequency=8 ...`). Prints, per
//! sequence, the first contact step (MuJoCo/ours), the qpos error before it, returns, the step each
//! terminated at, late torso height, final x and how far the joints went past their limits; then (not
//! with --quick) the random-policy return distribution (30 episodes) against MuJoCo's.

use std::path::PathBuf;

use rebel_envs::csvio::read_table;
use rebel_envs::locomotion::{random_action_returns, replay, Locomotion, Spec};
use rebel_envs::{half_cheetah, hopper, walker2d, EnvConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut flag = |name: &str| match args.iter().position(|a| a == name) {
        Some(i) => {
            args.remove(i);
            true
        }
        None => false,
    };
    let quick = flag("--quick");
    let id = match args.iter().position(|a| a == "--env") {
        Some(i) => {
            let id = args.get(i + 1).cloned().ok_or("--env needs an id")?;
            args.drain(i..i + 2);
            id
        }
        None => half_cheetah::ID.to_string(),
    };
    let (spec, prefix, names): (Spec, &str, &[&str]) = match id.as_str() {
        half_cheetah::ID => (
            half_cheetah::SPEC,
            "half_cheetah_v5",
            &["a_zeros", "b_const", "c_gait", "d_uniform_random", "e_gait_noisy", "f_air_gait", "g_slide"],
        ),
        hopper::ID => (hopper::SPEC, "hopper_v5", &["a_zeros", "b_const", "c_wave", "d_uniform_random", "f_air"]),
        walker2d::ID => (walker2d::SPEC, "walker2d_v5", &["a_zeros", "b_const", "c_wave", "d_uniform_random", "f_air"]),
        other => return Err(format!("--env {other}: one of HalfCheetah-v5, Hopper-v5, Walker2d-v5").into()),
    };
    let cfg = spec.config(&EnvConfig::from_pairs(&args)?)?;
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mujoco");
    println!(
        "{:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>7} {:>7}  past limits ours / MuJoCo (steps, max rad)",
        "sequence", "contact", "err<c", "R ours", "R mujoco", "end", "z ours", "z mj", "x ours", "x mj"
    );
    for name in names {
        let t = read_table(&data.join(format!("{prefix}_{name}.csv")))?;
        let mut cfg = cfg.clone();
        if let (true, Some(h)) = (*name == "f_air", &mut cfg.health) {
            h.healthy_z_range = (0.8, 10.0); // as the reference was made (Walker2d's default ends above 2 m)
        }
        let r = replay(spec, &cfg, &t)?;
        let c = |x: Option<usize>| x.map_or("-".to_string(), |v| v.to_string());
        println!(
            "{name:<18} {:>4}/{:<4} {:>9.2e} {:>9.2} {:>9.2} {:>4}/{:<4} {:>7.3} {:>7.3} {:>7.2} {:>7.2}  {:>4} {:.3} / {:>4} {:.3}",
            c(r.first_contact_mujoco),
            c(r.first_contact_ours),
            r.max_qpos_err_before_contact,
            r.return_ours,
            r.return_mujoco,
            c(r.terminated_mujoco),
            c(r.terminated_ours),
            r.late_height_ours,
            r.late_height_mujoco,
            r.final_x_ours,
            r.final_x_mujoco,
            r.past_limit_ours.0,
            r.past_limit_ours.1,
            r.past_limit_mujoco.0,
            r.past_limit_mujoco.1
        );
    }
    if quick {
        return Ok(());
    }
    let mj = read_table(&data.join(format!("{prefix}_random_returns.csv")))?.column("return")?;
    let mut env = Locomotion::with_config(spec, cfg)?;
    let (ours, lens): (Vec<f64>, Vec<usize>) = random_action_returns(&mut env, spec.max_episode_steps, 30)?.into_iter().unzip();
    let ms = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (m, (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt())
    };
    let ((mo, so), (mm, sm)) = (ms(&ours), ms(&mj));
    let mean_len = lens.iter().sum::<usize>() as f64 / lens.len() as f64;
    println!("random policy, 30 episodes: ours {mo:.1} ± {so:.1} (mean length {mean_len:.1}), MuJoCo {mm:.1} ± {sm:.1}");
    Ok(())
}
