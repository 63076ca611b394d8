"""Conformance checks of the adapter contract (:mod:`mlx_explore.frameworks.contract`), like
scikit-learn's ``check_estimator``: plain functions that return the list of problems found (empty:
the adapter conforms), so a test can also feed them adapters broken on purpose.

* :func:`check_adapter`: names, signatures and declarations of a ``trainer.py`` module (imports
  nothing of the framework beyond the module given).
* :func:`check_models`: the ``MODEL_CODE`` declaration of ``models.py``, read with :mod:`ast`.
* :func:`check_behaviour`: a real trainer on a tiny bundle: weights round-trip bit for bit, the
  first step's loss, shapes and dtypes of losses and logits, device errors.

``python -m mlx_explore.frameworks.conformance NAME`` runs all three for one framework in a fresh
process and prints ``{"framework", "problems"}`` as JSON; ``tests/test_adapters.py`` runs it for
every framework in ``REGISTRY``.
"""

from __future__ import annotations

import inspect
import json
import math
import sys
from typing import Any, Callable, Sequence

import numpy as np

from .contract import (
    BUILD_STEPS, CAPABILITIES, DEVICE_KINDS, MODULE_FUNCTIONS, REQUIRED_FLAGS, TRAINER_METHODS, DeviceUnavailable,
    _members, _module_defs, _trainer_init, model_code, models_path,
)  # fmt: skip


