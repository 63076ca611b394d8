"""Run a comparison: every (framework, mode, repeat) of its plan in its own child process, one
after another, its events streamed as they happen and each run stored the moment it ends.

``iter_compare`` yields events as they happen; ``compare`` collects them into a
:class:`~mlx_explore.comparison.Comparison` and writes every run to the results store. Stopping
the iteration early (``break``, a widget's Stop button, Ctrl-C) kills the running child and its
process group; finished runs are kept. One child process is supervised by ``child.py``; the result
model is ``comparison.py``; the environment recorded and given to children is ``env.py``
(``docs/architecture.md`` has the map).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from . import frameworks as fw_registry
from .bundle import prepare
from .child import run_child
from .comparison import Collector, Comparison, RunRecord, plan, run_label
from .config import RunConfig
from .env import environment
from .events import TERMINAL, Event, Skipped
from .jsonable import jsonable

# Compatibility: these names were defined here before the runner was split (issue 12); code in
# this package imports them from their homes.
from .child import probe, worker_command  # noqa: E402,F401  isort: skip
from .env import child_env, cpu_model  # noqa: E402,F401  isort: skip
from .metric_docs import METRIC_DOCS  # noqa: E402,F401  isort: skip

__all__ = [
    "Comparison", "ComparisonInterrupted", "compare", "iter_compare",
    # re-exported from their homes, for code written before the split:
    "METRIC_DOCS", "Collector", "RunRecord", "child_env", "cpu_model", "environment", "plan", "probe", "run_label",
    "worker_command",
]  # fmt: skip


class ComparisonInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM/SIGHUP in the CLI) ended a comparison early; raised by :func:`compare`.

    Attributes:
        comparison: the partial :class:`~mlx_explore.comparison.Comparison`: every run that
            finished, the interrupted one with status ``interrupted``; all of them are in the store.
    """

    def __init__(self, comparison: "Comparison"):
        super().__init__("comparison interrupted")
        self.comparison = comparison


def default_trace_root(db: str | Path | None = None) -> Path:
    """Where profiled runs keep their traces: ``traces/`` beside the results store (``db``, default
    ``results.default_path()``), e.g. ``~/.mlx_explore/traces/``; a stored run's are in ``<root>/<run_id>/``."""
    from .results import default_path

    return (Path(db).expanduser() if db is not None else default_path()).parent / "traces"


def default_model_root(db: str | Path | None = None) -> Path:
    """Where runs with ``export="onnx"`` keep their ``model.onnx``: ``models/`` beside the results store
    (``db``, default ``results.default_path()``), e.g. ``~/.mlx_explore/models/``; a stored run's file is
    ``<root>/<run_id>/model.onnx``, an unstored run's stays in ``<root>/pending/<stamp>-<run>/``."""
    from .results import default_path

    return (Path(db).expanduser() if db is not None else default_path()).parent / "models"


