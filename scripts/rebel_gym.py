"""Our environments as Gymnasium environments, for Python libraries (Stable-Baselines3, CleanRL, ...).

    import sys; sys.path.insert(0, "scripts")
    from rebel_gym import RebelEnv
    env = RebelEnv("Hopper-v5", options={"reset_noise_scale": 0.005})
    obs, info = env.reset(seed=1)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

Each `RebelEnv` runs one `rebel --env ID [--env-opt K=V ...] serve-env` process (the protocol is documented in
`src/cli/servecmd.rs`) and talks to it through pipes, one JSON line per call. The binary is `$REBEL_BIN`, else
`target/release/rebel` of this checkout (build it with `cargo build --release --bin rebel`). The time limit is
the registered one, applied by our side (`truncated`); Gymnasium's `TimeLimit` wrapper is not added. Observations
are float32, our environment's values (sent in the shortest form that reads back to the same float32); actions
are sent as float32 values, rewards and info as float64.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import gymnasium as gym
import numpy as np

REPO = Path(__file__).resolve().parent.parent


def rebel_binary() -> str:
    path = os.environ.get("REBEL_BIN") or str(REPO / "target" / "release" / "rebel")
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{path} is not an executable: build it (cargo build --release --bin rebel) or set REBEL_BIN")
    return path


def _bounds(values, sign):
    return np.array([sign * np.inf if v is None else v for v in values], dtype=np.float32)


class RebelEnv(gym.Env):
    """One of our environments (`rebel envs` lists them), stepped by a `rebel serve-env` process."""

    metadata = {"render_modes": []}

    def __init__(self, env_id: str, options: dict | None = None, binary: str | None = None):
        cmd = [binary or rebel_binary(), "--env", env_id]
        for k, v in (options or {}).items():
            cmd += ["--env-opt", f"{k}={str(v).lower() if isinstance(v, bool) else v}"]
        cmd.append("serve-env")
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        line = self._proc.stdout.readline()
        if not line:
            err = self._proc.stderr.read()
            self._proc.wait()
            raise RuntimeError(f"`{' '.join(cmd)}` did not start: {err.strip()}")
        hello = json.loads(line)
        if hello.get("protocol") != 1:
            raise RuntimeError(f"`{cmd[0]}` speaks protocol {hello.get('protocol')}, this wrapper protocol 1: rebuild one or the other")
        self.env_id = hello["env"]
        self.hello = hello
        self.observation_space = gym.spaces.Box(_bounds(hello["obs_low"], -1), _bounds(hello["obs_high"], 1), dtype=np.float32)
        self.action_space = gym.spaces.Box(_bounds(hello["act_low"], -1), _bounds(hello["act_high"], 1), dtype=np.float32)
        self.dt = hello["dt"]
        self.max_episode_steps = hello["max_episode_steps"]

    def _call(self, request: dict) -> dict:
        if self._proc.poll() is not None:
            raise RuntimeError(f"the `rebel serve-env` process of {self.env_id} has exited: {self._proc.stderr.read().strip()}")
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the `rebel serve-env` process of {self.env_id} stopped answering: {self._proc.stderr.read().strip()}")
        answer = json.loads(line)
        if "error" in answer:
            raise ValueError(f"{self.env_id}: {answer['error']}")
        return answer

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if options:
            raise ValueError("RebelEnv.reset takes no options: give environment options to the constructor")
        a = self._call({"cmd": "reset", "seed": seed})
        return np.asarray(a["obs"], dtype=np.float32), a["info"]

    def step(self, action):
        action = np.asarray(action, dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(action)):
            raise ValueError(f"{self.env_id}: the action {action.tolist()} has a non-finite value (JSON cannot carry it, and "
                             "our environments refuse it): check the policy's output")
        a = self._call({"cmd": "step", "action": [float(x) for x in action]})
        return np.asarray(a["obs"], dtype=np.float32), a["reward"], a["terminated"], a["truncated"], a["info"]

    def close(self):
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.write('{"cmd":"close"}\n')
                proc.stdin.flush()
                proc.wait(timeout=10)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                proc.kill()
        super().close()

    def __del__(self):
        self.close()


if __name__ == "__main__":
    # `python scripts/rebel_gym.py ENV [--steps N]`: random actions from Python (resets at each episode's end);
    # prints the episodes' mean return and the steps per second through the pipe, as one JSON line.
    import argparse
    import time

    ap = argparse.ArgumentParser(description="step one of our environments from Python through rebel serve-env")
    ap.add_argument("env", nargs="?", default="Swimmer-v5")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    env = RebelEnv(a.env)
    env.action_space.seed(a.seed)
    env.reset(seed=a.seed)
    returns, ret = [], 0.0
    t0 = time.perf_counter()
    for _ in range(a.steps):
        _, r, term, trunc, _ = env.step(env.action_space.sample())
        ret += r
        if term or trunc:
            returns.append(ret)
            ret = 0.0
            env.reset()
    secs = time.perf_counter() - t0
    env.close()
    print(json.dumps({"env": env.env_id, "steps": a.steps, "episodes": len(returns),
                      "mean_return": float(np.mean(returns)) if returns else None, "steps_per_sec": a.steps / secs}))
