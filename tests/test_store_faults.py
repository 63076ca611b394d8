"""The results store under real faults: a read-only file, folder or both (as a process that cannot
override permissions), a path under a file, a disk that fills during a comparison, an I/O error, a
corrupt JSON value in a row, and bad ``last``/``since`` filters. No mocks: the file system and SQLite fail
for real, and each test checks both the error and that the runs stored before it are intact."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlx_explore.results import (MAX_LAST, ResultsStore, StoreError, StoreWriteError, load_curves, load_epochs,
                                 load_runs)  # fmt: skip

from .conftest import ROOT, without_write_override

CONFIG = {"model": "mlp", "dataset": "digits", "epochs": 2}
POINTS = 200  # curve points per run: a run is a few pages of SQLite, so a 256 KiB disk fills after a few


def make_run(framework: str, acc: float = 0.9) -> dict:
    return {
        "framework": framework, "mode": "eager", "repeat": 1, "status": "ok", "device": "cpu",
        "metrics": {"test_accuracy": acc}, "versions": {framework: "1.0"},
        "curve": [{"step": s, "epoch": s // 100, "loss": 1.0 / (s + 1), "time_s": 0.01 * s} for s in range(POINTS)],
        "epochs": [{"epoch": e, "train_loss": 0.5, "val_loss": 0.6, "val_accuracy": 0.8, "time_s": 1.0}
                   for e in range(2)],
    }  # fmt: skip


def make_store(path: Path, frameworks=("torch", "jax")) -> Path:
    with ResultsStore(path) as store:
        cid = store.begin_comparison(CONFIG, {})
        for k, fw in enumerate(frameworks):
            store.add_run(cid, make_run(fw, acc=0.9 - 0.1 * k))
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ------------------------------------------------------------------------------------------ read-only

# Runs in a child process that cannot override file permissions (conftest.without_write_override).
READ_ONLY_CHILD = r"""
import json, sys
from pathlib import Path
from mlx_explore.results import ResultsStore, StoreError, load_curves, load_epochs, load_runs

path, case = Path(sys.argv[1]), sys.argv[2]
# Precondition: this process really cannot write there; else the test would prove nothing.
for target, attempt in ((path, lambda: open(path, "r+b").close()),
                        (path.parent, lambda: open(path.parent / "probe", "x").close())):
    if (case == "file" and target == path) or (case == "folder" and target == path.parent) or case == "both":
        try:
            attempt()
        except PermissionError:
            continue
        print(json.dumps({"not_stopped": str(target)}))
        sys.exit(3)
out = {}
try:
    ResultsStore(path).close()
    out["write"] = None
except StoreError as e:
    out["write"] = {"type": type(e).__name__, "reason": getattr(e, "reason", None), "path": str(e.path),
                    "message": str(e)}
