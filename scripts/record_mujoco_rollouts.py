#!/usr/bin/env python3
"""Reference rollouts of the real MuJoCo Reacher-v5, InvertedPendulum-v5, InvertedDoublePendulum-v5,
HalfCheetah-v5, Hopper-v5, Walker2d-v5 and Ant-v5 (Gymnasium 1.4.0), and of Humanoid-v5's model.

Run with the venv that holds gymnasium[mujoco]==1.4.0 (scripts/bench_vs_mujoco.sh makes it):

    ~/.cache/rebel-rs/mujoco-venv/bin/python scripts/record_mujoco_rollouts.py [--out DIR] [--print-model] [--env ID]

(--env records one environment's files only; the default records all. --print-model prints the compiled
models of Reacher, the pendulums and Ant, with --env only that one's.)

Writes DIR/<env>_<name>.csv (default DIR: envs/tests/data/mujoco), one file per action sequence,
for the tests in envs/tests/reacher.rs, inverted_pendulum.rs and inverted_double_pendulum.rs. Every number is
written with 17 significant digits (round-trips a float64).

File layout
* Columns: step, time, action0.., qpos0.., qvel0.., obs0.., reward, terminated, truncated, then
  the reward terms of `info` (Reacher: reward_dist, reward_ctrl; InvertedPendulum: reward_survive;
  InvertedDoublePendulum: reward_survive, distance_penalty, velocity_penalty; HalfCheetah: x_position,
  x_velocity, reward_forward, reward_ctrl; Hopper and Walker2d: those and reward_survive; Ant: x_position,
  y_position, x_velocity, y_velocity, reward_forward, reward_ctrl, reward_contact, reward_survive), then
  (InvertedDoublePendulum) qfrc_constraint0, (HalfCheetah, Hopper, Walker2d, Ant) ncon, the number of contacts
  after the step. Ant's obs is its default 105-dim observation: qpos[2:], qvel, then cfrc_ext[1:] clipped to
  [-1, 1] (13 bodies x 6); Gymnasium computes cfrc_ext in `step` only, so the step = -1 row of a file that
  starts from a set state holds the cfrc_ext of the reset before it (0 here).
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
* HalfCheetah-v5 (dt 0.05), 1000 steps (TimeLimit), from the exact rest pose (reset_noise_scale 0: the
  torso at 0.7 m, falling onto the floor) except e:
  a_zeros            a = 0: falls, lands and comes to rest
  b_const            a = (0.5, -0.5, 0.5, -0.5, 0.5, -0.5): legs driven against springs and limits
  c_gait             a_i = sin(2 pi 3 t + phase_i), phases (-1.3, 1.13, 1.3, 1.14, 1.68, -2.64): an open-loop
                     gallop that runs forward (the best of 150 random phase sets over 300 steps in MuJoCo)
  d_uniform_random   a ~ U(-1, 1)^6 from numpy.random.default_rng(ACTION_SEED)
  e_gait_noisy       c_gait from a seeded noisy reset (reset_noise_scale 0.1, seed RESET_SEED)
  f_air_gait         c_gait with the torso dropped from 3.7 m (qpos rootz = 3, at rest), 14 steps: the whole
                     fall happens before the first contact (springs, damping, armature, limits, motors alone)
  g_slide            zero action from the a_zeros end state (resting on the floor) with qvel rootx = 2 m/s,
                     40 steps: friction and contacts alone
  Also half_cheetah_v5_fullM.csv (mj_fullM at the rest pose, 9 x 9), half_cheetah_v5_bias.csv (qfrc_bias at six
  random states, see bias_at_random_states) and half_cheetah_v5_random_returns.csv: returns of 30 episodes of
  uniform random actions from seeded noisy resets (the default env), for the distribution test.
* Hopper-v5 and Walker2d-v5 (dt 0.008), from the exact rest pose (reset_noise_scale 0), each file ending where
  the env terminates (or at 1000 steps):
  a_zeros            a = 0
  b_const            a = (0.3, -0.3, 0.3, ...)
  c_wave             a_i = 0.5 sin(2 pi 2 t + 2 pi i / nu)
  d_uniform_random   a ~ U(-1, 1)^nu from numpy.random.default_rng(ACTION_SEED)
  f_air              dropped 1 m (qpos rootz = 2.25, at rest), a = c_wave / 10, 40 steps (Walker2d made with
                     healthy_z_range (0.8, 10) so that the height does not end it)
  Also *_fullM.csv, *_bias.csv and *_random_returns.csv (returns and lengths) as for HalfCheetah.
* Ant-v5 (dt 0.05), from the exact rest pose (reset_noise_scale 0: the torso at 0.75 m, every hinge at 0, so
  the ankles start outside their ranges (+-30..70 deg) and the joint limits act from the first step) except e,
  each file ending where the env terminates or at 300 steps (max_steps; the TimeLimit is 1000):
  a_zeros            a = 0: falls onto the floor and comes to rest
  b_const            a = (0.3, -0.3, 0.3, -0.3, 0.3, -0.3, 0.3, -0.3)
  c_gait             a_i = sin(2 pi ANT_GAIT_F t + ANT_GAIT_PHASES_i): an open-loop gait that bounds forward 2.7 m
                     in 200 steps, then turns over onto its back (step 215) and stays there (the best of 150 random
                     sets over 200 steps in MuJoCo, see ANT_GAIT_F)
  d_uniform_random   a ~ U(-1, 1)^8 from numpy.random.default_rng(ACTION_SEED)
  e_gait_noisy       c_gait from a seeded noisy reset (reset_noise_scale 0.1, seed RESET_SEED): terminates
                     at step 93 (the torso above 1 m)
  f_air              the torso dropped with qpos z = 3 (rest orientation, every hinge at 0, at rest), a = 0,
                     8 steps, all before the first contact: limits, damping and armature alone (made with
                     healthy_z_range (0.2, 10) so that the height does not end it)
  f2_air_inrange     as f_air but every ankle starts at the middle of its range (+-50 deg, hips 0) and
                     a = c_gait / 10, 4 steps: free flight with motors, no joint limit active in any substep
                     (the first limit engages in the 5th step)
  g_settled_push     zero action from the a_zeros end state (resting on the floor) with qvel x = 1 m/s,
                     40 steps: contacts and friction alone
  Also ant_v5_fullM.csv (mj_fullM at the rest pose, 14 x 14), ant_v5_bias.csv and ant_v5_random_returns.csv as
  for HalfCheetah.
* Humanoid-v5's model (Gymnasium's humanoid.xml: a floating base whose centre of mass is off its body frame,
  hips and shoulders of two or three hinges in one body), for envs/tests/mjcf_models.rs:
  humanoid_v5_fullM_pose.csv   one row: qpos0..qpos23 (qpos0 plus U(-0.3, 0.3) from
                               numpy.random.default_rng(ACTION_SEED), quaternion normalised), m0_0..m22_22
                               (mj_fullM there, row by row)
  humanoid_v5_flight.csv       columns step, qpos0..qpos23: the rest pose lifted to z = 10 m (far from the
                               floor) with qvel ~ U(-1, 1) (the base's angular velocity x3) from
                               numpy.random.default_rng(ACTION_SEED), zero control, the model's own RK4 and
                               0.003 s step; rows after 0, 10, 50 and 100 steps (a tumbling fall: springs,
                               damping, armature and joint limits, the knees starting past their range)
  and Humanoid-v5 (dt 0.015) rollouts from the exact rest pose (reset_noise_scale 0: the feet 0.107 m above
  the floor) except e, each ending where the env terminates (the torso's z out of (1, 2)) or at 300 steps:
  a_zeros            a = 0: falls
  b_const            a = (0.2, -0.2, 0.2, ...)
  c_wave             a_i = 0.4 sin(2 pi 1.5 t + 2 pi i / 17)
  d_uniform_random   a ~ U(-0.4, 0.4)^17 from numpy.random.default_rng(ACTION_SEED)
  e_zeros_noisy      a = 0 from a seeded noisy reset (reset_noise_scale 0.01, seed RESET_SEED)
  f_air              lifted to z = 3 m (at rest), a = c_wave, 8 steps, all before the first contact (made with
                     healthy_z_range (1, 10))
  Also humanoid_v5_fullM.csv, humanoid_v5_bias.csv and humanoid_v5_random_returns.csv (actions U(-0.4, 0.4)) as
  for HalfCheetah.
  The observation is Gymnasium's 348 values: qpos[2:], qvel, cinert[1:], cvel[1:], qfrc_actuator[6:],
  cfrc_ext[1:].
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
# Ant-v5's open-loop gait a_i = sin(2 pi ANT_GAIT_F t + ANT_GAIT_PHASES_i): of 150 sets drawn from
# numpy.random.default_rng(20240607) (per set f = round(uniform(0.5, 3), 1), then 8 phases
# round(uniform(-pi, pi), 2)), the one with the largest qpos x after 200 steps from the exact rest pose in
# MuJoCo among the 18 that do not terminate within them (most lift the torso above 1 m): x = 2.67 m at 200
# steps; it turns over onto its back at step 215 (of those that stay upright for 300 steps the best
# reaches 0.56 m).
ANT_GAIT_F = 1.4
ANT_GAIT_PHASES = (1.87, 2.47, -2.64, -3.1, -2.21, 2.6, 1.66, -1.95)


def g17(v):
    return format(float(v), ".17g")


def rollout(env_id, kwargs, policy, reset_seed, path, init=None, max_steps=None):
    import gymnasium as gym

    env = gym.make(env_id, **kwargs)
    u = env.unwrapped
    obs, _ = env.reset(seed=reset_seed)
    if init is not None:
        u.set_state(*init)
        obs = u._get_obs()
    nu, nq, nv = u.model.nu, u.model.nq, u.model.nv
    terms = {"Reacher-v5": ["reward_dist", "reward_ctrl"], "InvertedPendulum-v5": ["reward_survive"],
             "InvertedDoublePendulum-v5": ["reward_survive", "distance_penalty", "velocity_penalty"],
             "HalfCheetah-v5": ["x_position", "x_velocity", "reward_forward", "reward_ctrl"],
             "Hopper-v5": ["x_position", "x_velocity", "reward_forward", "reward_ctrl", "reward_survive"],
             "Walker2d-v5": ["x_position", "x_velocity", "reward_forward", "reward_ctrl", "reward_survive"],
             "Ant-v5": ["x_position", "y_position", "x_velocity", "y_velocity", "reward_forward", "reward_ctrl",
                        "reward_contact", "reward_survive"],
             "Humanoid-v5": ["x_position", "y_position", "x_velocity", "y_velocity", "reward_forward", "reward_ctrl",
                             "reward_contact", "reward_survive"]}[env_id]
    if env_id.startswith("InvertedDouble"):
        extra, extra_names = (lambda: [u.data.qfrc_constraint[0]]), ["qfrc_constraint0"]
    elif env_id in ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5"):
        extra, extra_names = (lambda: [int(u.data.ncon)]), ["ncon"]
    else:
        extra, extra_names = (lambda: []), []
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
        if term or trunc or (max_steps is not None and k >= max_steps):
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


def print_model(want=lambda env_id: True):
    import gymnasium as gym
    import mujoco

    np.set_printoptions(precision=17, linewidth=160)
    for env_id in ("Reacher-v5", "InvertedPendulum-v5", "InvertedDoublePendulum-v5", "Ant-v5"):
        if not want(env_id):
            continue
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
        if env_id == "Ant-v5":
            print(f"total mass {mujoco.mj_getTotalmass(m)!r}")
            for g in range(m.ngeom):
                print(f"geom {mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, g)}: type {m.geom_type[g]}, "
                      f"size {m.geom_size[g]}, contype {m.geom_contype[g]}, conaffinity {m.geom_conaffinity[g]}, "
                      f"condim {m.geom_condim[g]}, margin {float(m.geom_margin[g])!r}, friction {m.geom_friction[g]}, "
                      f"solref {m.geom_solref[g]}, solimp {m.geom_solimp[g]}")
        mujoco.mj_resetData(m, d)
        mujoco.mj_forward(m, d)
        full = np.zeros((m.nv, m.nv))
        mujoco.mj_fullM(m, d, full)
        print("mj_fullM at qpos0:\n", full)
        print("qfrc_bias at qpos0:", d.qfrc_bias)
        if env_id == "Ant-v5":
            # the a_zeros end state: 300 zero-action steps from the exact rest pose
            env = gym.make(env_id, reset_noise_scale=0.0)
            env.reset(seed=RESET_SEED)
            for _ in range(300):
                env.step(np.zeros(m.nu, dtype=np.float32))
            print("qpos after 300 zero-action steps from rest (settled):", env.unwrapped.data.qpos,
                  "max |qvel|", np.abs(env.unwrapped.data.qvel).max())


def bias_at_random_states(env, prefix, out, n=6):
    """MuJoCo's qfrc_bias (Coriolis, centrifugal, gyroscopic and gravity forces) at n random states: qpos =
    init_qpos + U(-0.5, 0.5) (a free joint's quaternion normalised), qvel ~ N(0, 3). Columns qpos0..,
    qvel0.., bias0..; the first state has qvel = 0 (gravity alone)."""
    import mujoco

    m, d = env.unwrapped.model, env.unwrapped.data
    rng = np.random.default_rng(ACTION_SEED + 2)
    with open(out(f"{prefix}_bias"), "w") as f:
        f.write(",".join([f"qpos{i}" for i in range(m.nq)] + [f"qvel{i}" for i in range(m.nv)]
                         + [f"bias{i}" for i in range(m.nv)]) + "\n")
        for k in range(n):
            mujoco.mj_resetData(m, d)
            d.qpos[:] = env.unwrapped.init_qpos + rng.uniform(-0.5, 0.5, size=m.nq)
            if m.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE:
                d.qpos[3:7] /= np.linalg.norm(d.qpos[3:7])
            d.qvel[:] = 0.0 if k == 0 else rng.normal(0.0, 3.0, size=m.nv)
            mujoco.mj_forward(m, d)
            f.write(",".join(g17(x) for x in np.concatenate([d.qpos, d.qvel, d.qfrc_bias])) + "\n")


def constraint_at_states(env, prefix, out, high=1.0):
    """MuJoCo's qfrc_constraint (the joint limits' and contacts' generalised forces) at eight states with limits
    past their range or feet on the floor: after 5, 50 and 150 physics steps of zero action from the rest
    pose, and after 20, 40, 60, 80 and 100 of uniform random actions U(-high, high) (held for 5 steps each)
    from it; a state with a contact between two body geoms (which stay Rapier's) is skipped for the next step.
    Columns qpos0.., qvel0.., ctrl0.., qfrc_constraint0.., then nl (limit rows) and ncon."""
    import mujoco

    m, d = env.unwrapped.model, env.unwrapped.data
    plane = int(mujoco.mjtGeom.mjGEOM_PLANE)
    rng = np.random.default_rng(ACTION_SEED + 3)
    rows = []
    for random, at in ((False, (5, 50, 150)), (True, (20, 40, 60, 80, 100))):
        mujoco.mj_resetData(m, d)
        d.qpos[:], d.qvel[:] = env.unwrapped.init_qpos, env.unwrapped.init_qvel
        want, n = list(at), 0
        while want and n < 5000:
            if random and n % 5 == 0:
                d.ctrl[:] = rng.uniform(-high, high, size=m.nu)
            mujoco.mj_step(m, d)
            n += 1
            if n < want[0]:
                continue
            mujoco.mj_forward(m, d)
            floor_only = all(plane in (m.geom_type[c.geom1], m.geom_type[c.geom2]) for c in d.contact[: d.ncon])
            if floor_only and d.nefc > 0:
                rows.append(np.concatenate([d.qpos, d.qvel, d.ctrl, d.qfrc_constraint, [d.nl, d.ncon]]))
                want.pop(0)
    with open(out(f"{prefix}_constraint"), "w") as f:
        f.write(",".join([f"qpos{i}" for i in range(m.nq)] + [f"qvel{i}" for i in range(m.nv)]
                         + [f"ctrl{i}" for i in range(m.nu)] + [f"qfrc_constraint{i}" for i in range(m.nv)]
                         + ["nl", "ncon"]) + "\n")
        for r in rows:
            f.write(",".join(g17(x) for x in r) + "\n")


def full_m_and_random_returns(env_id, prefix, out, nu, high=1.0):
    """mj_fullM at the rest pose, qfrc_bias at random states (bias_at_random_states), and the returns (and
    lengths) of 30 episodes of uniform random actions (U(-high, high), the action space) from seeded noisy
    resets (episode i resets with seed RESET_SEED + i)."""
    import gymnasium as gym
    import mujoco

    env = gym.make(env_id)
    m, d = env.unwrapped.model, env.unwrapped.data
    bias_at_random_states(env, prefix, out)
    constraint_at_states(env, prefix, out, high)
    mujoco.mj_resetData(m, d)
    mujoco.mj_forward(m, d)
    full = np.zeros((m.nv, m.nv))
    mujoco.mj_fullM(m, d, full)
    with open(out(f"{prefix}_fullM"), "w") as f:
        f.write(",".join(f"m{j}" for j in range(m.nv)) + "\n")
        for row in full:
            f.write(",".join(g17(x) for x in row) + "\n")
    rng = np.random.default_rng(ACTION_SEED + 1)
    rets, lens = [], []
    for i in range(30):
        env.reset(seed=RESET_SEED + i)
        ret, done, n = 0.0, False, 0
        while not done:
            _, r, term, trunc, _ = env.step(rng.uniform(-high, high, size=nu).astype(np.float32))
            ret += r
            n += 1
            done = term or trunc
        rets.append(ret)
        lens.append(n)
    with open(out(f"{prefix}_random_returns"), "w") as f:
        f.write("episode,return,length\n")
        for i, (r, n) in enumerate(zip(rets, lens)):
            f.write(f"{i},{g17(r)},{n}\n")
    print(f"{prefix}_random_returns.csv: mean {np.mean(rets):.3f}, std {np.std(rets):.3f}, "
          f"mean length {np.mean(lens):.1f}")
    env.close()


def half_cheetah(out):
    two_pi = 2.0 * np.pi
    rng = np.random.default_rng(ACTION_SEED)
    random_actions = rng.uniform(-1.0, 1.0, size=(1000, 6))
    phases = np.array([-1.3, 1.13, 1.3, 1.14, 1.68, -2.64])
    gait = lambda k, t, q, v: np.sin(two_pi * 3.0 * t + phases)
    seqs = {
        "a_zeros": (lambda k, t, q, v: np.zeros(6), 0.0),
        "b_const": (lambda k, t, q, v: np.array([0.5, -0.5, 0.5, -0.5, 0.5, -0.5]), 0.0),
        "c_gait": (gait, 0.0),
        "d_uniform_random": (lambda k, t, q, v: random_actions[k], 0.0),
        "e_gait_noisy": (gait, 0.1),
    }
    for name, (policy, noise) in seqs.items():
        rollout("HalfCheetah-v5", {"reset_noise_scale": noise}, policy, RESET_SEED, out(f"half_cheetah_v5_{name}"))
    q0 = np.zeros(9)
    q0[1] = 3.0
    rollout("HalfCheetah-v5", {"reset_noise_scale": 0.0}, gait, RESET_SEED, out("half_cheetah_v5_f_air_gait"),
            init=(q0, np.zeros(9)), max_steps=14)
    # resting on the floor (the a_zeros end state), pushed forward at 2 m/s: friction and contacts alone
    rest = np.loadtxt(out("half_cheetah_v5_a_zeros"), delimiter=",", skiprows=1)[-1]
    v0 = np.zeros(9)
    v0[0] = 2.0
    rollout("HalfCheetah-v5", {"reset_noise_scale": 0.0}, lambda k, t, q, v: np.zeros(6), RESET_SEED,
            out("half_cheetah_v5_g_slide"), init=(rest[8:17], v0), max_steps=40)
    full_m_and_random_returns("HalfCheetah-v5", "half_cheetah_v5", out, 6)


def biped(env_id, prefix, nq, nu, out):
    """Hopper-v5 and Walker2d-v5: the same sequences (a rollout stops where the env terminates)."""
    two_pi = 2.0 * np.pi
    rng = np.random.default_rng(ACTION_SEED)
    random_actions = rng.uniform(-1.0, 1.0, size=(1000, nu))
    phases = np.arange(nu) * (2.0 * np.pi / nu)
    wave = lambda k, t, q, v: 0.5 * np.sin(two_pi * 2.0 * t + phases)
    seqs = {
        "a_zeros": (lambda k, t, q, v: np.zeros(nu), 0.0),
        "b_const": (lambda k, t, q, v: np.array([0.3, -0.3, 0.3, -0.3, 0.3, -0.3][:nu]), 0.0),
        "c_wave": (wave, 0.0),
        "d_uniform_random": (lambda k, t, q, v: random_actions[k], 0.0),
    }
    for name, (policy, noise) in seqs.items():
        rollout(env_id, {"reset_noise_scale": noise}, policy, RESET_SEED, out(f"{prefix}_{name}"))
    # dropped 1 m from its rest pose, the wave at a tenth of its amplitude: 40 steps in the air
    q0 = np.zeros(nq)
    q0[1] = 2.25
    air = {"reset_noise_scale": 0.0, "healthy_z_range": (0.8, 10.0)} if env_id == "Walker2d-v5" else {"reset_noise_scale": 0.0}
    rollout(env_id, air, lambda k, t, q, v: 0.1 * wave(k, t, q, v), RESET_SEED,
            out(f"{prefix}_f_air"), init=(q0, np.zeros(nq)), max_steps=40)
    full_m_and_random_returns(env_id, prefix, out, nu)


def ant(out):
    two_pi = 2.0 * np.pi
    rng = np.random.default_rng(ACTION_SEED)
    random_actions = rng.uniform(-1.0, 1.0, size=(1000, 8))
    phases = np.array(ANT_GAIT_PHASES)
    gait = lambda k, t, q, v: np.sin(two_pi * ANT_GAIT_F * t + phases)
    zero = lambda k, t, q, v: np.zeros(8)
    seqs = {
        "a_zeros": (zero, 0.0),
        "b_const": (lambda k, t, q, v: np.array([0.3, -0.3, 0.3, -0.3, 0.3, -0.3, 0.3, -0.3]), 0.0),
        "c_gait": (gait, 0.0),
        "d_uniform_random": (lambda k, t, q, v: random_actions[k], 0.0),
        "e_gait_noisy": (gait, 0.1),
    }
    for name, (policy, noise) in seqs.items():
        rollout("Ant-v5", {"reset_noise_scale": noise}, policy, RESET_SEED, out(f"ant_v5_{name}"), max_steps=300)
    # dropped with the torso at 3 m, at rest: 8 steps in the air (the first contact comes later)
    air = {"reset_noise_scale": 0.0, "healthy_z_range": (0.2, 10.0)}
    q0 = np.zeros(15)
    q0[2], q0[3] = 3.0, 1.0
    rollout("Ant-v5", air, zero, RESET_SEED, out("ant_v5_f_air"), init=(q0, np.zeros(14)), max_steps=8)
    # the same with every ankle at the middle of its range (qpos 8, 10, 12, 14: +-50 deg) and a tenth of the
    # gait: 4 steps of free flight before the first joint limit engages
    q1 = q0.copy()
    q1[[8, 10, 12, 14]] = np.radians([50.0, -50.0, -50.0, 50.0])
    rollout("Ant-v5", air, lambda k, t, q, v: 0.1 * gait(k, t, q, v), RESET_SEED, out("ant_v5_f2_air_inrange"),
            init=(q1, np.zeros(14)), max_steps=4)
    # resting on the floor (the a_zeros end state), pushed forward at 1 m/s: contacts and friction alone
    rest = np.loadtxt(out("ant_v5_a_zeros"), delimiter=",", skiprows=1)[-1]
    v0 = np.zeros(14)
    v0[0] = 1.0
    rollout("Ant-v5", {"reset_noise_scale": 0.0}, zero, RESET_SEED, out("ant_v5_g_settled_push"),
            init=(rest[10:25], v0), max_steps=40)
    full_m_and_random_returns("Ant-v5", "ant_v5", out, 8)


def humanoid(out):
    import gymnasium as gym
    import mujoco

    env = gym.make("Humanoid-v5")
    m, d = env.unwrapped.model, env.unwrapped.data
    rng = np.random.default_rng(ACTION_SEED)
    mujoco.mj_resetData(m, d)
    d.qpos[:] = m.qpos0 + rng.uniform(-0.3, 0.3, m.nq)
    d.qpos[3:7] /= np.linalg.norm(d.qpos[3:7])
    mujoco.mj_forward(m, d)
    full = np.zeros((m.nv, m.nv))
    mujoco.mj_fullM(m, d, full)
    with open(out("humanoid_v5_fullM_pose"), "w") as f:
        f.write(",".join([f"qpos{i}" for i in range(m.nq)] + [f"m{i}_{j}" for i in range(m.nv) for j in range(m.nv)]) + "\n")
        f.write(",".join(g17(x) for x in list(d.qpos) + list(full.flatten())) + "\n")
    rng = np.random.default_rng(ACTION_SEED)
    mujoco.mj_resetData(m, d)
    d.qpos[2] = 10.0
    d.qvel[:] = rng.uniform(-1.0, 1.0, m.nv)
    d.qvel[3:6] *= 3.0
    with open(out("humanoid_v5_flight"), "w") as f:
        f.write(",".join(["step"] + [f"qpos{i}" for i in range(m.nq)] + [f"qvel{i}" for i in range(m.nv)]) + "\n")
        for k in range(101):
            if k in (0, 10, 50, 100):
                f.write(",".join([str(k)] + [g17(x) for x in list(d.qpos) + list(d.qvel)]) + "\n")
            mujoco.mj_step(m, d)
    env.close()
    # the environment (ctrlrange +-0.4): rollouts as for the Ant, each ending where it terminates
    two_pi = 2.0 * np.pi
    rng = np.random.default_rng(ACTION_SEED)
    random_actions = rng.uniform(-0.4, 0.4, size=(1000, 17))
    wave = lambda k, t, q, v: 0.4 * np.sin(two_pi * 1.5 * t + two_pi * np.arange(17) / 17)
    zero = lambda k, t, q, v: np.zeros(17)
    seqs = {
        "a_zeros": (zero, 0.0),
        "b_const": (lambda k, t, q, v: np.tile([0.2, -0.2], 9)[:17], 0.0),
        "c_wave": (wave, 0.0),
        "d_uniform_random": (lambda k, t, q, v: random_actions[k], 0.0),
        "e_zeros_noisy": (zero, 0.01),
    }
    for name, (policy, noise) in seqs.items():
        rollout("Humanoid-v5", {"reset_noise_scale": noise}, policy, RESET_SEED, out(f"humanoid_v5_{name}"),
                max_steps=300)
    # lifted to 3 m (at rest), the wave, 8 steps before the first contact: the observation's com-based
    # inertias and velocities, actuator forces, limits, springs and damping without contacts
    q0 = np.array(env.unwrapped.init_qpos)
    q0[2] = 3.0
    rollout("Humanoid-v5", {"reset_noise_scale": 0.0, "healthy_z_range": (1.0, 10.0)}, wave, RESET_SEED,
            out("humanoid_v5_f_air"), init=(q0, np.zeros(23)), max_steps=8)
    full_m_and_random_returns("Humanoid-v5", "humanoid_v5", out, 17, high=0.4)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    p.add_argument("--out", default=os.path.join(here, "..", "envs", "tests", "data", "mujoco"))
    p.add_argument("--print-model", action="store_true", help="also print the compiled model values")
    p.add_argument("--env", help="record this environment only (Reacher-v5, InvertedPendulum-v5, "
                   "InvertedDoublePendulum-v5, HalfCheetah-v5, Hopper-v5, Walker2d-v5, Ant-v5, Humanoid-v5)")
    args = p.parse_args()
    try:
        import gymnasium
        import mujoco
    except ImportError as e:
        sys.exit(f"record_mujoco_rollouts.py: {e}; run it with the venv of scripts/bench_vs_mujoco.sh")
    if gymnasium.__version__ != "1.4.0":
        sys.exit(f"record_mujoco_rollouts.py: needs gymnasium 1.4.0, found {gymnasium.__version__}")
    print(f"gymnasium {gymnasium.__version__}, mujoco {mujoco.__version__}")
    want = lambda env_id: args.env is None or args.env == env_id
    if args.env is not None and args.env not in ("Reacher-v5", "InvertedPendulum-v5", "InvertedDoublePendulum-v5",
                                                 "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5",
                                                 "Humanoid-v5"):
        sys.exit(f"record_mujoco_rollouts.py: unknown --env {args.env!r}")
    if args.print_model:
        print_model(want)
    os.makedirs(args.out, exist_ok=True)
    out = lambda name: os.path.join(args.out, name + ".csv")

    if want("HalfCheetah-v5"):
        half_cheetah(out)
    if want("Hopper-v5"):
        biped("Hopper-v5", "hopper_v5", 6, 3, out)
    if want("Walker2d-v5"):
        biped("Walker2d-v5", "walker2d_v5", 9, 6, out)
    if want("Ant-v5"):
        ant(out)
    if want("Humanoid-v5"):
        humanoid(out)
    two_pi = 2.0 * np.pi
    rng = np.random.default_rng(ACTION_SEED)
    reacher_random = rng.uniform(-1.0, 1.0, size=(50, 2))
    reacher = {
        "a_zeros": lambda k, t, q, v: (0.0, 0.0),
        "b_const_p1_m1": lambda k, t, q, v: (1.0, -1.0),
        "c_sin": lambda k, t, q, v: (0.5 * np.sin(two_pi * t), 0.5 * np.sin(two_pi * t + np.pi / 2)),
        "d_uniform_random": lambda k, t, q, v: reacher_random[k],
    }
    for name, policy in reacher.items() if want("Reacher-v5") else []:
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
    for name, (policy, noise) in pendulum.items() if want("InvertedPendulum-v5") else []:
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
    for name, (policy, noise) in double.items() if want("InvertedDoublePendulum-v5") else []:
        rollout("InvertedDoublePendulum-v5", {"reset_noise_scale": noise}, policy, RESET_SEED,
                out(f"inverted_double_pendulum_v5_{name}"))


if __name__ == "__main__":
    main()
