//! The Reacher against the real MuJoCo Reacher-v5: spec numbers, Gymnasium semantics, and the
//! reference rollouts in `tests/data/mujoco/reacher_v5_*.csv` (Gymnasium 1.4.0 + MuJoCo 4.0.0,
//! written by `scripts/record_mujoco_rollouts.py`; each starts from the seeded reset state in its
//! `step = -1` row, which the tests copy with `set_state`).
//!
//! Tolerances, and why (measured on Rapier's step, the default until session 30 and `rk4_integrator = false` since:
//! 4 Rapier solver substeps of 2.5 ms per 10 ms MuJoCo step, f32; MuJoCo's RK4 step, the default since, is held far
//! tighter by `mujocos_rk4_step_makes_the_reacher_mujocos`):
//! * zeros: qpos within 1e-5 over 50 steps (measured 9.1e-7): only the small reset velocity decays
//!   through damping 1 on an inertia ≈ 1, and the f32 state rounds at 1e-7.
//! * Before the first contact with joint1's ±3 rad limit, qpos within 0.05 rad (measured: const
//!   0.038 by step 8, sinusoid 0.020 by step 14, random 0.018 over all 50 steps). Rapier integrates
//!   with semi-implicit Euler, MuJoCo with RK4: under a constant acceleration a, N Euler substeps
//!   over a time T overshoot the position by a·T²/(2N), which for the full torque (a ≈ 200 rad/s²,
//!   T = 0.02 s, N = 8) is the 0.005 rad seen after the first step of the constant sequence. The
//!   test checks that 4× finer steps shrink this error by more than 2× (a first-order method's
//!   signature; a wrong mass, armature, gear or damping would not shrink).
//! * After a limit contact the trajectories part more (up to 0.25 rad on const, 0.48 on the
//!   sinusoid): MuJoCo's soft limit (solref 0.02, solimp 0.9/0.95) lets the joint sink up to
//!   0.25 rad past ±3 rad on impact and springs back, Rapier's limit is hard. Returns still agree:
//!   within 0.25 (measured 2e-6, 0.039, 0.092, 2e-4 on zeros, const, sinusoid, random, whose
//!   MuJoCo returns are −10.25, −108.83, −24.16, −42.09).

use std::path::PathBuf;

use rebel_envs::csvio::{columns_map, read_table};
use rebel_envs::reacher::{self, fingertip_position, Reacher, ReacherConfig};
use rebel_envs::render::render_rgb;
use rebel_envs::{make, ConfigValue, Env, EnvConfig, EnvError};

struct Reference {
    init_qpos: [f64; 4],
    init_qvel: [f64; 4],
    init_obs: Vec<f64>,
    actions: Vec<[f32; 2]>,
    qpos: Vec<[f64; 4]>,
    rewards: Vec<f64>,
    reward_dist: Vec<f64>,
    reward_ctrl: Vec<f64>,
    truncated: Vec<bool>,
}

fn reference(name: &str) -> Reference {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mujoco").join(format!("reacher_v5_{name}.csv"));
    let t = read_table(&p).unwrap();
    let c = columns_map(&t);
    let row = |col: &str, k: usize| c[col][k];
    assert_eq!(c["step"][0], -1.0, "{name}: the first row is the reset state");
    let n = t.rows.len();
    Reference {
        init_qpos: std::array::from_fn(|i| row(&format!("qpos{i}"), 0)),
        init_qvel: std::array::from_fn(|i| row(&format!("qvel{i}"), 0)),
        init_obs: (0..10).map(|i| row(&format!("obs{i}"), 0)).collect(),
        actions: (1..n).map(|k| [row("action0", k) as f32, row("action1", k) as f32]).collect(),
        qpos: (1..n).map(|k| std::array::from_fn(|i| row(&format!("qpos{i}"), k))).collect(),
        rewards: (1..n).map(|k| row("reward", k)).collect(),
        reward_dist: (1..n).map(|k| row("reward_dist", k)).collect(),
        reward_ctrl: (1..n).map(|k| row("reward_ctrl", k)).collect(),
        truncated: (1..n).map(|k| row("truncated", k) != 0.0).collect(),
    }
}

