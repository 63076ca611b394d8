"""The environment of a comparison, both ways: the machine it ran on, recorded with every run
(:func:`environment`), and the process environment each framework's child starts with
(:func:`child_env`: the fairness policy, equal thread counts, quiet logs, honest memory).

Nothing here imports a framework: versions come from package metadata (``frameworks.versions``),
GPUs from ``nvidia-smi``, the revision from ``git``.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path

from . import frameworks as fw_registry
from .bench import usable_cores
from .config import RunConfig
from .version import __version__


def environment() -> dict:
    """Where a comparison ran, recorded with every run.

    Returns:
        A JSON-ready dict: ``mlx_explore`` (this package's version), ``host`` (the machine's network
        name, ``platform.node()``: which node of a cluster ran it), ``python``, ``platform``,
        ``machine``, ``cpu_model``, ``cpu_count`` (logical cores) and ``usable_cores`` (this
        process's affinity), ``gpus`` (the lines ``nvidia-smi`` lists: name, driver, memory; ``[]``
        without one), ``numpy``, ``versions`` (installed framework distributions, read from
        metadata), ``git_revision`` and ``git_dirty`` (``None`` outside a git checkout) and
        ``timestamp`` (UTC, ISO 8601, seconds). CUDA/cuDNN versions as each framework sees them
        are in every run's ``versions``. Never raises: a missing tool leaves its entry empty.
    """
    import numpy

    versions = {}
    for name in fw_registry.REGISTRY:
        versions.update(fw_registry.versions(name))
    revision, dirty = _git_state()
    return {
        "mlx_explore": __version__,
        "host": platform.node(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores(),
        "gpus": _nvidia_gpus(),
        "numpy": numpy.__version__,
        "versions": versions,
        "git_revision": revision,
        "git_dirty": dirty,
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``, else the
    machine type such as ``x86_64``). Never raises."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nvidia_gpus() -> list[str]:
    """``"name, driver, memory"`` per GPU ``nvidia-smi`` lists; ``[]`` without it or on error."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def _git_state() -> tuple[str | None, bool | None]:
    """``(HEAD revision, tracked files changed)`` of the checkout holding this package; ``(None, None)``
    when it is not in one (an installed wheel) or ``git`` is missing."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None, None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                capture_output=True, text=True, timeout=5)  # fmt: skip
        return rev.stdout.strip() or None, bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def child_env(config: RunConfig) -> dict[str, str]:
    """The process environment of a framework's child: equal thread counts, quiet logs, honest memory.

    Returns a copy of this process's ``os.environ`` with the variables below set (``str`` to
    ``str``); never raises.

    ``threads`` (default: all usable cores) goes to ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``/
    ``OPENBLAS_NUM_THREADS`` (PyTorch, NumPy, scikit-learn) and ``TF_NUM_INTRAOP_THREADS``; XLA's
    Eigen pool is single-threaded for 1 thread. The child also pins itself to that many cores and
    sets each framework's own switch (``worker.py``, ``configure`` in each trainer). JAX does not
    preallocate GPU memory and TensorFlow grows its GPU memory on demand, so one does not starve
    the other and memory figures mean something. With ``deterministic``: cuBLAS gets a fixed
    workspace (``CUBLAS_WORKSPACE_CONFIG=:4096:8``, required by PyTorch's deterministic mode on
    CUDA) and XLA ``--xla_gpu_deterministic_ops=true``.
    """
    n = str(min(config.threads or usable_cores(), usable_cores()))
    env = dict(os.environ)
    xla = env.get("XLA_FLAGS", "") + f" --xla_cpu_multi_thread_eigen={'true' if n != '1' else 'false'}"
    if config.deterministic:
        xla += " --xla_gpu_deterministic_ops=true"
        env["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
        env["TF_DETERMINISTIC_OPS"] = "1"
    env.update(
        OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n,
        TF_NUM_INTRAOP_THREADS=n, TF_NUM_INTEROP_THREADS=n, XLA_FLAGS=xla.strip(),
        KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2", TF_FORCE_GPU_ALLOW_GROWTH="true",
        XLA_PYTHON_CLIENT_PREALLOCATE="false", PYTHONUNBUFFERED="1",
    )  # fmt: skip
    return env
