"""A real browser: Voila serves a notebook with a ComparisonPanel, headless Chromium (Debian's
package, driven by Playwright) clicks Run; the plotly graph must gain data points and the browser
console must stay free of errors."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTEBOOK = ROOT / "tests" / "browser" / "panel.ipynb"
LOCAL = re.compile(r"^(https?|wss?)://127\.0\.0\.1[:/]|^(data|blob|about):")
CDN_CSS = "cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free"

# True when some plotly graph on the page holds at least one trace with points.
HAS_POINTS = """() => [...document.querySelectorAll('.js-plotly-plot')]
    .some(g => (g.data || []).some(t => t.x && t.x.length > 0))"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"voila exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"voila did not answer at {url} within {timeout} s")


@pytest.fixture
def voila(tmp_path):
    port = _free_port()
    log = open(tmp_path / "voila.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "voila", str(NOTEBOOK), f"--port={port}", "--no-browser", "--Voila.ip=127.0.0.1"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ}, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_http(url, proc, timeout=120)
        yield url, log
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()


def test_run_in_voila_draws_live_points_without_console_errors(voila):
    from playwright.sync_api import sync_playwright

    url, log = voila
    assert Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM}: .ci/run installs Debian's 'chromium'"
    errors: list[str] = []
    phase = ["loading"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            # Voila's page template links Font Awesome's CSS from a CDN, which this offline machine
            # cannot reach: that request, and the console error its failure logs, are expected. No
            # other request may leave localhost, and no other console error is allowed. (Listening
            # only: intercepting with page.route slows every request past anywidget's 2 s limit.)
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not LOCAL.match(r.url) else None)

            def on_console(m):
                if m.type == "error" and not (CDN_CSS in (m.location or {}).get("url", "") and "Failed to load resource" in m.text):
                    errors.append(f"{phase[0]}: console: {m.text} ({(m.location or {}).get('url', '')})")

            page.on("console", on_console)
            page.on("pageerror", lambda e: errors.append(f"{phase[0]}: page error: {e}"))
            page.goto(url, timeout=180_000)
            run = page.get_by_role("button", name="Run")
            run.wait_for(timeout=180_000)
            # The kernel is live once the background device probe has reported back to the page.
            page.get_by_text("sees:").first.wait_for(timeout=180_000)
            assert not page.evaluate(HAS_POINTS), "the graph has points before Run was pressed"
            phase[0] = "running"
            run.click()
            page.locator(".mlx-message", has_text="Running").wait_for(timeout=30_000)
            page.wait_for_function(HAS_POINTS, timeout=180_000)
            page.locator(".mlx-message", has_text="Done:").wait_for(timeout=180_000)
            page.locator("table.mlx-results tbody tr").nth(1).wait_for(timeout=30_000)
            count = """() => [...document.querySelectorAll('.js-plotly-plot')]
                .map(g => (g.data || []).reduce((n, t) => n + (t.x ? t.x.length : 0), 0))"""
            # The last redraws reach the page asynchronously (throttled to 10 a second, then the
            # widget messages): on a loaded machine "Done:" can be shown before they are drawn.
            try:
                page.wait_for_function(f"() => ({count})()[0] > 10", timeout=30_000)
            except Exception:
                pass  # the assertion below reports what the page shows
            points = page.evaluate(count)
            traces = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
                .map(g => (g.data || []).map(t => `${t.name}: ${t.x ? t.x.length : 0}`))""")
            # The live curves (the first graph) hold the runs' steps; the bar charts one bar per run
            # and chart. (A graph left empty by lost widget messages once hid behind the bars here.)
            assert len(points) == 2 and points[0] > 10 and points[1] == 6, (points, traces)
            assert page.locator("table.mlx-results tbody tr").count() == 2
        finally:
            browser.close()
    assert all(CDN_CSS in u for u in outside), outside
    log.seek(0)
    assert not errors, "\n".join(errors) + "\n--- voila log ---\n" + log.read()[-3000:]
