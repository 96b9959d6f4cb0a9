//! Ant-v5 against the real MuJoCo (Gymnasium 1.4.0 + MuJoCo 4.0.1): reference rollouts recorded by
//! `scripts/record_mujoco_rollouts.py` (`tests/data/mujoco/ant_v5_*.csv`), and Gymnasium's semantics.
//!
//! Tolerances and why (measured with `cargo run --release -p rebel-envs --example ant_fidelity rk4_integrator=false`,
//! on Rapier's step, the default until session 29; on MuJoCo's RK4 step, the default since, each is met by far more:
//! qpos before contact within 5e-5, every first contact at MuJoCo's step, the contact forces agreeing for 0.94–1.0, and
//! `mujocos_rk4_step_makes_each_step_mujocos` holds each step within 1e-3):
//! * mass matrix at rest: 1e-5 (f32 bodies; measured 6.6e-7);
//! * free flight with the joints inside their ranges: qpos within 0.01 over 4 steps (Rapier's
//!   semi-implicit Euler at 0.005 s against MuJoCo's RK4 at 0.01 s; measured 0.0054);
//! * flight with the ankles started 30° outside their ranges (every reset does this): MuJoCo's soft
//!   limits throw them back past the range's far end; ours (`mujoco_limits`) within 0.15 rad over 8
//!   steps (measured 0.076), where Rapier's own limits, which correct positions without leaving velocity,
//!   miss by 0.84;
//! * first floor contact within one env step of MuJoCo's; returns of the open-loop sequences, whose
//!   first 300 steps keep the ant upright and are mostly the survival reward, within 5 %;
//! * resting height after a push within 2 cm (MuJoCo's soft contacts hold the feet higher; measured
//!   0.367 against 0.382);
//! * the clipped contact-force observations (78 per step: 0 without contact, mostly ±1 with one) agree
//!   within 0.25 for at least 80 % of the entries on every sequence (measured 0.83–1.0).
//!
//! Not within tolerance with Rapier's contacts (the default before session 15), and so not asserted for them (README):
//! random-policy episodes end early in MuJoCo when the torso is thrown above 1 m (mean length 165); ours are
//! thrown less high (mean length ~600), so the returns' distributions differ although the reward per step
//! agrees (asserted). With MuJoCo's contact law (`mujoco_contacts`) they are MuJoCo's (asserted, last test).

use std::path::PathBuf;

use rebel_envs::ant::{replay, Ant, AntConfig, FreeBaseOptions, ID};
use rebel_envs::csvio::read_table;
use rebel_envs::locomotion::{one_step_errors, random_action_returns};
use rebel_envs::{make, ConfigValue, Env, EnvConfig, EnvError};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/mujoco/ant_v5_{name}.csv"))
}

fn air() -> AntConfig {
    // as the flight references were made (z = 3 is outside the default healthy range)
    AntConfig { healthy_z_range: (0.2, 10.0), ..AntConfig::default() }
}

#[test]
fn mass_matrix_at_rest_is_mujocos() {
    let env = Ant::with_config(AntConfig::default()).unwrap();
    let ours = env.mass_matrix().unwrap();
    let mj = read_table(&data("fullM")).unwrap();
    assert_eq!(ours.len(), 14);
    for (i, row) in ours.iter().enumerate() {
        for (j, x) in row.iter().enumerate() {
            let m = mj.column(&format!("m{j}")).unwrap()[i];
            assert!((x - m).abs() < 1e-5, "M[{i}][{j}] = {x} vs MuJoCo {m}");
        }
    }
}

#[test]
fn free_flight_follows_mujoco() {
    let r = replay(&air(), &read_table(&data("f2_air_inrange")).unwrap()).unwrap();
    assert_eq!((r.steps, r.first_contact_mujoco, r.first_contact_ours), (4, None, None));
    assert!(r.max_qpos_err_before_contact < 0.01, "qpos error {}", r.max_qpos_err_before_contact);
}

