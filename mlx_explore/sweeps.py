"""Sweeps: a grid (or list) of comparisons, run one after another here or as tasks on a Ray cluster.

A sweep file (YAML) names what every comparison shares and what varies::

    name: batch-size-sweep          # optional; stored with every run (tag ``sweep``)
    base:                           # RunConfig fields every point shares
      model: mlp
      dataset: digits
      epochs: 2
    grid:                           # each key a list of values; the points are their Cartesian product
      batch_size: [32, 256]
      frameworks: [torch, "jax,sklearn"]   # a value may itself be several frameworks: one comparison
    runs:                           # optional: points listed one by one (each merged onto base, times the grid)
      - {precision: fp32}
      - {precision: bf16, device: gpu}

Every point is a :class:`~mlx_explore.config.RunConfig`, and **all of them are validated before anything
runs** (:func:`load`): an unknown key or a bad value is a :class:`~mlx_explore.config.ConfigError` naming
where it is (``grid.batch_size``, ``runs[1].precision``) and what is allowed.

Engines (:func:`sweep`):

- ``local`` (default): the points run one after another through :func:`mlx_explore.runner.compare`,
  exactly as ``mlx-explore compare`` runs them.
- ``ray``: each point is one Ray task (``ray.remote``, a streaming generator) that runs
  :func:`mlx_explore.runner.iter_compare` on a worker and streams its events back. The driver (this
  process) folds them into runs and is **the only writer of the results store**. Fairness across the
  cluster comes from the task's resources (Ray docs, "Resources": a task is scheduled only where its
  ``num_cpus``/``num_gpus`` are free and holds them while it runs): ``num_cpus`` = the point's
  ``threads`` (when a point leaves ``threads`` unset, every point gets the CPU count of the smallest
  node, so a node runs one such point at a time and all points use equal threads), ``num_gpus`` = 1
  when the point runs on a GPU (Ray then sets ``CUDA_VISIBLE_DEVICES`` to that one GPU). On the node,
  the task claims that many distinct cores (one lock file per core) and pins the comparison to them
  (``sched_setaffinity``, inherited by each framework's child), so two timed runs never share a core
  even where Ray's CPU count is only bookkeeping. Each run records the node it ran on: ``env["host"]``
  and ``env["ray"]`` (node id, worker pid, the cores it was pinned to, GPU ids).

A worker that dies (killed, out of memory, node lost) gives its running run ``failed`` with the reason,
and that comparison's runs that never started ``failed`` too ("not run"); the other points go on.
Ctrl-C (``stop``) cancels the outstanding tasks and keeps every finished run.

Every run of a sweep is stored with ``tags``: ``sweep`` (name), ``sweep_id`` (this invocation),
``sweep_point`` (0-based index), ``sweep_points``, ``sweep_params`` (the point's grid and run values)
and ``sweep_engine``; :func:`table` reads them back, and the dashboards and ``SweepPlot`` read the runs
like any others.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import itertools
import os
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from .config import ConfigError, RunConfig
from .events import TERMINAL, Event, Failed

ENGINES = ("local", "ray")
#: Keys of a sweep file.
SPEC_KEYS = ("name", "base", "grid", "runs")
#: How long the task waits for free cores on its node before it fails [s] (Ray's CPU count can exceed
#: the cores a container may use).
CORE_WAIT_S = 600.0
#: ``ray.init`` of an address is tried only after a TCP connection to it succeeded within this [s].
CONNECT_TIMEOUT_S = 5.0


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster at the address cannot be reached (the message says which,
    and what to do)."""


