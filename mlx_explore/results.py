"""The results store: every comparison and run, kept in one SQLite file and read back as pandas tables.

Design:

* One file, ``$MLX_EXPLORE_DB`` or ``~/.mlx_explore/results.db``, opened with the standard library
  :mod:`sqlite3`. Scalars a query filters or groups on (framework, model, status...) are columns;
  nested things (config, env, versions, flags, metrics, notes) are strict JSON in TEXT columns, so a
  new metric needs no schema change. Curves, epochs and profiles are long tables keyed by ``run_id``.
* Several processes may write at once (a CLI run while a notebook runs another comparison). The file
  uses write-ahead logging, where readers never block the one writer and writers queue on a busy
  timeout (https://www.sqlite.org/wal.html). Each run, with its curve and epochs, is written in one
  ``BEGIN IMMEDIATE ... COMMIT`` transaction, so a reader sees a run whole or not at all; a "database is
  locked" error is retried. WAL needs a local file system: it does not work over a network share.
* The schema version lives in ``PRAGMA user_version`` (https://www.sqlite.org/pragma.html#pragma_user_version)
  and, with ``created_by = "mlx-explore"``, in the ``meta`` table that every future schema keeps. A new
  or empty file gets the schema; two processes creating the same new file at once are safe, because
  the schema is made inside ``BEGIN IMMEDIATE`` after looking again at what is there.
* A file that exists but cannot be used (not SQLite, corrupt, from a newer mlx-explore, or somebody
  else's SQLite database) raises :class:`StoreError`. Nothing is ever reset, recreated or overwritten,
  and reading (``load_runs``...) never creates a file.
* Times are UTC ISO 8601 text with microseconds (``2026-05-09T07:35:25.123456+00:00``): fixed width,
  so text order is time order.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

SCHEMA_VERSION = 1
ENV_VAR = "MLX_EXPLORE_DB"

_CREATED_BY = "mlx-explore"
_BUSY_MS = 60_000
_ATTEMPTS = 5  # tries of a write that fails with "database is locked" despite the busy timeout
_AVOID = f"Nothing was changed. Move the file aside, or pass --db PATH / set {ENV_VAR} to use another file."

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS comparisons (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,  -- UTC ISO 8601
        config TEXT NOT NULL,      -- JSON
        env TEXT NOT NULL          -- JSON
    )""",
    """CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY,
        comparison_id INTEGER REFERENCES comparisons(id),
        created_at TEXT NOT NULL,  -- UTC ISO 8601
        framework TEXT NOT NULL,
        mode TEXT,
        repeat INTEGER,            -- 1-based
        model TEXT,
        dataset TEXT,
        status TEXT NOT NULL,      -- ok, failed, skipped, unsupported, diverged, timeout, interrupted
        reason TEXT,
        device TEXT,
        device_name TEXT,
        config TEXT,               -- JSON, from here on
        env TEXT,
        versions TEXT,
        flags TEXT,
        metrics TEXT,
        notes TEXT,
        error_tail TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS runs_lookup ON runs(model, dataset, framework, created_at)",
    """CREATE TABLE IF NOT EXISTS curves (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        step INTEGER, epoch INTEGER, loss REAL, time_s REAL
    )""",
    "CREATE INDEX IF NOT EXISTS curves_run ON curves(run_id)",
    """CREATE TABLE IF NOT EXISTS epochs (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        epoch INTEGER, train_loss REAL, val_loss REAL, val_accuracy REAL, time_s REAL
    )""",
    "CREATE INDEX IF NOT EXISTS epochs_run ON epochs(run_id)",
    """CREATE TABLE IF NOT EXISTS profiles (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        name TEXT, calls INTEGER, self_ms REAL, total_ms REAL, device TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS profiles_run ON profiles(run_id)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)",
)

_RUN_BASE = ("run_id", "comparison_id", "created_at", "framework", "mode", "repeat", "model", "dataset", "status",
             "reason", "device", "device_name")  # fmt: skip
