"""The results store: round trip, filters, WAL, default path, concurrent writers, and files it must refuse."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from mlx_explore import results
from mlx_explore.results import (SCHEMA_VERSION, ResultsStore, StoreError, latest_profile_runs, load_curves,
                                 load_epochs, load_metrics, load_profile_runs, load_profiles, load_runs, load_tags)

CONFIG = {"model": "mlp", "dataset": "digits", "epochs": 2, "lr": 0.1}
ENV = {"python": "3.11", "cpu": "x86_64"}


def make_run(framework: str, *, repeat: int = 1, status: str = "ok", acc: float = 0.9, points: int = 4) -> dict:
    return {
        "framework": framework, "mode": "eager", "repeat": repeat, "status": status, "reason": "",
        "device": "cpu", "device_name": "CPU", "versions": {framework: "1.0"}, "flags": {"threads": 4},
        "metrics": {"test_accuracy": acc, "train_s": float("nan")}, "notes": {"why": "because"},
        "curve": [{"step": s, "epoch": s // 2, "loss": 1.0 / (s + 1), "time_s": 0.1 * s} for s in range(points)],
        "epochs": [{"epoch": e, "train_loss": 0.5, "val_loss": 0.6, "val_accuracy": 0.8, "time_s": 1.0 + e}
                   for e in range(2)],
        "error_tail": "",
    }  # fmt: skip


@pytest.fixture
def db(tmp_path):
    """A store holding one comparison with a torch run (acc 0.9) and a jax run (acc 0.8, a NaN loss)."""
    path = tmp_path / "results.db"
    with ResultsStore(path) as store:
        cid = store.begin_comparison(CONFIG, ENV)
        store.add_run(cid, make_run("torch"))
        jax = make_run("jax", acc=0.8, status="diverged")
        jax["curve"][1]["loss"] = float("nan")
        jax["curve"][2]["loss"] = float("inf")
        jax["metrics"]["extra"] = 3
        store.add_run(cid, jax)
    return path


def test_round_trip(db):
    runs = load_runs(db)
    assert list(runs.columns) == [
        "run_id", "comparison_id", "created_at", "framework", "mode", "repeat", "model", "dataset", "status", "reason",
        "device", "device_name", "test_accuracy", "train_s", "extra", "versions", "flags", "notes", "config", "env",
        "error_tail",
    ]  # fmt: skip
    assert runs["framework"].tolist() == ["torch", "jax"]
    assert runs["run_id"].is_monotonic_increasing
    assert runs["model"].tolist() == ["mlp", "mlp"] and runs["dataset"].tolist() == ["digits", "digits"]
    assert runs["status"].tolist() == ["ok", "diverged"]
    assert runs["test_accuracy"].tolist() == [0.9, 0.8]
    assert runs["train_s"].isna().all()  # NaN metric stored as JSON null, read back as NaN
    assert np.isnan(runs["extra"].iloc[0]) and runs["extra"].iloc[1] == 3  # missing in one run -> NaN
    assert isinstance(runs["created_at"].dtype, pd.DatetimeTZDtype) and str(runs["created_at"].dt.tz) == "UTC"
    assert runs["versions"].iloc[0] == {"torch": "1.0"} and runs["flags"].iloc[1] == {"threads": 4}
    assert runs["notes"].iloc[0] == {"why": "because"}
    assert runs["config"].iloc[0] == CONFIG and runs["env"].iloc[1] == ENV

    curves = load_curves(db)
    assert list(curves.columns) == ["run_id", "framework", "mode", "repeat", "step", "epoch", "loss", "time_s"]
    assert len(curves) == 8 and curves["step"].tolist() == [0, 1, 2, 3] * 2
    jax = curves[curves["framework"] == "jax"]
    assert np.isnan(jax["loss"].iloc[1]) and np.isinf(jax["loss"].iloc[2])
    assert curves["loss"].iloc[0] == 1.0 and curves["time_s"].iloc[3] == pytest.approx(0.3)
    assert load_curves(db, run_ids=[runs["run_id"].iloc[1]])["framework"].unique().tolist() == ["jax"]

    epochs = load_epochs(db, framework="torch")
    assert list(epochs.columns) == ["run_id", "framework", "mode", "repeat", "epoch", "train_loss", "val_loss",
                                    "val_accuracy", "time_s"]  # fmt: skip
    assert epochs["epoch"].tolist() == [0, 1] and epochs["val_accuracy"].tolist() == [0.8, 0.8]


def test_json_is_strict(db):
    conn = sqlite3.connect(db)
    texts = [t for row in conn.execute("SELECT config, env, versions, flags, metrics, notes FROM runs") for t in row]
    conn.close()

    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    parsed = [json.loads(t, parse_constant=refuse) for t in texts]
    assert parsed[4]["train_s"] is None and parsed[4]["test_accuracy"] == 0.9


def test_filters(db):
    with ResultsStore(db) as store:
        cid = store.begin_comparison({**CONFIG, "model": "cnn"}, ENV)
        store.add_run(cid, make_run("torch", repeat=2, status="failed"))
    assert load_runs(db, model="cnn")["framework"].tolist() == ["torch"]
    assert load_runs(db, model="mlp", framework="torch")["status"].tolist() == ["ok"]
    assert load_runs(db, framework=["jax", "torch"])["run_id"].tolist() == [1, 2, 3]
    assert load_runs(db, status=["ok", "failed"])["run_id"].tolist() == [1, 3]
    assert load_runs(db, dataset="iris").empty
    assert load_runs(db, since=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).empty
    assert len(load_runs(db, since=dt.date(2000, 1, 1))) == 3 and len(load_runs(db, since="2000-01-01T00:00Z")) == 3
    assert load_runs(db, last=2)["run_id"].tolist() == [2, 3]
    assert load_runs(db, framework="torch", last=1)["run_id"].tolist() == [3]
    assert set(load_curves(db, model="cnn")["run_id"]) == {3}
    assert set(load_epochs(db, framework=["jax"])["run_id"]) == {2}
    with pytest.raises(ValueError):
        load_runs(db, last=-1)


def test_add_run_is_one_transaction(db):
    bad = make_run("tensorflow")
    bad["curve"].append({"step": "not a number", "loss": 1.0})
    with ResultsStore(db) as store:
        with pytest.raises(ValueError):
            store.add_run(1, bad)
        with pytest.raises(ValueError, match="no comparison 99"):
            store.add_run(99, make_run("tensorflow"))
    assert "tensorflow" not in load_runs(db)["framework"].tolist()
    assert len(load_curves(db)) == 8


def test_add_profile_and_load_it_back(db):
    profile = {"steps": 5, "step_ms": 2.0, "unprofiled_step_ms": 1.8, "ops_ms": 1.5, "device": "cpu", "trace_dir": "/t/1",
               "native": ["/t/1/trace.json"], "unmapped": ["weird_op"], "notes": ["a note"],
               "rows": [{"op": "aten::addmm", "category": "matmul", "calls_per_step": 3, "self_ms_per_step": 1.5,
                         "share_of_step": 0.75},
                        {"op": "(unaccounted step time)", "category": "framework overhead", "calls_per_step": 1,
                         "self_ms_per_step": 0.5, "share_of_step": 0.25}]}  # fmt: skip
    with ResultsStore(db) as store:
        store.add_profile(1, profile)
        with pytest.raises(ValueError, match="already has a profile"):
            store.add_profile(1, profile)
        with pytest.raises(ValueError, match="'op' and 'category'"):
            store.add_profile(2, {**profile, "rows": [{"op": "x"}]})
    ops = load_profiles(db)
    assert ops[["run_id", "framework", "op", "category"]].values.tolist() == [
        [1, "torch", "aten::addmm", "matmul"], [1, "torch", "(unaccounted step time)", "framework overhead"]]
    assert ops["self_ms_per_step"].tolist() == [1.5, 0.5] and ops["share_of_step"].sum() == 1.0
    runs = load_profile_runs(db)
    assert runs[["run_id", "steps", "step_ms", "unprofiled_step_ms", "device", "trace_dir"]].values.tolist() == [
        [1, 5, 2.0, 1.8, "cpu", "/t/1"]]
    assert runs.loc[0, "unmapped"] == ["weird_op"] and runs.loc[0, "native"] == ["/t/1/trace.json"]
    assert load_profiles(db, framework="jax").empty and list(load_profiles(db, framework="jax").columns) == list(ops.columns)


def test_a_schema_1_store_is_upgraded_on_opening_and_read_before(tmp_path):
    """A store made by mlx-explore 1 (schema 1: a ``profiles`` table that nothing filled) reads as having no
    profiles; opening it for writing moves it to schema 2, keeping every run."""
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    for statement in results._SCHEMA:
        if "profile" not in statement:
            conn.execute(statement)
    conn.execute("CREATE TABLE profiles (run_id INTEGER, name TEXT, calls INTEGER, self_ms REAL, total_ms REAL, device TEXT)")
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [("created_by", "mlx-explore"), ("schema_version", "1")])
    conn.execute("INSERT INTO comparisons (config, env, created_at) VALUES ('{}', '{}', '2026-01-01T00:00:00+00:00')")
    conn.execute("INSERT INTO runs (comparison_id, created_at, framework, status) VALUES (1, '2026-01-01T00:00:00+00:00', 'jax', 'ok')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    assert load_profiles(path).empty and load_profile_runs(path).empty  # read as it is: nothing changed
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1
    with ResultsStore(path) as store:
        store.add_profile(1, {"steps": 1, "step_ms": 1.0, "rows": [{"op": "dot", "category": "matmul"}]})
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert dict(conn.execute("SELECT key, value FROM meta"))["schema_version"] == "2"
    conn.close()
    assert load_profiles(path)["op"].tolist() == ["dot"] and load_runs(path)["framework"].tolist() == ["jax"]


def test_wal_and_schema_version(db):
    with ResultsStore(db) as store:
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert dict(conn.execute("SELECT key, value FROM meta"))["created_by"] == "mlx-explore"
    finally:
        conn.close()


def test_default_path_honours_env(tmp_path, monkeypatch):
    target = tmp_path / "deep" / "er" / "store.db"
    monkeypatch.setenv(results.ENV_VAR, str(target))
    assert results.default_path() == target
    with ResultsStore() as store:
        assert store.path == target
        store.add_run(store.begin_comparison(CONFIG, ENV), make_run("torch"))
    assert target.exists()
    assert load_runs()["framework"].tolist() == ["torch"]
    monkeypatch.delenv(results.ENV_VAR)
    assert results.default_path() == results.Path.home() / ".mlx_explore" / "results.db"


WRITER = """
import sys, time
from pathlib import Path
from mlx_explore.results import ResultsStore
path, barrier, me = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
Path(str(barrier) + "." + me).touch()  # ready
deadline = time.monotonic() + 60
while not barrier.exists():
    assert time.monotonic() < deadline, "barrier never appeared"
    time.sleep(0.001)