def iter_compare(config: RunConfig | None = None, *, stop: threading.Event | None = None,
                 trace_dir: str | Path | None = None, model_dir: str | Path | None = None,
                 **kwargs: Any) -> Iterator[Event]:  # fmt: skip
    """Run the comparison and yield its events as they happen.

    Every event carries ``framework``, ``mode`` and ``repeat`` (``comparison.plan``). Closing the
    generator early (``break``, ``.close()``, Ctrl-C) kills the running child and its process group.

    Args:
        config: a :class:`RunConfig`; or give its fields as keyword arguments instead.
        stop: set it (from any thread: a Stop button) to end the comparison: the running child is
            killed within about 0.1 s and reported ``interrupted``, later runs do not start.
        trace_dir: the traces folder of profiled runs (``config.profile_steps``; default
            :func:`default_trace_root`); each run writes into ``<trace_dir>/pending/<stamp>-<run>/``.

    Yields:
        per run: ``Started``, ``Step``/``Epoch`` events, then ``Finished`` or ``Failed``; or a
        single ``Skipped`` (framework not installed, device missing, model unsupported). A child
        that crashes, exits early or sends a malformed event line gets ``Failed(status="failed")``
        (the line quoted in ``reason``) and the next run starts (``child.run_child``).

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
                reason = f"not installed ({', '.join(missing)}); {fw_registry.install_hint(name)}"
                yield Skipped(name, mode, repeat, status="skipped", reason=reason)
                continue
            traces = models = None
            pending = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{name}-{mode}-{repeat}"
            if config.profile_steps:
                traces = Path(trace_dir or default_trace_root()) / "pending" / pending
            if config.export == "onnx":
                models = Path(model_dir or default_model_root()) / "pending" / pending
            yield from run_child(name, mode, repeat, path, config, stop, traces, models)


def compare(
    config: RunConfig | None = None,
    on_event: Callable[[Event], Any] | None = None,
    *,
    store: bool = True,
    db: str | Path | None = None,
    stop: threading.Event | None = None,
    tags: dict | None = None,
    trace_dir: str | Path | None = None,
    mlflow: bool | str | None = None,
    mlflow_experiment: str | None = None,
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
        tags: JSON-able labels stored with the comparison and each of its runs, as the stored
            config's ``tags`` entry (the standard suite, ``suite.py``, marks its runs this way);
            ``None``: no ``tags`` entry.
        trace_dir: the traces folder of profiled runs (``profile_steps`` > 0); default ``traces/``
            beside the store (:func:`default_trace_root`). A stored run's traces are moved to
            ``<trace_dir>/<run_id>/`` and its op table is stored with it (``results.load_profiles``).
        mlflow: also log every run to MLflow as it ends (``tracking.py``): ``True`` logs to the default
            tracking URI (``$MLFLOW_TRACKING_URI``, else ``sqlite:///`` ``mlflow.db`` beside the store), a
            string to that tracking URI; ``None``/``False``: no MLflow (it is not imported). One parent run
            for the comparison, a nested child run per run, tagged with its run id so that
            ``tracking.export_mlflow`` later logs nothing twice (runs of ``store=False`` have no run id).
        mlflow_experiment: the MLflow experiment (default ``tracking.DEFAULT_EXPERIMENT``, ``mlx-explore``).

    Returns:
        :class:`Comparison` with one record per run of ``plan(config)`` that started, whatever its status.
        If the store could not be written part way (disk full, read-only), the comparison still runs
        to its end and ``store_error`` says why; the runs not stored have ``run_id`` ``None``. With
        ``mlflow``, ``mlflow_error`` says why MLflow logging stopped part way (``None``: every run was
        logged; the comparison and the store are unaffected) and ``mlflow`` is ``MlflowSink.summary()``
        (tracking URI, experiment, parent and child MLflow run ids).

    Raises:
        ConfigError, DatasetUnavailable: as :func:`iter_compare` (nothing is stored then: the
            comparison's row is written with its first run).
        StoreError: the store cannot be used: corrupt, from a newer version, read-only, a path
            under a file (raised before anything runs).
        TrackingError: ``mlflow`` asked for and MLflow is not installed, its URI is bad or unreachable
            (raised before anything runs; nothing is stored or logged).
        ComparisonInterrupted: Ctrl-C; finished runs are kept in the store and in its ``comparison``,
            the running one is stored as ``interrupted``.
        Exception: anything else that stops the comparison (an ``on_event`` callback that raises)
            propagates after the running run was stored as ``failed`` with that error; finished runs
            stay stored.
    """
    config = config if config is not None else RunConfig.build(**kwargs)
    comparison = Comparison(config=config, env={}, runs=[])
    collect = Collector()
    sink = tracker = None
    comparison.mlflow_error = comparison.mlflow = None
    try:
        if store:
            sink = _StoreSink(db, config, tags)  # an unusable store fails here, before anything runs
            comparison.db = str(sink.path)
        if mlflow:  # a missing MLflow or an unreachable tracking URI fails here, before anything runs
            from .tracking import MlflowSink

            tracker = MlflowSink(mlflow if isinstance(mlflow, str) else None, mlflow_experiment,
                                 config=config.model_dump(mode="json"), tags=tags, store=sink.path if sink else None)
        comparison.env = environment()
        traces = Path(trace_dir).expanduser() if trace_dir is not None else default_trace_root(sink.path if sink else None)
        models = default_model_root(sink.path if sink else None)
        if sink is not None:
            sink.traces, sink.models = traces, models
        events = iter_compare(config, stop=stop, trace_dir=traces, model_dir=models)
        try:
            for event in events:
                rec = collect(event)
                rec.label = run_label(config, rec.framework, rec.mode, rec.repeat)
                if isinstance(event, TERMINAL) and sink is not None:
                    sink.add(rec, comparison.env)
                if isinstance(event, TERMINAL) and tracker is not None:
                    tracker.add(rec, comparison.env, sink.comparison_id if sink else None)
                if on_event is not None:
                    on_event(event)
        finally:
            events.close()  # kills a running child, removes the bundle's temporary folder
    except KeyboardInterrupt:
        _end_unfinished(collect, sink, comparison.env, "interrupted", "interrupted (Ctrl-C) after {steps} logged steps",
                        tracker)  # fmt: skip
        _finish(comparison, config, collect, sink, interrupted=True, tracker=tracker)
        raise ComparisonInterrupted(comparison) from None
    except BaseException as exc:  # an on_event callback, a store write, ...: keep what ran, then re-raise
        reason = "the comparison stopped after {steps} logged steps: " + f"{type(exc).__name__}: {exc}"[:500]
        _end_unfinished(collect, sink, comparison.env, "failed", reason, tracker)
        _finish(comparison, config, collect, sink, interrupted=False, tracker=tracker)
        raise
    _finish(comparison, config, collect, sink, interrupted=bool(stop is not None and stop.is_set()), tracker=tracker)
    return comparison


