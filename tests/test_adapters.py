"""One conformance check for every framework adapter, as scikit-learn's ``check_estimator`` is for
every estimator (``mlx_explore/frameworks/contract.py``, checked by ``conformance.py``).

Every framework in ``REGISTRY`` is checked in its own process (as in real use: TensorFlow and JAX
never share one), so a later adapter joins by being registered. The checker itself is tested on
adapters broken on purpose, and each private API an adapter relies on has a test here that fails
when the library removes it or changes what it means.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from mlx_explore.frameworks import REGISTRY
from mlx_explore.frameworks.conformance import check_adapter, check_behaviour, check_models
from mlx_explore.frameworks.contract import BUILD_STEPS, CAPABILITIES, MODULE_FUNCTIONS, DeviceUnavailable, model_code

from .conftest import ROOT

ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}


def accelerators_absent() -> list[str]:
    """Device kinds this machine certainly lacks (no NVIDIA driver node, no TPU/accel node)."""
    out = []
    if not (Path("/dev/nvidiactl").exists() or Path("/dev/kfd").exists()):
        out.append("gpu")
    if not (any(Path("/dev").glob("accel*")) or Path("/dev/vfio").exists()):
        out.append("tpu")
    return out


def run_python(code: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (one framework per process)."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          env=ENV, cwd=ROOT)  # fmt: skip


# ------------------------------------------------------------------ every registered adapter


@pytest.mark.parametrize("framework", list(REGISTRY))
def test_every_registered_adapter_conforms_to_the_contract(framework):
    """Names and signatures, weights loaded and read back bit for bit, steps/losses/logits with the
    documented shapes and dtypes, device errors (on a machine without accelerators,
    ``select_device("gpu")`` and ``("tpu")`` must raise ``DeviceUnavailable``): for each model kind,
    eager and compiled, and the MLP in bf16."""
    proc = subprocess.run(
        [sys.executable, "-m", "mlx_explore.frameworks.conformance", framework,
         "--unavailable", ",".join(accelerators_absent()), "--modes", "eager,compiled"],
        capture_output=True, text=True, timeout=600, env=ENV, cwd=ROOT,
    )  # fmt: skip
    lines = proc.stdout.strip().splitlines()
    assert lines, f"{framework}: the check printed nothing:\n{proc.stderr[-3000:]}"
    report = json.loads(lines[-1])
    assert report["framework"] == framework
    assert report["problems"] == [], f"{framework} breaks the adapter contract:\n" + "\n".join(report["problems"])
    assert proc.returncode == 0


@pytest.mark.parametrize("framework", list(REGISTRY))
def test_every_models_module_declares_its_code(framework):
    assert check_models(framework) == []
    assert set(model_code(framework)) == set(REGISTRY[framework].models)


# ------------------------------------------------------------------ the checker itself


def sklearn_adapter():
    """The scikit-learn adapter (importing it is cheap: scikit-learn is a core dependency)."""
    from mlx_explore.frameworks.sklearn import trainer

    return trainer


def copy_of(module, **changes) -> types.ModuleType:
    """A module with ``module``'s attributes, some replaced (``None``: removed)."""
    fake = types.ModuleType("fake_adapter")
    fake.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    for k, v in changes.items():
        if v is None:
            delattr(fake, k)
        else:
            setattr(fake, k, v)
    return fake


def test_the_checker_passes_the_sklearn_adapter_in_process():
    # The baseline for the broken variants below: unchanged, the adapter has no problem.
    sk = sklearn_adapter()
    assert check_adapter(sk, "sklearn") == []
    assert check_behaviour(copy_of(sk), "sklearn", threads=1, unavailable=("gpu", "tpu")) == []


def test_an_adapter_missing_a_name_fails_naming_it():
    fake = copy_of(sklearn_adapter(), select_device=None)
    problems = check_adapter(fake, "sklearn")
    assert problems == ["sklearn: no module-level function select_device(kind: str)"]
    assert check_behaviour(fake, "sklearn") == problems  # behaviour is not tried on a broken shape
    assert any("no class Trainer" in p for p in check_adapter(copy_of(sklearn_adapter(), Trainer=None)))
    for name in MODULE_FUNCTIONS:
        assert any(name in p for p in check_adapter(copy_of(sklearn_adapter(), **{name: None}), "sklearn")), name


