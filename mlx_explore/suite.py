"""The standard suite: named, versioned comparisons a user runs on their own hardware.

A decision needs comparable measurements, not whatever happens to be in the results store. The
suite is a fixed list of comparisons (:data:`ITEMS`), each covering part of what people decide on:

=========================  =========================================================================
item                       what it measures
=========================  =========================================================================
``small_batch``            MLP 256-256 on ``digits``, batch 32, eager and compiled: per-step overhead
                           (throughput at a small batch), compile time, batch-1 inference latency
                           p50/p99, test accuracy
``large_batch``            MLP 1024-1024 on ``synthetic`` (784 features, 10 classes), batch 1024,
                           eager and compiled: throughput, MFU, peak memory
``cnn``                    the LeNet-style CNN on ``digits``, compiled: convolution throughput, accuracy
``parity``                 SGD on the MLP, two repeats with the determinism switches on: per-step loss
                           parity against a reference framework, bitwise determinism
``gru_small``              GRU of width 64 on ``digits`` read row by row (8 steps of 8 features),
                           batch 32, compiled: recurrent per-step overhead, accuracy
``gru_large``              GRU of width 256 on ``adding`` (100 steps of 2 features), batch 256,
                           compiled: recurrent throughput, MFU, peak memory
``transformer_small``      2-layer encoder of width 64 on ``digits`` rows, batch 32, compiled:
                           attention per-step overhead, accuracy
``transformer_large``      2-layer encoder of width 256 on ``adding`` (100 steps), batch 256,
                           compiled: attention throughput, MFU, peak memory
``gbdt``                   gradient-boosted trees (100 rounds, depth 6) on ``synthetic`` tabular data
                           (20 features, 2 classes): training time, batch-1 prediction latency,
                           peak memory, test accuracy and ROC-AUC
=========================  =========================================================================

Each item runs the requested frameworks that can train its model (the registry's
``FrameworkInfo.models``): the deep-learning items run the deep-learning columns (and
scikit-learn where it has the model: the MLP items), the ``gbdt`` item runs scikit-learn, XGBoost
and LightGBM. An item none of the requested frameworks can train is left out of the session, and
the session records which items it planned (tag ``suite_items``), so ``--frameworks torch,jax`` is
complete without a ``gbdt`` item.

``size="small"`` is meant to be cheap on a 2-core CPU: the sequence items train one epoch (the
``adding`` items on 2,000 samples, 5 steps of batch 256) and skip the latency phases of the large
ones, the ``gbdt`` item fits 20,000 rows. Measured on a shared 2-core Xeon with JAX, each of its
runs, child process included: ``gru_small`` 3 s, ``gru_large`` 4 s, ``transformer_small`` 4 s,
``transformer_large`` 16 s (1.9 GiB peak memory), against 45 s for the four earlier items of JAX
and scikit-learn together. ``size="full"`` trains longer on more data (``gbdt``:
1,000,000 rows) with more latency samples and is meant for a GPU.

Every run is stored with ``tags`` (see :func:`mlx_explore.runner.compare`) naming the suite, its
version, the size, the item and the *session* (one invocation of :func:`run`), so
:func:`latest` can return the newest **complete** session of **this machine** and **this suite
version**: the guide (``guide.py``) never mixes machines, versions or half-finished suites.
:data:`SUITE_VERSION` goes up whenever an item's settings change, because figures of different
versions are not comparable.
"""

from __future__ import annotations

import datetime as _dt
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from .config import FRAMEWORKS, ConfigError, RunConfig

SUITE_NAME = "standard"
#: Bumped whenever an item's settings change: figures of two versions are never compared. Version 2
#: added the sequence items and ``gbdt``, and runs each item in the frameworks that can train it.
SUITE_VERSION = 2
SIZES = ("small", "full")
#: Statuses of a run that ended as planned (a failed framework still completes the suite: its
#: figures are "not measured"); ``interrupted`` runs make a session incomplete.
_ENDED = ("ok", "failed", "diverged", "timeout", "skipped", "unsupported")


