#!/usr/bin/env python3
"""The InvertedDoublePendulum-v5 driven into its slider's limit in the real MuJoCo (Gymnasium 1.4.0): the cart set at
x = 0.95 with 2 m/s towards the rail's end, then full push (action 1) for six steps; prints each step's qpos, qvel,
observation[8] (clipped qfrc_constraint[0]) and qfrc_constraint. envs/tests/inverted_double_pendulum.rs holds the
RK4 step's values to these.

    ~/.cache/rebel-rs/mujoco-venv/bin/python scripts/idp_limit_mujoco.py
"""
import gymnasium as gym, numpy as np
env = gym.make("InvertedDoublePendulum-v5")
env.reset(seed=0)
u = env.unwrapped
print("jnt_margin", u.model.jnt_margin, "solref", u.model.jnt_solref[0], "solimp", u.model.jnt_solimp[0], "integrator", u.model.opt.integrator)
u.set_state(np.array([0.95, 0.0, 0.0]), np.array([2.0, 0.0, 0.0]))
for k in range(6):
    obs, r, term, trunc, _ = env.step(np.array([1.0], dtype=np.float32))
    print(k, "qpos", u.data.qpos.tolist(), "qvel", u.data.qvel.tolist(), "obs8", obs[8], "qfrc_constraint", u.data.qfrc_constraint.tolist())
