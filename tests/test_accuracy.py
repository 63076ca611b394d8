"""The main job's promise: the MLP and the CNN on digits reach >= 0.95 test accuracy everywhere."""

import pytest

from mlx_explore import compare

from .conftest import load_json, run_cli


@pytest.mark.slow
def test_main_job_mlp_on_digits_all_four_frameworks(tmp_path):
    out = tmp_path / "results.json"
    proc = run_cli(
        "compare", "--model", "mlp", "--dataset", "digits", "--frameworks", "torch,jax,tensorflow,sklearn",
        "--epochs", "10", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = {r["framework"]: r for r in load_json(out)["runs"]}
    for fw in ("torch", "jax", "tensorflow", "sklearn"):
        assert runs[fw]["status"] == "ok", (fw, runs[fw]["reason"])
        assert runs[fw]["metrics"]["test_accuracy"] >= 0.95, (fw, runs[fw]["metrics"]["test_accuracy"])
        assert runs[fw]["metrics"]["samples_per_s"] > 0


@pytest.mark.slow
def test_cnn_on_digits_torch_jax_tensorflow():
    result = compare(model="cnn", dataset="digits", frameworks=["torch", "jax", "tensorflow"], epochs=10, mode="eager")
    for r in result.runs:
        assert r.status == "ok", (r.framework, r.reason)
        assert r.metrics["test_accuracy"] >= 0.95, (r.framework, r.metrics["test_accuracy"])
