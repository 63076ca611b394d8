"""Training XGBoost's ``XGBClassifier`` (``tree_method="hist"``) on gradient-boosted trees, model
``gbdt`` only (the adapter contract: ``frameworks/contract.py``, capability ``boosting``).

The estimator is ``models.gbdt`` at ``config.rounds``, ``config.lr``, ``config.max_depth``,
``config.seed`` and the run's threads; the settings held equal with scikit-learn and LightGBM are
in ``frameworks/common.py``, "Gradient-boosted trees". Training is one ``fit`` on NumPy arrays, as
its users call it, with ``eval_set=[(training rows, their labels), (x_val, y_val)]``, the training rows
those of ``common.train_score_rows`` (the whole split up to 10,000 rows, the same objects, else a
fixed sample of 10,000): ``fit`` builds a ``QuantileDMatrix`` of the training split (the features
sketched and binned once) and of each evaluation set on its bins, and XGBoost evaluates them after
every round from predictions it keeps up to date. A ``TrainingCallback`` (:class:`_Rounds`, passed in the
estimator's ``callbacks``, https://xgboost.readthedocs.io/en/stable/python/callbacks.html) marks
the end of the set-up (``before_training``) and of every round (``after_iteration``, where the
round's evaluation is in ``evals_log``) on the shared :class:`~..common.RoundClock`.

Threads: ``configure`` sets XGBoost's global ``nthread`` (``xgboost.set_config``) and limits the
OpenMP and BLAS pools with ``threadpoolctl``; the estimator gets ``n_jobs`` = the same count, read
back after training from the booster's saved configuration (``learner.generic_param.nthread``).

Devices: the CPU. ``gpu`` needs an XGBoost built with CUDA (``xgboost``, not the ``xgboost-cpu``
package this project installs): then ``device="cuda"``; ``auto`` is the CPU, where the other two
libraries run. Inference (``logits``) is ``predict_proba`` (XGBoost's ``inplace_predict`` on the
NumPy array), whose log is returned.
"""

from __future__ import annotations

import json

import numpy as np
import xgboost as xgb
from threadpoolctl import threadpool_info, threadpool_limits

from ... import bench
from ..common import RoundClock, train_score_rows
from ..contract import DEVICE_KINDS, DeviceUnavailable
from .models import gbdt


def _has_cuda() -> bool:
    return bool(xgb.build_info().get("USE_CUDA"))


def select_device(kind: str) -> str:
    """``"cpu"`` for ``auto`` and ``cpu``; ``"cuda"`` for ``gpu`` where this XGBoost is built with CUDA.

    Raises:
        ValueError: unknown kind.
        DeviceUnavailable: ``gpu`` with a CPU-only build (``xgboost-cpu``), or ``tpu``.
    """
    if kind not in DEVICE_KINDS:
        raise ValueError(f"unknown device kind {kind!r}; allowed: {', '.join(DEVICE_KINDS)}")
    if kind == "tpu":
        raise DeviceUnavailable("XGBoost runs on CPUs and CUDA GPUs, not TPUs")
    if kind == "gpu":
        if not _has_cuda():
            raise DeviceUnavailable("this XGBoost is built without CUDA (the xgboost-cpu package): pip install xgboost "
                                    "for the GPU build")  # fmt: skip
        return "cuda"
    return "cpu"


def configure(config, threads: int) -> dict:
    """XGBoost's global thread count (``xgboost.set_config(nthread=...)``) and the process's OpenMP and
    BLAS pools (``threadpoolctl``), read back."""
    xgb.set_config(nthread=threads, verbosity=1)
    threadpool_limits(limits=threads)
    pools = threadpool_info()
    return {
        "intra_op_threads": int(xgb.get_config()["nthread"]),
        "thread_pools": {f"{p['user_api']}:{p['internal_api']}": p["num_threads"] for p in pools},
        "tf32": False,  # the CPU: no TF32
        "precision": "fp32 inputs; float32 gradients and hessians, float64 histogram sums",
        "compile": "none (ahead-of-time compiled C++, one mode)",
        "tree_method": "hist",
    }


def build_model(spec, config) -> xgb.XGBClassifier:
    """The ``XGBClassifier`` of ``models.gbdt`` for a ``gbdt`` spec, with ``n_jobs`` = XGBoost's global
    thread count that ``configure`` set (this process's cores where it was not called).

    Raises:
        NotImplementedError: any other model kind: XGBoost trains trees only.
    """
    if spec.kind != "gbdt":
        raise NotImplementedError(f"XGBoost trains gradient-boosted trees only (model 'gbdt'), not {spec.kind!r}")
    threads = int(xgb.get_config()["nthread"]) or bench.usable_cores()
    device = select_device(config.device)
    return gbdt(spec.n_classes, config.rounds, config.lr, config.max_depth, threads, config.seed, device=device)


