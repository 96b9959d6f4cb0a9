//! The InvertedPendulum against the real MuJoCo InvertedPendulum-v5: spec numbers, Gymnasium
//! semantics, and the reference rollouts in `tests/data/mujoco/inverted_pendulum_v5_*.csv`
//! (Gymnasium 1.4.0 + MuJoCo 4.0.0, written by `scripts/record_mujoco_rollouts.py`; each starts
//! from the state in its `step = -1` row, which the tests copy with `set_state`).
//!
//! Tolerances, and why (measured on Rapier's step, the default until session 30 and `rk4_integrator = false` since:
//! 4 Rapier solver substeps of 5 ms per 20 ms MuJoCo step, f32; MuJoCo's RK4 step, the default since, is held far
//! tighter by `mujocos_rk4_step_makes_the_pendulum_mujocos`; the closed loop below runs on the default):
//! * Open-loop sequences (zeros, constant 0.1, sinusoid, random), which all end with the pole past
//!   0.2 rad: the termination step is MuJoCo's exactly (measured: 29, 10, 7, 3, all equal; the
//!   test allows ±1 step, the spread a first-order integrator's timing error of ≈ 1e-3 rad at an
//!   angular speed of ≥ 0.5 rad per step could make), and qpos within 0.01 (m or rad) up to it
//!   (measured 1.5e-4, 1.8e-3, 3.9e-3, 4.5e-3). Rapier integrates with semi-implicit Euler, MuJoCo
//!   with RK4; a 4× finer step shrinks the error by more than 2× (measured 4×: first order), which
//!   a wrong mass, COM, damping or gear would not do.
//! * The zeros sequence is a sharp test of the model: from the exact rest state only the pole's
//!   1 mm tilt (a 0.0246 N·m gravity torque) makes it fall, through 29 steps of exponential growth.
//! * Closed loop (a = clip(0.7 x + 7 θ + 0.9 ẋ + 1.1 θ̇, −3, 3), from a seeded noisy reset): both
//!   balance for all 1000 steps (return 1000) and qpos stays within 1e-3 of MuJoCo's over the whole
//!   episode (measured 2.3e-5): the feedback keeps the unstable error from growing.

use std::path::PathBuf;

use rebel_envs::csvio::{columns_map, read_table};
use rebel_envs::inverted_pendulum::{self, InvertedPendulum, InvertedPendulumConfig};
use rebel_envs::render::render_rgb;
use rebel_envs::{make, ConfigValue, Env, EnvConfig, EnvError, TimeLimit};

struct Reference {
    init_qpos: [f64; 2],
    init_qvel: [f64; 2],
    actions: Vec<f32>,
    qpos: Vec<[f64; 2]>,
    obs: Vec<[f64; 4]>,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
}

fn reference(name: &str) -> Reference {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/mujoco")
        .join(format!("inverted_pendulum_v5_{name}.csv"));
    let t = read_table(&p).unwrap();
    let c = columns_map(&t);
    assert_eq!(c["step"][0], -1.0, "{name}: the first row is the start state");
    let n = t.rows.len();
    Reference {
        init_qpos: [c["qpos0"][0], c["qpos1"][0]],
        init_qvel: [c["qvel0"][0], c["qvel1"][0]],
        actions: (1..n).map(|k| c["action0"][k] as f32).collect(),
        qpos: (1..n).map(|k| [c["qpos0"][k], c["qpos1"][k]]).collect(),
        obs: (1..n).map(|k| std::array::from_fn(|i| c[&format!("obs{i}")][k])).collect(),
        rewards: (1..n).map(|k| c["reward"][k]).collect(),
        terminated: (1..n).map(|k| c["terminated"][k] != 0.0).collect(),
    }
}

fn started(cfg: InvertedPendulumConfig, r: &Reference) -> InvertedPendulum {
    let mut env = InvertedPendulum::with_config(cfg).unwrap();
    env.reset(Some(0)).unwrap();
    env.set_state(r.init_qpos, r.init_qvel);
    env
}