/// Rapier's semi-implicit step and hard limits (revision 1; the default until session 30).
fn rapiers() -> ReacherConfig {
    ReacherConfig { rk4_integrator: false, mujoco_limits: false, ..ReacherConfig::default() }
}

const SEQUENCES: [&str; 4] = ["a_zeros", "b_const_p1_m1", "c_sin", "d_uniform_random"];

struct Replay {
    /// Largest |qpos − MuJoCo| over all steps.
    max_err: f64,
    /// The same over the steps before MuJoCo's joint1 first passes ±3 rad.
    err_before_contact: f64,
    first_contact: Option<usize>,
    return_ours: f64,
    return_mujoco: f64,
}

fn replay(cfg: ReacherConfig, r: &Reference) -> Replay {
    let mut env = Reacher::with_config(cfg).unwrap();
    env.reset(Some(0)).unwrap();
    env.set_state(r.init_qpos, r.init_qvel);
    let first_contact = r.qpos.iter().position(|q| q[1].abs() > reacher::JOINT1_LIMIT);
    let mut rep = Replay {
        max_err: 0.0,
        err_before_contact: 0.0,
        first_contact,
        return_ours: 0.0,
        return_mujoco: r.rewards.iter().sum(),
    };
    for (k, a) in r.actions.iter().enumerate() {
        let s = env.step(a).unwrap();
        rep.return_ours += s.reward;
        let q = env.qpos();
        let e = (0..4).map(|i| (q[i] - r.qpos[k][i]).abs()).fold(0.0, f64::max);
        rep.max_err = rep.max_err.max(e);
        if first_contact.is_none_or(|c| k < c) {
            rep.err_before_contact = rep.err_before_contact.max(e);
        }
    }
    rep
}

#[test]
fn zeros_follow_mujoco_to_rounding() {
    let r = replay(ReacherConfig::default(), &reference("a_zeros"));
    assert!(r.max_err < 1e-5, "{}", r.max_err);
    assert!((r.return_ours - r.return_mujoco).abs() < 1e-4);
}

#[test]
fn qpos_agrees_before_the_first_limit_contact_and_converges() {
    let fine = ReacherConfig { substeps: 4, ..rapiers() };
    for (name, contact) in [("b_const_p1_m1", Some(8)), ("c_sin", Some(14)), ("d_uniform_random", None)] {
        let t = reference(name);
        let r = replay(rapiers(), &t);
        assert_eq!(r.first_contact, contact, "{name}");
        assert!(r.err_before_contact < 0.05, "{name}: {}", r.err_before_contact);
        let rf = replay(fine.clone(), &t);
        assert!(
            rf.err_before_contact < r.err_before_contact / 2.0,
            "{name}: a 4x finer step must shrink the error like a first-order method: {} -> {}",
            r.err_before_contact,
            rf.err_before_contact
        );
    }
}

#[test]
fn returns_match_mujoco() {
    for name in SEQUENCES {
        let r = replay(rapiers(), &reference(name));
        assert!(r.max_err < 0.6, "{name}: {}", r.max_err);
        assert!(
            (r.return_ours - r.return_mujoco).abs() < 0.25,
            "{name}: ours {} vs MuJoCo {}",
            r.return_ours,
            r.return_mujoco
        );
    }
}

