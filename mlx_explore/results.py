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
  else's SQLite database), a folder given as the file, or a path under a file raises
  :class:`StoreError`. Nothing is ever reset, recreated or overwritten, and reading (``load_runs``...)
  never creates a file.
* Writing can fail: a read-only file, a read-only folder (WAL must create ``NAME-wal`` and ``NAME-shm``
  next to the file), a read-only file system, a full disk, an I/O error, or a lock held past the busy
  timeout and retries. :class:`ResultsStore` then raises :class:`StoreWriteError` (a
  :class:`StoreError`) whose message says which of these it is, for which path, and what to do. Opening
  a store checks that it can be written, so a read-only store is refused before a comparison runs. A
  failed write is rolled back whole: none of it is stored, runs stored before it stay intact and the
  store stays readable. Only "locked"/"busy" is retried; a full disk or a read-only file is not.
* Reading works on a store this user cannot write. A read-only file in a writable folder is read
  normally (SQLite opens it read-only and honours the write-ahead log and its locks). In a read-only
  folder without its ``-wal``/``-shm`` files SQLite cannot open a WAL database at all, so the store is
  read with ``immutable=1`` instead, which needs no side files and takes no locks. That is correct only
  while nobody can change the file, which is why it is used only then: no ``-wal`` file holds
  committed rows (``immutable`` ignores it), and the file's identity, size and modification time are
  the same after the read as before it, else the read is done again. ``mode=ro`` alone would not do:
  it still needs the ``-shm`` file, and where it can create it, it leaves it and an empty ``-wal``
  behind, while the read-write connection used normally removes them as it closes.
* Read-only opening. With ``MLX_EXPLORE_READ_ONLY=1`` (:data:`READ_ONLY_VAR`; :func:`read_only` sets it
  for a ``with`` block) every read opens the file with SQLite's ``mode=ro`` instead of ``mode=rw`` (and
  still with ``immutable=1`` in a read-only folder, as above), so reading cannot write the store at all:
  not even the checkpoint with which a ``mode=rw`` connection, closing last, folds a write-ahead log left by
  a writer that crashed into the file. The price is the one said above: where SQLite can create
  ``NAME-wal`` and ``NAME-shm`` beside the file, a ``mode=ro`` read leaves them there (the next writer
  removes them). While it is set, :class:`ResultsStore` refuses to open (:class:`StoreWriteError`, reason
  ``"read-only"``), before it creates or touches anything. Meant for a dashboard (Voila) that shows a
  store others write. ``1`` turns it on, ``0`` or empty (or unset) off; any other value is a
  :class:`StoreError`, so that a misspelt setting never leaves a store writable unnoticed.
* Summaries of many runs read only what they show, in SQL: :func:`load_metrics` (trends) takes a few
  metrics out of each run's JSON with ``json_extract``, :func:`load_tags` (the suite's sessions) a few
  entries of each run's ``config["tags"]`` and ``env``, :func:`latest_profile_runs` the newest profile per
  framework; none of them reads a curve or decodes a run's whole JSON in Python. Indices: ``runs_lookup``
  (model, dataset, framework, created_at) and ``runs_status`` (status, created_at) on runs; ``curves_run``,
  ``epochs_run``, ``profiles_run`` (run_id) on the long tables. They are made with the schema; a store made before an
  index existed gets it the next time it is opened for writing (``CREATE INDEX IF NOT EXISTS`` in the
  opening transaction, no schema version change), and reading works with or without them.
* Reading a run whose stored JSON cannot be decoded raises :class:`StoreError` naming the run and the
  column; a bad filter (``last``, ``since``) raises :class:`ValueError` starting with the argument's name.
* Times are UTC ISO 8601 text with microseconds (``2026-05-09T07:35:25.123456+00:00``): fixed width,
  so text order is time order.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import math
import operator
import os
import re
import shutil
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from .jsonable import jsonable

SCHEMA_VERSION = 2
ENV_VAR = "MLX_EXPLORE_DB"
#: ``1``: open the store read-only (reads with SQLite ``mode=ro``, :class:`ResultsStore` refused); see the
#: module docstring and :func:`read_only`.
READ_ONLY_VAR = "MLX_EXPLORE_READ_ONLY"
MAX_LAST = 2**63 - 1  # the largest ``last`` load_runs takes: SQLite's LIMIT is a signed 64-bit integer

_CREATED_BY = "mlx-explore"
_BUSY_MS = 60_000
_ATTEMPTS = 5  # tries of a write that fails with "database is locked" despite the busy timeout
_ELSEWHERE = f"pass --db PATH / set {ENV_VAR} to use another file"
_AVOID = f"Nothing was changed. Move the file aside, or {_ELSEWHERE}."

#: Version 2: a run's profile (``profiling.Profile``): its normalized op table, one row per op, and one
#: summary row per profiled run.
_PROFILE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS profiles (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        op TEXT, category TEXT, calls_per_step REAL, self_ms_per_step REAL, share_of_step REAL
    )""",
    "CREATE INDEX IF NOT EXISTS profiles_run ON profiles(run_id)",
    """CREATE TABLE IF NOT EXISTS profile_runs (
        run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
        steps INTEGER, step_ms REAL, unprofiled_step_ms REAL, ops_ms REAL, device TEXT, trace_dir TEXT,
        native TEXT, unmapped TEXT, notes TEXT
    )""",
)

#: Indices added after the table they index, within a schema version: made with the schema, and on an older
#: store of the same version when it is next opened for writing (``_upgrade``). ``runs_status``: the trend
#: query (:func:`load_metrics`: ``status = 'ok'``, optionally ``created_at >= since``).
_RUN_INDEXES = ("CREATE INDEX IF NOT EXISTS runs_status ON runs(status, created_at)",)

#: Tables added within schema version 2, made like :data:`_RUN_INDEXES` (with the schema, and on an older store
#: of the same version when it is next opened for writing): ``regress_checks``, the verdicts of
#: ``mlx-explore regress`` (``regress.Check``), one row per check and session, for a regression history.
_ADDED_TABLES = (
    """CREATE TABLE IF NOT EXISTS regress_checks (
        id INTEGER PRIMARY KEY,
        session TEXT NOT NULL,     -- one regress command
        created_at TEXT NOT NULL,  -- UTC ISO 8601
        name TEXT NOT NULL, family TEXT, value REAL, unit TEXT, baseline REAL, tolerance REAL,
        verdict TEXT NOT NULL, detail TEXT, machine_class TEXT, size TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS regress_checks_name ON regress_checks(name, created_at)",
)
_CHECK_COLUMNS = ("session", "created_at", "name", "family", "value", "unit", "baseline", "tolerance", "verdict",
                  "detail", "machine_class", "size")  # fmt: skip

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
    *_RUN_INDEXES,
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
    *_PROFILE_SCHEMA,
    *_ADDED_TABLES,
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)",
)

_RUN_BASE = ("run_id", "comparison_id", "created_at", "framework", "mode", "repeat", "model", "dataset", "status",
             "reason", "device", "device_name")  # fmt: skip
_RUN_JSON = ("versions", "flags", "notes", "config", "env")
_RUN_COLUMNS = (*_RUN_BASE, *_RUN_JSON, "error_tail")
_CURVE_COLUMNS = ("run_id", "framework", "mode", "repeat", "step", "epoch", "loss", "time_s")
_PROFILE_COLUMNS = ("run_id", "framework", "mode", "repeat", "op", "category", "calls_per_step", "self_ms_per_step",
                    "share_of_step")  # fmt: skip
_PROFILE_RUN_COLUMNS = ("run_id", "framework", "mode", "repeat", "steps", "step_ms", "unprofiled_step_ms", "ops_ms",
                        "device", "trace_dir", "native", "unmapped", "notes")  # fmt: skip