class _Spec(BaseModel):
    """The sweep file's schema (pydantic): the four keys of :data:`SPEC_KEYS`, nothing else."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    base: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    runs: list[dict[str, Any]] = []


@dataclass(frozen=True)
class SweepPoint:
    """One comparison of a sweep.

    Attributes:
        index: 0-based position in the sweep.
        params: the values this point sets beyond ``base`` (its grid values and its ``runs`` entry).
        config: the validated :class:`~mlx_explore.config.RunConfig`.
    """

    index: int
    params: dict[str, Any]
    config: RunConfig

    @property
    def label(self) -> str:
        """``"batch_size=32 frameworks=torch"``, or ``"point 3"`` when it sets nothing."""
        return " ".join(f"{k}={_short(v)}" for k, v in self.params.items()) or f"point {self.index}"


@dataclass(frozen=True)
class Sweep:
    """A validated sweep: its name and its points (:func:`load`)."""

    name: str
    points: tuple[SweepPoint, ...]

    @property
    def total_runs(self) -> int:
        """Runs of all points together (``comparison.plan`` of each)."""
        from .comparison import plan

        return sum(len(plan(p.config)) for p in self.points)


def load(grid: "str | Path | Mapping | Iterable | Sweep", *, name: str | None = None) -> Sweep:
    """Validate a sweep and return its points; nothing runs.

    Args:
        grid: a sweep file's path (YAML, see the module docstring); or its content as a dict
            (``{"base": ..., "grid": ..., "runs": ...}``); or a list of :class:`RunConfig` or of dicts of
            RunConfig fields (one point each); or a :class:`Sweep` (returned as is).
        name: the sweep's name (default: the file's ``name``, else the file's stem, else ``"sweep"``).

    Returns:
        :class:`Sweep` with at least one point.

    Raises:
        ConfigError: field ``grid`` for a missing or unreadable file, YAML that is not a mapping, or an
            empty sweep; a misplaced or unknown key names its place (``grid.batchsize``: "unknown option;
            allowed: ..."; an unknown top-level key names the allowed ones); a bad value names its place and
            the point (``grid.batch_size``: "... (point 3 of 4: batch_size=0)").
    """
    if isinstance(grid, Sweep):
        return grid
    default_name = "sweep"
    if isinstance(grid, (str, Path)):
        path = Path(grid).expanduser()
        default_name = path.stem
        grid = _read_yaml(path)
    if isinstance(grid, Mapping):
        spec = _spec(grid)
        return _expand(spec, name or spec.name or default_name)
    if isinstance(grid, (list, tuple)):
        points = []
        for i, entry in enumerate(grid):
            if isinstance(entry, RunConfig):
                points.append(SweepPoint(i, {}, entry))
                continue
            if not isinstance(entry, Mapping):
                raise ConfigError(f"grid[{i}]", f"expected a RunConfig or a mapping of its fields, got "
                                                f"{type(entry).__name__}")  # fmt: skip
            points.append(SweepPoint(i, dict(entry), _build(dict(entry), {f: f"grid[{i}].{f}" for f in entry},
                                                            i, len(grid), dict(entry))))  # fmt: skip
        if not points:
            raise ConfigError("grid", "the sweep has no points: give at least one configuration")
        return Sweep(name or default_name, tuple(points))
    raise ConfigError("grid", f"expected a sweep file's path, a mapping or a list of configurations, got "
                              f"{type(grid).__name__}")  # fmt: skip


def _read_yaml(path: Path) -> Any:
    import yaml

    if not path.is_file():
        raise ConfigError("grid", f"no sweep file {path}" + (" (it is a folder)" if path.is_dir() else "") +
                          "; give a YAML file such as examples/sweep.yaml")  # fmt: skip
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("grid", f"cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError("grid", f"{path} is not valid YAML: {str(exc).splitlines()[0]}"
                                  f"{' ' + str(exc.problem_mark).strip() if getattr(exc, 'problem_mark', None) else ''}") from None


def _spec(doc: Mapping) -> _Spec:
    unknown = [k for k in doc if k not in SPEC_KEYS]
    if unknown:
        raise ConfigError(str(unknown[0]), f"unknown sweep key; allowed: {', '.join(SPEC_KEYS)} (RunConfig fields go "
                                           f"under base, grid or runs)")  # fmt: skip
    try:
        spec = _Spec.model_validate(dict(doc))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _place(err["loc"])
        expected = {"base": "a mapping of RunConfig fields", "grid": "a mapping of RunConfig fields to lists of values",
                    "runs": "a list of mappings of RunConfig fields", "name": "text"}[str(err["loc"][0])]  # fmt: skip
        raise ConfigError(where, f"expected {expected}, got {err.get('input')!r}") from None
    for key, values in spec.grid.items():
        if not values:
            raise ConfigError(f"grid.{key}", "an empty list: give at least one value (or move it to base)")
    known = set(RunConfig.model_fields)
    for section, keys in (("base", spec.base), ("grid", spec.grid),
                          *((f"runs[{i}]", r) for i, r in enumerate(spec.runs))):  # fmt: skip
        for key in keys:
            if key not in known:
                raise ConfigError(f"{section}.{key}", f"unknown option; allowed: {', '.join(RunConfig.model_fields)}")
    return spec


def _place(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _expand(spec: _Spec, name: str) -> Sweep:
    keys = list(spec.grid)
    combos = [dict(zip(keys, values)) for values in itertools.product(*(spec.grid[k] for k in keys))]
    entries = spec.runs or [{}]
    total = len(combos) * len(entries)
    points = []
    for r, run in enumerate(entries):
        for combo in combos:
            index = len(points)
            params = {**combo, **run}
            where = {**{k: "base." + k for k in spec.base}, **{k: "grid." + k for k in combo},
                     **({k: f"runs[{r}].{k}" for k in run} if spec.runs else {})}  # fmt: skip
            points.append(SweepPoint(index, params, _build({**spec.base, **params}, where, index, total, params)))
    if not points:
        raise ConfigError("grid", "the sweep has no points: give base fields, a grid or runs")
    return Sweep(name, tuple(points))


def _build(fields: dict, where: dict[str, str], index: int, total: int, params: dict) -> RunConfig:
    try:
        return RunConfig.build(**fields)
    except ConfigError as exc:
        point = f"point {index + 1} of {total}" + (f": {' '.join(f'{k}={_short(v)}' for k, v in params.items())}"
                                                   if params else "")  # fmt: skip
        raise ConfigError(where.get(exc.field, exc.field), f"{exc.message} ({point})") from None


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


# --------------------------------------------------------------------------------------------- running


@dataclass
class SweepResult:
    """What :func:`sweep` did.

    Attributes:
        sweep_id: this invocation's id (tag ``sweep_id`` of every stored run).
        name: the sweep's name.
        engine: ``local`` or ``ray``.
        points: the sweep's points.
        comparisons: ``{point index: Comparison}`` for every point that started (a point cancelled before
            it started is absent).
        interrupted: Ctrl-C or ``stop`` ended the sweep early.
        store_error: why the results store could not be written part way (``None``: every run was stored).
        ray_address: the Ray cluster's address (``ray`` engine).
    """

    sweep_id: str
    name: str
    engine: str
    points: tuple[SweepPoint, ...]
    comparisons: dict[int, Any] = field(default_factory=dict)
    interrupted: bool = False
    store_error: str | None = None
    ray_address: str | None = None

    def table(self) -> pd.DataFrame:
        """One row per run: ``point``, the point's params (one column each), ``framework``, ``mode``,
        ``repeat``, ``status``, ``host``, ``run_id`` and the headline figures (``samples_per_s``
        [samples/s], ``step_ms`` [ms], ``compile_s`` [s], ``train_s`` [s], ``infer_ms_p50`` [ms],
        ``peak_rss_mb`` [MiB], ``test_accuracy``). With a ``batch_size`` column it is what
        ``widgets.SweepPlot`` draws."""
        rows = []
        for index, comparison in sorted(self.comparisons.items()):
            point = self.points[index]
            for r in comparison.runs:
                rows.append({"point": index, **{k: _short(v) if isinstance(v, (list, tuple)) else v
                                                for k, v in point.params.items()},
                             "framework": r.framework, "mode": r.mode, "repeat": r.repeat, "status": r.status,
                             "host": (comparison.env or {}).get("host"), "run_id": r.run_id,
                             **{m: r.metrics.get(m) for m in _FIGURES}})  # fmt: skip
        if "batch_size" not in (rows[0] if rows else {}):
            for row in rows:
                row["batch_size"] = self.points[row["point"]].config.batch_size
        return pd.DataFrame(rows)


_FIGURES = ("samples_per_s", "step_ms", "compile_s", "train_s", "infer_ms_p50", "peak_rss_mb", "test_accuracy")


def table(sweep_id: str, db: str | Path | None = None) -> pd.DataFrame:
    """A stored sweep's runs (tag ``sweep_id``), one row each, in the order they were stored: ``run_id``,
    ``point``, ``framework``, ``mode``, ``repeat``, ``status``, ``host``, ``batch_size`` and the figures of
    :meth:`SweepResult.table` (NaN where a run has none).

    Raises:
        StoreError: as :func:`mlx_explore.results.load_runs`.
    """
    from .results import load_runs, load_tags

    columns = ["run_id", "point", "framework", "mode", "repeat", "status", "host", "batch_size", *_FIGURES]
    tags = load_tags(db, tags=["sweep_point"], match={"sweep_id": sweep_id})
    if tags.empty:
        return pd.DataFrame(columns=columns)
    runs = load_runs(db, run_ids=tags["run_id"].tolist())
    point = dict(zip(tags["run_id"], tags["sweep_point"]))
    out = pd.DataFrame({"run_id": runs["run_id"], "point": [point[i] for i in runs["run_id"]],
                        **{c: runs[c] for c in ("framework", "mode", "repeat", "status")},
                        "host": [(e or {}).get("host") for e in runs["env"]],
                        "batch_size": [(c or {}).get("batch_size") for c in runs["config"]],
                        **{m: runs[m] if m in runs.columns else float("nan") for m in _FIGURES}})  # fmt: skip
    return out[columns].reset_index(drop=True)


def sweep(grid: "str | Path | Mapping | Iterable | Sweep", engine: str = "local", *, ray_address: str | None = None,
          db: str | Path | None = None, store: bool = True, name: str | None = None,
          on_event: Callable[[SweepPoint, Event], Any] | None = None,
          on_point: Callable[[SweepPoint, str], Any] | None = None,
          stop: threading.Event | None = None, trace_dir: str | Path | None = None) -> SweepResult:  # fmt: skip
    """Run every point of a sweep and store every run, tagged with the sweep.

    Example::

        import mlx_explore
        result = mlx_explore.sweep({"base": {"model": "mlp", "epochs": 2},
                                    "grid": {"batch_size": [32, 256], "frameworks": ["torch", "jax"]}})
        result.table()[["batch_size", "framework", "mode", "samples_per_s"]]

    Args:
        grid: the sweep (:func:`load`: a YAML path, its content as a dict, or a list of configurations).
        engine: ``local`` (one point after another here, through :func:`mlx_explore.runner.compare`) or
            ``ray`` (one Ray task per point; the module docstring says how fairness holds).
        ray_address: ``ray`` engine: ``"local"`` or ``None`` (start a Ray instance on this machine,
            ``ray.init()``), ``"auto"`` (join the cluster this machine belongs to) or an address
            (``"10.0.0.5:6379"``, ``"ray://head:10001"``).
        db: the results store (default ``$MLX_EXPLORE_DB``, else ``~/.mlx_explore/results.db``).
        store: write the runs to the store (``False``: keep nothing).
        name: the sweep's name (default: the file's ``name``, else its stem).
        on_event: called as ``on_event(point, event)`` with every event of every point (progress).
        on_point: called as ``on_point(point, state)``, state ``"started"`` or ``"ended"``.
        stop: set it (a Stop button, a signal handler) to end the sweep: running comparisons are
            stopped (their running runs stored as ``interrupted``), outstanding tasks are cancelled,
            and finished runs are kept; the result has ``interrupted=True``.
        trace_dir: the traces folder of profiled runs (as :func:`mlx_explore.runner.compare`).

    Returns:
        :class:`SweepResult`. One point failing (a framework, a worker that died) never costs the others.

    Raises:
        ConfigError: a bad sweep (:func:`load`) or ``engine``, before anything runs.
        StoreError: the store cannot be used, before anything runs.
        RayUnavailable: ``ray`` engine without Ray installed (``pip install 'mlx-explore[ray]'``), or an
            address that cannot be reached within :data:`CONNECT_TIMEOUT_S` seconds; nothing ran.

    Ctrl-C (``KeyboardInterrupt``) during the runs is not raised: it ends the sweep as ``stop`` does and
    the result says ``interrupted``.
    """
    if engine not in ENGINES:
        raise ConfigError("engine", f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
    spec = load(grid, name=name)
    sweep_id = f"{_dt.datetime.now(_dt.timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    result = SweepResult(sweep_id=sweep_id, name=spec.name, engine=engine, points=spec.points)
    if engine == "ray":  # not installed, unreachable: said now, before the store is touched
        result.ray_address = connect(ray_address)
    if store:  # an unusable store fails now, before anything runs
        from .results import ResultsStore

        ResultsStore(db).close()
    if engine == "local":
        _run_local(spec, result, db=db, store=store, on_event=on_event, on_point=on_point, stop=stop,
                   trace_dir=trace_dir)  # fmt: skip
    else:
        _run_ray(spec, result, address=ray_address, db=db, store=store, on_event=on_event, on_point=on_point,
                 stop=stop, trace_dir=trace_dir)  # fmt: skip
    return result


def _tags(spec: Sweep, result: SweepResult, point: SweepPoint) -> dict:
    return {"sweep": spec.name, "sweep_id": result.sweep_id, "sweep_point": point.index,
            "sweep_points": len(spec.points), "sweep_params": {k: _short(v) if isinstance(v, (list, tuple)) else v
                                                               for k, v in point.params.items()},
            "sweep_engine": result.engine}  # fmt: skip


def _run_local(spec: Sweep, result: SweepResult, *, db, store, on_event, on_point, stop, trace_dir) -> None:
    from .runner import ComparisonInterrupted, compare

    for point in spec.points:
        if stop is not None and stop.is_set():
            result.interrupted = True
            return
        if on_point is not None:
            on_point(point, "started")
        handler = (lambda event, p=point: on_event(p, event)) if on_event is not None else None
        try:
            comparison = compare(point.config, on_event=handler, store=store, db=db, stop=stop,
                                 tags=_tags(spec, result, point), trace_dir=trace_dir)  # fmt: skip
        except ComparisonInterrupted as exc:  # Ctrl-C: the interrupted point's runs are stored
            result.comparisons[point.index] = exc.comparison
            result.interrupted = True
            return
        result.comparisons[point.index] = comparison
        if comparison.store_error and result.store_error is None:
            result.store_error = comparison.store_error
        if on_point is not None:
            on_point(point, "ended")
        if comparison.interrupted:
            result.interrupted = True
            return


# ------------------------------------------------------------------------------------------------- Ray


def ray_module():
    """``import ray``, or :class:`RayUnavailable` saying which extra installs it."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable(f"Ray is not installed ({exc}): pip install 'mlx-explore[ray]' (or run the sweep "
                             f"without --ray: the local engine needs nothing more)") from None  # fmt: skip
    return ray


