"""Results explorer: the results store filtered by model / data set / framework / date, a metric over time
(one line per framework) and accuracy against throughput. The building block of the managers' dashboard.

>>> from widgets.explorer import ResultsExplorer
>>> ex = ResultsExplorer(metric="samples_per_s", model="mlp")   # doctest: +SKIP
>>> ex                                          # shows it; ex.runs is the filtered pandas table  # doctest: +SKIP
"""

from __future__ import annotations

import html
import re
import sqlite3
from pathlib import Path

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go

from mlx_explore.metric_docs import METRIC_DOCS
from mlx_explore.results import StoreError, default_path, load_runs

from ._common import FRAMEWORK_COLORS, MODE_DASH, color, edit, figure_widget

ALL = "all"
#: ``load_runs`` columns that are not metrics.
_NOT_METRICS = frozenset({"run_id", "comparison_id", "created_at", "framework", "mode", "repeat", "model", "dataset",
                          "status", "reason", "device", "device_name", "versions", "flags", "notes", "config", "env",
                          "error_tail"})  # fmt: skip
_TABLE = ("framework", "mode", "when", "status", "test_accuracy", "samples_per_s", "compile_s")
_TABLE_ROWS = 20


def metric_columns(runs: pd.DataFrame) -> list[str]:
    """The numeric metric columns of a :func:`~mlx_explore.results.load_runs` table, those documented in
    ``METRIC_DOCS`` first (in its order), then the others alphabetically."""
    found = [c for c in runs.columns if c not in _NOT_METRICS and pd.api.types.is_numeric_dtype(runs[c])
             and not pd.api.types.is_bool_dtype(runs[c])]  # fmt: skip
    return [m for m in METRIC_DOCS if m in found] + sorted(c for c in found if c not in METRIC_DOCS)


def metric_label(metric: str) -> str:
    """``"name: description [unit]"`` from ``METRIC_DOCS``, or the bare name for an undocumented metric."""
    return f"{metric}: {METRIC_DOCS[metric]}" if metric in METRIC_DOCS else metric


def _axis_title(metric: str) -> str:
    unit = re.search(r"\[([^\]]*)\]\s*$", METRIC_DOCS.get(metric, ""))
    return f"{metric} [{unit.group(1)}]" if unit else metric


def _framework_order(names) -> list[str]:
    names = set(names)
    return [f for f in FRAMEWORK_COLORS if f in names] + sorted(names - set(FRAMEWORK_COLORS))


