"""What our training harness costs: its throughput next to a minimal hand-written loop, per framework.

What it measures. For the MLP on ``digits`` (hidden 256-256, batch 128, plain SGD) and each
framework, one child process builds (a) our ``Trainer`` (``mlx_explore/frameworks/<fw>/trainer.py``)
driven by the harness's training phase ``frameworks.common.train`` and (b) the shortest training
loop that framework's tutorials would write (the ``minimal_*`` functions below), both from the same
canonical initial weights, over the same batch order. It prints training samples/s for both and

    ratio = harness samples/s / minimal samples/s      (1.0: the harness costs nothing; >= 0.95 passes)

How. Same process, same data, same threads (the child gets ``runner.child_env`` and pins itself
like ``worker.py``). After one untimed warm-up round each (tracing and compilation), the two are
timed in alternating rounds (ABBA order, so drift and noise from other processes hit both
alike); each round is every step of ``--epochs`` epochs, and its samples/s is
``steps * batch / seconds``; the figures are medians over ``--rounds`` rounds, split over
``--processes`` child processes (each has its own memory layout and compiled code, worth a per
cent or two either way), and the ratio's 90 % interval is a paired bootstrap over rounds (``scipy.stats.bootstrap``). The harness round is everything ``train`` does: the
per-epoch index conversion (``Trainer.indices``), window syncs and timing, divergence checks, a
``Steps`` event per window and an ``Epoch`` event per epoch, serialized and written to a
block-buffered OS pipe that another process drains every 0.1 s (``worker.make_emitter``, as
``worker.py`` streams them to the runner). The minimal loop reads its loss back at the end of each
epoch (the sync).

Validation. ``train`` validates after every epoch (logits of the validation split, then their
metrics). That is not training, so its time is taken out, and so that both do the same work the
minimal loop validates after every epoch too (its own forward pass, compiled in compiled mode as
the trainer's is, and the same ``loss_and_accuracy``). In both, those calls are timed one by one (``trainer.logits`` and
``loss_and_accuracy`` are wrapped with a stopwatch) and their time is subtracted from the
round's wall time (``val ms`` in the table). What is not subtracted is the price both pay for
switching to other work between epochs: the first steps after a validation run on cold caches.
``reported/s`` is the figure the harness itself publishes as ``samples_per_s`` (median over its
timed windows, which contain no validation), for information. ``epoch ratio`` is a diagnostic
with far less noise: the median epoch's training time (from the end of one validation to the
start of the next), minimal over harness, pooled over all rounds.

Run it (read ratios, never absolute times, and run it twice to see the noise)::

    python tests/benchmarks/overhead.py                        # all four frameworks, compiled mode
    python tests/benchmarks/overhead.py --frameworks torch,jax --mode eager --rounds 9
    python tests/benchmarks/overhead.py --threads 1 --check    # exit 1 unless every verdict is ok
    python tests/benchmarks/overhead.py --threads 1 --control  # A/A: what "no difference" looks like

Threads are all usable cores by default, as in a comparison. On a small machine that other
processes share, ``--threads 1`` gives far steadier figures: with every core busy elsewhere,
multi-threaded BLAS/OpenMP steps wait for descheduled threads, and those stalls dwarf the
microseconds this benchmark looks for. ``--sink devnull|none`` (diagnostics) sends the events to
``os.devnull`` or only serializes them, to see what the pipe itself costs.

Calibration. ``--control`` puts a second, independent instance of the minimal loop where the
harness was, so every ratio should be 1: how far it strays (on the development machine,
2026-11-21: 0.99-1.01 in the epoch ratio, up to 1.05 for whole rounds in one process) is the
floor of what this method can resolve on that machine.

Reading the ratio. Below 0.95 means the harness spends more than 5 % of the minimal loop's time
on its own work: per-step work in ``Trainer.train_step``, the events, the window-end loss
read-back and bookkeeping (digits has 9 steps per epoch and windows never cross an epoch, so
these are spread over 9 steps only). Compare ``Trainer.train_step`` with the minimal step to find
which. Ratios above 1 are noise (or, for TensorFlow, ``indices`` converting an epoch's batches in
one call where the minimal loop makes one ``tf.constant`` a step). When the 90 % interval is
wider than the 5 % margin the machine was too noisy for a verdict: a ratio below 0.95 whose
interval still reaches 0.95 is reported as ``noisy``, not ``SLOW``; run again with more rounds.

What this found (2026-11-21, 2-core VM): a per-step ``torch.from_numpy`` of each batch's indices,
an explicit ``jax.device_put`` before JAX's validation forward (it slowed the epoch after it), and
serializing events at every window cost 1-3 % each; ``Trainer.indices``, host inputs passed
straight to ``jit``, and serialization at flush time (every 0.1 s) removed them.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

FRAMEWORKS = ("torch", "jax", "tensorflow", "sklearn")
THRESHOLD = 0.95


def make_config(mode: str, epochs: int, threads: int | None):
    from mlx_explore.config import RunConfig

    return RunConfig.build(
        model="mlp", dataset="digits", hidden=(256, 256), batch_size=128, optimizer="sgd", lr=0.01,
        epochs=epochs, mode=mode, threads=threads, latency_steps=0, log_every=1,
    )  # fmt: skip


# ------------------------------------------------------------------ the minimal loops (the baseline)
# Each returns ``(train_epoch, predict)``: ``train_epoch(batches)`` takes one optimizer step per row
# of ``batches`` (steps, batch) and returns the last loss as a Python float (the sync);
# ``predict(x)`` returns logits (or log-probabilities) as a NumPy array, for the per-epoch
# validation that ``minimal_round`` runs like the harness does.


def minimal_torch(bundle, compiled: bool):
    import torch
    import torch.nn.functional as F
    from torch import nn

    from mlx_explore.frameworks.torch.trainer import load_weights

    spec, cfg = bundle.spec, bundle.config
    (h1, h2), n_classes = spec.hidden, spec.n_classes
    model = nn.Sequential(
        nn.Linear(spec.n_features, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(), nn.Linear(h2, n_classes)
    )  # fmt: skip
    load_weights(model, spec, bundle.weights)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    x, y = torch.as_tensor(bundle.data.x_train), torch.as_tensor(bundle.data.y_train)

    # Written out on purpose, not imported from trainer.make_train_step: this is the independent,
    # hand-written reference the harness is measured against, so it must not share the harness's code.
    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        return loss.detach()

    forward = model
    if compiled:  # validation compiled too, as the trainer does, so both pay the same for switching
        step, forward = torch.compile(step), torch.compile(model)

    def train_epoch(batches):
        for idx in torch.from_numpy(batches):
            loss = step(x[idx], y[idx])
        return loss.item()

    @torch.inference_mode()
    def predict(xv):
        model.eval()
        logits = forward(torch.as_tensor(xv)).numpy()
        model.train()
        return logits

    return train_epoch, predict


def minimal_jax(bundle, compiled: bool):
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax

    from mlx_explore.frameworks.jax.trainer import load_weights

    spec, cfg = bundle.spec, bundle.config
    (h1, h2), n_classes = spec.hidden, spec.n_classes

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Dense(h1)(x))
            x = nn.relu(nn.Dense(h2)(x))
            return nn.Dense(n_classes)(x)

    model, tx = MLP(), optax.sgd(cfg.lr)
    params = load_weights(model, spec, bundle.weights)  # {"Dense_0": {"kernel", "bias"}, ...}
    state = [params, tx.init(params)]
    x, y = jnp.asarray(bundle.data.x_train), jnp.asarray(bundle.data.y_train, dtype=jnp.int32)

    def loss_fn(params, xb, yb):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply({"params": params}, xb), yb).mean()

    def train_step(params, opt_state, x, y, idx):
        loss, grads = jax.value_and_grad(loss_fn)(params, x[idx], y[idx])
        updates, opt_state = tx.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    apply = model.apply
    if compiled:  # validation compiled too, as the trainer does
        train_step, apply = jax.jit(train_step, donate_argnums=(0, 1)), jax.jit(model.apply)

    def train_epoch(batches):
        params, opt_state = state
        for idx in batches:
            params, opt_state, loss = train_step(params, opt_state, x, y, idx)
        state[:] = params, opt_state
        return float(loss)

    def predict(xv):
        return np.asarray(apply({"params": state[0]}, xv))

    return train_epoch, predict


def minimal_tensorflow(bundle, compiled: bool):
    import keras
    import tensorflow as tf

    spec, cfg = bundle.spec, bundle.config
    (h1, h2), n_classes = spec.hidden, spec.n_classes
    model = keras.Sequential([
        keras.Input((spec.n_features,)),
        keras.layers.Dense(h1, activation="relu"),
        keras.layers.Dense(h2, activation="relu"),
        keras.layers.Dense(n_classes),
    ])  # fmt: skip
    model.set_weights(list(bundle.weights.values()))
    opt = keras.optimizers.SGD(cfg.lr)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    x, y = tf.constant(bundle.data.x_train), tf.constant(bundle.data.y_train)

    def train_step(idx):
        with tf.GradientTape() as tape:
            loss = loss_fn(tf.gather(y, idx), model(tf.gather(x, idx), training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply(grads, model.trainable_variables)
        return loss

    def forward(xv):
        return model(xv, training=False)

    if compiled:  # validation compiled too, as the trainer does
        train_step, forward = tf.function(train_step, jit_compile=True), tf.function(forward, jit_compile=True)

    def train_epoch(batches):
        for idx in batches:
            loss = train_step(tf.constant(idx))
        return float(loss)

    def predict(xv):
        return forward(tf.constant(xv)).numpy()

    return train_epoch, predict


def minimal_sklearn(bundle, compiled: bool):
    from sklearn.neural_network import MLPClassifier

    spec, cfg = bundle.spec, bundle.config
    x, y, batch = bundle.data.x_train, bundle.data.y_train, cfg.batch_size
    clf = MLPClassifier(
        hidden_layer_sizes=spec.hidden, solver="sgd", learning_rate_init=cfg.lr, momentum=0.0, nesterovs_momentum=False,
        alpha=0.0, batch_size=batch, shuffle=False,
    )  # fmt: skip
    clf.partial_fit(x[:batch], y[:batch], classes=np.arange(spec.n_classes))  # allocates coefs_
    w = bundle.weights  # canonical: "dense_i/kernel" (in, out), "dense_i/bias"
    kernels, biases = [w[k] for k in w if k.endswith("/kernel")], [w[k] for k in w if k.endswith("/bias")]
    for dst, src in zip(clf.coefs_ + clf.intercepts_, kernels + biases, strict=True):
        dst[...] = src

    def train_epoch(batches):
        for idx in batches:
            clf.partial_fit(x[idx], y[idx])
        return clf.loss_

    def predict(xv):
        return np.log(np.clip(clf.predict_proba(xv), 1e-30, 1.0))

    return train_epoch, predict


MINIMAL = {"torch": minimal_torch, "jax": minimal_jax, "tensorflow": minimal_tensorflow, "sklearn": minimal_sklearn}


# ------------------------------------------------------------------ the child: one framework


class Stopwatch:
    """Accumulates the time spent inside the functions it wraps, and keeps each call's
    ``(start, end)`` in ``calls`` (perf_counter seconds)."""

    def __init__(self):
        self.seconds = 0.0
        self.calls: list[tuple[float, float]] = []

    def reset(self):
        self.seconds, self.calls = 0.0, []

    def wrap(self, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                t1 = time.perf_counter()
                self.seconds += t1 - t0
                self.calls.append((t0, t1))

        return timed


def epoch_seconds(starts: list[tuple[float, float]], ends: list[tuple[float, float]]) -> list[float]:
    """Training time of epochs 2..E [s]: from the end of one epoch's validation (``ends[k-1]``)
    to the start of the next one's (``starts[k]``). Everything the loop does between them counts."""
    return [s[0] - e[1] for s, e in zip(starts[1:], ends[:-1])]


