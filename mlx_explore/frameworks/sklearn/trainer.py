"""Training scikit-learn's ``MLPClassifier`` from the canonical weights, one ``partial_fit`` per batch,
and its ``HistGradientBoostingClassifier`` (``gbdt``) in one ``fit`` (the adapter contract:
``frameworks/contract.py``).

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

Gradient-boosted trees (``gbdt``, capability ``boosting``; the settings held equal with XGBoost and
LightGBM: ``frameworks/common.py``, "Gradient-boosted trees"). ``models.gbdt`` is the estimator as
its users write it, with ``early_stopping=False``. To see each round, as XGBoost's and LightGBM's
callbacks do, the trainer fits :class:`ScoredRounds`, the same estimator with three changes:

* ``early_stopping=True`` with ``scoring="loss"`` and the validation split passed to ``fit``
  (``X_val``, ``y_val``): the only way ``HistGradientBoostingClassifier`` evaluates each round, on
  the training split (from the raw predictions it keeps for the gradients) and on the given
  validation split (raw predictions it updates with each new tree), as the other two libraries
  evaluate their ``eval_set``. Nothing is split off the training data. The training loss is taken
  on the rows of ``common.train_score_rows`` (all of them up to 10,000, else the 10,000 the other
  libraries score), not on every row as scikit-learn would: the same work in all three;
* early stopping is off all the same: :class:`ScoredRounds` never asks to stop, and
  ``n_iter_no_change = rounds + 1`` could not stop it either (it needs more scores than rounds);
  ``n_iter_`` is read back and equals ``rounds``;
* its per-round hook: the private method the loop scores each round with, which it replaces
  (the same scores, on those rows; sample weights, unused here, are not supported).

Why not the alternatives: ``warm_start`` with ``max_iter`` raised by one per call re-bins the whole
training split and re-predicts every tree grown so far on every call (rounds squared work), and
``train_score_``/``validation_score_`` alone arrive after ``fit`` returns, with no time per round;
scikit-learn 1.9.1's callback API (``sklearn.callback``) does not cover this estimator yet.

Private API (checked against scikit-learn 1.9.1; ``tests/test_adapters.py`` and
``tests/test_gbdt.py`` fail when it changes): ``MLPClassifier._optimizer``, the solver state
``partial_fit`` keeps between calls and creates afresh when the attribute is missing;
``load_weights`` deletes it. ``HistGradientBoostingClassifier._check_early_stopping_loss``, called
once before the first round and once after every round with the raw predictions (keyword
arguments ``raw_predictions``, ``y_train``, ``raw_predictions_val``, ``y_val``, ``n_threads``),
appending the negative losses (``self._loss``, the fitted loss object) to
``train_score_``/``validation_score_``;
``_predictors`` (the fitted trees, for the leaf count) and ``_bin_mapper`` (the bins in force), read
back after training. The threads ``fit`` used are read back with ``threadpoolctl``: the OpenMP pool
scikit-learn computes with (``fit`` asks OpenMP for its thread count, which ``threadpool_limits``
set).
"""

from __future__ import annotations

import pickle

import numpy as np
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_info, threadpool_limits

from ..common import RoundClock, train_score_rows
from ..contract import DEVICE_KINDS, DeviceUnavailable
from .models import gbdt, mlp

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
        "precision": "fp32 inputs, float32 computation (MLPClassifier follows the input dtype); gbdt: float32 "
                     "gradients and hessians, float64 histogram sums",
        "compile": "none (NumPy and Cython, one mode)",
    }


def _openmp_threads() -> int:
    """Threads of the OpenMP pool scikit-learn computes with, read back with ``threadpoolctl``: its own
    (vendored) ``libgomp`` where the wheel has one, else every OpenMP pool loaded."""
    pools = [p for p in threadpool_info() if p["user_api"] == "openmp"]
    own = [p for p in pools if "scikit_learn" in p["filepath"]] or pools
    return max((p["num_threads"] for p in own), default=1)


class ScoredRounds(HistGradientBoostingClassifier):
    """``HistGradientBoostingClassifier`` that hands every round's scores to ``_round_hook`` and never
    stops early (module docstring). Fitted and used as the estimator itself: same parameters, same
    trees, same predictions."""

    #: Called as ``hook(round, train_loss, val_loss, val_accuracy)`` from inside ``fit`` (``None``: not).
    _round_hook = None
    #: The training rows whose loss is scored (``common.train_score_rows``; ``None``: all of them).
    _train_rows = None

    def _check_early_stopping_loss(self, raw_predictions, y_train, sample_weight_train, raw_predictions_val, y_val,
                                   sample_weight_val, n_threads=1):  # fmt: skip
        # Private (scikit-learn 1.9.1): the loop calls this with these keyword arguments once before
        # the first tree (round 0) and after every round. The parent appends -loss of every training
        # row and of the validation split to the score lists; this appends the same scores with the
        # training loss on _train_rows (module docstring).
        rows = slice(None) if self._train_rows is None else self._train_rows
        train = self._loss(y_true=y_train[rows], raw_prediction=raw_predictions[rows], n_threads=n_threads)
        val = self._loss(y_true=y_val, raw_prediction=raw_predictions_val, n_threads=n_threads)
        self.train_score_.append(-train)
        self.validation_score_.append(-val)
        if self._round_hook is not None:
            raw = raw_predictions_val
            pred = (raw[:, 0] > 0) if raw.shape[1] == 1 else raw.argmax(axis=1)
            self._round_hook(len(self.train_score_) - 1, train, val, float(np.mean(pred == y_val)))
        return False  # early stopping off: never stop before max_iter


