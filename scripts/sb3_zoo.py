"""Stable-Baselines3's PPO with the RL Zoo's settings, on the real MuJoCo or on ours, and each final policy run in both.

    python scripts/sb3_zoo.py --env Hopper-v5 --sim rebel --seed 1 --out runs/sb3
    python scripts/sb3_zoo.py --env Hopper-v5 --sim mujoco --seed 1 --out runs/sb3
    python scripts/sb3_zoo.py --env Hopper-v5 --sim mujoco --seed 1 --settings cleanrl --out runs/sb3
    python scripts/sb3_zoo.py --summary --out runs/sb3        (the tables of the finished runs)

This separates the two halves of "PPO here does not reach the zoo's figure": the same PPO (SB3's, the zoo's own)
trains on MuJoCo's simulator and on ours. The settings are read from `experiments/zoo/ppo_{env}.toml` (the ones
our own PPO runs with; `vf_coef`, which our PPO has no counterpart for, comes from the zoo's `ppo.yml` below), or
with `--settings cleanrl` from `experiments/zoo/ppo_cleanrl.toml` (CleanRL's settings, SB3's PPO defaults: vf_coef
0.5, the value clipped as the file's `vf_clip` says; such a run's folder ends in `__cleanrl`).
As in the zoo: one environment, `VecNormalize` of observations and rewards (the reward's discount = PPO's gamma),
SB3 clips each action to the action space before the step. Our environments run through `scripts/rebel_gym.py`
(`$REBEL_BIN` or target/release/rebel). After training, the final policy (mean action, with the training's
frozen normalisation) runs 10 episodes in each simulator; everything goes to OUT/ENV__SIM__SEED/: `result.json`
(returns and lengths in both), `monitor.csv` (training episodes), `model.zip`, `vecnormalize.pkl`. A run whose
`result.json` exists is skipped, so a loop over seeds can be run again after an interruption; a killed run starts
over. Needs stable-baselines3 and gymnasium[mujoco] 1.4.0 (README: "SB3's PPO on both simulators").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib
from pathlib import Path

try:
    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
except ImportError as e:
    sys.exit(f"{Path(__file__).name}: {e}; it needs stable-baselines3 and gymnasium[mujoco] 1.4.0 beside torch, e.g. "
             "python3 -m venv V && V/bin/pip install torch 'gymnasium[mujoco]==1.4.0' stable-baselines3==2.9.2")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rebel_gym import RebelEnv  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# rl-baselines3-zoo hyperparams/ppo.yml, the -v3 entries (our PPO trains value and policy with separate Adams).
VF_COEF = {"HalfCheetah-v5": 0.58096, "Hopper-v5": 0.835671, "Walker2d-v5": 0.871923, "Ant-v5": 0.5}
ACTIVATIONS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}


def zoo_settings(env_id: str, name: str = "zoo") -> dict:
    stem = "cleanrl" if name == "cleanrl" else env_id.split('-')[0].lower()
    path = REPO / "experiments" / "zoo" / f"ppo_{stem}.toml"
    if not path.exists():
        sys.exit(f"sb3_zoo.py: no zoo settings for {env_id} ({path} is missing); there are: "
                 + ", ".join(sorted(VF_COEF)))
    cfg = tomllib.loads(path.read_text())
    p, ppo = cfg["policy"], cfg["ppo"]
    if ppo["n_envs"] != 1 or p["hidden"] != ppo["vf_hidden"] or p["activation"] != ppo["vf_activation"]:
        sys.exit(f"sb3_zoo.py: {path} has settings this script does not map (n_envs != 1 or differing nets)")
    return dict(
        steps=cfg["env_steps"],
        anneal_lr=bool(ppo.get("anneal_lr", False)),
        ppo=dict(n_steps=ppo["min_steps"], batch_size=ppo["batch"], n_epochs=ppo["epochs"], learning_rate=ppo["lr"],
                 gamma=ppo["gamma"], gae_lambda=ppo["gae_lambda"], clip_range=ppo["clip"], ent_coef=ppo["ent_coef"],
                 max_grad_norm=ppo["max_grad_norm"], vf_coef=0.5 if name == "cleanrl" else VF_COEF[env_id],
                 clip_range_vf=ppo.get("vf_clip") or None,
                 policy_kwargs=dict(log_std_init=p["log_std_init"], ortho_init=p["ortho_init"],
                                    activation_fn=ACTIVATIONS[p["activation"]],
                                    net_arch=dict(pi=list(p["hidden"]), vf=list(ppo["vf_hidden"])))),
    )


def make_env(env_id: str, sim: str) -> gym.Env:
    return gym.make(env_id) if sim == "mujoco" else RebelEnv(env_id)


def evaluate(model, norm: VecNormalize, env_id: str, sim: str, episodes: int) -> dict:
    env = make_env(env_id, sim)
    returns, lengths = [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=10_000 + i)
        ret, n, done = 0.0, 0, False
        while not done:
            act, _ = model.predict(norm.normalize_obs(obs[None, :].astype(np.float32)), deterministic=True)
            obs, r, term, trunc, _ = env.step(np.clip(act[0], env.action_space.low, env.action_space.high))
            ret, n, done = ret + float(r), n + 1, term or trunc
        returns.append(ret)
        lengths.append(n)
    env.close()
    return dict(return_mean=float(np.mean(returns)), return_std=float(np.std(returns)), returns=returns, lengths=lengths)


def summary(out: Path) -> None:
    """A markdown table of every finished run under OUT: one row per run, then mean ± sd per (env, trained on)."""
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("*/result.json"))]
    if not runs:
        sys.exit(f"sb3_zoo.py: no finished runs (*/result.json) under {out}")
    for r in runs:
        r.setdefault("settings_name", "zoo")  # runs from before --settings
    print("| env | settings | trained on | seed | in MuJoCo: return (mean length) | in ours: return (mean length) | MuJoCo / ours | train time (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in runs:
        m, o = r["eval"]["mujoco"], r["eval"]["rebel"]
        print(f"| {r['env']} | {r['settings_name']} | {r['trained_on']} | {r['seed']} | {m['return_mean']:.1f} ± {m['return_std']:.1f} "
              f"({np.mean(m['lengths']):.0f}) | {o['return_mean']:.1f} ± {o['return_std']:.1f} ({np.mean(o['lengths']):.0f}) "
              f"| {m['return_mean'] / o['return_mean']:.2f} | {r['train_seconds']:.0f} |")
    print()
    print("| env | settings | trained on | seeds | in MuJoCo, mean ± sd over seeds | in ours, mean ± sd over seeds |")
    print("|---|---|---|---|---|---|")
    groups = sorted({(r["env"], r["settings_name"], r["trained_on"]) for r in runs})
    for env, name, sim in groups:
        g = [r for r in runs if (r["env"], r["settings_name"], r["trained_on"]) == (env, name, sim)]
        # one seed has no spread over seeds: its mean alone
        cell = lambda where: (lambda v: f"{np.mean(v):.1f} ± {np.std(v, ddof=1):.1f}" if len(v) > 1 else f"{v[0]:.1f} (one seed)")(
            [r["eval"][where]["return_mean"] for r in g])
        print(f"| {env} | {name} | {sim} | {', '.join(str(r['seed']) for r in g)} | {cell('mujoco')} | {cell('rebel')} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--env", help="HalfCheetah-v5, Hopper-v5, Walker2d-v5 or Ant-v5")
    ap.add_argument("--sim", choices=["mujoco", "rebel"], help="train on MuJoCo or on ours")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, help="env steps (default: the zoo's, 1M)")
    ap.add_argument("--eval-episodes", type=int, default=10)
    ap.add_argument("--settings", choices=["zoo", "cleanrl"], default="zoo",
                    help="the zoo's per-environment settings (default) or CleanRL's one set (experiments/zoo/ppo_cleanrl.toml)")
    ap.add_argument("--summary", action="store_true", help="print the tables of the finished runs under --out, and stop")
    a = ap.parse_args()
    if a.summary:
        return summary(a.out)
    if a.env is None or a.sim is None or a.seed is None:
        ap.error("--env, --sim and --seed are needed to train (or --summary)")
    if a.env not in VF_COEF:
        sys.exit(f"sb3_zoo.py: unknown --env {a.env}; use one of {', '.join(sorted(VF_COEF))}")
    s = zoo_settings(a.env, a.settings)
    steps = a.steps or s["steps"]
    out = a.out / (f"{a.env}__{a.sim}__{a.seed}" + ("__cleanrl" if a.settings == "cleanrl" else ""))
    if (out / "result.json").exists():
        print(f"{out}/result.json exists: skipped", file=sys.stderr)
        return
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    venv = DummyVecEnv([lambda: Monitor(make_env(a.env, a.sim), str(out / "monitor.csv"))])
    venv.seed(a.seed)
    norm = VecNormalize(venv, gamma=s["ppo"]["gamma"])
    kwargs = dict(s["ppo"])
    if s["anneal_lr"]:  # SB3's schedule gets the share of the budget left, as the PPO here decays its rate
        kwargs["learning_rate"] = lambda left, lr=kwargs["learning_rate"]: lr * left
    model = PPO("MlpPolicy", norm, seed=a.seed, device="cpu", verbose=0, **kwargs)
    t0 = time.time()
    model.learn(total_timesteps=steps)
    train_s = time.time() - t0
    model.save(out / "model.zip")
    norm.save(str(out / "vecnormalize.pkl"))
    norm.training = False
    result = dict(env=a.env, trained_on=a.sim, seed=a.seed, settings_name=a.settings, env_steps=steps, train_seconds=train_s,
                  settings={**{k: v for k, v in s["ppo"].items() if k != "policy_kwargs"}, "anneal_lr": s["anneal_lr"]},
                  eval={sim: evaluate(model, norm, a.env, sim, a.eval_episodes) for sim in ("mujoco", "rebel")})
    venv.close()
    tmp = out / "result.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, out / "result.json")
    e = result["eval"]
    print(json.dumps(dict(env=a.env, trained_on=a.sim, seed=a.seed, train_seconds=round(train_s),
                          mujoco=round(e["mujoco"]["return_mean"], 1), rebel=round(e["rebel"]["return_mean"], 1))))


if __name__ == "__main__":
    main()
