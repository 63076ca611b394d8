"""Does memory grow with epochs? Peak RSS of the parent and of the child for 10, 1,000 and 100,000
epochs of the MLP on ``digits``.

The batch order used to be one ``int64 (epochs, steps, batch)`` array, built in the parent and
loaded by every child, so memory grew with ``--epochs`` before a single step ran (13.8 GB RSS for
100,000,000 epochs). It is now a :class:`mlx_explore.data.BatchOrder` that draws each epoch when
the training loop reaches it. This measures both processes for each epoch count:

* **child**: ``VmHWM`` of ``/proc/<pid>/status`` (the high-water mark of its resident memory, ``man
  5 proc``), read every 50 ms from the ``Started`` event on (it carries the child's ``pid``) and,
  for a run that finishes, the child's own ``peak_rss_mb``; the larger counts. Every run is stopped
  ``--stop-after`` seconds after ``Started`` (``compare(..., stop=threading.Event())``), so the long
  runs train for the same few seconds as the short one would at most.
* **parent**: ``VmHWM`` of ``/proc/self/status`` at the end, each epoch count in a fresh process
  so one count's peak does not carry over to the next.

Settings: MLP 256-256 ReLU, Adam, batch 32 (39 steps an epoch), ``mode=eager`` (no compiler's
memory in the figure), ``latency_steps=0``, one thread. Linux only (``/proc``).

    python tests/benchmarks/memory.py [--frameworks sklearn,torch] [--epochs 10,1000,100000] [--stop-after 5]

Prints one table: peaks in MiB and their ratio to the first (smallest) epoch count's peak. A figure,
not a test; the memory a run needs should not depend on its epochs (ratios near 1.0).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path


def vm_hwm_mb(pid: int | str = "self") -> float | None:
    """Peak resident memory of process ``pid`` so far [MiB] (``VmHWM``), ``None`` once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        return None
    return None


def one(framework: str, epochs: int, stop_after: float) -> dict:
    """Run one comparison in this process; return the parent's and the child's peaks [MiB]."""
    import mlx_explore
    from mlx_explore.events import Finished, Started, Step

    stop = threading.Event()
    child = {"hwm": 0.0, "pid": None, "steps": 0}

    def watch(pid: int) -> None:
        while not stop.is_set():
            hwm = vm_hwm_mb(pid)
            if hwm is None:
                return
            child["hwm"] = max(child["hwm"], hwm)
            time.sleep(0.05)

    def on_event(event) -> None:
        if isinstance(event, Started):
            child["pid"] = event.pid
            threading.Thread(target=watch, args=(event.pid,), daemon=True).start()
            timer = threading.Timer(stop_after, stop.set)
            timer.daemon = True
            timer.start()
        elif isinstance(event, Step):
            child["steps"] = event.step
        elif isinstance(event, Finished):
            child["hwm"] = max(child["hwm"], event.metrics.get("peak_rss_mb") or 0.0)

    result = mlx_explore.compare(model="mlp", dataset="digits", frameworks=[framework], epochs=epochs,
                                 batch_size=32, hidden=(256, 256), mode="eager", latency_steps=0, threads=1,
                                 store=False, on_event=on_event, stop=stop)  # fmt: skip
    stop.set()
    run = result.runs[0] if result.runs else None
    return {"framework": framework, "epochs": epochs, "parent_mb": vm_hwm_mb(), "child_mb": child["hwm"] or None,
            "steps": child["steps"], "status": run.status if run else "not started",
            "reason": run.reason if run and run.status not in ("ok", "interrupted") else ""}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frameworks", default="sklearn,torch")
    ap.add_argument("--epochs", default="10,1000,100000", help="epoch counts, comma-separated, smallest first")
    ap.add_argument("--stop-after", type=float, default=5.0, help="seconds of training after Started [s]")
    ap.add_argument("--one", nargs=2, metavar=("FRAMEWORK", "EPOCHS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.stop_after)))
        return 0

    rows = []
    for fw in args.frameworks.split(","):
        for epochs in (int(e) for e in args.epochs.split(",")):
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--one", fw, str(epochs),
                                   "--stop-after", str(args.stop_after)],
                                  capture_output=True, text=True, timeout=600)  # fmt: skip
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode != 0 or not lines:
                print(f"{fw} {epochs} epochs failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(lines[-1]))
            print(f"{fw} {epochs} epochs done", file=sys.stderr)

    print(f"Peak RSS [MiB], MLP 256-256 on digits, batch 32 (39 steps an epoch), eager, 1 thread; "
          f"each run stopped {args.stop_after:g} s after Started")
    print(f"{'framework':<11}{'epochs':>9}{'status':>13}{'steps run':>11}{'parent':>9}{'ratio':>7}{'child':>9}{'ratio':>7}")
    base: dict[str, dict] = {}
    for r in rows:
        b = base.setdefault(r["framework"], r)
        ratio = lambda k: f"{r[k] / b[k]:.2f}" if r[k] and b[k] else "-"  # noqa: E731
        child = f"{r['child_mb']:.0f}" if r["child_mb"] else "-"
        print(f"{r['framework']:<11}{r['epochs']:>9}{r['status']:>13}{r['steps']:>11}{r['parent_mb']:>9.0f}"
              f"{ratio('parent_mb'):>7}{child:>9}{ratio('child_mb'):>7}")  # fmt: skip
        if r["reason"]:
            print(f"  {r['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
