"""Tables and plain-language findings computed from a comparison that just ran.

The notebooks' discussion comes from here, so every sentence a reader sees is computed from the
figures of their own run (never a hard-coded claim such as "JAX is fastest"). Headless: pandas
only, no ipywidgets, no framework import.

The headline columns of every results table (the CLI's rich table, :func:`results_table` and
:func:`styled` in the notebooks, the widgets' panel) are one catalogue, :data:`HEADLINE`: key,
short title, unit, number format, which way is better, and the meaning (from ``METRIC_DOCS``).
Why the figures are measured as they are: ``docs/architecture.md``.

>>> result = mlx_explore.compare(model="mlp", frameworks=["torch", "jax"], epochs=3)  # doctest: +SKIP
>>> table = report.results_table(result)   # a DataFrame of raw figures, for computing  # doctest: +SKIP
>>> report.styled(table)                   # the same table formatted for display       # doctest: +SKIP
>>> print(report.markdown(report.findings(result)))                                  # doctest: +SKIP
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping

import numpy as np
import pandas as pd

from . import frameworks as registry
from .child import probe as probe_framework
from .comparison import Comparison
from .config import DEEP_FRAMEWORKS, DEFAULT_FRAMEWORKS
from .metric_docs import METRIC_DOCS
from .parity import RTOL, RTOL_SKLEARN, default_reference, relative_differences

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler


@dataclass(frozen=True)
class Column:
    """One headline column of the results tables.

    Attributes:
        key: the metric's name in a run's ``metrics`` (and a column of ``Comparison.metrics``).
        title: short title, without the unit (``"step p50"``).
        unit: the unit shown beside the title (``"ms"``), ``""`` for a fraction or a count.
        fmt: :meth:`str.format` pattern of one value (``"{:,.0f}"``: thousands separators).
        better: ``"higher"`` or ``"lower"``: which value is best, the one the tables mark.
    """

    key: str
    title: str
    unit: str
    fmt: str
    better: str

    @property
    def heading(self) -> str:
        """What a table's header shows: ``"step p50 ms"``, ``"test acc"``."""
        return f"{self.title} {self.unit}" if self.unit else self.title

    @property
    def meaning(self) -> str:
        """What the figure is and how it is measured (``METRIC_DOCS``, units in brackets)."""
        return METRIC_DOCS[self.key]

    def format(self, value) -> str:
        """``value`` as the tables show it; ``"-"`` for a figure that does not exist (None, NaN)."""
        if value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and not math.isfinite(value)):
            return "-"
        return self.fmt.format(value)


#: The headline columns of every results table, in order: ``{key: Column}``.
HEADLINE: dict[str, Column] = {c.key: c for c in (
    Column("test_accuracy", "test acc", "", "{:.4f}", "higher"),
    Column("samples_per_s", "train", "samples/s", "{:,.0f}", "higher"),
    Column("step_ms_p50", "step p50", "ms", "{:.2f}", "lower"),
    Column("step_ms_p99", "step p99", "ms", "{:.2f}", "lower"),
    Column("infer_ms_p50", "infer p50", "ms", "{:.3f}", "lower"),
    Column("compile_s", "compile", "s", "{:.2f}", "lower"),
    Column("peak_rss_mb", "RSS", "MiB", "{:,.0f}", "lower"),
    Column("mfu", "MFU", "", "{:.1%}", "higher"),
    Column("wall_s", "wall", "s", "{:.1f}", "lower"),
)}  # fmt: skip

