#!/usr/bin/env bash
# Data-parallel `train` on one process against two MPI ranks, and against one process stepping its environments
# on two threads: wall time, env steps per second and the ratio to one process, and each run's final eval return.
# Usage: [ALGO=rebel|ppo] bash scripts/train_scaling.sh [ENV_STEPS] (default 300000). REBEL runs 8 start states
# per iteration (rebel.groups=8), PPO its default 4 episodes (ppo.n_envs=4, two per rank).
# Needs a release build with the MPI feature: cargo build --release --features mpi
set -euo pipefail
steps="${1:-300000}"
bin="$(cd "$(dirname "$0")/.." && pwd)/target/release/swimmer"
[[ -x "$bin" ]] || { echo "build first: cargo build --release --features mpi" >&2; exit 1; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
algo="${ALGO:-rebel}"
case "$algo" in
    rebel) share=(--set rebel.groups=8) ;;
    ppo) share=(--set ppo.n_envs=4) ;;
    *) echo "ALGO must be rebel or ppo, got '$algo'" >&2; exit 2 ;;
esac
common=(train --quiet --algo "$algo" --env-steps "$steps" --set learner_threads=1 "${share[@]}" --set eval.every_iters=1000)
run() {
    local name="$1"; shift
    local t0 t1
    t0=$(date +%s.%N)
    "$@" > "$out/$name.out" 2> "$out/$name.err" || { cat "$out/$name.err" >&2; exit 1; }
    t1=$(date +%s.%N)
    echo "$name $(echo "$t1 - $t0" | bc)" >> "$out/times"
}
run one "$bin" "${common[@]}" --set threads=1 --run-dir "$out/one"
run mpi2 mpirun --allow-run-as-root --oversubscribe -np 2 "$bin" "${common[@]}" --set threads=1 --run-dir "$out/mpi2"
run threads2 "$bin" "${common[@]}" --set threads=2 --run-dir "$out/threads2"
python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
t = dict(l.split() for l in open(f"{d}/times"))
names = {"one": "one process, 1 env thread", "mpi2": "mpirun -np 2, 1 env thread per rank", "threads2": "one process, 2 env threads"}
print("| launch | wall time | env steps/s | ratio | final eval return |")
print("|---|---|---|---|---|")
for k in ("one", "mpi2", "threads2"):
    s = json.loads(open(f"{d}/{k}.out").read().strip().splitlines()[-1])
    w = float(t[k])
    print(f"| {names[k]} | {w:.1f} s | {s['env_steps'] / w:,.0f} | {float(t['one']) / w:.2f}x | {s['eval_true_return_mean']:.1f} |")
PY
