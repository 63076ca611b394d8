"""Export a trained scikit-learn ``MLPClassifier`` to ONNX with ``skl2onnx``.

The converter is ``skl2onnx.to_onnx`` (https://onnx.ai/sklearn-onnx/), checked here with skl2onnx
1.20.0, scikit-learn 1.9.1 and onnx 1.23.2, with ``zipmap=False`` so the probabilities come out as
one ``float32 (N, n_classes)`` tensor instead of a list of dicts.

Comparable output: ``Trainer.logits`` of this framework returns log-probabilities,
``log(clip(predict_proba(x), 1e-30, 1))`` (logits of the same softmax; scikit-learn has no logits
output, and a binary model has one logistic unit). The exported graph ends the same way: its
``probabilities`` go through ``Clip(min=1e-30)`` and ``Log``, and that is its only output,
``logits``; the ``label`` output is dropped. So ONNX Runtime's output is compared with the
framework's own as it is. Caveat: a log-probability amplifies the rounding of a probability near 0
(``d log p = dp / p``), so on a saturated model (p < 1e-3) the two can differ by more than the
probabilities do.

Inputs: ``float32 (N, F)``; the batch dimension ``N`` is dynamic (skl2onnx declares it ``None``).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx

#: Smallest probability before the log, as ``Trainer.logits`` clips.
TINY = 1e-30


def export_onnx(trainer, path: str, example: np.ndarray) -> None:
    """Write ``trainer.model`` (a fitted ``MLPClassifier``) to the ONNX file ``path``, its output the
    log-probabilities ``float32 (N, n_classes)`` (module docstring).

    Args:
        trainer: a ``frameworks.sklearn.trainer.Trainer`` (``model``: the estimator).
        path: the ``.onnx`` file to write.
        example: ``float32 (N, F)`` inputs (skl2onnx takes the feature count and the dtype from it).

    Raises:
        ValueError: the converted graph has no ``probabilities`` output (not a classifier).
        Exception: whatever skl2onnx raises (e.g. ``MissingShapeCalculator`` for an estimator it
            has no converter for).
    """
    model = to_onnx(trainer.model, example[:1], options={"zipmap": False})
    graph = model.graph
    probabilities = next((o for o in graph.output if o.name == "probabilities"), None)
    if probabilities is None:
        raise ValueError(f"skl2onnx gave no 'probabilities' output (outputs: {[o.name for o in graph.output]})")
    n_classes = probabilities.type.tensor_type.shape.dim[1]
    graph.initializer.append(numpy_helper.from_array(np.array(TINY, np.float32), "tiny"))
    graph.node.extend([
        helper.make_node("Clip", [probabilities.name, "tiny"], ["clipped"]),
        helper.make_node("Log", ["clipped"], ["logits"]),
    ])  # fmt: skip
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, n_classes.dim_value or None])
    del graph.output[:]
    graph.output.append(logits)
    onnx.checker.check_model(model, full_check=True)
    onnx.save_model(model, path)