#[test]
fn spec_constants_and_mass_matrix_equal_mujoco() {
    use std::f64::consts::PI;
    // MuJoCo's inertiafromgeom: density 1000; capsule r 0.01, cylinder length 0.1; sphere r 0.01.
    let link = 1000.0 * (PI * 1e-4 * 0.1 + 4.0 / 3.0 * PI * 1e-6);
    assert!((reacher::LINK_MASS - link).abs() < 1e-15);
    assert!((reacher::FINGERTIP_MASS - 1000.0 * 4.0 / 3.0 * PI * 1e-6).abs() < 1e-15);
    assert_eq!((reacher::GEAR, reacher::ARMATURE, reacher::DAMPING, reacher::JOINT1_LIMIT), (200.0, 1.0, 1.0, 3.0));
    assert_eq!(reacher::MAX_EPISODE_STEPS, 50);
    let mut env = Reacher::new(&EnvConfig::new()).unwrap();
    assert_eq!(env.dt(), 0.02);
    assert_eq!(env.observation_space().dim(), 10);
    assert_eq!(env.action_space().low, vec![-1.0, -1.0]);
    assert_eq!(env.action_space().high, vec![1.0, 1.0]);

    // mj_fullM at qpos0 (armature included), and at a bent pose: M01 = armature-free coupling
    // m1·(0.1·0.05·cos q1) + m_tip·(0.1·0.11·cos q1) + I terms.
    env.set_state([0.0, 0.0, 0.1, -0.1], [0.0; 4]);
    let mj = [[1.0011533624389368, 4.0313964128415436e-04], [4.0313964128415436e-04, 1.0001790393653280]];
    let m = env.mass_matrix().unwrap();
    for i in 0..2 {
        for j in 0..2 {
            // f32 masses and inertias: 1e-9 absolute on entries near 1e-3, 1e-6 on the diagonal ≈ 1
            assert!((m[i][j] - mj[i][j]).abs() < 1e-6 * mj[i][j].abs().max(1e-3), "M[{i}][{j}] = {} vs {}", m[i][j], mj[i][j]);
        }
    }
    env.set_state([0.3, 1.2, 0.1, -0.1], [0.0; 4]);
    let m = env.mass_matrix().unwrap();
    let i1 = reacher::LINK_I_PERP + reacher::LINK_MASS * 0.05f64.powi(2) + reacher::FINGERTIP_I + reacher::FINGERTIP_MASS * 0.11f64.powi(2);
    let coupling = (reacher::LINK_MASS * 0.05 + reacher::FINGERTIP_MASS * 0.11) * 0.1 * 1.2f64.cos();
    assert!((m[0][1] - (i1 + coupling)).abs() < 1e-9, "{} vs {}", m[0][1], i1 + coupling);
    assert!((m[1][1] - (1.0 + i1)).abs() < 1e-6);
}

#[test]
fn observation_layout_matches_mujoco_at_reset() {
    let r = reference("d_uniform_random");
    let mut env = Reacher::new(&EnvConfig::new()).unwrap();
    env.set_state(r.init_qpos, r.init_qvel);
    let obs = env.observe();
    for (i, (o, m)) in obs.iter().zip(&r.init_obs).enumerate() {
        assert!((*o as f64 - m).abs() < 1e-6, "obs[{i}] = {o} vs MuJoCo {m}");
    }
}