/// Replays the actions until our env terminates: (termination step, max qpos error, return).
fn replay(cfg: InvertedPendulumConfig, r: &Reference) -> (Option<usize>, f64, f64) {
    let mut env = started(cfg, r);
    let (mut err, mut ret) = (0.0f64, 0.0);
    for k in 0..r.actions.len() + 5 {
        let a = r.actions.get(k).copied().unwrap_or(0.0);
        let s = env.step(&[a]).unwrap();
        ret += s.reward;
        if k < r.qpos.len() {
            let q = env.qpos();
            err = err.max((q[0] - r.qpos[k][0]).abs().max((q[1] - r.qpos[k][1]).abs()));
        }
        if s.terminated {
            return (Some(k), err, ret);
        }
    }
    (None, err, ret)
}

/// Rapier's semi-implicit step and hard limits (revision 1; the default until session 30).
fn rapiers() -> InvertedPendulumConfig {
    InvertedPendulumConfig { rk4_integrator: false, mujoco_limits: false, ..InvertedPendulumConfig::default() }
}

fn feedback(q: [f64; 2], v: [f64; 2]) -> f32 {
    (0.7 * q[0] + 7.0 * q[1] + 0.9 * v[0] + 1.1 * v[1]).clamp(-3.0, 3.0) as f32
}

#[test]
fn open_loop_sequences_terminate_when_mujoco_does() {
    let fine = InvertedPendulumConfig { substeps: 4, ..rapiers() };
    for (name, mj_term) in [("a_zeros", 29), ("b_const_p0.1", 10), ("c_sin", 7), ("d_uniform_random", 3)] {
        let r = reference(name);
        assert_eq!(r.terminated.iter().position(|t| *t), Some(mj_term), "{name}: reference file");
        assert_eq!(r.rewards.iter().sum::<f64>(), mj_term as f64);
        let (term, err, ret) = replay(rapiers(), &r);
        let term = term.expect("our pendulum must fall too");
        assert!(term.abs_diff(mj_term) <= 1, "{name}: terminated at {term}, MuJoCo at {mj_term}");
        assert_eq!(ret, term as f64, "{name}: reward 1 per surviving step, 0 on the last");
        assert!(err < 0.01, "{name}: qpos error {err}");
        let (_, err_fine, _) = replay(fine.clone(), &r);
        assert!(err_fine < err / 2.0, "{name}: a 4x finer step must shrink the error: {err} -> {err_fine}");
    }
}

#[test]
fn closed_loop_balances_like_mujoco_for_1000_steps() {
    let r = reference("e_feedback");
    assert_eq!(r.actions.len(), 1000);
    assert_eq!(r.rewards.iter().sum::<f64>(), 1000.0);
    // The registered limit, around an env started in MuJoCo's start state.
    assert_eq!(rebel_envs::registry::registered_max_episode_steps("InvertedPendulum-v5").unwrap(), Some(1000));
    let mut env = TimeLimit::new(InvertedPendulum::new(&EnvConfig::new()).unwrap(), 1000).unwrap();
    env.reset(Some(0)).unwrap();
    env.inner_mut().set_state(r.init_qpos, r.init_qvel);
    let made = make("InvertedPendulum-v5", &EnvConfig::new()).unwrap();
    assert_eq!((made.id(), made.max_episode_steps()), ("InvertedPendulum-v5", Some(1000)));
    let (mut err, mut ret) = (0.0f64, 0.0);
    for k in 0..1000 {
        let (q, v) = env.qpos_qvel().unwrap();
        let a = feedback([q[0], q[1]], [v[0], v[1]]);
        assert!((a - r.actions[k]).abs() < 1e-2, "step {k}: action {a} vs MuJoCo's {}", r.actions[k]);
        let s = env.step(&[a]).unwrap();
        ret += s.reward;
        for i in 0..2 {
            err = err.max((s.obs[i] as f64 - r.obs[k][i]).abs());
        }
        assert!(!s.terminated, "step {k}");
        assert_eq!(s.truncated, k == 999, "step {k}: the registered TimeLimit is 1000");
    }
    assert_eq!(ret, 1000.0);
    assert!(err < 1e-3, "qpos error {err}");
}

