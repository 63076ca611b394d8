"""Registry of the frameworks: which exist, which are installed, what each supports.

Nothing here imports a framework: installation is checked with ``importlib.util.find_spec`` and
versions with ``importlib.metadata``, so the parent process (a notebook kernel, the CLI) stays
clean. The framework itself is imported only inside its child process
(``mlx_explore.frameworks.<name>.trainer``), as Keras 3 does with its backends.

The registry knows what exists, not how runs are launched: asking a framework in a child process
which devices it sees is ``mlx_explore.child.probe``.

Every ``frameworks/<name>/`` package has the same modules: ``models.py`` (the model code people
read side by side) and ``trainer.py`` (the same module-level functions and ``Trainer`` class in
each): the adapter contract, ``frameworks/contract.py``, checked by ``frameworks/conformance.py``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass

from ..config import FRAMEWORKS


@dataclass(frozen=True)
class FrameworkInfo:
    """Static facts about one framework.

    Attributes:
        name: registry name (``torch``, ``jax``, ``tensorflow``, ``sklearn``).
        title: display name.
        modules: import names that must all be importable for the framework to run.
        distributions: pip distributions whose versions are recorded (first found wins per slot).
        models: model kinds it can express.
        devices: device kinds it can use.
    """

    name: str
    title: str
    modules: tuple[str, ...]
    distributions: tuple[str, ...]
    models: tuple[str, ...]
    devices: tuple[str, ...]


REGISTRY: dict[str, FrameworkInfo] = {
    "torch": FrameworkInfo("torch", "PyTorch", ("torch",), ("torch",), ("logreg", "mlp", "cnn"), ("cpu", "gpu")),
    "jax": FrameworkInfo(
        "jax", "JAX (Flax + Optax)", ("jax", "flax", "optax"), ("jax", "jaxlib", "flax", "optax"),
        ("logreg", "mlp", "cnn"), ("cpu", "gpu", "tpu"),
    ),
    "tensorflow": FrameworkInfo(
        "tensorflow", "TensorFlow (Keras 3)", ("tensorflow", "keras"), ("tensorflow", "tensorflow-cpu", "keras"),
        ("logreg", "mlp", "cnn"), ("cpu", "gpu"),
    ),
    "sklearn": FrameworkInfo("sklearn", "scikit-learn", ("sklearn",), ("scikit-learn",), ("logreg", "mlp"), ("cpu",)),
}  # fmt: skip
assert tuple(REGISTRY) == FRAMEWORKS

UNSUPPORTED_MODEL_REASON = {
    ("sklearn", "cnn"): "scikit-learn has no convolutional layers (MLPClassifier is dense only)",
}


def get(name: str) -> FrameworkInfo:
    """Facts about one framework.

    Raises:
        KeyError: unknown name; the message lists the known ones.
    """
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown framework {name!r}; allowed: {', '.join(REGISTRY)}") from None


def missing_modules(name: str) -> list[str]:
    """Import names of ``name`` that are not installed (empty: the framework can run)."""
    return [m for m in get(name).modules if not _findable(m)]


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as missing
        return False


def is_installed(name: str) -> bool:
    """True when every module the framework needs can be imported."""
    return not missing_modules(name)


def versions(name: str) -> dict[str, str]:
    """Installed versions of the framework's distributions (without importing them)."""
    out = {}
    for dist in get(name).distributions:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def unsupported_reason(name: str, model: str, device: str, precision: str = "fp32") -> str | None:
    """Why ``name`` cannot run ``model`` on ``device`` at ``precision`` (``None``: it can)."""
    if (name, model) in UNSUPPORTED_MODEL_REASON:
        return UNSUPPORTED_MODEL_REASON[(name, model)]
    if precision == "bf16" and name == "sklearn":
        return "scikit-learn computes in float32/float64 only; bf16 needs a deep-learning framework"
    if device != "auto" and device not in get(name).devices:
        return f"{get(name).title} does not run on {device} here (supported: {', '.join(get(name).devices)})"
    return None


def trainer_module(name: str):
    """Import and return ``mlx_explore.frameworks.<name>.trainer`` (this imports the framework)."""
    get(name)
    return importlib.import_module(f"mlx_explore.frameworks.{name}.trainer")