#[test]
fn soft_joint_limits_throw_the_ankles_back_as_mujocos_do() {
    let t = read_table(&data("f_air")).unwrap();
    let ours = replay(&air(), &t).unwrap();
    let rapier = replay(
        &{
            let mut c = air();
            (c.physics.mujoco_limits, c.physics.rk4_integrator, c.physics.substeps) = (false, false, 2);
            c
        },
        &t,
    )
    .unwrap();
    assert!(ours.max_qpos_err_before_contact < 0.15, "MuJoCo's limits: qpos error {}", ours.max_qpos_err_before_contact);
    assert!(
        rapier.max_qpos_err_before_contact > 5.0 * ours.max_qpos_err_before_contact,
        "Rapier's limits {} against ours {}",
        rapier.max_qpos_err_before_contact,
        ours.max_qpos_err_before_contact
    );
    // the ankles pass the far end of their range (about 1.27 rad in MuJoCo at step 3)
    let mut env = Ant::with_config(AntConfig { reset_noise_scale: 0.0, ..air() }).unwrap();
    env.reset(Some(0)).unwrap();
    let mut q0 = env.qpos();
    q0[2] = 3.0;
    env.set_state(&q0, &[0.0; 14]).unwrap();
    let peak = (0..4).map(|_| {
        env.step(&[0.0; 8]).unwrap();
        env.qpos()[8]
    });
    let peak = peak.fold(0.0, f64::max);
    assert!(peak > 1.2217 && peak < 1.35, "ankle_1 peaks at {peak} rad (range ends at 1.2217)");
}

#[test]
fn landing_returns_and_contact_forces_follow_mujoco() {
    for name in ["a_zeros", "b_const", "c_gait", "d_uniform_random", "e_gait_noisy", "g_settled_push"] {
        let r = replay(&AntConfig::default(), &read_table(&data(name)).unwrap()).unwrap();
        if let (Some(m), Some(o)) = (r.first_contact_mujoco, r.first_contact_ours) {
            // c_gait's first contact is a foot grazing the 2 cm margin for two steps in MuJoCo (step 3), at step 6
            // here since the limits and contacts are solved jointly (step 3 or 4 before); the others agree to the step
            let slack = if name == "c_gait" { 3 } else { 1 };
            assert!(m.abs_diff(o) <= slack, "{name}: first contact at step {o}, MuJoCo {m}");
        }
        assert!(r.cfrc_agreement >= 0.8, "{name}: contact-force observations agree on {}", r.cfrc_agreement);
        if ["a_zeros", "b_const"].contains(&name) {
            assert!(
                (r.return_ours - r.return_mujoco).abs() <= 0.05 * r.return_mujoco.abs(),
                "{name}: return {} vs MuJoCo {}",
                r.return_ours,
                r.return_mujoco
            );
        }
        if name == "g_settled_push" {
            assert!((r.late_height_ours - r.late_height_mujoco).abs() < 0.02, "{name}: height {} vs {}", r.late_height_ours, r.late_height_mujoco);
            let dx = (r.final_xy_ours[0] - r.final_xy_mujoco[0]).abs();
            assert!(dx < 0.03, "{name}: pushed at 1 m/s, stops at x = {} vs MuJoCo {}", r.final_xy_ours[0], r.final_xy_mujoco[0]);
        }
    }
}

#[test]
fn contact_forces_are_mujocos_cfrc_ext_layout() {
    // resting on four feet (MuJoCo's settled state): each foot (bodies 3, 6, 9, 12) is pushed up,
    // nothing else touches; the forces hold the ant's weight; entries are torque then force
    let t = read_table(&data("g_settled_push")).unwrap();
    let q: Vec<f64> = (0..15).map(|i| t.column(&format!("qpos{i}")).unwrap()[0]).collect();
    let mut env = Ant::with_config(AntConfig { reset_noise_scale: 0.0, ..AntConfig::default() }).unwrap();
    env.reset(Some(0)).unwrap();
    env.set_state(&q, &[0.0; 14]).unwrap();
    for _ in 0..10 {
        env.step(&[0.0; 8]).unwrap();
    }
    let f = env.contact_forces();
    let weight: f64 = f.iter().map(|w| w[5]).sum();
    assert!((weight - 0.91088 * 9.81).abs() < 0.1 * 0.91088 * 9.81, "vertical contact force {weight} N");
    for (b, w) in f.iter().enumerate() {
        if [3, 6, 9, 12].contains(&b) {
            assert!(w[5] > 0.5, "foot {b} carries {} N", w[5]);
        } else {
            assert_eq!(*w, [0.0; 6], "body {b} does not touch the floor");
        }
    }
    // torque about the centre of mass: r × f with the foot out along its leg's diagonal
    let foot = &f[3]; // front left foot, out at (+x, +y): r × (0, 0, fz) = (y·fz, −x·fz, 0)
    assert!(foot[0] > 0.0 && foot[1] < 0.0, "{foot:?}");
    // the observation holds them clipped to contact_force_range, after qpos[2..] and qvel
    let s = env.step(&[0.0; 8]).unwrap();
    let f = env.contact_forces();
    for (i, o) in s.obs[27..].iter().enumerate() {
        assert_eq!(*o, f[i / 6][i % 6].clamp(-1.0, 1.0) as f32);
    }
    let cost: f64 = f.iter().flatten().map(|x| x.clamp(-1.0, 1.0).powi(2)).sum::<f64>() * 5e-4;
    assert!((s.info.get("reward_contact").unwrap() + cost).abs() < 1e-12);
}