with ResultsStore(path) as store:  # every writer races to create the schema of the same new file
    cid = store.begin_comparison({"model": "mlp", "dataset": "digits", "writer": me}, {})
    for i in range(40):
        curve = [{"step": s, "epoch": 0, "loss": 1.0 / (s + 1), "time_s": s * 0.01} for s in range(50)]
        store.add_run(cid, {"framework": "w" + me, "status": "ok", "repeat": i + 1, "curve": curve,
                            "metrics": {"i": i}})
"""


def test_concurrent_writers_create_and_fill_one_new_file(tmp_path):
    path, barrier, n = tmp_path / "new" / "results.db", tmp_path / "go", 3
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(barrier), str(k)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(n)]  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"go.{k}").exists() for k in range(n)):  # wait until every writer is ready
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a writer did not start"
            time.sleep(0.01)
        barrier.touch()
        outcomes = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (out, err) in zip(procs, outcomes):
        assert p.returncode == 0 and err == "", err
    runs = load_runs(path)
    assert len(runs) == 40 * n and runs["comparison_id"].nunique() == n
    assert sorted(runs.groupby("framework")["repeat"].apply(sorted).tolist()) == [list(range(1, 41))] * n
    curves = load_curves(path)
    assert len(curves) == 40 * n * 50 and (curves.groupby("run_id").size() == 50).all()


@pytest.mark.parametrize("content", [b"this is not a database, just some text\n" * 200, bytes(range(256)) * 40])
def test_corrupt_file_is_refused_and_left_alone(tmp_path, content):
    path = tmp_path / "results.db"
    path.write_bytes(content)
    for attempt in (lambda: ResultsStore(path), lambda: load_runs(path), lambda: load_curves(path)):
        with pytest.raises(StoreError) as info:
            attempt()
        message = str(info.value)
        assert str(path) in message and "not" in message and "corrupt" in message and "--db" in message
        assert info.value.path == path
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.db"]


def test_newer_schema_is_refused_and_left_alone(db):
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = db.read_bytes()
    for attempt in (lambda: ResultsStore(db), lambda: load_runs(db)):
        with pytest.raises(StoreError) as info:
            attempt()
        message = str(info.value)
        assert str(db) in message and str(SCHEMA_VERSION + 1) in message and str(SCHEMA_VERSION) in message
        assert "upgrade mlx-explore" in message
    assert db.read_bytes() == before


def test_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE foo (x INTEGER)")
    conn.execute("INSERT INTO foo VALUES (1)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    for attempt in (lambda: ResultsStore(path), lambda: load_epochs(path)):
        with pytest.raises(StoreError, match="not an mlx-explore results store") as info:
            attempt()
        assert str(path) in str(info.value)
    assert path.read_bytes() == before
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("foo",)]
    conn.close()


def test_reading_a_missing_file_creates_nothing(tmp_path):
    path = tmp_path / "nowhere" / "results.db"
    runs = load_runs(path)
    assert runs.empty and list(runs.columns[:12]) == list(results._RUN_BASE) and "error_tail" in runs.columns
    assert load_curves(path).empty and list(load_epochs(path).columns)[-1] == "time_s"
    assert not path.exists() and not path.parent.exists()


def test_empty_existing_file_becomes_a_store(tmp_path):
    path = tmp_path / "results.db"
    path.touch()
    assert load_runs(path).empty and path.read_bytes() == b""  # reading an empty file does not write it
    with ResultsStore(path) as store:
        store.add_run(store.begin_comparison(CONFIG, ENV), make_run("sklearn"))
    assert load_runs(path)["framework"].tolist() == ["sklearn"]


def test_reading_leaves_the_folder_as_it_was(db):
    before = {p.name: p.read_bytes() for p in db.parent.iterdir()}
    assert sorted(before) == ["results.db"]
    load_runs(db), load_curves(db), load_epochs(db, since="2000-01-01")
    assert {p.name: p.read_bytes() for p in db.parent.iterdir()} == before  # no -wal/-shm left, not a byte changed


def test_store_write_error_is_a_store_error():
    assert issubclass(results.StoreWriteError, StoreError) and issubclass(StoreError, RuntimeError)
    assert not issubclass(StoreError, ValueError)  # callers tell a bad filter from a bad store


def test_bad_values_are_refused_before_anything_is_stored(db):
    with ResultsStore(db) as store:
        with pytest.raises(ValueError, match=r"run\['mode'\]: expected text or None, got dict"):
            store.add_run(1, {**make_run("tensorflow"), "mode": {"eager": True}})
        with pytest.raises(ValueError, match=r"run\['framework'\]: expected text"):
            store.add_run(1, {**make_run("tensorflow"), "framework": None})
        with pytest.raises(ValueError, match="no run 99"):
            store.add_profile(99, {"rows": [{"op": "matmul", "category": "matmul"}]})
        run = make_run("tensorflow")
        run["repeat"] = np.int64(3)  # NumPy integers are stored as ints
        store.add_run(1, run)
    runs = load_runs(db)
    assert runs["framework"].tolist() == ["torch", "jax", "tensorflow"] and runs["repeat"].tolist() == [1, 1, 3]
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM profiles").fetchone()[0] == 0
    conn.close()


def test_a_lock_held_too_long_is_a_store_write_error(db, monkeypatch):
    monkeypatch.setattr(results, "_BUSY_MS", 50)  # instead of a minute, so the test is quick
    monkeypatch.setattr(results, "_ATTEMPTS", 2)
    store = ResultsStore(db)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        with pytest.raises(results.StoreWriteError) as info:
            store.add_run(1, make_run("tensorflow"))
        assert info.value.reason == "locked" and str(db) in str(info.value) and "try again" in str(info.value)
        other.execute("ROLLBACK")
        store.add_run(1, make_run("tensorflow"))  # the lock is gone: the same store writes again
    finally:
        other.close()
        store.close()
    assert load_runs(db)["framework"].tolist() == ["torch", "jax", "tensorflow"]


# ------------------------------------------------------------------------------------------ read-only opening


def snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def crashed_store(tmp_path):
    """A store as a writer that died left it: its second run committed but only in the write-ahead log
    (never checkpointed into the file). Any connection that may write folds the log into the file."""
    live = tmp_path / "live" / "results.db"
    with ResultsStore(live) as store:
        cid = store.begin_comparison(CONFIG, ENV)
        store.add_run(cid, make_run("torch"))
    with ResultsStore(live) as store:  # stays open while the files are copied: its log is not checkpointed
        store.add_run(cid, make_run("jax"))
        crashed = tmp_path / "crashed"
        crashed.mkdir()
        for name in ("results.db", "results.db-wal"):
            (crashed / name).write_bytes((live.parent / name).read_bytes())
    assert (crashed / "results.db-wal").stat().st_size > 0
    return crashed / "results.db"


def test_read_only_variable_reads_with_mode_ro(tmp_path, monkeypatch):
    """Behavioural proof of ``mode=ro``: a read of a store whose log holds committed rows sees them and leaves
    the file and its log byte for byte as they were; the same read without the variable (``mode=rw``)
    checkpoints the log into the file as its connection closes."""
    path = crashed_store(tmp_path)
    before = snapshot(path.parent)
    monkeypatch.setenv(results.READ_ONLY_VAR, "1")
    assert load_runs(path)["framework"].tolist() == ["torch", "jax"]  # the run only the log holds is read
    assert load_metrics(path)["framework"].tolist() == ["torch", "jax"] and len(load_curves(path)) == 8
    after = snapshot(path.parent)
    assert after["results.db"] == before["results.db"] and after["results.db-wal"] == before["results.db-wal"]
    assert set(after) == {"results.db", "results.db-wal", "results.db-shm"}  # mode=ro leaves the index it made
    monkeypatch.delenv(results.READ_ONLY_VAR)
    assert load_runs(path)["framework"].tolist() == ["torch", "jax"]
    after = snapshot(path.parent)
    assert sorted(after) == ["results.db"] and after["results.db"] != before["results.db"]  # mode=rw wrote it


def test_read_only_variable_refuses_writing_before_touching_anything(db, tmp_path, monkeypatch):
    monkeypatch.setenv(results.READ_ONLY_VAR, "1")
    before = snapshot(db.parent)
    for path in (db, tmp_path / "new" / "results.db"):
        with pytest.raises(results.StoreWriteError) as info:
            ResultsStore(path)
        message = str(info.value)
        assert info.value.reason == "read-only" and info.value.path == path and str(path) in message
        assert "MLX_EXPLORE_READ_ONLY=1" in message and "unset MLX_EXPLORE_READ_ONLY" in message
        assert "Nothing was changed" in message
    assert snapshot(db.parent) == before and not (tmp_path / "new").exists()  # no folder, no -wal, not a byte
    assert load_runs(db)["framework"].tolist() == ["torch", "jax"]  # reading works
    assert snapshot(db.parent)["results.db"] == before["results.db"]
    monkeypatch.setenv(results.READ_ONLY_VAR, "0")  # 0 (or empty, or unset): read and write
    with ResultsStore(db) as store:
        store.add_run(1, make_run("sklearn"))
    assert load_runs(db)["framework"].tolist() == ["torch", "jax", "sklearn"]


def test_read_only_context_manager_sets_and_restores_the_variable(db, monkeypatch):
    monkeypatch.delenv(results.READ_ONLY_VAR, raising=False)
    with results.read_only():
        assert os.environ[results.READ_ONLY_VAR] == "1"
        with pytest.raises(results.StoreWriteError, match="read-only"):
            ResultsStore(db)
        assert len(load_runs(db)) == 2
    assert results.READ_ONLY_VAR not in os.environ
    ResultsStore(db).close()
    monkeypatch.setenv(results.READ_ONLY_VAR, "0")
    with pytest.raises(KeyError), results.read_only():
        raise KeyError("boom")
    assert os.environ[results.READ_ONLY_VAR] == "0"  # restored after an error too


@pytest.mark.parametrize("value", ["true", "yes", "2"])
def test_a_read_only_value_it_does_not_understand_is_refused(db, tmp_path, monkeypatch, value):
    monkeypatch.setenv(results.READ_ONLY_VAR, value)
    for attempt in (lambda: ResultsStore(db), lambda: load_runs(db), lambda: load_metrics(tmp_path / "none.db")):
        with pytest.raises(StoreError, match=f"MLX_EXPLORE_READ_ONLY='{value}' is not understood: set it to 1"):
            attempt()


READ_ONLY_FOLDER_CHILD = r"""
import json, sys
from pathlib import Path
from mlx_explore.results import load_metrics, load_runs
path = Path(sys.argv[1])
try:
    open(path.parent / "probe", "x").close()
    sys.exit(3)  # this process can write the folder: the test would prove nothing
