#!/usr/bin/env bash
# The default run's wall time and result, as shipped (the Swimmer's fast solver, two learner threads) and on the
# faithful solver with one learner thread (the default run before issue 15's last change), side by side.
#
#   bash scripts/default_run.sh [OUT]        (after `cargo build --release`; OUT defaults to runs/default_run)
#
# Cells, run one at a time with the two settings alternated so that both see the same machine:
#   * `default`: the default run's configuration (`swimmer experiment --quiet --out DIR`, what `cargo run --release
#     --bin swimmer` runs, without the progress bar), twice per setting (`default-a`, `default-b`);
#   * seeds 2-5: the same with the label, reward-net and training seeds all = s (`--set label_seed=s --set
#     reward_model.seed=s --set train.seed=s`): the seed spread the result is compared with.
# Each cell records its wall time (the run's own), peak RSS (/usr/bin/time -v when present) and final true return
# (mean action, 10 evaluation start states). When the MuJoCo venv of scripts/bench_vs_mujoco.sh exists
# (${REBEL_CACHE:-~/.cache/rebel-rs}/mujoco-venv), the final policy also runs 10 episodes in the real MuJoCo
# Swimmer-v5 (scripts/policy_in_mujoco.py; its mean return is recorded): the closed-loop transfer of a policy
# trained on each solver.
# Resumable: a cell whose report exists is not run again. Prints a table; the last stdout line is JSON.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$repo/target/release/swimmer"
[[ -x "$bin" ]] || { echo "default_run.sh: build first: cargo build --release" >&2; exit 1; }
out="$(realpath -m "${1:-runs/default_run}")"
mkdir -p "$out"
py="${REBEL_CACHE:-$HOME/.cache/rebel-rs}/mujoco-venv/bin/python"
[[ -x "$py" ]] || { echo "default_run.sh: no MuJoCo venv at $py (scripts/bench_vs_mujoco.sh makes it): transfer not measured" >&2; py=""; }
timer=()
[[ -x /usr/bin/time ]] && timer=(/usr/bin/time -v)

faithful=(--env-opt solver_iterations=4 --env-opt limit_projection=false --set train.learner_threads=1)
cells=(default-a default-b 2 3 4 5)

run_cell() { # setting cell
    local setting=$1 cell=$2 dir="$out/$1/$2"
    [[ -s "$dir/report.json" ]] && return 0
    rm -rf "$dir" && mkdir -p "$dir"
    local args=(experiment --quiet --out "$dir/exp")
    [[ $setting == faithful ]] && args+=("${faithful[@]}")
    [[ $cell == default-* ]] || args+=(--set "label_seed=$cell" --set "reward_model.seed=$cell" --set "train.seed=$cell")
    # the default run from another folder, as a user runs it
    (cd "$dir" && "${timer[@]}" "$bin" "${args[@]}" > stdout.txt 2> stderr.txt) \
        || { echo "default_run.sh: $setting $cell failed (see $dir/stderr.txt)" >&2; exit 1; }
    local rss=null mujoco=null
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$dir/stderr.txt")
    [[ -n $rss ]] || rss=null
    if [[ -n $py ]]; then
        "$py" "$repo/scripts/policy_in_mujoco.py" "$dir/exp/rebel/checkpoint.safetensors" --episodes 10 > "$dir/mujoco.json"
        mujoco=$(tail -1 "$dir/mujoco.json" | python3 -c 'import json, sys; print(json.loads(sys.stdin.read())["return_mean"])')
    fi
    tail -1 "$dir/stdout.txt" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
print(json.dumps({"setting": sys.argv[1], "cell": sys.argv[2], "wall_time_s": r["wall_time_s"],
                  "return": r["rebel"]["eval_true_return_mean"], "peak_rss_mib": json.loads(sys.argv[3]),
                  "mujoco": json.loads(sys.argv[4])}))' "$setting" "$cell" "$rss" "$mujoco" > "$dir/report.json"
    echo "$(date +%H:%M:%S) $setting $cell: $(cat "$dir/report.json")" >&2
}

for cell in "${cells[@]}"; do
    run_cell shipped "$cell"
    run_cell faithful "$cell"
done

python3 - "$out" <<'EOF'
import glob, json, math, os, sys
out = sys.argv[1]
rows = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(out, "*", "*", "report.json")))]
def stats(xs):
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd
summary = {}
print("| setting | default run wall time (s) | default run return | seeds 2-5 return | mean ± sd (default, 2-5) | wall time, all cells (s) | peak RSS (MiB) | MuJoCo / here, all cells |")
print("|---|---|---|---|---|---|---|---|")
for setting in ("shipped", "faithful"):
    rs = [r for r in rows if r["setting"] == setting]
    d = [r for r in rs if r["cell"].startswith("default")]
    s = sorted((r for r in rs if not r["cell"].startswith("default")), key=lambda r: int(r["cell"]))
    rets = [d[0]["return"]] + [r["return"] for r in s] if d else [r["return"] for r in s]
    m, sd = stats(rets) if rets else (float("nan"), float("nan"))
    ratios = [r["mujoco"] / r["return"] for r in rs if r["mujoco"] is not None]
    rss = [r["peak_rss_mib"] for r in rs if r["peak_rss_mib"] is not None]
    f1 = lambda xs, k: ", ".join(f"{x[k]:.1f}" for x in xs)
    walls = [r["wall_time_s"] for r in rs]
    print(f"| {setting} | {f1(d, 'wall_time_s')} | {f1(d, 'return')} | {f1(s, 'return')} | {m:.1f} ± {sd:.1f} | "
          f"{min(walls):.1f}–{max(walls):.1f} | {', '.join(str(x) for x in rss)} | "
          f"{', '.join(f'{x:.2f}' for x in ratios) or '-'} |")
    summary[setting] = {"cells": rs, "return_mean": m, "return_sd": sd}
print(json.dumps(summary))
EOF
