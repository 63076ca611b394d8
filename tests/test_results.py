"""The results store: round trip, filters, WAL, default path, concurrent writers, and files it must refuse."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from mlx_explore import results
from mlx_explore.results import (SCHEMA_VERSION, ResultsStore, StoreError, load_curves, load_epochs, load_profile_runs,
                                 load_profiles, load_runs)

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
