"""LiveCurves and ComparisonPanel, headless: fed recorded events or real runs, asserting on the
figure's trace data, the table's rows and the controls' state."""

import os
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import mlx_explore
from mlx_explore.events import Epoch, Failed, Finished, Started, Step
from mlx_explore.results import load_runs
from widgets import ComparisonPanel, LiveCurves
from widgets._common import Throttle
from widgets.live import ema, thin

from .conftest import alive
from .test_report import headline_comparison, html_table


def recorded(framework="jax", mode="compiled", steps=6, epochs=2, t0=1.0, fail_at=None):
    """A run's events as the runner would stream them: 3 steps per epoch, 0.1 s per step."""
    spe = steps // epochs
    out = [Started(framework, mode, total_steps=steps, epochs=epochs, time_s=t0)]
    for s in range(1, steps + 1):
        if fail_at == s:
            return out + [Failed(framework, mode, status="failed", reason="boom")]
        out.append(Step(framework, mode, step=s, epoch=(s - 1) // spe + 1, loss=2.0 / s, time_s=t0 + 0.1 * s))
        if s % spe == 0:
            out.append(Epoch(framework, mode, epoch=s // spe, train_loss=1.0 / s, val_loss=1.5 / s, val_accuracy=0.4 + 0.1 * s, time_s=t0 + 0.1 * s))
    return out + [Finished(framework, mode, metrics={"samples_per_s": 100.0})]


def traces(curves, framework):
    return [t for t in curves.figure.data if t.legendgroup.startswith(framework + "/")]


def test_live_curves_draw_every_point_of_every_run():
    curves = LiveCurves()
    curves.attach(recorded("jax") + recorded("torch", t0=5.0))
    assert len(curves.figure.data) == 6  # three panels per run
    loss, vloss, vacc = traces(curves, "jax")
    assert list(loss.x) == [1, 2, 3, 4, 5, 6] and list(loss.y) == pytest.approx([2.0 / s for s in range(1, 7)])
    assert list(vloss.x) == [3, 6] and list(vloss.y) == pytest.approx([0.5, 0.25])
    assert list(vacc.y) == pytest.approx([0.7, 1.0])
    assert loss.line.color != traces(curves, "torch")[0].line.color
    assert loss.name == "jax" and loss.showlegend and not vloss.showlegend


def test_x_axis_switches_between_step_epoch_and_seconds():
    curves = LiveCurves()
    curves.attach(recorded("jax", t0=3.0))
    curves.x_axis.value = "epoch"
    loss, vloss, _ = traces(curves, "jax")
    assert list(loss.x) == pytest.approx([s / 3 for s in range(1, 7)]) and list(vloss.x) == [1, 2]
    curves.x_axis.value = "seconds"
    loss, vloss, _ = traces(curves, "jax")
    assert list(loss.x) == pytest.approx([3.0 + 0.1 * s for s in range(1, 7)])  # the late start is compile time
    assert list(vloss.x) == pytest.approx([3.3, 3.6])
    assert curves.figure.layout.xaxis.title.text.startswith("seconds")


def test_smoothing_is_a_debiased_ema():
    # s_t = 0.5 s_{t-1} + 0.5 x_t from 0: 2, 2, 1; debiased by 1 - 0.5^t: 4, 8/3, 8/7
    assert list(ema(np.array([4.0, 2.0, 0.0]), 0.5)) == pytest.approx([4.0, 8 / 3, 8 / 7])
    curves = LiveCurves(smoothing=0.0)
    curves.attach(recorded("jax"))
    curves.smoothing.value = 0.5
    raw = np.array([2.0 / s for s in range(1, 7)])
    assert list(traces(curves, "jax")[0].y) == pytest.approx(list(ema(raw, 0.5)))
    assert traces(curves, "jax")[0].y[0] == pytest.approx(2.0)  # debiased: starts at the first value


def test_failed_runs_are_named_and_modes_are_told_apart():
    curves = LiveCurves()
    curves.attach(recorded("jax", "eager", fail_at=4) + recorded("jax", "compiled"))
    names = {t.name for t in curves.figure.data}
    assert names == {"jax/eager (failed)", "jax/compiled"}
    eager = [t for t in curves.figure.data if t.name.startswith("jax/eager")][0]
    assert eager.line.dash == "dot" and list(eager.x) == [1, 2, 3]


def test_redraws_are_throttled_and_nothing_is_lost():
    fake_now = [0.0]
    curves = LiveCurves(max_fps=10)
    curves.throttle = Throttle(0.1, clock=lambda: fake_now[0])
    events = recorded("jax", steps=1000, epochs=10)
    for e in events:
        fake_now[0] += 0.001  # 1000 events a second
        curves.update(e)
    assert curves.redraws <= 1.1 * 10 * fake_now[0] + 2  # at most ~10 a second (+ the final one)
    assert list(traces(curves, "jax")[0].x)[-1] == 1000  # the terminal event forces the last redraw


def test_thinning_keeps_the_shape_and_the_last_point():
    x = np.arange(1, 10_001, dtype=float)
    xs, ys = thin(x, 2 * x, 1000)
    assert len(xs) <= 1001 and xs[-1] == 10_000 and np.allclose(ys, 2 * xs)
    assert len(thin(x[:10], x[:10], 1000)[0]) == 10


def test_bad_arguments_name_the_allowed_values():
    with pytest.raises(ValueError, match="allowed: step, epoch, seconds"):
        LiveCurves(x="minutes")
    with pytest.raises(ValueError, match="smoothing"):
        LiveCurves(smoothing=1.5)


def test_live_curves_follow_a_real_run(tiny_kwargs):
    curves = LiveCurves()
    events = curves.attach(mlx_explore.iter_compare(frameworks=["sklearn"], **tiny_kwargs))
    steps = [e for e in events if isinstance(e, Step)]
    loss = traces(curves, "sklearn")[0]
    assert list(loss.y) == pytest.approx([e.loss for e in steps]) and len(steps) > 10


# ------------------------------------------------------------------------------- the panel


def panel(**kw):
    base = dict(frameworks=["sklearn", "jax"], epochs=1, mode="eager", optimizer="sgd", lr=0.1, probe_devices=False,
                hidden=(32,), latency_steps=5)  # fmt: skip
    return ComparisonPanel(**{**base, **kw})


def test_bad_values_surface_as_messages_in_the_panel():
    p = panel()
    p.batch_size.value = 0
    assert p.run() is False and not p.running
    assert "Batch size" in p.message.value and "mlx-error" in p.message.value
    p.batch_size.value = 32
    for box in p.framework_boxes.values():
        box.value = False
    assert p.run() is False and "Frameworks" in p.message.value and "allowed" in p.message.value
    p.framework_boxes["jax"].value = True
    p.model.value, p.dataset.value = "cnn", "wine"
    assert p.run() is False and "Model" in p.message.value and "image data set" in p.message.value


def test_a_run_fills_progress_curves_table_and_bars(results_db):
    p = panel()
    assert p.run() is True
    result = p.wait(timeout=300)
    assert result is not None and [r.status for r in result.runs] == ["ok", "ok"]
    assert "Done: 2 of 2" in p.message.value and str(results_db) in p.message.value
    assert [row.children[1].bar_style for row in p.progress.children] == ["success", "success"]
    assert [r.framework for r in result.runs] == ["jax", "sklearn"]  # the registry's order
    assert {t.name for t in p.curves.figure.data} == {"sklearn", "jax"}
    df = p.table_frame()
    assert list(df["samples_per_s"]) == sorted(df["samples_per_s"], reverse=True)  # best first
    assert p.table.value.count("<tr>") == 3 and "★" in p.table.value
    best = df["samples_per_s"].max()
    assert f"{best:,.0f} ★" in p.table.value and 'class="mlx-results"' in p.table.value
    p.sort_by.value = "compile_s"
    assert list(p.table_frame()["compile_s"]) == sorted(df["compile_s"])
    bars = {t.name: list(t.y) for t in p.bars.data}
    assert bars["training throughput [samples/s]"] == [r.metrics["samples_per_s"] for r in result.runs]
    assert list(load_runs(results_db)["framework"]) == ["jax", "sklearn"]
    assert not p.run_button.disabled and p.stop_button.disabled


def test_the_results_table_is_the_cores_styled_table_sorted_best_first():
    """The panel's table is ``report.styled`` of its frame: the catalogue's headings and number
    formats, the best value of each column among finished runs marked, rows in the "sort by" order."""
    from mlx_explore.report import HEADLINE

    p = panel()
    assert p.sort_by.options == tuple((c.heading, key) for key, c in HEADLINE.items())
    p.result = headline_comparison()  # torch: compile 2.0 s, jax: 3.0 s, sklearn unsupported
    p.sort_by.value = "compile_s"  # redraws the table
    assert list(p.table_frame().index) == ["torch", "jax", "sklearn"]  # lower is better; no figure last
    heads, rows = html_table(p.table_styler())
    assert heads == ["run", "mode", "status", "test acc", "train samples/s", "step p50 ms", "step p99 ms", "infer p50 ms",
                     "compile s", "MFU", "wall s"]  # fmt: skip
    assert [c for c, _ in rows[0]] == ["torch", "compiled", "ok", "0.9000", "39,020 ★", "1.23", "3.00", "0.300", "2.00 ★",
                                       "1.2%", "10.0 ★"]  # fmt: skip
    assert [c for c, _ in rows[2]] == ["sklearn", "eager", "unsupported", *["-"] * 8]
    assert all(("★" in c) == ("best" in classes.split()) for row in rows for c, classes in row)
    p.sort_by.value = "samples_per_s"  # higher is better
    assert list(p.table_frame().index) == ["torch", "jax", "sklearn"]
    p.sort_by.value = "test_accuracy"
    assert list(p.table_frame().index) == ["jax", "torch", "sklearn"]
    assert p.table.value.index(">jax<") < p.table.value.index(">torch<") and 'class="mlx-results"' in p.table.value


def test_a_failed_framework_is_explained_in_words_and_the_other_kept(tmp_path, monkeypatch):
    pkg = tmp_path / "jax"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent("raise RuntimeError('jax is broken on purpose')\n"))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    p = panel()
    p.run()
    result = p.wait(timeout=300)
    assert [(r.framework, r.status) for r in result.runs] == [("jax", "failed"), ("sklearn", "ok")]
    assert "<b>jax</b> failed: RuntimeError: jax is broken on purpose" in p.message.value
    assert "results are kept" in p.message.value
    assert len(p.details.children) == 1 and "raise RuntimeError" in p.details.children[0].value
    assert p.progress.children[0].children[1].bar_style == "danger"
    assert set(p.table_frame()["status"]) == {"ok", "failed"}


def test_stop_ends_the_children_and_keeps_finished_runs(results_db):
    p = panel(epochs=300, mode="compiled")  # JAX (first) finishes in seconds, scikit-learn is stopped
    p.run()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not any(isinstance(e, Step) and e.framework == "sklearn" for e in p.events):
        time.sleep(0.1)
    p.stop_button.click()
    result = p.wait(timeout=60)
    assert not p.running and result.interrupted
    assert [(r.framework, r.status) for r in result.runs] == [("jax", "ok"), ("sklearn", "interrupted")]
    pids = [e.pid for e in p.events if isinstance(e, Started)]
    assert len(pids) == 2 and not any(alive(pid) for pid in pids)
    assert "Stopped. 1 finished run(s) kept." in p.message.value
    assert list(load_runs(results_db)["status"]) == ["ok", "interrupted"]
    assert [r.bar_style for r in (row.children[1] for row in p.progress.children)] == ["success", "danger"]


def test_framework_boxes_show_installation_and_devices():
    p = ComparisonPanel(frameworks=["sklearn"], probe_devices=True)
    assert p.framework_boxes["sklearn"].value and not p.framework_boxes["jax"].value
    assert all(not box.disabled for box in p.framework_boxes.values())  # the test set-up installs all four
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "sees:" not in p.framework_notes["sklearn"].value:
        time.sleep(0.2)
    assert p.framework_notes["sklearn"].value == "sees: cpu"


def test_main_thread_runs_updates_from_other_threads_in_order_only_when_the_loop_is_free():
    import threading

    from widgets._common import MainThread

    class Loop:  # records wake-ups; tornado's add_callback is the one call MainThread makes
        def __init__(self):
            self.wakeups = 0

        def add_callback(self, fn):
            self.wakeups += 1

    seen: list[tuple[int, str]] = []
    ui = MainThread(loop=Loop())
    worker = threading.Thread(target=lambda: [ui.call(lambda i: seen.append((i, threading.current_thread().name)), i) for i in range(5)])
    worker.start()
    worker.join()
    assert seen == [] and ui.loop.wakeups == 5  # nothing ran on the worker
    assert ui.drain() == 5 and seen == [(i, "MainThread") for i in range(5)]
    ui.call(seen.append, "direct")  # on the main thread: at once
    assert seen[-1] == "direct"
    seen.clear()
    assert MainThread(loop=None).call(seen.append, 1) is None and seen == [1]  # no kernel: at once


def test_a_panel_in_a_kernel_touches_its_widgets_only_on_the_main_thread(results_db, monkeypatch):
    """Widgets are not thread-safe: a FigureWidget edit made off the main thread while the kernel
    applies a browser message to the same figure reaches the browser as None (a Voila page showed an
    empty live graph after a run). With a kernel loop, the worker hands every update over."""
    import threading

    from tornado.ioloop import IOLoop

    import widgets._common as common

    loop = IOLoop(make_current=False)
    monkeypatch.setattr(common, "kernel_loop", lambda: loop)
    p = panel()
    threads: list[str] = []
    record = lambda change: threads.append(threading.current_thread().name)  # noqa: E731
    for widget in (p.curves.figure, p.bars, p.message, p.run_button):
        widget.observe(record)
    assert p.run() is True
    threads.clear()  # run() itself is on the main thread: what follows is the worker's
    p._thread.join(300)
    assert len(p.events) > 10 and not p.curves.figure.data and threads == []  # the worker changed no widget

    async def drained():
        return None

    loop.run_sync(drained)  # the loop runs the queued updates
    loop.close()
    assert threads and set(threads) == {"MainThread"}
    assert "Done: 2 of 2" in p.message.value and not p.run_button.disabled
    assert {t.name for t in p.curves.figure.data} == {"sklearn", "jax"}
    assert max(len(t.x) for t in p.curves.figure.data) > 10
