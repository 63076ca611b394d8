"""Training LightGBM's ``LGBMClassifier`` on gradient-boosted trees, model ``gbdt`` only (the adapter
contract: ``frameworks/contract.py``, capability ``boosting``).

The estimator is ``models.gbdt`` at ``config.rounds``, ``config.lr``, ``config.max_depth``,
``config.seed`` and the run's threads; the settings held equal with scikit-learn and XGBoost are in
``frameworks/common.py``, "Gradient-boosted trees". Training is one ``fit`` on NumPy arrays, as its
users call it, with ``eval_X=(training rows, x_val)``, ``eval_y=(their labels, y_val)`` (``eval_names``
``train`` and ``val``; LightGBM 4.7 deprecates ``eval_set``) and ``eval_metric`` the log-loss and the
error rate. The training rows are those of ``common.train_score_rows``: the whole split up to 10,000
rows (the same array objects: LightGBM then scores it from the scores it keeps for the gradients),
else a fixed sample of 10,000. ``fit`` builds the training ``Dataset`` (the features binned once)
and one per evaluation set on the same bins, and LightGBM evaluates them after every round. Two callbacks
(https://lightgbm.readthedocs.io/en/latest/Python-API.html#callbacks) mark the end of the set-up
(one with ``before_iteration = True``, at the first iteration: the ``Dataset`` is constructed and
the booster built) and of every round (after the round's evaluation, in
``evaluation_result_list``) on the shared :class:`~..common.RoundClock`.

Threads: ``configure`` limits the process's OpenMP and BLAS pools with ``threadpoolctl`` and keeps
the count for ``n_jobs`` (LightGBM's ``num_threads``); it is read back after training from the
parameters LightGBM writes into its model (``model_to_string``, ``[num_threads: N]``).
``config.deterministic`` sets LightGBM's ``deterministic=True`` with ``force_col_wise=True``, as its
documentation asks; otherwise LightGBM chooses row- or column-wise histograms itself at the start
(a short timing test, part of ``setup_s``).

Devices: the CPU (the pip wheel's LightGBM; its GPU builds are not used here). Inference
(``logits``) is ``predict_proba``, whose log is returned.
"""

from __future__ import annotations

import re

import lightgbm as lgb
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from ... import bench
from ..common import RoundClock, train_score_rows
from ..contract import DEVICE_KINDS, DeviceUnavailable
from .models import gbdt

#: Threads ``configure`` put in force (``None``: not called; then this process's cores).
_THREADS: list[int | None] = [None]


def select_device(kind: str) -> str:
    """``"cpu"`` for ``auto`` and ``cpu``.

    Raises:
        ValueError: unknown kind.
        DeviceUnavailable: ``gpu`` or ``tpu``: LightGBM runs on the CPU here.
    """
    if kind not in DEVICE_KINDS:
        raise ValueError(f"unknown device kind {kind!r}; allowed: {', '.join(DEVICE_KINDS)}")
    if kind in ("gpu", "tpu"):
        raise DeviceUnavailable(f"LightGBM runs on the CPU here (asked for {kind}; its GPU builds are not used)")
    return "cpu"


def configure(config, threads: int) -> dict:
    """Limit the process's OpenMP and BLAS pools to ``threads`` (``threadpoolctl``) and keep the count
    for the estimator's ``n_jobs``; return the pools read back."""
    threadpool_limits(limits=threads)
    _THREADS[0] = threads
    pools = threadpool_info()
    openmp = [p["num_threads"] for p in pools if p["user_api"] == "openmp"]
    return {
        "intra_op_threads": max(openmp, default=threads),
        "thread_pools": {f"{p['user_api']}:{p['internal_api']}": p["num_threads"] for p in pools},
        "tf32": False,  # the CPU: no TF32
        "precision": "fp32 inputs; float32 gradients and hessians, float64 histogram sums",
        "compile": "none (ahead-of-time compiled C++, one mode)",
        "deterministic": bool(config.deterministic),
    }


