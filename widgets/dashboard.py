"""The overview dashboard (``notebooks/dashboards/overview.ipynb``), for people who never read code:
which framework fits a scenario and why, with the numbers behind it, all computed from the results
store of this machine.

Sections, top to bottom (each chart has a title, units on its axes and one line saying how to read it):

1. **Recommendation**: the scenario (a dropdown), one sentence naming the framework that fits it best
   on this machine's newest complete suite, its top reasons, and the ranking chart
   (:class:`~widgets.guide.DecisionGuide`; its weight sliders folded away under "Adjust the weights").
2. **Newest suite**: the session's runs as a table, and accuracy against throughput, one point per run.
3. **Trends**: per framework and mode, a metric of one workload (model on data set) over time, one
   point per day (the median of that day's ok runs); the newest day is compared with the days
   before, and a drop is named as a possible regression.
4. **Published claims, tested here**: the claims audit (``guide.audit_claims``).
5. **Where the time goes**: the profiler's category breakdown of the newest profiled run per
   framework (:class:`~widgets.profile.ProfileView`).

The store is only read, with SQLite ``mode=ro`` (``results.read_only``). The one write is on request:
when there is no usable suite, a button runs the small suite (minutes on a 2-core CPU) with a
progress bar and then shows the overview. An unreadable store is a message, never a traceback.

The loaders read summaries, never curves (``results.load_metrics``, ``suite.latest``): the overview of
a 10,000-run store opens in under 5 s (``tests/benchmarks/dashboard_store.py``).
"""

from __future__ import annotations

import html
import threading
from pathlib import Path

import ipywidgets as W
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from mlx_explore import guide, profiling, results
from mlx_explore import suite as suite_module
from mlx_explore.metric_docs import METRIC_DOCS
from mlx_explore.suite import NoSuite

from ._common import MODE_DASH, MainThread, color, edit, figure_widget
from .guide import DecisionGuide, audit_html
from .profile import ProfileView

#: Columns of the newest suite's table: column -> (heading with unit, format).
SUITE_COLUMNS = {
    "suite_item": ("workload", "{}"), "framework": ("framework", "{}"), "mode": ("mode", "{}"),
    "status": ("status", "{}"), "test_accuracy": ("test accuracy [0-1]", "{:.3f}"),
    "samples_per_s": ("throughput [samples/s]", "{:,.0f}"), "compile_s": ("compile time [s]", "{:.2f}"),
    "step_ms_p50": ("step p50 [ms]", "{:.2f}"), "step_ms_p99": ("step p99 [ms]", "{:.2f}"),
    "peak_rss_mb": ("peak memory [MiB]", "{:,.0f}"),
    # the gbdt item's figures: trees report a fit time and a ROC-AUC rather than a steady step rate
    "train_s": ("training time [s]", "{:.2f}"), "test_roc_auc": ("test ROC-AUC [0-1]", "{:.3f}"),
    # the deployment view: the framework's own batch-1 inference beside ONNX Runtime's (suite --export onnx)
    "infer_ms_p50": ("batch-1 inference p50 [ms]", "{:.3f}"), "onnx_infer_ms_p50": ("ONNX Runtime p50 [ms]", "{:.3f}"),
}  # fmt: skip
#: Metrics of the trends chart: metric -> (label with unit, relative drop that is named a possible regression).
TREND_METRICS = {"samples_per_s": ("throughput [samples/s]", 0.10), "test_accuracy": ("test accuracy [0-1]", 0.02)}
#: How to read each chart (shown under it).
HOW_TO_READ = {
    "guide": "Each bar is a framework's score from 0 to 1, the weighted mean of the criteria on this machine's "
             "suite and the cited facts; each coloured part is one criterion's share. Longest bar first.",
    "scatter": "Each point is one run of the newest suite. Up is more accurate, right is faster (log scale): "
               "the best runs sit top right. Hover a point for its workload.",
    "trends": "Each point is the median of one day's successful runs of this workload. A line that falls is "
              "a regression (or a slower machine: the history page filters by device).",
    "profile": "Each bar is one training step of a framework's newest profiled run, split by what the time "
               "went to (matrix multiplies, element-wise ops, the optimizer, framework overhead...). "
               "Shorter is faster.",
}  # fmt: skip
_BOX = "border:1px solid #d0d5dd;border-radius:6px;padding:8px 12px;margin:6px 0;max-width:1100px"
_COLORS = {"info": "#344054", "warning": "#b54708", "error": "#b42318", "ok": "#027a48"}


