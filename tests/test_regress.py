"""Regression checks (issue 16, ``mlx_explore/regress.py``): every verdict with its numbers, the
machine class, baseline files (round trip and the files they must refuse without touching them),
and checks recorded by a notebook executed by papermill in a real kernel, read back as data."""

from __future__ import annotations

import json
import os

import nbformat
import pytest

from mlx_explore import regress
from mlx_explore.config import ConfigError
from mlx_explore.regress import BaselineError, Check

CPU_ENV = {"cpu_model": "Intel(R) Xeon(R) Processor", "usable_cores": 2, "cpu_count": 4, "gpus": [],
           "python": "3.11.7", "numpy": "2.4.6", "mlx_explore": "0.1.0",
           "versions": {"torch": "2.13.0+cpu", "jax": "0.10.2", "scikit-learn": "1.9.1"}}  # fmt: skip
GPU_ENV = {**CPU_ENV, "usable_cores": 16,
           "gpus": ["NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB"]}  # fmt: skip
SPEED = "performance.mlp.digits.jax.samples_per_s"


# ------------------------------------------------------------------------------- fixed tolerances


def test_an_accuracy_drop_below_its_baseline_fails_naming_the_check_and_numbers():
    c = regress.accuracy_check("accuracy.mlp.digits.jax", 0.80, baseline=0.96, tolerance=0.02)
    assert c.verdict == "fail"
    assert c.detail == "accuracy.mlp.digits.jax 0.8 is 0.16 below the baseline 0.96 (tolerance 0.02: at least 0.94)"
    assert regress.accuracy_check("accuracy.mlp.digits.jax", 0.95, baseline=0.96).verdict == "pass"  # within 0.02
    assert regress.accuracy_check("accuracy.mlp.digits.jax", 0.99, baseline=0.96).verdict == "pass"  # better: fine


def test_accuracy_against_a_floor():
    low = regress.accuracy_check("accuracy.cnn.digits.torch", 0.85, floor=0.9)
    assert (low.verdict, low.detail) == ("fail", "accuracy.cnn.digits.torch 0.85 is 0.05 below the floor 0.9")
    assert regress.accuracy_check("accuracy.cnn.digits.torch", 0.9, floor=0.9).verdict == "pass"  # "at least"
    with pytest.raises(ValueError):
        regress.accuracy_check("accuracy.cnn.digits.torch", 0.9, floor=0.9, baseline=0.95)


def test_a_parity_difference_over_rtol_fails():
    bad = regress.parity_check("parity.mlp.digits.jax", 3.2e-4, rtol=1e-4)
    assert bad.verdict == "fail"
    assert bad.detail == "parity.mlp.digits.jax: the largest relative loss difference 3.20e-04 is above rtol 1.00e-04"
    assert regress.parity_check("parity.mlp.digits.jax", 1e-4, rtol=1e-4).verdict == "pass"  # at most rtol
    assert regress.parity_check("parity.mlp.digits.jax", 2e-6).verdict == "pass"  # default rtol: parity.RTOL


def test_determinism_false_fails_and_true_passes():
    bad = regress.determinism_check("determinism.mlp.digits.torch", False)
    assert (bad.verdict, bad.value) == ("fail", 0.0)
    assert "not bitwise identical" in bad.detail and "determinism.mlp.digits.torch" in bad.detail
    assert regress.determinism_check("determinism.mlp.digits.torch", True).verdict == "pass"


def test_relative_and_two_sided_tolerances_follow_pytest_approx():
    c = regress.judge(Check(name="accuracy.x.y", family="accuracy", value=0.9, baseline=1.0, tolerance=0.05, kind="rel"))
    assert c.verdict == "fail" and "differs from the baseline 1 by 10%, more than the tolerance 5%" in c.detail
    c = regress.judge(Check(name="accuracy.x.y", family="accuracy", value=1.04, baseline=1.0, tolerance=0.05, kind="rel"))
    assert c.verdict == "pass"


