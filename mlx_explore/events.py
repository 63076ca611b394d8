"""The events a comparison streams while it runs: plain dataclasses, one JSON object per line.

A CLI, a widget, a test and a results store all consume the same stream (``docs/architecture.md``,
"The flow of one comparison"). Per framework the order is ``started``, then ``step`` / ``epoch``
events, then exactly one of ``finished`` or ``failed`` (the training child sends its steps a window
at a time, as ``steps`` events, which the runner expands into ``step`` events); a framework that
never starts gets one ``skipped``.

``time_s`` is wall-clock seconds since the framework's child process started (``time.perf_counter``).
Every event names its run by ``framework``, ``mode`` (``eager``/``compiled``; ``""`` before the
runner knows it) and ``repeat`` (1-based, for ``--repeat N``).

The wire format. The child builds events as stdlib dataclasses (cheap: about 1 us for a 100-step
``Steps``) and writes :meth:`Event.to_json`. The parent reads each line with :func:`from_json`,
which validates it with pydantic (:data:`EVENT_ADAPTER`, a union discriminated on ``kind`` over
the same dataclasses, strict types, no unknown fields): every line is checked and none is trusted.
What a line can be:

- a valid event: returned;
- a JSON object that is not a valid event (unknown or absent ``kind``, a missing required field, a
  field of the wrong type, an unknown field, a ``steps`` event whose lists differ in length):
  :class:`MalformedEvent`. The runner fails that run with the line quoted in its reason (at most
  :data:`QUOTE_CHARS` characters) and kills the child; the comparison goes on;
- anything else (not JSON, or JSON that is not an object: a stray ``print`` that reached the event
  stream before the worker moved standard output to stderr, or the half-written last line of a
  killed child): :class:`NotAnEvent`. It is not what the protocol sends, but it says nothing about
  the run's figures, so the runner skips it and keeps it: quoted at the head of the run's
  ``error_tail`` if the run fails, in the run's ``notes["stray_output"]`` if it finishes.
"""

from __future__ import annotations

import json
import math
import reprlib
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

#: Final statuses of a framework's run.
STATUSES = ("ok", "failed", "skipped", "unsupported", "diverged", "timeout", "interrupted")

#: Longest quotation of a bad line in an error message or a run's reason [characters].
QUOTE_CHARS = 300


def _kind(name: str):
    """The ``kind`` field of an event class: keyword-only (positional arguments keep their meaning),
    left out of ``repr`` and ``==``, and a pydantic ``Literal`` that discriminates the union."""
    return field(default=name, kw_only=True, repr=False, compare=False)


@dataclass
class Event:
    """Base of all events; ``kind`` names the subclass in JSON.

    Attributes:
        framework: registry name of the run's framework (``torch``, ``jax``, ...).
        mode: ``eager`` or ``compiled``; ``""`` until the runner stamps it.
        repeat: 1-based repeat number of the run.
        kind: the event type on the wire (a class constant: ``started``, ``step``, ...).
    """

    # Pydantic reads this when it validates a line (from_json): exact types, no unknown fields.
    __pydantic_config__ = ConfigDict(strict=True, extra="forbid")

    framework: str
    mode: str = ""
    repeat: int = 1
    kind: str = _kind("event")

    @property
    def run_key(self) -> tuple[str, str, int]:
        """``(framework, mode, repeat)``: which run this event belongs to."""
        return (self.framework, self.mode, self.repeat)

    def to_json(self) -> str:
        """One line of JSON (no newline), ``kind`` first; NaN and infinities are written as the
        tokens ``NaN``/``Infinity``, which :func:`from_json` reads back.

        Raises:
            TypeError: a field holds a value JSON cannot hold (a NumPy integer in ``metrics``).
        """
        # vars(), not dataclasses.asdict: no event nests dataclasses, and asdict's deep copy is
        # three quarters of the cost of an event sent every training step.
        return json.dumps({"kind": self.kind, **vars(self)}, allow_nan=True)


@dataclass
class Started(Event):
    """The child imported its framework and built the model.

    ``device``: where it runs (``"cpu"``, ``"cuda:0"``, ``"TFRT_CPU_0"``...); ``device_name``: human
    name (GPU model), ``versions``: package versions; ``import_s``: importing the framework [s];
    ``total_steps``: training steps that will run, over ``epochs`` epochs; ``pid``: the child's process id; ``device_kind``:
    ``cpu``, ``gpu`` or ``tpu``; ``flags``: the fairness settings in force, read back from the
    framework in the child (threads, TF32, determinism, precision, compile mode, affinity).
    """

    kind: Literal["started"] = _kind("started")
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
    """Mean cross-entropy of one training batch [nats], computed before that step's update.

    ``step`` counts from 1 over the whole run; ``epoch`` counts from 1.
    """

    kind: Literal["step"] = _kind("step")
    step: int = 0
    epoch: int = 0
    loss: float = float("nan")
    time_s: float = 0.0

    def to_json(self) -> str:
        """As :meth:`Event.to_json`, formatted directly."""
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

    kind: Literal["steps"] = _kind("steps")
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
    """End of an epoch: mean training loss of its steps and validation loss [nats], validation
    accuracy [0-1]."""

    kind: Literal["epoch"] = _kind("epoch")
    epoch: int = 0
    train_loss: float = float("nan")
    val_loss: float = float("nan")
    val_accuracy: float = float("nan")
    time_s: float = 0.0