@dataclass(frozen=True)
class SuiteItem:
    """One comparison of the suite.

    Attributes:
        name: short id, the prefix of its figures (``"large_batch.samples_per_s"``).
        purpose: what it measures, in words, for tables and the guide.
        settings: :class:`~mlx_explore.config.RunConfig` fields common to both sizes.
        small, full: the fields that differ per size (epochs, data size, latency samples).
    """

    name: str
    purpose: str
    settings: dict[str, Any]
    small: dict[str, Any] = field(default_factory=dict)
    full: dict[str, Any] = field(default_factory=dict)

    def config(self, size: str, **overrides: Any) -> RunConfig:
        """The item's :class:`RunConfig` for ``size`` (``"small"`` or ``"full"``), with ``overrides``
        (``frameworks``, ``device``, ``threads``) applied.

        Raises:
            ConfigError: an override is invalid (field ``size`` for an unknown size).
        """
        if size not in SIZES:
            raise ConfigError("size", f"unknown suite size {size!r}; allowed: {', '.join(SIZES)}")
        return RunConfig.build(**(self.settings | getattr(self, size) | overrides))


#: The suite's comparisons, in the order they run. Defaults not named here are RunConfig's (Adam,
#: lr 1e-3, ReLU, fp32, seed 0; ``gbdt``: shrinkage 0.1): the MLP reaches >= 0.95 test accuracy on
#: digits with them. The small size of the sequence items trains one epoch; the large ones
#: (``adding``, batch 256) skip the latency phases there (``latency_steps=0``: their step latency and
#: inference throughput at batch 1024 would cost more than the training itself on a 2-core CPU).
ITEMS: tuple[SuiteItem, ...] = (
    SuiteItem(
        "small_batch", "MLP 256-256 on digits, batch 32, eager and compiled: per-step overhead, compile time, "
        "batch-1 inference latency, accuracy",
        dict(model="mlp", dataset="digits", hidden=(256, 256), batch_size=32, mode="both"),
        small=dict(epochs=3, latency_steps=200), full=dict(epochs=20, latency_steps=1000),
    ),
    SuiteItem(
        "large_batch", "MLP 1024-1024 on synthetic 784-feature data, batch 1024, eager and compiled: throughput, "
        "MFU, peak memory",
        dict(model="mlp", dataset="synthetic", hidden=(1024, 1024), n_features=784, n_classes=10, batch_size=1024,
             mode="both"),
        small=dict(n_samples=12_000, epochs=2, latency_steps=20), full=dict(n_samples=200_000, epochs=3,
                                                                             latency_steps=200),
    ),
    SuiteItem(
        "cnn", "LeNet-style CNN on digits, batch 64, compiled: convolution throughput, accuracy",
        dict(model="cnn", dataset="digits", batch_size=64, mode="compiled"),
        small=dict(epochs=3, latency_steps=20), full=dict(epochs=15, latency_steps=200),
    ),
    SuiteItem(
        "parity", "SGD on the MLP, 2 repeats with determinism switches on: per-step loss parity, bitwise determinism",
        dict(model="mlp", dataset="digits", optimizer="sgd", lr=0.05, mode="compiled", repeat=2, deterministic=True,
             latency_steps=0),
        small=dict(epochs=1), full=dict(epochs=3),
    ),
    SuiteItem(
        "gru_small", "GRU width 64 on digits rows (8 steps of 8 features), batch 32, compiled: recurrent per-step "
        "overhead, batch-1 latency, accuracy",
        dict(model="gru", dataset="digits", hidden=(64,), batch_size=32, mode="compiled"),
        small=dict(epochs=1, latency_steps=20), full=dict(epochs=15, latency_steps=200),
    ),
    SuiteItem(
        "gru_large", "GRU width 256 on the adding task (100 steps of 2 features), batch 256, compiled: recurrent "
        "throughput, MFU, peak memory",
        dict(model="gru", dataset="adding", seq_len=100, hidden=(256,), batch_size=256, mode="compiled"),
        small=dict(n_samples=2_000, epochs=1, latency_steps=0), full=dict(n_samples=100_000, epochs=5,
                                                                           latency_steps=100),
    ),
    SuiteItem(
        "transformer_small", "2-layer Transformer encoder width 64 on digits rows, batch 32, compiled: attention "
        "per-step overhead, batch-1 latency, accuracy",
        dict(model="transformer", dataset="digits", hidden=(64,), batch_size=32, mode="compiled"),
        small=dict(epochs=1, latency_steps=20), full=dict(epochs=15, latency_steps=200),
    ),
    SuiteItem(
        "transformer_large", "2-layer Transformer encoder width 256 on the adding task (100 steps), batch 256, "
        "compiled: attention throughput, MFU, peak memory",
        dict(model="transformer", dataset="adding", seq_len=100, hidden=(256,), batch_size=256, mode="compiled"),
        small=dict(n_samples=2_000, epochs=1, latency_steps=0), full=dict(n_samples=100_000, epochs=5,
                                                                           latency_steps=100),
    ),
    SuiteItem(
        "gbdt", "gradient-boosted trees (100 rounds, depth 6) on synthetic 20-feature binary data: training time, "
        "batch-1 prediction latency, peak memory, accuracy, ROC-AUC",
        dict(model="gbdt", dataset="synthetic", n_features=20, n_classes=2, rounds=100, max_depth=6, epochs=1),
        small=dict(n_samples=20_000, latency_steps=20), full=dict(n_samples=1_000_000, latency_steps=200),
    ),
)  # fmt: skip
ITEM_NAMES = tuple(i.name for i in ITEMS)
#: The items of earlier suite versions, for the completeness of their stored sessions (which do not
#: name their items): version 1 ran these four with every requested framework.
_PAST_ITEMS = {1: ("small_batch", "large_batch", "cnn", "parity")}
#: Figures computed from several runs' curves (not a run's metric): ``parity.max_rel_diff``
#: [dimensionless] and ``parity.bitwise_identical`` [1 yes / 0 no].
DERIVED = {
    "max_rel_diff": "largest per-step relative loss difference against the reference framework [dimensionless]",
    "bitwise_identical": "the loss curves of the two repeats were bitwise identical [1 yes / 0 no]",
}


