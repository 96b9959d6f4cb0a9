#!/usr/bin/env bash
# REBEL with the true reward from a random policy, 600k env steps, one thread, on several seeds and
# initial noise levels (issue 9's robustness question): prints the final mean-action eval return and
# the policy entropy at the start and the end of each run.
#   bash scripts/rebel_true_seeds.sh "2 5 8" "-0.5 -1.0 -1.5" [OUT]     (needs a release build)
# SET="rebel.target_kl=0.02" adds `--set`s to every run (several: space-separated, "rebel.eta=10 rebel.lr=0.001");
# its runs go to folders of their own.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seeds="${1:-2 5 8}"; noise="${2:--0.5}"; out="${3:-$(mktemp -d)}"; mkdir -p "$out"
extra=(); tag=""
if [[ -n "${SET:-}" ]]; then for kv in $SET; do extra+=(--set "$kv"); done; tag="_${SET//[^A-Za-z0-9.=_-]/_}"; fi
for ls in $noise; do
    for s in $seeds; do
        d="$out/ls${ls}${tag}_s$s"
        [[ -f "$d/summary.json" ]] || { rm -rf "$d"; "$root/target/release/swimmer" train --algo rebel --reward true \
            --env-steps 600000 --seed "$s" --set threads=1 --set policy.log_std_init="$ls" "${extra[@]}" --run-dir "$d" --quiet > "$d.log" 2>&1; }
        python3 - "$d" "$ls" "$s" "${SET:-}" <<'PY'
import json, sys
d, ls, s = sys.argv[1:4]
m = [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
ent = [r["losses/entropy"] for r in m if "losses/entropy" in r]
ev = json.load(open(f"{d}/summary.json"))["eval_true_return_mean"]
print(f"log_std_init {ls}{' ' + sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else ''} seed {s}: eval {ev:.1f}, entropy {ent[0]:.2f} -> {ent[-1]:.2f}")
PY
    done
done
