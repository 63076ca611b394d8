"""A results store of 10,000 runs over six months, and how fast the overview dashboard's loaders read it.

What it is for. The overview page (the decision guide's recommendation, the newest suite session, trends
of a few metrics over every stored run, the newest profile per framework) must render in under 5 s on a
store of 10,000 runs. :func:`build_store` writes such a store; :func:`main` times each loader the page
calls on it and on a 100-run store, and prints both and their ratio. A loader that read every curve, or
decoded every run's JSON in Python, grows with the store (ratio ~ 100); one that reads an index and the
rows it needs grows far less.

What :func:`build_store` writes, all through the public :class:`~mlx_explore.results.ResultsStore` API
(``begin_comparison``, ``add_run``, ``add_profile``), with the rows ``runner.compare`` and ``suite.run``
write (the suite's ``tags`` in each config, ``env.environment()`` as the env):

* about 6 months of history (``created_at`` from 182 days ago to an hour ago; the API stamps rows with
  ``results._now()``, which the builder replaces with its own clock while it writes, and only then);
* mostly complete small-suite sessions (:data:`mlx_explore.suite.ITEMS`, 26 runs each with the four
  frameworks) of this machine; some of another machine (a GPU server), some interrupted part-way, some of
  an older suite version; ad-hoc comparisons (MLP and CNN on ``iris``, ``wine``, ``digits``) in between;
* about 1 % failed runs (a traceback, a partial curve, no metrics), now and then a diverged one, the
  suite's ``unsupported`` scikit-learn CNN;
* every run with the whole metric set of ``metric_docs.METRIC_DOCS`` (throughputs drifting slowly over
  the months, with noise), a ``steps``-point loss curve and one row per epoch, real-looking versions,
  flags and notes (rows of about 3 KB, like the real ones);
* with ``profiles``, a handful of profile comparisons (four frameworks, one profiled run each, about ten
  op rows per profile), spread over the months;
* last, the newest: one complete suite session of this machine (``suite.this_machine()``) and the
  current :data:`~mlx_explore.suite.SUITE_VERSION`, so ``guide.load_evidence(db)`` works on the store.

Run it (read the ratios: the absolute times depend on the machine and on what else runs on it)::

    python tests/benchmarks/dashboard_store.py                    # 10,000 runs vs 100, in a temp folder
    python tests/benchmarks/dashboard_store.py --runs 2000 --out /tmp/dash.db --keep

It prints the build time, then per loader the best of ``--repeat`` timings [ms] on each store and the
ratio. ``tests/test_dashboard_store.py`` checks a small build with the guide and the query plans.

Measured on the development machine (2 shared CPU cores, SQLite 3.40, 2026-11-23; best of 5, ms, 100 runs
-> 10,000 runs): build 7-9 s (84 MiB); ``guide.load_evidence`` 70 -> 148, ``guide.recommend`` 7 -> 6,
``guide.audit_claims`` 10 -> 10, ``suite.sessions`` 7 -> 81, ``suite.latest`` 18 -> 102,
``results.load_metrics`` 2 -> 53, newest profiles (``latest_profile_runs`` + ``profiling.load``) 9 -> 10;
the page's loaders together 329 ms. Before the summaries were read in SQL, ``suite.latest`` and
``suite.sessions`` took 1.3-1.6 s on the same store, and ``load_runs`` (trends from every run's decoded
JSON) 0.5 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from mlx_explore import results, suite  # noqa: E402
from mlx_explore.comparison import plan  # noqa: E402
from mlx_explore.config import DEFAULT_FRAMEWORKS  # noqa: E402 - the four native columns, as the benchmark was sized
from mlx_explore.env import environment  # noqa: E402
from mlx_explore.metric_docs import METRIC_DOCS  # noqa: E402
from mlx_explore.profiling import CATEGORIES  # noqa: E402

FRAMEWORKS = ("torch", "jax", "tensorflow", "sklearn")
#: Runs of one complete small-suite session with the four frameworks (7 + 7 + 4 + 8).
SESSION_RUNS = sum(len(plan(c)) for _, c in suite.configs("small", frameworks=DEFAULT_FRAMEWORKS))
#: The metrics the trend plots of the overview show.
TREND_METRICS = ("samples_per_s", "test_accuracy")
HISTORY_DAYS = 182

#: Per framework: throughput [samples/s] of the small-batch MLP, the large-batch MLP and the CNN (compiled),
#: compile time [s], batch-1 latency p50 [ms], peak RSS [MiB], MFU at batch 1024, test accuracy.
_BASE = {
    "torch": dict(small=40_000.0, large=20_000.0, cnn=6_000.0, compile_s=20.0, p50=0.10, rss=500.0, mfu=0.30, acc=0.955),
    "jax": dict(small=30_000.0, large=30_000.0, cnn=8_000.0, compile_s=0.5, p50=0.12, rss=450.0, mfu=0.40, acc=0.955),
    "tensorflow": dict(small=20_000.0, large=25_000.0, cnn=5_000.0, compile_s=0.7, p50=0.20, rss=900.0, mfu=0.35,
                       acc=0.948),
    "sklearn": dict(small=15_000.0, large=14_000.0, cnn=0.0, compile_s=0.001, p50=0.11, rss=200.0, mfu=0.20, acc=0.952),
}  # fmt: skip
#: How much faster each framework got over the months (release upgrades) [fraction].
_DRIFT = {"torch": 0.10, "jax": 0.25, "tensorflow": -0.05, "sklearn": 0.0}
_VERSIONS = {
    "torch": {"torch": "2.13.0+cpu", "cuda": "", "cudnn": ""},
    "jax": {"jax": "0.10.2", "flax": "0.12.8", "optax": "0.2.8", "backend": "cpu"},
    "tensorflow": {"tensorflow": "2.21.0", "keras": "3.15.1", "cuda": "", "cudnn": ""},
    "sklearn": {"scikit-learn": "1.9.1"},
}
_THREADS = {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
_FLAGS = {
    "torch": {"cpu_affinity": 2, "intra_op_threads": 2, "inter_op_threads": 2, "float32_matmul_precision": "highest",
              "tf32": False, "deterministic": False, "precision": "fp32", "compile": "torch.compile (inductor)",
              "compile_cache": "warm (/tmp/torchinductor_root)", "env_threads": _THREADS, "numpy_blas_threads": 2},
    "jax": {"cpu_affinity": 2, "intra_op_threads": 2, "xla_flags": "--xla_cpu_multi_thread_eigen=true",
            "default_matmul_precision": "highest", "tf32": False, "deterministic": False, "gpu_preallocate": "false",
            "precision": "fp32", "compile": "jax.jit (XLA)", "compile_cache": "persistent: off",
            "env_threads": _THREADS, "numpy_blas_threads": 2},
    "tensorflow": {"cpu_affinity": 2, "intra_op_threads": 2, "inter_op_threads": 2, "tf32": False,
                   "deterministic": False, "gpu_memory_growth": [], "precision": "fp32",
                   "keras_dtype_policy": "float32", "compile": "tf.function(jit_compile=True) (XLA)",
                   "env_threads": _THREADS, "numpy_blas_threads": 2},
    "sklearn": {"cpu_affinity": 2, "intra_op_threads": 2, "thread_pools": {"openmp:openmp": 2, "blas:openblas": 2},
                "tf32": False, "precision": "fp32 inputs, float32 computation (MLPClassifier follows the input dtype)",
                "compile": "none (NumPy, one mode)", "env_threads": _THREADS, "numpy_blas_threads": 2},
}  # fmt: skip
_NOTES = {
    "peak_device_mb": "the device is the CPU: its memory is in peak_rss_mb",
    "peak_gflops_per_s": "numpy float32 matmul 1024x1024, best of 7",
    "mfu": "analytic training FLOPs (3 x forward, 2 per multiply-add) x steps/s over the measured matmul peak",
}
_LATENCY = ("step_ms_p50", "step_ms_p95", "step_ms_p99", "infer_ms_p50", "infer_ms_p95", "infer_ms_p99",
            "infer_samples_per_s")  # fmt: skip
_ERROR_TAIL = ("Traceback (most recent call last):\n  File \"mlx_explore/worker.py\", line 181, in main\n"
               "    result = train(trainer, bundle, config, emit)\n  File \"mlx_explore/frameworks/common.py\", "
               "line 140, in train\n    loss = trainer.train_step(x, y)\nRuntimeError: worker killed by signal 9 "
               "(out of memory?)\n")  # fmt: skip
#: Ops of each framework's profile: (name, category, calls per step).
_OPS = {
    "torch": [("aten::addmm", "matmul", 3), ("aten::mm", "matmul", 5), ("aten::relu", "elementwise", 2),
              ("aten::threshold_backward", "elementwise", 2), ("aten::_log_softmax", "loss/softmax", 1),
              ("aten::nll_loss_forward", "loss/softmax", 1), ("aten::sum", "reduction", 3),
              ("aten::_foreach_add_", "optimizer update", 4), ("aten::copy_", "data movement", 2),
              ("aten::empty", "other", 12)],
    "jax": [("dot.3", "matmul", 1), ("dot.7", "matmul", 1), ("ynn_fusion.2", "matmul", 1),
            ("broadcast_maximum_fusion", "elementwise", 2), ("reduce.4", "reduction", 2),
            ("log_softmax_fusion", "loss/softmax", 1), ("multiply_add_fusion", "optimizer update", 6),
            ("copy.1", "data movement", 1)],
    "tensorflow": [("MatMul.12", "matmul", 3), ("MatMul.15", "matmul", 3), ("Relu", "elementwise", 2),
                   ("ReluGrad", "elementwise", 2), ("Sum", "reduction", 3),
                   ("SparseSoftmaxCrossEntropyWithLogits", "loss/softmax", 1),
                   ("multiply_subtract_fusion", "optimizer update", 6), ("Pack", "data movement", 1)],
    "sklearn": [("safe_sparse_dot", "matmul", 6), ("inplace_relu", "elementwise", 2),
                ("inplace_relu_derivative", "elementwise", 2), ("log_loss", "loss/softmax", 1),
                ("_update_params", "optimizer update", 1), ("check_array", "data movement", 2),
                ("_forward_pass", "other", 1)],
}  # fmt: skip


def other_machine_env(env: dict) -> dict:
    """``env`` as a GPU server's: another CPU, 64 cores, an A100 (``suite.machine_id`` differs)."""
    return env | {"cpu_model": "AMD EPYC 7763 64-Core Processor", "cpu_count": 128, "usable_cores": 64,
                  "gpus": ["NVIDIA A100-SXM4-80GB, 550.54.15, 81920 MiB"]}  # fmt: skip