def _shape(fn: Callable) -> list[tuple[str, Any, Any]]:
    """A signature without annotations: ``[(name, kind, default)]``."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def _call_form(fn: Callable, quotes: bool = False) -> str:
    """``(config, threads: int)``: a signature without its return annotation (quotes dropped unless asked)."""
    text = str(inspect.signature(fn)).split(" ->")[0]
    return text if quotes else text.replace("'", "")


def _signature_problem(where: str, got: Callable, ref: Callable) -> str | None:
    try:
        have = _shape(got)
    except (TypeError, ValueError):
        return f"{where}: has no inspectable signature"
    if have != _shape(ref):
        return f"{where}: signature {_call_form(got, quotes=True)} differs from the contract's {_call_form(ref)}"
    return None


def check_adapter(module: Any, name: str | None = None) -> list[str]:
    """Problems with an adapter module's names, signatures and declarations (empty: none).

    Checks that every :data:`MODULE_FUNCTIONS` name is a module-level function with the contract's
    parameters (names, kinds, defaults; annotations are not compared), and that ``Trainer`` is a
    class with the contract's constructor, :data:`TRAINER_METHODS`, :data:`BUILD_STEPS`, a ``name``
    (equal to ``name`` when given) and a ``capabilities`` frozenset whose methods it implements,
    with no capability method it does not declare. Imports nothing and calls nothing.

    Args:
        module: the imported ``frameworks/<name>/trainer.py`` (or any object with its attributes).
        name: the registry name the adapter is checked as.
    """
    label = name or getattr(module, "__name__", "adapter")
    problems = []
    for fn_name, ref in MODULE_FUNCTIONS.items():
        got = getattr(module, fn_name, None)
        if got is None:
            problems.append(f"{label}: no module-level function {fn_name}{_call_form(ref)}")
        elif isinstance(got, type) or not callable(got):
            problems.append(f"{label}: {fn_name} is not a function")
        else:
            problems.append(_signature_problem(f"{label}.{fn_name}", got, ref))
    trainer = getattr(module, "Trainer", None)
    if not isinstance(trainer, type):
        problems.append(f"{label}: no class Trainer")
        return [p for p in problems if p]
    problems.append(_signature_problem(f"{label}.Trainer.__init__", trainer.__init__, _trainer_init))
    for what, members in (("method", TRAINER_METHODS), ("build step", BUILD_STEPS)):
        for meth, ref in members.items():
            got = getattr(trainer, meth, None)
            if got is None:
                problems.append(f"{label}: Trainer has no {what} {meth}{_call_form(ref)}")
            else:
                problems.append(_signature_problem(f"{label}.Trainer.{meth}", got, ref))
    tname = getattr(trainer, "name", None)
    if not isinstance(tname, str):
        problems.append(f"{label}: Trainer.name is not a str")
    elif name is not None and tname != name:
        problems.append(f"{label}: Trainer.name is {tname!r}, not {name!r}")
    caps = getattr(trainer, "capabilities", None)
    if not isinstance(caps, frozenset):
        problems.append(f"{label}: Trainer.capabilities is {type(caps).__name__}, not a frozenset of {sorted(CAPABILITIES)}")
        caps = frozenset()
    for cap in sorted(caps - set(CAPABILITIES)):
        problems.append(f"{label}: Trainer declares unknown capability {cap!r} (known: {', '.join(CAPABILITIES)})")
    for cap, protocol in CAPABILITIES.items():
        for meth, ref in _members(protocol).items():
            got = getattr(trainer, meth, None)
            if cap in caps and got is None:
                problems.append(f"{label}: Trainer declares {cap!r} but has no method {meth}")
            elif cap in caps:
                problems.append(_signature_problem(f"{label}.Trainer.{meth}", got, ref))
            elif got is not None:  # implemented but undeclared: fit would never call it
                problems.append(f"{label}: Trainer has {meth} but does not declare {cap!r} in capabilities, "
                                "so it is never called")
    return [p for p in problems if p]


def check_models(name: str, kinds: Sequence[str] | None = None) -> list[str]:
    """Problems with ``frameworks/<name>/models.py``'s declaration (empty: none): ``MODEL_CODE``
    names exactly the model kinds the framework expresses (``kinds``; default
    ``REGISTRY[name].models``), each a module-level class or function. Imports no framework."""
    from . import REGISTRY

    label = f"{name} models.py"
    kinds = tuple(REGISTRY[name].models if kinds is None else kinds)
    try:
        path = models_path(name)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        code = model_code(name, text)
    except LookupError as exc:
        return [f"{label}: {exc}"]
    defs, _ = _module_defs(text)
    problems = []
    if set(code) != set(kinds):
        problems.append(f"{label}: MODEL_CODE covers {sorted(code)}, the framework expresses {sorted(kinds)}")
    for kind, obj in code.items():
        if obj not in defs:
            problems.append(f"{label}: MODEL_CODE[{kind!r}] = {obj!r} is no module-level class or function")
    return problems


# ------------------------------------------------------------------ behaviour (imports the framework)


def _tiny_bundle(model: str, **overrides):
    from ..bundle import prepare
    from ..config import RunConfig

    kwargs = dict(model=model, dataset="digits", hidden=(8,), epochs=1, batch_size=16, optimizer="momentum", lr=0.05,
                  device="cpu", mode="eager", precision="fp32", latency_steps=0)  # fmt: skip
    return prepare(RunConfig.build(**{**kwargs, **overrides}))


def _check_devices(module: Any, name: str, unavailable: Sequence[str]) -> list[str]:
    from . import REGISTRY

    problems = []
    supported = REGISTRY[name].devices
    for kind in DEVICE_KINDS:
        must_fail = kind in unavailable or (kind != "auto" and kind not in supported)
        try:
            module.select_device(kind)
        except DeviceUnavailable:
            if kind in ("auto", "cpu"):
                problems.append(f"{name}: select_device({kind!r}) raised DeviceUnavailable; every framework runs on the CPU")
            continue
        except Exception as exc:  # noqa: BLE001 - any other error breaks the contract
            problems.append(f"{name}: select_device({kind!r}) raised {type(exc).__name__}: {exc}, not DeviceUnavailable")
            continue
        if must_fail:
            why = "not visible here" if kind in unavailable else f"not in the registry's devices {supported}"
            problems.append(f"{name}: select_device({kind!r}) returned a device although {kind} is {why}; "
                            "it must raise DeviceUnavailable")
    try:
        module.select_device("quantum")
        problems.append(f"{name}: select_device('quantum') returned; it must raise ValueError")
    except ValueError:
        pass
    except Exception as exc:  # noqa: BLE001
        problems.append(f"{name}: select_device('quantum') raised {type(exc).__name__}, not ValueError")
    return problems


def _check_configure(module: Any, label: str, cfg, threads: int) -> tuple[list[str], bool]:
    """``configure``'s flags: ``(problems, usable)``; ``usable`` is False when it returned no dict."""
    problems = []
    flags = module.configure(cfg, threads)
    if not isinstance(flags, dict):
        return [f"{label}: configure returned {type(flags).__name__}, not dict"], False
    missing = [k for k in REQUIRED_FLAGS if k not in flags]
    if missing:
        problems.append(f"{label}: configure's flags lack {missing}")
    try:
        json.dumps(flags)
    except (TypeError, ValueError) as exc:
        problems.append(f"{label}: configure's flags are not JSON-ready ({exc})")
    if flags.get("intra_op_threads") != threads:
        problems.append(f"{label}: configure read back intra_op_threads={flags.get('intra_op_threads')}, asked for {threads}")
    return problems, True


