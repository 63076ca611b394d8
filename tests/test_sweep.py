"""Sweeps (``mlx_explore.sweeps``): a grid validated before anything runs, the local engine through
today's runner, the Ray engine on a real local Ray instance (``ray.init``): results streamed to the
driver, which alone writes the store, each comparison pinned to cores no other timed run holds, a
worker killed mid-run failing only its own runs, a stop cancelling the outstanding tasks and keeping
the finished runs; the command word for word, bad input exit 2, an unreachable cluster and a missing
Ray reported within seconds.

The Ray tests share one Ray instance per test process (``xdist_group``: one pytest worker runs them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import mlx_explore
from mlx_explore import sweeps
from mlx_explore.config import ConfigError
from mlx_explore.results import load_runs

from .conftest import ROOT, run_cli

#: A point that runs in a second or two: scikit-learn, softmax regression on wine, one epoch.
QUICK = dict(model="logreg", dataset="wine", frameworks="sklearn", epochs=1, latency_steps=0, threads=1)
#: A point that runs for several seconds, logging every step (something to kill or stop mid-run).
LONG = dict(model="mlp", dataset="digits", hidden=(64,), frameworks="sklearn", epochs=40, batch_size=16,
            latency_steps=0, threads=1)  # fmt: skip

ray_group = pytest.mark.xdist_group("ray")


# ------------------------------------------------------------------------------------------- the grid


def test_a_grid_expands_to_its_cartesian_product_times_the_listed_runs():
    sweep = sweeps.load({"name": "s", "base": QUICK, "grid": {"batch_size": [16, 32], "seed": [0, 1, 2]},
                         "runs": [{"optimizer": "sgd"}, {"optimizer": "adam", "lr": 0.01}]})  # fmt: skip
    assert len(sweep.points) == 2 * 3 * 2 and sweep.name == "s"
    combos = {(p.config.batch_size, p.config.seed, p.config.optimizer, p.config.lr) for p in sweep.points}
    assert len(combos) == 12 and (32, 2, "adam", 0.01) in combos and (16, 0, "sgd", 1e-3) in combos
    assert sweep.points[0].params == {"batch_size": 16, "seed": 0, "optimizer": "sgd"}
    assert all(p.config.model == "logreg" and p.config.threads == 1 for p in sweep.points)
    assert sweep.total_runs == 12  # one scikit-learn run each
    # a list of configurations, and a YAML file
    listed = sweeps.load([mlx_explore.RunConfig.build(**QUICK), {**QUICK, "seed": 3}])
    assert [p.config.seed for p in listed.points] == [0, 3]


def test_the_example_sweep_file_is_valid_and_names_eight_comparisons():
    sweep = sweeps.load(ROOT / "examples" / "sweep.yaml")
    assert sweep.name == "mlp-batch-size" and len(sweep.points) == 8
    assert {p.config.frameworks for p in sweep.points} == {("torch",), ("jax",), ("tensorflow",), ("sklearn",)}


@pytest.mark.parametrize("doc, field, words", [
    ({"bse": {"model": "mlp"}}, "bse", ["allowed: name, base, grid, runs"]),
    ({"grid": {"batchsize": [32]}}, "grid.batchsize", ["unknown option", "batch_size"]),
    ({"base": {"modle": "mlp"}}, "base.modle", ["unknown option"]),
    ({"base": QUICK, "grid": {"batch_size": [16, 0]}}, "grid.batch_size", ["(got 0)", "point 2 of 2: batch_size=0"]),
    ({"base": QUICK, "runs": [{}, {"precision": "fp8"}]}, "runs[1].precision", ["allowed: fp32, bf16", "point 2 of 2"]),
    ({"base": QUICK, "grid": {"seed": []}}, "grid.seed", ["empty list"]),
    ({"grid": 5}, "grid", ["expected a mapping"]),
    ({"runs": {"seed": 1}}, "runs", ["expected a list"]),
    ({"base": {**QUICK, "dataset": "imagenet"}}, "base.dataset", ["unknown data set", "digits"]),
])  # fmt: skip
def test_bad_grids_name_the_place_and_the_allowed_values(doc, field, words):
    with pytest.raises(ConfigError) as err:
        sweeps.load(doc)
    assert err.value.field == field, err.value
    for w in words:
        assert w in str(err.value), err.value


def test_a_bad_grid_file_is_exit_2_naming_the_key_before_anything_runs(tmp_path):
    grid = tmp_path / "g.yaml"
    grid.write_text("base: {model: logreg, dataset: wine, frameworks: sklearn}\ngrid: {batch_size: [16, 0]}\n")
    from typer.testing import CliRunner

    from mlx_explore.cli import app

    def cli(*args):
        result = CliRunner().invoke(app, ["sweep", *args, "--db", str(tmp_path / "r.db")])
        return result.exit_code, " ".join(result.output.split())

    code, out = cli("--grid", str(grid), "--ray", "local")
    assert code == 2 and "grid.batch_size" in out and "point 2 of 2" in out, out
    assert not (tmp_path / "r.db").exists()  # nothing ran, nothing stored (and no Ray was started: it failed first)
    for text, words in (("[unclosed", "not valid YAML"), ("- 1\n- 2\n", "grid[0]")):
        grid.write_text(text)
        code, out = cli("--grid", str(grid))
        assert code == 2 and words in out, out
    code, out = cli("--grid", str(tmp_path / "missing.yaml"))
    assert code == 2 and "no sweep file" in out, out


# --------------------------------------------------------------------------------------------- local


def test_the_local_engine_runs_each_point_through_the_runner_and_tags_every_run(results_db):
    seen = []
    result = mlx_explore.sweep({"name": "quick", "base": QUICK, "grid": {"batch_size": [16, 32]}},
                               on_point=lambda p, state: seen.append((p.index, state)))  # fmt: skip
    assert result.engine == "local" and not result.interrupted
    assert seen == [(0, "started"), (0, "ended"), (1, "started"), (1, "ended")]
    table = sweeps.table(result.sweep_id)
    assert list(table["batch_size"]) == [16, 32] and set(table["status"]) == {"ok"}
    assert list(table["point"]) == [0, 1] and table["host"].notna().all()
    runs = load_runs(results_db)
    tags = [r["tags"] for r in runs["config"]]
    assert {t["sweep_id"] for t in tags} == {result.sweep_id} and [t["sweep_params"] for t in tags] == [
        {"batch_size": 16}, {"batch_size": 32}]
    mine = result.table()
    assert list(mine["samples_per_s"]) == pytest.approx(list(table["samples_per_s"]))


def test_the_local_engine_and_the_rest_work_without_ray_and_ray_says_which_extra(tmp_path):
    blocker = tmp_path / "blocked" / "ray"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    grid = tmp_path / "g.yaml"
    grid.write_text("base: {model: logreg, dataset: wine, frameworks: sklearn, epochs: 1, latency_steps: 0}\n")
    env = {"PYTHONPATH": str(tmp_path / "blocked") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = run_cli("sweep", "--grid", str(grid), "--ray", "local", "--db", str(tmp_path / "r.db"), env=env)
    assert proc.returncode == 2 and "pip install 'mlx-explore[ray]'" in proc.stderr, proc.stderr
    proc = run_cli("sweep", "--grid", str(grid), "--db", str(tmp_path / "r.db"), env=env)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]


# ----------------------------------------------------------------------------------------------- Ray


def test_task_resources_follow_the_fairness_rules():
    cfg = mlx_explore.RunConfig.build(**QUICK)
    config, options = sweeps._resources(cfg, node_cpus=16, cluster_gpus=0)
    assert options == {"num_cpus": 1, "num_gpus": 0} and config.threads == 1
    config, options = sweeps._resources(cfg.model_copy(update={"threads": None}), node_cpus=16, cluster_gpus=0)
    assert options["num_cpus"] == 16 and config.threads == 16  # all cores: the whole (smallest) node, equal threads
    config, options = sweeps._resources(cfg.model_copy(update={"device": "gpu"}), node_cpus=16, cluster_gpus=8)
    assert options == {"num_cpus": 1, "num_gpus": 1}
    with pytest.raises(ConfigError, match="no GPU"):
        sweeps._resources(cfg.model_copy(update={"device": "gpu"}), node_cpus=16, cluster_gpus=0)
    with pytest.raises(ConfigError, match="smallest node"):
        sweeps._resources(cfg.model_copy(update={"threads": 32}), node_cpus=16, cluster_gpus=0)


def test_two_timed_comparisons_never_hold_the_same_core(tmp_path):
    cores = sorted(os.sched_getaffinity(0))
    mine, locks = sweeps._claim_cores(1)
    try:
        claim = textwrap.dedent("""
            import sys
            from mlx_explore import sweeps
            try:
                cores, _ = sweeps._claim_cores(int(sys.argv[1]), wait_s=0.5)
                print(cores)
            except TimeoutError as exc:
                print("timeout", exc)
        """)
        other = subprocess.run([sys.executable, "-c", claim, "1"], capture_output=True, text=True, cwd=ROOT,
                               timeout=60).stdout  # fmt: skip
        if len(cores) > 1:
            assert other.startswith("[") and str(mine[0]) not in other.strip("[]\n").split(", "), other
        all_of_them = subprocess.run([sys.executable, "-c", claim, str(len(cores))], capture_output=True, text=True,
                                     cwd=ROOT, timeout=60).stdout  # fmt: skip
        assert all_of_them.startswith("timeout") and "free cores" in all_of_them, all_of_them
    finally:
        for f in locks:
            f.close()
    # released: the whole node is free again
    again = subprocess.run([sys.executable, "-c", claim, str(len(cores))], capture_output=True, text=True, cwd=ROOT,
                           timeout=60).stdout  # fmt: skip
    assert again.startswith("["), again


@pytest.fixture(scope="module")
def local_ray():
    address = sweeps.connect("local")
    yield address
    sweeps.ray_module().shutdown()


@ray_group
def test_ray_streams_every_run_to_the_driver_which_stores_it_with_its_node(local_ray, results_db):
    events = []
    result = mlx_explore.sweep({"name": "on-ray", "base": QUICK, "grid": {"batch_size": [16, 64]}}, "ray",
                               on_event=lambda p, e: events.append((p.index, type(e).__name__)))  # fmt: skip
    assert result.engine == "ray" and not result.interrupted and result.ray_address == local_ray
    assert sorted(result.comparisons) == [0, 1]
    table = sweeps.table(result.sweep_id)
    assert sorted(table["batch_size"]) == [16, 64] and set(table["status"]) == {"ok"}
    for index, comparison in result.comparisons.items():
        ray_env = comparison.env["ray"]
        assert ray_env["worker_pid"] != os.getpid() and len(ray_env["cores"]) == 1 and ray_env["node_id"]
        assert comparison.env["host"] and comparison.runs[0].flags["cpu_affinity"] == 1
        assert (index, "Started") in events and (index, "Finished") in events
    stored = load_runs(results_db)
    assert len(stored) == 2 and all(e["ray"]["cores"] for e in stored["env"])  # the node's env, stored by the driver
    assert {c["tags"]["sweep_engine"] for c in stored["config"]} == {"ray"}
    # the same points run locally give the same losses: the task runs today's runner
    local = mlx_explore.sweep({"base": QUICK, "grid": {"batch_size": [16, 64]}}, store=False)
    for index in range(2):
        assert [p["loss"] for p in local.comparisons[index].runs[0].curve] == \
            [p["loss"] for p in result.comparisons[index].runs[0].curve]


def _pid_of_worker_running(point: int | None = None, framework_child_marker: str = "mlx_explore.worker") -> int | None:
    """The pid of a Ray worker whose framework child is running (of sweep point ``point``: the task's name
    ends with it; ``None``: any)."""
    import psutil

    for proc in psutil.process_iter(["cmdline", "ppid"]):
        if any(framework_child_marker in part for part in proc.info["cmdline"] or []):
            try:  # only a framework child of a Ray worker ("ray::..."), never one of another test's runs
                parent = " ".join(psutil.Process(proc.info["ppid"]).cmdline())
            except psutil.Error:
                continue
            if parent.startswith("ray::") and (point is None or parent.strip().endswith(f"point {point}")):
                return proc.info["ppid"]
    return None


@ray_group
def test_a_worker_killed_mid_run_fails_that_run_with_the_reason_and_the_sweep_goes_on(local_ray, results_db):
    killed = {}

    def on_event(point, event):
        if point.index == 0 and type(event).__name__ == "Step" and "pid" not in killed:
            pid = _pid_of_worker_running(point=0)  # not the worker of point 1, which runs beside it
            if pid:
                killed["pid"] = pid
                os.kill(pid, signal.SIGKILL)

    # 400 epochs (minutes): the kill lands mid-run even when the driver gets the steps late, under load
    result = mlx_explore.sweep([{**LONG, "epochs": 400}, QUICK], "ray", on_event=on_event)
    assert killed, "the long run never reported a step"
    dead = result.comparisons[0].runs[0]
    assert dead.status == "failed" and "worker process died" in dead.reason and "logged steps" in dead.reason
    assert result.comparisons[1].runs[0].status == "ok"
    stored = load_runs(results_db)
    assert sorted(stored["status"]) == ["failed", "ok"]
    assert "worker process died" in stored.loc[stored["status"] == "failed", "reason"].iloc[0]


@ray_group
def test_stopping_a_ray_sweep_cancels_outstanding_tasks_and_keeps_finished_runs(local_ray, results_db):
    stop = threading.Event()
    done = []

    def on_event(point, event):
        if type(event).__name__ == "Finished":
            done.append(point.index)
        if point.index == 1 and type(event).__name__ == "Step" and event.step >= 5 and 0 in done:
            stop.set()  # once the quick point has finished (under load it can start after the long one)

    # point 0 is quick, point 1 long (stopped mid-run: 400 epochs, minutes), points 2-4 wait for a core
    longer = {**LONG, "epochs": 400}
    t0 = time.monotonic()
    result = mlx_explore.sweep([QUICK, longer, longer, longer, longer], "ray", on_event=on_event, stop=stop)
    assert result.interrupted and time.monotonic() - t0 < 120
    statuses = {i: [r.status for r in c.runs] for i, c in result.comparisons.items()}
    assert statuses[0] == ["ok"] and statuses[1] == ["interrupted"], statuses
    assert len(statuses) < 5  # the sweep did not run to its end
    stored = load_runs(results_db)
    assert "ok" in set(stored["status"]) and "interrupted" in set(stored["status"])
    time.sleep(1.0)
    assert _pid_of_worker_running() is None  # no framework child left running


@ray_group
def test_the_command_joins_a_running_cluster_by_address_and_fails_fast_on_an_unreachable_one(local_ray, tmp_path):
    grid = tmp_path / "g.yaml"
    grid.write_text("name: two\nbase: {model: logreg, dataset: wine, frameworks: sklearn, epochs: 1, latency_steps: 0, "
                    "threads: 1}\ngrid: {batch_size: [16, 32]}\n")  # fmt: skip
    # the fixture's Ray instance is a cluster of one node: the command joins it as a driver would join a head
    proc = run_cli("sweep", "--grid", str(grid), "--ray", local_ray, "--db", str(tmp_path / "r.db"), "-q")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "sweep two (ray" in proc.stdout and proc.stdout.count(" ok ") == 2 and "stored in" in proc.stdout
    assert len(load_runs(tmp_path / "r.db")) == 2
    t0 = time.monotonic()
    proc = run_cli("sweep", "--grid", str(grid), "--ray", "127.0.0.1:9", "--db", str(tmp_path / "r2.db"))
    assert proc.returncode == 2 and "cannot reach the Ray cluster" in proc.stderr, proc.stderr
    assert time.monotonic() - t0 < 30 and not (tmp_path / "r2.db").exists()


@ray_group
def test_the_suite_on_ray_runs_one_complete_session_per_node_that_the_guide_can_use(local_ray, results_db, monkeypatch):
    from mlx_explore import suite

    from .suite_fakes import tiny_items

    items = tiny_items()  # the real items take minutes: what is tested is the sessions, tags and nodes
    monkeypatch.setattr(suite, "ITEMS", items)
    results = suite.run_on_ray("small", address="local", frameworks="sklearn", db=results_db)
    assert len(results) == len(sweeps.alive_nodes()) == 1  # the local instance is one node
    result = results[0]
    assert set(result.comparisons) == {it.name for it in items} and not result.interrupted
    for comparison in result.comparisons.values():
        assert {r.status for r in comparison.runs} == {"ok"} and comparison.config.threads == len(os.sched_getaffinity(0))
    table = suite.sessions(results_db)
    assert list(table["session"]) == [result.session] and table["complete"].iloc[0], table.to_dict("records")
    assert set(suite.latest(results_db)["suite_item"]) == {it.name for it in items}  # this machine's session


def test_sweep_plot_draws_a_stored_sweep(results_db):
    from widgets import SweepPlot

    result = mlx_explore.sweep({"base": QUICK, "grid": {"batch_size": [16, 32]}})
    plot = SweepPlot(sweeps.table(result.sweep_id))
    assert sorted(plot.table["batch_size"]) == [16, 32]
    assert {t.name for t in plot.figure.data} >= {"sklearn"}
