"""The adapter contract as code: what every ``frameworks/<name>/`` package provides, and its checks.

Every framework is one package with the same two modules (as Keras 3 has one folder per backend,
``keras/src/backend/<name>/``, with the same module and function names in each):

``models.py``
    The model code people read side by side, idiomatic for that framework, and the declaration
    ``MODEL_CODE = {"logreg": ..., "mlp": ..., "cnn": ...}``: for each model kind the framework
    expresses (``REGISTRY[name].models``), the name of the module-level class or function that is
    its code. ``widgets/code.py`` shows what it names; nothing else is hard-coded per framework.

``trainer.py``
    The module-level functions of :class:`AdapterModule` and the class ``Trainer``
    (:class:`TrainerProtocol`), with exactly these names and parameters. A function with no meaning
    for a framework is still defined (scikit-learn's ``select_device`` accepts ``auto``/``cpu`` and
    raises :class:`DeviceUnavailable` for ``gpu``/``tpu``). Extra helpers may exist beside them.

How a run uses an adapter (``mlx_explore/worker.py``, in the framework's own child process)::

    module = frameworks.trainer_module(name)         # imports the framework
    flags = module.configure(config, threads)        # fairness settings, read back
    trainer = module.Trainer(spec, weights, config, x_train, y_train)
    metrics, notes = frameworks.common.fit(trainer, bundle, emit, clock)   # the measured phases
    module.versions(); module.list_devices()         # recorded with the run / the device probe

Construction (the choice made here, after scikit-learn's estimator convention "the constructor
stores what it is given"): ``Trainer.__init__`` stores ``spec`` and ``config`` as given and then
runs the named build steps :data:`BUILD_STEPS`, in that order, each a method of its own:
``_select_device()`` (``select_device(config.device)``; sets ``device``, ``device_name``,
``device_kind``), ``_build(weights)`` (``build_model`` -> ``load_weights`` -> onto the device ->
``make_optimizer``), ``_place_data(x_train, y_train)`` (the training arrays onto the device) and
``_compile()`` (``make_train_step``, wrapped in ``torch.compile`` / ``jax.jit`` / ``tf.function``
for ``compiled``; tracing happens at the first step, which :func:`~.common.fit` times as
``first_step_s``). They run in the constructor rather than in a separate ``build()`` so that no
half-built trainer exists and ``train_step`` never checks whether it is built: that check would be
per-step work in the timed loop. Learned state lives in the framework's own objects (a module's
parameters, Optax state, an estimator's ``coefs_``) and is read with ``weights()``.

Optional capabilities are declared, never discovered with ``hasattr``: ``Trainer.capabilities`` is
a ``frozenset`` of names from :data:`CAPABILITIES`; a trainer implements the methods of exactly the
capabilities it declares (:func:`check_adapter` holds it to that), and ``common.fit`` and
``common.machine_figures`` call them only when declared. An instance may narrow the class's
declaration to the capabilities that apply to its model, by setting ``self.capabilities`` (a subset)
in its constructor: scikit-learn's one ``Trainer`` grows trees for ``gbdt`` (``boosting``) and trains
an ``MLPClassifier`` otherwise (none). ``common.fit`` reads the instance's set; the conformance check
holds it to a subset of the class's, with ``boosting`` exactly for ``gbdt``.

Gradient-boosted trees (capability ``boosting``, :class:`Boosting`) have no per-batch step and no
canonical weights: such a trainer grows all its rounds in the library's own training call
(:meth:`Boosting.boost`); its ``weights()`` is ``{}`` (``ModelSpec.shapes()`` is empty for
``gbdt``), ``indices`` and ``losses`` are plain conversions and ``train_step`` raises
``NotImplementedError`` naming ``boost`` (a function with no meaning for a framework is still
defined, as ``select_device`` is).

The checks of this contract, like scikit-learn's ``check_estimator``, are in
:mod:`mlx_explore.frameworks.conformance` (``python -m mlx_explore.frameworks.conformance NAME``);
``tests/test_adapters.py`` runs them for every framework in ``REGISTRY``. See
``docs/architecture.md``, "The adapter contract" and "How to add a framework".
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
from typing import Any, Callable, ClassVar, Protocol, Sequence

import numpy as np

from ..config import FRAMEWORKS

#: Device kinds ``select_device`` understands (``RunConfig.device``).
DEVICE_KINDS = ("auto", "cpu", "gpu", "tpu")

#: Flags every ``configure`` returns, read back from the framework (more are welcome).
REQUIRED_FLAGS = ("intra_op_threads", "tf32", "precision", "compile")


class DeviceUnavailable(RuntimeError):
    """The framework does not see the requested device (the run is reported as ``skipped``)."""


class AdapterModule(Protocol):
    """The module-level names of every ``frameworks/<name>/trainer.py`` (checked with
    :func:`inspect.signature`: the same parameter names, kinds and defaults)."""

    Trainer: type[TrainerProtocol]

    @staticmethod
    def select_device(kind: str) -> Any:
        """The framework's device for ``kind`` (``auto``: an accelerator where it sees one, else
        the CPU; ``cpu``; ``gpu``; ``tpu``), as the framework names it (``torch.device``, a JAX
        ``Device``, a TensorFlow device string, ``"cpu"``).

        Raises:
            DeviceUnavailable: ``kind`` is a device the framework does not see here or cannot drive.
            ValueError: ``kind`` is not one of :data:`DEVICE_KINDS`.
        """

    @staticmethod
    def configure(config, threads: int) -> dict:
        """Put the fairness settings in force (``threads`` intra-op threads, TF32, determinism,
        precision) right after the import, before anything initializes the framework and before
        ``Trainer``; return them **read back from the framework**: a JSON-ready dict with at least
        :data:`REQUIRED_FLAGS`. A second call in the same process with the same ``threads`` and
        another ``config`` must work (the conformance check makes one per run)."""

    @staticmethod
    def build_model(spec, config) -> Any:
        """The framework's model for a ``ModelSpec``, from the code in ``models.py``.

        Raises:
            NotImplementedError: the framework cannot express ``spec.kind`` (see
                ``frameworks.UNSUPPORTED_MODEL_REASON``).
        """

    @staticmethod
    def load_weights(model, spec, weights: dict) -> Any:
        """Load the canonical ``weights`` (``models.init_weights``: dense kernel ``(in, out)``, conv
        kernel ``(H, W, C_in, C_out)``) into ``model``, converting the layout; return the loaded
        state: the model itself where it holds its parameters (PyTorch, Keras, scikit-learn), the
        parameter pytree where they live apart (JAX)."""

    @staticmethod
    def make_optimizer(config, model) -> Any:
        """The optimizer for ``config.optimizer`` (``sgd``, ``momentum``, ``adam``) and ``config.lr``
        over ``model`` (what :meth:`load_weights` returned; unused where the optimizer is built apart
        from the parameters, as Optax's)."""

    @staticmethod
    def make_train_step(model, optimizer) -> Callable:
        """The training step as the framework's own guides write it: ``step(x, y, idx) -> loss``
        on the training arrays and one batch's row indices (the loss before the update, not
        synchronized); JAX's is pure: ``(params, opt_state, x, y, idx) -> (params, opt_state,
        loss)``. ``Trainer._compile`` wraps it for the compile mode."""

    @staticmethod
    def list_devices() -> list[str]:
        """Devices the framework can use here, human-readable (``["cpu", "cuda:0 (NVIDIA H100)"]``)."""

    @staticmethod
    def versions() -> dict[str, str]:
        """Versions of the framework's packages and runtime (``{"torch": "2.13.0", ...}``)."""


class TrainerProtocol(Protocol):
    """The interface of ``frameworks/<name>/trainer.py:Trainer`` (constructor: :func:`_trainer_init`).

    Class attributes: ``name`` (the registry name) and ``capabilities`` (a frozenset of
    :data:`CAPABILITIES` names). Set by the constructor: ``spec`` and ``config`` (as given),
    ``device`` (where it runs, e.g. ``"cpu"``, ``"cuda:0"``), ``device_name`` (human-readable,
    e.g. ``"NVIDIA H100 80GB HBM3"``) and ``device_kind`` (``"cpu"``, ``"gpu"`` or ``"tpu"``).
    """

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]
    spec: Any
    config: Any
    device: str
    device_name: str
    device_kind: str

    def indices(self, rows: np.ndarray) -> Sequence[Any]:
        """Training rows ``int64 (steps, B)`` (one epoch's batches, or some of them) in the form
        :meth:`train_step` takes, converted once for all of them (a PyTorch tensor, on the device):
        ``indices(rows)[i]`` is step ``i``'s batch and ``len(indices(rows)) == len(rows)``."""

    def train_step(self, idx: Any) -> Any:
        """One optimizer step on the training rows ``idx`` (an element of :meth:`indices`); returns
        the batch loss (mean cross-entropy before the update) as a device value, without
        synchronizing."""

    def losses(self, handles: list[Any]) -> np.ndarray:
        """Bring step losses to the host as ``float64 (len(handles),)``; this is the sync point."""

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Forward pass in inference mode: ``(N, ...)`` host inputs to ``float32 (N, C)`` logits on
        the host (scikit-learn: log-probabilities, logits of the same softmax)."""

    def weights(self) -> dict[str, np.ndarray]:
        """Current parameters in canonical names, order and layout, ``float32``
        (``models.init_weights``); right after construction, exactly the weights it was given
        (scikit-learn on a binary task: one logistic unit, returned as the logits ``[0, z]``)."""


def _trainer_init(self, spec, weights, config, x_train, y_train) -> None:
    """``Trainer(spec, weights, config, x_train, y_train)``: ``spec`` a ``ModelSpec``, ``weights``
    the canonical initial weights, ``config`` a ``RunConfig``, ``x_train`` ``float32 (N, F)`` or NHWC
    images, ``y_train`` ``int64 (N,)``. Stores ``spec`` and ``config``, then runs :data:`BUILD_STEPS`.

    Raises:
        DeviceUnavailable: ``config.device`` is not visible to the framework.
        NotImplementedError: the framework cannot express ``spec.kind``.
    """


def _select_device(self) -> None:
    """Build step 1: ``select_device(config.device)``; sets ``device``, ``device_name``, ``device_kind``."""


def _build(self, weights) -> None:
    """Build step 2: ``build_model`` -> ``load_weights`` -> onto the device -> ``make_optimizer``."""


def _place_data(self, x_train, y_train) -> None:
    """Build step 3: the training arrays onto the device, in the form ``train_step`` indexes."""


def _compile(self) -> None:
    """Build step 4: ``make_train_step`` and the inference forward, wrapped for ``config.mode``."""


#: The build steps ``Trainer.__init__`` runs, in this order: name -> reference signature.
BUILD_STEPS: dict[str, Callable] = {f.__name__: f for f in (_select_device, _build, _place_data, _compile)}


class DeviceMemory(Protocol):
    """Capability ``device_memory``: the trainer reports its accelerator memory."""

    def peak_device_mb(self) -> float | None:
        """Peak accelerator memory allocated by the framework so far [MiB]; ``None`` on a CPU or
        where the framework reports nothing."""


class DeviceMatmul(Protocol):
    """Capability ``device_matmul``: the trainer measures the accelerator's matmul peak (MFU)."""

    def matmul(self) -> tuple[Callable[[], Any], Callable[[Any], Any], int, str] | None:
        """On an accelerator: ``(run one float32 n x n product, wait for its result, n, label)`` in
        this framework, the reference for MFU; ``None`` on a CPU (NumPy's matmul is the reference)."""


