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

from ..config import DEEP_FRAMEWORKS, FRAMEWORKS, GBDT_FRAMEWORKS

GBDT_ONLY = tuple(f for f in GBDT_FRAMEWORKS if f != "sklearn")
"""The columns that train gradient-boosted trees only (installed by the ``gbdt`` extra)."""


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
        package: the sub-package ``frameworks/<package>/`` holding its ``models.py`` and
            ``trainer.py`` (the name itself where empty; ``keras`` for the three Keras columns).
        code: the sub-package whose ``models.py`` is its model code (``package`` where empty;
            ``keras`` for TensorFlow too: the ``tensorflow`` column trains the Keras model code with
            a hand-written TensorFlow loop).
        keras_backend: for a Keras column, the backend ``frameworks/keras/`` runs on (set as
            ``KERAS_BACKEND`` before Keras is imported, https://keras.io/getting_started/).
    """

    name: str
    title: str
    modules: tuple[str, ...]
    distributions: tuple[str, ...]
    models: tuple[str, ...]
    devices: tuple[str, ...]
    package: str = ""
    code: str = ""
    keras_backend: str | None = None

    def __post_init__(self):
        if not self.package:
            object.__setattr__(self, "package", self.name)
        if not self.code:
            object.__setattr__(self, "code", self.package)


#: The models every deep-learning column expresses.
_DEEP = ("logreg", "mlp", "cnn", "gru", "transformer")

REGISTRY: dict[str, FrameworkInfo] = {
    "torch": FrameworkInfo("torch", "PyTorch", ("torch",), ("torch",), _DEEP, ("cpu", "gpu")),
    "jax": FrameworkInfo(
        "jax", "JAX (Flax + Optax)", ("jax", "flax", "optax"), ("jax", "jaxlib", "flax", "optax"),
        _DEEP, ("cpu", "gpu", "tpu"),
    ),
    "tensorflow": FrameworkInfo(
        "tensorflow", "TensorFlow (GradientTape loop)", ("tensorflow", "keras"), ("tensorflow", "tensorflow-cpu", "keras"),
        _DEEP, ("cpu", "gpu"), code="keras", keras_backend="tensorflow",
    ),
    "sklearn": FrameworkInfo("sklearn", "scikit-learn", ("sklearn",), ("scikit-learn",), ("logreg", "mlp", "gbdt"), ("cpu",)),
    # Keras 3's own training loop (model.compile + model.fit) on each backend, beside the native code.
    "keras-jax": FrameworkInfo(
        "keras-jax", "Keras 3 (fit) on JAX", ("keras", "jax"), ("keras", "jax", "jaxlib"),
        _DEEP, ("cpu", "gpu", "tpu"), package="keras", keras_backend="jax",
    ),
    "keras-torch": FrameworkInfo(
        "keras-torch", "Keras 3 (fit) on PyTorch", ("keras", "torch"), ("keras", "torch"),
        _DEEP, ("cpu", "gpu"), package="keras", keras_backend="torch",
    ),
    "keras-tensorflow": FrameworkInfo(
        "keras-tensorflow", "Keras 3 (fit) on TensorFlow", ("keras", "tensorflow"), ("keras", "tensorflow", "tensorflow-cpu"),
        _DEEP, ("cpu", "gpu"), package="keras", keras_backend="tensorflow",
    ),
    # Gradient-boosted trees only (model "gbdt"): the two libraries tabular practitioners reach for.
    "xgboost": FrameworkInfo("xgboost", "XGBoost (hist)", ("xgboost",), ("xgboost-cpu", "xgboost"), ("gbdt",), ("cpu", "gpu")),
    "lightgbm": FrameworkInfo("lightgbm", "LightGBM", ("lightgbm",), ("lightgbm",), ("gbdt",), ("cpu",)),
}  # fmt: skip
assert tuple(REGISTRY) == FRAMEWORKS

UNSUPPORTED_MODEL_REASON = {
    ("sklearn", "cnn"): "scikit-learn has no convolutional layers (MLPClassifier is dense only)",
    ("sklearn", "gru"): "scikit-learn has no recurrent layers (MLPClassifier is dense only)",
    ("sklearn", "transformer"): "scikit-learn has no attention layers (MLPClassifier is dense only)",
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


def install_hint(name: str) -> str:
    """The command that installs what ``name`` needs (``pip install 'mlx-explore[torch]'``; for a
    Keras column, Keras and its backend: ``pip install keras torch``)."""
    info = get(name)
    if name in GBDT_ONLY:
        return "pip install 'mlx-explore[gbdt]'"
    if info.keras_backend and info.package == "keras":
        return "pip install " + " ".join(dict.fromkeys(info.distributions[:2]))
    return f"pip install 'mlx-explore[{name}]'"


def unsupported_reason(name: str, model: str, device: str, precision: str = "fp32") -> str | None:
    """Why ``name`` cannot run ``model`` on ``device`` at ``precision`` (``None``: it can)."""
    if (name, model) in UNSUPPORTED_MODEL_REASON:
        return UNSUPPORTED_MODEL_REASON[(name, model)]
    if model not in get(name).models:
        return f"{get(name).title} does not train model {model!r} (it trains: {', '.join(get(name).models)})"
    if precision == "bf16" and name not in DEEP_FRAMEWORKS:
        return f"{get(name).title} computes in float32/float64 only; bf16 needs a deep-learning framework"
    if device != "auto" and device not in get(name).devices:
        return f"{get(name).title} does not run on {device} here (supported: {', '.join(get(name).devices)})"
    return None


def trainer_module(name: str):
    """Import and return ``mlx_explore.frameworks.<package>.trainer`` (this imports the framework).

    For a framework with a Keras backend, ``KERAS_BACKEND`` is set first (Keras reads it once, at
    its import).

    Raises:
        KeyError: unknown name.
        RuntimeError: Keras is already imported in this process on another backend (one backend per
            process: each run has its own child process).
    """
    info = get(name)
    if info.keras_backend:
        import sys

        keras = sys.modules.get("keras")
        if keras is not None and keras.backend.backend() != info.keras_backend:
            raise RuntimeError(f"{name} needs Keras on {info.keras_backend}, but this process imported Keras on "
                               f"{keras.backend.backend()}; run it in its own process")  # fmt: skip
        import os

        os.environ["KERAS_BACKEND"] = info.keras_backend
    return importlib.import_module(f"mlx_explore.frameworks.{info.package}.trainer")