def _check_construction(module: Any, label: str, bundle) -> tuple[Any, list[str]]:
    """Build the trainer on ``bundle``: ``(trainer, problems)`` with its stored attributes and the
    capabilities of the instance (a subset of its class's; ``boosting`` exactly for ``gbdt``)."""
    cfg, spec = bundle.config, bundle.spec
    problems = []
    x_train = bundle.inputs(bundle.data.x_train)
    trainer = module.Trainer(spec, bundle.weights, cfg, x_train, bundle.data.y_train)
    if trainer.spec is not spec or trainer.config is not cfg:
        problems.append(f"{label}: the constructor does not store spec and config as given")
    for attr in ("device", "device_name", "device_kind"):
        if not isinstance(getattr(trainer, attr, None), str):
            problems.append(f"{label}: Trainer.{attr} is not a str after construction")
    if getattr(trainer, "device_kind", None) != "cpu":
        problems.append(f"{label}: device='cpu' gave device_kind={getattr(trainer, 'device_kind', None)!r}")
    caps, declared = getattr(trainer, "capabilities", None), getattr(type(trainer), "capabilities", frozenset())
    if not isinstance(caps, frozenset) or not caps <= declared:
        problems.append(f"{label}: the trainer's capabilities {caps!r} are not a subset of its class's {sorted(declared)}")
    elif ("boosting" in caps) != (spec.kind == "gbdt"):
        problems.append(f"{label}: a {spec.kind} trainer {'declares' if 'boosting' in caps else 'lacks'} the capability "
                        f"'boosting' (gradient-boosted trees, exactly for model 'gbdt')")  # fmt: skip
    return trainer, problems


def _check_run(module: Any, name: str, bundle, threads: int) -> list[str]:
    """One trainer on ``bundle``: construction, weights, steps, losses, logits, capabilities."""
    from ..metrics import cross_entropy

    cfg, spec = bundle.config, bundle.spec
    label = f"{name} {cfg.model}/{cfg.mode}/{cfg.precision}"
    problems, usable = _check_configure(module, label, cfg, threads)
    if not usable:
        return problems
    trainer, more = _check_construction(module, label, bundle)
    problems += more

    def weight_problems(got: dict, when: str, exact: bool) -> list[str]:
        out = []
        if list(got) != list(spec.shapes()):
            return [f"{label}: weights() {when} has names {list(got)}, not {list(spec.shapes())} (canonical order)"]
        for k, w in bundle.weights.items():
            g = got[k]
            if not isinstance(g, np.ndarray) or g.dtype != np.float32 or g.shape != w.shape:
                out.append(f"{label}: weights()[{k!r}] {when} is {type(g).__name__} {getattr(g, 'dtype', '')} "
                           f"{getattr(g, 'shape', '')}, not float32 {w.shape}")  # fmt: skip
            elif exact and not np.array_equal(g, w):
                diff = float(np.abs(g.astype(np.float64) - w).max())
                out.append(f"{label}: weights()[{k!r}] right after loading differs from the canonical weights "
                           f"(max |difference| {diff:.3g}); loading must round-trip bit for bit")  # fmt: skip
        return out

    problems += weight_problems(trainer.weights(), "after loading", exact=True)

    rows = bundle.order.epoch(0)[:3]
    first = rows[0]
    logits0 = trainer.logits(bundle.inputs(bundle.data.x_train[first]))
    n_classes = spec.n_classes
    if not isinstance(logits0, np.ndarray) or logits0.dtype != np.float32 or logits0.shape != (len(first), n_classes):
        problems.append(f"{label}: logits() gave {type(logits0).__name__} {getattr(logits0, 'dtype', '')} "
                        f"{getattr(logits0, 'shape', '')}, not float32 {(len(first), n_classes)}")  # fmt: skip
        return problems
    idxs = trainer.indices(rows)
    if len(idxs) != len(rows):
        problems.append(f"{label}: indices() of {len(rows)} rows has length {len(idxs)}")
        return problems
    handles = [trainer.train_step(idxs[i]) for i in range(len(rows))]
    losses = trainer.losses(handles)
    if not isinstance(losses, np.ndarray) or losses.dtype != np.float64 or losses.shape != (len(rows),):
        problems.append(f"{label}: losses() gave {type(losses).__name__} {getattr(losses, 'dtype', '')} "
                        f"{getattr(losses, 'shape', '')}, not float64 {(len(rows),)}")  # fmt: skip
        return problems
    if not np.isfinite(losses).all():
        problems.append(f"{label}: losses {losses.tolist()} are not all finite")
    expected = cross_entropy(logits0, bundle.data.y_train[first])
    rtol = 2e-2 if cfg.precision == "bf16" else 1e-4
    if not math.isclose(losses[0], expected, rel_tol=rtol):
        problems.append(f"{label}: step 1 loss {losses[0]:.7f} is not the batch's loss before the update "
                        f"{expected:.7f} (cross-entropy of logits(); rtol {rtol:g})")  # fmt: skip
    after = trainer.weights()
    problems += weight_problems(after, "after 3 steps", exact=False)
    if list(after) == list(spec.shapes()) and all(np.array_equal(after[k], w) for k, w in bundle.weights.items()):
        problems.append(f"{label}: weights() unchanged after 3 training steps")
    x_val = bundle.inputs(bundle.data.x_val)
    val = trainer.logits(x_val)
    if not isinstance(val, np.ndarray) or val.dtype != np.float32 or val.shape != (len(x_val), n_classes):
        problems.append(f"{label}: logits() of the validation split gave {getattr(val, 'dtype', '')} "
                        f"{getattr(val, 'shape', '')}, not float32 {(len(x_val), n_classes)}")  # fmt: skip
    elif not np.isfinite(val).all():
        problems.append(f"{label}: logits() of the validation split are not all finite")
    if "device_memory" in trainer.capabilities and trainer.peak_device_mb() is not None:
        problems.append(f"{label}: peak_device_mb() on the CPU is {trainer.peak_device_mb()}, not None")
    if "device_matmul" in trainer.capabilities and trainer.matmul() is not None:
        problems.append(f"{label}: matmul() on the CPU is not None")
    return problems


