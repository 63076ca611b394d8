"""Honest measurement end to end: every figure reported, fairness flags in force in the child,
modes and repeats, determinism, and nothing lost when a run or the comparison is killed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mlx_explore import compare
from mlx_explore.events import Started, Step
from mlx_explore.metric_docs import METRIC_DOCS
from mlx_explore.results import load_runs
from mlx_explore.runner import ComparisonInterrupted

from .conftest import ROOT, alive, load_json, run_cli

TINY_CLI = ["--hidden", "32", "--epochs", "1", "--batch-size", "64", "--optimizer", "sgd", "--lr", "0.1", "--latency-steps", "20"]


def _group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def test_every_figure_is_reported_or_explained(tmp_path):
    out = tmp_path / "r.json"
    proc = run_cli("compare", "--frameworks", "torch,jax,tensorflow,sklearn", "--mode", "eager", *TINY_CLI, "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = load_json(out)
    assert doc["metric_docs"] == METRIC_DOCS
    for run in doc["runs"]:
        assert run["status"] == "ok", run
        m, notes = run["metrics"], run["notes"]
        for key in METRIC_DOCS:
            assert key in m, f"{run['framework']}: {key} missing"
            if m[key] is None:
                assert notes.get(key), f"{run['framework']}: {key} is null without a reason"
        assert m["peak_device_mb"] is None and "CPU" in notes["peak_device_mb"]
        assert m["step_ms_p50"] <= m["step_ms_p95"] <= m["step_ms_p99"]
        assert m["infer_ms_p50"] <= m["infer_ms_p95"] <= m["infer_ms_p99"]
        assert m["windows"] >= 5 and m["samples_per_s"] > 0 and m["infer_samples_per_s"] > 0
        assert 0 < m["mfu"] < 1 and m["gflops_per_s"] == pytest.approx(m["mfu"] * m["peak_gflops_per_s"])
        assert m["gflops_per_s"] == pytest.approx(m["train_gflop_per_step"] * m["samples_per_s"] / 64)
        assert m["peak_rss_mb"] > 50 and m["import_s"] > 0 and m["wall_s"] > m["import_s"]
        assert m["compile_s"] is not None and m["compile_s"] >= 0
    env = doc["env"]
    for key in ("python", "numpy", "cpu_model", "cpu_count", "usable_cores", "git_revision", "timestamp", "versions"):
        assert key in env
    assert "torch" in env["versions"] and "jax" in env["versions"]
    assert {r["framework"]: r["flags"]["precision"] for r in doc["runs"]}["torch"] == "fp32"


def test_fairness_flags_are_in_force_in_the_child():
    """Each child reports its settings read back from the framework (or the OS, or threadpoolctl)
    after putting them in force, and the CPU time it burned agrees with them.

    Only read-back values are checked: a flag the trainer copies from the config or from the
    environment the runner set (``env_threads``; JAX's ``xla_flags``, ``gpu_preallocate`` and the
    ``deterministic`` derived from ``XLA_FLAGS``; ``precision``, ``compile``) would equal what was
    asked for whether or not the framework honours it, so it proves nothing here."""
    result = compare(frameworks=["torch", "jax", "tensorflow", "sklearn"], threads=1, model="mlp", hidden=(64,),
                     epochs=2, batch_size=32, optimizer="sgd", lr=0.1, mode="eager", latency_steps=10)  # fmt: skip
    flags = {}
    for r in result.runs:
        assert r.status == "ok", (r.framework, r.reason, r.error_tail)
        f = flags[r.framework] = r.flags
        assert f["cpu_affinity"] == 1, (r.framework, f)  # len(os.sched_getaffinity(0)) after pinning
        assert f["numpy_blas_threads"] == 1, (r.framework, f)  # NumPy's BLAS pool, threadpoolctl.threadpool_info()
        # Measured, not declared: one core cannot burn more than one CPU-second per second.
        assert 0 < r.metrics["cpu_parallelism"] <= 1.05, (r.framework, r.metrics["cpu_parallelism"])
    torch, tf, jax, sk = flags["torch"], flags["tensorflow"], flags["jax"], flags["sklearn"]
    # torch.get_num_threads(), get_num_interop_threads(), get_float32_matmul_precision(),
    # backends.cuda.matmul/cudnn.allow_tf32, are_deterministic_algorithms_enabled()
    assert (torch["intra_op_threads"], torch["inter_op_threads"]) == (1, 1), torch
    assert torch["float32_matmul_precision"] == "highest" and torch["tf32"] is False and torch["deterministic"] is False
    # tf.config.threading.get_intra/inter_op_parallelism_threads(), tensor_float_32_execution_enabled(),
    # is_op_determinism_enabled(), keras.mixed_precision.global_policy()
    assert (tf["intra_op_threads"], tf["inter_op_threads"]) == (1, 1), tf
    assert tf["tf32"] is False and tf["deterministic"] is False and tf["keras_dtype_policy"] == "float32"
    # JAX has no thread-count setting: its figure is the process's core affinity, read from the OS;
    # the matmul precision is read from jax.config.
    assert jax["intra_op_threads"] == jax["cpu_affinity"] == 1 and jax["default_matmul_precision"] == "highest"
    # Every BLAS and OpenMP pool scikit-learn computes with, read back with threadpoolctl.
    assert {k.split(":")[0] for k in sk["thread_pools"]} == {"blas", "openmp"}, sk
    assert set(sk["thread_pools"].values()) == {1} and sk["intra_op_threads"] == 1, sk


def test_mode_both_gives_one_row_per_mode(tiny_kwargs):
    result = compare(**{**tiny_kwargs, "mode": "both"}, frameworks=["jax", "sklearn"])
    assert [r.label for r in result.runs] == ["jax/eager", "jax/compiled", "sklearn"]
    assert all(r.status == "ok" for r in result.runs)
    assert result.run("jax/eager").flags["compile"].startswith("eager")
    assert result.run("jax/compiled").flags["compile"].startswith("jax.jit")
    table = result.metrics
    assert list(table.index) == ["jax/eager", "jax/compiled", "sklearn"]
    assert list(table["mode"]) == ["eager", "compiled", "eager"]
    # Same model, same batches: eager and compiled JAX agree on the losses.
    a, b = (result.run(x).curve for x in ("jax/eager", "jax/compiled"))
    assert [p["loss"] for p in a] == pytest.approx([p["loss"] for p in b], rel=1e-4)


def test_repeat_deterministic_gives_bitwise_identical_curves(tmp_path):
    out = tmp_path / "r.json"
    proc = run_cli("compare", "--frameworks", "torch,jax,tensorflow", "--repeat", "2", "--deterministic", *TINY_CLI,
                   "--latency-steps", "5", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "bitwise identical" in proc.stdout
    doc = load_json(out)
    assert [r["label"] for r in doc["runs"]] == ["torch#1", "torch#2", "jax#1", "jax#2", "tensorflow#1", "tensorflow#2"]
    assert all(r["flags"]["deterministic"] is True for r in doc["runs"]), [r["flags"] for r in doc["runs"]]
    verdicts = {d["framework"]: d for d in doc["determinism"]}
    assert set(verdicts) == {"torch", "jax", "tensorflow"}
    for fw, d in verdicts.items():
        assert d["repeats"] == 2 and d["bitwise_identical"] is True and d["max_abs_diff"] == 0.0, d
    assert all(len(r["curve"]) == r["metrics"]["steps"] for r in doc["runs"])


def test_determinism_report_sees_a_difference():
    from mlx_explore.comparison import Comparison, RunRecord
    from mlx_explore.config import RunConfig

    def rec(repeat, losses):
        return RunRecord("jax", "eager", repeat, status="ok", curve=[{"step": i + 1, "epoch": 1, "loss": v} for i, v in enumerate(losses)])

    c = Comparison(RunConfig(repeat=2), {}, [rec(1, [1.0, 0.5]), rec(2, [1.0, 0.5 + 2**-40])])
    [d] = c.determinism
    assert d["bitwise_identical"] is False and d["max_abs_diff"] == pytest.approx(2**-40)


def test_a_killed_child_fails_alone_and_earlier_runs_are_stored(results_db):
    killed = []

    def kill_jax(event):
        if isinstance(event, Started) and event.framework == "jax":
            killed.append(event.pid)
        if isinstance(event, Step) and event.framework == "jax" and event.step == 10:
            os.kill(killed[0], signal.SIGKILL)

    result = compare(frameworks=["sklearn", "jax", "tensorflow"], model="mlp", hidden=(32,), epochs=3, batch_size=16,
                     optimizer="sgd", lr=0.05, mode="eager", latency_steps=5, on_event=kill_jax)  # fmt: skip
    status = {r.framework: r.status for r in result.runs}
    assert status == {"sklearn": "ok", "jax": "failed", "tensorflow": "ok"}
    assert "SIGKILL" in result.run("jax").reason
    stored = load_runs(results_db)
    assert list(stored["framework"]) == ["sklearn", "jax", "tensorflow"]
    assert list(stored["status"]) == ["ok", "failed", "ok"]
    assert stored["test_accuracy"].iloc[0] == result.run("sklearn").metrics["test_accuracy"]
    assert not alive(killed[0])


def test_ctrl_c_keeps_finished_runs_and_leaves_no_child(tmp_path, results_db):
    cli = subprocess.Popen(
        # scikit-learn finishes in a second; torch.compile then keeps the torch child busy for seconds
        # (with inductor's compile workers in its process group), and 50 epochs more.
        [sys.executable, "-m", "mlx_explore.cli", "compare", "--frameworks", "sklearn,torch", "--mode", "compiled",
         "--epochs", "50", "--hidden", "32", "--batch-size", "16", "--optimizer", "sgd", "--lr", "0.01", "-q"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        torch_child = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and torch_child is None:
            time.sleep(0.2)
            for pid in _children(cli.pid):
                try:
                    if "torch" in Path(f"/proc/{pid}/cmdline").read_text():
                        torch_child = pid
                except OSError:
                    pass
        assert torch_child is not None, "the torch run never started"
        # Let it get into training, then press Ctrl-C.
        while time.monotonic() < deadline and not any("libtorch" in l for l in Path(f"/proc/{torch_child}/maps").read_text().splitlines()):
            time.sleep(0.2)
        time.sleep(1)
        group_before = _group_members(torch_child)
        cli.send_signal(signal.SIGINT)
        stdout, stderr = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 130, stderr[-3000:]
    assert "interrupted" in stderr
    assert torch_child in group_before
    assert not alive(torch_child) and _group_members(torch_child) == []
    stored = load_runs(results_db)
    assert list(stored["framework"]) == ["sklearn", "torch"]
    assert list(stored["status"]) == ["ok", "interrupted"]
    assert "Ctrl-C" in stored["reason"].iloc[1]


def test_stopping_from_a_callback_stores_the_run_as_interrupted(results_db, tiny_kwargs):
    seen = {}

    def stop(event):
        if isinstance(event, Started):
            seen["pid"] = event.pid
        if isinstance(event, Step) and event.framework == "jax":
            raise KeyboardInterrupt

    with pytest.raises(ComparisonInterrupted) as info:
        compare(frameworks=["sklearn", "jax", "torch"], on_event=stop, **tiny_kwargs)
    c = info.value.comparison
    assert c.interrupted and [(r.framework, r.status) for r in c.runs] == [("sklearn", "ok"), ("jax", "interrupted")]
    assert list(load_runs(results_db)["status"]) == ["ok", "interrupted"]
    assert not alive(seen["pid"])


def test_two_comparisons_writing_at_once_lose_nothing(results_db):
    args = ["compare", "--frameworks", "sklearn", "--repeat", "3", "--hidden", "16", "--epochs", "1", "--latency-steps", "5", "-q"]
    procs = [
        subprocess.Popen([sys.executable, "-m", "mlx_explore.cli", *args, "--seed", str(seed)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in (1, 2)
    ]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    runs = load_runs(results_db)
    assert len(runs) == 6 and set(runs["status"]) == {"ok"}
    assert sorted(runs["config"].map(lambda c: c["seed"])) == [1, 1, 1, 2, 2, 2]


def test_corrupt_store_is_a_clear_error_and_is_left_alone(tmp_path):
    db = tmp_path / "broken.db"
    db.write_bytes(b"this is not a database, it is a grocery list\n" * 100)
    before = db.read_bytes()
    proc = run_cli("compare", "--frameworks", "sklearn", *TINY_CLI, "--db", str(db))
    assert proc.returncode == 2
    assert "db:" in proc.stderr and str(db) in proc.stderr.replace("\n", "")
    assert db.read_bytes() == before
    proc = run_cli("results", "--db", str(db))
    assert proc.returncode == 2 and db.read_bytes() == before


def test_results_command_lists_stored_runs(results_db):
    proc = run_cli("compare", "--frameworks", "sklearn,jax", "--mode", "eager", *TINY_CLI)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"stored in {results_db}" in proc.stdout.replace("\n", "")
    listed = run_cli("results", "--json", "--last", "1")
    assert listed.returncode == 0, listed.stderr
    import json

    records = json.loads(listed.stdout)
    assert [r["framework"] for r in records] == ["jax"] and records[0]["status"] == "ok"
    table = run_cli("results", "--framework", "sklearn")
    assert "sklearn" in table.stdout and "jax" not in table.stdout.split("\n", 1)[1]
    assert run_cli("compare", "--frameworks", "sklearn", *TINY_CLI, "--no-store").returncode == 0
    assert len(load_runs(results_db)) == 2  # --no-store wrote nothing


def test_bf16_runs_in_the_deep_learning_frameworks(tiny_kwargs):
    result = compare(frameworks=["torch", "jax", "tensorflow", "sklearn"], precision="bf16", **tiny_kwargs)
    status = {r.framework: r.status for r in result.runs}
    assert status == {"torch": "ok", "jax": "ok", "tensorflow": "ok", "sklearn": "unsupported"}, [r.error_tail for r in result.runs]
    assert "bf16" in result.run("sklearn").reason
    assert result.run("tensorflow").flags["keras_dtype_policy"] == "mixed_bfloat16"
    for fw in ("torch", "jax", "tensorflow"):
        assert result.run(fw).flags["precision"] == "bf16"
        assert result.run(fw).metrics["test_accuracy"] > 0.5


def test_a_stop_event_ends_the_comparison_from_another_thread(results_db, tiny_kwargs):
    import threading

    stop = threading.Event()
    pids = []

    def press_stop(event):
        if isinstance(event, Started):
            pids.append(event.pid)
        if isinstance(event, Step) and event.framework == "jax" and event.step == 3:
            threading.Timer(0.05, stop.set).start()  # as a Stop button would, from the UI thread

    result = compare(frameworks=["sklearn", "jax", "tensorflow"], on_event=press_stop, stop=stop,
                     **{**tiny_kwargs, "epochs": 200})  # fmt: skip
    assert result.interrupted
    assert [(r.framework, r.status) for r in result.runs] == [("sklearn", "ok"), ("jax", "interrupted")]
    assert "stopped by the user" in result.run("jax").reason
    assert list(load_runs(results_db)["status"]) == ["ok", "interrupted"]
    assert not any(alive(p) for p in pids)


def test_emitter_writes_progress_at_most_every_interval_and_other_events_at_once():
    """worker.make_emitter: Step/Epoch lines wait in the buffer until a due (or forced) flush; a
    Started or Finished event is written at once, with everything buffered before it."""
    import io

    from mlx_explore.events import Epoch, Finished
    from mlx_explore.worker import make_emitter

    class Pipe(io.StringIO):
        writes: list[str]

        def flush(self):  # what reached the reader: the buffer's contents at each flush
            self.writes.append(self.getvalue())
            self.seek(0)
            self.truncate()

    pipe, now = Pipe(), [100.0]
    pipe.writes = []
    emit, flush = make_emitter(pipe, interval=0.1, clock=lambda: now[0])
    emit(Started("jax", total_steps=3, epochs=1))
    assert len(pipe.writes) == 1 and '"kind": "started"' in pipe.writes[0]
    emit(Step("jax", step=1, epoch=1, loss=2.0, time_s=0.01))
    now[0] += 0.05
    flush()  # not due: 0.05 s since the last write
    emit(Epoch("jax", epoch=1, train_loss=2.0, val_loss=1.9, val_accuracy=0.5, time_s=0.05))
    assert len(pipe.writes) == 1
    now[0] += 0.06
    flush()  # due: 0.11 s
    assert len(pipe.writes) == 2 and pipe.writes[1].count("\n") == 2 and '"kind": "epoch"' in pipe.writes[1]
    emit(Step("jax", step=2, epoch=1, loss=1.5, time_s=0.12))
    flush(force=True)
    assert len(pipe.writes) == 3 and '"step": 2' in pipe.writes[2]
    emit(Step("jax", step=3, epoch=1, loss=1.0, time_s=0.13))
    emit(Finished("jax", metrics={}))
    assert len(pipe.writes) == 4 and '"step": 3' in pipe.writes[3] and '"kind": "finished"' in pipe.writes[3]
    assert pipe.writes[3].index('"step": 3') < pipe.writes[3].index('"kind": "finished"')  # emit order kept


def test_emitter_serializes_progress_only_when_it_writes(monkeypatch):
    """Progress events are serialized at the flush that writes them, not at emit: the training
    loop's windows pay for an append, not for json.dumps (tests/benchmarks/overhead.py)."""
    import io

    from mlx_explore.events import Steps, from_json
    from mlx_explore.worker import make_emitter

    calls = []
    real = Steps.to_json
    monkeypatch.setattr(Steps, "to_json", lambda self: calls.append(self) or real(self))
    stream, now = io.StringIO(), [0.0]
    emit, flush = make_emitter(stream, interval=0.1, clock=lambda: now[0])
    events = [Steps("jax", epoch=1, steps=[2 * k + 1, 2 * k + 2], losses=[1.0 / (k + 1), 0.5], time_s=k) for k in range(3)]
    for ev in events:
        emit(ev)
        flush()  # not due
    assert calls == [] and stream.getvalue() == ""
    now[0] = 0.2
    flush()
    assert calls == events
    assert [from_json(line) for line in stream.getvalue().splitlines()] == events