def connect(address: str | None = None) -> str:
    """Start or join Ray (once per process) and return the cluster's address.

    Args:
        address: ``None``/``"local"``: start a local instance with this machine's usable cores
            (``ray.init(num_cpus=...)``, no dashboard); ``"auto"``: the running cluster this machine
            belongs to; ``"host:port"`` (GCS) or ``"ray://host:port"`` (Ray Client).

    Raises:
        RayUnavailable: Ray not installed; ``auto`` with no running cluster; an address that does not
            accept a TCP connection within :data:`CONNECT_TIMEOUT_S` seconds (checked before
            ``ray.init``, which otherwise retries for a minute).
    """
    ray = ray_module()
    if ray.is_initialized():
        current = ray.get_runtime_context().gcs_address
        if address not in (None, "local", "auto") and address.split("://", 1)[-1] != current:
            raise RayUnavailable(f"this process is already connected to the Ray cluster at {current}; to use "
                                 f"{address!r}, call ray.shutdown() first")  # fmt: skip
        return current
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report from a benchmark's driver
    if address in (None, "local"):
        from .bench import usable_cores

        # address "local": a new instance even where another is running (Ray docs, ray.init).
        ray.init(address="local", num_cpus=usable_cores(), include_dashboard=False, log_to_driver=False,
                 logging_level="error")
    else:
        if address != "auto":
            _check_reachable(address)
        try:
            ray.init(address=address, log_to_driver=False, logging_level="error")
        except ConnectionError as exc:
            raise RayUnavailable(f"cannot join the Ray cluster at {address!r}: {exc}") from None
    return ray.get_runtime_context().gcs_address