def wait_for_page() -> None:
    """In a kernel that Voila pre-heated (``mlx-explore dashboard`` keeps one ready per dashboard), wait
    until a browser asks for the page, so that what follows reads the store as it is then, not as it
    was when the kernel started; anywhere else (JupyterLab, a plain ``voila``), return at once.
    (``voila.utils.wait_for_request``: https://voila.readthedocs.io, "Preheated kernels".)"""
    try:
        from voila.utils import wait_for_request
    except ImportError:  # not installed: not in Voila either
        return
    wait_for_request()


def message_html(text: str, kind: str = "info") -> str:
    """``text`` (already HTML) in a bordered box coloured by ``kind`` (``info``, ``warning``, ``error``, ``ok``)."""
    return f"<div class='mlx-dashboard-{kind}' style='{_BOX};color:{_COLORS[kind]}'>{text}</div>"


def _how(key: str) -> W.HTML:
    return W.HTML(f"<div class='mlx-how' style='color:#475467;max-width:1000px'><i>How to read it:</i> "
                  f"{html.escape(HOW_TO_READ[key])}</div>")  # fmt: skip


def _heading(text: str) -> W.HTML:
    return W.HTML(f"<h3 style='margin:18px 0 4px 0'>{html.escape(text)}</h3>")


def headline(rec) -> str:
    """The recommendation in one sentence (HTML), with the suite it was computed from."""
    ev = rec.evidence
    s = guide.SCENARIOS[rec.scenario]
    lead = rec.scores[rec.ranking[0]] - (rec.scores[rec.ranking[1]] if len(rec.ranking) > 1 else 0.0)
    runner = (f", ahead of <b>{html.escape(rec.ranking[1])}</b> by {lead:.2f} points of 1" if len(rec.ranking) > 1
              else "")  # fmt: skip
    return (f"<div class='mlx-headline' style='font-size:130%;margin:6px 0'>For <b>{html.escape(s.title.lower())}</b>, "
            f"<b class='mlx-top'>{html.escape(rec.top)}</b> fits best on this machine (score {rec.scores[rec.top]:.2f} "
            f"of 1{runner}).</div><div style='color:#475467'>From the {html.escape(ev.size)} suite run on "
            f"{ev.started:%Y-%m-%d %H:%M} UTC ({html.escape(ev.device_kind)}, {html.escape(ev.machine)}) and the "
            f"knowledge base's cited facts.</div>")  # fmt: skip


def reasons_list(rec) -> str:
    """The top reasons as an HTML list (``class='mlx-reasons'``)."""
    items = "".join(f"<li>{html.escape(r.text)}</li>" for r in rec.reasons)
    return f"<b>Why:</b><ol class='mlx-reasons' style='margin-top:2px'>{items or '<li>no single criterion decides</li>'}</ol>"


def suite_table_html(runs: pd.DataFrame) -> str:
    """The newest suite's runs (``suite.latest``' table) as an HTML table (``class='mlx-suite'``)."""
    cols = [c for c in SUITE_COLUMNS if c in runs.columns and not (c.startswith("onnx_") and runs[c].isna().all())]
    table = runs[cols].copy()
    table["mode"] = table["mode"].fillna("")
    styler = (table.style.hide(axis="index")
              .format({c: SUITE_COLUMNS[c][1] for c in cols}, na_rep="-")
              .set_table_attributes('class="mlx-suite" style="border-collapse:collapse;font-size:90%"')
              .set_table_styles([{"selector": "td, th", "props": "padding: 2px 10px; text-align: right"}]))  # fmt: skip
    return styler.relabel_index([SUITE_COLUMNS[c][0] for c in cols], axis="columns").to_html()


