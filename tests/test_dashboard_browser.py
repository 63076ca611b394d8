"""Each dashboard served by ``mlx-explore dashboard`` (the real command, in a child process) and opened
in Debian's Chromium through Playwright (``executable_path``), as a manager would open the printed URL.

On every page: no console error, no request leaving 127.0.0.1 (``test_browser.browser_page``), no
source code visible; a full-page screenshot goes to ``tests/artifacts/dashboard_<page>.png`` for a
person to look at (the README's overview image is one of them). The overview: the recommendation and
its reasons, every graph with points, the suite and audit tables with rows. The history page: its
graphs and table. The run page: the panel, ready to run (its Run button is ``tests/test_browser.py``'s).
An empty store and a corrupt one: the page says what to do, no traceback.
"""

from __future__ import annotations

import io
import shutil
import signal
import time
from pathlib import Path

import pytest

from mlx_explore import suite

from .conftest import ROOT, run_cli
from .test_browser import browser_page
from .test_dashboard import start_cli

ARTIFACTS = ROOT / "tests" / "artifacts"
#: Points of each plotly graph on the page, in page order.
POINTS = """() => [...document.querySelectorAll('.js-plotly-plot')]
    .map(g => (g.data || []).reduce((n, t) => n + (t.x ? t.x.length : 0), 0))"""
#: What a page must never show: the notebooks' code.
SOURCE_MARKERS = ("wait_for_page", "import ", "from widgets", "os.environ")


@pytest.fixture(scope="module")
def store(suite_store, tmp_path_factory) -> Path:
    """The shared suite (jax, sklearn) plus one real profiled run (sklearn, ``mlx-explore profile``)."""
    db = tmp_path_factory.mktemp("dashboard") / "results.db"
    shutil.copy(suite_store, db)
    proc = run_cli("profile", "--model", "mlp", "--frameworks", "sklearn", "--steps", "5", "--db", str(db))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return db


def serve(db: Path):
    proc, urls = start_cli("--db", str(db))
    return proc, urls


def stop(proc) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


@pytest.fixture(scope="module")
def server(store):
    proc, urls = serve(store)
    try:
        yield urls
    finally:
        if proc.poll() is None:
            stop(proc)


def screenshot(page, name: str) -> Path:
    """A full-page PNG of ``page`` in tests/artifacts (Voila's lab page scrolls inside the window: the
    window is made as tall as the content first)."""
    ARTIFACTS.mkdir(exist_ok=True)
    bottom = page.evaluate("""() => Math.max(...[...document.querySelectorAll('.jp-Cell')]
        .map(e => e.getBoundingClientRect().bottom))""")
    page.set_viewport_size({"width": 1280, "height": min(int(bottom) + 40, 16000)})
    time.sleep(2.0)  # plotly redraws at the new size
    path = ARTIFACTS / f"dashboard_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def no_source(page) -> None:
    text = page.evaluate("() => document.body.innerText")
    shown = [m for m in SOURCE_MARKERS if m in text]
    assert not shown, f"source code on the page: {shown}"
    assert page.locator(".jp-InputArea-editor, .CodeMirror, .cm-editor").count() == 0


def open_page(page, url: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(url, timeout=180_000)


def test_overview_shows_the_recommendation_the_numbers_and_every_graph(server, store):
    runs = suite.latest(store)
    with browser_page(io.StringIO()) as (page, phase):
        open_page(page, server["overview"])
        page.locator(".mlx-headline").wait_for(timeout=120_000)
        headline = page.locator(".mlx-headline").inner_text()
        assert "fits best on this machine" in headline and "research prototyping" in headline
        assert page.locator("ol.mlx-reasons li").count() >= 1
        # the ranking, accuracy against throughput, the trend and the profile
        try:
            page.wait_for_function(f"() => (p => p.length === 4 && p.every(n => n > 0))(({POINTS})())", timeout=60_000)
        except Exception:
            pass  # the assertion says what the page shows
        assert [n > 0 for n in page.evaluate(POINTS)] == [True] * 4, page.evaluate(POINTS)
        assert page.locator("table.mlx-suite tbody tr").count() == len(runs)
        assert page.locator("table.mlx-audit tr[data-claim]").count() > 0
        assert "claims from the articles" in page.locator(".mlx-audit-summary").inner_text()
        assert page.get_by_text("How to read it:").count() == 4  # one line under each chart
        phase[0] = "scenario"
        page.locator("select").first.select_option(label="Production serving")
        page.locator(".mlx-headline", has_text="production serving").wait_for(timeout=30_000)
        no_source(page)
        screenshot(page, "overview")


def test_history_lists_every_run_with_filters(server, store):
    with browser_page(io.StringIO()) as (page, phase):
        open_page(page, server["history"])
        page.get_by_text("runs from").first.wait_for(timeout=120_000)
        for label in ("model", "data set", "device", "since"):
            assert page.get_by_text(label, exact=True).count() >= 1, label
        try:
            page.wait_for_function(f"() => (p => p.length === 2 && p.every(n => n > 0))(({POINTS})())", timeout=60_000)
        except Exception:
            pass
        assert [n > 0 for n in page.evaluate(POINTS)] == [True, True], page.evaluate(POINTS)
        assert page.locator("table tbody tr").count() > 0
        no_source(page)
        screenshot(page, "history")


def test_run_page_shows_the_panel_ready_to_run(server):
    with browser_page(io.StringIO()) as (page, phase):
        open_page(page, server["run"])
        page.get_by_role("button", name="Run").wait_for(timeout=120_000)
        page.get_by_text("sees:").first.wait_for(timeout=180_000)  # the kernel probed the frameworks
        page.wait_for_function("() => !document.body.innerText.includes('checking devices')", timeout=180_000)
        assert page.locator(".js-plotly-plot").count() >= 1
        no_source(page)
        screenshot(page, "run")


def test_an_empty_store_says_what_to_do_and_a_corrupt_one_why(tmp_path):
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"not a database" * 200)
    for db, expect, name in ((tmp_path / "empty.db", "No suite to recommend from yet", "empty"),
                             (corrupt, "cannot be read", "corrupt")):  # fmt: skip
        proc, urls = serve(db)
        try:
            with browser_page(io.StringIO()) as (page, phase):
                open_page(page, urls["overview"])
                page.get_by_text(expect).first.wait_for(timeout=120_000)
                text = page.evaluate("() => document.body.innerText")
                assert "Traceback" not in text and "Error" not in text.replace("StoreError", "")
                if name == "empty":
                    assert page.get_by_role("button", name="Run the small suite").is_visible()
                no_source(page)
                screenshot(page, f"overview_{name}")
        finally:
            out = proc.printed + stop(proc)
        if name == "corrupt":
            assert "warning:" in out and "not a usable SQLite database" in out
    assert not (tmp_path / "empty.db").exists()  # the overview only read
