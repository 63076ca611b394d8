"""One validated object for a comparison: :class:`RunConfig`.

Every entry point (the CLI, :func:`mlx_explore.compare`, the widgets, papermill notebooks)
builds a ``RunConfig``; bad values fail here, before any child process starts, with a
:class:`ConfigError` that names the field and the allowed values.

Validation uses pydantic v2 (https://docs.pydantic.dev/). Defaults are chosen so that the MLP on
``digits`` reaches >= 0.95 test accuracy in 10 epochs in every framework (checked by the test
suite), following common practice: Adam with lr 1e-3 (Kingma & Ba, 2015, section 2), batches of 32.
"""

from __future__ import annotations

import math
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MODELS = ("logreg", "mlp", "cnn", "gru", "transformer", "gbdt")
#: Models that read each sample as a sequence ``(T, D)``: image rows as time steps, or ``adding``.
SEQUENCE_MODELS = ("gru", "transformer")
OPTIMIZERS = ("sgd", "momentum", "adam")
DEVICES = ("auto", "cpu", "gpu", "tpu")
MODES = ("eager", "compiled", "both")
PRECISIONS = ("fp32", "bf16")
ACTIVATIONS = ("relu", "tanh", "sigmoid")
#: Every framework column: the four native ones, then Keras 3's own loop on each of its backends.
FRAMEWORKS = ("torch", "jax", "tensorflow", "sklearn", "keras-jax", "keras-torch", "keras-tensorflow")
FRAMEWORKS = FRAMEWORKS + ("xgboost", "lightgbm")
#: The columns a comparison runs unless told otherwise: each framework's own idiomatic code.
DEFAULT_FRAMEWORKS = FRAMEWORKS[:4]
#: The columns that can train gradient-boosted trees (``model="gbdt"``), and its default columns:
#: scikit-learn's ``HistGradientBoostingClassifier``, XGBoost (``tree_method="hist"``), LightGBM.
GBDT_FRAMEWORKS = ("sklearn", "xgboost", "lightgbm")
#: The deep-learning columns (every model but ``gbdt``; scikit-learn runs ``logreg`` and ``mlp`` too).
DEEP_FRAMEWORKS = ("torch", "jax", "tensorflow", "keras-jax", "keras-torch", "keras-tensorflow")
#: Learning rate (shrinkage) of ``gbdt`` when none is given: LightGBM's and scikit-learn's default
#: (https://lightgbm.readthedocs.io/en/latest/Parameters.html, ``learning_rate``; XGBoost's ``eta`` is 0.3).
GBDT_LR = 0.1
# Kept here (not imported from data.py) so validating a config never imports scikit-learn.
DATASETS = ("digits", "breast_cancer", "wine", "synthetic", "mnist", "fashion_mnist", "cifar10", "adding", "covertype")
IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")
#: Data sets a sequence model can read: images row by row (``T = H`` steps of ``W * C`` features),
#: and ``adding``, a synthetic task that needs memory (``seq_len`` steps of 2 features).
SEQUENCE_DATASETS = IMAGE_DATASETS + ("adding",)
#: Most time steps of the ``adding`` task.
MAX_SEQ_LEN = 10_000

# Upper bounds: far beyond any sensible run, low enough that a typo (an extra zero or three) is
# caught before anything is allocated or a week of compute is queued.
#: Most epochs of one run. The batch order is made one epoch at a time, so memory does not grow
#: with epochs; the logged loss curve does, which ``log_every`` thins.
MAX_EPOCHS = 1_000_000
#: Widest hidden layer, and most hidden layers, of the MLP.
MAX_WIDTH = 1_000_000
MAX_LAYERS = 64
#: Size limits of the ``synthetic`` data set (``sklearn.datasets.make_classification``).
MAX_SAMPLES = 100_000_000
MAX_FEATURES = 100_000
MAX_CLASSES = 1_000
#: Longest ``timeout_s``: one week [s].
MAX_TIMEOUT_S = 7 * 24 * 3600.0