class NoSuite(LookupError):
    """No complete suite session of this machine and suite version is in the store.

    Attributes:
        message: what was found and the exact command to run first.
        sessions: :func:`sessions`' table of what the store holds (possibly empty).
    """

    def __init__(self, message: str, sessions: pd.DataFrame):
        super().__init__(message)
        self.message = message
        self.sessions = sessions


def item(name: str) -> SuiteItem:
    """The item called ``name``.

    Raises:
        ConfigError: field ``item``, naming the allowed items.
    """
    for it in ITEMS:
        if it.name == name:
            return it
    raise ConfigError("item", f"unknown suite item {name!r}; allowed: {', '.join(ITEM_NAMES)}")


def configs(size: str = "small", *, frameworks: Iterable[str] | str | None = None, device: str = "auto",
            threads: int | None = None, export: str = "none") -> list[tuple[SuiteItem, RunConfig]]:  # fmt: skip
    """The validated config of every item that runs, in suite order, before anything runs.

    Each item runs the requested frameworks that can train its model (the registry's
    :attr:`~mlx_explore.frameworks.FrameworkInfo.models`; :func:`item_frameworks`): the MLP items
    leave XGBoost and LightGBM out instead of reporting them ``unsupported``, the CNN and sequence
    items leave scikit-learn out, the ``gbdt`` item runs only scikit-learn, XGBoost and LightGBM. An
    item that none of them can train is left out (``frameworks="torch,jax"`` has no ``gbdt`` item).
    A framework that has the model but not the device (LightGBM with ``device="gpu"``) still runs
    and is reported ``unsupported`` with the reason.

    Args:
        size: ``"small"`` or ``"full"``.
        frameworks: the frameworks to compare (default every column of
            :data:`~mlx_explore.config.FRAMEWORKS`: the four native ones, Keras 3 on each backend,
            XGBoost and LightGBM).
        device: ``auto``, ``cpu``, ``gpu`` or ``tpu``.
        threads: intra-op threads per framework (``None``: all usable cores).
        export: ``onnx`` to export every trained model and time it in ONNX Runtime (``RunConfig.export``).

    Returns:
        ``[(item, config)]`` of the items that run, ``config.frameworks`` being that item's frameworks
        in the requested order.

    Raises:
        ConfigError: naming the field (``size``, ``frameworks``, ``device``, ``threads``, ``export``) and the
            allowed values.
    """
    if size not in SIZES:
        raise ConfigError("size", f"unknown suite size {size!r}; allowed: {', '.join(SIZES)}")
    overrides: dict[str, Any] = {"device": device, "threads": threads, "export": export}
    requested = _requested(frameworks)
    out = []
    for it in ITEMS:
        names = item_frameworks(it, requested)
        if names:
            out.append((it, it.config(size, **overrides, frameworks=names)))
    return out


def _requested(frameworks: Iterable[str] | str | None) -> tuple[str, ...]:
    """The requested frameworks as a tuple, checked as ``RunConfig.frameworks`` is (known names, none
    twice, at least one) before the list is split per item.

    Raises:
        ConfigError: field ``frameworks``, naming the allowed values.
    """
    if frameworks is None:
        return FRAMEWORKS
    if isinstance(frameworks, str):
        names = [p.strip() for p in frameworks.split(",") if p.strip()]
    else:
        try:
            names = list(frameworks)
        except TypeError:
            raise ConfigError("frameworks", f"expected comma-separated names or a list of them, got {frameworks!r}; "
                                            f"allowed: {', '.join(FRAMEWORKS)}") from None  # fmt: skip
    if not names:
        raise ConfigError("frameworks", f"name at least one framework; allowed: {', '.join(FRAMEWORKS)}")
    bad = [f for f in names if not isinstance(f, str) or f not in FRAMEWORKS]
    if bad:
        raise ConfigError("frameworks", f"unknown framework(s) {', '.join(map(repr, bad))}; allowed: "
                                        f"{', '.join(FRAMEWORKS)}")  # fmt: skip
    if len(set(names)) != len(names):
        raise ConfigError("frameworks", "a framework is named twice")
    return tuple(names)


