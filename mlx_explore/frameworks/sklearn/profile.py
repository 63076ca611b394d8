"""Profiling scikit-learn training steps with Python's own profilers (the contract: ``mlx_explore/profiling.py``).

scikit-learn has no profiler of its own: it is Python over NumPy, SciPy and BLAS. The op table is
Python's deterministic profiler ``cProfile`` (https://docs.python.org/3/library/profile.html),
written to ``sklearn.prof`` in ``pstats`` format (``python -m pstats sklearn.prof``, snakeviz) and
read back with ``pstats.Stats``: an op's calls are its primitive calls, its self time its
``tottime``. The one-step timeline is a profile function of our own on the middle step
(``sys.setprofile``, https://docs.python.org/3/library/sys.html#sys.setprofile: ``call``/``return``
of Python functions, ``c_call``/``c_return``/``c_exception`` of C functions, timed with
``time.perf_counter_ns`` less the hook's own time).

What counts as an op. cProfile sees Python functions and C functions *called as functions*
(``numpy.ndarray.sum``, ``numpy.ufunc.reduce``, ``numpy.array``). It does not see array operators
(``@``, ``+=``, ``-``, boolean masks), ufunc calls (``np.maximum``, ``np.exp``, ``np.isfinite``,
``scipy.special.xlogy``: a ufunc is not a C function object) nor NumPy's array-function dispatchers
(``np.dot``): their time is the self time of the Python function that runs them. So the ops are

* every C function of NumPy, SciPy or scikit-learn (name starting ``numpy.``, ``scipy.``, ``sklearn.``);
* every Python function that a rule of ``op_categories.yaml`` names: the functions whose own time
  is such invisible array work (``safe_sparse_dot``'s ``a @ b``: the matmul; ``inplace_relu``;
  ``_compute_loss_grad``'s gradient scaling; the optimizers' update arithmetic...). The rules are
  anchored (``^...$``) because naming a Python function in one makes it an op.

Every other function's self time (partial_fit's input validation and label binarization, the
loops of ``_fit_stochastic``, ``builtins.isinstance``...) is interpreter time: not an op, so
``profiling.normalize`` counts it, with cProfile's own per-call cost, as framework overhead.

The middle step runs under the timeline hook instead of cProfile (one profile function per thread
at a time): the table is cProfile's over the other ``steps - 1`` steps, scaled by
``steps / (steps - 1)`` to totals over ``steps`` (every step does the same work: same batch size,
same calls). With ``steps == 1`` there is no timeline.
"""

from __future__ import annotations

import cProfile
import pstats
import re
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Callable

from ...profiling import OpStat, RawProfile, categorize, rules_for

#: C functions of these packages are ops.
NUMERIC = ("numpy.", "scipy.", "sklearn.")
#: At most this many events of the middle step go into ``step_events``.
MAX_STEP_EVENTS = 5000
NATIVE = "sklearn.prof"


def _modules() -> dict[str, str]:
    """``{source file: module name}`` of the imported modules."""
    return {getattr(m, "__file__", None): n for n, m in list(sys.modules.items())}


def _module(filename: str, modules: dict[str, str]) -> str:
    """The dotted module name of a source file (from ``sys.modules``), else the file's stem."""
    return modules.get(filename) or re.sub(r"^<(frozen )?|>$", "", Path(filename).stem)


def _python_name(code, modules: dict[str, str]) -> str:
    """``module.qualname`` of a code object, ``.<locals>`` dropped:
    ``sklearn.neural_network._stochastic_optimizers.AdamOptimizer._get_updates.<listcomp>``."""
    return f"{_module(code.co_filename, modules)}.{code.co_qualname.replace('.<locals>', '')}"


def _c_name(label: str) -> str:
    """A readable name for cProfile's label of a C function: ``<method 'sum' of 'numpy.ndarray'
    objects>`` -> ``numpy.ndarray.sum``, ``<built-in method numpy.array>`` -> ``numpy.array``."""
    if m := re.fullmatch(r"<method '(.+)' of '(.+)' objects>", label):
        return f"{m[2]}.{m[1]}"
    return re.sub(r"^<(built-in method )?|>$", "", label)


def _c_label(fn) -> str:
    """cProfile's label for C function ``fn`` (``normalizeUserObj`` in CPython's ``Modules/_lsprof.c``):
    the repr of the method on its owner's type, else ``<built-in method module.name>``."""
    owner, name = getattr(fn, "__self__", None), fn.__name__
    if owner is not None and not isinstance(owner, ModuleType):
        for klass in type(owner).__mro__:
            if name in vars(klass):
                return repr(vars(klass)[name])
    module = getattr(fn, "__module__", None)
    return f"<built-in method {module}.{name}>" if isinstance(module, str) else f"<built-in method {name}>"