def test_an_adapter_with_other_parameters_or_undeclared_capabilities_fails():
    sk = sklearn_adapter()

    def configure(config):  # no threads
        return {}

    class NoCaps(sk.Trainer):
        def peak_device_mb(self):  # implemented, not declared: it would never be called
            return 1.0

    class ClaimsCaps(sk.Trainer):
        capabilities = frozenset({"device_matmul", "warp_drive"})

    class OtherInit(sk.Trainer):
        def __init__(self, spec, weights, config, x, y):
            super().__init__(spec, weights, config, x, y)

    class NoStep(sk.Trainer):
        _compile = None

    problems = check_adapter(copy_of(sk, configure=configure), "sklearn")
    assert len(problems) == 1 and "sklearn.configure: signature (config) differs from the contract's (config, threads: int)" in problems[0]
    problems = check_adapter(copy_of(sk, Trainer=NoCaps), "sklearn")
    assert problems == ["sklearn: Trainer has peak_device_mb but does not declare 'device_memory' in capabilities, so it is never called"]
    problems = check_adapter(copy_of(sk, Trainer=ClaimsCaps), "sklearn")
    assert ("sklearn: Trainer declares unknown capability 'warp_drive' (known: device_memory, device_matmul, fit_loop, "
            "boosting)") in problems
    assert "sklearn: Trainer declares 'device_matmul' but has no method matmul" in problems
    assert any("Trainer.__init__: signature" in p for p in check_adapter(copy_of(sk, Trainer=OtherInit), "sklearn"))
    assert check_adapter(copy_of(sk, Trainer=NoStep), "sklearn") == ["sklearn: Trainer has no build step _compile(self)"]
    assert any("Trainer.name is 'sklearn', not 'torch'" in p for p in check_adapter(sk, "torch"))
    assert set(BUILD_STEPS) == {"_select_device", "_build", "_place_data", "_compile"}
    assert set(CAPABILITIES) == {"device_memory", "device_matmul", "fit_loop", "boosting"}


def test_broken_behaviour_is_reported_with_the_run_and_the_difference():
    sk = sklearn_adapter()

    class Float64Weights(sk.Trainer):
        def weights(self):
            return {k: v.astype(np.float64) for k, v in super().weights().items()}

    class OffByOneUlp(sk.Trainer):
        def _build(self, weights):
            k = "dense_0/kernel"
            super()._build({**weights, k: np.nextafter(weights[k], np.float32(np.inf))})

    class LossAfterTheUpdate(sk.Trainer):
        def train_step(self, idx):
            super().train_step(idx)
            return super().train_step(idx)

    class Float32Losses(sk.Trainer):
        def losses(self, handles):
            return np.asarray(handles, dtype=np.float32)

    def sees_a_gpu(kind):
        return "cpu" if kind in ("auto", "cpu", "gpu") else sk.select_device(kind)

    def check(**changes):
        return check_behaviour(copy_of(sk, **changes), "sklearn", threads=1, unavailable=("gpu", "tpu"))

    assert any("weights()['dense_0/kernel'] after loading is ndarray float64" in p for p in check(Trainer=Float64Weights))
    problems = check(Trainer=OffByOneUlp)
    assert any("sklearn logreg/eager/fp32: weights()['dense_0/kernel'] right after loading differs from the canonical "
               "weights (max |difference|" in p and "bit for bit" in p for p in problems), problems  # fmt: skip
    assert any("step 1 loss" in p and "is not the batch's loss before the update" in p for p in check(Trainer=LossAfterTheUpdate))
    assert any("losses() gave ndarray float32 (3,), not float64 (3,)" in p for p in check(Trainer=Float32Losses))
    problems = check(select_device=sees_a_gpu)
    assert "sklearn: select_device('gpu') returned a device although gpu is not visible here; it must raise DeviceUnavailable" in problems


def test_models_declaration_is_checked():
    assert check_models("sklearn", kinds=("logreg", "mlp", "cnn")) == [
        "sklearn models.py: MODEL_CODE covers ['gbdt', 'logreg', 'mlp'], the framework expresses ['cnn', 'logreg', 'mlp']"
    ]
    with pytest.raises(LookupError, match="declares no literal MODEL_CODE"):
        model_code("torch", text="class MLP: pass\n")
    with pytest.raises(LookupError, match="declares no literal MODEL_CODE"):
        model_code("torch", text="MODEL_CODE = dict(mlp='MLP')\n")


def test_machine_figures_calls_only_the_declared_capabilities():
    from mlx_explore import bundle as bundle_mod
    from mlx_explore.config import RunConfig
    from mlx_explore.frameworks.common import machine_figures

    bundle = bundle_mod.prepare(RunConfig.build(model="mlp", dataset="digits", hidden=(8,), epochs=1, batch_size=64))
    a = np.ones((64, 64), np.float32)

    class Undeclared:
        name, device, device_name, device_kind, capabilities = "fake", "cpu", "cpu", "cpu", frozenset()

        def peak_device_mb(self):
            raise AssertionError("called without being declared")

        matmul = peak_device_mb

    class Declared(Undeclared):
        device_kind = "gpu"
        capabilities = frozenset({"device_memory", "device_matmul"})

        def peak_device_mb(self):
            return 12.5

        def matmul(self):
            return (lambda: a @ a), (lambda r: r), 64, "fake float32"

    metrics, notes = {"samples_per_s": 1000.0}, {}
    machine_figures(Undeclared(), bundle, metrics, notes)
    assert metrics["peak_device_mb"] is None and "CPU" in notes["peak_device_mb"]
    assert notes["peak_gflops_per_s"].startswith("numpy float32")
    metrics, notes = {"samples_per_s": 1000.0}, {}
    machine_figures(Declared(), bundle, metrics, notes)
    assert metrics["peak_device_mb"] == 12.5 and "peak_device_mb" not in notes
    assert notes["peak_gflops_per_s"].startswith("fake float32 matmul 64x64")


