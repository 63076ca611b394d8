"""mlx-explore: the same models in PyTorch, JAX, TensorFlow and scikit-learn, measured honestly.

Headless core: usable from the CLI, papermill, tests and other programs; never imports ipywidgets.

>>> import mlx_explore
>>> result = mlx_explore.compare(model="mlp", dataset="digits", epochs=10)   # doctest: +SKIP
>>> result.metrics[["status", "test_accuracy", "samples_per_s", "compile_s"]]  # doctest: +SKIP
"""

__version__ = "0.1.0"

from .config import ConfigError, RunConfig  # noqa: E402
from .runner import Comparison, compare, environment, iter_compare  # noqa: E402

__all__ = ["Comparison", "ConfigError", "RunConfig", "compare", "environment", "iter_compare", "__version__"]