def scatter_figure(runs: pd.DataFrame) -> go.FigureWidget:
    """Accuracy against throughput of the newest suite's ok runs, one trace per framework (log x)."""
    ok = runs[(runs["status"] == "ok") & runs.get("samples_per_s", pd.Series(dtype=float)).notna()]
    traces = []
    for fw, part in ok.groupby("framework", sort=False):
        traces.append(go.Scatter(
            x=part["samples_per_s"].tolist(), y=part["test_accuracy"].tolist(), mode="markers", name=fw,
            marker=dict(color=color(fw), size=10), customdata=list(zip(part["suite_item"], part["mode"].fillna(""))),
            hovertemplate=f"<b>{fw}</b> %{{customdata[1]}}<br>%{{customdata[0]}}<br>%{{x:,.0f}} samples/s, "
                          f"accuracy %{{y:.3f}}<extra></extra>"))  # fmt: skip
    return figure_widget(data=traces, layout=dict(
        title="Accuracy against throughput, newest suite", height=380, margin=dict(l=60, r=20, t=50, b=50),
        xaxis=dict(type="log", title="steady training throughput [samples/s]"),
        yaxis=dict(title="test accuracy [0-1]"), legend_title="framework"))  # fmt: skip


def daily(metrics: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Median of ``metric`` per framework, mode and UTC day over ``results.load_metrics``' rows.

    Returns:
        DataFrame with columns ``framework``, ``mode``, ``day`` (naive UTC date as datetime), ``value``,
        ``runs`` (how many runs the median is over), sorted by framework, mode and day.
    """
    part = metrics[metrics[metric].notna()] if metric in metrics else metrics.iloc[:0]
    if part.empty:
        return pd.DataFrame(columns=["framework", "mode", "day", "value", "runs"])
    part = part.assign(mode=part["mode"].fillna(""), day=part["created_at"].dt.tz_convert(None).dt.floor("D"))
    out = part.groupby(["framework", "mode", "day"], sort=True)[metric].agg(["median", "size"]).reset_index()
    return out.rename(columns={"median": "value", "size": "runs"})


def regressions(days: pd.DataFrame, metric: str) -> list[str]:
    """Sentences for each framework/mode whose newest day is below the median of its days before by more
    than the metric's threshold (:data:`TREND_METRICS`: relative for throughput, absolute for accuracy)."""
    label, threshold = TREND_METRICS[metric]
    out = []
    for (fw, mode), part in days.groupby(["framework", "mode"], sort=False):
        if len(part) < 3:
            continue
        last, before = float(part["value"].iloc[-1]), float(part["value"].iloc[:-1].median())
        drop = (before - last) / before if metric == "samples_per_s" and before > 0 else before - last
        if drop > threshold:
            amount = f"{drop:.0%} below" if metric == "samples_per_s" else f"{drop:.3f} below"
            out.append(f"{fw}{'/' + mode if mode else ''}: {label.split(' [')[0]} on {part['day'].iloc[-1]:%Y-%m-%d} "
                       f"is {amount} its median of the {len(part) - 1} days before: a possible regression.")  # fmt: skip
    return out


def audit_summary(audit: pd.DataFrame) -> str:
    """One sentence: how many published claims the audit tested, and how many got each verdict."""
    if audit.empty:
        return "<p>No published claim could be tested against this suite.</p>"
    counts = audit["verdict"].value_counts()
    parts = ", ".join(f"<b>{n}</b> {html.escape(str(v))}" for v, n in counts.items())
    return (f"<p class='mlx-audit-summary'>{len(audit)} claims from the articles this project started from, tested "
            f"against this machine's suite: {parts}. A claim measured under other conditions (another GPU, "
            f"another model) is marked so rather than judged.</p>")  # fmt: skip


class Overview(W.VBox):
    """The overview dashboard: recommendation, newest suite, trends, claims audit, profiles.

    Example (``notebooks/dashboards/overview.ipynb``)::

        from widgets.dashboard import Overview
        Overview()                  # $MLX_EXPLORE_DB or ~/.mlx_explore/results.db, read-only

    Args:
        db: the results store (``None``: ``$MLX_EXPLORE_DB``, else ``~/.mlx_explore/results.db``);
            read with SQLite ``mode=ro``, never created.
        scenario: the scenario shown first (a key of ``mlx_explore.guide.SCENARIOS``).
        device: use the newest suite run with this ``--device`` (``None``: any).

    Raises:
        ConfigError: ``scenario`` is unknown (field ``scenario``, listing the scenarios).

    Attributes:
        state: ``"ok"``, ``"no_suite"`` (the store has no usable suite: the run-the-suite button is
            shown, and the trends and profiles the store has), or ``"error"`` (the store cannot be
            read: :attr:`message` says why).
        message: ``HTML`` status box. guide: the :class:`DecisionGuide` (``None`` without a suite).
        headline, reasons: ``HTML``. suite_table: ``HTML`` (``table.mlx-suite``). scatter, trend:
            ``go.FigureWidget``. trend_metric, trend_workload: ``Dropdown``. trend_notes: ``HTML``.
        audit: ``HTML`` claims audit. profiles: :class:`ProfileView`. run_button: ``Button``,
        progress: ``IntProgress``, progress_text: ``HTML`` (the empty-store path).
        metrics: ``results.load_metrics``' table of every run (the trends' source).
    """

    def __init__(self, db: str | Path | None = None, scenario: str = "research", *, device: str | None = None):
        if scenario not in guide.SCENARIOS:
            from mlx_explore.config import ConfigError

            raise ConfigError("scenario", f"unknown scenario {scenario!r}; allowed: {', '.join(guide.SCENARIOS)}")
        self.db = Path(db).expanduser() if db is not None else results.default_path()
        self.scenario0, self.device = scenario, device
        self.state = "ok"
        self.guide: DecisionGuide | None = None
        self.message = W.HTML()
        self.headline, self.reasons, self.suite_table = W.HTML(), W.HTML(), W.HTML()
        self.audit, self.trend_notes, self.progress_text = W.HTML(), W.HTML(), W.HTML()
        self.scatter = self.trend = None
        self.trend_metric = W.Dropdown(options=[(v[0], k) for k, v in TREND_METRICS.items()], description="metric")
        self.trend_workload = W.Dropdown(description="workload", layout=W.Layout(width="360px"))
        self.profiles: ProfileView | None = None
        self.metrics = pd.DataFrame()
        self.run_button = W.Button(description="Run the small suite", button_style="primary", icon="play",
                                   layout=W.Layout(width="220px"))  # fmt: skip
        self.progress = W.IntProgress(value=0, min=0, max=1, description="runs", layout=W.Layout(width="420px"))
        self.run_button.on_click(lambda _: self.run_suite())
        self._ui = MainThread()
        self._thread: threading.Thread | None = None
        super().__init__([])
        self.refresh()

    # ------------------------------------------------------------------------------------ reading

    def refresh(self) -> None:
        """Re-read the store (read-only) and rebuild every section. Never raises for a store problem."""
        from mlx_explore import knowledge

        evidence, problem = None, None
        with results.read_only():
            try:
                self.metrics = results.load_metrics(self.db, metrics=tuple(TREND_METRICS), status="ok")
                profiles = self._newest_profiles()
                try:
                    evidence = guide.load_evidence(self.db, device=self.device)
                except NoSuite as e:
                    problem = e.message
            except results.StoreError as e:
                self._show_error(f"The results store cannot be read: {e}")
                return
            except knowledge.KnowledgeError as e:
                self._show_error(f"The knowledge base cannot be read: {e}")
                return
        self.state = "ok" if evidence is not None else "no_suite"
        parts: list[W.Widget] = [self.message]
        if evidence is not None:
            self.message.value = message_html(
                f"Results store <code>{html.escape(str(self.db))}</code>: {len(self.metrics)} successful runs; "
                f"the recommendation uses suite session <code>{html.escape(evidence.session)}</code>.")  # fmt: skip
            parts += self._recommendation(evidence)
            parts += self._newest_suite(evidence)
        else:
            self.message.value = message_html(
                f"<b>No suite to recommend from yet.</b> {html.escape(problem or '')}<br>Press the button to run "
                f"the small suite now (minutes on a 2-core CPU; every framework installed here, each in "
                f"its own process). The page fills in when it ends.", "warning")  # fmt: skip
            self.progress_text.value = ""
            parts += [W.HBox([self.run_button, self.progress]), self.progress_text]
        parts += self._trends()
        if evidence is not None:
            self.audit.value = audit_html(self.guide.audit)
            parts += [_heading("Published claims, tested on this machine"), W.HTML(audit_summary(self.guide.audit)),
                      W.Accordion([self.audit], titles=("Every claim, its source and the measurement",),
                                  selected_index=None)]  # fmt: skip
        parts += self._profiles(profiles)
        self.children = parts

    def _show_error(self, text: str) -> None:
        self.state = "error"
        self.message.value = message_html(
            f"<b>{html.escape(text)}</b><br>Nothing was changed. Point the dashboard at another store with "
            f"<code>mlx-explore dashboard --db FILE</code>.", "error")  # fmt: skip
        self.children = [self.message]

    def _newest_profiles(self) -> dict:
        newest = results.latest_profile_runs(self.db)
        return profiling.load(self.db, run_ids=[int(i) for i in newest["run_id"]]) if len(newest) else {}

    # ------------------------------------------------------------------------------------ sections

    def _recommendation(self, evidence) -> list[W.Widget]:
        self.guide = g = DecisionGuide(evidence=evidence, scenario=self.scenario0)
        # after the guide's own observers (it re-ranks first); its reasons change with every re-ranking,
        # also when set_weights moves many sliders and re-ranks once at the end
        for w in (g.scenario, g.reasons_html):
            w.observe(lambda _: self._show_recommendation(), names="value")
        self._show_recommendation()
        weights = W.Accordion([g.weights_box], titles=("Adjust the weights (advanced)",), selected_index=None)
        return [_heading("Which framework fits?"), g.scenario, g.scenario_why, self.headline, self.reasons,
                g.chart_box, _how("guide"), weights]  # fmt: skip

    def _show_recommendation(self) -> None:
        rec = self.guide.recommendation
        if rec is None or not any(self.guide.weights().values()):
            self.headline.value, self.reasons.value = message_html(html.escape(
                "Every weight is 0: move a slider under 'Adjust the weights' to rank the frameworks."), "warning"), ""
            return
        self.headline.value = headline(rec)
        self.reasons.value = reasons_list(rec)

    def _newest_suite(self, evidence) -> list[W.Widget]:
        runs = evidence.runs
        self.suite_table.value = suite_table_html(runs)
        self.scatter = scatter_figure(runs)
        ok = runs[runs["status"] == "ok"]
        best = ok.loc[ok["samples_per_s"].idxmax()] if ok["samples_per_s"].notna().any() else None
        line = (f"{len(runs)} runs, {len(ok)} ok. Fastest: <b>{html.escape(str(best['framework']))}</b> on "
                f"{html.escape(str(best['suite_item']))}, {best['samples_per_s']:,.0f} samples/s."
                if best is not None else f"{len(runs)} runs, none with a throughput.")  # fmt: skip
        return [_heading(f"Newest suite ({evidence.size}, {evidence.started:%Y-%m-%d %H:%M} UTC)"), W.HTML(line),
                self.suite_table, self.scatter, _how("scatter")]  # fmt: skip

    def _trends(self) -> list[W.Widget]:
        m = self.metrics
        if m.empty:
            return [_heading("Trends over time"), W.HTML(message_html("No successful run stored yet: nothing to plot."))]
        work = (m["model"].astype(str) + " on " + m["dataset"].astype(str)).value_counts()
        self.trend_workload.options = [(f"{w} ({n} runs)", w) for w, n in work.items()]
        self.trend_workload.value = work.index[0]
        self.trend = figure_widget(layout=dict(height=380, margin=dict(l=70, r=20, t=50, b=50),
                                                 xaxis_title="day (UTC)", legend_title="framework/mode"))  # fmt: skip
        self._draw_trend()
        for w in (self.trend_metric, self.trend_workload):
            w.observe(lambda _: self._draw_trend(), names="value")
        return [_heading("Trends over time"), W.HBox([self.trend_workload, self.trend_metric]), self.trend,
                _how("trends"), self.trend_notes]  # fmt: skip

    def _draw_trend(self) -> None:
        metric, workload = self.trend_metric.value, self.trend_workload.value
        m = self.metrics
        part = m[(m["model"].astype(str) + " on " + m["dataset"].astype(str)) == workload]
        days = daily(part, metric)
        label = TREND_METRICS[metric][0]
        traces = []
        for (fw, mode), d in days.groupby(["framework", "mode"], sort=False):
            name = fw + (f"/{mode}" if mode else "")
            traces.append(go.Scatter(
                x=list(d["day"].dt.to_pydatetime()), y=d["value"].tolist(), mode="lines+markers", name=name,
                line=dict(color=color(fw), dash=MODE_DASH.get(mode, "solid")), customdata=d["runs"].tolist(),
                hovertemplate=f"<b>{name}</b> %{{x|%Y-%m-%d}}<br>median %{{y:.4g}} over %{{customdata}} run(s)"
                              f"<extra></extra>"))  # fmt: skip
        first, last = (days["day"].min(), days["day"].max()) if len(days) else (pd.Timestamp.now().floor("D"),) * 2
        pad = max(pd.Timedelta(days=1), (last - first) * 0.05)  # whole days on the axis, even for one day
        with edit(self.trend):
            self.trend.data = ()
            self.trend.add_traces(traces)
            self.trend.layout.title = f"{label.split(' [')[0].capitalize()} of {workload}, median per day"
            self.trend.layout.yaxis.title = label
            self.trend.layout.yaxis.type = "log" if metric == "samples_per_s" else "linear"
            span_days = ((last - first) + 2 * pad) / pd.Timedelta(days=1)
            self.trend.layout.xaxis.update(type="date", range=[first - pad, last + pad], tickformat="%Y-%m-%d",
                                           dtick=86_400_000 * max(1, int(np.ceil(span_days / 8))))  # whole days [ms]
        notes = regressions(days, metric)
        self.trend_notes.value = (message_html("<br>".join(html.escape(n) for n in notes), "warning") if notes else
                                  message_html(f"No drop of the newest day against the days before, for any framework "
                                               f"with three days or more of {html.escape(workload)}.", "ok"))  # fmt: skip

    def _profiles(self, profiles: dict) -> list[W.Widget]:
        head = _heading("Where the time goes")
        if not profiles:
            return [head, W.HTML(message_html(
                "No profiled run yet. <code>mlx-explore profile --model mlp</code> profiles a few training steps of "
                "every framework with its own profiler."))]  # fmt: skip
        self.profiles = v = ProfileView(profiles, top=8)
        details = W.Accordion([W.VBox([v.run, v.ops, v.traces])], titles=("Top operations and trace files",),
                              selected_index=None)  # fmt: skip
        return [head, v.message, v.figure, _how("profile"), details]

    # ------------------------------------------------------------------------------------ the one write

    def run_suite(self, size: str = "small", frameworks=None) -> threading.Thread:
        """Run the suite (``suite.run``: ``size``, ``frameworks``, default every one) in a background
        thread, writing to the store (the one write the overview makes, on request), with the progress
        bar; then :meth:`refresh`. Returns the thread.

        Raises:
            ConfigError: bad ``size`` or ``frameworks`` (field named), before anything runs."""
        from mlx_explore.comparison import plan
        from mlx_explore.events import Failed, Finished, Skipped

        configs = suite_module.configs(size, frameworks=frameworks)
        self.progress.max = max(1, sum(len(plan(c)) for _, c in configs))
        self.progress.value = 0
        self.progress.bar_style = ""
        self.run_button.disabled = True
        self.progress_text.value = "starting..."
        ui = self._ui

        def on_item(item, config, index):
            ui.call(setattr, self.progress_text, "value",
                    f"workload {index + 1} of {len(configs)}: {html.escape(item.name)}")  # fmt: skip

        def on_event(event):
            if isinstance(event, (Finished, Failed, Skipped)):
                ui.call(setattr, self.progress, "value", self.progress.value + 1)

        def work():
            try:
                suite_module.run(size, frameworks=frameworks, db=self.db, on_item=on_item, on_event=on_event)
            except Exception as e:  # shown on the page; the store keeps what finished
                ui.call(self._suite_failed, f"{type(e).__name__}: {e}")
                return
            ui.call(self.refresh)

        self._thread = threading.Thread(target=work, daemon=True)
        self._thread.start()
        return self._thread

    def _suite_failed(self, text: str) -> None:
        self.progress.bar_style = "danger"
        self.run_button.disabled = False
        self.progress_text.value = message_html(html.escape(f"The suite could not finish: {text}"), "error")

    def wait(self, timeout: float | None = None) -> None:
        """Wait for :meth:`run_suite`'s thread, then run the updates it queued (tests, scripts)."""
        if self._thread is not None:
            self._thread.join(timeout)
        self._ui.drain()