#: The deployment view's columns, shown after ``infer_ms_p50`` for a comparison with ``export="onnx"``
#: (:func:`headline`).
ONNX_COLUMNS: dict[str, Column] = {c.key: c for c in (
    Column("onnx_infer_ms_p50", "ONNX RT p50", "ms", "{:.3f}", "lower"),
    Column("onnx_infer_samples_per_s", "ONNX RT infer", "samples/s", "{:,.0f}", "higher"),
)}  # fmt: skip
#: The columns of a ``gbdt`` comparison (:func:`headline`): boosting has no training step, compile
#: time or MFU; it has rounds, a set-up (binning) and a model size. The figures the issue on tabular
#: data asks for: ROC-AUC, accuracy, macro-F1, training time, time per round, batch-1 latency and
#: batch-1024 throughput, peak RSS and model size.
GBDT_COLUMNS: dict[str, Column] = {c.key: c for c in (
    Column("test_accuracy", "test acc", "", "{:.4f}", "higher"),
    Column("test_roc_auc", "ROC-AUC", "", "{:.4f}", "higher"),
    Column("test_f1_macro", "macro-F1", "", "{:.4f}", "higher"),
    Column("train_s", "train", "s", "{:.2f}", "lower"),
    Column("round_ms", "round", "ms", "{:.2f}", "lower"),
    Column("setup_s", "set-up", "s", "{:.3f}", "lower"),
    Column("infer_ms_p50", "infer p50", "ms", "{:.3f}", "lower"),
    Column("infer_samples_per_s", "infer b1024", "samples/s", "{:,.0f}", "higher"),
    Column("peak_rss_mb", "RSS", "MiB", "{:,.0f}", "lower"),
    Column("model_bytes", "model", "bytes", "{:,.0f}", "lower"),
    Column("wall_s", "wall", "s", "{:.1f}", "lower"),
)}  # fmt: skip
#: Every column a results table may have: :data:`HEADLINE`, :data:`ONNX_COLUMNS` and :data:`GBDT_COLUMNS`.
CATALOGUE: dict[str, Column] = {**GBDT_COLUMNS, **HEADLINE, **ONNX_COLUMNS}


def headline(config=None) -> dict[str, Column]:
    """The columns of a comparison's table: :data:`HEADLINE`, with :data:`ONNX_COLUMNS` after
    ``infer_ms_p50`` when ``config.export == "onnx"``; :data:`GBDT_COLUMNS` for ``model="gbdt"``."""
    if getattr(config, "model", None) == "gbdt":
        return dict(GBDT_COLUMNS)
    if getattr(config, "export", "none") != "onnx":
        return dict(HEADLINE)
    out: dict[str, Column] = {}
    for key, col in HEADLINE.items():
        out[key] = col
        if key == "infer_ms_p50":
            out.update(ONNX_COLUMNS)
    return out


#: What the columns of :func:`results_table` mean: ``status``, ``device`` and ``reason``, then
#: every metric (``METRIC_DOCS``, units in brackets).
COLUMN_DOCS = {
    "status": "ok, or why not: skipped, unsupported, failed, diverged, timeout, interrupted (the reason is in `reason`)",
    "device": "where the run happened, as the framework names it (cpu, cuda:0, TPU_0, ...)",
    "reason": "why a run is not ok",
    **METRIC_DOCS,
}
#: Columns of :func:`results_table`, in this order: ``status``, ``device``, then :data:`HEADLINE`.
TABLE_COLUMNS = ("status", "device", *HEADLINE)


def runtime_table(names: Iterable[str] = DEFAULT_FRAMEWORKS, timeout: float = 300) -> pd.DataFrame:
    """Which frameworks this runtime has and the devices each one sees, asked in child processes
    (:func:`mlx_explore.child.probe`, run in parallel; nothing is imported into this process).
    By default the four frameworks: the Keras columns run on their backends' devices (name them to
    probe them too).

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
        probes = list(pool.map(lambda n: probe_framework(n, timeout=timeout), names))
    rows = []
    for info, probe in zip(infos, probes):
        versions = probe.get("versions", {})
        version = next((versions[d] for d in info.distributions if versions.get(d)), "")
        note = ("missing: " + ", ".join(probe["missing"])) if "missing" in probe else probe.get("error", "")
        rows.append({"framework": info.name, "title": info.title, "installed": bool(probe["installed"] and "error" not in probe),
                     "version": version, "devices": ", ".join(probe.get("devices", [])), "note": note})  # fmt: skip
    return pd.DataFrame(rows).set_index("framework")


def results_table(result: Comparison, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per run (index: its label) with the raw headline figures, and ``reason`` for runs that
    are not ``ok`` (skipped, unsupported, failed, ...): a DataFrame to compute with. Display it with
    :func:`styled` (number formats, units, the best value per column marked). Meanings and units are
    in :data:`COLUMN_DOCS`.

    Args:
        result: a finished :class:`~mlx_explore.comparison.Comparison`.
        columns: metric columns to keep, in order (a column no run reported is left out); default
            ``status``, ``device`` and :func:`headline` of the comparison's config.
    """
    if columns is None:
        columns = ("status", "device", *headline(result.config))
    m = result.metrics
    table = m[[c for c in columns if c in m.columns]].copy()
    if "reason" in m.columns and (m["status"] != "ok").any():
        table["reason"] = m["reason"].where(m["status"] != "ok", "")
    return table


