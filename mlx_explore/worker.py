"""Child-process entry point: one framework, one run, events as JSON lines.

``python -m mlx_explore.worker run FRAMEWORK BUNDLE.npz`` trains and streams events;
``python -m mlx_explore.worker probe FRAMEWORK`` prints one JSON object with versions and devices.

Events go to the process's original standard output; everything else written to fd 1 (framework
banners, stray prints) is redirected to standard error, so the event stream cannot be corrupted.
The parent (``runner.py``) sets thread-count and allocator variables in the environment before
this interpreter starts, since frameworks read them at import.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

_T0 = time.perf_counter()


def _clock() -> float:
    return time.perf_counter() - _T0


def _event_stream():
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray output on fd 1 now lands on stderr
    return out


def tail(text: str, lines: int = 15) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run(framework: str, bundle_path: str) -> int:
    """Train ``framework`` on the bundle, writing events; returns the process exit code."""
    from .bundle import Bundle
    from .events import Failed, Finished, Skipped, Started
    from .frameworks import trainer_module
    from .frameworks.common import DeviceUnavailable, Diverged, fit

    stream = _event_stream()

    def emit(event) -> None:
        stream.write(event.to_json() + "\n")

    try:
        bundle = Bundle.load(bundle_path)
        t = time.perf_counter()
        module = trainer_module(framework)
        import_s = time.perf_counter() - t
        x_train = bundle.inputs(bundle.data.x_train)
        trainer = module.Trainer(bundle.spec, bundle.weights, bundle.config, x_train, bundle.data.y_train)
        emit(Started(framework, device=trainer.device, device_name=trainer.device_name, versions=module.Trainer.versions(),
                     import_s=import_s, total_steps=bundle.total_steps, pid=os.getpid(), time_s=_clock()))  # fmt: skip
        metrics = fit(trainer, bundle, emit, _clock)
        metrics.update(import_s=import_s, n_params=bundle.spec.n_params())
        emit(Finished(framework, device=trainer.device, metrics=metrics, time_s=_clock()))
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


def probe(framework: str) -> int:
    """Print ``{"framework", "versions", "devices": [...]}`` for one framework."""
    stream = _event_stream()
    module = __import__(f"mlx_explore.frameworks.{framework}.trainer", fromlist=["Trainer"])
    devices = module.list_devices() if hasattr(module, "list_devices") else ["cpu"]
    stream.write(json.dumps({"framework": framework, "versions": module.Trainer.versions(), "devices": devices}) + "\n")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "run":
        return run(argv[1], argv[2])
    if len(argv) == 2 and argv[0] == "probe":
        return probe(argv[1])
    print("usage: python -m mlx_explore.worker run FRAMEWORK BUNDLE.npz | probe FRAMEWORK", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
