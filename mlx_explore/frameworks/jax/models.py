"""The models in JAX with Flax Linen.

Why Linen rather than Flax NNX or bare functions: Linen's parameters are an explicit pytree whose
layout *is* the canonical one (``Dense`` kernel ``(in, out)``, ``Conv`` kernel ``(H, W, C_in,
C_out)``, NHWC images), so the shared NumPy weights load with no transposes, and training is one
pure ``jax.jit`` function of ``(params, opt_state, batch)`` with Optax: the functional style JAX is
known for (https://flax-linen.readthedocs.io/). Inputs: ``(N, F)``, NHWC images, or ``(N, T, D)``
sequences for the GRU and the transformer (``nn.RNN`` and attention take the batch first); outputs:
logits. The attention kernels are Flax's ``DenseGeneral`` ones, query/key/value ``(d, heads,
d_head)`` and out ``(heads, d_head, d)``: the canonical layout.
"""

from functools import partial
from typing import Any, Sequence

import flax.linen as nn

ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "sigmoid": nn.sigmoid}

# The code of each model kind (logreg is the MLP with no hidden layer).
MODEL_CODE = {"logreg": "MLP", "mlp": "MLP", "cnn": "CNN", "gru": "GRU", "transformer": "Transformer"}


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


class GRUCell(nn.GRUCell):
    """``nn.GRUCell`` with a bias on every hidden-side dense layer, as cuDNN, PyTorch and Keras
    (``reset_after=True``) have.

    Flax's cell gives the hidden side of the reset and update gates no bias (``hr``, ``hz``: only
    ``hn`` has one), since ``x W + b + h U + c`` needs only one of ``b``, ``c``: the same function,
    but not the same model under training, where the two biases each get the gradient and so the
    sum moves twice as far a step. This is GRUCell's ``__call__`` with ``use_bias=True`` there; the
    gates are r, z, n, in the "reset after" form ``n = tanh(x W_n + b_n + r * (h U_n + c_n))``.
    """

    @nn.compact
    def __call__(self, carry, inputs):
        h = carry
        dense = partial(nn.Dense, h.shape[-1], dtype=self.dtype, param_dtype=self.param_dtype, bias_init=self.bias_init)
        dense_i = partial(dense, kernel_init=self.kernel_init)
        dense_h = partial(dense, kernel_init=self.recurrent_kernel_init)
        r = self.gate_fn(dense_i(name="ir")(inputs) + dense_h(name="hr")(h))
        z = self.gate_fn(dense_i(name="iz")(inputs) + dense_h(name="hz")(h))
        n = self.activation_fn(dense_i(name="in")(inputs) + r * dense_h(name="hn")(h))
        new_h = (1.0 - z) * n + z * h
        return new_h, new_h


class GRU(nn.Module):
    """One GRU layer over the ``T`` steps of ``(N, T, D)`` inputs (``nn.RNN`` scans the cell from a
    zero state), then a dense layer from the last hidden state to the logits."""

    hidden: int
    n_classes: int
    dtype: Any = None  # computation dtype, e.g. jnp.bfloat16; parameters stay float32

    @nn.compact
    def __call__(self, x):
        h, _ = nn.RNN(GRUCell(self.hidden, dtype=self.dtype, name="gru"), return_carry=True)(x)
        return nn.Dense(self.n_classes, dtype=self.dtype, name="dense_0")(h)


class EncoderBlock(nn.Module):
    """One pre-norm encoder block: ``x + MHA(LN(x))``, then ``x + FFN(LN(x))``, FFN dense-ReLU-dense."""

    heads: int
    ffn_mult: int = 4
    eps: float = 1e-5
    dtype: Any = None

    @nn.compact
    def __call__(self, x):
        d = x.shape[-1]
        h = nn.LayerNorm(epsilon=self.eps, dtype=self.dtype, name="ln_1")(x)
        x = x + nn.MultiHeadDotProductAttention(self.heads, qkv_features=d, out_features=d, dtype=self.dtype, name="attn")(h)
        h = nn.LayerNorm(epsilon=self.eps, dtype=self.dtype, name="ln_2")(x)
        h = nn.relu(nn.Dense(self.ffn_mult * d, dtype=self.dtype, name="ffn_0")(h))
        return x + nn.Dense(d, dtype=self.dtype, name="ffn_1")(h)


class Transformer(nn.Module):
    """A pre-norm transformer encoder over ``(N, T, D)`` inputs: a dense embedding plus learned
    positions, ``layers`` encoder blocks, a final layer norm, the mean over the ``T`` steps, then a
    dense layer to the logits."""

    d_model: int
    n_classes: int
    heads: int = 2
    layers: int = 2
    ffn_mult: int = 4
    eps: float = 1e-5  # Flax's LayerNorm default is 1e-6; PyTorch's and this project's 1e-5
    dtype: Any = None  # computation dtype, e.g. jnp.bfloat16; parameters stay float32

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(self.d_model, dtype=self.dtype, name="embed")(x)
        x = x + self.param("pos_embedding", nn.initializers.normal(0.02), x.shape[-2:])
        for i in range(self.layers):
            x = EncoderBlock(self.heads, self.ffn_mult, self.eps, dtype=self.dtype, name=f"block_{i}")(x)
        x = nn.LayerNorm(epsilon=self.eps, dtype=self.dtype, name="ln_f")(x)
        return nn.Dense(self.n_classes, dtype=self.dtype, name="dense_0")(x.mean(axis=1))
