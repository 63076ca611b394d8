"""Profiles of training steps: each framework's own profiler, one normalized op table, one merged trace.

Throughput says *that* a framework is faster; a profile says *why* (per-op dispatch overhead
against fused XLA code, a matmul that reaches the machine's peak or not, time in copies or in the
optimizer). Each ``frameworks/<name>/profile.py`` runs K steady training steps under the
framework's **own** profiler and reads the result back through that profiler's own API:

===========  ==============================================================================
torch        ``torch.profiler.profile`` (CPU; plus CUDA activity on a GPU), ``key_averages()``,
             ``export_chrome_trace``
jax          ``jax.profiler.trace(..., create_perfetto_trace=True)`` with a
             ``StepTraceAnnotation`` per step; the XPlane file read with ``jax.profiler.ProfileData``
tensorflow   ``tf.profiler.experimental.start/stop`` with ``Trace(..., step_num=...)``; the XPlane
             file read with ``xprof``
sklearn      no profiler of its own: Python's ``cProfile`` for the table, ``sys.setprofile`` for the
             one-step timeline; NumPy / BLAS calls mapped to categories
===========  ==============================================================================

The contract of ``frameworks/<name>/profile.py`` (the same module and function in each)::

    def profile(run_step: Callable[[int], None], steps: int, out_dir: Path, trainer) -> RawProfile

``run_step(i)`` runs training step ``i`` (0-based, ``i < steps``) and waits for its result (it
reads the loss back: a sync); :func:`profile_steps` builds it and times each call itself, so the
profiled step time never depends on what a profiler reports. The module wraps the ``steps`` calls in
its profiler (with a per-step annotation where the profiler has one), writes the profiler's native
output under ``out_dir`` (which exists and is empty), and returns a :class:`RawProfile`. It must
leave no profiler session open, even when it raises.

Normalization (:func:`normalize`): every op's self time is divided by the number of profiled steps;
its category comes from ``frameworks/<name>/op_categories.yaml`` (ordered rules, the first match
wins; data, not code, with a test per framework). ``framework overhead`` is the part of the measured
profiled step time that no op accounts for (Python, dispatch, kernel launch). Op names no rule maps
fall into ``other`` and are listed in :attr:`Profile.unmapped`, so they get mapped rather than
hidden.
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable

#: The categories of the normalized op table, in the order they are drawn (bottom to top).
CATEGORIES = (
    "matmul",
    "conv",
    "elementwise",
    "reduction",
    "loss/softmax",
    "optimizer update",
    "data movement",
    "framework overhead",
    "other",
)
#: Categories an ``op_categories.yaml`` rule may name (overhead is computed, never mapped).
MAPPABLE = tuple(c for c in CATEGORIES if c != "framework overhead")
#: Default number of profiled steps (``mlx-explore profile --steps``).
DEFAULT_STEPS = 20
#: Untimed, unprofiled steps before the measured ones (caches, allocator, lazy init).
WARMUP_STEPS = 3
#: How far the ops may exceed the measured step time before the table is flagged [fraction].
ADD_UP_RTOL = 0.05


@dataclass
class OpStat:
    """One op as the profiler aggregated it over all profiled steps.

    Attributes:
        name: the framework's own name (``aten::addmm``, ``dot.3`` / ``fusion.12``, ``MatMul``,
            ``numpy.dot``).
        calls: how many times it ran over all profiled steps.
        self_us: its self time over all profiled steps [us] (time inside it, minus ops it called).
        hint: what else is known of the op, for the category rules: the profiler's own label where it
            gives one (XLA's ``hlo_category`` stat, a TensorFlow op type), or one the framework's
            module derives (PyTorch: ``optimizer`` inside ``Optimizer.step``; JAX on CPU: the fused
            HLO's root op and source line from the compiled step), else ``None``.
    """

    name: str
    calls: int
    self_us: float
    hint: str | None = None


@dataclass
class RawProfile:
    """What a ``frameworks/<name>/profile.py`` returns.

    Attributes:
        ops: the ops of the profiled steps, aggregated (one entry per name, or per name and hint),
            leaf ops only, so that self times never count the same time twice.
        step_events: Chrome Trace Event Format events of **one** profiled step (the middle one):
            complete events (``"ph": "X"``) with ``name``, ``ts`` and ``dur`` [us], ``ts`` relative to
            the step's start, ``tid`` a thread number or name; ``args`` optional. :func:`merge_traces`
            gives each framework its own process track.
        native: paths of the native trace files written under ``out_dir`` (what a person opens in
            TensorBoard, Perfetto UI or ``chrome://tracing``).
        device: where the op times were measured: ``cpu``, or ``gpu`` when they are device kernels.
        notes: anything a reader of the table must know (e.g. what XLA's fusion hides).
    """

    ops: list[OpStat]
    step_events: list[dict] = field(default_factory=list)
    native: list[str] = field(default_factory=list)
    device: str = "cpu"
    notes: list[str] = field(default_factory=list)


@dataclass
class Profile:
    """A run's normalized profile: the op table, the step times, the traces.

    Attributes:
        framework: registry name.
        steps: profiled steps.
        rows: the op table, one dict per op with ``op``, ``category``, ``calls_per_step``,
            ``self_ms_per_step`` [ms] and ``share_of_step`` (of the profiled step time), plus one
            ``framework overhead`` row (``op`` = ``(unaccounted step time)``); largest first.
        step_ms: mean wall time of a profiled step [ms] (with the profiler running); a mean, not a
            median, because the ops' figures are totals over the steps divided by their number, so
            ops + overhead add up to it.
        unprofiled_step_ms: median wall time of the same steps without the profiler [ms] (a median:
            one stalled step, a collection or a late recompilation, would swamp a mean of 20); the
            ratio of the two is about the profiler's own overhead.
        ops_ms: the ops' self time per step [ms]; more than ``step_ms`` (beyond
            :data:`ADD_UP_RTOL`) means ops overlapped (several threads) and the table is flagged.
        device: ``cpu`` or ``gpu`` (see :class:`RawProfile`).
        unmapped: op names no rule of ``op_categories.yaml`` maps (counted as ``other``).
        native: the native trace files.
        step_events: one step's trace events (see :class:`RawProfile`).
        notes: what the reader must know.
        step_events_file: where a child wrote ``step_events`` (``{"traceEvents": [...]}``), which it then
            leaves out of the event it sends.
        trace_dir: the run's trace folder (``<traces>/<run_id>/`` once stored).
    """

    framework: str
    steps: int
    rows: list[dict]
    step_ms: float
    unprofiled_step_ms: float
    ops_ms: float
    device: str = "cpu"
    unmapped: list[str] = field(default_factory=list)
    native: list[str] = field(default_factory=list)
    step_events: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    step_events_file: str | None = None
    trace_dir: str | None = None

    @property
    def adds_up(self) -> bool:
        """The ops do not exceed the measured step time by more than :data:`ADD_UP_RTOL`."""
        return self.ops_ms <= self.step_ms * (1 + ADD_UP_RTOL)

    def by_category(self) -> dict[str, float]:
        """Milliseconds per step by category, every category of :data:`CATEGORIES` present."""
        out = dict.fromkeys(CATEGORIES, 0.0)
        for r in self.rows:
            out[r["category"]] += r["self_ms_per_step"]
        return out

    def to_dict(self) -> dict:
        """JSON-ready (what the child sends in its ``Finished`` event)."""
        return {
            "framework": self.framework, "steps": self.steps, "rows": self.rows, "step_ms": self.step_ms,
            "unprofiled_step_ms": self.unprofiled_step_ms, "ops_ms": self.ops_ms, "device": self.device,
            "unmapped": self.unmapped, "native": self.native, "step_events": self.step_events, "notes": self.notes,
            "step_events_file": self.step_events_file, "trace_dir": self.trace_dir,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> Profile:
        """The inverse of :meth:`to_dict`."""
        return cls(**d)


# ---------------------------------------------------------------------------- categories


class CategoryError(ValueError):
    """An ``op_categories.yaml`` that is not valid; names the file, the rule and the field."""


@dataclass(frozen=True)
class Rule:
    """One rule of ``op_categories.yaml``: an op whose name matches ``pattern`` (a regular expression,
    ``re.search``) and, if given, whose profiler hint matches ``hint`` (also ``re.search``) is in
    ``category``."""

    pattern: re.Pattern | None
    hint: re.Pattern | None
    category: str


def _compile(value: Any, where: str, key: str) -> re.Pattern | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise CategoryError(f"{where}: {key} must be a regular expression string (got {value!r})")
    try:
        return re.compile(value)
    except re.error as e:
        raise CategoryError(f"{where}: {key} {value!r} is not a valid regular expression: {e}") from e


def parse_rules(data: Any, source: str) -> tuple[Rule, ...]:
    """Rules from parsed YAML: ``{"rules": [{"pattern": ..., "hint": ..., "category": ...}, ...]}``.

    Raises:
        CategoryError: not that shape, a rule with neither ``pattern`` nor ``hint``, a category not
            in :data:`MAPPABLE`, or an invalid regular expression (the file and rule are named).
    """
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise CategoryError(f"{source}: must hold a mapping with a list 'rules'")
    rules = []
    for i, entry in enumerate(data["rules"], start=1):
        where = f"{source}, rule {i}"
        if not isinstance(entry, dict):
            raise CategoryError(f"{where}: must be a mapping with pattern/hint and category")
        unknown = set(entry) - {"pattern", "hint", "category", "why"}
        if unknown:
            raise CategoryError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; allowed: pattern, hint, category, why")
        if entry.get("category") not in MAPPABLE:
            raise CategoryError(f"{where}: category {entry.get('category')!r} is not allowed; allowed: {', '.join(MAPPABLE)}")
        pattern, hint = _compile(entry.get("pattern"), where, "pattern"), _compile(entry.get("hint"), where, "hint")
        if pattern is None and hint is None:
            raise CategoryError(f"{where}: needs a pattern, a hint or both")
        rules.append(Rule(pattern, hint, entry["category"]))
    return tuple(rules)


@lru_cache(maxsize=None)
def rules_for(framework: str) -> tuple[Rule, ...]:
    """The rules of ``mlx_explore/frameworks/<framework>/op_categories.yaml``.

    Raises:
        CategoryError: the file is missing or invalid.
    """
    import yaml

    try:
        text = resources.files(f"mlx_explore.frameworks.{framework}").joinpath("op_categories.yaml").read_text()
    except (FileNotFoundError, ModuleNotFoundError) as e:
        raise CategoryError(f"no op_categories.yaml for framework {framework!r}") from e
    return parse_rules(yaml.safe_load(text), f"frameworks/{framework}/op_categories.yaml")


def categorize(framework: str, name: str, hint: str | None = None) -> str | None:
    """The category of op ``name`` (with the profiler's ``hint``) by the framework's rules; ``None``
    when no rule matches. A rule with a ``hint`` never matches an op without one."""
    for rule in rules_for(framework):
        if rule.pattern is not None and not rule.pattern.search(name):
            continue
        if rule.hint is not None and (hint is None or not rule.hint.search(hint)):
            continue
        return rule.category
    return None


# ---------------------------------------------------------------------------- normalization


def normalize(framework: str, raw: RawProfile, steps: int, step_times_s: list[float],
              unprofiled_times_s: list[float]) -> Profile:  # fmt: skip
    """The normalized :class:`Profile` of ``raw``.

    Args:
        framework: registry name (selects the category rules).
        raw: what the framework's ``profile`` returned.
        steps: profiled steps (the divisor of every per-step figure).
        step_times_s: wall time of each profiled step [s], measured around ``run_step``.
        unprofiled_times_s: wall time of each unprofiled step of the same batches [s].
    """
    step_ms = statistics.fmean(step_times_s) * 1e3  # a mean, as the ops' totals / steps are
    rows, unmapped = [], []
    for op in raw.ops:
        category = categorize(framework, op.name, op.hint)
        if category is None:
            unmapped.append(op.name)
            category = "other"
        ms = op.self_us / 1e3 / steps
        rows.append({"op": op.name, "category": category, "calls_per_step": op.calls / steps,
                     "self_ms_per_step": ms, "share_of_step": ms / step_ms if step_ms else None})  # fmt: skip
    ops_ms = sum(r["self_ms_per_step"] for r in rows)
    overhead = max(0.0, step_ms - ops_ms)
    rows.append({"op": "(unaccounted step time)", "category": "framework overhead", "calls_per_step": 1.0,
                 "self_ms_per_step": overhead, "share_of_step": overhead / step_ms if step_ms else None})  # fmt: skip
    rows.sort(key=lambda r: -r["self_ms_per_step"])
    notes = list(raw.notes)
    if ops_ms > step_ms * (1 + ADD_UP_RTOL):
        notes.append(f"the ops' self time ({ops_ms:.3f} ms per step) exceeds the measured step time ({step_ms:.3f} ms) "
                     f"by more than {ADD_UP_RTOL:.0%}: ops ran in parallel on several threads, so shares add up to more than 1")  # fmt: skip
    return Profile(framework=framework, steps=steps, rows=rows, step_ms=step_ms,
                   unprofiled_step_ms=statistics.median(unprofiled_times_s) * 1e3, ops_ms=ops_ms, device=raw.device,
                   unmapped=sorted(set(unmapped)), native=list(raw.native), step_events=list(raw.step_events), notes=notes)  # fmt: skip


# ---------------------------------------------------------------------------- running (in the child)


def profile_steps(framework: str, trainer, bundle, steps: int, out_dir: str | Path, clock=time.perf_counter) -> Profile:
    """Profile ``steps`` training steps of a built, trained ``trainer`` with its framework's profiler.

    Runs in the framework's child process after every measured phase (``frameworks.common.fit``), so
    profiling never touches a reported figure. The batches replay the first epoch's from its start
    (``BatchOrder.first_steps``, as the step-latency phase does): :data:`WARMUP_STEPS` untimed steps,
    then ``steps`` steps timed without the profiler, then the same ``steps`` under it.

    Args:
        framework: registry name; ``mlx_explore.frameworks.<framework>.profile`` is imported.
        trainer: the run's ``Trainer``.
        bundle: the run's ``Bundle`` (its batch order).
        steps: profiled steps, >= 1.
        out_dir: where the native trace goes (created; must be empty or new).
        clock: seconds (injectable for tests).

    Raises:
        NotImplementedError: a Keras column (``keras-*``): no profile adapter yet; profile the native
            column of the backend.
        whatever the framework's profiler raises; the caller turns it into a note.
    """
    import importlib

    from .frameworks import REGISTRY

    if framework in REGISTRY and REGISTRY[framework].package == "keras":
        raise NotImplementedError(f"{framework}: profiling the Keras columns is not supported yet; profile the native "
                                  f"{REGISTRY[framework].keras_backend} column instead")  # fmt: skip
    module = importlib.import_module(f"mlx_explore.frameworks.{framework}.profile")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = trainer.indices(bundle.order.first_steps(steps + WARMUP_STEPS))
    for i in range(WARMUP_STEPS):
        trainer.losses([trainer.train_step(rows[i])])
    rows = rows[WARMUP_STEPS:]

    def timed(times: list[float]) -> Callable[[int], None]:
        def run_step(i: int) -> None:
            t = clock()
            trainer.losses([trainer.train_step(rows[i])])
            times.append(clock() - t)

        return run_step

    unprofiled: list[float] = []
    plain = timed(unprofiled)
    for i in range(steps):
        plain(i)
    profiled: list[float] = []
    raw = module.profile(timed(profiled), steps, out, trainer)
    if len(profiled) != steps:
        raise RuntimeError(f"{framework}'s profile ran {len(profiled)} steps, not the {steps} asked for")
    return normalize(framework, raw, steps, profiled, unprofiled)


# ---------------------------------------------------------------------------- reading and merging


def category_frame(profiles: dict[str, Profile | dict]):
    """Milliseconds per step by category, one row per run label (a ``pandas.DataFrame``): the columns
    of :data:`CATEGORIES` plus ``step_ms`` (profiled) and ``unprofiled_step_ms`` [ms]. What
    ``ProfileView`` stacks and ``mlx-explore profile`` prints."""
    import pandas as pd

    rows = {}
    for label, p in profiles.items():
        p = p if isinstance(p, Profile) else Profile.from_dict(p)
        rows[label] = {**p.by_category(), "step_ms": p.step_ms, "unprofiled_step_ms": p.unprofiled_step_ms}
    return pd.DataFrame.from_dict(rows, orient="index", columns=[*CATEGORIES, "step_ms", "unprofiled_step_ms"])


def step_events(profile: Profile | dict) -> list[dict]:
    """The one-step trace events of a profile: its ``step_events``, else read from its
    ``step_events_file`` (``[]`` when that file is gone)."""
    import json

    p = profile if isinstance(profile, Profile) else Profile.from_dict(profile)
    if p.step_events:
        return p.step_events
    if p.step_events_file and Path(p.step_events_file).is_file():
        return json.loads(Path(p.step_events_file).read_text()).get("traceEvents", [])
    return []


def merge_traces(steps: dict[str, list[dict]], path: str | Path) -> Path:
    """Write one Chrome Trace Event Format JSON file holding one profiled step of each run, one process
    track per run (named by its label), every step starting at time 0: opens in Perfetto UI
    (https://ui.perfetto.dev, "Open trace file"; it runs in the browser, nothing is uploaded) or in
    Chromium's ``chrome://tracing``. Format:
    https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU

    Args:
        steps: run label -> that run's one-step events (``RawProfile.step_events``).
        path: the file to write (its folder is created).

    Returns:
        the path written.
    """
    import json

    out: list[dict] = []
    for pid, (label, events) in enumerate(steps.items(), start=1):
        out.append({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": label}})
        out.append({"ph": "M", "name": "process_sort_index", "pid": pid, "args": {"sort_index": pid}})
        tids: dict[Any, int] = {}
        for e in events:
            if e.get("ph", "X") != "X":
                continue
            tid = tids.setdefault(e.get("tid", 0), len(tids) + 1)
            out.append({"ph": "X", "pid": pid, "tid": tid, "name": str(e.get("name", "?")), "ts": float(e.get("ts", 0.0)),
                        "dur": float(e.get("dur", 0.0)), **({"args": e["args"]} if e.get("args") else {})})  # fmt: skip
        for original, tid in tids.items():
            out.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": str(original)}})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"traceEvents": out, "displayTimeUnit": "ms"}))
    return path


def load(db: str | Path | None = None, *, run_ids=None, framework=None, model=None, dataset=None) -> dict[str, Profile]:
    """Stored profiles (``results.load_profiles`` and ``load_profile_runs``) as :class:`Profile` objects,
    keyed ``"<framework>/<mode> #<run_id>"``, oldest run first. Filters as in ``results.load_curves``.

    Raises:
        results.StoreError: the store cannot be read.
    """
    from .results import load_profile_runs, load_profiles

    runs = load_profile_runs(db, run_ids=run_ids, framework=framework, model=model, dataset=dataset)
    ops = load_profiles(db, run_ids=list(runs["run_id"]) if len(runs) else [-1])
    out: dict[str, Profile] = {}
    for r in runs.itertuples(index=False):
        rows = ops[ops["run_id"] == r.run_id]
        table = [{"op": o.op, "category": o.category, "calls_per_step": o.calls_per_step,
                  "self_ms_per_step": o.self_ms_per_step, "share_of_step": o.share_of_step}
                 for o in rows.itertuples(index=False)]  # fmt: skip
        step_file = Path(r.trace_dir) / "step_events.json" if isinstance(r.trace_dir, str) else None
        out[f"{r.framework}/{r.mode} #{r.run_id}"] = Profile(
            framework=r.framework, steps=int(r.steps), rows=table, step_ms=r.step_ms, unprofiled_step_ms=r.unprofiled_step_ms,
            ops_ms=r.ops_ms, device=r.device, unmapped=r.unmapped, native=r.native, notes=r.notes,
            step_events_file=str(step_file) if step_file else None, trace_dir=r.trace_dir,
        )  # fmt: skip
    return out
