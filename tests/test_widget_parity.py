"""ParityPlot and relative_differences on synthetic curves with known relative differences."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from mlx_explore import Comparison, RunConfig
from mlx_explore.comparison import RunRecord
from widgets.parity import FLOOR, ParityPlot, relative_differences

STEPS = range(1, 11)


def base(step: int) -> float:
    return 2.0 / (step + 1)


def make_curves() -> pd.DataFrame:
    """jax = torch * (1 + 1e-6) at every step; tensorflow = torch except step 5, where it is 1e-3 higher."""
    rows = []
    for run, factor in (("torch", lambda s: 1.0), ("jax", lambda s: 1 + 1e-6),
                        ("tensorflow", lambda s: 1 + 1e-3 if s == 5 else 1.0)):  # fmt: skip
        rows += [{"run": run, "framework": run, "mode": "eager", "step": s, "loss": base(s) * factor(s)} for s in STEPS]
    return pd.DataFrame(rows)


def run_traces(plot: ParityPlot) -> dict[str, tuple]:
    return {t.name: t for t in plot.fig.data[2:]}


def summary_items(plot: ParityPlot) -> dict[str, str]:
    return {li.split(":")[0]: li for li in re.findall(r"<li>(.*?)</li>", plot.summary.value)}


def test_relative_differences():
    diffs = relative_differences(make_curves(), "torch")
    assert list(diffs.columns) == ["run", "framework", "step", "rel_diff"]
    assert diffs["run"].unique().tolist() == ["jax", "tensorflow"]
    jax, tf = diffs[diffs["run"] == "jax"], diffs[diffs["run"] == "tensorflow"]
    assert jax["step"].tolist() == list(STEPS) and jax["rel_diff"].tolist() == pytest.approx([1e-6] * 10, rel=1e-6)
    assert tf.set_index("step")["rel_diff"][5] == pytest.approx(1e-3, rel=1e-9)
    assert (tf[tf["step"] != 5]["rel_diff"] == FLOOR).all()  # exactly equal losses are drawn at the floor


def test_plot_traces_band_and_summary():
    plot = ParityPlot(make_curves())
    assert plot.reference.value == "torch" and plot.reference.options == ("torch", "jax", "tensorflow")
    assert plot.fig.layout.yaxis.type == "log"
    floor, band = plot.fig.data[:2]
    assert band.name == "tolerance rtol=1e-4 (parity test, fp32 SGD)" and band.fill == "tonexty"
    assert list(band.y) == [1e-4, 1e-4] and list(floor.y) == [FLOOR, FLOOR] and list(band.x) == [1, 10]
    runs = run_traces(plot)
    assert list(runs) == ["jax", "tensorflow"]
    diffs = relative_differences(make_curves(), "torch")
    for name, trace in runs.items():
        assert list(trace.x) == list(STEPS)
        assert list(trace.y) == diffs[diffs["run"] == name]["rel_diff"].tolist()
        assert min(trace.y) > 0  # every point is plottable on the log axis
    items = summary_items(plot)
    assert "first exceeds rtol=1e-4 at step 5" in items["tensorflow"] and "1e-3" in items["tensorflow"]
    assert "within tolerance at every step" in items["jax"] and "1e-6" in items["jax"]

    assert ParityPlot(make_curves(), rtol=1e-7).fig.data[1].y == (1e-7, 1e-7)
    tight = summary_items(ParityPlot(make_curves(), rtol=1e-7))
    assert "at step 1<" in tight["jax"]


def test_picking_another_reference_redraws():
    plot = ParityPlot(make_curves())
    plot.reference.value = "jax"
    runs = run_traces(plot)
    assert list(runs) == ["torch", "tensorflow"] and "against jax" in plot.fig.layout.title.text
    assert list(runs["torch"].y) == pytest.approx([1e-6 / (1 + 1e-6)] * 10, rel=1e-6)
    items = summary_items(plot)
    assert "within tolerance at every step" in items["torch"] and "at step 5" in items["tensorflow"]


def test_unknown_reference_names_the_runs():
    with pytest.raises(ValueError, match="'mxnet'.*torch, jax, tensorflow"):
        relative_differences(make_curves(), "mxnet")
    with pytest.raises(ValueError, match="torch, jax, tensorflow"):
        ParityPlot(make_curves(), reference="mxnet")


def test_zero_difference_and_different_log_every():
    curves = make_curves()
    every2 = pd.DataFrame([{"run": "torch#2", "framework": "torch", "step": s, "loss": base(s)}
                           for s in range(0, 12, 2)])
    curves = pd.concat([curves, every2], ignore_index=True)
    diffs = relative_differences(curves, "torch")
    same = diffs[diffs["run"] == "torch#2"]
    assert same["step"].tolist() == [2, 4, 6, 8, 10]  # steps 0 and 12 are not in the reference
    assert (same["rel_diff"] == FLOOR).all()
    assert (relative_differences(curves, "torch", floor=0)["rel_diff"].loc[same.index] == 0).all()
    trace = run_traces(ParityPlot(curves))["torch#2"]
    assert list(trace.y) == [FLOOR] * 5 and "1e-12" in trace.hovertemplate


def test_default_reference_and_comparison_source():
    sk_first = make_curves().assign(run=lambda d: d["run"].replace({"torch": "sklearn"}),
                                    framework=lambda d: d["framework"].replace({"torch": "sklearn"}))  # fmt: skip
    assert ParityPlot(sk_first).reference.value == "jax"

    curve = [{"step": s, "epoch": 0, "loss": base(s), "time_s": 0.1 * s} for s in STEPS]
    runs = [RunRecord("jax", "eager", status="ok", label="jax", curve=curve),
            RunRecord("torch", "eager", status="ok", label="torch",
                      curve=[{**p, "loss": p["loss"] * 1.01} for p in curve])]  # fmt: skip
    comparison = Comparison(RunConfig(model="mlp", dataset="digits", optimizer="adam"), {}, runs)
    plot = ParityPlot()
    assert plot.fig.data[2:] == () and "no curves" in plot.summary.value
    plot.update(comparison)
    assert plot.reference.value == "torch" and list(run_traces(plot)) == ["jax"]
    assert list(run_traces(plot)["jax"].y) == pytest.approx([0.01 / 1.01] * 10)
    assert "at step 1" in summary_items(plot)["jax"] and "drift by design" in plot.summary.value