#[test]
fn random_policy_reward_per_step_is_mujocos() {
    // what a step is worth under uniform random actions (control, contact and forward terms); the
    // episode lengths differ (module docs), so compare per step
    let mj = read_table(&data("random_returns")).unwrap();
    let (mr, ml) = (mj.column("return").unwrap(), mj.column("length").unwrap());
    let per_step_mj = mr.iter().sum::<f64>() / ml.iter().sum::<f64>();
    // with Rapier's contacts, whose episodes run longer (with MuJoCo's, the next test compares whole episodes)
    let mut env = Ant::with_config({
        let mut c = AntConfig::default();
        (c.physics.mujoco_contacts, c.physics.rk4_integrator, c.physics.substeps) = (false, false, 2);
        c
    })
    .unwrap();
    let eps = random_action_returns(&mut env, 200, 10).unwrap();
    let per_step = eps.iter().map(|e| e.0).sum::<f64>() / eps.iter().map(|e| e.1 as f64).sum::<f64>();
    assert!((per_step - per_step_mj).abs() < 0.1, "reward per step {per_step} vs MuJoCo {per_step_mj}");
}

#[test]
fn gymnasiums_own_file_gives_the_same_ant() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/gymnasium/ant.xml");
    let mut theirs = Ant::with_config(AntConfig { xml_file: path.display().to_string(), ..AntConfig::default() }).unwrap();
    let mut ours = Ant::with_config(AntConfig::default()).unwrap();
    assert_eq!(theirs.mass_matrix(), ours.mass_matrix());
    let (a, _) = theirs.reset(Some(3)).unwrap();
    let (b, _) = ours.reset(Some(3)).unwrap();
    assert_eq!(a, b);
    for k in 0..20 {
        let act: Vec<f32> = (0..8).map(|i| ((k * 8 + i) as f32 * 0.7).sin()).collect();
        assert_eq!(theirs.step(&act).unwrap().obs, ours.step(&act).unwrap().obs, "step {k}");
    }
}

