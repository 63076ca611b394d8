"""Shared helpers for the test suite. Every framework is installed by `make test`'s set-up, so
nothing here skips a framework: a missing one is a failure of the set-up, not a reason to pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DL_FRAMEWORKS = ("torch", "jax", "tensorflow")


def run_cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m mlx_explore.cli ARGS`` and return the completed process (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "mlx_explore.cli", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=ROOT,
    )  # fmt: skip


def child_json(*args: str, timeout: float = 300) -> dict:
    """Run ``python ARGS`` in a child process from the repository root (frameworks are never imported
    into the test process) and return the JSON object its last line of output holds."""
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def profile_child(framework: str, out: Path, *pairs: str, timeout: float = 300) -> dict:
    """``tests/profile_driver.py FRAMEWORK OUT PAIRS...`` in a child process: its JSON result."""
    return child_json(str(ROOT / "tests" / "profile_driver.py"), framework, str(out), *pairs, timeout=timeout)


def probe(framework: str, bundle_path: Path, out: Path) -> dict:
    """Run ``tests/framework_probe.py`` for one framework in its own process; return its npz arrays."""
    import numpy as np

    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "framework_probe.py"), framework, str(bundle_path), str(out)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    assert proc.returncode == 0, f"{framework} probe failed:\n{proc.stderr[-3000:]}"
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(autouse=True)
def results_db(tmp_path, monkeypatch) -> Path:
    """Every test writes its runs to its own results store, never to the user's home."""
    path = tmp_path / "store" / "results.db"
    monkeypatch.setenv("MLX_EXPLORE_DB", str(path))
    return path


@pytest.fixture
def tiny_kwargs():
    """A comparison small enough to run in seconds per framework."""
    return dict(model="mlp", dataset="digits", hidden=(32,), epochs=1, batch_size=64, optimizer="sgd", lr=0.1, mode="eager",
                latency_steps=20)


def alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie (Linux /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


# ------------------------------------------------------------------ file-system faults (issue 11)

#: Size of the file system :func:`full_disk_dir` gives: SQLite's 32 KiB ``-shm`` file, the schema and a few
#: runs with a curve of a few hundred points fit; a few more do not.
FULL_DISK_BYTES = 256 * 1024


@pytest.fixture
def small_disk(tmp_path):
    """Factory: ``small_disk(size_bytes=FULL_DISK_BYTES) -> Path``, an empty folder that is its own tmpfs
    of ``size_bytes`` (rounded up to whole 4 KiB pages), so writing in it fails with ENOSPC ("No space
    left on device"; SQLite: "database or disk is full") once that much is used, exactly as on a full
    disk. Files in it are in memory and count against the size, and nothing outside it is limited.

    It runs ``mount -t tmpfs`` in this machine's mount namespace, so child processes (a CLI under test)
    see the same small disk; every mount is lazily unmounted when the test ends, even if files in it
    are still open (a test run killed with SIGKILL leaves it mounted: ``umount`` it by hand). Mounting needs root or CAP_SYS_ADMIN: CI runs as root, so where it cannot mount the
    test fails, naming why, instead of passing without testing anything.
    """
    import shutil

    mounts: list[Path] = []

    def make(size_bytes: int = FULL_DISK_BYTES) -> Path:
        folder = tmp_path / f"small-disk-{len(mounts)}"
        folder.mkdir()
        try:
            proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(size_bytes)},mode=0755",
                                   "mlx-explore-small-disk", str(folder)], capture_output=True, text=True)  # fmt: skip
        except FileNotFoundError as e:
            pytest.fail(f"small_disk: no mount command ({e}); it needs util-linux and root")
        if proc.returncode != 0:
            pytest.fail(f"small_disk: cannot mount a {size_bytes}-byte tmpfs at {folder} (needs root or "
                        f"CAP_SYS_ADMIN; running as uid {os.geteuid()}): {proc.stderr.strip()}")  # fmt: skip
        mounts.append(folder)
        total = shutil.disk_usage(folder).total
        assert total <= size_bytes + 4096, f"small_disk: {folder} holds {total} bytes, not {size_bytes}"
        return folder

    yield make
    for folder in reversed(mounts):
        subprocess.run(["umount", "--lazy", str(folder)], capture_output=True, text=True)


@pytest.fixture
def full_disk_dir(small_disk) -> Path:
    """An empty folder on its own file system of :data:`FULL_DISK_BYTES` (256 KiB), which fills up after a
    few hundred KB: a store written there fails with "database or disk is full" part way through a
    comparison. See :func:`small_disk` for how it works and for another size. Example::

        def test_full_disk_keeps_finished_runs(full_disk_dir):
            db = full_disk_dir / "results.db"
            ...  # run a comparison with --db db; the runs stored before the disk filled are complete
    """
    return small_disk()


def without_write_override(argv: list[str]) -> list[str]:
    """``argv`` prefixed so that it runs without the power to ignore file permissions: as root, through
    ``setpriv`` (util-linux) with every capability dropped (CAP_DAC_OVERRIDE, CAP_FOWNER...), so a
    ``chmod`` stops its writes as it would stop any user's; as another user, unchanged. The process
    keeps uid 0, so it can still read root's 0700 ``tmp_path``. If ``setpriv`` is missing as root this
    fails the test: without it a read-only test would test nothing."""
    import shutil

    if os.geteuid() != 0:
        return list(argv)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is needed to drop root's capabilities so that chmod stops writes")
    return [setpriv, "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--", *argv]


# ------------------------------------------------------------------ the standard suite (issue 13)

#: Frameworks of the suite the tests share: the two quickest to start (about two minutes for the
#: whole small suite on 2 loaded CPU cores: JAX also runs the sequence items, scikit-learn the MLP
#: and boosting ones); ``make test``'s README check runs all four word for word.
SUITE_FRAMEWORKS = "jax,sklearn"


@pytest.fixture(scope="session")
def suite_store(tmp_path_factory) -> Path:
    """A results store holding one complete small suite session of this machine, run through the
    real CLI (``mlx-explore suite --size small --frameworks jax,sklearn``). Read it, do not write it:
    copy it first (``shutil.copy``) to add runs.

    Under pytest-xdist the workers share one store: the first to ask runs the suite while holding a
    lock (``fcntl.flock``) in the folder above theirs, the others wait and read it (the suite takes
    about two minutes of a loaded 2-core machine; once per worker was twice that)."""
    import fcntl

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, above every worker's own
    folder = root / "suite-shared"
    folder.mkdir(exist_ok=True)
    path, done = folder / "suite.db", folder / "complete"
    with open(root / "suite-shared.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            path.unlink(missing_ok=True)  # a suite that failed part way in another worker
            proc = run_cli("suite", "--size", "small", "--frameworks", SUITE_FRAMEWORKS, "--db", str(path), "--quiet")
            assert proc.returncode == 0, f"suite failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            done.touch()
    return path