def _check_boosting_run(module: Any, name: str, bundle, threads: int) -> list[str]:
    """One boosting trainer (capability ``boosting``) on a ``gbdt`` bundle: construction, no weights,
    no per-batch step, ``boost``'s rounds in order with finite figures, the last round's validation
    and training losses equal to those of ``logits()`` (on the rows of ``common.train_score_rows``),
    the settings read back (``boost_params``), ``model_bytes``."""
    from ..metrics import cross_entropy
    from .common import GBDT_BINS, GBDT_L2, train_score_rows

    cfg, spec = bundle.config, bundle.spec
    label = f"{name} gbdt on {cfg.dataset}"
    problems, usable = _check_configure(module, label, cfg, threads)
    if not usable:
        return problems
    trainer, more = _check_construction(module, label, bundle)
    problems += more
    if "boosting" not in trainer.capabilities:
        return problems
    if trainer.weights() != {}:
        problems.append(f"{label}: weights() is not {{}}: trees have no canonical weights (ModelSpec.shapes() is empty)")
    try:
        trainer.train_step(trainer.indices(bundle.order.epoch(0)[:1])[0])
        problems.append(f"{label}: train_step returned; a boosting trainer has no per-batch step: it must raise "
                        "NotImplementedError")  # fmt: skip
    except NotImplementedError:
        pass
    except Exception as exc:  # noqa: BLE001
        problems.append(f"{label}: train_step raised {type(exc).__name__}, not NotImplementedError")
    x_val, y_val = bundle.inputs(bundle.data.x_val), bundle.data.y_val
    calls: list[tuple] = []
    trainer.boost(x_val, y_val, lambda *args: calls.append(args))
    rounds = [c[0] for c in calls]
    if rounds != list(range(cfg.rounds + 1)):
        return problems + [f"{label}: boost recorded rounds {rounds}, not 0 (the set-up) then 1..{cfg.rounds} in order"]
    for r, seconds, cpu, train_loss, val_loss, val_accuracy in calls:
        if not (seconds >= 0 and cpu >= 0):
            problems.append(f"{label}: round {r} recorded {seconds} s, {cpu} CPU s")
        if r and not (np.isfinite(train_loss) and np.isfinite(val_loss) and 0 <= val_accuracy <= 1):
            problems.append(f"{label}: round {r} recorded train loss {train_loss}, val loss {val_loss}, val accuracy "
                            f"{val_accuracy}")  # fmt: skip
    logits = trainer.logits(x_val)
    n_classes = spec.n_classes
    if not isinstance(logits, np.ndarray) or logits.dtype != np.float32 or logits.shape != (len(x_val), n_classes):
        return problems + [f"{label}: logits() gave {type(logits).__name__} {getattr(logits, 'dtype', '')} "
                           f"{getattr(logits, 'shape', '')}, not float32 {(len(x_val), n_classes)}"]  # fmt: skip
    if not np.isfinite(logits).all():
        return problems + [f"{label}: logits() of the validation split are not all finite"]
    expected = cross_entropy(logits, y_val)
    if not math.isclose(calls[-1][4], expected, rel_tol=1e-3):
        problems.append(f"{label}: the last round's validation loss {calls[-1][4]:.7f} is not the cross-entropy of "
                        f"logits() {expected:.7f} (rtol 1e-3)")  # fmt: skip
    rows = train_score_rows(len(bundle.data.y_train), cfg.seed)
    x_scored, y_scored = (bundle.data.x_train, bundle.data.y_train) if rows is None else (bundle.data.x_train[rows], bundle.data.y_train[rows])
    expected = cross_entropy(trainer.logits(bundle.inputs(x_scored)), y_scored)
    if not math.isclose(calls[-1][3], expected, rel_tol=1e-3):
        problems.append(f"{label}: the last round's training loss {calls[-1][3]:.7f} is not the cross-entropy of "
                        f"logits() on the rows of train_score_rows {expected:.7f} (rtol 1e-3)")  # fmt: skip
    params = trainer.boost_params()
    try:
        json.dumps(params)
    except (TypeError, ValueError) as exc:
        problems.append(f"{label}: boost_params() is not JSON-ready ({exc})")
    trees = cfg.rounds * (1 if n_classes == 2 else n_classes)
    want = {"rounds": cfg.rounds, "trees": trees, "max_depth": cfg.max_depth, "max_bins": GBDT_BINS, "l2": GBDT_L2,
            "threads": threads}  # fmt: skip
    for key, value in want.items():
        if params.get(key) != value:
            problems.append(f"{label}: boost_params() read back {key}={params.get(key)!r}, expected {value!r}")
    if not math.isclose(params.get("learning_rate", -1.0), cfg.lr, rel_tol=1e-6):  # XGBoost keeps it in float32
        problems.append(f"{label}: boost_params() read back learning_rate={params.get('learning_rate')!r}, not {cfg.lr}")
    if not (isinstance(params.get("deepest"), int) and 0 <= params["deepest"] <= cfg.max_depth):
        problems.append(f"{label}: boost_params() read back deepest={params.get('deepest')!r}, not within max_depth "
                        f"{cfg.max_depth}")  # fmt: skip
    if not (isinstance(params.get("leaves"), int) and params["leaves"] >= trees):
        problems.append(f"{label}: boost_params() read back leaves={params.get('leaves')!r}, fewer than the {trees} trees")
    size = trainer.model_bytes()
    if not (isinstance(size, int) and size > 0):
        problems.append(f"{label}: model_bytes() is {size!r}, not a positive int")
    return problems


