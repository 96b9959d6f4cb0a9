#!/usr/bin/env python3
"""Which state's contact forces MuJoCo's `cfrc_ext` holds after an RK4 `mj_step`: the step's start, its last stage, or
the new state. rebel-rs's RK4 step (`MjcfWorld::set_rk4_integrator`) leaves the last stage's; this checks that MuJoCo does.

    ~/.cache/rebel-rs/mujoco-venv/bin/python scripts/rk4_contact_forces.py [--env Ant-v5] [--seed 3] [--steps 300]

Runs the environment with small random actions (seeded) until the ant (or whatever `--env` names) touches the floor,
then takes one `mj_step` from that state and compares its `cfrc_ext` (after `mj_rnePostConstraint`, as Gymnasium's
`do_simulation` computes it) with a forward evaluation's at the step's start, at RK4's last stage (X0 + h·(v2, a2),
stages rebuilt with `mj_integratePos` as `mj_RungeKutta` builds them) and at the new state. Prints one JSON line:
the largest absolute difference to each (the solver's tolerance bounds the match).
"""
import argparse
import json

import gymnasium as gym
import mujoco
import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="Ant-v5")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--steps", type=int, default=300, help="env steps at most before a contact is found")
    a = p.parse_args()
    env = gym.make(a.env)
    env.reset(seed=a.seed)
    m, d = env.unwrapped.model, env.unwrapped.data
    if m.opt.integrator != mujoco.mjtIntegrator.mjINT_RK4:
        raise SystemExit(f"rk4_contact_forces.py: {a.env} does not integrate with RK4")
    rng = np.random.default_rng(a.seed)
    nu = m.nu
    for i in range(a.steps):
        env.step(0.3 * rng.uniform(-1, 1, nu))
        mujoco.mj_forward(m, d)
        if d.ncon > 0 and i > 30:
            break
    else:
        raise SystemExit(f"rk4_contact_forces.py: no contact in {a.steps} steps; try another --seed")
    q0, v0, ctrl = d.qpos.copy(), d.qvel.copy(), rng.uniform(-1, 1, nu)
    d.ctrl[:] = ctrl
    scratch = mujoco.MjData(m)

    def forces_at(q, v):
        scratch.qpos[:], scratch.qvel[:], scratch.ctrl[:] = q, v, ctrl
        mujoco.mj_forward(m, scratch)
        mujoco.mj_rnePostConstraint(m, scratch)
        return scratch.qacc.copy(), scratch.cfrc_ext.copy()

    def moved(q, v, h):
        q = q.copy()
        mujoco.mj_integratePos(m, q, v, h)
        return q

    h = m.opt.timestep
    a0, start = forces_at(q0, v0)
    v1 = v0 + h / 2 * a0
    a1, _ = forces_at(moved(q0, v0, h / 2), v1)
    v2 = v0 + h / 2 * a1
    a2, _ = forces_at(moved(q0, v1, h / 2), v2)
    _, last_stage = forces_at(moved(q0, v2, h), v0 + h * a2)
    mujoco.mj_step(m, d)
    mujoco.mj_rnePostConstraint(m, d)
    after = d.cfrc_ext.copy()
    _, new_state = forces_at(d.qpos.copy(), d.qvel.copy())
    diff = lambda x: float(np.abs(after - x).max())
    print(json.dumps({
        "env": a.env, "mujoco_version": mujoco.__version__, "contacts": int(d.ncon),
        "largest_cfrc_ext": float(np.abs(after).max()),
        "vs_step_start": diff(start), "vs_last_stage": diff(last_stage), "vs_new_state": diff(new_state),
    }))


if __name__ == "__main__":
    main()