def test_steps_event_expands_to_one_step_per_logged_step():
    from mlx_explore.events import Steps, from_json

    ev = Steps("torch", "compiled", 2, epoch=3, steps=[18, 21], losses=[0.5, 0.25], time_s=1.5)
    back = from_json(ev.to_json())
    assert back == ev
    assert back.expand() == [Step("torch", "compiled", 2, step=18, epoch=3, loss=0.5, time_s=1.5),
                             Step("torch", "compiled", 2, step=21, epoch=3, loss=0.25, time_s=1.5)]  # fmt: skip
    with pytest.raises(ValueError, match="2 steps but 1 losses"):
        Steps("jax", steps=[1, 2], losses=[0.1]).expand()


class _KnownLossTrainer:
    """The trainer protocol in NumPy with a loss known in advance: step ``i`` (1-based) returns
    ``1 / i``, or NaN at ``nan_at``. It records the batches it was given."""

    name, device, device_name, device_kind = "known", "cpu", "cpu", "cpu"

    def __init__(self, nan_at=None):
        self.i, self.nan_at, self.batches = 0, nan_at, []

    def indices(self, rows):
        return [r.copy() for r in rows]

    def train_step(self, idx):
        self.i += 1
        self.batches.append(idx)
        return float("nan") if self.i == self.nan_at else 1.0 / self.i

    def losses(self, handles):
        return np.asarray(handles, dtype=np.float64)

    def logits(self, x):
        return np.zeros((len(x), 10), np.float32)


