"""Profiling JAX training steps with JAX's own profiler (the contract: ``mlx_explore/profiling.py``).

``jax.profiler.trace(out_dir, create_perfetto_trace=True)`` (https://docs.jax.dev/en/latest/profiling.html)
writes an XPlane file (``<host>.xplane.pb``, what TensorBoard / XProf open) and a Chrome-trace
``perfetto_trace.json.gz`` under ``out_dir/plugins/profile/<run>/``; each step runs inside
``jax.profiler.StepTraceAnnotation("train", step_num=i)``. The XPlane file is read back with
``jax.profiler.ProfileData.from_file`` (planes -> lines -> events, each with ``stats``).

Ops are the events that carry an ``hlo_op`` stat and start between the first step's start and the
last step's end:

* CPU (plane ``/host:CPU``): XLA's thunk executor emits one event per executed HLO op (``dot.1``,
  ``ynn_fusion.3``, ``broadcast_maximum_fusion``, ``copy.4``...; stats ``hlo_op``, ``hlo_module``)
  on the thread that ran it: ``tf_XLAEigen`` pool threads, ``tf_XLAPjRtCpuClient`` threads, now and
  then the Python thread. The step annotation, ``PjitFunction(...)``, the executable's launch,
  ``ThunkExecutor::Execute`` (and its "wait for completion"), thread-pool markers and ``end: ...``
  markers carry no ``hlo_op``: they are not ops (``profiling.normalize`` counts the step time no
  op covers as framework overhead). jax 0.10.2 gives CPU ops no ``hlo_category`` stat.
* GPU (planes ``/device:GPU:N``): the kernels, keyed by their ``hlo_op`` stat (one HLO op may
  launch several kernels); the ``XLA Ops`` line instead when a plane has one (one event per op).

Time: an op's self time is its duration minus the op events nested in it on the same line, plus
the thread-pool tasks it handed work to (on a CPU an Eigen ``dot.N`` returns at once and computes in
pool tasks; :func:`_pool_work`). The thunk executor also runs independent ops at once, so op work
on different threads overlaps; the wall time where ``k`` pieces of op work overlap is split evenly
between them (each gets ``1/k``), so the ops never add up to more than the wall time of the steps.

Hints (:attr:`OpStat.hint`, what ``op_categories.yaml`` matches). jit: ``"<what> | <jax op> |
<source>"`` from the compiled HLO of the trainer's step (``jax.stages.Compiled.as_text()``, see
:func:`hlo_hints`), since an XLA name alone does not say what a ``ynn_fusion.3`` computes (a dot,
a convolution or a reduction) nor whose ``multiply_add_fusion`` it is (the model's or optax's).
Eager: every primitive runs as its own small module, so the hint is the module (``jit_dot_general``,
``jit_add``...). Either is followed by ``| hlo_category=<...>`` where the profiler gives that stat.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from itertools import accumulate
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from ...profiling import OpStat, RawProfile

#: The name of the per-step annotation (``StepTraceAnnotation``).
STEP = "train"
#: JAX's Python tracer (``ProfileOptions.python_tracer_level`` 1, its default) records every Python call:
#: on this project's 2-core CPU it made an eager MLP step 3x slower (25 -> 74 ms) and writing 20 steps'
#: trace 20 s; off (0), the step is 1.5x slower and the write under 1 s. The trace keeps JAX's own
#: TraceMe events (``PjitFunction(...)``, the executable's launch, waits).
PYTHON_TRACER_LEVEL = 0
#: At most this many events of the middle step go into ``step_events``.
MAX_STEP_EVENTS = 3000
#: Events of no interest in a timeline: thread-pool bookkeeping and completion markers.
NOISE = re.compile(r"^(ThreadpoolListener::|end: )")
#: HLO opcodes left out of a fusion's ``<what>``: plumbing, not work.
PLUMBING = {"parameter", "constant", "tuple", "get-tuple-element", "bitcast"}


def _stats(event) -> dict:
    return {k: v for k, v in event.stats if k is not None}


def _op_lines(data, gpu: bool) -> list:
    """The XPlane lines that hold the ops: every line of ``/host:CPU``; on a GPU each device plane's
    ``XLA Ops`` line where it has one, else its ``Stream #N(...)`` lines (CUPTI's kernels, which
    carry the ``hlo_op``/``hlo_module`` of the launching annotation)."""
    if not gpu:
        return list(data.find_plane_with_name("/host:CPU").lines)
    lines = []
    for plane in data.planes:
        if plane.name.startswith("/device:GPU"):
            own = list(plane.lines)
            lines += [line for line in own if line.name == "XLA Ops"] or [line for line in own if line.name.startswith("Stream")]
    return lines


class _Spans:
    """Intervals of one line, sorted by start, to find the innermost one covering an instant."""

    def __init__(self, spans: list[tuple[int, int, object]]):
        self.spans = sorted(spans, key=lambda s: (s[0], -s[1]))
        self.starts = [s[0] for s in self.spans]
        self.reach = list(accumulate((s[1] for s in self.spans), max))  # the furthest end so far

    def at(self, t: int):
        """The value of the latest-starting span that covers ``t``, else ``None``."""
        i = bisect_right(self.starts, t) - 1
        while i >= 0 and self.reach[i] >= t:
            if self.spans[i][1] >= t:
                return self.spans[i][2]
            i -= 1
        return None


def _pool_work(lines, ops: list[tuple[int, int, int, object]], first: int, last: int) -> list[tuple[int, int, int, object]]:
    """The thread-pool tasks that ran an op's work, as ``(start_ns, end_ns, line, op key)``.

    XLA's CPU runtime hands work to its pool: an Eigen matmul (``dot.N``) returns at once and its
    shards run as pool tasks until long after the op's own event has ended; XNNPACK fusions fan out
    too. The profiler's ``ThreadpoolListener`` marks each task: a ``Record`` where it was scheduled
    (stat ``_p``) and a ``StartRegion``/``StopRegion`` pair where it ran (stat ``_c``, the same id).
    A task belongs to the op running on the scheduling thread at the ``Record``, or else to the
    owner of the task it was scheduled from; tasks of the thunk executor itself (those that run
    ``ThunkExecutor::Execute``, i.e. further ops, counted by their own events) belong to no op.
    """
    records, regions, executor = {}, [], defaultdict(list)
    for n, line in enumerate(lines):
        opened = None
        for e in line.events:
            if e.name == "ThreadpoolListener::Record":
                records[_stats(e).get("_p")] = (n, e.start_ns)
            elif e.name == "ThreadpoolListener::StartRegion":
                opened = (e.start_ns, _stats(e).get("_c"))
            elif e.name == "ThreadpoolListener::StopRegion" and opened:
                regions.append((opened[0], e.start_ns, n, opened[1]))
                opened = None
            elif e.name.startswith("ThunkExecutor::Execute"):
                executor[n].append(e.start_ns)  # lines are sorted by start

    def runs_executor(s: int, t: int, n: int) -> bool:
        i = bisect_left(executor[n], s)
        return i < len(executor[n]) and executor[n][i] <= t

    tasks = [r for r in regions if not runs_executor(*r[:3])]
    op_at = {n: _Spans([(s, t, key) for s, t, m, key in ops if m == n]) for n in range(len(lines))}
    task_at = {n: _Spans([(s, t, task) for s, t, m, task in tasks if m == n]) for n in range(len(lines))}
    owner: dict = {}

    def owner_of(task):
        chain, found = [], None
        while task is not None and task not in owner and task in records:
            chain.append(task)
            n, t = records[task]
            if (found := op_at[n].at(t)) is not None:
                break
            task = task_at[n].at(t)  # scheduled from another task: that task's owner
        if found is None and task is not None:
            found = owner.get(task)
        owner.update(dict.fromkeys(chain, found))
        return found

    return [(s, t, n, key) for s, t, n, task in tasks if first <= s <= last and (key := owner_of(task)) is not None]


def _attribute(events: list[tuple[int, int, int, object]]) -> dict[object, float]:
    """Self time [ns] per key of ``(start_ns, end_ns, line, key)`` pieces of op work: at each instant
    the innermost piece of each line is running; ``k`` of them at once share that instant evenly."""
    bounds = []
    for i, (start, end, line, _) in enumerate(events):
        bounds += [(start, 1, -(end - start), i), (end, 0, 0, i)]  # ends first; outer ops open first
    bounds.sort()
    stacks: dict[int, list[int]] = defaultdict(list)
    out: dict[object, float] = defaultdict(float)
    prev = bounds[0][0] if bounds else 0
    for t, opening, _, i in bounds:
        leaves = [stack[-1] for stack in stacks.values() if stack]
        for j in leaves:
            out[events[j][3]] += (t - prev) / len(leaves)
        prev = t
        if opening:
            stacks[events[i][2]].append(i)
        else:
            stacks[events[i][2]].remove(i)
    return out


def _source(frame: str | None, sections: dict) -> str:
    """``file:function`` of a stack frame id of the HLO text (path from its package down)."""
    if frame is None or frame not in sections["StackFrames"]:
        return ""
    location = sections["FileLocations"].get(sections["StackFrames"][frame].get("file_location_id"), {})
    path = sections["FileNames"].get(location.get("file_name_id"), "")
    path = path.rpartition("site-packages/")[2] if "site-packages/" in path else "/".join(Path(path).parts[-3:])
    return f"{path}:{sections['FunctionNames'].get(location.get('function_name_id'), '')}"


def hlo_hints(text: str) -> dict[str, str]:
    """``{op name: hint}`` for the instructions of a compiled HLO module's text (``Compiled.as_text()``).

    A hint is ``"<what> | <jax op> | <source>"``: ``<what>`` is the opcode (``dot``, ``copy``,
    ``custom-call __cublas$gemm``) or, for a fusion, ``fusion(<opcodes inside>)``; ``<jax op>`` the
    ``op_name`` of the instruction's metadata (``jit(train_step)/jvp(MLP)/Dense_0/dot_general``);
    ``<source>`` its innermost Python frame (``optax/_src/update.py:apply_updates.<locals>.<lambda>``).
    Empty parts are left out. Source: the HLO text format of XLA (https://openxla.org/xla/operation_semantics).
    """
    sections: dict[str, dict] = {"FileNames": {}, "FunctionNames": {}, "FileLocations": {}, "StackFrames": {}}
    computations: dict[str, list[str]] = defaultdict(list)
    instructions: dict[str, dict] = {}
    section = computation = None
    for line in text.splitlines():
        if line in sections:
            section = line
        elif section and (m := re.match(r"^(\d+) (.*)$", line)):
            value = m[2]
            sections[section][m[1]] = value.strip('"') if value.startswith('"') else dict(re.findall(r"(\w+)=(\d+)", value))
        elif m := re.match(r"^(?:ENTRY )?%?([\w.-]+) .*\{$", line):
            section, computation = None, m[1]
        elif computation and (m := re.match(r"^\s+(?:ROOT )?%?([\w.-]+) = .*? ([a-z][\w-]*)\((.*)$", line)):
            name, opcode, rest = m.groups()
            calls = re.search(r"\bcalls=%?([\w.-]+)", rest)
            target = re.search(r'custom_call_target="([^"]+)"', rest)
            op_name = re.search(r'op_name="([^"]*)"', rest)
            frame = re.search(r"stack_frame_id=(\d+)", rest)
            instructions[name] = {"opcode": opcode + (f" {target[1]}" if target else ""), "calls": calls and calls[1],
                                  "op_name": op_name and op_name[1], "frame": frame and frame[1]}  # fmt: skip
            computations[computation].append(name)

    def opcodes(computation: str) -> set[str]:
        out = set()
        for name in computations.get(computation, ()):
            inst = instructions[name]
            out |= opcodes(inst["calls"]) if inst["calls"] else {inst["opcode"]} - PLUMBING
        return out

    hints = {}
    for name, inst in instructions.items():
        meta = inst
        if inst["calls"]:
            what = f"{inst['opcode']}({' '.join(sorted(opcodes(inst['calls'])))})"
            root = (computations.get(inst["calls"]) or [None])[-1]
            if not inst["op_name"] and root in instructions:  # a fusion without metadata: its root's
                meta = instructions[root]
        else:
            what = inst["opcode"]
        hints[name] = " | ".join(p for p in (what, meta["op_name"], _source(meta["frame"], sections)) if p)
    return hints


def _compiled_hints(trainer) -> tuple[str | None, dict[str, str], str | None]:
    """``(module name, {op: hint}, None)`` from the compiled HLO of the trainer's jitted step, or
    ``(None, {}, why not)``. The lowering hits the jit cache of the step just run (same arguments'
    shapes and dtypes: the batch's row indices are int64 NumPy, as ``BatchOrder`` gives them)."""
    step = getattr(trainer, "_step", None)
    if not hasattr(step, "lower"):
        return None, {}, None  # eager: nothing compiled as a whole
    try:
        idx = np.zeros(trainer.config.batch_size, np.int64)
        text = step.lower(trainer.params, trainer.opt_state, trainer.x, trainer.y, idx).compile().as_text()
    except Exception as e:  # noqa: BLE001 - hints are an aid; the op table stands without them
        return None, {}, f"no hints from the compiled HLO ({type(e).__name__}: {e}); ops categorized by name only"
    module = re.match(r"HloModule ([\w.-]+)", text)
    return module and module[1], hlo_hints(text), None


def _step_events(data, window: tuple[int, int], gpu: bool, tasks: list[dict]) -> list[dict]:
    """Chrome "X" events that start inside ``window`` [ns]: every op and every pool task of one
    (``tasks``, already relative), then the longest other events up to :data:`MAX_STEP_EVENTS`;
    ``ts`` from the window's start and ``dur`` in microseconds."""
    start, end = window
    ops, others = list(tasks), []
    for plane in data.planes:
        if not (plane.name == "/host:CPU" or (gpu and plane.name.startswith("/device:GPU"))):
            continue
        for line in plane.lines:
            tid = line.name if plane.name == "/host:CPU" else f"{plane.name} {line.name}"
            for e in line.events:
                if not start <= e.start_ns <= end or NOISE.match(e.name):
                    continue
                event = {"name": e.name, "ph": "X", "ts": (e.start_ns - start) / 1e3, "dur": e.duration_ns / 1e3, "tid": tid}
                stats = {} if e.name.startswith("$") else _stats(e)
                if "hlo_op" in stats:
                    ops.append(event | {"args": {"hlo_module": stats.get("hlo_module"), "hlo_op": stats["hlo_op"]}})
                else:
                    others.append(event)
    others.sort(key=lambda ev: -ev["dur"])
    return sorted(ops[:MAX_STEP_EVENTS] + others[: max(0, MAX_STEP_EVENTS - len(ops))], key=lambda ev: ev["ts"])


def profile(run_step: Callable[[int], None], steps: int, out_dir: Path, trainer) -> RawProfile:
    """Run ``run_step(0..steps-1)`` under ``jax.profiler.trace`` and read the XPlane back.

    Each step runs in ``jax.profiler.StepTraceAnnotation("train", step_num=i)``; the trace is a
    context manager, so the session is stopped (and its files written) even when ``run_step``
    raises, and a later call can start a new one. Docs: https://docs.jax.dev/en/latest/profiling.html
    (``jax.profiler.trace``, ``StepTraceAnnotation``) and ``jax.profiler.ProfileData`` (the XPlane
    reader: ``from_file``, ``planes``, ``lines``, ``events``, ``stats``).

    Args:
        run_step: runs training step ``i`` and waits for its loss.
        steps: how many steps to profile, >= 1.
        out_dir: an existing, empty folder; the trace goes to ``out_dir/plugins/profile/<run>/``.
        trainer: the run's ``frameworks.jax.trainer.Trainer`` (``device_kind``; in compiled mode its
            jitted step, whose compiled HLO gives the hints).

    Returns:
        a :class:`~mlx_explore.profiling.RawProfile`: one :class:`OpStat` per (HLO op, hint) with
        calls and self time [us] over all steps (module docstring: overlapping ops share wall
        time); the middle step's events (``ts``/``dur`` in us from its start); the XPlane and
        Perfetto files; notes; ``device="gpu"`` when the ops are GPU kernels.

    Raises:
        whatever ``run_step`` raises; RuntimeError from ``jax.profiler`` (e.g. a trace already
        running) or when it wrote no XPlane file.
    """
    options = jax.profiler.ProfileOptions()
    options.python_tracer_level = PYTHON_TRACER_LEVEL
    with jax.profiler.trace(str(out_dir), create_perfetto_trace=True, profiler_options=options):
        for i in range(steps):
            with jax.profiler.StepTraceAnnotation(STEP, step_num=i):
                run_step(i)
    xplanes = sorted(Path(out_dir).glob("plugins/profile/*/*.xplane.pb"))  # run folders are named by time
    if not xplanes:
        raise RuntimeError(f"jax.profiler wrote no .xplane.pb under {out_dir}/plugins/profile/")
    xplane = xplanes[-1]
    native = [str(xplane)] + [str(p) for p in xplane.parent.glob("perfetto_trace.json.gz")]
    data = jax.profiler.ProfileData.from_file(str(xplane))
    marks = sorted((int(_stats(e)["step_num"]), e.start_ns, e.end_ns)
                   for line in data.find_plane_with_name("/host:CPU").lines for e in line.events if e.name == STEP)  # fmt: skip
    windows = [(start, end) for _, start, end in marks]
    gpu = trainer.device_kind == "gpu"
    first, last = (windows[0][0], windows[-1][1]) if windows else (0, -1)

    events, lines = [], _op_lines(data, gpu)
    for n, line in enumerate(lines):
        for e in line.events:
            if e.name.startswith("$") or not first <= e.start_ns <= last:
                continue
            stats = _stats(e)
            op = stats.get("hlo_op") or (e.name if gpu and line.name == "XLA Ops" else None)
            if op:
                events.append((e.start_ns, e.end_ns, n, (stats.get("hlo_module"), op, stats.get("hlo_category"))))
    calls = Counter(key for *_, key in events)
    work = events if gpu else events + _pool_work(lines, events, first, last)
    self_ns = _attribute(work)
    raw_ns = sum(t - s for s, t, *_ in work)

    module, hints, why_not = _compiled_hints(trainer)
    several = len({key[0] for key in calls}) > 1
    table: dict[tuple[str, str | None], list] = {}
    for key, n in calls.items():
        mod, op, category = key
        source = hints.get(op) if mod in (module, None) else mod  # eager: the module says which primitive
        hint = " | ".join(p for p in (source, category and f"hlo_category={category}") if p) or None
        row = table.setdefault((f"{mod}/{op}" if several and mod else op, hint), [0, 0.0])
        row[0] += n
        row[1] += self_ns[key] / 1e3
    ops = [OpStat(name, n, us, hint) for (name, hint), (n, us) in sorted(table.items())]

    span_ns = last - first
    notes = [
        "XLA fuses ops: a fusion.N / <ops>_fusion row is one loop over several HLO ops (e.g. broadcast_maximum_fusion "
        "= bias add + ReLU, multiply_add_fusion = an SGD/Adam update); ynn_fusion.N is a matmul, convolution or "
        "reduction handed to the XNNPACK/YNNPACK library; its category comes from the ops inside (hint), not its name",
        "op times: " + ("GPU kernel time on the device; host-side Python and dispatch are framework overhead" if gpu else
                        "XLA's thunk events and the thread-pool tasks they handed work to (an Eigen matmul's shards), on the "
                        "CPU threads that ran them; Python, dispatch, scheduling and waiting are framework overhead"),
    ]  # fmt: skip
    attributed = sum(self_ns.values())
    if raw_ns > attributed * 1.01:
        notes.append(f"op work ran on several threads at once: its durations sum to {raw_ns / 1e6:.2f} ms over "
                     f"{steps} steps, {attributed / 1e6:.2f} ms of wall time; overlapping time is split evenly "
                     f"between the ops running at once ({attributed / span_ns:.0%} of the steps' wall time ran ops)")  # fmt: skip
    if module is None and not why_not and calls:
        notes.append("eager (op by op): each JAX primitive runs as its own small XLA module (<module>/<op> rows), so "
                     "an optimizer update's adds and multiplies count as elementwise; dispatch is asynchronous, so a "
                     "step's backward pass and update may still run after its loss is read, during the next step")  # fmt: skip
    if why_not:
        notes.append(why_not)
    start, end = windows[min(steps // 2, len(windows) - 1)] if windows else (0, 0)
    tasks = [{"name": f"{op} (pool task)", "ph": "X", "ts": (s - start) / 1e3, "dur": (t - s) / 1e3, "tid": lines[n].name,
              "args": {"hlo_module": mod, "hlo_op": op}}
             for s, t, n, (mod, op, _) in work[len(events):] if start <= s <= end]  # fmt: skip
    return RawProfile(ops=ops, step_events=_step_events(data, (start, end), gpu, tasks), native=native,
                      device="gpu" if gpu else "cpu", notes=notes)  # fmt: skip
