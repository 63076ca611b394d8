"""TensorFlow's own profiler over K training steps (the contract: ``mlx_explore.profiling``).

Recording: ``tf.profiler.experimental.start(logdir)`` ... ``stop()`` with one
``tf.profiler.experimental.Trace("train", step_num=i, _r=1)`` per step, as the TensorFlow profiler
guide shows for custom training loops (https://www.tensorflow.org/guide/profiler, "Profiling custom
training loops"; ``_r=1`` marks the annotation as a step). TensorFlow writes one XPlane
(``plugins/profile/<run>/<host>.xplane.pb``: the ``XSpace`` proto of
``tensorflow/tsl/profiler/protobuf/xplane.proto``), the file TensorBoard's Profile tab opens.

Reading, with xprof (https://github.com/openxla/xprof, PyPI ``xprof``, the successor of
``tensorboard-plugin-profile``) and TensorFlow's own protos:

* the step timeline is xprof's ``trace_viewer`` conversion
  (``xprof.convert.raw_to_tool_data.xspace_to_tool_data([path], "trace_viewer", {})``: Chrome Trace
  Events, one track per thread; the thread-pool tasks as ``ThreadpoolListener::Region`` events);
* on a GPU the op table is xprof's own device statistics: ``hlo_stats`` under ``jit_compile`` (one
  row per HLO op, with its category and self time on the device) and the ``Device`` rows of
  ``framework_op_stats`` in eager mode (one row per TensorFlow op, its type, self time);
* on the CPU xprof's tables have no per-op times (xprof 2.24.2, TensorFlow 2.21.0:
  ``framework_op_stats`` lists the whole XLA cluster ``__inference_train_batch_N`` as one op under
  ``jit_compile`` and every eager op with 0 us; ``hlo_stats`` is empty), so the table is computed
  from the XPlane's host plane, read with ``tensorflow.tsl.profiler.protobuf.xplane_pb2``:

  - an op run is an event with an ``hlo_op`` stat under ``jit_compile`` (one HLO instruction run by
    XLA:CPU's thunk runtime: ``MatMul.12``, ``multiply_subtract_fusion.3``, ``copy.2``...), or in
    eager mode an ``EagerKernelExecute`` event under an ``EagerExecute`` whose ``eager_op`` is not a
    function (the op's kernel, named by its type: ``MatMul``, ``BiasAdd``...). Python and eager
    dispatch (``TFE_Py_FastPathExecute_C``, ``EagerCopyToDevice``, input validation), the step
    annotation and runtime events (``ThunkExecutor::Execute``, ``BlockUntilReady``) are no op.
  - Work an op hands to TensorFlow's Eigen thread pool runs as tasks on other threads; the profiler
    records each task's scheduling (``ThreadpoolListener::Record``, stat ``_p``) and run
    (``StartRegion``/``StopRegion``, stat ``_c`` = that ``_p``). A task's time (outside op events
    nested in it) counts for the op that scheduled it, directly or through earlier tasks, while that
    op has not completed (its ``end: <op>`` event for XLA's asynchronous thunks: the large dots
    return before their Eigen contraction is done). A task with no such op (a pool worker that
    outlived the op which woke it, or the thunk executor's own) helps the ops running on other
    threads at that instant, if any; else it is runtime overhead.
  - Self time: at each instant of a step, the busy threads share it equally (an op on its own
    thread, a pool task for its op), so the ops' self times never exceed the step's wall time and
    nothing is counted twice; ops never nest here (an op inside another would take that time).

The HLO instructions' hints (opcode, or fusion kind with the opcodes fused in it; the TensorFlow op
type and name XLA recorded in the instruction's metadata) come from the HLO modules the profiler
stores in the XPlane's ``/host:metadata`` plane (``tensorflow.compiler.xla.service.hlo_pb2``).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ...profiling import OpStat, RawProfile

#: The converter this module needs, as the ``tensorflow`` extra pins it.
XPROF_REQUIREMENT = "xprof==2.24.2"
#: At most this many events of the middle step go into ``RawProfile.step_events`` (the longest).
MAX_STEP_EVENTS = 3000
#: Opcodes left out of a fusion's hint (they only move or reinterpret data inside the fusion).
_TRIVIAL_OPCODES = frozenset({"parameter", "constant", "bitcast", "broadcast", "tuple", "get-tuple-element", "reshape"})
_FUSION_KINDS = {"kLoop": "loop fusion", "kInput": "input fusion", "kOutput": "output fusion", "kCustom": "custom fusion"}


def converter():
    """xprof's ``raw_to_tool_data`` module.

    Raises:
        ImportError: xprof is not installed; the message names the package and the pip command.
    """
    try:
        from xprof.convert import raw_to_tool_data
    except ImportError as e:
        raise ImportError(
            f"xprof is not installed: pip install '{XPROF_REQUIREMENT}' (or pip install 'mlx-explore[tensorflow]'). "
            "TensorFlow profiles are read with it (https://github.com/openxla/xprof, the XPlane converter of "
            f"TensorBoard's profiler); the import said: {e}"
        ) from e
    return raw_to_tool_data


def profile(run_step: Callable[[int], None], steps: int, out_dir: Path, trainer) -> RawProfile:
    """Run ``run_step(0..steps-1)`` under TensorFlow's profiler; return the op table, the middle
    step's events and the XPlane's path (how each is made: the module docstring).

    Raises:
        ImportError: xprof is missing (checked before any step runs).
        RuntimeError: the profiler wrote no XPlane, xprof could not convert it, or it holds no step.
    """
    raw_to_tool_data = converter()
    import tensorflow as tf

    out_dir = Path(out_dir)
    tf.profiler.experimental.start(str(out_dir))
    try:
        for i in range(steps):
            with tf.profiler.experimental.Trace("train", step_num=i, _r=1):
                run_step(i)
    finally:
        tf.profiler.experimental.stop()

    paths = sorted(out_dir.glob("plugins/profile/*/*.xplane.pb"))
    if not paths:
        raise RuntimeError(f"TensorFlow's profiler wrote no *.xplane.pb under {out_dir / 'plugins' / 'profile'}")
    xplane = str(paths[-1])
    space = read_xspace(Path(xplane))
    try:
        hints = hlo_hints(space)
    except ImportError as e:  # the HLO proto module moved: XLA ops keep their names, the rules fall back on them
        hints, unread = {}, f"the HLO modules could not be read ({e}): XLA ops are categorized by their names only"
    else:
        unread = None
    timeline = Timeline(json.loads(_tool(raw_to_tool_data, xplane, "trace_viewer")))
    windows = timeline.steps()
    if not windows:
        raise RuntimeError(f"no step annotation (Trace(..., step_num=i)) in {xplane}")
    notes = [] if len(windows) == steps else [f"the trace holds {len(windows)} step annotations for {steps} profiled steps"]
    notes += [unread] if unread else []

    if getattr(trainer, "device_kind", "cpu") == "gpu":
        compiled = getattr(getattr(trainer, "config", None), "mode", None) == "compiled" or bool(hints)
        ops = device_ops(raw_to_tool_data, xplane, compiled, hints)
        notes.append("op times are GPU kernel times from xprof's " + ("hlo_stats (one row per HLO op, its self time on the device)"
                     if compiled else "framework_op_stats (its Device rows: one row per TensorFlow op, its self time on the device)")
                     + "; host work (Python, dispatch, kernel launches) is the framework overhead; kernels that overlap on "
                     "several streams are each counted in full")  # fmt: skip
        tracks = timeline.tracks(lambda process, thread: process.startswith("/host:") or thread.startswith("Stream"))
    else:
        host = HostPlane(space)
        ops, share = host.op_table(hints)
        notes += host_notes(host, share)
        tracks = timeline.tracks(lambda process, thread: process.startswith("/host:"))

    events = timeline.window(windows[len(windows) // 2], tracks)
    if len(events) > MAX_STEP_EVENTS:
        notes.append(f"the step timeline keeps the {MAX_STEP_EVENTS} longest of its {len(events)} events")
        events = sorted(sorted(events, key=lambda e: -e["dur"])[:MAX_STEP_EVENTS], key=lambda e: e["ts"])
    device = "gpu" if getattr(trainer, "device_kind", "cpu") == "gpu" else "cpu"
    return RawProfile(ops=ops, step_events=events, native=[xplane], device=device, notes=notes)


def host_notes(host: HostPlane, share: dict[str, float]) -> list[str]:
    """What a reader of a CPU table must know: how the step ran, how its time was shared out."""
    notes = []
    compiled = any(run.kind == "xla" for run in host.runs)
    if compiled:
        notes.append(
            "jit_compile=True: the step is one XLA cluster (__inference_train_batch_N); the table lists its HLO "
            "instructions as XLA:CPU ran them: dots keep their TensorFlow op's name (MatMul.12), fusions hold "
            "several TensorFlow ops (multiply_subtract_fusion: an SGD update, with a bias gradient's sum fused in; "
            "ynn_fusion: a YNNPACK custom fusion, here a bias gradient's sum); each hint gives the HLO opcode or "
            "fusion kind with its fused opcodes, then the TensorFlow op type and name of the instruction's metadata. "
            "Pack is eager: tf.stack of the step's loss, read back after the cluster")  # fmt: skip
    else:
        notes.append(
            "eager: one row per TensorFlow op type, its time the kernel's run (EagerKernelExecute) and its Eigen "
            "pool tasks; Python and the eager runtime's dispatch around each op (TFE_Py_FastPathExecute_C, "
            "EagerCopyToDevice, input validation) are the framework overhead. Eager op events carry no name scope: "
            "Adam's arithmetic (Mul, Sqrt, RealDiv, AddV2...) counts as elementwise, only its variable writes as "
            "optimizer update")  # fmt: skip
    total = share["own"] + share["pool"]
    if total:
        late = f" ({share['async'] / total:.0%} after the op's own event had returned: XLA:CPU's asynchronous dots)" if compiled else ""
        notes.append(
            f"of the ops' time, {share['pool'] / total:.0%} ran as Eigen thread-pool tasks on other threads than the "
            f"op's own{late}; a task counts for the op that scheduled it (the profiler's _p/_c ids) until that op "
            "completes, and every instant is shared equally between the threads busy in it, so self times add up to "
            "at most the step's wall time")  # fmt: skip
    notes.append("xprof's framework_op_stats and hlo_stats have no per-op CPU times for TensorFlow, so the table is "
                 "computed from the XPlane's host events (frameworks/tensorflow/profile.py says how)")  # fmt: skip
    return notes


def _tool(raw_to_tool_data, xplane: str, tool: str) -> str:
    data, _ = raw_to_tool_data.xspace_to_tool_data([xplane], tool, {})
    if not data:
        raise RuntimeError(f"xprof could not convert {xplane} to {tool}")
    return data.decode() if isinstance(data, bytes) else data


# ---------------------------------------------------------------------------- the XPlane


def read_xspace(path: Path):
    """The ``XSpace`` proto in ``path`` (TensorFlow's ``xplane_pb2``)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(path.read_bytes())
    return space


def _stat_value(stat, names: dict[int, str]):
    kind = stat.WhichOneof("value")
    value = getattr(stat, kind) if kind else None
    return names.get(value) if kind == "ref_value" else value


def hlo_hints(space) -> dict[tuple[str, str], str]:
    """``{(hlo module, instruction): hint}`` for every HLO instruction of the modules the profiler
    stored in the ``/host:metadata`` plane (none in eager mode). A hint reads
    ``"<opcode, or fusion kind[fused opcodes]>; <TensorFlow op type>; <TensorFlow op name>"``, e.g.
    ``"dot; MatMul; sequential/dense/MatMul"`` or
    ``"loop fusion[multiply,subtract]; AssignSubVariableOp; sgd/AssignSubVariableOp_2"``."""
    from tensorflow.compiler.xla.service import hlo_pb2

    hints = {}
    for plane in space.planes:
        if plane.name != "/host:metadata":
            continue
        for meta in plane.event_metadata.values():
            for stat in meta.stats:
                if plane.stat_metadata[stat.metadata_id].name != "Hlo Proto" or not stat.bytes_value:
                    continue
                proto = hlo_pb2.HloProto()
                proto.ParseFromString(stat.bytes_value)
                module = proto.hlo_module
                computations = {c.id: c for c in module.computations}
                for computation in module.computations:
                    for ins in computation.instructions:
                        hints[(module.name, ins.name)] = _hint(ins, computations)
    return hints


def _hint(ins, computations) -> str:
    head = ins.opcode
    if ins.opcode == "fusion":
        fused, todo, seen = set(), list(ins.called_computation_ids), set()
        while todo:
            cid = todo.pop()
            if cid in seen or cid not in computations:
                continue
            seen.add(cid)
            for inner in computations[cid].instructions:
                fused.add(inner.opcode)
                todo.extend(inner.called_computation_ids)
        head = f"{_FUSION_KINDS.get(ins.fusion_kind, 'fusion')}[{','.join(sorted(fused - _TRIVIAL_OPCODES))}]"
    return f"{head}; {ins.metadata.op_type}; {ins.metadata.op_name}"


def _any_module(hints: dict[tuple[str, str], str], name: str) -> str | None:
    return next((h for (_, n), h in hints.items() if n == name), None)


@dataclass
class Run:
    """One run of one op on the host: ``kind`` ``xla`` (an HLO instruction) or ``eager`` (a kernel);
    ``start``/``end`` of its event and ``done`` (its completion: later for an asynchronous thunk) [us];
    ``key`` the profiler's producer id of the event (``(_pt, _p)``), which its ``end:`` event consumes."""

    name: str
    kind: str
    tid: int
    start: float
    end: float
    key: tuple | None = None
    module: str = ""
    done: float = 0.0


@dataclass
class Task:
    """One thread-pool task run (``StartRegion`` to ``StopRegion``) on thread ``tid``; ``key`` the
    ``(_ct, _c)`` that names its scheduling; ``owner`` the run it works for (index in
    ``HostPlane.runs``), or ``None``."""

    start: float
    end: float
    tid: int
    key: tuple
    owner: int | None = None


class HostPlane:
    """The op runs, pool tasks, task schedulings and steps of the XPlane's ``/host:CPU`` plane,
    times in us."""

    def __init__(self, space):
        self.runs: list[Run] = []
        self.tasks: list[Task] = []
        self.records: list[tuple[float, int, tuple]] = []  # (time, thread, (_pt, _p))
        self.steps: list[tuple[float, float]] = []
        self._lines = 0
        ends: dict[tuple, float] = {}
        for plane in space.planes:
            if plane.name.startswith("/host:") and plane.name != "/host:metadata":
                self._read(plane, ends)
        for run in self.runs:
            run.done = max(run.end, ends.get(run.key, run.end)) if run.key else run.end
        self.steps.sort()
        self._attribute_tasks()

    def _read(self, plane, ends: dict[tuple, float]) -> None:
        names = {k: m.name for k, m in plane.stat_metadata.items()}
        for line in plane.lines:
            self._lines += 1
            tid = self._lines  # one number per thread (XLine) of the host planes
            base = line.timestamp_ns * 1000
            stack: list[tuple[float, str, dict]] = []
            region = None
            for e in sorted(line.events, key=lambda e: (e.offset_ps, -e.duration_ps)):
                meta = plane.event_metadata[e.metadata_id]
                name = meta.name
                stats = {names.get(s.metadata_id): _stat_value(s, names) for s in meta.stats}
                stats.update({names.get(s.metadata_id): _stat_value(s, names) for s in e.stats})
                start = (base + e.offset_ps) / 1e6
                end = start + e.duration_ps / 1e6
                while stack and stack[-1][0] <= start:
                    stack.pop()
                if "step_num" in stats:
                    self.steps.append((start, end))
                elif "hlo_op" in stats:
                    key = (stats.get("_pt") or 0, stats["_p"]) if "_p" in stats else None
                    self.runs.append(Run(str(stats["hlo_op"]), "xla", tid, start, end, key, str(stats.get("hlo_module", ""))))
                elif name == "EagerKernelExecute":
                    parent = next((s for _, n, s in reversed(stack) if n == "EagerExecute"), {})
                    if parent.get("eager_op") and not parent.get("is_func"):
                        self.runs.append(Run(str(parent["eager_op"]), "eager", tid, start, end))
                elif name == "ThreadpoolListener::Record" and "_p" in stats:
                    self.records.append((start, tid, (stats.get("_pt") or 0, stats["_p"])))
                elif name == "ThreadpoolListener::StartRegion" and "_c" in stats:
                    region = (start, (stats.get("_ct") or 0, stats["_c"]))
                elif name == "ThreadpoolListener::StopRegion" and region:
                    self.tasks.append(Task(region[0], start, tid, region[1]))
                    region = None
                elif name.startswith("end: ") and "_c" in stats:
                    ends[(stats.get("_ct") or 0, stats["_c"])] = end
                stack.append((end, name, stats))

    def _attribute_tasks(self) -> None:
        """Each task's owner: the run (or the owned task) on whose thread it was scheduled, if that
        run had not completed when the task started. One sweep in time order (a task is always
        scheduled before it starts)."""
        points = []  # (time, order, what, index): ends before starts before schedulings
        for what, spans in (("run", self.runs), ("task", self.tasks)):
            points += [p for i, x in enumerate(spans) if x.end > x.start for p in ((x.start, 1, what, i), (x.end, 0, what, i))]
        for i, (t, _, _) in enumerate(self.records):
            points.append((t, 2, "record", i))
        points.sort(key=lambda p: (p[0], p[1]))
        stacks: dict[int, list[tuple[str, int]]] = defaultdict(list)
        scheduled_by: dict[tuple, int | None] = {}
        for _, order, what, i in points:
            if what == "record":
                _, tid, key = self.records[i]
                top = stacks[tid][-1] if stacks[tid] else None
                scheduled_by[key] = None if top is None else top[1] if top[0] == "run" else self.tasks[top[1]].owner
                continue
            tid = self.runs[i].tid if what == "run" else self.tasks[i].tid
            if order == 1:
                if what == "task":
                    task = self.tasks[i]
                    owner = scheduled_by.get(task.key)
                    task.owner = owner if owner is not None and task.start < self.runs[owner].done else None
                stacks[tid].append((what, i))
            elif (what, i) in stacks[tid]:
                stacks[tid].remove((what, i))

    def op_table(self, hints: dict[tuple[str, str], str]) -> tuple[list[OpStat], dict[str, float]]:
        """One :class:`OpStat` per op name over the steps, and where the ops' time was measured
        (``{"own": on the op's thread, "pool": in pool tasks, "async": in pool tasks after the op's
        event returned}`` [us])."""
        windows = self.steps
        inside = [i for i, r in enumerate(self.runs) if any(s <= r.start < e for s, e in windows)]
        pieces = []  # (start, end, ("run" | "help", index or None))
        by_thread: dict[int, list] = defaultdict(list)
        for i, run in enumerate(self.runs):
            by_thread[run.tid].append((run.start, run.end, ("run", i)))
        for task in self.tasks:
            by_thread[task.tid].append((task.start, task.end, ("help", task.owner)))
        for spans in by_thread.values():
            pieces += innermost(spans)
        self_us: dict[int, float] = defaultdict(float)
        share = {"own": 0.0, "pool": 0.0, "async": 0.0}
        points = [(s, 1, "piece", j) for j, (s, _, _) in enumerate(pieces)] + [(e, 0, "piece", j) for j, (_, e, _) in enumerate(pieces)]
        points += [(s, 1, "step", -1) for s, _ in windows] + [(e, 0, "step", -1) for _, e in windows]
        points += [(run.done, 0, "done", -1) for run in self.runs]  # a task stops counting for its op there
        points.sort(key=lambda p: (p[0], p[1]))
        active: set[int] = set()
        in_step, last = 0, None
        for t, starts, what, j in points:
            if in_step and active and last is not None and t > last:
                self._share(last, t, [pieces[k] for k in active], self_us, share)
            last = t
            if what == "step":
                in_step += 1 if starts else -1
            elif what == "done":
                pass
            elif starts:
                active.add(j)
            else:
                active.discard(j)
        calls = Counter(self.runs[i].name for i in inside)
        by_name: dict[str, float] = defaultdict(float)
        for i, us in self_us.items():
            by_name[self.runs[i].name] += us
        first: dict[str, Run] = {}
        for i in inside:
            first.setdefault(self.runs[i].name, self.runs[i])
        ops = [OpStat(name=name, calls=calls[name], self_us=by_name.get(name, 0.0),
                      hint=(hints.get((run.module, name)) or _any_module(hints, name)) if run.kind == "xla" else name)
               for name, run in first.items()]  # fmt: skip
        return sorted(ops, key=lambda o: -o.self_us), share

    def _share(self, t0: float, t1: float, active: list, self_us: dict[int, float], share: dict[str, float]) -> None:
        """Share ``t0..t1`` [us] between the busy threads: an op run gets its thread's part, a task
        its op's (until that op is done), any other task's part goes to the runs in progress (else
        to no op)."""
        runs = [index for _, _, (kind, index) in active if kind == "run"]
        part = (t1 - t0) / len(active)
        spare = 0.0
        for _, _, (kind, index) in active:
            if kind == "run":
                self_us[index] += part
                share["own"] += part
            elif index is not None and t0 < self.runs[index].done:
                self_us[index] += part
                share["pool"] += part
                if t0 >= self.runs[index].end:
                    share["async"] += part
            else:
                spare += part
        if spare and runs:
            for index in runs:
                self_us[index] += spare / len(runs)
            share["pool"] += spare


def innermost(spans: list[tuple[float, float, object]]) -> list[tuple[float, float, object]]:
    """The pieces of time in which each span of one thread is the innermost one (spans nest; a
    span that overlaps its parent's end is cut there)."""
    pieces = []
    stack: list[list] = []  # [cursor, end, label]: the parent's time resumes at cursor

    def pop():
        cursor, end, label = stack.pop()
        if end > cursor:
            pieces.append((cursor, end, label))

    for start, end, label in sorted(spans, key=lambda s: (s[0], -s[1])):
        while stack and stack[-1][1] <= start:
            pop()
        if stack:
            top = stack[-1]
            end = min(end, top[1])
            if start > top[0]:
                pieces.append((top[0], start, top[2]))
            top[0] = max(top[0], end)
        stack.append([start, end, label])
    while stack:
        pop()
    return pieces


# ---------------------------------------------------------------------------- xprof's trace events


class Timeline:
    """xprof's ``trace_viewer`` JSON (Chrome Trace Event Format): process and thread names, and the
    complete (``"X"``) events, ``ts`` and ``dur`` in us."""

    def __init__(self, trace: dict):
        self.processes, self.threads, self.events = {}, {}, []
        for e in trace.get("traceEvents", []):
            ph = e.get("ph")
            if ph == "M" and e.get("name") == "process_name":
                self.processes[e["pid"]] = e["args"]["name"]
            elif ph == "M" and e.get("name") == "thread_name":
                self.threads[(e["pid"], e["tid"])] = e["args"]["name"]
            elif ph == "X":
                self.events.append(e)

    def steps(self) -> list[tuple[float, float]]:
        """``(start, end)`` [us] of each step annotation (``Trace(..., step_num=i)``), in time order."""
        return sorted((e["ts"], e["ts"] + e["dur"]) for e in self.events
                      if "step_num" in e.get("args", {}) and self.processes.get(e["pid"], "").startswith("/host:"))  # fmt: skip

    def tracks(self, keep: Callable[[str, str], bool]) -> set:
        """``(pid, tid)`` of the threads whose ``(process name, thread name)`` ``keep`` accepts."""
        return {key for key, thread in self.threads.items() if keep(self.processes.get(key[0], ""), thread)}

    def window(self, window: tuple[float, float], tracks: set) -> list[dict]:
        """The complete events of ``tracks`` that start inside ``window``, ``ts`` relative to its start,
        the thread's name as ``tid``."""
        start, end = window
        out = []
        for e in self.events:
            key = (e["pid"], e["tid"])
            if key not in tracks or not start <= e["ts"] <= end or e.get("dur", 0) <= 0:
                continue
            event = {"name": e["name"], "ph": "X", "ts": round(e["ts"] - start, 3), "dur": round(e["dur"], 3),
                     "tid": self.threads.get(key, str(e["tid"]))}  # fmt: skip
            args = {k: e["args"][k] for k in ("hlo_op", "eager_op", "step_num") if k in e.get("args", {})}
            if args:
                event["args"] = args
            out.append(event)
        return sorted(out, key=lambda e: e["ts"])


# ---------------------------------------------------------------------------- GPU: xprof's device tables


def device_ops(raw_to_tool_data, xplane: str, compiled: bool, hints: dict[tuple[str, str], str]) -> list[OpStat]:
    """The op table from xprof's device statistics: ``hlo_stats`` (XLA) or the ``Device`` rows of
    ``framework_op_stats`` (eager), self times on the GPU over the whole profile [us]."""
    if compiled:
        rows = _table(_tool(raw_to_tool_data, xplane, "hlo_stats"))
        return [OpStat(name=r["hlo_op_name"], calls=int(r.get("occurrences") or 0), self_us=float(r.get("total_self_time") or 0.0),
                       hint=_any_module(hints, r["hlo_op_name"]) or f"{r.get('category') or ''}; ; {r.get('tf_op_name') or ''}")
                for r in rows if r.get("hlo_op_name")]  # fmt: skip
    rows = _table(_tool(raw_to_tool_data, xplane, "framework_op_stats"))
    return [OpStat(name=r["operation"], calls=int(r.get("occurrences") or 0), self_us=float(r.get("total_self_time") or 0.0), hint=r["type"])
            for r in rows if r.get("host_or_device") == "Device" and r.get("type") != "IDLE"]  # fmt: skip


def _table(data: str) -> list[dict]:
    """The rows of xprof's first table (a Google Charts DataTable) as ``{column id: value}``."""
    tables = json.loads(data)
    table = tables[0] if isinstance(tables, list) else tables
    ids = [c["id"] for c in table.get("cols", [])]
    return [dict(zip(ids, (c.get("v") if c else None for c in row["c"]))) for row in table.get("rows", [])]
