#!/usr/bin/env python3
"""How a planar runner topples with zero action from the exact rest pose, here and in the real MuJoCo.

    python3 scripts/zero_action_topple.py [--env Hopper-v5] [--env-opt KEY=VALUE ...]   (after cargo build --release)

Replays zero actions with `rebel --env ID replay` (the exact rest pose, no reset noise) until the episode
terminates, and compares the torso angle (qpos2) and the foot or first leg joint's angle (the last qpos) at every
20th step with MuJoCo's reference rollout of the same sequence (envs/tests/data/mujoco/ID_a_zeros.csv, recorded by
scripts/record_mujoco_rollouts.py, 140 steps to its termination for Hopper-v5). Prints the termination step of
each, the angles, and the growth of the torso angle over the reference's last 40 steps. Standard library only.
"""
import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCES = {"Hopper-v5": ("hopper_v5_a_zeros.csv", 3), "Walker2d-v5": ("walker2d_v5_a_zeros.csv", 6)}


def replay(binary, env, opts, rows, act_dim, tmp):
    actions, out = os.path.join(tmp, "zeros.csv"), os.path.join(tmp, "states.csv")
    with open(actions, "w") as f:
        f.write(",".join(f"action{i}" for i in range(act_dim)) + "\n")
        f.writelines(",".join("0" for _ in range(act_dim)) + "\n" for _ in range(rows))
    args = [binary, "--env", env] + [a for kv in opts for a in ("--env-opt", kv)] + ["replay", "--actions", actions, "--output", out]
    p = subprocess.run(args, capture_output=True, text=True)
    ended = re.search(r"episode ended at step (\d+)", p.stderr)
    if ended:
        return int(ended.group(1)), None
    if p.returncode != 0:
        sys.exit(f"zero_action_topple.py: {' '.join(args)} failed: {p.stderr.strip()}")
    with open(out) as f:
        return None, {int(r["step"]): r for r in csv.DictReader(f)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="Hopper-v5", choices=sorted(REFERENCES))
    ap.add_argument("--env-opt", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--binary", default=os.path.join(REPO, "target", "release", "rebel"))
    a = ap.parse_args()
    if not os.access(a.binary, os.X_OK):
        sys.exit(f"zero_action_topple.py: no {a.binary}; build it first: cargo build --release --bin rebel")
    name, act_dim = REFERENCES[a.env]
    with open(os.path.join(REPO, "envs", "tests", "data", "mujoco", name)) as f:
        mj = {int(r["step"]): r for r in csv.DictReader(f)}
    ended = [s for s, r in mj.items() if r["terminated"] == "1"]
    if not ended:
        sys.exit(f"zero_action_topple.py: the reference {name} does not end in a termination")
    mj_end = min(ended)
    last_q = f"qpos{max(int(k[4:]) for k in mj[0] if k.startswith('qpos'))}"
    with tempfile.TemporaryDirectory() as tmp:
        end, _ = replay(a.binary, a.env, a.env_opt, 1000, act_dim, tmp)
        if end is None:
            sys.exit("zero_action_topple.py: ours did not terminate within 1000 steps")
        _, ours = replay(a.binary, a.env, a.env_opt, end - 1, act_dim, tmp)
    print(f"{' '.join([a.env] + a.env_opt)}: terminates at step {mj_end} in MuJoCo, {end} here")
    print(f"{'step':>5} {'torso MuJoCo':>13} {'torso ours':>13} {last_q + ' MuJoCo':>14} {last_q + ' ours':>13}")
    for s in range(20, max(mj_end, end - 1) + 1, 20):
        m, o = mj.get(s), ours.get(s)
        cell = lambda r, k: f"{float(r[k]):+.3e}" if r else "-"
        print(f"{s:>5} {cell(m, 'qpos2'):>13} {cell(o, 'qpos2'):>13} {cell(m, last_q):>14} {cell(o, last_q):>13}")
    s1 = (min(mj_end, max(ours)) // 20) * 20  # the last 20th step both reached
    s0 = s1 - 40
    growth = lambda t: float(t[s1]["qpos2"]) / float(t[s0]["qpos2"])
    print(f"torso angle growth, steps {s0}-{s1}: MuJoCo x{growth(mj):.2f}, ours x{growth(ours):.2f}")


if __name__ == "__main__":
    main()