class FitLoop(Protocol):
    """Capability ``fit_loop``: the framework's own training loop trains the epochs (Keras
    ``model.fit``), as its users train; :func:`~.common.train` hands it an epoch at a time instead of
    calling :meth:`~TrainerProtocol.train_step` per step (which such a trainer still implements, with
    the framework's single-step API, for the step-latency phase and the conformance checks)."""

    def fit_epoch(self, batches: Any, lengths: Sequence[int], record: Callable[..., None]) -> None:
        """Train one epoch, ``batches`` (what :meth:`~TrainerProtocol.indices` returned for it), in
        the framework's own loop, cut into timing windows of ``lengths`` steps (``sum(lengths) ==
        len(batches)``). At the end of each window call ``record(n, seconds, cpu_seconds, losses)``:
        the window's steps, its wall and process CPU time [s] from the start of its first step to the
        end of its last (the loop's per-call set-up before the first window stays outside), and its
        per-step losses ``float64 (n,)`` (each step's own mean cross-entropy before its update, not a
        running mean). An exception raised by ``record`` (divergence) ends training and propagates."""


class Boosting(Protocol):
    """Capability ``boosting``: the trainer grows gradient-boosted trees (``model="gbdt"``) in its
    library's own training call, one boosting round at a time, as the library's users train
    (``HistGradientBoostingClassifier.fit``, ``XGBClassifier.fit``, ``LGBMClassifier.fit``);
    :func:`~.common.fit` calls :meth:`boost` once instead of the per-step loop (the phases after
    training, evaluation and inference, are the same as for every trainer). A round is the unit of
    progress: it reads the whole training split (the deep-learning batch order does not apply)."""

    def boost(self, x_val: np.ndarray, y_val: np.ndarray, record: Callable[..., None]) -> None:
        """Grow ``config.rounds`` rounds on the whole training split in one call of the library's
        training API, with ``(x_val, y_val)`` (log-loss and accuracy) and the training rows of
        :func:`~.common.train_score_rows` (log-loss) evaluated inside the library's loop after every
        round, from the predictions the library keeps up to date round by round (the same work in
        every library). Call ``record(round, seconds, cpu_seconds, train_loss, val_loss,
        val_accuracy)`` from the library's own per-round hook (:class:`~.common.RoundClock`):

        * once with ``round = 0`` when the library's set-up ends (input checks, binning the features
          into histograms, the booster built), before the first tree, losses NaN;
        * then once per round ``r = 1 .. config.rounds``, at its end, with the training log-loss and
          the validation log-loss and accuracy of the ensemble after round ``r``.

        ``seconds`` and ``cpu_seconds``: wall and process CPU time since the previous ``record``
        returned (round 0: since the library's call began). An exception raised by ``record``
        (divergence) ends training and propagates."""

    def boost_params(self) -> dict:
        """The settings the trained model holds, **read back from the library** (its fitted
        attributes, saved configuration or model dump), JSON-ready: ``rounds`` (rounds grown),
        ``trees``, ``leaves``, ``deepest`` (the deepest tree grown), ``learning_rate``,
        ``max_depth``, ``max_leaves`` (``None``: no limit but the depth), ``max_bins``, ``l2``,
        ``threads`` and the library's names for them."""

    def model_bytes(self) -> int:
        """Size of the trained model serialized in the library's own format [bytes]."""


