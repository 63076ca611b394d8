"""Shared helpers for the test suite. Every framework is installed by `make test`'s set-up, so
nothing here skips a framework: a missing one is a failure of the set-up, not a reason to pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DL_FRAMEWORKS = ("torch", "jax", "tensorflow")


def run_cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m mlx_explore.cli ARGS`` and return the completed process (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "mlx_explore.cli", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=ROOT,
    )  # fmt: skip


def probe(framework: str, bundle_path: Path, out: Path) -> dict:
    """Run ``tests/framework_probe.py`` for one framework in its own process; return its npz arrays."""
    import numpy as np

    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "framework_probe.py"), framework, str(bundle_path), str(out)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    assert proc.returncode == 0, f"{framework} probe failed:\n{proc.stderr[-3000:]}"
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(autouse=True)
def results_db(tmp_path, monkeypatch) -> Path:
    """Every test writes its runs to its own results store, never to the user's home."""
    path = tmp_path / "store" / "results.db"
    monkeypatch.setenv("MLX_EXPLORE_DB", str(path))
    return path


@pytest.fixture
def tiny_kwargs():
    """A comparison small enough to run in seconds per framework."""
    return dict(model="mlp", dataset="digits", hidden=(32,), epochs=1, batch_size=64, optimizer="sgd", lr=0.1, mode="eager",
                latency_steps=20)


def alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie (Linux /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
