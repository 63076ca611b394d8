"""Parity between frameworks: per-step relative loss differences against a reference run.

Pure pandas/NumPy (no ipywidgets, no framework), so the CLI, papermill notebooks and
:mod:`mlx_explore.report` use it as well as ``widgets.ParityPlot``.

The tolerances are those of the parity test (``tests/test_same_model.py``): rtol 1e-4 between
PyTorch, JAX and TensorFlow in float32, 1e-3 for scikit-learn (float64 internally, one logistic unit
on binary tasks).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: rtol of the per-step loss parity test (float32, SGD) between PyTorch, JAX and TensorFlow; and for scikit-learn.
RTOL = 1e-4
RTOL_SKLEARN = 1e-3

#: Relative differences below this are drawn at it, so an exact match (0) still shows on a log axis.
FLOOR = 1e-12
#: Frameworks whose run is the default reference, in this order of preference.
REFERENCE_FRAMEWORKS = ("torch", "jax", "tensorflow")


def curves_of(source) -> pd.DataFrame:
    """The loss curves of ``source`` as one DataFrame with a ``run`` column.

    Args:
        source: a ``Comparison`` (its ``curves``), a DataFrame of curves (``Comparison.curves``, or
            ``results.load_curves``' table, whose runs are labelled ``"<framework> #<run_id>"``), or
            ``None`` (an empty table).

    Returns:
        DataFrame with at least the columns ``run``, ``framework``, ``step``, ``loss`` [nats].

    Raises:
        ValueError: the table lacks one of those columns (the message names them).
    """
    if source is None:
        return pd.DataFrame(columns=["run", "framework", "step", "loss"])
    curves = source if isinstance(source, pd.DataFrame) else source.curves
    if "run" not in curves.columns and {"run_id", "framework"} <= set(curves.columns):  # load_curves' table
        curves = curves.assign(run=curves["framework"].astype(str) + " #" + curves["run_id"].astype(str))
    missing = {"run", "framework", "step", "loss"} - set(curves.columns)
    if missing:
        raise ValueError(f"curves lack the column(s) {', '.join(sorted(missing))}; have {', '.join(curves.columns)}")
    return curves


def run_names(curves: pd.DataFrame) -> list[str]:
    """The distinct ``run`` labels of ``curves`` (a :func:`curves_of` table), as ``str``, in order of
    first appearance."""
    return [str(r) for r in dict.fromkeys(curves["run"])]


def default_reference(curves: pd.DataFrame) -> str | None:
    """The first torch run, else the first jax, then tensorflow run, else the first run; ``None`` if empty."""
    firsts = curves.drop_duplicates("run")
    for fw in REFERENCE_FRAMEWORKS:
        hit = firsts[firsts["framework"] == fw]
        if not hit.empty:
            return str(hit["run"].iloc[0])
    return str(firsts["run"].iloc[0]) if not firsts.empty else None


def relative_differences(curves: pd.DataFrame, reference: str, floor: float = FLOOR) -> pd.DataFrame:
    """Per-step relative loss difference of every run against ``reference``.

    ``rel_diff = |loss_r(s) - loss_ref(s)| / |loss_ref(s)|`` for every run ``r != reference`` and every step ``s``
    logged by both (inner join on the step number, so runs with different ``log_every`` still compare).
    Values below ``floor`` (an exact match gives 0) are raised to ``floor`` so they can be drawn on a log axis;
    ``floor=0`` keeps them. A NaN or infinite loss gives NaN.

    Args:
        curves: columns ``run``, ``framework``, ``step``, ``loss`` at least (``Comparison.curves``).
        reference: the ``run`` label of the reference run.
        floor: smallest value returned (dimensionless).

    Returns:
        DataFrame with columns ``run``, ``framework``, ``step``, ``rel_diff`` [dimensionless], runs in their
        order in ``curves``, steps ascending.

    Raises:
        ValueError: ``reference`` is not a run of ``curves`` (the message lists the runs).
    """
    runs = run_names(curves)
    if reference not in runs:
        raise ValueError(f"unknown reference run {reference!r}; the runs are: {', '.join(runs) or 'none'}")
    data = curves.assign(run=curves["run"].astype(str), loss=pd.to_numeric(curves["loss"], errors="coerce"))
    data = data.drop_duplicates(["run", "step"], keep="last")
    ref = data.loc[data["run"] == reference, ["step", "loss"]].rename(columns={"loss": "ref_loss"})
    other = data.loc[data["run"] != reference, ["run", "framework", "step", "loss"]]
    merged = other.merge(ref, on="step", how="inner")
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = (merged["loss"] - merged["ref_loss"]).abs() / merged["ref_loss"].abs()
    rel = rel.where(np.isfinite(rel)).clip(lower=floor)
    out = merged.assign(rel_diff=rel.astype(float))[["run", "framework", "step", "rel_diff"]]
    out["order"] = out["run"].map({r: i for i, r in enumerate(runs)})
    return out.sort_values(["order", "step"], kind="stable").drop(columns="order").reset_index(drop=True)


def summarize(diffs: pd.DataFrame, rtol: float) -> list[dict]:
    """Per run of :func:`relative_differences`' table: ``{"run", "max_rel_diff", "first_exceeding_step", "steps"}``;
    ``first_exceeding_step`` is the first step whose difference is above ``rtol`` or NaN (``None``: none)."""
    out = []
    for run, part in diffs.groupby("run", sort=False):
        bad = part[~(part["rel_diff"] <= rtol)]
        out.append({"run": run, "max_rel_diff": float(part["rel_diff"].max()) if part["rel_diff"].notna().any()
                    else float("nan"), "first_exceeding_step": None if bad.empty else int(bad["step"].iloc[0]),
                    "steps": len(part)})  # fmt: skip
    return out
