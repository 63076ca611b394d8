"""Export a trained PyTorch model to ONNX with ``torch.onnx.export(..., dynamo=True)``.

The converter is PyTorch's own exporter in its ``torch.export`` form (``dynamo=True``, the default
and the maintained path since torch 2.9; the TorchScript exporter, ``dynamo=False``, is
deprecated). It captures the module with ``torch.export.export`` and translates the graph with
ONNX Script, so it needs the ``onnxscript`` package (without it: ``ImportError``). Checked here with
torch 2.13.0+cpu, onnxscript 0.7.2 and onnx 1.23.2 (https://pytorch.org/docs/stable/onnx.html).

The graph takes what ``Trainer.logits`` takes: ``float32 (N, F)``, or NHWC images ``(N, H, W, C)``
for the CNN, transposed to PyTorch's NCHW inside the graph (one ``Transpose`` node), so ONNX Runtime
and the framework are fed the same host arrays. Output: ``float32 (N, n_classes)`` logits, with the
batch dimension ``N`` dynamic. Weights are stored inside the one ``.onnx`` file
(``external_data=False``).
"""

from __future__ import annotations

import numpy as np
import torch


class _FromNHWC(torch.nn.Module):
    """``model`` fed NHWC images, as the trainer's host inputs are (``Trainer._inputs`` permutes)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x.permute(0, 3, 1, 2))


def export_onnx(trainer, path: str, example: np.ndarray) -> None:
    """Write ``trainer.model`` in inference mode (``eval()``) to the ONNX file ``path``.

    Args:
        trainer: a ``frameworks.torch.trainer.Trainer`` (its ``model``, a ``torch.nn.Module``).
        path: the ``.onnx`` file to write.
        example: ``float32 (N, ...)`` inputs as ``Trainer.logits`` takes them; traced on the model's
            device. ``torch.export`` specializes a batch of size 1, so it is tiled to 2 rows.

    Raises:
        ImportError: ``onnxscript`` is not installed.
        Exception: whatever ``torch.export`` or the ONNX translation raises.
    """
    model = trainer.model
    device = next(model.parameters()).device
    module = _FromNHWC(model) if example.ndim == 4 else model
    x = torch.as_tensor(np.resize(example, (max(2, len(example)), *example.shape[1:])), device=device)
    was_training = model.training
    model.eval()
    try:
        torch.onnx.export(
            module, (x,), path, dynamo=True, external_data=False, verbose=False,
            input_names=["x"], output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},),
        )  # fmt: skip
    finally:
        model.train(was_training)
