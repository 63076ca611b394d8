"""The one training loop that drives every framework's ``Trainer``, and its measured phases.

What each ``frameworks/<name>/trainer.py`` provides (module-level ``select_device``,
``configure``, ``build_model``, ``load_weights``, ``make_optimizer``, ``make_train_step``,
``list_devices``, ``versions`` and the class ``Trainer``) is written down as code in
``frameworks/contract.py`` (:class:`~.contract.AdapterModule`, :class:`~.contract.TrainerProtocol`,
the declared capabilities) and checked there for every registered framework
(``tests/test_adapters.py``). The worker calls ``configure(config, threads)`` right after the
import and before ``Trainer``: it puts the fairness settings in force (threads, TF32, determinism,
precision) and returns them **read back from the framework**, to be recorded with the run.

The loop, the timing windows, the loss logging and the metrics live here, once, so a difference
between frameworks can only come from the framework.

Timing (``docs/architecture.md``, "Honest timing"): the first step (trace + compile) is timed alone
with a sync after it. The remaining steps run in windows (at least ``MIN_WINDOWS``, at most
``WINDOW_STEPS`` steps each) with no sync inside a window; reading the window's losses back
(``Trainer.losses``) is the sync at its end. Steady throughput is the median over windows;
validation, per-step latency, inference and the machine figures are separate phases (:func:`fit`).
The primitives are in ``mlx_explore/bench.py``.

Gradient-boosted trees (trainers with the capability ``boosting``, ``model="gbdt"``) are trained by
:func:`train_boosting` instead of :func:`train`: one boosting round is the unit of progress, timed
from inside the library's own per-round hook (:class:`RoundClock`); the later phases are shared.

Gradient-boosted trees: what is held equal (scikit-learn's ``HistGradientBoostingClassifier``,
XGBoost's ``XGBClassifier``, LightGBM's ``LGBMClassifier``; ``frameworks/<name>/models.py``):

* rounds: ``max_iter`` / ``n_estimators`` / ``n_estimators`` = ``config.rounds``; one tree per
  round on a binary task, one per class and round otherwise, in all three.
* shrinkage: ``learning_rate`` = ``config.lr`` (default 0.1; XGBoost's own default is 0.3).
* depth: ``max_depth`` = ``config.max_depth`` with no leaf limit inside it: scikit-learn
  ``max_leaf_nodes=None`` (its default is 31), XGBoost ``max_leaves=0`` (its default), LightGBM
  ``num_leaves = 2 ** max_depth`` (at most 131072; its defaults are 31 leaves, no depth limit).
  Growth orders differ (scikit-learn best-first, XGBoost depth-wise, LightGBM leaf-wise); each may
  grow the full tree of that depth, and where each stops short of it (no gain, minimum leaf size)
  is its own: ``leaves`` and ``notes["boost_params"]`` (read back) show what was grown.
* histogram bins: 255 in all (scikit-learn ``max_bins=255``, plus one bin it keeps for missing
  values; XGBoost ``max_bin=255``, its default is 256; LightGBM ``max_bin=255``, its default). The
  bin edges differ: quantiles of a 200,000-row subsample (scikit-learn, LightGBM's
  ``bin_construct_sample_cnt``) against XGBoost's weighted quantile sketch of every row.
* L2 on the leaf values (``-G / (H + lambda)``): lambda = 1 in all, XGBoost's default
  (``reg_lambda``); scikit-learn's ``l2_regularization`` and LightGBM's ``reg_lambda`` (both 0 by
  default) are raised to it, rather than XGBoost's lowered to 0, because it bounds the value of a
  leaf whose hessian sum is near 0 (a pure leaf). L1 and the minimum split gain: 0 (the defaults).
* minimum leaf size, which cannot be made equal, left at each library's default: scikit-learn
  ``min_samples_leaf=20`` (a count; a node needs a hessian sum of 1e-3 to split, fixed); LightGBM
  ``min_child_samples=20`` and ``min_child_weight=1e-3`` (a hessian sum); XGBoost has no count, only
  ``min_child_weight=1`` (a hessian sum: with log-loss a row's hessian is ``p (1 - p) <= 1/4``, so at
  least 4 rows, more once the predictions are confident).
* no row or feature sampling (every row and feature in every round), early stopping off.
* monitoring, the same work in all three and inside each library's own loop (so in ``round_ms``):
  after every round, the validation split's log-loss and error rate, and the log-loss of a fixed
  sample of the training split (:func:`train_score_rows`: all rows up to 10,000, else the same
  10,000 rows in every library; scikit-learn's own rule for scoring a training set), each from
  predictions the library updates with the round's trees. Scoring the whole training split every
  round was measured first and dropped: on ``synthetic`` with 200,000 samples (140,000 training
  rows, 2 threads, 100 rounds of depth 6) it added 17 % to scikit-learn's plain ``fit`` time, 42 %
  to XGBoost's and 80 % to LightGBM's, unequal enough to decide their order. The monitoring above,
  with the hooks, adds 13-16 % to scikit-learn's, 19-22 % to XGBoost's and 22-32 % to LightGBM's
  (two runs each, a shared machine): ``train_s`` is a monitored training, as its users run one
  with an ``eval_set``. scikit-learn evaluates only with its ``early_stopping=True``, which the
  trainer sets and then never lets stop (``frameworks/sklearn/trainer.py``).
* threads: equal: scikit-learn's OpenMP pool through ``threadpoolctl``, XGBoost ``n_jobs`` (and its
  global ``nthread``), LightGBM ``n_jobs`` (``num_threads``); read back after training.
* seeds: ``random_state`` = ``config.seed`` (the binning subsamples; with sampling off nothing else
  is random). Precision: float32 inputs, float32 gradients and hessians, float64 histogram sums.
* initial prediction, each library's own: scikit-learn the log of the class priors, XGBoost 3.2 an
  intercept fitted to the labels (``base_score``, one per class), LightGBM the prior's log-odds for a
  binary task and 0 for multi-class (``boost_from_average``); it matters for the first rounds only.
* inference: each estimator's ``predict_proba``, as its users call it; ``logits`` returns its log.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from .. import bench
from ..bundle import Bundle
from ..data import BatchOrder
from ..events import Epoch, Event, Steps
from ..metrics import classification_metrics, loss_and_accuracy
# DeviceUnavailable is defined with the contract and re-exported here, where the worker imports it.
from .contract import DeviceUnavailable, TrainerProtocol  # noqa: F401

#: Longest timing window [steps]; also how often step events reach a live plot.
WINDOW_STEPS = 100
#: Fewest steady windows the training phase is cut into, when it has enough steps.
MIN_WINDOWS = 5
#: Batch size used for evaluation forward passes [samples].
EVAL_BATCH = 1024
#: Batch of the inference-throughput phase [samples].
INFER_BATCH = 1024

#: Most training rows a boosting library scores after every round for the training-loss curve
#: (:func:`train_score_rows`): scikit-learn's own rule for scoring the training set
#: (``HistGradientBoostingClassifier._get_small_trainset``, 10,000 rows).
TRAIN_SCORE_ROWS = 10_000


def train_score_rows(n: int, seed: int) -> np.ndarray | None:
    """The training rows every boosting library scores after each round (the same in all three):
    ``None`` (all of them) when there are at most :data:`TRAIN_SCORE_ROWS`, else that many, sorted,
    drawn without replacement with ``numpy.random.default_rng([seed, 2])``."""
    if n <= TRAIN_SCORE_ROWS:
        return None
    return np.sort(np.random.default_rng([seed, 2]).choice(n, TRAIN_SCORE_ROWS, replace=False))


#: Histogram bins and L2 on the leaf values of every ``gbdt`` library (the module docstring says why;
#: each ``models.py`` writes them out, the conformance check reads them back from the trained model).
GBDT_BINS, GBDT_L2 = 255, 1.0

#: Figures only a boosting run (``model="gbdt"``) has; every other run reports them ``None`` with
#: :data:`NOT_BOOSTING` as the note (``metric_docs.METRIC_DOCS`` describes them).
BOOSTING_METRICS = ("round_ms", "setup_s", "trees", "leaves", "model_bytes")
NOT_BOOSTING = "gradient-boosted trees only (model gbdt)"
_NO_STEP = "no SGD step: a boosting round grows trees on the whole training split (round_ms)"
#: The deep-learning figures a boosting run reports ``None``, and why.
NOT_FOR_TREES = {
    "step_ms": _NO_STEP,
    "step_ms_p50": _NO_STEP,
    "step_ms_p95": _NO_STEP,
    "step_ms_p99": _NO_STEP,
    "compile_s": "nothing is compiled: the tree libraries run ahead-of-time compiled code; their set-up before the "
                 "first round (input checks, binning the features into histograms) is setup_s",
    "train_gflop_per_step": "trees do no dense arithmetic to count (comparisons and histogram sums): no FLOP figure",
    "gflops_per_s": "trees do no dense arithmetic to count: no FLOP rate",
    "peak_gflops_per_s": "not measured: without a FLOP count there is no MFU to take it as the reference for",
    "mfu": "not meaningful for trees: their work is comparisons and histogram sums, not matrix products",
}  # fmt: skip


class Diverged(RuntimeError):
    """The training loss became NaN or infinite; ``step`` is the first such step (1-based)."""

    def __init__(self, step: int, loss: float):
        self.step, self.loss = step, loss
        super().__init__(f"training loss became {loss} at step {step}")


def batched(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int = EVAL_BATCH) -> np.ndarray:
    """Apply ``fn`` to ``x`` in slices of ``batch`` rows and concatenate the results."""
    return np.concatenate([np.asarray(fn(x[i : i + batch])) for i in range(0, len(x), batch)])


def fit(trainer: TrainerProtocol, bundle: Bundle, emit: Callable[[Event], None], clock: Callable[[], float],
        flush: Callable[..., None] | None = None) -> tuple[dict, dict]:  # fmt: skip
    """Run every measured phase of one framework's run; return ``(metrics, notes)``.

    Phases, in order (each its own figure, see ``runner.METRIC_DOCS``):

    1. **training**: all epochs of ``bundle.order`` (each epoch's batches drawn before its first
       window, outside the timing), cut into timed windows
       (:func:`bench.window_lengths`); the first step is timed alone (trace + compile); the
       steady windows give ``samples_per_s`` (median) and ``cpu_parallelism``; validation after
       each epoch, outside the windows. ``Steps``/``Epoch`` events are emitted between windows.
    2. **evaluation** of the test split (``eval_s``, accuracy, F1, ROC-AUC, loss).
    3. **step latency**: ``config.latency_steps`` further training steps (replaying the first
       epoch's batches), each followed by a sync: ``step_ms_p50/p95/p99``. These steps come after
       the evaluation, so they never change a reported accuracy.
    4. **inference**: batch-1 latency percentiles (``infer_ms_*``) and large-batch throughput
       (``infer_samples_per_s``), inputs from and logits back to the host, as in deployment.
    5. **machine figures**: ``peak_rss_mb``, ``peak_device_mb``, analytic ``gflops_per_s`` and
       ``mfu`` against a matmul peak measured now, in this process (:func:`bench.matmul_peak_gflops`).

    A trainer with the capability ``boosting`` (gradient-boosted trees) is trained by
    :func:`train_boosting` in phase 1, has no step-latency phase (``step_ms_*`` are ``None``) and
    no FLOP figures; it adds ``model_bytes`` (its serialized model). The figures only boosting has
    (:data:`BOOSTING_METRICS`) are ``None`` for every other trainer; each ``None`` has its note.

    Args:
        trainer: a built framework trainer.
        bundle: the shared inputs.
        emit: receives a ``Steps`` event per timing window (its steps that are multiples of
            ``config.log_every``) and an ``Epoch`` event per epoch.
        clock: seconds since the child started (the events' ``time_s``).
        flush: called after each window's ``Steps`` event and, with ``force=True``, when training
            ends (``worker.make_emitter``: it writes at most every 0.1 s unless forced).

    Returns:
        ``metrics``: name -> number or ``None``; ``notes``: metric name -> why it is ``None`` or how
        it was measured.

    Raises:
        Diverged: a training step's loss is NaN or infinite.
    """
    cfg = bundle.config
    boosting = "boosting" in trainer.capabilities
    metrics, notes = (train_boosting if boosting else train)(trainer, bundle, emit, clock, flush)
    metrics.update(evaluate(trainer, bundle))
    if cfg.latency_steps:
        if boosting:  # no step to time: the step_ms_* figures are None (NOT_FOR_TREES says why)
            metrics.update(dict.fromkeys(("step_ms_p50", "step_ms_p95", "step_ms_p99")))
        else:
            metrics.update(step_latency(trainer, bundle.order, cfg.latency_steps))
        metrics.update(inference(trainer, bundle.inputs(bundle.data.x_test), cfg.latency_steps))
    else:
        for k in ("step_ms_p50", "step_ms_p95", "step_ms_p99", "infer_ms_p50", "infer_ms_p95", "infer_ms_p99", "infer_samples_per_s"):
            metrics[k] = None
            notes[k] = "latency phases off (latency_steps=0)"
    machine_figures(trainer, bundle, metrics, notes)
    if boosting:
        metrics["model_bytes"] = int(trainer.model_bytes())
        for k, why in NOT_FOR_TREES.items():
            if metrics.get(k) is None:
                notes.setdefault(k, why)
    else:
        metrics.update(dict.fromkeys(BOOSTING_METRICS))
        notes.update(dict.fromkeys(BOOSTING_METRICS, NOT_BOOSTING))
    return metrics, notes


def train(trainer: TrainerProtocol, bundle: Bundle, emit: Callable[[Event], None], clock: Callable[[], float],
          flush: Callable[..., None] | None = None) -> tuple[dict, dict]:  # fmt: skip
    """Phase 1 of :func:`fit`: train all epochs in timed windows, emitting events.

    Returns ``(metrics, notes)`` with ``samples_per_s``, ``step_ms``, ``windows``, ``first_step_s``,
    ``compile_s``, ``cpu_parallelism``, ``train_s``, ``train_loss``, ``val_loss``, ``val_accuracy``
    and ``steps``.

    Raises:
        Diverged: a step's loss is NaN or infinite.
    """
    cfg, order = bundle.config, bundle.order
    epochs, steps, batch = order.shape
    fw = getattr(trainer, "name", "?")
    x_val = bundle.inputs(bundle.data.x_val)
    plan = bench.window_lengths(steps, epochs, WINDOW_STEPS, MIN_WINDOWS)
    windows: list[tuple[int, float]] = []  # steady windows: (steps, seconds)
    busy_cpu = busy_wall = 0.0
    first_step_s = float("nan")
    val: dict = {}
    train_loss = float("nan")
    clock_ = time.perf_counter
    t_train = clock_()
    every = cfg.log_every
    own_loop = "fit_loop" in getattr(trainer, "capabilities", ())
    for e, lengths in enumerate(plan):
        epoch_losses = []
        rows = trainer.indices(order[e])  # drawn and converted once an epoch, as a hand-written loop would
        s = 0

        def record(n: int, dt: float, cpu: float, window_losses: np.ndarray) -> None:
            """Book one timed window of epoch ``e`` that started at its step ``s``."""
            nonlocal s, first_step_s, busy_cpu, busy_wall
            if e == 0 and s == 0:
                first_step_s = dt
            else:
                windows.append((n, dt))
                busy_cpu, busy_wall = busy_cpu + cpu, busy_wall + dt
            first = e * steps + s + 1
            if not np.isfinite(window_losses).all():
                j = int(np.argmin(np.isfinite(window_losses)))
                raise Diverged(first + j, float(window_losses[j]))
            # One event for the window's logged steps (the runner expands it into Step events).
            logged = range(first, first + n) if every == 1 else range(first + (-first) % every, first + n, every)
            if logged:
                losses = window_losses.tolist() if every == 1 else window_losses[np.subtract(logged, first)].tolist()
                emit(Steps(fw, epoch=e + 1, steps=list(logged), losses=losses, time_s=clock()))
            if flush is not None:
                flush()
            epoch_losses.append(window_losses)
            s += n

        if own_loop:  # the framework's own loop (Keras model.fit) calls record at each window's end
            trainer.fit_epoch(rows, lengths, record)
        else:
            for n in lengths:
                c0, t0 = bench.cpu_seconds(), clock_()
                handles = [trainer.train_step(idx) for idx in rows[s : s + n]]
                window_losses = trainer.losses(handles)  # the sync that ends the window
                dt = clock_() - t0
                record(n, dt, bench.cpu_seconds() - c0, window_losses)
        train_loss = float(np.concatenate(epoch_losses).mean())
        val = loss_and_accuracy(trainer.logits(x_val), bundle.data.y_val)
        emit(Epoch(fw, epoch=e + 1, train_loss=train_loss, val_loss=val["loss"], val_accuracy=val["accuracy"], time_s=clock()))
    train_s = clock_() - t_train
    if flush is not None:
        flush(force=True)  # the last epoch reaches the live view before the latency phases

    steady = bench.window_stats(windows, batch)
    notes = {}
    if steady["windows"] < MIN_WINDOWS:
        notes["samples_per_s"] = f"only {steady['windows']} timed window(s): train longer for a steady figure"
    if not windows:
        notes["compile_s"] = "a single training step: no steady step to subtract"
    step_s = steady["step_s"]
    metrics = {
        "samples_per_s": steady["samples_per_s"],
        "step_ms": step_s * 1e3,
        "windows": steady["windows"],
        "first_step_s": first_step_s,
        "compile_s": max(0.0, first_step_s - step_s) if windows else None,
        "cpu_parallelism": busy_cpu / busy_wall if busy_wall > 0 else None,
        "train_s": train_s,
        "train_loss": train_loss,
        "val_accuracy": val["accuracy"],
        "val_loss": val["loss"],
        "steps": int(epochs * steps),
    }
    return metrics, notes


class RoundClock:
    """Times a library's boosting rounds from inside its own per-round hook (capability ``boosting``,
    :meth:`~.contract.Boosting.boost`) and hands each round to ``record``.

    The trainer calls :meth:`start` right before the library's training call, then :meth:`mark` from
    the library's hook: with round 0 when its set-up ends (XGBoost's ``before_training``, a LightGBM
    callback with ``before_iteration``, scikit-learn's scoring of the initial model), then at the end
    of every round (after the library's own evaluation of that round). Each mark hands
    ``record(round, seconds, cpu_seconds, train_loss, val_loss, val_accuracy)`` the wall and process
    CPU time since the previous mark returned: the time ``record`` itself takes (events, the live view)
    stays out of the next round, as the deep-learning windows leave their bookkeeping out.
    """

    def __init__(self, record: Callable[..., None]):
        self._record = record
        self._t0 = self._c0 = 0.0

    def start(self) -> None:
        """The library's training call begins now."""
        self._c0, self._t0 = bench.cpu_seconds(), time.perf_counter()

    def mark(self, round_: int, train_loss: float = float("nan"), val_loss: float = float("nan"),
             val_accuracy: float = float("nan")) -> None:  # fmt: skip
        """Round ``round_`` (0: the set-up) ended now, with these losses [nats] and accuracy [0-1]."""
        t, c = time.perf_counter(), bench.cpu_seconds()
        self._record(round_, t - self._t0, c - self._c0, float(train_loss), float(val_loss), float(val_accuracy))
        self._c0, self._t0 = bench.cpu_seconds(), time.perf_counter()


def train_boosting(trainer: TrainerProtocol, bundle: Bundle, emit: Callable[[Event], None], clock: Callable[[], float],
                   flush: Callable[..., None] | None = None) -> tuple[dict, dict]:  # fmt: skip
    """Phase 1 of :func:`fit` for a trainer with the capability ``boosting`` (``model="gbdt"``):
    ``config.rounds`` boosting rounds in the library's own training call
    (:meth:`~.contract.Boosting.boost`), a round the unit of progress.

    Every round emits an ``Epoch`` event (``epoch`` = the round; its validation log-loss and accuracy,
    computed by the library inside its loop) and, for rounds that are multiples of
    ``config.log_every``, a ``Steps`` event with one step (``step`` = the round; its loss is the
    training log-loss of the ensemble after the round, on the rows of :func:`train_score_rows`),
    so a live plot draws trees and deep training on one wall-clock axis. Timing:

    * ``setup_s``: the library's call up to its first round (input checks, binning into histograms);
    * ``first_step_s``: round 1 alone (work a library defers to its first round is in it);
    * ``round_ms``: median over rounds 2.. of each round's wall time, the library's evaluation of
      that round included (each library evaluates the same rows in its loop, from predictions it
      keeps up to date: module docstring); ``windows``: those rounds; ``cpu_parallelism``: process
      CPU / wall over them;
    * ``samples_per_s``: training rows / median round time (each round reads the whole split);
    * ``train_s``: the whole training call, set-up to return.

    Returns ``(metrics, notes)`` with those figures, ``train_loss`` (the last round's), ``val_loss``
    and ``val_accuracy`` (the trained model's, from the shared metric code, as for every run),
    ``steps`` (rounds grown), ``trees``, ``leaves``, and in ``notes["boost_params"]`` the settings
    read back from the trained model (:meth:`~.contract.Boosting.boost_params`, as JSON).

    Raises:
        Diverged: a round's training or validation loss is NaN or infinite.
        RuntimeError: the library's hook reported rounds out of order, or not ``config.rounds`` of
            them (a hook that changed with the library's version).
    """
    import json

    cfg = bundle.config
    fw = getattr(trainer, "name", "?")
    x_val, y_val = bundle.inputs(bundle.data.x_val), bundle.data.y_val
    rounds: list[tuple[float, float, float]] = []  # (seconds, cpu_seconds, train_loss) of rounds 1, 2, ...
    setup: list[float] = []
    every = cfg.log_every

    def record(r: int, seconds: float, cpu_seconds: float, train_loss: float, val_loss: float, val_accuracy: float) -> None:
        """Book round ``r`` (0: the set-up) and emit its events."""
        expected = len(rounds) + 1 if setup else 0
        if r != expected:
            raise RuntimeError(f"{fw}: the library's per-round hook reported round {r}, expected {expected}")
        if r == 0:
            setup.append(seconds)
            return
        for loss in (train_loss, val_loss):
            if not np.isfinite(loss):
                raise Diverged(r, loss)
        rounds.append((seconds, cpu_seconds, train_loss))
        now = clock()
        if r % every == 0:
            emit(Steps(fw, epoch=r, steps=[r], losses=[train_loss], time_s=now))
        emit(Epoch(fw, epoch=r, train_loss=train_loss, val_loss=val_loss, val_accuracy=val_accuracy, time_s=now))
        if flush is not None:
            flush()

    t0 = time.perf_counter()
    trainer.boost(x_val, y_val, record)
    train_s = time.perf_counter() - t0
    if flush is not None:
        flush(force=True)  # the last round reaches the live view before the later phases
    if len(rounds) != cfg.rounds:
        raise RuntimeError(f"{fw}: the library's per-round hook reported {len(rounds)} rounds, asked for {cfg.rounds}")
    params = trainer.boost_params()
    rows = train_score_rows(len(bundle.data.y_train), cfg.seed)
    steady = rounds[1:]
    notes = {
        "first_step_s": "the first boosting round alone (work the library defers to its first round is in it)",
        "samples_per_s": "training rows / median round time: every round reads the whole training split",
        "train_loss": "training log-loss of the ensemble after the last round, computed by the library in its loop "
                      f"on {'all training rows' if rows is None else f'a fixed sample of {len(rows):,} training rows'}",
        "boost_params": json.dumps(params, sort_keys=True),
    }
    if not steady:
        notes["round_ms"] = "a single round: round_ms is that round, with what the library defers to it"
        notes["cpu_parallelism"] = "a single round: no steady round to measure"
    if params.get("rounds") != cfg.rounds:
        notes["steps"] = (f"the library grew {params.get('rounds')} of the {cfg.rounds} rounds asked for: later "
                          f"rounds found no split that meets the minimum leaf size")  # fmt: skip
    round_s = float(np.median([s for s, _, _ in steady])) if steady else rounds[0][0]
    busy_wall = sum(s for s, _, _ in steady)
    val = loss_and_accuracy(trainer.logits(x_val), y_val)
    metrics = {
        "samples_per_s": len(bundle.data.y_train) / round_s if round_s > 0 else None,
        "step_ms": None,
        "round_ms": round_s * 1e3,
        "windows": len(steady),
        "setup_s": setup[0],
        "first_step_s": rounds[0][0],
        "compile_s": None,
        "cpu_parallelism": sum(c for _, c, _ in steady) / busy_wall if busy_wall > 0 else None,
        "train_s": train_s,
        "train_loss": rounds[-1][2],
        "val_accuracy": val["accuracy"],
        "val_loss": val["loss"],
        "steps": params.get("rounds"),
        "trees": params.get("trees"),
        "leaves": params.get("leaves"),
    }
    return metrics, notes


def evaluate(trainer: TrainerProtocol, bundle: Bundle) -> dict:
    """Phase 2 of :func:`fit`: test-split metrics and ``eval_s`` (inference on the whole split)."""
    t0 = time.perf_counter()
    test = classification_metrics(trainer.logits(bundle.inputs(bundle.data.x_test)), bundle.data.y_test)
    eval_s = time.perf_counter() - t0
    return {
        "test_accuracy": test["accuracy"],
        "test_f1_macro": test["f1_macro"],
        "test_roc_auc": test["roc_auc"],
        "test_loss": test["loss"],
        "eval_s": eval_s,
    }


def step_latency(trainer: TrainerProtocol, order: BatchOrder, n: int) -> dict:
    """Phase 3 of :func:`fit`: ``n`` training steps, a sync after each, as ``step_ms_p50/p95/p99``.

    Batches replay ``order`` from its start (:meth:`BatchOrder.first_steps`, cycling); two untimed
    warm-up steps come first.
    """
    rows = trainer.indices(order.first_steps(n + 2))  # drawn and converted before the clock starts
    times = bench.time_calls(lambda i: trainer.train_step(rows[i]), lambda h: trainer.losses([h]), n, warmup=2)
    return {f"step_ms_{k}": v * 1e3 for k, v in bench.percentiles(times).items()}


def inference(trainer: TrainerProtocol, x: np.ndarray, n: int) -> dict:
    """Phase 4 of :func:`fit`: the deployment view of the trained model.

    ``infer_ms_p50/p95/p99``: ``n`` single-sample forward passes (batch 1), each from host input
    to host logits, after 3 warm-up calls (a new input shape may compile). ``infer_samples_per_s``:
    median over ``max(3, n // 20)`` passes of ``INFER_BATCH`` samples (the test split tiled).
    """
    one = x[:1]
    times = bench.time_calls(lambda i: trainer.logits(one), lambda r: r, n, warmup=3)
    big = np.resize(x, (INFER_BATCH, *x.shape[1:]))
    big_times = bench.time_calls(lambda i: trainer.logits(big), lambda r: r, max(3, n // 20), warmup=1)
    out = {f"infer_ms_{k}": v * 1e3 for k, v in bench.percentiles(times).items()}
    out["infer_samples_per_s"] = INFER_BATCH / float(np.median(big_times))
    out["infer_batch"] = INFER_BATCH
    return out


def machine_figures(trainer: TrainerProtocol, bundle: Bundle, metrics: dict, notes: dict) -> None:
    """Phase 5 of :func:`fit`: memory peaks, achieved GFLOP/s and MFU, written into ``metrics``.

    ``mfu`` = ``gflops_per_s`` / ``peak_gflops_per_s``, where the peak is measured in this process
    on this device: NumPy's float32 matmul on a CPU (the same reference for every framework), the
    framework's own matmul on an accelerator (``trainer.matmul``).

    The device figures come from the trainer's declared capabilities (``trainer.capabilities``,
    ``frameworks/contract.py``): ``peak_device_mb()`` with ``device_memory``, ``matmul()`` with
    ``device_matmul``; a trainer without them gets ``None`` and a note. A ``boosting`` trainer gets
    the memory figures only: trees do no dense arithmetic, so the FLOP figures and MFU are ``None``.
    """
    caps = trainer.capabilities
    metrics["peak_rss_mb"] = bench.peak_rss_mb()
    peak_dev = trainer.peak_device_mb() if "device_memory" in caps else None
    metrics["peak_device_mb"] = peak_dev
    if peak_dev is None:
        notes["peak_device_mb"] = (
            "the device is the CPU: its memory is in peak_rss_mb"
            if trainer.device_kind == "cpu"
            else f"{trainer.name} reports no device memory statistics here"
        )
    if "boosting" in caps:  # no FLOPs to count in trees: no MFU (the notes: NOT_FOR_TREES)
        metrics.update(dict.fromkeys(("train_gflop_per_step", "gflops_per_s", "peak_gflops_per_s", "mfu")))
        return
    step_flops = bench.training_flops(bundle.spec, bundle.config.batch_size)
    metrics["train_gflop_per_step"] = step_flops / 1e9
    sps = metrics.get("samples_per_s")
    gflops = step_flops / bundle.config.batch_size * sps / 1e9 if sps and np.isfinite(sps) else None
    metrics["gflops_per_s"] = gflops
    mm = trainer.matmul() if "device_matmul" in caps else None
    if mm:
        fn, sync, n, label = mm
        peak, how = bench.matmul_peak_gflops(fn, sync, n=n)
        how = f"{label} {how}"
    else:
        peak, how = bench.matmul_peak_gflops()
    metrics["peak_gflops_per_s"] = peak
    notes["peak_gflops_per_s"] = how
    metrics["mfu"] = gflops / peak if gflops is not None else None
    notes["mfu"] = "analytic training FLOPs (3 x forward, 2 per multiply-add) x steps/s over the measured matmul peak"
