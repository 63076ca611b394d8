"""Export a trained Keras 3 model (``keras-*`` columns) to ONNX with the converter of its backend.

Keras 3 models are the backend's own objects, so the maintained converter of each backend applies:

- ``tensorflow``: the ``tensorflow`` column's exporter (``frameworks/tensorflow/export.py``:
  ``tf2onnx.convert.from_function`` on a ``tf.function`` of the model; it says why not ``from_keras``);
- ``torch``: Keras's own ``model.export(path, format="onnx")``, which calls ``torch.onnx.export``
  with the model's input signature (a dynamic batch); ``torch.onnx.export`` on the Keras model (a
  ``torch.nn.Module`` on this backend) fails in ``torch.export`` with torch 2.13.0;
- ``jax``: ``jax2onnx.to_onnx`` on ``model.stateless_call`` with the trained variables closed over
  (Keras's own ``model.export(format="onnx")`` goes through jax2tf and tf2onnx on JAX, which no longer
  converts: ``frameworks/jax/export.py``). Known failure: the CNN's ``MaxPooling2D`` becomes an ONNX
  ``MaxPool`` over all four NHWC axes, which ONNX Runtime refuses ("Unsupported pooling size"); the
  run then records no ONNX figures and the converter's error (Keras's ``model.export`` fails alike).

Checked here with Keras 3.15.1 and the versions of ``pyproject.toml``'s ``onnx`` extra. Inputs:
``float32 (N, F)`` or NHWC images; output: ``float32 (N, n_classes)`` logits, ``N`` dynamic.
"""

from __future__ import annotations

import keras
import numpy as np


def export_onnx(trainer, path: str, example: np.ndarray) -> None:
    """Write ``trainer.model`` (inference mode) to the ONNX file ``path``.

    Args:
        trainer: a ``frameworks.keras.trainer.Trainer``.
        path: the ``.onnx`` file to write.
        example: ``float32 (N, ...)`` inputs as ``Trainer.logits`` takes them.

    Raises:
        Exception: whatever the backend's converter raises.
    """
    backend, model = keras.backend.backend(), trainer.model
    if backend == "tensorflow":  # the tensorflow column's route: a tf.function of the Keras model
        from ..tensorflow.export import export_onnx as tensorflow_export

        tensorflow_export(trainer, path, example)
    elif backend == "torch":
        # Keras's own exporter (torch.onnx.export with the model's input signature); calling
        # torch.onnx.export on the Keras model directly fails in torch.export here.
        model.export(path, format="onnx", verbose=False)
    else:
        import jax.numpy as jnp
        import onnx
        from jax2onnx import to_onnx

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def logits(x):
            out, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            return out.astype(jnp.float32)

        onnx.save_model(to_onnx(logits, [("B", *example.shape[1:])], input_names=["x"], output_names=["logits"]), path)
