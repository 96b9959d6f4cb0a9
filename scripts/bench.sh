#!/usr/bin/env bash
# The speed benchmark (issue 15): costs as ratios against baselines measured in the same run.
#   bash scripts/bench.sh [ENV_STEPS_PER_TRAIN_RUN]      (default 100000; needs a release build)
# 1. env step: one Swimmer-v5, random actions, one thread (the baseline of 2 and 3);
# 2. the vectorised env, 8 envs: 2 threads against 1 thread;
# 3. a rollout step (REBEL's collection: the policy's actions, branches, snapshots) against a bare
#    vectorised-env step of the same 8 envs on one thread;
# 4. the learner: REBEL's seconds per 1,000 env steps and its memory against PPO's, both `train --reward
#    true` on one thread; memory two ways: the most RSS rose in one learner phase (batch tensors, scoring,
#    update) above its level just before it, and the whole run's peak RSS above the level once libtorch,
#    the envs and the nets are up (rollout buffers and snapshots included); and the most bytes the learner's
#    allocations held at once in one phase above their level before it (jemalloc's per-thread count); and
#    REBEL again with each minibatch's gradient in 4 pieces (`rebel.grad_chunks = 4`).
# REBEL_BIN_DIR=DIR takes swimmer and rebel from DIR (e.g. an older build) instead of target/release.
# Single-threaded parts run pinned to CPU 1 (`taskset -c 1`); run it with nothing else on the machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${REBEL_BIN_DIR:-$root/target/release}"   # REBEL_BIN_DIR: the binaries of another build, to compare builds
steps="${1:-100000}"
[[ -x "$bin/swimmer" && -x "$bin/rebel" ]] || { echo "build first: cargo build --release" >&2; exit 2; }
out="$(mktemp -d)"
pin1=(taskset -c 1)
command -v taskset >/dev/null || pin1=()
last_json() { tail -n 1 "$1"; }
"${pin1[@]}" "$bin/rebel" --env Swimmer-v5 bench --steps 50000 --envs 1 --threads 1 > "$out/env1.txt"
"${pin1[@]}" "$bin/rebel" --env Swimmer-v5 bench --steps 200000 --envs 8 --threads 1 > "$out/vec1.txt"
"$bin/rebel" --env Swimmer-v5 bench --steps 200000 --envs 8 --threads 2 > "$out/vec2.txt"
for algo in rebel ppo; do
    REBEL_LEARNER_MEMORY=1 "${pin1[@]}" "$bin/swimmer" train --algo "$algo" --reward true --env-steps "$steps" --seed 1 --set threads=1 \
        --set eval.every_iters=1000000 --run-dir "$out/$algo" --quiet > "$out/$algo.txt" 2>&1
done
# REBEL with each minibatch's gradient in 4 pieces (`rebel.grad_chunks`): its memory, and its time
REBEL_LEARNER_MEMORY=1 "${pin1[@]}" "$bin/swimmer" train --algo rebel --reward true --env-steps "$steps" --seed 1 --set threads=1 \
    --set rebel.grad_chunks=4 --set eval.every_iters=1000000 --run-dir "$out/rebel4" --quiet > "$out/rebel4.txt" 2>&1
python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
last = lambda f: json.loads(open(f"{d}/{f}").read().strip().splitlines()[-1])
env1, vec1, vec2 = last("env1.txt"), last("vec1.txt"), last("vec2.txt")
rebel, ppo = json.load(open(f"{d}/rebel/summary.json")), json.load(open(f"{d}/ppo/summary.json"))
rebel4 = json.load(open(f"{d}/rebel4/summary.json"))
# REBEL's collection cost per env step: each iteration's wall time less its learner time
coll = []
for line in open(f"{d}/rebel/metrics.jsonl"):
    m = json.loads(line)
    if "charts/env_steps_per_sec" in m:
        coll.append(1.0 / m["charts/env_steps_per_sec"] - m["charts/learner_s_per_iter"] / (rebel["env_steps"] / rebel["iterations"]))