#[test]
fn registered_with_gymnasiums_spaces_reward_terms_and_options() {
    let mut env = make(ID, &EnvConfig::new()).unwrap();
    assert_eq!((env.observation_space().dim(), env.action_space().dim(), env.max_episode_steps()), (105, 8, Some(1000)));
    assert_eq!(env.dt(), 0.05);
    let (obs, info) = env.reset(Some(1)).unwrap();
    // the reset observation holds the quaternion as drawn (MuJoCo normalises it at the first step)
    let q = env.qpos_qvel().unwrap().0;
    let norm = obs[1..5].iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() > 1e-3, "noise makes the drawn quaternion non-unit: {norm}");
    for i in 0..4 {
        assert!((obs[1 + i] as f64 / norm - q[3 + i]).abs() < 1e-5, "the simulator holds it normalised");
    }
    assert_eq!(obs[0], q[2] as f32);
    assert!(obs[27..].iter().all(|x| *x == 0.0), "no contact forces before the first step");
    assert_eq!(info.keys().collect::<Vec<_>>(), ["x_position", "y_position", "distance_from_origin"]);
    let s = env.step(&[0.5; 8]).unwrap();
    let keys: Vec<&str> = s.info.keys().collect();
    assert_eq!(
        keys,
        ["reward_forward", "reward_ctrl", "reward_contact", "reward_survive", "x_position", "y_position", "distance_from_origin", "x_velocity", "y_velocity"]
    );
    let sum: f64 = ["reward_forward", "reward_ctrl", "reward_contact", "reward_survive"].iter().map(|k| s.info.get(k).unwrap()).sum();
    assert!((sum - s.reward).abs() < 1e-12);
    assert!((s.info.get("reward_ctrl").unwrap() + 0.5 * 8.0 * 0.25).abs() < 1e-12);
    // options change the observation's layout
    let with = |k: &str, v: ConfigValue| make(ID, &EnvConfig::new().with(k, v)).unwrap();
    assert_eq!(with("exclude_current_positions_from_observation", ConfigValue::Bool(false)).observation_space().dim(), 107);
    assert_eq!(with("include_cfrc_ext_in_observation", ConfigValue::Bool(false)).observation_space().dim(), 27);
    // main_body by name or id; bad values are clear errors
    let by_name = Ant::new(&EnvConfig::new().with("main_body", ConfigValue::Str("torso".into()))).unwrap();
    assert_eq!(by_name.config().main_body, "torso");
    let e = Ant::new(&EnvConfig::new().with("main_body", ConfigValue::Str("tail".into()))).err().unwrap().to_string();
    assert!(e.contains("no body named \"tail\"") && e.contains("torso"), "{e}");
    let e = Ant::new(&EnvConfig::new().with("main_body", ConfigValue::Str("0".into()))).err().unwrap().to_string();
    assert!(e.contains("0 is the world"), "{e}");
    let e = make(ID, &EnvConfig::new().with("use_contact_forces", ConfigValue::Bool(true))).err().unwrap().to_string();
    assert!(e.contains("use_contact_forces") && e.contains("contact_cost_weight"), "{e}");
    // a model without a free root is not an ant
    let e = make(ID, &EnvConfig::new().with("xml_file", ConfigValue::Str("hopper.xml".into()))).err().unwrap();
    assert!(matches!(e, EnvError::BadOption { .. }) && e.to_string().contains("Ant-v5 needs a free root"), "{e}");
}

#[test]
fn health_is_the_torso_height_in_a_closed_range() {
    let mut env = Ant::with_config(AntConfig { reset_noise_scale: 0.0, ..AntConfig::default() }).unwrap();
    env.reset(Some(0)).unwrap();
    let mut q = env.qpos();
    for (z, healthy) in [(1.0, true), (0.2, true), (1.05, false), (0.19, false)] {
        q[2] = z;
        env.set_state(&q, &[0.0; 14]).unwrap();
        assert_eq!(env.is_healthy(), healthy, "z = {z}");
    }
    q[2] = 3.0;
    env.set_state(&q, &[0.0; 14]).unwrap();
    let s = env.step(&[0.0; 8]).unwrap();
    assert!(s.terminated && s.info.get("reward_survive") == Some(&0.0));
    let mut keep = Ant::with_config(AntConfig { terminate_when_unhealthy: false, ..AntConfig::default() }).unwrap();
    keep.reset(Some(0)).unwrap();
    keep.set_state(&q, &[0.0; 14]).unwrap();
    assert!(!keep.step(&[0.0; 8]).unwrap().terminated);
    assert!(env.set_state(&q[..14], &[0.0; 14]).is_err());
    assert!(env.set_state(&q, &[f64::NAN; 14]).is_err());
}

#[test]
fn snapshots_replay_exactly() {
    let mut env = Ant::with_config(AntConfig::default()).unwrap();
    env.reset(Some(5)).unwrap();
    for k in 0..10 {
        env.step(&[((k as f32) * 0.3).sin(); 8]).unwrap();
    }
    let snap = env.snapshot();
    let run = |env: &mut Ant| (0..15).map(|k| env.step(&[((k as f32) * 0.5).cos(); 8]).unwrap().obs).collect::<Vec<_>>();
    let a = run(&mut env);
    env.restore(&snap).unwrap();
    assert_eq!(run(&mut env), a);
}

