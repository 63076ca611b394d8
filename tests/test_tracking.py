"""MLflow integration (issue 19, ``mlx_explore/tracking.py``): stored runs exported, live logging, dedupe,
faults. Nothing external is started: every test logs to its own local SQLite MLflow store (a copy of one
empty store made once, since MLflow takes seconds to create its schema) and reads the runs back with
``MlflowClient``, comparing them with the results store (one real tiny comparison, made once)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlx_explore
from mlx_explore import results, tracking
from mlx_explore.tracking import TrackingError, export_mlflow

from .conftest import ROOT



@pytest.fixture(autouse=True)
def _no_uri_from_outside(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A store with one real comparison: scikit-learn and PyTorch (eager), logreg on digits, one epoch,
    profiled (3 steps), so each run has a trace folder."""
    db = tmp_path_factory.mktemp("tracking-store") / "results.db"
    mlx_explore.compare(model="logreg", dataset="digits", frameworks=["sklearn", "torch"], epochs=1, latency_steps=0,
                        mode="eager", optimizer="sgd", lr=0.1, batch_size=64, profile_steps=3, db=db)  # fmt: skip
    return db


@pytest.fixture(scope="module")
def empty_mlflow(tmp_path_factory) -> Path:
    """An empty MLflow SQLite store (schema made once: seconds); copy it, do not write it."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def uri(empty_mlflow, tmp_path) -> str:
    """A fresh local MLflow tracking URI of this test (``sqlite:////abs/mlflow.db``)."""
    path = tmp_path / "mlflow" / "mlflow.db"
    path.parent.mkdir()
    shutil.copy(empty_mlflow, path)
    return f"sqlite:///{path}"


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(uri)


def children(uri: str, experiment: str = tracking.DEFAULT_EXPERIMENT) -> list:
    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    return [] if exp is None else list(c.search_runs([exp.experiment_id], "tags.`mlx_explore.kind` = 'run'"))


def parents(uri: str, experiment: str = tracking.DEFAULT_EXPERIMENT) -> list:
    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    return [] if exp is None else list(c.search_runs([exp.experiment_id], "tags.`mlx_explore.kind` = 'comparison'"))


def assert_metrics_equal(uri: str, db: Path, mlflow_ids: dict[int, str]) -> None:
    """Every numeric figure of every stored run equals its MLflow metric (and nothing else is there), the
    loss curve equals ``curve/train_loss`` step by step, the epochs ``epoch/...``."""
    c = client(uri)
    runs = results.load_runs(db, run_ids=list(mlflow_ids))
    fixed = set(results.load_runs(db, last=0).columns) & {"run_id", "comparison_id", "created_at", "framework", "mode",
                                                           "repeat", "model", "dataset", "status", "reason", "device",
                                                           "device_name", "versions", "flags", "notes", "config", "env",
                                                           "error_tail"}  # fmt: skip
    curves = results.load_curves(db, run_ids=list(mlflow_ids))
    epochs = results.load_epochs(db, run_ids=list(mlflow_ids))
    for row in runs.to_dict("records"):
        run = c.get_run(mlflow_ids[row["run_id"]])
        stored = {k: float(v) for k, v in row.items() if k not in fixed and isinstance(v, (int, float))
                  and not isinstance(v, bool) and math.isfinite(v)}  # fmt: skip
        logged = {k: v for k, v in run.data.metrics.items() if "/" not in k}
        assert logged == stored, (row["framework"], set(logged) ^ set(stored))
        assert len(stored) > 15  # throughput, compile time, accuracy, memory, MFU...
        curve = curves[curves["run_id"] == row["run_id"]]
        history = sorted((m.step, m.value) for m in c.get_metric_history(run.info.run_id, "curve/train_loss"))
        assert history == list(zip(curve["step"].astype(int), curve["loss"].astype(float))) and len(history) > 3
        ep = epochs[epochs["run_id"] == row["run_id"]]
        for key in ("train_loss", "val_loss", "val_accuracy"):
            got = sorted((m.step, m.value) for m in c.get_metric_history(run.info.run_id, f"epoch/{key}"))
            assert got == [(int(e), float(v)) for e, v in zip(ep["epoch"], ep[key]) if v == v]


def test_export_logs_every_run_nested_with_its_figures_params_tags_and_artifacts(store, uri, tmp_path):
    t0 = time.perf_counter()
    result = export_mlflow(store, tracking_uri=uri)
    elapsed = time.perf_counter() - t0
    runs = results.load_runs(store)
    assert sorted(result.logged) == sorted(runs["run_id"]) and result.skipped == [] and result.parents_created == 1
    assert result.artifact_location == (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").as_uri()
    assert_metrics_equal(uri, store, result.run_ids)

    (parent,) = parents(uri)
    assert parent.info.status == "FINISHED" and parent.data.tags["mlx_explore.comparison_id"] == str(runs["comparison_id"][0])
    assert parent.data.params["model"] == "logreg" and parent.data.params["frameworks"] == '["sklearn","torch"]'
    c = client(uri)
    for row in runs.to_dict("records"):
        run = c.get_run(result.run_ids[row["run_id"]])
        tags, params = run.data.tags, run.data.params
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["mlx_explore.run_id"] == str(row["run_id"]) and tags["mlx_explore.status"] == row["status"] == "ok"
        assert run.info.status == "FINISHED" and run.info.run_name == f"{row['framework']}/eager"
        assert tags["mlx_explore.framework"] == row["framework"] and tags["mlx_explore.store"] == str(store.absolute())
        assert tags["env.cpu_model"] == row["env"]["cpu_model"] and tags["env.python"] == row["env"]["python"]
        if row["env"]["git_revision"]:  # None outside a git checkout (an installed wheel): no tag then
            assert tags["mlx_explore.git_revision"] == row["env"]["git_revision"] == tags["mlflow.source.git.commit"]
        else:
            assert "mlx_explore.git_revision" not in tags and "mlflow.source.git.commit" not in tags
        for name, version in row["versions"].items():
            if version:
                assert tags[f"versions.{name}"] == version
        # params: every config field and every fairness flag, as tracking.param_value writes them
        for key, value in row["config"].items():
            assert params[key] == tracking.param_value(value), key
        for key, value in row["flags"].items():
            assert params[f"flags.{key}"] == tracking.param_value(value), key
        assert params["epochs"] == "1" and params["mode"] == "eager" and params["lr"] == "0.1"
        # artifacts: the stored run as JSON; its profile trace folder
        local = Path(c.download_artifacts(run.info.run_id, "results.json", str(tmp_path / str(row["run_id"]))))
        doc = json.loads(local.read_text())
        assert doc["run_id"] == row["run_id"] and doc["config"] == row["config"] and doc["flags"] == row["flags"]
        assert len(doc["curve"]) == len(c.get_metric_history(run.info.run_id, "curve/train_loss"))
        listed = {a.path for a in c.list_artifacts(run.info.run_id)}
        assert listed == {"results.json", "profile"}, listed
        trace = results.load_profile_runs(store, run_ids=[row["run_id"]])["trace_dir"][0]
        files = {p.name for p in Path(trace).rglob("*") if p.is_file()}
        assert files and {a.path.rpartition("/")[2] for a in c.list_artifacts(run.info.run_id, "profile")} <= files | {
            p.name for p in Path(trace).iterdir()}
    assert elapsed < 30, f"exporting 2 runs took {elapsed:.1f} s"


def test_exporting_twice_logs_nothing_twice_and_the_cli_says_so(store, uri):
    from typer.testing import CliRunner

    from mlx_explore.cli import app

    first = export_mlflow(store, tracking_uri=uri)
    before = sorted(r.info.run_id for r in children(uri))
    second = export_mlflow(store, tracking_uri=uri)
    assert second.logged == [] and sorted(second.skipped) == sorted(first.logged) and second.parents_created == 0
    assert second.run_ids == first.run_ids
    out = CliRunner().invoke(app, ["export", "mlflow", "--db", str(store), "--tracking-uri", uri])
    assert out.exit_code == 0, out.output
    assert "logged 0 run(s), 2 already there" in " ".join(out.output.split()), out.output
    assert sorted(r.info.run_id for r in children(uri)) == before and len(parents(uri)) == 1
    # another experiment is another place: everything is logged there once
    other = export_mlflow(store, tracking_uri=uri, experiment="elsewhere")
    assert sorted(other.logged) == sorted(first.logged) and len(children(uri, "elsewhere")) == 2


def test_since_keeps_runs_stored_from_then_on(store, uri):
    runs = results.load_runs(store)
    assert export_mlflow(store, tracking_uri=uri, since="2999-01-01").logged == []
    assert children(uri) == [] and parents(uri) == []  # nothing to log: no empty parent either
    last = runs["created_at"].iloc[-1]
    part = export_mlflow(store, tracking_uri=uri, since=last.isoformat())
    assert part.logged == [int(runs["run_id"].iloc[-1])] and part.parents_created == 1
    rest = export_mlflow(store, tracking_uri=uri)  # the earlier run joins the same parent
    assert rest.logged == [int(runs["run_id"].iloc[0])] and rest.parents_created == 0 and rest.parents_reused == 1
    assert len(parents(uri)) == 1 and len(children(uri)) == 2


def test_bad_input_exits_2_naming_the_option(store, uri, tmp_path):
    from typer.testing import CliRunner

    from mlx_explore.cli import app

    def run(*args):
        out = CliRunner().invoke(app, ["export", "mlflow", "--db", str(store), *args])
        return out.exit_code, " ".join(out.output.split())

    code, text = run("--since", "yesterday", "--tracking-uri", uri)
    assert code == 2 and "--since" in text and "ISO 8601" in text
    code, text = run("--tracking-uri", "foo://somewhere")
    assert code == 2 and "--tracking-uri" in text and "unknown scheme 'foo'" in text
    (tmp_path / "afile").write_text("x")
    code, text = run("--tracking-uri", f"sqlite:///{tmp_path}/afile/mlflow.db")
    assert code == 2 and "is a file, not a folder" in text
    code, text = run("--tracking-uri", f"sqlite:///{tmp_path}/afile")
    assert code == 2 and "not an SQLite file" in text
    code, text = run("--tracking-uri", uri, "--experiment", " ")
    assert code == 2 and "--experiment" in text
    out = CliRunner().invoke(app, ["export", "mlflow", "--db", str(tmp_path / "none.db"), "--tracking-uri", uri])
    assert out.exit_code == 2 and "--db" in out.output and "nothing to export" in out.output
    code, text = run("--tracking-uri", str(tmp_path / "mlruns"))
    assert code == 2 and "MLFLOW_ALLOW_FILE_STORE" in text and not (tmp_path / "mlruns").exists()
    assert children(uri) == []


@settings(max_examples=int(os.environ.get("TRACKING_EXAMPLES", "25")), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(since=st.one_of(st.none(), st.text(max_size=30), st.sampled_from(["2026-01-01", "2999-01-01T00:00Z", "", " "])),
       target=st.one_of(st.text(max_size=40), st.sampled_from(["", " ", "sqlite://", "sqlite:///", "sqlite:///:memory:",
                                                               "http://", "https:///x", "postgresql://127.0.0.1:1/x",
                                                               "mlflow://x", "file:///dev/null/x"])))  # fmt: skip
def test_generated_export_options_run_or_exit_2_never_a_traceback(store, tmp_path, monkeypatch, since, target):
    """The bad-input property of ``tests/test_bad_input.py`` for ``export mlflow``: generated ``--since``
    and ``--tracking-uri`` values log, or exit 1 (unreachable) or 2 naming the option; never a traceback."""
    from typer.testing import CliRunner

    from mlx_explore.cli import app

    monkeypatch.chdir(tmp_path)  # a relative path the generator makes lands here
    args = ["export", "mlflow", "--db", str(store), "--tracking-uri", target] + (["--since", since] if since is not None else [])
    t0 = time.perf_counter()
    out = CliRunner().invoke(app, args)
    assert isinstance(out.exception, SystemExit) or out.exception is None, out.output
    assert out.exit_code in (0, 1, 2) and time.perf_counter() - t0 < 15, (out.exit_code, out.output)
    if out.exit_code == 2:
        assert re.search(r"error: (--since|--tracking-uri|--experiment|--db): ", " ".join(out.output.split())), out.output


def test_live_logging_then_export_duplicates_nothing(uri, tmp_path):
    db = tmp_path / "live" / "results.db"
    result = mlx_explore.compare(model="logreg", dataset="wine", frameworks=["sklearn"], epochs=2, latency_steps=0,
                                 repeat=2, db=db, mlflow=uri, tags={"suite": "demo", "suite_item": "x"})  # fmt: skip
    assert result.mlflow_error is None and all(r.run_id is not None for r in result.runs)
    (parent,) = parents(uri)
    assert result.mlflow["parent_run_id"] == parent.info.run_id and parent.info.status == "FINISHED"
    logged = children(uri)
    assert sorted(r.info.run_name for r in logged) == ["sklearn/eager#1", "sklearn/eager#2"]
    assert all(r.data.tags["mlx_explore.tag.suite"] == "demo" for r in logged)
    again = export_mlflow(db, tracking_uri=uri)
    assert again.logged == [] and sorted(again.skipped) == [r.run_id for r in result.runs]
    assert len(children(uri)) == 2 and len(parents(uri)) == 1
    assert_metrics_equal(uri, db, again.run_ids)  # the live path logged exactly what the store holds


def test_a_comparison_whose_mlflow_logging_breaks_still_finishes_and_stores_every_run(uri, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    real, calls = MlflowClient.log_artifact, []

    def flaky(self, run_id, local_path, artifact_path=None):
        calls.append(run_id)
        if len(calls) == 2:  # the second run's results.json: the run is half logged when this fails
            raise OSError(28, "No space left on device")
        return real(self, run_id, local_path, artifact_path)

    monkeypatch.setattr(MlflowClient, "log_artifact", flaky)
    db = tmp_path / "flaky" / "results.db"
    result = mlx_explore.compare(model="logreg", dataset="wine", frameworks=["sklearn"], epochs=1, latency_steps=0,
                                 repeat=3, db=db, mlflow=uri)  # fmt: skip
    assert [r.status for r in result.runs] == ["ok"] * 3 and result.store_error is None
    assert len(results.load_runs(db)) == 3  # the comparison went on after the failure and stored every run
    assert "No space left on device" in result.mlflow_error and "was deleted" in result.mlflow_error
    assert len(calls) == 2  # logging stopped at the failure
    (only,) = children(uri)  # the half-logged second run was deleted again
    assert only.data.tags["mlx_explore.run_id"] == str(result.runs[0].run_id)
    monkeypatch.setattr(MlflowClient, "log_artifact", real)
    rest = export_mlflow(db, tracking_uri=uri)  # the export logs the rest, into the same parent
    assert rest.logged == [r.run_id for r in result.runs[1:]] and rest.parents_created == 0
    assert len(children(uri)) == 3 and len(parents(uri)) == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed once the socket is: nothing listens there


def test_an_unreachable_server_fails_fast_and_clearly_with_nothing_logged_or_run(store, tmp_path):
    from typer.testing import CliRunner

    from mlx_explore.cli import app

    url = f"http://127.0.0.1:{_closed_port()}"
    t0 = time.perf_counter()
    with pytest.raises(TrackingError, match="unreachable") as info:
        export_mlflow(store, tracking_uri=url)
    assert time.perf_counter() - t0 < 10 and info.value.reason == "unreachable" and "Nothing was logged" in str(info.value)
    db = tmp_path / "never" / "results.db"
    t0 = time.perf_counter()
    with pytest.raises(TrackingError, match="unreachable"):  # before any framework runs
        mlx_explore.compare(model="logreg", dataset="wine", frameworks=["sklearn"], epochs=1, db=db, mlflow=url)
    assert time.perf_counter() - t0 < 10 and results.load_runs(db).empty
    out = CliRunner().invoke(app, ["export", "mlflow", "--db", str(store), "--tracking-uri", url])
    assert out.exit_code == 1 and "is unreachable" in out.output and url in out.output
    out = CliRunner().invoke(app, ["compare", "--model", "logreg", "--frameworks", "sklearn", "--db", str(db),
                                   "--mlflow-uri", url])  # fmt: skip
    assert out.exit_code == 2 and "--mlflow-uri" in out.output and "unreachable" in out.output


def test_without_mlflow_the_error_names_the_extra(store, uri, monkeypatch):
    from typer.testing import CliRunner

    from mlx_explore.cli import app

    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` now fails as if it were not installed
    with pytest.raises(TrackingError, match=r"mlx-explore\[mlflow\]") as info:
        export_mlflow(store, tracking_uri=uri)
    assert info.value.reason == "not installed"
    out = CliRunner().invoke(app, ["export", "mlflow", "--db", str(store), "--tracking-uri", uri])
    assert out.exit_code == 1 and "pip install 'mlx-explore[mlflow]'" in out.output
    with pytest.raises(TrackingError, match=r"mlx-explore\[mlflow\]"):
        mlx_explore.compare(model="logreg", dataset="wine", frameworks=["sklearn"], mlflow=True)


def test_the_package_and_the_cli_never_import_mlflow_unless_asked():
    code = ("import sys; import mlx_explore, mlx_explore.cli, mlx_explore.runner, mlx_explore.tracking\n"
            "from typer.testing import CliRunner\n"
            "for args in (['--help'], ['compare', '--help'], ['export', 'mlflow', '--help']):\n"
            "    assert CliRunner().invoke(mlx_explore.cli.app, args).exit_code == 0, args\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_a_10000_step_curve_is_logged_in_batches_fast(uri):
    row = {"run_id": None, "framework": "torch", "mode": "eager", "repeat": 1, "status": "ok",
           "created_at": "2026-01-01T00:00:00+00:00", "config": {"model": "mlp", "lr": 0.1, "hidden": [64, 32]},
           "metrics": {"wall_s": 100.0, "samples_per_s": 1.5e4, "compile_s": None, "test_accuracy": float("nan"),
                       "onnx_logits_match": True, "bad key (µs)!": 2},
           "flags": {"tf32": False, "env_threads": {"OMP_NUM_THREADS": "2"}, "note": "x" * 7000},
           "curve": [{"step": s, "epoch": 1, "loss": 1 / s, "time_s": s / 100} for s in range(1, 10_001)]}  # fmt: skip
    payload = tracking.run_payload(row)
    tracker = tracking._Tracker(uri, "big")
    t0 = time.perf_counter()
    run_id = tracker.log(payload)
    assert time.perf_counter() - t0 < 20
    c = client(uri)
    run = c.get_run(run_id)
    history = c.get_metric_history(run_id, "curve/train_loss")
    assert len(history) == 10_000 and history[-1].value == 1 / 10_000
    figures = {k: v for k, v in run.data.metrics.items() if "/" not in k}  # None and NaN left out, True is 1
    assert figures == {"wall_s": 100.0, "samples_per_s": 1.5e4, "onnx_logits_match": 1.0, "bad key _µs__": 2.0}
    assert run.data.params["hidden"] == "[64,32]" and run.data.params["flags.tf32"] == "False"
    assert len(run.data.params["flags.note"]) == 6000 and run.data.params["flags.env_threads"] == '{"OMP_NUM_THREADS":"2"}'
    assert "mlx_explore.run_id" not in run.data.tags  # an unstored run is never deduplicated


def test_the_default_uri_is_a_sqlite_file_beside_the_store(tmp_path, monkeypatch):
    db = tmp_path / "s" / "results.db"
    assert tracking.default_tracking_uri(db) == f"sqlite:///{tmp_path / 's' / 'mlflow.db'}"
    assert tracking.resolve_tracking_uri(None, db) == tracking.default_tracking_uri(db)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example.invalid:5000")
    assert tracking.resolve_tracking_uri(None, db) == "http://example.invalid:5000"
    assert tracking.resolve_tracking_uri("sqlite:///x.db", db) == "sqlite:///x.db"
    monkeypatch.chdir(tmp_path)
    assert tracking.check_tracking_uri("sqlite:///rel/m.db") == (f"sqlite:///{tmp_path / 'rel' / 'm.db'}",
                                                                 str(tmp_path / "rel" / "mlartifacts"))  # fmt: skip
    assert tracking.metric_key("a/../b") == "a_.._b" and tracking.metric_key("x" * 300) == "x" * 250