def load_weights(model, spec, weights: dict):
    """Trees start from no weights (``weights`` is empty): ``model`` as it is."""
    if weights:
        raise ValueError(f"gradient-boosted trees start from no weights, got {sorted(weights)}")
    return model


def make_optimizer(config, model):
    """Boosting has no optimizer apart from the estimator (its shrinkage is ``learning_rate``, set by
    ``build_model``): ``model``."""
    return model


def make_train_step(model, optimizer):
    """No per-batch step: a step that raises ``NotImplementedError`` (``Trainer.boost`` grows the rounds)."""

    def no_step(x, y, idx):
        raise NotImplementedError("XGBoost has no per-batch step: Trainer.boost grows whole boosting rounds")

    return no_step


def versions() -> dict[str, str]:
    """The XGBoost version."""
    return {"xgboost": xgb.__version__}


def list_devices() -> list[str]:
    """The CPU, and ``cuda`` where this XGBoost is built with CUDA."""
    return ["cpu", "cuda"] if _has_cuda() else ["cpu"]


class _Rounds(xgb.callback.TrainingCallback):
    """Marks the end of XGBoost's set-up and of each round, with the round's evaluation, on a clock."""

    def __init__(self, clock: RoundClock, binary: bool):
        super().__init__()
        self.clock = clock
        self.loss, self.error = ("logloss", "error") if binary else ("mlogloss", "merror")

    def before_training(self, model):
        self.clock.mark(0)
        return model

    def after_iteration(self, model, epoch, evals_log):
        train, val = evals_log["validation_0"], evals_log["validation_1"]
        self.clock.mark(epoch + 1, train[self.loss][-1], val[self.loss][-1], 1.0 - val[self.error][-1])
        return False  # never stop early


class Trainer:
    """XGBoost implementation of ``frameworks.contract.TrainerProtocol`` with the capability ``boosting``."""

    name = "xgboost"
    capabilities = frozenset({"boosting"})

    def __init__(self, spec, weights, config, x_train, y_train):
        self.spec, self.config = spec, config
        self._select_device()
        self._build(weights)
        self._place_data(x_train, y_train)
        self._compile()

    def _select_device(self):
        self.device = select_device(self.config.device)
        self.device_kind = "gpu" if self.device == "cuda" else "cpu"
        self.device_name = self.device

    def _build(self, weights):
        self.model = load_weights(build_model(self.spec, self.config), self.spec, weights)
        self.optimizer = make_optimizer(self.config, self.model)

    def _place_data(self, x_train, y_train):
        self.x, self.y = x_train, y_train  # fit takes host arrays and builds its QuantileDMatrix itself

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
        return {}  # trees have no canonical weights (ModelSpec.shapes() is empty)

    def boost(self, x_val, y_val, record):
        clock = RoundClock(record)
        # The attribute, not set_params: on a fitted estimator set_params also re-sends every parameter
        # to the booster, and XGBoost 3.2.0 then reads the eval_metric list as one unknown metric name.
        self.model.callbacks = [_Rounds(clock, self.spec.n_classes == 2)]
        rows = train_score_rows(len(self.y), self.config.seed)
        scored = (self.x, self.y) if rows is None else (self.x[rows], self.y[rows])
        try:
            clock.start()
            self.model.fit(self.x, self.y, eval_set=[scored, (x_val, y_val)], verbose=False)
        finally:
            self.model.callbacks = None

    def boost_params(self):
        booster = self.model.get_booster()
        cfg = json.loads(booster.save_config())["learner"]
        tree = cfg["gradient_booster"]["tree_train_param"]
        dump = booster.get_dump()  # one text tree each: a leaf's depth is its line's indentation
        leaf_depths = [len(line) - len(line.lstrip("\t")) for t in dump for line in t.splitlines() if "leaf=" in line]
        max_leaves = int(tree["max_leaves"])
        return {
            "library": f"XGBoost {xgb.__version__} XGBClassifier",
            "rounds": int(booster.num_boosted_rounds()),
            "trees": len(dump),
            "leaves": len(leaf_depths),
            "deepest": max(leaf_depths),
            "learning_rate": float(tree["eta"]),
            "max_depth": int(tree["max_depth"]),
            "max_leaves": max_leaves or None,
            "max_bins": int(tree["max_bin"]),
            "l2": float(tree["lambda"]),
            "min_child": f"min_child_weight={float(tree['min_child_weight']):g} (a hessian sum; no count)",
            "threads": int(cfg["generic_param"]["nthread"]),
            "growth": f"{tree['grow_policy']}, {cfg['gradient_booster']['gbtree_train_param']['tree_method']}",
            "objective": cfg["learner_train_param"]["objective"],
            "device": cfg["generic_param"]["device"],
        }

    def model_bytes(self):
        return len(self.model.get_booster().save_raw(raw_format="ubj"))