def _check_reachable(address: str) -> None:
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise RayUnavailable(f"--ray: {address!r} is not an address; give local, auto, HOST:PORT (the head's GCS, "
                             f"port 6379 by default) or ray://HOST:PORT (Ray Client, port 10001)")  # fmt: skip
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise RayUnavailable(f"cannot reach the Ray cluster at {address!r} within {CONNECT_TIMEOUT_S:g} s "
                             f"({exc.strerror or exc}): is the head node running (`ray status` on it) and the port "
                             f"open? Nothing ran.") from None  # fmt: skip


def _cluster_cpus_per_node(ray) -> float:
    cpus = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU")]
    if not cpus:
        raise RayUnavailable("the Ray cluster has no node with CPUs")
    return min(cpus)


def _resources(config: RunConfig, node_cpus: float, cluster_gpus: float) -> tuple[RunConfig, dict]:
    """The point's config with ``threads`` set, and its Ray task options (``num_cpus``, ``num_gpus``)."""
    threads = config.threads or int(node_cpus)
    if threads > node_cpus:
        raise ConfigError("threads", f"{threads} threads, but the smallest node of the Ray cluster has {node_cpus:g} "
                                     f"CPUs: a task needing more could only run on larger nodes; lower threads")
    gpu = config.device == "gpu" or (config.device == "auto" and cluster_gpus > 0)
    if config.device == "gpu" and cluster_gpus < 1:
        raise ConfigError("device", "gpu, but the Ray cluster has no GPU (ray.cluster_resources() lists none)")
    return config.model_copy(update={"threads": threads}), {"num_cpus": threads, "num_gpus": 1 if gpu else 0}