class ResultsExplorer(widgets.VBox):
    """Browse the results store: filters, a metric over time, accuracy against throughput, a table of runs.

    Example::

        ex = ResultsExplorer(metric="compile_s", frameworks=["torch", "jax"], since="2026-01-01")
        ex                      # in a notebook cell; ex.refresh() re-reads the store, ex.runs is the table

    Args:
        db: the store's SQLite file (``str``/``Path``); ``None`` means ``$MLX_EXPLORE_DB`` or
            ``~/.mlx_explore/results.db``. Only read, never created.
        metric: the metric plotted over time (a column of ``load_runs``, e.g. ``samples_per_s`` [samples/s]).
        model, dataset: show only this model / data set (``None``: all).
        device: show only runs on this device, as stored (e.g. ``cpu``, ``cuda:0``; ``None``: all).
        frameworks: frameworks ticked at the start (``None``: every framework in the store).
        since: show runs stored on or after this day, UTC (``date``, ``datetime`` or ISO 8601 string; ``None``: all).

    The plots show ``status == "ok"`` runs only; :attr:`runs` and the table keep every status. A missing
    store or a :class:`~mlx_explore.results.StoreError` is reported in :attr:`status` (no exception) and
    leaves the plots empty.

    Attributes:
        runs: ``pandas.DataFrame``, the filtered runs (all statuses), as ``load_runs`` returns them.
        model, dataset, device, metric: ``Dropdown``; framework_boxes: ``{framework: Checkbox}``; since: ``DatePicker``.
        refresh_button: ``Button``; status: ``HTML``; table: ``HTML``.
        time_fig: ``go.FigureWidget``, metric against ``created_at`` (naive UTC), one trace per framework
            (per ``framework/mode`` when several modes are shown; ``meta`` = ``{framework, mode}``; ``customdata`` =
            run_id, model, dataset).
        scatter_fig: ``go.FigureWidget``, test_accuracy against samples_per_s (log x), one trace per framework.
    """

    def __init__(self, db: str | Path | None = None, metric: str = "samples_per_s", model: str | None = None,
                 dataset: str | None = None, frameworks: list[str] | None = None, since=None,
                 device: str | None = None):  # fmt: skip
        self.db = Path(db).expanduser() if db is not None else default_path()
        self.runs = pd.DataFrame()
        self._all = pd.DataFrame()
        self._frameworks = None if frameworks is None else list(frameworks)
        self._busy, self._error = False, None
        wide = widgets.Layout(width="auto")
        self.model = widgets.Dropdown(description="model", options=[ALL], value=ALL, layout=wide)
        self.dataset = widgets.Dropdown(description="data set", options=[ALL], value=ALL, layout=wide)
        self.device = widgets.Dropdown(description="device", options=[ALL], value=ALL, layout=wide)
        self._model0, self._dataset0, self._device0 = model, dataset, device
        self.metric = widgets.Dropdown(description="metric", options=[(metric_label(metric), metric)], value=metric,
                                       layout=widgets.Layout(width="60%"))  # fmt: skip
        self.since = widgets.DatePicker(description="since", value=None if since is None else
                                        pd.Timestamp(since).date())  # fmt: skip
        self.framework_boxes: dict[str, widgets.Checkbox] = {}
        self._boxes = widgets.HBox()
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh", tooltip="re-read the store")
        self.status = widgets.HTML()
        self.table = widgets.HTML()
        self.time_fig = figure_widget(layout=dict(
            title="metric over time (ok runs)", xaxis_title="stored at (UTC)", yaxis_title=_axis_title(metric),
            height=380, margin=dict(l=60, r=20, t=50, b=50), legend_title="framework"))  # fmt: skip
        self.scatter_fig = figure_widget(layout=dict(
            title="accuracy vs throughput (ok runs)", xaxis=dict(type="log", title=_axis_title("samples_per_s")),
            yaxis_title=_axis_title("test_accuracy"), height=380, margin=dict(l=60, r=20, t=50, b=50),
            legend_title="framework"))  # fmt: skip
        for w in (self.model, self.dataset, self.device, self.metric, self.since):
            w.observe(self._on_change, names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__([
            widgets.HBox([self.model, self.dataset, self.device, self.since, self.refresh_button]),
            widgets.HBox([widgets.Label("frameworks"), self._boxes]), self.metric, self.status,
            widgets.HBox([self.time_fig, self.scatter_fig]), self.table,
        ])  # fmt: skip
        self.refresh()

    # ------------------------------------------------------------------------------------ reading

    def refresh(self) -> None:
        """Re-read the store, update the choices in the controls (keeping the current ones) and redraw.
        Never raises for a missing or unusable store: the status line says what is wrong."""
        error = None
        try:
            self._all = load_runs(self.db) if self.db.exists() else pd.DataFrame()
        except StoreError as e:
            self._all, error = pd.DataFrame(), html.escape(str(e))
        except (sqlite3.Error, OSError) as e:
            self._all, error = pd.DataFrame(), html.escape(f"could not read {self.db}: {e}")
        if error is None and self._all.empty:
            error = f"no results yet in {html.escape(str(self.db))}: run a comparison first"
        self._error = error
        self._busy = True
        try:
            self._set_options()
        finally:
            self._busy = False
        self._redraw()

    def _set_options(self) -> None:
        runs = self._all

        def choices(dropdown: widgets.Dropdown, column: str, initial: str | None) -> None:
            keep = dropdown.value if dropdown.value != ALL or initial is None else initial
            found = sorted(str(v) for v in runs[column].dropna().unique()) if column in runs else []
            dropdown.options = [ALL, *found, *([keep] if keep != ALL and keep not in found else [])]
            dropdown.value = keep

        choices(self.model, "model", self._model0)
        choices(self.dataset, "dataset", self._dataset0)
        choices(self.device, "device", self._device0)
        self._model0 = self._dataset0 = self._device0 = None  # the constructor's choice applies once
        metrics = metric_columns(runs) if not runs.empty else []
        keep = self.metric.value
        self.metric.options = [(metric_label(m), m) for m in ([] if keep in metrics else [keep]) + metrics]
        self.metric.value = keep
        found = _framework_order(runs["framework"].dropna().unique()) if "framework" in runs else []
        for fw in found:
            if fw not in self.framework_boxes:
                box = widgets.Checkbox(value=self._frameworks is None or fw in self._frameworks, description=fw,
                                       indent=False, layout=widgets.Layout(width="auto"))  # fmt: skip
                box.observe(self._on_change, names="value")
                self.framework_boxes[fw] = box
        self._boxes.children = [self.framework_boxes[f] for f in found]

    def _on_change(self, _change=None) -> None:
        if not self._busy:
            self._redraw()

    # ------------------------------------------------------------------------------------ drawing

    def selected_frameworks(self) -> list[str]:
        """The ticked frameworks that are in the store."""
        shown = {b.description for b in self._boxes.children}
        return [fw for fw, box in self.framework_boxes.items() if box.value and fw in shown]

    def _filter(self) -> pd.DataFrame:
        runs = self._all
        if runs.empty:
            return runs
        keep = runs["framework"].isin(self.selected_frameworks())
        if self.model.value != ALL:
            keep &= runs["model"] == self.model.value
        if self.dataset.value != ALL:
            keep &= runs["dataset"] == self.dataset.value
        if self.device.value != ALL:
            keep &= runs["device"] == self.device.value
        if self.since.value is not None:  # the day starts at midnight UTC, as load_runs reads a date
            keep &= runs["created_at"] >= pd.Timestamp(self.since.value, tz="UTC")
        return runs[keep].reset_index(drop=True)

    def _redraw(self) -> None:
        self.runs = runs = self._filter()
        metric = self.metric.value
        ok = runs[runs["status"] == "ok"].sort_values("created_at") if not runs.empty else runs
        if not ok.empty:
            ok = ok.assign(mode=ok["mode"].fillna("").astype(str))
        several = not ok.empty and ok["mode"].nunique() > 1

        time_traces, scatter_traces = [], []
        for fw in _framework_order(ok["framework"].unique()) if not ok.empty else []:
            mine = ok[ok["framework"] == fw]
            for mode in (sorted(mine["mode"].unique()) if several else [None]):
                part = mine if mode is None else mine[mine["mode"] == mode]
                part = part[part[metric].notna()] if metric in part else part.iloc[:0]
                if part.empty:
                    continue
                name = fw if mode is None or not mode else f"{fw}/{mode}"
                time_traces.append(go.Scatter(
                    x=list(part["created_at"].dt.tz_convert(None).dt.to_pydatetime()), y=part[metric].tolist(),
                    mode="markers+lines", name=name, meta={"framework": fw, "mode": mode or ""},
                    line=dict(color=color(fw), dash=MODE_DASH.get(mode or "", "solid")),
                    customdata=part[["run_id", "model", "dataset"]].astype(str).values.tolist(),
                    hovertemplate=f"<b>{name}</b> run %{{customdata[0]}}<br>%{{customdata[1]}} on %{{customdata[2]}}"
                                  f"<br>%{{x}} UTC<br>{metric} = %{{y:.4g}}<extra></extra>"))  # fmt: skip
            if {"samples_per_s", "test_accuracy"} <= set(mine.columns):
                part = mine[mine["samples_per_s"].notna() & mine["test_accuracy"].notna()]
                if not part.empty:
                    scatter_traces.append(go.Scatter(
                        x=part["samples_per_s"].tolist(), y=part["test_accuracy"].tolist(), mode="markers", name=fw,
                        meta={"framework": fw}, marker=dict(color=color(fw), size=9),
                        customdata=part[["run_id", "mode", "model", "dataset"]].astype(str).values.tolist(),
                        hovertemplate=f"<b>{fw}</b> %{{customdata[1]}} run %{{customdata[0]}}<br>%{{customdata[2]}} on "
                                      f"%{{customdata[3]}}<br>%{{x:.4g}} samples/s, accuracy %{{y:.4f}}"
                                      f"<extra></extra>"))  # fmt: skip
        with edit(self.time_fig):
            self.time_fig.data = ()
            self.time_fig.add_traces(time_traces)
            self.time_fig.layout.yaxis.title = _axis_title(metric)
            self.time_fig.layout.title = f"{metric} over time (ok runs)"
        with edit(self.scatter_fig):
            self.scatter_fig.data = ()
            self.scatter_fig.add_traces(scatter_traces)

        if self._error:
            self.status.value = f"<span style='color:#b00'>{self._error}</span>"
        else:
            self.status.value = (f"{len(runs)} runs from {html.escape(str(self.db))} ({len(ok)} ok, plotted; "
                                 f"{len(self._all)} in the store)")  # fmt: skip
        self.table.value = self._table_html(runs)

    @staticmethod
    def _table_html(runs: pd.DataFrame) -> str:
        if runs.empty:
            return ""
        shown = runs.tail(_TABLE_ROWS).iloc[::-1].assign(when=lambda d: d["created_at"].dt.strftime("%Y-%m-%d %H:%M"))
        shown = shown[[c for c in _TABLE if c in shown.columns]]
        caption = f"latest {len(shown)} of {len(runs)} runs (UTC)" if len(runs) > len(shown) else "runs (UTC)"
        return (f"<div style='font-size:90%'><b>{caption}</b>"
                f"{shown.to_html(index=False, na_rep='', float_format=lambda v: f'{v:.4g}', border=0)}</div>")
