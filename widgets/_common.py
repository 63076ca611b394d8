"""Shared pieces of the widget library: framework colours, Colab detection, a redraw throttle, the
hand-over of widget updates from background threads to the kernel's main thread, and
:func:`edit`, the one way the widgets change a plotly figure so that every view of it is right.

Figures that are right in every view
------------------------------------
plotly 6 and later make ``FigureWidget`` an ``anywidget`` whose state for the browser is two synced
traits, ``_widget_data`` and ``_widget_layout``. plotly copies the figure into them only when the
figure is built and when it is displayed (``_repr_mimebundle_``); later edits travel as transient
``_py2js_*`` messages that only the views existing at that moment apply (plotly.py
``basewidget.py``; its JavaScript model's ``do_data``/``do_layout`` handlers are empty, so a view
never redraws itself from a change of the synced traits). A view created later starts from the
synced traits: a Voila page (Voila runs the notebook first and the browser creates the views after,
from the kernel's widget state), a reloaded JupyterLab tab, a second display of the same output. It
showed the figure as first displayed, e.g. the quickstart's live curves with 0 traces after the
whole comparison ran.

The mechanism, chosen among three that were tried in ``tests/test_browser.py`` under CPU load:

* **Re-send the synced state when a batch of edits ends** (:func:`resend_state`, inside :func:`edit`).
  Views that exist ignore it (the empty ``do_data``) and keep following the edit messages; a view
  created later starts from the figure as it is. This is what the widgets do. It sends the whole
  figure, so :class:`~widgets.live.LiveCurves` re-sends only when its set of traces changes (a run
  starts or ends, a new axis), not at each of its up to 10 redraws a second: a view created in the
  middle of a run then has every trace and gets their points with the next redraw, which sends
  each trace's whole ``x``/``y``.
* A new ``FigureWidget`` built with the data, put into the widget's box: also right in every view,
  and what :class:`~widgets.panel.ComparisonPanel` does for its bar charts, which change once per
  comparison; but each new model carries plotly's JavaScript bundle (the anywidget ``_esm`` trait,
  about 5 MB) to the browser again, too much for a slider or a dropdown.
* Writing the synced traits without a change message (so only the kernel's copy is current): a new
  page is right, but a second view in the same page starts from the browser's copy, which plotly's
  JavaScript does not keep current (its model getters return deserialized copies); rejected.

Widgets use only ``mlx_explore``'s public API (docs/architecture.md, "Layers": the core never imports ipywidgets, the
widgets never reach into a framework or a child process).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Callable, Iterator

#: One colour per framework, the same in every widget and notebook (plotly's default qualitative
#: palette, https://plotly.com/python/discrete-color/).
FRAMEWORK_COLORS = {"torch": "#EF553B", "jax": "#636EFA", "tensorflow": "#FFA15A", "sklearn": "#00CC96",
                    # Keras 3 on a backend: a lighter relative of that backend's native colour.
                    "keras-jax": "#19D3F3", "keras-torch": "#FF6692", "keras-tensorflow": "#FECB52"}
#: Line dash per compile mode, so ``--mode both`` runs of one framework share a colour.
MODE_DASH = {"compiled": "solid", "eager": "dot", "": "solid"}


def color(framework: str) -> str:
    """The framework's colour (grey for an unknown name)."""
    return FRAMEWORK_COLORS.get(framework, "#7F7F7F")


def in_colab() -> bool:
    """True inside Google Colab (its kernel imports ``google.colab``)."""
    return "google.colab" in sys.modules


def enable_colab() -> bool:
    """On Colab, turn on the custom widget manager that ipywidgets 8 and anywidget need
    (https://colab.research.google.com/notebooks/widgets.ipynb); elsewhere do nothing.

    Returns:
        True if it was turned on.
    """
    if not in_colab():
        return False
    from google.colab import output  # type: ignore[import-not-found]

    output.enable_custom_widget_manager()
    return True


class Throttle:
    """Allows an action at most once per ``interval`` seconds: ``if throttle.ready(): redraw()``.

    ``clock`` is injectable for tests (default ``time.monotonic``).
    """

    def __init__(self, interval: float = 0.1, clock=time.monotonic):
        self.interval, self.clock = interval, clock
        self._last = -float("inf")

    def ready(self, force: bool = False) -> bool:
        """True (and the clock restarts) if ``interval`` has passed since the last True, or ``force``."""
        now = self.clock()
        if force or now - self._last >= self.interval:
            self._last = now
            return True
        return False


