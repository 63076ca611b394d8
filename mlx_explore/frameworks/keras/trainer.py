"""Keras 3's own training loop on JAX, PyTorch or TensorFlow (``keras-jax``, ``keras-torch``,
``keras-tensorflow``; the adapter contract: ``frameworks/contract.py``).

The backend is ``KERAS_BACKEND``, set by ``frameworks.trainer_module`` before this module imports
Keras (one backend per process). The model code is ``models.py``, the same code as the
``tensorflow`` column; what differs from that column is the loop. The ``tensorflow`` column is
native TensorFlow: a hand-written ``tf.GradientTape`` step. These columns train as the Keras guides
do (https://keras.io/guides/training_with_built_in_methods/): ``model.compile(optimizer, loss,
metrics, jit_compile=...)`` and then ``model.fit`` on NumPy arrays, one call per epoch, the epoch's
batches in the shared order (``shuffle=False``), with the default ``steps_per_execution=1``. Their
cost against the native column of the same backend is "what Keras 3's one API costs".

Per-step losses: Keras's ``loss`` log is the running mean over the epoch. The metric
:class:`StepLoss` holds each step's own mean cross-entropy, computed from the same forward pass's
logits, and a callback (:class:`_Windows`) reads it at every batch end. A callback that reads the
logs at each batch end makes ``fit`` wait for each step's result, as Keras's default progress bar
(``verbose=1``) does; the timing windows are cut at those batch ends (``FitLoop.fit_epoch``).
``tests/test_keras.py`` proves the per-step values equal the native framework's losses on the same
weights and batches.

Compile mode: ``compiled`` = ``model.compile(jit_compile=True)`` (XLA on JAX and TensorFlow,
``torch.compile`` on PyTorch); ``eager`` = ``run_eagerly=True`` (op by op on every backend; note
that Keras's own default on TensorFlow, ``jit_compile="auto"``, is a ``tf.function`` graph, neither
of the two). The single-step API (:meth:`Trainer.train_step`, used for step latency) is
``model.train_on_batch``; inference is ``model.predict_on_batch`` (Keras recommends it, or
``model(x)``, over ``predict`` for small inputs).

Fairness settings are the native adapter's of the same backend (``configure`` calls it: threads,
TF32 off, determinism), plus the Keras dtype policy for the precision (``mixed_bfloat16`` for
``bf16``, https://keras.io/api/mixed_precision/policy/).
"""

from __future__ import annotations

import contextlib
import importlib
import time

import keras
import numpy as np

from ... import bench
from ..common import batched
from ..contract import DEVICE_KINDS, DeviceUnavailable
from .common import build_model, canonical_weights, load_weights, make_optimizer  # noqa: F401 - part of the adapter

BACKEND = keras.backend.backend()


def _native():
    """The native adapter of this backend (``frameworks/<backend>/trainer.py``)."""
    return importlib.import_module(f"..{'tensorflow' if BACKEND == 'tensorflow' else BACKEND}.trainer", __package__)


def select_device(kind: str) -> str:
    """Keras's device name (``"cpu:0"``, ``"gpu:0"``, ``"tpu:0"``) for ``kind``, as the native
    adapter of the backend finds it (the same rules: ``auto`` is the accelerator where there is one).

    Raises:
        ValueError: unknown kind.
        DeviceUnavailable: the backend does not see ``kind`` here.
    """
    if kind not in DEVICE_KINDS:
        raise ValueError(f"unknown device kind {kind!r}; allowed: {', '.join(DEVICE_KINDS)}")
    device = str(_native().select_device(kind)).lower()
    if "cuda" in device or "gpu" in device:
        return "gpu:0"
    if "tpu" in device:
        return "tpu:0"
    if "mps" in device:
        raise DeviceUnavailable("Keras on PyTorch does not drive Apple MPS here")
    return "cpu:0"


def configure(config, threads: int) -> dict:
    """The native adapter's fairness settings for this backend (read back), the Keras dtype policy
    for ``config.precision`` and, with ``config.deterministic``, Keras's seeds
    (``keras.utils.set_random_seed``)."""
    flags = _native().configure(config, threads)
    if config.deterministic:
        keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if config.precision == "bf16" else "float32")
    compiled = config.mode == "compiled"
    if BACKEND == "torch" and compiled:
        # Keras's torch.compile'd steps see several batch shapes (training, evaluation, batch 1);
        # the automatic switch to dynamic shapes then fails in TorchInductor on the CNN with torch
        # 2.13.0 and Keras 3.15.1 ("cannot determine truth value of Relational"). Static shapes:
        # one compile per shape, as the native PyTorch column gets.
        import torch._dynamo

        torch._dynamo.config.automatic_dynamic_shapes = False
    return {
        **flags,
        "keras_backend": BACKEND,
        "keras_dtype_policy": keras.mixed_precision.global_policy().name,
        "compile": f"model.compile(jit_compile=True) ({'torch.compile' if BACKEND == 'torch' else 'XLA'})"
        if compiled else "model.compile(run_eagerly=True)",
        "loop": "model.fit, one call per epoch, steps_per_execution=1",
    }  # fmt: skip