class _StoreSink:
    """Writes a comparison's runs to the results store as each one ends.

    The comparison's row is written with its first run, so a comparison that never started (bad
    data set, not enough memory, Ctrl-C while preparing) leaves nothing behind. When a write fails
    (``results.StoreWriteError``: disk full, read-only, I/O error) storing stops, ``error`` says why
    and the comparison goes on: its runs are still returned, printed and written to ``--out``.
    """

    def __init__(self, db: str | Path | None, config: RunConfig, tags: dict | None = None):
        from .results import ResultsStore

        self.store = ResultsStore(db)
        self.path = self.store.path
        self.config = config
        self.tags = {"tags": jsonable(tags)} if tags is not None else {}
        self.comparison_id: int | None = None
        self.error: str | None = None
        self.traces: Path | None = None
        self.models: Path | None = None

    def add(self, rec: RunRecord, env: dict) -> None:
        from .results import StoreWriteError

        if self.error is not None:
            return
        try:
            if self.comparison_id is None:
                self.comparison_id = self.store.begin_comparison(self.config.model_dump(mode="json") | self.tags, env)
            rec.run_id = self.store.add_run(self.comparison_id, _store_row(self.config, rec, self.tags))
            if rec.profile is not None and self.traces is not None:
                rec.profile = _file_traces(rec.profile, self.traces / str(rec.run_id))
                self.store.add_profile(rec.run_id, rec.profile)
            if rec.notes.get("onnx_path") and self.models is not None:
                moved = _file_model(rec.notes["onnx_path"], self.models / str(rec.run_id))
                if moved != rec.notes["onnx_path"]:
                    rec.notes["onnx_path"] = moved
                    self.store.set_note(rec.run_id, "onnx_path", moved)
        except StoreWriteError as exc:
            self.error = str(exc)

    def close(self) -> None:
        self.store.close()


def _file_model(path: str, target: Path) -> str:
    """Move an exported run's model folder (``pending/...``, holding ``model.onnx``) to ``target``
    (``<models>/<run_id>``); return the file's new path, or ``path`` when it cannot be moved."""
    import shutil

    source = Path(path).parent
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), str(target))
    except OSError:
        return path
    return str(target / Path(path).name)


def _file_traces(profile: dict, target: Path) -> dict:
    """Move a profiled run's trace folder (where its child wrote it, ``pending/...``) to ``target``
    (``<traces>/<run_id>``) and point the profile's paths there. A folder that cannot be moved stays
    where it is, and the profile says so."""
    import shutil

    profile = dict(profile)
    source = Path(profile["trace_dir"]) if profile.get("trace_dir") else None
    file = profile.get("step_events_file")
    if source is None or not source.is_dir():
        return profile
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), str(target))
    except OSError as exc:
        profile["notes"] = [*profile.get("notes", []), f"traces left in {source}: could not move them to {target} ({exc})"]
        profile["trace_dir"] = str(source)
        return profile

    def moved(p: str) -> str:
        return str(target / Path(p).relative_to(source)) if Path(p).is_relative_to(source) else p

    profile["native"] = [moved(p) for p in profile.get("native", [])]
    if file:
        profile["step_events_file"] = moved(file)
    profile["trace_dir"] = str(target)
    return profile


def _end_unfinished(collect: Collector, sink: _StoreSink | None, env: dict, status: str, reason: str,
                    tracker=None) -> None:  # fmt: skip
    """Give every run still running ``status`` (``reason`` may use ``{steps}``) and store it (and log it to
    MLflow when ``tracker``, a ``tracking.MlflowSink``, is given)."""
    for rec in collect.records.values():
        if not rec.finished:
            rec.status, rec.reason = status, reason.replace("{steps}", str(len(rec.curve)), 1)
            if sink is not None:
                sink.add(rec, env)
            if tracker is not None:
                tracker.add(rec, env, sink.comparison_id if sink is not None else None)


def _finish(comparison: Comparison, config: RunConfig, collect: Collector, sink: _StoreSink | None,
            interrupted: bool, tracker=None) -> None:  # fmt: skip
    comparison.runs = _in_plan_order(config, collect)
    comparison.interrupted = comparison.interrupted or interrupted
    if sink is not None:
        comparison.store_error = sink.error
        sink.close()
    if tracker is not None:  # a tracking.MlflowSink: ends the comparison's parent run
        tracker.close(interrupted=comparison.interrupted)
        comparison.mlflow_error, comparison.mlflow = tracker.error, tracker.summary()


def _store_row(config: RunConfig, rec: RunRecord, tags: dict) -> dict:
    row = rec.to_dict()
    row["config"] = config.model_dump(mode="json") | {"mode": rec.mode} | tags
    return row


def _in_plan_order(config: RunConfig, collect: Collector) -> list[RunRecord]:
    """Records in :func:`plan` order; runs that never started (an interrupted comparison) are left out."""
    out = []
    for key in plan(config):
        if key in collect.records:
            out.append(collect.records[key])
    return out
