#!/usr/bin/env bash
# Copies Gymnasium's own MJCF files of the environments rebel-rs supports into
# envs/tests/data/gymnasium/ (with Gymnasium's MIT licence and a version note), from the gymnasium
# package installed in the venv that scripts/bench_vs_mujoco.sh makes (or $PYTHON).
# The test envs/tests/mjcf_models.rs loads them as they are and compares them with ours.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-${REBEL_CACHE:-$HOME/.cache/rebel-rs}/mujoco-venv/bin/python}"
[[ -x "$py" ]] || { echo "refresh_gymnasium_xml: no Python at $py; run scripts/bench_vs_mujoco.sh once (it makes the venv) or set PYTHON" >&2; exit 1; }
out="$here/envs/tests/data/gymnasium"
mkdir -p "$out"
"$py" - "$out" <<'PY'
import os, shutil, sys, glob
import gymnasium
out = sys.argv[1]
assets = os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets")
for name in ["swimmer.xml", "reacher.xml", "inverted_pendulum.xml", "inverted_double_pendulum.xml", "half_cheetah.xml", "hopper.xml", "walker2d_v5.xml", "ant.xml", "humanoid.xml"]:
    shutil.copyfile(os.path.join(assets, name), os.path.join(out, name))
dist = glob.glob(os.path.join(os.path.dirname(gymnasium.__file__), "..", f"gymnasium-{gymnasium.__version__}.dist-info"))[0]
lic = [p for p in glob.glob(os.path.join(dist, "**", "LICENSE*"), recursive=True)]
shutil.copyfile(lic[0], os.path.join(out, "LICENSE"))
with open(os.path.join(out, "VERSION"), "w") as f:
    f.write(f"Copied unchanged from gymnasium {gymnasium.__version__} (gymnasium/envs/mujoco/assets), MIT licence (LICENSE),\n"
            "by scripts/refresh_gymnasium_xml.sh.\n")
print(f"copied gymnasium {gymnasium.__version__} MJCF files to {out}")
PY