def test_no_value_is_an_error_no_baseline_is_skipped_and_a_given_reason_is_kept():
    nan = regress.accuracy_check("accuracy.mlp.digits.jax", float("nan"), baseline=0.96)
    assert (nan.verdict, nan.value) == ("error", None)
    assert regress.accuracy_check("accuracy.mlp.digits.jax", 0.96).verdict == "skipped"  # until compare()
    gone = regress.unmeasured("accuracy.mlp.digits.tensorflow", "accuracy", "tensorflow is not installed", skipped=True)
    assert regress.judge(gone) == gone and gone.verdict == "skipped"
    assert Check(name="parity.a", family="parity").verdict == "error"  # never judged: not a pass


def test_check_names_must_start_with_their_family():
    with pytest.raises(ValueError):
        Check(name="mlp.digits.jax", family="accuracy")
    with pytest.raises(ValueError):
        Check(name="performance.x", family="performance", kind="min_ratio", tolerance=1.0)


# ------------------------------------------------------------------------------- speed intervals


def test_a_baseline_demanding_twice_the_measured_throughput_fails():
    c = regress.speed_check(SPEED, [6900, 7000, 7100, 6950, 7050], 14000, tolerance=0.2)
    assert c.verdict == "fail" and c.interval[1] < 0.8
    assert c.detail.startswith(f"{SPEED} 7,000 samples/s is 50% below the baseline 14,000 samples/s (tolerance 20%)")
    assert "lies wholly below the threshold 0.8" in c.detail and "from 5 repeats" in c.detail


def test_samples_straddling_the_threshold_are_noisy():
    c = regress.speed_check(SPEED, [7000, 12000, 9000], 12000, tolerance=0.2)  # mean 0.78 of the baseline
    lo, hi = c.interval
    assert c.verdict == "noisy" and lo < 0.8 < hi and "straddles the threshold 0.8" in c.detail


def test_samples_clearly_above_pass():
    c = regress.speed_check(SPEED, [11900, 12100, 12000, 12050], 12000, tolerance=0.2)
    assert c.verdict == "pass" and c.interval[0] >= 0.8 and "lies wholly at or above" in c.detail


def test_the_interval_is_students_t():
    from scipy import stats

    samples = [9.0, 10.0, 11.0]
    lo, hi = regress.ratio_interval(samples, 10.0)
    half = stats.t.ppf(0.975, 2) * 1.0 / 3**0.5  # s = 1
    assert lo == pytest.approx(1 - half / 10) and hi == pytest.approx(1 + half / 10)
    # with the baseline's own repeats: Welch (se² = 1/3 + 1/3, Welch-Satterthwaite df = 4)
    lo2, hi2 = regress.ratio_interval(samples, 10.0, [9.0, 10.0, 11.0])
    half2 = stats.t.ppf(0.975, 4) * (2 / 3) ** 0.5
    assert lo2 == pytest.approx(1 - half2 / 10) and hi2 == pytest.approx(1 + half2 / 10)
    # one sample, the baseline's spread: the prediction interval (se = s_b * sqrt(1 + 1/3), df = 2)
    lo3, hi3 = regress.ratio_interval([10.0], 10.0, [9.0, 10.0, 11.0])
    half3 = stats.t.ppf(0.975, 2) * (4 / 3) ** 0.5
    assert lo3 == pytest.approx(1 - half3 / 10) and hi3 == pytest.approx(1 + half3 / 10)
    assert regress.ratio_interval([10.0], 10.0) is None  # nothing to estimate a spread from


def test_one_sample_without_spread_is_noisy_unless_clearly_far():
    # threshold 0.8, tolerance 0.2: fail below 0.7, pass from 0.9, noisy between
    assert regress.speed_check(SPEED, [6900], 10000).verdict == "fail"
    assert regress.speed_check(SPEED, [8000], 10000).verdict == "noisy"
    assert regress.speed_check(SPEED, [9000], 10000).verdict == "pass"
    one = regress.speed_check(SPEED, [8000], 10000)
    assert one.interval is None and "one repeat and no spread" in one.detail


def test_a_time_is_judged_by_its_inverse():
    slow = regress.speed_check("performance.mlp.digits.jax.step_ms", [2.0, 2.1, 2.05], 1.0, unit="ms",
                               higher_is_better=False)  # fmt: skip
    fast = regress.speed_check("performance.mlp.digits.jax.step_ms", [1.0, 1.02, 0.98], 1.0, unit="ms",
                               higher_is_better=False)  # fmt: skip
    assert (slow.verdict, fast.verdict) == ("fail", "pass")


