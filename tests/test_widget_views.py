"""Every figure the widgets own is right in a view created after it changed (a Voila page, a reloaded
tab): the state plotly syncs to new views (``_widget_data``/``_widget_layout``) equals the figure
after each batch of edits (``widgets/_common.py``, "Figures that are right in every view").

The browser side of the same promise is in ``tests/test_browser.py`` (the quickstart-like
``tests/browser/live.ipynb`` served by Voila, the panel's Run updating a view that exists).
"""

from __future__ import annotations

import json

import pandas as pd
import plotly.graph_objects as go
from plotly.utils import PlotlyJSONEncoder

from widgets import DecisionGuide, LiveCurves, ParityPlot, ResultsExplorer, SweepPlot
from widgets._common import edit, resend_state

from .test_widget_explorer import db  # noqa: F401  (fixture)
from .test_widget_parity import make_curves
from .test_widgets import recorded


def _plain(x):
    return json.loads(json.dumps(x, cls=PlotlyJSONEncoder))


def synced(fig: go.FigureWidget) -> bool:
    """The state a new view starts from is the figure's data and layout."""
    return _plain(fig._widget_data) == _plain([t.to_plotly_json() for t in fig.data]) and \
        _plain(fig._widget_layout) == _plain(fig.layout.to_plotly_json())


def count_resends(fig: go.FigureWidget) -> list:
    sent = []
    fig.observe(lambda change: sent.append(change["name"]), names=["_widget_data"])
    return sent


def test_edit_batches_and_resends_once_and_nested_edits_leave_it_to_the_outer_one():
    fig = go.FigureWidget()
    sent = count_resends(fig)
    with edit(fig):
        fig.add_scatter(x=[1, 2], y=[3, 4])
        with edit(fig):
            fig.layout.title = "t"
        assert sent == [] and fig._widget_data == []  # nothing sent before the outer block ends
    assert sent == ["_widget_data"] and synced(fig)
    assert list(fig._widget_data[0]["y"]) == [3, 4] and fig._widget_layout["title"]["text"] == "t"


def test_a_plain_figure_widget_is_not_synced_after_later_edits():
    """What the mechanism fixes (plotly 6+): without it a new view starts from the state at construction."""
    fig = go.FigureWidget()
    fig.add_scatter(x=[1], y=[2])
    assert not synced(fig) and fig._widget_data == []
    resend_state(fig)
    assert synced(fig)


def test_live_curves_resend_when_traces_appear_and_runs_end_not_at_every_redraw():
    curves = LiveCurves()
    curves.throttle.interval = 0  # every event redraws
    sent = count_resends(curves.figure)
    events = recorded("jax", steps=6)
    for e in events[:4]:  # Started and 3 steps: traces added once, then redrawn
        curves.update(e)
    assert len(sent) == 1 and len(curves.figure._widget_data) == 3  # a view created now has every trace
    assert curves.redraws == 4
    for e in events[4:]:
        curves.update(e)
    assert len(sent) == 2 and synced(curves.figure)  # the run's end: the whole figure
    assert list(curves.figure._widget_data[0]["y"]) == list(curves.figure.data[0].y) and len(curves.figure.data[0].y) == 6
    curves.x_axis.value = "epoch"
    assert len(sent) == 3 and synced(curves.figure)
    curves.clear()
    assert curves.figure._widget_data == [] and synced(curves.figure)


def test_explorer_filters_and_metric_keep_new_views_right(db):  # noqa: F811
    ex = ResultsExplorer(db)
    assert synced(ex.time_fig) and synced(ex.scatter_fig)
    ex.model.value = "mlp"
    ex.metric.value = "test_accuracy"
    assert synced(ex.time_fig) and synced(ex.scatter_fig)
    assert [t["name"] for t in ex.time_fig._widget_data] == [t.name for t in ex.time_fig.data]


def test_guide_sliders_keep_new_views_right(suite_store):
    g = DecisionGuide(suite_store)
    name = next(iter(g.sliders))
    g.sliders[name].value = 0.0
    assert synced(g.figure)
    g.scenario.value = [v for _, v in g.scenario.options][-1]
    assert synced(g.figure) and g.recommendation.top in g.figure._widget_layout["title"]["text"]


def test_parity_reference_and_sweep_update_keep_new_views_right():
    plot = ParityPlot(make_curves())
    plot.reference.value = "jax"
    assert synced(plot.fig) and "against jax" in plot.fig._widget_layout["title"]["text"]
    table = pd.DataFrame({"batch_size": [8, 64, 8, 64], "framework": ["jax"] * 2 + ["torch"] * 2,
                          "mode": ["compiled"] * 4, "samples_per_s": [100.0, 700.0, 90.0, 800.0]})  # fmt: skip
    sweep = SweepPlot()
    sweep.update(table)
    assert synced(sweep.figure) and len(sweep.figure._widget_data) == 4
