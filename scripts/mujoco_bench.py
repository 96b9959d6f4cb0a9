#!/usr/bin/env python3
"""MuJoCo speed of Swimmer-v5, Reacher-v5, InvertedPendulum-v5, InvertedDoublePendulum-v5, HalfCheetah-v5, Hopper-v5, Walker2d-v5, Ant-v5 or Humanoid-v5, and the
comparison with rebel-rs.

Two modes (run with the venv made by scripts/bench_vs_mujoco.sh):

  mujoco_bench.py measure [--env ID] [--raw-steps N] [--gym-steps N] [--seed S]
      Times, on whatever cores the process is allowed (pin it with taskset), for ID
      (Swimmer-v5 by default; or any of the others above):
      * raw:  mujoco.mj_step(model, data, nstep=frame_skip) per env step (the env's frame_skip:
              4 for Swimmer, 5 for InvertedDoublePendulum and Ant, 2 for the others), with uniformly random controls written to
              data.ctrl; no Python env code. The state is reset when it leaves the env's healthy
              range (InvertedPendulum: |angle| > 0.2; InvertedDoublePendulum: tip height <= 1).
      * gym:  gymnasium.make(ID) env.step with random actions (TimeLimit included, reset on
              termination or truncation), i.e. what a Python RL loop pays per step.
      Last stdout line: JSON {"raw_env_steps_per_sec", "gym_env_steps_per_sec", versions, ...}.

  mujoco_bench.py report --mujoco JSON --ours JSON [--ours-8x1 JSON] [--ours-8x2 JSON]
      Prints a table and the ratios ours/MuJoCo; last stdout line: one JSON object.
      The --ours* arguments are the last stdout lines of `rebel --env ID bench`.
"""
import argparse
import json
import platform
import sys
import time


def measure(args):
    import gymnasium as gym
    import mujoco
    import numpy as np

    env = gym.make(args.env)
    raw = env.unwrapped
    model, data = raw.model, raw.data
    frame_skip = raw.frame_skip
    rng = np.random.default_rng(args.seed)
    low, high = env.action_space.low, env.action_space.high

    # Raw MuJoCo: frame_skip substeps per env step, controls only.
    env.reset(seed=args.seed)
    ctrls = rng.uniform(low, high, size=(args.raw_steps, len(low)))
    for k in range(min(1000, args.raw_steps)):  # warm-up
        data.ctrl[:] = ctrls[k]
        mujoco.mj_step(model, data, nstep=frame_skip)
    mujoco.mj_resetData(model, data)
    t0 = time.perf_counter()
    falls = args.env.startswith("InvertedPendulum")
    double = args.env.startswith("InvertedDoublePendulum")
    raw_resets = 0
    for k in range(args.raw_steps):
        data.ctrl[:] = ctrls[k]
        mujoco.mj_step(model, data, nstep=frame_skip)
        if (falls and abs(data.qpos[1]) > 0.2) or (double and data.site_xpos[0][2] <= 1.0):  # a new episode
            mujoco.mj_resetData(model, data)
            raw_resets += 1
    raw_secs = time.perf_counter() - t0
    if not np.all(np.isfinite(data.qpos)):
        sys.exit("mujoco_bench.py: MuJoCo state went non-finite during the raw run")

    # Gymnasium env.step, with resets at the time limit, as an RL loop would run it.
    actions = rng.uniform(low, high, size=(args.gym_steps, len(low))).astype(np.float32)
    env.reset(seed=args.seed)
    for k in range(min(1000, args.gym_steps)):  # warm-up
        env.step(actions[k])
    env.reset(seed=args.seed)
    episodes = 0
    t0 = time.perf_counter()
    for k in range(args.gym_steps):
        _, _, terminated, truncated, _ = env.step(actions[k])
        if terminated or truncated:
            env.reset()
            episodes += 1
    gym_secs = time.perf_counter() - t0
    env.close()

    out = {
        "env": args.env,
        "raw_resets": raw_resets,
        "mujoco_version": mujoco.__version__,
        "gymnasium_version": gym.__version__,
        "python": platform.python_version(),
        "frame_skip": frame_skip,
        "timestep": float(model.opt.timestep),
        "raw_steps": args.raw_steps,
        "raw_seconds": raw_secs,
        "raw_env_steps_per_sec": args.raw_steps / raw_secs,
        "gym_steps": args.gym_steps,
        "gym_seconds": gym_secs,
        "gym_env_steps_per_sec": args.gym_steps / gym_secs,
        "gym_episodes_ended": episodes,
    }
    print(f"{args.env}: MuJoCo {out['mujoco_version']} raw mj_step x{frame_skip}: {out['raw_env_steps_per_sec']:.0f} env steps/s; "
          f"gymnasium {out['gymnasium_version']} env.step: {out['gym_env_steps_per_sec']:.0f} env steps/s")
    print(json.dumps(out))


