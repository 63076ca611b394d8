"""The Keras 3 parts the ``tensorflow`` column and the ``keras-*`` columns share: building the
model from ``models.py``, loading the canonical weights (and reading them back) and the optimizers.
Backend-neutral: they use only ``keras``, whatever ``KERAS_BACKEND`` is.

Weights: the MLP and the CNN hold exactly the canonical arrays in the canonical order
(``model.set_weights``). The sequence models are loaded layer by layer, by the layer names
``models.py`` gives (:func:`layer_weights`): ``block_0/attn/query/kernel`` lives in the layer
``block_0_attn`` (Keras names hold no ``/``), whose weights are the canonical ones in the canonical
order (query, key, value, output; each kernel then bias); layer norms hold ``gamma``/``beta`` =
``scale``/``bias``. The GRU layer holds ``[kernel, recurrent_kernel, bias]`` with its gates in the
order z, r, h (the canonical one is PyTorch's r, z, n) and ``bias (2, 3H)`` = the input-side and the
hidden-side biases stacked (``reset_after=True``): :func:`gru_to_keras`, exact both ways.
"""

from __future__ import annotations

import keras
import numpy as np

from ...config import SEQUENCE_MODELS
from ...models import FFN_MULT, LN_EPS
from .models import cnn, gru, mlp, transformer

ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8


def build_model(spec, config) -> keras.Model:
    """The Keras model for a ``ModelSpec`` (``models.py``; dtype policy set by ``configure``)."""
    if spec.kind == "cnn":
        return cnn(spec.image_shape, spec.n_classes, spec.channels, spec.kernel_size, spec.dense)
    if spec.kind == "gru":
        return gru(spec.seq_shape, spec.d_model, spec.n_classes)
    if spec.kind == "transformer":
        return transformer(spec.seq_shape, spec.d_model, spec.n_classes, spec.heads, spec.layers, FFN_MULT, LN_EPS)
    return mlp(spec.n_features, spec.hidden, spec.n_classes, spec.activation)


def layer_weights(spec) -> dict[str, list[str]]:
    """The Keras layers of a ``gru`` or ``transformer`` model (``models.py``'s layer names) and the
    canonical weights each holds, in canonical order: ``{"embed": ["embed/kernel", "embed/bias"],
    ..., "block_0_attn": ["block_0/attn/query/kernel", ...], ...}``."""
    out: dict[str, list[str]] = {}
    for name in spec.shapes():
        parts = name.split("/")
        layer = "_".join(parts[:2] if "/attn/" in name else parts[:-1])
        out.setdefault(layer, []).append(name)
    return out


def _swap_rz(a: np.ndarray) -> np.ndarray:
    """The first two gate blocks of the last axis swapped: r, z, n <-> z, r, n (its own inverse)."""
    first, second, third = np.split(a, 3, axis=-1)
    return np.concatenate([second, first, third], axis=-1)


def gru_to_keras(kernel, recurrent_kernel, bias, recurrent_bias) -> list[np.ndarray]:
    """The canonical GRU weights (gates r, z, n) as ``layers.GRU`` holds them: ``[kernel,
    recurrent_kernel, bias (2, 3H)]``, gates z, r, h."""
    return [_swap_rz(kernel), _swap_rz(recurrent_kernel), np.stack([_swap_rz(bias), _swap_rz(recurrent_bias)])]


def gru_from_keras(kernel, recurrent_kernel, bias) -> list[np.ndarray]:
    """The inverse of :func:`gru_to_keras`: ``[kernel, recurrent_kernel, bias, recurrent_bias]``."""
    return [_swap_rz(kernel), _swap_rz(recurrent_kernel), _swap_rz(bias[0]), _swap_rz(bias[1])]


def load_weights(model: keras.Model, spec, weights: dict[str, np.ndarray]) -> keras.Model:
    """Load the canonical ``weights`` into ``model`` (conversions: module docstring); returns ``model``.

    Raises:
        ValueError: the model holds weights the canonical ones do not cover, or of other shapes.
    """
    if spec.kind not in SEQUENCE_MODELS:  # the same arrays in the same order
        model.set_weights([weights[k] for k in spec.shapes()])
        return model
    by_layer = layer_weights(spec)
    if sum(len(model.get_layer(layer).weights) for layer in by_layer) != len(model.weights):
        raise ValueError(f"{spec.kind}: the Keras model holds weights outside the layers {', '.join(by_layer)}")
    for layer, names in by_layer.items():
        values = [weights[k] for k in names]
        model.get_layer(layer).set_weights(gru_to_keras(*values) if layer == "gru" else values)
    return model


def canonical_weights(model: keras.Model, spec) -> dict[str, np.ndarray]:
    """``model``'s current weights in canonical names, order and layouts, ``float32``: the inverse of
    :func:`load_weights`, exact (so right after loading, bit for bit the weights loaded)."""
    if spec.kind not in SEQUENCE_MODELS:
        return dict(zip(spec.shapes(), (np.asarray(w, dtype=np.float32) for w in model.get_weights()), strict=True))
    out = {}
    for layer, names in layer_weights(spec).items():
        values = model.get_layer(layer).get_weights()
        out.update(zip(names, gru_from_keras(*values) if layer == "gru" else values, strict=True))
    return {k: np.asarray(out[k], dtype=np.float32) for k in spec.shapes()}


def make_optimizer(config, model: keras.Model) -> keras.optimizers.Optimizer:
    """Keras optimizer for ``config.optimizer``: ``sgd`` = ``SGD(lr)``; ``momentum`` = ``SGD(lr,
    momentum=m)`` (``u = m u - lr g; p += u``, PyTorch's iterates for a constant lr); ``adam`` =
    ``Adam(lr, 0.9, 0.999, epsilon=1e-8)`` (epsilon added to ``sqrt(v)`` before bias correction,
    Kingma & Ba's "epsilon hat"). Built on ``model``'s variables now, not in the first step."""
    if config.optimizer == "adam":
        optimizer = keras.optimizers.Adam(config.lr, beta_1=ADAM_B1, beta_2=ADAM_B2, epsilon=ADAM_EPS)
    else:
        optimizer = keras.optimizers.SGD(config.lr, momentum=config.momentum if config.optimizer == "momentum" else 0.0)
    optimizer.build(model.trainable_variables)
    return optimizer