def _claim_cores(n: int, wait_s: float = CORE_WAIT_S) -> tuple[list[int], list[Any]]:
    """Claim ``n`` distinct cores of this node for one timed comparison: an exclusive ``flock`` on a
    per-core file in the temporary folder (released when the task ends, or by the kernel when its
    process dies). Returns (cores, open lock files).

    Raises:
        TimeoutError: not ``n`` free cores within ``wait_s`` seconds.
    """
    folder = Path(tempfile.gettempdir()) / f"mlx_explore-cores-{os.getuid()}"
    folder.mkdir(exist_ok=True)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    deadline = time.monotonic() + wait_s
    while True:
        held: list[tuple[int, Any]] = []
        for core in cores:
            f = open(folder / f"core-{core}.lock", "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                continue
            held.append((core, f))
            if len(held) == n:
                return [c for c, _ in held], [f for _, f in held]
        for _, f in held:
            f.close()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{n} free cores were not found on {socket.gethostname()} within {wait_s:g} s "
                               f"(it has {len(cores)}; other timed runs hold the rest)")  # fmt: skip
        time.sleep(0.2)


def remote_comparison(config_fields: dict, trace_dir: str | None, model_dir: str | None) -> Iterator[tuple]:
    """The body of a sweep's Ray task (a generator; the driver reads what it yields as it comes).

    Yields ``("env", environment)`` first (this node's :func:`mlx_explore.env.environment` with
    ``host`` and ``ray``: node id, worker pid, the claimed cores, GPU ids), then ``("event", event)``
    for every event of :func:`mlx_explore.runner.iter_compare`, run pinned to the claimed cores.
    Cancelling the task (``ray.cancel``) raises in it, which stops the running child.
    """
    from .env import environment
    from .runner import iter_compare

    config = RunConfig.build(**config_fields)
    env = environment()
    cores, locks = _claim_cores(config.threads or 1)
    previous = os.sched_getaffinity(0) if hasattr(os, "sched_setaffinity") else None
    try:
        info: dict[str, Any] = {"worker_pid": os.getpid(), "cores": cores}
        try:
            import ray

            ctx = ray.get_runtime_context()
            info |= {"node_id": ctx.get_node_id(), "gpu_ids": [str(g) for g in ray.get_gpu_ids()]}
        except Exception:  # noqa: BLE001 (outside a Ray worker: tests call the body directly)
            pass
        env["ray"] = info
        yield ("env", env)
        if previous is not None:
            os.sched_setaffinity(0, cores)
        events = iter_compare(config, trace_dir=trace_dir, model_dir=model_dir)
        try:
            for event in events:
                yield ("event", event)
        finally:
            events.close()
    finally:
        if previous is not None:
            os.sched_setaffinity(0, previous)
        for f in locks:
            f.close()