def report(args):
    mj = json.loads(args.mujoco)
    ours = json.loads(args.ours)
    env = mj.get("env", "Swimmer-v5")
    if ours.get("env", env) != env:
        sys.exit(f"mujoco_bench.py: --mujoco measured {env} but --ours measured {ours['env']}")
    rows = [
        (f"MuJoCo raw mj_step ({mj['frame_skip']} substeps), 1 core", mj["raw_env_steps_per_sec"]),
        (f"Gymnasium {env} env.step, 1 core", mj["gym_env_steps_per_sec"]),
        (f"rebel-rs {env}, {ours['envs']} env, {ours['threads']} thread", ours["env_steps_per_sec"]),
    ]
    extra = {}
    for key, text in (("ours_8x1", args.ours_8x1), ("ours_8x2", args.ours_8x2)):
        if text:
            r = json.loads(text)
            extra[key] = r["env_steps_per_sec"]
            rows.append((f"rebel-rs {env}, {r['envs']} envs, {r['threads']} thread(s)", r["env_steps_per_sec"]))
    width = max(len(r[0]) for r in rows)
    print(f"{'run':<{width}}  {'env steps/s':>12}")
    print(f"{'-' * width}  {'-' * 12}")
    for name, sps in rows:
        print(f"{name:<{width}}  {sps:>12.0f}")
    ratio_raw = ours["env_steps_per_sec"] / mj["raw_env_steps_per_sec"]
    ratio_gym = ours["env_steps_per_sec"] / mj["gym_env_steps_per_sec"]
    print(f"ratio ours/MuJoCo raw:       {ratio_raw:.3f}")
    print(f"ratio ours/Gymnasium step:   {ratio_gym:.3f}")
    machine = ours.get("machine")
    if machine:
        print(f"machine: {machine.get('cpu')} ({' '.join(machine.get('simd', []))}), {machine.get('logical_cpus')} CPU(s) available to the process")
    result = {
        "env": env,
        "mujoco_version": mj["mujoco_version"],
        "gymnasium_version": mj["gymnasium_version"],
        "mujoco_raw_env_steps_per_sec": mj["raw_env_steps_per_sec"],
        "gymnasium_env_steps_per_sec": mj["gym_env_steps_per_sec"],
        "ours_env_steps_per_sec": ours["env_steps_per_sec"],
        "ratio_ours_over_mujoco_raw": ratio_raw,
        "ratio_ours_over_gymnasium": ratio_gym,
        "machine": machine,
    }
    if "ours_8x1" in extra:
        result["ours_8envs_1thread_env_steps_per_sec"] = extra["ours_8x1"]
    if "ours_8x2" in extra:
        result["ours_8envs_2threads_env_steps_per_sec"] = extra["ours_8x2"]
    if "ours_8x1" in extra and "ours_8x2" in extra:
        result["thread_scaling_2_over_1"] = extra["ours_8x2"] / extra["ours_8x1"]
        print(f"thread scaling (8 envs, 2 vs 1 threads): {result['thread_scaling_2_over_1']:.2f}x")
    print(json.dumps(result))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    m = sub.add_parser("measure", help="time MuJoCo and Gymnasium on one environment")
    m.add_argument("--env", default="Swimmer-v5", choices=["Swimmer-v5", "Reacher-v5", "InvertedPendulum-v5", "InvertedDoublePendulum-v5", "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5"])
    m.add_argument("--raw-steps", type=int, default=100_000, help="env steps for the raw mj_step run")
    m.add_argument("--gym-steps", type=int, default=20_000, help="env steps for the gymnasium env.step run")
    m.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("report", help="table and ratios from the JSON results")
    r.add_argument("--mujoco", required=True, help="last line of `measure`")
    r.add_argument("--ours", required=True, help="last line of `rebel --env ID bench --envs 1 --threads 1`")
    r.add_argument("--ours-8x1", help="last line of `rebel --env ID bench --envs 8 --threads 1`")
    r.add_argument("--ours-8x2", help="last line of `rebel --env ID bench --envs 8 --threads 2`")
    args = p.parse_args()
    for k in ("raw_steps", "gym_steps"):
        if getattr(args, k, 1) < 1:
            p.error(f"--{k.replace('_', '-')} must be >= 1")
    (measure if args.mode == "measure" else report)(args)


if __name__ == "__main__":
    main()