def item_frameworks(it: SuiteItem, frameworks: Iterable[str]) -> tuple[str, ...]:
    """Those of ``frameworks`` (known names, in their order) that can train ``it``'s model."""
    from .frameworks import get

    return tuple(f for f in frameworks if it.settings["model"] in get(f).models)


@dataclass
class SuiteResult:
    """What :func:`run` did: the session id and each item's :class:`~mlx_explore.comparison.Comparison`."""

    session: str
    size: str
    comparisons: dict[str, Any]
    store_error: str | None = None
    interrupted: bool = False


def run(size: str = "small", *, frameworks: Iterable[str] | str | None = None, device: str = "auto",
        threads: int | None = None, export: str = "none", db: str | Path | None = None,
        on_item: Callable[[SuiteItem, RunConfig, int], Any] | None = None,
        on_event: Callable[[Any], Any] | None = None, stop: threading.Event | None = None) -> SuiteResult:  # fmt: skip
    """Run the suite's comparisons one after another and store every run, tagged.

    Args:
        size, frameworks, device, threads, export: as :func:`configs` (the items it returns are the ones
            run; their names are stored with every run as tag ``suite_items``, what a complete session holds).
        db: the results store (default ``$MLX_EXPLORE_DB``, else ``~/.mlx_explore/results.db``).
        on_item: called as ``on_item(item, config, index)`` before each comparison starts (progress).
        on_event: called with every event of every comparison (progress bars, live plots).
        stop: a ``threading.Event``; setting it (a Stop button, a signal handler) stops the running
            comparison as :func:`mlx_explore.runner.compare` does and starts no further item; the
            result has ``interrupted=True`` and the session is incomplete.

    Returns:
        :class:`SuiteResult`. A framework that fails keeps its failed runs; the others' figures and
        the rest of the suite are unaffected.

    Raises:
        ConfigError: bad ``size``/``frameworks``/``device``/``threads``, before anything runs.
        StoreError: the store cannot be used, before anything runs.
        ComparisonInterrupted: Ctrl-C: the finished runs stay stored, the session is incomplete and
            :func:`latest` ignores it.
    """
    from .runner import compare

    plan = configs(size, frameworks=frameworks, device=device, threads=threads, export=export)
    session = f"{_dt.datetime.now(_dt.timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    result = SuiteResult(session=session, size=size, comparisons={})
    planned_items = ",".join(it.name for it, _ in plan)
    for index, (it, config) in enumerate(plan):
        if on_item is not None:
            on_item(it, config, index)
        tags = _session_tags(it, config, size, session, device, planned_items)
        if stop is not None and stop.is_set():
            result.interrupted = True
            break
        comparison = compare(config, on_event=on_event, db=db, tags=tags, stop=stop)
        result.comparisons[it.name] = comparison
        if comparison.store_error and result.store_error is None:
            result.store_error = comparison.store_error
        if comparison.interrupted:
            result.interrupted = True
            break
    return result


