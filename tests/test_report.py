"""mlx_explore.report (the notebooks' computed discussion) and widgets.SweepPlot, on synthetic comparisons
whose figures are known, so every sentence can be checked against the numbers behind it."""

from __future__ import annotations

import pandas as pd
import pytest

from mlx_explore import report
from mlx_explore.config import RunConfig
from mlx_explore.runner import Comparison, RunRecord, run_label

ENV = {"cpu_model": "Test CPU", "usable_cores": 2, "gpus": []}


def rec(fw, mode="compiled", repeat=1, *, status="ok", reason="", sps=1000.0, acc=0.9, compile_s=1.0, p50=1.0, p99=2.0,
        infer=0.1, wall=10.0, losses=(2.0, 1.5, 1.0)) -> RunRecord:  # fmt: skip
    metrics = {} if status != "ok" else {
        "test_accuracy": acc, "samples_per_s": sps, "step_ms": 1000 * 32 / sps, "compile_s": compile_s,
        "step_ms_p50": p50, "step_ms_p99": p99, "infer_ms_p50": infer, "wall_s": wall,
    }  # fmt: skip
    curve = [{"step": i + 1, "epoch": 1, "loss": v, "time_s": 0.1 * i} for i, v in enumerate(losses)] if status == "ok" else []
    return RunRecord(framework=fw, mode=mode, repeat=repeat, status=status, reason=reason, device="cpu",
                     metrics=metrics, curve=curve)  # fmt: skip


def comparison(runs, **config) -> Comparison:
    cfg = RunConfig.build(**config)
    for r in runs:
        r.label = run_label(cfg, r.framework, r.mode, r.repeat)
    return Comparison(cfg, ENV, runs)


def test_findings_rank_throughput_with_ratios_and_name_compile_tail_and_inference():
    c = comparison([
        rec("torch", sps=2000, compile_s=20.0, wall=40.0, p50=1.0, p99=5.0, infer=0.3),
        rec("jax", sps=8000, compile_s=0.5, p50=0.5, p99=0.6, infer=0.1),
        rec("tensorflow", sps=4000, compile_s=1.0, p50=1.0, p99=1.5, infer=0.2),
    ], frameworks=["torch", "jax", "tensorflow"], optimizer="sgd")  # fmt: skip
    text = "\n".join(report.findings(c))
    assert "3 of 3 runs finished (torch: cpu, jax: cpu, tensorflow: cpu), on Test CPU with 2 usable cores." in text
    assert "Every run reached the same test accuracy, 0.9000" in text
    assert ("fastest first (ratio to the slowest, torch): jax 8,000 samples/s (4.00x); tensorflow 4,000 samples/s "
            "(2.00x); torch 2,000 samples/s.") in text  # fmt: skip
    assert "The longest compile time (first step minus a steady step) is torch's, 20.00 s, 50% of that run's wall time" in text
    assert "widest p99/p50 ratio of the training step is torch's, 5.00x" in text
    assert "jax answers fastest, 0.1 ms median; the slowest, torch, takes 0.3 ms" in text
    assert "rerun with `repeat=3`" in text


def test_findings_say_why_runs_did_not_finish_and_report_an_accuracy_spread():
    c = comparison([
        rec("torch", acc=0.95), rec("jax", acc=0.93),
        rec("sklearn", mode="eager", status="unsupported", reason="scikit-learn has no convolutional layers"),
        rec("tensorflow", status="failed", reason="killed by SIGSEGV"),
    ], frameworks=["torch", "jax", "sklearn", "tensorflow"], optimizer="adam")  # fmt: skip
    lines = report.findings(c)
    assert lines[0].startswith("2 of 4 runs finished")
    assert "**sklearn** is `unsupported`: scikit-learn has no convolutional layers." in lines
    assert "**tensorflow** is `failed`: killed by SIGSEGV." in lines
    spread = next(line for line in lines if line.startswith("Test accuracy ranges"))
    assert "from 0.9300 (jax) to 0.9500 (torch), a spread of 2.00 percentage points" in spread and "epsilon" in spread


