"""The Keras 3 parts the ``tensorflow`` column and the ``keras-*`` columns share: building the
model from ``models.py``, loading the canonical weights and the optimizers. Backend-neutral: they
use only ``keras``, whatever ``KERAS_BACKEND`` is."""

from __future__ import annotations

import keras
import numpy as np

from .models import cnn, mlp

ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8


def build_model(spec, config) -> keras.Model:
    """The Keras model for a ``ModelSpec`` (``models.py``; dtype policy set by ``configure``)."""
    if spec.kind == "cnn":
        return cnn(spec.image_shape, spec.n_classes, spec.channels, spec.kernel_size, spec.dense)
    return mlp(spec.n_features, spec.hidden, spec.n_classes, spec.activation)


def load_weights(model: keras.Model, spec, weights: dict[str, np.ndarray]) -> keras.Model:
    """``model.set_weights`` with the canonical weights in canonical order (Keras's layouts are the
    canonical ones on every backend); returns ``model``."""
    model.set_weights([weights[k] for k in spec.shapes()])
    return model


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
