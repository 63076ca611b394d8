"""Training JAX/Flax models from the canonical weights with Optax (the adapter contract:
``frameworks/contract.py``).

Loading: canonical names map to Linen's (``dense_0`` -> ``Dense_0``, ``conv_0`` -> ``Conv_0``); the
layouts are identical, nothing is transposed. The sequence models name their layers as the canonical
names (``block_0/attn/query``; the positions are the parameter ``pos_embedding``), with Flax's own
attention layouts. The GRU cell has one dense layer per gate and side (``ir``, ``iz``, ``in``,
``hr``, ``hz``, ``hn``, as ``nn.GRUCell``): the canonical ``(D, 3H)`` kernel and ``3H`` biases are
split into the gates r, z, n along their last axis, and joined back by ``Trainer.weights``.

Optimizers (Optax, https://optax.readthedocs.io/): ``sgd`` = ``optax.sgd(lr)``; ``momentum`` =
``optax.sgd(lr, momentum=m)``, i.e. ``v = g + m v; p -= lr v`` (same as PyTorch); ``adam`` =
``optax.adam(lr, 0.9, 0.999, eps=1e-8)``, epsilon added to ``sqrt(v_hat)`` (same as PyTorch).

Compile mode: ``compiled`` is one ``jax.jit`` of the whole step (params and optimizer state
donated); ``eager`` runs the same function op by op. The training arrays live on the device; each
step gathers its batch there from the index array. A loop is one primitive, ``lax.scan``, compiled
whole even in eager mode, and the GRU's (``nn.RNN``) is compiled anew at every call, forward and
backward: Flax lifts the cell into a new function each time, so JAX's cache never hits. An eager GRU
step is mostly XLA compile time.

Precision: ``fp32`` sets ``jax_default_matmul_precision="highest"`` (no TF32 / bf16 passes on
GPUs and TPUs); ``bf16`` computes in bfloat16 with float32 parameters (Flax ``dtype``), the loss in
float32 (https://flax-linen.readthedocs.io/en/latest/guides/training_techniques/use_mixed_precision.html),
and leaves the matmul precision at XLA's ``default``, which may use TF32 for what stays float32.
Threads: XLA's CPU runtime has no thread-count API; it sizes its pool from the cores the process may
use, so the worker pins the child to ``threads`` cores (https://github.com/jax-ml/jax/issues/1539).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..common import batched
from ...models import FFN_MULT, LN_EPS
from ..contract import DEVICE_KINDS, DeviceUnavailable
from .models import CNN, GRU, MLP, Transformer

ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8


def select_device(kind: str):
    """``auto``: JAX's default device (TPU or GPU where present); raises DeviceUnavailable when JAX
    sees no device of ``kind``, ValueError for an unknown kind."""
    if kind not in DEVICE_KINDS:
        raise ValueError(f"unknown device kind {kind!r}; allowed: {', '.join(DEVICE_KINDS)}")
    if kind == "auto":
        return jax.devices()[0]
    try:
        return jax.devices(kind)[0]
    except RuntimeError as exc:
        raise DeviceUnavailable(f"JAX sees no {kind} ({exc})") from None


def configure(config, threads: int) -> dict:
    """Put the fairness settings in force before anything runs, and read them back.

    JAX has no thread-count setting; what is in force is the core affinity of the process
    (``intra_op_threads``, pinned to ``threads`` by the worker) and ``XLA_FLAGS``, both read here.
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


def build_model(spec, config):
    """The Flax Linen module for a ``ModelSpec``, computing in bfloat16 for ``config.precision ==
    "bf16"`` (parameters stay float32)."""
    dtype = jnp.bfloat16 if config.precision == "bf16" else None
    if spec.kind == "cnn":
        return CNN(spec.n_classes, spec.channels, spec.kernel_size, spec.dense, dtype=dtype)
    if spec.kind == "gru":
        return GRU(spec.d_model, spec.n_classes, dtype=dtype)
    if spec.kind == "transformer":
        return Transformer(spec.d_model, spec.n_classes, spec.heads, spec.layers, FFN_MULT, LN_EPS, dtype=dtype)
    return MLP(spec.hidden, spec.n_classes, spec.activation, dtype=dtype)


def _linen_name(canonical: str) -> str:
    """``dense_0`` -> ``Dense_0``: the name Linen's ``@nn.compact`` gives the layer."""
    kind, i = canonical.split("_")
    return f"{kind.capitalize()}_{i}"


#: The canonical GRU parameters -> (side of the cell's dense layers, their leaf); gates r, z, n.
_GRU_PARAMS = {
    "kernel": ("i", "kernel"), "recurrent_kernel": ("h", "kernel"), "bias": ("i", "bias"), "recurrent_bias": ("h", "bias"),
}  # fmt: skip
_GATES = ("r", "z", "n")


def _linen_paths(spec, key: str) -> list[tuple[str, ...]]:
    """Paths in the Linen params of the leaves holding the canonical parameter ``key``: one, or the
    cell's three gates r, z, n for a GRU kernel or bias (its last axis split in three)."""
    if spec.kind == "gru" and key.startswith("gru/"):
        side, leaf = _GRU_PARAMS[key.split("/")[1]]
        return [("gru", side + gate, leaf) for gate in _GATES]
    if spec.kind == "transformer" and key == "pos/embedding":
        return [("pos_embedding",)]
    if spec.kind in ("gru", "transformer"):  # their layers are named after the canonical ones
        return [tuple(key.split("/"))]
    layer, leaf = key.split("/")
    return [(_linen_name(layer), leaf)]


