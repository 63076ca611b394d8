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
from .events import Epoch, Event, Failed, Finished, Skipped, Started, Step, Steps, from_json

#: What each metric in a run's ``metrics`` means (units in brackets). ``None`` where a figure does
#: not exist for that run; the run's ``notes`` then say why.
METRIC_DOCS = {
    "test_accuracy": "share of test samples classified right [0-1]",
    "test_f1_macro": "macro-averaged F1 on the test split [0-1]",
    "test_roc_auc": "one-vs-rest macro ROC-AUC on the test split [0-1]",
    "test_loss": "mean cross-entropy on the test split [nats]",
    "val_accuracy": "validation accuracy after the last epoch [0-1]",
    "val_loss": "validation cross-entropy after the last epoch [nats]",
    "train_loss": "mean training loss of the last epoch [nats]",
    "import_s": "importing the framework in the child process [s]",
    "first_step_s": "first training step, including tracing and compilation, synced [s]",
    "compile_s": "first step minus a steady step: trace + compile time [s]",
    "samples_per_s": "steady training throughput, median over timed windows (sync at each window's end) [samples/s]",
    "step_ms": "steady time per training step, median over windows [ms]",
    "windows": "timed steady windows behind samples_per_s",
    "step_ms_p50": "training-step latency with a sync after every step, median [ms]",
    "step_ms_p95": "training-step latency with a sync after every step, 95th percentile [ms]",
    "step_ms_p99": "training-step latency with a sync after every step, 99th percentile [ms]",
    "infer_ms_p50": "batch-1 inference, host input to host logits, median [ms]",
    "infer_ms_p95": "batch-1 inference, 95th percentile [ms]",
    "infer_ms_p99": "batch-1 inference, 99th percentile [ms]",
    "infer_samples_per_s": "inference throughput at batch infer_batch, median [samples/s]",
    "infer_batch": "batch size of the inference-throughput phase [samples]",
    "train_s": "all training epochs including per-epoch validation [s]",
    "eval_s": "test-split evaluation [s]",
    "wall_s": "child process start to finish, as the user waits for it [s]",
    "cpu_parallelism": "process CPU time / wall time in the steady windows: cores kept busy [cores]",
    "peak_rss_mb": "peak resident memory of the child process [MiB]",
    "peak_device_mb": "peak accelerator memory allocated by the framework [MiB]",
    "train_gflop_per_step": "analytic FLOPs of one training step (3 x forward) [GFLOP]",
    "gflops_per_s": "achieved training FLOP rate: FLOPs per step x steady steps/s [GFLOP/s]",
    "peak_gflops_per_s": "float32 matmul peak measured on the same device in the same process [GFLOP/s]",
    "mfu": "model FLOPs utilization: gflops_per_s / peak_gflops_per_s [0-1]",
    "steps": "training steps taken",
    "n_params": "trainable parameters",
}

_TERMINAL = (Finished, Failed, Skipped)


# ---------------------------------------------------------------------------------- results


@dataclass
class RunRecord:
    """One run (framework, compile mode, repeat), assembled from its events.

    ``status`` is one of ``events.STATUSES`` (``running`` until a terminal event); ``curve`` holds
    ``{"step", "epoch", "loss", "time_s"}`` rows, ``epochs`` ``{"epoch", "train_loss", "val_loss",
    "val_accuracy", "time_s"}`` rows; ``flags`` the fairness settings read back in the child;
    ``notes`` why a metric is ``None`` or how it was measured; ``run_id`` the row in the results
    store (``None`` when not stored).
    """

    framework: str
    mode: str = ""
    repeat: int = 1
    status: str = "running"
    reason: str = ""
    device: str = ""
    device_name: str = ""
    device_kind: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    curve: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    error_tail: str = ""
    label: str = ""
    run_id: int | None = None

    @property
    def finished(self) -> bool:
        """True once a terminal event (or an interruption) has set the final status."""
        return self.status != "running"

    def to_dict(self, with_times: bool = True) -> dict:
        """JSON-ready dict of the run (``with_times=False`` drops the curve's ``time_s``)."""
        keep = ("step", "epoch", "loss", "time_s") if with_times else ("step", "epoch", "loss")
        return {
            "label": self.label or self.framework, "framework": self.framework, "mode": self.mode,
            "repeat": self.repeat, "status": self.status, "reason": self.reason, "device": self.device,
            "device_name": self.device_name, "device_kind": self.device_kind, "versions": self.versions,
            "flags": self.flags, "metrics": self.metrics, "notes": self.notes,
            "curve": [{k: p[k] for k in keep} for p in self.curve], "epochs": self.epochs,
            "error_tail": self.error_tail, "run_id": self.run_id,
        }  # fmt: skip


