"""``ComparisonPanel``: pick a model, data set and frameworks, press Run, watch them train side by side.

Everything runs through ``mlx_explore.compare`` in a background thread (so the Stop button stays
live): one child process per framework, events drawn by :class:`~widgets.live.LiveCurves`, every
run written to the results store as it ends. The background thread never touches a widget itself:
it hands each update to the kernel's main thread (:class:`~widgets._common.MainThread`). Stop sets the comparison's ``stop`` event: the running
child is killed, finished runs are kept and shown.
"""

from __future__ import annotations

import html
import threading
import time

import ipywidgets as W
import plotly.graph_objects as go
from plotly.subplots import make_subplots

import mlx_explore
from mlx_explore import frameworks as registry
from mlx_explore.child import probe
from mlx_explore.comparison import Comparison, plan, run_label
from mlx_explore.config import DATASETS, DEFAULT_FRAMEWORKS, DEVICES, MODELS, MODES, OPTIMIZERS, ConfigError, RunConfig
from mlx_explore.events import Epoch, Event, Failed, Finished, Skipped, Started, Step
from mlx_explore.report import HEADLINE, styled

from ._common import MainThread, color, figure_widget
from .live import LiveCurves

#: Bar charts shown when a comparison ends: metric -> panel title.
BARS = {"samples_per_s": "training throughput [samples/s]", "compile_s": "compile time [s]", "test_accuracy": "test accuracy"}
#: What the user sees for a field named in a ConfigError.
FIELD_LABELS = {"batch_size": "Batch size", "lr": "Learning rate", "epochs": "Epochs", "frameworks": "Frameworks",
                "model": "Model", "dataset": "Data set", "optimizer": "Optimizer", "device": "Device", "mode": "Compile mode"}  # fmt: skip


