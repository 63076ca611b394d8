"""Profiling PyTorch training steps with PyTorch's own profiler (the contract: ``mlx_explore/profiling.py``).

``torch.profiler.profile`` (https://pytorch.org/docs/stable/profiler.html) records every
dispatcher op (``aten::addmm``...) as a CPU event with its thread, start and duration; on a CUDA GPU
it also records the device kernels (``ProfilerActivity.CUDA``), each linked to the CPU op that
launched it. Each profiled step runs inside ``record_function("ProfilerStep#<i>")``, the name the
profiler's own ``step()`` gives a step when it runs a schedule.

The op table is built from ``prof.events()``, the events ``prof.key_averages()`` averages, summed the
same way (count and self time per name) but also by **region**: ``key_averages`` groups by name only,
so it cannot tell the optimizer's ``aten::add_`` from the backward's. An op inside torch.optim's
``Optimizer.step#...`` region gets ``hint="optimizer"``; so does an op in a ``torch.compile`` graph
that runs outside autograd (dynamo drops that ``record_function``; in a compiled training step the
only such graph is the optimizer's update).

Not ops, left out of the table (their self time is bookkeeping between ops, so
``profiling.normalize`` counts it as framework overhead): the annotations (``ProfilerStep#N``,
``Optimizer.step#...``, ``Optimizer.zero_grad#...``), the autograd engine's nodes
(``autograd::engine::evaluate_function: ...``, ``AddmmBackward0``, ``torch::autograd::AccumulateGrad``)
and torch.compile's runtime wrappers (``Torch-Compiled Region: 0/0``, ``TorchDynamo Cache Lookup``,
``CompiledFunction``...). On a CUDA GPU the table holds the device kernels only (their CUDA time).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, record_function

from ...profiling import OpStat, RawProfile

#: Events that are not ops (module docstring); matched against the event name.
NOT_OPS = re.compile(
    r"^(ProfilerStep[#*]|Optimizer\.|autograd::engine::|torch::autograd::|\w+Backward\d*$|detach$|"
    r"Torch-Compiled Region|TorchDynamo Cache Lookup|CompiledFunction|Pregraph bytecode|AOTDispatcher)"
)
#: The call of one inductor-compiled graph: on a CPU its fused C++ loops run inside it, unprofiled.
COMPILED_GRAPH = "## Call CompiledFxGraph"
#: At most this many events of the middle step go into ``step_events``.
MAX_STEP_EVENTS = 5000
CPU = torch.autograd.DeviceType.CPU


def _ancestors(event):
    while event.cpu_parent is not None:
        event = event.cpu_parent
        yield event


def _hint(event) -> str | None:
    """``"optimizer"`` for an op of the optimizer's update (module docstring), else ``None``."""
    for a in [event, *_ancestors(event)]:
        if a.name.startswith("Optimizer.step#"):
            return "optimizer"
        if a.name.startswith(COMPILED_GRAPH):
            outside = a.cpu_parent is None or not a.cpu_parent.name.startswith("CompiledFunction")
            return "optimizer" if outside else None
    return None


def _op_table(events, gpu: bool) -> list[OpStat]:
    """Calls and self time [us] per (name, hint): CPU ops' self CPU time, or on a GPU the device
    kernels' own time (a kernel takes the hint of the CPU op that launched it)."""
    launcher = {e.id: e for e in events if e.device_type == CPU}
    calls, self_us = defaultdict(int), defaultdict(float)
    for e in events:
        if e.is_user_annotation or e.is_async or NOT_OPS.match(e.name) or (e.device_type != CPU) != gpu:
            continue
        source = launcher.get(e.linked_correlation_id) if gpu else e
        key = (e.name, _hint(source) if source is not None else None)
        calls[key] += 1
        self_us[key] += e.self_device_time_total if gpu else e.self_cpu_time_total
    return [OpStat(name, calls[name, hint], self_us[name, hint], hint) for name, hint in calls]