def test_findings_use_medians_over_repeats_and_mode_labels():
    c = comparison([
        rec("torch", "eager", 1, sps=1000), rec("torch", "eager", 2, sps=3000), rec("torch", "eager", 3, sps=2000),
        rec("torch", "compiled", 1, sps=500), rec("torch", "compiled", 2, sps=700), rec("torch", "compiled", 3, sps=600),
    ], frameworks=["torch"], mode="both", repeat=3)  # fmt: skip
    text = "\n".join(report.findings(c))
    assert "torch/eager 2,000 samples/s (3.33x); torch/compiled 600 samples/s." in text
    assert "repeat=3" not in text


def test_findings_of_an_empty_or_all_failed_comparison():
    assert report.findings(comparison([], frameworks=["torch"])) == []
    lines = report.findings(comparison([rec("torch", status="skipped", reason="torch is not installed")], frameworks=["torch"]))
    assert lines == ["0 of 1 runs finished (none), on Test CPU with 2 usable cores.", "**torch** is `skipped`: torch is not installed."]


def test_results_table_keeps_the_headline_columns_and_reasons():
    c = comparison([rec("torch"), rec("sklearn", mode="eager", status="unsupported", reason="no conv layers")],
                   frameworks=["torch", "sklearn"])  # fmt: skip
    table = report.results_table(c)
    assert list(table.index) == ["torch", "sklearn"]
    assert table.columns[0] == "status" and "samples_per_s" in table and table.columns[-1] == "reason"
    assert table.loc["sklearn", "reason"] == "no conv layers" and table.loc["torch", "reason"] == ""
    assert "reason" not in report.results_table(comparison([rec("torch")], frameworks=["torch"]))


def test_parity_findings_judge_each_run_against_the_tolerance():
    c = comparison([
        rec("torch", losses=(2.0, 1.5, 1.0, 0.5)),
        rec("jax", losses=(2.0, 1.5 * (1 + 5e-5), 1.0, 0.5 * (1 + 3e-3))),   # within 1e-4 for 3 steps, not after
        rec("sklearn", mode="eager", losses=(2.0, 1.5 * (1 + 5e-4), 1.0, 0.5)),  # sklearn: rtol 1e-3
    ], frameworks=["torch", "jax", "sklearn"], optimizer="sgd")  # fmt: skip
    first = report.parity_findings(c, steps=3)
    assert first == [
        "**jax** vs torch: largest relative loss difference over the first 3 steps is 5.0e-05, within the parity test's tolerance 0.0001.",
        "**sklearn** vs torch: largest relative loss difference over the first 3 steps is 5.0e-04, within the parity test's tolerance 0.001.",
    ]
    every = report.parity_findings(c)
    assert every[0] == "**jax** vs torch over all 4 logged steps: largest relative loss difference 3.0e-03, first above 0.0001 at step 4."
    assert every[1] == "**sklearn** vs torch over all 4 logged steps: largest relative loss difference 5.0e-04, every step within 0.001."
    assert "compound" in every[2] and len(every) == 3
    assert report.parity_findings(c, steps=4)[0].endswith("is 3.0e-03, **above** the parity test's tolerance 0.0001.")


def test_parity_findings_warn_about_adam_and_skip_failed_runs():
    c = comparison([rec("torch"), rec("jax"), rec("tensorflow", status="failed", reason="boom")],
                   frameworks=["torch", "jax", "tensorflow"], optimizer="adam")  # fmt: skip
    lines = report.parity_findings(c)
    assert len(lines) == 2 and "**jax** vs torch" in lines[0] and "use `optimizer='sgd'`" in lines[1]
    assert report.parity_findings(comparison([], frameworks=["torch"])) == ["No training curves to compare."]


