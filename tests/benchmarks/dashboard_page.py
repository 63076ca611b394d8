"""How fast the overview dashboard opens in a real browser, on a store of 10,000 runs and on one of 100.

Target (issue 15): the overview renders in under 5 s after the page opens, with a store of 10,000 runs.
This builds both stores (``dashboard_store.build_store``), serves each with ``mlx-explore dashboard``'s
own server (``mlx_explore.dashboard.start``: template ``mlx``, one pre-heated kernel per page, plotly's
bundle served once), opens the overview ``--repeat`` times in Debian's Chromium (Playwright,
``executable_path``) and times, from the navigation:

* ``html``: the page's HTML is loaded (Voila has run the notebook in the pre-heated kernel);
* ``rendered``: the recommendation sentence is shown and every graph (ranking, accuracy against
  throughput, trend, profile) is drawn with points.

It prints the median of each and the ratio 10,000-run / 100-run store: the ratio says whether the page
grows with the store (the loaders read summaries, never curves; ``dashboard_store.py`` times them one by
one). The absolute figure is for this machine at this moment; ``--check`` exits 1 if the 10,000-run
median exceeds 5 s.

    python tests/benchmarks/dashboard_page.py [--runs 10000] [--repeat 3] [--check]

Measured on the development machine (2 shared CPU cores, 2026-11-23, the tests of another session not
running): see the README, "Dashboards".
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dashboard_store import build_store  # noqa: E402

from mlx_explore import dashboard  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: True when every plotly graph on the page has points and there are at least ``n`` of them.
DRAWN = """n => { const g = [...document.querySelectorAll('.js-plotly-plot')];
    return g.length >= n && g.every(x => (x.data || []).some(t => t.x && t.x.length > 0)); }"""


def time_page(url: str, repeat: int, graphs: int = 4) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {"html": [], "rendered": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])  # fmt: skip
        try:
            for i in range(repeat):
                time.sleep(8)  # Voila refills its pool of pre-heated kernels after each page
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                t0 = time.perf_counter()
                page.goto(url, timeout=180_000)
                out["html"].append(time.perf_counter() - t0)
                page.locator(".mlx-headline").wait_for(timeout=180_000)
                page.wait_for_function(DRAWN, arg=graphs, timeout=180_000)
                out["rendered"].append(time.perf_counter() - t0)
                page.close()
        finally:
            browser.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--check", action="store_true", help="exit 1 if the big store's median exceeds 5 s")
    args = ap.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="dashboard-page-"))
    medians = {}
    try:
        for runs in (args.small, args.runs):
            db = build_store(folder / f"runs-{runs}.db", runs)
            server = dashboard.start(db)
            try:
                times = time_page(server.urls["overview"], args.repeat)
            finally:
                server.stop()
            medians[runs] = {k: statistics.median(v) for k, v in times.items()}
            print(f"{runs:>6} runs: html {medians[runs]['html']:.2f} s, rendered {medians[runs]['rendered']:.2f} s "
                  f"(each of {args.repeat}: {', '.join(f'{t:.2f}' for t in times['rendered'])})", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    big, small = medians[args.runs], medians[args.small]
    print(f"ratio {args.runs}/{args.small} runs: html {big['html'] / small['html']:.2f}, "
          f"rendered {big['rendered'] / small['rendered']:.2f}")  # fmt: skip
    print(f"target: rendered < 5 s with {args.runs} runs: {'met' if big['rendered'] < 5 else 'NOT met'}")
    return 1 if args.check and big["rendered"] >= 5 else 0


if __name__ == "__main__":
    sys.exit(main())
