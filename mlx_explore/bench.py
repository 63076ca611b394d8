"""Timing, FLOP and memory primitives shared by every framework's run.

Everything here is framework-neutral and small enough to test on synthetic numbers: the trainers
hand in callables, these functions time them. The rules they implement (docs/architecture.md, "Honest
timing"):

- a *window* runs several steps with no synchronization inside and one sync at its end (reading
  the losses back to the host), so asynchronous devices are timed for the work they really did;
  steady throughput is the **median** over windows, never one wall-clock total;
- *latency* is a separate phase with a sync after every call, summarized by percentiles;
- warm-up (tracing, compilation, allocator growth) is timed on its own and excluded from both.

Percentiles use NumPy's default linear interpolation between order statistics ("type 7" in
Hyndman & Fan, "Sample Quantiles in Statistical Packages", The American Statistician 50(4), 1996),
the same definition as ``numpy.percentile`` and pandas' ``quantile``.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from typing import Any, Callable, Iterator, Sequence

import numpy as np

#: Percentiles reported for per-call latencies.
LATENCY_PERCENTILES = (50, 95, 99)


def percentiles(samples: Sequence[float], qs: Sequence[float] = LATENCY_PERCENTILES) -> dict[str, float]:
    """Percentiles of ``samples`` as ``{"p50": ..., "p95": ..., "p99": ...}`` (same unit as the input).

    Linear interpolation between order statistics (Hyndman & Fan type 7, NumPy's default). An
    empty input gives NaN for every percentile.

    Raises:
        ValueError: a percentile outside [0, 100].
    """
    if any(not 0 <= q <= 100 for q in qs):
        raise ValueError(f"percentiles must lie in [0, 100], got {list(qs)}")
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size == 0:
        return {f"p{q:g}": float("nan") for q in qs}
    values = np.percentile(arr, qs)
    return {f"p{q:g}": float(v) for q, v in zip(qs, values)}


def window_stats(windows: Sequence[tuple[int, float]], batch_size: int) -> dict[str, float]:
    """Steady-state figures from timed windows.

    Args:
        windows: ``(steps, seconds)`` per window, each ended by a device sync.
        batch_size: samples per step.

    Returns:
        ``samples_per_s``: median over windows of ``steps * batch_size / seconds`` [samples/s];
        ``step_s``: median over windows of ``seconds / steps`` [s]; ``windows``: how many. NaN
        figures when there are no windows.
    """
    if not windows:
        return {"samples_per_s": float("nan"), "step_s": float("nan"), "windows": 0}
    steps = np.array([n for n, _ in windows], dtype=np.float64)
    secs = np.array([dt for _, dt in windows], dtype=np.float64)
    return {
        "samples_per_s": float(np.median(steps * batch_size / secs)),
        "step_s": float(np.median(secs / steps)),
        "windows": len(windows),
    }


def window_lengths(steps_per_epoch: int, epochs: int, max_len: int, min_windows: int = 5) -> Iterator[list[int]]:
    """How to cut training into timed windows: the list of window lengths of each epoch, yielded
    one epoch at a time (so the plan of 10**9 epochs takes no more memory than that of one).

    The very first step is a window of its own (it includes tracing and compilation). The others
    are cut into windows of equal length ``L = clamp((total - 1) // min_windows, 1, max_len)``, a
    window never crossing an epoch's end (validation runs there), so there are at least
    ``min_windows`` windows whenever ``total - 1 >= min_windows``.

    Raises:
        ValueError: ``steps_per_epoch`` or ``epochs`` below 1 (at the call, not at the first epoch).
    """
    if steps_per_epoch < 1 or epochs < 1:
        raise ValueError(f"steps_per_epoch and epochs must be >= 1, got {steps_per_epoch} and {epochs}")
    length = max(1, min(max_len, (steps_per_epoch * epochs - 1) // min_windows))

    def cut(todo: int) -> list[int]:
        return [length] * (todo // length) + ([todo % length] if todo % length else [])

    def plan() -> Iterator[list[int]]:
        yield [1, *cut(steps_per_epoch - 1)]
        later = cut(steps_per_epoch)  # every later epoch is cut the same way
        for _ in range(epochs - 1):
            yield later

    return plan()


def time_calls(fn: Callable[[int], Any], sync: Callable[[Any], Any], n: int, warmup: int = 0) -> np.ndarray:
    """Time ``n`` calls of ``fn(i)`` with ``sync(result)`` after each one (the latency view).

    ``warmup`` calls run first, untimed (they absorb compilation for a new input shape).

    Returns:
        ``float64 (n,)`` seconds per call, sync included.
    """
    for i in range(warmup):
        sync(fn(i))
    out = np.empty(n, dtype=np.float64)
    clock = time.perf_counter
    for i in range(n):
        t0 = clock()
        sync(fn(warmup + i))
        out[i] = clock() - t0
    return out


# --------------------------------------------------------------------------------- FLOPs


def forward_flops(spec) -> float:
    """Floating-point operations of one sample's forward pass through ``spec`` (a ``ModelSpec``).

    Counts 2 FLOPs per multiply-accumulate in dense and convolution layers (the convention of
    Kaplan et al., "Scaling Laws for Neural Language Models", 2020, section 2.1); bias adds,
    activations, pooling and the softmax are ignored (below 1 % for these models). A 'same'-padded
    ``k x k`` convolution on an ``H x W x C_in`` input costs ``2 H W k^2 C_in C_out``. A GRU step
    costs ``2 (D + H) 3H``; a transformer block on ``T`` steps of width ``d`` costs ``2 T (4 d^2 +
    2 d * 4d)`` in its projections and feed-forward plus ``2 * 2 T^2 d`` for the scores and the
    weighted sum (Kaplan et al. 2020, table 1, with ``n_ctx = T``). ``gbdt`` has no dense
    arithmetic to count: 0.
    """
    flops = 0.0
    shapes = spec.shapes()
    if spec.kind == "gbdt":
        return 0.0
    if spec.kind == "gru":
        (t, d), h = spec.seq_shape, spec.d_model
        return t * 2.0 * (d + h) * 3 * h + 2.0 * h * spec.n_classes
    if spec.kind == "transformer":
        (t, d_in), d = spec.seq_shape, spec.d_model
        ff = shapes["block_0/ffn_0/kernel"][1]
        block = 2.0 * t * (4 * d * d + 2 * d * ff) + 4.0 * t * t * d
        return 2.0 * t * d_in * d + spec.layers * block + 2.0 * d * spec.n_classes
    if spec.kind == "cnn":
        h, w, c = spec.image_shape
        for c_out in spec.channels:
            flops += 2.0 * h * w * spec.kernel_size**2 * c * c_out
            h, w, c = h // 2, w // 2, c_out  # 2x2 max-pooling after each convolution
    for name in spec.layer_names():
        if name.startswith("dense"):
            k_in, k_out = shapes[f"{name}/kernel"]
            flops += 2.0 * k_in * k_out
    return flops


def training_flops(spec, batch_size: int) -> float:
    """FLOPs of one training step: 3 x forward (backward costs about twice the forward: one
    product for the input gradients, one for the weight gradients; Kaplan et al. 2020, and the
    MFU definition of Chowdhery et al., "PaLM", 2022, appendix B) times ``batch_size``."""
    return 3.0 * forward_flops(spec) * batch_size


def matmul_peak_gflops(
    matmul: Callable[[], Any] | None = None,
    sync: Callable[[Any], Any] = lambda r: r,
    n: int = 1024,
    repeats: int = 7,
) -> tuple[float, str]:
    """Measured matrix-multiply peak of this device [GFLOP/s], the denominator of MFU.

    Args:
        matmul: runs one ``n x n`` by ``n x n`` product and returns its result. Default: a NumPy
            float32 product (BLAS ``sgemm``) with the thread settings of this process, which is
            the CPU reference every framework is held to.
        sync: waits for ``matmul``'s result (``block_until_ready``, ``torch.cuda.synchronize``).
        n: matrix size; ``2 n^3`` FLOPs per product.
        repeats: timed products after one warm-up; the **fastest** one counts (a peak).

    Returns:
        ``(gflops_per_s, description)``, e.g. ``(91.3, "numpy float32 matmul 1024x1024, best of 7")``.
    """
    desc = f"matmul {n}x{n}, best of {repeats}"
    if matmul is None:
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
        matmul, desc = (lambda: a @ b), "numpy float32 " + desc
    times = time_calls(lambda _: matmul(), sync, repeats, warmup=1)
    return 2.0 * n**3 / float(times.min()) / 1e9, desc


# --------------------------------------------------------------------------------- memory, CPU


def peak_rss_mb() -> float:
    """Peak resident set size of this process's own memory so far [MiB].

    Linux: ``VmHWM`` of ``/proc/self/status`` (the high-water mark of this address space, ``man 5
    proc``). Not ``getrusage``'s ``ru_maxrss``: Linux carries it across ``fork`` and ``execve``, so a
    child started from a 1 GiB notebook kernel would report at least 1 GiB. Elsewhere ``ru_maxrss``
    (bytes on macOS, KiB on the BSDs).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def cpu_seconds() -> float:
    """CPU time of this process, all threads, user + system [s] (``time.process_time``)."""
    return time.process_time()


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1
