"""The runner: events, isolation of failures, skipped frameworks, GPU requests, results JSON, stopping."""

import os
import sys
import textwrap

from mlx_explore import compare, iter_compare
from mlx_explore.events import Epoch, Finished, Skipped, Started, Step, from_json

from .conftest import load_json, run_cli


def test_event_stream_order_and_json_round_trip(tiny_kwargs):
    events = list(iter_compare(frameworks=["jax", "sklearn"], log_every=5, **tiny_kwargs))
    for fw in ("jax", "sklearn"):
        mine = [e for e in events if e.framework == fw]
        assert isinstance(mine[0], Started) and isinstance(mine[-1], Finished)
        steps = [e.step for e in mine if isinstance(e, Step)]
        assert steps == list(range(5, mine[0].total_steps + 1, 5))  # every --log-every steps
        assert [e.epoch for e in mine if isinstance(e, Epoch)] == [1]
    for e in events:
        assert from_json(e.to_json()) == e


def _fake_package(root, name, body):
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(body))


def test_crashing_frameworks_leave_the_others_intact(tmp_path, monkeypatch, tiny_kwargs):
    # Child processes see broken 'jax' (segfaults on import) and 'keras' (raises) packages first.
    _fake_package(tmp_path, "jax", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    _fake_package(tmp_path, "keras", "raise RuntimeError('keras exploded on purpose')\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    result = compare(frameworks=["jax", "torch", "tensorflow", "sklearn"], **tiny_kwargs)
    status = {r.framework: r.status for r in result.runs}
    assert status == {"jax": "failed", "torch": "ok", "tensorflow": "failed", "sklearn": "ok"}
    assert "SIGSEGV" in result.run("jax").reason
    tf = result.run("tensorflow")
    assert "keras exploded on purpose" in tf.reason and "raise RuntimeError" in tf.error_tail
    for fw in ("torch", "sklearn"):
        assert result.run(fw).metrics["test_accuracy"] > 0.5
        assert len(result.run(fw).curve) == result.run(fw).metrics["steps"]


class _Hide:
    """A meta-path finder that makes the named top-level modules uninstallable, as if absent."""

    def __init__(self, *names):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None


def test_missing_framework_is_skipped_and_the_rest_run(monkeypatch, tiny_kwargs):
    monkeypatch.setattr(sys, "meta_path", [_Hide("tensorflow"), *sys.meta_path])
    result = compare(frameworks=["tensorflow", "sklearn"], **tiny_kwargs)
    tf = result.run("tensorflow")
    assert tf.status == "skipped" and "tensorflow" in tf.reason and "pip install" in tf.reason
    assert result.run("sklearn").status == "ok"


def test_cnn_in_sklearn_is_unsupported_with_reason():
    events = list(iter_compare(model="cnn", dataset="digits", frameworks=["sklearn"], epochs=1))
    assert len(events) == 1 and isinstance(events[0], Skipped)
    assert events[0].status == "unsupported" and "convolutional" in events[0].reason


def test_gpu_request_runs_on_the_gpu_or_is_skipped_with_the_reason(tiny_kwargs):
    """``device="gpu"``: on a machine with a CUDA GPU, PyTorch trains on ``cuda:0``; without one its
    run is skipped (not failed) and says why. scikit-learn never runs on a GPU: unsupported, either way."""
    import torch

    result = compare(frameworks=["torch", "sklearn"], **{**tiny_kwargs, "device": "gpu"})
    run = result.run("torch")
    if torch.cuda.is_available():
        assert run.status == "ok", (run.reason, run.error_tail)
        assert (run.device, run.device_kind) == ("cuda:0", "gpu") and run.device_name == torch.cuda.get_device_name(0)
        assert run.metrics["test_accuracy"] > 0.5 and run.metrics["peak_device_mb"] > 0
    else:
        assert run.status == "skipped" and "GPU" in run.reason
    assert result.run("sklearn").status == "unsupported" and "cpu" in result.run("sklearn").reason


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead too
        return f.read().split()[2] != "Z"


def test_breaking_out_of_the_stream_kills_the_child(tiny_kwargs):
    stream = iter_compare(frameworks=["jax"], **{**tiny_kwargs, "epochs": 50})
    started = next(e for e in stream if isinstance(e, Started))
    assert _alive(started.pid)
    stream.close()  # what a Stop button or Ctrl-C does
    assert not _alive(started.pid)


def test_timeout_stops_the_run_and_reports_it(tiny_kwargs):
    result = compare(frameworks=["jax", "sklearn"], timeout_s=0.5, **{**tiny_kwargs, "epochs": 200})
    assert result.run("jax").status == "timeout" and "0.5 s" in result.run("jax").reason


def test_diverging_run_is_reported_with_the_step(tiny_kwargs):
    result = compare(frameworks=["torch"], **{**tiny_kwargs, "lr": 1e30, "epochs": 3})
    run = result.run("torch")
    assert run.status == "diverged" and "at step" in run.reason


def test_cli_writes_documented_json_and_prints_table(tmp_path):
    out = tmp_path / "r.json"
    proc = run_cli(
        "compare", "--model", "logreg", "--dataset", "wine", "--frameworks", "torch,sklearn", "--epochs", "2",
        "--batch-size", "16", "--mode", "eager", "--log-every", "2", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "torch" in proc.stdout and "samples/s" in proc.stdout
    doc = load_json(out)
    assert doc["config"]["model"] == "logreg" and doc["config"]["dataset"] == "wine"
    assert {"python", "numpy", "versions", "git_revision", "timestamp"} <= set(doc["env"])
    for run in doc["runs"]:
        assert run["status"] == "ok" and run["device"] == "cpu" and run["reason"] == ""
        for key in ("test_accuracy", "test_f1_macro", "test_roc_auc", "samples_per_s", "compile_s", "wall_s"):
            assert isinstance(run["metrics"][key], float), key
        n_train = 178 - 27 - 27  # wine: 178 samples, ceil(15% of 178) test, ceil(15/85 of the other 151) val
        steps = 2 * (n_train // 16)
        assert [p["step"] for p in run["curve"]] == list(range(2, steps + 1, 2))
        assert set(run["curve"][0]) == {"step", "epoch", "loss"}


def test_env_command_lists_every_framework():
    proc = run_cli("env", "--json")
    assert proc.returncode == 0, proc.stderr
    import json

    report = json.loads(proc.stdout)
    for fw in ("torch", "jax", "tensorflow", "sklearn"):
        info = report["frameworks"][fw]
        assert info["installed"] and info["devices"], info
