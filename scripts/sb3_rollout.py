"""One episode of a policy trained by `scripts/sb3_zoo.py`, in the real MuJoCo, as a reference rollout.

    python scripts/sb3_rollout.py RUN_DIR OUT.csv [--seed S] [--max-steps N]

Writes OUT.csv in the format of `scripts/record_mujoco_rollouts.py` (qpos, qvel, actions, rewards, contacts per
step), which `cargo run --release -p rebel-envs --example one_step_fidelity -- --env ID --table OUT.csv` reads:
our simulator's one-step errors on the states a trained gait visits (landings, pushes off), not only on the
shipped open-loop sequences. The policy acts on MuJoCo's observation (mean action, the run's frozen
normalisation), clipped to the action space as SB3 does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    import gymnasium as gym
    import numpy as np
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
except ImportError as e:
    sys.exit(f"{Path(__file__).name}: {e}; it needs stable-baselines3 and gymnasium[mujoco] 1.4.0 beside torch, e.g. "
             "python3 -m venv V && V/bin/pip install torch 'gymnasium[mujoco]==1.4.0' stable-baselines3==2.9.2")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record_mujoco_rollouts import rollout  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0, help="reset seed of the episode")
    ap.add_argument("--max-steps", type=int)
    a = ap.parse_args()
    try:
        env_id = json.loads((a.run_dir / "result.json").read_text())["env"]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"sb3_rollout.py: {a.run_dir}/result.json is missing or not a finished sb3_zoo.py run ({e})")
    model = PPO.load(a.run_dir / "model.zip", device="cpu")
    norm = VecNormalize.load(str(a.run_dir / "vecnormalize.pkl"), DummyVecEnv([lambda: gym.make(env_id)]))
    norm.training = False
    # The observation of a (qpos, qvel) state, from an env of the same id set to that state.
    probe = gym.make(env_id).unwrapped
    probe.reset(seed=0)
    low, high = probe.action_space.low, probe.action_space.high

    def policy(k, t, qpos, qvel):
        probe.set_state(qpos, qvel)
        obs = probe._get_obs().astype(np.float32)
        act, _ = model.predict(norm.normalize_obs(obs[None, :]), deterministic=True)
        return np.clip(act[0], low, high)

    rollout(env_id, {}, policy, a.seed, str(a.out), max_steps=a.max_steps)


if __name__ == "__main__":
    main()