def event_sink(kind: str = "pipe"):
    """Where the harness's events go; returns ``(stream, close)``.

    ``pipe`` (the default, what ``worker.py`` does): a block-buffered text stream into an OS pipe
    whose read end a separate, unpinned process drains, as the runner's reader does. Call this
    before pinning the process, so the drain is not confined to the training cores. (A draining
    thread would compete for this interpreter's GIL, which the runner's does not.) ``devnull``:
    ``os.devnull`` (the write syscalls, no reader). ``none``: events are serialized
    with ``to_json`` and dropped (diagnostics: the cost of the pipe itself).
    """
    if kind == "none":
        class Drop:
            def write(self, text):
                return len(text)

            def flush(self):
                pass

        return Drop(), lambda: None
    if kind == "devnull":
        stream = open(os.devnull, "w")
        return stream, stream.close
    r, w = os.pipe()
    drain = subprocess.Popen([sys.executable, "-c", "import os\nwhile os.read(0, 1 << 16): pass"], stdin=r)
    os.close(r)
    stream = os.fdopen(w, "w")  # block-buffered, as worker.py's event stream

    def close():
        stream.close()
        drain.wait()

    return stream, close


def child(framework: str, mode: str, rounds: int, epochs: int, threads: int | None, sink: str = "pipe",
          control: bool = False) -> dict:  # fmt: skip
    from mlx_explore import bundle as bundle_mod
    from mlx_explore.frameworks import common, trainer_module
    from mlx_explore.metrics import loss_and_accuracy
    from mlx_explore.worker import make_emitter, pin_threads, settle

    stream, close = event_sink(sink)  # before pinning: the reader runs wherever it likes
    config = make_config(mode, epochs, threads)
    cores = pin_threads(config.threads)
    n_threads = min(config.threads or cores, cores)
    bundle = bundle_mod.prepare(config)
    module = trainer_module(framework)
    flags = module.configure(config, n_threads)
    trainer = module.Trainer(bundle.spec, bundle.weights, config, bundle.inputs(bundle.data.x_train), bundle.data.y_train)
    train_epoch, predict = MINIMAL[framework](bundle, mode == "compiled")
    settle()  # as worker.py does before training: the heap so far is frozen out of the collector's way

    # Validation after each epoch, in both, is timed call by call and subtracted from the round.
    # The harness validates in two calls (logits, then their metrics): the first's start ends an
    # epoch's training, the second's end starts the next one.
    vlog, vmet, mval = Stopwatch(), Stopwatch(), Stopwatch()
    trainer.logits = vlog.wrap(trainer.logits)
    common.loss_and_accuracy = vmet.wrap(common.loss_and_accuracy)
    x_val, y_val = bundle.inputs(bundle.data.x_val), bundle.data.y_val
    validate = mval.wrap(lambda: loss_and_accuracy(predict(x_val), y_val))

    t_start = time.perf_counter()

    emit, flush = make_emitter(stream)  # worker.py's own emit

    def clock() -> float:
        return time.perf_counter() - t_start

    epochs_, steps_per_epoch, batch = bundle.order.shape  # (epochs, steps, batch) of the BatchOrder
    samples = epochs_ * steps_per_epoch * batch

    def harness_round() -> dict:
        vlog.reset(), vmet.reset()
        gc.collect()
        t0 = time.perf_counter()
        metrics, _ = common.train(trainer, bundle, emit, clock, flush)
        wall = time.perf_counter() - t0
        val_s = vlog.seconds + vmet.seconds
        return {"sps": samples / (wall - val_s), "reported": metrics["samples_per_s"], "val_s": val_s,
                "val_loss": metrics["val_loss"], "epoch_s": epoch_seconds(vlog.calls, vmet.calls)}  # fmt: skip

    def minimal_rounds(train_epoch, validate, watch):
        def minimal_round() -> dict:
            watch.reset()
            gc.collect()
            t0 = time.perf_counter()
            for batches in bundle.order:  # each epoch drawn here, as the harness draws it in common.train
                loss = train_epoch(batches)
                v = validate()
            wall = time.perf_counter() - t0
            if not np.isfinite(loss):
                raise RuntimeError(f"the minimal {framework} loop diverged (loss {loss})")
            return {"sps": samples / (wall - watch.seconds), "reported": float("nan"), "val_s": watch.seconds,
                    "val_loss": v["loss"], "epoch_s": epoch_seconds(watch.calls, watch.calls)}  # fmt: skip

        return minimal_round

    minimal_round = minimal_rounds(train_epoch, validate, mval)
    if control:  # A/A: a second, independent minimal loop stands in for the harness
        train_epoch2, predict2 = MINIMAL[framework](bundle, mode == "compiled")
        watch2 = Stopwatch()
        harness_round = minimal_rounds(train_epoch2, watch2.wrap(lambda: loss_and_accuracy(predict2(x_val), y_val)), watch2)

    warm = harness_round(), minimal_round()  # tracing and compilation, untimed
    h, m = [], []
    for r in range(rounds):
        if r % 2 == 0:  # ABBA: H M M H H M ...
            h.append(harness_round())
            m.append(minimal_round())
        else:
            m.append(minimal_round())
            h.append(harness_round())
    close()
    return {
        "framework": framework,
        "mode": "eager" if framework == "sklearn" else mode,
        "steps": int(epochs_ * steps_per_epoch),
        "batch": int(batch),
        "rounds": rounds,
        "control": control,
        "harness_sps": [x["sps"] for x in h],
        "harness_reported_sps": [x["reported"] for x in h],
        "minimal_sps": [x["sps"] for x in m],
        "harness_epoch_s": [x["epoch_s"] for x in h],  # per round: epochs 2..E
        "minimal_epoch_s": [x["epoch_s"] for x in m],
        "val_s": [x["val_s"] for x in h],
        "minimal_val_s": [x["val_s"] for x in m],
        "warmup_s": {"harness": samples / warm[0]["sps"], "minimal": samples / warm[1]["sps"]},  # validation excluded
        "val_loss": {"harness": h[-1]["val_loss"], "minimal": m[-1]["val_loss"]},  # same training: ~equal
        "threads": n_threads,
        "flags": {k: v for k, v in flags.items() if "thread" in k or k == "compile"},
        "versions": module.versions(),
        "device": trainer.device,
    }