def test_bad_speed_numbers_are_errors():
    assert regress.speed_check(SPEED, [], 100.0).verdict == "error"
    assert regress.speed_check(SPEED, [100.0, 0.0], 100.0).verdict == "error"
    assert regress.speed_check(SPEED, [100.0], 0.0).verdict == "error"


# ------------------------------------------------------------------------------- summary, exit code


def test_summarize_and_exit_code():
    ok = regress.parity_check("parity.mlp.digits.jax", 1e-6)
    noisy = regress.speed_check(SPEED, [8000], 10000)
    skipped = regress.unmeasured("accuracy.cnn.digits.sklearn", "accuracy", "no CNN in scikit-learn", skipped=True)
    frame = regress.summarize([ok, noisy, skipped])
    assert list(frame.columns) == ["check", "value", "baseline", "tolerance", "verdict", "detail"]
    assert list(frame["verdict"]) == ["pass", "noisy", "skipped"]
    assert regress.exit_code([ok, noisy, skipped]) == 0
    assert regress.exit_code([ok, regress.determinism_check("determinism.mlp.digits.jax", False)]) == 1
    assert regress.exit_code([ok, regress.unmeasured("parity.mlp.digits.jax", "parity", "the run failed")]) == 1


# ------------------------------------------------------------------------------- machine class


def test_machine_class_of_a_cpu_and_a_gpu_machine():
    assert regress.machine_class(CPU_ENV) == "cpu-intel-xeon-processor-2c"  # usable cores, not cpu_count
    assert regress.machine_class(GPU_ENV) == "gpu-nvidia-h100-80gb-hbm3-x1"
    two = {**GPU_ENV, "gpus": GPU_ENV["gpus"] * 2}
    assert regress.machine_class(two) == "gpu-nvidia-h100-80gb-hbm3-x2"
    assert regress.machine_class({}) == "cpu-unknown-unknown-cores"
    amd = {"cpu_model": "AMD EPYC 7B12 64-Core Processor @ 2.25GHz", "usable_cores": 8}
    assert regress.machine_class(amd) == "cpu-amd-epyc-7b12-64-core-processor-2-25ghz-8c"
    assert regress.default_baseline_path(CPU_ENV) == regress.BASELINES_DIR / "cpu-intel-xeon-processor-2c.json"
    assert regress.BASELINES_DIR.parts[-3:] == ("notebooks", "regression", "baselines")


# ------------------------------------------------------------------------------- baselines


def _checks() -> list[Check]:
    return [
        regress.accuracy_check("accuracy.mlp.digits.jax", 0.9611),
        regress.parity_check("parity.mlp.digits.jax", 3.1e-6),
        regress.determinism_check("determinism.mlp.digits.jax", True),
        regress.speed_check(SPEED, [12001.5, 11890.25, 12203.125]),
        regress.unmeasured("accuracy.cnn.digits.sklearn", "accuracy", "no CNN in scikit-learn", skipped=True),
    ]