class StepLoss(keras.metrics.Metric):
    """The mean softmax cross-entropy of the latest batch alone, from its logits (``y_pred``).

    Keras's ``loss`` log is the mean over the epoch so far; this metric is overwritten at every
    step instead of accumulated, so ``logs["step_loss"]`` at a batch end is that step's loss before
    its update: the per-step figure the other frameworks report.
    """

    def __init__(self, name: str = "step_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.value = self.add_variable(shape=(), initializer="zeros", name="value")

    def update_state(self, y_true, y_pred, sample_weight=None):
        losses = keras.losses.sparse_categorical_crossentropy(y_true, keras.ops.cast(y_pred, "float32"), from_logits=True)
        self.value.assign(keras.ops.mean(losses))

    def result(self):
        # A tensor, not the variable itself: JAX >= 0.9 refuses a variable in Keras's symbolic build.
        return keras.ops.convert_to_tensor(self.value)

    def reset_state(self):
        self.value.assign(0.0)


def make_train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer):
    """The single step ``(x, y, idx) -> loss``: ``model.train_on_batch`` on the rows ``idx`` (Keras's
    one-batch API; ``model.fit`` is the loop, ``Trainer.fit_epoch``). A model not compiled yet is
    compiled eager here (:func:`compile_model`); ``Trainer`` compiles it for its mode first."""
    if not model.compiled:
        compile_model(model, optimizer, compiled=False)

    def train_step(x, y, idx):
        return model.train_on_batch(x[idx], y[idx], return_dict=True)["step_loss"]

    return train_step


def compile_model(model: keras.Model, optimizer, compiled: bool) -> None:
    """``model.compile`` as the Keras guides write it, for the compile mode (module docstring)."""
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[StepLoss()],
        jit_compile=compiled,
        run_eagerly=not compiled,
    )


def versions() -> dict[str, str]:
    """Versions of Keras and of its backend's packages."""
    out = {"keras": keras.__version__, "keras_backend": BACKEND}
    out.update(_native().versions())
    return out


def list_devices() -> list[str]:
    """The devices the backend sees, as its native adapter lists them."""
    return _native().list_devices()


class _Windows(keras.callbacks.Callback):
    """Times ``model.fit``'s steps in windows of ``lengths`` steps and hands each to ``record``."""

    def __init__(self, lengths, record):
        super().__init__()
        ends = np.cumsum(lengths)
        self._starts = dict(zip((ends - np.asarray(lengths)).tolist(), lengths))
        self._record = record
        self._losses: list[float] = []

    def on_train_batch_begin(self, batch, logs=None):
        if batch in self._starts:
            self._n, self._losses = self._starts[batch], []
            self._c0, self._t0 = bench.cpu_seconds(), time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._losses.append(logs["step_loss"])  # a Python float: the step has finished
        if len(self._losses) == self._n:
            dt, cpu = time.perf_counter() - self._t0, bench.cpu_seconds() - self._c0
            self._record(self._n, dt, cpu, np.asarray(self._losses, dtype=np.float64))


class _Batches:
    """One epoch's batches: ``batches[i]`` is step ``i``'s training rows (for ``train_on_batch``),
    and ``x``, ``y`` are the rows gathered on the host in the shared order for ``model.fit``, once,
    before the epoch's timing."""

    def __init__(self, x, y, rows):
        self.rows, self.batch = rows, rows.shape[1]
        flat = rows.reshape(-1)
        self.x, self.y = x[flat], y[flat]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


class Trainer:
    """Keras 3 (``model.fit``) implementation of ``frameworks.contract.TrainerProtocol``, with the
    capability ``fit_loop``."""

    name = f"keras-{BACKEND}"
    capabilities = frozenset({"fit_loop"})

    def __init__(self, spec, weights, config, x_train, y_train):
        self.spec, self.config = spec, config
        self._select_device()
        self._build(weights)
        self._place_data(x_train, y_train)
        self._compile()

    def _select_device(self):
        self.device = select_device(self.config.device)
        # Keras places everything on the backend's default device by itself; a keras.device scope
        # is entered only to move off it (on the PyTorch backend, Keras 3.15.1 builds a model made
        # inside keras.device("cpu:0") with variables that get no gradients: "No gradients provided").
        self._scope = (lambda: keras.device(self.device)) if self.device != select_device("auto") else contextlib.nullcontext
        self.device_kind = self.device.split(":")[0]
        names = [d for d in list_devices() if self.device_kind in d.lower() or (self.device_kind == "gpu" and "cuda" in d)]
        self.device_name = names[0] if names else self.device

    def _build(self, weights):
        with self._scope():
            self.model = load_weights(build_model(self.spec, self.config), self.spec, weights)
            self.optimizer = make_optimizer(self.config, self.model)

    def _place_data(self, x_train, y_train):
        # Keras's fit takes host arrays and moves each batch itself, as its users give it NumPy arrays.
        self.x, self.y = x_train, y_train

    def _compile(self):
        compile_model(self.model, self.optimizer, compiled=self.config.mode == "compiled")
        self._step = make_train_step(self.model, self.optimizer)

    def indices(self, rows):
        return _Batches(self.x, self.y, rows)

    def fit_epoch(self, batches, lengths, record):
        with self._scope():
            self.model.fit(batches.x, batches.y, batch_size=batches.batch, epochs=1, shuffle=False, verbose=0,
                           callbacks=[_Windows(lengths, record)])  # fmt: skip

    def train_step(self, idx):
        with self._scope():
            return self._step(self.x, self.y, idx)

    def losses(self, handles):
        return np.asarray(handles, dtype=np.float64)

    def logits(self, x):
        with self._scope():
            return batched(lambda xb: keras.ops.convert_to_numpy(self.model.predict_on_batch(xb)).astype(np.float32), x)

    def weights(self):
        return canonical_weights(self.model, self.spec)
