#!/usr/bin/env bash
# Active querying against the fixed set of labels (issue 13): the preference experiment with the
# Bradley–Terry teacher for each querying mode (fixed, uniform, disagreement, entropy) and label
# budget (200, 500, 1000 labels in all; active modes in 4 rounds, candidate pools of 10× the labels
# asked for), on 5 seeds (label, reward-net and training seed all = s), 1M REBEL env steps each.
# Nothing was tuned: the rounds and the pool are set before any run. The cells keep the table's conditions, the
# default run's before session 12: the Swimmer's faithful solver, an evaluation every 5 iterations, one learner
# thread (the default run now uses the fast solver, evaluates every 10 and learns on two threads).
#
#   bash scripts/query_table.sh [OUT] [JOBS]      (after `cargo build --release`)
#
# LABELS="1000" and MODES="uniform entropy" (environment) limit the cells run; the table is
# always built from every cell found in OUT.
#
# Resumable: a finished cell (its experiment.json) is skipped, a killed one continues where it
# stopped (`experiment` reuses its rounds). Cells run JOBS at a time (default 2), each on one env
# thread. At the end, scripts/query_table.py writes OUT/results.json, OUT/table.md and the curves.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/query_table}
JOBS=${2:-2}
BIN=${SWIMMER_BIN:-$PWD/target/release/swimmer}
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
mkdir -p "$OUT"
cells=()
for labels in ${LABELS:-200 500 1000}; do
  for mode in ${MODES:-fixed uniform disagreement entropy}; do
    for seed in 1 2 3 4 5; do
      cells+=("$mode $labels $seed")
    done
  done
done
run_cell() {
  local mode=$1 labels=$2 seed=$3
  local dir="$OUT/$mode-$labels/seed$seed"
  [ -f "$dir/experiment.json" ] && return 0
  local q=()
  [ "$mode" != fixed ] && q=(--query "$mode" --rounds 4)
  mkdir -p "$dir"
  "$BIN" experiment --quiet --out "$dir" "${q[@]}" --set labels="$labels" --set label_seed="$seed" \
    --set reward_model.seed="$seed" --set train.seed="$seed" --set train.threads=1 \
    --env-opt solver_iterations=4 --env-opt limit_projection=false --set train.eval.every_iters=5 --set train.learner_threads=1 \
    > "$dir/stdout.txt" 2> "$dir/stderr.txt" || { echo "FAILED: $mode $labels $seed (see $dir/stderr.txt)" >&2; return 1; }
  echo "$(date +%H:%M:%S) done $mode $labels seed $seed: $(grep 'after REBEL' "$dir/stdout.txt")"
}
export -f run_cell
export OUT BIN
printf '%s\n' "${cells[@]}" | xargs -P "$JOBS" -L 1 bash -c 'run_cell $0 $1 $2' || echo "some cells failed; rerun the same command to retry them" >&2
python3 scripts/query_table.py "$OUT"
