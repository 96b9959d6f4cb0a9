#!/usr/bin/env python3
"""Runs a policy checkpoint of rebel-rs closed-loop in the real MuJoCo environment (Gymnasium 1.4.0).

    ~/.cache/rebel-rs/mujoco-venv/bin/python scripts/policy_in_mujoco.py CHECKPOINT \
        [--env ID] [--episodes 10] [--seed-base 1000000] [--xml-file PATH] [--stochastic] [--integrator Euler]

CHECKPOINT is a `.safetensors` file written by `rebel train` (or `pretrain`). It is read here without
torch: the 8-byte header length, the JSON header, then the raw little-endian float32 tensors.
The policy (agents/src/policy.rs) is an MLP `policy.layer{i}.weight/bias` with tanh (or ReLU: the
stored config's `activation`) after every hidden layer and none after the last; it sees the raw
observation, or, when the config says `normalize_obs`, the observation standardised with the
stored statistics `policy.obs_mean`/`policy.obs_var` and clipped to ±10. By default
the mean action is taken (as `rebel eval` does); `--stochastic` samples mean + exp(log_std)·N(0, 1).
Actions are given unclipped (MuJoCo's ctrlrange clips them, as in rebel-rs) unless the run clipped them.

The env id defaults to the one stored in the checkpoint's metadata, and so do the options the run was made with
(`env_options`, when the env is the checkpoint's): those that Gymnasium's constructor of the env takes
(`ctrl_cost_weight`, `reset_noise_scale`, ranges such as `healthy_z_range = "0.8,inf"`, and
`max_episode_steps`) are passed on, `clip_actions = true` clips each action to the action space before
`env.step` (Gymnasium's ClipAction); the others exist only on Rapier (`solver_iterations`, contact softness, ...)
and are listed as not applied. Prints one JSON line: {"env": ..., "env_options_applied": {...},
"env_options_not_in_mujoco": [...], "episodes": N, "return_mean": ..., "return_std": ..., "returns": [...],
"lengths": [...]}, and for the planar runners (HalfCheetah, Hopper, Walker2d, whose qpos[2] is the torso's pitch)
"upside_down": per episode the share of steps with the torso past ±π/2 (a cheetah running on its back: near 1).
Compare it with `rebel --env ID eval --checkpoint CHECKPOINT` (the same policy in Rapier).
"""
import argparse
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        tensors[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"]).astype(np.float64)
    return meta, tensors


class Policy:
    def __init__(self, tensors, config, prefix="policy."):
        self.activation = config.get("activation", "tanh")
        if self.activation not in ("tanh", "relu", "leaky_relu"):
            sys.exit(f"policy_in_mujoco.py: unknown activation {self.activation!r} in the checkpoint's policy config")
        self.norm = None
        if config.get("normalize_obs", False):
            if f"{prefix}obs_mean" not in tensors or f"{prefix}obs_var" not in tensors:
                sys.exit("policy_in_mujoco.py: the policy config says normalize_obs but the checkpoint holds no obs_mean/obs_var")
            self.norm = (tensors[f"{prefix}obs_mean"], np.sqrt(tensors[f"{prefix}obs_var"] + 1e-8))
        self.layers = []
        i = 0
        while f"{prefix}layer{i}.weight" in tensors:
            self.layers.append((tensors[f"{prefix}layer{i}.weight"], tensors[f"{prefix}layer{i}.bias"]))
            i += 1
        if not self.layers:
            sys.exit(f"policy_in_mujoco.py: no tensors named {prefix}layer0.weight in the checkpoint")
        self.log_std = tensors[f"{prefix}log_std"]

    def mean(self, obs):
        x = np.asarray(obs, dtype=np.float32).astype(np.float64)
        if self.norm is not None:
            x = np.clip((x - self.norm[0]) / self.norm[1], -10.0, 10.0)
        for k, (w, b) in enumerate(self.layers):
            x = w @ x + b
            if k + 1 < len(self.layers):
                if self.activation == "tanh":
                    x = np.tanh(x)
                elif self.activation == "relu":
                    x = np.maximum(x, 0.0)
                else:
                    x = np.where(x < 0.0, 0.01 * x, x)
        return x


def mujoco_options(gym, env_id, options):
    """The checkpoint's recorded env options that gym.make(env_id) takes (as its constructor's keyword
    arguments, ranges "lo,hi" as tuples, or max_episode_steps), and the names of the others."""
    import inspect
    from gymnasium.envs.registration import load_env_creator

    entry = gym.spec(env_id).entry_point
    creator = load_env_creator(entry) if isinstance(entry, str) else entry
    params = inspect.signature(creator).parameters
    kwargs, skipped = {}, []
    for key, value in sorted(options.items()):
        if key == "clip_actions":
            continue  # not a constructor argument: main() clips
        if key == "max_episode_steps":
            kwargs[key] = int(value)
        elif key in params:
            if isinstance(value, str) and "," in value:
                value = tuple(float(x) for x in value.split(","))
            kwargs[key] = value
        else:
            skipped.append(key)
    return kwargs, skipped


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--env", help="Gymnasium id (default: the checkpoint's env_id)")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed-base", type=int, default=1_000_000)
    p.add_argument("--xml-file", help="MJCF file for the environment (Gymnasium's xml_file)")
    p.add_argument("--stochastic", action="store_true")
    p.add_argument("--integrator", choices=["Euler", "RK4", "implicit", "implicitfast"],
                   help="step MuJoCo's model with this integrator instead of its own (the Hopper's and the Walker2d's "
                        "is RK4): does a policy's return in MuJoCo follow the integrator?")
    args = p.parse_args()
    try:
        import gymnasium as gym
    except ImportError as e:
        sys.exit(f"policy_in_mujoco.py: {e}; run it with the venv of scripts/bench_vs_mujoco.sh")
    meta, tensors = read_safetensors(args.checkpoint)
    info = json.loads(meta.get("meta", "{}"))
    env_id = args.env or info.get("env_id")
    if not env_id:
        sys.exit("policy_in_mujoco.py: the checkpoint names no env_id; pass --env")
    policy = Policy(tensors, info.get("policy") or {})
    options = info.get("env_options") or {} if env_id == info.get("env_id") else {}
    kwargs, skipped = mujoco_options(gym, env_id, options)
    applied = dict(kwargs)
    clip = bool(options.get("clip_actions", False))
    if clip:
        applied["clip_actions"] = True
    if args.xml_file:
        kwargs["xml_file"] = args.xml_file
    env = gym.make(env_id, **kwargs)
    if args.integrator:
        import mujoco
        model = env.unwrapped.model
        model.opt.integrator = {"Euler": mujoco.mjtIntegrator.mjINT_EULER, "RK4": mujoco.mjtIntegrator.mjINT_RK4,
                                "implicit": mujoco.mjtIntegrator.mjINT_IMPLICIT,
                                "implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST}[args.integrator]
        applied["integrator"] = args.integrator
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    w0 = policy.layers[0][0]
    if w0.shape[1] != obs_dim or policy.layers[-1][0].shape[0] != act_dim:
        sys.exit(f"policy_in_mujoco.py: the policy maps {w0.shape[1]} observations to {policy.layers[-1][0].shape[0]} "
                 f"actions, {env_id} has {obs_dim} and {act_dim}")
    rng = np.random.default_rng(args.seed_base)
    returns, lengths = [], []
    planar = env_id.split("-")[0] in ("HalfCheetah", "Hopper", "Walker2d")
    upside_down = []
    for ep in range(args.episodes):
        obs, _ = env.reset(seed=args.seed_base + ep)
        ret, n, done, flipped = 0.0, 0, False, 0
        while not done:
            a = policy.mean(obs)
            if args.stochastic:
                a = a + np.exp(policy.log_std) * rng.standard_normal(a.shape)
            if clip:
                a = np.clip(a, env.action_space.low, env.action_space.high)
            obs, r, term, trunc, _ = env.step(a.astype(np.float32))
            ret += float(r)
            n += 1
            done = term or trunc
            if planar and abs(float(env.unwrapped.data.qpos[2])) > np.pi / 2:
                flipped += 1
        returns.append(ret)
        lengths.append(n)
        upside_down.append(flipped / n)
    env.close()
    out = {"env": env_id, "env_options_applied": applied, "env_options_not_in_mujoco": skipped,
           "episodes": args.episodes, "return_mean": float(np.mean(returns)),
           "return_std": float(np.std(returns)), "returns": returns, "lengths": lengths}
    if planar:
        out["upside_down"] = upside_down
    print(json.dumps(out))


if __name__ == "__main__":
    main()
