"""The one training loop that drives every framework's ``Trainer``, and its measured phases.

What each ``frameworks/<name>/trainer.py`` provides (module-level ``select_device``,
``configure``, ``build_model``, ``load_weights``, ``make_optimizer``, ``make_train_step``,
``list_devices``, ``versions`` and the class ``Trainer``) is written down as code in
``frameworks/contract.py`` (:class:`~.contract.AdapterModule`, :class:`~.contract.TrainerProtocol`,
the declared capabilities) and checked there for every registered framework
(``tests/test_adapters.py``). The worker calls ``configure(config, threads)`` right after the
import and before ``Trainer``: it puts the fairness settings in force (threads, TF32, determinism,
precision) and returns them **read back from the framework**, to be recorded with the run.

The loop, the timing windows, the loss logging and the metrics live here, once, so a difference
between frameworks can only come from the framework.

Timing (``docs/architecture.md``, "Honest timing"): the first step (trace + compile) is timed alone
with a sync after it. The remaining steps run in windows (at least ``MIN_WINDOWS``, at most
``WINDOW_STEPS`` steps each) with no sync inside a window; reading the window's losses back
(``Trainer.losses``) is the sync at its end. Steady throughput is the median over windows;
validation, per-step latency, inference and the machine figures are separate phases (:func:`fit`).
The primitives are in ``mlx_explore/bench.py``.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from .. import bench
from ..bundle import Bundle
from ..data import BatchOrder
from ..events import Epoch, Event, Steps
from ..metrics import classification_metrics, loss_and_accuracy
# DeviceUnavailable is defined with the contract and re-exported here, where the worker imports it.
from .contract import DeviceUnavailable, TrainerProtocol  # noqa: F401

#: Longest timing window [steps]; also how often step events reach a live plot.
WINDOW_STEPS = 100
#: Fewest steady windows the training phase is cut into, when it has enough steps.
MIN_WINDOWS = 5
#: Batch size used for evaluation forward passes [samples].
EVAL_BATCH = 1024
#: Batch of the inference-throughput phase [samples].
INFER_BATCH = 1024


class Diverged(RuntimeError):
    """The training loss became NaN or infinite; ``step`` is the first such step (1-based)."""

    def __init__(self, step: int, loss: float):
        self.step, self.loss = step, loss
        super().__init__(f"training loss became {loss} at step {step}")


def batched(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int = EVAL_BATCH) -> np.ndarray:
    """Apply ``fn`` to ``x`` in slices of ``batch`` rows and concatenate the results."""
    return np.concatenate([np.asarray(fn(x[i : i + batch])) for i in range(0, len(x), batch)])


def fit(trainer: TrainerProtocol, bundle: Bundle, emit: Callable[[Event], None], clock: Callable[[], float],
        flush: Callable[..., None] | None = None) -> tuple[dict, dict]:  # fmt: skip
    """Run every measured phase of one framework's run; return ``(metrics, notes)``.

    Phases, in order (each its own figure, see ``runner.METRIC_DOCS``):

    1. **training**: all epochs of ``bundle.order`` (each epoch's batches drawn before its first
       window, outside the timing), cut into timed windows
       (:func:`bench.window_lengths`); the first step is timed alone (trace + compile); the
       steady windows give ``samples_per_s`` (median) and ``cpu_parallelism``; validation after
       each epoch, outside the windows. ``Steps``/``Epoch`` events are emitted between windows.
    2. **evaluation** of the test split (``eval_s``, accuracy, F1, ROC-AUC, loss).
    3. **step latency**: ``config.latency_steps`` further training steps (replaying the first
       epoch's batches), each followed by a sync: ``step_ms_p50/p95/p99``. These steps come after
       the evaluation, so they never change a reported accuracy.
    4. **inference**: batch-1 latency percentiles (``infer_ms_*``) and large-batch throughput
       (``infer_samples_per_s``), inputs from and logits back to the host, as in deployment.
    5. **machine figures**: ``peak_rss_mb``, ``peak_device_mb``, analytic ``gflops_per_s`` and
       ``mfu`` against a matmul peak measured now, in this process (:func:`bench.matmul_peak_gflops`).

    Args:
        trainer: a built framework trainer.
        bundle: the shared inputs.
        emit: receives a ``Steps`` event per timing window (its steps that are multiples of
            ``config.log_every``) and an ``Epoch`` event per epoch.
        clock: seconds since the child started (the events' ``time_s``).
        flush: called after each window's ``Steps`` event and, with ``force=True``, when training
            ends (``worker.make_emitter``: it writes at most every 0.1 s unless forced).

    Returns:
        ``metrics``: name -> number or ``None``; ``notes``: metric name -> why it is ``None`` or how
        it was measured.

    Raises:
        Diverged: a training step's loss is NaN or infinite.
    """
    cfg = bundle.config
    metrics, notes = train(trainer, bundle, emit, clock, flush)
    metrics.update(evaluate(trainer, bundle))
    if cfg.latency_steps:
        metrics.update(step_latency(trainer, bundle.order, cfg.latency_steps))
        metrics.update(inference(trainer, bundle.inputs(bundle.data.x_test), cfg.latency_steps))
    else:
        for k in ("step_ms_p50", "step_ms_p95", "step_ms_p99", "infer_ms_p50", "infer_ms_p95", "infer_ms_p99", "infer_samples_per_s"):
            metrics[k] = None
            notes[k] = "latency phases off (latency_steps=0)"
    machine_figures(trainer, bundle, metrics, notes)
    return metrics, notes


def train(trainer: TrainerProtocol, bundle: Bundle, emit: Callable[[Event], None], clock: Callable[[], float],
          flush: Callable[..., None] | None = None) -> tuple[dict, dict]:  # fmt: skip
    """Phase 1 of :func:`fit`: train all epochs in timed windows, emitting events.

    Returns ``(metrics, notes)`` with ``samples_per_s``, ``step_ms``, ``windows``, ``first_step_s``,
    ``compile_s``, ``cpu_parallelism``, ``train_s``, ``train_loss``, ``val_loss``, ``val_accuracy``
    and ``steps``.

    Raises:
        Diverged: a step's loss is NaN or infinite.
    """
    cfg, order = bundle.config, bundle.order
    epochs, steps, batch = order.shape
    fw = getattr(trainer, "name", "?")
    x_val = bundle.inputs(bundle.data.x_val)
    plan = bench.window_lengths(steps, epochs, WINDOW_STEPS, MIN_WINDOWS)
    windows: list[tuple[int, float]] = []  # steady windows: (steps, seconds)
    busy_cpu = busy_wall = 0.0
    first_step_s = float("nan")
    val: dict = {}
    train_loss = float("nan")
    clock_ = time.perf_counter
    t_train = clock_()
    every = cfg.log_every
    own_loop = "fit_loop" in getattr(trainer, "capabilities", ())
    for e, lengths in enumerate(plan):
        epoch_losses = []
        rows = trainer.indices(order[e])  # drawn and converted once an epoch, as a hand-written loop would
        s = 0

        def record(n: int, dt: float, cpu: float, window_losses: np.ndarray) -> None:
            """Book one timed window of epoch ``e`` that started at its step ``s``."""
            nonlocal s, first_step_s, busy_cpu, busy_wall
            if e == 0 and s == 0:
                first_step_s = dt
            else:
                windows.append((n, dt))
                busy_cpu, busy_wall = busy_cpu + cpu, busy_wall + dt
            first = e * steps + s + 1
            if not np.isfinite(window_losses).all():
                j = int(np.argmin(np.isfinite(window_losses)))
                raise Diverged(first + j, float(window_losses[j]))
            # One event for the window's logged steps (the runner expands it into Step events).
            logged = range(first, first + n) if every == 1 else range(first + (-first) % every, first + n, every)
            if logged:
                losses = window_losses.tolist() if every == 1 else window_losses[np.subtract(logged, first)].tolist()
                emit(Steps(fw, epoch=e + 1, steps=list(logged), losses=losses, time_s=clock()))
            if flush is not None:
                flush()
            epoch_losses.append(window_losses)
            s += n

        if own_loop:  # the framework's own loop (Keras model.fit) calls record at each window's end
            trainer.fit_epoch(rows, lengths, record)
        else:
            for n in lengths:
                c0, t0 = bench.cpu_seconds(), clock_()
                handles = [trainer.train_step(idx) for idx in rows[s : s + n]]
                window_losses = trainer.losses(handles)  # the sync that ends the window
                dt = clock_() - t0
                record(n, dt, bench.cpu_seconds() - c0, window_losses)
        train_loss = float(np.concatenate(epoch_losses).mean())
        val = loss_and_accuracy(trainer.logits(x_val), bundle.data.y_val)
        emit(Epoch(fw, epoch=e + 1, train_loss=train_loss, val_loss=val["loss"], val_accuracy=val["accuracy"], time_s=clock()))
    train_s = clock_() - t_train
    if flush is not None:
        flush(force=True)  # the last epoch reaches the live view before the latency phases

    steady = bench.window_stats(windows, batch)
    notes = {}
    if steady["windows"] < MIN_WINDOWS:
        notes["samples_per_s"] = f"only {steady['windows']} timed window(s): train longer for a steady figure"
    if not windows:
        notes["compile_s"] = "a single training step: no steady step to subtract"
    step_s = steady["step_s"]
    metrics = {
        "samples_per_s": steady["samples_per_s"],
        "step_ms": step_s * 1e3,
        "windows": steady["windows"],
        "first_step_s": first_step_s,
        "compile_s": max(0.0, first_step_s - step_s) if windows else None,
        "cpu_parallelism": busy_cpu / busy_wall if busy_wall > 0 else None,
        "train_s": train_s,
        "train_loss": train_loss,
        "val_accuracy": val["accuracy"],
        "val_loss": val["loss"],
        "steps": int(epochs * steps),
    }
    return metrics, notes


def evaluate(trainer: TrainerProtocol, bundle: Bundle) -> dict:
    """Phase 2 of :func:`fit`: test-split metrics and ``eval_s`` (inference on the whole split)."""
    t0 = time.perf_counter()
    test = classification_metrics(trainer.logits(bundle.inputs(bundle.data.x_test)), bundle.data.y_test)
    eval_s = time.perf_counter() - t0
    return {
        "test_accuracy": test["accuracy"],
        "test_f1_macro": test["f1_macro"],
        "test_roc_auc": test["roc_auc"],
        "test_loss": test["loss"],
        "eval_s": eval_s,
    }


def step_latency(trainer: TrainerProtocol, order: BatchOrder, n: int) -> dict:
    """Phase 3 of :func:`fit`: ``n`` training steps, a sync after each, as ``step_ms_p50/p95/p99``.

    Batches replay ``order`` from its start (:meth:`BatchOrder.first_steps`, cycling); two untimed
    warm-up steps come first.
    """
    rows = trainer.indices(order.first_steps(n + 2))  # drawn and converted before the clock starts
    times = bench.time_calls(lambda i: trainer.train_step(rows[i]), lambda h: trainer.losses([h]), n, warmup=2)
    return {f"step_ms_{k}": v * 1e3 for k, v in bench.percentiles(times).items()}


def inference(trainer: TrainerProtocol, x: np.ndarray, n: int) -> dict:
    """Phase 4 of :func:`fit`: the deployment view of the trained model.

    ``infer_ms_p50/p95/p99``: ``n`` single-sample forward passes (batch 1), each from host input
    to host logits, after 3 warm-up calls (a new input shape may compile). ``infer_samples_per_s``:
    median over ``max(3, n // 20)`` passes of ``INFER_BATCH`` samples (the test split tiled).
    """
    one = x[:1]
    times = bench.time_calls(lambda i: trainer.logits(one), lambda r: r, n, warmup=3)
    big = np.resize(x, (INFER_BATCH, *x.shape[1:]))
    big_times = bench.time_calls(lambda i: trainer.logits(big), lambda r: r, max(3, n // 20), warmup=1)
    out = {f"infer_ms_{k}": v * 1e3 for k, v in bench.percentiles(times).items()}
    out["infer_samples_per_s"] = INFER_BATCH / float(np.median(big_times))
    out["infer_batch"] = INFER_BATCH
    return out


def machine_figures(trainer: TrainerProtocol, bundle: Bundle, metrics: dict, notes: dict) -> None:
    """Phase 5 of :func:`fit`: memory peaks, achieved GFLOP/s and MFU, written into ``metrics``.

    ``mfu`` = ``gflops_per_s`` / ``peak_gflops_per_s``, where the peak is measured in this process
    on this device: NumPy's float32 matmul on a CPU (the same reference for every framework), the
    framework's own matmul on an accelerator (``trainer.matmul``).

    The device figures come from the trainer's declared capabilities (``trainer.capabilities``,
    ``frameworks/contract.py``): ``peak_device_mb()`` with ``device_memory``, ``matmul()`` with
    ``device_matmul``; a trainer without them gets ``None`` and a note.
    """
    caps = trainer.capabilities
    metrics["peak_rss_mb"] = bench.peak_rss_mb()
    peak_dev = trainer.peak_device_mb() if "device_memory" in caps else None
    metrics["peak_device_mb"] = peak_dev
    if peak_dev is None:
        notes["peak_device_mb"] = (
            "the device is the CPU: its memory is in peak_rss_mb"
            if trainer.device_kind == "cpu"
            else f"{trainer.name} reports no device memory statistics here"
        )
    step_flops = bench.training_flops(bundle.spec, bundle.config.batch_size)
    metrics["train_gflop_per_step"] = step_flops / 1e9
    sps = metrics.get("samples_per_s")
    gflops = step_flops / bundle.config.batch_size * sps / 1e9 if sps and np.isfinite(sps) else None
    metrics["gflops_per_s"] = gflops
    mm = trainer.matmul() if "device_matmul" in caps else None
    if mm:
        fn, sync, n, label = mm
        peak, how = bench.matmul_peak_gflops(fn, sync, n=n)
        how = f"{label} {how}"
    else:
        peak, how = bench.matmul_peak_gflops()
    metrics["peak_gflops_per_s"] = peak
    notes["peak_gflops_per_s"] = how
    metrics["mfu"] = gflops / peak if gflops is not None else None
    notes["mfu"] = "analytic training FLOPs (3 x forward, 2 per multiply-add) x steps/s over the measured matmul peak"