/// `mujoco_contacts` (MuJoCo's soft floor contacts as forces, the pair margin MuJoCo's 0.02 m), solved jointly with
/// the soft limits as MuJoCo's one constraint problem: the ant rests at MuJoCo's height under a constant action
/// (0.522 against 0.522; Rapier's contacts: 0.505) and after a push (0.382 against 0.382), and each step from
/// MuJoCo's states of the zero-action landing and of the push moves as MuJoCo's does (median one-step error of the
/// velocity change 0.5 % and 7 %; 7.7 and 2.6 times MuJoCo's change with session 17's limits one at a time and
/// pyramids along the world's axes). Under zero action MuJoCo's ant does not come to rest: its feet slide out and
/// it sinks, 0.56 m at step 40 to 0.38 m at step 300; ours sinks more slowly (0.58 to 0.47 m, last quarter 0.499
/// against 0.421), a matter of integration (the forces are computed once per Rapier step where MuJoCo's RK4
/// evaluates them four times: with 4 Rapier steps per time step instead of 2 it ends at 0.443, with 8 it sinks
/// faster than MuJoCo's), so that late height is not compared. Its contact-force observations agree on at least
/// 95 % of the entries (measured 0.94–1.0; Rapier's 0.85–0.89), and random-policy episodes end as MuJoCo's do
/// (mean length and mean return each within 2.5 standard errors of the difference, 30 episodes each; Rapier's
/// contacts throw the torso less high: ~600 steps).
#[test]
fn mujoco_contacts_rest_throw_and_end_episodes_as_mujoco() {
    let cfg = AntConfig::default();
    assert!(cfg.physics.mujoco_contacts);
    for name in ["a_zeros", "b_const", "g_settled_push"] {
        let r = replay(&cfg, &read_table(&data(name)).unwrap()).unwrap();
        if name != "a_zeros" {
            assert!((r.late_height_ours - r.late_height_mujoco).abs() < 0.015, "{name}: height {} vs {}", r.late_height_ours, r.late_height_mujoco);
        }
        assert!(r.cfrc_agreement >= 0.95, "{name}: contact-force observations agree on {}", r.cfrc_agreement);
    }
    let mut env = Ant::with_config(cfg.clone()).unwrap();
    for (name, bound) in [("a_zeros", 0.01), ("g_settled_push", 0.1)] {
        let step = |q: &[f64], v: &[f64], a: &[f32]| {
            env.reset(None)?;
            env.set_state(q, v)?;
            env.step(a)?;
            Ok(env.qvel())
        };
        let errs = rebel_envs::locomotion::one_step_errors(step, &read_table(&data(name)).unwrap(), (15, 14, 8)).unwrap();
        let median = errs[errs.len() / 2];
        assert!(median < bound, "{name}: median one-step error {median}");
    }
    let mj = read_table(&data("random_returns")).unwrap();
    let (mr, ml) = (mj.column("return").unwrap(), mj.column("length").unwrap());
    let mut env = Ant::with_config(cfg).unwrap();
    let eps = random_action_returns(&mut env, 1000, mr.len() as u64).unwrap();
    let stats = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (m, v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64 / v.len() as f64)
    };
    let ours_r: Vec<f64> = eps.iter().map(|e| e.0).collect();
    let ours_l: Vec<f64> = eps.iter().map(|e| e.1 as f64).collect();
    let ((mo, vo), (mm, vm)) = (stats(&ours_r), stats(&mr));
    assert!((mo - mm).abs() < 2.5 * (vo + vm).sqrt(), "mean return {mo:.1} vs MuJoCo {mm:.1}");
    // Lengths are heavy-tailed (MuJoCo's: 13 to 1000 steps, three of 30 run to the limit; standard error of
    // the mean 53 steps), so they are compared as the returns are, in standard errors: a relative
    // tolerance (25 %, as here before) passed or failed by chance (a 1e-9 m shift of the torso's frame
    // moved our mean from 165.0 to 118.0). Rapier's contacts (596 steps) stay far outside.
    let ((lo, vlo), (lm, vlm)) = (stats(&ours_l), stats(&ml));
    assert!((lo - lm).abs() < 2.5 * (vlo + vlm).sqrt(), "mean episode length {lo:.1} vs MuJoCo {lm:.1}");
}