_EPOCH_COLUMNS = ("run_id", "framework", "mode", "repeat", "epoch", "train_loss", "val_loss", "val_accuracy", "time_s")


class StoreError(RuntimeError):
    """The store cannot be used: the file is not SQLite or is corrupt, is from a newer schema, is an SQLite
    database that is not an mlx-explore store, is a folder, lies under a file, holds a row whose JSON
    cannot be read, or cannot be read or written (see :class:`StoreWriteError`). ``path`` is the store's
    file; the message names it, says what is wrong and what to do. The file is left exactly as it was."""

    def __init__(self, path: Path, message: str):
        super().__init__(message)
        self.path = path


class StoreWriteError(StoreError):
    """The store could not be written: a read-only file, folder or file system, a full disk, an I/O
    error, a corrupt file, or a lock another process held past the busy timeout and retries. Raised by
    :class:`ResultsStore` (when opening it, and by ``begin_comparison``, ``add_run``, ``add_profile``).
    The failed write was rolled back whole, so nothing of it is stored; what was stored before is intact
    and can still be read (after an I/O error or corruption, check the disk). ``reason`` is one of
    ``"read-only"``, ``"disk full"``, ``"I/O error"``, ``"locked"``, ``"corrupt"``, ``"other"``."""

    def __init__(self, path: Path, message: str, reason: str):
        super().__init__(path, message)
        self.reason = reason


def default_path() -> Path:
    """The store's file: ``$MLX_EXPLORE_DB`` if set and not empty, else ``~/.mlx_explore/results.db`` (expanded)."""
    return Path(os.environ.get(ENV_VAR) or "~/.mlx_explore/results.db").expanduser()


@contextmanager
def read_only() -> Iterator[None]:
    """Inside the ``with`` block, open every results store read-only: ``$MLX_EXPLORE_READ_ONLY`` is ``1``
    (:data:`READ_ONLY_VAR`), and its earlier value (or its absence) is restored on leaving, even on an error.

    Reads (:func:`load_runs`, :func:`load_metrics`...) then use SQLite's ``mode=ro`` and opening a
    :class:`ResultsStore` raises :class:`StoreWriteError`; a store opened before the block stays writable.
    It sets the process's environment, so it holds for every thread, and for child processes started inside.
    Example::

        with results.read_only():
            runs = results.load_metrics(db)   # cannot write db
    """
    saved = os.environ.get(READ_ONLY_VAR)
    os.environ[READ_ONLY_VAR] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(READ_ONLY_VAR, None)
        else:
            os.environ[READ_ONLY_VAR] = saved


def _read_only_requested(path: Path) -> bool:
    """``$MLX_EXPLORE_READ_ONLY`` is ``1``; False when it is ``0``, empty or unset; StoreError otherwise."""
    value = os.environ.get(READ_ONLY_VAR, "").strip()
    if value in ("", "0"):
        return False
    if value == "1":
        return True
    raise StoreError(path, f"{READ_ONLY_VAR}={value!r} is not understood: set it to 1 to open results stores "
                           f"read-only, or to 0 (or unset it) to read and write them. {path} was not opened.")


