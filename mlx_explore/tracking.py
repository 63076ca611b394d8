"""Log runs to MLflow (issue 19): stored runs after the fact (:func:`export_mlflow`, ``mlx-explore export
mlflow``) and a comparison's runs as they end (:class:`MlflowSink`, ``compare(..., mlflow=True)``).

Layout in MLflow: one experiment (default :data:`DEFAULT_EXPERIMENT`); one *parent* run per stored
comparison and one *child* run per framework run, nested under it (tag ``mlflow.parentRunId``). Both the
live and the export path turn a run into the same params, metrics, tags and artifacts
(:func:`run_payload`), so exporting after a live-logged comparison logs nothing twice.

* **params**: every config field (``model``, ``epochs``, ``lr``, ``mode`` of the run ...), and the run's
  fairness flags as ``flags.<name>`` (threads in force, TF32, determinism, compile mode, affinity ...);
  lists and dicts as compact JSON, every value cut to MLflow's 6000 characters.
* **metrics**: every numeric figure of the run's ``metrics`` under its own name (``metric_docs.METRIC_DOCS``
  has the units; ``None``/NaN/inf are left out, booleans are 0/1) at step 0; the training-loss curve as
  ``curve/train_loss`` with ``step`` = our step; per-epoch figures as ``epoch/train_loss``, ``epoch/val_loss``,
  ``epoch/val_accuracy`` with ``step`` = epoch. (The curve is not called ``train_loss``: that name is
  already the run's final training-loss figure.) Timestamps: the run's end for figures, its start plus the
  point's ``time_s`` for curves.
* **tags**: ``mlx_explore.*`` (``kind`` run/comparison, ``run_id``, ``comparison_id``, ``store``,
  ``store_id``, ``status``, ``reason``, ``framework``, ``mode``, ``repeat``, ``model``, ``dataset``,
  ``device``, ``version``, ``git_revision``, ``git_dirty``), ``env.<key>`` (cpu_model, gpus, python,
  platform ...), ``versions.<package>`` (the run's framework versions), ``mlx_explore.tag.<key>`` (the
  config's ``tags``: suite, suite_session, suite_item, sweep ...), ``mlflow.source.git.commit``.
* **artifacts**: ``results.json`` (the stored run: config, metrics, flags, notes, env, curve, epochs),
  ``profile/`` (the run's trace folder, when it was profiled and the folder still exists) and
  ``model/model.onnx`` (when the run exported one and the file exists).
* **status**: ``ok``, ``skipped``, ``unsupported`` -> ``FINISHED``; ``failed``, ``diverged``, ``timeout``
  -> ``FAILED``; ``interrupted`` -> ``KILLED``; ours is the tag ``mlx_explore.status``.

Dedupe: a child run carries ``mlx_explore.run_id`` (our run id) and ``mlx_explore.store_id`` (the store's
identity: a hash of the time the store file was created, kept in its ``meta`` table, so a copied store is
the same store and two stores never collide). Export first searches the experiment for runs of this
store and skips every run id already logged *and terminated*; a parent is found by
``mlx_explore.comparison_id`` and reused. A run logged with ``store=False`` has no run id and is never
deduplicated.

Where it goes (:func:`resolve_tracking_uri`): the ``tracking_uri`` given, else ``$MLFLOW_TRACKING_URI``,
else ``sqlite:///<folder of the results store>/mlflow.db`` (e.g. ``~/.mlx_explore/mlflow.db``, no server
needed); a new experiment in an SQLite store keeps its artifacts in ``mlartifacts/`` beside that file.
Schemes (https://mlflow.org/docs/latest/self-hosting/architecture/backend-store/): ``sqlite``,
``postgresql``, ``mysql``, ``mssql`` (``+driver`` allowed), ``http``/``https`` (a tracking server),
``file``/a plain path (MLflow 3's file store, refused by MLflow unless ``MLFLOW_ALLOW_FILE_STORE=true``),
``databricks``.

Faults: everything that goes wrong is a :class:`TrackingError` whose ``reason`` says which kind. The URI
is checked and the experiment opened before the first run is created: an ``http(s)`` server that does not
answer within :data:`CONNECT_TIMEOUT_S` seconds, a database host that refuses the connection, an SQLite
path that cannot be used or an unknown scheme fail there, with nothing created. MLflow's own HTTP client
retries for minutes; while this module talks to a server it sets ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``,
``..._BACKOFF_FACTOR`` and ``..._TIMEOUT`` (unless set by the user) to fail in seconds, and restores them.
A run whose logging fails part way is deleted from MLflow again (the message says if that failed too), so
exporting again logs it whole. MLflow is an optional extra: without it, the error says
``pip install 'mlx-explore[mlflow]'``; importing this module (or the package, or the CLI) never imports
MLflow.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import re
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .jsonable import jsonable

DEFAULT_EXPERIMENT = "mlx-explore"
#: How MLflow is installed with this project.
INSTALL_HINT = "pip install 'mlx-explore[mlflow]'"
#: MLflow's own variable for the tracking URI, honoured when no URI is given.
URI_VAR = "MLFLOW_TRACKING_URI"
#: Seconds a tracking server (or database host) has to answer the reachability check.
CONNECT_TIMEOUT_S = 3.0

# MLflow's limits (REST API ``runs/log-batch``, https://mlflow.org/docs/latest/api_reference/rest-api.html#log-batch;
# mlflow.utils.validation): 1000 metrics, 100 params and 100 tags per batch; param values 6000 characters,
# tag values 8000, keys 250.
_METRICS_PER_BATCH = 1000
_PARAMS_TAGS_PER_BATCH = 100
_PARAM_MAX = 6000
_TAG_MAX = 8000
_KEY_MAX = 250
#: MLflow-side defaults while this module talks to an http(s) server (only where the user set none).
_HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}  # fmt: skip
#: A run still ``RUNNING`` this long after it was created was left by a logger that died: export deletes it.
_STALE_MS = 10 * 60 * 1000
_STATUS = {"ok": "FINISHED", "skipped": "FINISHED", "unsupported": "FINISHED", "failed": "FAILED",
           "diverged": "FAILED", "timeout": "FAILED", "interrupted": "KILLED"}  # fmt: skip
_DB_SCHEMES = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
_OTHER_SCHEMES = ("file", "databricks", "databricks-uc", "uc")
_BAD_KEY = re.compile(r"[^\w./\- :]")


class TrackingError(RuntimeError):
    """MLflow logging cannot be done or failed. ``reason``: ``"not installed"`` (MLflow missing: the
    message names the extra), ``"bad input"`` (an unknown URI scheme, an unusable SQLite path, a bad
    experiment name: nothing was created), ``"unreachable"`` (the server or database did not answer:
    nothing was created), ``"failed"`` (MLflow refused or broke part way: the message says what was
    logged and that the half-logged run was deleted)."""

    def __init__(self, message: str, reason: str = "failed"):
        super().__init__(message)
        self.reason = reason


@dataclass
class ExportResult:
    """What :func:`export_mlflow` did.

    Attributes:
        tracking_uri, experiment, experiment_id: where the runs went.
        logged: our run ids logged now. skipped: our run ids already in the experiment (not logged again).
        parents_created, parents_reused: comparisons whose runs went into a new parent run / into the
            parent run an earlier export or live logging made.
        run_ids: ``{our run id: MLflow run id}`` for logged and skipped runs.
        removed: MLflow run ids of stale half-logged runs (``RUNNING`` for over 10 minutes) deleted.
        artifact_location: the experiment's artifact root.
    """

    tracking_uri: str
    experiment: str
    experiment_id: str = ""
    artifact_location: str | None = None
    logged: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    parents_created: int = 0
    parents_reused: int = 0
    run_ids: dict[int, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)


@dataclass
class RunPayload:
    """One MLflow run to create: ``name``, times in ms since the epoch, MLflow ``status``, ``params``,
    ``metrics`` ``[(key, value, timestamp_ms, step)]``, ``tags``, ``results`` (``results.json``) and
    ``files`` / ``folders`` ``[(local path, artifact folder)]``."""

    name: str
    start_ms: int
    end_ms: int
    status: str
    params: dict[str, str]
    metrics: list[tuple[str, float, int, int]]
    tags: dict[str, str]
    results: dict | None = None
    files: list[tuple[str, str]] = field(default_factory=list)
    folders: list[tuple[str, str]] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ where


def default_tracking_uri(db: str | Path | None = None) -> str:
    """``sqlite:///<absolute folder of the results store>/mlflow.db``: the store is ``db``, default
    ``results.default_path()`` (``$MLX_EXPLORE_DB`` or ``~/.mlx_explore/results.db``). Never raises."""
    from .results import default_path

    store = Path(db).expanduser() if db is not None else default_path()
    return f"sqlite:///{store.absolute().parent / 'mlflow.db'}"


def resolve_tracking_uri(tracking_uri: str | None = None, db: str | Path | None = None) -> str:
    """The URI used: ``tracking_uri`` if given (not empty), else ``$MLFLOW_TRACKING_URI`` if set, else
    :func:`default_tracking_uri` of the store ``db``. Never raises (checking is :func:`check_tracking_uri`)."""
    if tracking_uri is not None and str(tracking_uri).strip():
        return str(tracking_uri).strip()
    return os.environ.get(URI_VAR, "").strip() or default_tracking_uri(db)


def check_tracking_uri(uri: str) -> tuple[str, str | None]:
    """Check ``uri`` without creating anything in MLflow; return ``(uri, artifact_location)``: the URI
    (a relative SQLite path made absolute) and where a new experiment keeps its artifacts (``mlartifacts``
    beside an SQLite file; ``None``: MLflow's default for that store).

    Raises:
        TrackingError: ``reason="bad input"``: an empty or unknown scheme, an SQLite path that is a folder,
            lies under a file, is in a folder that cannot be made or written, or is not an SQLite file;
            ``reason="unreachable"``: an http(s) server or database host that does not answer within
            :data:`CONNECT_TIMEOUT_S` seconds.
    """
    uri = str(uri).strip()
    parsed = urllib.parse.urlparse(uri)
    scheme = parsed.scheme.lower()
    base = scheme.split("+")[0]
    if not uri:
        raise TrackingError("tracking URI: empty; give e.g. sqlite:////abs/path/mlflow.db or http://host:5000", "bad input")
    if base == "sqlite":
        return _check_sqlite(uri)
    if base in ("http", "https"):
        if not parsed.hostname:
            raise TrackingError(f"tracking URI {uri!r}: no host; give e.g. http://127.0.0.1:5000", "bad input")
        _check_server(uri)
        return uri, None
    if base in _DB_SCHEMES:
        if parsed.hostname:
            _check_port(uri, parsed.hostname, parsed.port or _DB_SCHEMES[base])
        return uri, None
    if scheme in ("file", "") or len(scheme) == 1:  # a plain path (C: on Windows): MLflow's file store
        if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").strip().lower() not in ("1", "true", "yes"):
            raise TrackingError(f"tracking URI {uri!r} is a folder (MLflow's file store, e.g. ./mlruns), which MLflow 3 "
                                f"refuses unless MLFLOW_ALLOW_FILE_STORE=true; give sqlite:///PATH/mlflow.db (a local "
                                f"file, no server) instead", "bad input")  # fmt: skip
        return uri, None
    if scheme in _OTHER_SCHEMES:
        return uri, None
    raise TrackingError(f"tracking URI {uri!r}: unknown scheme {scheme!r}; use sqlite:///PATH (a local file, no "
                        f"server), http(s)://HOST:PORT (a tracking server), postgresql://, mysql://, mssql:// or "
                        f"databricks", "bad input")  # fmt: skip


def _check_sqlite(uri: str) -> tuple[str, str | None]:
    if not uri.lower().startswith("sqlite:///"):
        raise TrackingError(f"tracking URI {uri!r}: an SQLite URI is sqlite:///relative/path.db or "
                            f"sqlite:////absolute/path.db", "bad input")  # fmt: skip
    text, _, query = uri[len("sqlite:///"):].partition("?")
    if not text or text == ":memory:":
        raise TrackingError(f"tracking URI {uri!r}: an in-memory MLflow store would vanish with this process; "
                            f"give a file, e.g. {default_tracking_uri()}", "bad input")  # fmt: skip
    path = Path(text).expanduser().absolute()
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise TrackingError(f"tracking URI {uri!r}: {blocking} is a file, not a folder", "bad input")
    if path.is_dir():
        raise TrackingError(f"tracking URI {uri!r}: {path} is a folder; give a file such as {path / 'mlflow.db'}",
                            "bad input")  # fmt: skip
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TrackingError(f"tracking URI {uri!r}: cannot make the folder {path.parent}: {e.strerror or e}",
                            "bad input") from None  # fmt: skip
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise TrackingError(f"tracking URI {uri!r}: {path if path.exists() else path.parent} is not writable",
                            "bad input")  # fmt: skip
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                raise TrackingError(f"tracking URI {uri!r}: {path} is not an SQLite file; give another path",
                                    "bad input")  # fmt: skip
    return "sqlite:///" + str(path) + (f"?{query}" if query else ""), str(path.parent / "mlartifacts")


def _check_server(uri: str) -> None:
    """Any HTTP answer (even 401 or 404) means the server is there; no answer within the timeout does not."""
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=CONNECT_TIMEOUT_S):
            pass
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError, ValueError) as e:
        why = getattr(e, "reason", None) or e
        raise TrackingError(f"MLflow tracking server {uri} is unreachable ({why}; no answer to GET {url} within "
                            f"{CONNECT_TIMEOUT_S:g} s). Start it (mlflow server --port PORT), check the URI, or give "
                            f"no URI to log to a local SQLite file. Nothing was logged.", "unreachable") from None


def _check_port(uri: str, host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise TrackingError(f"MLflow database {uri} is unreachable: {host}:{port} did not accept a connection within "
                            f"{CONNECT_TIMEOUT_S:g} s ({e.strerror or e}). Nothing was logged.", "unreachable") from None


@contextlib.contextmanager
def _request_limits(uri: str) -> Iterator[None]:
    """While talking to an http(s) server: MLflow's request retries and timeout short (:data:`_HTTP_LIMITS`),
    unless the user set them; the environment is restored on leaving."""
    if not uri.lower().startswith(("http://", "https://")):
        yield
        return
    added = [name for name in _HTTP_LIMITS if name not in os.environ]
    os.environ.update({name: _HTTP_LIMITS[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def store_identity(db: str | Path) -> str | None:
    """The results store's identity for dedupe: 16 hex digits hashed from the time the store file was
    created (its ``meta`` table), else from its absolute path; ``None`` when the file does not exist."""
    from .results import StoreError, _query

    path = Path(db).expanduser().absolute()
    if not path.is_file():
        return None
    try:
        df = _query(path, "SELECT value FROM meta WHERE key = 'created_at'", [])
        created = None if df is None or df.empty else str(df.iloc[0, 0])
    except StoreError:
        created = None
    text = f"meta:{created}" if created else f"path:{path}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------ MLflow


def _mlflow():
    """MLflow's client, entities and exception, imported now; TrackingError naming the extra without it."""
    try:
        from mlflow import MlflowClient
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.exceptions import MlflowException
    except ImportError as e:
        raise TrackingError(f"MLflow is not installed ({e}). Install the extra: {INSTALL_HINT}",
                            "not installed") from None  # fmt: skip
    return MlflowClient, Metric, Param, RunTag, MlflowException


class _Tracker:
    """An open MLflow client on one experiment (created if missing, with its artifact location)."""

    def __init__(self, tracking_uri: str, experiment: str):
        client_cls, self.Metric, self.Param, self.RunTag, self.MlflowException = _mlflow()
        experiment = str(experiment or "").strip()
        if not experiment or len(experiment) > 500:
            raise TrackingError(f"experiment: a name of 1 to 500 characters, got {experiment[:60]!r}", "bad input")
        self.uri, location = check_tracking_uri(tracking_uri)
        self.experiment = experiment
        with self.limits():
            try:
                self.client = client_cls(tracking_uri=self.uri)
                found = self.client.get_experiment_by_name(experiment)
                if found is None:
                    try:
                        self.client.create_experiment(experiment, artifact_location=_file_uri(location))
                    except self.MlflowException:  # another process made it meanwhile
                        pass
                    found = self.client.get_experiment_by_name(experiment)
            except TrackingError:
                raise
            except Exception as e:  # MlflowException, SQLAlchemy's and requests' errors
                raise TrackingError(f"MLflow at {self.uri} cannot be used: {type(e).__name__}: {_short(e)}. "
                                    f"Nothing was logged.", _fault(e)) from None  # fmt: skip
        if found is None:
            raise TrackingError(f"MLflow at {self.uri}: experiment {experiment!r} could not be made", "failed")
        if found.lifecycle_stage == "deleted":
            raise TrackingError(f"MLflow at {self.uri}: experiment {experiment!r} is deleted; restore it (mlflow "
                                f"experiments restore --experiment-id {found.experiment_id}) or choose another "
                                f"--experiment. Nothing was logged.", "bad input")  # fmt: skip
        self.experiment_id = found.experiment_id
        self.artifact_location = found.artifact_location

    def limits(self):
        return _request_limits(self.uri)

    def log(self, payload: RunPayload, parent_id: str | None = None) -> str:
        """Create one run from ``payload`` (nested under ``parent_id``) and log all of it; return its id.
        On any failure the run is deleted again and TrackingError (``"failed"``) says so."""
        tags = dict(payload.tags) | ({"mlflow.parentRunId": parent_id} if parent_id else {})
        with self.limits():
            try:
                run_id = self.client.create_run(self.experiment_id, start_time=payload.start_ms, tags=tags,
                                                run_name=payload.name).info.run_id  # fmt: skip
            except Exception as e:
                raise TrackingError(f"MLflow at {self.uri}: creating run {payload.name!r} failed: "
                                    f"{type(e).__name__}: {_short(e)}", _fault(e)) from None  # fmt: skip
            try:
                params = [self.Param(k, v) for k, v in payload.params.items()]
                for i in range(0, len(params), _PARAMS_TAGS_PER_BATCH):
                    self.client.log_batch(run_id, params=params[i:i + _PARAMS_TAGS_PER_BATCH], synchronous=True)
                metrics = [self.Metric(k, v, t, s) for k, v, t, s in payload.metrics]
                for i in range(0, len(metrics), _METRICS_PER_BATCH):
                    self.client.log_batch(run_id, metrics=metrics[i:i + _METRICS_PER_BATCH], synchronous=True)
                if payload.results is not None:
                    with tempfile.TemporaryDirectory(prefix="mlx_explore_mlflow_") as tmp:
                        file = Path(tmp) / "results.json"
                        file.write_text(json.dumps(payload.results, indent=1, allow_nan=False, default=str))
                        self.client.log_artifact(run_id, str(file))
                for local, folder in payload.files:
                    self.client.log_artifact(run_id, local, folder)
                for local, folder in payload.folders:
                    self.client.log_artifacts(run_id, local, folder)
                if payload.status != "RUNNING":  # a parent stays running until its children are in
                    self.client.set_terminated(run_id, payload.status, end_time=payload.end_ms)
            except BaseException as e:  # also Ctrl-C: leave no half-logged run behind
                try:
                    self.client.delete_run(run_id)
                    left = f"the half-logged MLflow run {run_id} was deleted"
                except Exception as e2:
                    left = (f"the half-logged MLflow run {run_id} could not be deleted ({_short(e2)}): delete it "
                            f"(mlflow runs delete --run-id {run_id})")  # fmt: skip
                if not isinstance(e, Exception):
                    raise
                raise TrackingError(f"MLflow at {self.uri}: logging run {payload.name!r} failed part way "
                                    f"({type(e).__name__}: {_short(e)}); {left}", _fault(e)) from None  # fmt: skip
        return run_id

    def end(self, run_id: str, status: str, end_ms: int | None = None) -> None:
        with self.limits():
            try:
                self.client.set_terminated(run_id, status, end_time=end_ms)
            except Exception as e:
                raise TrackingError(f"MLflow at {self.uri}: ending run {run_id} failed: {_short(e)}", _fault(e)) from None

    def existing(self, store_id: str) -> tuple[dict[int, str], dict[int, str], list[str]]:
        """``({our run id: MLflow id} of terminated child runs, {comparison id: parent MLflow id},
        [MLflow ids of stale RUNNING child runs])`` of this store in the experiment."""
        runs, parents, stale = {}, {}, []
        now = int(time.time() * 1000)
        token = None
        with self.limits():
            try:
                while True:
                    page = self.client.search_runs([self.experiment_id], f"tags.`mlx_explore.store_id` = '{store_id}'",
                                                   max_results=1000, page_token=token)  # fmt: skip
                    for run in page:
                        tags = run.data.tags
                        if tags.get("mlx_explore.kind") == "comparison" and tags.get("mlx_explore.comparison_id"):
                            parents.setdefault(int(tags["mlx_explore.comparison_id"]), run.info.run_id)
                        elif tags.get("mlx_explore.run_id", "").isdigit():
                            if run.info.status != "RUNNING":
                                runs.setdefault(int(tags["mlx_explore.run_id"]), run.info.run_id)
                            elif now - (run.info.start_time or now) > _STALE_MS:
                                stale.append(run.info.run_id)
                    token = page.token
                    if not token:
                        break
            except Exception as e:
                raise TrackingError(f"MLflow at {self.uri}: searching experiment {self.experiment!r} failed: "
                                    f"{_short(e)}. Nothing was logged.", _fault(e)) from None  # fmt: skip
        return runs, parents, stale

    def delete(self, run_id: str) -> None:
        with self.limits():
            self.client.delete_run(run_id)


def _file_uri(location: str | None) -> str | None:
    return Path(location).as_uri() if location else None


def _short(e: BaseException, n: int = 300) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _fault(e: BaseException) -> str:
    """``"unreachable"`` for connection errors (requests, urllib3, socket), else ``"failed"``."""
    names = {c.__name__ for c in type(e).__mro__}
    if names & {"ConnectionError", "MaxRetryError", "NewConnectionError", "Timeout", "ConnectTimeout"}:
        return "unreachable"
    return "unreachable" if "Max retries exceeded" in str(e) or "Connection refused" in str(e) else "failed"


# ------------------------------------------------------------------------------------------ one run


def param_value(value: Any) -> str:
    """How a config field or flag is written as an MLflow param: text as it is, lists and dicts as compact
    JSON (keys sorted), other scalars with ``str``; cut to MLflow's 6000 characters. Never raises."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (list, tuple, dict)):
        text = json.dumps(jsonable(value), separators=(",", ":"), sort_keys=True, default=str)
    else:
        text = str(jsonable(value))
    return text if len(text) <= _PARAM_MAX else text[: _PARAM_MAX - 3] + "..."


def metric_key(name: str) -> str:
    """``name`` as an MLflow metric/param/tag key: characters MLflow refuses become ``_``, a key that
    would resolve to another as a path (``a//b``, ``./a``) loses its slashes; at most 250 characters."""
    key = _BAD_KEY.sub("_", str(name)) or "_"
    if os.path.normpath(key) != key or key.startswith("/") or key.startswith(".."):
        key = key.replace("/", "_")
        key = "_" + key if key.startswith(".") else key
    return key[:_KEY_MAX]


def _tag(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(jsonable(value), separators=(",", ":"), default=str)
    return text if len(text) <= _TAG_MAX else text[: _TAG_MAX - 3] + "..."


def _number(value: Any) -> float | None:
    """A finite float from an int/float/bool/NumPy number; ``None`` for anything else (text, None, NaN, inf)."""
    try:
        import numpy as np

        if isinstance(value, (bool, np.bool_)):
            return float(value)
        if isinstance(value, (int, float, np.integer, np.floating)):
            x = float(value)
            return x if math.isfinite(x) else None
    except (TypeError, ValueError, OverflowError):
        pass
    return None


def _ms(when: Any) -> int:
    if isinstance(when, str):
        when = _dt.datetime.fromisoformat(when)
    if hasattr(when, "to_pydatetime"):
        when = when.to_pydatetime()
    if isinstance(when, _dt.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.timezone.utc)
        return int(when.timestamp() * 1000)
    return int(time.time() * 1000)


def run_name(row: dict) -> str:
    """``framework/mode``, with ``#repeat`` when the comparison repeats runs (its config's ``repeat`` > 1)."""
    repeats = (row.get("config") or {}).get("repeat") or 1
    name = f"{row.get('framework')}/{row.get('mode') or 'eager'}"
    return name + (f"#{row.get('repeat')}" if isinstance(repeats, int) and repeats > 1 else "")


def _env_tags(env: dict) -> dict[str, str]:
    tags = {}
    for key, value in (env or {}).items():
        if key in ("git_revision", "git_dirty", "timestamp", "mlx_explore"):
            continue
        if key == "versions" and isinstance(value, dict):
            tags.update({metric_key(f"env.versions.{k}"): _tag(v) for k, v in value.items() if v})
        elif value is not None:
            tags[metric_key(f"env.{key}")] = _tag(value)
    if env.get("mlx_explore"):
        tags["mlx_explore.version"] = _tag(env["mlx_explore"])
    if env.get("git_revision"):
        tags["mlx_explore.git_revision"] = tags["mlflow.source.git.commit"] = _tag(env["git_revision"])
    if env.get("git_dirty") is not None:
        tags["mlx_explore.git_dirty"] = _tag(str(bool(env["git_dirty"])).lower())
    return tags


def _common_tags(config: dict, env: dict, store_id: str | None, store: str | None, comparison_id: Any) -> dict:
    config = config or {}
    tags = _env_tags(env)
    labels = config.get("tags") if isinstance(config.get("tags"), dict) else {}
    tags |= {metric_key(f"mlx_explore.tag.{k}"): _tag(v) for k, v in labels.items()}
    for key, value in (("store_id", store_id), ("store", store), ("comparison_id", comparison_id),
                       ("model", config.get("model")), ("dataset", config.get("dataset"))):  # fmt: skip
        if value is not None:
            tags[f"mlx_explore.{key}"] = _tag(str(value))
    return tags


def _config_params(config: dict) -> dict[str, str]:
    return {metric_key(k): param_value(v) for k, v in (config or {}).items() if k != "tags"}


def run_payload(row: dict, *, store_id: str | None = None, store: str | Path | None = None) -> RunPayload:
    """One stored run as an MLflow run (the module docstring lists what goes where).

    Args:
        row: the run as the store holds it: ``run_id`` (None: not stored), ``comparison_id``, ``created_at``
            (when it ended: datetime or ISO text, UTC), ``framework``, ``mode``, ``repeat``, ``status``,
            ``reason``, ``device``, ``device_name``, ``metrics``, ``versions``, ``flags``, ``notes``,
            ``config``, ``env`` (dicts), ``error_tail``, ``curve`` (``step``, ``epoch``, ``loss``, ``time_s``
            [s since the run's process started]), ``epochs`` (``epoch``, ``train_loss``, ``val_loss``,
            ``val_accuracy``, ``time_s``), ``trace_dir`` (a profiled run's traces, or None).
        store_id, store: the store's identity (:func:`store_identity`) and path, as tags.

    Never raises for missing keys (they are left out).
    """
    config, metrics, notes = row.get("config") or {}, row.get("metrics") or {}, row.get("notes") or {}
    end_ms = _ms(row.get("created_at"))
    wall = _number(metrics.get("wall_s"))
    start_ms = end_ms - int(wall * 1000) if wall else end_ms
    figures = [(metric_key(k), x, end_ms, 0) for k, v in metrics.items() if (x := _number(v)) is not None]
    for point in row.get("curve") or ():
        loss, t = point.get("loss"), _number(point.get("time_s"))
        if loss is not None and not (isinstance(loss, float) and math.isnan(loss)) and point.get("step") is not None:
            figures.append(("curve/train_loss", float(loss), start_ms + int((t or 0) * 1000), int(point["step"])))
    for ep in row.get("epochs") or ():
        t = _number(ep.get("time_s"))
        for key in ("train_loss", "val_loss", "val_accuracy"):
            if (x := _number(ep.get(key))) is not None and ep.get("epoch") is not None:
                figures.append((f"epoch/{key}", x, start_ms + int((t or 0) * 1000), int(ep["epoch"])))
    params = _config_params(config) | {"mode": param_value(row.get("mode"))}
    params |= {metric_key(f"flags.{k}"): param_value(v) for k, v in (row.get("flags") or {}).items()}
    status = str(row.get("status") or "")
    tags = _common_tags(config, row.get("env") or {}, store_id, None if store is None else str(store),
                        row.get("comparison_id"))  # fmt: skip
    tags |= {"mlx_explore.kind": "run", "mlx_explore.status": status}
    for key in ("run_id", "framework", "mode", "repeat", "device", "device_name", "reason"):
        if row.get(key) not in (None, ""):
            tags[f"mlx_explore.{key}"] = _tag(str(row[key]))
    tags |= {metric_key(f"versions.{k}"): _tag(v) for k, v in (row.get("versions") or {}).items() if v}
    keep = ("run_id", "comparison_id", "created_at", "framework", "mode", "repeat", "model", "dataset", "status",
            "reason", "device", "device_name", "metrics", "versions", "flags", "notes", "config", "env", "error_tail",
            "curve", "epochs")  # fmt: skip
    results = jsonable({k: (str(row[k]) if k == "created_at" else row[k]) for k in keep if k in row})
    payload = RunPayload(run_name(row), start_ms, end_ms, _STATUS.get(status, "FAILED"), params, figures, tags, results)
    trace = row.get("trace_dir")
    if trace and Path(trace).is_dir():
        payload.folders.append((str(trace), "profile"))
    onnx = notes.get("onnx_path")
    if onnx and Path(onnx).is_file():
        payload.files.append((str(onnx), "model"))
    return payload


def comparison_payload(config: dict, env: dict, *, comparison_id: Any = None, store_id: str | None = None,
                       store: str | Path | None = None, start_ms: int | None = None) -> RunPayload:  # fmt: skip
    """A comparison's parent run: its config as params, its environment as tags (``mlx_explore.kind`` is
    ``comparison``); no metrics. Status and end time are set when it ends. Never raises."""
    now = int(time.time() * 1000)
    name = f"{config.get('model')} on {config.get('dataset')}" + (f" #{comparison_id}" if comparison_id else "")
    tags = _common_tags(config, env, store_id, None if store is None else str(store), comparison_id)
    tags["mlx_explore.kind"] = "comparison"
    frameworks = config.get("frameworks")
    if frameworks:
        tags["mlx_explore.frameworks"] = _tag(",".join(map(str, frameworks)))
    return RunPayload(name, start_ms or now, now, "RUNNING", _config_params(config), [], tags)


def row_from_record(rec: Any, config: dict, env: dict, comparison_id: int | None = None) -> dict:
    """A finished :class:`~mlx_explore.comparison.RunRecord` as the row :func:`run_payload` takes (the form
    the store keeps it in); ``config`` is the run's stored config (with its ``mode`` and ``tags``)."""
    row = rec.to_dict()
    row |= {"comparison_id": comparison_id, "created_at": _dt.datetime.now(_dt.timezone.utc), "config": config,
            "env": env, "model": config.get("model"), "dataset": config.get("dataset"),
            "trace_dir": (rec.profile or {}).get("trace_dir")}  # fmt: skip
    return row


# ------------------------------------------------------------------------------------------ export


def export_mlflow(db: str | Path | None = None, *, tracking_uri: str | None = None,
                  experiment: str = DEFAULT_EXPERIMENT, since: Any = None, run_ids: Any = None,
                  on_run: Any = None) -> ExportResult:  # fmt: skip
    """Log the stored runs to MLflow: a parent run per comparison, a nested child run per run; runs
    already there (same store, same run id, terminated) are skipped, so exporting twice logs nothing twice.

    Args:
        db: the results store (default ``$MLX_EXPLORE_DB`` or ``~/.mlx_explore/results.db``).
        tracking_uri: MLflow's tracking URI (:func:`resolve_tracking_uri`: default ``$MLFLOW_TRACKING_URI``,
            else ``sqlite:///`` ``mlflow.db`` beside the store).
        experiment: the MLflow experiment (created if missing; its artifacts beside an SQLite file).
        since: only runs stored at or after this ``datetime``/``date``/ISO 8601 text (naive: UTC).
        run_ids: only these run ids (one or a list).
        on_run: called ``on_run(run_id, mlflow_run_id_or_None)`` after each run is logged (None: skipped).

    Returns:
        :class:`ExportResult`.

    Raises:
        ValueError: a bad ``since`` or ``run_ids`` (message starts ``since:``/``run_ids:``); nothing was read.
        StoreError: the store does not exist or cannot be read; nothing was logged.
        TrackingError: MLflow missing (``reason="not installed"``), a bad URI or experiment name (``"bad
            input"``), an unreachable server (``"unreachable"``): raised before anything is created; a
            failure part way (``"failed"``/``"unreachable"``): the runs logged before it stay (export again to
            log the rest), the failing one was deleted again.
    """
    from .results import StoreError, _check_since, default_path, load_curves, load_epochs, load_profile_runs, load_runs

    if since is not None:
        _check_since(since)
    _mlflow()
    path = Path(db).expanduser() if db is not None else default_path()
    if not path.exists():
        raise StoreError(path, f"No results store at {path}: nothing to export (run mlx-explore compare first, or "
                               f"pass --db PATH / set MLX_EXPLORE_DB). Nothing was logged.")  # fmt: skip
    runs = load_runs(path, since=since, run_ids=run_ids)
    tracker = _Tracker(resolve_tracking_uri(tracking_uri, path), experiment)
    result = ExportResult(tracker.uri, tracker.experiment, tracker.experiment_id, tracker.artifact_location)
    store_id = store_identity(path)
    if runs.empty or store_id is None:
        return result
    done, parents, stale = tracker.existing(store_id)
    for mlflow_id in stale:
        with contextlib.suppress(Exception):
            tracker.delete(mlflow_id)
            result.removed.append(mlflow_id)
    fixed = {"run_id", "comparison_id", "created_at", "framework", "mode", "repeat", "model", "dataset", "status",
             "reason", "device", "device_name", "versions", "flags", "notes", "config", "env", "error_tail"}  # fmt: skip
    metric_columns = [c for c in runs.columns if c not in fixed]
    for comparison_id, group in runs.groupby("comparison_id", sort=True):
        comparison_id = int(comparison_id)
        ids = [int(i) for i in group["run_id"]]
        for i in ids:
            if i in done:
                result.skipped.append(i)
                result.run_ids[i] = done[i]
                if on_run is not None:
                    on_run(i, None)
        todo = group[[int(i) not in done for i in group["run_id"]]]
        if todo.empty:
            continue
        todo_ids = [int(i) for i in todo["run_id"]]
        curves = {k: g for k, g in load_curves(path, run_ids=todo_ids).groupby("run_id")}
        epochs = {k: g for k, g in load_epochs(path, run_ids=todo_ids).groupby("run_id")}
        profiled = load_profile_runs(path, run_ids=todo_ids)
        traces = {int(i): d for i, d in zip(profiled["run_id"], profiled["trace_dir"])}
        rows = []
        for rec in todo.to_dict("records"):
            rid = int(rec["run_id"])
            row = {k: rec[k] for k in fixed if k in rec}
            row["run_id"], row["comparison_id"], row["repeat"] = rid, comparison_id, _int(rec.get("repeat"))
            row["metrics"] = {c: rec[c] for c in metric_columns if _present(rec[c])}
            row["curve"] = _records(curves.get(rid), ("step", "epoch", "loss", "time_s"))
            row["epochs"] = _records(epochs.get(rid), ("epoch", "train_loss", "val_loss", "val_accuracy", "time_s"))
            row["trace_dir"] = traces.get(rid)
            rows.append(row)
        payloads = [run_payload(r, store_id=store_id, store=path.absolute()) for r in rows]
        parent = parents.get(comparison_id)
        created_parent = parent is None
        if created_parent:
            cfg, env = _comparison_row(path, comparison_id) or (rows[0]["config"], rows[0]["env"])
            parent = tracker.log(comparison_payload(cfg, env, comparison_id=comparison_id, store_id=store_id,
                                                    store=path.absolute(), start_ms=min(p.start_ms for p in payloads)))
            parents[comparison_id] = parent
            result.parents_created += 1
        else:
            result.parents_reused += 1
        for row, payload in zip(rows, payloads):
            mlflow_id = tracker.log(payload, parent)
            result.logged.append(row["run_id"])
            result.run_ids[row["run_id"]] = mlflow_id
            if on_run is not None:
                on_run(row["run_id"], mlflow_id)
        if created_parent:
            killed = any(r.get("status") == "interrupted" for r in rows)
            tracker.end(parent, "KILLED" if killed else "FINISHED", max(p.end_ms for p in payloads))
    return result


def _comparison_row(path: Path, comparison_id: int) -> tuple[dict, dict] | None:
    """A stored comparison's own ``(config, env)`` (its config keeps ``mode`` as given: ``both``...)."""
    from .results import _decode, _query

    found = _query(path, "SELECT config, env FROM comparisons WHERE id = ?", [comparison_id])
    if found is None or found.empty:
        return None
    return (_decode(path, found.iloc[0, 0], "comparison", comparison_id, "config"),
            _decode(path, found.iloc[0, 1], "comparison", comparison_id, "env"))  # fmt: skip


def _int(x: Any) -> int | None:
    try:
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else int(x)
    except (TypeError, ValueError):
        return None


def _present(x: Any) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _records(df: Any, columns: tuple[str, ...]) -> list[dict]:
    if df is None:
        return []
    return [{c: (None if not _present(v) else v) for c, v in zip(columns, values)}
            for values in df[list(columns)].itertuples(index=False, name=None)]  # fmt: skip


# ------------------------------------------------------------------------------------------ live


class MlflowSink:
    """Logs a comparison's runs to MLflow as each one ends (``runner.compare(..., mlflow=...)``).

    Created before anything runs, so a bad or unreachable URI fails the comparison before its first run
    (:class:`TrackingError`). The parent run is made with the first run that ends. A failure while logging
    (the server went away, a disk filled) stops logging, ``error`` says why, and the comparison goes on:
    its runs are still stored, and ``mlx-explore export mlflow`` logs the rest later (the run that failed
    was deleted again). A comparison with ``store=False`` logs runs with no ``mlx_explore.run_id`` tag, so
    they are never deduplicated against an export.

    Args:
        tracking_uri: as :func:`resolve_tracking_uri` (default beside ``store``).
        experiment: the MLflow experiment (default :data:`DEFAULT_EXPERIMENT`).
        config: the comparison's config as a dict (``RunConfig.model_dump(mode="json")``).
        tags: the comparison's ``tags`` (``compare(tags=...)``), or None.
        store: the results store the runs are written to, or None.

    Raises:
        TrackingError: as :func:`export_mlflow` before anything is created.
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str | None = None, *, config: dict,
                 tags: dict | None = None, store: str | Path | None = None):  # fmt: skip
        self.tracker = _Tracker(resolve_tracking_uri(tracking_uri, store), experiment or DEFAULT_EXPERIMENT)
        self.config = dict(config) | ({"tags": jsonable(tags)} if tags is not None else {})
        self.store = Path(store).expanduser().absolute() if store is not None else None
        self.store_id = store_identity(self.store) if self.store is not None else None
        self.parent_id: str | None = None
        self.run_ids: dict[str, str] = {}
        self.error: str | None = None
        self._interrupted = False

    @property
    def tracking_uri(self) -> str:
        return self.tracker.uri

    @property
    def experiment(self) -> str:
        return self.tracker.experiment

    def begin(self, env: dict, comparison_id: int | None = None) -> None:
        """Create the parent run now if it does not exist yet (TrackingError if that fails)."""
        if self.parent_id is None:
            payload = comparison_payload(self.config, env, comparison_id=comparison_id, store_id=self.store_id,
                                         store=self.store)  # fmt: skip
            self.parent_id = self.tracker.log(payload)

    def add(self, rec: Any, env: dict, comparison_id: int | None = None) -> None:
        """Log one ended run (call it after the run was stored, so ``rec.run_id`` is set); never raises
        an Exception (a failure sets :attr:`error` and stops logging)."""
        if self.error is not None:
            return
        self._interrupted = self._interrupted or rec.status == "interrupted"
        try:
            self.begin(env, comparison_id)
            config = self.config | {"mode": rec.mode}
            row = row_from_record(rec, config, env, comparison_id if rec.run_id is not None else None)
            payload = run_payload(row, store_id=self.store_id if rec.run_id is not None else None, store=self.store)
            self.run_ids[rec.label or rec.framework] = self.tracker.log(payload, self.parent_id)
        except Exception as e:
            self.error = str(e) if isinstance(e, TrackingError) else f"{type(e).__name__}: {_short(e)}"

    def close(self, interrupted: bool = False) -> None:
        """End the parent run: ``KILLED`` when the comparison was interrupted, else ``FINISHED``. Never
        raises an Exception (a failure sets :attr:`error` if none was set)."""
        if self.parent_id is None:
            return
        try:
            self.tracker.end(self.parent_id, "KILLED" if interrupted or self._interrupted else "FINISHED")
        except Exception as e:
            self.error = self.error or str(e)

    def summary(self) -> dict:
        """``tracking_uri``, ``experiment``, ``experiment_id``, ``parent_run_id``, ``run_ids`` (label -> MLflow
        run id), ``error``."""
        return {"tracking_uri": self.tracker.uri, "experiment": self.tracker.experiment,
                "experiment_id": self.tracker.experiment_id, "parent_run_id": self.parent_id,
                "run_ids": dict(self.run_ids), "error": self.error}  # fmt: skip