_RUN_JSON = ("versions", "flags", "notes", "config", "env")
_RUN_COLUMNS = (*_RUN_BASE, *_RUN_JSON, "error_tail")
_CURVE_COLUMNS = ("run_id", "framework", "mode", "repeat", "step", "epoch", "loss", "time_s")
_EPOCH_COLUMNS = ("run_id", "framework", "mode", "repeat", "epoch", "train_loss", "val_loss", "val_accuracy", "time_s")


class StoreError(RuntimeError):
    """The store file cannot be used: not SQLite or corrupt, from a newer schema, or an SQLite database
    that is not an mlx-explore store. ``path`` is the file; the message says what is wrong and what to do.
    The file is left exactly as it was."""

    def __init__(self, path: Path, message: str):
        super().__init__(message)
        self.path = path


def default_path() -> Path:
    """The store's file: ``$MLX_EXPLORE_DB`` if set and not empty, else ``~/.mlx_explore/results.db`` (expanded)."""
    return Path(os.environ.get(ENV_VAR) or "~/.mlx_explore/results.db").expanduser()


class ResultsStore:
    """An open store that writes comparisons and runs. One per process and thread; close it (or use ``with``).

    Args:
        path: the SQLite file; ``None`` means :func:`default_path`. Missing parent folders are created,
            and a new or empty file gets the schema.

    Raises:
        StoreError: the file exists but cannot be used (see :class:`StoreError`).
        sqlite3.OperationalError: still "database is locked" after the busy timeout and retries.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path).expanduser() if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = _connect(self.path)
        try:
            fresh = _inspect(self._conn, self.path) == 0
            # Persistent once set; a file system without shared memory keeps its old mode, still correct.
            _retry(lambda: self._conn.execute("PRAGMA journal_mode=WAL").fetchone())
            if fresh:
                self._write(self._create_schema)
        except BaseException:
            self._conn.close()
            raise

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        if _inspect(conn, self.path) != 0:  # another process made it while this one waited for the lock
            return
        for statement in _SCHEMA:
            conn.execute(statement)
        meta = {"schema_version": str(SCHEMA_VERSION), "created_by": _CREATED_BY, "created_at": _now()}
        conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta.items())
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")  # part of the transaction

    def _write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn(conn)`` in one ``BEGIN IMMEDIATE ... COMMIT`` transaction, rolled back on any error."""

        def once():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(self._conn)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            return result

        return _retry(once)

    def begin_comparison(self, config: dict, env: dict) -> int:
        """Record a comparison; return its id.

        Args:
            config: the comparison's settings as plain JSON-able data (at least ``model`` and ``dataset``).
            env: the machine and software it runs on.
        """
        row = (_now(), _json(config), _json(env))
        return self._write(lambda c: c.execute("INSERT INTO comparisons (created_at, config, env) VALUES (?, ?, ?)",
                                               row).lastrowid)  # fmt: skip

    def add_run(self, comparison_id: int, run: dict) -> int:
        """Record one framework's run, its curve and its epochs in one transaction; return the run's id.

        ``run`` keys: ``framework`` and ``status`` (required, str); ``mode``, ``reason``, ``device``,
        ``device_name``, ``error_tail`` (str); ``repeat`` (int, 1-based); ``versions``, ``flags``,
        ``metrics``, ``notes`` (dicts); ``curve`` (dicts with ``step``, ``epoch``, ``loss``, ``time_s`` [s]);
        ``epochs`` (dicts with ``epoch``, ``train_loss``, ``val_loss``, ``val_accuracy``, ``time_s`` [s]).
        Optional keys default to empty. ``config``/``env`` default to the comparison's, and ``model``/
        ``dataset`` to its config's. NaN anywhere is stored as NULL (JSON ``null``); an infinite loss is kept.

        Raises:
            KeyError: ``framework`` or ``status`` is missing.
            ValueError: no comparison ``comparison_id``, or a curve/epoch value is not a number.
        """
        framework, status, comparison_id = run["framework"], run["status"], int(comparison_id)

        def insert(conn: sqlite3.Connection) -> int:
            found = conn.execute("SELECT config, env FROM comparisons WHERE id = ?", (comparison_id,)).fetchone()
            if found is None:
                raise ValueError(f"no comparison {comparison_id} in {self.path}")
            config = run["config"] if "config" in run else json.loads(found[0])
            row = {
                "comparison_id": comparison_id, "created_at": _now(), "framework": framework,
                "mode": run.get("mode"), "repeat": run.get("repeat"),
                "model": run.get("model", config.get("model")), "dataset": run.get("dataset", config.get("dataset")),
                "status": status, "reason": run.get("reason", ""), "device": run.get("device"),
                "device_name": run.get("device_name", ""), "config": _json(config),
                "env": _json(run["env"]) if "env" in run else found[1],
                **{k: _json(run.get(k) or {}) for k in ("versions", "flags", "metrics", "notes")},
                "error_tail": run.get("error_tail", ""),
            }  # fmt: skip
            run_id = conn.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                                  tuple(row.values())).lastrowid  # fmt: skip
            # Generators: a bad value raises inside the transaction, which then rolls back the run row too.
            curve = ((run_id, _int(p.get("step")), _int(p.get("epoch")), _num(p.get("loss"), keep_inf=True),
                      _num(p.get("time_s"))) for p in run.get("curve") or ())  # fmt: skip
            epochs = ((run_id, _int(e.get("epoch")), _num(e.get("train_loss")), _num(e.get("val_loss")),
                       _num(e.get("val_accuracy")), _num(e.get("time_s"))) for e in run.get("epochs") or ())
            conn.executemany("INSERT INTO curves VALUES (?, ?, ?, ?, ?)", curve)
            conn.executemany("INSERT INTO epochs VALUES (?, ?, ?, ?, ?, ?)", epochs)
            return run_id

        return self._write(insert)

    def add_profile(self, run_id: int, rows: Iterable[dict]) -> None:
        """Record a run's profiler table in one transaction: per op ``name``, ``calls``, ``self_ms`` and
        ``total_ms`` [ms], ``device``; a missing key is stored as NULL."""
        values = [(int(run_id), r.get("name"), _int(r.get("calls")), _num(r.get("self_ms")), _num(r.get("total_ms")),
                   r.get("device")) for r in rows]  # fmt: skip
        self._write(lambda c: c.executemany("INSERT INTO profiles VALUES (?, ?, ?, ?, ?, ?)", values))

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        self._conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------------------------------ reading


