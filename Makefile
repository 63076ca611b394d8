# The README's two commands: `make demo` (set up + the main comparison) and `make test`
# (set up + the whole test suite). Set-up is idempotent: scripts/setup.sh.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench clean
setup:
	VENV=$(VENV) bash scripts/setup.sh

demo: setup
	$(BIN)/mlx-explore compare --model mlp --dataset digits --frameworks torch,jax,tensorflow,sklearn --epochs 10 --out results/mlp_digits.json

test: setup
	$(BIN)/python -m pytest -q

bench: setup  # figures, not tests: harness overhead and LiveCurves drawing overhead
	$(BIN)/python tests/benchmarks/overhead.py --threads 1 --mode both
	$(BIN)/python tests/benchmarks/live_overhead.py

clean:
	rm -rf $(VENV) results .pytest_cache