def _is_op(name: str, c_function: bool) -> bool:
    """An op (module docstring): a C function of the numeric stack, or a Python function a rule names."""
    return name.startswith(NUMERIC) if c_function else categorize("sklearn", name) is not None


def _op_table(prof: cProfile.Profile, scale: float) -> list[OpStat]:
    """The ops of ``prof``'s ``pstats`` entries, calls and self time [us] multiplied by ``scale``."""
    modules = _modules()
    # pstats keys an entry by (file, line, co_name); the profiler's code objects give the qualified
    # names (Profile.getstats(): the entries pstats is built from; a C function's "code" is its label).
    codes = {(c.co_filename, c.co_firstlineno, c.co_name): c for c in (e.code for e in prof.getstats())
             if not isinstance(c, str)}  # fmt: skip
    calls, self_us = {}, {}
    for key, (primitive, _, tottime, _, _) in pstats.Stats(prof).stats.items():
        c_function = key[0] == "~"
        name = _c_name(key[2]) if c_function else _python_name(codes[key], modules)
        if _is_op(name, c_function):
            calls[name] = calls.get(name, 0) + primitive
            self_us[name] = self_us.get(name, 0.0) + tottime * 1e6
    return [OpStat(n, round(calls[n] * scale), self_us[n] * scale) for n in sorted(calls)]


def _timeline(run_step: Callable[[int], None], i: int) -> list[dict]:
    """Run step ``i`` under a ``sys.setprofile`` hook; Chrome "X" events of its ops and of the Python
    functions that contain them, ``ts`` [us] from the step's start, the hook's own time left out."""
    modules = _modules()
    names: dict = {}  # code object or C label -> (name, is op)
    stack: list[list] = []  # [name, is op, start ns, contains an op]
    events: list[dict] = []
    clock, paused, origin = time.perf_counter_ns, 0, 0

    def hook(frame, event, arg):
        nonlocal paused
        entered = clock()
        now = entered - paused - origin
        if event in ("call", "c_call"):
            key = frame.f_code if event == "call" else _c_label(arg)
            if key not in names:
                name = _python_name(key, modules) if event == "call" else _c_name(key)
                names[key] = name, _is_op(name, event == "c_call")
            stack.append([*names[key], now, False])
        elif stack:  # return, c_return, c_exception
            name, op, start, contains = stack.pop()
            if (op or contains) and len(events) < MAX_STEP_EVENTS:
                events.append({"name": name, "ph": "X", "ts": start / 1e3, "dur": (now - start) / 1e3, "tid": "main",
                               "cat": "op" if op else "python"})  # fmt: skip
                if stack:
                    stack[-1][3] = True
        paused += clock() - entered

    origin = clock()
    sys.setprofile(hook)
    try:
        run_step(i)
    finally:
        sys.setprofile(None)
    return sorted(events, key=lambda e: e["ts"])


def profile(run_step: Callable[[int], None], steps: int, out_dir: Path, trainer) -> RawProfile:
    """Profile ``steps`` calls of ``run_step``: cProfile's op table, the middle step's timeline
    (module docstring); ``sklearn.prof`` written under ``out_dir``. ``trainer`` is not needed."""
    rules_for("sklearn")  # read op_categories.yaml now, not inside a profiled step
    middle = steps // 2 if steps > 1 else None
    prof, events = cProfile.Profile(), []
    for i in range(steps):
        if i == middle:
            events = _timeline(run_step, i)
            continue
        prof.enable()
        try:
            run_step(i)
        finally:
            prof.disable()
    native = Path(out_dir) / NATIVE
    prof.dump_stats(native)
    profiled = steps - (middle is not None)
    return RawProfile(
        ops=_op_table(prof, steps / profiled),
        step_events=events,
        native=[str(native)],
        device="cpu",
        notes=[
            "scikit-learn has no profiler: the table is Python's cProfile (self time = tottime), the timeline a "
            "sys.setprofile hook on the middle step",
            "cProfile does not see array operators (@, +=, masks), ufunc calls (np.maximum, np.exp, scipy's xlogy) or "
            "np.dot: their time is the self time of the function running them, so matmul is safe_sparse_dot's own time "
            "(its a @ b, wall time including BLAS threads), and the activations, loss, gradient scaling and optimizer "
            "arithmetic are the sklearn functions doing them (op_categories.yaml); those times include the few "
            "microseconds of interpreter time of each such call",
            "framework overhead: every other Python function's own time (input validation, label binarization, "
            "partial_fit's loops) plus cProfile's own cost per call",
            "cProfile's times are wall time: while the process waits for the CPU (other processes, BLAS threads "
            "waiting for each other) the time goes to the function running, mostly safe_sparse_dot",
            (f"the middle step ran under the timeline hook instead of cProfile (its events leave the hook's own time "
             f"out): the table is cProfile's {profiled} other steps, scaled by {steps}/{profiled}")
            if middle is not None else "one step: cProfile only, no timeline",
        ],
    )