except PermissionError:
    pass
print(json.dumps({"runs": load_runs(path)["framework"].tolist(), "ok": load_metrics(path)["run_id"].tolist()}))
"""


def test_read_only_variable_still_reads_a_read_only_folder(db):
    """In a read-only folder ``mode=ro`` cannot make the -shm file either: the ``immutable=1`` read still works."""
    from .conftest import without_write_override

    before = snapshot(db.parent)
    db.parent.chmod(0o555)
    try:
        proc = subprocess.run(without_write_override([sys.executable, "-c", READ_ONLY_FOLDER_CHILD, str(db)]),
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, results.READ_ONLY_VAR: "1"})  # fmt: skip
    finally:
        db.parent.chmod(0o755)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout) == {"runs": ["torch", "jax"], "ok": [1]}
    assert snapshot(db.parent) == before


# ------------------------------------------------------------------------------------------ light loaders


def test_load_metrics_reads_a_few_metrics_of_many_runs(db):
    with ResultsStore(db) as store:
        store.add_run(1, {**make_run("sklearn"), "metrics": {"test_accuracy": "high", "samples_per_s": 1500,
                                                            "status": 7.0}})  # fmt: skip
    trend = load_metrics(db)  # status "ok" by default
    assert list(trend.columns) == ["run_id", "created_at", "framework", "mode", "model", "dataset", "device", "status",
                                   "samples_per_s", "test_accuracy"]  # fmt: skip
    assert trend["run_id"].tolist() == [1, 3] and trend["framework"].tolist() == ["torch", "sklearn"]
    assert trend["samples_per_s"].isna().tolist() == [True, False] and trend["samples_per_s"].iloc[1] == 1500.0
    assert trend["test_accuracy"].iloc[0] == 0.9 and np.isnan(trend["test_accuracy"].iloc[1])  # text: not a number
    assert trend["run_id"].dtype == np.int64 and str(trend["created_at"].dt.tz) == "UTC"
    assert trend["samples_per_s"].dtype == np.float64 and trend["test_accuracy"].dtype == np.float64
    runs = load_runs(db, status="ok")
    assert trend["created_at"].tolist() == runs["created_at"].tolist()
    assert trend[["model", "dataset", "device", "mode"]].values.tolist() == [["mlp", "digits", "cpu", "eager"]] * 2

    every = load_metrics(db, metrics=["extra", "train_s", "extra", "status"], status=None)
    assert list(every.columns[-3:]) == ["extra", "train_s", "metric_status"]  # repeats dropped, clash renamed
    assert every["status"].tolist() == ["ok", "diverged", "ok"]
    assert every["extra"].isna().tolist() == [True, False, True] and every["extra"].iloc[1] == 3.0
    assert every["train_s"].isna().all()  # stored null
    assert every["metric_status"].isna().tolist() == [True, True, False]
    jax = load_metrics(db, metrics="test_accuracy", framework="jax", status=["diverged"])
    assert jax["test_accuracy"].tolist() == [0.8]
    assert load_metrics(db, status=None, last=2)["run_id"].tolist() == [2, 3]
    assert load_metrics(db, status=None, framework=["torch", "jax"], last=1)["run_id"].tolist() == [2]
    assert load_metrics(db, model="cnn").empty and len(load_metrics(db, since="2000-01-01")) == 2
    none = load_metrics(db, since=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))
    assert none.empty and list(none.columns) == list(trend.columns)
    assert list(load_metrics(db, metrics=[]).columns) == list(trend.columns[:8])


def test_load_metrics_on_a_missing_file_and_bad_names(tmp_path):
    path = tmp_path / "nowhere" / "results.db"
    empty = load_metrics(path, metrics=["mfu"])
    assert empty.empty and list(empty.columns) == [*results._METRIC_BASE, "mfu"]
    assert empty["mfu"].dtype == np.float64 and str(empty["created_at"].dt.tz) == "UTC"
    for bad in (["samples/s"], ["x') OR 1 --"], ["a.b"], [""], [3], ["ok", None]):
        with pytest.raises(ValueError, match=r"^metrics: names are made of letters, digits and _"):
            load_metrics(path, metrics=bad)
    with pytest.raises(ValueError, match="^last:"):
        load_metrics(path, last=-1)
    with pytest.raises(ValueError, match="^since:"):
        load_metrics(path, since="yesterday")
    assert not path.parent.exists()


def test_load_metrics_decodes_no_other_json_and_names_a_bad_metrics_row(db):
    conn = sqlite3.connect(db)
    conn.execute("UPDATE runs SET config = '{broken', env = '[', versions = 'x', notes = NULL WHERE id = 1")
    conn.commit()
    with pytest.raises(StoreError, match="the 'versions' of run 1 is not valid JSON"):
        load_runs(db)
    assert load_metrics(db, status=None)["test_accuracy"].tolist() == [0.9, 0.8]  # it never reads them
    for value, problem in (("{not json", "is not valid JSON"), ("[1, 2]", "is JSON list, not an object")):
        conn.execute("UPDATE runs SET metrics = ? WHERE id = 2", (value,))
        conn.commit()
        assert load_metrics(db)["run_id"].tolist() == [1]  # run 2 (diverged) is not among the runs kept
        with pytest.raises(StoreError) as info:
            load_metrics(db, status=None)
        assert f"the 'metrics' of run 2 {problem}" in str(info.value) and "WHERE id = 2" in str(info.value)
    conn.execute("UPDATE runs SET metrics = '' WHERE id = 2")  # empty: no metrics, as load_runs reads it
    conn.commit()
    conn.close()
    assert load_metrics(db, status=None)["test_accuracy"].isna().tolist() == [False, True]


def test_load_tags_reads_config_tags_in_sql(tmp_path):
    path = tmp_path / "results.db"
    with ResultsStore(path) as store:
        cid = store.begin_comparison({**CONFIG, "tags": {"suite": "standard", "suite_item": "cnn", "n": 2,
                                                         "status": "x"}}, ENV)  # fmt: skip
        store.add_run(cid, make_run("torch"))  # the run's config is the comparison's
        store.add_run(store.begin_comparison(CONFIG, ENV), make_run("jax"))  # no tags
        store.add_run(cid, {**make_run("sklearn"), "config": {"tags": ["not", "an", "object"]}})
    every = load_tags(path, tags=["suite_item", "n", "status"])
    assert list(every.columns) == [*results._TAG_BASE, "suite_item", "n", "tag_status"]
    assert every["run_id"].tolist() == [1, 2, 3] and every["suite_item"].iloc[0] == "cnn"
    assert every["suite_item"].isna().tolist() == [False, True, True]  # no tags; tags not an object
    assert every["n"].iloc[0] == 2 and every["n"].iloc[1:].isna().all() and every["tag_status"].iloc[0] == "x"
    assert every["comparison_id"].tolist() == [1, 2, 1] and str(every["created_at"].dt.tz) == "UTC"
    assert load_tags(path, tags="suite_item", match={"suite": "standard"})["run_id"].tolist() == [1]
    assert load_tags(path, tags=[], match={"n": 2})["run_id"].tolist() == [1]
    assert load_tags(path, tags="n", match={"suite": "other"}).empty
    assert list(load_tags(tmp_path / "none.db", tags="n").columns) == [*results._TAG_BASE, "n"]
    for kwargs, start in ((dict(tags=["a-b"]), "tags:"), (dict(tags=[], match={"a b": 1}), "match:"),
                          (dict(tags=[], match={"suite": None}), "match:"),
                          (dict(tags=[], match={"suite": True}), "match:")):  # fmt: skip
        with pytest.raises(ValueError, match=f"^{start}"):
            load_tags(path, **kwargs)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE runs SET config = '{\"tags\": ' WHERE id = 2")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="the 'config' of run 2 is not valid JSON"):
        load_tags(path, tags="n", match={"suite": "standard"})


def test_latest_profile_runs_gives_the_newest_profile_per_framework(db):
    def profile(ms):
        return {"steps": 5, "step_ms": ms, "unprofiled_step_ms": ms, "ops_ms": ms, "device": "cpu",
                "rows": [{"op": "dot", "category": "matmul", "self_ms_per_step": ms}]}  # fmt: skip

    none = latest_profile_runs(db)
    assert none.empty and list(none.columns) == list(load_profile_runs(db).columns)
    with ResultsStore(db) as store:
        store.add_profile(1, profile(1.0))
        store.add_profile(2, profile(2.0))
        cid = store.begin_comparison({**CONFIG, "model": "cnn"}, ENV)
        store.add_profile(store.add_run(cid, make_run("torch")), profile(3.0))
        store.add_run(cid, make_run("torch"))  # newer, not profiled
    newest = latest_profile_runs(db)
    assert newest[["run_id", "framework", "step_ms"]].values.tolist() == [[2, "jax", 2.0], [3, "torch", 3.0]]
    assert newest["native"].tolist() == [[], []] and newest["step_ms"].dtype == np.float64
    assert latest_profile_runs(db, model="mlp")["run_id"].tolist() == [1, 2]
    assert latest_profile_runs(db, framework="torch", status="ok")["run_id"].tolist() == [3]
    assert latest_profile_runs(db, since=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).empty
    assert latest_profile_runs(db.parent / "none.db").empty


def test_the_indices_are_made_and_added_to_an_older_store(db):
    def indices():
        conn = sqlite3.connect(db)
        try:
            return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        finally:
            conn.close()

    assert {"runs_lookup", "runs_status", "curves_run", "epochs_run", "profiles_run"} <= indices()
    conn = sqlite3.connect(db)
    conn.execute("DROP INDEX runs_status")  # a store made before the index existed
    conn.commit()
    conn.close()
    assert len(load_metrics(db)) == 1 and "runs_status" not in indices()  # reading works and adds nothing
    ResultsStore(db).close()  # the next opening for writing adds it
    assert "runs_status" in indices()
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_schema_1_store_gets_the_indices_on_upgrading(tmp_path):
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    for statement in results._SCHEMA:
        if "profile" not in statement and "runs_status" not in statement:
            conn.execute(statement)
    conn.execute("CREATE TABLE profiles (run_id INTEGER, name TEXT)")
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [("created_by", "mlx-explore"), ("schema_version", "1")])
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    ResultsStore(path).close()
    conn = sqlite3.connect(path)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"runs_status", "profiles_run"} <= names and conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()


def test_load_tags_env_entries_are_what_json_reads(tmp_path):
    """``env`` entries come back as ``json.loads`` gives them (types and all), though SQLite takes them out."""
    path = tmp_path / "results.db"
    envs = [{"cpu_model": "it's", "usable_cores": 2, "gpus": ["A, 1", "B"], "other": 1},
            {"usable_cores": 2.5, "gpus": None}, {"cpu_model": None, "usable_cores": True, "gpus": {"x": [1, {"y": 2}]}},
            {}, {"cpu_model": 0.30000000000000004, "usable_cores": 123456789012345678, "gpus": "text"}]  # fmt: skip
    with ResultsStore(path) as store:
        cid = store.begin_comparison(CONFIG, ENV)
        ids = [store.add_run(cid, {**make_run("torch"), "env": e}) for e in envs]
    keys = ["cpu_model", "usable_cores", "gpus"]
    got = load_tags(path, env=keys)
    assert list(got.columns) == [*results._TAG_BASE, "env"]
    for env, want in zip(got["env"], envs):
        want = {k: want[k] for k in keys if k in want}
        assert env == want and [type(v) for v in env.values()] == [type(v) for v in want.values()]
    some = load_tags(path, env="gpus", run_ids=ids[1:3])
    assert some["env"].tolist() == [{"gpus": None}, {"gpus": {"x": [1, {"y": 2}]}}]
    conn = sqlite3.connect(path)
    conn.execute("UPDATE runs SET env = '[1]' WHERE id = ?", (ids[3],))
    conn.execute("UPDATE runs SET env = '{oops' WHERE id = ?", (ids[4],))
    conn.commit()
    conn.close()
    assert len(load_tags(path, env=keys, run_ids=ids[:3])) == 3
    with pytest.raises(StoreError, match=f"the 'env' of run {ids[3]} is JSON list, not an object"):
        load_tags(path, env=keys, run_ids=ids[3])
    with pytest.raises(StoreError, match=f"the 'env' of run {ids[4]} is not valid JSON"):
        load_tags(path, env=keys, run_ids=ids[4])


def test_regression_checks_are_stored_and_read_back_and_a_store_without_them_reads_empty(tmp_path):
    from mlx_explore.results import load_checks

    db = tmp_path / "r.db"
    assert load_checks(db).empty and not db.exists()
    checks = [{"name": "accuracy.mlp.digits.jax", "family": "accuracy", "value": 0.95, "unit": "fraction",
               "baseline": 0.93, "tolerance": 0.0, "verdict": "pass", "detail": "0.95 is at least the floor 0.93"},
              {"name": "parity.cnn.torch.reference", "family": "parity", "value": None, "unit": "",
               "baseline": None, "tolerance": 1e-4, "verdict": "error", "detail": "failed: boom"}]  # fmt: skip
    with ResultsStore(db) as store:
        assert store.add_checks("s1", checks, machine_class="cpu-x-2c", size="small") == 2
        with pytest.raises(ValueError, match="verdict"):
            store.add_checks("s2", [{"name": "x"}])
    got = load_checks(db)
    assert list(got["name"]) == [c["name"] for c in checks] and list(got["verdict"]) == ["pass", "error"]
    assert got["value"].iloc[0] == 0.95 and np.isnan(got["value"].iloc[1]) and set(got["session"]) == {"s1"}
    assert list(load_checks(db, family="parity")["name"]) == ["parity.cnn.torch.reference"]
    assert str(got["created_at"].dt.tz) == "UTC" and (got["machine_class"] == "cpu-x-2c").all()
