#!/usr/bin/env python3
"""Aggregates scripts/query_table.sh's runs: OUT/results.json, OUT/table.md and the learning curves
OUT/curves-{labels}.png (drawn by `swimmer curves`). Cells not (yet) finished are listed as missing,
never filled in. The interval is a 95 % percentile bootstrap of the mean over seeds (10,000
resamples, fixed seed)."""
import json
import os
import random
import subprocess
import sys

MODES = ["fixed", "uniform", "disagreement", "entropy"]
BUDGETS = [200, 500, 1000]
SEEDS = [1, 2, 3, 4, 5]
GOAL = 340.0


def simulated(path):
    """The env steps simulated to make a preference dataset's pieces (its header's meta)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    return json.loads(header["__metadata__"]["meta"])["simulated_env_steps"]


def boot_ci(x, reps=10000, seed=7):
    if len(x) < 2:
        return (float("nan"), float("nan"))
    rng = random.Random(seed)
    means = sorted(sum(rng.choice(x) for _ in x) / len(x) for _ in range(reps))
    return (means[int(0.025 * reps)], means[int(0.975 * reps) - 1])


def main(out):
    swimmer = os.environ.get("SWIMMER_BIN", os.path.join(os.path.dirname(__file__), "..", "target", "release", "swimmer"))
    rows, missing = [], []
    for labels in BUDGETS:
        for mode in MODES:
            finals, cand, wall, dirs, per_seed = [], [], [], [], {}
            for s in SEEDS:
                d = os.path.join(out, f"{mode}-{labels}", f"seed{s}")
                p = os.path.join(d, "experiment.json")
                if not os.path.exists(p):
                    missing.append(f"{mode}-{labels} seed {s}")
                    continue
                e = json.load(open(p))
                f = e["rebel"]["eval_true_return_mean"]
                finals.append(f)
                per_seed[s] = round(f, 1)
                rounds = e.get("rounds", [])
                cand.append(sum(r["candidate_env_steps"] for r in rounds) if rounds else simulated(os.path.join(d, "prefs.safetensors")))
                wall.append(e["wall_time_s"])
                dirs.append(d)
            if not finals:
                continue
            lo, hi = boot_ci(finals)
            rows.append({
                "mode": mode, "labels": labels, "seeds": len(finals),
                "mean": sum(finals) / len(finals), "ci95": [lo, hi],
                "min": min(finals), "max": max(finals),
                "reach_340": sum(f >= GOAL for f in finals),
                "per_seed": per_seed,
                "label_env_steps_mean": sum(cand) / len(cand),
                "wall_time_s_mean": sum(wall) / len(wall),
                "dirs": dirs,
            })
    json.dump({"rows": rows, "missing": missing}, open(os.path.join(out, "results.json"), "w"), indent=1)
    lines = [
        "| labels | querying | seeds | final true return, mean [95 % CI] | min – max | seeds ≥ 340 | per seed (1–5) | env steps simulated for the labels | wall time (s) |",
        "|---:|---|---:|---|---|---:|---|---:|---:|",
    ]
    for r in rows:
        ps = ", ".join(f"{r['per_seed'].get(s, '–')}" for s in SEEDS)
        lines.append(
            f"| {r['labels']} | {r['mode']} | {r['seeds']} | {r['mean']:.1f} [{r['ci95'][0]:.1f}, {r['ci95'][1]:.1f}] "
            f"| {r['min']:.1f} – {r['max']:.1f} | {r['reach_340']}/{r['seeds']} | {ps} | {r['label_env_steps_mean']:,.0f} "
            f"| {r['wall_time_s_mean']:.0f} |"
        )
    if missing:
        lines.append("")
        lines.append("Not run (yet): " + "; ".join(missing))
    open(os.path.join(out, "table.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))
    for labels in BUDGETS:
        series = [f"{r['mode']}={','.join(r['dirs'])}" for r in rows if r["labels"] == labels]
        if not series:
            continue
        cmd = [swimmer, "curves", "--out", os.path.join(out, f"curves-{labels}.png"),
               "--title", f"REBEL on the reward net, {labels} labels (mean and 95% band over seeds)"]
        for s in series:
            cmd += ["--series", s]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/query_table")
