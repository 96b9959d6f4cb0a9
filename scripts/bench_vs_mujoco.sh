#!/usr/bin/env bash
# Env steps per second: MuJoCo (raw mj_step and Gymnasium env.step) against rebel-rs, side by side.
#
#   scripts/bench_vs_mujoco.sh [--env ID] [--steps N] [--raw-steps N] [--gym-steps N] [--no-scaling] [--env-opt KEY=VALUE]...
#
# ID: Swimmer-v5 (default), Reacher-v5, InvertedPendulum-v5, InvertedDoublePendulum-v5, HalfCheetah-v5, Hopper-v5,
# Walker2d-v5, Ant-v5 or Humanoid-v5; `--env all`
# runs the nine in turn. `--env-opt KEY=VALUE` (repeatable) is passed to ours (`rebel --env-opt`), e.g. the
# Swimmer's fast solver: --env-opt solver_iterations=2 --env-opt limit_projection=true.
#
# * Makes (once) a venv at ${REBEL_CACHE:-$HOME/.cache/rebel-rs}/mujoco-venv holding
#   gymnasium[mujoco]==1.4.0 (MuJoCo from PyPI); skipped when it already imports.
# * Times MuJoCo and Gymnasium on ONE core (taskset -c 1 when taskset exists and the machine has
#   two or more CPUs; unpinned otherwise) with scripts/mujoco_bench.py.
# * Builds `rebel` in release mode, then runs `rebel --env ID bench --steps N --envs 1 --threads 1` pinned
#   the same way, and for thread scaling `--envs 8` with 1 thread (core 1) and 2 threads (cores 0,1).
# * Prints a table and the ratios ours/MuJoCo; the last stdout line is one JSON object.
#
# Environment: REBEL_CACHE (cache folder), PYTHON (interpreter for the venv, default python3).
set -euo pipefail

steps=100000
raw_steps=100000
gym_steps=20000
scaling=1
env_id=Swimmer-v5
env_opts=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --steps) steps="$2"; shift 2 ;;
        --raw-steps) raw_steps="$2"; shift 2 ;;
        --gym-steps) gym_steps="$2"; shift 2 ;;
        --no-scaling) scaling=0; shift ;;
        --env) env_id="$2"; shift 2 ;;
        --env-opt) env_opts+=(--env-opt "$2"); shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "bench_vs_mujoco.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { echo "bench_vs_mujoco.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

cache="${REBEL_CACHE:-$HOME/.cache/rebel-rs}"
venv="$cache/mujoco-venv"
py="$venv/bin/python"
if [[ ! -x "$py" ]]; then
    base_py="${PYTHON:-python3}"
    command -v "$base_py" >/dev/null 2>&1 || die "no $base_py found; install Python >= 3.10 with venv, or set PYTHON"
    say "creating venv $venv"
    mkdir -p "$cache"
    "$base_py" -m venv "$venv" || die "'$base_py -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
fi
if ! "$py" -c 'import gymnasium, mujoco, numpy; assert gymnasium.__version__ == "1.4.0"' >/dev/null 2>&1; then
    say "installing gymnasium[mujoco]==1.4.0 into $venv"
    "$py" -m pip install --quiet --upgrade pip >&2 || true
    "$py" -m pip install --quiet 'gymnasium[mujoco]==1.4.0' >&2 || die "pip could not install gymnasium[mujoco]==1.4.0"
fi

case "$env_id" in
    Swimmer-v5|Reacher-v5|InvertedPendulum-v5|InvertedDoublePendulum-v5|HalfCheetah-v5|Hopper-v5|Walker2d-v5|Ant-v5|Humanoid-v5) envs=("$env_id") ;;
    all) envs=(Swimmer-v5 Reacher-v5 InvertedPendulum-v5 InvertedDoublePendulum-v5 HalfCheetah-v5 Hopper-v5 Walker2d-v5 Ant-v5 Humanoid-v5) ;;
    *) die "--env must be Swimmer-v5, Reacher-v5, InvertedPendulum-v5, InvertedDoublePendulum-v5, HalfCheetah-v5, Hopper-v5, Walker2d-v5, Ant-v5, Humanoid-v5 or all, got '$env_id'" ;;
esac

pin1=()
pin2=()
if command -v taskset >/dev/null 2>&1 && [[ "$(nproc)" -ge 2 ]]; then
    pin1=(taskset -c 1)
    pin2=(taskset -c 0,1)
    say "pinning single-core runs to CPU 1, two-thread runs to CPUs 0,1"
else
    say "taskset unavailable or a single CPU: runs are not pinned"
fi

say "building rebel (release)"
(cd "$repo_root" && cargo build --release --quiet --bin rebel) || die "cargo build --release --bin rebel failed"

ours() { # ours ENV PIN... -- ENVS THREADS
    local id="$1"; shift
    local pin=()
    while [[ "$1" != "--" ]]; do pin+=("$1"); shift; done
    shift
    (cd "$repo_root" && "${pin[@]}" cargo run --release --quiet --bin rebel -- --env "$id" "${env_opts[@]}" bench --steps "$steps" --envs "$1" --threads "$2") \
        | tee >(cat >&2) | tail -n 1
}

for id in "${envs[@]}"; do
    say "$id: timing MuJoCo (raw $raw_steps steps, gymnasium $gym_steps steps)"
    mujoco_json="$("${pin1[@]}" "$py" "$repo_root/scripts/mujoco_bench.py" measure --env "$id" --raw-steps "$raw_steps" --gym-steps "$gym_steps" | tee >(cat >&2) | tail -n 1)"
    say "$id: timing rebel-rs: 1 env, 1 thread, $steps steps"
    ours_json="$(ours "$id" "${pin1[@]}" -- 1 1)"
    args=(--mujoco "$mujoco_json" --ours "$ours_json")
    if [[ "$scaling" == 1 ]]; then
        say "$id: timing rebel-rs: 8 envs on 1 and 2 threads"
        args+=(--ours-8x1 "$(ours "$id" "${pin1[@]}" -- 8 1)")
        args+=(--ours-8x2 "$(ours "$id" "${pin2[@]}" -- 8 2)")
    fi
    echo
    "$py" "$repo_root/scripts/mujoco_bench.py" report "${args[@]}"
done
