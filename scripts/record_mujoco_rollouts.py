#!/usr/bin/env python3
"""Reference rollouts of the real MuJoCo Reacher-v5, InvertedPendulum-v5 and InvertedDoublePendulum-v5
(Gymnasium 1.4.0).

Run with the venv that holds gymnasium[mujoco]==1.4.0 (scripts/bench_vs_mujoco.sh makes it):

    ~/.cache/rebel-rs/mujoco-venv/bin/python scripts/record_mujoco_rollouts.py [--out DIR] [--print-model]

Writes DIR/<env>_<name>.csv (default DIR: envs/tests/data/mujoco), one file per action sequence,
for the tests in envs/tests/reacher.rs, inverted_pendulum.rs and inverted_double_pendulum.rs. Every number is
written with 17 significant digits (round-trips a float64).

File layout
* Columns: step, time, action0.., qpos0.., qvel0.., obs0.., reward, terminated, truncated, then
  the reward terms of `info` (Reacher: reward_dist, reward_ctrl; InvertedPendulum: reward_survive;
  InvertedDoublePendulum: reward_survive, distance_penalty, velocity_penalty), then (InvertedDoublePendulum)
  qfrc_constraint0.
* The first row has step = -1: the state right after `reset` (actions, reward and flags 0; obs is
  the reset observation). Rows step = 0, 1, ... hold the action given at that step and the state,
  observation, reward and flags after it. A file ends at the first terminated or truncated step
  (the registered TimeLimit is kept: Reacher 50 steps, InvertedPendulum 1000).
* Reacher has no reset-noise option: it is reset with seed RESET_SEED and the reset state is the
  step = -1 row. InvertedPendulum is made with reset_noise_scale = 0 (the exact rest state), except
  the closed-loop file, which starts from a seeded noisy reset (reset_noise_scale 0.01, seed
  RESET_SEED).

Action sequences (t = step * dt):
* Reacher-v5 (dt 0.02):
  a_zeros            a = (0, 0)
  b_const_p1_m1      a = (1, -1): joint1 driven into its -3 rad limit, joint0 spun up
  c_sin              a = (0.5 sin(2 pi t), 0.5 sin(2 pi t + pi/2))
  d_uniform_random   a ~ U(-1, 1)^2 from numpy.random.default_rng(ACTION_SEED)
* InvertedPendulum-v5 (dt 0.04):
  a_zeros            a = 0: the pole falls (its tip is 1 mm off the hinge axis)
  b_const_p0.1       a = 0.1
  c_sin              a = 0.5 sin(2 pi t)
  d_uniform_random   a ~ U(-3, 3) from numpy.random.default_rng(ACTION_SEED)
  e_feedback         a = clip(FEEDBACK . (qpos0, qpos1, qvel0, qvel1), -3, 3), computed from the
                     float64 state, then cast to float32 (closed loop: survives 1000 steps)
* InvertedDoublePendulum-v5 (dt 0.05), from the exact rest state (reset_noise_scale 0) except e:
  a_zeros            a = 0: both poles fall (gravity has a 1e-5 m/s^2 x part)
  b_const_p0.1       a = 0.1
  c_sin              a = 0.5 sin(2 pi t)
  d_uniform_random   a ~ U(-1, 1) from numpy.random.default_rng(ACTION_SEED)
  e_feedback         a = clip(FEEDBACK_IDP . (qpos, qvel), -1, 1) from a seeded noisy reset (scale 0.1):
                     a discrete LQR of MuJoCo's linearisation (rounded), survives 1000 steps
"""
import argparse
import os
import sys

import numpy as np

RESET_SEED = 20240607
ACTION_SEED = 20240607
# Gains of the balancing feedback (a rounded discrete LQR design for the linearised cart-pole).
FEEDBACK = (0.7, 7.0, 0.9, 1.1)
# LQR gains of the double pendulum (Q = diag(1, 10, 10, .1, .1, .1), R = 1, 5-step held control,
# from mjd_transitionFD of the Euler variant of the model), rounded.
FEEDBACK_IDP = (-0.21, -1.82, -5.59, -0.31, -0.9, -0.82)


def g17(v):
    return format(float(v), ".17g")


def rollout(env_id, kwargs, policy, reset_seed, path):
    import gymnasium as gym

    env = gym.make(env_id, **kwargs)
    u = env.unwrapped
    obs, _ = env.reset(seed=reset_seed)
    nu, nq, nv = u.model.nu, u.model.nq, u.model.nv
    terms = {"Reacher-v5": ["reward_dist", "reward_ctrl"], "InvertedPendulum-v5": ["reward_survive"],
             "InvertedDoublePendulum-v5": ["reward_survive", "distance_penalty", "velocity_penalty"]}[env_id]
    extra = (lambda: [u.data.qfrc_constraint[0]]) if env_id.startswith("InvertedDouble") else (lambda: [])
    extra_names = ["qfrc_constraint0"] if env_id.startswith("InvertedDouble") else []
    header = (["step", "time"] + [f"action{i}" for i in range(nu)] + [f"qpos{i}" for i in range(nq)]
              + [f"qvel{i}" for i in range(nv)] + [f"obs{i}" for i in range(len(obs))]
              + ["reward", "terminated", "truncated"] + terms + extra_names)
    rows = [[-1, 0.0] + [0.0] * nu + list(u.data.qpos) + list(u.data.qvel) + list(obs) + [0.0, 0, 0] + [0.0] * len(terms)
            + extra()]
    k = 0
    while True:
        a = np.asarray(policy(k, k * u.dt, u.data.qpos.copy(), u.data.qvel.copy()), dtype=np.float32).reshape(nu)
        obs, r, term, trunc, info = env.step(a)
        rows.append([k, (k + 1) * u.dt] + list(a.astype(np.float64)) + list(u.data.qpos) + list(u.data.qvel)
                    + list(obs) + [r, int(term), int(trunc)] + [info[t] for t in terms] + extra())
        k += 1
        if term or trunc:
            break
    env.close()
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(",".join(str(v) if isinstance(v, int) else g17(v) for v in row) + "\n")
    os.replace(tmp, path)
    ri = header.index("reward")
    ret = sum(r[ri] for r in rows[1:])
    print(f"{os.path.basename(path)}: {len(rows) - 1} steps, return {ret:.6f}, "
          f"terminated={bool(rows[-1][ri + 1])}")


