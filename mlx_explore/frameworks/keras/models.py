"""The models in Keras 3: ``keras.Sequential`` stacks and functional models, one code for every
Keras backend.

This is the model code of the ``tensorflow`` column (Keras is TensorFlow's high-level API: ``tf.keras``
is Keras 3 from TF 2.16) and of ``keras-jax``, ``keras-torch`` and ``keras-tensorflow``: Keras 3 runs
the same layers on JAX, PyTorch or TensorFlow, chosen by ``KERAS_BACKEND`` before ``import keras``
(https://keras.io/getting_started/#configuring-your-backend). Its layouts are the canonical ones
(``Dense`` kernel ``(in, out)``, ``Conv2D`` kernel ``(H, W, C_in, C_out)``, NHWC, attention kernels
``(d, heads, d_head)``) on every backend, so ``model.set_weights`` takes the shared weights as they
are; only the GRU orders its gates z, r, h and stacks its two biases as ``(2, 3H)`` (``common.py``
converts). Inputs: ``(N, F)``, NHWC images, or ``(N, T, D)`` sequences (batch first); outputs:
logits (``from_logits=True`` in the loss).
"""

import keras
from keras import layers

# The code of each model kind (logreg is the MLP with no hidden layer).
MODEL_CODE = {"logreg": "mlp", "mlp": "mlp", "cnn": "cnn", "gru": "gru", "transformer": "transformer"}


def mlp(n_features, hidden, n_classes, activation="relu"):
    """Dense layers of widths ``hidden`` with one activation, then a dense layer to the logits.
    ``hidden=()`` is softmax (multinomial logistic) regression."""
    return keras.Sequential(
        [keras.Input((n_features,))]
        + [layers.Dense(h, activation=activation) for h in hidden]
        + [layers.Dense(n_classes)]
    )


def cnn(image_shape, n_classes, channels=(32, 64), kernel_size=3, dense=128):
    """LeNet-style: two conv(3x3, same)-ReLU-maxpool(2) blocks, a hidden dense layer, the logits."""
    c1, c2 = channels
    return keras.Sequential([
        keras.Input(image_shape),
        layers.Conv2D(c1, kernel_size, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(c2, kernel_size, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(dense, activation="relu"),
        layers.Dense(n_classes),
    ])  # fmt: skip


def gru(seq_shape, units, n_classes):
    """One GRU layer over the ``T`` steps of ``(T, D)`` inputs (zero initial state; ``reset_after=True``,
    the default, is the cuDNN / PyTorch form), then a dense layer from its last state to the logits."""
    inputs = keras.Input(seq_shape)
    h = layers.GRU(units, name="gru")(inputs)  # return_sequences=False: the state after the last step
    outputs = layers.Dense(n_classes, name="dense_0")(h)
    return keras.Model(inputs, outputs, name="gru")


@keras.saving.register_keras_serializable(package="mlx_explore")
class PositionEmbedding(layers.Layer):
    """Adds a learned vector per position to ``(N, T, d)`` inputs (BERT's position embedding, drawn
    from a normal of standard deviation 0.02). Keras 3 has no such layer (KerasHub's
    ``PositionEmbedding`` returns the embeddings, to be added by the caller)."""

    def __init__(self, initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.initializer = keras.initializers.get(initializer or keras.initializers.RandomNormal(stddev=0.02))

    def build(self, input_shape):
        self.embedding = self.add_weight(shape=input_shape[-2:], initializer=self.initializer, name="embedding")

    def call(self, inputs):
        return inputs + self.embedding

    def get_config(self):
        return {**super().get_config(), "initializer": keras.initializers.serialize(self.initializer)}


def encoder_block(x, heads, ffn_mult, epsilon, name):
    """One pre-norm encoder block: ``x + MHA(LN(x))``, then ``x + FFN(LN(x))``, FFN dense-ReLU-dense."""
    d = x.shape[-1]
    h = layers.LayerNormalization(epsilon=epsilon, name=f"{name}_ln_1")(x)
    x = x + layers.MultiHeadAttention(heads, key_dim=d // heads, name=f"{name}_attn")(h, h)
    h = layers.LayerNormalization(epsilon=epsilon, name=f"{name}_ln_2")(x)
    h = layers.Dense(ffn_mult * d, activation="relu", name=f"{name}_ffn_0")(h)
    return x + layers.Dense(d, name=f"{name}_ffn_1")(h)


def transformer(seq_shape, d_model, n_classes, heads=2, blocks=2, ffn_mult=4, epsilon=1e-5):
    """A pre-norm transformer encoder over ``(T, D)`` inputs: a dense embedding plus learned positions,
    ``blocks`` encoder blocks, a final layer norm, the mean over the ``T`` steps, then a dense layer to
    the logits. ``epsilon``: PyTorch's layer-norm default (Keras's is 1e-3)."""
    inputs = keras.Input(seq_shape)
    x = layers.Dense(d_model, name="embed")(inputs)
    x = PositionEmbedding(name="pos")(x)
    for i in range(blocks):
        x = encoder_block(x, heads, ffn_mult, epsilon, name=f"block_{i}")
    x = layers.LayerNormalization(epsilon=epsilon, name="ln_f")(x)
    x = layers.GlobalAveragePooling1D()(x)
    outputs = layers.Dense(n_classes, name="dense_0")(x)
    return keras.Model(inputs, outputs, name="transformer")