#[test]
fn observation_reward_and_info_follow_gymnasium() {
    let r = reference("d_uniform_random");
    let mut env = Reacher::new(&EnvConfig::new()).unwrap();
    env.reset(Some(5)).unwrap();
    for k in 0..50 {
        let a = [(k as f32 * 0.3).sin() * 1.5, -0.7];
        let s = env.step(&a).unwrap();
        let (q, v) = (env.qpos(), env.qvel());
        let tip = fingertip_position(q[0], q[1]);
        let expect: Vec<f32> = [q[0].cos(), q[1].cos(), q[0].sin(), q[1].sin(), q[2], q[3], v[0], v[1], tip[0] - q[2], tip[1] - q[3]]
            .iter()
            .map(|x| *x as f32)
            .collect();
        // The fingertip is the MJCF body's origin (f32 poses): 1e-6 of the analytic formula.
        assert!(s.obs.iter().zip(&expect).all(|(a, b)| (a - b).abs() < 1e-6), "{:?} vs {expect:?}", s.obs);
        assert_eq!(v[2..], [0.0, 0.0]);
        let i = &s.info;
        assert_eq!(i.len(), 2);
        assert_eq!(s.reward, i["reward_dist"] + i["reward_ctrl"]);
        let t = env.fingertip();
        assert!((i["reward_dist"] + (t[0] - q[2]).hypot(t[1] - q[3])).abs() < 1e-15);
        assert!((t[0] - tip[0]).abs() < 1e-7 && (t[1] - tip[1]).abs() < 1e-7, "{t:?} vs {tip:?}");
        // the cost uses the unclipped action, with weight 1 (reacher_v5.py's default)
        let ctrl = (a[0] as f64).powi(2) + (a[1] as f64).powi(2);
        assert!((i["reward_ctrl"] + ctrl).abs() < 1e-12);
        assert!(!s.terminated && !s.truncated);
    }
    // MuJoCo's terms, recomputed from its own columns, add up the same way.
    for k in 0..r.rewards.len() {
        let a = r.actions[k];
        let ctrl = (a[0] as f64).powi(2) + (a[1] as f64).powi(2);
        assert!((r.reward_ctrl[k] + ctrl).abs() < 1e-6, "MuJoCo's control weight is 1");
        assert!((r.rewards[k] - r.reward_dist[k] - r.reward_ctrl[k]).abs() < 1e-12);
    }
    // Weights are options.
    let cfg = EnvConfig::new()
        .with("reward_dist_weight", ConfigValue::Float(2.0))
        .with("reward_control_weight", ConfigValue::Float(0.1));
    let mut w = Reacher::new(&cfg).unwrap();
    w.reset(Some(5)).unwrap();
    let s = w.step(&[0.5, 0.5]).unwrap();
    let tip = w.fingertip();
    let q = w.qpos();
    assert!((s.info["reward_dist"] + 2.0 * (tip[0] - q[2]).hypot(tip[1] - q[3])).abs() < 1e-15);
    assert!((s.info["reward_ctrl"] + 0.1 * 0.5).abs() < 1e-15);
}

#[test]
fn made_env_truncates_at_50_and_never_terminates() {
    let r = reference("c_sin");
    assert_eq!(r.truncated.iter().position(|t| *t), Some(49));
    let mut env = make("Reacher-v5", &EnvConfig::new()).unwrap();
    assert_eq!(env.max_episode_steps(), Some(50));
    env.reset(Some(1)).unwrap();
    for k in 0..50 {
        let s = env.step(&[1.0, -1.0]).unwrap();
        assert!(!s.terminated);
        assert_eq!(s.truncated, k == 49, "step {k}");
    }
}

#[test]
fn actions_are_clipped_by_the_actuator_like_mujoco_ctrlrange() {
    let mut a = Reacher::new(&EnvConfig::new()).unwrap();
    let mut b = Reacher::new(&EnvConfig::new()).unwrap();
    a.reset(Some(2)).unwrap();
    b.reset(Some(2)).unwrap();
    for _ in 0..20 {
        let sa = a.step(&[2.0, -3.0]).unwrap();
        let sb = b.step(&[1.0, -1.0]).unwrap();
        assert_eq!(sa.obs, sb.obs);
        assert_eq!(sa.info["reward_ctrl"], -13.0);
    }
}