#[test]
fn spec_constants_and_mass_matrix_equal_mujoco() {
    use inverted_pendulum as ip;
    use std::f64::consts::PI;
    // MuJoCo's inertiafromgeom, density 1000: cart capsule r 0.1, half-length 0.1; pole capsule
    // r 0.049 along a 0.6 m (+1 mm tilt) segment.
    let cart = 1000.0 * (PI * 0.01 * 0.2 + 4.0 / 3.0 * PI * 1e-3);
    assert!((ip::CART_MASS - cart).abs() < 1e-12);
    let pole_len = (0.001f64.powi(2) + 0.36).sqrt();
    let pole = 1000.0 * (PI * 0.049f64.powi(2) * pole_len + 4.0 / 3.0 * PI * 0.049f64.powi(3));
    assert!((ip::POLE_MASS - pole).abs() < 1e-12);
    assert_eq!((ip::GEAR, ip::CTRL_LIMIT, ip::DAMPING, ip::SLIDER_LIMIT, ip::HEALTHY_ANGLE), (100.0, 3.0, 1.0, 1.0, 0.2));
    assert_eq!(ip::HINGE_LIMIT, 90f64.to_radians());
    assert_eq!(ip::MAX_EPISODE_STEPS, 1000);
    let mut env = InvertedPendulum::new(&EnvConfig::new()).unwrap();
    assert_eq!(env.dt(), 0.04);
    assert_eq!(env.observation_space().dim(), 4);
    assert_eq!((env.action_space().low.clone(), env.action_space().high.clone()), (vec![-3.0], vec![3.0]));

    env.set_state([0.0, 0.0], [0.0, 0.0]);
    let mj = [[15.490567153329286, 1.505577492408992], [1.505577492408992, 0.6404242692436963]];
    let m = env.mass_matrix().unwrap();
    for i in 0..2 {
        for j in 0..2 {
            assert!((m[i][j] - mj[i][j]).abs() < 2e-6 * mj[i][j].abs(), "M[{i}][{j}] = {} vs MuJoCo {}", m[i][j], mj[i][j]);
        }
    }
    // Tilted by θ: M01 = m·(0.3 cos θ − 0.0005 sin θ) (positive θ tilts the pole towards +x).
    env.set_state([0.2, 0.15], [0.0, 0.0]);
    let m = env.mass_matrix().unwrap();
    let expect = ip::POLE_MASS * (0.3 * 0.15f64.cos() - 0.0005 * 0.15f64.sin());
    assert!((m[0][1] - expect).abs() < 1e-5, "{} vs {expect}", m[0][1]);
    assert!((m[1][1] - mj[1][1]).abs() < 2e-6);
}

#[test]
fn observation_reward_termination_follow_gymnasium() {
    let mut env = InvertedPendulum::new(&EnvConfig::new()).unwrap();
    env.reset(Some(3)).unwrap();
    let s = env.step(&[0.3]).unwrap();
    let (q, v) = (env.qpos(), env.qvel());
    assert_eq!(s.obs, vec![q[0] as f32, q[1] as f32, v[0] as f32, v[1] as f32]);
    assert_eq!((s.reward, s.terminated, s.truncated), (1.0, false, false));
    assert_eq!(s.info.len(), 1);
    assert_eq!(s.info["reward_survive"], 1.0);

    // Past 0.2 rad: terminated, reward 0; stepping on is allowed, as in Gymnasium.
    env.set_state([0.0, 0.25], [0.0, 0.0]);
    let s = env.step(&[0.0]).unwrap();
    assert_eq!((s.reward, s.terminated), (0.0, true));
    assert_eq!(s.info["reward_survive"], 0.0);
    assert!(env.step(&[0.0]).unwrap().terminated);
    env.set_state([0.0, -0.21], [0.0, 0.0]);
    assert!(env.step(&[0.0]).unwrap().terminated);
    // Just inside: alive.
    env.set_state([0.0, 0.19], [0.0, 0.0]);
    let s = env.step(&[0.0]).unwrap();
    assert!(!s.terminated && s.obs[1] > 0.19 && s.obs[1] < 0.2, "{:?}", s.obs);

    // A non-finite state terminates, and the env then asks for a reset.
    env.set_state([0.0, 0.0], [f64::NAN, 0.0]);
    let s = env.step(&[0.0]).unwrap();
    assert!(s.terminated && s.reward == 0.0);
    assert!(matches!(env.step(&[0.0]), Err(EnvError::NeedsReset(_))));
    assert!(env.reset(Some(1)).unwrap().0.iter().all(|x| x.is_finite()));
}