#: CSS of a cell holding the best value of its column (:func:`styled`).
BEST_CSS = "font-weight: bold; color: #1a7f37"


def best_values(table: pd.DataFrame) -> dict[str, float]:
    """``{key: value}``: the best value of each :data:`CATALOGUE` column of ``table`` (highest or
    lowest, as :attr:`Column.better` says) among its ``ok`` runs (every row when there is no
    ``status`` column); a column with no figure among them is left out."""
    ok = table[table["status"] == "ok"] if "status" in table.columns else table
    out = {}
    for key in CATALOGUE:
        if key in ok.columns:
            values = pd.to_numeric(ok[key], errors="coerce").dropna()
            if not values.empty:
                out[key] = float(values.max() if CATALOGUE[key].better == "higher" else values.min())
    return out


def styled(table: pd.DataFrame, best: bool = True) -> "Styler":
    """``table`` (:func:`results_table`, or any frame with :data:`CATALOGUE` columns) formatted for
    display: a pandas ``Styler``, shown as HTML by Jupyter, Voila and widgets. The DataFrame itself is
    left unchanged: compute with ``table``, display ``styled(table)``.

    Each headline column gets its number format (``Column.fmt``: thousands separators for samples/s,
    4 decimals for accuracy, 2 for milliseconds, a percentage for MFU) and its unit in its heading
    (``Column.heading``); a missing figure shows as ``-``; text is HTML-escaped. A named index (the
    run labels) becomes the first column. With ``best``, the best value of each headline column among
    the ``ok`` runs (:func:`best_values`) is bold and marked ★ (its cell has the class ``best``).

    Needs jinja2 (pandas' optional dependency for ``Styler``; Jupyter installs it).
    """
    shown = table.reset_index() if table.index.name is not None else table
    keys = [k for k in CATALOGUE if k in shown.columns]
    styler = shown.style.hide(axis="index")
    styler.format(na_rep="-", escape="html")  # every cell: text escaped, a missing value "-"
    styler.format({k: CATALOGUE[k].fmt for k in keys}, subset=keys, na_rep="-")
    styler.format_index(lambda k: CATALOGUE[k].heading if k in CATALOGUE else str(k), axis="columns", escape="html")
    styler.set_properties(subset=keys, **{"text-align": "right", "font-variant-numeric": "tabular-nums"})
    if not best:
        return styler
    ok = shown["status"] == "ok" if "status" in shown.columns else pd.Series(True, index=shown.index)
    marks = pd.DataFrame("", index=shown.index, columns=shown.columns)
    for key, value in best_values(shown).items():
        rows = shown.index[ok & (pd.to_numeric(shown[key], errors="coerce") == value)]
        marks.loc[rows, key] = "best"
        styler.format(lambda v, fmt=CATALOGUE[key].fmt: fmt.format(v) + " ★", subset=pd.IndexSlice[list(rows), [key]])
    styler.set_td_classes(marks)
    styler.apply(lambda _: marks.replace("best", BEST_CSS), axis=None)
    if (marks == "best").any().any():
        styler.set_caption("★ best value in its column among the runs that finished")
        styler.set_table_styles([{"selector": "caption", "props": "caption-side: bottom; font-size: smaller"}], overwrite=False)
    return styler