def check_behaviour(module: Any, name: str, threads: int = 1, unavailable: Sequence[str] = (),
                    modes: Sequence[str] = ("eager",)) -> list[str]:  # fmt: skip
    """Problems with a real adapter's behaviour on tiny digits bundles (empty: none).

    For ``select_device``: ``auto`` and ``cpu`` return; kinds in ``unavailable`` (devices not on
    this machine) and kinds outside ``REGISTRY[name].devices`` raise :class:`DeviceUnavailable`;
    an unknown kind raises ``ValueError``; nothing else is raised. ``list_devices`` and
    ``versions`` return lists and dicts of strings. Then, for every model kind the framework
    expresses in each of ``modes`` (fp32), and the MLP in bf16 where the framework supports it, on
    the CPU: ``configure`` returns JSON-ready :data:`REQUIRED_FLAGS` with ``threads`` read back;
    the constructor stores ``spec`` and ``config``; ``weights()`` right after construction equals
    the canonical weights bit for bit (float32, canonical names and order); ``logits`` is float32
    ``(N, C)`` and finite; ``indices``/``train_step``/``losses`` give one float64 finite loss per
    step, step 1's equal to the cross-entropy of the logits before it; the weights change; declared
    capabilities return ``None`` on the CPU; the instance's capabilities are a subset of its class's,
    with ``boosting`` exactly for ``gbdt``. A ``gbdt`` (capability ``boosting``) is checked once, not
    per mode, on digits (10 classes) and breast_cancer (binary), 3 rounds of depth 3
    (:func:`_check_boosting_run`). Imports the framework: call it in its own process
    (:func:`main`).
    """
    from . import REGISTRY, unsupported_reason

    problems = check_adapter(module, name)
    if problems:
        return problems
    # Trees have one mode: gbdt is checked once, on a multi-class and a binary data set.
    runs = [(model, mode, "fp32") for mode in modes for model in REGISTRY[name].models if model != "gbdt" or mode == modes[0]]
    if unsupported_reason(name, "mlp", "cpu", "bf16") is None:
        runs.append(("mlp", modes[0], "bf16"))  # last: it sets global dtype policies (Keras)
    for model, mode, precision in runs:
        for dataset in ("digits", "breast_cancer") if model == "gbdt" else ("digits",):
            try:
                if model == "gbdt":
                    bundle = _tiny_bundle(model, mode=mode, dataset=dataset, rounds=3, max_depth=3)
                    problems += _check_boosting_run(module, name, bundle, threads)
                else:
                    problems += _check_run(module, name, _tiny_bundle(model, mode=mode, precision=precision), threads)
            except Exception as exc:  # noqa: BLE001 - report and go on with the next run
                where = f"gbdt on {dataset}" if model == "gbdt" else f"{model}/{mode}/{precision}"
                problems.append(f"{name} {where}: {type(exc).__name__}: {exc}")
    if unsupported_reason(name, "cnn", "cpu") is not None:
        cnn = _tiny_bundle("cnn")
        try:
            module.build_model(cnn.spec, cnn.config)
            problems.append(f"{name}: build_model of a cnn returned, though the registry says it is unsupported; "
                            "it must raise NotImplementedError")
        except NotImplementedError:
            pass
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{name}: build_model of an unsupported cnn raised {type(exc).__name__}, not NotImplementedError")
    # After the runs: configure comes before anything that initializes the framework (TensorFlow
    # refuses thread settings once a device was listed), as in the worker.
    problems += _check_devices(module, name, unavailable)
    devices, versions = module.list_devices(), module.versions()
    if not (isinstance(devices, list) and devices and all(isinstance(d, str) for d in devices)):
        problems.append(f"{name}: list_devices() returned {devices!r}, not a non-empty list of str")
    if not (isinstance(versions, dict) and versions and all(isinstance(k, str) and isinstance(v, str) for k, v in versions.items())):
        problems.append(f"{name}: versions() returned {versions!r}, not a non-empty dict of str to str")
    return problems


