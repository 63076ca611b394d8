"""mlx_explore.report (the notebooks' computed discussion and results tables) and widgets.SweepPlot, on
synthetic comparisons whose figures are known, so every sentence and every cell can be checked against
the numbers behind it."""

from __future__ import annotations

import importlib
import inspect
import re

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

import widgets
from mlx_explore import cli, report
from mlx_explore.comparison import Comparison, RunRecord, run_label
from mlx_explore.config import RunConfig
from widgets.sweep import SweepPlot, ranks, speedups

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
    assert report.TABLE_COLUMNS == ("status", "device", *report.HEADLINE)


def test_the_headline_catalogue_agrees_with_the_metric_docs():
    """Each column's unit is the one its meaning (METRIC_DOCS) states in brackets; a fraction [0-1]
    has none (its format says how it is shown)."""
    assert list(report.HEADLINE) == ["test_accuracy", "samples_per_s", "step_ms_p50", "step_ms_p99", "infer_ms_p50",
                                     "compile_s", "peak_rss_mb", "mfu", "wall_s"]  # fmt: skip
    for key, col in report.HEADLINE.items():
        assert col.key == key and col.meaning == report.METRIC_DOCS[key] and col.better in ("higher", "lower")
        unit = re.search(r"\[([^\]]+)\]$", col.meaning).group(1)
        assert col.unit == ("" if unit == "0-1" else unit), key
    assert [c.heading for c in report.HEADLINE.values()] == [
        "test acc", "train samples/s", "step p50 ms", "step p99 ms", "infer p50 ms", "compile s", "RSS MiB", "MFU", "wall s"]  # fmt: skip


def test_a_column_formats_its_values_and_shows_a_missing_figure_as_a_dash():
    col = report.HEADLINE
    assert col["samples_per_s"].format(39019.7853) == "39,020" and col["test_accuracy"].format(0.93456) == "0.9346"
    assert col["step_ms_p50"].format(1.234) == "1.23" and col["mfu"].format(0.0123) == "1.2%"
    assert col["peak_rss_mb"].format(np.float32(1234.5)) == "1,234" and col["wall_s"].format(12) == "12.0"
    assert [col["compile_s"].format(v) for v in (None, float("nan"), np.nan, float("inf"), pd.NA)] == ["-"] * 5


def headline_comparison() -> Comparison:
    """torch is best in throughput, compile and wall time; jax in the rest; sklearn did not run."""
    c = comparison([
        rec("torch", sps=39019.7853, acc=0.9, p50=1.234, p99=3.0, infer=0.3, compile_s=2.0, wall=10.0),
        rec("jax", sps=1000.2, acc=0.95, p50=0.5, p99=2.0, infer=0.1, compile_s=3.0, wall=20.0),
        rec("sklearn", mode="eager", status="unsupported", reason="no <conv> layers"),
    ], frameworks=["torch", "jax", "sklearn"])  # fmt: skip
    c.runs[0].metrics["mfu"], c.runs[1].metrics["mfu"] = 0.0123, 0.5
    return c


def html_table(styler) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """(headings, rows of (cell text, cell classes)) of a Styler's HTML."""
    text = styler.to_html()
    head, body = text.split("</thead>")
    heads = re.findall(r"<th[^>]*>(.*?)</th>", head)
    rows = [[(cell, classes) for classes, cell in re.findall(r'<td[^>]*class="([^"]*)"[^>]*>(.*?)</td>', row)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]  # fmt: skip
    return heads, rows


def test_results_table_holds_raw_figures_and_styled_shows_them_formatted_with_the_best_marked():
    table = report.results_table(headline_comparison())
    assert isinstance(table, pd.DataFrame) and table.loc["torch", "samples_per_s"] == 39019.7853  # for computing
    assert report.best_values(table) == {"test_accuracy": 0.95, "samples_per_s": 39019.7853, "step_ms_p50": 0.5, "step_ms_p99": 2.0,
                                         "infer_ms_p50": 0.1, "compile_s": 2.0, "mfu": 0.5, "wall_s": 10.0}  # fmt: skip
    heads, rows = html_table(report.styled(table))
    assert heads == ["run", "status", "device", "test acc", "train samples/s", "step p50 ms", "step p99 ms", "infer p50 ms",
                     "compile s", "MFU", "wall s", "reason"]  # fmt: skip
    assert [cell for cell, _ in rows[0]] == ["torch", "ok", "cpu", "0.9000", "39,020 ★", "1.23", "3.00", "0.300", "2.00 ★",
                                             "1.2%", "10.0 ★", ""]  # fmt: skip
    assert [cell for cell, _ in rows[1]] == ["jax", "ok", "cpu", "0.9500 ★", "1,000", "0.50 ★", "2.00 ★", "0.100 ★", "3.00",
                                             "50.0% ★", "20.0", ""]  # fmt: skip
    assert [cell for cell, _ in rows[2]] == ["sklearn", "unsupported", "cpu", *["-"] * 8, "no &lt;conv&gt; layers"]
    assert all(("★" in cell) == ("best" in classes.split()) for row in rows for cell, classes in row)
    html = report.styled(table).to_html()
    assert "font-weight: bold" in html and "★ best value in its column" in html
    _, plain = html_table(report.styled(table, best=False))
    assert [cell for cell, _ in plain[0]][4] == "39,020" and not any("★" in c for row in plain for c, _ in row)
    assert table.loc["torch", "samples_per_s"] == 39019.7853  # styling left the DataFrame alone


def test_the_cli_table_uses_the_same_catalogue():
    console = Console(record=True, width=250)
    console.print(cli.results_table(headline_comparison()))
    text = console.export_text()
    heads = [h.strip() for h in next(line for line in text.splitlines() if "status" in line).strip("┃ ").split("┃")]
    assert heads == ["run", "status", "device", *[c.heading for c in report.HEADLINE.values()]]  # no ONNX columns: export off
    torch = [c.strip() for c in next(line for line in text.splitlines() if "torch" in line).strip("│ ").split("│")]
    assert torch == ["torch", "ok", "cpu", "0.9000", "39,020", "1.23", "3.00", "0.300", "2.00", "-", "1.2%", "10.0"]


def test_what_the_report_module_refers_to_exists():
    """Every ``report.name`` and ``:func:`name``` in the module's text names something real."""
    source = inspect.getsource(report)
    names = set(re.findall(r"\breport\.([a-z_]\w*)", source)) | set(re.findall(r":(?:func|data|class):`~?([\w.]+)`", source))
    assert names
    for name in names:
        target = report if "." not in name else importlib.import_module(name.rsplit(".", 1)[0])
        assert hasattr(target, name.rsplit(".", 1)[-1]), name
    assert "DESIGN.md" not in source
