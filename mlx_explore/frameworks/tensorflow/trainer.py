"""Training Keras 3 models on TensorFlow from the canonical weights (the adapter contract:
``frameworks/contract.py``).

The step is the custom loop from the Keras guide "Writing a training loop from scratch in
TensorFlow" (https://keras.io/guides/writing_a_custom_training_loop_in_tensorflow/):
``tf.GradientTape`` + ``optimizer.apply``, so every step's loss is seen (``model.fit`` reports a
running mean).

Optimizers (``keras.optimizers``): ``sgd`` = ``SGD(lr)``; ``momentum`` = ``SGD(lr, momentum=m)``,
i.e. ``u = m u - lr g; p += u`` (the same iterates as PyTorch for a constant lr); ``adam`` =
``Adam(lr, 0.9, 0.999, epsilon=1e-8)``. Keras adds epsilon to ``sqrt(v)`` before bias correction
(Kingma & Ba's "epsilon hat"), PyTorch and Optax to ``sqrt(v_hat)``; with the same number the
two differ only while ``sqrt(v_hat)`` is comparable to 1e-8.

Compile mode: ``compiled`` = ``tf.function(jit_compile=True)`` (XLA); ``eager`` runs op by op.
Precision: ``fp32`` with TF32 off; ``bf16`` is the Keras ``mixed_bfloat16`` policy (bfloat16
compute, float32 variables; https://keras.io/api/mixed_precision/policy/), loss in float32, TF32
still off.

Private API (checked against TensorFlow 2.21.0 and Keras 3.15.1; ``tests/test_adapters.py`` fails
when it changes): ``tensorflow.python.framework.config.is_op_determinism_enabled()``, read in
``configure``: TensorFlow has ``tf.config.experimental.enable_op_determinism`` but no public way to
read the switch back.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "tensorflow"  # this column is TensorFlow, whatever the environment says

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ..common import batched  # noqa: E402
from ..contract import DEVICE_KINDS, DeviceUnavailable  # noqa: E402
from ..keras.common import build_model, canonical_weights, load_weights, make_optimizer  # noqa: E402,F401 - part of the adapter


def select_device(kind: str) -> str:
    """``auto``: the first GPU, else CPU; raises DeviceUnavailable for a missing ``gpu`` and for
    ``tpu`` (a TPUStrategy is not driven here), ValueError for an unknown kind."""
    if kind not in DEVICE_KINDS:
        raise ValueError(f"unknown device kind {kind!r}; allowed: {', '.join(DEVICE_KINDS)}")
    gpus = tf.config.list_logical_devices("GPU")
    if kind in ("auto", "gpu") and gpus:
        return gpus[0].name
    if kind == "gpu":
        raise DeviceUnavailable("TensorFlow sees no GPU (tf.config.list_logical_devices('GPU') is empty)")
    if kind == "tpu":
        raise DeviceUnavailable("TPU needs a tf.distribute.TPUStrategy, which this project does not drive")
    return tf.config.list_logical_devices("CPU")[0].name


def configure(config, threads: int) -> dict:
    """Put the fairness settings in force before TensorFlow initializes, and read them back.

    Intra- and inter-op threads = ``threads`` (``tf.config.threading``, as PyTorch's defaults); TF32
    off; GPU memory growth on (so memory figures mean something); op determinism with
    ``config.deterministic``
    (https://www.tensorflow.org/api_docs/python/tf/config/experimental/enable_op_determinism,
    which needs the seeds set: ``keras.utils.set_random_seed``); the Keras dtype policy for
    ``config.precision``.
    """
    # Private (TensorFlow 2.21.0): is_op_determinism_enabled has no public alias.
    from tensorflow.python.framework import config as tf_config

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    tf.config.experimental.enable_tensor_float_32_execution(False)
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    if config.deterministic:
        keras.utils.set_random_seed(config.seed)
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if config.precision == "bf16" else "float32")
    return {
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "tf32": tf.config.experimental.tensor_float_32_execution_enabled(),
        "deterministic": tf_config.is_op_determinism_enabled(),
        "gpu_memory_growth": [tf.config.experimental.get_memory_growth(g) for g in gpus],
        "precision": config.precision,
        "keras_dtype_policy": keras.mixed_precision.global_policy().name,
        "compile": "tf.function(jit_compile=True) (XLA)" if config.mode == "compiled" else "eager",
    }


def make_train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer):
    """The training step ``(x, y, idx) -> loss`` of the Keras guide's custom loop, gathering the
    batch inside (so a ``tf.function`` of it keeps the gather on the device)."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def train_step(x, y, idx):
        xb, yb = tf.gather(x, idx), tf.gather(y, idx)
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, tf.cast(model(xb, training=True), tf.float32))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return train_step


