#!/usr/bin/env bash
# Prepare libtorch for building rebel-rs (tch 0.24 needs libtorch 2.11.0).
#
# * Unless LIBTORCH is already set, makes sure a Python venv at
#   ${REBEL_CACHE:-$HOME/.cache/rebel-rs}/torch-2.11.0 holds torch==2.11.0 and tensorboard
#   (pip install, skipped when both already import), and points the symlink `.libtorch` in the repository
#   root at that venv's `site-packages/torch`. `.cargo/config.toml` sets LIBTORCH=.libtorch (without `force`,
#   so a LIBTORCH of your own wins), after which a plain `cargo build` works with no environment variables.
# * With LIBTORCH set it only checks that the folder looks like libtorch and leaves everything else alone.
#
# Idempotent and quiet when everything is already in place. Environment:
#   REBEL_CACHE   cache folder (default $HOME/.cache/rebel-rs)
#   PYTHON        the Python used to create the venv (default: python3.11, else python3)
#   TORCH_INDEX_URL  optional pip index for torch (e.g. https://download.pytorch.org/whl/cpu for a CPU-only wheel)
#
# With --test it also provides what the test suite needs beyond the build: headless Chromium and chromedriver for
# the labelling page's browser tests (Debian packages `chromium`, `chromium-driver`; installed with apt when
# missing and running as root, otherwise it says what to install), and gymnasium==1.4.0 in the venv for the Python
# side's test (tests/python_gym.rs; pip install, skipped when that version already imports).
set -euo pipefail

for_tests=0
for arg in "$@"; do
    case "$arg" in
        --test) for_tests=1 ;;
        *) echo "setup.sh: unknown argument '$arg' (the only option is --test)" >&2; exit 2 ;;
    esac
done

TORCH_VERSION="2.11.0"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() { echo "setup.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

# The Debian packages the tests need that are missing: Chromium and chromedriver for the browser tests (unless
# REBEL_SKIP_BROWSER=1), and an MPI library with libclang for the test command's cargo feature `mpi`.
missing_test_packages() {
    if [[ "${REBEL_SKIP_BROWSER:-}" != "1" ]] && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
        echo chromium chromium-driver
    fi
    if command -v dpkg >/dev/null 2>&1; then
        for p in openmpi-bin libopenmpi-dev libclang-dev; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done
    elif ! command -v mpicc >/dev/null 2>&1; then
        echo openmpi-bin libopenmpi-dev libclang-dev
    fi
}
install_test_tools() {
    local missing
    missing="$(missing_test_packages | xargs)"
    [[ -z "$missing" ]] && return 0
    if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing $missing (apt) for the tests"
        # shellcheck disable=SC2086
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null \
            || die "apt-get install $missing failed; see the messages above"
    else
        die "the tests need $missing: install them (Debian: sudo apt-get install $missing); REBEL_SKIP_BROWSER=1 skips \
the browser tests, and the test command without ',mpi' in its --features skips the MPI tests"
    fi
}
if [[ "$for_tests" == 1 ]]; then install_test_tools; fi

if [[ -n "${LIBTORCH:-}" ]]; then
    [[ -d "$LIBTORCH/lib" ]] || die "LIBTORCH=$LIBTORCH has no lib/ folder; unset LIBTORCH to use the managed venv"
    exit 0
fi

cache="${REBEL_CACHE:-$HOME/.cache/rebel-rs}"
venv="$cache/torch-$TORCH_VERSION"
py="$venv/bin/python"

if [[ ! -x "$py" ]]; then
    base_py="${PYTHON:-}"
    if [[ -z "$base_py" ]]; then
        if command -v python3.11 >/dev/null 2>&1; then base_py=python3.11
        elif command -v python3 >/dev/null 2>&1; then base_py=python3
        else die "no python3 found; install Python >= 3.10 (with venv) or set LIBTORCH to an unpacked libtorch $TORCH_VERSION"
        fi
    fi
    say "creating venv $venv with $base_py"
    mkdir -p "$cache"
    "$base_py" -m venv "$venv" || die "'$base_py -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
fi

# Quick check: do both packages already import, at the right torch version?
if ! "$py" - "$TORCH_VERSION" >/dev/null 2>&1 <<'PYEOF'
import sys, importlib.util, importlib.metadata as md
assert md.version("torch").split("+")[0] == sys.argv[1]
assert importlib.util.find_spec("torch") is not None and importlib.util.find_spec("tensorboard") is not None
PYEOF
then
    say "installing torch==$TORCH_VERSION and tensorboard into $venv (a few GB, several minutes)"
    index_args=()
    if [[ -n "${TORCH_INDEX_URL:-}" ]]; then index_args=(--extra-index-url "$TORCH_INDEX_URL"); fi
    "$py" -m pip install --quiet "${index_args[@]}" "torch==$TORCH_VERSION" tensorboard \
        || die "pip install failed; see the messages above"
fi

if [[ "$for_tests" == 1 ]] && ! "$py" -c 'import importlib.metadata as md, sys; sys.exit(md.version("gymnasium") != "1.4.0")' >/dev/null 2>&1; then
    say "installing gymnasium==1.4.0 into $venv (for tests/python_gym.rs)"
    "$py" -m pip install --quiet "gymnasium==1.4.0" || die "pip install gymnasium==1.4.0 failed; see the messages above"
fi

site_packages="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
torch_dir="$site_packages/torch"
[[ -d "$torch_dir/lib" ]] || die "$torch_dir/lib is missing: the torch install in $venv looks broken (delete $venv and rerun)"

link="$repo_root/.libtorch"
if [[ "$(readlink "$link" 2>/dev/null || true)" != "$torch_dir" ]]; then
    if [[ -e "$link" && ! -L "$link" ]]; then die "$link exists and is not a symlink; move it away"; fi
    ln -sfn "$torch_dir" "$link"
    say "linked .libtorch -> $torch_dir"
fi