class ResultsStore:
    """An open store that writes comparisons and runs. One per process and thread; close it (or use ``with``).

    Args:
        path: the SQLite file; ``None`` means :func:`default_path`. Missing parent folders are created,
            and a new or empty file gets the schema.

    Raises:
        StoreError: the path is a folder or lies under a file, or the file exists but cannot be used
            (see :class:`StoreError`).
        StoreWriteError: the store cannot be written (read-only file, folder or file system, full disk,
            I/O error, still locked after the busy timeout and retries); checked here, before anything
            is recorded. Also (reason ``"read-only"``) while ``$MLX_EXPLORE_READ_ONLY`` is ``1``
            (:data:`READ_ONLY_VAR`, :func:`read_only`), raised before the file or its folder is touched.
            Nothing was changed.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path).expanduser() if path is not None else default_path()
        if _read_only_requested(self.path):
            raise StoreWriteError(self.path, f"Results store {self.path} was not opened for writing: "
                                             f"{READ_ONLY_VAR}=1 in this process's environment opens every "
                                             f"results store read-only. Reading it still works (load_runs, "
                                             f"mlx-explore results --db {self.path}). To write, unset "
                                             f"{READ_ONLY_VAR} (or set it to 0), e.g. `env -u {READ_ONLY_VAR} "
                                             f"mlx-explore ...`. Nothing was changed.", "read-only")  # fmt: skip
        _make_folder(self.path)
        if self.path.is_dir():
            raise StoreError(self.path, _is_folder(self.path))
        try:
            self._conn = _connect(self.path)
        except sqlite3.Error as e:
            raise _write_error(self.path, e, "opening it", opening=True) from e
        try:
            try:
                fresh = _inspect(self._conn, self.path) == 0
                # Persistent once set; a file system without shared memory keeps its old mode, still correct.
                _retry(lambda: self._conn.execute("PRAGMA journal_mode=WAL").fetchone())
            except sqlite3.Error as e:
                raise _write_error(self.path, e, "opening it", opening=True) from e
            # Either way a write transaction: a store this process cannot write is refused now, not after a
            # comparison has run. ``DELETE ... WHERE 0`` takes the write lock and changes nothing.
            self._write(self._create_schema if fresh else self._upgrade, "opening it", opening=True)
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

    def _upgrade(self, conn: sqlite3.Connection) -> None:
        """Bring an older schema up to :data:`SCHEMA_VERSION` (inside the opening write transaction, which
        also proves the store writable). Version 1 -> 2: its ``profiles`` table (never filled by
        mlx-explore 1) is kept as ``profiles_v1`` if it holds rows, else dropped; the profile tables of
        version 2 are made. Any version: the indices of :data:`_RUN_INDEXES` a store lacks are made."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            conn.execute("DELETE FROM meta WHERE 0")  # takes the write lock, changes nothing
            for statement in (*_RUN_INDEXES, *_ADDED_TABLES):  # a store made before they existed gets them now
                conn.execute(statement)
            return
        if version == 1:
            columns = [r[1] for r in conn.execute("PRAGMA table_info(profiles)")]
            if "op" not in columns:
                if conn.execute("SELECT count(*) FROM profiles").fetchone()[0]:
                    conn.execute("ALTER TABLE profiles RENAME TO profiles_v1")
                    conn.execute("DROP INDEX IF EXISTS profiles_run")
                else:
                    conn.execute("DROP TABLE profiles")
            for statement in _PROFILE_SCHEMA:
                conn.execute(statement)
        for statement in (*_RUN_INDEXES, *_ADDED_TABLES):
            conn.execute(statement)
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _write(self, fn: Callable[[sqlite3.Connection], Any], doing: str, *, opening: bool = False) -> Any:
        """Run ``fn(conn)`` in one ``BEGIN IMMEDIATE ... COMMIT`` transaction, rolled back on any error;
        an SQLite error becomes :class:`StoreWriteError` (``doing`` says what was being written)."""

        def once():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(self._conn)
                self._conn.execute("COMMIT")
            except BaseException:
                # SQLite may already have rolled back (a full disk or an I/O error can end the transaction).
                if self._conn.in_transaction:
                    try:
                        self._conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # the first error is the one to report; an unfinished WAL frame is never read
                raise
            return result

        try:
            return _retry(once)
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise  # a misuse (closed store, a value SQLite cannot bind), not a fault of the store
        except sqlite3.Error as e:
            raise _write_error(self.path, e, doing, opening=opening) from e

    def begin_comparison(self, config: dict, env: dict) -> int:
        """Record a comparison; return its id.

        Args:
            config: the comparison's settings as plain JSON-able data (at least ``model`` and ``dataset``).
            env: the machine and software it runs on.

        Raises:
            StoreWriteError: the store could not be written; nothing was stored.
        """
        row = (_now(), _json(config), _json(env))
        return self._write(lambda c: c.execute("INSERT INTO comparisons (created_at, config, env) VALUES (?, ?, ?)",
                                               row).lastrowid, "recording a comparison")  # fmt: skip

    def add_run(self, comparison_id: int, run: dict) -> int:
        """Record one framework's run, its curve and its epochs in one transaction; return the run's id.

        ``run`` keys: ``framework`` and ``status`` (required, str); ``mode``, ``reason``, ``device``,
        ``device_name``, ``error_tail``, ``model``, ``dataset`` (str or None); ``repeat`` (int, 1-based);
        ``versions``, ``flags``, ``metrics``, ``notes`` (dicts); ``curve`` (dicts with ``step``, ``epoch``,
        ``loss``, ``time_s`` [s]); ``epochs`` (dicts with ``epoch``, ``train_loss``, ``val_loss``,
        ``val_accuracy``, ``time_s`` [s]). Optional keys default to empty. ``config``/``env`` default to the
        comparison's, and ``model``/``dataset`` to its config's. NaN anywhere is stored as NULL (JSON
        ``null``); an infinite loss is kept. Other keys are ignored.

        Raises:
            KeyError: ``framework`` or ``status`` is missing.
            ValueError: no comparison ``comparison_id``, a text key holds something else than text, or a
                curve/epoch value is not a number. Nothing was stored.
            StoreError: the comparison's stored config cannot be read (corrupt JSON). Nothing was stored.
            StoreWriteError: the store could not be written (disk full, read-only, I/O error, locked);
                nothing of this run was stored, runs stored before are intact.
        """
        framework, status, comparison_id = run["framework"], run["status"], int(comparison_id)
        for key in ("framework", "status"):
            if not isinstance(run[key], str):
                raise ValueError(f"run[{key!r}]: expected text, got {type(run[key]).__name__} {run[key]!r}")
        for key in ("mode", "reason", "device", "device_name", "error_tail", "model", "dataset"):
            if run.get(key) is not None and not isinstance(run[key], str):
                raise ValueError(f"run[{key!r}]: expected text or None, got {type(run[key]).__name__} {run[key]!r}")

        def insert(conn: sqlite3.Connection) -> int:
            found = conn.execute("SELECT config, env FROM comparisons WHERE id = ?", (comparison_id,)).fetchone()
            if found is None:
                raise ValueError(f"no comparison {comparison_id} in {self.path}")
            config = run["config"] if "config" in run else _decode(self.path, found[0], "comparison", comparison_id,
                                                                   "config")  # fmt: skip
            row = {
                "comparison_id": comparison_id, "created_at": _now(), "framework": framework,
                "mode": run.get("mode"), "repeat": _int(run.get("repeat")),
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

        return self._write(insert, f"storing the {framework} run of comparison {comparison_id}")

    def set_note(self, run_id: int, key: str, value: str) -> None:
        """Set ``notes[key] = value`` of a stored run (a file the run made, once it has its final path).

        Raises:
            ValueError: no run ``run_id``.
            StoreWriteError: the store could not be written.
        """

        def update(conn: sqlite3.Connection) -> None:
            found = conn.execute("SELECT notes FROM runs WHERE id = ?", (int(run_id),)).fetchone()
            if found is None:
                raise ValueError(f"no run {run_id} in {self.path}")
            notes = _decode(self.path, found[0], "run", run_id, "notes") or {}
            notes[key] = value
            conn.execute("UPDATE runs SET notes = ? WHERE id = ?", (_json(notes), int(run_id)))

        self._write(update, f"updating the notes of run {run_id}")

    def add_profile(self, run_id: int, profile: dict) -> None:
        """Record a run's profile in one transaction: its op table and its summary.

        Args:
            run_id: the profiled run.
            profile: ``profiling.Profile.to_dict()``: ``rows`` (dicts with ``op``, ``category``,
                ``calls_per_step``, ``self_ms_per_step`` [ms], ``share_of_step`` [0-1]), ``steps``,
                ``step_ms`` and ``unprofiled_step_ms`` [ms], ``ops_ms`` [ms], ``device``; optional
                ``trace_dir`` (the folder of the run's traces), ``native`` (trace files), ``unmapped``
                (op names no category rule maps) and ``notes``. A run has at most one profile.

        Raises:
            ValueError: no run ``run_id``, the run already has a profile, a row without ``op`` or
                ``category``, or a figure that is not a number. Nothing was stored.
            StoreWriteError: the store could not be written; nothing of this profile was stored.
        """
        run_id = int(run_id)
        try:
            values = [(run_id, str(r["op"]), str(r["category"]), _num(r.get("calls_per_step")),
                       _num(r.get("self_ms_per_step")), _num(r.get("share_of_step"))) for r in profile["rows"]]  # fmt: skip
        except KeyError as e:
            raise ValueError(f"profile rows: every row needs 'op' and 'category' (missing {e})") from None
        summary = (run_id, _int(profile.get("steps")), _num(profile.get("step_ms")), _num(profile.get("unprofiled_step_ms")),
                   _num(profile.get("ops_ms")), profile.get("device"), profile.get("trace_dir"),
                   _json(profile.get("native") or []), _json(profile.get("unmapped") or []), _json(profile.get("notes") or []))  # fmt: skip

        def insert(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise ValueError(f"no run {run_id} in {self.path}")
            if conn.execute("SELECT 1 FROM profile_runs WHERE run_id = ?", (run_id,)).fetchone() is not None:
                raise ValueError(f"run {run_id} in {self.path} already has a profile")
            conn.execute("INSERT INTO profile_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", summary)
            conn.executemany("INSERT INTO profiles VALUES (?, ?, ?, ?, ?, ?)", values)

        self._write(insert, f"storing the profile of run {run_id}")

    def add_checks(self, session: str, checks: list[dict], *, machine_class: str | None = None,
                   size: str | None = None) -> int:
        """Record one ``mlx-explore regress`` session's verdicts in one transaction.

        Args:
            session: the session's id (one command). checks: ``regress.Check.model_dump()`` dicts (``name``,
                ``family``, ``value``, ``unit``, ``baseline``, ``tolerance``, ``verdict``, ``detail``).
            machine_class, size: what the checks ran on and at.

        Returns:
            How many rows were stored.

        Raises:
            ValueError: a check without ``name`` or ``verdict``; nothing was stored.
            StoreWriteError: the store could not be written; nothing of this session was stored.
        """
        now = _now()
        try:
            rows = [(str(session), now, str(c["name"]), c.get("family"), _num(c.get("value")), c.get("unit"),
                     _num(c.get("baseline")), _num(c.get("tolerance")), str(c["verdict"]), c.get("detail"),
                     machine_class, size) for c in checks]  # fmt: skip
        except KeyError as e:
            raise ValueError(f"checks: every check needs 'name' and 'verdict' (missing {e})") from None

        def insert(conn: sqlite3.Connection) -> int:
            conn.executemany(f"INSERT INTO regress_checks ({', '.join(_CHECK_COLUMNS)}) VALUES "
                             f"({', '.join('?' * len(_CHECK_COLUMNS))})", rows)  # fmt: skip
            return len(rows)

        return self._write(insert, f"storing the regression checks of session {session}")

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        self._conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------------------------------ reading


def load_runs(db: str | Path | None = None, *, run_ids=None, model=None, dataset=None, framework=None, status=None,
              since=None, last: int | None = None) -> pd.DataFrame:  # fmt: skip
    """One row per run, in the order they were stored.

    Columns: ``run_id``, ``comparison_id``, ``created_at`` (UTC datetime), ``framework``, ``mode``, ``repeat``,
    ``model``, ``dataset``, ``status``, ``reason``, ``device``, ``device_name``; then one column per metric
    found in any run (NaN where a run lacks it or stored null); then ``versions``, ``flags``, ``notes``,
    ``config``, ``env`` as dicts, and ``error_tail``.

    Reading works on a store this user cannot write (read-only file, folder or file system), changes
    nothing and never creates the file.

    Args:
        db: the store's file; ``None`` means :func:`default_path`. A missing file gives an empty table
            with the fixed columns (no file is created).
        run_ids: keep these runs (a run id or a list of them); only their rows are read and decoded.
        model, dataset, framework, status: keep runs whose value is this string or in this list.
        since: keep runs stored at or after this ``datetime``, ``date`` or ISO 8601 string (naive means UTC).
        last: keep only the ``last`` most recent of the matching runs, an int from 0 to :data:`MAX_LAST`.

    Raises:
        ValueError: ``last`` is not an int from 0 to :data:`MAX_LAST` (message starts ``last:``),
            ``since`` is not a date/time (message starts ``since:``), or ``run_ids`` holds something else
            than run ids (message starts ``run_ids:``); raised before the file is opened.
        StoreError: the file cannot be used or read, or a stored run's JSON cannot be decoded (the
            message names the run id and column), or ``$MLX_EXPLORE_READ_ONLY`` holds a value other than
            ``1``, ``0`` or empty.
    """
    if last is not None:
        last = _check_last(last)
    where, params = _where(run_ids=run_ids, model=model, dataset=dataset, framework=framework, status=status,
                           since=since)  # fmt: skip
    columns = ", ".join("r." + c for c in (*_RUN_BASE[1:], "metrics", *_RUN_JSON, "error_tail"))
    sql = f"SELECT r.id AS run_id, {columns} FROM runs r{where} ORDER BY r.id DESC"
    if last is not None:
        sql, params = sql + " LIMIT ?", [*params, last]
    path = _resolve(db)
    df = _query(path, f"SELECT * FROM ({sql}) ORDER BY run_id", params)
    if df is None:
        return pd.DataFrame(columns=list(_RUN_COLUMNS))
    df["created_at"] = _times(path, df)
    ids = df["run_id"].tolist()
    metrics = [_decode(path, m, "run", i, "metrics") for i, m in zip(ids, df.pop("metrics"))]
    names = dict.fromkeys(k for m in metrics for k in m)
    table = pd.DataFrame(
        {(k if k not in _RUN_COLUMNS else f"metric_{k}"): [np.nan if m.get(k) is None else m[k] for m in metrics]
         for k in names}, index=df.index)  # fmt: skip
    for column in _RUN_JSON:
        df[column] = [_decode(path, v, "run", i, column) for i, v in zip(ids, df[column])]
    return pd.concat([df[list(_RUN_BASE)], table, df[[*_RUN_JSON, "error_tail"]]], axis=1)


#: The fixed columns of :func:`load_metrics`.
_METRIC_BASE = ("run_id", "created_at", "framework", "mode", "model", "dataset", "device", "status")
#: The fixed columns of :func:`load_tags`.
_TAG_BASE = ("run_id", "comparison_id", "created_at", "framework", "mode", "repeat", "status")
_NAME = re.compile(r"[A-Za-z0-9_]+")


def load_metrics(db: str | Path | None = None, *, metrics: Sequence[str] | str = ("samples_per_s", "test_accuracy"),
                 model=None, dataset=None, framework=None, status="ok", since=None,
                 last: int | None = None) -> pd.DataFrame:  # fmt: skip
    """A few metrics of many runs, for trends over time: one row per run, in the order they were stored.

    Light where :func:`load_runs` is complete: each metric is taken out of the run's stored ``metrics`` JSON
    by SQLite (``json_extract``); config, env, versions, flags and notes are not read, curves and epochs not
    touched, and no JSON is decoded in Python. On 10,000 runs it takes tens of milliseconds.

    Columns: ``run_id`` (int), ``created_at`` (UTC datetime), ``framework``, ``mode``, ``model``,
    ``dataset``, ``device``, ``status`` (text; ``mode``/``model``/``dataset``/``device`` missing, None or
    NaN, where not stored), then one float column per name in ``metrics``, in that order, in the metric's own unit
    (``metric_docs.METRIC_DOCS``; e.g. ``samples_per_s`` [samples/s], ``test_accuracy`` [0-1]): NaN where
    the run lacks the metric, stored null (NaN) or stored something that is not a number; JSON true/false
    read as 1/0. A metric named like a fixed column is called ``metric_<name>``.

    Args:
        db: the store's file; ``None`` means :func:`default_path`. A missing file gives an empty table
            with these columns (no file is created).
        metrics: metric names (a name or a list of them; repeats are dropped), each made of letters,
            digits and ``_``.
        model, dataset, framework: keep runs whose value is this string or in this list.
        status: keep runs with this status or one in this list; default ``"ok"`` (the runs that have
            metrics); ``None``: every status.
        since: keep runs stored at or after this ``datetime``, ``date`` or ISO 8601 string (naive means UTC).
        last: keep only the ``last`` most recent of the matching runs, an int from 0 to :data:`MAX_LAST`.

    Raises:
        ValueError: a metric name that is not letters, digits and ``_`` (message starts ``metrics:``), a
            bad ``last`` (``last:``) or ``since`` (``since:``); raised before the file is opened.
        StoreError: as :func:`load_runs`; a kept run's ``metrics`` that is not a JSON object names the
            run id and column.
    """
    names = _check_names("metrics", metrics)
    if last is not None:
        last = _check_last(last)
    where, params = _where(model=model, dataset=dataset, framework=framework, status=status, since=since)
    columns = [f"metric_{n}" if n in _METRIC_BASE else n for n in names]
    extract = "".join(f", json_extract(NULLIF(r.metrics, ''), ?) AS \"{c}\"" for c in columns)
    select = (f"SELECT r.id AS run_id, r.created_at, r.framework, r.mode, r.model, r.dataset, r.device, r.status, "
              f"json_type(NULLIF(r.metrics, '')) AS metrics_type{extract} FROM runs r{where}")  # fmt: skip
    paths = [f'$."{n}"' for n in names]
    if last is None:
        sql, all_params = f"{select} ORDER BY r.id", [*paths, *params]
    else:
        sql = f"SELECT * FROM ({select} ORDER BY r.id DESC LIMIT ?) ORDER BY run_id"
        all_params = [*paths, *params, last]
    path = _resolve(db)
    df = _json_query(path, sql, all_params, ("metrics",), where, params)
    if df is None:
        return _typed(pd.DataFrame(columns=[*_METRIC_BASE, *columns]), columns)
    kinds = df.pop("metrics_type")
    bad = kinds.notna() & (kinds != "object")
    if bad.any():
        _raise_bad_json(path, int(df.loc[bad.idxmax(), "run_id"]), "metrics")
    for c in columns:
        if df[c].dtype == object:  # text, a list, an object: not a number
            df[c] = [v if isinstance(v, (int, float, np.number)) else np.nan for v in df[c]]
    df["created_at"] = _times(path, df)
    return _typed(df, columns)


def load_tags(db: str | Path | None = None, *, tags: Sequence[str] | str = (), env: Sequence[str] | str = (),
              match: Mapping[str, str | int | float] | None = None, run_ids=None) -> pd.DataFrame:  # fmt: skip
    """Runs with entries of their config's ``tags`` (what ``runner.compare(..., tags=...)`` stores with a
    comparison and each of its runs; the standard suite's ``suite_session``, ``suite_item``...) and of their
    ``env``, one row per run in the order they were stored.

    Light: the entries are taken out of the stored JSON by SQLite (``json_extract``); curves, epochs and
    metrics are not read, and no run's JSON is decoded in Python.

    Columns: ``run_id``, ``comparison_id`` (int), ``created_at`` (UTC datetime), ``framework``, ``mode``,
    ``repeat`` (1-based), ``status``; then one column per name in ``tags``: the entry as stored (text, a
    number; missing, None or NaN, where the run has no such tag or its ``tags`` is not an object; a list or
    object as its JSON text), a tag named like a fixed column being called ``tag_<name>``; then, if ``env``
    names entries, ``env``: per run a dict of those of the entries its env holds, each as ``json.loads``
    reads it (``{k: env[k] for k in names if k in env}`` of the decoded env, so ``suite.machine_id`` gives
    the same for it as for the whole env).

    Args:
        db: the store's file; ``None`` means :func:`default_path`. A missing file gives an empty table.
        tags: names of ``config["tags"]`` entries (a name or a list of them).
        env: names of top-level ``env`` entries (a name or a list of them), e.g. ``"cpu_model"``.
        match: keep only runs whose tags hold each of these entries with this value (text or a number,
            compared as SQLite compares them); ``None``: every run, tagged or not.
        run_ids: keep these runs (a run id or a list of them).

    Raises:
        ValueError: a name in ``tags``, ``env`` or ``match`` that is not letters, digits and ``_`` (message
            starts with the argument's name), a ``match`` value that is not text or a number (``match:``),
            ``run_ids`` that are not run ids (``run_ids:``).
        StoreError: as :func:`load_runs`; a run's config or env that is not a JSON object names the run id
            and the column.
    """
    names, env_names = _check_names("tags", tags), _check_names("env", env)
    match = dict(match or {})
    _check_names("match", list(match))
    for key, value in match.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError(f"match: the value of {key!r} must be text or a number, got {type(value).__name__} "
                             f"{value!r}")  # fmt: skip
    ids_where, ids_params = _where(run_ids=run_ids)
    columns = [f"tag_{n}" if n in _TAG_BASE else n for n in names]
    select = "".join(f", json_extract(NULLIF(r.config, ''), ?) AS \"{c}\"" for c in columns)
    params: list = [f'$.tags."{n}"' for n in names]
    if env_names:  # each entry's JSON type and its value as SQL text (quote: exact for numbers, no dtype guessing)
        select += ", json_type(NULLIF(r.env, '')) AS env_kind" + "".join(
            f", json_type(NULLIF(r.env, ''), ?) AS t{i}, quote(json_extract(NULLIF(r.env, ''), ?)) AS v{i}"
            for i in range(len(env_names)))  # fmt: skip
        params += [p for n in env_names for p in (f'$."{n}"', f'$."{n}"')]
    clauses = [ids_where[len(" WHERE "):]] if ids_where else []
    clauses += ["json_extract(NULLIF(r.config, ''), ?) = ?" for _ in match]
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    params += [*ids_params, *(p for key, value in match.items() for p in (f'$.tags."{key}"', value))]
    sql = (f"SELECT r.id AS run_id, r.comparison_id, r.created_at, r.framework, r.mode, r.repeat, r.status{select} "
           f"FROM runs r{where} ORDER BY r.id")  # fmt: skip
    path = _resolve(db)
    # The tags of every run the run_ids keep are read (to match them), so that is where a bad config is.
    df = _json_query(path, sql, params, ("config", "env"), ids_where, ids_params)
    if df is None:
        return pd.DataFrame(columns=[*_TAG_BASE, *columns, *(["env"] if env_names else [])])
    df["created_at"] = _times(path, df)
    if env_names:
        kinds = df.pop("env_kind")
        bad = kinds.notna() & (kinds != "object")
        if bad.any():
            _raise_bad_json(path, int(df.loc[bad.idxmax(), "run_id"]), "env")
        pairs = [(df.pop(f"t{i}").tolist(), df.pop(f"v{i}").tolist()) for i in range(len(env_names))]
        df["env"] = [{n: _json_value(t[k], v[k]) for n, (t, v) in zip(env_names, pairs) if isinstance(t[k], str)}
                     for k in range(len(df))]  # fmt: skip
    return df


def _json_value(kind: str, quoted: str) -> Any:
    """What ``json.loads`` reads for a JSON value of SQLite's ``json_type`` ``kind`` whose ``json_extract``,
    rendered by SQL ``quote()``, is ``quoted`` (numbers as exact digits, text in single quotes)."""
    if kind in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[kind]
    if kind == "integer":
        return int(quoted)
    if kind == "real":
        return float(quoted)
    text = quoted[1:-1].replace("''", "'")
    return json.loads(text) if kind in ("array", "object") else text


def latest_profile_runs(db: str | Path | None = None, *, model=None, dataset=None, framework=None, status=None,
                        since=None) -> pd.DataFrame:  # fmt: skip
    """The newest profiled run of each framework (the one stored last): :func:`load_profile_runs`' columns
    and one row per framework that has a profile among the runs the filters keep, in run order.

    For the profiler's category breakdown of a dashboard: ``profiling.load(db, run_ids=list(
    latest_profile_runs(db)["run_id"]))``. It reads the profile summaries and their runs' columns, not the
    op tables (those of the chosen runs are read by ``profiling.load``).

    Args:
        db, model, dataset, framework, status, since: as :func:`load_profile_runs`.

    Raises:
        ValueError: a bad ``since`` (message starts ``since:``).
        StoreError: as :func:`load_runs`.
    """
    df = _profile_query(db, "profile_runs", _PROFILE_RUN_COLUMNS, "t.run_id", newest_per_framework=True, model=model,
                        dataset=dataset, framework=framework, status=status, since=since)  # fmt: skip
    return _profile_run_types(df)


def _typed(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """:func:`load_metrics`' dtypes, also for an empty table: int ids, UTC times, float metrics."""
    if df.empty:
        df = df.astype({"run_id": "int64"}).assign(created_at=pd.to_datetime(df["created_at"], utc=True))
    return df.astype({c: float for c in columns})


def _check_names(arg: str, names: Sequence[str] | str) -> list[str]:
    """``names`` (one or several, repeats dropped) as a list; ValueError starting ``arg:`` for a name that is
    not letters, digits and ``_`` (they become JSON paths and column names)."""
    values = [names] if isinstance(names, str) else list(names)
    for name in values:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"{arg}: names are made of letters, digits and _ (e.g. samples_per_s), got "
                             f"{type(name).__name__} {name!r}")  # fmt: skip
    return list(dict.fromkeys(values))


def _json_query(path: Path, sql: str, params: list, json_columns: tuple[str, ...], where: str,
                where_params: list) -> pd.DataFrame | None:  # fmt: skip
    """:func:`_query` for a query that reads ``json_columns`` of ``runs r`` in SQL: where SQLite finds a
    value that is not JSON, the StoreError names the first such run (among those ``where`` keeps) and column."""
    try:
        return _query(path, sql, params)
    except StoreError as e:
        if "malformed JSON" not in str(e.__cause__ or ""):
            raise
        for column in json_columns:
            bad = _query(path, f"SELECT r.id AS run_id FROM runs r{where or ' WHERE 1'} AND NULLIF(r.{column}, '') "
                               f"IS NOT NULL AND NOT json_valid(r.{column}) ORDER BY r.id LIMIT 1", where_params)
            if bad is not None and len(bad):
                _raise_bad_json(path, int(bad["run_id"].iloc[0]), column)
        raise


def _raise_bad_json(path: Path, run_id: int, column: str) -> None:
    """Raise :func:`_decode`'s StoreError for run ``run_id``'s ``column`` (JSON that is not an object)."""
    text = _query(path, f"SELECT {column} FROM runs WHERE id = ?", [run_id])
    _decode(path, None if text is None or text.empty else text.iloc[0, 0], "run", run_id, column)
    raise StoreError(path, f"Results store {path}: the {column!r} of run {run_id} cannot be read. {_ELSEWHERE}.")


def load_curves(db: str | Path | None = None, *, run_ids=None, model=None, dataset=None, framework=None, status=None,
                since=None) -> pd.DataFrame:  # fmt: skip
    """The loss curves: columns ``run_id``, ``framework``, ``mode``, ``repeat``, ``step``, ``epoch``, ``loss``
    (NaN where it was NaN), ``time_s`` [s since the run's process started], ordered by run and step.
    ``run_ids`` keeps those runs; other filters, reading and errors as in :func:`load_runs`
    (:class:`StoreError`; ``ValueError`` for a bad ``since``)."""
    return _long(db, "curves", _CURVE_COLUMNS, "step", run_ids=run_ids, model=model, dataset=dataset,
                 framework=framework, status=status, since=since)  # fmt: skip


def load_epochs(db: str | Path | None = None, *, run_ids=None, model=None, dataset=None, framework=None, status=None,
                since=None) -> pd.DataFrame:  # fmt: skip
    """Per-epoch results: columns ``run_id``, ``framework``, ``mode``, ``repeat``, ``epoch``, ``train_loss``,
    ``val_loss``, ``val_accuracy`` [0-1], ``time_s`` [s], ordered by run and epoch. Filters, reading and
    errors as in :func:`load_curves`."""
    return _long(db, "epochs", _EPOCH_COLUMNS, "epoch", run_ids=run_ids, model=model, dataset=dataset,
                 framework=framework, status=status, since=since)  # fmt: skip


def load_profiles(db: str | Path | None = None, *, run_ids=None, model=None, dataset=None, framework=None, status=None,
                  since=None) -> pd.DataFrame:  # fmt: skip
    """Profiled runs' op tables (``profiling.py``): columns ``run_id``, ``framework``, ``mode``, ``repeat``,
    ``op`` (the framework's own name), ``category`` (``profiling.CATEGORIES``), ``calls_per_step``,
    ``self_ms_per_step`` [ms], ``share_of_step`` [0-1 of the profiled step time], ordered by run, then
    largest op first. Filters, reading and errors as in :func:`load_curves`; a store without
    profiles (or from before they existed) gives an empty frame."""
    cols = _PROFILE_COLUMNS
    df = _profile_query(db, "profiles", cols, "t.self_ms_per_step DESC", run_ids=run_ids, model=model, dataset=dataset,
                        framework=framework, status=status, since=since)  # fmt: skip
    return df.astype({c: float for c in ("calls_per_step", "self_ms_per_step", "share_of_step")})


def load_profile_runs(db: str | Path | None = None, *, run_ids=None, model=None, dataset=None, framework=None,
                      status=None, since=None) -> pd.DataFrame:  # fmt: skip
    """One row per profiled run: ``run_id``, ``framework``, ``mode``, ``repeat``, ``steps`` (profiled),
    ``step_ms`` (median profiled step) and ``unprofiled_step_ms`` (the same steps without the profiler)
    [ms], ``ops_ms`` (the ops' self time per step) [ms], ``device`` (``cpu``, or ``gpu`` for device
    kernels), ``trace_dir`` (the run's trace folder), and lists ``native`` (trace files), ``unmapped``
    (op names no rule maps) and ``notes``. Filters and errors as in :func:`load_curves`."""
    df = _profile_query(db, "profile_runs", _PROFILE_RUN_COLUMNS, "t.run_id", run_ids=run_ids, model=model,
                        dataset=dataset, framework=framework, status=status, since=since)  # fmt: skip
    return _profile_run_types(df)


def _profile_run_types(df: pd.DataFrame) -> pd.DataFrame:
    for c in ("native", "unmapped", "notes"):
        df[c] = [json.loads(v) if isinstance(v, str) else [] for v in df[c]]
    return df.astype({c: float for c in ("step_ms", "unprofiled_step_ms", "ops_ms")})


def load_checks(db: str | Path | None = None, *, name=None, family=None, since=None) -> pd.DataFrame:
    """The stored regression verdicts (``mlx-explore regress``), oldest first: columns ``session``,
    ``created_at`` (UTC datetime), ``name``, ``family``, ``value``, ``unit``, ``baseline``,
    ``tolerance`` (floats, NaN where none), ``verdict``, ``detail``, ``machine_class``, ``size``.

    Args:
        name, family: keep checks with this value or one in this list. since: as :func:`load_runs`.

    Raises:
        ValueError: a bad ``since`` (message starts ``since:``). StoreError: as :func:`load_runs`.
        A store without the table (no regress run yet) gives an empty frame.
    """
    clauses: list[str] = []
    params: list = []
    for column, value in (("name", name), ("family", family)):
        _in(column, value, clauses, params)
    _since("created_at", since, clauses, params)
    path = _resolve(db)
    tables = _query(path, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'regress_checks'", [])
    if tables is None or tables.empty:
        return pd.DataFrame(columns=list(_CHECK_COLUMNS))
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    df = _query(path, f"SELECT {', '.join(_CHECK_COLUMNS)} FROM regress_checks{where} ORDER BY id", params)
    if df is None:
        return pd.DataFrame(columns=list(_CHECK_COLUMNS))
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True, format="ISO8601")
    return df.astype({c: float for c in ("value", "baseline", "tolerance")})


def _profile_query(db, table: str, columns: tuple[str, ...], order: str, *, newest_per_framework: bool = False,
                   **filters) -> pd.DataFrame:  # fmt: skip
    path = _resolve(db)
    tables = _query(path, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", [table])
    if tables is None or tables.empty or table == "profiles" and _query(
            path, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'profile_runs'", []).empty:  # fmt: skip
        return pd.DataFrame(columns=list(columns))  # no store, or one from before profiles (schema 1)
    where, params = _where(**filters)
    if newest_per_framework:  # the filters pick the candidates; of those, the highest run id per framework
        # CROSS JOIN: SQLite then reads profile_runs (one row per profiled run) first and looks each run up,
        # rather than walking every run to look for its profile.
        where = (f" WHERE t.run_id IN (SELECT max(p.run_id) FROM profile_runs p CROSS JOIN runs r ON r.id = p.run_id"
                 f"{where} GROUP BY r.framework)")  # fmt: skip
    select = ", ".join(("r." if c in ("framework", "mode", "repeat") else "t.") + c for c in columns)
    sql = f"SELECT {select} FROM {table} t JOIN runs r ON r.id = t.run_id{where} ORDER BY t.run_id, {order}"
    df = _query(path, sql, params)
    return pd.DataFrame(columns=list(columns)) if df is None else df


def _long(db, table: str, columns: tuple[str, ...], order: str, **filters) -> pd.DataFrame:
    where, params = _where(**filters)
    select = ", ".join(("r." if c in ("framework", "mode", "repeat") else "t.") + c for c in columns)
    sql = f"SELECT {select} FROM {table} t JOIN runs r ON r.id = t.run_id{where} ORDER BY t.run_id, t.{order}"
    df = _query(_resolve(db), sql, params)
    if df is None:
        return pd.DataFrame(columns=list(columns))
    numeric = [c for c in columns if c not in ("run_id", "framework", "mode", "repeat", "step", "epoch")]
    return df.astype({c: float for c in numeric})  # a column of only NULLs would otherwise be objects


# ------------------------------------------------------------------------------------------ helpers


def _resolve(db: str | Path | None) -> Path:
    return Path(db).expanduser() if db is not None else default_path()


def _connect(path: Path, *, create: bool = True, immutable: bool = False) -> sqlite3.Connection:
    """Open ``path``. With ``create`` for writing (a missing file becomes an empty one); without, for
    reading: a missing file is an error, and ``query_only`` makes sure nothing is changed. SQLite errors
    are the caller's to explain."""
    if create:
        conn = sqlite3.connect(path, timeout=_BUSY_MS / 1000, isolation_level=None)
    else:
        # mode=rw (SQLite falls back to read-only by itself when the file cannot be written): unlike mode=ro,
        # the last connection to close removes the -wal/-shm files it made. mode=ro when $MLX_EXPLORE_READ_ONLY
        # asks for it: nothing written, not even a checkpoint. See the module docstring.
        query = "mode=ro&immutable=1" if immutable else "mode=ro" if _read_only_requested(path) else "mode=rw"
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?{query}", uri=True, timeout=_BUSY_MS / 1000,
                               isolation_level=None)  # fmt: skip
    try:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        if not create:
            conn.execute("PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _inspect(conn: sqlite3.Connection, path: Path) -> int:
    """The file's schema version, 0 for an empty file that needs the schema; raise StoreError if it cannot be
    used. SQLite errors that do not mean a bad file (locked, read-only, I/O, cannot open) are raised as they are."""
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
        if _code(e) not in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
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
                               f"mlx-explore), or {_ELSEWHERE}. Nothing was changed.")  # fmt: skip
    return version


def _query(path: Path, sql: str, params: list) -> pd.DataFrame | None:
    """Run a read-only query; ``None`` when the file is missing or has no schema yet. Works on a store this
    user cannot write (see the module docstring); SQLite errors become :class:`StoreError`."""
    _read_only_requested(path)  # a value it does not understand is an error even where no file is
    if not _exists(path):  # also False for a path under a file: nothing stored there
        return None
    if path.is_dir():
        raise StoreError(path, _is_folder(path))
    for _ in range(3):
        try:
            return _read(path, sql, params, immutable=False)
        except sqlite3.Error as e:
            # READONLY(_DIRECTORY) or CANTOPEN: the -shm (and -wal) file is missing and cannot be created.
            if _code(e) not in ("SQLITE_READONLY", "SQLITE_CANTOPEN") or _writable(path.parent):
                raise _read_error(path, e) from e
        wal = path.with_name(path.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:  # committed rows that immutable=1 would not see
            raise StoreError(path, f"Results store {path} cannot be read: its write-ahead log {wal} holds rows "
                                   f"that SQLite can only read with {path.name}-shm beside it, and the folder "
                                   f"{path.parent} is read-only so it cannot be created. Open the store once "
                                   f"with write access to its folder (any mlx-explore command that writes), or "
                                   f"copy the folder somewhere writable and pass --db PATH. Nothing was "
                                   f"changed.")  # fmt: skip
        before = _identity(path)
        try:
            df = _read(path, sql, params, immutable=True)
        except sqlite3.Error as e:
            raise _read_error(path, e) from e
        if _identity(path) == before:  # nobody changed the file during the read: the snapshot is consistent
            return df
    raise StoreError(path, f"Results store {path} kept changing while it was read (its folder {path.parent} "
                           f"is read-only to this user, so it is read without locks): try again when the "
                           f"comparison writing it has finished.")  # fmt: skip


def _read(path: Path, sql: str, params: list, *, immutable: bool) -> pd.DataFrame | None:
    conn = _connect(path, create=False, immutable=immutable)
    try:
        if _inspect(conn, path) == 0:
            return None
        cursor = conn.execute(sql, params)
        rows = cursor.fetchall()
        return pd.DataFrame.from_records(rows, columns=[d[0] for d in cursor.description], coerce_float=True)
    finally:
        conn.close()


def _identity(path: Path) -> tuple | None:
    """What changes when a writer touches the store: the file's identity, size and modification time, and
    whether a write-ahead log exists."""
    try:
        st = path.stat()
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, path.with_name(path.name + "-wal").exists()
    except OSError:
        return None  # gone: the next try says why


def _where(*, run_ids=None, model=None, dataset=None, framework=None, status=None, since=None) -> tuple[str, list]:
    """An SQL ``WHERE`` clause on ``runs r`` and its parameters."""
    clauses, params = [], []
    try:
        ids = None if run_ids is None else [int(i) for i in ([run_ids] if np.ndim(run_ids) == 0 else run_ids)]
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"run_ids: expected a run id (int) or a list of them, got {run_ids!r}") from None
    for column, value in (("id", ids), ("model", model), ("dataset", dataset), ("framework", framework),
                          ("status", status)):  # fmt: skip
        _in(f"r.{column}", value, clauses, params)
    _since("r.created_at", since, clauses, params)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _in(column: str, value: Any, clauses: list[str], params: list) -> None:
    """Add ``column IN (?, ...)`` for ``value`` (a string or a list of them; ``None``: no condition)."""
    if value is not None:
        values = [value] if isinstance(value, str) else list(value)
        clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
        params += values


def _since(column: str, since: Any, clauses: list[str], params: list) -> None:
    """Add ``column >= ?`` for ``since`` (checked by :func:`_check_since`; ``None``: no condition)."""
    if since is not None:
        clauses.append(f"{column} >= ?")
        params.append(_iso(_check_since(since)))


def _check_last(last: Any) -> int:
    """``last`` as an int, or ``ValueError`` starting ``last:``."""
    try:
        if isinstance(last, bool):
            raise TypeError
        value = operator.index(last)  # int, NumPy integers; not 2.5, "3" or True
    except TypeError:
        raise ValueError(f"last: expected a whole number from 0 to {MAX_LAST} (how many of the most recent runs "
                         f"to keep), got {type(last).__name__} {last!r}") from None  # fmt: skip
    if not 0 <= value <= MAX_LAST:
        raise ValueError(f"last: expected a whole number from 0 to {MAX_LAST} (how many of the most recent runs "
                         f"to keep), got {value}")  # fmt: skip
    return value


def _check_since(since: Any) -> _dt.datetime:
    """``since`` as an aware UTC datetime, or ``ValueError`` starting ``since:``."""
    problem = None
    if isinstance(since, (str, _dt.date, np.datetime64)):  # datetime and pd.Timestamp are dates too
        try:
            ts = pd.Timestamp(since.strip() if isinstance(since, str) else since)
        except (ValueError, TypeError, OverflowError) as e:
            ts, problem = None, str(e)
        if ts is not None and not pd.isna(ts):
            ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
            return ts.to_pydatetime(warn=False)
    detail = f" ({problem})" if problem else ""
    raise ValueError(f"since: expected an ISO 8601 date or date and time such as 2026-05-09 or "
                     f"2026-05-09T07:35:00Z (no zone means UTC), or a datetime/date, got "
                     f"{type(since).__name__} {since!r}{detail}")  # fmt: skip


def _decode(path: Path, text: Any, table: str, row_id: Any, column: str) -> dict:
    """A stored JSON object, ``{}`` for NULL/empty; StoreError naming the row and column if it cannot be read."""
    if text is None or text == "":
        return {}
    try:
        value = json.loads(text)
    except (ValueError, TypeError) as e:
        problem = f"is not valid JSON ({e})"
    else:
        if isinstance(value, dict):
            return value
        problem = f"is JSON {type(value).__name__}, not an object"
    shown = text if len(str(text)) <= 60 else str(text)[:57] + "..."
    raise StoreError(path, f"Results store {path}: the {column!r} of {table} {row_id} {problem}: {shown!r}. The "
                           f"row was changed outside mlx-explore or damaged. Repair or delete it (e.g. sqlite3 "
                           f"{path} \"UPDATE {table}s SET {column} = '{{}}' WHERE id = {row_id}\"), or "
                           f"{_ELSEWHERE}.")  # fmt: skip


def _times(path: Path, df: pd.DataFrame) -> pd.Series:
    """``created_at`` as UTC datetimes; StoreError naming the first run whose time cannot be read."""
    try:
        return pd.to_datetime(df["created_at"], utc=True, format="ISO8601")
    except (ValueError, TypeError):
        pass
    for run_id, text in zip(df["run_id"], df["created_at"]):
        try:
            pd.to_datetime(pd.Series([text]), utc=True, format="ISO8601")
        except (ValueError, TypeError) as e:
            raise StoreError(path, f"Results store {path}: the 'created_at' of run {run_id} is not an ISO 8601 "
                                   f"time ({e}): {text!r}. Repair or delete that row, or {_ELSEWHERE}.") from e
    raise StoreError(path, f"Results store {path}: the 'created_at' column cannot be read. {_ELSEWHERE}.")


def _make_folder(path: Path) -> None:
    """Create the store's missing parent folders; StoreError if a parent is a file or cannot be created."""
    existing = next((p for p in path.parents if _exists(p) or p.is_symlink()), None)
    if existing is not None and not existing.is_dir():
        kind = "a file" if existing.is_file() else "not a folder"
        raise StoreError(path, f"Cannot use {path} as the results store: {existing} is {kind}, so no folder can "
                               f"be made under it. Nothing was changed. Pass --db PATH / set {ENV_VAR} to a file "
                               f"in a folder.")  # fmt: skip
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        reason = {errno.EACCES: "read-only", errno.EPERM: "read-only", errno.EROFS: "read-only",
                  errno.ENOSPC: "disk full"}.get(e.errno, "other")  # fmt: skip
        where = f"; {Path(e.filename).parent} is read-only to this user" if reason == "read-only" and e.filename else ""
        raise StoreWriteError(path, f"Results store {path} could not be written: cannot create its folder "
                                    f"{e.filename or path.parent}: {e.strerror}{where}. Nothing was changed. "
                                    f"Create the folder, or {_ELSEWHERE}.", reason) from e  # fmt: skip


def _is_folder(path: Path) -> str:
    return (f"Results store {path} is a folder, not a file. Nothing was changed. Give a file name such as "
            f"{path / 'results.db'}: pass --db PATH / set {ENV_VAR}.")


def _exists(path: Path) -> bool:
    """``path.exists()``, but a path this user may not look at (a folder on the way it cannot enter) is a
    :class:`StoreError` rather than a ``PermissionError``."""
    try:
        return path.exists()
    except OSError as e:
        raise StoreError(path, f"Results store {path} cannot be reached: {e.strerror} ({e.filename}). Nothing "
                               f"was changed. Give this user access, or {_ELSEWHERE}.") from e  # fmt: skip


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK)


def _read_only_cause(path: Path) -> str | None:
    """Why ``path`` cannot be written, found on the file system (the mount, the file, its folder, the WAL's
    side files) with what to do about it; ``None`` if none of these is read-only."""
    folder = path.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"the file system holding {folder} is mounted read-only"
    except OSError:
        pass
    if path.exists() and not os.access(path, os.R_OK):
        return f"this user may neither read nor write the file {path}: give permission (chmod u+rw {path})"
    if path.exists() and not os.access(path, os.W_OK):
        return f"the file {path} is read-only (this user may not write it): give write permission (chmod u+w {path})"
    if not _writable(folder):
        what = (f"create its write-ahead log files {path.name}-wal and {path.name}-shm" if path.exists()
                else f"create {path.name}")  # fmt: skip
        return f"its folder {folder} is read-only (this user may not {what} there): make the folder writable"
    for side in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if side.exists() and not os.access(side, os.W_OK):
            return f"its write-ahead log file {side} is read-only (made by another user?): give write permission"
    return None


def _write_error(path: Path, e: sqlite3.Error, doing: str, *, opening: bool = False) -> StoreWriteError:
    """The :class:`StoreWriteError` for SQLite error ``e`` met while ``doing`` (e.g. "storing a torch run")."""
    code = _code(e)
    cause = _read_only_cause(path) if code in ("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_CANTOPEN") else None
    elsewhere = f"or {_ELSEWHERE}"
    if cause is not None or code in ("SQLITE_READONLY", "SQLITE_PERM"):
        reason, why = "read-only", cause or f"it is read-only (SQLite opened it read-only: {e})"
        if os.access(path, os.R_OK):
            elsewhere += f". Reading it still works (mlx-explore results --db {path})"
    elif code == "SQLITE_FULL":
        try:
            free = f"{shutil.disk_usage(path.parent).free} bytes free"
        except OSError:
            free = "free space unknown"
        reason, why = "disk full", f"the disk is full ({e}; {free} in {path.parent}): free some space"
        elsewhere = f"or {_ELSEWHERE} on another disk"
    elif code == "SQLITE_IOERR":
        reason, why = "I/O error", f"an I/O error ({e}; {_ename(e)}): check the disk and the system log (dmesg)"
    elif code in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        reason = "locked"
        why = (f"another process kept it locked ({e}) past the busy timeout of {_BUSY_MS // 1000} s and "
               f"{_ATTEMPTS} tries: let the other mlx-explore process finish, then try again")  # fmt: skip
    elif code in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        reason, why = "corrupt", f"the file is corrupt ({e}): move it aside"
    else:
        reason, why = "other", f"SQLite error {_ename(e)}: {e}"
    if opening:
        done = "Nothing was changed."
    else:
        done = "That write was rolled back, so none of it is stored; what was stored before is intact."
    return StoreWriteError(path, f"Results store {path} could not be written ({doing}): {why}, {elsewhere}. {done}",
                           reason)  # fmt: skip


def _read_error(path: Path, e: sqlite3.Error) -> StoreError:
    code = _code(e)
    if code in ("SQLITE_CANTOPEN", "SQLITE_PERM") and not os.access(path, os.R_OK):
        why = "this user may not read the file: give read permission (chmod u+r)"
    elif code in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        why = f"another process kept it locked ({e}) for {_BUSY_MS // 1000} s: try again when it has finished"
    elif code == "SQLITE_IOERR":
        why = f"an I/O error ({e}; SQLite code {_ename(e)}): check the disk and the system log (dmesg)"
    elif code in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        why = f"the file is corrupt ({e}): move it aside"
    else:
        why = f"SQLite error {_ename(e)}: {e}"
    return StoreError(path, f"Results store {path} cannot be read: {why}, or {_ELSEWHERE}. Nothing was changed.")


_MESSAGES = {  # for Pythons before 3.11, whose sqlite3 errors lack sqlite_errorname
    "readonly database": "SQLITE_READONLY", "disk is full": "SQLITE_FULL", "disk I/O error": "SQLITE_IOERR",
    "unable to open": "SQLITE_CANTOPEN", "is locked": "SQLITE_BUSY", "is busy": "SQLITE_BUSY",
    "malformed": "SQLITE_CORRUPT", "not a database": "SQLITE_NOTADB", "access permission": "SQLITE_PERM",
}  # fmt: skip


def _ename(e: Exception) -> str:
    """SQLite's (extended) result code name, e.g. ``SQLITE_READONLY_DIRECTORY``; ``SQLITE_ERROR`` if unknown."""
    name = getattr(e, "sqlite_errorname", None)
    if name:
        return name
    return next((code for text, code in _MESSAGES.items() if text in str(e)), "SQLITE_ERROR")


def _code(e: Exception) -> str:
    """SQLite's primary result code name, e.g. ``SQLITE_READONLY`` for ``SQLITE_READONLY_DIRECTORY``."""
    return "_".join(_ename(e).split("_")[:2])


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
    return isinstance(e, sqlite3.OperationalError) and _code(e) in ("SQLITE_BUSY", "SQLITE_LOCKED")


def _iso(t: _dt.datetime) -> str:
    return t.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _now() -> str:
    return _iso(_dt.datetime.now(_dt.timezone.utc))


def _json(x: Any) -> str:
    """Strict JSON (no ``NaN`` tokens); anything else JSON cannot hold is written as its ``str``."""
    return json.dumps(jsonable(x), allow_nan=False, default=str)


def _num(x: Any, *, keep_inf: bool = False) -> float | None:
    if x is None:
        return None
    f = float(x)
    return None if math.isnan(f) or (math.isinf(f) and not keep_inf) else f


def _int(x: Any) -> int | None:
    return None if x is None else int(x)