# ------------------------------------------------------------------ the parent: statistics, table, verdict


LEVEL = 0.90  #: confidence level of the ratios' intervals


def paired_interval(statistic, harness, minimal, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """90 % percentile bootstrap interval of ``statistic(harness, minimal)`` over rounds:
    ``scipy.stats.bootstrap(..., paired=True, method="percentile")`` (Efron & Tibshirani, "An
    Introduction to the Bootstrap" (1993), ch. 13).

    A round is the unit: its harness and minimal figures are resampled together (``paired``), so
    the ABBA pairing survives, and the epochs of one round (a row of a 2-D input, which share its
    noise) stay together. ``statistic`` is vectorized: it gets arrays whose last axis holds the
    resampled rounds (``(..., rounds)`` for 1-D inputs; ``(epochs, ..., rounds)`` for 2-D) and
    reduces the rounds (and the epochs) away. One round has no interval: ``(nan, nan)``.
    """
    from scipy import stats

    harness, minimal = np.asarray(harness, float), np.asarray(minimal, float)
    if len(harness) < 2:
        return float("nan"), float("nan")
    res = stats.bootstrap((harness, minimal), statistic, paired=True, vectorized=True, axis=0, confidence_level=LEVEL,
                          n_resamples=resamples, method="percentile", random_state=np.random.default_rng(seed))  # fmt: skip
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def round_ratio(harness_sps, minimal_sps) -> tuple[float, float, float]:
    """``(ratio, lo, hi)``: median harness samples/s over rounds / median minimal samples/s, and
    its 90 % bootstrap interval (:func:`paired_interval`). Whole rounds: every cost of the harness is in it."""
    h, m = np.asarray(harness_sps, float), np.asarray(minimal_sps, float)

    def stat(h, m, axis=-1):
        return np.median(h, axis=axis) / np.median(m, axis=axis)

    return (float(stat(h, m)), *paired_interval(stat, h, m))


def epoch_ratio(harness_epochs, minimal_epochs) -> tuple[float, float, float]:
    """``(ratio, lo, hi)``: median epoch time of the minimal loop / the harness's, over every
    epoch of every round (epochs 2..E: each round's first epoch holds its one-off costs), and its
    90 % bootstrap interval over rounds (:func:`paired_interval`, each round's epochs kept
    together). Many more samples than rounds, so a far narrower interval; a cost paid in fewer
    than half the epochs (the event writes every 0.1 s) is not in it, which is why the verdict is
    on whole rounds. Every round has the same number of epochs."""
    h, m = np.asarray(harness_epochs, float), np.asarray(minimal_epochs, float)  # (rounds, epochs)

    def pooled_median(x):  # (epochs, ..., rounds) -> (...): the median of every epoch of the rounds drawn
        x = np.moveaxis(x, 0, -1)
        return np.median(x.reshape(*x.shape[:-2], -1), axis=-1)

    def stat(h, m, axis=-1):
        return pooled_median(m) / pooled_median(h)

    return (float(np.median(m) / np.median(h)), *paired_interval(stat, h, m, resamples=500))


def verdict_of(ratio: float, hi: float) -> str:
    """``ok``: ratio >= THRESHOLD; ``SLOW``: below it, and so is the whole 90 % interval;
    ``noisy``: below it, but the interval reaches it (or there is none: one round), so this run
    cannot tell (run again)."""
    if ratio >= THRESHOLD:
        return "ok"
    return "SLOW" if hi < THRESHOLD else "noisy"


def run_child(framework: str, mode: str, args, rounds: int) -> dict:
    """One child process measuring ``framework`` for ``rounds`` rounds; its JSON result, or
    ``{"error": ...}`` with the end of its output."""
    from mlx_explore.env import child_env

    cmd = [sys.executable, os.path.abspath(__file__), "--child", framework, "--mode", mode,
           "--rounds", str(rounds), "--epochs", str(args.epochs), "--sink", args.sink]  # fmt: skip
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.control:
        cmd.append("--control")
    env = child_env(make_config(mode, args.epochs, args.threads))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        return {"framework": framework, "mode": mode, "error": f"exit {proc.returncode}\n{tail}"}
    return json.loads(lines[-1])


def measure(framework: str, mode: str, args) -> dict:
    """``args.rounds`` rounds split over ``args.processes`` child processes, run one after the
    other, pooled. Each process has its own memory layout and compiled code, which moves its
    ratio by a per cent or two (the A/A control shows it); several processes average that out.
    ``ratio_per_process`` keeps each one's figure."""
    per = [args.rounds // args.processes + (i < args.rounds % args.processes) for i in range(args.processes)]
    parts = [run_child(framework, mode, args, n) for n in per if n > 0]
    bad = [p for p in parts if "error" in p]
    if bad:
        return bad[0]
    out = dict(parts[0])
    for key in ("harness_sps", "harness_reported_sps", "minimal_sps", "harness_epoch_s", "minimal_epoch_s", "val_s", "minimal_val_s"):
        out[key] = [x for p in parts for x in p[key]]
    out["rounds"], out["processes"] = sum(p["rounds"] for p in parts), len(parts)
    out["ratio_per_process"] = [statistics.median(p["harness_sps"]) / statistics.median(p["minimal_sps"]) for p in parts]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    p.add_argument("--mode", choices=("compiled", "eager", "both"), default="compiled")
    p.add_argument("--rounds", type=int, default=15, help="rounds per framework and mode, over all processes")
    p.add_argument("--processes", type=int, default=3, help="child processes per framework and mode (rounds split between them)")
    p.add_argument("--control", action="store_true",
                   help="A/A calibration: a second, independent minimal loop in place of the harness (ratio ~1 expected)")
    p.add_argument("--epochs", type=int, default=40, help="epochs per round (digits: 9 steps each at batch 128)")
    p.add_argument("--threads", type=int, default=None, help="threads per framework (default: all usable cores)")
    p.add_argument("--check", action="store_true", help=f"exit 1 unless every verdict is ok (ratio >= {THRESHOLD})")
    p.add_argument("--sink", choices=("pipe", "devnull", "none"), default="pipe",
                   help="where the harness's events go (pipe: as in worker.py; the others are diagnostics)")
    p.add_argument("--json", metavar="PATH", help="also write the raw per-round figures here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        out = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)  # framework banners go to stderr, as in worker.py
        result = child(args.child, args.mode, args.rounds, args.epochs, args.threads, args.sink, args.control)
        out.write(json.dumps(result) + "\n")
        return 0

    if args.rounds < 1 or args.processes < 1 or args.processes > args.rounds:
        p.error(f"--rounds ({args.rounds}) and --processes ({args.processes}) must be >= 1, with at most one process per round")
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    bad = [f for f in frameworks if f not in FRAMEWORKS]
    if bad:
        p.error(f"unknown framework(s) {bad}; allowed: {', '.join(FRAMEWORKS)}")
    modes = ("compiled", "eager") if args.mode == "both" else (args.mode,)
    runs = [(fw, m) for m in modes for fw in frameworks if not (fw == "sklearn" and m != modes[0])]

    from mlx_explore.bench import usable_cores
    from mlx_explore.env import cpu_model

    print(f"machine: {cpu_model()}, {usable_cores()} usable cores, {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}")  # fmt: skip
    print(f"workload: MLP 256-256 on digits, batch 128, SGD lr 0.01, {args.epochs} epochs per round, "
          f"{args.rounds} alternating rounds (ABBA) in {args.processes} processes after one warm-up round each; "
          f"medians; events to {args.sink}" + ("; A/A CONTROL: 'harness' is a second minimal loop" if args.control else ""))  # fmt: skip
    head = (f"{'framework':<11} {'mode':<9} {'harness/s':>10} {'minimal/s':>10} {'ratio':>6} {'90% CI':>11} {'verdict':<7} "
            f"{'epoch ratio':>19} {'reported/s':>10} {'val ms':>7}")  # fmt: skip
    print(head)
    print("-" * len(head))
    results, failed = [], False
    for fw, mode in runs:
        r = measure(fw, mode, args)
        results.append(r)
        if "error" in r:
            print(f"{fw:<11} {mode:<9} FAILED: {r['error']}")
            failed = True
            continue
        hs, ms = statistics.median(r["harness_sps"]), statistics.median(r["minimal_sps"])
        ratio, lo, hi = round_ratio(r["harness_sps"], r["minimal_sps"])
        eratio, elo, ehi = epoch_ratio(r["harness_epoch_s"], r["minimal_epoch_s"])
        verdict = verdict_of(ratio, hi)
        ok = verdict == "ok"
        failed |= not ok
        r.update(ratio=ratio, ratio_ci90=[lo, hi], epoch_ratio=eratio, epoch_ratio_ci90=[elo, ehi],
                 harness_median=hs, minimal_median=ms, ok=ok, verdict=verdict)  # fmt: skip
        print(f"{fw:<11} {r['mode']:<9} {hs:>10.0f} {ms:>10.0f} {ratio:>6.3f} {lo:>5.3f}-{hi:<5.3f} "
              f"{verdict:<7} {eratio:>6.3f} ({elo:.3f}-{ehi:.3f}) "
              f"{'-' if args.control else format(statistics.median(r['harness_reported_sps']), '.0f'):>10} "
              f"{1e3 * statistics.median(r['val_s']):>7.1f}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print()
    print("harness/s, minimal/s: samples/s over whole rounds (median); ratio = harness / minimal, "
          f"ok when >= {THRESHOLD}; 90% CI: bootstrap over rounds; SLOW: the whole CI is below {THRESHOLD}, "
          "noisy: the ratio is but the CI is not (run again).")
    print("epoch ratio: median epoch time, minimal / harness, over every epoch after each round's first "
          "(90% bootstrap CI); a diagnostic, with far less noise than whole rounds.")
    print("Both validate after every epoch; those calls are timed and subtracted (val ms: the harness's, "
          "median per round). reported/s: the harness's own samples_per_s (median over its timed windows).")
    for r in results:
        if "error" not in r:
            vers = ", ".join(f"{k} {v}" for k, v in r["versions"].items() if v)
            print(f"  {r['framework']} ({r['mode']}): {vers}; device {r['device']}; {r['threads']} threads "
                  f"{r['flags']}; {r['steps']} steps/round; final val loss harness {r['val_loss']['harness']:.4f}, "
                  f"minimal {r['val_loss']['minimal']:.4f}; ratio per process "
                  + " ".join(f"{x:.3f}" for x in r["ratio_per_process"]))  # fmt: skip
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
