# The README's two commands: `make demo` (set up + the main comparison) and `make test`
# (set up + the whole test suite). Set-up is idempotent: scripts/setup.sh.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup setup-tests demo test fuzz bench clean
setup:
	VENV=$(VENV) bash scripts/setup.sh

setup-tests:  # set-up plus headless Chromium for the browser test (apt-get; root or passwordless sudo)
	VENV=$(VENV) bash scripts/setup.sh --tests

demo: setup
	$(BIN)/mlx-explore compare --model mlp --dataset digits --frameworks torch,jax,tensorflow,sklearn --epochs 10 --out results/mlp_digits.json

test: setup-tests  # two pytest workers (pytest-xdist): most tests wait on child processes, and CI has 30 minutes; loadgroup: the Ray tests (xdist_group "ray") share one worker and one Ray instance
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=40

fuzz: setup  # the generated bad-input suite, far longer than CI runs it (tests/test_bad_input.py)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q tests/test_bad_input.py

bench: setup-tests  # figures, not tests: harness overhead, LiveCurves drawing overhead, peak memory vs epochs, the overview dashboard on 10,000 runs
	$(BIN)/python tests/benchmarks/overhead.py --threads 1 --mode both
	$(BIN)/python tests/benchmarks/live_overhead.py
	$(BIN)/python tests/benchmarks/memory.py
	$(BIN)/python tests/benchmarks/dashboard_store.py
	$(BIN)/python tests/benchmarks/dashboard_page.py

clean:
	rm -rf $(VENV) results .pytest_cache
