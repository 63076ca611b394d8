"""The events a comparison streams while it runs: plain dataclasses, one JSON object per line.

A CLI, a widget, a test and a results store all consume the same stream (DESIGN.md, "The flow of
one comparison"). Per framework the order is ``started``, then ``step`` / ``epoch`` events, then
exactly one of ``finished`` or ``failed``
(the training child sends its steps a window at a time, as ``steps`` events, which the runner
expands into ``step`` events); a framework that never starts gets one ``skipped``.

``time_s`` is wall-clock seconds since the framework's child process started (``time.perf_counter``).
Every event names its run by ``framework``, ``mode`` (``eager``/``compiled``; ``""`` before the
runner knows it) and ``repeat`` (1-based, for ``--repeat N``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: Final statuses of a framework's run.
STATUSES = ("ok", "failed", "skipped", "unsupported", "diverged", "timeout", "interrupted")


@dataclass
class Event:
    """Base of all events; ``kind`` names the subclass in JSON."""

    kind: ClassVar[str] = "event"
    framework: str
    mode: str = ""
    repeat: int = 1

    @property
    def run_key(self) -> tuple[str, str, int]:
        """``(framework, mode, repeat)``: which run this event belongs to."""
        return (self.framework, self.mode, self.repeat)

    def to_json(self) -> str:
        """One line of JSON with a ``kind`` key."""
        # vars(), not dataclasses.asdict: no event nests dataclasses, and asdict's deep copy is
        # three quarters of the cost of an event sent every training step.
        return json.dumps({"kind": self.kind, **vars(self)}, allow_nan=True)


@dataclass
class Started(Event):
    """The child imported its framework and built the model.

    ``device``: where it runs (``"cpu"``, ``"cuda:0"``, ``"TFRT_CPU_0"``...); ``device_name``: human
    name (GPU model), ``versions``: package versions; ``import_s``: seconds to import the framework;
    ``total_steps``: training steps that will run, over ``epochs`` epochs; ``pid``: the child's process id; ``device_kind``:
    ``cpu``, ``gpu`` or ``tpu``; ``flags``: the fairness settings in force, read back from the
    framework in the child (threads, TF32, determinism, precision, compile mode, affinity).
    """

    kind: ClassVar[str] = "started"
    device: str = "cpu"
    device_name: str = ""
    device_kind: str = "cpu"
    versions: dict[str, str] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)
    import_s: float = 0.0
    total_steps: int = 0
    epochs: int = 0
    pid: int = 0
    time_s: float = 0.0


@dataclass
class Step(Event):
    """Mean cross-entropy of one training batch, computed before that step's update.

    ``step`` counts from 1 over the whole run; ``epoch`` counts from 1.
    """

    kind: ClassVar[str] = "step"
    step: int = 0
    epoch: int = 0
    loss: float = float("nan")
    time_s: float = 0.0

    def to_json(self) -> str:
        # The one event sent every training step: formatted directly (about 4x faster than
        # json.dumps, tests/benchmarks/overhead.py); the same JSON, as the round-trip test checks.
        # The run's constant fields are encoded once per run (_STEP_PREFIX).
        loss, t = float(self.loss), float(self.time_s)
        if not (math.isfinite(loss) and math.isfinite(t)):
            return super().to_json()
        key = (self.framework, self.mode, self.repeat)
        prefix = _STEP_PREFIX.get(key)
        if prefix is None:
            prefix = _STEP_PREFIX[key] = (
                f'{{"kind": "step", "framework": {json.dumps(self.framework)}, "mode": {json.dumps(self.mode)}, '
                f'"repeat": {int(self.repeat)}, '
            )
        return f'{prefix}"step": {int(self.step)}, "epoch": {int(self.epoch)}, "loss": {loss!r}, "time_s": {t!r}}}'


#: ``Step.to_json``'s encoded ``kind``/``framework``/``mode``/``repeat`` per (framework, mode, repeat).
_STEP_PREFIX: dict[tuple, str] = {}


@dataclass
class Steps(Event):
    """The logged steps of one timing window, as one line: what the training child sends.

    A window has up to ``frameworks.common.WINDOW_STEPS`` steps and never crosses an epoch, so
    ``epoch`` is one number; ``steps`` (1-based) and ``losses`` (mean cross-entropy of each step's
    batch, before its update) are parallel lists. The runner hands them on as :class:`Step` events
    (:meth:`expand`), so consumers see one event per step while the child pays for one JSON line
    per window (``tests/benchmarks/overhead.py``).
    """

    kind: ClassVar[str] = "steps"
    epoch: int = 0
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    time_s: float = 0.0

    def expand(self) -> list[Step]:
        """One :class:`Step` per logged step, all with this window's ``time_s``.

        Raises:
            ValueError: ``steps`` and ``losses`` differ in length.
        """
        if len(self.steps) != len(self.losses):
            raise ValueError(f"Steps event: {len(self.steps)} steps but {len(self.losses)} losses")
        fw, mode, rep, epoch, t = self.framework, self.mode, self.repeat, self.epoch, self.time_s
        return [Step(fw, mode, rep, step=s, epoch=epoch, loss=loss, time_s=t) for s, loss in zip(self.steps, self.losses)]


@dataclass
class Epoch(Event):
    """End of an epoch: mean training loss of its steps, validation loss and accuracy."""

    kind: ClassVar[str] = "epoch"
    epoch: int = 0
    train_loss: float = float("nan")
    val_loss: float = float("nan")
    val_accuracy: float = float("nan")
    time_s: float = 0.0


@dataclass
class Finished(Event):
    """The run completed; ``metrics`` holds the figures (see ``runner.METRIC_DOCS``; ``None`` where a
    figure does not exist here) and ``notes`` says, per metric, why it is ``None`` or how it was
    measured."""

    kind: ClassVar[str] = "finished"
    status: str = "ok"
    device: str = "cpu"
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    time_s: float = 0.0


@dataclass
class Failed(Event):
    """The run started but did not complete: ``status`` is ``failed``, ``diverged``, ``timeout`` or
    ``interrupted``; ``reason`` says why in one line; ``error_tail`` holds the end of the traceback or
    stderr."""

    kind: ClassVar[str] = "failed"
    status: str = "failed"
    reason: str = ""
    error_tail: str = ""
    time_s: float = 0.0


@dataclass
class Skipped(Event):
    """The run never started: ``status`` is ``skipped`` (framework or device missing) or
    ``unsupported`` (the framework cannot express the model); ``reason`` says which."""

    kind: ClassVar[str] = "skipped"
    status: str = "skipped"
    reason: str = ""


EVENT_TYPES = {cls.kind: cls for cls in (Started, Step, Steps, Epoch, Finished, Failed, Skipped)}


def from_json(line: str) -> Event:
    """Parse one line written by :meth:`Event.to_json`.

    Raises:
        ValueError: not JSON, or an unknown ``kind``.
    """
    data = json.loads(line)
    kind = data.pop("kind", None)
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown event kind {kind!r}; allowed: {', '.join(EVENT_TYPES)}")
    return EVENT_TYPES[kind](**data)
