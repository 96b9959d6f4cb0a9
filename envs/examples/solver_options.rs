//! Speed and fidelity of the Swimmer's solver settings side by side (issue: fewer multibody
//! mass-matrix updates per step at the same fidelity). For each setting: env steps per second on
//! this core, the largest qpos error before the first joint-limit contact and the return error on
//! MuJoCo's reference rollouts (`tests/data/mujoco`), and the returns of three bang-bang gaits that
//! slam the joints into their limits (MuJoCo RK4 gives 166.8, −29.7 and 9.0; see the README).
//! `taskset -c 1 cargo run --release -p rebel-envs --example solver_options [-- TEXT]` (only the rows whose name
//! contains TEXT).
use std::path::PathBuf;
use std::time::Instant;

use rebel_envs::csvio::read_table;
use rebel_envs::fidelity::compare;
use rebel_envs::swimmer::{Swimmer, SwimmerConfig};
use rebel_envs::Env;

fn speed(cfg: &SwimmerConfig) -> Result<f64, Box<dyn std::error::Error>> {
    let mut env = Swimmer::with_config(cfg.clone())?;
    env.reset(Some(1))?;
    let n = 20_000;
    let t0 = Instant::now();
    for k in 0..n {
        let t = k as f32 * 0.04;
        env.step(&[(2.9 * t).sin(), (2.9 * t - 0.44).sin()])?;
        if k % 1000 == 999 {
            env.reset(None)?;
        }
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

fn bang_bang(cfg: &SwimmerConfig, w: f64, phi_deg: f64) -> Result<f64, Box<dyn std::error::Error>> {
    let mut env = Swimmer::with_config(SwimmerConfig { reset_noise_scale: 0.0, ..cfg.clone() })?;
    env.reset(Some(0))?;
    let (mut ret, phi) = (0.0, phi_deg.to_radians());
    for k in 0..1000 {
        let t = k as f64 * env.dt();
        ret += env.step(&[(w * t).sin().signum() as f32, (w * t + phi).sin().signum() as f32])?.reward;
    }
    Ok(ret)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mujoco");
    let seqs = [
        ("b", "swimmer_v5_b_const_p1_m1.csv", None),
        ("c1", "swimmer_v5_c1_sin_w2.9_phi-25deg_goodgait.csv", None),
        ("c3", "swimmer_v5_c3_sin_w4.0_phi180deg_antiphase.csv", Some(600)),
        ("d", "swimmer_v5_d_uniform_random_seed20240607.csv", None),
    ];
    // Rapier's step (revision 1, the default until session 30) unless a row asks for MuJoCo's RK4 step
    let d = SwimmerConfig { rk4_integrator: false, mujoco_limits: false, ..SwimmerConfig::default() };
    let settings: Vec<(&str, SwimmerConfig)> = vec![
        ("4 solver iterations, Rapier limits (the default until session 30)", d.clone()),
        ("2 solver iterations, Rapier limits", SwimmerConfig { solver_iterations: 2, ..d.clone() }),
        ("1 solver iteration, Rapier limits", SwimmerConfig { solver_iterations: 1, ..d.clone() }),
        ("4 solver iterations, projected limits", SwimmerConfig { limit_projection: true, ..d.clone() }),
        ("2 solver iterations, projected limits", SwimmerConfig { solver_iterations: 2, limit_projection: true, ..d.clone() }),
        ("1 solver iteration, projected limits", SwimmerConfig { solver_iterations: 1, limit_projection: true, ..d.clone() }),
        ("3 solver iterations, projected limits", SwimmerConfig { solver_iterations: 3, limit_projection: true, ..d.clone() }),
        ("2 substeps × 1 iteration, Rapier limits", SwimmerConfig { substeps: 2, solver_iterations: 1, ..d.clone() }),
        ("2 substeps × 1 iteration, projected limits", SwimmerConfig { substeps: 2, solver_iterations: 1, limit_projection: true, ..d.clone() }),
        ("4 solver iterations, MuJoCo's soft limits", SwimmerConfig { mujoco_limits: true, ..d.clone() }),
        ("2 solver iterations, MuJoCo's soft limits", SwimmerConfig { solver_iterations: 2, mujoco_limits: true, ..d.clone() }),
        ("1 solver iteration, MuJoCo's soft limits", SwimmerConfig { solver_iterations: 1, mujoco_limits: true, ..d.clone() }),
        ("2 substeps × 1 iteration, MuJoCo's soft limits", SwimmerConfig { substeps: 2, solver_iterations: 1, mujoco_limits: true, ..d.clone() }),
        ("4 substeps × 1 iteration, MuJoCo's soft limits", SwimmerConfig { substeps: 4, solver_iterations: 1, mujoco_limits: true, ..d.clone() }),
        ("MuJoCo's RK4 step, MuJoCo's soft limits (the default since session 30)", SwimmerConfig { rk4_integrator: true, mujoco_limits: true, ..d.clone() }),
    ];
    // rows whose name contains the first argument, if one is given (`-- RK4`)
    let only = std::env::args().nth(1);
    let settings: Vec<_> = settings.into_iter().filter(|(n, _)| only.as_ref().is_none_or(|o| n.contains(o.as_str()))).collect();
    println!("| setting | env steps/s | qpos err before contact (b, c1, c3, d) | return − MuJoCo (b, c1, c3[:600], d) | bang-bang 2.9/−25°, 2.125/−7.5°, 1.5/0° |");
    println!("|---|---|---|---|---|");
    for (name, cfg) in &settings {
        let sp = speed(cfg)?;
        let mut errs = Vec::new();
        let mut rets = Vec::new();
        for (_, file, steps) in &seqs {
            let r = compare(cfg, &read_table(&data.join(file))?, *steps)?;
            errs.push(format!("{:.4}", r.max_qpos_err_before_contact));
            rets.push(format!("{:+.1}", r.return_ours - r.return_mujoco));
        }
        let bb: Vec<String> =
            [(2.9, -25.0), (2.125, -7.5), (1.5, 0.0)].iter().map(|(w, p)| bang_bang(cfg, *w, *p).map(|r| format!("{r:.1}"))).collect::<Result<_, _>>()?;
        println!("| {name} | {sp:.0} | {} | {} | {} |", errs.join(", "), rets.join(", "), bb.join(", "));
    }
    Ok(())
}