rollout_s = sum(coll) / len(coll)
us = lambda sps: 1e6 / sps
per1k = lambda s: 1000.0 * s["learner_s_total"] / s["env_steps"]
rows = [
    ("env step, 1 Swimmer, 1 thread (baseline)", f"{us(env1['env_steps_per_sec']):.1f} µs", "1.00"),
    ("vectorised env, 8 envs, 1 thread (per env step)", f"{us(vec1['env_steps_per_sec']):.1f} µs", f"{us(vec1['env_steps_per_sec']) / us(env1['env_steps_per_sec']):.2f}"),
    ("vectorised env, 8 envs, 2 threads: speed-up over 1 thread", f"{vec2['env_steps_per_sec']:.0f} steps/s", f"{vec2['env_steps_per_sec'] / vec1['env_steps_per_sec']:.2f}×"),
    ("REBEL rollout step (policy, branches, snapshots), per env step", f"{rollout_s * 1e6:.1f} µs", f"{rollout_s * 1e6 / us(vec1['env_steps_per_sec']):.2f} of the bare vectorised-env step"),
    ("PPO learner, s per 1,000 env steps (baseline)", f"{per1k(ppo):.4f} s", "1.00"),
    ("REBEL learner, s per 1,000 env steps", f"{per1k(rebel):.4f} s", f"{per1k(rebel) / per1k(ppo):.2f} of PPO's"),
    ("PPO learner memory, largest rise of RSS in any learner phase (the first holds libtorch's one-time setup)", f"{ppo['learner_update_mem_mb']:.1f} MiB", "1.00"),
    ("REBEL learner memory, largest rise of RSS in any learner phase (the first holds libtorch's one-time setup)", f"{rebel['learner_update_mem_mb']:.1f} MiB", f"{rebel['learner_update_mem_mb'] / ppo['learner_update_mem_mb']:.2f} of PPO's"),
    ("PPO learner memory, later phases (largest rise of RSS in one)", f"{ppo['learner_update_mem_later_mb']:.1f} MiB", "1.00"),
    ("REBEL learner memory, later phases (largest rise of RSS in one)", f"{rebel['learner_update_mem_later_mb']:.1f} MiB", f"{rebel['learner_update_mem_later_mb'] / ppo['learner_update_mem_later_mb']:.2f} of PPO's"),
    ("PPO learner memory, most bytes its allocations held in any learner phase (allocator's count)", f"{ppo['learner_update_alloc_mb']:.2f} MiB", "1.00"),
    ("REBEL learner memory, most bytes its allocations held in any learner phase (allocator's count)", f"{rebel['learner_update_alloc_mb']:.2f} MiB", f"{rebel['learner_update_alloc_mb'] / ppo['learner_update_alloc_mb']:.2f} of PPO's"),
    ("PPO learner memory, later phases (allocator's count)", f"{ppo['learner_update_alloc_later_mb']:.2f} MiB", "1.00"),
    ("REBEL learner memory, later phases (allocator's count)", f"{rebel['learner_update_alloc_later_mb']:.2f} MiB", f"{rebel['learner_update_alloc_later_mb'] / ppo['learner_update_alloc_later_mb']:.2f} of PPO's"),
    ("REBEL, grad_chunks = 4: learner, s per 1,000 env steps", f"{per1k(rebel4):.4f} s", f"{per1k(rebel4) / per1k(ppo):.2f} of PPO's"),
    ("REBEL, grad_chunks = 4: learner memory, any learner phase (allocator's count)", f"{rebel4['learner_update_alloc_mb']:.2f} MiB", f"{rebel4['learner_update_alloc_mb'] / ppo['learner_update_alloc_mb']:.2f} of PPO's"),
    ("REBEL, grad_chunks = 4: learner memory, later phases (allocator's count)", f"{rebel4['learner_update_alloc_later_mb']:.2f} MiB", f"{rebel4['learner_update_alloc_later_mb'] / ppo['learner_update_alloc_later_mb']:.2f} of PPO's"),
    ("PPO training memory (peak RSS above start)", f"{ppo['learner_mem_mb']:.1f} MiB", "1.00"),
    ("REBEL training memory (peak RSS above start)", f"{rebel['learner_mem_mb']:.1f} MiB", f"{rebel['learner_mem_mb'] / ppo['learner_mem_mb']:.2f} of PPO's"),
    ("peak RSS of the training process, REBEL / PPO", f"{rebel['peak_rss_mb']:.0f} / {ppo['peak_rss_mb']:.0f} MiB", ""),
]
print("| what | cost | ratio |\n|---|---:|---:|")
for r in rows:
    print(f"| {r[0]} | {r[1]} | {r[2]} |")
print(json.dumps({"env_step_us": us(env1["env_steps_per_sec"]), "vec_2_over_1_threads": vec2["env_steps_per_sec"] / vec1["env_steps_per_sec"],
                  "rebel_rollout_us": rollout_s * 1e6, "rebel_learner_s_per_1k": per1k(rebel), "ppo_learner_s_per_1k": per1k(ppo),
                  "rebel_learner_update_mem_mb": rebel["learner_update_mem_mb"], "ppo_learner_update_mem_mb": ppo["learner_update_mem_mb"],
                  "rebel_learner_update_mem_later_mb": rebel["learner_update_mem_later_mb"], "ppo_learner_update_mem_later_mb": ppo["learner_update_mem_later_mb"],
                  "rebel_learner_update_alloc_mb": rebel["learner_update_alloc_mb"], "ppo_learner_update_alloc_mb": ppo["learner_update_alloc_mb"],
                  "rebel_learner_update_alloc_later_mb": rebel["learner_update_alloc_later_mb"], "ppo_learner_update_alloc_later_mb": ppo["learner_update_alloc_later_mb"],
                  "rebel4_learner_s_per_1k": per1k(rebel4), "rebel4_learner_update_alloc_mb": rebel4["learner_update_alloc_mb"],
                  "rebel4_learner_update_alloc_later_mb": rebel4["learner_update_alloc_later_mb"],
                  "rebel_learner_mem_mb": rebel["learner_mem_mb"], "ppo_learner_mem_mb": ppo["learner_mem_mb"]}))
PY
rm -rf "$out"