class _PointState:
    """The driver's view of one point running on Ray: its events folded into runs and stored."""

    def __init__(self, point: SweepPoint, config: RunConfig, sink, tags: dict):
        from .comparison import Collector, Comparison

        self.point, self.config, self.sink, self.tags = point, config, sink, tags
        self.collect = Collector()
        self.comparison = Comparison(config=config, env={}, runs=[])

    def event(self, event: Event) -> None:
        from .comparison import run_label

        rec = self.collect(event)
        rec.label = run_label(self.config, rec.framework, rec.mode, rec.repeat)
        if isinstance(event, TERMINAL) and self.sink is not None:
            self.sink.add(rec, self.comparison.env)

    def end(self, status: str | None = None, reason: str = "", not_run: str = "") -> None:
        """Close the point; with ``status``, give its running run that status (``reason`` may use
        ``{steps}``) and, with ``not_run``, record each run of its plan that never started as failed."""
        from .comparison import plan
        from .runner import _end_unfinished, _finish

        if status is not None:
            _end_unfinished(self.collect, self.sink, self.comparison.env, status, reason)
        if not_run:
            for fw, mode, repeat in plan(self.config):
                if (fw, mode, repeat) not in self.collect.records:
                    failed = Failed(fw, mode, repeat, status="failed", reason=not_run)
                    self.event(failed)
        _finish(self.comparison, self.config, self.collect, self.sink, interrupted=status == "interrupted")


