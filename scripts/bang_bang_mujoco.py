#!/usr/bin/env python3
"""Square-wave ("bang-bang") Swimmer gaits in the real MuJoCo, from rest: a = (sign sin(w t), sign sin(w t + phi)).
Prints the return and the largest joint angle for MuJoCo's defaults, stiffer joint-limit settings
(jnt_solref / jnt_solimp; MuJoCo clamps the limit's time constant to >= 2 timesteps) and the Euler
integrator. Compare with `cargo run --release -p rebel-envs --example bang_bang`.

    ~/.cache/rebel-rs/mujoco-venv/bin/python scripts/bang_bang_mujoco.py
"""
import numpy as np, gymnasium as gym, mujoco
def run(w, phi, solref=None, solimp=None, integrator=None, steps=1000):
    env = gym.make("Swimmer-v5", reset_noise_scale=0.0); u = env.unwrapped
    if solref is not None: u.model.jnt_solref[:] = solref
    if solimp is not None: u.model.jnt_solimp[:] = solimp
    if integrator is not None: u.model.opt.integrator = integrator
    env.reset(seed=0); ret = 0; qmax = 0
    for k in range(steps):
        t = k * u.dt
        a = np.array([np.sign(np.sin(w*t)), np.sign(np.sin(w*t+phi))], dtype=np.float32)
        _, r, *_ = env.step(a); ret += r; qmax = max(qmax, np.abs(u.data.qpos[3:]).max())
    return ret, np.degrees(qmax)
for w, ph in [(2.125, -7.5), (2.9, -25.0), (1.5, 0.0)]:
    print("w", w, "phi", ph)
    print("  default (solref 0.02 1, RK4)      ", run(w, np.radians(ph)))
    print("  solref 0.005 1                    ", run(w, np.radians(ph), solref=[0.005, 1]))
    print("  solref 0.002 1 solimp .99 .999    ", run(w, np.radians(ph), solref=[0.002, 1], solimp=[0.99, 0.999, 0.001, 0.5, 2]))
    print("  Euler                              ", run(w, np.radians(ph), integrator=0))
