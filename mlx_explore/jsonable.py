"""Make nested results strict-JSON-ready: the one NaN-to-``None`` walker of the package.

Both the results JSON (``Comparison.to_json``) and the results store (``results.py``) write strict
JSON, which has no ``NaN`` or ``Infinity``: a figure that is not finite is written as ``null``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def jsonable(x: Any) -> Any:
    """``x`` with NumPy values made Python ones and NaN/inf made ``None``, recursively.

    Args:
        x: any value; dicts (keys become ``str``), lists and tuples (become lists), NumPy arrays
            (become lists) and NumPy scalars are walked; anything else is returned as it is.

    Returns:
        A value ``json.dumps(..., allow_nan=False)`` accepts, if every leaf is a ``str``, ``int``,
        ``float``, ``bool``, ``None`` or NumPy number (other leaves are returned unchanged). Never raises.
    """
    if isinstance(x, np.ndarray):
        x = x.tolist()
    elif isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    return x