def run_on_ray(size: str = "small", *, address: str | None = "auto", frameworks: Iterable[str] | str | None = None,
               device: str = "auto", threads: int | None = None, export: str = "none", db: str | Path | None = None,
               on_event: Callable[[Any, Any], Any] | None = None,
               stop: threading.Event | None = None) -> list[SuiteResult]:  # fmt: skip
    """Run the suite on every node of a Ray cluster at once: one complete session per node.

    Each node runs its own session, its items one Ray task each, pinned to that node (Ray's
    ``NodeAffinitySchedulingStrategy``, ``soft=False``), so a session never mixes machines and
    :func:`latest` treats it like a session run there. Fairness as in ``sweeps``: a task holds
    ``threads`` CPUs (default: all of the node's, so a node runs one item at a time) and is pinned to
    cores no other timed run holds, and one GPU with ``device="gpu"`` (only nodes with a GPU then run
    a session). The driver (this process) is the only writer of the store.

    Args:
        size, frameworks, device, threads, export, db: as :func:`run`.
        address: the Ray cluster (``sweeps.connect``: ``"auto"``, ``"local"``, ``HOST:PORT``, ``ray://...``).
        on_event: called as ``on_event(point, event)``; ``point.params`` holds ``item`` and ``host``.
        stop: set it to cancel the outstanding items; finished runs are kept, sessions are incomplete.

    Returns:
        one :class:`SuiteResult` per node (its ``comparisons`` by item name).

    Raises:
        ConfigError: as :func:`run`; ``device="gpu"`` on a cluster without a GPU node; ``threads`` above a
            node's CPUs.
        sweeps.RayUnavailable: Ray missing or the cluster unreachable; nothing ran.
        StoreError: the store cannot be used, before anything runs.
    """
    from . import sweeps
    plan = configs(size, frameworks=frameworks, device=device, threads=threads, export=export)
    sweeps.connect(address)
    nodes = [n for n in sweeps.alive_nodes() if n["cpus"] and (device != "gpu" or n["gpus"])]
    if not nodes:
        raise ConfigError("device", "no node of the Ray cluster has a GPU" if device == "gpu" else
                          "the Ray cluster has no node with CPUs")  # fmt: skip
    from .results import ResultsStore

    ResultsStore(db).close()  # an unusable store fails here, before any task starts
    result = sweeps.SweepResult(sweep_id=f"suite-{uuid.uuid4().hex[:6]}", name=SUITE_NAME, engine="ray", points=())
    jobs, sessions, points = [], [], []
    planned_items = ",".join(it.name for it, _ in plan)
    for node in nodes:
        session = f"{_dt.datetime.now(_dt.timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        sessions.append((session, node))
        node_threads = threads or int(node["cpus"])
        if node_threads > node["cpus"]:
            raise ConfigError("threads", f"{node_threads} threads, but node {node['host']} has {node['cpus']:g} CPUs")
        for it, config in plan:
            config = config.model_copy(update={"threads": node_threads})
            point = sweeps.SweepPoint(len(points), {"item": it.name, "host": node["host"]}, config)
            points.append(point)
            tags = _session_tags(it, config, size, session, device, planned_items)
            gpu = device == "gpu" or (device == "auto" and node["gpus"] > 0)
            jobs.append((point, config, tags, {"num_cpus": node_threads, "num_gpus": 1 if gpu else 0,
                                               "node_id": node["node_id"]}))  # fmt: skip
    result.points = tuple(points)
    sweeps.run_jobs(jobs, result, db=db, store=True, on_event=on_event, stop=stop, name=f"suite {size}")
    out = []
    for session, node in sessions:
        comparisons = {p.params["item"]: result.comparisons[p.index] for p, _, tags, _ in jobs
                       if tags["suite_session"] == session and p.index in result.comparisons}  # fmt: skip
        errors = [c.store_error for c in comparisons.values() if c.store_error]
        out.append(SuiteResult(session=session, size=size, comparisons=comparisons,
                               store_error=errors[0] if errors else None,
                               interrupted=result.interrupted or len(comparisons) < len(plan)))  # fmt: skip
    return out


def _session_tags(it: SuiteItem, config: RunConfig, size: str, session: str, device: str, items: str) -> dict:
    """The ``tags`` stored with every run of a suite item (``latest`` and ``sessions`` read them)."""
    from .comparison import plan

    return {"suite": SUITE_NAME, "suite_version": SUITE_VERSION, "suite_size": size, "suite_item": it.name,
            "suite_session": session, "suite_planned": len(plan(config)), "suite_device": device,
            "suite_items": items}  # fmt: skip


def machine_id(env: dict) -> str:
    """A machine's identity as the suite compares it: CPU model, usable cores, GPUs.

    Args:
        env: :func:`mlx_explore.env.environment`'s dict (a stored run's ``env``).

    Returns:
        ``"<cpu model>; <n> cores; <GPU names or 'no GPU'>"``. Two sessions with the same id ran on
        hardware a comparison may treat as the same. Never raises (missing keys read as ``?``).
    """
    gpus = [str(g).split(",")[0].strip() for g in env.get("gpus") or []]
    return f"{env.get('cpu_model', '?')}; {env.get('usable_cores', '?')} cores; {', '.join(gpus) or 'no GPU'}"


def this_machine() -> str:
    """:func:`machine_id` of the machine this process runs on."""
    from .env import environment

    return machine_id(environment())


#: The tags ``run`` stores with each suite run (besides ``suite``), in the order :func:`latest` adds them as columns.
_TAGS = ("suite_version", "suite_size", "suite_item", "suite_session", "suite_planned", "suite_device",
         "suite_items")
