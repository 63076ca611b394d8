"""What every framework's ``trainer.py`` provides, and the one training loop that drives them all.

Each ``frameworks/<name>/trainer.py`` defines ``Trainer`` with the same constructor and methods
(the protocol below). The loop, the timing windows, the loss logging and the metrics live here,
once, so a difference between frameworks can only come from the framework.

Timing (DESIGN.md, "Honest timing"): the first step (trace + compile) is timed alone with a sync
after it. The remaining steps run in windows of at most ``WINDOW_STEPS`` steps with no sync inside
a window; reading the window's losses back (``Trainer.losses``) is the sync at its end. Steady
throughput is the median over windows; evaluation runs outside the windows.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol

import numpy as np

from ..bundle import Bundle
from ..events import Epoch, Event, Step
from ..metrics import classification_metrics

#: Longest timing window [steps]; also how often step events reach a live plot.
WINDOW_STEPS = 100
#: Batch size used for evaluation forward passes [samples].
EVAL_BATCH = 1024


class Diverged(RuntimeError):
    """The training loss became NaN or infinite; ``step`` is the first such step (1-based)."""

    def __init__(self, step: int, loss: float):
        self.step, self.loss = step, loss
        super().__init__(f"training loss became {loss} at step {step}")


class TrainerProtocol(Protocol):
    """The interface of ``frameworks/<name>/trainer.py:Trainer``.

    ``Trainer(spec, weights, config, x_train, y_train)`` builds the model from the canonical
    ``weights`` (see ``models.py``), the optimizer named by ``config``, and places the training
    arrays (``x_train``: ``float32 (N, F)`` or NHWC images; ``y_train``: ``int64 (N,)``) on the
    device chosen by ``config.device``.

    Raises (constructor):
        DeviceUnavailable: the requested device is not visible to the framework.
    """

    device: str  # where it runs, e.g. "cpu", "cuda:0"
    device_name: str  # human-readable, e.g. "NVIDIA H100 80GB HBM3"

    def train_step(self, idx: np.ndarray) -> Any:
        """One optimizer step on training rows ``idx`` (``int64 (B,)``); returns the batch loss
        (mean cross-entropy before the update) as a device value, without synchronizing."""

    def losses(self, handles: list[Any]) -> np.ndarray:
        """Bring step losses to the host as ``float64 (len(handles),)``; this is the sync point."""

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Forward pass in inference mode: ``(N, ...)`` inputs to ``float32 (N, C)`` logits."""

    def weights(self) -> dict[str, np.ndarray]:
        """Current parameters in canonical names and layout (``models.init_weights``)."""


class DeviceUnavailable(RuntimeError):
    """The framework does not see the requested device (the run is reported as ``skipped``)."""


def batched(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int = EVAL_BATCH) -> np.ndarray:
    """Apply ``fn`` to ``x`` in slices of ``batch`` rows and concatenate the results."""
    return np.concatenate([np.asarray(fn(x[i : i + batch])) for i in range(0, len(x), batch)])


def fit(trainer: TrainerProtocol, bundle: Bundle, emit: Callable[[Event], None], clock: Callable[[], float]) -> dict:
    """Train for all epochs of ``bundle.order``, emitting events; return the run's metrics.

    Args:
        trainer: a built framework trainer.
        bundle: the shared inputs.
        emit: receives ``Step`` (every ``config.log_every`` steps) and ``Epoch`` events.
        clock: seconds since the child started (the events' ``time_s``).

    Returns:
        metrics dict: ``test_accuracy``, ``test_f1_macro``, ``test_roc_auc``, ``test_loss``,
        ``val_accuracy``, ``val_loss``, ``train_loss`` (last epoch's mean), ``samples_per_s``
        (median steady throughput), ``step_ms`` (median steady step [ms]), ``first_step_s``,
        ``compile_s`` (first step minus a steady step [s]), ``train_s``, ``eval_s``, ``steps``.

    Raises:
        Diverged: a step's loss is NaN or infinite.
    """
    cfg, order = bundle.config, bundle.order
    epochs, steps, batch = order.shape
    fw = getattr(trainer, "name", "?")
    x_val = bundle.inputs(bundle.data.x_val)
    windows: list[tuple[int, float]] = []  # (steps, seconds)
    first_step_s = float("nan")
    val: dict = {}
    train_loss = float("nan")
    t_train = time.perf_counter()
    for e in range(epochs):
        epoch_losses = []
        s = 0
        while s < steps:
            n = 1 if (e == 0 and s == 0) else min(WINDOW_STEPS, steps - s)
            t0 = time.perf_counter()
            handles = [trainer.train_step(order[e, j]) for j in range(s, s + n)]
            window_losses = trainer.losses(handles)
            dt = time.perf_counter() - t0
            if e == 0 and s == 0:
                first_step_s = dt
            else:
                windows.append((n, dt))
            now = clock()
            for j, loss in enumerate(window_losses):
                step = e * steps + s + j + 1
                if not np.isfinite(loss):
                    raise Diverged(step, float(loss))
                if step % cfg.log_every == 0:
                    emit(Step(fw, step=step, epoch=e + 1, loss=float(loss), time_s=now))
            epoch_losses.append(window_losses)
            s += n
        train_loss = float(np.concatenate(epoch_losses).mean())
        val_logits = trainer.logits(x_val)
        val = classification_metrics(val_logits, bundle.data.y_val)
        emit(Epoch(fw, epoch=e + 1, train_loss=train_loss, val_loss=val["loss"], val_accuracy=val["accuracy"], time_s=clock()))
    train_s = time.perf_counter() - t_train

    t0 = time.perf_counter()
    test = classification_metrics(trainer.logits(bundle.inputs(bundle.data.x_test)), bundle.data.y_test)
    eval_s = time.perf_counter() - t0

    if windows:
        step_s = float(np.median([dt / n for n, dt in windows]))
        samples_per_s = float(np.median([n * batch / dt for n, dt in windows]))
    else:  # a single step: no steady state to measure
        step_s, samples_per_s = float("nan"), batch / first_step_s
    return {
        "test_accuracy": test["accuracy"],
        "test_f1_macro": test["f1_macro"],
        "test_roc_auc": test["roc_auc"],
        "test_loss": test["loss"],
        "val_accuracy": val["accuracy"],
        "val_loss": val["loss"],
        "train_loss": train_loss,
        "samples_per_s": samples_per_s,
        "step_ms": step_s * 1e3,
        "first_step_s": first_step_s,
        "compile_s": max(0.0, first_step_s - step_s) if windows else float("nan"),
        "train_s": train_s,
        "eval_s": eval_s,
        "steps": int(epochs * steps),
    }

