"""Failure paths of a comparison keep the README's promises (issue 11): signals, a raising callback,
an unwritable ``--out``, a shadowing ``mlx_explore/`` folder, a results store that fills up, and a
machine without a browser for ``make demo``. Each test uses the real part: a CLI process, real
signals, a real file system."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlx_explore import compare
from mlx_explore.events import Started, Step
from mlx_explore.results import load_runs

from .conftest import ROOT, alive, load_json

VENV_BIN = Path(sys.executable).parent


def _cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """Start the installed ``mlx-explore`` console script, as a user runs it."""
    return subprocess.Popen([str(VENV_BIN / "mlx-explore"), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})  # fmt: skip


def _descendants(pid: int) -> list[int]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                out.append(int(proc.name))
    return out + [d for c in out for d in _descendants(c)]


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _stored(db: Path) -> list[tuple[str, str]]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT framework, status FROM runs ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_like_ctrl_c(sig, tmp_path, results_db):
    """A closed terminal (SIGHUP) or a scheduler (SIGTERM) mid-run: finished runs stored, the running
    one stored as ``interrupted``, the JSON written, children and the temporary bundle folder gone,
    exit 128 + the signal's number."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = tmp_path / "out.json"
    # scikit-learn finishes in a second or two; torch's import and torch.compile then keep its child
    # busy for several seconds.
    cli = _cli("compare", "--frameworks", "sklearn,torch", "--mode", "compiled", "--epochs", "3", "--hidden", "16",
               "--latency-steps", "0", "-q", "--out", str(out), cwd=tmp_path, env={"TMPDIR": str(scratch)})  # fmt: skip
    try:
        _wait_for(lambda: _stored(results_db) == [("sklearn", "ok")] or cli.poll() is not None, 180, "sklearn's run")
        _wait_for(lambda: _descendants(cli.pid) or cli.poll() is not None, 30, "the torch child")
        time.sleep(1.0)  # into torch's import or compilation
        assert cli.poll() is None, cli.communicate()[1][-3000:]
        children = _descendants(cli.pid)
        cli.send_signal(sig)
        time.sleep(0.1)
        cli.send_signal(sig)  # a scheduler or an impatient user repeats it: nothing may be lost
        stdout, stderr = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 128 + sig, stderr[-3000:]
    assert signal.Signals(sig).name in stderr and "Traceback" not in stderr
    assert _stored(results_db) == [("sklearn", "ok"), ("torch", "interrupted")]
    doc = load_json(out)
    assert doc["interrupted"] is True
    assert [(r["framework"], r["status"]) for r in doc["runs"]] == [("sklearn", "ok"), ("torch", "interrupted")]
    assert children and not any(alive(c) for c in children)
    assert list(scratch.iterdir()) == []  # the bundle's temporary folder was removed


