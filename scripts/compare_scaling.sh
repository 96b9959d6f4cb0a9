#!/usr/bin/env bash
# `compare` on one process (parallel=1), on two MPI ranks (parallel=1 each) and on one process with
# parallel=2, side by side: prints the wall times and whether the results agree. Needs a release
# build with the MPI feature: cargo build --release --features mpi
set -euo pipefail
bin="$(cd "$(dirname "$0")/.." && pwd)/target/release/swimmer"
args=(--seeds 2 --env-opt max_episode_steps=200 --set labels=100 --set segment_len=25 --set reward_model.epochs=5
      --set train.env_steps=20000 --set train.rebel.branch_len=50 --set train.rebel.tail_len=50
      --set train.reinforce.branch_len=50 --set train.reinforce.tail_len=50 --set train.rloo.branch_len=50
      --set train.rloo.tail_len=50 --set train.dpo.iterations=20 --set train.eval.episodes=4
      --set protocol.tune_configs=1 --set 'protocol.tune_seeds=[101]' --set protocol.tune_env_steps=0)
out="$(mktemp -d)"
run() { local name="$1"; shift; local t0; t0=$(date +%s.%N); "$@" > "$out/$name.log" 2>&1; echo "$name: $(echo "$(date +%s.%N) - $t0" | bc) s"; }
run "one process, parallel=1" "$bin" compare --out "$out/s1" "${args[@]}" --set parallel=1
run "mpirun -np 2, parallel=1 per rank" mpirun --allow-run-as-root --oversubscribe -np 2 "$bin" compare --out "$out/s2" "${args[@]}" --set parallel=1
run "one process, parallel=2" "$bin" compare --out "$out/s3" "${args[@]}" --set parallel=2
python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
a, b, c = (json.load(open(f"{d}/{s}/results.json")) for s in ("s1", "s2", "s3"))
a, b, c = (x["rows"] for x in (a, b, c))
timed = {"wall_time_s", "learner_s_per_1k_steps", "learner_mem_mb", "peak_rss_mb"}
diff = lambda x, y: sum(1 for r, q in zip(x, y) for k in r if k not in timed and r[k] != q.get(k))
print("untimed fields differing from one process: two ranks", diff(a, b), ", parallel=2", diff(a, c))
PY