@contextmanager
def _clock(start: dt.datetime) -> Iterator[list]:
    """While inside, every time the store stamps (``results._now``) is ``clock[0]``, which the caller moves
    forward; restored after, even on an error."""
    clock = [start]
    saved = results._now
    results._now = lambda: clock[0].astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    try:
        yield clock
    finally:
        results._now = saved


def _metrics(rng: random.Random, fw: str, item: str, mode: str, age: float, gpu: bool, epochs: int,
             n_steps: int) -> dict:  # fmt: skip
    """A run's metrics, every key of METRIC_DOCS in the order a real run has them; ``age`` 1 = 6 months ago."""
    b = _BASE[fw]
    slow = 0.5 if mode == "eager" and fw != "sklearn" else 1.0
    speed = (1 + _DRIFT[fw] * (1 - age)) * (20.0 if gpu and fw != "sklearn" else 1.0) * rng.gauss(1, 0.04)
    batch = 1024 if item == "large_batch" else 64 if item == "cnn" else 32
    throughput = b["cnn" if item == "cnn" else "large" if item == "large_batch" else "small"] * slow * speed
    step_ms = batch / throughput * 1000
    latency = item != "parity"
    p50 = b["p50"] / slow * rng.gauss(1, 0.05)
    acc = min(0.999, b["acc"] * rng.gauss(1, 0.003))
    compile_s = b["compile_s"] * rng.gauss(1, 0.1) if mode != "eager" or fw == "sklearn" else 0.05
    peak = 300.0 * (40 if gpu else 1)
    gflop = 0.0162 if item != "large_batch" else 5.0
    m = {
        "samples_per_s": throughput, "step_ms": step_ms, "windows": 6, "first_step_s": compile_s + step_ms / 1000,
        "compile_s": compile_s, "cpu_parallelism": rng.uniform(1.0, 2.0), "train_s": n_steps * step_ms / 1000 * 1.3,
        "train_loss": 0.3 * rng.gauss(1, 0.02), "val_accuracy": acc - 0.01, "val_loss": 0.25, "steps": n_steps,
        "test_accuracy": acc, "test_f1_macro": acc - 0.004, "test_roc_auc": 0.995, "test_loss": 0.2,
        "eval_s": 0.01, "step_ms_p50": step_ms * 1.1, "step_ms_p95": step_ms * 1.4, "step_ms_p99": step_ms * 2.0,
        "infer_ms_p50": p50, "infer_ms_p95": p50 * 1.5, "infer_ms_p99": p50 * 2 * rng.gauss(1, 0.1),
        "infer_samples_per_s": throughput * 3, "peak_rss_mb": b["rss"] * rng.gauss(1, 0.02),
        "peak_device_mb": 2000.0 if gpu else None, "train_gflop_per_step": gflop,
        "gflops_per_s": gflop * 1000 / step_ms, "peak_gflops_per_s": peak,
        "mfu": min(0.99, b["mfu"] * slow * speed / (20.0 if gpu and fw != "sklearn" else 1.0)),
        "import_s": rng.uniform(0.5, 4.0), "n_params": 85002 if item != "large_batch" else 1_863_690,
        "wall_s": epochs * 2.0 + rng.uniform(1, 5),
    }  # fmt: skip
    if not latency:
        for k in _LATENCY:
            m[k] = None
    return {k: m.get(k) for k in METRIC_DOCS if k in m} | {k: v for k, v in m.items() if k not in METRIC_DOCS}