#: Samples, classes and official test-split size (``None``: split here) of each data set with a
#: fixed size (``synthetic`` takes ``n_samples``/``n_classes``). Sources: scikit-learn's toy data
#: sets (https://scikit-learn.org/stable/datasets/toy_dataset.html), MNIST, Fashion-MNIST, CIFAR-10.
DATASET_FACTS: dict[str, tuple[int, int, int | None]] = {
    "digits": (1797, 10, None),
    "breast_cancer": (569, 2, None),
    "wine": (178, 3, None),
    "mnist": (70000, 10, 10000),
    "fashion_mnist": (70000, 10, 10000),
    "cifar10": (60000, 10, 10000),
    "covertype": (581012, 7, None),
}


def split_sizes(config: "RunConfig") -> dict[str, int]:
    """Samples in each split the config will produce, by arithmetic alone (nothing is loaded).

    Mirrors ``data.load_dataset``: a stratified test split of ``test_fraction`` (or the official
    test split), then a validation split of ``val_fraction`` of all samples from the rest, each
    rounded up as scikit-learn's ``train_test_split`` rounds its test share
    (``sklearn.model_selection._split._validate_shuffle_split``).

    Returns:
        ``{"train", "val", "test", "classes"}`` [samples; classes].
    """
    own = (config.n_samples, 2 if config.dataset == "adding" else config.n_classes, None)
    n, classes, official = DATASET_FACTS.get(config.dataset, own)
    if official is not None:
        n_test, n_rest = official, n - official
        n_val = math.ceil(config.val_fraction * n_rest)
    else:
        n_test = math.ceil(config.test_fraction * n)
        n_rest = n - n_test
        n_val = math.ceil(config.val_fraction / (1 - config.test_fraction) * n_rest)
    return {"train": n_rest - n_val, "val": n_val, "test": n_test, "classes": classes}


