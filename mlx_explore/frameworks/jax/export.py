"""Export a trained Flax Linen model to ONNX with ``jax2onnx``.

The converter is ``jax2onnx.to_onnx`` (https://github.com/enpasos/jax2onnx), which traces a JAX
function to a jaxpr and translates it primitive by primitive, with plugins for Flax layers. Checked
here with jax2onnx 0.17.1, jax/jaxlib 0.10.2, flax 0.12.8, onnx 1.23.2. (The older route, jax2tf
then tf2onnx, no longer works: jax2tf now only emits StableHLO inside ``XlaCallModule``, which
tf2onnx cannot convert.) The function exported is the trainer's inference forward,
``model.apply({"params": params}, x)`` with the trained parameters closed over (they become ONNX
initializers), cast to float32 as ``Trainer.logits`` does.

Inputs: ``float32 (N, F)`` or NHWC images ``(N, H, W, C)`` (Flax's layout, the canonical one);
output: ``float32 (N, n_classes)`` logits; ``N`` is the symbolic dimension ``B``. The file is saved
with ``onnx.save_model`` in one piece (``jax2onnx``'s own file mode spills initializers over 1 MB into
a ``.data`` sidecar).

jax2onnx replaces ``flax.linen.max_pool`` during a conversion by a function that takes
``window_shape`` and ``strides`` by keyword only; ``models.py`` passes them by keyword.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import onnx
from jax2onnx import to_onnx


def export_onnx(trainer, path: str, example: np.ndarray) -> None:
    """Write the trainer's Linen module with its trained parameters to the ONNX file ``path``.

    Args:
        trainer: a ``frameworks.jax.trainer.Trainer`` (``model``: the Linen module, ``params``: its
            parameter pytree).
        path: the ``.onnx`` file to write.
        example: ``float32 (N, ...)`` inputs as ``Trainer.logits`` takes them (only the shape after
            the batch dimension and the dtype are used).

    Raises:
        Exception: whatever ``jax2onnx`` raises for a primitive or layer it cannot convert.
    """
    model, params = trainer.model, trainer.params

    def logits(x):
        return model.apply({"params": params}, x).astype(jnp.float32)

    proto = to_onnx(logits, [("B", *example.shape[1:])], input_names=["x"], output_names=["logits"])
    onnx.save_model(proto, path)