def test_baseline_round_trip(tmp_path):
    path = tmp_path / "baselines" / "cpu-intel-xeon-processor-2c.json"
    written = regress.write_baseline(path, _checks(), CPU_ENV, "small")
    loaded = regress.load_baseline(path)
    assert loaded == written
    assert loaded.machine_class == "cpu-intel-xeon-processor-2c" and loaded.size == "small"
    assert loaded.machine == "Intel(R) Xeon(R) Processor; 2 cores; no GPU"
    assert loaded.versions == {"torch": "2.13.0+cpu", "jax": "0.10.2", "scikit-learn": "1.9.1", "python": "3.11.7",
                               "numpy": "2.4.6", "mlx-explore": "0.1.0"}  # fmt: skip
    assert sorted(loaded.values) == sorted(c.name for c in _checks()[:4])  # the unmeasured one is left out
    assert loaded.values[SPEED].samples == (12001.5, 11890.25, 12203.125)
    text = path.read_text()
    data = json.loads(text)
    assert data["schema"] == "mlx-explore-baseline/1" and text == json.dumps(data, sort_keys=True, indent=2) + "\n"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_compare_fills_baselines_from_the_file(tmp_path):
    path = tmp_path / "b.json"
    baseline = regress.write_baseline(path, _checks(), CPU_ENV, "small")
    now = [regress.accuracy_check("accuracy.mlp.digits.jax", 0.90),  # 0.06 below 0.9611
           regress.speed_check(SPEED, [6000.0, 6100.0, 5900.0]),  # half the baseline
           regress.speed_check("performance.cnn.digits.jax.samples_per_s", [100.0, 101.0]),  # not in the file
           regress.parity_check("parity.mlp.digits.jax", 2e-6)]  # fmt: skip
    judged = regress.compare(now, regress.load_baseline(path), size="small", expected_class="cpu-intel-xeon-processor-2c")
    assert [c.verdict for c in judged] == ["fail", "fail", "skipped", "pass"]
    assert judged[0].baseline == 0.9611 and judged[1].baseline_samples == baseline.values[SPEED].samples
    assert [c.verdict for c in regress.compare(now[:2], None)] == ["skipped", "skipped"]
    with pytest.raises(BaselineError) as e:
        regress.compare(now, baseline, size="full")
    assert e.value.field == "size"


FOREIGN = {
    "invalid JSON": ('{"schema": "mlx-explore-baseline/1", ', "json"),
    "not UTF-8": (b"\xff\xfe\x00garbage", "json"),
    "NaN": ('{"schema": "mlx-explore-baseline/1", "x": NaN}', "json"),
    "another object": ('{"a": 1}', "schema"),
    "a list": ("[1, 2]", "schema"),
    "a Jupyter notebook": (json.dumps(nbformat.v4.new_notebook()), "schema"),
    "another schema": ('{"schema": "mlx-explore-baseline/2"}', "schema"),
    "a bad value": (None, "values.accuracy.mlp.digits.jax.value"),
    "an unknown key": (None, "surprise"),
}


@pytest.mark.parametrize("case", list(FOREIGN))
def test_load_baseline_refuses_a_foreign_or_broken_file_and_leaves_it_as_it_was(tmp_path, case):
    content, field = FOREIGN[case]
    path = tmp_path / "base.json"
    if content is None:
        regress.write_baseline(path, _checks(), CPU_ENV, "small")
        data = json.loads(path.read_text())
        if case == "a bad value":
            data["values"]["accuracy.mlp.digits.jax"]["value"] = "high"
        else:
            data["surprise"] = True
        content = json.dumps(data)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    os.utime(path, (1_000_000_000, 1_000_000_000))
    before = (path.read_bytes(), path.stat().st_mtime_ns, sorted(p.name for p in tmp_path.iterdir()))
    with pytest.raises(BaselineError) as e:
        regress.load_baseline(path)
    assert e.value.field == field, e.value
    assert str(path) in str(e.value) and isinstance(e.value, ConfigError)
    if case == "a Jupyter notebook":
        assert "Jupyter notebook" in str(e.value)
    assert (path.read_bytes(), path.stat().st_mtime_ns, sorted(p.name for p in tmp_path.iterdir())) == before


def test_load_baseline_of_a_missing_file_or_a_folder(tmp_path):
    with pytest.raises(BaselineError) as e:
        regress.load_baseline(tmp_path / "none.json")
    assert e.value.field == "path" and "no baseline file at" in str(e.value)
    assert not (tmp_path / "none.json").exists()
    with pytest.raises(BaselineError) as e:
        regress.load_baseline(tmp_path)
    assert e.value.field == "path"


def test_write_baseline_refuses_bad_input_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "b.json"
    regress.write_baseline(path, _checks(), CPU_ENV, "small")
    before = path.read_bytes()
    with pytest.raises(BaselineError) as e:
        regress.write_baseline(path, _checks(), CPU_ENV, "medium")
    assert e.value.field == "size"
    with pytest.raises(BaselineError) as e:
        regress.write_baseline(path, _checks() * 2, CPU_ENV, "small")
    assert e.value.field == "checks"
    with pytest.raises(BaselineError) as e:
        regress.write_baseline(path / "under-a-file.json", _checks(), CPU_ENV, "small")
    assert e.value.field == "path"
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["b.json"]