class ConfigError(ValueError):
    """A configuration value is not allowed.

    Attributes:
        field: the name of the offending field (``"batch_size"``, ``"frameworks"``, ...).
        message: what is wrong and which values are allowed.
    """

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class RunConfig(BaseModel):
    """Everything that defines one comparison. Immutable; every field is recorded with the results.

    Fields (units in brackets):
        model: ``logreg`` (softmax regression), ``mlp``, ``cnn`` (LeNet-style, image data sets),
            ``gru`` (one GRU layer, logits from the last hidden state), ``transformer`` (a 2-layer
            pre-norm encoder, mean pooling) on :data:`SEQUENCE_DATASETS`, or ``gbdt``
            (gradient-boosted trees, :data:`GBDT_FRAMEWORKS`). ``models.py`` defines each.
        dataset: one of :data:`DATASETS`.
        frameworks: subset of :data:`FRAMEWORKS`, run in this order, one child process each (default
            :data:`DEFAULT_FRAMEWORKS`, the four native columns; the Keras ones are asked for by name;
            for ``gbdt`` the default is :data:`GBDT_FRAMEWORKS`).
        epochs: passes over the training split (>= 1).
        batch_size: samples per step (>= 1, at most the training split); incomplete batches are
            dropped so every framework takes exactly the same steps.
        lr: learning rate (> 0); default 1e-3, and :data:`GBDT_LR` (0.1) for ``gbdt`` (its shrinkage).
        optimizer: ``sgd``, ``momentum`` (heavy ball, PyTorch convention) or ``adam``.
        momentum: momentum coefficient for ``momentum`` (0 <= m < 1).
        hidden: MLP hidden layer widths, e.g. ``(256, 256)``; for ``gru`` the first is the hidden
            state's size, for ``transformer`` the model width ``d_model`` (feed-forward ``4 d_model``).
        activation: hidden activation of the MLP: ``relu``, ``tanh`` or ``sigmoid``.
        seed: seeds the split, the batch order and the initial weights.
        device: ``auto`` (an accelerator where the framework sees one, else CPU), ``cpu``,
            ``gpu`` or ``tpu``.
        mode: ``eager``, ``compiled`` (``torch.compile``, ``jax.jit``,
            ``tf.function(jit_compile=True)``) or ``both`` (one run per mode); scikit-learn has one
            mode and runs once.
        precision: ``fp32`` (TF32 off on NVIDIA GPUs, so fp32 means fp32) or ``bf16`` (bfloat16
            compute with float32 parameters: autocast, Flax ``dtype``, Keras ``mixed_bfloat16``).
        threads: intra-op threads per framework (None: all cores); equal for every framework.
            The child is also pinned to that many cores (``sched_setaffinity``) where the OS allows.
        repeat: runs per framework and mode (>= 1); with 2 or more the result reports whether the
            loss curves were bitwise identical.
        deterministic: turn on each framework's determinism switches
            (``torch.use_deterministic_algorithms``, ``tf.config.experimental.enable_op_determinism``,
            ``--xla_gpu_deterministic_ops``).
        latency_steps: calls timed in the per-step latency and batch-1 inference phases (0: skip
            both phases). 200 gives a p99 between the two slowest calls.
        export: ``onnx``: after the measured phases, export the trained model to ONNX with its
            framework's converter and time it in ONNX Runtime beside the native inference figures
            (``deploy.py``; the file is kept in ``~/.mlx_explore/models/<run_id>/model.onnx``);
            ``none`` (default): no export.
        profile_steps: after every measured phase, profile this many training steps with the
            framework's own profiler (``profiling.py``; 0: off). At most one epoch's steps.
        log_every: the training loss is reported every ``log_every`` steps (1: every step).
        val_fraction, test_fraction: shares of the data held out (stratified).
        n_samples, n_features, n_classes: size of the ``synthetic`` data set (``n_samples`` also
            of ``adding``, which has 2 classes).
        seq_len: time steps of the ``adding`` task (>= 2).
        rounds: boosting rounds of ``gbdt`` (trees per class where the library grows one per class).
        max_depth: deepest tree of ``gbdt`` (LightGBM also gets ``num_leaves = 2**max_depth``).
        data_dir: cache folder for MNIST / Fashion-MNIST / CIFAR-10
            (default ``~/.cache/mlx_explore``; env ``MLX_EXPLORE_DATA``).
        timeout_s: a framework run taking longer than this [s] is stopped (None: no limit).

    Raises:
        ConfigError: via :meth:`build`, naming the field and the allowed values.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: Literal["logreg", "mlp", "cnn", "gru", "transformer", "gbdt"] = "mlp"
    dataset: str = "digits"
    frameworks: tuple[str, ...] = DEFAULT_FRAMEWORKS
    epochs: int = Field(10, ge=1, le=MAX_EPOCHS)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False)
    optimizer: Literal["sgd", "momentum", "adam"] = "adam"
    momentum: float = Field(0.9, ge=0, lt=1, allow_inf_nan=False)
    hidden: tuple[int, ...] = (256, 256)
    activation: Literal["relu", "tanh", "sigmoid"] = "relu"
    seed: int = Field(0, ge=0, lt=2**32)
    device: Literal["auto", "cpu", "gpu", "tpu"] = "auto"
    mode: Literal["eager", "compiled", "both"] = "compiled"
    precision: Literal["fp32", "bf16"] = "fp32"
    threads: int | None = Field(None, ge=1)
    repeat: int = Field(1, ge=1, le=100)
    deterministic: bool = False
    latency_steps: int = Field(200, ge=0, le=100_000)
    profile_steps: int = Field(0, ge=0, le=10_000)
    export: Literal["none", "onnx"] = "none"
    log_every: int = Field(1, ge=1)
    val_fraction: float = Field(0.15, gt=0, lt=0.5, allow_inf_nan=False)
    test_fraction: float = Field(0.15, gt=0, lt=0.5, allow_inf_nan=False)
    n_samples: int = Field(2000, ge=20, le=MAX_SAMPLES)
    n_features: int = Field(20, ge=2, le=MAX_FEATURES)
    n_classes: int = Field(2, ge=2, le=MAX_CLASSES)
    seq_len: int = Field(50, ge=2, le=MAX_SEQ_LEN)
    rounds: int = Field(100, ge=1, le=100_000)
    max_depth: int = Field(6, ge=1, le=32)
    data_dir: str | None = None
    timeout_s: float | None = Field(None, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bools_for_numbers(cls, data: Any) -> Any:
        # pydantic's lax mode reads True as 1: ``epochs=True`` would silently train one epoch.
        if isinstance(data, dict):
            for name, value in data.items():
                if isinstance(value, bool) and name != "deterministic" and name in cls.model_fields:
                    raise ConfigError(name, f"expected a number, got the boolean {value!r}")
        return data

    @model_validator(mode="before")
    @classmethod
    def _gbdt_defaults(cls, data: Any) -> Any:
        # Gradient boosting has other defaults than gradient descent: its own columns and shrinkage.
        if isinstance(data, dict) and data.get("model") == "gbdt":
            data = dict(data)
            data.setdefault("frameworks", GBDT_FRAMEWORKS)
            data.setdefault("lr", GBDT_LR)
        return data

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        if v not in DATASETS:
            raise ValueError(f"unknown data set {v!r}; allowed: {', '.join(DATASETS)}")
        return v

    @field_validator("frameworks", mode="before")
    @classmethod
    def _split_frameworks(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [p.strip() for p in v.split(",") if p.strip()]
        return v

    @field_validator("frameworks")
    @classmethod
    def _known_frameworks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError(f"name at least one framework; allowed: {', '.join(FRAMEWORKS)}")
        bad = [f for f in v if f not in FRAMEWORKS]
        if bad:
            raise ValueError(f"unknown framework(s) {', '.join(map(repr, bad))}; allowed: {', '.join(FRAMEWORKS)}")
        if len(set(v)) != len(v):
            raise ValueError("a framework is named twice")
        return v

    @field_validator("hidden", mode="before")
    @classmethod
    def _split_hidden(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [p.strip() for p in v.split(",") if p.strip()]
        if isinstance(v, int):
            v = (v,)
        return v

    @field_validator("hidden")
    @classmethod
    def _positive_hidden(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(h < 1 or h > MAX_WIDTH for h in v):
            raise ValueError(f"hidden layer widths must be between 1 and {MAX_WIDTH:,}, got {list(v)}")
        if len(v) > MAX_LAYERS:
            raise ValueError(f"at most {MAX_LAYERS} hidden layers, got {len(v)}")
        return v

    @field_validator("data_dir")
    @classmethod
    def _usable_path(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or "\x00" in v):
            raise ValueError("must be a folder path (not empty, no NUL characters)")
        return v

    @model_validator(mode="after")
    def _model_fits_dataset(self) -> "RunConfig":
        if self.model == "cnn" and self.dataset not in IMAGE_DATASETS:
            raise ConfigError(
                "model",
                f"model 'cnn' needs an image data set ({', '.join(IMAGE_DATASETS)}); "
                f"{self.dataset!r} is tabular: use model 'mlp' or 'logreg'"
            )
        if self.model in SEQUENCE_MODELS and self.dataset not in SEQUENCE_DATASETS:
            raise ConfigError(
                "model",
                f"model {self.model!r} reads each sample as a sequence: use one of {', '.join(SEQUENCE_DATASETS)} "
                f"(images row by row, or the adding task); {self.dataset!r} is tabular: use 'mlp', 'logreg' or 'gbdt'"
            )
        if self.model != "gbdt" and set(self.frameworks) <= {"xgboost", "lightgbm"}:
            raise ConfigError("frameworks", f"{', '.join(self.frameworks)} train only model 'gbdt' (got model "
                                            f"{self.model!r}); allowed for {self.model!r}: "
                                            f"{', '.join(f for f in FRAMEWORKS if f not in ('xgboost', 'lightgbm'))}")
        if self.model == "gbdt" and not set(self.frameworks) & set(GBDT_FRAMEWORKS):
            raise ConfigError("frameworks", f"model 'gbdt' runs in {', '.join(GBDT_FRAMEWORKS)} (got "
                                            f"{', '.join(self.frameworks)})")
        if self.model in SEQUENCE_MODELS and not self.hidden:
            raise ConfigError("hidden", f"model {self.model!r} takes its width from the first of hidden, e.g. 128")
        if self.model == "mlp" and not self.hidden:
            raise ConfigError("hidden", "the MLP needs at least one hidden layer width, e.g. 256,256 "
                                        "(for no hidden layer use model 'logreg')")
        if self.val_fraction + self.test_fraction >= 0.8:
            raise ConfigError("test_fraction", "val_fraction + test_fraction must leave at least 20% for training")
        sizes = split_sizes(self)
        for split, field in (("test", "test_fraction"), ("val", "val_fraction"), ("train", "test_fraction")):
            if sizes[split] < sizes["classes"]:  # scikit-learn's stratified split needs one sample per class
                if self.dataset == "synthetic":
                    field, how = "n_samples", "raise n_samples or lower n_classes"
                else:
                    how = f"{'lower' if split == 'train' else 'raise'} {field}"
                raise ConfigError(field, f"the {split} split would hold {sizes[split]} samples, fewer than the "
                                         f"{sizes['classes']} classes a stratified split needs: {how}")
        n_train = sizes["train"]
        if self.batch_size > n_train:
            raise ConfigError(
                "batch_size", f"must be between 1 and the training split's {n_train} samples (got {self.batch_size})"
            )
        total_steps = self.epochs * (n_train // self.batch_size)
        if self.log_every > total_steps:
            raise ConfigError("log_every", f"must be between 1 and the run's {total_steps} training steps "
                                           f"({self.epochs} epoch(s) x {n_train // self.batch_size} steps), or the loss "
                                           f"curve would be empty (got {self.log_every})")
        if self.profile_steps > n_train // self.batch_size:
            raise ConfigError("profile_steps", f"must be at most the {n_train // self.batch_size} steps one epoch has "
                                               f"({n_train} training samples / batch {self.batch_size}; got "
                                               f"{self.profile_steps}): lower it, or the batch size, or use more data")
        if self.threads is not None:
            from .bench import usable_cores  # noqa: PLC0415 (bench imports numpy; validation of threads only)

            cores = usable_cores()
            if self.threads > cores:
                raise ConfigError("threads", f"must be between 1 and the {cores} cores this process may use "
                                             f"(got {self.threads})")
        return self

    # ---------------------------------------------------------------- construction

    @classmethod
    def build(cls, **kwargs: Any) -> "RunConfig":
        """Validate keyword arguments into a config.

        Raises:
            ConfigError: the first invalid field, e.g.
                ``ConfigError("batch_size", "must be >= 1 (got 0)")``.
        """
        try:
            return cls(**{k: v for k, v in kwargs.items() if v is not None or k in ("threads", "timeout_s", "data_dir")})
        except ValidationError as exc:
            raise _to_config_error(exc) from None

    @property
    def modes(self) -> tuple[str, ...]:
        """The compile modes to run: ``("eager", "compiled")`` for ``both``, else ``(mode,)``."""
        return ("eager", "compiled") if self.mode == "both" else (self.mode,)

    def resolved_data_dir(self) -> str:
        """The data cache folder: ``data_dir``, else ``$MLX_EXPLORE_DATA``, else ``~/.cache/mlx_explore``."""
        return self.data_dir or os.environ.get("MLX_EXPLORE_DATA") or os.path.expanduser("~/.cache/mlx_explore")


_ALLOWED = {
    "model": MODELS,
    "optimizer": OPTIMIZERS,
    "device": DEVICES,
    "mode": MODES,
    "precision": PRECISIONS,
    "activation": ACTIVATIONS,
}


def _to_config_error(exc: ValidationError) -> ConfigError:
    err = exc.errors()[0]
    original = (err.get("ctx") or {}).get("error")
    if isinstance(original, ConfigError):
        return original
    field = ".".join(str(p) for p in err["loc"] if not isinstance(p, int)) or "config"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if field in _ALLOWED:
        msg = f"{err.get('input')!r} is not allowed; allowed: {', '.join(_ALLOWED[field])}"
    elif err["type"] == "extra_forbidden":
        msg = f"unknown option; allowed: {', '.join(RunConfig.model_fields)}"
    elif "input" in err and err["type"] not in ("value_error",):
        msg = f"{msg} (got {err['input']!r})"
    return ConfigError(field, msg)
