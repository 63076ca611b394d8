"""Training scikit-learn's ``MLPClassifier`` from the canonical weights, one ``partial_fit`` per batch
(the adapter contract: ``frameworks/contract.py``).

The estimator: ``models.mlp`` (architecture, ``alpha=0``) with, from ``build_model``,
``batch_size`` = the run's batch (so one ``partial_fit`` is one step), ``shuffle=False`` (the
shared batch order) and a ``RandomState`` instance as ``random_state`` (``partial_fit`` passes an
instance through ``check_random_state`` as it is, instead of seeding a new one on every call, which
cost ~120 us a step; nothing is drawn from it with ``shuffle=False``); and, from
``make_optimizer``, the solver, set with ``set_params``.

Loading: ``MLPClassifier`` has no public way to start from given weights. A first ``partial_fit``
on a dummy batch (zeros, every class) allocates ``coefs_`` (kernels, ``(in, out)``: the
canonical layout) and ``intercepts_`` in the input's float32; the canonical weights are then
copied into those arrays in place and the solver state is dropped, so the next ``partial_fit``
starts from step 0 with zero velocities/moments. ``partial_fit`` reads the arrays afresh each call
(``sklearn/neural_network/_multilayer_perceptron.py``, ``_fit_stochastic``).

Binary tasks: scikit-learn uses one logistic output unit, not two logits. The equivalent start is
loaded (``w = W[:, 1] - W[:, 0]``, since ``softmax([z0, z1])[1] == sigmoid(z1 - z0)``), so the
initial model is the same function, but SGD on that parametrization takes different steps: the
per-step parity check for scikit-learn covers multiclass tasks only. ``weights()`` returns that
unit as the logits ``[0, z]`` (the same function, canonical shapes).

Optimizers (scikit-learn's ``_stochastic_optimizers.py``): ``momentum`` uses
``u = m u - lr g; p += u`` (same iterates as PyTorch for a constant lr); ``adam`` puts epsilon
on ``sqrt(v)`` before bias correction, like Keras. Loss: the same mean cross-entropy, computed
on probabilities clipped to ``[eps, 1 - eps]`` (float32 eps), with ``alpha=0``.
Runs on the CPU only; it has no compile step.

Private API (checked against scikit-learn 1.9.1; ``tests/test_adapters.py`` fails when it changes):
``MLPClassifier._optimizer``, the solver state ``partial_fit`` keeps between calls and creates
afresh when the attribute is missing; ``load_weights`` deletes it.
"""

from __future__ import annotations

import numpy as np
import sklearn
from threadpoolctl import threadpool_info, threadpool_limits

from ..contract import DEVICE_KINDS, DeviceUnavailable
from .models import mlp

ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8


def select_device(kind: str) -> str:
    """``"cpu"`` for ``auto`` and ``cpu``: scikit-learn computes on the CPU only. Raises
    DeviceUnavailable for ``gpu`` and ``tpu``, ValueError for an unknown kind."""
    if kind not in DEVICE_KINDS:
        raise ValueError(f"unknown device kind {kind!r}; allowed: {', '.join(DEVICE_KINDS)}")
    if kind in ("gpu", "tpu"):
        raise DeviceUnavailable(f"scikit-learn runs on the CPU only (asked for {kind})")
    return "cpu"


def configure(config, threads: int) -> dict:
    """Limit the BLAS and OpenMP pools scikit-learn computes with to ``threads`` and read them back
    (``threadpoolctl``, https://github.com/joblib/threadpoolctl)."""
    threadpool_limits(limits=threads)
    pools = threadpool_info()
    return {
        "intra_op_threads": max((p["num_threads"] for p in pools), default=1),
        "thread_pools": {f"{p['user_api']}:{p['internal_api']}": p["num_threads"] for p in pools},
        "tf32": False,  # NumPy on a CPU: no TF32 anywhere
        "precision": "fp32 inputs, float32 computation (MLPClassifier follows the input dtype)",
        "compile": "none (NumPy, one mode)",
    }


def build_model(spec, config):
    """The ``MLPClassifier`` for a dense ``ModelSpec``, set to take one step per ``partial_fit`` on
    the shared batches (module docstring).

    Raises:
        NotImplementedError: ``spec.kind == "cnn"``.
    """
    if spec.kind == "cnn":
        raise NotImplementedError("scikit-learn has no convolutional layers (MLPClassifier is dense only)")
    return mlp(spec.hidden, spec.activation).set_params(
        batch_size=config.batch_size, shuffle=False, random_state=np.random.RandomState(config.seed)
    )


