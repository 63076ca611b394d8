"""Tables and plain-language findings computed from a comparison that just ran.

The notebooks' discussion comes from here, so every sentence a reader sees is computed from the
figures of their own run (never a hard-coded claim such as "JAX is fastest"). Headless: pandas
only, no ipywidgets, no framework import.

>>> result = mlx_explore.compare(model="mlp", frameworks=["torch", "jax"], epochs=3)  # doctest: +SKIP
>>> report.results_table(result)                                                  # doctest: +SKIP
>>> print(report.findings_markdown(result))                                       # doctest: +SKIP
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from . import frameworks as registry
from .parity import RTOL, RTOL_SKLEARN, default_reference, relative_differences
from .runner import METRIC_DOCS, Comparison

#: What the non-metric columns of :func:`results_table` mean (the metrics are in ``METRIC_DOCS``).
COLUMN_DOCS = {
    "status": "ok, or why not: skipped, unsupported, failed, diverged, timeout, interrupted (the reason is in `reason`)",
    "device": "where the run happened, as the framework names it (cpu, cuda:0, TPU_0, ...)",
    "reason": "why a run is not ok",
    **METRIC_DOCS,
}
#: Columns of :func:`results_table`, in this order (meanings and units in ``COLUMN_DOCS``).
TABLE_COLUMNS = (
    "status", "device", "test_accuracy", "samples_per_s", "step_ms_p50", "step_ms_p99", "compile_s",
    "infer_ms_p50", "peak_rss_mb", "mfu", "wall_s",
)  # fmt: skip


def runtime_table(names: Iterable[str] = tuple(registry.REGISTRY), timeout: float = 300) -> pd.DataFrame:
    """Which frameworks this runtime has and the devices each one sees, asked in child processes
    (:func:`mlx_explore.frameworks.probe`, run in parallel; nothing is imported into this process).

    Returns:
        DataFrame indexed by framework: ``title``, ``installed`` (bool), ``version`` (the framework's
        main distribution, ``""`` when missing), ``devices`` (comma-separated, e.g.
        ``"cpu, cuda:0 (NVIDIA H100 80GB HBM3)"``) and ``note`` (what is missing, or the import error).

    Raises:
        KeyError: an unknown framework name (the message lists the known ones).
    """
    names = list(names)
    infos = [registry.get(n) for n in names]
    with ThreadPoolExecutor(max_workers=len(names) or 1) as pool:
        probes = list(pool.map(lambda n: registry.probe(n, timeout=timeout), names))
    rows = []
    for info, probe in zip(infos, probes):
        versions = probe.get("versions", {})
        version = next((versions[d] for d in info.distributions if versions.get(d)), "")
        note = ("missing: " + ", ".join(probe["missing"])) if "missing" in probe else probe.get("error", "")
        rows.append({"framework": info.name, "title": info.title, "installed": bool(probe["installed"] and "error" not in probe),
                     "version": version, "devices": ", ".join(probe.get("devices", [])), "note": note})  # fmt: skip
    return pd.DataFrame(rows).set_index("framework")


def results_table(result: Comparison, columns: Iterable[str] = TABLE_COLUMNS) -> pd.DataFrame:
    """One row per run (index: its label) with the headline figures, and ``reason`` for runs that are
    not ``ok`` (skipped, unsupported, failed, ...). Units are in ``mlx_explore.runner.METRIC_DOCS``.

    Args:
        result: a finished :class:`~mlx_explore.runner.Comparison`.
        columns: metric columns to keep, in order (a column no run reported is left out).
    """
    m = result.metrics
    table = m[[c for c in columns if c in m.columns]].copy()
    if "reason" in m.columns and (m["status"] != "ok").any():
        table["reason"] = m["reason"].where(m["status"] != "ok", "")
    return table


def _fmt(x: float, digits: int = 3) -> str:
    """``57,843`` for large numbers, 3 significant digits for small ones."""
    x = float(x)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _ok_figures(result: Comparison) -> pd.DataFrame:
    """Medians over repeats of the ``ok`` runs, one row per (framework, mode), labelled ``fw`` or
    ``fw/mode`` when the comparison ran both modes (as :func:`mlx_explore.runner.run_label`)."""
    summary = result.summary
    if summary.empty:
        return summary
    both = result.config.mode == "both"
    labels = [f"{fw}/{mode}" if both and fw != "sklearn" else fw for fw, mode in summary.index]
    return summary.set_index(pd.Index(labels, name="run"))


def findings(result: Comparison) -> list[str]:
    """Plain-language findings from ``result``'s own figures: what ran where, whether the accuracies
    agree, the throughput ranking (with ratios), compile time, latency tails and batch-1 inference.

    Returns:
        Markdown sentences (one per finding), empty when nothing ran. Figures are medians over repeats.
    """
    out: list[str] = []
    m = result.metrics
    if m.empty:
        return out
    env = result.env or {}
    where = env.get("cpu_model") or "this machine"
    gpus = env.get("gpus") or []
    devices = ", ".join(f"{label}: {dev}" for label, dev in m.loc[m["status"] == "ok", "device"].items())
    ok = _ok_figures(result)
    out.append(f"{len(ok)} of {len(m)} runs finished ({devices or 'none'}), on {where} with "
               f"{env.get('usable_cores', '?')} usable cores" + (f" and {', '.join(gpus)}" if gpus else "") + ".")
    for label, row in m[m["status"] != "ok"].iterrows():
        out.append(f"**{label}** is `{row['status']}`: {row['reason'] or 'no reason given'}.")
    if ok.empty:
        return out

    acc = ok["test_accuracy"].dropna() if "test_accuracy" in ok else pd.Series(dtype=float)
    if len(acc) > 1:
        lo, hi = acc.idxmin(), acc.idxmax()
        if acc.max() - acc.min() < 1e-9:
            out.append(f"Every run reached the same test accuracy, {acc.max():.4f}: the same model from the same "
                       "weights on the same batches gives the same predictions.")
        else:
            why = (" Adam places epsilon differently between frameworks (see the README), so small differences "
                   "are expected." if result.config.optimizer == "adam" else "")
            out.append(f"Test accuracy ranges from {acc.min():.4f} ({lo}) to {acc.max():.4f} ({hi}), a spread of "
                       f"{100 * (acc.max() - acc.min()):.2f} percentage points.{why}")
    elif len(acc) == 1:
        out.append(f"Test accuracy: {acc.iloc[0]:.4f} ({acc.index[0]}).")

    sps = ok["samples_per_s"].dropna() if "samples_per_s" in ok else pd.Series(dtype=float)
    if len(sps) > 1:
        ranked = sps.sort_values(ascending=False)
        slowest = ranked.index[-1]
        parts = [f"{label} {_fmt(v)} samples/s ({v / ranked.iloc[-1]:.2f}x)" for label, v in ranked.items()]
        out.append(f"Steady training throughput, fastest first (ratio to the slowest, {slowest}): "
                   + "; ".join(parts[:-1]) + f"; {slowest} {_fmt(ranked.iloc[-1])} samples/s.")

    comp = ok["compile_s"].dropna() if "compile_s" in ok else pd.Series(dtype=float)
    if not comp.empty and comp.max() > 0:
        worst = comp.idxmax()
        share = comp[worst] / ok.loc[worst, "wall_s"] if ok.loc[worst].get("wall_s") else float("nan")
        text = f"The longest compile time (first step minus a steady step) is {worst}'s, {comp[worst]:.2f} s"
        if np.isfinite(share):
            text += f", {100 * share:.0f}% of that run's wall time"
        text += "; it is paid once per process, so it matters for short jobs and notebooks, not for long training."
        out.append(text)

    if {"step_ms_p50", "step_ms_p99"} <= set(ok.columns):
        tail = (ok["step_ms_p99"] / ok["step_ms_p50"]).dropna()
        if not tail.empty:
            t = tail.idxmax()
            out.append(f"Latency tail: the widest p99/p50 ratio of the training step is {t}'s, {tail[t]:.2f}x "
                       f"({_fmt(ok.loc[t, 'step_ms_p50'])} ms median, {_fmt(ok.loc[t, 'step_ms_p99'])} ms p99).")

    inf = ok["infer_ms_p50"].dropna() if "infer_ms_p50" in ok else pd.Series(dtype=float)
    if len(inf) > 1:
        best = inf.idxmin()
        out.append(f"Batch-1 inference (the deployment view): {best} answers fastest, {_fmt(inf[best])} ms median; "
                   f"the slowest, {inf.idxmax()}, takes {_fmt(inf.max())} ms.")

    if result.config.repeat == 1:
        out.append("These figures come from one run on a possibly shared machine: rerun with `repeat=3` for medians, "
                   "and compare ratios rather than absolute times.")
    return out


def parity_findings(result: Comparison, steps: int | None = None) -> list[str]:
    """Are these really the same model? Per run, the largest per-step relative training-loss
    difference against the reference run (the first PyTorch, else JAX, else TensorFlow run).

    With ``steps``, over the first ``steps`` logged steps, judged *within* or *above* the parity test's
    tolerances (:data:`~mlx_explore.parity.RTOL` 1e-4 in float32, :data:`~mlx_explore.parity.RTOL_SKLEARN`
    1e-3 for scikit-learn; ``tests/test_same_model.py`` checks the first 20 steps with SGD). With
    ``steps=None``, over every logged step, with the first step whose difference is above the tolerance.

    Float32 rounding differs between frameworks (summation order, fused kernels), so the difference
    grows slowly over training; a bug (a wrong layer, a different batch) shows as a large difference
    from the first steps.
    """
    curves = result.curves
    curves = curves[curves["run"].isin(result.metrics.index[result.metrics["status"] == "ok"])]
    ref = default_reference(curves) if not curves.empty else None
    if ref is None:
        return ["No training curves to compare."]
    if steps is not None:
        curves = curves[curves["step"] <= steps]
    diffs = relative_differences(curves, ref, floor=0.0)
    out = []
    for run, part in diffs.groupby("run", sort=False):
        fw = str(part["framework"].iloc[0])
        rtol = RTOL_SKLEARN if "sklearn" in (fw, ref.split("/")[0]) else RTOL
        worst = float(part["rel_diff"].max())
        if not np.isfinite(worst):
            out.append(f"**{run}**: a non-finite loss, so no parity against {ref}.")
        elif steps is not None:  # the parity test's claim: every step within rtol
            verdict = "within" if worst <= rtol else "**above**"
            out.append(f"**{run}** vs {ref}: largest relative loss difference over the first {steps} steps is "
                       f"{worst:.1e}, {verdict} the parity test's tolerance {rtol:g}.")
        else:  # the whole run: float32 rounding differences compound, so report where they outgrow rtol
            above = part.loc[part["rel_diff"] > rtol, "step"]
            where = (f"first above {rtol:g} at step {int(above.iloc[0])}" if len(above)
                     else f"every step within {rtol:g}")
            out.append(f"**{run}** vs {ref} over all {len(part)} logged steps: largest relative loss difference "
                       f"{worst:.1e}, {where}.")
    if steps is None and any("first above" in line for line in out):
        out.append("Late in training, float32 rounding differences between the frameworks (summation order, fused "
                   "kernels) compound, and the loss of a well-fitted batch is small, so its relative difference is "
                   "large; compare the test accuracies to see whether the predictions differ.")
    if result.config.optimizer == "adam":
        out.append("With Adam the curves drift by design (epsilon is added before bias correction in Keras and "
                   "scikit-learn, after it in PyTorch and Optax): use `optimizer='sgd'` to check parity.")
    return out


def sweep_frame(results: Mapping[int, Comparison]) -> pd.DataFrame:
    """The ``ok`` runs of a batch-size sweep as one table.

    Args:
        results: ``{batch_size: Comparison}``, one comparison per batch size.

    Returns:
        DataFrame with columns ``batch_size``, ``framework``, ``mode``, ``samples_per_s``, ``step_ms``
        and ``compile_s`` (medians over repeats), one row per (batch size, framework, mode).
    """
    rows = []
    for bs, result in results.items():
        summary = result.summary
        for (fw, mode), row in summary.iterrows():
            rows.append({"batch_size": int(bs), "framework": fw, "mode": mode, "samples_per_s": row.get("samples_per_s"),
                         "step_ms": row.get("step_ms"), "compile_s": row.get("compile_s")})  # fmt: skip
    cols = ["batch_size", "framework", "mode", "samples_per_s", "step_ms", "compile_s"]
    return pd.DataFrame(rows, columns=cols).sort_values(["batch_size", "framework", "mode"], kind="stable").reset_index(drop=True)


def sweep_findings(table: pd.DataFrame) -> list[str]:
    """What a batch-size sweep (:func:`sweep_frame`) shows: the fastest run at each batch size and
    whether the ranking changes, the compiled/eager speed-up per framework at the smallest and largest
    batch, and the time of one step at the smallest batch (mostly per-step overhead: Python dispatch,
    kernel launches, framework bookkeeping) against the largest.

    Returns:
        Markdown sentences; empty for an empty table.
    """
    t = table.dropna(subset=["samples_per_s"])
    if t.empty:
        return []
    t = t.assign(run=[f"{fw}/{mode}" if fw != "sklearn" else fw for fw, mode in zip(t["framework"], t["mode"])])
    sizes = sorted(t["batch_size"].unique())
    out = []
    orders = {}
    for bs in sizes:
        part = t[t["batch_size"] == bs].sort_values("samples_per_s", ascending=False)
        orders[bs] = list(part["run"])
    lo, hi = sizes[0], sizes[-1]
    best = {bs: orders[bs][0] for bs in sizes}
    line = "Fastest at each batch size: " + "; ".join(
        f"{bs}: {best[bs]} ({_fmt(t[(t['batch_size'] == bs) & (t['run'] == best[bs])]['samples_per_s'].iloc[0])} samples/s)"
        for bs in sizes)  # fmt: skip
    out.append(line + ".")
    if len(sizes) > 1:
        common = [r for r in orders[lo] if r in orders[hi]]
        if [r for r in orders[hi] if r in common] == common:
            out.append(f"The ranking is the same at batch {lo} and batch {hi}.")
        else:
            out.append(f"The ranking changes with batch size: at batch {lo} it is {' > '.join(orders[lo])}; "
                       f"at batch {hi} it is {' > '.join(orders[hi])}.")
    for fw, part in t.groupby("framework", sort=False):
        piv = part.pivot_table(index="batch_size", columns="mode", values="samples_per_s")
        if {"eager", "compiled"} <= set(piv.columns):
            piv = piv.dropna()
            if piv.empty:
                continue
            a, b = piv.index.min(), piv.index.max()
            speed = piv["compiled"] / piv["eager"]
            text = f"{fw}: compiled runs {speed[a]:.2f}x eager's throughput at batch {a}"
            if b != a:
                text += f" and {speed[b]:.2f}x at batch {b}"
            out.append(text + ".")
    if len(sizes) > 1:
        for run, part in t.groupby("run", sort=False):
            s = part.set_index("batch_size")["step_ms"].dropna()
            if lo in s.index and hi in s.index and s[lo] > 0:
                out.append(f"{run}: a step at batch {lo} takes {_fmt(s[lo])} ms and at batch {hi} {_fmt(s[hi])} ms, "
                           f"{s[hi] / s[lo]:.1f}x the time for {hi / lo:.0f}x the samples.")
    return out


def markdown(lines: Iterable[str]) -> str:
    """Findings as a Markdown bullet list (for ``IPython.display.Markdown``)."""
    return "\n".join(f"- {line}" for line in lines)


__all__ = [
    "COLUMN_DOCS", "METRIC_DOCS", "TABLE_COLUMNS", "findings", "markdown", "parity_findings", "results_table", "runtime_table",
    "sweep_findings", "sweep_frame",
]  # fmt: skip
