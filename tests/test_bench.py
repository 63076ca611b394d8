"""The measurement primitives on synthetic timings: percentiles, medians, windows, FLOPs, memory."""

import subprocess
import sys

import numpy as np
import pytest

from mlx_explore import bench
from mlx_explore.config import RunConfig
from mlx_explore.models import ModelSpec


def test_percentiles_interpolate_between_order_statistics():
    # 1..100 ms: type-7 percentile p = 1 + (n - 1) q / 100
    samples = np.arange(1, 101, dtype=float)
    rng = np.random.default_rng(0)
    got = bench.percentiles(rng.permutation(samples))  # order of arrival must not matter
    assert got == pytest.approx({"p50": 50.5, "p95": 95.05, "p99": 99.01})
    assert bench.percentiles([7.0]) == {"p50": 7.0, "p95": 7.0, "p99": 7.0}
    assert bench.percentiles([1.0, 3.0], qs=(0, 25, 100)) == {"p0": 1.0, "p25": 1.5, "p100": 3.0}


def test_percentiles_of_nothing_are_nan_and_bad_percentiles_raise():
    assert all(np.isnan(v) for v in bench.percentiles([]).values())
    with pytest.raises(ValueError, match="percentiles must lie in"):
        bench.percentiles([1.0], qs=(50, 101))


def test_a_slow_outlier_moves_p99_not_the_median():
    times = [1.0] * 99 + [100.0]
    got = bench.percentiles(times)
    assert got["p50"] == 1.0 and got["p95"] == 1.0
    assert got["p99"] == pytest.approx(1.0 + 0.01 * 99.0)  # a hundredth of the way to the outlier


def test_window_stats_take_medians_over_windows():
    # Windows of 10 steps, batch 32; one window hit by a 10x stall.
    windows = [(10, 0.010), (10, 0.011), (10, 0.100), (10, 0.009), (10, 0.010)]
    got = bench.window_stats(windows, batch_size=32)
    assert got["windows"] == 5
    assert got["samples_per_s"] == pytest.approx(320 / 0.010)
    assert got["step_s"] == pytest.approx(0.001)
    # Unequal windows: the median is of the per-window rates, not of the totals.
    got = bench.window_stats([(1, 0.002), (4, 0.004), (2, 0.010)], batch_size=1)
    assert got["samples_per_s"] == pytest.approx(500.0) and got["step_s"] == pytest.approx(0.002)
    assert np.isnan(bench.window_stats([], 32)["samples_per_s"])


@pytest.mark.parametrize("steps,epochs", [(39, 1), (39, 10), (9, 40), (3, 1), (1, 1), (250, 3)])
def test_window_plan_covers_every_step_once_and_isolates_the_first(steps, epochs):
    plan = list(bench.window_lengths(steps, epochs, max_len=100, min_windows=5))
    assert len(plan) == epochs
    assert all(sum(lengths) == steps for lengths in plan)  # windows never cross an epoch's end
    assert plan[0][0] == 1  # the compile step is alone
    steady = [n for lengths in plan for n in lengths][1:]
    assert all(1 <= n <= 100 for n in steady)
    if steps * epochs - 1 >= 5:
        assert len(steady) >= 5


def test_window_plan_rejects_empty_training():
    with pytest.raises(ValueError, match="steps_per_epoch and epochs"):
        bench.window_lengths(0, 3, 100)


def test_time_calls_syncs_after_every_call_and_skips_warmup():
    log = []
    times = bench.time_calls(lambda i: log.append(("call", i)) or i, lambda r: log.append(("sync", r)), n=3, warmup=2)
    assert times.shape == (3,) and (times >= 0).all()
    assert log == [("call", 0), ("sync", 0), ("call", 1), ("sync", 1), ("call", 2), ("sync", 2),
                   ("call", 3), ("sync", 3), ("call", 4), ("sync", 4)]  # fmt: skip


def test_training_flops_by_hand():
    mlp = ModelSpec(kind="mlp", n_features=64, n_classes=10, hidden=(256, 256))
    fwd = 2 * (64 * 256 + 256 * 256 + 256 * 10)
    assert bench.forward_flops(mlp) == fwd
    assert bench.training_flops(mlp, 32) == 3 * fwd * 32
    cnn = ModelSpec(kind="cnn", n_features=64, n_classes=10, image_shape=(8, 8, 1), channels=(32, 64), dense=128)
    conv = 2 * 8 * 8 * 9 * 1 * 32 + 2 * 4 * 4 * 9 * 32 * 64  # second conv runs on the pooled 4x4 map
    dense = 2 * (2 * 2 * 64 * 128 + 128 * 10)
    assert bench.forward_flops(cnn) == conv + dense