def kernel_loop():
    """The running IPython kernel's event loop (a tornado ``IOLoop`` on the main thread, ipykernel's
    ``kernel.io_loop``), or ``None`` outside a kernel (plain Python, pytest)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return None
    kernel = getattr(get_ipython(), "kernel", None)
    return getattr(kernel, "io_loop", None)


class MainThread:
    """Runs widget updates that background threads ask for on the kernel's main thread, in order.

    Widgets are not thread-safe: while the kernel's main thread applies a message from the browser
    to a widget (ipywidgets' ``set_state`` holds that widget's trait notifications), a change made
    by another thread is replayed later with the trait's value at that time. plotly's
    ``FigureWidget`` sends each edit as a trait set and at once reset to ``None``, so such an edit
    reaches the browser as ``None`` and is lost: a trace never added, a graph left empty. Every
    background thread of this package therefore calls :meth:`call`, which queues the update and
    wakes the kernel's loop (``IOLoop.add_callback``, the one thread-safe tornado call,
    https://www.tornadoweb.org/en/stable/ioloop.html). Outside a kernel there is no browser to race
    with and updates run at once.

    Args:
        loop: the loop to run updates on (default: :func:`kernel_loop` at construction, which must
            happen on the main thread, as a widget's construction does).
    """

    def __init__(self, loop=None):
        self.loop = loop if loop is not None else kernel_loop()
        self._pending: deque[tuple[Callable, tuple]] = deque()

    def call(self, fn: Callable, *args) -> None:
        """Run ``fn(*args)`` on the main thread: now if this is the main thread or there is no
        kernel loop (after any updates still queued), else as soon as the loop is free."""
        if self.loop is None or threading.current_thread() is threading.main_thread():
            self.drain()
            fn(*args)
            return
        self._pending.append((fn, args))
        self.loop.add_callback(self.drain)  # an empty drain costs nothing; a missed one strands an update

    def drain(self) -> int:
        """Run every queued update now (main thread only); returns how many ran."""
        ran = 0
        while self._pending:
            fn, args = self._pending.popleft()
            fn(*args)
            ran += 1
        return ran


@contextmanager
def edit(figure) -> Iterator:
    """Change a plotly ``FigureWidget`` so that every view shows the result, those that exist and
    those created later (see the module docstring for why and how)::

        with edit(self.figure):
            self.figure.data = ()
            self.figure.add_traces(traces)
            self.figure.layout.title = "..."

    The edits are batched (``figure.batch_update()``): the views that exist get them as one message
    when the block ends. Then :func:`resend_state` makes the state a later view starts from equal to
    the figure. A block inside another ``edit`` (or ``batch_update``) of the same figure leaves both
    steps to the outer one. Call it on the kernel's main thread (:class:`MainThread`).
    """
    if figure._in_batch_mode:
        yield figure
        return
    with figure.batch_update():
        yield figure
    resend_state(figure)


def resend_state(figure) -> None:
    """Send a plotly ``FigureWidget``'s whole current data and layout as its synced state, as
    displaying it does (plotly's ``_repr_mimebundle_``). A view the browser creates or renders again
    later starts from that state; views that exist ignore it (they follow plotly's edit messages).
    Plotly syncs its state only when a figure is built or displayed, so without this a view rendered
    after the figure changed showed the figure as first displayed (e.g. no traces). Sends the whole
    figure: call it when a batch of edits ends (:func:`edit` does), not per live redraw."""
    from copy import deepcopy

    figure._widget_data = deepcopy(figure._data)
    figure._widget_layout = deepcopy(figure._layout)


# ---------------------------------------------------------------------------- one plotly bundle per page

#: Environment variable: a URL, relative to the page, where plotly's widget bundle is served
#: (``mlx-explore dashboard`` sets it for its kernels). Unset: plotly's own ``FigureWidget``.
PLOTLY_BUNDLE_VAR = "MLX_EXPLORE_PLOTLY_BUNDLE"
_SHIM = """// mlx-explore: import plotly's widget bundle from {url!r} (relative to the page), so that every
// figure of the page shares one download and one evaluation of it (the browser caches the module by URL).
const bundle = await import(new URL({url!r}, window.location.href).href);
export default bundle.default;
export const FigureModel = bundle.FigureModel;
export const FigureView = bundle.FigureView;
"""


def _figure_class():
    """``go.FigureWidget``, or with :data:`PLOTLY_BUNDLE_VAR` set a subclass whose anywidget module is a
    6-line shim that imports the bundle from that URL. Why: each plotly ``FigureWidget`` carries
    plotly's whole JavaScript bundle (its anywidget ``_esm``, about 5 MB) in its state, and anywidget
    imports each model's copy on its own; a dashboard page with five figures then spent about 1 s
    per figure in the browser on a 2-core machine. Served once and imported by URL, it costs one."""
    import plotly.graph_objects as go

    url = os.environ.get(PLOTLY_BUNDLE_VAR)
    if not url:
        return go.FigureWidget

    class FigureWidget(go.FigureWidget):
        _esm = _SHIM.format(url=url)

    return FigureWidget


def figure_widget(*args, **kwargs):
    """A plotly ``FigureWidget`` (same arguments): every figure of this package is made here, so that
    a dashboard page loads plotly's bundle once (:func:`_figure_class`)."""
    global _FIGURE_CLASS
    if _FIGURE_CLASS is None:
        _FIGURE_CLASS = _figure_class()
    return _FIGURE_CLASS(*args, **kwargs)


_FIGURE_CLASS = None
