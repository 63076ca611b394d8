"""The version of this package (a leaf module: it imports nothing from ``mlx_explore``).

``pyproject.toml`` is the one place the version is written; it is read here from the installed
distribution's metadata (``importlib.metadata``), so the two can never disagree.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    #: ``"0.1.0"``; ``"0+unknown"`` when this source tree is imported without being installed.
    __version__: str = version("mlx-explore")
except PackageNotFoundError:
    __version__ = "0+unknown"

__all__ = ["__version__"]