def _fmt(x: float, digits: int = 3) -> str:
    """``57,843`` for large numbers, 3 significant digits for small ones."""
    x = float(x)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _ok_figures(result: Comparison) -> pd.DataFrame:
    """Medians over repeats of the ``ok`` runs, one row per (framework, mode), labelled ``fw`` or
    ``fw/mode`` when the comparison ran both modes (as :func:`mlx_explore.comparison.run_label`)."""
    summary = result.summary
    if summary.empty:
        return summary
    both = result.config.mode == "both"
    labels = [f"{fw}/{mode}" if both and fw in DEEP_FRAMEWORKS else fw for fw, mode in summary.index]
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

    if result.config.export == "onnx":
        both = ok[["infer_ms_p50", "onnx_infer_ms_p50"]].dropna() if "onnx_infer_ms_p50" in ok else ok.iloc[:0]
        if not both.empty:
            speedup = both["infer_ms_p50"] / both["onnx_infer_ms_p50"]
            parts = [f"{fw} {speedup[fw]:.2f}x" for fw in speedup.index]
            out.append("Exported to ONNX, batch-1 inference in ONNX Runtime against the framework itself (native p50 / "
                       "ONNX Runtime p50, above 1: ONNX Runtime answers faster): " + ", ".join(parts) + ".")
        failed = [label for label in ok.index if label not in both.index]
        if failed:
            out.append(f"No ONNX figures for {', '.join(failed)}: the export or ONNX Runtime failed (the run's `onnx` note says why).")

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
    t = t.assign(run=[f"{fw}/{mode}" if fw in DEEP_FRAMEWORKS else fw for fw, mode in zip(t["framework"], t["mode"])])
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


#: Columns of :func:`model_table` (medians over repeats of the ``ok`` runs).
MODEL_TABLE_COLUMNS = ("test_accuracy", "test_f1_macro", "test_roc_auc", "train_s", "samples_per_s", "infer_ms_p50",
                       "infer_samples_per_s", "peak_rss_mb", "model_bytes")


def model_table(results: Mapping[str, Comparison]) -> pd.DataFrame:
    """Several models (or data sizes) side by side: one row per (name, framework, mode) of the ``ok``
    runs, with :data:`MODEL_TABLE_COLUMNS` where the runs have them.

    Args:
        results: ``{name: Comparison}``, e.g. ``{"gru": ..., "transformer": ...}`` or
            ``{"gbdt": ..., "mlp": ...}``; every comparison may have other frameworks.

    Returns:
        DataFrame with ``name``, ``framework``, ``mode`` and the figures; empty (those columns) when
        nothing finished.
    """
    rows = []
    for name, result in results.items():
        for (fw, mode), row in result.summary.iterrows():
            rows.append({"name": name, "framework": fw, "mode": mode}
                        | {c: row.get(c) for c in MODEL_TABLE_COLUMNS if c in row.index})  # fmt: skip
    cols = ["name", "framework", "mode", *MODEL_TABLE_COLUMNS]
    table = pd.DataFrame(rows)
    return table.reindex(columns=[c for c in cols if c in table.columns or c in ("name", "framework", "mode")])


def model_findings(table: pd.DataFrame, chance: float | None = None) -> list[str]:
    """What a :func:`model_table` shows: the best test accuracy of each name (and its framework),
    how far each name's frameworks agree, and, given ``chance`` (the accuracy of always answering
    the majority class), whether a model learned anything beyond it.

    Returns:
        Markdown sentences; empty for an empty table.
    """
    t = table.dropna(subset=["test_accuracy"]) if "test_accuracy" in table else table.iloc[:0]
    if t.empty:
        return []
    out = []
    best = {}
    for name, part in t.groupby("name", sort=False):
        top = part.loc[part["test_accuracy"].idxmax()]
        best[name] = float(top["test_accuracy"])
        spread = part["test_accuracy"].max() - part["test_accuracy"].min()
        text = f"**{name}**: best test accuracy {top['test_accuracy']:.4f} ({top['framework']})"
        if len(part) > 1:
            text += f", a spread of {100 * spread:.2f} percentage points over its {len(part)} runs"
        if chance is not None:
            gain = top["test_accuracy"] - chance
            text += (f"; {100 * gain:.1f} points above the {chance:.3f} of always answering the majority class"
                     if gain > 0.02 else f"; no better than the {chance:.3f} of always answering the majority class: "
                     "it has not learned the task in this budget")
        out.append(text + ".")
    if len(best) > 1:
        ranked = sorted(best, key=best.get, reverse=True)
        gap = best[ranked[0]] - best[ranked[1]]
        out.append(f"Most accurate here: {ranked[0]}, {100 * gap:.2f} points ahead of {ranked[1]}"
                   + (" (within the noise of one split: rerun with other seeds before concluding)." if gap < 0.01 else "."))
    if "train_s" in t:
        fastest = t.dropna(subset=["train_s"])
        if len(fastest) > 1:
            f = fastest.loc[fastest["train_s"].idxmin()]
            s = fastest.loc[fastest["train_s"].idxmax()]
            out.append(f"Training time ranges from {f['train_s']:.2f} s ({f['name']}, {f['framework']}) to "
                       f"{s['train_s']:.2f} s ({s['name']}, {s['framework']}).")
    return out