@pytest.mark.parametrize("log_every", [1, 3, 4])
def test_training_loop_logs_every_kth_step_with_its_own_loss_and_visits_every_batch(log_every):
    from mlx_explore import bundle as bundle_mod
    from mlx_explore.config import RunConfig
    from mlx_explore.events import Epoch, Steps
    from mlx_explore.frameworks.common import train

    config = RunConfig.build(model="mlp", dataset="digits", hidden=(8,), epochs=3, batch_size=256, log_every=log_every)
    bundle = bundle_mod.prepare(config)
    trainer, events = _KnownLossTrainer(), []
    metrics, _ = train(trainer, bundle, events.append, lambda: 0.0)
    total = bundle.total_steps
    steps = [s for ev in events if isinstance(ev, Steps) for s in ev.expand()]
    assert [s.step for s in steps] == list(range(log_every, total + 1, log_every))
    assert [s.loss for s in steps] == [1.0 / s.step for s in steps]
    per_epoch = bundle.steps_per_epoch
    assert [s.epoch for s in steps] == [(s.step - 1) // per_epoch + 1 for s in steps]
    assert [ev.epoch for ev in events if isinstance(ev, Epoch)] == [1, 2, 3]
    np.testing.assert_array_equal(np.array(trainer.batches), np.concatenate(list(bundle.order)))
    assert metrics["steps"] == total == 3 * per_epoch


def test_training_loop_stops_at_the_first_nonfinite_loss():
    from mlx_explore import bundle as bundle_mod
    from mlx_explore.config import RunConfig
    from mlx_explore.frameworks.common import Diverged, train

    bundle = bundle_mod.prepare(RunConfig.build(model="mlp", dataset="digits", hidden=(8,), epochs=3, batch_size=256))
    with pytest.raises(Diverged) as info:
        train(_KnownLossTrainer(nan_at=7), bundle, lambda ev: None, lambda: 0.0)
    assert info.value.step == 7


def test_the_window_plan_of_a_billion_epochs_holds_nothing_per_epoch():
    import tracemalloc

    from mlx_explore import bench

    tracemalloc.start()
    try:
        plan = bench.window_lengths(39, 10**9, max_len=100, min_windows=5)
        first, second = next(plan), next(plan)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first == [1, 38] and second == [39] and peak < 1 << 16


def test_latency_phase_replays_the_first_batches_across_epochs():
    from mlx_explore.data import BatchOrder
    from mlx_explore.frameworks.common import step_latency

    order = BatchOrder(100, 32, 5, seed=0)  # 3 steps an epoch, 15 in all
    trainer = _KnownLossTrainer()
    metrics = step_latency(trainer, order, 20)
    every = np.concatenate(list(order))
    np.testing.assert_array_equal(np.array(trainer.batches), every[np.arange(22) % 15])  # 2 warm-up + 20 timed
    assert set(metrics) == {"step_ms_p50", "step_ms_p95", "step_ms_p99"}