#: Optional capabilities: name -> the protocol whose methods a trainer declaring it implements.
CAPABILITIES: dict[str, type] = {"device_memory": DeviceMemory, "device_matmul": DeviceMatmul, "fit_loop": FitLoop,
                                 "boosting": Boosting}  # fmt: skip




def _members(protocol: type) -> dict[str, Callable]:
    """The functions a protocol class defines in its own body (staticmethods unwrapped)."""
    out = {}
    for key, value in vars(protocol).items():
        if key.startswith("_"):
            continue
        if isinstance(value, staticmethod):
            value = value.__func__
        if inspect.isfunction(value):
            out[key] = value
    return out


#: Module-level functions of every adapter: name -> reference function.
MODULE_FUNCTIONS = _members(AdapterModule)
#: Required ``Trainer`` methods: name -> reference function.
TRAINER_METHODS = _members(TrainerProtocol)


def models_path(name: str) -> str:
    """File of ``frameworks/<name>/models.py``, found without importing it (or its framework)."""
    from . import get

    package = get(name).code if name in FRAMEWORKS else name
    spec = importlib.util.find_spec(f"mlx_explore.frameworks.{package}.models")
    if spec is None or spec.origin is None:
        raise LookupError(f"no mlx_explore/frameworks/{package}/models.py")
    return spec.origin


def _module_defs(text: str) -> tuple[dict[str, ast.AST], ast.Assign | None]:
    tree = ast.parse(text)
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    decl = next((n for n in tree.body if isinstance(n, ast.Assign)
                 and any(isinstance(t, ast.Name) and t.id == "MODEL_CODE" for t in n.targets)), None)  # fmt: skip
    return defs, decl


def model_code(name: str, text: str | None = None) -> dict[str, str]:
    """The ``MODEL_CODE`` declaration of ``frameworks/<name>/models.py`` (model kind -> name of the
    module-level class or function that is its code), read with :mod:`ast`: imports no framework.

    Args:
        name: registry name.
        text: the module's source, when the caller has read it already.

    Raises:
        LookupError: the module declares no literal ``MODEL_CODE`` dict.
    """
    if text is None:
        with open(models_path(name), encoding="utf-8") as f:
            text = f.read()
    _, decl = _module_defs(text)
    try:
        value = ast.literal_eval(decl.value) if decl is not None else None
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise LookupError(f"mlx_explore/frameworks/{name}/models.py declares no literal MODEL_CODE = {{kind: name}} dict")
    return value
