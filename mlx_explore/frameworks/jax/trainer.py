"""Training JAX/Flax models from the canonical weights with Optax.

Loading: canonical names map to Linen's (``dense_0`` -> ``Dense_0``, ``conv_0`` -> ``Conv_0``); the
layouts are identical, nothing is transposed.

Optimizers (Optax, https://optax.readthedocs.io/): ``sgd`` = ``optax.sgd(lr)``; ``momentum`` =
``optax.sgd(lr, momentum=m)``, i.e. ``v = g + m v; p -= lr v`` (same as PyTorch); ``adam`` =
``optax.adam(lr, 0.9, 0.999, eps=1e-8)``, epsilon added to ``sqrt(v_hat)`` (same as PyTorch).

Compile mode: ``compiled`` is one ``jax.jit`` of the whole step (params and optimizer state
donated); ``eager`` runs the same function op by op. The training arrays live on the device; each
step gathers its batch there from the index array.

Precision: ``fp32`` sets ``jax_default_matmul_precision="highest"`` (no TF32 / bf16 passes on
GPUs and TPUs); ``bf16`` computes in bfloat16 with float32 parameters (Flax ``dtype``), the loss in
float32 (https://flax-linen.readthedocs.io/en/latest/guides/training_techniques/use_mixed_precision.html).
Threads: XLA's CPU runtime has no thread-count API; it sizes its pool from the cores the process may
use, so the runner pins the child to ``threads`` cores (https://github.com/jax-ml/jax/issues/1539).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..common import DeviceUnavailable, batched
from .models import CNN, MLP

ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8


def select_device(kind: str):
    """``auto``: JAX's default device (TPU or GPU where present); raises DeviceUnavailable otherwise."""
    if kind == "auto":
        return jax.devices()[0]
    try:
        return jax.devices(kind)[0]
    except RuntimeError as exc:
        raise DeviceUnavailable(f"JAX sees no {kind} ({exc})") from None


def configure(config, threads: int) -> dict:
    """Put the fairness settings in force before anything runs, and read them back.

    JAX has no thread-count setting; what is in force is the core affinity of the process
    (``intra_op_threads``) and ``XLA_FLAGS``, both read here in the child.
    """
    jax.config.update("jax_default_matmul_precision", "highest" if config.precision == "fp32" else "default")
    xla_flags = os.environ.get("XLA_FLAGS", "")
    return {
        "intra_op_threads": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "xla_flags": xla_flags,
        "default_matmul_precision": str(jax.config.jax_default_matmul_precision),
        "tf32": str(jax.config.jax_default_matmul_precision) not in ("highest", "float32"),
        "deterministic": "--xla_gpu_deterministic_ops=true" in xla_flags,
        "gpu_preallocate": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "true"),
        "precision": config.precision,
        "compile": "jax.jit (XLA)" if config.mode == "compiled" else "eager (op by op)",
        "compile_cache": "persistent: " + str(jax.config.jax_compilation_cache_dir or "off"),
    }


def build_model(spec, dtype=None):
    """The Flax Linen module for a ``ModelSpec``; ``dtype`` is the computation dtype (None: float32)."""
    if spec.kind == "cnn":
        return CNN(spec.n_classes, spec.channels, spec.kernel_size, spec.dense, dtype=dtype)
    return MLP(spec.hidden, spec.n_classes, spec.activation, dtype=dtype)


def to_flax(weights: dict[str, np.ndarray]) -> dict:
    """Canonical weights -> Linen params ``{"Dense_0": {"kernel", "bias"}, ...}`` (same layouts)."""
    params: dict = {}
    for key, value in weights.items():
        layer, leaf = key.split("/")
        kind, i = layer.split("_")
        params.setdefault(f"{kind.capitalize()}_{i}", {})[leaf] = jnp.asarray(value)
    return params


def make_optimizer(config) -> optax.GradientTransformation:
    """Optax transformation for ``config.optimizer`` (definitions in the module docstring)."""
    if config.optimizer == "adam":
        return optax.adam(config.lr, b1=ADAM_B1, b2=ADAM_B2, eps=ADAM_EPS)
    return optax.sgd(config.lr, momentum=config.momentum if config.optimizer == "momentum" else None)