runs = load_runs(path)
out["frameworks"] = runs["framework"].tolist()
out["accuracy"] = runs["test_accuracy"].tolist()
out["curves"] = len(load_curves(path))
out["epochs"] = len(load_epochs(path, framework="jax"))
print(json.dumps(out))
"""


def run_unprivileged(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(without_write_override([sys.executable, *args]), capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})  # fmt: skip


@pytest.mark.parametrize("case", ["file", "folder", "both"])
def test_read_only_store_refuses_writing_and_is_read(tmp_path, case):
    folder = tmp_path / "store"
    folder.mkdir()
    path = make_store(folder / "results.db")
    before = snapshot(folder)
    assert sorted(before) == ["results.db"]  # closed cleanly: no -wal/-shm to lean on
    if case in ("file", "both"):
        path.chmod(0o444)
    if case in ("folder", "both"):
        folder.chmod(0o555)
    try:
        child = run_unprivileged("-c", READ_ONLY_CHILD, str(path), case)
        cli = run_unprivileged("-m", "mlx_explore.cli", "results", "--db", str(path), "--json")
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)
    assert child.returncode == 0, f"child failed (3: the write was not stopped):\n{child.stdout}\n{child.stderr}"
    out = json.loads(child.stdout)
    write = out["write"]
    assert write is not None, "opening a read-only store for writing succeeded"
    assert write["type"] == "StoreWriteError" and write["reason"] == "read-only" and write["path"] == str(path)
    message = write["message"]
    assert str(path) in message and "read-only" in message and "--db" in message and "Nothing was changed" in message
    if case == "folder":
        assert f"its folder {folder} is read-only" in message and "results.db-wal" in message
    else:
        assert f"the file {path} is read-only" in message and "chmod u+w" in message
    assert out["frameworks"] == ["torch", "jax"] and out["accuracy"] == pytest.approx([0.9, 0.8])
    assert out["curves"] == 2 * POINTS and out["epochs"] == 2
    assert cli.returncode == 0, cli.stderr
    assert [r["framework"] for r in json.loads(cli.stdout)] == ["torch", "jax"]
    after = snapshot(folder)
    assert after["results.db"] == before["results.db"]  # not a byte changed
    if case != "file":  # in a read-only folder nothing can be created (in a writable one SQLite may leave -wal/-shm)
        assert sorted(after) == ["results.db"]


def test_read_only_folder_with_an_unmerged_log_is_a_clear_error(tmp_path):
    """A store whose newest rows are still only in its -wal, copied into a read-only folder without its
    -shm: SQLite cannot read it there, and immutable=1 would silently miss those rows."""
    live = make_store(tmp_path / "live" / "results.db", frameworks=("torch",))
    writer = sqlite3.connect(live, isolation_level=None)
    writer.execute("SELECT count(*) FROM runs").fetchone()  # holds the log open: closing the store won't merge it
    with ResultsStore(live) as store:
        store.add_run(1, make_run("jax"))
    folder = tmp_path / "copy"
    folder.mkdir()
    for name in ("results.db", "results.db-wal"):
        (folder / name).write_bytes((live.parent / name).read_bytes())
    writer.close()
    assert (folder / "results.db-wal").stat().st_size > 0
    folder.chmod(0o555)
    try:
        code = ("import sys; from mlx_explore.results import load_runs, StoreError\n"
                "try:\n    print(load_runs(sys.argv[1])['framework'].tolist())\n"
                "except StoreError as e:\n    print('StoreError:', e)")  # fmt: skip
        child = run_unprivileged("-c", code, str(folder / "results.db"))
    finally:
        folder.chmod(0o755)
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith("StoreError:"), child.stdout
    assert "results.db-wal" in child.stdout and f"folder {folder} is read-only" in child.stdout
    assert load_runs(folder / "results.db")["framework"].tolist() == ["torch", "jax"]  # writable: both runs


def test_unreadable_store_says_so(tmp_path):
    path = make_store(tmp_path / "results.db")
    path.chmod(0o000)
    code = ("import sys; from mlx_explore.results import ResultsStore, StoreError, load_runs\n"
            "for attempt in (lambda: load_runs(sys.argv[1]), lambda: ResultsStore(sys.argv[1])):\n"
            "    try:\n        attempt()\n    except StoreError as e:\n        print(type(e).__name__, e)")
    try:
        child = run_unprivileged("-c", code, str(path))
    finally:
        path.chmod(0o644)
    assert child.returncode == 0, child.stderr
    read, write = child.stdout.splitlines()
    assert read.startswith(f"StoreError Results store {path} cannot be read: this user may not read the file")
    assert write.startswith("StoreWriteError ") and "may neither read nor write" in write and "chmod u+rw" in write
    assert "Reading it still works" not in write


# ------------------------------------------------------------------------------------------ bad paths


@pytest.mark.parametrize("under", ["results.db", "deeper/results.db"])
def test_path_under_a_file(tmp_path, under):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder\n")
    path = blocker / under
    with pytest.raises(StoreError) as info:
        ResultsStore(path)
    message = str(info.value)
    assert info.value.path == path and str(path) in message and f"{blocker} is a file" in message
    assert "--db" in message and "Nothing was changed" in message
    assert blocker.read_text() == "a file, not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert load_runs(path).empty  # reading: nothing is stored there


def test_etc_passwd_is_not_a_folder():
    with pytest.raises(StoreError, match=r"/etc/passwd is a file"):
        ResultsStore("/etc/passwd/results.db")


def test_folder_as_store_path(tmp_path):
    for attempt in (lambda: ResultsStore(tmp_path), lambda: load_runs(tmp_path), lambda: load_curves(tmp_path)):
        with pytest.raises(StoreError, match="is a folder, not a file") as info:
            attempt()
        assert str(tmp_path) in str(info.value) and "results.db" in str(info.value)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ full disk


def stored(path: Path) -> tuple[list[str], dict[int, int], dict[int, int]]:
    runs = load_runs(path)
    return (runs["framework"].tolist(), load_curves(path).groupby("run_id").size().to_dict(),
            load_epochs(path).groupby("run_id").size().to_dict())  # fmt: skip


def test_disk_filling_during_a_comparison_keeps_the_finished_runs(full_disk_dir):
    path = full_disk_dir / "results.db"
    ballast = full_disk_dir / "ballast"
    ballast.write_bytes(b"\0" * 65536)  # given back at the end to show the store is still sound
    store = ResultsStore(path)
    try:
        cid = store.begin_comparison(CONFIG, {})
        written, statements = [], []
        with pytest.raises(StoreWriteError) as info:
            for k in range(200):  # a few fit in 256 KiB; 200 would need megabytes
                statements.clear()
                store._conn.set_trace_callback(statements.append)
                store.add_run(cid, make_run(f"fw{k}"))
                written.append(f"fw{k}")
        store._conn.set_trace_callback(None)
        assert statements.count("BEGIN IMMEDIATE") == 1  # a full disk is not retried (only "locked" is)
        assert 1 <= len(written) < 200
        failed = f"fw{len(written)}"
        message = str(info.value)
        assert info.value.reason == "disk full" and info.value.path == path
        assert str(path) in message and "disk is full" in message and "rolled back" in message and "--db" in message
        assert failed in message

        frameworks, curves, epochs = stored(path)  # read while the writer is still open and the disk full
        assert frameworks == written
        assert list(curves.values()) == [POINTS] * len(written) and list(epochs.values()) == [2] * len(written)
        assert set(curves) == set(epochs) == set(load_runs(path)["run_id"])  # no rows of the failed run

        with pytest.raises(StoreWriteError, match="disk is full"):
            store.begin_comparison({**CONFIG, "model": "cnn"}, {"big": "x" * 100_000})
        with pytest.raises(StoreWriteError, match="disk is full") as info:
            store.add_profile(1, {"rows": [{"op": f"op{i}", "category": "other", "calls_per_step": i, "self_ms_per_step": 1.0}
                                           for i in range(5000)]})  # fmt: skip
        assert info.value.reason == "disk full"
    finally:
        store.close()
    assert stored(path)[0] == written  # after closing on a full disk (its checkpoint fails) too
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM comparisons").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM profiles").fetchone()[0] == 0
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()

    ballast.unlink()  # space again: the same store takes the run that failed
    with ResultsStore(path) as store:
        store.add_run(1, make_run(failed))
    frameworks, curves, _ = stored(path)
    assert frameworks == [*written, failed] and set(curves.values()) == {POINTS}


def test_max_page_count_full_is_a_store_write_error(tmp_path):
    """SQLITE_FULL without a small file system: SQLite's own page limit on this connection."""
    path = make_store(tmp_path / "results.db", frameworks=("torch",))
    with ResultsStore(path) as store:
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages + 1}")
        with pytest.raises(StoreWriteError, match="disk is full") as info:
            store.add_run(1, {**make_run("jax"), "curve": [{"step": s, "loss": 1.0} for s in range(5000)]})
        assert info.value.reason == "disk full"
    assert stored(path)[0] == ["torch"] and stored(path)[1] == {1: POINTS}