def keras_overhead(table: pd.DataFrame) -> pd.DataFrame:
    """Keras 3's own loop against the native code of the same backend, from a sweep table
    (:func:`sweep_frame` of comparisons that ran native and Keras columns).

    Args:
        table: columns ``batch_size``, ``framework``, ``mode``, ``samples_per_s``, ``compile_s``.

    Returns:
        One row per (backend, batch size, mode) where both ran: ``backend`` (``jax``, ``torch``,
        ``tensorflow``), ``batch_size``, ``mode``, ``native_samples_per_s``, ``keras_samples_per_s``
        [samples/s], ``keras_over_native`` (throughput ratio: 0.94 is "6 % slower"),
        ``native_compile_s``, ``keras_compile_s`` [s]. Empty when no pair ran.
    """
    cols = ["backend", "batch_size", "mode", "native_samples_per_s", "keras_samples_per_s", "keras_over_native",
            "native_compile_s", "keras_compile_s"]  # fmt: skip
    rows = []
    pairs = {info.name: info.keras_backend for info in registry.REGISTRY.values() if info.package == "keras"}
    by = table.set_index(["framework", "batch_size", "mode"]) if not table.empty else None
    for keras, backend in pairs.items():
        if by is None:
            break
        for (fw, bs, mode), row in by.iterrows():
            if fw != keras or (backend, bs, mode) not in by.index:
                continue
            native = by.loc[(backend, bs, mode)]
            rows.append({"backend": backend, "batch_size": int(bs), "mode": mode,
                         "native_samples_per_s": native["samples_per_s"], "keras_samples_per_s": row["samples_per_s"],
                         "keras_over_native": row["samples_per_s"] / native["samples_per_s"],
                         "native_compile_s": native["compile_s"], "keras_compile_s": row["compile_s"]})  # fmt: skip
    return pd.DataFrame(rows, columns=cols).sort_values(["backend", "batch_size", "mode"], kind="stable").reset_index(drop=True)


#: The published figure :func:`keras_findings` sets the measurements against: Keras 3 "about 6 %
#: slower than native PyTorch" (ChatBench.org, "Comparing 6 Top Machine Learning Frameworks with
#: Standardized Tests (2025)"; the knowledge base's claim ``keras-3-overhead-vs-pytorch``).
PUBLISHED_KERAS_OVER_TORCH = 0.94


def keras_findings(overhead: pd.DataFrame) -> list[str]:
    """What :func:`keras_overhead` shows, in sentences: per backend the throughput ratio Keras/native
    at the smallest and largest batch and each mode, the compile times, and how Keras on PyTorch
    compares with the published "about 6 % slower" (:data:`PUBLISHED_KERAS_OVER_TORCH`).

    Returns:
        Markdown sentences; empty for an empty table.
    """
    t = overhead.dropna(subset=["keras_over_native"])
    if t.empty:
        return []
    out = []
    for backend, part in t.groupby("backend", sort=False):
        bits = [f"batch {r.batch_size} {r.mode}: {r.keras_over_native:.2f}x" for r in part.itertuples()]
        out.append(f"Keras 3 (fit) on {backend} reaches " + "; ".join(bits) + f" of native {backend}'s throughput "
                   "(1.00x: no cost; below 1: Keras's loop costs that share).")
        comp = part[part["mode"] == "compiled"].dropna(subset=["native_compile_s", "keras_compile_s"])
        if not comp.empty:
            r = comp.iloc[-1]
            out.append(f"Compile time on {backend} at batch {r.batch_size}: native {_fmt(r.native_compile_s)} s, "
                       f"Keras {_fmt(r.keras_compile_s)} s.")
    torch_rows = t[t["backend"] == "torch"]
    if not torch_rows.empty:
        big = torch_rows[torch_rows["batch_size"] == torch_rows["batch_size"].max()]
        best = big["keras_samples_per_s"].max() / big["native_samples_per_s"].max()  # each at its faster mode
        verdict = "close to" if abs(best - PUBLISHED_KERAS_OVER_TORCH) <= 0.03 else (
            "less overhead than" if best > PUBLISHED_KERAS_OVER_TORCH else "more overhead than")
        out.append(f"Published: Keras 3 about 6 % slower than native PyTorch (ResNet, backend not stated). Here, on this "
                   f"MLP at batch {int(big['batch_size'].iloc[0])} (each at its faster mode), Keras on PyTorch reaches "
                   f"{best:.2f}x of native PyTorch: {verdict} the published figure.")
    return out


