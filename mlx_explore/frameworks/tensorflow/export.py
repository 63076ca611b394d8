"""Export a trained Keras 3 model (TensorFlow backend) to ONNX with ``tf2onnx``.

The converter is ``tf2onnx.convert.from_function`` (https://github.com/onnx/tensorflow-onnx) on a
``tf.function`` of the model's inference forward, ``model(x, training=False)`` cast to float32 as
``Trainer.logits`` does. Checked here with tf2onnx 1.17.0, tensorflow-cpu 2.21.0, Keras 3.15.1,
protobuf 7.36.2 and onnx 1.23.2 (tf2onnx installs beside them without changing any of them).

Why not ``tf2onnx.convert.from_keras``: it reads Keras 2 internals and fails on a Keras 3 model
(``KeyError: 'keras_tensor_1'`` here). Keras 3's own ``model.export(path, format="onnx")`` calls
the same ``from_function``, but first patches tf2onnx and sets ``numpy.object`` for NumPy 2
(``keras/src/export/tf2onnx_lib.py``); these models convert without that patch, so it is not applied.

Inputs: ``float32 (N, F)`` or NHWC images ``(N, H, W, C)``; output: ``float32 (N, n_classes)``
logits; ``N`` is dynamic (``TensorSpec`` batch ``None``). The weights are constants in the one
``.onnx`` file.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf2onnx


def export_onnx(trainer, path: str, example: np.ndarray) -> None:
    """Write ``trainer.model`` in inference mode (``training=False``) to the ONNX file ``path``.

    Args:
        trainer: a ``frameworks.tensorflow.trainer.Trainer`` (``model``: a ``keras.Sequential``).
        path: the ``.onnx`` file to write.
        example: ``float32 (N, ...)`` inputs as ``Trainer.logits`` takes them (only the shape after
            the batch dimension is used).

    Raises:
        Exception: whatever tf2onnx raises for an op it cannot convert.
    """
    model = trainer.model
    signature = [tf.TensorSpec((None, *example.shape[1:]), tf.float32, name="x")]

    @tf.function(input_signature=signature)
    def logits(x):
        return tf.cast(model(x, training=False), tf.float32)

    tf2onnx.convert.from_function(logits, input_signature=signature, output_path=path)