#[test]
fn reset_noise_and_goal_are_in_range_and_seeded() {
    let mut env = Reacher::new(&EnvConfig::new()).unwrap();
    let (o1, _) = env.reset(Some(7)).unwrap();
    let s1 = (env.qpos(), env.qvel());
    let (o2, _) = env.reset(Some(7)).unwrap();
    assert_eq!((o1.clone(), s1), (o2, (env.qpos(), env.qvel())));
    let (o3, _) = env.reset(None).unwrap();
    assert_ne!(o1, o3, "an unseeded reset continues the stream");
    let (mut max_q, mut max_v, mut max_goal) = (0.0f64, 0.0f64, 0.0f64);
    for s in 0..300 {
        env.reset(Some(s)).unwrap();
        let (q, v) = (env.qpos(), env.qvel());
        for x in &q[..2] {
            assert!(x.abs() <= 0.1 + 1e-7);
            max_q = max_q.max(x.abs());
        }
        for x in &v[..2] {
            assert!(x.abs() <= 0.005 + 1e-9);
            max_v = max_v.max(x.abs());
        }
        assert_eq!(v[2..], [0.0, 0.0]);
        let g = q[2].hypot(q[3]);
        assert!(g < 0.2);
        max_goal = max_goal.max(g);
    }
    assert!(max_q > 0.09 && max_v > 0.0045 && max_goal > 0.18, "noise should fill its range");
    // The extension option: 0 starts the arm at rest, the goal is still drawn.
    let mut rest = Reacher::new(&EnvConfig::new().with("reset_noise_scale", ConfigValue::Float(0.0))).unwrap();
    rest.reset(Some(3)).unwrap();
    let (q, v) = (rest.qpos(), rest.qvel());
    assert_eq!((q[0], q[1], v), (0.0, 0.0, [0.0; 4]));
    assert!(q[2] != 0.0 && q[2].hypot(q[3]) < 0.2);
}

#[test]
fn snapshot_restore_is_bit_identical() {
    let mut env = Reacher::new(&EnvConfig::new()).unwrap();
    env.reset(Some(11)).unwrap();
    for _ in 0..12 {
        env.step(&[1.0, 1.0]).unwrap(); // into joint1's limit
    }
    let snap = env.snapshot();
    let run = |env: &mut Reacher| -> Vec<(Vec<f32>, f64)> {
        (0..30)
            .map(|k| {
                let s = env.step(&[((k as f32) * 0.37).sin(), ((k as f32) * 0.11).cos()]).unwrap();
                (s.obs, s.reward)
            })
            .collect()
    };
    let first = run(&mut env);
    env.restore(&snap).unwrap();
    assert_eq!(run(&mut env), first);
    let mut other = Reacher::new(&EnvConfig::new()).unwrap();
    other.restore(&snap).unwrap();
    assert_eq!(run(&mut other), first);
    env.restore(&snap).unwrap();
    other.restore(&snap).unwrap();
    assert_eq!(env.reset(None).unwrap().0, other.reset(None).unwrap().0);
    // a snapshot of another environment is refused
    let pend = make("InvertedPendulum-v5", &EnvConfig::new()).unwrap();
    assert!(matches!(env.restore(&pend.snapshot()), Err(EnvError::SnapshotMismatch { .. })));
}

#[test]
fn bad_actions_and_options_are_clear_errors() {
    let mut env = Reacher::new(&EnvConfig::new()).unwrap();
    assert!(matches!(env.step(&[0.0, 0.0]), Err(EnvError::NeedsReset(_))));
    env.reset(Some(0)).unwrap();
    assert!(matches!(env.step(&[f32::NAN, 0.0]), Err(EnvError::NonFiniteAction { index: 0, .. })));
    assert!(matches!(env.step(&[0.0, f32::NEG_INFINITY]), Err(EnvError::NonFiniteAction { index: 1, .. })));
    assert_eq!(env.step(&[0.0]).unwrap_err(), EnvError::ActionShape { expected: 2, found: 1 });
    assert_eq!(env.step(&[0.0, 0.0]).map(|s| s.obs.len()), Ok(10));

    let e = Reacher::new(&EnvConfig::new().with("reward_near_weight", ConfigValue::Float(1.0))).err().unwrap();
    let msg = e.to_string();
    assert!(msg.contains("reward_dist_weight") && msg.contains("reward_control_weight") && msg.contains("frame_skip"), "{msg}");
    let e = Reacher::new(&EnvConfig::new().with("xml_file", ConfigValue::Str("arm.xml".into()))).err().unwrap();
    assert!(e.to_string().contains("reacher.xml"), "{e}");
    assert!(Reacher::new(&EnvConfig::new().with("frame_skip", ConfigValue::Int(0))).is_err());
    let ok = Reacher::new(&EnvConfig::new().with("frame_skip", ConfigValue::Int(5))).unwrap();
    assert!((ok.dt() - 0.05).abs() < 1e-15);
}

