"""The Voila template `mlx` (share/jupyter/voila/templates/mlx) loads nothing from another host.

Voila's own `lab` template links Font Awesome's CSS from cdn.jsdelivr.net, its tree and error pages
Font Awesome 4.5 from there too, and nbconvert's Mermaid loader imports mermaid.js from
cdnjs.cloudflare.com. `mlx` drops all three; Voila's own bundle already has Font Awesome 5.15.4 and
MathJax 3. One Voila server for the module serves a small notebook (an icon button per kind of
Font Awesome name, math, a Mermaid block) and its directory, with ``--template=mlx``:

- every page's HTML (tree, classic tree, notebook, 404) names no URL outside 127.0.0.1;
- in Chromium the icons are drawn with Font Awesome's font, the math is typeset, and no request
  leaves 127.0.0.1; a screenshot goes to tests/artifacts/voila_template.png.
"""

from __future__ import annotations

import filecmp
import re
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from .conftest import ROOT
from .test_browser import CHROMIUM, CHROMIUM_ARGS, LOCAL, voila_server

TEMPLATE = ROOT / "share" / "jupyter" / "voila" / "templates" / "mlx"
ARTIFACTS = ROOT / "tests" / "artifacts"
#: Hosts that Voila, nbconvert or widget front ends have loaded assets from: none may be named anywhere.
CDN_HOSTS = ("cdn.jsdelivr.net", "cdnjs.cloudflare.com", "unpkg.com", "fonts.googleapis.com", "cdn.plot.ly")
#: Attributes whose value the browser fetches (or navigates to).
URL_ATTRIBUTES = {"src", "href", "srcset", "action", "poster", "data", "xlink:href", "formaction", "background"}
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""")
NOTEBOOK_SOURCE = [
    ("markdown", "# Offline\n\nMath: $e^{i\\pi} + 1 = 0$, and\n\n$$\\sum_{k=1}^n k = \\frac{n(n+1)}{2}$$\n\n"
                 "```mermaid\ngraph LR; a-->b;\n```"),
    ("code", "import ipywidgets as W\n"
             "# play: a Font Awesome 5 name; refresh: a 4.x name that only the v4 shims draw\n"
             "W.HBox([W.Button(description=d, icon=i) for d, i in [('Run', 'play'), ('Stop', 'stop'), ('Refresh', 'refresh')]])"),
]  # fmt: skip


def _notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    new = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    nb.cells = [new[kind](source) for kind, source in NOTEBOOK_SOURCE]
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``(base_url, log)``: Voila with ``--template=mlx`` serving a directory holding ``offline.ipynb``."""
    folder = tmp_path_factory.mktemp("voila-template")
    _notebook(folder / "offline.ipynb")
    with voila_server(folder, folder) as (url, log):
        yield url, log


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.read().decode()
    except urllib.error.HTTPError as e:  # the 404 page is a page too
        return e.read().decode()


class _Urls(HTMLParser):
    """Every URL a page names in a fetched attribute, an inline style or a <style> sheet."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self._in_style = tag == "style"
        for name, value in attrs:
            if value and name in URL_ATTRIBUTES:
                self.urls += [u.split()[0] for u in value.split(",") if u.strip()] if name == "srcset" else [value]
            elif value and name == "style":
                self.urls += [a or b for a, b in CSS_URL.findall(value)]

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.urls += [a or b for a, b in CSS_URL.findall(data)]


def _outside(urls: list[str]) -> list[str]:
    """The URLs that point at another host (relative, 127.0.0.1, data: and fragment URLs stay here)."""
    here = re.compile(r"^(https?|wss?)://(127\.0\.0\.1|localhost)[:/]|^(data|blob|about|javascript):|^#")
    return [u for u in urls if re.match(r"^([a-z][a-z0-9+.-]*:|//)", u, re.I) and not here.match(u)]


def test_voila_finds_this_checkouts_template():
    from voila.paths import collect_template_paths

    found = Path(collect_template_paths(["voila", "nbconvert"], "mlx", prune=True)[0])  # the nearest of its hierarchy
    assert found.name == "mlx", f"Voila finds no template `mlx` (the nearest is {found}): run `make setup`"
    names = sorted(p.name for p in TEMPLATE.iterdir())
    _, differ, missing = filecmp.cmpfiles(TEMPLATE, found, names, shallow=False)
    assert found.resolve() == TEMPLATE.resolve() or not (differ or missing), (
        f"Voila's template `mlx` is {found}, not this checkout's {TEMPLATE} ({differ + missing} differ): run `make setup`"
    )


@pytest.mark.parametrize("page", ["", "?classic-tree=true", "voila/render/offline.ipynb", "voila/render/missing.ipynb"])
def test_pages_name_no_url_outside_localhost(served, page):
    url, log = served
    html = _get(url + page)
    parser = _Urls()
    parser.feed(html)
    assert parser.urls, f"no URL found in {page!r}: is the page empty?\n{html[:500]}"
    if page.endswith("offline.ipynb"):
        assert "/voila/templates/mlx/static/" in html, "the page was not rendered with the template `mlx`"
        assert "Offline" in html, "the notebook was not rendered"
    assert not _outside(parser.urls), f"{page!r} links outside 127.0.0.1: {_outside(parser.urls)}"
    named = {host: html[max(0, i - 80) : i + 80] for host in CDN_HOSTS if (i := html.find(host)) >= 0}
    assert not named, f"{page!r} names a CDN: {named}"


def test_icons_and_math_render_with_no_request_leaving_localhost(served):
    from playwright.sync_api import sync_playwright

    url, log = served
    assert Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM}: .ci/run installs Debian's 'chromium'"
    outside, errors, phase = [], [], ["tree"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 500})
            page.on("request", lambda r: outside.append(r.url) if not LOCAL.match(r.url) else None)
            # Errors count on the notebook's page only: Voila 0.5.13's tree page logs its own with any
            # template (widget plugins that find no kernel, a 404 from /api/kernels).
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 and phase[0] == "notebook" else None)
            page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" and phase[0] == "notebook" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}") if phase[0] == "notebook" else None)
            page.goto(url, timeout=60_000)  # the notebook tree
            page.get_by_text("offline.ipynb").first.wait_for(timeout=60_000)
            phase[0] = "notebook"
            page.goto(url + "voila/render/offline.ipynb", timeout=120_000)
            page.get_by_role("button", name="Refresh").wait_for(timeout=120_000)
            page.wait_for_function("() => document.querySelectorAll('mjx-container').length >= 2", timeout=30_000)
            page.wait_for_function("() => document.fonts.check('900 16px \"Font Awesome 5 Free\"')", timeout=30_000)
            icons = page.evaluate("""() => [...document.querySelectorAll('button i.fa')].map(i => {
                const s = getComputedStyle(i, '::before'), r = i.getBoundingClientRect();
                return {cls: i.className, font: s.fontFamily, glyph: s.content, width: r.width}; })""")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=ARTIFACTS / "voila_template.png")
        finally:
            browser.close()
    assert len(icons) == 3, icons
    for icon in icons:  # a glyph from Font Awesome's font, drawn with some width
        assert "Font Awesome 5" in icon["font"] and icon["glyph"] not in ("", "none", "normal") and icon["width"] > 4, icons
    assert not outside, f"requests left 127.0.0.1: {outside}"
    log.seek(0)
    assert not errors, "\n".join(errors) + "\n--- voila log ---\n" + log.read()[-3000:]