def print_model():
    import gymnasium as gym
    import mujoco

    np.set_printoptions(precision=17, linewidth=160)
    for env_id in ("Reacher-v5", "InvertedPendulum-v5", "InvertedDoublePendulum-v5"):
        env = gym.make(env_id)
        u = env.unwrapped
        m, d = u.model, u.data
        print(f"== {env_id}: timestep {m.opt.timestep}, frame_skip {u.frame_skip}, integrator {m.opt.integrator}, "
              f"gravity {m.opt.gravity}, max_episode_steps {env.spec.max_episode_steps}")
        for b in range(1, m.nbody):
            print(f"body {mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, b)}: mass {m.body_mass[b]!r}, "
                  f"inertia {m.body_inertia[b]}, ipos {m.body_ipos[b]}, pos {m.body_pos[b]}")
        print("jnt_range", m.jnt_range.tolist(), "jnt_limited", m.jnt_limited.tolist())
        print("dof_armature", m.dof_armature, "dof_damping", m.dof_damping)
        print("actuator_gear", m.actuator_gear[:, 0], "ctrlrange", m.actuator_ctrlrange.tolist())
        print("geom_contype", m.geom_contype, "geom_conaffinity", m.geom_conaffinity)
        mujoco.mj_resetData(m, d)
        mujoco.mj_forward(m, d)
        full = np.zeros((m.nv, m.nv))
        mujoco.mj_fullM(m, d, full)
        print("mj_fullM at qpos0:\n", full)
        print("qfrc_bias at qpos0:", d.qfrc_bias)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    p.add_argument("--out", default=os.path.join(here, "..", "envs", "tests", "data", "mujoco"))
    p.add_argument("--print-model", action="store_true", help="also print the compiled model values")
    args = p.parse_args()
    try:
        import gymnasium
        import mujoco
    except ImportError as e:
        sys.exit(f"record_mujoco_rollouts.py: {e}; run it with the venv of scripts/bench_vs_mujoco.sh")
    if gymnasium.__version__ != "1.4.0":
        sys.exit(f"record_mujoco_rollouts.py: needs gymnasium 1.4.0, found {gymnasium.__version__}")
    print(f"gymnasium {gymnasium.__version__}, mujoco {mujoco.__version__}")
    if args.print_model:
        print_model()
    os.makedirs(args.out, exist_ok=True)
    out = lambda name: os.path.join(args.out, name + ".csv")

    two_pi = 2.0 * np.pi
    rng = np.random.default_rng(ACTION_SEED)
    reacher_random = rng.uniform(-1.0, 1.0, size=(50, 2))
    reacher = {
        "a_zeros": lambda k, t, q, v: (0.0, 0.0),
        "b_const_p1_m1": lambda k, t, q, v: (1.0, -1.0),
        "c_sin": lambda k, t, q, v: (0.5 * np.sin(two_pi * t), 0.5 * np.sin(two_pi * t + np.pi / 2)),
        "d_uniform_random": lambda k, t, q, v: reacher_random[k],
    }
    for name, policy in reacher.items():
        rollout("Reacher-v5", {}, policy, RESET_SEED, out(f"reacher_v5_{name}"))

    rng = np.random.default_rng(ACTION_SEED)
    pend_random = rng.uniform(-3.0, 3.0, size=(1000, 1))
    fb = np.array(FEEDBACK)
    pendulum = {
        "a_zeros": (lambda k, t, q, v: (0.0,), 0.0),
        "b_const_p0.1": (lambda k, t, q, v: (0.1,), 0.0),
        "c_sin": (lambda k, t, q, v: (0.5 * np.sin(two_pi * t),), 0.0),
        "d_uniform_random": (lambda k, t, q, v: pend_random[k], 0.0),
        "e_feedback": (lambda k, t, q, v: (np.clip(fb @ np.concatenate([q, v]), -3.0, 3.0),), 0.01),
    }
    for name, (policy, noise) in pendulum.items():
        rollout("InvertedPendulum-v5", {"reset_noise_scale": noise}, policy, RESET_SEED,
                out(f"inverted_pendulum_v5_{name}"))

    rng = np.random.default_rng(ACTION_SEED)
    idp_random = rng.uniform(-1.0, 1.0, size=(1000, 1))
    fbd = np.array(FEEDBACK_IDP)
    double = {
        "a_zeros": (lambda k, t, q, v: (0.0,), 0.0),
        "b_const_p0.1": (lambda k, t, q, v: (0.1,), 0.0),
        "c_sin": (lambda k, t, q, v: (0.5 * np.sin(two_pi * t),), 0.0),
        "d_uniform_random": (lambda k, t, q, v: idp_random[k], 0.0),
        "e_feedback": (lambda k, t, q, v: (np.clip(fbd @ np.concatenate([q, v]), -1.0, 1.0),), 0.1),
    }
    for name, (policy, noise) in double.items():
        rollout("InvertedDoublePendulum-v5", {"reset_noise_scale": noise}, policy, RESET_SEED,
                out(f"inverted_double_pendulum_v5_{name}"))


if __name__ == "__main__":
    main()
