#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with every framework and this project.
#
# Frameworks are installed only when missing, as CPU builds where that matters:
#   torch==2.13.0  (the CPU wheel; an unpinned 'torch' pulls several GB of CUDA packages)
#   tensorflow-cpu (the 'tensorflow' wheel is the same code plus GPU libraries)
# With --tests (make test) it also installs headless Chromium, which only the browser test needs,
# from Debian's 'chromium' package (Playwright drives it through executable_path and never
# downloads a browser of its own); the main job (make demo) never needs a browser, apt-get or sudo.
# A second run with nothing changed returns in about a second (stamp file).
# With --voila-template it only links the Voila template `mlx` into $PYTHON's environment (for
# conda and Binder, which install this project with `pip install -e .`; see link_voila_template).
# Environment: PYTHON (interpreter that creates the venv, default python3), VENV (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
STAMP="$VENV/.mlx-explore-setup"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)

install_chromium() {
  command -v chromium >/dev/null && return 0
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo -n)
  if ! command -v apt-get >/dev/null; then
    echo "setup: no 'chromium' on PATH and no apt-get: install Chromium for tests/test_browser.py" >&2
    return 1
  fi
  echo "setup: installing Debian's chromium (for the browser test)"
  "${sudo[@]}" apt-get install -y -qq chromium >/dev/null ||
    { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq chromium >/dev/null; }
}
# The Voila template `mlx` (share/jupyter/voila/templates/mlx: Voila's `lab` template without its
# links to CDNs). A regular `pip install` copies it into <prefix>/share/jupyter, where Voila looks
# for templates (pyproject.toml, data-files); an editable install does not (setuptools builds the
# editable wheel without data files), so it is linked there: edits to it count at once, like code.
link_voila_template() {  # $1: the environment's python (only Python: setup.sh needs no coreutils here)
  "$1" - "$PWD/share/jupyter/voila/templates/mlx" <<'PY'
import os, shutil, sys
src = sys.argv[1]
dest = os.path.join(sys.prefix, "share", "jupyter", "voila", "templates", "mlx")
if not (os.path.islink(dest) and os.readlink(dest) == src):
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.islink(dest) or os.path.isfile(dest):
        os.remove(dest)
    elif os.path.isdir(dest):
        shutil.rmtree(dest)
    os.symlink(src, dest)
PY
}
case "${1:-}" in
  --tests) install_chromium ;;
  --voila-template)  # only the link, into $PYTHON's environment (conda, Binder: after `pip install -e .`)
    VENV=$("$PYTHON" -c 'import sys; print(sys.prefix)')
    link_voila_template "$PYTHON"
    echo "setup: Voila template mlx linked into $VENV/share/jupyter/voila/templates"
    exit 0 ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--tests | --voila-template]" >&2; exit 2 ;;
esac

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c "import mlx_explore" 2>/dev/null; then
  link_voila_template "$VENV/bin/python"
  echo "setup: $VENV is up to date"
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
py="$VENV/bin/python"
pip=("$py" -m pip install --quiet --disable-pip-version-check)
have() { "$py" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$1') is None)"; }

echo "setup: installing into $VENV (first run: a few minutes)"
have torch || "${pip[@]}" "torch==2.13.0"
have tensorflow || "${pip[@]}" "tensorflow-cpu>=2.16"
# The project itself, editable, with JAX/Flax/Optax, Keras 3, the notebook stack, the test tools and
# the ONNX export (onnx, onnxruntime and the converters, pinned in pyproject.toml's onnx extra), XGBoost
# and LightGBM, Ray (sweeps) and MLflow (experiment tracking).
"${pip[@]}" -e ".[jax,notebook,dev,onnx,gbdt,ray,mlflow]" "keras>=3.0" "xprof==2.24.2"
link_voila_template "$py"
echo "$want" > "$STAMP"
"$VENV/bin/mlx-explore" env