def load_weights(model, spec, weights: dict[str, np.ndarray]) -> dict:
    """Canonical weights -> Linen params ``{"Dense_0": {"kernel", "bias"}, ...}`` (same layouts, the
    GRU's split per gate; a Linen module holds no parameters, so ``model`` is not changed)."""
    params: dict = {}
    for key in spec.shapes():
        paths = _linen_paths(spec, key)
        for path, value in zip(paths, np.split(weights[key], len(paths), axis=-1)):
            node = params
            for name in path[:-1]:
                node = node.setdefault(name, {})
            node[path[-1]] = jnp.asarray(value)
    return params


def canonical_weights(spec, params) -> dict[str, np.ndarray]:
    """Linen params -> canonical weights (names, order, layouts): the inverse of :func:`load_weights`,
    exact. In canonical order: ``jit`` returns the params with their dict keys sorted."""

    def leaf(path):
        node = params
        for name in path:
            node = node[name]
        return np.asarray(node)

    out = {}
    for key in spec.shapes():
        leaves = [leaf(path) for path in _linen_paths(spec, key)]
        out[key] = leaves[0] if len(leaves) == 1 else np.concatenate(leaves, axis=-1)
    return out


def make_optimizer(config, model) -> optax.GradientTransformation:
    """Optax transformation for ``config.optimizer`` (definitions in the module docstring); Optax
    builds it apart from the parameters, so ``model`` is not used (its state is ``tx.init(params)``)."""
    if config.optimizer == "adam":
        return optax.adam(config.lr, b1=ADAM_B1, b2=ADAM_B2, eps=ADAM_EPS)
    return optax.sgd(config.lr, momentum=config.momentum if config.optimizer == "momentum" else None)


def make_train_step(model, optimizer):
    """The pure training step ``(params, opt_state, x, y, idx) -> (params, opt_state, loss)``."""

    def loss_fn(params, xb, yb):
        logits = model.apply({"params": params}, xb).astype(jnp.float32)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    def train_step(params, opt_state, x, y, idx):
        loss, grads = jax.value_and_grad(loss_fn)(params, x[idx], y[idx])
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return train_step


def versions() -> dict[str, str]:
    """Versions of JAX, Flax, Optax and the backend JAX runs on."""
    import flax

    return {"jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__, "backend": jax.default_backend()}


def list_devices() -> list[str]:
    """Devices JAX sees, e.g. ``["cpu:0"]`` or ``["gpu:0 (NVIDIA H100 80GB HBM3)"]``."""
    return [f"{d.platform}:{d.id}" + (f" ({d.device_kind})" if d.platform != "cpu" else "") for d in jax.devices()]


class Trainer:
    """JAX implementation of ``frameworks.contract.TrainerProtocol``."""

    name = "jax"
    capabilities = frozenset({"device_memory", "device_matmul"})

    def __init__(self, spec, weights, config, x_train, y_train):
        self.spec, self.config = spec, config
        self._select_device()
        self._build(weights)
        self._place_data(x_train, y_train)
        self._compile()

    def _put(self, a):
        return jax.device_put(a, self.dev)

    def _select_device(self):
        self.dev = select_device(self.config.device)
        self.device = f"{self.dev.platform}:{self.dev.id}"
        self.device_kind = {"cuda": "gpu", "rocm": "gpu"}.get(self.dev.platform, self.dev.platform)
        self.device_name = getattr(self.dev, "device_kind", self.dev.platform)

    def _build(self, weights):
        self.model = build_model(self.spec, self.config)
        self.params = jax.tree_util.tree_map(self._put, load_weights(self.model, self.spec, weights))
        self.optimizer = make_optimizer(self.config, self.model)
        self.opt_state = jax.tree_util.tree_map(self._put, self.optimizer.init(self.params))

    def _place_data(self, x_train, y_train):
        self.x, self.y = self._put(x_train), self._put(y_train.astype(np.int32))

    def _compile(self):
        compiled = self.config.mode == "compiled"
        step = make_train_step(self.model, self.optimizer)
        self._step = jax.jit(step, donate_argnums=(0, 1)) if compiled else step
        apply = lambda params, xb: self.model.apply({"params": params}, xb).astype(jnp.float32)  # noqa: E731
        self._apply = jax.jit(apply) if compiled else apply

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
        return canonical_weights(self.spec, self.params)

    def peak_device_mb(self):
        stats = self.dev.memory_stats() if self.device_kind != "cpu" else None
        return stats["peak_bytes_in_use"] / 2**20 if stats and "peak_bytes_in_use" in stats else None

    def matmul(self):
        if self.device_kind == "cpu":
            return None
        a = jax.device_put(jnp.ones((4096, 4096), jnp.float32), self.dev)
        mm = jax.jit(lambda m: m @ m)
        return (lambda: mm(a)), (lambda r: r.block_until_ready()), 4096, "jax float32"