IO_ERROR_CHILD = r"""
import os, resource, sys
from pathlib import Path
from mlx_explore.results import ResultsStore, StoreWriteError
path = Path(sys.argv[1])
with ResultsStore(path) as store:
    biggest = max(p.stat().st_size for p in path.parent.iterdir())
    # Python ignores SIGXFSZ, so a write past this limit fails with EFBIG: SQLite's "disk I/O error".
    resource.setrlimit(resource.RLIMIT_FSIZE, (biggest + 8192, resource.RLIM_INFINITY))
    try:
        curve = [{"step": s, "loss": 1.0} for s in range(20000)]
        store.add_run(1, {"framework": "big", "status": "ok", "curve": curve})
    except StoreWriteError as e:
        print(e.reason, "|", e)
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
"""


def test_io_error_is_a_store_write_error(tmp_path):
    path = make_store(tmp_path / "results.db")
    child = subprocess.run([sys.executable, "-c", IO_ERROR_CHILD, str(path)], capture_output=True, text=True,
                           timeout=300, cwd=ROOT)  # fmt: skip
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith("I/O error | "), child.stdout
    assert str(path) in child.stdout and "disk I/O error" in child.stdout and "rolled back" in child.stdout
    assert stored(path) == (["torch", "jax"], {1: POINTS, 2: POINTS}, {1: 2, 2: 2})


