//! Ant-v5 against the real MuJoCo's reference rollouts (`tests/data/mujoco/ant_v5_*.csv`), for choosing
//! the contact and limit settings:
//!
//!     cargo run --release -p rebel-envs --example ant_fidelity -- [--quick] [key=value ...]
//!
//! Options are the env's (`contact_natural_frequency=20 substeps=4 ...`). Prints, per sequence, the first
//! contact step (MuJoCo/ours), the qpos error before it, returns, the step each terminated at, late torso
//! height, final x–y and the agreement of the clipped contact-force observations; then the mass matrix's
//! largest difference from `mj_fullM` and (not with --quick) the random-policy return distribution
//! (30 episodes) against MuJoCo's.

use std::path::PathBuf;

use rebel_envs::ant::{replay, Ant, AntConfig, MAX_EPISODE_STEPS};
use rebel_envs::csvio::read_table;
use rebel_envs::locomotion::random_action_returns;
use rebel_envs::EnvConfig;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    args.retain(|a| a != "--quick");
    let trace = args.iter().position(|a| a == "--trace").map(|i| {
        let name = args.get(i + 1).cloned().unwrap_or_default();
        args.drain(i..(i + 2).min(args.len()));
        name
    });
    let cfg = AntConfig::from_env_config(&EnvConfig::from_pairs(&args)?)?;
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mujoco");
    if let Some(name) = trace {
        // our qpos (and MuJoCo's below it) at every step of one sequence
        let t = read_table(&data.join(format!("ant_v5_{name}.csv")))?;
        let (q, v, a) = (t.columns("qpos", 0..15)?, t.columns("qvel", 0..14)?, t.columns("action", 0..8)?);
        let mut env = Ant::with_config(AntConfig { reset_noise_scale: 0.0, healthy_z_range: (0.2, 10.0), ..cfg })?;
        rebel_envs::Env::reset(&mut env, Some(0))?;
        env.set_state(&q.iter().map(|c| c[0]).collect::<Vec<_>>(), &v.iter().map(|c| c[0]).collect::<Vec<_>>())?;
        let fmt = |x: &[f64]| x.iter().map(|v| format!("{v:7.3}")).collect::<Vec<_>>().join("");
        for k in 1..q[0].len() {
            let act: Vec<f32> = a.iter().map(|c| c[k] as f32).collect();
            let s = rebel_envs::Env::step(&mut env, &act)?;
            println!("{k:4} ours {}  r {:.3} ncon {}", fmt(&env.qpos()), s.reward, env.contact_count());
            println!("{k:4} mj   {}", fmt(&q.iter().map(|c| c[k]).collect::<Vec<_>>()));
        }
        return Ok(());
    }
    println!(
        "{:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>15} {:>15} {:>6}",
        "sequence", "contact", "err<c", "R ours", "R mujoco", "end", "z ours", "z mj", "xy ours", "xy mj", "cfrc"
    );
    for name in
        ["a_zeros", "b_const", "c_gait", "d_uniform_random", "e_gait_noisy", "f_air", "f2_air_inrange", "g_settled_push"]
    {
        let t = read_table(&data.join(format!("ant_v5_{name}.csv")))?;
        let mut cfg = cfg.clone();
        if name.starts_with('f') {
            cfg.healthy_z_range = (0.2, 10.0); // as the reference was made
        }
        let r = replay(&cfg, &t)?;
        let c = |x: Option<usize>| x.map_or("-".to_string(), |v| v.to_string());
        println!(
            "{:<18} {:>4}/{:<4} {:>9.4} {:>9.1} {:>9.1} {:>4}/{:<4} {:>7.3} {:>7.3} {:>7.2},{:<7.2} {:>7.2},{:<7.2} {:>6.3}",
            name,
            c(r.first_contact_mujoco),
            c(r.first_contact_ours),
            r.max_qpos_err_before_contact,
            r.return_ours,
            r.return_mujoco,
            c(r.terminated_mujoco),
            c(r.terminated_ours),
            r.late_height_ours,
            r.late_height_mujoco,
            r.final_xy_ours[0],
            r.final_xy_ours[1],
            r.final_xy_mujoco[0],
            r.final_xy_mujoco[1],
            r.cfrc_agreement
        );
    }
    let env = Ant::with_config(cfg.clone())?;
    let ours = env.mass_matrix().ok_or("no mass matrix")?;
    let mj = read_table(&data.join("ant_v5_fullM.csv"))?;
    let mut err: f64 = 0.0;
    for (i, row) in ours.iter().enumerate() {
        for (j, x) in row.iter().enumerate() {
            err = err.max((x - mj.column(&format!("m{j}"))?[i]).abs());
        }
    }
    println!("mass matrix at rest: largest |ours − mj_fullM| = {err:.3e}");
    if !quick {
        let mut env = Ant::with_config(cfg)?;
        let (ours, lens): (Vec<f64>, Vec<usize>) = random_action_returns(&mut env, MAX_EPISODE_STEPS, 30)?.into_iter().unzip();
        let mj = read_table(&data.join("ant_v5_random_returns.csv"))?;
        let (mr, ml) = (mj.column("return")?, mj.column("length")?);
        let ms = |v: &[f64]| {
            let m = v.iter().sum::<f64>() / v.len() as f64;
            (m, (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt())
        };
        let (mo, so) = ms(&ours);
        let (mm, sm) = ms(&mr);
        let lo = lens.iter().sum::<usize>() as f64 / lens.len() as f64;
        println!(
            "random policy, 30 episodes: ours {mo:.1} ± {so:.1} (mean length {lo:.1}), MuJoCo {mm:.1} ± {sm:.1} (mean length {:.1})",
            ml.iter().sum::<f64>() / ml.len() as f64
        );
    }
    Ok(())
}
