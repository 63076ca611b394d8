"""Training Keras 3 models on TensorFlow from the canonical weights.

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
compute, float32 variables; https://keras.io/api/mixed_precision/policy/), loss in float32.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ..common import DeviceUnavailable, batched  # noqa: E402
from .models import cnn, mlp  # noqa: E402

ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8


def select_device(kind: str) -> str:
    """``auto``: the first GPU, else CPU; raises DeviceUnavailable for a missing ``gpu``/``tpu``."""
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

    Intra- and inter-op threads = ``threads`` (``tf.config.threading``, as PyTorch's defaults); TF32 off; GPU memory growth on
    (so memory figures mean something); op determinism with ``config.deterministic``
    (https://www.tensorflow.org/api_docs/python/tf/config/experimental/enable_op_determinism,
    which needs the seeds set: ``keras.utils.set_random_seed``).
    """
    from tensorflow.python.framework import config as tf_config  # is_op_determinism_enabled has no public alias

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


def build_model(spec) -> keras.Model:
    """The Keras model for a ``ModelSpec``."""
    if spec.kind == "cnn":
        return cnn(spec.image_shape, spec.n_classes, spec.channels, spec.kernel_size, spec.dense)
    return mlp(spec.n_features, spec.hidden, spec.n_classes, spec.activation)


def make_optimizer(config) -> keras.optimizers.Optimizer:
    """Keras optimizer for ``config.optimizer`` (definitions in the module docstring)."""
    if config.optimizer == "adam":
        return keras.optimizers.Adam(config.lr, beta_1=ADAM_B1, beta_2=ADAM_B2, epsilon=ADAM_EPS)
    return keras.optimizers.SGD(config.lr, momentum=config.momentum if config.optimizer == "momentum" else 0.0)


class Trainer:
    """TensorFlow implementation of ``frameworks.common.TrainerProtocol``."""

    name = "tensorflow"

    def __init__(self, spec, weights, config, x_train, y_train):
        self.spec, self.config = spec, config
        self.device = select_device(config.device)
        self.device_name = self.device.rsplit("/device:", 1)[-1]
        self.device_kind = "gpu" if "GPU" in self.device else "cpu"
        with tf.device(self.device):
            self.model = build_model(spec)
            self.model.set_weights(list(weights.values()))
            self.optimizer = make_optimizer(config)
            self.optimizer.build(self.model.trainable_variables)
            self.x = tf.constant(x_train)
            self.y = tf.constant(y_train)
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        compiled = config.mode == "compiled"
        self._step = tf.function(self._train_step, jit_compile=True) if compiled else self._train_step
        self._apply = tf.function(self._forward, jit_compile=True) if compiled else self._forward

    def _train_step(self, idx):
        xb, yb = tf.gather(self.x, idx), tf.gather(self.y, idx)
        with tf.GradientTape() as tape:
            loss = self.loss_fn(yb, tf.cast(self.model(xb, training=True), tf.float32))
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply(grads, self.model.trainable_variables)
        return loss

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
        names = list(self.spec.shapes())
        return dict(zip(names, (np.asarray(w) for w in self.model.get_weights()), strict=True))

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

    @staticmethod
    def versions() -> dict[str, str]:
        build = tf.sysconfig.get_build_info()
        return {
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "cuda": build.get("cuda_version", ""), "cudnn": build.get("cudnn_version", ""),
        }  # fmt: skip


def list_devices() -> list[str]:
    """Logical devices TensorFlow sees, e.g. ``["/device:CPU:0", "/device:GPU:0"]``."""
    return [d.name for d in tf.config.list_logical_devices()]