def main(argv: list[str] | None = None) -> int:
    """``python -m mlx_explore.frameworks.conformance NAME [--threads N] [--unavailable gpu,tpu]
    [--modes eager,compiled]``: every check for one framework, in this fresh process; prints
    ``{"framework": NAME, "problems": [...]}`` as the last line; exit status 1 when there are any."""
    import argparse

    from ..worker import pin_threads

    parser = argparse.ArgumentParser(prog="python -m mlx_explore.frameworks.conformance")
    parser.add_argument("name")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--unavailable", default="", help="device kinds this machine lacks, comma-separated")
    parser.add_argument("--modes", default="eager")
    args = parser.parse_args(argv)
    from . import REGISTRY, trainer_module

    if args.name not in REGISTRY:
        parser.error(f"unknown framework {args.name!r}; allowed: {', '.join(REGISTRY)}")
    threads = min(args.threads, pin_threads(args.threads))  # before the import, as worker.run does
    problems = check_models(args.name)
    module = trainer_module(args.name)
    unavailable = tuple(k for k in args.unavailable.split(",") if k)
    problems += check_behaviour(module, args.name, threads, unavailable, tuple(args.modes.split(",")))
    print(json.dumps({"framework": args.name, "problems": problems}), flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    # Run the package's copy of this module, not __main__'s: the trainers raise the package's
    # DeviceUnavailable, which a second copy of this module would not catch.
    from mlx_explore.frameworks.conformance import main as _main

    sys.exit(_main())