class Collector:
    """Folds an event stream into :class:`RunRecord` objects, one per ``(framework, mode, repeat)``,
    in the order they first appear."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str, int], RunRecord] = {}

    def __call__(self, event: Event) -> RunRecord:
        """Apply ``event``; return the record it updated."""
        rec = self.records.get(event.run_key)
        if rec is None:
            rec = self.records[event.run_key] = RunRecord(event.framework, event.mode, event.repeat)
        if isinstance(event, Started):
            rec.device, rec.device_name, rec.device_kind = event.device, event.device_name, event.device_kind
            rec.versions, rec.flags = event.versions, event.flags
        elif isinstance(event, Step):
            rec.curve.append({"step": event.step, "epoch": event.epoch, "loss": event.loss, "time_s": event.time_s})
        elif isinstance(event, Epoch):
            rec.epochs.append({k: getattr(event, k) for k in ("epoch", "train_loss", "val_loss", "val_accuracy", "time_s")})
        elif isinstance(event, Finished):
            rec.status, rec.metrics, rec.notes, rec.device = event.status, event.metrics, event.notes, event.device
        elif isinstance(event, (Failed, Skipped)):
            rec.status, rec.reason = event.status, event.reason
            rec.error_tail = getattr(event, "error_tail", "")
        return rec


def run_label(config: RunConfig, framework: str, mode: str, repeat: int) -> str:
    """A run's short unique name in a comparison: ``torch``, ``torch/eager`` (``--mode both``),
    ``torch#2`` (``--repeat``), ``torch/eager#2``."""
    label = framework
    if len(config.modes) > 1 and framework != "sklearn":
        label += f"/{mode}"
    if config.repeat > 1:
        label += f"#{repeat}"
    return label