def load_runs(db: str | Path | None = None, *, model=None, dataset=None, framework=None, status=None, since=None,
              last: int | None = None) -> pd.DataFrame:  # fmt: skip
    """One row per run, in the order they were stored.

    Columns: ``run_id``, ``comparison_id``, ``created_at`` (UTC datetime), ``framework``, ``mode``, ``repeat``,
    ``model``, ``dataset``, ``status``, ``reason``, ``device``, ``device_name``; then one column per metric
    found in any run (NaN where a run lacks it or stored null); then ``versions``, ``flags``, ``notes``,
    ``config``, ``env`` as dicts, and ``error_tail``.

    Args:
        db: the store's file; ``None`` means :func:`default_path`. A missing file gives an empty table
            with the fixed columns (no file is created).
        model, dataset, framework, status: keep runs whose value is this string or in this list.
        since: keep runs stored at or after this ``datetime``, ``date`` or ISO 8601 string (naive means UTC).
        last: keep only the ``last`` most recent of the matching runs.

    Raises:
        StoreError: the file exists but cannot be used.
        ValueError: ``last`` is negative.
    """
    if last is not None and last < 0:
        raise ValueError(f"last must be >= 0, got {last}")
    where, params = _where(model=model, dataset=dataset, framework=framework, status=status, since=since)
    columns = ", ".join("r." + c for c in (*_RUN_BASE[1:], "metrics", *_RUN_JSON, "error_tail"))
    sql = f"SELECT r.id AS run_id, {columns} FROM runs r{where} ORDER BY r.id DESC"
    if last is not None:
        sql, params = sql + " LIMIT ?", [*params, int(last)]
    df = _query(db, f"SELECT * FROM ({sql}) ORDER BY run_id", params)
    if df is None:
        return pd.DataFrame(columns=list(_RUN_COLUMNS))
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True, format="ISO8601")
    metrics = [json.loads(m) if m else {} for m in df.pop("metrics")]
    names = dict.fromkeys(k for m in metrics for k in m)
    table = pd.DataFrame(
        {(k if k not in _RUN_COLUMNS else f"metric_{k}"): [np.nan if m.get(k) is None else m[k] for m in metrics]
         for k in names}, index=df.index)  # fmt: skip
    for column in _RUN_JSON:
        df[column] = [json.loads(v) if v else {} for v in df[column]]
    return pd.concat([df[list(_RUN_BASE)], table, df[[*_RUN_JSON, "error_tail"]]], axis=1)