def _curve(rng: random.Random, steps: int, epochs: int, *, base: list[float] | None = None, scale: float = 1.0,
           upto: int | None = None, diverge: bool = False) -> tuple[list[dict], list[dict]]:  # fmt: skip
    """A loss curve of ``steps`` points over ``epochs`` epochs and its per-epoch rows."""
    losses = base if base is not None else _losses(rng, steps)
    n = steps if upto is None else upto
    per_epoch = max(1, math.ceil(steps / max(epochs, 1)))
    curve = []
    for s in range(n):
        loss = losses[s] * scale
        if diverge and s > n // 2:
            loss = float("nan")
        curve.append({"step": s, "epoch": s // per_epoch + 1, "loss": loss, "time_s": 1.5 + 0.002 * s})
    rows = []
    for e in range(1, min(epochs, math.ceil(n / per_epoch)) + 1):
        last = min(e * per_epoch, n) - 1
        rows.append({"epoch": e, "train_loss": losses[last] * scale, "val_loss": losses[last] * scale * 1.05,
                     "val_accuracy": min(0.99, 0.7 + 0.08 * e), "time_s": 1.5 + 0.002 * last})  # fmt: skip
    return curve, rows


def _losses(rng: random.Random, steps: int) -> list[float]:
    start, floor, rate = rng.uniform(2.2, 2.4), rng.uniform(0.05, 0.15), rng.uniform(3, 6) / max(steps, 1)
    return [floor + (start - floor) * math.exp(-rate * s) + rng.gauss(0, 0.01) for s in range(steps)]


def _profile(rng: random.Random, fw: str, run_id: int, folder: Path) -> dict:
    rows, total = [], 0.0
    for op, category, calls in _OPS[fw]:
        ms = rng.uniform(0.01, 0.4) * (3 if category == "matmul" else 1)
        total += ms
        rows.append({"op": op, "category": category, "calls_per_step": calls, "self_ms_per_step": ms})
    overhead = total * rng.uniform(0.2, 1.0)
    rows.append({"op": "(unaccounted step time)", "category": "framework overhead", "calls_per_step": 1,
                 "self_ms_per_step": overhead})  # fmt: skip
    step_ms = total + overhead
    for r in rows:
        r["share_of_step"] = r["self_ms_per_step"] / step_ms
    rows.sort(key=lambda r: -r["self_ms_per_step"])
    assert {r["category"] for r in rows} <= set(CATEGORIES)
    trace = folder / "traces" / str(run_id)
    return {"steps": 20, "step_ms": step_ms, "unprofiled_step_ms": step_ms * 0.8, "ops_ms": total, "device": "cpu",
            "trace_dir": str(trace), "native": [str(trace / "trace.json")], "unmapped": [],
            "notes": [f"{fw}: synthetic profile (tests/benchmarks/dashboard_store.py)"], "rows": rows}  # fmt: skip


class _Writer:
    """Writes jobs (a suite session, an ad-hoc or a profile comparison) into one open store."""

    def __init__(self, store: results.ResultsStore, clock: list, rng: random.Random, steps: int, env: dict):
        self.store, self.clock, self.rng, self.steps, self.env = store, clock, rng, steps, env
        self.written = 0
        self.configs = {it.name: (it, c.model_dump(mode="json"), plan(c)) for it, c in suite.configs("small", frameworks=DEFAULT_FRAMEWORKS)}

    def tick(self, seconds: float) -> None:
        self.clock[0] += dt.timedelta(seconds=seconds)

    def session(self, age: float, *, env: dict | None = None, version: int = suite.SUITE_VERSION,
                stop_after: int | None = None, fail_rate: float = 0.01, device: str = "auto") -> int:  # fmt: skip
        """One small-suite session; ``stop_after`` runs: interrupted there. Returns the runs written."""
        env = env if env is not None else self.env
        gpu = bool(env.get("gpus")) and device == "gpu"
        name = f"{self.clock[0]:%Y%m%dT%H%M%S}-{self.rng.getrandbits(24):06x}"
        count = 0
        for item_name, (it, config, runs) in self.configs.items():
            tags = {"tags": {"suite": suite.SUITE_NAME, "suite_version": version, "suite_size": "small",
                             "suite_item": item_name, "suite_session": name, "suite_planned": len(runs),
                             "suite_device": device}}  # fmt: skip
            cid = self.store.begin_comparison(config | tags, env)
            parity = _losses(self.rng, self.steps) if item_name == "parity" else None
            for fw, mode, repeat in runs:
                if stop_after is not None and count == stop_after:
                    self._run(cid, config, tags, fw, mode, repeat, item_name, age, gpu, status="interrupted")
                    return count + 1
                status = "ok"
                if item_name == "cnn" and fw == "sklearn":
                    status = "unsupported"
                elif self.rng.random() < fail_rate:
                    status = "failed"
                scale = {"torch": 1.0, "jax": 1 + 2e-7, "tensorflow": 1 + 5e-7, "sklearn": 1 + 3e-5}.get(fw, 1 + 1e-7)
                self._run(cid, config, tags, fw, mode, repeat, item_name, age, gpu, status=status,
                          base=parity, scale=scale if parity else 1.0)  # fmt: skip
                count += 1
        return count

    def adhoc(self, age: float, n: int, *, profile: bool = False) -> list[int]:
        """An ad-hoc comparison of ``n`` runs (a model on a small data set); returns its run ids."""
        model = "mlp" if profile else self.rng.choice(["mlp", "mlp", "mlp", "cnn"])
        dataset = "digits" if profile or model == "cnn" else self.rng.choice(["iris", "wine", "digits"])
        epochs = self.rng.choice([3, 5, 10])
        config = dict(self.configs["small_batch"][1], model=model, dataset=dataset, epochs=epochs,
                      hidden=[64, 64], mode="compiled", profile_steps=20 if profile else 0)  # fmt: skip
        cid = self.store.begin_comparison(config, self.env)
        ids = []
        for i in range(n):
            fw = FRAMEWORKS[i % 4]
            mode = "eager" if fw == "sklearn" else "compiled"
            status = "unsupported" if model == "cnn" and fw == "sklearn" else "ok"
            if status == "ok" and not profile and self.rng.random() < 0.01:
                status = "failed" if self.rng.random() < 0.7 else "diverged"
            ids.append(self._run(cid, config, {}, fw, mode, 1 + i // 4, "adhoc", age, False, status=status))
        return ids

    def _run(self, cid: int, config: dict, tags: dict, fw: str, mode: str, repeat: int, item: str, age: float,
             gpu: bool, *, status: str, base: list[float] | None = None, scale: float = 1.0) -> int:  # fmt: skip
        epochs = int(config.get("epochs") or 1)
        row = {"framework": fw, "mode": mode, "repeat": repeat, "status": status, "reason": "",
               "device": "cuda:0" if gpu and fw != "sklearn" else "cpu",
               "device_name": "NVIDIA A100-SXM4-80GB" if gpu and fw != "sklearn" else "cpu",
               "versions": _VERSIONS[fw], "flags": _FLAGS[fw], "metrics": {}, "notes": {}, "error_tail": "",
               "config": config | {"mode": mode} | tags}  # fmt: skip
        if status in ("ok", "diverged"):
            row["curve"], row["epochs"] = _curve(self.rng, self.steps, epochs, base=base, scale=scale,
                                                 diverge=status == "diverged")  # fmt: skip
        if status == "ok":
            row["metrics"] = _metrics(self.rng, fw, item, mode, age, gpu, epochs, self.steps)
            row["notes"] = dict(_NOTES) | ({k: "latency phases off (latency_steps=0)" for k in _LATENCY}
                                           if item == "parity" else {})  # fmt: skip
        elif status == "diverged":
            row["reason"] = f"the loss became NaN at step {self.steps // 2 + 1}: lower the learning rate"
        elif status == "failed":
            row["reason"] = "the worker process ended with exit code -9 (killed: out of memory?)"
            row["error_tail"] = _ERROR_TAIL
            row["curve"], row["epochs"] = _curve(self.rng, self.steps, epochs, upto=self.steps // 3)
        elif status == "unsupported":
            row["reason"] = "scikit-learn has no convolution layers (MLPClassifier only)"
        elif status == "interrupted":
            row["reason"] = "interrupted (Ctrl-C) after {steps} steps".replace("{steps}", str(self.steps // 4))
            row["curve"], row["epochs"] = _curve(self.rng, self.steps, epochs, upto=self.steps // 4)
        self.tick(self.rng.uniform(2, 20))
        self.written += 1
        return self.store.add_run(cid, row)


def build_store(path: str | Path, runs: int = 10_000, *, seed: int = 0, steps: int = 100,
                profiles: bool = True) -> Path:  # fmt: skip
    """Write a realistic results store of exactly ``runs`` runs to ``path`` (see the module docstring).

    Args:
        path: a new file (its folder is created).
        runs: how many runs, at least :data:`SESSION_RUNS` (the newest suite session).
        seed: the random seed: the same arguments give the same rows (the times are relative to now).
        steps: points of each run's loss curve.
        profiles: also write profile comparisons (about one profiled run per 500 runs, at least 4).

    Returns:
        ``path``. Its newest session is a complete suite session of this machine and of the current
        :data:`~mlx_explore.suite.SUITE_VERSION`, started about an hour ago.

    Raises:
        ValueError: ``runs`` below :data:`SESSION_RUNS` or ``steps`` below 1 (messages start with the name).
        FileExistsError: ``path`` exists (nothing is appended to a store).
        mlx_explore.results.StoreError: the store cannot be written.
    """
    if runs < SESSION_RUNS:
        raise ValueError(f"runs: at least {SESSION_RUNS} (one complete suite session), got {runs}")
    if steps < 1:
        raise ValueError(f"steps: at least 1, got {steps}")
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists: build_store writes a new store")
    rng = random.Random(seed)
    env = environment()
    now = dt.datetime.now(dt.timezone.utc)
    n_profile_jobs = (max(1, runs // 2000) if profiles else 0) if runs >= SESSION_RUNS + 4 else 0
    jobs = _plan_jobs(rng, runs - SESSION_RUNS - 4 * n_profile_jobs, n_profile_jobs, other_machine_env(env))
    start = now - dt.timedelta(days=HISTORY_DAYS)
    span = (now - dt.timedelta(hours=2) - start).total_seconds()
    with _clock(start) as clock, results.ResultsStore(path) as store:
        w = _Writer(store, clock, rng, steps, env)
        for k, (kind, arg) in enumerate(jobs):
            clock[0] = max(clock[0], start + dt.timedelta(seconds=span * (k + rng.random()) / len(jobs)))
            age = 1 - (clock[0] - start).total_seconds() / span
            if kind == "session":
                w.session(age, **arg)
            elif kind == "adhoc":
                w.adhoc(age, arg)
            else:
                for run_id, fw in zip(w.adhoc(age, 4, profile=True), FRAMEWORKS):
                    store.add_profile(run_id, _profile(rng, fw, run_id, path.parent))
        clock[0] = max(clock[0], now - dt.timedelta(hours=1))
        w.session(0.0, fail_rate=0.0)  # the newest: complete, this machine, this version
    assert w.written == runs, (w.written, runs)
    return path


def _plan_jobs(rng: random.Random, runs: int, profile_jobs: int, other_env: dict) -> list[tuple[str, object]]:
    """The jobs before the newest session, oldest first, writing exactly ``runs`` runs (plus the profiles)."""
    jobs: list[tuple[str, object]] = []
    left = runs
    while left > 0:
        r = rng.random()
        if left < SESSION_RUNS or r < 0.10:
            n = min(left, rng.randint(1, 8))
            jobs.append(("adhoc", n))
            left -= n
        elif r < 0.14:  # interrupted part-way
            n = rng.randint(1, SESSION_RUNS - 1)
            jobs.append(("session", {"stop_after": n - 1}))
            left -= n
        elif r < 0.20:
            jobs.append(("session", {"env": other_env, "device": "gpu"}))
            left -= SESSION_RUNS
        elif r < 0.23:
            jobs.append(("session", {"version": suite.SUITE_VERSION - 1}))
            left -= SESSION_RUNS
        else:
            jobs.append(("session", {}))
            left -= SESSION_RUNS
    for i in range(profile_jobs):  # spread over the months
        jobs.insert(min(len(jobs), (i + 1) * len(jobs) // (profile_jobs + 1) + i), ("profile", None))
    # older suite versions belong to the first months
    old = [j for j in jobs if j[0] == "session" and j[1].get("version") is not None]
    rest = [j for j in jobs if not (j[0] == "session" and j[1].get("version") is not None)]
    return old + rest


# ---------------------------------------------------------------------------------------- timing


def overview_loaders(db: Path) -> dict[str, Callable[[], object]]:
    """The loaders the overview page calls, each a no-argument function on ``db``."""
    from mlx_explore import guide, profiling

    evidence = guide.load_evidence(db)
    return {
        "guide.load_evidence": lambda: guide.load_evidence(db),
        "guide.recommend": lambda: guide.recommend(evidence),
        "guide.audit_claims": lambda: guide.audit_claims(evidence),
        "suite.sessions": lambda: suite.sessions(db),
        "suite.latest": lambda: suite.latest(db),
        "results.load_metrics": lambda: results.load_metrics(db, metrics=TREND_METRICS),
        "newest profiles": lambda: profiling.load(db, run_ids=list(results.latest_profile_runs(db)["run_id"])),
    }


def time_loaders(db: Path, repeat: int = 3) -> dict[str, float]:
    """Best of ``repeat`` wall times [s] of each of :func:`overview_loaders` on ``db``."""
    out = {}
    for name, fn in overview_loaders(db).items():
        best = math.inf
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        out[name] = best
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10_000, help="runs in the big store (default 10000)")
    p.add_argument("--small", type=int, default=100, help="runs in the small store (default 100)")
    p.add_argument("--steps", type=int, default=100, help="loss-curve points per run (default 100)")
    p.add_argument("--out", type=Path, help="the big store's file, a new one (default: in a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the stores (default: removed at the end)")
    p.add_argument("--repeat", type=int, default=3, help="timings per loader, the best is shown (default 3)")
    args = p.parse_args(argv)
    if args.out is not None and args.out.exists():
        p.error(f"--out {args.out} exists: give a new file")
    folder = Path(tempfile.mkdtemp(prefix="dashboard-store-"))
    big = args.out or folder / f"runs-{args.runs}.db"
    small = folder / f"runs-{args.small}.db"
    try:
        t = time.perf_counter()
        build_store(big, args.runs, steps=args.steps)
        built = time.perf_counter() - t
        print(f"built {big}: {args.runs} runs in {built:.1f} s ({big.stat().st_size / 2**20:.0f} MiB)")
        build_store(small, args.small, steps=args.steps)
        many, few = time_loaders(big, args.repeat), time_loaders(small, args.repeat)
        print(f"\n{'loader':<24}{f'{args.small} runs':>12}{f'{args.runs} runs':>14}{'ratio':>8}   [best of "
              f"{args.repeat}, ms]")  # fmt: skip
        for name in many:
            print(f"{name:<24}{few[name] * 1000:>12.1f}{many[name] * 1000:>14.1f}{many[name] / few[name]:>8.1f}")
        total = sum(many.values()) - many["suite.sessions"]  # what the overview page calls, once each
        print(f"{'the overview page':<24}{'':>12}{total * 1000:>14.1f}")
    finally:
        if args.keep:
            print(f"\nkept {big} and {small}")
        else:
            for store in (big, small):
                for f in (store, store.with_name(store.name + "-wal"), store.with_name(store.name + "-shm")):
                    f.unlink(missing_ok=True)
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