def test_ctrl_c_before_any_run_and_a_second_ctrl_c_still_write_the_json(tmp_path, results_db):
    """Ctrl-C while the comparison prepares (environment, data, the first child's imports), then a
    second Ctrl-C right after: a clean exit 130, the JSON written, no traceback, nothing stored for
    runs that never started."""
    out = tmp_path / "out.json"
    cli = _cli("compare", "--frameworks", "torch,sklearn", "--epochs", "2", "-q", "--out", str(out), cwd=tmp_path)
    try:
        # The store is opened first thing inside the comparison: from then on its handlers are in force.
        _wait_for(lambda: results_db.exists() or cli.poll() is not None, 60, "the store to be opened")
        cli.send_signal(signal.SIGINT)
        time.sleep(0.05)
        cli.send_signal(signal.SIGINT)
        stdout, stderr = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 130, stderr[-3000:] + stdout[-3000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    doc = load_json(out)
    assert doc["interrupted"] is True
    assert all(r["status"] == "interrupted" for r in doc["runs"])
    assert _stored(results_db) == [(r["framework"], "interrupted") for r in doc["runs"]]


_SWALLOWING_LIBRARY = """
import os, signal, sys, time
from mlx_explore import cli, runner

real_iter_compare = runner.iter_compare

def iter_compare(*args, **kwargs):
    try:  # what a bare `except:` around an optional import in some library does to a Ctrl-C
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)
    except BaseException:
        pass
    yield from real_iter_compare(*args, **kwargs)

runner.iter_compare = iter_compare
sys.argv = ["mlx-explore", *sys.argv[1:]]
cli.main()
"""


@pytest.mark.parametrize("command", ["compare", "suite"])
def test_a_ctrl_c_that_library_code_swallows_still_stops_the_comparison(command, tmp_path, results_db):
    """A Ctrl-C whose ``KeyboardInterrupt`` lands in library code that swallows it (seen in CI: the
    comparison ran to its end and exited 0): the first signal's stop event ends it all the same, with
    exit 130, the JSON marked interrupted and no run started after the Ctrl-C."""
    script = tmp_path / "swallow.py"
    script.write_text(_SWALLOWING_LIBRARY)
    out = tmp_path / "out.json"
    args = (["compare", "--frameworks", "sklearn", "--epochs", "2", "-q", "--out", str(out)] if command == "compare"
            else ["suite", "--size", "small", "--frameworks", "sklearn", "-q"])  # fmt: skip
    proc = subprocess.run([sys.executable, str(script), *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 130, proc.stderr[-3000:] + proc.stdout[-3000:]
    assert "Traceback" not in proc.stderr
    assert "interrupted (SIGINT)" in proc.stderr
    assert _stored(results_db) == []  # the Ctrl-C came before the first run: nothing ran, nothing stored
    if command == "compare":
        doc = load_json(out)
        assert doc["interrupted"] is True and doc["runs"] == []


def test_an_exception_in_a_callback_stores_the_running_run_as_failed(results_db):
    """An ``on_event`` callback that raises: the running run is stored as ``failed`` with the error,
    the finished run stays, its child is killed, and the exception reaches the caller."""
    pids = []

    def explode(event):
        if isinstance(event, Started):
            pids.append(event.pid)
        if isinstance(event, Step) and event.repeat == 2 and event.step == 3:
            raise RuntimeError("the live plot broke")

    with pytest.raises(RuntimeError, match="the live plot broke"):
        compare(frameworks=["sklearn"], model="mlp", hidden=(16,), dataset="digits", epochs=2, repeat=2,
                latency_steps=0, on_event=explode)  # fmt: skip
    stored = load_runs(results_db)
    assert list(zip(stored["repeat"], stored["status"])) == [(1, "ok"), (2, "failed")]
    assert "RuntimeError: the live plot broke" in stored["reason"].iloc[1]
    assert stored["test_accuracy"].iloc[0] > 0.5
    assert len(pids) == 2 and not alive(pids[1])


@pytest.mark.parametrize("out", ["/proc/x.json", "/etc/passwd/x.json", "."])
def test_an_unwritable_out_fails_before_anything_runs(out, tmp_path, results_db):
    cli = _cli("compare", "--frameworks", "sklearn", "--epochs", "1", "-q", "--out", out, cwd=tmp_path)
    stdout, stderr = cli.communicate(timeout=60)
    assert cli.returncode == 2, stderr
    assert "--out" in stderr and "Traceback" not in stderr
    assert not results_db.exists() or _stored(results_db) == []  # nothing ran


def test_children_import_the_parents_package_whatever_the_working_folder(tmp_path, results_db):
    """A folder named ``mlx_explore`` in the working directory (another checkout) must not be what the
    children import: they run exactly the parent's package."""
    shadow = tmp_path / "mlx_explore"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('the shadowing mlx_explore/ was imported')\n")
    (shadow / "worker.py").write_text("raise ImportError('the shadowing worker was imported')\n")
    cli = _cli("compare", "--frameworks", "sklearn", "--model", "logreg", "--dataset", "wine", "--epochs", "1",
               "--latency-steps", "0", "-q", "--out", str(tmp_path / "o.json"), cwd=tmp_path)  # fmt: skip
    stdout, stderr = cli.communicate(timeout=120)
    assert cli.returncode == 0, stdout + stderr
    assert load_json(tmp_path / "o.json")["runs"][0]["status"] == "ok"

    from mlx_explore.child import probe

    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        info = probe("sklearn")
    finally:
        os.chdir(old)
    assert info["installed"] and "error" not in info, info


def test_setup_for_the_main_job_needs_no_browser_and_no_apt(tmp_path):
    """``make demo``'s set-up on a machine with no ``chromium``, ``apt-get`` or ``sudo`` on PATH: it
    succeeds (the venv is up to date here); only the test set-up (``--tests``) asks for a browser."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "cat", "sha256sum", "cut", "dirname", "id", "env"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "VENV": str(VENV_BIN.parent)}
    main = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert main.returncode == 0, main.stdout + main.stderr
    assert "chromium" not in (main.stdout + main.stderr).lower()
    tests = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh"), "--tests"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert tests.returncode != 0 and "no apt-get" in tests.stderr, tests.stdout + tests.stderr


@pytest.mark.parametrize("with_out", [True, False])
def test_a_store_that_fills_up_keeps_every_run_in_the_table_and_json(with_out, small_disk, tmp_path):
    """The store's disk fills after the first run: the later runs still run and reach the table and
    the JSON (``--out``, or a file in the working folder), the user is told, exit 3; the stored run
    is intact."""
    disk = small_disk(2 * 1024 * 1024)
    db = disk / "results.db"
    out = tmp_path / "out.json"
    args = ["compare", "--frameworks", "sklearn", "--model", "logreg", "--dataset", "wine", "--epochs", "2",
            "--repeat", "3", "--latency-steps", "0", "-q", "--db", str(db)]  # fmt: skip
    cli = _cli(*args, *(["--out", str(out)] if with_out else []), cwd=tmp_path)
    try:
        _wait_for(lambda: len(_stored(db)) >= 1 or cli.poll() is not None, 120, "the first stored run")
        assert cli.poll() is None and len(_stored(db)) == 1, "the disk must fill while runs remain"
        with open(disk / "filler", "wb") as f:  # fill what is left of the disk
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        stdout, stderr = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 3, stdout + stderr
    flat = " ".join(stderr.split())
    assert "could not be written" in flat and "1 of 3 run(s) were stored" in flat and "Traceback" not in stderr
    assert stdout.count(" ok ") >= 3 or stdout.count("│ ok") >= 3, stdout  # every run is in the table
    if not with_out:
        written = sorted(tmp_path.glob("mlx-explore-*.json"))
        assert len(written) == 1, list(tmp_path.iterdir())
        out = written[0]
    doc = load_json(out)
    assert [r["status"] for r in doc["runs"]] == ["ok", "ok", "ok"]
    assert doc["runs"][0]["run_id"] is not None and [r["run_id"] for r in doc["runs"][1:]] == [None, None]
    assert doc["store_error"] and "disk" in doc["store_error"]
    (disk / "filler").unlink()
    assert _stored(db) == [("sklearn", "ok")]
    stored = load_runs(db)
    assert stored["test_accuracy"].iloc[0] == doc["runs"][0]["metrics"]["test_accuracy"]


@pytest.mark.parametrize("change, error", [
    ({"dataset": "mnist"}, "DatasetUnavailable"),
    ({"hidden": (100_000, 100_000)}, "ConfigError"),
])  # fmt: skip
def test_a_comparison_that_never_starts_writes_nothing_to_the_store(change, error, tmp_path, results_db, monkeypatch):
    from mlx_explore.data import DOWNLOADS

    # mnist from a closed local port: offline, fast, whatever the machine's network
    monkeypatch.setitem(DOWNLOADS, "mnist", [(f, "http://127.0.0.1:9/" + f, h) for f, _, h in DOWNLOADS["mnist"]])
    with pytest.raises(Exception) as info:
        compare(frameworks=["sklearn"], epochs=1, data_dir=str(tmp_path / "data"), **change)
    assert type(info.value).__name__ == error
    if results_db.exists():
        with sqlite3.connect(results_db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM comparisons").fetchone() == (0,)
            assert conn.execute("SELECT COUNT(*) FROM runs").fetchone() == (0,)


def test_a_store_path_under_a_file_is_exit_2_naming_db(tmp_path):
    cli = _cli("compare", "--frameworks", "sklearn", "--epochs", "1", "-q", "--db", "/etc/passwd/results.db",
               cwd=tmp_path)  # fmt: skip
    stdout, stderr = cli.communicate(timeout=60)
    assert cli.returncode == 2, stderr
    assert "--db" in stderr and "/etc/passwd" in stderr and "Traceback" not in stderr
