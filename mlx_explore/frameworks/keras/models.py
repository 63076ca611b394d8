"""The models in Keras 3: ``keras.Sequential`` stacks, one code for every Keras backend.

This is the model code of the ``tensorflow`` column (Keras is TensorFlow's high-level API: ``tf.keras``
is Keras 3 from TF 2.16) and of ``keras-jax``, ``keras-torch`` and ``keras-tensorflow``: Keras 3 runs
the same layers on JAX, PyTorch or TensorFlow, chosen by ``KERAS_BACKEND`` before ``import keras``
(https://keras.io/getting_started/#configuring-your-backend). Its layouts are the canonical ones
(``Dense`` kernel ``(in, out)``, ``Conv2D`` kernel ``(H, W, C_in, C_out)``, NHWC) on every backend, so
``model.set_weights`` takes the shared weights as they are. Inputs: ``(N, F)`` or NHWC images;
outputs: logits (``from_logits=True`` in the loss).
"""

import keras
from keras import layers

# The code of each model kind (logreg is the MLP with no hidden layer).
MODEL_CODE = {"logreg": "mlp", "mlp": "mlp", "cnn": "cnn"}


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