# ------------------------------------------------------------------------------------------ corrupt rows


@pytest.mark.parametrize("column, value, problem", [
    ("metrics", "{not json", "is not valid JSON"),
    ("config", '{"model": "mlp"', "is not valid JSON"),
    ("versions", "[1, 2]", "is JSON list, not an object"),
])  # fmt: skip
def test_corrupt_json_in_a_row_names_the_run_and_column(tmp_path, column, value, problem):
    path = make_store(tmp_path / "results.db")
    conn = sqlite3.connect(path)
    conn.execute(f"UPDATE runs SET {column} = ? WHERE id = 2", (value,))
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError) as info:
        load_runs(path)
    message = str(info.value)
    assert f"the {column!r} of run 2 {problem}" in message and str(path) in message and "WHERE id = 2" in message
    assert not isinstance(info.value, ValueError)  # the CLI must not take it for a bad --since
    assert load_runs(path, framework="torch")["framework"].tolist() == ["torch"]  # the other run still reads
    assert len(load_curves(path)) == 2 * POINTS  # the long tables hold no JSON
    assert path.read_bytes() == before


def test_corrupt_comparison_config_refuses_the_run(tmp_path):
    path = make_store(tmp_path / "results.db", frameworks=("torch",))
    conn = sqlite3.connect(path)
    conn.execute("UPDATE comparisons SET config = '{oops' WHERE id = 1")
    conn.commit()
    conn.close()
    run = make_run("jax")
    with ResultsStore(path) as store, pytest.raises(StoreError, match="the 'config' of comparison 1 is not valid JSON"):
        store.add_run(1, run)
    assert stored(path)[0] == ["torch"]


def test_corrupt_time_names_the_run(tmp_path):
    path = make_store(tmp_path / "results.db")
    conn = sqlite3.connect(path)
    conn.execute("UPDATE runs SET created_at = 'yesterday' WHERE id = 1")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="the 'created_at' of run 1 is not an ISO 8601 time"):
        load_runs(path)


# ------------------------------------------------------------------------------------------ bad filters


@pytest.mark.parametrize("last", [-1, 10**20, MAX_LAST + 1, 2.5, "3", True])
def test_bad_last_is_refused_before_any_sql(tmp_path, last):
    with pytest.raises(ValueError, match=rf"^last: expected a whole number from 0 to {MAX_LAST}\b"):
        load_runs(tmp_path, last=last)  # a folder: opening it would be a StoreError, so nothing was opened


def test_good_last(tmp_path):
    path = make_store(tmp_path / "results.db", frameworks=("torch", "jax", "tensorflow"))
    assert load_runs(path, last=MAX_LAST)["framework"].tolist() == ["torch", "jax", "tensorflow"]
    assert load_runs(path, last=np.int64(1))["framework"].tolist() == ["tensorflow"]
    assert load_runs(path, last=0).empty


@pytest.mark.parametrize("since", ["not a date", "", "2026-13-45", 12345, ["2026-01-01"]])
def test_bad_since_is_refused(tmp_path, since):
    for load in (load_runs, load_curves, load_epochs):
        with pytest.raises(ValueError, match=r"^since: expected an ISO 8601 date or date and time") as info:
            load(tmp_path, since=since)
        assert repr(since) in str(info.value)


def test_good_since(tmp_path):
    path = make_store(tmp_path / "results.db")
    assert len(load_runs(path, since="2000-01-01")) == 2 and len(load_runs(path, since=" 2000-01-01T00:00+02:00 ")) == 2
    assert load_runs(path, since=np.datetime64("2999-01-01")).empty
    assert load_epochs(path, since="2999-01-01T00:00:00Z").empty