@dataclass
class Finished(Event):
    """The run completed; ``metrics`` holds the figures (see ``metric_docs.METRIC_DOCS``; ``None`` where a
    figure does not exist here) and ``notes`` says, per metric, why it is ``None`` or how it was
    measured."""

    kind: Literal["finished"] = _kind("finished")
    status: str = "ok"
    device: str = "cpu"
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    time_s: float = 0.0
    #: ``profiling.Profile.to_dict()`` when the run was profiled (``RunConfig.profile_steps``), else
    #: ``None`` (not asked for, or the profiler failed: ``notes["profile"]`` says why).
    profile: dict[str, Any] | None = None


@dataclass
class Failed(Event):
    """The run started but did not complete: ``status`` is ``failed``, ``diverged``, ``timeout`` or
    ``interrupted``; ``reason`` says why in one line; ``error_tail`` holds the end of the traceback or
    stderr."""

    kind: Literal["failed"] = _kind("failed")
    status: str = "failed"
    reason: str = ""
    error_tail: str = ""
    time_s: float = 0.0


@dataclass
class Skipped(Event):
    """The run never started: ``status`` is ``skipped`` (framework or device missing) or
    ``unsupported`` (the framework cannot express the model); ``reason`` says which."""

    kind: Literal["skipped"] = _kind("skipped")
    status: str = "skipped"
    reason: str = ""


#: Every event class by its ``kind``.
EVENT_TYPES: dict[str, type[Event]] = {cls.kind: cls for cls in (Started, Step, Steps, Epoch, Finished, Failed, Skipped)}

#: The event classes that end a run: exactly one of them is a run's last event.
TERMINAL: tuple[type[Event], ...] = (Finished, Failed, Skipped)

#: Validates one event line (``EVENT_ADAPTER.validate_json(line)``): a union of the event classes
#: discriminated on ``kind``. ``EVENT_ADAPTER.json_schema()`` is the wire format as JSON Schema.
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(
    Annotated[Union[Started, Step, Steps, Epoch, Finished, Failed, Skipped], Field(discriminator="kind")]
)


class EventLineError(ValueError):
    """A line of a child's event stream that is not a valid event.

    Attributes:
        line: the whole line, as read.
        problem: what is wrong, one line (``"losses.1: Input should be a valid number, got 'x'"``: the
            field's path inside the event, then what pydantic found).
    """

    def __init__(self, line: str, problem: str):
        self.line, self.problem = line, problem
        super().__init__(f"{problem}; line: {quote(line)}")


class NotAnEvent(EventLineError):
    """The line is not a JSON object at all (not JSON, or a JSON number, string, list...)."""


class MalformedEvent(EventLineError):
    """The line is a JSON object but not a valid event: unknown or absent ``kind``, a missing
    required field, a field of the wrong type, an unknown field, or a ``steps`` event whose
    ``steps`` and ``losses`` differ in length."""


def quote(line: str, limit: int = QUOTE_CHARS) -> str:
    """``line`` without its line break, cut to ``limit`` characters (``...`` marks a cut), as a
    Python literal (quotes and escapes, so control characters show)."""
    text = line.rstrip("\r\n")
    return repr(text[:limit] + "...") if len(text) > limit else repr(text)


def from_json(line: str) -> Event:
    """Parse and validate one line written by :meth:`Event.to_json` (a trailing newline is fine).

    Returns:
        The event, with ``kind``'s class.

    Raises:
        NotAnEvent: not a JSON object.
        MalformedEvent: a JSON object that is not a valid event (see the module docstring).
        Both are ``ValueError``s whose message names the problem and quotes the line.
    """
    try:
        event = EVENT_ADAPTER.validate_json(line)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        if first["type"] == "json_invalid" or (not first["loc"] and not isinstance(first["input"], dict)):
            raise NotAnEvent(line, "not a JSON object") from None
        raise MalformedEvent(line, "; ".join(_describe(e) for e in errors[:3])) from None
    if isinstance(event, Steps) and len(event.steps) != len(event.losses):
        raise MalformedEvent(line, f"steps: {len(event.steps)} steps but {len(event.losses)} losses")
    return event


def _describe(error: dict) -> str:
    """One pydantic error as ``field: message, got value``."""
    if error["type"] == "union_tag_invalid":
        return f"unknown event kind {error['ctx']['tag']!r} (allowed: {', '.join(EVENT_TYPES)})"
    if error["type"] == "union_tag_not_found":
        return f"no 'kind' field (allowed kinds: {', '.join(EVENT_TYPES)})"
    where = ".".join(str(part) for part in error["loc"][1:]) or "event"  # loc[0] is the kind
    if error["type"] in ("missing", "missing_keyword_only_argument", "missing_positional_argument"):
        return f"{where}: required field missing"
    if error["type"] == "unexpected_keyword_argument":
        return f"{where}: unknown field"
    return f"{where}: {error['msg']}, got {reprlib.repr(error['input'])}"
