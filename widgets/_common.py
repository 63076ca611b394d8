"""Shared pieces of the widget library: framework colours, Colab detection, a redraw throttle.

Widgets use only ``mlx_explore``'s public API (docs/architecture.md, "Layers": the core never imports ipywidgets, the
widgets never reach into a framework or a child process).
"""

from __future__ import annotations

import sys
import time

#: One colour per framework, the same in every widget and notebook (plotly's default qualitative
#: palette, https://plotly.com/python/discrete-color/).
FRAMEWORK_COLORS = {"torch": "#EF553B", "jax": "#636EFA", "tensorflow": "#FFA15A", "sklearn": "#00CC96"}
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
