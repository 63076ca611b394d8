"""Supervision of one child process: start ``mlx_explore.worker`` for a framework, read and check its
event lines, enforce the timeout and the stop event, kill it and everything it started.

Why a child per run (``docs/architecture.md``, "The flow of one comparison"): a clean import and
memory peak for each framework, no fight between TensorFlow's and JAX's allocators or thread pools,
and a crash (segfault, OOM) in one framework cannot take down the others or the notebook kernel.

The child's standard output carries only event lines (``events.py``; the worker moves everything
else written to fd 1 onto stderr); its stderr goes to a temporary file whose last lines become a
failed run's ``error_tail``. What happens to a line that is not a valid event is documented in
``events.py``: a malformed event fails the run and kills the child; a line that is not a JSON object
is kept and reported, and the run goes on.

:func:`probe` also lives here: asking a framework for its devices starts a child too.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Iterator

from . import frameworks as fw_registry
from .config import RunConfig
from .env import child_env
from .events import TERMINAL, Event, Failed, Finished, MalformedEvent, NotAnEvent, Step, Steps, from_json, quote
from .worker import MODEL_DIR_VAR, TRACE_DIR_VAR

#: The folder that holds this ``mlx_explore`` package (``site-packages``, or the checkout).
PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)

#: How often a running comparison looks at its ``stop`` event [s].
STOP_POLL_S = 0.1

#: Lines that are not events (:class:`~mlx_explore.events.NotAnEvent`) kept per run, each quoted.
STRAY_LINES_KEPT = 5
#: A child that reported its run's end (``Finished``/``Failed``) but has not exited this many seconds
#: later is killed: its result is complete, and a process hanging at shut-down (seen once here: a JAX
#: and a TensorFlow child under Ray, each for about ten minutes) must not hold up the comparison.
EXIT_GRACE_S = 30.0


def worker_command(*args: str) -> list[str]:
    """The command line (``list[str]``) of a child process: ``mlx_explore.worker`` with ``args``,
    importing exactly this process's ``mlx_explore``.

    ``python -m mlx_explore.worker`` would put the working directory first on ``sys.path``, so a
    folder named ``mlx_explore`` there (a checkout of another version) would be imported in the
    child while the parent runs the installed one. ``-c`` puts ``''`` first instead; the command
    replaces it with :data:`PACKAGE_ROOT` before importing anything.
    """
    boot = ("import sys; sys.path[0] = {root!r}; from mlx_explore.worker import main; "
            "sys.exit(main(sys.argv[1:]))").format(root=PACKAGE_ROOT)
    return [sys.executable, "-c", boot, *args]


def run_child(name: str, mode: str, repeat: int, bundle_path: Path, config: RunConfig,
              stop: threading.Event | None = None, trace_dir: Path | None = None,
              model_dir: Path | None = None) -> Iterator[Event]:  # fmt: skip
    """Train one run in its own child process and yield its events as they arrive.

    Args:
        name: registry name of the framework.
        mode: ``eager`` or ``compiled``; stamped on every event with ``repeat`` (1-based).
        bundle_path: the ``.npz`` bundle the child trains on (``bundle.prepare``).
        config: the comparison's config (``timeout_s`` [s] and ``threads`` are used here).
        stop: when set (from any thread), the child is killed within :data:`STOP_POLL_S` seconds.
        trace_dir: where a profiled run (``config.profile_steps``) writes its traces
            (``worker.TRACE_DIR_VAR``).
        model_dir: where a run with ``config.export == "onnx"`` writes ``model.onnx``
            (``worker.MODEL_DIR_VAR``).

    Yields:
        ``Started``, one ``Step`` per logged step (the child's ``Steps`` windows, expanded),
        ``Epoch`` events, then exactly one terminal event: ``Finished``, ``Skipped``, or ``Failed``
        with status ``failed`` (the child crashed, exited early or sent a malformed event line,
        quoted in ``reason``), ``diverged``, ``timeout`` or ``interrupted``. ``Finished.metrics``
        gains ``wall_s``.

    Raises:
        KeyboardInterrupt: Ctrl-C while waiting, after yielding the run's ``Failed(status="interrupted")``.
        OSError: the child cannot be started.

    Closing the generator early kills the child and its process group.
    """
    stderr = tempfile.TemporaryFile(mode="w+")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        worker_command("run", name, str(bundle_path), mode),
        stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL,
        env=child_env(config) | ({TRACE_DIR_VAR: str(trace_dir)} if trace_dir else {})
        | ({MODEL_DIR_VAR: str(model_dir)} if model_dir else {}),
        text=True, start_new_session=True,
    )  # fmt: skip
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    reader.start()
    deadline = t0 + config.timeout_s if config.timeout_s else None
    terminal = None
    exit_by = None  # set when the run's end is reported: the process must exit by then
    last_step = 0
    stray: list[str] = []  # lines that were not JSON objects, quoted

    def failed(status: str, reason: str) -> Failed:
        """Kill the child and describe why its run ended early."""
        _kill(proc)
        return Failed(name, mode, repeat, status=status, reason=reason, error_tail=_stray_text(stray) + _tail(stderr),
                      time_s=time.perf_counter() - t0)  # fmt: skip

    try:
        while True:
            if stop is not None and stop.is_set():
                yield failed("interrupted", f"stopped by the user after {last_step} training steps")
                return
            wait = None if deadline is None else max(0.0, deadline - time.perf_counter())
            if stop is not None:
                wait = STOP_POLL_S if wait is None else min(wait, STOP_POLL_S)
            if exit_by is not None:
                left = max(0.0, exit_by - time.perf_counter())
                wait = left if wait is None else min(wait, left)
            try:
                line = lines.get(timeout=wait)
            except queue.Empty:
                if exit_by is not None and time.perf_counter() >= exit_by:
                    _kill(proc)  # the run is complete; its process hangs at exit
                    break
                if deadline is None or time.perf_counter() < deadline:
                    continue  # only the stop poll woke us
                yield failed("timeout", f"stopped after the {config.timeout_s:g} s timeout")
                return
            except KeyboardInterrupt:
                yield failed("interrupted", f"interrupted (Ctrl-C) after {last_step} training steps")
                raise
            if line is None:
                break
            try:
                event = from_json(line)
            except NotAnEvent:
                if len(stray) < STRAY_LINES_KEPT:
                    stray.append(quote(line))
                continue
            except MalformedEvent as exc:
                yield failed("failed", f"the {name} process sent a malformed event line: {exc}")
                return
            event.mode, event.repeat = mode, repeat
            if isinstance(event, Steps):  # one line per timing window: hand on one Step per step
                for step in event.expand():
                    last_step = step.step
                    yield step
                continue
            if isinstance(event, Step):
                last_step = event.step
            if isinstance(event, Finished):
                event.metrics["wall_s"] = time.perf_counter() - t0
                if stray:
                    event.notes["stray_output"] = _stray_text(stray).strip()
            elif isinstance(event, Failed) and stray:
                event.error_tail = _stray_text(stray) + event.error_tail
            if isinstance(event, TERMINAL):
                terminal = event
                exit_by = time.perf_counter() + EXIT_GRACE_S
            yield event
        try:  # a process that reported its result gets EXIT_GRACE_S to exit, then is killed
            rc = proc.wait(timeout=EXIT_GRACE_S if terminal is not None else None)
        except subprocess.TimeoutExpired:
            _kill(proc)
            rc = proc.returncode
        if terminal is None:
            why = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exited with code {rc}"
            if rc == -signal.SIGKILL:
                why += " (out of memory, or killed from outside)"
            yield Failed(name, mode, repeat, status="failed", reason=f"the {name} process {why} before finishing",
                         error_tail=_stray_text(stray) + _tail(stderr), time_s=time.perf_counter() - t0)  # fmt: skip
    finally:
        _kill(proc)
        stderr.close()


def _stray_text(stray: list[str]) -> str:
    """The quoted non-event lines as the head of an ``error_tail`` (``""`` when there are none)."""
    if not stray:
        return ""
    return "lines on the event stream that were not events (ignored):\n" + "\n".join(stray) + "\n"


def _pump(stream: IO[str], lines: queue.Queue) -> None:
    """Move every line of ``stream`` onto ``lines``, then ``None`` at its end (a reader thread)."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def _kill(proc: subprocess.Popen) -> None:
    """Kill the child and everything it started (its own process group), then reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    else:  # the child is gone; helpers it started (compile workers) may not be
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait()


def _tail(f: IO[str], lines: int = 15) -> str:
    """The last ``lines`` lines written to the temporary file ``f``."""
    f.flush()
    f.seek(0)
    return "\n".join(f.read().rstrip().splitlines()[-lines:])


def probe(name: str, timeout: float = 300, nice: int = 0) -> dict:
    """Ask a framework, in a child process, for its versions and the devices it sees.

    Nothing is imported into this process. ``nice`` lowers the child's CPU priority (``os.nice``,
    POSIX): a probe running in the background of a notebook should not slow the page or a running
    comparison.

    Args:
        name: registry name (``torch``, ``jax``, ``tensorflow``, ``sklearn``).
        timeout: longest wait for the child's answer [s].
        nice: niceness increment of the child (0: unchanged).

    Returns:
        ``{"installed": False, "missing": [...]}``, or ``{"installed": True, "versions": {...},
        "devices": ["cpu", "cuda:0 (NVIDIA H100 80GB HBM3)", ...]}``, or ``{"installed": True,
        "error": "..."}`` when the child does not answer in time or its import fails (the last
        line of its stderr).

    Raises:
        KeyError: an unknown framework name (the message lists the known ones).
    """
    missing = fw_registry.missing_modules(name)
    if missing:
        return {"installed": False, "missing": missing}
    try:
        proc = subprocess.run(
            worker_command("probe", name),
            capture_output=True, text=True, env=child_env(RunConfig()), timeout=timeout,
            preexec_fn=(lambda: os.nice(nice)) if nice and hasattr(os, "nice") else None,
        )  # fmt: skip
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        return {"installed": True, "versions": info["versions"], "devices": info["devices"]}
    except subprocess.TimeoutExpired:
        return {"installed": True, "error": f"no answer within {timeout:g} s"}
    except (IndexError, ValueError, KeyError):
        err = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"installed": True, "error": err[0]}