class ComparisonPanel(W.VBox):
    """Controls, Run/Stop, a progress bar per run, live curves, then a results table and bar charts.

    Example::

        from widgets import ComparisonPanel
        ComparisonPanel(frameworks=["torch", "jax", "tensorflow"])

    Programmatic use (tests, notebooks): set the controls, ``panel.run()``, ``panel.wait()``, then
    ``panel.result`` is the :class:`mlx_explore.comparison.Comparison`.

    Args:
        model, dataset, epochs, batch_size, lr, optimizer, device, mode: initial control values
            (see :class:`mlx_explore.RunConfig`).
        frameworks: initially ticked frameworks (default: the installed ones of
            ``config.DEFAULT_FRAMEWORKS``; the Keras columns are ticked by hand).
        db: results store file (default ``$MLX_EXPLORE_DB`` or ``~/.mlx_explore/results.db``).
        store: write runs to the store.
        probe_devices: ask each installed framework (in a child process, in the background) which
            devices it sees and show them beside its checkbox.
        run_options: further ``RunConfig`` fields for every run (e.g. ``latency_steps=50``).
    """

    def __init__(self, model: str = "mlp", dataset: str = "digits", frameworks=None, epochs: int = 5,
                 batch_size: int = 32, lr: float = 1e-3, optimizer: str = "adam", device: str = "auto",
                 mode: str = "compiled", db=None, store: bool = True, probe_devices: bool = True,
                 **run_options):  # fmt: skip
        self.db, self.store, self.run_options = db, store, run_options
        self.result: Comparison | None = None
        self.events: list[Event] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ui = MainThread()
        installed = {fw: registry.is_installed(fw) for fw in registry.REGISTRY}
        ticked = set(frameworks) if frameworks is not None else {fw for fw in DEFAULT_FRAMEWORKS if installed[fw]}

        self.model = W.Dropdown(options=MODELS, value=model, description="model")
        self.dataset = W.Dropdown(options=DATASETS, value=dataset, description="data set")
        self.epochs = W.IntText(value=epochs, description="epochs")
        self.batch_size = W.IntText(value=batch_size, description="batch size")
        self.lr = W.FloatText(value=lr, description="learning rate")
        self.optimizer = W.Dropdown(options=OPTIMIZERS, value=optimizer, description="optimizer")
        self.device = W.Dropdown(options=DEVICES, value=device, description="device")
        self.mode = W.Dropdown(options=MODES, value=mode, description="compile mode")
        self.framework_boxes = {
            fw: W.Checkbox(value=fw in ticked and installed[fw], description=registry.get(fw).title, disabled=not installed[fw],
                           indent=False, layout=W.Layout(width="190px"))
            for fw in registry.REGISTRY
        }  # fmt: skip
        self.framework_notes = {
            fw: W.HTML("checking devices…" if installed[fw] and probe_devices else ("" if installed[fw] else
                       f"<i>not installed</i>: <code>pip install 'mlx-explore[{fw}]'</code>"))
            for fw in registry.REGISTRY
        }  # fmt: skip
        self.run_button = W.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.message = W.HTML()
        self.progress = W.VBox()
        self.curves = LiveCurves()
        self.sort_by = W.Dropdown(options=[(c.heading, k) for k, c in HEADLINE.items()], value="samples_per_s", description="sort by")
        self.table = W.HTML()
        # The bar charts change once per comparison, at its end: each time a new FigureWidget built with
        # its data replaces the last one, so none of its edits travels as a delta (see _finish).
        self.bars = self._bar_figure([])
        self.details = W.Accordion()
        self.results_box = W.VBox([self.sort_by, self.table, self.bars], layout=W.Layout(display="none"))

        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        self.sort_by.observe(lambda _: self._show_table(), names="value")
        frameworks_box = W.VBox([W.HBox([self.framework_boxes[fw], self.framework_notes[fw]]) for fw in registry.REGISTRY])
        controls = W.HBox([
            W.VBox([self.model, self.dataset, self.epochs, self.batch_size]),
            W.VBox([self.lr, self.optimizer, self.device, self.mode]),
            frameworks_box,
        ])  # fmt: skip
        super().__init__([controls, W.HBox([self.run_button, self.stop_button]), self.message, self.progress,
                          self.curves, self.results_box, self.details])  # fmt: skip
        if probe_devices:
            threading.Thread(target=self._probe, args=([fw for fw, ok in installed.items() if ok],), daemon=True).start()

    # ------------------------------------------------------------------ actions

    def config(self) -> RunConfig:
        """The comparison the controls describe.

        Raises:
            ConfigError: a control holds a value that is not allowed (the field is named).
        """
        frameworks = [fw for fw, box in self.framework_boxes.items() if box.value]
        return RunConfig.build(
            model=self.model.value, dataset=self.dataset.value, frameworks=frameworks, epochs=self.epochs.value,
            batch_size=self.batch_size.value, lr=self.lr.value, optimizer=self.optimizer.value,
            device=self.device.value, mode=self.mode.value, **self.run_options,
        )  # fmt: skip

    def run(self) -> bool:
        """Start a comparison in the background (the Run button). Returns False, with the reason
        shown in the panel, if a control holds a bad value or a comparison is already running."""
        if self.running:
            self._say("A comparison is already running: press Stop first.", "warning")
            return False
        self._drain()  # the last comparison's final updates are shown before this one clears them
        try:
            config = self.config()
        except ConfigError as exc:
            label = FIELD_LABELS.get(exc.field, exc.field)
            self._say(f"<b>{html.escape(label)}</b>: {html.escape(exc.message)}", "error")
            return False
        self._stop.clear()
        self.result, self.events = None, []
        self.curves.clear()
        self.details.children = ()
        self.results_box.layout.display = "none"
        self._bars = {key: self._progress_row(run_label(config, *key)) for key in plan(config)}
        self.progress.children = [row for row, _, _ in self._bars.values()]
        self._say(f"Running {len(self._bars)} run(s), one process each…", "info")
        self.run_button.disabled, self.stop_button.disabled = True, False
        self._thread = threading.Thread(target=self._work, args=(config,), daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        """End the running comparison (the Stop button): its child process is killed, finished runs
        are kept."""
        if self.running:
            self._stop.set()
            self._say("Stopping…", "warning")

    def wait(self, timeout: float | None = None) -> Comparison | None:
        """Block until the running comparison ends (or ``timeout`` seconds); return its result.

        Called in a notebook cell, it draws the run's updates while it waits (the kernel's loop
        cannot while the cell runs), so the panel is up to date when it returns."""
        if self._thread is not None:
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._thread.is_alive() and (deadline is None or time.monotonic() < deadline):
                self._thread.join(0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic())))
                self._drain()
        self._drain()
        return self.result

    def _drain(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._ui.drain()

    @property
    def running(self) -> bool:
        """True while a comparison runs."""
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ background work

    def _work(self, config: RunConfig) -> None:
        try:
            self.result = mlx_explore.compare(config, on_event=self._on_event, store=self.store, db=self.db, stop=self._stop)
            self._ui.call(self._finish, self.result)
        except Exception as exc:  # noqa: BLE001 - every failure is shown in words, never lost
            self._ui.call(self._say, f"The comparison could not run: {html.escape(str(exc))}", "error")
        finally:
            self._ui.call(self._idle)

    def _idle(self) -> None:
        self.run_button.disabled, self.stop_button.disabled = False, True

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        self._ui.call(self._show_event, event)

    def _show_event(self, event: Event) -> None:
        self.curves.update(event)
        row = self._bars.get(event.run_key)
        if row is None:
            return
        _, bar, info = row
        if isinstance(event, Started):
            bar.max, info.value = max(event.total_steps, 1), f"on {html.escape(event.device_name or event.device)}"
        elif isinstance(event, Step):
            bar.value = min(event.step, bar.max)
        elif isinstance(event, Epoch):
            info.value = f"epoch {event.epoch}: validation accuracy {event.val_accuracy:.3f}"
        elif isinstance(event, Finished):
            bar.value, bar.bar_style = bar.max, "success"
            info.value = f"done: {event.metrics.get('samples_per_s', 0):,.0f} samples/s"
        elif isinstance(event, (Failed, Skipped)):
            bar.bar_style = "danger" if isinstance(event, Failed) else "warning"
            info.value = f"<b>{event.status}</b>: {html.escape(event.reason)}"

    def _finish(self, result: Comparison) -> None:
        # Every view of the curves, and any view the browser renders again from the figure's synced state
        # (it did when the new bar charts' model arrived in a Voila page under load: an empty graph in
        # tests/test_browser.py), now starts from the whole final figure.
        self.curves.flush(resend=True)
        problems = [r for r in result.runs if r.status not in ("ok", "skipped", "unsupported")]
        skipped = [r for r in result.runs if r.status in ("skipped", "unsupported")]
        lines = []
        if result.interrupted:
            lines.append(f"Stopped. {sum(r.status == 'ok' for r in result.runs)} finished run(s) kept.")
        else:
            lines.append(f"Done: {sum(r.status == 'ok' for r in result.runs)} of {len(result.runs)} run(s) finished.")
        for r in problems:
            lines.append(f"<b>{html.escape(r.label)}</b> {r.status}: {html.escape(r.reason)}. The other frameworks' results are kept.")
        for r in skipped:
            lines.append(f"<b>{html.escape(r.label)}</b> {r.status}: {html.escape(r.reason)}")
        if result.db:
            lines.append(f"Stored in <code>{html.escape(result.db)}</code>.")
        tails = [r for r in result.runs if r.error_tail]
        self.details.children = [W.HTML(f"<pre style='white-space:pre-wrap'>{html.escape(r.error_tail)}</pre>") for r in tails]
        for i, r in enumerate(tails):
            self.details.set_title(i, f"details: {r.label} {r.status}")
        self._show_table()
        self._show_bars()
        self.results_box.layout.display = "flex"
        self._say("<br>".join(lines), "error" if problems and not result.interrupted else "info")

    # ------------------------------------------------------------------ rendering

    def table_frame(self):
        """The results as a ``pandas.DataFrame`` of raw figures (one row per run, the headline columns
        of ``mlx_explore.report.HEADLINE``), sorted by the "sort by" control, best first; ``None``
        before a comparison has ended."""
        if self.result is None or not self.result.runs:
            return None
        m = self.result.metrics
        cols = ["framework", "mode", "status", *[c for c in HEADLINE if c in m.columns]]
        df = m[cols].copy()
        key = self.sort_by.value
        if key in df.columns:
            df = df.sort_values(key, ascending=HEADLINE[key].better == "lower", na_position="last")
        return df

    def table_styler(self):
        """:meth:`table_frame` for display (``mlx_explore.report.styled``: number formats, units,
        the best value of each column among finished runs bold with ★); ``None`` before a
        comparison has ended."""
        df = self.table_frame()
        if df is None:
            return None
        return (styled(df).hide(["framework"], axis="columns")
                .set_table_attributes('class="mlx-results" style="border-collapse:collapse"')
                .set_table_styles([{"selector": "td, th", "props": "text-align: right; padding: 2px 8px"}], overwrite=False))  # fmt: skip

    def _show_table(self) -> None:
        table = self.table_styler()
        self.table.value = "" if table is None else table.to_html()

    def _show_bars(self) -> None:
        runs = [r for r in self.result.runs if r.status == "ok"]
        old, self.bars = self.bars, self._bar_figure(runs)
        self.results_box.children = [self.sort_by, self.table, self.bars]
        old.close()

    @staticmethod
    def _bar_figure(runs) -> go.FigureWidget:
        """The bar charts of ``runs`` (finished ``RunRecord`` objects), built with their data."""
        fig = make_subplots(rows=1, cols=3, subplot_titles=list(BARS.values()), horizontal_spacing=0.12)
        for col, key in enumerate(BARS, start=1):
            if runs:
                fig.add_trace(
                    go.Bar(x=[r.label for r in runs], y=[r.metrics.get(key) for r in runs],
                           marker_color=[color(r.framework) for r in runs], name=BARS[key]),
                    row=1, col=col,
                )  # fmt: skip
        fig.update_layout(height=300, showlegend=False, margin=dict(l=40, r=10, t=40, b=40))
        return figure_widget(fig)

    def _progress_row(self, label: str):
        bar = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="40%"))
        info = W.HTML("waiting")
        return W.HBox([W.Label(label, layout=W.Layout(width="140px")), bar, info]), bar, info

    def _say(self, text: str, level: str) -> None:
        colors = {"error": "#b42318", "warning": "#b54708", "info": "#344054"}
        self.message.value = f"<div class='mlx-message mlx-{level}' style='color:{colors[level]}'>{text}</div>"

    def _probe(self, names: list[str]) -> None:
        for fw in names:
            info = probe(fw, nice=10)  # background work: the page and a run come first
            note = ", ".join(info.get("devices", [])) or info.get("error", "")
            text = f"sees: {html.escape(note)}" if "devices" in info else f"<i>{html.escape(note)}</i>"
            self._ui.call(setattr, self.framework_notes[fw], "value", text)
