#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with every framework and this project.
#
# Frameworks are installed only when missing, as CPU builds where that matters:
#   torch==2.13.0  (the CPU wheel; an unpinned 'torch' pulls several GB of CUDA packages)
#   tensorflow-cpu (the 'tensorflow' wheel is the same code plus GPU libraries)
# A second run with nothing changed returns in about a second (stamp file).
# Environment: PYTHON (interpreter that creates the venv, default python3), VENV (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
STAMP="$VENV/.mlx-explore-setup"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c "import mlx_explore" 2>/dev/null; then
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
# The project itself, editable, with JAX/Flax/Optax, Keras 3, the notebook stack and the test tools.
"${pip[@]}" -e ".[jax,notebook,dev]" "keras>=3.0"
echo "$want" > "$STAMP"
"$VENV/bin/mlx-explore" env