def make_train_step(model, tx):
    """The pure training step ``(params, opt_state, x, y, idx) -> (params, opt_state, loss)``."""

    def loss_fn(params, xb, yb):
        logits = model.apply({"params": params}, xb).astype(jnp.float32)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    def train_step(params, opt_state, x, y, idx):
        loss, grads = jax.value_and_grad(loss_fn)(params, x[idx], y[idx])
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return train_step


class Trainer:
    """JAX implementation of ``frameworks.common.TrainerProtocol``."""

    name = "jax"

    def __init__(self, spec, weights, config, x_train, y_train):
        self.spec, self.config = spec, config
        self.dev = select_device(config.device)
        self.device = f"{self.dev.platform}:{self.dev.id}"
        self.device_kind = {"cuda": "gpu", "rocm": "gpu"}.get(self.dev.platform, self.dev.platform)
        self.device_name = getattr(self.dev, "device_kind", self.dev.platform)
        self.model = build_model(spec, jnp.bfloat16 if config.precision == "bf16" else None)
        tx = make_optimizer(config)
        put = lambda a: jax.device_put(a, self.dev)  # noqa: E731
        self.params = jax.tree_util.tree_map(put, to_flax(weights))
        self.opt_state = jax.tree_util.tree_map(put, tx.init(self.params))
        self.x, self.y = put(x_train), put(y_train.astype(np.int32))
        step = make_train_step(self.model, tx)
        self._step = jax.jit(step, donate_argnums=(0, 1)) if config.mode == "compiled" else step
        apply = lambda params, xb: self.model.apply({"params": params}, xb).astype(jnp.float32)  # noqa: E731
        self._apply = jax.jit(apply) if config.mode == "compiled" else apply

    def indices(self, rows):
        # NumPy rows go straight into the step, as in JAX's tutorials: jit moves a small host
        # array to where the params live, and slicing a device array per step costs more.
        return rows

    def train_step(self, idx):
        self.params, self.opt_state, loss = self._step(self.params, self.opt_state, self.x, self.y, idx)
        return loss

    def losses(self, handles):
        if self.device_kind == "cpu":  # zero-copy views once computed: ~10 us for a window, jnp.stack ~100 us
            return np.array([np.asarray(h) for h in jax.block_until_ready(handles)], dtype=np.float64)
        return np.asarray(jax.device_get(jnp.stack(handles)), dtype=np.float64)  # one transfer from the device

    def logits(self, x):
        # Host inputs go straight in (jit places them with the committed params); an explicit
        # device_put costs ~100 us more for digits' validation split on a CPU.
        return batched(lambda xb: np.asarray(self._apply(self.params, xb)), x)

    def weights(self):
        return {
            f"{layer.lower()}/{leaf}": np.asarray(v)
            for layer, leaves in self.params.items()
            for leaf, v in leaves.items()
        }

    def peak_device_mb(self):
        stats = self.dev.memory_stats() if self.device_kind != "cpu" else None
        return stats["peak_bytes_in_use"] / 2**20 if stats and "peak_bytes_in_use" in stats else None

    def matmul(self):
        if self.device_kind == "cpu":
            return None
        a = jax.device_put(jnp.ones((4096, 4096), jnp.float32), self.dev)
        mm = jax.jit(lambda m: m @ m)
        return (lambda: mm(a)), (lambda r: r.block_until_ready()), 4096, "jax float32"

    @staticmethod
    def versions() -> dict[str, str]:
        import flax

        return {"jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__, "backend": jax.default_backend()}


def list_devices() -> list[str]:
    """Devices JAX sees, e.g. ``["cpu:0"]`` or ``["gpu:0 (NVIDIA H100 80GB HBM3)"]``."""
    return [f"{d.platform}:{d.id}" + (f" ({d.device_kind})" if d.platform != "cpu" else "") for d in jax.devices()]