def test_matmul_peak_uses_the_fastest_repeat():
    durations = iter([0.5, 0.2, 0.1, 0.4])  # warm-up, then three timed calls
    import time

    def fake_matmul():
        time.sleep(next(durations))

    gflops, desc = bench.matmul_peak_gflops(fake_matmul, n=1000, repeats=3)
    assert gflops == pytest.approx(2e9 / 0.1 / 1e9, rel=0.3)  # sleep() overshoots a little
    assert "best of 3" in desc
    real, desc = bench.matmul_peak_gflops(n=256, repeats=3)
    assert real > 0 and desc.startswith("numpy float32")


def test_peak_rss_sees_a_large_allocation_and_not_the_parents_memory():
    # A fresh process, so the peak is not already set by an earlier test; started from this large
    # pytest process, whose memory must not count (ru_maxrss would inherit it across fork/exec).
    ballast = np.ones(300 * 2**20 // 8)  # noqa: F841 - 300 MiB in the parent
    code = (
        "import numpy as np; from mlx_explore.bench import peak_rss_mb; a = peak_rss_mb();"
        "block = np.ones(200 * 2**20 // 8); print(a, peak_rss_mb())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    before, after = map(float, out)
    assert 10 < before < 150 and after - before == pytest.approx(200, abs=30)


def test_usable_cores_and_config_modes():
    assert 1 <= bench.usable_cores() <= (__import__("os").cpu_count() or 1)
    assert RunConfig(mode="both").modes == ("eager", "compiled")
    assert RunConfig(mode="eager").modes == ("eager",)


def test_epoch_validation_figures_equal_the_full_metrics():
    """The cheap per-epoch ``loss_and_accuracy`` and the full ``classification_metrics`` (both call
    ``cross_entropy``) against figures computed another way: by hand, and with scipy's logsumexp."""
    from scipy.special import logsumexp

    from mlx_explore.metrics import classification_metrics, loss_and_accuracy

    # softmax([0, ln 3]) = (1/4, 3/4), softmax([ln 3, 0]) = (3/4, 1/4), softmax([0, 1]) = (1/(1+e), e/(1+e))
    logits, y = np.array([[0.0, np.log(3)], [np.log(3), 0.0], [0.0, 1.0]]), np.array([1, 1, 0])
    by_hand = {"loss": (np.log(4 / 3) + np.log(4) + np.log(1 + np.e)) / 3, "accuracy": 1 / 3}  # only row 0 is right
    for got in (loss_and_accuracy(logits, y), classification_metrics(logits, y)):
        assert got["loss"] == pytest.approx(by_hand["loss"], rel=1e-12) and got["accuracy"] == pytest.approx(1 / 3, rel=1e-12)

    rng = np.random.default_rng(3)
    logits, y = (10 * rng.normal(size=(500, 10))).astype(np.float32), rng.integers(0, 10, 500)
    z = logits.astype(np.float64)
    loss = float(np.mean(logsumexp(z, axis=1) - z[np.arange(500), y]))
    accuracy = sum(int(np.flatnonzero(row == row.max())[0] == label) for row, label in zip(z, y)) / 500
    full, quick = classification_metrics(logits, y), loss_and_accuracy(logits, y)
    assert quick["loss"] == pytest.approx(loss, rel=1e-12) and full["loss"] == pytest.approx(loss, rel=1e-12)
    assert quick["accuracy"] == full["accuracy"] == accuracy


def test_the_fast_step_json_is_the_same_json():
    """``Step.to_json`` formats its line by hand (the per-step event); the text must be the one
    ``json.dumps`` writes (``Event.to_json``), and read back to the same event, a NaN or infinite
    loss included (written as JSON's ``NaN``/``Infinity``, as ``json.dumps(allow_nan=True)`` does)."""
    import dataclasses
    import math

    from mlx_explore.events import Event, Step, from_json

    for step in (Step("jax", "eager", 2, step=5, epoch=1, loss=0.1 + 0.2, time_s=3.25),
                 Step('we"ird', step=1, loss=1e-300, time_s=0.0)):  # fmt: skip
        text = step.to_json()
        assert text == Event.to_json(step)
        assert from_json(text) == step
    for loss, written in ((float("nan"), '"loss": NaN'), (float("inf"), '"loss": Infinity')):
        step = Step("torch", step=7, epoch=2, loss=loss, time_s=1.5)
        text = step.to_json()
        assert text == Event.to_json(step) and written in text
        back = from_json(text)
        assert isinstance(back, Step) and (math.isnan(back.loss) if loss != loss else back.loss == loss)
        assert dataclasses.replace(back, loss=0.0) == dataclasses.replace(step, loss=0.0)  # every other field


def _overhead_module():
    import importlib.util

    from .conftest import ROOT

    spec = importlib.util.spec_from_file_location("overhead_bench", ROOT / "tests" / "benchmarks" / "overhead.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_overhead_ratios_and_their_intervals_on_synthetic_rounds():
    ov = _overhead_module()
    rng = np.random.default_rng(0)
    minimal = 1000 * (1 + 0.05 * rng.standard_normal(30))
    ratio, lo, hi = ov.round_ratio(0.9 * minimal, minimal)  # a harness 10 % slower, round by round
    assert ratio == pytest.approx(0.9) and lo == pytest.approx(0.9) and hi == pytest.approx(0.9)
    ratio, lo, hi = ov.round_ratio(1000 * (1 + 0.05 * rng.standard_normal(30)), minimal)  # no difference
    assert lo < 1.0 < hi and hi - lo < 0.1
    epochs = [list(0.010 * (1 + 0.01 * rng.standard_normal(39))) for _ in range(6)]
    slower = [[t * 1.04 for t in r] for r in epochs]
    ratio, lo, hi = ov.epoch_ratio(slower, epochs)  # minimal / harness epoch time
    assert ratio == pytest.approx(1 / 1.04) and lo == pytest.approx(1 / 1.04) and hi == pytest.approx(1 / 1.04)
    assert ov.epoch_seconds([(0, 1), (5, 6), (9, 10)], [(0, 2), (5, 7), (9, 11)]) == [3, 2]
    assert [ov.verdict_of(r, hi) for r, hi in ((0.96, 0.99), (0.93, 0.97), (0.93, 0.94))] == ["ok", "noisy", "SLOW"]
    assert ov.round_ratio([900.0], [1000.0]) == pytest.approx((0.9, np.nan, np.nan), nan_ok=True)  # one round: no interval
    assert ov.verdict_of(0.9, float("nan")) == "noisy"


def test_overhead_intervals_resample_rounds_in_pairs():
    """The machine's speed drifts from round to round (here by +-20 %), and a round's harness and
    minimal figures share its drift (ABBA). Resampled in pairs, the drift cancels: a harness 3 %
    slower in every round is told apart from the 5 % margin (SLOW), and 3 % slower epochs are
    measured to within 0.5 %. Resampled apart, the drift alone would spread the interval by tens
    of per cent and the verdict would be ``noisy``."""
    ov = _overhead_module()
    rng = np.random.default_rng(1)
    drift = np.exp(0.2 * rng.standard_normal(15))  # one factor per round
    minimal = 1000 * drift * (1 + 0.002 * rng.standard_normal(15))
    harness = 0.93 * 1000 * drift * (1 + 0.002 * rng.standard_normal(15))
    ratio, lo, hi = ov.round_ratio(harness, minimal)
    assert 0.92 < lo <= ratio <= hi < 0.94 and ov.verdict_of(ratio, hi) == "SLOW"
    epochs = 0.010 * drift[:, None] * (1 + 0.002 * rng.standard_normal((15, 20)))  # (rounds, epochs)
    ratio, lo, hi = ov.epoch_ratio(1.03 * epochs, epochs)
    assert ratio == pytest.approx(1 / 1.03, rel=1e-3) and hi - lo < 0.005 and lo < 1 / 1.03 < hi


def test_overhead_benchmark_runs_end_to_end_and_its_control(tmp_path):
    """The benchmark script itself (scikit-learn: seconds), and its A/A control: the row it prints
    holds the medians, the ratio and the verdict that its raw per-round figures (``--json``) give.
    Its figures themselves are not checked here (benchmarks, not timed tests)."""
    import json

    from .conftest import ROOT

    ov = _overhead_module()
    script = str(ROOT / "tests" / "benchmarks" / "overhead.py")
    for extra in ([], ["--control"]):
        raw = tmp_path / f"raw{len(extra)}.json"
        proc = subprocess.run([sys.executable, script, "--frameworks", "sklearn", "--rounds", "3", "--processes", "2",
                               "--epochs", "3", "--threads", "1", "--json", str(raw), *extra],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        row = next(line for line in proc.stdout.splitlines() if line.startswith("sklearn")).split()
        (r,) = json.loads(raw.read_text())
        assert len(r["harness_sps"]) == len(r["minimal_sps"]) == 3 and r["processes"] == 2
        ratio = np.median(r["harness_sps"]) / np.median(r["minimal_sps"])
        _, lo, hi = ov.round_ratio(r["harness_sps"], r["minimal_sps"])
        verdict = "ok" if ratio >= 0.95 else ("SLOW" if hi < 0.95 else "noisy")
        assert float(row[2]) == pytest.approx(np.median(r["harness_sps"]), abs=0.5)
        assert float(row[3]) == pytest.approx(np.median(r["minimal_sps"]), abs=0.5)
        assert row[4] == f"{ratio:.3f}" and row[5] == f"{lo:.3f}-{hi:<5.3f}".strip() and row[6] == verdict
        assert r["verdict"] == verdict and r["ok"] == (verdict == "ok") and r["ratio"] == pytest.approx(ratio)
        assert "ratio per process" in proc.stdout and ("A/A CONTROL" in proc.stdout) == bool(extra)
    bad = subprocess.run([sys.executable, script, "--frameworks", "mxnet"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "allowed: torch, jax, tensorflow, sklearn" in bad.stderr
