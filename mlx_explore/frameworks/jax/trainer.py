"""Training JAX/Flax models from the canonical weights with Optax.

Loading: canonical names map to Linen's (``dense_0`` -> ``Dense_0``, ``conv_0`` -> ``Conv_0``); the
layouts are identical, nothing is transposed.

Optimizers (Optax, https://optax.readthedocs.io/): ``sgd`` = ``optax.sgd(lr)``; ``momentum`` =
``optax.sgd(lr, momentum=m)``, i.e. ``v = g + m v; p -= lr v`` (same as PyTorch); ``adam`` =
``optax.adam(lr, 0.9, 0.999, eps=1e-8)``, epsilon added to ``sqrt(v_hat)`` (same as PyTorch).

Compile mode: ``compiled`` is one ``jax.jit`` of the whole step (params and optimizer state
donated); ``eager`` runs the same function op by op. The training arrays live on the device; each
step gathers its batch there from the index array.
"""

from __future__ import annotations

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


def build_model(spec):
    """The Flax Linen module for a ``ModelSpec``."""
    if spec.kind == "cnn":
        return CNN(spec.n_classes, spec.channels, spec.kernel_size, spec.dense)
    return MLP(spec.hidden, spec.n_classes, spec.activation)


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
        logits = model.apply({"params": params}, xb)
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
        self.device_name = getattr(self.dev, "device_kind", self.dev.platform)
        self.model = build_model(spec)
        tx = make_optimizer(config)
        put = lambda a: jax.device_put(a, self.dev)  # noqa: E731
        self.params = jax.tree_util.tree_map(put, to_flax(weights))
        self.opt_state = jax.tree_util.tree_map(put, tx.init(self.params))
        self.x, self.y = put(x_train), put(y_train.astype(np.int32))
        step = make_train_step(self.model, tx)
        self._step = jax.jit(step, donate_argnums=(0, 1)) if config.mode == "compiled" else step
        apply = lambda params, xb: self.model.apply({"params": params}, xb)  # noqa: E731
        self._apply = jax.jit(apply) if config.mode == "compiled" else apply

    def train_step(self, idx):
        self.params, self.opt_state, loss = self._step(self.params, self.opt_state, self.x, self.y, jax.device_put(idx, self.dev))
        return loss

    def losses(self, handles):
        return np.asarray(jax.device_get(jnp.stack(handles)), dtype=np.float64)

    def logits(self, x):
        return batched(lambda xb: np.asarray(self._apply(self.params, jax.device_put(xb, self.dev)), np.float32), x)

    def weights(self):
        return {
            f"{layer.lower()}/{leaf}": np.asarray(v)
            for layer, leaves in self.params.items()
            for leaf, v in leaves.items()
        }

    @staticmethod
    def versions() -> dict[str, str]:
        import flax

        return {"jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__, "backend": jax.default_backend()}


def list_devices() -> list[str]:
    """Devices JAX sees, e.g. ``["cpu:0"]`` or ``["gpu:0 (NVIDIA H100 80GB HBM3)"]``."""
    return [f"{d.platform}:{d.id}" + (f" ({d.device_kind})" if d.platform != "cpu" else "") for d in jax.devices()]
