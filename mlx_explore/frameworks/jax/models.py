"""The models in JAX with Flax Linen.

Why Linen rather than Flax NNX or bare functions: Linen's parameters are an explicit pytree whose
layout *is* the canonical one (``Dense`` kernel ``(in, out)``, ``Conv`` kernel ``(H, W, C_in,
C_out)``, NHWC images), so the shared NumPy weights load with no transposes, and training is one
pure ``jax.jit`` function of ``(params, opt_state, batch)`` with Optax: the functional style JAX is
known for (https://flax-linen.readthedocs.io/). Inputs: ``(N, F)`` or NHWC images; outputs: logits.
"""

from typing import Any, Sequence

import flax.linen as nn

ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "sigmoid": nn.sigmoid}

# The code of each model kind (logreg is the MLP with no hidden layer).
MODEL_CODE = {"logreg": "MLP", "mlp": "MLP", "cnn": "CNN"}


class MLP(nn.Module):
    """Dense layers of widths ``hidden`` with one activation, then a dense layer to the logits.
    ``hidden=()`` is softmax (multinomial logistic) regression."""

    hidden: Sequence[int]
    n_classes: int
    activation: str = "relu"
    dtype: Any = None  # computation dtype, e.g. jnp.bfloat16; parameters stay float32

    @nn.compact
    def __call__(self, x):
        for h in self.hidden:
            x = ACTIVATIONS[self.activation](nn.Dense(h, dtype=self.dtype)(x))
        return nn.Dense(self.n_classes, dtype=self.dtype)(x)


class CNN(nn.Module):
    """LeNet-style: two conv(3x3, same)-ReLU-maxpool(2) blocks, a hidden dense layer, the logits."""

    n_classes: int
    channels: Sequence[int] = (32, 64)
    kernel_size: int = 3
    dense: int = 128
    dtype: Any = None  # computation dtype, e.g. jnp.bfloat16; parameters stay float32

    @nn.compact
    def __call__(self, x):
        for c in self.channels:
            x = nn.Conv(c, (self.kernel_size, self.kernel_size), padding="SAME", dtype=self.dtype)(x)
            x = nn.max_pool(nn.relu(x), window_shape=(2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(self.dense, dtype=self.dtype)(x))
        return nn.Dense(self.n_classes, dtype=self.dtype)(x)