def versions() -> dict[str, str]:
    """Versions of TensorFlow, Keras and the CUDA / cuDNN TensorFlow was built with ("" where none)."""
    build = tf.sysconfig.get_build_info()
    return {
        "tensorflow": tf.__version__, "keras": keras.__version__,
        "cuda": build.get("cuda_version", ""), "cudnn": build.get("cudnn_version", ""),
    }  # fmt: skip


def list_devices() -> list[str]:
    """Logical devices TensorFlow sees, e.g. ``["/device:CPU:0", "/device:GPU:0"]``."""
    return [d.name for d in tf.config.list_logical_devices()]


class Trainer:
    """TensorFlow implementation of ``frameworks.contract.TrainerProtocol``."""

    name = "tensorflow"
    capabilities = frozenset({"device_memory", "device_matmul"})

    def __init__(self, spec, weights, config, x_train, y_train):
        self.spec, self.config = spec, config
        self._select_device()
        self._build(weights)
        self._place_data(x_train, y_train)
        self._compile()

    def _select_device(self):
        self.device = select_device(self.config.device)
        self.device_name = self.device.rsplit("/device:", 1)[-1]
        self.device_kind = "gpu" if "GPU" in self.device else "cpu"

    def _build(self, weights):
        with tf.device(self.device):
            self.model = load_weights(build_model(self.spec, self.config), self.spec, weights)
            self.optimizer = make_optimizer(self.config, self.model)

    def _place_data(self, x_train, y_train):
        with tf.device(self.device):
            self.x = tf.constant(x_train)
            self.y = tf.constant(y_train)

    def _compile(self):
        compiled = self.config.mode == "compiled"
        step, x, y = make_train_step(self.model, self.optimizer), self.x, self.y

        def train_batch(idx):  # the training arrays are captured, as in the Keras guide's loop
            return step(x, y, idx)

        self._step = tf.function(train_batch, jit_compile=True) if compiled else train_batch
        self._apply = tf.function(self._forward, jit_compile=True) if compiled else self._forward

    def _forward(self, xb):
        return tf.cast(self.model(xb, training=False), tf.float32)

    def indices(self, rows):
        # One constant split into per-step tensors: ~35 us for 9 rows, against ~95 us for 9
        # tf.constant calls.
        with tf.device(self.device):
            return tf.unstack(tf.constant(rows))

    def train_step(self, idx):
        with tf.device(self.device):
            return self._step(idx)

    def losses(self, handles):
        return tf.stack(handles).numpy().astype(np.float64)

    def logits(self, x):
        with tf.device(self.device):
            return batched(lambda xb: self._apply(tf.constant(xb)).numpy(), x)

    def weights(self):
        return canonical_weights(self.model, self.spec)

    def peak_device_mb(self):
        if self.device_kind == "cpu":
            return None
        return tf.config.experimental.get_memory_info(self.device.split("device:")[-1])["peak"] / 2**20

    def matmul(self):
        if self.device_kind == "cpu":
            return None
        with tf.device(self.device):
            a = tf.random.normal((4096, 4096))
        mm = tf.function(lambda m: tf.linalg.matmul(m, m), jit_compile=True)
        return (lambda: mm(a)), (lambda r: r.numpy()[0, 0]), 4096, "tensorflow float32"