# ------------------------------------------------------------------------------- notebook -> program


def test_record_outside_a_kernel_prints_the_table(capsys):
    regress.record([regress.parity_check("parity.mlp.digits.jax", 3.2e-4)])
    out = capsys.readouterr().out
    assert out.startswith("1 checks: 1 fail") and "above rtol 1.00e-04" in out


RECORDING_CELL = """\
from mlx_explore import regress
checks = [
    regress.accuracy_check("accuracy.mlp.digits.jax", accuracy, floor=0.9),
    regress.parity_check("parity.mlp.digits.jax", 3.2e-4),
    regress.determinism_check("determinism.mlp.digits.jax", True),
    regress.speed_check("performance.mlp.digits.jax.samples_per_s", [7000.5, 7100.25, 6900.125], 14000.0),
    regress.unmeasured("accuracy.cnn.digits.sklearn", "accuracy", "no CNN in scikit-learn", skipped=True),
]
regress.record(checks[:2])
print("this text is never parsed: accuracy.mlp.digits.jax 0.1")
regress.record(checks[2:])
"""


@pytest.mark.timeout(300)
def test_record_in_a_real_kernel_and_read_checks_back(tmp_path):
    import papermill as pm

    source = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("accuracy = 0.5")
    params.metadata["tags"] = ["parameters"]
    source.cells = [nbformat.v4.new_markdown_cell("# checks"), params, nbformat.v4.new_code_cell(RECORDING_CELL)]
    source.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(source, tmp_path / "in.ipynb")
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(tmp_path / "in.ipynb"), str(out), parameters={"accuracy": 0.97}, cwd=str(tmp_path),
                        kernel_name="python3", progress_bar=False)  # fmt: skip

    expected = [
        regress.accuracy_check("accuracy.mlp.digits.jax", 0.97, floor=0.9),
        regress.parity_check("parity.mlp.digits.jax", 3.2e-4),
        regress.determinism_check("determinism.mlp.digits.jax", True),
        regress.speed_check("performance.mlp.digits.jax.samples_per_s", [7000.5, 7100.25, 6900.125], 14000.0),
        regress.unmeasured("accuracy.cnn.digits.sklearn", "accuracy", "no CNN in scikit-learn", skipped=True),
    ]
    got = regress.read_checks(out)
    assert got == expected
    assert [c.verdict for c in got] == ["pass", "fail", "pass", "fail", "skipped"]
    assert regress.exit_code(got) == 1
    nb = nbformat.read(out, as_version=4)
    shown = [o for o in nb.cells[-1].outputs if o.output_type == "display_data"]
    assert len(shown) == 2 and all({regress.MIME_TYPE, "text/html", "text/plain"} <= set(o.data) for o in shown)
    assert isinstance(shown[0].data[regress.MIME_TYPE], list)  # stored as JSON, not as a string
    assert "<table" in shown[0].data["text/html"] and "parity.mlp.digits.jax" in shown[0].data["text/html"]


def test_read_checks_refuses_what_is_not_a_notebook_or_not_checks(tmp_path):
    with pytest.raises(regress.ChecksError) as e:
        regress.read_checks(tmp_path / "missing.ipynb")
    assert e.value.field == "notebook"
    (tmp_path / "x.ipynb").write_text("not json")
    with pytest.raises(regress.ChecksError) as e:
        regress.read_checks(tmp_path / "x.ipynb")
    assert e.value.field == "notebook"
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("display_data", data={regress.MIME_TYPE: [{"name": "nope"}]})]
    nb.cells = [nbformat.v4.new_code_cell("y"), cell]
    nbformat.write(nb, tmp_path / "bad.ipynb")
    with pytest.raises(regress.ChecksError) as e:
        regress.read_checks(tmp_path / "bad.ipynb")
    assert e.value.field == "cells[1]"
    nb.cells = nb.cells[:1]
    nbformat.write(nb, tmp_path / "empty.ipynb")
    assert regress.read_checks(tmp_path / "empty.ipynb") == []