def load_weights(model, spec, weights: dict[str, np.ndarray]):
    """Allocate ``model``'s arrays with a dummy ``partial_fit``, copy the canonical ``weights`` into
    them and drop the solver state (module docstring); returns ``model``."""
    n = spec.n_classes
    rows = n if model.batch_size == "auto" else max(n, model.batch_size)  # fewer rows than batch_size: a warning
    model.partial_fit(np.zeros((rows, spec.n_features), np.float32), np.arange(rows) % n, classes=np.arange(n))
    kernels = [weights[k] for k in spec.shapes() if k.endswith("/kernel")]
    biases = [weights[k] for k in spec.shapes() if k.endswith("/bias")]
    if n == 2:  # one logistic unit: logit difference
        kernels[-1] = kernels[-1][:, 1:] - kernels[-1][:, :1]
        biases[-1] = biases[-1][1:] - biases[-1][:1]
    for dst, src in zip(model.coefs_ + model.intercepts_, kernels + biases, strict=True):
        dst[...] = src
    # Private (scikit-learn 1.9.1): partial_fit makes a new solver, at step 0, when this is missing.
    del model._optimizer
    return model


def make_optimizer(config, model):
    """The solver for ``config.optimizer``, set on the estimator with ``set_params`` (scikit-learn
    keeps the optimizer inside the estimator); returns ``model``. Definitions in the module docstring."""
    return model.set_params(
        solver="adam" if config.optimizer == "adam" else "sgd",
        learning_rate="constant",
        learning_rate_init=config.lr,
        momentum=config.momentum if config.optimizer == "momentum" else 0.0,
        nesterovs_momentum=False,
        beta_1=ADAM_B1,
        beta_2=ADAM_B2,
        epsilon=ADAM_EPS,
    )


def make_train_step(model, optimizer):
    """The training step ``(x, y, idx) -> loss``: one ``partial_fit`` on the batch (the solver is
    ``model``'s own, so ``optimizer`` is ``model``); ``loss_`` is the batch loss before the update."""

    def train_step(x, y, idx):
        model.partial_fit(x[idx], y[idx])
        return model.loss_

    return train_step


def versions() -> dict[str, str]:
    """The scikit-learn version."""
    return {"scikit-learn": sklearn.__version__}


def list_devices() -> list[str]:
    """scikit-learn computes on the CPU only."""
    return ["cpu"]


class Trainer:
    """scikit-learn implementation of ``frameworks.contract.TrainerProtocol``."""

    name = "sklearn"
    capabilities = frozenset()  # CPU only: no device memory, no device matmul

    def __init__(self, spec, weights, config, x_train, y_train):
        self.spec, self.config = spec, config
        self._select_device()
        self._build(weights)
        self._place_data(x_train, y_train)
        self._compile()

    def _select_device(self):
        self.device = self.device_name = self.device_kind = select_device(self.config.device)

    def _build(self, weights):
        self.model = load_weights(build_model(self.spec, self.config), self.spec, weights)
        self.optimizer = make_optimizer(self.config, self.model)

    def _place_data(self, x_train, y_train):
        self.x, self.y = x_train, y_train

    def _compile(self):
        self._step = make_train_step(self.model, self.optimizer)  # nothing to compile

    def indices(self, rows):
        return rows

    def train_step(self, idx):
        return self._step(self.x, self.y, idx)

    def losses(self, handles):
        return np.asarray(handles, dtype=np.float64)

    def logits(self, x):
        # Log-probabilities are logits of the same softmax; clipped so a saturated 0 stays finite.
        return np.log(np.clip(self.model.predict_proba(x), 1e-30, 1.0)).astype(np.float32)

    def weights(self):
        kernels = [k.copy() for k in self.model.coefs_]
        biases = [b.copy() for b in self.model.intercepts_]
        if self.spec.n_classes == 2:  # one logistic unit z: the logits [0, z] give the same softmax
            kernels[-1] = np.concatenate([np.zeros_like(kernels[-1]), kernels[-1]], axis=1)
            biases[-1] = np.concatenate([np.zeros_like(biases[-1]), biases[-1]])
        names = [k for k in self.spec.shapes()]
        return dict(zip(names, [a for pair in zip(kernels, biases) for a in pair], strict=True))