#: The entries of a run's env that :func:`machine_id` reads.
_MACHINE_KEYS = ("cpu_model", "usable_cores", "gpus")
_SESSION_COLUMNS = ["session", "started", "suite_version", "size", "device", "machine", "frameworks", "runs",
                    "complete", "missing"]  # fmt: skip


def _summary(db: str | Path | None) -> pd.DataFrame:
    """One row per suite run (its config's ``tags["suite"]`` is :data:`SUITE_NAME`), in run order: ``run_id``,
    ``comparison_id``, ``created_at``, ``framework``, ``mode``, ``repeat``, ``status`` and the tags of
    :data:`_TAGS`. Read in SQL (``results.load_tags``): no run's JSON is decoded, no curve read."""
    from .results import load_tags

    return load_tags(db, tags=_TAGS, match={"suite": SUITE_NAME})


def _with_tags(runs: pd.DataFrame) -> pd.DataFrame:
    """``load_runs``' table of suite runs with their tags (:data:`_TAGS`) and ``machine`` as columns."""
    tags = [c.get("tags") if isinstance(c, dict) else None for c in runs["config"]]
    for key in _TAGS:
        runs[key] = [t.get(key) if isinstance(t, dict) else None for t in tags]
    runs["machine"] = [machine_id(e) for e in runs["env"]]
    return runs


def sessions(db: str | Path | None = None) -> pd.DataFrame:
    """Every suite session in the store, newest first.

    Fast on a big store: each run's tags, and the machine entries of each session's first run's env, are
    read in SQL (``results.load_tags``); no run is decoded whole, no curve is read.

    Returns:
        DataFrame with columns ``session``, ``started`` (UTC), ``suite_version``, ``size``,
        ``device`` (as requested), ``machine`` (:func:`machine_id`), ``frameworks`` (comma-separated),
        ``runs``, ``complete`` (every item the session planned, :func:`expected_items`, ran all its
        planned runs, none interrupted) and ``missing`` (what an incomplete one lacks).

    Raises:
        StoreError: the store cannot be read.
    """
    return _sessions_of(_summary(db), db)


def _sessions_of(runs: pd.DataFrame, db: str | Path | None) -> pd.DataFrame:
    """:func:`sessions`' table from :func:`_summary`'s rows. A session's version, size, device and machine
    are those of its first run, an item's planned runs those of its first run."""
    from .results import load_tags

    runs = runs[runs["suite_session"].notna()]
    if runs.empty:
        return pd.DataFrame(columns=_SESSION_COLUMNS)
    firsts = runs.drop_duplicates("suite_session")  # in order of first appearance, as groupby(sort=False)
    ids = [int(i) for i in firsts["run_id"]]
    machines = {}
    for k in range(0, len(ids), 500):  # in SQL, by run id; 500 at a time (old SQLites bind at most 999 values)
        envs = load_tags(db, env=_MACHINE_KEYS, run_ids=ids[k:k + 500])
        machines.update(zip(envs["run_id"], (machine_id(e) for e in envs["env"])))
    by_session = runs.groupby("suite_session", sort=False)
    started, count = by_session["created_at"].min().to_dict(), by_session.size().to_dict()
    frameworks: dict[Any, list] = {}
    for session, fw in runs[["suite_session", "framework"]].drop_duplicates().itertuples(index=False):
        frameworks.setdefault(session, []).append(fw)  # in order of first appearance
    item_firsts = runs.drop_duplicates(["suite_session", "suite_item"])
    planned = dict(zip(zip(item_firsts["suite_session"], item_firsts["suite_item"]), item_firsts["suite_planned"]))
    ended_runs = runs[runs["status"].isin(_ENDED)]
    ended = ended_runs.groupby(["suite_session", "suite_item"], sort=False).size().to_dict()
    rows = []
    for first in firsts.itertuples(index=False):
        session = first.suite_session
        missing = []
        for name in expected_items(first.suite_items, first.suite_version, frameworks[session]):
            if (session, name) not in planned:
                missing.append(f"{name}: not run")
                continue
            n_planned, n_ended = int(planned[session, name]), int(ended.get((session, name), 0))
            if n_ended < n_planned:
                missing.append(f"{name}: {n_ended} of {n_planned} runs ended")
        rows.append({
            "session": session, "started": started[session], "suite_version": first.suite_version,
            "size": first.suite_size, "device": first.suite_device, "machine": machines[first.run_id],
            "frameworks": ",".join(frameworks[session]), "runs": int(count[session]), "complete": not missing,
            "missing": "; ".join(missing),
        })  # fmt: skip
    table = pd.DataFrame(rows, columns=_SESSION_COLUMNS)
    return table.sort_values("started", ascending=False, kind="stable").reset_index(drop=True)


