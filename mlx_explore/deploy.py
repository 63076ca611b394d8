"""The deployment view: the trained model exported to ONNX and run with ONNX Runtime.

After training, :func:`export_phase` writes the run's model to ``model.onnx`` with the maintained
converter of its framework (``frameworks/<package>/export.py``, each ``export_onnx(trainer, path,
example)``), runs it with ONNX Runtime and measures it exactly as
:func:`mlx_explore.frameworks.common.inference` measures the framework itself, so the two sit side
by side: the same host inputs, the same calls, the same thread count.

========== ==================================== ========================================================
framework  converter                            note
========== ==================================== ========================================================
torch      ``torch.onnx.export(dynamo=True)``   needs ``onnxscript``; NHWC -> NCHW inside the graph
jax        ``jax2onnx.to_onnx``                 Linen ``apply`` with the trained params as constants
tensorflow ``tf2onnx.convert.from_function``    ``from_keras`` fails on Keras 3 models
sklearn    ``skl2onnx.to_onnx``                 output made log-probabilities, as ``Trainer.logits``
keras-*    the backend's converter              ``frameworks/keras/export.py`` (keras-jax's CNN fails)
========== ==================================== ========================================================

Figures (:data:`ONNX_METRICS`): ``onnx_infer_ms_p50/p95/p99`` [ms], batch-1 latency, host input to
host output, over ``n`` calls after 3 warm-ups; ``onnx_infer_samples_per_s`` [samples/s], median over
``max(3, n // 20)`` calls of ``common.INFER_BATCH`` samples (the test split tiled with ``np.resize``)
after 1 warm-up; ``onnx_model_bytes`` [bytes], the ``.onnx`` file (plus any external-data sidecar);
``onnx_max_abs_diff``, ``max |ORT logits - framework logits|`` over the test inputs;
``onnx_logits_match``, 1.0 when every logit agrees within :data:`LOGITS_ATOL` + :data:`LOGITS_RTOL`
x ``|framework logit|`` (``numpy.allclose``'s rule), else 0.0.

Why a relative part in the tolerance: both sides compute in float32 but in different kernels and
summation orders, whose rounding grows with the size of the logit (about 1e-7 of the values
summed). 1e-4 absolute is the figure asked for ("ONNX Runtime's logits equal the framework's own
within 1e-4"); the relative 1e-4 only matters for logits above 1 in magnitude, where 1e-4 absolute is
tighter than float32 can promise after a few thousand multiply-adds. Measured on ``digits`` after 5
SGD steps (``tests/test_onnx.py``): at most 1e-6 for every framework and model. Scikit-learn's
log-probabilities can differ more where a probability nears 0 (``frameworks/sklearn/export.py``).

Fairness: the session gets ``intra_op_num_threads = threads`` (the framework run's count) and
``inter_op_num_threads = 1`` (ORT's sequential executor runs one node at a time), the default graph
optimizations (``ORT_ENABLE_ALL``), and the ``CPUExecutionProvider``; with ``device_kind == "gpu"``
the ``CUDAExecutionProvider`` comes first where this onnxruntime build has it (the ``onnxruntime-gpu``
wheel), and the note says which provider ran.

This module imports no framework at module level: ``export_phase`` imports the framework's export
module (which imports the framework and its converter) when it is called, in the run's own process.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os

import numpy as np

from . import bench

#: Figures :func:`export_phase` returns (every key always present; ``None`` when the export failed).
ONNX_METRICS = (
    "onnx_infer_ms_p50",
    "onnx_infer_ms_p95",
    "onnx_infer_ms_p99",
    "onnx_infer_samples_per_s",
    "onnx_model_bytes",
    "onnx_max_abs_diff",
    "onnx_logits_match",
)

#: Logits agree when ``|ort - native| <= LOGITS_ATOL + LOGITS_RTOL * |native|`` everywhere (module docstring).
LOGITS_ATOL = 1e-4
LOGITS_RTOL = 1e-4

#: Framework -> (the converter call, the distributions whose versions are recorded).
CONVERTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "torch": ("torch.onnx.export(dynamo=True)", ("torch", "onnxscript")),
    "jax": ("jax2onnx.to_onnx", ("jax2onnx", "jax", "flax")),
    "tensorflow": ("tf2onnx.convert.from_function", ("tf2onnx", "tensorflow-cpu", "tensorflow", "keras")),
    "sklearn": ("skl2onnx.to_onnx", ("skl2onnx", "scikit-learn")),
    # Keras 3 (frameworks/keras/export.py): the converter of the backend.
    "keras-jax": ("jax2onnx.to_onnx on model.stateless_call", ("jax2onnx", "keras", "jax")),
    "keras-torch": ("keras Model.export(format='onnx') (torch.onnx.export)", ("keras", "torch", "onnxscript")),
    "keras-tensorflow": ("tf2onnx.convert.from_function", ("tf2onnx", "keras", "tensorflow-cpu", "tensorflow")),
}

#: Longest note kept for a failure [characters].
MAX_NOTE = 500


def _package(framework: str) -> str:
    """The ``frameworks/<package>/`` of a registry name (``keras-jax`` -> ``keras``, from the
    registry); a name that is not registered is its own package (an adapter being added)."""
    from .frameworks import REGISTRY

    return REGISTRY[framework].package if framework in REGISTRY else framework


def export_module(framework: str):
    """Import and return ``mlx_explore.frameworks.<package>.export`` (this imports the framework and
    its converter).

    Raises:
        ModuleNotFoundError: the framework has no ``export.py``, or its converter is not installed.
    """
    return importlib.import_module(f"mlx_explore.frameworks.{_package(framework)}.export")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions(framework: str | None = None) -> dict[str, str]:
    """Installed versions of ``onnx``, ``onnxruntime`` (or ``onnxruntime-gpu``) and the converters
    (``framework``'s only, when given), read with ``importlib.metadata`` (nothing is imported);
    what is not installed is left out."""
    dists = ["onnx", "onnxruntime", "onnxruntime-gpu"]
    for name, (_, names) in CONVERTERS.items():
        if framework is None or name == framework:
            dists += [d for d in names if d not in dists]
    return {d: v for d in dists if (v := _version(d)) is not None}


def _providers(device_kind: str) -> list[str]:
    import onnxruntime as ort

    if device_kind == "gpu" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session(path: str, threads: int, device_kind: str = "cpu"):
    """An ``onnxruntime.InferenceSession`` for ``path`` with the fairness settings of the module
    docstring (``threads`` intra-op threads, 1 inter-op thread, CUDA first for ``gpu`` when present)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: ORT warns about nodes it leaves on the CPU
    return ort.InferenceSession(path, sess_options=options, providers=_providers(device_kind))


def _model_bytes(path: str) -> int:
    """Size of the ONNX file plus its external-data sidecar ``<path>.data`` where one was written [bytes]."""
    sidecar = path + ".data"
    return os.path.getsize(path) + (os.path.getsize(sidecar) if os.path.isfile(sidecar) else 0)


def _measure(run, x: np.ndarray, native: np.ndarray, n: int) -> dict:
    """Logits comparison and the timing of :func:`~mlx_explore.frameworks.common.inference`, for
    ``run(float32 (B, ...)) -> float32 (B, C)``."""
    from .frameworks.common import INFER_BATCH, batched

    ort_logits = batched(run, x)
    native = np.asarray(native, dtype=np.float32)
    if ort_logits.shape != native.shape:
        raise ValueError(f"ONNX Runtime's logits have shape {ort_logits.shape}, the framework's {native.shape}")
    one = x[:1]
    times = bench.time_calls(lambda i: run(one), lambda r: r, n, warmup=3)
    big = np.resize(x, (INFER_BATCH, *x.shape[1:]))
    big_times = bench.time_calls(lambda i: run(big), lambda r: r, max(3, n // 20), warmup=1)
    out = {f"onnx_infer_ms_{k}": v * 1e3 for k, v in bench.percentiles(times).items()}
    out["onnx_infer_samples_per_s"] = INFER_BATCH / float(np.median(big_times))
    out["onnx_max_abs_diff"] = float(np.max(np.abs(ort_logits - native)))
    out["onnx_logits_match"] = float(np.allclose(ort_logits, native, rtol=LOGITS_RTOL, atol=LOGITS_ATOL))
    return out


def export_phase(framework: str, trainer, x_test: np.ndarray, native_logits: np.ndarray, out_dir: str, n: int,
                 threads: int, device_kind: str = "cpu") -> tuple[dict, dict]:  # fmt: skip
    """Export ``trainer``'s model to ``out_dir/model.onnx``, check it against the framework and time it.

    Args:
        framework: registry name (``torch``, ``jax``, ``tensorflow``, ``sklearn``, ``keras-*``).
        trainer: the trained ``Trainer`` of that framework.
        x_test: ``float32 (N, ...)`` test inputs as ``trainer.logits`` takes them (``N >= 1``).
        native_logits: ``trainer.logits(x_test)``, ``float32 (N, C)`` (scikit-learn:
            log-probabilities; its export outputs the same, ``frameworks/sklearn/export.py``).
        out_dir: folder for ``model.onnx`` (created if missing).
        n: batch-1 latency calls (``RunConfig.latency_steps``).
        threads: ONNX Runtime intra-op threads, the framework run's count.
        device_kind: ``"cpu"``, ``"gpu"`` or ``"tpu"`` (the trainer's); ``gpu`` tries CUDA first.

    Returns:
        ``(metrics, notes)``: ``metrics`` has every :data:`ONNX_METRICS` key and ``onnx_path`` (the
        file). On any failure (no export module or converter, a conversion error, an ONNX Runtime
        error, logits of another shape) every value is ``None`` and ``notes["onnx"]`` is the error,
        ``"Type: message"`` cut to 500 characters; otherwise ``notes["onnx"]`` names the converter,
        the versions and the provider that ran. Never raises (an ``Exception``; ``KeyboardInterrupt``
        passes).
    """
    metrics: dict = dict.fromkeys((*ONNX_METRICS, "onnx_path"))
    notes: dict = {}
    try:
        module = export_module(framework)
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, "model.onnx")
        x = np.ascontiguousarray(x_test, dtype=np.float32)
        module.export_onnx(trainer, path, x[:2])
        sess = session(path, threads, device_kind)
        name = sess.get_inputs()[0].name
        measured = _measure(lambda xb: sess.run(None, {name: xb})[0], x, native_logits, n)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a note, the run goes on
        notes["onnx"] = f"{type(exc).__name__}: {exc}".strip()[:MAX_NOTE]
        return metrics, notes
    metrics.update(measured, onnx_model_bytes=_model_bytes(path), onnx_path=path)
    provider = sess.get_providers()[0]
    converter = CONVERTERS.get(framework, (f"frameworks/{_package(framework)}/export.py", ()))[0]
    vs = ", ".join(f"{d} {v}" for d, v in versions(framework).items())
    notes["onnx"] = f"{converter} ({vs}); {provider}, {threads} intra-op thread(s), 1 inter-op"
    if device_kind != "cpu" and provider == "CPUExecutionProvider":
        notes["onnx"] += (f"; the framework ran on the {device_kind}, ONNX Runtime on the CPU (its CUDAExecutionProvider "
                          "comes with the onnxruntime-gpu wheel, and it is tried for a gpu only)")  # fmt: skip
    if not metrics["onnx_logits_match"]:
        notes["onnx_logits_match"] = (f"max |ORT - framework| = {metrics['onnx_max_abs_diff']:.3g} exceeds "
                                      f"{LOGITS_ATOL:g} + {LOGITS_RTOL:g} x |logit|")  # fmt: skip
    return metrics, notes