@dataclass
class Comparison:
    """The result of :func:`compare`.

    Attributes:
        config: the validated config.
        env: where and how it ran (:func:`environment`).
        runs: one :class:`RunRecord` per run, in the order they ran.
        db: the results store these runs were written to (``None``: not stored).
        interrupted: True when the comparison was stopped before its end (Ctrl-C, a Stop button,
            SIGTERM/SIGHUP in the CLI).
        store_error: why the results store could not be written (disk full, read-only, ...), with
            ``None`` when every run was stored or storing was off. Runs after the failure were still
            run and are here, with ``run_id`` ``None``.
    """

    config: RunConfig
    env: dict
    runs: list[RunRecord]
    db: str | None = None
    interrupted: bool = False
    store_error: str | None = None

    @property
    def metrics(self):
        """``pandas.DataFrame``, one row per run, indexed by its label (:func:`run_label`; the
        framework name when there is one mode and one repeat): framework, mode, repeat, status,
        reason, device and every metric."""
        import pandas as pd

        rows = [
            {"run": r.label, "framework": r.framework, "mode": r.mode, "repeat": r.repeat, "status": r.status,
             "reason": r.reason, "device": r.device, **r.metrics}
            for r in self.runs
        ]  # fmt: skip
        return pd.DataFrame(rows, columns=None if rows else ["run", "framework", "status"]).set_index("run")

    @property
    def summary(self):
        """``pandas.DataFrame`` per (framework, mode) over its ``ok`` repeats: the **median** of every
        numeric metric and ``runs``, the number of repeats behind it."""
        m = self.metrics
        ok = m[m["status"] == "ok"]
        if ok.empty:
            return ok
        numeric = ok.select_dtypes("number").drop(columns=["repeat"], errors="ignore")
        out = numeric.groupby([ok["framework"], ok["mode"]], sort=False).median()
        out.insert(0, "runs", ok.groupby(["framework", "mode"], sort=False).size())
        return out

    @property
    def curves(self):
        """``pandas.DataFrame`` of logged training losses: run, framework, mode, repeat, step, epoch,
        loss, time_s."""
        import pandas as pd

        rows = [{"run": r.label, "framework": r.framework, "mode": r.mode, "repeat": r.repeat, **p} for r in self.runs for p in r.curve]
        return pd.DataFrame(rows, columns=["run", "framework", "mode", "repeat", "step", "epoch", "loss", "time_s"])

    @property
    def epoch_table(self):
        """``pandas.DataFrame`` per run and epoch: train_loss, val_loss, val_accuracy, time_s."""
        import pandas as pd

        rows = [{"run": r.label, "framework": r.framework, "mode": r.mode, "repeat": r.repeat, **p} for r in self.runs for p in r.epochs]
        return pd.DataFrame(rows, columns=["run", "framework", "mode", "repeat", "epoch", "train_loss", "val_loss", "val_accuracy", "time_s"])

    @property
    def determinism(self) -> list[dict]:
        """For every (framework, mode) with two or more ``ok`` repeats: were the logged loss curves
        **bitwise** identical across repeats, and the largest absolute difference from the first.

        Returns:
            ``[{"framework", "mode", "repeats", "bitwise_identical", "max_abs_diff", "deterministic_flags"}]``.
        """
        import numpy as np

        groups: dict[tuple[str, str], list[RunRecord]] = {}
        for r in self.runs:
            if r.status == "ok":
                groups.setdefault((r.framework, r.mode), []).append(r)
        out = []
        for (fw, mode), runs in groups.items():
            if len(runs) < 2:
                continue
            base = np.array([p["loss"] for p in runs[0].curve], dtype=np.float64)
            same, diff = True, 0.0
            for other in runs[1:]:
                cur = np.array([p["loss"] for p in other.curve], dtype=np.float64)
                if cur.shape != base.shape:
                    same, diff = False, float("inf")
                    continue
                same = same and base.tobytes() == cur.tobytes()
                diff = max(diff, float(np.max(np.abs(cur - base))) if base.size else 0.0)
            out.append({
                "framework": fw, "mode": mode, "repeats": len(runs), "bitwise_identical": bool(same),
                "max_abs_diff": diff, "deterministic_flags": runs[0].flags.get("deterministic"),
            })  # fmt: skip
        return out

    def run(self, name: str) -> RunRecord:
        """The record of one run, by label (``"torch/eager#2"``) or framework (its first run).

        Raises:
            KeyError: no such run; the message lists the labels present.
        """
        for r in self.runs:
            if r.label == name:
                return r
        for r in self.runs:
            if r.framework == name:
                return r
        raise KeyError(f"no run {name!r}; runs: {', '.join(r.label for r in self.runs)}")

    def to_dict(self) -> dict:
        """The ``--out`` JSON document (format in README.md, "Results JSON")."""
        return {
            "config": self.config.model_dump(mode="json"),
            "env": self.env,
            "interrupted": self.interrupted,
            "db": self.db,
            "store_error": self.store_error,
            "metric_docs": METRIC_DOCS,
            "runs": [r.to_dict(with_times=False) for r in self.runs],
            "determinism": self.determinism,
        }

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (NaN and infinities written as ``null``); creates parent folders."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_nan_to_none(self.to_dict()), indent=2, allow_nan=False))
        return path


def _nan_to_none(obj):
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return obj


def environment() -> dict:
    """Where a comparison ran, recorded with every run: Python, platform, CPU model, logical and
    usable cores, NumPy and installed framework versions, the GPUs ``nvidia-smi`` lists (if any),
    the git revision of this project (and whether the tree had local changes) and a UTC timestamp
    (ISO 8601). CUDA/cuDNN versions as each framework sees them are in every run's ``versions``."""
    import numpy

    from .bench import usable_cores

    versions = {}
    for name in fw_registry.REGISTRY:
        versions.update(fw_registry.versions(name))
    revision, dirty = _git_state()
    return {
        "mlx_explore": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores(),
        "gpus": _nvidia_gpus(),
        "numpy": numpy.__version__,
        "versions": versions,
        "git_revision": revision,
        "git_dirty": dirty,
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nvidia_gpus() -> list[str]:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def _git_state() -> tuple[str | None, bool | None]:
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None, None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                capture_output=True, text=True, timeout=5)  # fmt: skip
        return rev.stdout.strip() or None, bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


# ---------------------------------------------------------------------------------- running


class ComparisonInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a widget's Stop) ended a comparison early. ``comparison`` holds every run that
    finished, the interrupted one with status ``interrupted``; all of them are in the store."""

    def __init__(self, comparison: "Comparison"):
        super().__init__("comparison interrupted")
        self.comparison = comparison


def child_env(config: RunConfig) -> dict[str, str]:
    """Environment of a framework's child: equal thread counts, quiet logs, honest memory.

    ``threads`` (default: all usable cores) goes to ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``/
    ``OPENBLAS_NUM_THREADS`` (PyTorch, NumPy, scikit-learn) and ``TF_NUM_INTRAOP_THREADS``; XLA's
    Eigen pool is single-threaded for 1 thread. The child also pins itself to that many cores and
    sets each framework's own switch (``worker.py``, ``configure`` in each trainer). JAX does not
    preallocate GPU memory and TensorFlow grows its GPU memory on demand, so one does not starve
    the other and memory figures mean something. With ``deterministic``: cuBLAS gets a fixed
    workspace (``CUBLAS_WORKSPACE_CONFIG=:4096:8``, required by PyTorch's deterministic mode on
    CUDA) and XLA ``--xla_gpu_deterministic_ops=true``.
    """
    from .bench import usable_cores

    n = str(min(config.threads or usable_cores(), usable_cores()))
    env = dict(os.environ)
    xla = env.get("XLA_FLAGS", "") + f" --xla_cpu_multi_thread_eigen={'true' if n != '1' else 'false'}"
    if config.deterministic:
        xla += " --xla_gpu_deterministic_ops=true"
        env["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
        env["TF_DETERMINISTIC_OPS"] = "1"
    env.update(
        OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n,
        TF_NUM_INTRAOP_THREADS=n, TF_NUM_INTEROP_THREADS=n, XLA_FLAGS=xla.strip(),
        KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2", TF_FORCE_GPU_ALLOW_GROWTH="true",
        XLA_PYTHON_CLIENT_PREALLOCATE="false", PYTHONUNBUFFERED="1",
    )  # fmt: skip
    return env


def plan(config: RunConfig) -> list[tuple[str, str, int]]:
    """The runs of a comparison, in order: ``(framework, mode, repeat)`` for every framework, every
    mode of ``config.modes`` (scikit-learn: once, as ``eager``) and repeats ``1..config.repeat``."""
    out = []
    for name in config.frameworks:
        modes = ("eager",) if name == "sklearn" else config.modes
        out += [(name, mode, r) for mode in modes for r in range(1, config.repeat + 1)]
    return out


def iter_compare(config: RunConfig | None = None, *, stop: threading.Event | None = None, **kwargs: Any) -> Iterator[Event]:
    """Run the comparison and yield its events as they happen.

    Every event carries ``framework``, ``mode`` and ``repeat`` (:func:`plan`). Closing the
    generator early (``break``, ``.close()``, Ctrl-C) kills the running child and its process group.

    Args:
        config: a :class:`RunConfig`; or give its fields as keyword arguments instead.
        stop: set it (from any thread: a Stop button) to end the comparison: the running child is
            killed within about 0.1 s and reported ``interrupted``, later runs do not start.

    Yields:
        per run: ``Started``, ``Step``/``Epoch`` events, then ``Finished`` or ``Failed``; or a
        single ``Skipped`` (framework not installed, device missing, model unsupported).

    Raises:
        ConfigError: an invalid field (before anything runs).
        DatasetUnavailable: a download data set is neither cached nor downloadable.
        KeyboardInterrupt: after yielding the interrupted run's ``Failed(status="interrupted")``.
    """
    config = config if config is not None else RunConfig.build(**kwargs)
    bundle = prepare(config)
    with tempfile.TemporaryDirectory(prefix="mlx_explore_") as tmp:
        path = Path(tmp) / "bundle.npz"
        bundle.save(path)
        for name, mode, repeat in plan(config):
            if stop is not None and stop.is_set():
                return
            reason = fw_registry.unsupported_reason(name, config.model, config.device, config.precision)
            if reason:
                yield Skipped(name, mode, repeat, status="unsupported", reason=reason)
                continue
            missing = fw_registry.missing_modules(name)
            if missing:
                reason = f"not installed ({', '.join(missing)}); pip install 'mlx-explore[{name}]'"
                yield Skipped(name, mode, repeat, status="skipped", reason=reason)
                continue
            yield from _run_child(name, mode, repeat, path, config, stop)


#: The folder that holds this ``mlx_explore`` package (``site-packages``, or the checkout).
PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def worker_command(*args: str) -> list[str]:
    """The command line of a child process: ``mlx_explore.worker`` with ``args``, importing exactly
    this process's ``mlx_explore``.

    ``python -m mlx_explore.worker`` would put the working directory first on ``sys.path``, so a
    folder named ``mlx_explore`` there (a checkout of another version) would be imported in the
    child while the parent runs the installed one. ``-c`` puts ``''`` first instead; the command
    replaces it with :data:`PACKAGE_ROOT` before importing anything.
    """
    boot = ("import sys; sys.path[0] = {root!r}; from mlx_explore.worker import main; "
            "sys.exit(main(sys.argv[1:]))").format(root=PACKAGE_ROOT)
    return [sys.executable, "-c", boot, *args]


#: How often a running comparison looks at its ``stop`` event [s].
STOP_POLL_S = 0.1


def _run_child(name: str, mode: str, repeat: int, bundle_path: Path, config: RunConfig,
               stop: threading.Event | None = None) -> Iterator[Event]:  # fmt: skip
    stderr = tempfile.TemporaryFile(mode="w+")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        worker_command("run", name, str(bundle_path), mode),
        stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, env=child_env(config),
        text=True, start_new_session=True,
    )  # fmt: skip
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    reader.start()
    deadline = t0 + config.timeout_s if config.timeout_s else None
    terminal = None
    last_step = 0

    def ended(status: str, reason: str) -> Failed:
        """Kill the child and describe why its run ended early."""
        _kill(proc)
        return Failed(name, mode, repeat, status=status, reason=reason, error_tail=_tail(stderr),
                      time_s=time.perf_counter() - t0)  # fmt: skip

    try:
        while True:
            if stop is not None and stop.is_set():
                yield ended("interrupted", f"stopped by the user after {last_step} training steps")
                return
            wait = None if deadline is None else max(0.0, deadline - time.perf_counter())
            if stop is not None:
                wait = STOP_POLL_S if wait is None else min(wait, STOP_POLL_S)
            try:
                line = lines.get(timeout=wait)
            except queue.Empty:
                if deadline is None or time.perf_counter() < deadline:
                    continue  # only the stop poll woke us
                yield ended("timeout", f"stopped after the {config.timeout_s:g} s timeout")
                return
            except KeyboardInterrupt:
                yield ended("interrupted", f"interrupted (Ctrl-C) after {last_step} training steps")
                raise
            if line is None:
                break
            try:
                event = from_json(line)
            except ValueError:
                continue  # not an event line
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
            if isinstance(event, _TERMINAL):
                terminal = event
            yield event
        rc = proc.wait()
        if terminal is None:
            why = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exited with code {rc}"
            if rc == -signal.SIGKILL:
                why += " (out of memory, or killed from outside)"
            yield Failed(name, mode, repeat, status="failed", reason=f"the {name} process {why} before finishing",
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
    else:  # the child is gone; helpers it started (compile workers) may not be
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait()


def _tail(f, lines: int = 15) -> str:
    f.flush()
    f.seek(0)
    return "\n".join(f.read().rstrip().splitlines()[-lines:])


def compare(
    config: RunConfig | None = None,
    on_event: Callable[[Event], Any] | None = None,
    *,
    store: bool = True,
    db: str | Path | None = None,
    stop: threading.Event | None = None,
    **kwargs: Any,
) -> Comparison:
    """Run a comparison to the end and return its results; each run is written to the results
    store the moment it ends.

    Example::

        import mlx_explore
        result = mlx_explore.compare(model="mlp", dataset="digits", frameworks=["torch", "jax"], epochs=5)
        result.metrics[["status", "test_accuracy", "samples_per_s"]]

    Args:
        config: a :class:`RunConfig`; or give its fields as keyword arguments.
        on_event: called with every event as it arrives (progress bars, live plots).
        store: write the runs to the results store (``results.py``); ``False`` keeps nothing.
        db: the store file (default ``$MLX_EXPLORE_DB``, else ``~/.mlx_explore/results.db``).
        stop: a ``threading.Event``; setting it (a Stop button, another thread) ends the comparison
            cleanly: the running run is killed and stored as ``interrupted``, finished runs are kept,
            later runs do not start, and the partial :class:`Comparison` is returned
            (``interrupted=True``).

    Returns:
        :class:`Comparison` with one record per run of :func:`plan` that started, whatever its status.
        If the store could not be written part way (disk full, read-only), the comparison still runs
        to its end and ``store_error`` says why; the runs not stored have ``run_id`` ``None``.

    Raises:
        ConfigError, DatasetUnavailable: as :func:`iter_compare` (nothing is stored then: the
            comparison's row is written with its first run).
        StoreError: the store cannot be used: corrupt, from a newer version, read-only, a path
            under a file (raised before anything runs).
        ComparisonInterrupted: Ctrl-C; finished runs are kept in the store and in its ``comparison``,
            the running one is stored as ``interrupted``.
        Exception: anything else that stops the comparison (an ``on_event`` callback that raises)
            propagates after the running run was stored as ``failed`` with that error; finished runs
            stay stored.
    """
    config = config if config is not None else RunConfig.build(**kwargs)
    comparison = Comparison(config=config, env={}, runs=[])
    collect = Collector()
    sink = None
    try:
        if store:
            sink = _StoreSink(db, config)  # an unusable store fails here, before anything runs
            comparison.db = str(sink.path)
        comparison.env = environment()
        events = iter_compare(config, stop=stop)
        try:
            for event in events:
                rec = collect(event)
                rec.label = run_label(config, rec.framework, rec.mode, rec.repeat)
                if isinstance(event, _TERMINAL) and sink is not None:
                    sink.add(rec, comparison.env)
                if on_event is not None:
                    on_event(event)
        finally:
            events.close()  # kills a running child, removes the bundle's temporary folder
    except KeyboardInterrupt:
        _end_unfinished(collect, sink, comparison.env, "interrupted", "interrupted (Ctrl-C) after {steps} logged steps")
        _finish(comparison, config, collect, sink, interrupted=True)
        raise ComparisonInterrupted(comparison) from None
    except BaseException as exc:  # an on_event callback, a store write, ...: keep what ran, then re-raise
        reason = "the comparison stopped after {steps} logged steps: " + f"{type(exc).__name__}: {exc}"[:500]
        _end_unfinished(collect, sink, comparison.env, "failed", reason)
        _finish(comparison, config, collect, sink, interrupted=False)
        raise
    _finish(comparison, config, collect, sink, interrupted=bool(stop is not None and stop.is_set()))
    return comparison


class _StoreSink:
    """Writes a comparison's runs to the results store as each one ends.

    The comparison's row is written with its first run, so a comparison that never started (bad
    data set, not enough memory, Ctrl-C while preparing) leaves nothing behind. When a write fails
    (``results.StoreWriteError``: disk full, read-only, I/O error) storing stops, ``error`` says why
    and the comparison goes on: its runs are still returned, printed and written to ``--out``.
    """

    def __init__(self, db: str | Path | None, config: RunConfig):
        from .results import ResultsStore

        self.store = ResultsStore(db)
        self.path = self.store.path
        self.config = config
        self.comparison_id: int | None = None
        self.error: str | None = None

    def add(self, rec: RunRecord, env: dict) -> None:
        from .results import StoreWriteError

        if self.error is not None:
            return
        try:
            if self.comparison_id is None:
                self.comparison_id = self.store.begin_comparison(self.config.model_dump(mode="json"), env)
            rec.run_id = self.store.add_run(self.comparison_id, _store_row(self.config, rec))
        except StoreWriteError as exc:
            self.error = str(exc)

    def close(self) -> None:
        self.store.close()


def _end_unfinished(collect: Collector, sink: _StoreSink | None, env: dict, status: str, reason: str) -> None:
    """Give every run still running ``status`` (``reason`` may use ``{steps}``) and store it."""
    for rec in collect.records.values():
        if not rec.finished:
            rec.status, rec.reason = status, reason.replace("{steps}", str(len(rec.curve)), 1)
            if sink is not None:
                sink.add(rec, env)


def _finish(comparison: Comparison, config: RunConfig, collect: Collector, sink: _StoreSink | None,
            interrupted: bool) -> None:  # fmt: skip
    comparison.runs = _in_plan_order(config, collect)
    comparison.interrupted = comparison.interrupted or interrupted
    if sink is not None:
        comparison.store_error = sink.error
        sink.close()


def _store_row(config: RunConfig, rec: RunRecord) -> dict:
    row = rec.to_dict()
    row["config"] = config.model_dump(mode="json") | {"mode": rec.mode}
    return row


def _in_plan_order(config: RunConfig, collect: Collector) -> list[RunRecord]:
    """Records in :func:`plan` order; runs that never started (an interrupted comparison) are left out."""
    out = []
    for key in plan(config):
        if key in collect.records:
            out.append(collect.records[key])
    return out
