#!/usr/bin/env python3
"""How much of its return a policy trained here keeps in the real MuJoCo, with a 95 % interval.

    ~/.cache/rebel-rs/mujoco-venv/bin/python scripts/transfer.py CHECKPOINT [--episodes 100] [--rebel PATH] [--integrator Euler]

Runs the checkpoint's mean action for EPISODES episodes here (`rebel eval --checkpoint`, the run's own evaluation
seeds) and in MuJoCo (`scripts/policy_in_mujoco.py`, Gymnasium's seeds 1000000, 1000001, ...), then prints one JSON
line: both means and standard deviations, the mean episode length in MuJoCo (a policy that falls there ends its
episodes early; `rebel eval` gives no lengths), and the ratio of the means (MuJoCo / here) with a percentile bootstrap interval (10,000 resamples of each simulator's
episodes, independently; seed 0). The episodes of the two simulators start from different states, so the ratio
compares the two distributions of returns, not episode by episode.

The 10 episodes of a run's own evaluation give a ratio whose interval can be wide where a policy falls in some
episodes; this measures it with as many as asked.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def last_json(text, what):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    sys.exit(f"transfer.py: {what} printed no JSON line")


def run(cmd, what):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"transfer.py: {what} failed ({' '.join(cmd)}):\n{p.stderr.strip()}")
    return last_json(p.stdout, what)


def ratio_interval(here, there, resamples=10_000, seed=0):
    """Percentile bootstrap 95 % interval of mean(there) / mean(here), each simulator's episodes resampled alone."""
    rng = np.random.default_rng(seed)
    here, there = np.asarray(here, float), np.asarray(there, float)
    h = here[rng.integers(0, len(here), (resamples, len(here)))].mean(axis=1)
    t = there[rng.integers(0, len(there), (resamples, len(there)))].mean(axis=1)
    ok = h > 0
    if ok.mean() < 0.975:
        return None  # the mean here is not clearly positive: a ratio means nothing
    r = t[ok] / h[ok]
    return [float(np.percentile(r, 2.5)), float(np.percentile(r, 97.5))]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--rebel", default=os.path.join(HERE, "..", "target", "release", "rebel"),
                   help="the rebel binary (default: target/release/rebel; build it with cargo build --release)")
    p.add_argument("--integrator", choices=["Euler", "RK4", "implicit", "implicitfast"],
                   help="MuJoCo's side steps with this integrator instead of the model's (policy_in_mujoco.py --integrator)")
    a = p.parse_args()
    if a.episodes < 2:
        sys.exit("transfer.py: --episodes must be at least 2")
    if not os.path.isfile(a.checkpoint):
        sys.exit(f"transfer.py: no checkpoint at {a.checkpoint}")
    if not os.access(a.rebel, os.X_OK):
        sys.exit(f"transfer.py: no rebel binary at {a.rebel}; build it with cargo build --release, or give --rebel PATH")
    here = run([a.rebel, "eval", "--checkpoint", a.checkpoint, "--episodes", str(a.episodes)], "rebel eval")
    integrator = ["--integrator", a.integrator] if a.integrator else []
    there = run([sys.executable, os.path.join(HERE, "policy_in_mujoco.py"), a.checkpoint, "--episodes", str(a.episodes)] + integrator,
                "policy_in_mujoco.py")
    rh, rt = here["returns"], there["returns"]
    out = {
        "checkpoint": a.checkpoint, "env": there["env"], "episodes": a.episodes, "mujoco_integrator": a.integrator or "the model's",
        "here_mean": float(np.mean(rh)), "here_std": float(np.std(rh)),
        "mujoco_mean": float(np.mean(rt)), "mujoco_std": float(np.std(rt)),
        "mujoco_mean_length": float(np.mean(there["lengths"])),
        "ratio": float(np.mean(rt) / np.mean(rh)) if np.mean(rh) > 0 else None,
        "ratio_95ci": ratio_interval(rh, rt),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
