"""Does drawing slow training? Training throughput with and without ``LiveCurves`` attached.

The frameworks train in child processes; ``LiveCurves`` runs in the parent (the notebook kernel)
and redraws at most 10 times a second. Drawing can only cost training through CPU contention, so
this runs the same comparison alternately without a consumer (``on_event=None``) and with
``on_event=LiveCurves().update``, ``--rounds`` times each, and compares the medians of the
child-measured steady throughput (``samples_per_s``) and of the child's wall time, framework by
framework. Target: at most 2 % slower (ratio >= 0.98). Run headless (no browser), so it measures
the kernel side of every update: trace validation, thinning, smoothing and serialization.

    python tests/benchmarks/live_overhead.py [--frameworks jax,torch] [--rounds 5] [--epochs 5] [--threads 1] [--check]

The machine is shared and noisy: read the ratio, not the absolute figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import mlx_explore
from widgets import LiveCurves


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frameworks", default="jax,torch,tensorflow")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--mode", default="compiled")
    ap.add_argument("--threads", type=int, default=1, help="threads per framework (1: steadiest on a shared machine)")
    ap.add_argument("--check", action="store_true", help="exit 1 if a ratio is below 0.98")
    args = ap.parse_args(argv)
    config = mlx_explore.RunConfig.build(model="mlp", dataset="digits", frameworks=args.frameworks, epochs=args.epochs,
                                         batch_size=32, optimizer="sgd", lr=0.01, mode=args.mode, latency_steps=0,
                                         threads=args.threads)  # fmt: skip
    figures: dict[tuple[str, str], dict[str, list[float]]] = {}
    redraws = []
    for r in range(args.rounds):
        for variant in ("plain", "live"):
            curves = LiveCurves() if variant == "live" else None
            result = mlx_explore.compare(config, on_event=curves.update if curves else None, store=False)
            if curves:
                redraws.append(curves.redraws)
            for run in result.runs:
                if run.status != "ok":
                    print(f"{run.label} {run.status}: {run.reason}", file=sys.stderr)
                    continue
                f = figures.setdefault((run.framework, variant), {"samples_per_s": [], "wall_s": []})
                f["samples_per_s"].append(run.metrics["samples_per_s"])
                f["wall_s"].append(run.metrics["wall_s"])
            print(f"round {r + 1}/{args.rounds} {variant} done", file=sys.stderr)
    print(f"MLP 256-256 on digits, batch 32, {args.epochs} epochs, {args.mode}, {args.threads} thread(s); "
          f"medians of {args.rounds} alternating rounds")
    print(f"LiveCurves redraws per comparison: {statistics.median(redraws):.0f}")
    print(f"{'framework':<12}{'plain samples/s':>17}{'live samples/s':>16}{'ratio':>8}{'plain wall s':>14}{'live wall s':>13}{'ratio':>8}")
    worst = float("inf")
    for fw in config.frameworks:
        if (fw, "plain") not in figures or (fw, "live") not in figures:
            continue
        p, lv = figures[(fw, "plain")], figures[(fw, "live")]
        sp, sl = statistics.median(p["samples_per_s"]), statistics.median(lv["samples_per_s"])
        wp, wl = statistics.median(p["wall_s"]), statistics.median(lv["wall_s"])
        worst = min(worst, sl / sp)
        print(f"{fw:<12}{sp:>17,.0f}{sl:>16,.0f}{sl / sp:>8.3f}{wp:>14.2f}{wl:>13.2f}{wp / wl:>8.3f}")
    return 1 if args.check and worst < 0.98 else 0


if __name__ == "__main__":
    sys.exit(main())
