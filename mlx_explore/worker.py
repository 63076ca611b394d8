"""Child-process entry point: one framework, one run, events as JSON lines.

``python -m mlx_explore.worker run FRAMEWORK BUNDLE.npz [MODE]`` trains and streams events (MODE
overrides the bundle's compile mode, for ``--mode both``); ``python -m mlx_explore.worker probe
FRAMEWORK`` prints one JSON object with versions and devices.

Events go to the process's original standard output; everything else written to fd 1 (framework
banners, stray prints) is redirected to standard error, so the event stream cannot be corrupted.
The parent (``runner.py``) sets thread-count and allocator variables in the environment before
this interpreter starts, since frameworks read them at import. Here, before the import, the
process is pinned to ``config.threads`` cores and asks the kernel to kill it if the parent dies
(Linux ``PR_SET_PDEATHSIG``), so no run outlives the comparison that started it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import time
import traceback

_T0 = time.perf_counter()


def _clock() -> float:
    return time.perf_counter() - _T0


def _event_stream():
    out = os.fdopen(os.dup(1), "w")  # block-buffered: see make_emitter
    os.dup2(2, 1)  # stray output on fd 1 now lands on stderr
    return out


#: Progress events reach the parent at most this often [s]: LiveCurves redraws at most 10 times a second.
FLUSH_INTERVAL_S = 0.1


def make_emitter(stream, interval: float = FLUSH_INTERVAL_S, clock=time.monotonic):
    """``(emit, flush)`` for an event stream.

    Progress events (``Steps``, ``Step``, ``Epoch``) are kept as objects until ``flush`` finds
    ``interval`` seconds passed since the last write (the training loop calls ``flush()`` at
    every window's end and ``flush(force=True)`` when training ends); then all of them are
    serialized and written at once. Every other event first writes what is pending, then itself,
    at once, so the order on the stream is the order of ``emit`` calls.

    Why: digits at batch 128 has 9 steps an epoch, one window each. Writing at every window and
    epoch cost about 2 % of JAX's MLP throughput, and serializing at every window (a few
    microseconds of ``json.dumps`` in isolation) still cost 1.5-2.5 % in the loop
    (``tests/benchmarks/overhead.py``, 2026-11-21); serialized every 0.1 s it is out of the way.

    Args:
        stream: a block-buffered text stream (the child's event pipe).
        interval: least time between progress writes [s].
        clock: monotonic seconds (injectable for tests).
    """
    from .events import Epoch, Step, Steps

    progress = (Steps, Step, Epoch)
    pending: list = []
    last = [clock()]

    def write_pending() -> None:
        if pending:
            stream.write("".join([event.to_json() + "\n" for event in pending]))
            pending.clear()

    def flush(force: bool = False) -> None:
        now = clock()
        if force or now - last[0] >= interval:
            write_pending()
            stream.flush()
            last[0] = now

    def emit(event) -> None:
        if isinstance(event, progress):
            pending.append(event)
            return
        write_pending()
        stream.write(event.to_json() + "\n")
        stream.flush()
        last[0] = clock()

    return emit, flush


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent exits (``prctl(PR_SET_PDEATHSIG)``, man 2 prctl)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def pin_threads(threads: int | None) -> int:
    """Pin this process to ``threads`` of the cores it may use (all of them for ``None``); return
    the count now usable. Frameworks size their thread pools from this at import."""
    from .bench import usable_cores

    have = usable_cores()
    if threads and threads < have and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
    return usable_cores()


def settle() -> None:
    """Collect garbage once and freeze every object alive now (the framework's modules, the model,
    the data) out of the garbage collector's way (``gc.freeze``, Python >= 3.7). Collections during
    training then scan only what training allocates, not the millions of objects a framework
    import leaves, so a full collection no longer stalls a timed window for tens of milliseconds."""
    import gc

    gc.collect()
    gc.freeze()


def tail(text: str, lines: int = 15) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run(framework: str, bundle_path: str, mode: str | None = None) -> int:
    """Train ``framework`` on the bundle, writing events; returns the process exit code."""
    from .bundle import Bundle
    from .events import Failed, Finished, Skipped, Started
    from . import frameworks as fw_registry
    from .frameworks import trainer_module
    from .frameworks.common import DeviceUnavailable, Diverged, fit

    stream = _event_stream()
    _die_with_parent()
    emit, flush = make_emitter(stream)

    try:
        bundle = Bundle.load(bundle_path)
        if mode:
            bundle = dataclasses.replace(bundle, config=bundle.config.model_copy(update={"mode": mode}))
        config = bundle.config
        cores = pin_threads(config.threads)
        threads = min(config.threads or cores, cores)
        t = time.perf_counter()
        try:
            module = trainer_module(framework)
        except (ImportError, OSError) as exc:
            if framework in TREES_ONLY:
                # Installed (the runner found it) but it cannot load here: a broken install, or a
                # shared library it needs is missing (LightGBM's libgomp: an OSError). Not a failure
                # of the run: the column cannot run on this machine, and the install hint says how.
                emit(Skipped(framework, status="skipped", reason=f"{fw_registry.get(framework).title} cannot be imported "
                                                                 f"here ({type(exc).__name__}: {exc}); "
                                                                 f"{TREES_ONLY[framework]}"[:500]))  # fmt: skip
                return 0
            if isinstance(exc, OSError):
                raise
            backend = fw_registry.get(framework).keras_backend if framework in fw_registry.REGISTRY else None
            if backend is None or framework == "tensorflow":
                raise
            # Keras installed beside a backend it cannot run on (a version mismatch): this column
            # cannot run here, which is not a failure of the run.
            emit(Skipped(framework, status="skipped", reason=f"Keras cannot run on {backend} here: "
                                                             f"{type(exc).__name__}: {exc}"[:500]))  # fmt: skip
            return 0
        import_s = time.perf_counter() - t
        flags = {"cpu_affinity": cores, **module.configure(config, threads), **_process_flags()}
        x_train = bundle.inputs(bundle.data.x_train)
        trainer = module.Trainer(bundle.spec, bundle.weights, config, x_train, bundle.data.y_train)
        # Boosting (gbdt): a round is a step and an epoch (frameworks.common.train_boosting).
        boosting = "boosting" in trainer.capabilities
        total, epochs = (config.rounds, config.rounds) if boosting else (bundle.total_steps, bundle.order.epochs)
        emit(Started(framework, device=trainer.device, device_name=trainer.device_name, device_kind=trainer.device_kind,
                     versions=module.versions(), flags=flags, import_s=import_s,
                     total_steps=total, epochs=epochs, pid=os.getpid(), time_s=_clock()))  # fmt: skip
        settle()
        metrics, notes = fit(trainer, bundle, emit, _clock, flush)
        metrics.update(import_s=import_s, n_params=None if boosting else bundle.spec.n_params())
        if not boosting:  # a network's size: its float32 parameters (a boosting library measures its own)
            metrics["model_bytes"] = 4 * bundle.spec.n_params()
        if boosting:
            notes["n_params"] = "trees have no fixed parameter count: see trees, leaves and model_bytes"
        if config.export == "onnx":
            export_phase(framework, trainer, bundle, threads, metrics, notes)
        else:
            from .deploy import ONNX_METRICS

            metrics.update(dict.fromkeys(ONNX_METRICS))
            notes.update(dict.fromkeys(ONNX_METRICS, "not exported (export='none'; --export onnx exports the model)"))
        profile = profile_phase(framework, trainer, bundle, notes)
        emit(Finished(framework, device=trainer.device, metrics=metrics, notes=notes, time_s=_clock(), profile=profile))
        return 0
    except DeviceUnavailable as exc:
        emit(Skipped(framework, status="skipped", reason=str(exc)))
        return 0
    except Diverged as exc:
        emit(Failed(framework, status="diverged", reason=str(exc), time_s=_clock()))
        return 0
    except BaseException as exc:  # noqa: BLE001 - report every failure, including KeyboardInterrupt
        emit(Failed(framework, status="failed", reason=f"{type(exc).__name__}: {exc}".strip()[:500],
                    error_tail=tail(traceback.format_exc()), time_s=_clock()))  # fmt: skip
        return 1


#: The frameworks that train gradient-boosted trees only, and what installs them (``pyproject.toml``'s
#: ``gbdt`` extra). One that is installed but cannot be imported in the child is ``skipped`` with this.
TREES_ONLY = {
    "xgboost": "pip install 'mlx-explore[gbdt]' (xgboost-cpu)",
    "lightgbm": "pip install 'mlx-explore[gbdt]' (lightgbm; on Linux it needs the OpenMP runtime libgomp1)",
}

#: The folder a profiled run writes its traces to (set by the runner, ``child.run_child``).
TRACE_DIR_VAR = "MLX_EXPLORE_TRACE_DIR"
#: The folder a run with ``export="onnx"`` writes ``model.onnx`` to (set by the runner).
MODEL_DIR_VAR = "MLX_EXPLORE_MODEL_DIR"


def export_phase(framework: str, trainer, bundle, threads: int, metrics: dict, notes: dict) -> None:
    """Phase 5b, with ``config.export == "onnx"``: the trained model exported to ONNX and timed in
    ONNX Runtime like the native inference phase (``deploy.export_phase``), into ``metrics`` (the
    ``deploy.ONNX_METRICS``) and ``notes`` (``onnx``: the converter and provider, or the error;
    ``onnx_path``: the file). A failed export leaves the figures ``None``; the run stays ``ok``."""
    from . import deploy

    out_dir = os.environ.get(MODEL_DIR_VAR)
    if not out_dir:
        metrics.update(dict.fromkeys(deploy.ONNX_METRICS))
        notes["onnx"] = f"not exported: no model folder given (${MODEL_DIR_VAR})"
        return
    x_test = bundle.inputs(bundle.data.x_test)
    figures, why = deploy.export_phase(framework, trainer, x_test, trainer.logits(x_test), out_dir,
                                       bundle.config.latency_steps or 20, threads, trainer.device_kind)  # fmt: skip
    path = figures.pop("onnx_path")
    metrics.update(figures)
    notes.update(why)
    for key in deploy.ONNX_METRICS:  # a figure that is None says why, as every other one does
        if metrics[key] is None:
            notes.setdefault(key, why.get("onnx", "not exported"))
    if path:
        notes["onnx_path"] = path


def profile_phase(framework: str, trainer, bundle, notes: dict) -> dict | None:
    """Phase 6, after every measured phase: ``config.profile_steps`` steps under the framework's own
    profiler (``profiling.profile_steps``), traces into ``$MLX_EXPLORE_TRACE_DIR``. Returns
    ``Profile.to_dict()`` without the one-step trace events (written to ``step_events.json`` in the
    trace folder instead), or ``None`` when not asked for or when profiling failed: then
    ``notes["profile"]`` says why and every measured figure of the run stands."""
    steps = bundle.config.profile_steps
    if not steps:
        return None
    if "boosting" in trainer.capabilities:
        notes["profile"] = "not profiled: gradient-boosted trees have no training step to profile"
        return None
    out_dir = os.environ.get(TRACE_DIR_VAR)
    if not out_dir:
        notes["profile"] = f"not profiled: no trace folder given (${TRACE_DIR_VAR})"
        return None
    try:
        from . import profiling

        result = profiling.profile_steps(framework, trainer, bundle, steps, out_dir).to_dict()
        events = result.pop("step_events")
        path = os.path.join(out_dir, "step_events.json")
        with open(path, "w") as f:
            json.dump({"traceEvents": events}, f)
        result["step_events_file"], result["trace_dir"] = path, out_dir
        return result
    except Exception as exc:  # noqa: BLE001 - a profiler that fails costs the profile, never the run
        notes["profile"] = f"not profiled: {type(exc).__name__}: {exc}"[:500]
        return None


def _process_flags() -> dict:
    """Settings of this process that every framework shares: the thread variables the runner set
    and the BLAS pools NumPy uses (the MFU reference), read back with ``threadpoolctl``."""
    from threadpoolctl import threadpool_info

    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS") if k in os.environ}
    blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    return {"env_threads": env, "numpy_blas_threads": max(blas, default=None)}


def probe(framework: str) -> int:
    """Print ``{"framework", "versions", "devices": [...]}`` for one framework."""
    stream = _event_stream()
    from .frameworks import trainer_module

    module = trainer_module(framework)  # every adapter has list_devices and versions (frameworks/contract.py)
    stream.write(json.dumps({"framework": framework, "versions": module.versions(), "devices": module.list_devices()}) + "\n")
    stream.flush()
    return 0


def main(argv: list[str]) -> int:
    if len(argv) in (3, 4) and argv[0] == "run":
        return run(argv[1], argv[2], argv[3] if len(argv) == 4 else None)
    if len(argv) == 2 and argv[0] == "probe":
        return probe(argv[1])
    print("usage: python -m mlx_explore.worker run FRAMEWORK BUNDLE.npz [MODE] | probe FRAMEWORK", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