#[test]
fn planar_scene_shows_arm_fingertip_and_target() {
    let mut env = Reacher::new(&EnvConfig::new()).unwrap();
    env.set_state([0.5, -1.0, 0.12, -0.05], [0.0; 4]);
    let s = env.planar_scene().unwrap();
    let tip = fingertip_position(0.5, -1.0);
    assert_eq!(s.capsules[0].a, [0.0, 0.0]);
    assert!((s.capsules[0].b[0] - 0.1 * 0.5f64.cos()).abs() < 1e-6);
    assert!((s.capsules[2].a[0] - tip[0]).abs() < 1e-6 && (s.capsules[2].a[1] - tip[1]).abs() < 1e-6);
    // the target's slides are f32 Rapier coordinates
    let [mx, my, mr] = s.markers[0];
    assert!(s.markers.len() == 1 && (mx - 0.12).abs() < 1e-6 && (my + 0.05).abs() < 1e-6 && mr == reacher::TARGET_RADIUS);
    let rgb = render_rgb(&s, 64, 64);
    assert_eq!(rgb.len(), 64 * 64 * 3);
    assert!(rgb.chunks(3).any(|p| p[0] > 180 && p[1] < 100), "the target is drawn in red");
}

/// MuJoCo integrates the Reacher with RK4 (`reacher.xml`: `integrator="RK4"`). `rk4_integrator` (the default since
/// session 30) takes that step (the
/// soft limits, which follow it, recomputed at each stage) where Rapier's is semi-implicit Euler: every sequence's
/// qpos within 1e-4 of MuJoCo's over all 50 steps, the limit contacts included (where the default is held to 0.05
/// before the first contact and 0.6 after), and the returns within 0.01 (the default: 0.25).
#[test]
fn mujocos_rk4_step_makes_the_reacher_mujocos() {
    let cfg = EnvConfig::new();
    let rk4 = ReacherConfig::from_env_config(&cfg).unwrap();
    assert!(rk4.rk4_integrator && rk4.mujoco_limits, "MuJoCo's RK4 step and limits are the default");
    assert_eq!(rk4, ReacherConfig::default());
    let off = ReacherConfig::from_env_config(&EnvConfig::new().with("rk4_integrator", ConfigValue::Bool(false))).unwrap();
    assert_eq!(off, rapiers(), "rk4_integrator=false is revision 1, Rapier's limits included");
    for name in SEQUENCES {
        let r = replay(rk4.clone(), &reference(name));
        let d = replay(rapiers(), &reference(name));
        eprintln!(
            "{name}: RK4 qpos error {:.2e} (before the first contact {:.2e}; Rapier's step {:.2e}, {:.2e}), return {:.6} vs MuJoCo {:.6} (Rapier's step {:.6})",
            r.max_err, r.err_before_contact, d.max_err, d.err_before_contact, r.return_ours, r.return_mujoco, d.return_ours
        );
        assert!(r.max_err < 1e-4, "{name}: {}", r.max_err);
        assert!((r.return_ours - r.return_mujoco).abs() < 1e-2, "{name}: ours {} vs MuJoCo {}", r.return_ours, r.return_mujoco);
    }
    let e = Reacher::new(&cfg.clone().with("mujoco_limits", ConfigValue::Bool(false))).err().expect("RK4 with Rapier's limits").to_string();
    assert!(e.contains("rk4_integrator") && e.contains("mujoco_limits=true"), "{e}");
}