def build_model(spec, config):
    """The ``MLPClassifier`` for a dense ``ModelSpec``, set to take one step per ``partial_fit`` on
    the shared batches (module docstring).

    For ``gbdt``: ``models.gbdt`` at ``config.rounds``, ``config.lr``, ``config.max_depth`` and
    ``config.seed``, as a :class:`ScoredRounds` that scores every round on the validation split and
    never stops early (module docstring).

    Raises:
        NotImplementedError: ``spec.kind == "cnn"`` (or any kind but ``logreg``, ``mlp``, ``gbdt``).
    """
    if spec.kind == "gbdt":
        params = gbdt(config.rounds, config.lr, config.max_depth, config.seed).get_params()
        return ScoredRounds(**{**params, "early_stopping": True, "scoring": "loss", "n_iter_no_change": config.rounds + 1})
    if spec.kind not in ("logreg", "mlp"):
        raise NotImplementedError("scikit-learn has no convolutional layers (MLPClassifier is dense only)"
                                  if spec.kind == "cnn" else f"scikit-learn has no {spec.kind} model here")
    return mlp(spec.hidden, spec.activation).set_params(
        batch_size=config.batch_size, shuffle=False, random_state=np.random.RandomState(config.seed)
    )


def load_weights(model, spec, weights: dict[str, np.ndarray]):
    """Allocate ``model``'s arrays with a dummy ``partial_fit``, copy the canonical ``weights`` into
    them and drop the solver state (module docstring); returns ``model``. A ``gbdt`` has no weights
    to load (``weights`` is empty): trees are grown from the data."""
    if spec.kind == "gbdt":
        if weights:
            raise ValueError(f"gradient-boosted trees start from no weights, got {sorted(weights)}")
        return model
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
    keeps the optimizer inside the estimator); returns ``model``. Definitions in the module docstring.
    Gradient boosting's shrinkage (``learning_rate``, ``config.lr``) is set by ``build_model``: the
    estimator is returned as it is."""
    if isinstance(model, HistGradientBoostingClassifier):
        return model
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
    ``model``'s own, so ``optimizer`` is ``model``); ``loss_`` is the batch loss before the update. Gradient boosting has no per-batch
    step: its step raises ``NotImplementedError`` (``Trainer.boost`` grows the rounds)."""
    if isinstance(model, HistGradientBoostingClassifier):

        def no_step(x, y, idx):
            raise NotImplementedError("HistGradientBoostingClassifier has no per-batch step: Trainer.boost grows "
                                      "whole boosting rounds on the training split")  # fmt: skip

        return no_step

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
    """scikit-learn implementation of ``frameworks.contract.TrainerProtocol``; with the capability
    ``boosting`` for ``gbdt`` only (the instance narrows the class's declaration)."""

    name = "sklearn"
    capabilities = frozenset({"boosting"})  # CPU only: no device memory, no device matmul

    def __init__(self, spec, weights, config, x_train, y_train):
        self.spec, self.config = spec, config
        if spec.kind != "gbdt":
            self.capabilities = frozenset()  # the MLP: the per-step loop
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
        if self.spec.kind == "gbdt":
            return {}  # trees have no canonical weights (ModelSpec.shapes() is empty)
        kernels = [k.copy() for k in self.model.coefs_]
        biases = [b.copy() for b in self.model.intercepts_]
        if self.spec.n_classes == 2:  # one logistic unit z: the logits [0, z] give the same softmax
            kernels[-1] = np.concatenate([np.zeros_like(kernels[-1]), kernels[-1]], axis=1)
            biases[-1] = np.concatenate([np.zeros_like(biases[-1]), biases[-1]])
        names = [k for k in self.spec.shapes()]
        return dict(zip(names, [a for pair in zip(kernels, biases) for a in pair], strict=True))

    def boost(self, x_val, y_val, record):
        clock = RoundClock(record)
        self.model._round_hook = clock.mark
        self.model._train_rows = train_score_rows(len(self.y), self.config.seed)
        try:
            clock.start()
            self.model.fit(self.x, self.y, X_val=x_val, y_val=y_val)
        finally:
            self.model._round_hook = self.model._train_rows = None

    def boost_params(self):
        m = self.model
        trees = [p for per_round in m._predictors for p in per_round]  # private: the fitted TreePredictors
        return {
            "library": f"scikit-learn {sklearn.__version__} HistGradientBoostingClassifier",
            "rounds": int(m.n_iter_),
            "trees": len(trees),
            "leaves": int(sum(p.get_n_leaf_nodes() for p in trees)),
            "deepest": int(max(p.nodes["depth"].max() for p in trees)),
            "learning_rate": float(m.learning_rate),
            "max_depth": m.max_depth,
            "max_leaves": m.max_leaf_nodes,
            "max_bins": int(m._bin_mapper.n_bins) - 1,  # private; one more bin is kept for missing values
            "l2": float(m.l2_regularization),
            "min_child": f"min_samples_leaf={m.min_samples_leaf} (a count); a hessian sum >= 1e-3 to split (fixed)",
            "threads": _openmp_threads(),
            "growth": "best-first (leaf-wise) within max_depth, no leaf limit",
            "early_stopping": f"off: {m.n_iter_} of max_iter={m.max_iter} rounds",
        }

    def model_bytes(self):
        return len(pickle.dumps(self.model, protocol=pickle.HIGHEST_PROTOCOL))
