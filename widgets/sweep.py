"""Batch-size sweep plot: how throughput, the ranking of frameworks and the compiled/eager speed-up change
with batch size (small batches expose per-step Python and dispatch overhead, large ones the kernels).

Example (``notebooks/04_eager_vs_compiled.ipynb``)::

    plot = SweepPlot(); display(plot)
    results = {}
    for bs in (8, 32, 128, 512, 1024):
        results[bs] = mlx_explore.compare(model="mlp", dataset="synthetic", batch_size=bs, mode="both")
        plot.update(mlx_explore.report.sweep_frame(results))      # redraws as each batch size ends
"""

from __future__ import annotations

import ipywidgets as W
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mlx_explore.config import DEEP_FRAMEWORKS

from ._common import MODE_DASH, color, edit, figure_widget

PANELS = ("training throughput [samples/s]", "rank (1 = fastest)", "compiled / eager throughput")
COLUMNS = ("batch_size", "framework", "mode", "samples_per_s")


def ranks(table: pd.DataFrame) -> pd.Series:
    """Rank of every row's ``samples_per_s`` among the rows of its batch size (1 = fastest; ties share
    the best rank; NaN throughput gives NaN)."""
    return table.groupby("batch_size")["samples_per_s"].rank(ascending=False, method="min")


def speedups(table: pd.DataFrame) -> pd.DataFrame:
    """Compiled over eager throughput per framework and batch size (frameworks with both modes only).

    Returns:
        DataFrame with columns ``framework``, ``batch_size``, ``speedup`` [dimensionless], by framework
        then batch size.
    """
    piv = table.pivot_table(index=["framework", "batch_size"], columns="mode", values="samples_per_s", sort=False)
    if not {"eager", "compiled"} <= set(piv.columns):
        return pd.DataFrame(columns=["framework", "batch_size", "speedup"])
    out = (piv["compiled"] / piv["eager"]).dropna().rename("speedup").reset_index()
    return out.sort_values(["framework", "batch_size"], kind="stable").reset_index(drop=True)


class SweepPlot(W.VBox):
    """Three panels over batch size (log x axis): steady training throughput (log y), the rank of each
    framework and mode (1 = fastest), and the compiled/eager throughput ratio per framework (1 = no gain).
    One colour per framework, dotted lines for eager mode, as in every widget.

    Args:
        table: a :func:`mlx_explore.report.sweep_frame` table (columns ``batch_size``, ``framework``,
            ``mode``, ``samples_per_s`` at least) or ``None`` (empty plot).
        height: figure height [px].

    Raises:
        ValueError: ``table`` lacks a column (the message names it).

    Attributes:
        figure: the ``go.FigureWidget``; one trace per run and panel, named ``fw/mode``; speed-up traces
            are named by framework.
        table: the table drawn, with a ``rank`` column.
    """

    def __init__(self, table: pd.DataFrame | None = None, height: int = 380):
        self.figure = figure_widget(make_subplots(rows=1, cols=3, subplot_titles=PANELS, horizontal_spacing=0.08))
        self.figure.update_layout(height=height, margin=dict(l=50, r=10, t=40, b=40), legend=dict(orientation="h", y=-0.2))
        self.figure.update_xaxes(type="log", title="batch size [samples]")
        self.figure.update_yaxes(type="log", row=1, col=1)
        self.figure.update_yaxes(autorange="reversed", dtick=1, row=1, col=2)
        self.table = pd.DataFrame(columns=[*COLUMNS, "rank"])
        super().__init__([self.figure])
        if table is not None:
            self.update(table)

    def update(self, table: pd.DataFrame) -> None:
        """Redraw every panel from ``table`` (the whole sweep so far).

        Raises:
            ValueError: a column of :data:`COLUMNS` is missing.
        """
        missing = [c for c in COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"table lacks the column(s) {', '.join(missing)}; have {', '.join(map(str, table.columns))}")
        t = table.dropna(subset=["samples_per_s"]).sort_values("batch_size", kind="stable")
        t = t.assign(rank=ranks(t), run=[f"{fw}/{m}" if fw in DEEP_FRAMEWORKS else fw for fw, m in zip(t["framework"], t["mode"])])
        traces = []
        for run, part in t.groupby("run", sort=False):
            fw, mode = str(part["framework"].iloc[0]), str(part["mode"].iloc[0])
            line = dict(color=color(fw), dash=MODE_DASH.get(mode, "solid"))
            for col, y, fmt in ((1, "samples_per_s", ",.0f"), (2, "rank", "d")):
                traces.append((go.Scatter(
                    x=part["batch_size"].tolist(), y=part[y].tolist(), name=run, legendgroup=run, mode="lines+markers",
                    line=line, showlegend=col == 1,
                    hovertemplate=f"<b>{run}</b><br>batch %{{x}}: %{{y:{fmt}}}<extra></extra>"), col))  # fmt: skip
        for fw, part in speedups(t).groupby("framework", sort=False):
            traces.append((go.Scatter(
                x=part["batch_size"].tolist(), y=part["speedup"].tolist(), name=f"{fw} compiled/eager",
                legendgroup=f"{fw}/compiled", mode="lines+markers", line=dict(color=color(fw)), showlegend=False,
                hovertemplate=f"<b>{fw}</b><br>batch %{{x}}: compiled %{{y:.2f}}x eager<extra></extra>"), 3))  # fmt: skip
        with edit(self.figure):
            self.figure.data = ()
            for trace, col in traces:
                self.figure.add_trace(trace, row=1, col=col)
            # "no gain" line at 1 across the third panel
            self.figure.layout.shapes = [dict(type="line", xref="x3 domain", x0=0, x1=1, yref="y3", y0=1, y1=1,
                                              line=dict(color="grey", dash="dash", width=1))] if len(t) else []
        self.table = t.drop(columns="run")