def build_model(spec, config) -> lgb.LGBMClassifier:
    """The ``LGBMClassifier`` of ``models.gbdt`` for a ``gbdt`` spec, on the threads ``configure`` set;
    with ``config.deterministic``, LightGBM's ``deterministic=True, force_col_wise=True``.

    Raises:
        NotImplementedError: any other model kind: LightGBM trains trees only.
    """
    if spec.kind != "gbdt":
        raise NotImplementedError(f"LightGBM trains gradient-boosted trees only (model 'gbdt'), not {spec.kind!r}")
    select_device(config.device)
    model = gbdt(config.rounds, config.lr, config.max_depth, _THREADS[0] or bench.usable_cores(), config.seed)
    if config.deterministic:
        model.set_params(deterministic=True, force_col_wise=True)
    return model


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
        raise NotImplementedError("LightGBM has no per-batch step: Trainer.boost grows whole boosting rounds")

    return no_step


def versions() -> dict[str, str]:
    """The LightGBM version."""
    return {"lightgbm": lgb.__version__}


def list_devices() -> list[str]:
    """LightGBM computes on the CPU here."""
    return ["cpu"]


def _callbacks(clock: RoundClock, binary: bool) -> list:
    """LightGBM callbacks that mark the end of its set-up and of each round, with the round's evaluation."""
    loss, error = ("binary_logloss", "binary_error") if binary else ("multi_logloss", "multi_error")

    def setup_done(env) -> None:
        if env.iteration == env.begin_iteration:
            clock.mark(0)

    setup_done.before_iteration = True  # called before each iteration: the first call ends the set-up

    def round_done(env) -> None:
        result = {(r[0], r[1]): r[2] for r in env.evaluation_result_list}
        clock.mark(env.iteration - env.begin_iteration + 1, result[("train", loss)], result[("val", loss)],
                   1.0 - result[("val", error)])  # fmt: skip

    return [setup_done, round_done]


def _depth(node: dict) -> int:
    """Depth of the deepest leaf under a node of ``Booster.dump_model()``'s ``tree_structure``."""
    if "leaf_index" in node or "left_child" not in node:
        return 0
    return 1 + max(_depth(node["left_child"]), _depth(node["right_child"]))


class Trainer:
    """LightGBM implementation of ``frameworks.contract.TrainerProtocol`` with the capability ``boosting``."""

    name = "lightgbm"
    capabilities = frozenset({"boosting"})

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
        self.x, self.y = x_train, y_train  # fit takes host arrays and builds its Dataset itself

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
        binary = self.spec.n_classes == 2
        metrics = ["binary_logloss", "binary_error"] if binary else ["multi_logloss", "multi_error"]
        rows = train_score_rows(len(self.y), self.config.seed)
        xs, ys = (self.x, self.y) if rows is None else (self.x[rows], self.y[rows])
        clock.start()
        self.model.fit(self.x, self.y, eval_X=(xs, x_val), eval_y=(ys, y_val), eval_names=["train", "val"],
                       eval_metric=metrics, callbacks=_callbacks(clock, binary))  # fmt: skip

    def boost_params(self):
        booster = self.model.booster_
        text = booster.model_to_string()
        # The parameters LightGBM wrote into its model: "[name: value]" lines after "parameters:".
        written = dict(re.findall(r"^\[(\w+): ([^\]]*)\]$", text, flags=re.M))
        trees = booster.dump_model()["tree_info"]
        max_depth = int(written["max_depth"])
        return {
            "library": f"LightGBM {lgb.__version__} LGBMClassifier",
            "rounds": int(booster.current_iteration()),
            "trees": len(trees),
            "leaves": int(sum(t["num_leaves"] for t in trees)),
            "deepest": max(_depth(t["tree_structure"]) for t in trees),
            "learning_rate": float(written["learning_rate"]),
            "max_depth": max_depth if max_depth > 0 else None,
            "max_leaves": int(written["num_leaves"]),
            "max_bins": int(written["max_bin"]),
            "l2": float(written["lambda_l2"]),
            "min_child": (f"min_data_in_leaf={written['min_data_in_leaf']} (a count), "
                          f"min_sum_hessian_in_leaf={float(written['min_sum_hessian_in_leaf']):g}"),  # fmt: skip
            "threads": int(written["num_threads"]),
            "growth": "leaf-wise (best-first) up to num_leaves and max_depth",
            "objective": written.get("objective", ""),
            "deterministic": written.get("deterministic") == "1",
        }

    def model_bytes(self):
        return len(self.model.booster_.model_to_string().encode())