def sweep_results():
    """Batch 8: torch/eager fastest; batch 512: jax/compiled fastest (a ranking change)."""
    small = comparison([rec("torch", "eager", sps=4000), rec("torch", "compiled", sps=2000),
                        rec("jax", "eager", sps=100), rec("jax", "compiled", sps=3000)],
                       frameworks=["torch", "jax"], mode="both", batch_size=8)  # fmt: skip
    large = comparison([rec("torch", "eager", sps=40000), rec("torch", "compiled", sps=60000),
                        rec("jax", "eager", sps=5000), rec("jax", "compiled", sps=100000)],
                       frameworks=["torch", "jax"], mode="both", batch_size=512)  # fmt: skip
    for bs, c in ((8, small), (512, large)):
        for r in c.runs:
            r.metrics["step_ms"] = 1000 * bs / r.metrics["samples_per_s"]
    return {8: small, 512: large}


def test_sweep_frame_and_findings():
    table = report.sweep_frame(sweep_results())
    assert list(table.columns) == ["batch_size", "framework", "mode", "samples_per_s", "step_ms", "compile_s"]
    assert len(table) == 8 and set(table["batch_size"]) == {8, 512}
    lines = report.sweep_findings(table)
    assert lines[0] == ("Fastest at each batch size: 8: torch/eager (4,000 samples/s); "
                        "512: jax/compiled (100,000 samples/s).")  # fmt: skip
    assert lines[1] == ("The ranking changes with batch size: at batch 8 it is torch/eager > jax/compiled > "
                        "torch/compiled > jax/eager; at batch 512 it is jax/compiled > torch/compiled > torch/eager > jax/eager.")  # fmt: skip
    assert "torch: compiled runs 0.50x eager's throughput at batch 8 and 1.50x at batch 512." in lines
    assert "jax: compiled runs 30.00x eager's throughput at batch 8 and 20.00x at batch 512." in lines
    step = next(line for line in lines if line.startswith("torch/eager: a step"))
    assert step == "torch/eager: a step at batch 8 takes 2 ms and at batch 512 12.8 ms, 6.4x the time for 64x the samples."
    assert report.sweep_findings(table.iloc[0:0]) == []


def test_sweep_plot_ranks_and_speedups():
    widgets = pytest.importorskip("widgets")
    from widgets.sweep import SweepPlot, ranks, speedups

    table = report.sweep_frame(sweep_results())
    plot = SweepPlot(table)
    by_name = {(d.name, d.xaxis): list(d.y) for d in plot.figure.data}
    assert by_name[("torch/eager", "x2")] == [1.0, 3.0]   # rank 1 at batch 8, 3 at batch 512
    assert by_name[("jax/compiled", "x2")] == [2.0, 1.0]
    assert by_name[("jax/compiled", "x")] == [3000, 100000]
    assert by_name[("torch compiled/eager", "x3")] == pytest.approx([0.5, 1.5])
    assert plot.figure.layout.xaxis.type == "log" and plot.figure.layout.yaxis.type == "log"
    assert list(ranks(pd.DataFrame({"batch_size": [1, 1, 2], "samples_per_s": [5.0, 5.0, 1.0]}))) == [1.0, 1.0, 1.0]
    assert speedups(table[table["mode"] == "eager"]).empty
    with pytest.raises(ValueError, match="lacks the column"):
        plot.update(table.drop(columns="mode"))
    assert isinstance(widgets.SweepPlot(), SweepPlot)


def test_findings_label_by_framework_when_one_mode_ran():
    """scikit-learn always runs as 'eager'; a compiled comparison still names runs by framework alone."""
    c = comparison([rec("torch", sps=2000), rec("sklearn", mode="eager", sps=1000)], frameworks=["torch", "sklearn"])
    text = "\n".join(report.findings(c))
    assert "torch 2,000 samples/s (2.00x); sklearn 1,000 samples/s." in text and "/compiled" not in text


def test_every_table_column_is_explained():
    assert set(report.TABLE_COLUMNS) | {"reason"} <= set(report.COLUMN_DOCS)
    assert "[samples/s]" in report.COLUMN_DOCS["samples_per_s"] and "skipped" in report.COLUMN_DOCS["status"]