/// MuJoCo integrates the Ant with RK4. `rk4_integrator` (session 29) takes that step, the free joint's quaternion
/// advanced as MuJoCo's `mj_integratePos` does and the constraint forces solved at each of the four stages: each
/// step from MuJoCo's states within 1e-3 of MuJoCo's velocity change (median and 90th percentile of the relative
/// error; Rapier's step 3–5 % in the median), and the contact forces it leaves (the observation's clipped
/// `cfrc_ext`, those of the step's last stage as MuJoCo's are) within 0.01 of MuJoCo's after each step for 99 % of
/// the entries. The open-loop sequences stay on MuJoCo's path longer than with Rapier's step. Refused where
/// Rapier's own contacts or limits would act.
#[test]
fn mujocos_rk4_step_makes_each_step_mujocos() {
    let rk4 = AntConfig::default();
    assert!(rk4.physics.rk4_integrator && rk4.physics.substeps == 1, "MuJoCo's RK4 step is the default");
    let rapiers = AntConfig { physics: FreeBaseOptions { rk4_integrator: false, substeps: 2, ..rk4.physics.clone() }, ..rk4.clone() };
    for name in ["c_gait", "d_uniform_random", "e_gait_noisy", "f_air"] {
        let table = read_table(&data(name)).unwrap();
        let cfg = if name == "f_air" { AntConfig { physics: rk4.physics.clone(), ..air() } } else { rk4.clone() };
        let one_step = |cfg: &AntConfig| {
            let mut env = Ant::with_config(cfg.clone()).unwrap();
            let errs = one_step_errors(
                |q, v, a| {
                    env.reset(None)?;
                    env.set_state(q, v)?;
                    env.step(a)?;
                    Ok(env.qvel())
                },
                &table,
                (15, 14, 8),
            )
            .unwrap();
            // the clipped contact forces after each step from MuJoCo's state before it
            let (q, v, a, cref) = (
                table.columns("qpos", 0..15).unwrap(),
                table.columns("qvel", 0..14).unwrap(),
                table.columns("action", 0..8).unwrap(),
                table.columns("obs", 27..105).unwrap(),
            );
            let col = |c: &[Vec<f64>], k: usize| c.iter().map(|x| x[k]).collect::<Vec<f64>>();
            let (mut near, mut entries) = (0usize, 0usize);
            for (k, _) in table.rows.iter().enumerate().skip(1) {
                env.reset(None).unwrap();
                env.set_state(&col(&q, k - 1), &col(&v, k - 1)).unwrap();
                let act: Vec<f32> = col(&a, k).iter().map(|x| *x as f32).collect();
                let s = env.step(&act).unwrap();
                for (i, o) in s.obs[27..].iter().enumerate() {
                    near += usize::from((*o as f64 - cref[i][k]).abs() < 0.01);
                    entries += 1;
                }
            }
            (errs[errs.len() / 2], errs[errs.len() * 9 / 10], near as f64 / entries.max(1) as f64)
        };
        let (median, p90, cfrc) = one_step(&cfg);
        eprintln!("{name}: RK4 one-step error {median:.2e} (median), {p90:.2e} (90th percentile); contact forces within 0.01 for {cfrc:.4}");
        assert!(median < 1e-3 && p90 < 1e-3, "{name}: one-step error {median} (median), {p90} (90th percentile)");
        assert!(cfrc >= 0.99, "{name}: contact forces within 0.01 of MuJoCo's for {cfrc} of the entries");
        if name != "f_air" {
            let (rapier, _, rapier_cfrc) = one_step(&rapiers);
            eprintln!("{name}: Rapier's step {rapier:.2e} (median); contact forces within 0.01 for {rapier_cfrc:.4}");
            assert!(rapier > 1e-2, "{name}: Rapier's own step {rapier}");
        }
    }
    let mut env = Ant::with_config(rk4.clone()).unwrap();
    env.reset(Some(3)).unwrap();
    for _ in 0..40 {
        env.step(&[0.3; 8]).unwrap();
    }
    assert_eq!(env.rk4_fallbacks(), 0, "the ant's geoms never touch each other");
    for (key, value) in [("mujoco_contacts", false), ("mujoco_limits", false)] {
        let cfg = EnvConfig::new().with("rk4_integrator", ConfigValue::Bool(true)).with(key, ConfigValue::Bool(value));
        let e = make(ID, &cfg).err().unwrap_or_else(|| panic!("rk4 with {key} = {value} accepted")).to_string();
        assert!(e.contains("rk4_integrator") && e.contains("RK4"), "{e}");
    }
    // off, the step is revision 1's: two Rapier steps per timestep unless substeps is given
    let off = EnvConfig::new().with("rk4_integrator", ConfigValue::Bool(false));
    assert_eq!(AntConfig::from_env_config(&off).unwrap(), rapiers);
    let three = off.with("substeps", ConfigValue::Int(3));
    assert_eq!(AntConfig::from_env_config(&three).unwrap().physics.substeps, 3);
}