#[test]
fn slider_limit_holds_the_cart() {
    let mut env = InvertedPendulum::new(&EnvConfig::new().with("reset_noise_scale", ConfigValue::Float(0.0))).unwrap();
    env.reset(Some(0)).unwrap();
    for _ in 0..40 {
        env.step(&[3.0]).unwrap();
    }
    let q = env.qpos();
    assert!(q[0] > 0.99 && q[0] < 1.01, "cart at {}", q[0]);
    assert!(q[1].abs() <= std::f64::consts::FRAC_PI_2 + 0.01, "hinge at {}", q[1]);
}

#[test]
fn actions_are_clipped_by_the_actuator_like_mujoco_ctrlrange() {
    let cfg = EnvConfig::new().with("reset_noise_scale", ConfigValue::Float(0.0));
    let (mut a, mut b) = (InvertedPendulum::new(&cfg).unwrap(), InvertedPendulum::new(&cfg).unwrap());
    a.reset(Some(0)).unwrap();
    b.reset(Some(0)).unwrap();
    for _ in 0..5 {
        assert_eq!(a.step(&[-7.5]).unwrap().obs, b.step(&[-3.0]).unwrap().obs);
    }
}

#[test]
fn reset_noise_is_uniform_in_range_and_seeded() {
    let mut env = InvertedPendulum::new(&EnvConfig::new()).unwrap();
    let (o1, _) = env.reset(Some(7)).unwrap();
    assert_eq!(env.reset(Some(7)).unwrap().0, o1);
    assert_ne!(env.reset(None).unwrap().0, o1, "an unseeded reset continues the stream");
    let mut max: f64 = 0.0;
    for s in 0..200 {
        let (o, _) = env.reset(Some(s)).unwrap();
        for (x, y) in o.iter().zip(env.qpos().iter().chain(env.qvel().iter())) {
            assert_eq!(*x, *y as f32);
            assert!(y.abs() <= 0.01 + 1e-9);
            max = max.max(y.abs());
        }
    }
    assert!(max > 0.009, "noise should fill its range");
    let mut rest = InvertedPendulum::new(&EnvConfig::new().with("reset_noise_scale", ConfigValue::Float(0.0))).unwrap();
    assert_eq!(rest.reset(Some(3)).unwrap().0, vec![0.0; 4]);
    let wide = InvertedPendulum::new(&EnvConfig::new().with("reset_noise_scale", ConfigValue::Float(0.1)));
    let mut wide = wide.unwrap();
    let m = (0..50).map(|s| wide.reset(Some(s)).unwrap().0[1].abs()).fold(0.0f32, f32::max);
    assert!(m > 0.05 && m <= 0.1);
}

#[test]
fn snapshot_restore_is_bit_identical() {
    let mut env = InvertedPendulum::new(&EnvConfig::new()).unwrap();
    env.reset(Some(11)).unwrap();
    for _ in 0..10 {
        let (q, v) = (env.qpos(), env.qvel());
        env.step(&[feedback(q, v)]).unwrap();
    }
    let snap = env.snapshot();
    let run = |env: &mut InvertedPendulum| -> Vec<(Vec<f32>, f64, bool)> {
        (0..60)
            .map(|k| {
                let s = env.step(&[((k as f32) * 0.37).sin()]).unwrap();
                (s.obs, s.reward, s.terminated)
            })
            .collect()
    };
    let first = run(&mut env);
    env.restore(&snap).unwrap();
    assert_eq!(run(&mut env), first);
    let mut other = InvertedPendulum::new(&EnvConfig::new()).unwrap();
    other.restore(&snap).unwrap();
    assert_eq!(run(&mut other), first);
    env.restore(&snap).unwrap();
    other.restore(&snap).unwrap();
    assert_eq!(env.reset(None).unwrap().0, other.reset(None).unwrap().0);
}

#[test]
fn bad_actions_and_options_are_clear_errors() {
    let mut env = InvertedPendulum::new(&EnvConfig::new()).unwrap();
    assert!(matches!(env.step(&[0.0]), Err(EnvError::NeedsReset(_))));
    env.reset(Some(0)).unwrap();
    assert!(matches!(env.step(&[f32::NAN]), Err(EnvError::NonFiniteAction { index: 0, .. })));
    assert_eq!(env.step(&[0.0, 1.0]).unwrap_err(), EnvError::ActionShape { expected: 1, found: 2 });
    assert_eq!(env.step(&[0.0]).map(|s| s.obs.len()), Ok(4));
    let e = InvertedPendulum::new(&EnvConfig::new().with("noise", ConfigValue::Float(0.1))).err().unwrap();
    assert!(e.to_string().contains("reset_noise_scale") && e.to_string().contains("frame_skip"), "{e}");
    let e = InvertedPendulum::new(&EnvConfig::new().with("reset_noise_scale", ConfigValue::Float(-0.1))).err().unwrap();
    assert!(e.to_string().contains(">= 0"), "{e}");
    let e = InvertedPendulum::new(&EnvConfig::new().with("xml_file", ConfigValue::Str("x.xml".into()))).err().unwrap();
    assert!(e.to_string().contains("inverted_pendulum.xml"), "{e}");
}

