"""Checks scripts/rebel_gym.py against a real `rebel serve-env` (run by tests/python_gym.rs, which sets REBEL_BIN to
the binary under test). Each check raises AssertionError with what differed; the last line printed is "ok"."""

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from rebel_gym import RebelEnv, register  # noqa: E402


def raises(exc, fn, *words):
    try:
        fn()
    except exc as e:
        msg = str(e)
        assert all(w in msg for w in words), f"{exc.__name__} without {words}: {msg}"
        return
    raise AssertionError(f"no {exc.__name__} raised (expected one naming {words})")


ids = register()
assert {"Swimmer-v5", "Hopper-v5", "InvertedPendulum-v5"} <= set(ids), ids

# Gymnasium's own checker through gym.make (a spec, its wrappers, the render checks).
for env_id in ("Hopper-v5", "Swimmer-v5"):
    made = gym.make(f"rebel/{env_id}", render_mode="rgb_array", width=64, height=48)
    check_env(made.unwrapped, skip_render_check=False)
    made.close()

env = RebelEnv("Hopper-v5", render_mode="rgb_array", width=64, height=48)
assert env.observation_space.shape == (11,) and env.action_space.shape == (3,), (env.observation_space, env.action_space)
assert env.metadata["render_fps"] == 125, env.metadata  # 1/dt = 1/0.008, as Gymnasium's Hopper-v5 declares

# Same seed, same actions: the same numbers, float32 observations inside the space.
def rollout(seed):
    obs, info = env.reset(seed=seed)
    out = [obs]
    for t in range(20):
        obs, r, term, trunc, info = env.step(np.full(3, 0.5 * np.sin(t), dtype=np.float32))
        out.append(obs)
        out.append(np.array([r], dtype=np.float64))
        assert not term and not trunc, f"the Hopper fell within 20 steps of a small action (t={t})"
    assert obs.dtype == np.float32 and env.observation_space.contains(obs), obs
    assert {"x_position", "reward_forward", "reward_ctrl", "reward_survive"} <= set(info), info
    return out

a, b, c = rollout(1), rollout(1), rollout(2)
assert all(np.array_equal(x, y) for x, y in zip(a, b)), "seed 1 twice gave different numbers"
assert not np.array_equal(a[0], c[0]), "seeds 1 and 2 gave the same start"

# The picture: the asked size, uint8, not blank.
frame = env.render()
assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8, (frame.shape, frame.dtype)
assert frame.min() != frame.max(), "a blank frame"

# Bad actions: a clear ValueError, and the environment goes on.
raises(ValueError, lambda: env.step([float("nan"), 0.0, 0.0]), "non-finite")
raises(ValueError, lambda: env.step([0.0, 0.0]), "Hopper-v5", "2 entries", "has 3")
env.step(np.zeros(3, dtype=np.float32))
raises(ValueError, lambda: env.reset(options={"x": 1}), "constructor")
env.close()

# An episode that ends: the InvertedPendulum falls under full push; a step after the end is refused.
pend = RebelEnv("InvertedPendulum-v5")
pend.reset(seed=0)
for t in range(1000):
    _, _, term, trunc, _ = pend.step([3.0])
    if term or trunc:
        break
assert term and not trunc and t < 100, (t, term, trunc)
raises(ValueError, lambda: pend.step([0.0]), "InvertedPendulum-v5", "after the episode ended", "reset()")
pend.reset()
pend.close()

# The time limit is ours: 1000 steps of the Swimmer end in truncated=True, terminated=False, and gym.make adds no
# second TimeLimit.
swim = gym.make("rebel/Swimmer-v5")
assert swim.spec.max_episode_steps is None, swim.spec
swim.reset(seed=3)
steps = 0
while True:
    _, _, term, trunc, _ = swim.step(swim.action_space.sample())
    steps += 1
    if term or trunc:
        break
assert (steps, term, trunc) == (1000, False, True), (steps, term, trunc)
swim.close()

# Wrong names and options: the binary's own message, naming what is valid.
raises(RuntimeError, lambda: RebelEnv("Nope-v5"), "unknown environment", "Hopper-v5")
raises(RuntimeError, lambda: RebelEnv("Hopper-v5", options={"no_such_option": 1}), "unknown option 'no_such_option'",
       "valid options", "ctrl_cost_weight")
raises(ValueError, lambda: RebelEnv("Hopper-v5", render_mode="human"), "rgb_array")
print("ok")
