"""Keras 3's own loop (``model.fit``) on JAX, PyTorch and TensorFlow is the same model as the native
code of that backend: per-step losses agree over 20 SGD steps, and agree with the float64 NumPy
reference; what is recorded is each step's loss, not Keras's running mean. Each framework runs in
its own process through the real runner (``frameworks/keras/trainer.py``)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from mlx_explore import compare, reference
from mlx_explore.config import DEFAULT_FRAMEWORKS, FRAMEWORKS, RunConfig
from mlx_explore.frameworks import REGISTRY, install_hint, unsupported_reason

from .conftest import ROOT
from .test_same_model import assert_step_parity

PAIRS = [("jax", "keras-jax"), ("torch", "keras-torch"), ("tensorflow", "keras-tensorflow")]
STEPS = 20


def test_the_keras_columns_are_registered_beside_the_native_ones():
    assert DEFAULT_FRAMEWORKS == ("torch", "jax", "tensorflow", "sklearn")
    assert RunConfig().frameworks == DEFAULT_FRAMEWORKS  # a plain comparison runs the native columns
    for native, keras in PAIRS:
        assert keras in FRAMEWORKS
        info = REGISTRY[keras]
        assert (info.package, info.code, info.keras_backend) == ("keras", "keras", native)
        assert info.title.startswith("Keras 3 (fit) on ")
        assert info.models == REGISTRY[native].models
        assert unsupported_reason(keras, "cnn", "cpu") is None
    assert REGISTRY["tensorflow"].code == "keras"  # one Keras model code, shared, not copied
    assert install_hint("keras-torch") == "pip install keras torch"


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_keras_fit_matches_the_native_loop_of_its_backend_step_for_step(model):
    """The same weights, the same batches, plain SGD: every Keras column's per-step loss is within
    1e-4 (relative) of its backend's native column and of the float64 reference, at every one of 20
    steps; and it is the step's own loss, not the running mean Keras logs as ``loss``."""
    fields = dict(model="mlp", hidden=(64, 64)) if model == "mlp" else dict(model="cnn")
    result = compare(dataset="digits", frameworks=[fw for pair in PAIRS for fw in pair], epochs=1, batch_size=32,
                     optimizer="sgd", lr=0.05, mode="eager", latency_steps=0, log_every=1, store=False, **fields)  # fmt: skip
    bad = [f"{r.framework}: {r.status} {r.reason}" for r in result.runs if r.status != "ok"]
    assert not bad, bad
    for native, keras in PAIRS:
        assert_step_parity(result, [native, keras], steps=STEPS, rtol=1e-4)
    ref = reference.train(result.config, steps=STEPS, evaluate=False)
    worst = reference.max_relative_differences(ref, result)
    for _, keras in PAIRS:
        assert worst[keras] <= 1e-4, f"{keras} against the float64 reference: {worst[keras]:.2e}"
    curves = result.curves
    for _, keras in PAIRS:
        losses = curves[curves.framework == keras].set_index("step")["loss"].loc[1:STEPS].to_numpy()
        running_mean = np.cumsum(losses) / np.arange(1, STEPS + 1)
        # Keras's `loss` log would be the running mean: by step 20 it is far from the step's loss.
        assert abs(running_mean[-1] - losses[-1]) / losses[-1] > 1e-2, f"{keras} logged a running mean"
        run = next(r for r in result.runs if r.framework == keras)
        assert run.flags["loop"].startswith("model.fit") and run.flags["keras_backend"] == REGISTRY[keras].keras_backend
        assert run.flags["compile"] == "model.compile(run_eagerly=True)"


def test_one_process_holds_one_keras_backend():
    """Keras reads KERAS_BACKEND once, at import: asking for a second backend in the same process is
    a clear error (the runner gives every run its own process), never a silent run on the wrong one."""
    code = ("from mlx_explore.frameworks import trainer_module\n"
            "m = trainer_module('keras-tensorflow'); print(m.BACKEND)\n"
            "try:\n    trainer_module('keras-jax')\nexcept RuntimeError as e:\n    print('refused:', e)\n")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "tensorflow"  # the registry's backend wins over the environment's
    assert lines[1].startswith("refused: keras-jax needs Keras on jax") and "own process" in lines[1]



def test_a_backend_keras_cannot_run_on_is_skipped_with_the_reason(tmp_path, monkeypatch, results_db):
    """A PyTorch that Keras cannot import (here a stand-in raising ImportError, as a version mismatch
    does) makes keras-torch `skipped` with the reason; it is reported and stored, never dropped, and
    the other columns run."""
    fake = tmp_path / "fake" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("torch 0.0 is not supported by this Keras")\n')
    monkeypatch.setenv("PYTHONPATH", str(fake.parent))
    result = compare(dataset="wine", model="logreg", frameworks=["keras-torch", "sklearn"], epochs=1, batch_size=16,
                     latency_steps=0)  # fmt: skip
    status = {r.framework: (r.status, r.reason) for r in result.runs}
    assert status["keras-torch"][0] == "skipped", status
    assert "Keras cannot run on torch here" in status["keras-torch"][1] and "not supported by this Keras" in status["keras-torch"][1]
    assert status["sklearn"][0] == "ok"
    assert list(result.metrics.index) == ["keras-torch", "sklearn"] and result.runs[0].run_id is not None
