"""Our environments as Gymnasium environments, for Python libraries (Stable-Baselines3, CleanRL, ...).

    import sys; sys.path.insert(0, "scripts")
    from rebel_gym import RebelEnv
    env = RebelEnv("Hopper-v5", options={"reset_noise_scale": 0.005}, render_mode="rgb_array")
    obs, info = env.reset(seed=1)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    frame = env.render()  # uint8 (height, width, 3): the top-down view `rebel render` draws

    import gymnasium as gym; from rebel_gym import register
    register()  # every environment of `rebel envs` as "rebel/ID", for gym.make (its checker and wrappers)
    env = gym.make("rebel/Swimmer-v5", options={"solver_iterations": 2}, render_mode="rgb_array")

Each `RebelEnv` runs one `rebel --env ID [--env-opt K=V ...] serve-env` process (the protocol is documented in
`src/cli/servecmd.rs`) and talks to it through pipes, one JSON line per call. The binary is `$REBEL_BIN`, else
`target/release/rebel` of this checkout (build it with `cargo build --release --bin rebel`). The time limit is
the registered one, applied by our side (`truncated`); Gymnasium's `TimeLimit` wrapper is not added. Observations
are float32, our environment's values (sent in the shortest form that reads back to the same float32); actions
are sent as float32 values, rewards and info as float64. `render_mode="rgb_array"` makes `render()` return the
top-down picture of the state now (`width` x `height`, 480 x 480 by default) in Gymnasium's `rgb_array` form.
"""

from __future__ import annotations

import base64
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

    # render_fps: the Swimmer's 1/dt here; each instance sets its own environment's from the hello line
    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}
    PROTOCOL = 2

    def __init__(self, env_id: str, options: dict | None = None, binary: str | None = None,
                 render_mode: str | None = None, width: int = 480, height: int = 480):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} is not supported: use 'rgb_array' or None")
        self.render_mode, self.width, self.height = render_mode, width, height
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
        if hello.get("protocol") != self.PROTOCOL:
            raise RuntimeError(f"`{cmd[0]}` speaks protocol {hello.get('protocol')}, this wrapper protocol {self.PROTOCOL}: "
                               "rebuild the binary from this checkout (cargo build --release --bin rebel)")
        self.env_id = hello["env"]
        self.hello = hello
        self.observation_space = gym.spaces.Box(_bounds(hello["obs_low"], -1), _bounds(hello["obs_high"], 1), dtype=np.float32)
        self.action_space = gym.spaces.Box(_bounds(hello["act_low"], -1), _bounds(hello["act_high"], 1), dtype=np.float32)
        self.dt = hello["dt"]
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / self.dt))}
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

    def render(self):
        if self.render_mode is None:
            gym.logger.warn(f"{self.env_id}: render() without a render mode: make the env with render_mode='rgb_array'")
            return None
        a = self._call({"cmd": "render", "width": self.width, "height": self.height})
        rgb = np.frombuffer(base64.b64decode(a["rgb"]), dtype=np.uint8)
        return rgb.reshape(a["height"], a["width"], 3)

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


def register(binary: str | None = None) -> list[str]:
    """Registers each environment that `rebel envs` lists as `rebel/ID` with Gymnasium, so that
    `gym.make("rebel/ID", options=..., render_mode=...)` makes a `RebelEnv`; returns the ids. The time limit stays
    ours (the spec has no `max_episode_steps`, so Gymnasium adds no second `TimeLimit`)."""
    binary = binary or rebel_binary()
    out = subprocess.run([binary, "envs"], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"`{binary} envs` failed: {out.stderr.strip()}")
    ids = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    for env_id in ids:
        gym.register(id=f"rebel/{env_id}", entry_point=RebelEnv, kwargs={"env_id": env_id, "binary": binary})
    return ids


if __name__ == "__main__":
    # `python scripts/rebel_gym.py ENV [--steps N] [--check] [--video DIR]`: random actions from Python (resets at
    # each episode's end); prints the episodes' mean return and the steps per second through the pipe, as one JSON
    # line. --check runs Gymnasium's env checker first; --video DIR records the first episode with Gymnasium's
    # RecordVideo (it needs moviepy) through gym.make("rebel/ENV", render_mode="rgb_array").
    import argparse
    import time

    ap = argparse.ArgumentParser(description="step one of our environments from Python through rebel serve-env")
    ap.add_argument("env", nargs="?", default="Swimmer-v5")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true", help="run gymnasium.utils.env_checker.check_env on it first")
    ap.add_argument("--video", metavar="DIR", help="record the first episode to DIR with gymnasium's RecordVideo")
    a = ap.parse_args()
    if (a.check or a.video) and a.env not in (ids := register()):
        ap.error(f"unknown environment {a.env!r}; registered environments: {', '.join(ids)}")
    if a.check:
        from gymnasium.utils.env_checker import check_env
        # through gym.make, so that the env has a spec and the checker also tries its other render modes
        checked = gym.make(f"rebel/{a.env}", render_mode="rgb_array")
        check_env(checked.unwrapped, skip_render_check=False)
        checked.close()
        print(f"{a.env}: gymnasium's check_env passed", flush=True)
    if a.video:
        from gymnasium.wrappers import RecordVideo
        env = RecordVideo(gym.make(f"rebel/{a.env}", render_mode="rgb_array"), video_folder=a.video,
                          name_prefix=a.env, episode_trigger=lambda episode: episode == 0)
    else:
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
    print(json.dumps({"env": a.env, "steps": a.steps, "episodes": len(returns),
                      "mean_return": float(np.mean(returns)) if returns else None, "steps_per_sec": a.steps / secs}))
