"""mlx-explore: the same models in PyTorch, JAX, TensorFlow and scikit-learn, measured honestly.

Headless core: usable from the CLI, papermill, tests and other programs; never imports ipywidgets
(``tests/test_layering.py`` checks it). The map of its modules is ``docs/architecture.md``.

>>> import mlx_explore
>>> result = mlx_explore.compare(model="mlp", dataset="digits", epochs=10)   # doctest: +SKIP
>>> result.metrics[["status", "test_accuracy", "samples_per_s", "compile_s"]]  # doctest: +SKIP
"""

from .comparison import Comparison
from .config import ConfigError, RunConfig
from .env import environment
from .runner import ComparisonInterrupted, compare, iter_compare
from .sweeps import sweep
from .version import __version__

__all__ = [
    "Comparison", "ComparisonInterrupted", "ConfigError", "RunConfig", "compare", "environment", "iter_compare",
    "sweep", "__version__",
]  # fmt: skip
