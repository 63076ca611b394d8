"""``ProfileView``: where a training step's time goes, per framework, from each framework's own profiler.

A stacked bar per run (milliseconds per step by category: matmul, conv, elementwise, ..., framework
overhead), the top ops of the selected run as a table, and the paths of its traces. The picture
answers "why is this one faster": at batch 32 the bars are mostly overhead, at batch 1024 mostly
matmul. Data come from ``mlx_explore.profiling`` (a ``Comparison`` run with ``profile_steps``, or
the results store).
"""

from __future__ import annotations

import html

import ipywidgets as W
import pandas as pd
import plotly.graph_objects as go

from mlx_explore import profiling

from ._common import figure_widget

#: One colour per category, drawn bottom (matmul) to top (other); overhead grey.
CATEGORY_COLORS = dict(zip(profiling.CATEGORIES, (
    "#636EFA", "#AB63FA", "#00CC96", "#19D3F3", "#FFA15A", "#FF6692", "#B6E880", "#BBBBBB", "#E5E5E5",
)))  # fmt: skip


class ProfileView(W.VBox):
    """Stacked ms-per-step bars by category, one per profiled run; the selected run's top ops and traces.

    Example::

        result = mlx_explore.compare(model="mlp", frameworks=["torch", "jax"], epochs=1, profile_steps=20)
        ProfileView(result)                       # or ProfileView.from_store(run_ids=[12, 13])

    The figure is built with its data (never filled by later edits), so a view the browser creates
    later (Voila, a reloaded page) shows it; :meth:`show` builds a new one (the second mechanism of
    ``widgets/_common.py``: it changes once per comparison, never per slider move).

    Args:
        source: a ``Comparison`` (its runs' profiles), a dict run label -> ``profiling.Profile`` or its
            ``to_dict()``, or ``None`` (an empty view that says how to get a profile).
        top: rows of the top-ops table.
        height: figure height [px].

    Attributes:
        profiles: run label -> ``profiling.Profile``. figure: the plotly ``FigureWidget`` (one ``Bar``
            trace per category, x = run labels, y = ms per step). run: ``Dropdown`` of runs; picking one
            shows its ops. ops: ``HTML`` top-ops table. traces: ``HTML`` trace paths. message: ``HTML``.
    """

    def __init__(self, source=None, top: int = 10, height: int = 380):
        self.top, self.height = int(top), int(height)
        self.run = W.Dropdown(description="run", options=[])
        self.ops = W.HTML()
        self.traces = W.HTML()
        self.message = W.HTML()
        self.figure = None
        self.run.observe(lambda _: self._show_run(), names="value")
        super().__init__([])
        self.show(source)

    @classmethod
    def from_store(cls, db=None, *, run_ids=None, framework=None, model=None, dataset=None, **kw) -> "ProfileView":
        """The stored profiles (``profiling.load``), filtered as ``results.load_curves`` filters."""
        return cls(profiling.load(db, run_ids=run_ids, framework=framework, model=model, dataset=dataset), **kw)

    # ------------------------------------------------------------------ data

    def show(self, source) -> None:
        """Show ``source`` (as in the constructor), replacing what is shown."""
        self.profiles = _profiles(source)
        self.frame = profiling.category_frame(self.profiles) if self.profiles else None
        old, self.figure = self.figure, self._figure(self.profiles)
        self.children = [self.message, self.figure, self.run, self.ops, self.traces]
        if old is not None:
            old.close()  # its model leaves the browser too
        self.run.options = list(self.profiles)
        self.run.value = next(iter(self.profiles), None)
        if not self.profiles:
            self.message.value = ("<i>No profile to show: run a comparison with <code>profile_steps=20</code>, or "
                                  "<code>mlx-explore profile</code>, then <code>ProfileView.from_store()</code>.</i>")  # fmt: skip
        else:
            self.message.value = _summary(self.profiles)
        self._show_run()

    def _figure(self, profiles: dict) -> go.FigureWidget:
        labels = list(profiles)
        frame = profiling.category_frame(profiles) if profiles else pd.DataFrame(columns=profiling.CATEGORIES)
        traces = [
            go.Bar(name=c, x=labels, y=[float(frame.loc[k, c]) for k in labels], marker_color=CATEGORY_COLORS[c],
                   hovertemplate="%{x}<br>" + c + ": %{y:.3f} ms per step<extra></extra>")
            for c in profiling.CATEGORIES if profiles and frame[c].sum() > 0
        ]  # fmt: skip
        layout = go.Layout(barmode="stack", height=self.height, margin=dict(l=60, r=10, t=40, b=40),
                           title="where a training step's time goes", yaxis_title="ms per step (profiled)",
                           legend=dict(traceorder="reversed"))  # fmt: skip
        return figure_widget(data=traces, layout=layout)

    def _show_run(self) -> None:
        p = self.profiles.get(self.run.value) if self.run.value else None
        if p is None:
            self.ops.value = self.traces.value = ""
            return
        df = pd.DataFrame(p.rows[: self.top], columns=["op", "category", "calls_per_step", "self_ms_per_step", "share_of_step"])
        styler = (df.style.hide(axis="index")
                  .format({"calls_per_step": "{:.1f}", "self_ms_per_step": "{:.3f}", "share_of_step": "{:.1%}"}, na_rep="-")
                  .format(escape="html", subset=["op", "category"])
                  .set_table_attributes('class="mlx-profile-ops" style="border-collapse:collapse"')
                  .set_table_styles([{"selector": "td, th", "props": "padding: 2px 8px"}]))  # fmt: skip
        styler = styler.relabel_index(["op", "category", "calls / step", "ms / step", "share of step"], axis="columns")
        self.ops.value = f"<b>{html.escape(self.run.value)}</b>: top {len(df)} ops<br>" + styler.to_html()
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in p.notes)
        unmapped = f"<li>unmapped op names (counted as <i>other</i>): {html.escape(', '.join(p.unmapped[:20]))}</li>" if p.unmapped else ""
        files = "".join(f"<li><code>{html.escape(f)}</code></li>" for f in p.native)
        self.traces.value = (f"<ul>{notes}{unmapped}</ul><b>native traces</b> (TensorBoard, Perfetto UI or chrome://tracing):"
                             f"<ul>{files or '<li>-</li>'}</ul>")  # fmt: skip


def _profiles(source) -> dict[str, profiling.Profile]:
    if source is None:
        return {}
    if hasattr(source, "profiles") and not isinstance(source, dict):  # a Comparison
        source = source.profiles
    if not isinstance(source, dict):
        raise ValueError(f"source: expected a Comparison, a dict of profiles or None, got {type(source).__name__}")
    return {k: v if isinstance(v, profiling.Profile) else profiling.Profile.from_dict(v) for k, v in source.items()}


def _summary(profiles: dict[str, profiling.Profile]) -> str:
    """One computed sentence per run: its largest category, its share, and the profiler's overhead."""
    lines = []
    for label, p in profiles.items():
        cats = p.by_category()
        top = max(cats, key=cats.get)
        share = cats[top] / p.step_ms if p.step_ms else float("nan")
        lines.append(f"<b>{html.escape(label)}</b>: {p.step_ms:.3f} ms per profiled step ({p.unprofiled_step_ms:.3f} ms "
                     f"without the profiler); the largest part is <i>{html.escape(top)}</i>, {share:.0%} of it.")  # fmt: skip
    return "<br>".join(lines)
