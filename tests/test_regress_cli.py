"""``mlx-explore regress`` end to end: the regression notebooks executed by papermill, their checks
judged against baselines, printed, stored and reported; injected regressions fail naming the check and
the numbers; bad input is exit 2 with the file untouched; a crashing notebook is an ``error`` check and
the others still run. The judging rules themselves are ``tests/test_regress.py``; the float64
reference is ``tests/test_reference.py``.

Only scikit-learn runs here (the quickest framework to start); CI runs the machine-independent
notebooks with every framework (``.ci/run``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import numpy as np
import papermill as pm
import pytest

import mlx_explore
from mlx_explore import reference, regress
from mlx_explore.results import load_checks

from .conftest import ROOT, run_cli

NOTEBOOKS = ROOT / "notebooks" / "regression"


def execute(family: str, out: Path, **parameters) -> list[regress.Check]:
    pm.execute_notebook(str(NOTEBOOKS / f"{family}.ipynb"), str(out), cwd=str(NOTEBOOKS), progress_bar=False,
                        parameters={"frameworks": "sklearn", **parameters}, kernel_name="python3")  # fmt: skip
    return regress.read_checks(out)


def test_the_notebooks_have_parameters_and_no_outputs():
    for family in regress.FAMILIES:
        nb = nbformat.read(NOTEBOOKS / f"{family}.ipynb", as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and "size" in tagged[0].source and "baseline" in tagged[0].source, family
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), family


def test_crippled_training_fails_the_accuracy_check_with_the_numbers(tmp_path):
    checks = {c.name: c for c in execute("accuracy", tmp_path / "a.ipynb", lr_scale=1e-6)}
    mlp = checks["accuracy.mlp.digits.sklearn"]
    assert mlp.verdict == "fail" and mlp.value < 0.5
    assert f"{mlp.value:.4g}" in mlp.detail and "0.93" in mlp.detail
    assert checks["accuracy.cnn.digits.sklearn"].verdict == "skipped"  # scikit-learn has no CNN


def test_a_perturbed_initial_weight_breaks_parity_against_the_reference():
    config = mlx_explore.RunConfig.build(model="mlp", dataset="digits", frameworks="sklearn", hidden=(64, 64), epochs=1,
                                         optimizer="sgd", lr=0.05, mode="eager", latency_steps=0)  # fmt: skip
    result = mlx_explore.compare(config, store=False)
    exact = reference.max_relative_differences(reference.train(config, steps=20), result)["sklearn"]
    assert regress.parity_check("parity.mlp.digits.sklearn.reference", exact).verdict == "pass"
    from mlx_explore import bundle as bundle_module

    b = bundle_module.prepare(config)
    name = max(b.weights, key=lambda k: b.weights[k].size)  # the largest tensor: a weight matrix
    b.weights[name] = b.weights[name] * 1.01  # 1 % larger: a framework that loaded it slightly wrong
    perturbed = reference.max_relative_differences(reference.train(config, steps=20, bundle=b), result)["sklearn"]
    check = regress.parity_check("parity.mlp.digits.sklearn.reference", perturbed)
    assert check.verdict == "fail" and perturbed > 1e-4 and f"{perturbed:.3g}"[:3] in check.detail


def test_runs_with_different_seeds_fail_the_determinism_check():
    curves = []
    for seed in (0, 1):  # what a seed that changes per repeat does
        r = mlx_explore.compare(model="logreg", dataset="wine", frameworks="sklearn", epochs=2, seed=seed,
                                latency_steps=0, store=False)  # fmt: skip
        curves.append(np.array([p["loss"] for p in r.runs[0].curve]))
    identical = curves[0].tobytes() == curves[1].tobytes()
    check = regress.determinism_check("determinism.logreg.wine.sklearn", identical)
    assert check.verdict == "fail" and "not bitwise identical" in check.detail or "differ" in check.detail


def test_update_baseline_then_regress_passes_and_a_much_faster_baseline_fails(tmp_path):
    base = tmp_path / "baseline.json"
    args = ["regress", "--only", "performance", "--frameworks", "sklearn", "--db", str(tmp_path / "r.db")]
    first = run_cli(*args, "--baseline", str(base), "--update-baseline", "--report", str(tmp_path / "r1"))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "baseline written" in first.stdout and base.is_file()
    # Judged against the baseline just written from them, the same measurements pass (a third run of the
    # notebook, to see a fresh measurement pass or be noisy, cost CI two minutes and proved no more: the
    # judging rules are tests/test_regress.py's).
    measured = regress.read_checks(tmp_path / "r1" / "performance.ipynb")
    name = "performance.small_batch.sklearn.eager.samples_per_s"
    # Never a fail; "noisy" where the repeats spread widely (a loaded machine, scikit-learn's 1 ms "compile").
    same = {c.name: c for c in regress.compare(measured, regress.load_baseline(base), size="small")}
    assert same[name].verdict in ("pass", "noisy"), same[name].detail
    odd = {n: (c.verdict, c.detail) for n, c in same.items() if c.verdict not in ("pass", "skipped", "noisy")}
    assert not odd, odd
    # a baseline that demands ten times the throughput just measured, with the same spread, judged on those
    # very measurements (a doubled baseline, spread doubled too, was "noisy" on a loaded machine: 3 repeats
    # varying by a third give an interval too wide to call it)
    doc = json.loads(base.read_text())
    for c in measured:
        if c.name in doc["values"] and c.samples and c.name.endswith("samples_per_s"):
            shift = 9 * float(np.mean(c.samples))
            doc["values"][c.name] = {**doc["values"][c.name], "value": 10 * float(np.mean(c.samples)),
                                     "samples": [v + shift for v in c.samples]}
    faster = tmp_path / "faster.json"
    faster.write_text(json.dumps(doc))
    judged = {c.name: c for c in regress.compare(measured, regress.load_baseline(faster), size="small")}
    assert judged[name].verdict == "fail" and "below the baseline" in judged[name].detail
    assert f"{10 * np.mean(judged[name].samples):,.0f}" in judged[name].detail
    # and the command: a baseline fifty times faster fails whatever the machine's load, naming the check
    for entry in doc["values"].values():
        if entry.get("unit") == "samples/s" and entry.get("value"):
            entry["value"] *= 5
            entry["samples"] = [v * 5 for v in entry.get("samples") or []]
    faster.write_text(json.dumps(doc))
    slow = run_cli(*args, "--baseline", str(faster), "--report", str(tmp_path / "r3"))
    assert slow.returncode == 1, slow.stdout[-3000:]
    assert name in slow.stderr and "below the baseline" in slow.stderr
    stored = load_checks(tmp_path / "r.db")
    assert "fail" in set(stored["verdict"]) and stored["session"].nunique() == 2


def test_a_baseline_of_another_machine_class_skips_speed_and_says_so(tmp_path):
    base = tmp_path / "other.json"
    assert run_cli("regress", "--only", "determinism", "--frameworks", "sklearn", "--baseline", str(base),
                   "--update-baseline", "--no-store", "--report", str(tmp_path / "r1")).returncode == 0  # fmt: skip
    doc = json.loads(base.read_text())
    doc["machine_class"] = "gpu-nvidia-h100-x8"
    base.write_text(json.dumps(doc))
    proc = run_cli("regress", "--only", "determinism", "--frameworks", "sklearn", "--baseline", str(base), "--no-store",
                   "--report", str(tmp_path / "r2"))  # fmt: skip
    assert proc.returncode == 0 and "speed checks are skipped" in proc.stdout and "gpu-nvidia-h100-x8" in proc.stdout


@pytest.mark.parametrize("content", [None, "not json", '{"a": 1}', json.dumps({"cells": [], "nbformat": 4})])
def test_a_missing_corrupt_or_foreign_baseline_is_exit_2_and_untouched(tmp_path, content):
    base = tmp_path / "baseline.json"
    if content is not None:
        base.write_text(content)
    proc = run_cli("regress", "--only", "determinism", "--baseline", str(base), "--no-store", "--report", str(tmp_path / "r"))
    assert proc.returncode == 2 and "--baseline" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert (base.read_text() if content is not None else not base.exists()) in (content, True)


def test_unknown_check_family_and_size_are_exit_2_naming_the_option(tmp_path):
    proc = run_cli("regress", "--only", "accuracy,speed", "--no-store", "--report", str(tmp_path / "r"))
    assert proc.returncode == 2 and "--only" in proc.stderr and "performance" in proc.stderr
    proc = run_cli("regress", "--size", "huge", "--no-store", "--report", str(tmp_path / "r"))
    assert proc.returncode == 2 and "--size" in proc.stderr and "small" in proc.stderr
    assert not (tmp_path / "r").exists()  # nothing ran


def test_a_crashing_notebook_is_an_error_check_and_the_others_still_run(tmp_path, monkeypatch):
    folder = tmp_path / "regression"
    shutil.copytree(NOTEBOOKS, folder)
    nb = nbformat.read(folder / "accuracy.ipynb", as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell("raise RuntimeError('the accuracy notebook broke')"))
    nbformat.write(nb, folder / "accuracy.ipynb")
    monkeypatch.setattr(regress, "NOTEBOOKS_DIR", folder)
    result = regress.run("small", "accuracy,determinism", frameworks="sklearn", report=tmp_path / "report",
                         progress_bar=False)  # fmt: skip
    by_name = {c.name: c for c in result.checks}
    assert by_name["accuracy.notebook"].verdict == "error" and "the accuracy notebook broke" in by_name["accuracy.notebook"].detail
    assert by_name["determinism.mlp.digits.sklearn"].verdict == "pass"
    assert regress.exit_code(result.checks) == 1
    assert (tmp_path / "report" / "index.html").is_file() and (tmp_path / "report" / "determinism.html").is_file()