def load_curves(db: str | Path | None = None, *, run_ids=None, model=None, dataset=None, framework=None, status=None,
                since=None) -> pd.DataFrame:  # fmt: skip
    """The loss curves: columns ``run_id``, ``framework``, ``mode``, ``repeat``, ``step``, ``epoch``, ``loss``
    (NaN where it was NaN), ``time_s`` [s since the run's process started], ordered by run and step.
    ``run_ids`` keeps those runs; other filters as in :func:`load_runs`. Raises :class:`StoreError`."""
    return _long(db, "curves", _CURVE_COLUMNS, "step", run_ids=run_ids, model=model, dataset=dataset,
                 framework=framework, status=status, since=since)  # fmt: skip


def load_epochs(db: str | Path | None = None, *, run_ids=None, model=None, dataset=None, framework=None, status=None,
                since=None) -> pd.DataFrame:  # fmt: skip
    """Per-epoch results: columns ``run_id``, ``framework``, ``mode``, ``repeat``, ``epoch``, ``train_loss``,
    ``val_loss``, ``val_accuracy`` [0-1], ``time_s`` [s], ordered by run and epoch. Filters as in
    :func:`load_curves`. Raises :class:`StoreError`."""
    return _long(db, "epochs", _EPOCH_COLUMNS, "epoch", run_ids=run_ids, model=model, dataset=dataset,
                 framework=framework, status=status, since=since)  # fmt: skip


def _long(db, table: str, columns: tuple[str, ...], order: str, **filters) -> pd.DataFrame:
    where, params = _where(**filters)
    select = ", ".join(("r." if c in ("framework", "mode", "repeat") else "t.") + c for c in columns)
    sql = f"SELECT {select} FROM {table} t JOIN runs r ON r.id = t.run_id{where} ORDER BY t.run_id, t.{order}"
    df = _query(db, sql, params)
    if df is None:
        return pd.DataFrame(columns=list(columns))
    numeric = [c for c in columns if c not in ("run_id", "framework", "mode", "repeat", "step", "epoch")]
    return df.astype({c: float for c in numeric})  # a column of only NULLs would otherwise be objects


# ------------------------------------------------------------------------------------------ helpers


def _connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """Open ``path`` (without ``create``, a missing file is an error rather than a new empty one)."""
    try:
        if create:
            conn = sqlite3.connect(path, timeout=_BUSY_MS / 1000, isolation_level=None)
        else:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=_BUSY_MS / 1000,
                                   isolation_level=None)  # fmt: skip
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.OperationalError as e:
        raise StoreError(path, f"Cannot open results store {path}: {e}. {_AVOID}") from e
    return conn