def profile_findings(profiles: Mapping[int, Mapping[str, object]]) -> list[str]:
    """What profiles of the same model at several batch sizes show (``profiling.Profile`` objects or
    their dicts, ``{batch_size: {run label: profile}}``, e.g. ``{bs: comparison.profiles}``): per batch
    size, each run's largest part of a step and its share; per run, how the shares of framework
    overhead and matmul move from the smallest to the largest batch; how much the profiler itself
    slowed each run's steps; op names no category rule maps.

    Returns:
        Markdown sentences; empty when there is no profile.
    """
    from .profiling import Profile

    def prof(p) -> Profile:
        return p if isinstance(p, Profile) else Profile.from_dict(p)

    def shares(p: Profile) -> dict[str, float]:
        return {c: v / p.step_ms for c, v in p.by_category().items()} if p.step_ms else {}

    data = {bs: {label: prof(p) for label, p in runs.items()} for bs, runs in sorted(profiles.items()) if runs}
    if not data:
        return []
    out = []
    for bs, runs in data.items():
        parts = []
        for label, p in runs.items():
            sh = shares(p)
            top = max(sh, key=sh.get)
            parts.append(f"{label}: {top} ({sh[top]:.0%} of {_fmt(p.step_ms)} ms)")
        out.append(f"At batch {bs}, the largest part of a profiled step is " + "; ".join(parts) + ".")
    sizes = list(data)
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        for label in data[lo]:
            if label not in data[hi]:
                continue
            a, b = shares(data[lo][label]), shares(data[hi][label])
            if not a or not b:
                continue
            out.append(f"{label}: from batch {lo} to batch {hi}, framework overhead goes from {a['framework overhead']:.0%} "
                       f"to {b['framework overhead']:.0%} of a step and matmul from {a['matmul']:.0%} to {b['matmul']:.0%}.")
    slow = {label: p.step_ms / p.unprofiled_step_ms for runs in data.values() for label, p in runs.items()
            if p.unprofiled_step_ms}  # fmt: skip
    if slow:
        lo_run, hi_run = min(slow, key=slow.get), max(slow, key=slow.get)
        out.append(f"The profiler itself made steps {slow[lo_run]:.2f}x ({lo_run}) to {slow[hi_run]:.2f}x ({hi_run}) as "
                   f"long as without it: shares are of the profiled step, and the throughput figures are measured without it.")
    unmapped = sorted({n for runs in data.values() for p in runs.values() for n in p.unmapped})
    if unmapped:
        out.append(f"Op names no category rule maps (counted as other): {', '.join(unmapped[:12])}"
                   + (f" and {len(unmapped) - 12} more." if len(unmapped) > 12 else "."))
    return out


def markdown(lines: Iterable[str]) -> str:
    """Findings as a Markdown bullet list (for ``IPython.display.Markdown``)."""
    return "\n".join(f"- {line}" for line in lines)


__all__ = [
    "BEST_CSS", "COLUMN_DOCS", "HEADLINE", "METRIC_DOCS", "TABLE_COLUMNS", "Column", "best_values", "findings", "markdown",
    "keras_overhead", "keras_findings", "PUBLISHED_KERAS_OVER_TORCH", "ONNX_COLUMNS", "CATALOGUE", "headline",
    "parity_findings", "profile_findings", "results_table", "runtime_table", "styled", "sweep_findings", "sweep_frame",
]  # fmt: skip