def _run_ray(spec: Sweep, result: SweepResult, *, address, db, store, on_event, on_point, stop, trace_dir) -> None:
    ray = ray_module()
    node_cpus = _cluster_cpus_per_node(ray)
    gpus = float(ray.cluster_resources().get("GPU", 0))
    jobs = []
    for point in spec.points:  # every point's resources are checked before any task starts
        config, options = _resources(point.config, node_cpus, gpus)
        jobs.append((point, config, _tags(spec, result, point), options))
    run_jobs(jobs, result, db=db, store=store, on_event=on_event, on_point=on_point, stop=stop, trace_dir=trace_dir,
             name=f"sweep {spec.name}")  # fmt: skip


def alive_nodes() -> list[dict]:
    """The Ray cluster's alive nodes: ``{"node_id", "host", "cpus", "gpus"}`` each, in ``ray.nodes()``'s order."""
    ray = ray_module()
    return [{"node_id": n["NodeID"], "host": n.get("NodeManagerHostname") or n.get("NodeManagerAddress"),
             "cpus": n["Resources"].get("CPU", 0), "gpus": n["Resources"].get("GPU", 0)}
            for n in ray.nodes() if n.get("Alive")]  # fmt: skip


def run_jobs(jobs: list[tuple[SweepPoint, RunConfig, dict, dict]], result: SweepResult, *, db, store: bool,
             on_event=None, on_point=None, stop=None, trace_dir=None, name: str = "sweep") -> None:  # fmt: skip
    """Run comparisons as Ray tasks (Ray already connected) and fold what they stream into ``result``.

    Args:
        jobs: ``(point, config, tags, options)`` each: ``config`` the comparison (``threads`` set),
            ``tags`` stored with its runs, ``options`` the task's Ray resources (``num_cpus``,
            ``num_gpus``) and optionally ``node_id`` (run on that node only: Ray's
            ``NodeAffinitySchedulingStrategy`` with ``soft=False``).
        result: filled in: ``comparisons[point.index]``, ``interrupted``, ``store_error``.
        name: names the tasks (``ray list tasks``).
    """
    ray = ray_module()
    from .runner import _StoreSink, default_model_root, default_trace_root

    store_path = None
    if store:
        from .results import ResultsStore

        with ResultsStore(db) as s:
            store_path = s.path
    traces = str(Path(trace_dir).expanduser() if trace_dir is not None else default_trace_root(store_path))
    models = str(default_model_root(store_path))
    task = ray.remote(remote_comparison)
    running: dict[Any, _PointState] = {}
    for point, config, tags, options in jobs:
        options = dict(options)
        node_id = options.pop("node_id", None)
        if node_id is not None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
        sink = _StoreSink(db, config, tags) if store else None
        if sink is not None:
            sink.traces, sink.models = Path(traces), Path(models)
        gen = task.options(**options, max_retries=0, num_returns="streaming",
                           name=f"mlx-explore {name} point {point.index}").remote(
            config.model_dump(mode="json"), traces, models)  # fmt: skip
        running[gen] = _PointState(point, config, sink, tags)
    try:
        while running:
            if stop is not None and stop.is_set():
                result.interrupted = True
                break
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.1)
            for gen in ready:
                state = running[gen]
                try:
                    ref = next(gen)
                    kind, payload = ray.get(ref)
                except StopIteration:
                    state.end()
                    _collect(result, state, on_point)
                    del running[gen]
                    continue
                except Exception as exc:  # noqa: BLE001 (a dead worker, a lost node, an error in the task)
                    reason = _task_error(exc)
                    state.end("failed", f"the Ray task stopped after {{steps}} logged steps: {reason}",
                              not_run=f"not run: the Ray task running this comparison stopped: {reason}")
                    _collect(result, state, on_point)
                    del running[gen]
                    continue
                if kind == "env":
                    state.comparison.env = payload
                    if on_point is not None:
                        on_point(state.point, "started")
                else:
                    state.event(payload)
                    if on_event is not None:
                        on_event(state.point, payload)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        if running:
            _cancel(ray, running, result)