#[test]
fn planar_scene_is_a_side_view() {
    let mut env = InvertedPendulum::new(&EnvConfig::new()).unwrap();
    env.set_state([0.3, 0.0], [0.0, 0.0]);
    let s = env.planar_scene().unwrap();
    let pole = s.capsules[2];
    assert!((pole.a[0] - 0.3).abs() < 1e-6 && pole.a[1] == 0.0);
    assert!((pole.b[0] - 0.301).abs() < 1e-6 && (pole.b[1] - 0.6).abs() < 1e-9, "{pole:?}");
    env.set_state([0.0, 0.1], [0.0, 0.0]);
    let tip = env.planar_scene().unwrap().capsules[2].b;
    assert!(tip[0] > 0.06, "positive angle tilts the pole towards +x: {tip:?}");
    assert_eq!(render_rgb(&env.planar_scene().unwrap(), 48, 48).len(), 48 * 48 * 3);
}

/// MuJoCo integrates the InvertedPendulum with RK4 (`integrator="RK4"`). `rk4_integrator` (the default since session 30)
/// takes that step (the soft
/// limits, which follow it, recomputed at each stage) where Rapier's is semi-implicit Euler: the open-loop sequences
/// terminate at MuJoCo's step exactly with qpos within 1e-4 up to it (the default: ±1 step, 0.01), and the closed
/// loop stays within 1e-5 over its 1000 steps (the default: 1e-3).
#[test]
fn mujocos_rk4_step_makes_the_pendulum_mujocos() {
    let cfg = EnvConfig::new();
    let rk4 = InvertedPendulumConfig::from_env_config(&cfg).unwrap();
    assert!(rk4.rk4_integrator && rk4.mujoco_limits, "MuJoCo's RK4 step and limits are the default");
    assert_eq!(rk4, InvertedPendulumConfig::default());
    let off = InvertedPendulumConfig::from_env_config(&EnvConfig::new().with("rk4_integrator", ConfigValue::Bool(false))).unwrap();
    assert_eq!(off, rapiers(), "rk4_integrator=false is revision 1, Rapier's limits included");
    for (name, mj_term) in [("a_zeros", 29), ("b_const_p0.1", 10), ("c_sin", 7), ("d_uniform_random", 3)] {
        let r = reference(name);
        let (term, err, _) = replay(rk4.clone(), &r);
        let (_, err_default, _) = replay(rapiers(), &r);
        eprintln!("{name}: RK4 qpos error {err:.2e} (Rapier's step {err_default:.2e}), terminated at {term:?} (MuJoCo {mj_term})");
        assert_eq!(term, Some(mj_term), "{name}");
        assert!(err < 1e-4, "{name}: qpos error {err}");
    }
    let r = reference("e_feedback");
    let mut env = started(rk4.clone(), &r);
    let mut err = 0.0f64;
    for k in 0..1000 {
        let (q, v) = (env.qpos(), env.qvel());
        let s = env.step(&[feedback([q[0], q[1]], [v[0], v[1]])]).unwrap();
        assert!(!s.terminated, "step {k}");
        err = err.max((0..2).map(|i| (s.obs[i] as f64 - r.obs[k][i]).abs()).fold(0.0, f64::max));
    }
    eprintln!("e_feedback: RK4 qpos error {err:.2e} over 1000 steps");
    assert!(err < 1e-5, "qpos error {err}");
    let e = InvertedPendulum::new(&cfg.clone().with("mujoco_limits", ConfigValue::Bool(false))).err().expect("RK4 with Rapier's limits").to_string();
    assert!(e.contains("rk4_integrator") && e.contains("mujoco_limits=true"), "{e}");
}
