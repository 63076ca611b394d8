"""Regression checks (issue 16): what the regression notebooks check, how each check is judged, the
baselines they are judged against, and how an executed notebook hands its checks to the program.

The regression notebooks (accuracy, parity, determinism, performance) run under papermill; each
builds :class:`Check` objects with the ``*_check`` functions here and calls :func:`record`.
``mlx-explore regress`` then reads the executed notebooks (:func:`read_checks`), fills in the
baselines of this machine class (:func:`load_baseline`, :func:`compare`), prints
:func:`summarize` and exits with :func:`exit_code`. Nothing here imports a framework, a widget or
IPython (``docs/architecture.md``, "Layers").

Design:

* **One check, one verdict.** A :class:`Check` holds the measured value, its unit, the baseline or
  fixed threshold, the tolerance and its kind, and a verdict with a sentence that gives the numbers.
  Verdicts: ``pass``; ``fail`` (a regression); ``noisy`` (a speed check whose repeats cannot tell
  a regression from noise); ``skipped`` (nothing to judge: a framework not installed, no baseline
  yet); ``error`` (no value: the run failed, or the check was never judged). :func:`exit_code` is
  1 for any ``fail`` or ``error``, else 0.
* **Fixed tolerances** (:func:`judge`, kinds ``abs`` and ``rel``) follow ``pytest.approx``'s
  ``abs`` and ``rel`` (https://docs.pytest.org/en/stable/reference/reference.html#pytest-approx):
  the allowed deviation is ``tolerance`` or ``tolerance * |baseline|``. It is one-sided when
  ``higher_is_better`` says which way is worse (accuracy rising is no regression) and two-sided
  when it is ``None``. Accuracy: at least a floor, or at most ``tolerance`` below its baseline.
  Parity: the largest per-step relative loss difference at most ``rtol`` (the parity test's
  tolerances, :data:`mlx_explore.parity.RTOL`). Determinism: two runs bitwise identical.
* **Speed** (kind ``min_ratio``, :func:`speed_check`) is judged on an interval, not one number,
  because throughput on a shared machine varies from run to run: a 95 % Student t confidence
  interval of the ratio measured/baseline from the repeats (see :func:`ratio_interval` for the
  method and why t rather than a bootstrap). ``fail`` only when the whole interval lies below
  ``1 - tolerance``, ``pass`` when it lies wholly at or above it, ``noisy`` when it straddles it.
  With one repeat and no spread known there is no interval; the rule for that case is in
  :func:`judge`. Repeating and reporting an interval instead of one run follows Kalibera & Jones,
  "Rigorous Benchmarking in Reasonable Time" (ISMM 2013).
* **Baselines** are per machine class (:func:`machine_class`): speed means nothing across hardware.
  One JSON file per class, ``notebooks/regression/baselines/<machine-class>.json``
  (:func:`default_baseline_path`), schema ``mlx-explore-baseline/1`` (:class:`Baseline`), written
  atomically by :func:`write_baseline` and validated by :func:`load_baseline`, which never writes.
  Every failure to use one is a :class:`BaselineError` (a :class:`~mlx_explore.config.ConfigError`:
  bad input, named by ``field``).
* **From notebook to program**: papermill 2 has no ``pm.record`` any more and scrapbook, its successor,
  has had no release since 0.5.0 (January 2021), so neither is used. :func:`record` displays one output whose data has
  a MIME type of this project, :data:`MIME_TYPE` (``application/vnd.mlx-explore.checks+json``), a
  JSON list of the checks, next to a ``text/html`` table for people. Jupyter keeps display data
  under its MIME type in the saved notebook, and a ``+json`` type is stored as JSON, not as a
  string (nbformat 4 schema, ``mimebundle``), so papermill's output notebook carries the checks as
  data and :func:`read_checks` collects them with nbformat, in order, parsing no printed text. The
  display goes through the running kernel's own display publisher
  (``get_ipython().display_pub.publish``), which is exactly what ``IPython.display.display(bundle,
  raw=True)`` calls (``IPython.core.display_functions.publish_display_data``). It is reached through
  the ``IPython`` module the kernel has already loaded (``sys.modules``): the core never imports
  IPython, not even inside a function, which ``tests/test_layering.py`` checks statement by
  statement. Outside a kernel :func:`record` prints the plain-text table instead.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .config import FRAMEWORKS, ConfigError
from .parity import RTOL
from .suite import SIZES, machine_id

#: The MIME type of the checks a notebook records (a JSON list of :class:`Check` dicts).
MIME_TYPE = "application/vnd.mlx-explore.checks+json"
#: The ``schema`` key of a baseline file; another value is refused by :func:`load_baseline`.
SCHEMA = "mlx-explore-baseline/1"
#: Where the baselines live: ``notebooks/regression/baselines`` of this checkout.
BASELINES_DIR = Path(__file__).resolve().parents[1] / "notebooks" / "regression" / "baselines"

FAMILIES = ("accuracy", "parity", "determinism", "performance")
VERDICTS = ("pass", "fail", "noisy", "skipped", "error")
KINDS = ("abs", "rel", "min_ratio")
#: Verdicts :func:`exit_code` counts as a regression (exit status 1).
FAILING = ("fail", "error")

#: Confidence level of the speed interval (two-sided). 95 % is the conventional level; a lower one
#: would turn more noise into verdicts, a higher one more regressions into ``noisy``.
DEFAULT_CONFIDENCE = 0.95
#: Default speed tolerance [fraction of the baseline]: a speed check fails when throughput is more
#: than 20 % below its baseline. A project choice, not a measurement: wide enough that a shared CI
#: machine's run-to-run variation alone does not fail (the interval covers that too), narrow
#: enough to catch a lost compilation or a synchronisation inside the loop (both cost far more).
DEFAULT_SPEED_TOLERANCE = 0.2
#: Default accuracy tolerance below the baseline [fraction correct, absolute]: 0.02, about 7 test
#: samples of ``digits``' 360; a project choice that allows a different but equally good run.
DEFAULT_ACCURACY_TOLERANCE = 0.02

_NAME = re.compile(r"^[A-Za-z0-9_.:+\-]+$")


class BaselineError(ConfigError):
    """A baseline file cannot be used (or written); the file is left exactly as it was.

    Attributes:
        field: what is wrong: ``"path"`` (missing, a folder, unreadable, or not writable),
            ``"json"`` (not UTF-8 strict JSON), ``"schema"`` (not an mlx-explore baseline: another
            kind of JSON file, a Jupyter notebook, another schema version), or the dotted location
            of an invalid entry (``"values.accuracy.mlp.digits.jax.value"``, ``"size"``...).
        message: what is wrong with which file, and what to do.
        path: the file (``None`` when no file is involved).

    A :class:`~mlx_explore.config.ConfigError`, so the CLI reports it as bad input.
    """

    def __init__(self, field: str, message: str, path: Path | None = None):
        super().__init__(field, message)
        self.path = path


class ChecksError(ConfigError):
    """An executed notebook's recorded checks cannot be read: ``field`` is ``"notebook"`` (missing,
    not a notebook) or ``"cells[i]"`` (the output of code cell ``i`` holds invalid checks)."""


# ------------------------------------------------------------------------------------ the check


class Check(BaseModel):
    """One checked value of a regression notebook and its verdict. Immutable; built by
    :func:`accuracy_check`, :func:`parity_check`, :func:`determinism_check`, :func:`speed_check`,
    :func:`unmeasured` (all judged by :func:`judge`), or read back by :func:`read_checks`.

    Fields:
        name: ``"<family>.<what>"``, e.g. ``"accuracy.mlp.digits.jax"``; letters, digits and
            ``_ . : + -``; the key of the check's value in a baseline file.
        family: ``accuracy``, ``parity``, ``determinism`` or ``performance``.
        value: the measured value in ``unit`` (a speed check: the mean of ``samples``); ``None``
            when nothing was measured. A NaN or infinite value is stored as ``None`` (strict JSON).
        unit: the unit of ``value``, ``baseline`` and ``samples`` (``"fraction"``, ``"samples/s"``...).
        baseline: what ``value`` is compared with, in ``unit``: a baseline file's value, a floor, or
            a fixed threshold (parity: 0, determinism: 1); ``None``: not known yet.
        baseline_samples: the baseline's own repeats (speed; ``()`` when unknown).
        tolerance: how far ``value`` may be worse than ``baseline``: an absolute amount in ``unit``
            (``abs``), a fraction of ``|baseline|`` (``rel``), or the fraction by which
            measured/baseline may fall below 1 (``min_ratio``, ``< 1``). >= 0.
        kind: ``abs``, ``rel`` (as ``pytest.approx``'s ``abs``/``rel``) or ``min_ratio`` (speed).
        higher_is_better: ``True``/``False``: only a change in the worse direction can fail;
            ``None``: either direction (``abs``/``rel`` only).
        samples: the repeats a speed value is the mean of, in ``unit`` (``()`` for other checks).
        reference: the word the detail uses for ``baseline`` (``"baseline"``, ``"floor"``...).
        interval: speed only: the confidence interval of measured/baseline [dimensionless], as
            :func:`ratio_interval` gives it (``None``: none); for a time, the speed ratio
            baseline/measured is its inverse.
        verdict: ``pass``, ``fail``, ``noisy``, ``skipped`` or ``error`` (the default: not judged).
        detail: one sentence with the numbers behind the verdict.

    Raises:
        pydantic.ValidationError: a field outside the rules above.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    family: Literal["accuracy", "parity", "determinism", "performance"]
    value: float | None = None
    unit: str = ""
    baseline: float | None = None
    baseline_samples: tuple[float, ...] = ()
    tolerance: float = Field(0.0, ge=0)
    kind: Literal["abs", "rel", "min_ratio"] = "abs"
    higher_is_better: bool | None = None
    samples: tuple[float, ...] = ()
    reference: str = "baseline"
    interval: tuple[float, float] | None = None
    verdict: Literal["pass", "fail", "noisy", "skipped", "error"] = "error"
    detail: str = "not judged"

    @field_validator("value", "baseline")
    @classmethod
    def _finite_or_none(cls, v: float | None) -> float | None:
        return v if v is None or math.isfinite(v) else None

    @field_validator("tolerance")
    @classmethod
    def _finite_tolerance(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("tolerance must be finite")
        return v

    @field_validator("samples", "baseline_samples")
    @classmethod
    def _finite_samples(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not all(math.isfinite(x) for x in v):
            raise ValueError("samples must be finite numbers")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Check":
        if not _NAME.match(self.name) or self.name.split(".")[0] != self.family or "." not in self.name:
            raise ValueError(f"name {self.name!r} must be '{self.family}.<what>' (letters, digits, _ . : + -)")
        if self.kind == "min_ratio" and self.tolerance >= 1:
            raise ValueError(f"a min_ratio tolerance is a fraction below 1, not {self.tolerance}")
        return self

    def replace(self, **changes: Any) -> "Check":
        """A copy with ``changes`` applied and validated (the check itself is immutable)."""
        return Check(**{**self.model_dump(), **changes})


# ------------------------------------------------------------------------------------ numbers


def _num(x: float | None) -> str:
    """A number as the details write it: thousands separated from 1,000 up, 4 significant digits
    below, scientific notation under 0.001."""
    if x is None:
        return "none"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax == 0:
        return "0"
    if ax < 1e-3:
        return f"{x:.2e}"
    return f"{x:.4g}"


def _pct(fraction: float) -> str:
    """``0.41`` -> ``"41%"``; one decimal below 10 % when it is not whole (``"2.5%"``)."""
    p = round(abs(fraction) * 100, 1)
    return f"{p:.0f}%" if p >= 10 or p.is_integer() else f"{p:.1f}%"


def _ratio(x: float) -> str:
    """A ratio to 3 decimals (``0.587``): intervals of ratios read side by side."""
    return f"{x:.3f}"


def _with_unit(x: float | None, unit: str) -> str:
    return f"{_num(x)} {unit}" if unit and unit not in ("fraction", "relative", "bool") else _num(x)


def _versus(value: float, baseline: float) -> str:
    """``"41% below"``, ``"3% above"`` or ``"equal to"`` (relative to ``baseline``; absolute when it is 0)."""
    if value == baseline:
        return "equal to"
    side = "below" if value < baseline else "above"
    if baseline == 0:
        return f"{_num(abs(value - baseline))} {side}"
    return f"{_pct((value - baseline) / abs(baseline))} {side}"


# ------------------------------------------------------------------------------------ judging


def ratio_interval(samples: Sequence[float], baseline: float, baseline_samples: Sequence[float] = (),
                   confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float] | None:  # fmt: skip
    """Two-sided Student t confidence interval of the ratio measured/baseline [dimensionless].

    The ratio of the mean of ``samples`` to ``baseline``, with the spread of both:
    ``(mean(samples) - baseline ± t · se) / baseline``.

    * two or more samples, baseline without repeats (``baseline_samples`` shorter than 2): the
      one-sample t interval of the mean, ``se = s / sqrt(n)``, ``n - 1`` degrees of freedom
      (Student, 1908);
    * two or more samples and two or more baseline repeats: Welch's interval of the difference of
      the two means, ``se = sqrt(s²/n + s_b²/n_b)`` with the Welch-Satterthwaite degrees of freedom
      (Welch, 1947), so the baseline's own noise is counted (its extra degrees of freedom can
      make the interval narrower than the one-sample one when both spreads are alike); divided
      by the baseline, which treats the denominator as known (a first-order, delta-method
      approximation to the ratio of two means);
    * one sample and two or more baseline repeats: the t prediction interval of one new
      observation from the baseline's spread, ``se = s_b · sqrt(1 + 1/n_b)``, ``n_b - 1``
      degrees of freedom;
    * one sample and no baseline spread: ``None`` (no interval; :func:`judge` has a rule for it).

    Why t and not a bootstrap: a regression notebook can afford few repeats (3 to 5), and there the
    percentile bootstrap is too narrow: it cannot reach beyond the smallest and largest repeat and
    undercovers at small n (Hesterberg, "What Teachers Should Know About the Bootstrap", The
    American Statistician 69(4), 2015), which would turn noise into ``fail``. The t interval widens
    honestly as repeats get fewer (t = 4.30 for 3 repeats at 95 %), needs no random seed to be
    reproducible, and assumes roughly normal repeats: an assumption that fits a steady-state
    throughput (each repeat already a median over timing windows, ``bench.py``) better than single
    timings, and one to revisit if recorded repeats turn out skewed.

    Args:
        samples: the measured repeats, in the baseline's unit (finite).
        baseline: the baseline value (> 0; a baseline file stores the mean of its repeats).
        baseline_samples: the baseline's repeats, if known.
        confidence: the two-sided confidence level, in (0, 1).

    Returns:
        ``(low, high)`` of measured/baseline, or ``None`` as said above. Zero spread gives a point.

    Raises:
        ValueError: no samples, a baseline that is not > 0, or a confidence outside (0, 1).
    """
    from scipy.stats import t as student_t  # scipy is a dependency; imported here to keep this import light

    x = np.asarray(samples, dtype=float)
    b = np.asarray(baseline_samples, dtype=float)
    if x.size == 0:
        raise ValueError("samples: at least one repeat is needed")
    if not baseline > 0:
        raise ValueError(f"baseline must be > 0, not {baseline}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    n, nb = x.size, b.size
    vb = float(b.var(ddof=1)) / nb if nb >= 2 else 0.0
    if n >= 2:
        vx = float(x.var(ddof=1)) / n
        se = math.sqrt(vx + vb)
        if nb >= 2 and se > 0:
            df = (vx + vb) ** 2 / (vx**2 / (n - 1) + vb**2 / (nb - 1))
        else:
            df = n - 1
    elif nb >= 2:
        se = math.sqrt(float(b.var(ddof=1)) * (1 + 1 / nb))
        df = nb - 1
    else:
        return None
    half = float(student_t.ppf((1 + confidence) / 2, df)) * se if se > 0 else 0.0
    mean = float(x.mean())
    return ((mean - half) / baseline, (mean + half) / baseline)


def judge(check: Check, confidence: float = DEFAULT_CONFIDENCE) -> Check:
    """``check`` with its ``verdict``, ``detail`` (and for speed ``interval``) worked out from its fields.

    Rules, in order:

    1. No value: a check already ``skipped`` or ``error`` keeps its verdict and detail (the reason
       given by :func:`unmeasured`); any other is ``error``.
    2. No baseline: ``skipped`` ("no baseline to compare with"), so a notebook run before a
       baseline exists records its values without failing; :func:`compare` fills baselines in.
    3. ``abs`` / ``rel`` (accuracy, parity, determinism): the allowed deviation ``d`` is
       ``tolerance`` or ``tolerance * |baseline|`` (``pytest.approx``'s ``abs`` and ``rel``).
       ``pass`` when ``value >= baseline - d`` (``higher_is_better``), ``value <= baseline + d``
       (lower is better) or ``|value - baseline| <= d`` (``None``); else ``fail``. Never ``noisy``:
       these values are deterministic functions of the seed, or bounds that hold whatever the noise.
    4. ``min_ratio`` (speed): the speed ratio is measured/baseline (baseline/measured when lower is
       better, e.g. a latency), threshold ``T = 1 - tolerance``. With an interval of the ratio
       (:func:`ratio_interval` at ``confidence``): ``fail`` when all of it is below ``T``,
       ``pass`` when all of it is at or above ``T``, ``noisy`` when it straddles ``T``.
       Without one (a single repeat, no baseline spread), the point ratio ``r`` is judged with a
       margin of half the tolerance on each side of ``T``: ``fail`` when ``r < T - tolerance/2``,
       ``pass`` when ``r >= T + tolerance/2``, else ``noisy``. The tolerance is chosen to exceed
       run-to-run noise, so a single run within half of it of the threshold cannot be told apart
       from it, while one further away is clearly on one side. With the default 20 %: fail below
       0.7, pass from 0.9. A baseline or sample that is not > 0 is an ``error``.

    Args:
        check: any :class:`Check`; its ``verdict`` and ``detail`` are ignored (except rule 1).
        confidence: level of the speed interval (two-sided), in (0, 1).

    Returns:
        A new :class:`Check`. Never raises for a valid check (bad numbers give ``error``).
    """
    c = check
    if c.value is None:
        if c.verdict in ("skipped", "error") and c.detail != "not judged":
            return c
        return c.replace(verdict="error", detail=f"{c.name}: no value was measured", interval=None)
    if c.baseline is None:
        return c.replace(verdict="skipped", interval=None,
                         detail=f"{c.name} {_with_unit(c.value, c.unit)}: no baseline to compare with")  # fmt: skip
    if c.kind == "min_ratio":
        return _judge_speed(c, confidence)
    return _judge_fixed(c)


def _judge_fixed(c: Check) -> Check:
    v, b, hib = c.value, c.baseline, c.higher_is_better
    d = c.tolerance if c.kind == "abs" else c.tolerance * abs(b)
    tol = _num(c.tolerance) if c.kind == "abs" else _pct(c.tolerance)
    if hib is None:
        ok = abs(v - b) <= d
    else:
        ok = v >= b - d if hib else v <= b + d
    verdict = "pass" if ok else "fail"
    if c.family == "determinism":
        what = "bitwise identical" if v >= 1 else "not bitwise identical"
        return c.replace(verdict=verdict, interval=None, detail=f"{c.name}: two runs with the same seed were {what}")
    if c.family == "parity" and hib is False and b == 0:
        word = "within" if ok else "above"
        return c.replace(verdict=verdict, interval=None,
                         detail=f"{c.name}: the largest relative loss difference {_num(v)} is {word} rtol {_num(c.tolerance)}")  # fmt: skip
    val, ref = _with_unit(v, c.unit), f"the {c.reference} {_with_unit(b, c.unit)}"
    if hib is None:
        gap = _num(abs(v - b)) if c.kind == "abs" else _pct(abs(v - b) / abs(b)) if b else _num(abs(v - b))
        word = "within" if ok else "more than"
        detail = f"{c.name} {val} differs from {ref} by {gap}, {word} the tolerance {tol}"
    else:
        side, bound = ("below", b - d) if hib else ("above", b + d)
        limit = "at least" if hib else "at most"
        if ok and d == 0:
            detail = f"{c.name} {val} is {limit} {ref}"
        elif ok:
            detail = f"{c.name} {val} is {limit} {_with_unit(bound, c.unit)} ({ref}, tolerance {tol})"
        elif d == 0:
            detail = f"{c.name} {val} is {_num(abs(v - b))} {side} {ref}"
        else:
            detail = (f"{c.name} {val} is {_num(abs(v - b))} {side} {ref} (tolerance {tol}: "
                      f"{limit} {_with_unit(bound, c.unit)})")  # fmt: skip
    return c.replace(verdict=verdict, interval=None, detail=detail)


def _judge_speed(c: Check, confidence: float) -> Check:
    samples = c.samples or (c.value,)
    if not c.baseline > 0 or min(samples) <= 0:
        return c.replace(verdict="error", interval=None,
                         detail=f"{c.name}: speed values must be > 0 (value {_num(c.value)}, baseline {_num(c.baseline)})")  # fmt: skip
    hib = c.higher_is_better is not False
    threshold = 1 - c.tolerance
    interval = ratio_interval(samples, c.baseline, c.baseline_samples, confidence)
    mean = float(np.mean(samples))
    head = (f"{c.name} {_with_unit(mean, c.unit)} is {_versus(mean, c.baseline)} the baseline "
            f"{_with_unit(c.baseline, c.unit)}")  # fmt: skip
    n = len(samples)
    reps = f"{n} repeat{'s' if n != 1 else ''}"
    if len(c.baseline_samples) >= 2:
        reps += f" and {len(c.baseline_samples)} baseline repeats"
    ratio_name = "measured/baseline" if hib else "baseline/measured (lower is better)"
    if interval is None:
        r = mean / c.baseline if hib else c.baseline / mean
        lo_cut, hi_cut = threshold - c.tolerance / 2, threshold + c.tolerance / 2
        verdict = "fail" if r < lo_cut else "pass" if r >= hi_cut else "noisy"
        where = {"fail": f"below {_num(lo_cut)}", "pass": f"at or above {_num(hi_cut)}",
                 "noisy": f"between {_num(lo_cut)} and {_num(hi_cut)}, too close to tell: repeat it"}[verdict]  # fmt: skip
        detail = (f"{head} (tolerance {_pct(c.tolerance)}); one repeat and no spread to judge by: "
                  f"the ratio {ratio_name} {_ratio(r)} is {where} (threshold {_num(threshold)} ± half the tolerance)")  # fmt: skip
        return c.replace(value=mean, verdict=verdict, interval=None, detail=detail)
    lo, hi = interval
    if not hib:  # a time: speed is its inverse, so invert the interval of measured/baseline (hi > 0: mean > 0)
        lo, hi = 1 / hi, (1 / lo if lo > 0 else math.inf)
    verdict = "fail" if hi < threshold else "pass" if lo >= threshold else "noisy"
    where = {"fail": "lies wholly below", "pass": "lies wholly at or above",
             "noisy": "straddles"}[verdict]  # fmt: skip
    upper = _ratio(hi) if math.isfinite(hi) else "no upper bound"
    detail = (f"{head} (tolerance {_pct(c.tolerance)}); the {confidence:.0%} t interval of {ratio_name}, "
              f"{_ratio(lo)} to {upper} from {reps}, {where} the threshold {_num(threshold)}")  # fmt: skip
    if verdict == "noisy":
        detail += ": too noisy to tell, measure more repeats"
    return c.replace(value=mean, verdict=verdict, interval=interval, detail=detail)


def accuracy_check(name: str, value: float | None, *, floor: float | None = None, baseline: float | None = None,
                   tolerance: float = DEFAULT_ACCURACY_TOLERANCE, unit: str = "fraction") -> Check:  # fmt: skip
    """An accuracy check, judged: at least ``floor``, or at most ``tolerance`` below ``baseline``.

    Args:
        name: ``"accuracy.<model>.<dataset>.<framework>"``.
        value: test accuracy [fraction correct, 0..1]; ``None``/NaN: not measured (``error``).
        floor: a fixed lower bound [fraction]; exclusive with ``baseline``.
        baseline: the accuracy this machine class reached before [fraction]; ``None`` (and no
            floor): left for :func:`compare` to fill from a baseline file (``skipped`` until then).
        tolerance: how far below ``baseline`` is still a pass [fraction, absolute];
            :data:`DEFAULT_ACCURACY_TOLERANCE` by default. Ignored with ``floor``.
        unit: the unit of the values.

    Raises:
        ValueError: both ``floor`` and ``baseline``. pydantic.ValidationError: an invalid field.
    """
    if floor is not None and baseline is not None:
        raise ValueError("give a floor or a baseline, not both")
    if floor is not None:
        check = Check(name=name, family="accuracy", value=value, unit=unit, baseline=floor, tolerance=0.0,
                      kind="abs", higher_is_better=True, reference="floor")  # fmt: skip
    else:
        check = Check(name=name, family="accuracy", value=value, unit=unit, baseline=baseline, tolerance=tolerance,
                      kind="abs", higher_is_better=True)  # fmt: skip
    return judge(check)


def parity_check(name: str, max_rel_diff: float | None, rtol: float = RTOL) -> Check:
    """A parity check, judged: the largest per-step relative loss difference is at most ``rtol``.

    Args:
        name: ``"parity.<model>.<dataset>.<framework>"``.
        max_rel_diff: the largest relative difference of the per-step training losses against the
            reference framework [dimensionless] (:func:`mlx_explore.parity.summarize`'s
            ``max_rel_diff``); ``None``/NaN: not measured (``error``).
        rtol: the bound [dimensionless]; default :data:`mlx_explore.parity.RTOL` (1e-4, the parity
            test's tolerance between PyTorch, JAX and TensorFlow; ``RTOL_SKLEARN`` for scikit-learn).
    """
    return judge(Check(name=name, family="parity", value=max_rel_diff, unit="relative", baseline=0.0,
                       tolerance=rtol, kind="abs", higher_is_better=False, reference="rtol"))  # fmt: skip


def determinism_check(name: str, identical: bool | None) -> Check:
    """A determinism check, judged: two runs with the same seed and the determinism switches on
    (``RunConfig.deterministic``) must give bitwise identical results (the suite's rule, ``suite.py``).

    Args:
        name: ``"determinism.<model>.<dataset>.<framework>"``.
        identical: ``True``: bitwise identical (value 1, ``pass``); ``False``: not (value 0,
            ``fail``); ``None``: not measured (``error``).
    """
    value = None if identical is None else float(bool(identical))
    return judge(Check(name=name, family="determinism", value=value, unit="bool", baseline=1.0, tolerance=0.0,
                       kind="abs", higher_is_better=True, reference="requirement"))  # fmt: skip


def speed_check(name: str, samples: Sequence[float], baseline: float | None = None, *,
                baseline_samples: Sequence[float] = (), tolerance: float = DEFAULT_SPEED_TOLERANCE,
                unit: str = "samples/s", higher_is_better: bool = True,
                confidence: float = DEFAULT_CONFIDENCE) -> Check:  # fmt: skip
    """A speed check, judged on the confidence interval of measured/baseline (rules: :func:`judge`).

    Args:
        name: ``"performance.<what>"``, e.g. ``"performance.mlp.digits.jax.samples_per_s"``.
        samples: the repeats [``unit``], each > 0; the check's value is their mean. Empty: ``error``.
        baseline: the baseline [``unit``] (a baseline file's mean of its repeats); ``None``: left
            for :func:`compare` (``skipped`` until then).
        baseline_samples: the baseline's repeats, if known (Welch: their spread is counted too).
        tolerance: the fraction by which the speed ratio may fall below 1 (default
            :data:`DEFAULT_SPEED_TOLERANCE`, 20 %), in [0, 1).
        unit: e.g. ``"samples/s"`` (higher is better) or ``"ms"`` with ``higher_is_better=False``.
        higher_is_better: ``False`` for times: then the speed ratio is baseline/measured.
        confidence: the interval's level.

    Raises:
        pydantic.ValidationError: non-finite samples, a tolerance outside [0, 1).
    """
    samples = tuple(float(s) for s in samples)
    if not samples:
        return unmeasured(name, "performance", f"{name}: no repeats were measured", unit=unit)
    return judge(Check(name=name, family="performance", value=float(np.mean(samples)), unit=unit, baseline=baseline,
                       baseline_samples=tuple(baseline_samples), tolerance=tolerance, kind="min_ratio",
                       higher_is_better=higher_is_better, samples=samples), confidence)  # fmt: skip


def unmeasured(name: str, family: str, reason: str, *, skipped: bool = False, unit: str = "") -> Check:
    """A check with no value: ``error`` (the run failed: ``reason`` says how) or, with ``skipped``,
    ``skipped`` (nothing to run: a framework not installed, a model it does not support).

    Raises:
        pydantic.ValidationError: an invalid name or family.
    """
    return Check(name=name, family=family, unit=unit, verdict="skipped" if skipped else "error", detail=reason)


# ------------------------------------------------------------------------------------ machine class


def _slug(text: str) -> str:
    """Lower case, trademark marks dropped, each run of other characters than a-z and 0-9 one '-'."""
    text = re.sub(r"\((r|tm|c)\)", " ", str(text), flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def machine_class(env: Mapping[str, Any]) -> str:
    """The hardware class a baseline belongs to, as a file-name-safe slug.

    Rule: with GPUs (``env["gpus"]``, nvidia-smi's ``"name, driver, memory"`` lines), the GPU
    models and how many of each, in nvidia-smi's order: ``gpu-<model>-x<count>`` (joined by ``-``
    for mixed models); the CPU is not part of it, because a GPU run's speed is the GPU's. Without
    GPUs, the CPU model and the usable cores (``usable_cores``, else ``cpu_count``):
    ``cpu-<model>-<n>c``. Models are slugged: lower case, ``(R)``/``(TM)`` dropped, every run of
    characters other than ``a-z0-9`` one ``-``; the result is cut to 120 characters. The driver and
    memory lines, frameworks and versions are not part of it: those are what a regression run
    compares. It is coarser than :func:`mlx_explore.suite.machine_id` only in spelling (same
    inputs), and deterministic: the same env gives the same class.

    Examples: ``"Intel(R) Xeon(R) Processor"`` with 2 usable cores -> ``cpu-intel-xeon-processor-2c``;
    one ``"NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB"`` -> ``gpu-nvidia-h100-80gb-hbm3-x1``.

    Args:
        env: :func:`mlx_explore.env.environment`'s dict (or a stored run's ``env``).

    Returns:
        A slug of ``a-z``, ``0-9`` and ``-``. Never raises: missing entries read as ``unknown``.
    """
    gpus = [str(g).split(",")[0].strip() for g in env.get("gpus") or [] if str(g).strip()]
    if gpus:
        counts: dict[str, int] = {}
        for g in gpus:
            counts[_slug(g)] = counts.get(_slug(g), 0) + 1
        out = "gpu-" + "-".join(f"{model}-x{n}" for model, n in counts.items())
    else:
        cores = env.get("usable_cores") or env.get("cpu_count")
        out = f"cpu-{_slug(env.get('cpu_model') or 'unknown')}-" + (f"{int(cores)}c" if cores else "unknown-cores")
    return out[:120].rstrip("-")


def default_baseline_path(env: Mapping[str, Any]) -> Path:
    """``notebooks/regression/baselines/<machine_class(env)>.json`` of this checkout (:data:`BASELINES_DIR`)."""
    return BASELINES_DIR / f"{machine_class(env)}.json"


# ------------------------------------------------------------------------------------ baselines


class BaselineValue(BaseModel):
    """One check's baseline: ``value`` [``unit``], finite; ``samples``: its repeats (speed), if any."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float
    unit: str
    samples: tuple[float, ...] | None = None

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @field_validator("samples")
    @classmethod
    def _finite_samples(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if v is not None and not all(math.isfinite(x) for x in v):
            raise ValueError("must be finite numbers")
        return v


class Baseline(BaseModel):
    """A baseline file (schema :data:`SCHEMA`): the values one machine class measured.

    Fields: ``schema`` (:data:`SCHEMA`; the attribute is ``schema_``, since pydantic models have a
    ``schema`` method), ``machine_class`` (:func:`machine_class`), ``machine``
    (:func:`mlx_explore.suite.machine_id`), ``created_at`` (UTC ISO 8601), ``versions``
    (distribution -> version: the frameworks, ``python``, ``numpy``, ``mlx-explore``), ``size``
    (the suite size the values were measured at: ``small`` or ``full``), ``values`` (check name ->
    :class:`BaselineValue`). Unknown keys are refused.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_: Literal["mlx-explore-baseline/1"] = Field(SCHEMA, alias="schema")
    machine_class: str = Field(pattern=r"^[a-z0-9][a-z0-9\-]*$", max_length=120)
    machine: str
    created_at: str
    versions: dict[str, str]
    size: Literal["small", "full"]
    values: dict[str, BaselineValue]

    @field_validator("created_at")
    @classmethod
    def _iso(cls, v: str) -> str:
        try:
            _dt.datetime.fromisoformat(v)
        except ValueError:
            raise ValueError(f"{v!r} is not an ISO 8601 time") from None
        return v

    @field_validator("values")
    @classmethod
    def _names(cls, v: dict[str, BaselineValue]) -> dict[str, BaselineValue]:
        for name in v:
            if not _NAME.match(name) or name.split(".")[0] not in FAMILIES or "." not in name:
                raise ValueError(f"{name!r} is not a check name ('<family>.<what>', family one of {', '.join(FAMILIES)})")
        return v


def load_baseline(path: str | Path) -> Baseline:
    """Read and validate a baseline file; the file is only read, never written or created.

    Args:
        path: the file, e.g. :func:`default_baseline_path`.

    Returns:
        The :class:`Baseline`.

    Raises:
        BaselineError: ``field`` ``"path"`` (no such file, a folder, unreadable), ``"json"`` (not
            UTF-8, not strict JSON: NaN/Infinity are refused), ``"schema"`` (the top level is not an
            object, has no ``schema`` key, e.g. a Jupyter notebook, or another schema), or the
            dotted location of the first invalid entry; the message names the file.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise BaselineError("path", f"no baseline file at {p}: run the regression notebooks on this machine and "
                            "write one with regress.write_baseline", p) from None  # fmt: skip
    except IsADirectoryError:
        raise BaselineError("path", f"{p} is a folder, not a baseline file", p) from None
    except OSError as e:
        raise BaselineError("path", f"cannot read the baseline file {p}: {e.strerror or e}", p) from None
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise BaselineError("json", f"{p} is not a baseline file: it is not UTF-8 text", p) from None
    except json.JSONDecodeError as e:
        raise BaselineError("json", f"{p} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}", p) from None
    except ValueError as e:
        raise BaselineError("json", f"{p} is not strict JSON: {e}", p) from None
    if not isinstance(data, dict):
        raise BaselineError("schema", f"{p} is not an mlx-explore baseline: its top level is a JSON "
                            f"{type(data).__name__}, not an object with schema {SCHEMA!r}", p)  # fmt: skip
    if "schema" not in data:
        what = " (it is a Jupyter notebook)" if "nbformat" in data and "cells" in data else ""
        raise BaselineError("schema", f"{p} is not an mlx-explore baseline{what}: it has no 'schema' key "
                            f"(expected {SCHEMA!r})", p)  # fmt: skip
    if data["schema"] != SCHEMA:
        found = data["schema"]
        hint = (": it is from another version of mlx-explore" if isinstance(found, str)
                and found.startswith("mlx-explore-baseline/") else "")  # fmt: skip
        raise BaselineError("schema", f"{p} has schema {found!r}, not {SCHEMA!r}{hint}", p)
    try:
        return Baseline.model_validate(data)
    except ValidationError as e:
        errors = e.errors()
        field = ".".join(str(part) for part in errors[0]["loc"]) or "values"
        lines = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in errors)
        raise BaselineError(field, f"{p} is not a valid baseline: {lines}", p) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed (a baseline holds finite numbers only)")


def build_baseline(checks: Iterable[Check], env: Mapping[str, Any], size: str) -> Baseline:
    """The :class:`Baseline` of ``checks`` on the machine ``env`` describes (what :func:`write_baseline` writes).

    Every check with a value is kept (``value``, ``unit`` and, for speed, ``samples``); checks
    without one (``skipped``, ``error``) are left out. ``created_at`` is now (UTC, seconds).

    Raises:
        BaselineError: ``size`` is not ``small``/``full`` (field ``"size"``); two checks share a
            name (``"checks"``).
    """
    if size not in SIZES:
        raise BaselineError("size", f"unknown suite size {size!r}; allowed: {', '.join(SIZES)}")
    values: dict[str, BaselineValue] = {}
    for c in checks:
        if c.name in values:
            raise BaselineError("checks", f"two checks are named {c.name!r}: each name must be unique")
        if c.value is not None:
            values[c.name] = BaselineValue(value=c.value, unit=c.unit, samples=c.samples or None)
    versions = {str(k): str(v) for k, v in (env.get("versions") or {}).items() if v is not None}
    for key, dist in (("python", "python"), ("numpy", "numpy"), ("mlx_explore", "mlx-explore")):
        if env.get(key):
            versions[dist] = str(env[key])
    return Baseline(machine_class=machine_class(env), machine=machine_id(dict(env)), size=size, versions=versions,
                    created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), values=values)  # fmt: skip


def write_baseline(path: str | Path, checks: Iterable[Check], env: Mapping[str, Any], size: str) -> Baseline:
    """Write the baseline of ``checks`` (:func:`build_baseline`) to ``path``, atomically.

    The JSON (sorted keys, indent 2, strict) goes to a temporary file in the same folder, is
    flushed to disk, and replaces ``path`` with ``os.replace`` (atomic on POSIX and Windows), so a
    reader sees the old file or the new one, never half of one, and a failure leaves the old file
    as it was. The folder is created if needed; the file gets mode 0644 (or the mode it had).

    Args:
        path: the file, e.g. :func:`default_baseline_path` of ``env``.
        checks: the judged checks of one regression run.
        env: :func:`mlx_explore.env.environment` of the machine they ran on.
        size: the suite size they ran at, ``small`` or ``full``.

    Returns:
        The :class:`Baseline` written (``load_baseline(path)`` gives an equal one).

    Raises:
        BaselineError: as :func:`build_baseline`; ``"path"`` when the file cannot be written.
    """
    p = Path(path)
    baseline = build_baseline(checks, env, size)
    text = json.dumps(baseline.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=True, indent=2,
                      allow_nan=False) + "\n"  # fmt: skip
    tmp = None
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        mode = p.stat().st_mode & 0o777 if p.is_file() else 0o644
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, p)
        tmp = None
    except OSError as e:
        raise BaselineError("path", f"cannot write the baseline file {p}: {e.strerror or e}", p) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return baseline


def compare(checks: Iterable[Check], baseline: Baseline | None, *, size: str | None = None,
            expected_class: str | None = None, confidence: float = DEFAULT_CONFIDENCE) -> list[Check]:  # fmt: skip
    """The checks judged against a baseline file.

    A check recorded without a baseline (``baseline`` ``None``) takes the file's value (and
    samples) for its name and is judged again (:func:`judge`). Checks that already carry a baseline
    (a floor, parity's rtol, determinism) and checks without a value keep their verdict. A check
    the file does not know, or every such check when ``baseline`` is ``None``, is ``skipped``
    with the reason; one whose unit differs from the file's is an ``error``.

    Args:
        checks: from :func:`read_checks`.
        baseline: from :func:`load_baseline`, or ``None`` when this machine class has none yet.
        size: the suite size the checks ran at; refused when the baseline's differs.
        expected_class: this machine's :func:`machine_class`; refused when the baseline's differs.
        confidence: the speed interval's level.

    Returns:
        New checks, in the same order.

    Raises:
        BaselineError: ``"size"`` or ``"machine_class"`` differ from the baseline's (values of
            another size or hardware are not comparable).
    """
    if baseline is not None and size is not None and baseline.size != size:
        raise BaselineError("size", f"the baseline was measured at size {baseline.size!r}, these checks at {size!r}")
    if baseline is not None and expected_class is not None and baseline.machine_class != expected_class:
        raise BaselineError("machine_class", f"the baseline is for {baseline.machine_class!r}, this machine is "
                            f"{expected_class!r}")  # fmt: skip
    out = []
    for c in checks:
        if c.baseline is not None or c.value is None:
            out.append(c)
        elif baseline is None:
            out.append(c.replace(verdict="skipped", interval=None,
                                 detail=f"{c.name} {_with_unit(c.value, c.unit)}: no baseline file for this machine class"))  # fmt: skip
        elif c.name not in baseline.values:
            out.append(c.replace(verdict="skipped", interval=None,
                                 detail=f"{c.name} {_with_unit(c.value, c.unit)}: the baseline has no value for it"))  # fmt: skip
        else:
            ref = baseline.values[c.name]
            if ref.unit != c.unit:
                out.append(c.replace(verdict="error", interval=None,
                                     detail=f"{c.name}: measured in {c.unit!r} but the baseline is in {ref.unit!r}"))  # fmt: skip
                continue
            out.append(judge(c.replace(baseline=ref.value, baseline_samples=ref.samples or ()), confidence))
    return out


# ------------------------------------------------------------------------------------ notebook <-> program


def _ipython_shell() -> Any:
    """The running IPython shell (a kernel's), found through the ``IPython`` module it has loaded;
    ``None`` outside one. Never imports IPython."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if callable(get) else None
    return shell if getattr(shell, "display_pub", None) is not None else None


def mime_bundle(checks: Iterable[Check]) -> dict[str, Any]:
    """The display data :func:`record` shows: :data:`MIME_TYPE` (a JSON list of the checks, strict
    JSON), ``text/html`` (:func:`summarize` as an HTML table) and ``text/plain`` (a line a check)."""
    checks = list(checks)
    table = summarize(checks)
    counts = table["verdict"].value_counts()
    plain = [f"{len(checks)} checks: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS if v in counts)]
    plain += [f"{c.verdict:<7} {c.detail}" for c in checks]
    return {
        MIME_TYPE: [json.loads(c.model_dump_json()) for c in checks],
        "text/html": table.to_html(index=False, na_rep="", float_format=lambda x: f"{x:.6g}"),
        "text/plain": "\n".join(plain),
    }


def record(checks: Iterable[Check | Mapping[str, Any]]) -> None:
    """Record a notebook's checks in its output, for :func:`read_checks` (and a table for people).

    In a Jupyter kernel (papermill's included) this displays one output whose data is
    :func:`mime_bundle`: the checks under :data:`MIME_TYPE`, an HTML table, a plain-text summary.
    Outside one it prints the plain-text summary. Call it once or several times: every call is
    read back, in order. Returns ``None`` (so a last-line call shows nothing twice).

    Args:
        checks: :class:`Check` objects (or their dicts).

    Raises:
        pydantic.ValidationError: a dict that is not a valid check.
    """
    checks = [c if isinstance(c, Check) else Check.model_validate(c) for c in checks]
    bundle = mime_bundle(checks)
    shell = _ipython_shell()
    if shell is None:
        print(bundle["text/plain"])
    else:
        shell.display_pub.publish(data=bundle, metadata={})


def read_checks(notebook_path: str | Path) -> list[Check]:
    """Every check an executed notebook recorded with :func:`record`, in output order.

    Reads the ``.ipynb`` with nbformat (version 4) and collects the :data:`MIME_TYPE` data of each
    ``display_data``/``execute_result`` output of each code cell; printed text is never parsed. A
    notebook that recorded nothing gives ``[]``.

    Raises:
        ChecksError: ``"notebook"``: the file is missing, unreadable or not a notebook;
            ``"cells[i]"``: code cell ``i`` recorded something that is not a list of valid checks.
    """
    import nbformat  # with papermill and Jupyter (the notebook extra): only needed here

    p = Path(notebook_path)
    try:
        nb = nbformat.read(str(p), as_version=4)
    except FileNotFoundError:
        raise ChecksError("notebook", f"no notebook at {p}") from None
    except (OSError, ValueError, KeyError, AttributeError) as e:
        raise ChecksError("notebook", f"{p} is not a readable Jupyter notebook: {e}") from None
    out: list[Check] = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") not in ("display_data", "execute_result"):
                continue
            data = output.get("data", {})
            if MIME_TYPE not in data:
                continue
            payload = data[MIME_TYPE]
            if isinstance(payload, str):  # a tool that stored the JSON as a string
                try:
                    payload = json.loads(payload)
                except ValueError:
                    raise ChecksError(f"cells[{i}]", f"{p}: cell {i} recorded {MIME_TYPE} that is not JSON") from None
            if not isinstance(payload, list):
                raise ChecksError(f"cells[{i}]", f"{p}: cell {i} recorded {MIME_TYPE} that is not a list of checks")
            try:
                out += [Check.model_validate(dict(item)) for item in payload]
            except (ValidationError, TypeError, ValueError) as e:
                raise ChecksError(f"cells[{i}]", f"{p}: cell {i} recorded an invalid check: {e}") from None
    return out


# ------------------------------------------------------------------------------------ summary


def summarize(checks: Iterable[Check]) -> pd.DataFrame:
    """One row a check, in order: ``check`` (name), ``value`` and ``baseline`` (in the check's unit;
    NaN when missing), ``tolerance`` (as the check's ``kind`` reads it), ``verdict``, ``detail``."""
    rows = [{"check": c.name, "value": c.value, "baseline": c.baseline, "tolerance": c.tolerance, "verdict": c.verdict,
             "detail": c.detail} for c in checks]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["check", "value", "baseline", "tolerance", "verdict", "detail"])
    return frame.astype({"value": float, "baseline": float, "tolerance": float})


def exit_code(checks: Iterable[Check]) -> int:
    """1 when any check is ``fail`` or ``error``, else 0 (``pass``, ``noisy`` and ``skipped`` do not
    fail a run; ``noisy`` says to repeat it). An empty list gives 0: the caller decides whether
    recording nothing is itself an error."""
    return 1 if any(c.verdict in FAILING for c in checks) else 0


# ------------------------------------------------------------------------------------ running the notebooks

#: The regression notebooks, one per family, run in this order (``notebooks/regression/<family>.ipynb``).
NOTEBOOKS_DIR = BASELINES_DIR.parent


def parse_only(only: str | Sequence[str] | None) -> list[str]:
    """The families to run (``--only``: comma-separated names of :data:`FAMILIES`; ``None``: all), in
    :data:`FAMILIES` order.

    Raises:
        ConfigError: field ``only``, an unknown or empty name (the allowed ones are listed).
    """
    if only is None:
        return list(FAMILIES)
    names = [n.strip() for n in (only.split(",") if isinstance(only, str) else only)]
    bad = [n for n in names if n not in FAMILIES]
    if bad or not names:
        given = ", ".join(map(repr, bad)) if bad else "''"
        raise ConfigError("only", f"unknown check family {given}; allowed: {', '.join(FAMILIES)} (comma-separated)")
    return [f for f in FAMILIES if f in names]


class RegressRun(BaseModel):
    """What :func:`run` did: the judged ``checks`` in notebook order, the executed ``notebooks`` and HTML
    ``reports`` by family, the ``baseline`` file used (``None``: none), ``notes`` (why speed checks were
    skipped, which notebook crashed), this ``machine_class`` and ``size``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    checks: list[Check]
    notebooks: dict[str, Path]
    reports: dict[str, Path]
    index: Path | None = None
    baseline: Path | None = None
    notes: list[str] = Field(default_factory=list)
    machine_class: str
    size: str


def run(size: str = "small", only=None, *, frameworks: str = ",".join(FRAMEWORKS), device: str = "auto",
        baseline: str | Path | None = None, report: str | Path = "regression-report", progress_bar: bool = True,
        env: Mapping[str, Any] | None = None, updating: bool = False) -> RegressRun:  # fmt: skip
    """Execute the regression notebooks with papermill and judge their checks.

    Each notebook runs in its own kernel with the parameters ``size``, ``frameworks``, ``device``; the
    executed copy goes to ``report/<family>.ipynb`` and an HTML rendering (nbconvert) next to it, with an
    ``index.html`` table of every check. A notebook that crashes gives one ``error`` check
    (``<family>.notebook``) with its error, keeps the checks it recorded before, and the others still run.

    Baselines: ``baseline`` (a file), else :func:`default_baseline_path` of this machine if it exists. A
    baseline of another machine class or size is not used for speed (a note says so; the fixed-tolerance
    checks do not need one). With ``updating`` (``--update-baseline``) a missing ``baseline`` file is
    no error: it is about to be written.

    Raises:
        ConfigError: field ``size`` or ``only`` (before anything runs). BaselineError: ``baseline`` cannot
            be used (missing, not JSON, not a baseline); the file is left as it was.
    """
    import papermill as pm

    from .env import environment

    if size not in SIZES:
        raise ConfigError("size", f"unknown size {size!r}; allowed: {', '.join(SIZES)}")
    families = parse_only(only)
    env = dict(env) if env is not None else environment()
    mclass = machine_class(env)
    notes: list[str] = []
    path = Path(baseline) if baseline is not None else default_baseline_path(env)
    # a file to be written by --update-baseline (``updating``) need not exist yet
    base = load_baseline(path) if path.is_file() or (baseline is not None and not updating) else None
    if base is None:
        notes.append(f"no baseline for this machine class ({mclass}): speed checks are skipped; "
                     f"`mlx-explore regress --update-baseline` writes {path}")  # fmt: skip
    elif base.machine_class != mclass or base.size != size:
        notes.append(f"the baseline {path} is for {base.machine_class} at size {base.size}, this run is {mclass} at "
                     f"size {size}: speed checks are skipped (speed is only compared on the same machine class)")
        base = None
    out = Path(report)
    out.mkdir(parents=True, exist_ok=True)
    checks: list[Check] = []
    notebooks: dict[str, Path] = {}
    for family in families:
        executed = out / f"{family}.ipynb"
        notebooks[family] = executed
        try:
            pm.execute_notebook(str(NOTEBOOKS_DIR / f"{family}.ipynb"), str(executed), cwd=str(NOTEBOOKS_DIR),
                                parameters=dict(size=size, frameworks=frameworks, device=device, baseline=""),
                                progress_bar=progress_bar, kernel_name="python3")  # fmt: skip
        except Exception as e:  # the notebook's own error: recorded as a check, the next notebook runs
            message = str(e).strip().splitlines()
            reason = " ".join(m for m in message[-3:] if m)[:500] or type(e).__name__
            notes.append(f"{family}: the notebook failed: {reason}")
            got = read_checks(executed) if executed.is_file() else []
            checks += got + [unmeasured(f"{family}.notebook", family, f"the notebook failed: {reason}")]
            continue
        checks += read_checks(executed)
    checks = compare(checks, base, size=size, expected_class=mclass if base is not None else None)
    reports = _html_reports(notebooks)
    index = _index_html(out, checks, notes, mclass, size)
    return RegressRun(checks=checks, notebooks=notebooks, reports=reports, index=index,
                      baseline=path if base is not None else None, notes=notes, machine_class=mclass, size=size)


def _html_reports(notebooks: Mapping[str, Path]) -> dict[str, Path]:
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter()
    out = {}
    for family, executed in notebooks.items():
        if executed.is_file():
            body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
            html = executed.with_suffix(".html")
            html.write_text(body, encoding="utf-8")
            out[family] = html
    return out


def _index_html(folder: Path, checks: Sequence[Check], notes: Sequence[str], mclass: str, size: str) -> Path:
    import html as _html

    table = summarize(checks).to_html(index=False, na_rep="-", border=0, escape=True)
    links = "".join(f"<li><a href='{f}.html'>{f}</a></li>" for f in FAMILIES if (folder / f"{f}.html").is_file())
    counts = pd.Series([c.verdict for c in checks]).value_counts().to_dict() if checks else {}
    page = (f"<!doctype html><meta charset='utf-8'><title>mlx-explore regression checks</title>"
            f"<h1>Regression checks</h1><p>{_html.escape(mclass)}, size {_html.escape(size)}: "
            f"{', '.join(f'{n} {v}' for v, n in counts.items()) or 'no checks'}</p>"
            f"<ul>{''.join(f'<li>{_html.escape(n)}</li>' for n in notes)}</ul><h2>Notebooks</h2><ul>{links}</ul>"
            f"<h2>Checks</h2>{table}")  # fmt: skip
    path = folder / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