def _collect(result: SweepResult, state: _PointState, on_point) -> None:
    result.comparisons[state.point.index] = state.comparison
    if state.comparison.store_error and result.store_error is None:
        result.store_error = state.comparison.store_error
    if on_point is not None:
        on_point(state.point, "ended")


def _cancel(ray, running: dict, result: SweepResult) -> None:
    """Cancel every outstanding task; a point that had started keeps its finished runs and stores its
    running one as ``interrupted``."""
    for gen in running:
        try:
            ray.cancel(gen)
        except Exception:  # noqa: BLE001 (already finished)
            pass
    deadline = time.monotonic() + 15.0  # let each task's cancellation stop its child before we return
    for gen in running:
        while time.monotonic() < deadline:
            try:
                ray.get(next(gen), timeout=max(0.1, deadline - time.monotonic()))
            except StopIteration:
                break
            except Exception:  # noqa: BLE001 (TaskCancelledError: the task has ended)
                break
    for gen, state in running.items():
        if state.collect.records or state.comparison.env:
            state.end("interrupted", "interrupted (sweep stopped) after {steps} logged steps")
            result.comparisons[state.point.index] = state.comparison
        elif state.sink is not None:
            state.sink.close()


def _task_error(exc: BaseException) -> str:
    """A short reason for a Ray task that did not finish (``WorkerCrashedError``: the worker died)."""
    name = type(exc).__name__
    text = str(exc).strip().splitlines()
    first = next((line for line in text if line.strip()), "")
    if "WorkerCrashed" in name or "died" in first.lower():
        return f"the worker process died ({name}: {first[:300]})"
    return f"{name}: {first[:300]}"