def test_device_unavailable_is_one_class_wherever_it_is_imported():
    from mlx_explore.frameworks import common

    assert common.DeviceUnavailable is DeviceUnavailable
    assert sklearn_adapter().DeviceUnavailable is DeviceUnavailable


# ------------------------------------------------------------------ private APIs the adapters use


def test_private_sklearn_optimizer_is_the_solver_state_partial_fit_recreates():
    """``sklearn/trainer.py`` loads weights by writing into ``coefs_``/``intercepts_`` and deleting
    ``MLPClassifier._optimizer`` (checked against scikit-learn 1.9.1): the next ``partial_fit``
    must start a new solver at step 0 from the written weights. Softmax regression, momentum 0.9:
    a carried-over velocity would add 0.9 x the previous update."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.neural_network._stochastic_optimizers import SGDOptimizer

    rng = np.random.default_rng(0)
    x, y, lr = rng.standard_normal((12, 4)).astype(np.float32), np.arange(12) % 3, 0.1
    clf = MLPClassifier(hidden_layer_sizes=(), solver="sgd", learning_rate_init=lr, momentum=0.9,
                        nesterovs_momentum=False, alpha=0.0, batch_size=12, shuffle=False, random_state=0)  # fmt: skip
    clf.partial_fit(x, y, classes=np.arange(3))
    assert isinstance(clf._optimizer, SGDOptimizer), "MLPClassifier no longer keeps its solver in _optimizer"
    assert np.abs(clf._optimizer.velocities[0]).max() > 0
    w0, b0 = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    clf.coefs_[0][...], clf.intercepts_[0][...] = w0, b0
    del clf._optimizer
    clf.partial_fit(x, y)
    z = x.astype(np.float64) @ w0 + b0
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    g = (p - np.eye(3)[y]) / len(y)
    np.testing.assert_allclose(clf.coefs_[0], w0 - lr * x.T @ g, rtol=1e-5, atol=1e-6,
                               err_msg="after del _optimizer, partial_fit did not take a fresh step from the written weights")  # fmt: skip
    np.testing.assert_allclose(clf.intercepts_[0], b0 - lr * g.sum(axis=0), rtol=1e-5, atol=1e-6)


def test_private_torch_inductor_cache_dir_names_the_folder_compiled_code_lands_in(tmp_path):
    """``torch/trainer.py`` reports a warm or cold compile cache from
    ``torch._inductor.runtime.cache_dir_utils.cache_dir()`` (checked against torch 2.13.0): it must
    exist, honour ``TORCHINDUCTOR_CACHE_DIR``, and be where ``torch.compile`` writes."""
    code = (
        "import os, sys\nos.environ['TORCHINDUCTOR_CACHE_DIR'] = sys.argv[1]\nimport torch\n"
        "from torch._inductor.runtime.cache_dir_utils import cache_dir\n"
        "assert cache_dir() == sys.argv[1], cache_dir()\nempty = not any(os.scandir(cache_dir()))\n"
        "torch.compile(lambda t: t * 2 + 1)(torch.ones(3))\n"
        "print(empty, any(os.scandir(cache_dir())))"
    )
    proc = run_python(code, str(tmp_path / "inductor"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["True", "True"], "torch.compile wrote nothing into cache_dir()"


def test_private_tensorflow_op_determinism_reads_back_the_public_switch():
    """``tensorflow/trainer.py`` reads ``tensorflow.python.framework.config.is_op_determinism_enabled``
    (checked against TensorFlow 2.21.0): it must follow ``tf.config.experimental.enable_op_determinism``."""
    code = (
        "import tensorflow as tf\nfrom tensorflow.python.framework import config as c\n"
        "before = c.is_op_determinism_enabled()\ntf.config.experimental.enable_op_determinism()\n"
        "print(before, c.is_op_determinism_enabled())"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-2:] == ["False", "True"]


def test_device_unavailable_is_raised_not_other_errors_for_unknown_kinds():
    sk = sklearn_adapter()
    with pytest.raises(DeviceUnavailable):
        sk.select_device("gpu")
    with pytest.raises(ValueError, match="allowed: auto, cpu, gpu, tpu"):
        sk.select_device("quantum")
