"""Interactive layer of mlx-explore: ipywidgets 8 + plotly ``FigureWidget`` on ``mlx_explore``'s
public API (the core never imports ipywidgets; these widgets never touch a framework or a child
process themselves). Works in JupyterLab, Voila and Colab (``enable_colab()`` turns on Colab's
custom widget manager, which ipywidgets 8 and plotly's ``FigureWidget`` need there).

A live side-by-side comparison in a notebook::

    from widgets import ComparisonPanel
    ComparisonPanel(frameworks=["torch", "jax", "tensorflow"])

Which framework for a use case, from this machine's standard suite (``mlx-explore suite`` first)::

    from widgets import DecisionGuide
    DecisionGuide(scenario="production")

Where a training step's time goes, by each framework's own profiler (``profile_steps`` runs)::

    from widgets import ProfileView
    ProfileView.from_store()
"""

from ._common import FRAMEWORK_COLORS, enable_colab, in_colab
from .code import CodeCompare, align_blocks, model_source
from .explorer import ResultsExplorer
from .guide import DecisionGuide
from .live import LiveCurves
from .panel import ComparisonPanel
from .parity import ParityPlot, relative_differences
from .profile import ProfileView
from .sweep import SweepPlot

__all__ = [
    "FRAMEWORK_COLORS", "CodeCompare", "ComparisonPanel", "DecisionGuide", "LiveCurves", "ParityPlot", "ProfileView",
    "ResultsExplorer", "SweepPlot", "align_blocks", "enable_colab", "in_colab", "model_source", "relative_differences",
]  # fmt: skip

enable_colab()
