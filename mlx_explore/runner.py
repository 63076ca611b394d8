"""Run every framework of a comparison in its own child process and stream its events.

Why a child per framework (DESIGN.md): a clean import and memory peak for each, no fight between
TensorFlow's and JAX's allocators or thread pools, and a crash (segfault, OOM) in one framework
cannot take down the others or the notebook kernel. Frameworks run one after another, so each
gets the whole machine.

``iter_compare`` yields events as they happen; ``compare`` collects them into a
:class:`Comparison` with pandas tables. Stopping the iteration early (``break``, a widget's Stop
button, Ctrl-C) kills the running child and its process group; finished runs are kept.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from . import __version__
from . import frameworks as fw_registry
from .bundle import prepare
from .config import RunConfig
from .events import Epoch, Event, Failed, Finished, Skipped, Started, Step, from_json

#: What each metric in a run's ``metrics`` means (units in brackets).
METRIC_DOCS = {
    "test_accuracy": "share of test samples classified right [0-1]",
    "test_f1_macro": "macro-averaged F1 on the test split [0-1]",
    "test_roc_auc": "one-vs-rest macro ROC-AUC on the test split [0-1]",
    "test_loss": "mean cross-entropy on the test split [nats]",
    "val_accuracy": "validation accuracy after the last epoch [0-1]",
    "val_loss": "validation cross-entropy after the last epoch [nats]",
    "train_loss": "mean training loss of the last epoch [nats]",
    "samples_per_s": "steady-state training throughput, median over timed windows [samples/s]",
    "step_ms": "steady-state time per training step, median over windows [ms]",
    "first_step_s": "first training step, including tracing and compilation [s]",
    "compile_s": "first step minus a steady step: trace + compile time [s]",
    "import_s": "importing the framework in the child [s]",
    "train_s": "all training epochs including per-epoch validation [s]",
    "eval_s": "test-set evaluation [s]",
    "wall_s": "child process start to finish, as the user waits for it [s]",
    "steps": "training steps taken",
    "n_params": "trainable parameters",
}

_TERMINAL = (Finished, Failed, Skipped)


# ---------------------------------------------------------------------------------- results


@dataclass
class RunRecord:
    """One framework's run, assembled from its events.

    ``status`` is one of ``events.STATUSES``; ``curve`` holds ``{"step", "epoch", "loss", "time_s"}``
    rows, ``epochs`` ``{"epoch", "train_loss", "val_loss", "val_accuracy", "time_s"}`` rows.
    """

    framework: str
    status: str = "running"
    reason: str = ""
    device: str = ""
    device_name: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    curve: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    error_tail: str = ""


class Collector:
    """Folds an event stream into :class:`RunRecord` objects (one per framework, in order)."""

    def __init__(self) -> None:
        self.records: dict[str, RunRecord] = {}

    def __call__(self, event: Event) -> Event:
        rec = self.records.setdefault(event.framework, RunRecord(event.framework))
        if isinstance(event, Started):
            rec.device, rec.device_name, rec.versions = event.device, event.device_name, event.versions
        elif isinstance(event, Step):
            rec.curve.append({"step": event.step, "epoch": event.epoch, "loss": event.loss, "time_s": event.time_s})
        elif isinstance(event, Epoch):
            rec.epochs.append({k: getattr(event, k) for k in ("epoch", "train_loss", "val_loss", "val_accuracy", "time_s")})
        elif isinstance(event, Finished):
            rec.status, rec.metrics, rec.device = event.status, event.metrics, event.device
        elif isinstance(event, (Failed, Skipped)):
            rec.status, rec.reason = event.status, event.reason
            rec.error_tail = getattr(event, "error_tail", "")
        return event


@dataclass
class Comparison:
    """The result of :func:`compare`.

    Attributes:
        config: the validated config.
        env: where and how it ran (:func:`environment`).
        runs: one :class:`RunRecord` per framework, in config order.
    """

    config: RunConfig
    env: dict
    runs: list[RunRecord]

    @property
    def metrics(self):
        """``pandas.DataFrame``, one row per framework: status, reason, device and every metric."""
        import pandas as pd

        rows = [{"framework": r.framework, "status": r.status, "reason": r.reason, "device": r.device, **r.metrics} for r in self.runs]
        return pd.DataFrame(rows).set_index("framework")

    @property
    def curves(self):
        """``pandas.DataFrame`` of logged training losses: framework, step, epoch, loss, time_s."""
        import pandas as pd

        rows = [{"framework": r.framework, **p} for r in self.runs for p in r.curve]
        return pd.DataFrame(rows, columns=["framework", "step", "epoch", "loss", "time_s"])

    @property
    def epoch_table(self):
        """``pandas.DataFrame`` per framework and epoch: train_loss, val_loss, val_accuracy, time_s."""
        import pandas as pd

        rows = [{"framework": r.framework, **p} for r in self.runs for p in r.epochs]
        return pd.DataFrame(rows, columns=["framework", "epoch", "train_loss", "val_loss", "val_accuracy", "time_s"])

    def run(self, framework: str) -> RunRecord:
        """The record of one framework. Raises KeyError naming the frameworks present."""
        for r in self.runs:
            if r.framework == framework:
                return r
        raise KeyError(f"no run for {framework!r}; runs: {', '.join(r.framework for r in self.runs)}")

    def to_dict(self) -> dict:
        """The ``--out`` JSON document (format in README.md, "Results JSON")."""
        return {
            "config": self.config.model_dump(mode="json"),
            "env": self.env,
            "runs": [
                {
                    "framework": r.framework, "status": r.status, "reason": r.reason, "device": r.device,
                    "device_name": r.device_name, "versions": r.versions, "metrics": r.metrics,
                    "curve": [{k: p[k] for k in ("step", "epoch", "loss")} for p in r.curve],
                    "epochs": r.epochs, "error_tail": r.error_tail,
                }  # fmt: skip
                for r in self.runs
            ],
        }

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (NaN written as ``null``); creates parent folders."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_nan_to_none(self.to_dict()), indent=2))
        return path


def _nan_to_none(obj):
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return obj


def environment() -> dict:
    """Where a comparison ran: Python, platform, CPU count, NumPy and framework versions, git
    revision of this project and a UTC timestamp (ISO 8601)."""
    import numpy

    versions = {}
    for name in fw_registry.REGISTRY:
        versions.update(fw_registry.versions(name))
    return {
        "mlx_explore": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": numpy.__version__,
        "versions": versions,
        "git_revision": _git_revision(),
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# ---------------------------------------------------------------------------------- running


def child_env(config: RunConfig) -> dict[str, str]:
    """Environment of a framework's child: equal thread counts, quiet logs, honest memory.

    ``threads`` (default: all cores) goes to ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` (PyTorch, NumPy,
    scikit-learn), ``TF_NUM_INTRAOP_THREADS`` and ``XLA_FLAGS`` (JAX's CPU backend). JAX does not
    preallocate GPU memory and TensorFlow grows its GPU memory on demand, so one does not starve
    the other and memory figures mean something.
    """
    n = str(config.threads or os.cpu_count() or 1)
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n,
        TF_NUM_INTRAOP_THREADS=n, TF_NUM_INTEROP_THREADS="1",
        XLA_FLAGS=(env.get("XLA_FLAGS", "") + f" --xla_cpu_multi_thread_eigen={'true' if n != '1' else 'false'}").strip(),
        KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2", TF_FORCE_GPU_ALLOW_GROWTH="true",
        XLA_PYTHON_CLIENT_PREALLOCATE="false", PYTHONUNBUFFERED="1",
    )  # fmt: skip
    return env


def iter_compare(config: RunConfig | None = None, **kwargs: Any) -> Iterator[Event]:
    """Run the comparison and yield its events as they happen.

    Args:
        config: a :class:`RunConfig`; or give its fields as keyword arguments instead.

    Yields:
        per framework: ``Started``, ``Step``/``Epoch`` events, then ``Finished`` or ``Failed``; or a
        single ``Skipped`` (framework not installed, device missing, model unsupported).

    Raises:
        ConfigError: an invalid field (before anything runs).
        DatasetUnavailable: a download data set is neither cached nor downloadable.
    """
    config = config if config is not None else RunConfig.build(**kwargs)
    bundle = prepare(config)
    with tempfile.TemporaryDirectory(prefix="mlx_explore_") as tmp:
        path = Path(tmp) / "bundle.npz"
        bundle.save(path)
        for name in config.frameworks:
            reason = fw_registry.unsupported_reason(name, config.model, config.device)
            if reason:
                yield Skipped(name, status="unsupported", reason=reason)
                continue
            missing = fw_registry.missing_modules(name)
            if missing:
                yield Skipped(name, status="skipped", reason=f"not installed ({', '.join(missing)}); pip install 'mlx-explore[{name}]'")
                continue
            yield from _run_child(name, path, config)


def _run_child(name: str, bundle_path: Path, config: RunConfig) -> Iterator[Event]:
    stderr = tempfile.TemporaryFile(mode="w+")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlx_explore.worker", "run", name, str(bundle_path)],
        stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, env=child_env(config),
        text=True, start_new_session=True,
    )  # fmt: skip
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    reader.start()
    deadline = t0 + config.timeout_s if config.timeout_s else None
    terminal = None
    try:
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.perf_counter())
            try:
                line = lines.get(timeout=wait)
            except queue.Empty:
                _kill(proc)
                terminal = Failed(name, status="timeout", reason=f"stopped after the {config.timeout_s:g} s timeout",
                                  error_tail=_tail(stderr), time_s=time.perf_counter() - t0)  # fmt: skip
                yield terminal
                return
            if line is None:
                break
            try:
                event = from_json(line)
            except ValueError:
                continue  # not an event line
            if isinstance(event, Finished):
                event.metrics["wall_s"] = time.perf_counter() - t0
            if isinstance(event, _TERMINAL):
                terminal = event
            yield event
        rc = proc.wait()
        if terminal is None:
            why = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exited with code {rc}"
            yield Failed(name, status="failed", reason=f"the {name} process {why} before finishing",
                         error_tail=_tail(stderr), time_s=time.perf_counter() - t0)  # fmt: skip
    finally:
        _kill(proc)
        stderr.close()


def _pump(stream, lines: queue.Queue) -> None:
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
    proc.wait()


def _tail(f, lines: int = 15) -> str:
    f.flush()
    f.seek(0)
    return "\n".join(f.read().rstrip().splitlines()[-lines:])


def compare(config: RunConfig | None = None, on_event: Callable[[Event], Any] | None = None, **kwargs: Any) -> Comparison:
    """Run a comparison to the end and return its results.

    Example::

        import mlx_explore
        result = mlx_explore.compare(model="mlp", dataset="digits", frameworks=["torch", "jax"], epochs=5)
        result.metrics[["status", "test_accuracy", "samples_per_s"]]

    Args:
        config: a :class:`RunConfig`; or give its fields as keyword arguments.
        on_event: called with every event as it arrives (progress bars, live plots).

    Returns:
        :class:`Comparison` with one run per framework, whatever its status.

    Raises:
        ConfigError, DatasetUnavailable: as :func:`iter_compare`.
    """
    config = config if config is not None else RunConfig.build(**kwargs)
    env = environment()
    collect = Collector()
    for event in iter_compare(config):
        collect(event)
        if on_event is not None:
            on_event(event)
    runs = [collect.records.get(n, RunRecord(n, status="failed", reason="no events")) for n in config.frameworks]
    return Comparison(config=config, env=env, runs=runs)
