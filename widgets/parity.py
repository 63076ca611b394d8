"""Parity plot: per-step relative loss difference of each run against a reference run, on a log scale, with
the tolerance band of the parity test.

>>> from widgets.parity import ParityPlot
>>> ParityPlot(mlx_explore.compare(model="mlp", optimizer="sgd", log_every=1))   # doctest: +SKIP
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from mlx_explore.parity import (FLOOR, REFERENCE_FRAMEWORKS, curves_of, default_reference, relative_differences, run_names,
                                summarize)  # fmt: skip

from ._common import MODE_DASH, color, edit, figure_widget

__all__ = ["FLOOR", "REFERENCE_FRAMEWORKS", "ParityPlot", "default_reference", "relative_differences", "summarize"]


def _sci(x: float) -> str:
    """``1e-4``, ``2.5e-3``: short scientific notation."""
    return np.format_float_scientific(float(x), precision=2, trim="-", exp_digits=1)


class ParityPlot(widgets.VBox):
    """Per-step relative loss difference between runs and a reference run, log y axis, with the tolerance band.

    Example::

        result = mlx_explore.compare(model="mlp", dataset="digits", optimizer="sgd", log_every=1)
        ParityPlot(result)               # or ParityPlot(result.curves, reference="jax", rtol=1e-3)

    Parity holds for the same optimizer semantics (SGD, momentum): the parity test checks rtol 1e-4 for
    PyTorch/JAX/TensorFlow in float32. Adam places epsilon differently between frameworks (PyTorch and Optax
    after bias correction, Keras and scikit-learn before it; see README), so Adam curves drift by design.
    Differences below ``FLOOR`` (1e-12, an exact match included) are drawn at ``FLOOR``.

    Args:
        source: a ``Comparison``, a curves DataFrame (columns ``run``, ``framework``, ``step``, ``loss``; a
            ``load_curves`` table is labelled ``"<framework> #<run_id>"``), or ``None`` (empty plot).
        reference: the ``run`` label to compare against; ``None``: the first torch, jax or tensorflow run.
        rtol: the tolerance drawn as a band (relative, dimensionless).

    Raises:
        ValueError: ``reference`` is not a run of ``source``, or the curves lack a column.

    Attributes:
        reference: ``Dropdown`` of runs; picking one redraws. fig: ``go.FigureWidget`` (``fig.data[0]``/``[1]``
            are the band's floor and rtol edges, then one trace per run named by its label).
        summary: ``HTML``, per run the max relative difference and the first step above ``rtol``.
        diffs: the ``relative_differences`` table plotted.
    """

    def __init__(self, source=None, reference: str | None = None, rtol: float = 1e-4):
        self.rtol = float(rtol)
        self.curves = pd.DataFrame(columns=["run", "framework", "step", "loss"])
        self.diffs = pd.DataFrame(columns=["run", "framework", "step", "rel_diff"])
        self._optimizer = None
        self._busy = False
        self.reference = widgets.Dropdown(description="reference", options=[], layout=widgets.Layout(width="auto"))
        self.reference.observe(lambda _: None if self._busy else self._redraw(), names="value")
        self.summary = widgets.HTML()
        self.fig = figure_widget(layout=dict(
            title="per-step relative loss difference", xaxis_title="step",
            yaxis=dict(type="log", title="|loss - loss_ref| / |loss_ref|", exponentformat="power"),
            height=400, margin=dict(l=70, r=20, t=50, b=50)))  # fmt: skip
        super().__init__([self.reference, self.fig, self.summary])
        self.update(source, reference)

    @property
    def band_label(self) -> str:
        return f"tolerance rtol={_sci(self.rtol)} (parity test, fp32 SGD)"

    def update(self, source, reference: str | None = None) -> None:
        """Redraw from ``source`` (as in the constructor). Keeps the current reference if ``source`` has it.

        Raises:
            ValueError: ``reference`` is not a run of ``source``.
        """
        curves = curves_of(source)
        config = getattr(source, "config", None)
        self._optimizer = getattr(config, "optimizer", None)
        runs = run_names(curves)
        if reference is not None and reference not in runs:
            raise ValueError(f"unknown reference run {reference!r}; the runs are: {', '.join(runs) or 'none'}")
        if reference is None:
            reference = self.reference.value if self.reference.value in runs else default_reference(curves)
        self.curves = curves
        self._busy = True
        try:
            self.reference.options = runs
            self.reference.value = reference
        finally:
            self._busy = False
        self._redraw()

    def _redraw(self) -> None:
        ref, curves = self.reference.value, self.curves
        self.diffs = diffs = relative_differences(curves, ref) if ref is not None else self.diffs.iloc[0:0]
        modes = curves.drop_duplicates("run").set_index("run")["mode"].to_dict() if "mode" in curves else {}
        steps = pd.to_numeric(curves["step"], errors="coerce").dropna()
        span = [float(steps.min()), float(steps.max())] if not steps.empty else [0.0, 1.0]
        band = [
            go.Scatter(x=span, y=[FLOOR, FLOOR], mode="lines", line=dict(width=0), showlegend=False,
                       hoverinfo="skip", name="tolerance floor"),
            go.Scatter(x=span, y=[self.rtol, self.rtol], mode="lines", fill="tonexty", name=self.band_label,
                       line=dict(color="rgba(0,150,0,0.8)", dash="dash"), fillcolor="rgba(0,150,0,0.10)",
                       hovertemplate=f"{self.band_label}<extra></extra>"),
        ]  # fmt: skip
        traces, note = [], f"(values below {_sci(FLOOR)} are drawn at {_sci(FLOOR)})"
        for run, part in diffs.groupby("run", sort=False):
            fw = str(part["framework"].iloc[0])
            traces.append(go.Scatter(
                x=part["step"].tolist(), y=part["rel_diff"].tolist(), mode="lines+markers", name=run,
                meta={"run": run, "framework": fw}, marker=dict(size=4),
                line=dict(color=color(fw), dash=MODE_DASH.get(str(modes.get(run) or ""), "solid")),
                hovertemplate=f"<b>{html.escape(run)}</b> vs {html.escape(str(ref))}<br>step %{{x}}: %{{y:.3e}}"
                              f"<br>{note}<extra></extra>"))  # fmt: skip
        with edit(self.fig):
            self.fig.data = ()
            self.fig.add_traces(band + traces)
            self.fig.layout.title = f"per-step relative loss difference against {ref}" if ref else "no curves"
        self.summary.value = self._summary_html(diffs, ref)

    def _summary_html(self, diffs: pd.DataFrame, ref: str | None) -> str:
        if ref is None:
            return "no curves to compare"
        lines = []
        for s in summarize(diffs, self.rtol):
            if s["first_exceeding_step"] is None:
                verdict = "within tolerance at every step"
            else:
                verdict = f"<b>first exceeds rtol={_sci(self.rtol)} at step {s['first_exceeding_step']}</b>"
            lines.append(f"{html.escape(s['run'])}: max relative difference {_sci(s['max_rel_diff'])} over "
                         f"{s['steps']} steps, {verdict}")  # fmt: skip
        for run in run_names(self.curves):
            if run != ref and run not in set(diffs["run"]):
                lines.append(f"{html.escape(run)}: no step in common with {html.escape(ref)}")
        if self._optimizer == "adam":
            lines.append("optimizer adam: epsilon placement differs between frameworks, so curves drift by design")
        head = f"against <b>{html.escape(ref)}</b>:"
        return head + ("<ul>" + "".join(f"<li>{line}</li>" for line in lines) + "</ul>" if lines else " no other run")