def _step_events(events, step: int) -> list[dict]:
    """Complete ("X") events that start inside ``ProfilerStep#<step>``, ``ts`` from its start [us]."""
    span = next(e.time_range for e in events if e.device_type == CPU and e.trace_name == f"ProfilerStep#{step}")
    out = []
    for e in sorted(events, key=lambda e: e.time_range.start):
        if e.is_async or e.trace_name is None or not span.start <= e.time_range.start <= span.end:
            continue
        event = {"name": e.trace_name, "ph": "X", "ts": e.time_range.start - span.start, "dur": e.time_range.elapsed_us()}
        if e.device_type == CPU:
            event["tid"] = e.thread
        else:
            event |= {"tid": f"{e.device_type.name.lower()} stream {e.device_resource_id}", "args": {"device": "gpu"}}
        out.append(event)
    return out


def profile(run_step: Callable[[int], None], steps: int, out_dir: Path, trainer) -> RawProfile:
    """Run ``run_step(0..steps-1)`` under ``torch.profiler.profile`` and read the profile back.

    CPU activity always; CUDA activity too when the trainer's device is a CUDA GPU, and then the op
    table holds the device kernels (their CUDA self time) instead of the CPU ops. The profiler is a
    context manager, so it is stopped even when ``run_step`` raises. Docs:
    https://pytorch.org/docs/stable/profiler.html

    Args:
        run_step: runs training step ``i`` and waits for its loss.
        steps: how many steps to profile, >= 1.
        out_dir: an existing folder; ``torch_trace.json`` (Chrome trace, the profiler's
            ``export_chrome_trace``) is written there.
        trainer: the run's ``frameworks.torch.trainer.Trainer`` (``device_kind``, ``config.mode``).

    Returns:
        a :class:`~mlx_explore.profiling.RawProfile`: ops with self times in microseconds over all
        ``steps`` (leaf-level self time: an op's time minus its child ops'), the middle step's
        events (``ts``/``dur`` in microseconds from that step's start), the trace path, notes.

    Raises:
        whatever ``run_step`` or the profiler raises.
    """
    gpu = trainer.device_kind == "gpu" and torch.cuda.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with torch.profiler.profile(activities=activities) as prof:
        for i in range(steps):
            with record_function(f"ProfilerStep#{i}"):
                run_step(i)
    trace = Path(out_dir) / "torch_trace.json"
    prof.export_chrome_trace(str(trace))
    events = prof.events()
    notes = [
        "op times: " + ("CUDA kernels' own time on the GPU (CPU-side Python, dispatch and launches are framework overhead)"
                        if gpu else "self CPU time of each aten op (time in the op minus its child ops)")
        + "; annotations (ProfilerStep#N, Optimizer.step#...), autograd-engine nodes (...Backward0, AccumulateGrad) "
        "and torch.compile wrappers (Torch-Compiled Region, TorchDynamo Cache Lookup, CompiledFunction) are not ops: "
        "their self time is framework overhead",
    ]  # fmt: skip
    if trainer.device_kind == "gpu" and not gpu:
        notes.append("not a CUDA GPU: the op times are the CPU side of each op (enqueueing it), not device kernel time")
    if trainer.config.mode == "compiled":
        notes.append(
            "torch.compile: on a GPU inductor's generated kernels appear as triton_poi_/triton_red_/triton_per_fused_...; "
            "on a CPU its fused C++ loops have no event of their own: their time is the self time of "
            f"'{COMPILED_GRAPH} <hash> ##' (one row per compiled graph: forward, backward, optimizer update), "
            "while matmuls stay aten::mm/aten::addmm calls"
        )  # fmt: skip
    step_events = _step_events(events, steps // 2)
    if len(step_events) > MAX_STEP_EVENTS:
        notes.append(f"the one-step trace keeps the first {MAX_STEP_EVENTS} of its {len(step_events)} events")
    return RawProfile(ops=_op_table(events, gpu), step_events=step_events[:MAX_STEP_EVENTS], native=[str(trace)],
                      device="gpu" if gpu else "cpu", notes=notes)  # fmt: skip