def expected_items(listed: Any, version: Any, frameworks: Iterable[str]) -> tuple[str, ...]:
    """The items a session must hold to be complete.

    Args:
        listed: the session's ``suite_items`` tag (comma-separated item names, what :func:`run` planned);
            ``None``/NaN for a session stored without it.
        version: the session's ``suite_version``.
        frameworks: the frameworks of the session's runs (used only without ``listed``).

    Returns:
        ``listed``'s names where given; else, for an earlier suite version, that version's items
        (:data:`_PAST_ITEMS`, every one run with every framework); else the items of :data:`ITEMS` that
        one of ``frameworks`` can train (as :func:`configs` chooses them).
    """
    if isinstance(listed, str) and listed.strip():
        return tuple(n for n in listed.split(",") if n)
    try:
        past = _PAST_ITEMS.get(int(version))
    except (TypeError, ValueError):
        past = None
    if past is not None:
        return past
    known = [f for f in frameworks if f in FRAMEWORKS]
    return tuple(it.name for it in ITEMS if item_frameworks(it, known))


def latest(db: str | Path | None = None, *, device: str | None = None, machine: str | None = None,
           session: str | None = None) -> pd.DataFrame:  # fmt: skip
    """The newest complete suite session of this machine and this suite version, one row per run.

    Fast on a big store: the sessions are summed up in SQL (as :func:`sessions`); only the chosen session's
    runs are read whole (and its parity curves by ``figures``).

    Args:
        db: the results store (default ``$MLX_EXPLORE_DB``, else ``~/.mlx_explore/results.db``).
        device: keep sessions run with this ``--device`` (``auto``, ``cpu``, ``gpu``, ``tpu``);
            ``None``: any.
        machine: a :func:`machine_id` (default: :func:`this_machine`).
        session: this session id instead of the newest; it must still be complete, of this machine
            and of :data:`SUITE_VERSION`.

    Returns:
        :func:`mlx_explore.results.load_runs`' columns for the session's runs (a metric column for
        each metric those runs hold), plus ``suite_version``, ``suite_size``, ``suite_item``,
        ``suite_session``, ``suite_planned``, ``suite_device``, ``suite_items`` and ``machine``.

    Raises:
        NoSuite: none qualifies; the message says what the store holds and which command to run
            (``mlx-explore suite --size small``).
        ConfigError: ``session`` names a session of another machine or version, or an unknown or
            incomplete one (field ``suite``, listing the usable sessions).
        StoreError: the store cannot be read.
    """
    from .results import load_runs

    machine = machine if machine is not None else this_machine()
    summary = _summary(db)  # read once: the sessions and the chosen one's run ids come from it
    table = _sessions_of(summary, db)
    usable = table[table["complete"] & (table["suite_version"] == SUITE_VERSION) & (table["machine"] == machine)]
    if device is not None:
        usable = usable[usable["device"] == device]
    if session is not None:
        found = table[table["session"] == session]
        valid = ", ".join(usable["session"]) or "none"
        if found.empty:
            raise ConfigError("suite", f"no suite session {session!r} in the store; usable sessions here: {valid}")
        row = found.iloc[0]
        if row["machine"] != machine:
            raise ConfigError("suite", f"session {session!r} ran on another machine ({row['machine']}; this one is "
                                       f"{machine}): figures from two machines are never mixed; usable sessions "
                                       f"here: {valid}")  # fmt: skip
        if row["suite_version"] != SUITE_VERSION:
            raise ConfigError("suite", f"session {session!r} is suite version {row['suite_version']}, this "
                                       f"mlx-explore runs version {SUITE_VERSION}; usable sessions here: {valid}")
        if not row["complete"]:
            raise ConfigError("suite", f"session {session!r} is incomplete ({row['missing']}); usable sessions "
                                       f"here: {valid}")  # fmt: skip
        usable = found
    if usable.empty:
        raise NoSuite(_no_suite_message(table, machine, device), table)
    chosen = usable.iloc[0]["session"]
    ids = [int(i) for i in summary.loc[summary["suite_session"] == chosen, "run_id"]]
    runs = _with_tags(load_runs(db, run_ids=ids))  # only the chosen session's runs are read whole
    return runs[runs["suite_session"] == chosen].reset_index(drop=True)