def _inspect(conn: sqlite3.Connection, path: Path) -> int:
    """The file's schema version, 0 for an empty file that needs the schema; raise StoreError if it cannot be used."""
    own = not conn.in_transaction  # one read transaction: a consistent snapshot while another process creates it
    try:
        if own:
            conn.execute("BEGIN")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            by = conn.execute("SELECT value FROM meta WHERE key = 'created_by'").fetchone() if "meta" in tables else None
        finally:
            if own and conn.in_transaction:
                conn.execute("COMMIT")
    except sqlite3.DatabaseError as e:
        if _busy(e):
            raise
        raise StoreError(path, f"Results store {path} is not a usable SQLite database ({e}): it is corrupt or "
                               f"not a database at all. {_AVOID}") from e  # fmt: skip
    if version == 0 and not tables:
        return 0
    if version == 0 or by is None or by[0] != _CREATED_BY:
        raise StoreError(path, f"{path} is an SQLite database but not an mlx-explore results store "
                               f"(tables: {', '.join(tables) or 'none'}). {_AVOID}")  # fmt: skip
    if version > SCHEMA_VERSION:
        raise StoreError(path, f"Results store {path} has schema version {version}, newer than the version "
                               f"{SCHEMA_VERSION} this mlx-explore knows: upgrade mlx-explore (pip install -U "
                               f"mlx-explore), or pass --db PATH / set {ENV_VAR} to use another file. Nothing was "
                               f"changed.")  # fmt: skip
    return version


def _query(db: str | Path | None, sql: str, params: list) -> pd.DataFrame | None:
    """Run a read-only query; ``None`` when the file is missing or has no schema yet."""
    path = Path(db).expanduser() if db is not None else default_path()
    if not path.exists():
        return None
    conn = _connect(path, create=False)
    try:
        if _inspect(conn, path) == 0:
            return None
        return pd.read_sql_query(sql, conn, params=params)
    finally:
        conn.close()


def _where(*, run_ids=None, model=None, dataset=None, framework=None, status=None, since=None) -> tuple[str, list]:
    """An SQL ``WHERE`` clause on ``runs r`` and its parameters."""
    clauses, params = [], []
    ids = None if run_ids is None else [int(i) for i in ([run_ids] if np.ndim(run_ids) == 0 else run_ids)]
    for column, value in (("id", ids), ("model", model), ("dataset", dataset), ("framework", framework),
                          ("status", status)):  # fmt: skip
        if value is not None:
            values = [value] if isinstance(value, str) else list(value)
            clauses.append(f"r.{column} IN ({', '.join('?' * len(values))})")
            params += values
    if since is not None:
        ts = pd.Timestamp(since)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        clauses.append("r.created_at >= ?")
        params.append(_iso(ts.to_pydatetime(warn=False)))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _retry(fn: Callable[[], Any]) -> Any:
    """``fn()``, tried again with a growing pause while SQLite says the database is locked or busy."""
    for attempt in range(_ATTEMPTS):
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if not _busy(e) or attempt == _ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2**attempt)


def _busy(e: Exception) -> bool:
    return isinstance(e, sqlite3.OperationalError) and ("locked" in str(e) or "busy" in str(e))


def _iso(t: _dt.datetime) -> str:
    return t.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _now() -> str:
    return _iso(_dt.datetime.now(_dt.timezone.utc))


def _plain(x: Any) -> Any:
    """``x`` with NumPy values made Python ones and NaN/inf made ``None``, recursively."""
    if isinstance(x, np.ndarray):
        x = x.tolist()
    elif isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _json(x: Any) -> str:
    """Strict JSON (no ``NaN`` tokens); anything else JSON cannot hold is written as its ``str``."""
    return json.dumps(_plain(x), allow_nan=False, default=str)


def _num(x: Any, *, keep_inf: bool = False) -> float | None:
    if x is None:
        return None
    f = float(x)
    return None if math.isnan(f) or (math.isinf(f) and not keep_inf) else f


def _int(x: Any) -> int | None:
    return None if x is None else int(x)
