#!/usr/bin/env python3
"""Per seed of a comparison's report runs: the final eval return and how the policy's noise moved.

    python3 scripts/entropy_vs_return.py COMPARE_DIR [ROW ...]      (default rows: every REBEL row)

For every report run of each row (COMPARE_DIR/report/ROW__sSEED): the final mean-action eval return, the
policy entropy after the first and the last update (`losses/entropy`, a Gaussian's entropy: it moves
only with log_std), its change, and the largest eval return on the way; then, per row, the Spearman
rank correlation of the entropy change with the final return, and the entropy change of the runs below
and above 250. Used for issue 9, item 4: do the seeds that fail widen their noise?
"""
import glob
import json
import os
import sys


def ranks(xs):
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    r = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra) ** 0.5
    vb = sum((y - mb) ** 2 for y in rb) ** 0.5
    return cov / (va * vb) if va > 0 and vb > 0 else float("nan")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    report = os.path.join(root, "report")
    if not os.path.isdir(report):
        sys.exit(f"{report}: no report folder (run `swimmer compare` to its report phase first)")
    rows = sys.argv[2:] or sorted({os.path.basename(d).rsplit("__s", 1)[0] for d in glob.glob(os.path.join(report, "rebel*__s*"))})
    for row in rows:
        runs = []
        for d in sorted(glob.glob(os.path.join(report, f"{row}__s*")), key=lambda p: int(p.rsplit("__s", 1)[1])):
            if not os.path.isfile(os.path.join(d, "summary.json")):
                continue
            metrics = [json.loads(line) for line in open(os.path.join(d, "metrics.jsonl"))]
            ent = [m["losses/entropy"] for m in metrics if "losses/entropy" in m]
            evals = [m["eval/true_return"] for m in metrics if "eval/true_return" in m]
            final = json.load(open(os.path.join(d, "summary.json")))["eval_true_return_mean"]
            runs.append((int(d.rsplit("__s", 1)[1]), final, ent[0], ent[-1], max(evals)))
        if not runs:
            print(f"{row}: no finished report runs")
            continue
        print(f"\n{row}\n| seed | final return | entropy first → last | change | best eval on the way |\n|---|---:|---:|---:|---:|")
        for s, f, e0, e1, best in runs:
            print(f"| {s} | {f:.1f} | {e0:.2f} → {e1:.2f} | {e1 - e0:+.2f} | {best:.1f} |")
        change = [r[3] - r[2] for r in runs]
        finals = [r[1] for r in runs]
        low = [c for c, f in zip(change, finals) if f < 250]
        high = [c for c, f in zip(change, finals) if f >= 250]
        mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")
        print(f"Spearman(entropy change, final return) = {spearman(change, finals):.2f} over {len(runs)} seeds; "
              f"mean entropy change {mean(low):+.2f} for the {len(low)} below 250, {mean(high):+.2f} for the {len(high)} at or above")


if __name__ == "__main__":
    main()