def _no_suite_message(table: pd.DataFrame, machine: str, device: str | None) -> str:
    command = "mlx-explore suite --size small" + (f" --device {device}" if device not in (None, "auto") else "")
    if table.empty:
        found = "the results store holds no suite run"
    else:
        reasons = []
        for _, row in table.head(5).iterrows():
            why = ("incomplete: " + row["missing"] if not row["complete"] else
                   f"suite version {row['suite_version']}, not {SUITE_VERSION}" if row["suite_version"] != SUITE_VERSION
                   else f"another machine ({row['machine']})" if row["machine"] != machine
                   else f"device {row['device']}, not {device}")  # fmt: skip
            reasons.append(f"{row['session']} ({why})")
        found = f"the store's {len(table)} suite session(s) cannot be used: " + "; ".join(reasons)
    return (f"No complete suite of version {SUITE_VERSION} from this machine ({machine}){'' if device is None else f' on device {device}'}: "
            f"{found}. Run `{command}` first (minutes on a 2-core CPU; `--frameworks` picks fewer columns), then ask again.")  # fmt: skip


def figures(runs: pd.DataFrame, db: str | Path | None = None) -> pd.DataFrame:
    """The session's figures in long form, each traceable to the run(s) it came from.

    Args:
        runs: :func:`latest`'s table.
        db: the store, to read the ``parity`` item's loss curves.

    Returns:
        DataFrame with columns ``figure`` (``"<item>.<metric>"``), ``item``, ``metric``, ``framework``,
        ``mode``, ``value`` (float; the unit is in :data:`~mlx_explore.metric_docs.METRIC_DOCS` or
        :data:`DERIVED`), ``run_ids`` (tuple of store run ids: the evidence). One row per ok run
        and metric with a finite value; the derived ``parity.max_rel_diff`` (per framework other
        than the reference, against the reference's first repeat: ``parity.relative_differences``;
        the reference framework gets 0) and ``parity.bitwise_identical`` (per framework with two
        ok repeats: ``Comparison.determinism``' rule, bytes of the float64 loss curves).

    Raises:
        StoreError: the curves cannot be read.
    """
    from .metric_docs import METRIC_DOCS

    rows = []
    ok = runs[runs["status"] == "ok"]
    for _, r in ok.iterrows():
        for metric in METRIC_DOCS:
            value = r.get(metric)
            if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
                    and np.isfinite(value):  # fmt: skip
                rows.append((f"{r['suite_item']}.{metric}", r["suite_item"], metric, r["framework"], r["mode"],
                             float(value), (int(r["run_id"]),)))  # fmt: skip
    rows += _parity_figures(ok[ok["suite_item"] == "parity"], db)
    return pd.DataFrame(rows, columns=["figure", "item", "metric", "framework", "mode", "value", "run_ids"])


def _parity_figures(runs: pd.DataFrame, db) -> list[tuple]:
    from . import parity
    from .results import load_curves

    if runs.empty:
        return []
    curves = load_curves(db, run_ids=[int(i) for i in runs["run_id"]])
    rows = []
    firsts = runs.sort_values("repeat").drop_duplicates("framework")
    labelled = curves.assign(run=curves["run_id"].astype(str))
    reference = parity.default_reference(labelled[labelled["run_id"].isin(firsts["run_id"])])
    if reference is not None:
        diffs = parity.relative_differences(labelled[labelled["run_id"].isin(firsts["run_id"])], reference, floor=0)
        for s in parity.summarize(diffs, parity.RTOL):
            if np.isfinite(s["max_rel_diff"]):
                run = runs[runs["run_id"] == int(s["run"])].iloc[0]
                rows.append(("parity.max_rel_diff", "parity", "max_rel_diff", run["framework"], run["mode"],
                             s["max_rel_diff"], (int(reference), int(s["run"]))))  # fmt: skip
        ref = runs[runs["run_id"] == int(reference)].iloc[0]
        rows.append(("parity.max_rel_diff", "parity", "max_rel_diff", ref["framework"], ref["mode"], 0.0,
                     (int(reference),)))  # fmt: skip
    for fw, part in runs.groupby("framework", sort=False):
        if len(part) < 2:
            continue
        losses = [curves.loc[curves["run_id"] == rid, "loss"].to_numpy(np.float64) for rid in part["run_id"]]
        same = all(x.shape == losses[0].shape and x.tobytes() == losses[0].tobytes() for x in losses[1:])
        rows.append(("parity.bitwise_identical", "parity", "bitwise_identical", fw, part["mode"].iloc[0],
                     1.0 if same else 0.0, tuple(int(i) for i in part["run_id"])))  # fmt: skip
    return rows
