"""The decision guide: this machine's suite figures + cited knowledge -> a ranked, explained
recommendation, and an audit of published claims.

Inputs
    The newest complete standard-suite session of this machine (``suite.latest``: never mixing
    machines or suite versions) and the knowledge base (``knowledge/``: cited facts and published
    opinions, each with its source and the date it was checked).

Criteria (:data:`CRITERIA`)
    *Measured* ones come from the suite's runs; each framework is judged by its better mode
    (eager or compiled) on that criterion, as a user would run it (compile time: the compiled
    run), and the run that gave the value is the evidence. *Cited* ones come from the knowledge base: the share of deployment
    targets, accelerator kinds or distributed-training styles documented for a framework (kind
    ``fact``), or a published scorecard's rating (kind ``published opinion``, said so wherever
    it is shown). A criterion without a value for a framework is **not measured**: it earns that
    framework nothing and is listed in the caveats; it is never estimated. The *tabular* criteria
    come from the suite's ``gbdt`` item (gradient-boosted trees: ROC-AUC, accuracy, training time,
    batch-1 latency, peak memory).

Frameworks ranked (:func:`ranked_frameworks`)
    Every scenario but one ranks the four native frameworks the suite ran; the tabular scenario
    ranks the tree libraries that ran the ``gbdt`` item (scikit-learn, XGBoost, LightGBM), and its
    caveats say, from the session's figures, which one fitted fastest, used the least memory and
    reached the best ROC-AUC.

Method: the weighted sum model (WSM, also "simple additive weighting"; Fishburn, 1967,
"Additive utilities with incomplete product set", *Operations Research* 15(3); Triantaphyllou,
*Multi-Criteria Decision Making Methods: A Comparative Study*, Springer 2000, ch. 2) over
min-max-normalised criteria, computed with pymcdm (https://pymcdm.readthedocs.io:
``normalizations.minmax_normalization`` and ``methods.WSM``, whose explained result gives the
weighted normalised matrix: each framework's score broken down by criterion). Chosen over TOPSIS
because its score is a plain sum of per-criterion contributions that a reader can check by hand,
and because it has the property people expect of a weight slider: raising a criterion's weight
never lowers the rank of the framework that is best on it (TOPSIS's distance ratio does not
guarantee this). Min-max normalisation maps the best measured framework to 1 and the worst to 0
on each criterion (all equal: all 1), so a criterion ranks, it does not reward margins beyond the
field; with two frameworks it is a plain win or loss. Weights are any non-negative numbers; they
are divided by their sum.

Outputs: :class:`Recommendation` (ranking, per-criterion breakdown, the three strongest reasons
with their evidence, caveats, the smallest single-weight change that changes the top choice) and
the claims audit (:func:`audit_claims`).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from .config import DEEP_FRAMEWORKS, DEFAULT_FRAMEWORKS, GBDT_FRAMEWORKS, ConfigError
from .metric_docs import METRIC_DOCS
from .parity import RTOL, RTOL_SKLEARN

# ----------------------------------------------------------------------------------------- criteria


@dataclass(frozen=True)
class Criterion:
    """One thing a framework is judged on.

    Attributes:
        name: id (``small_batch_throughput``), used in ``--weight NAME=W``.
        label: short heading for tables and charts.
        unit: the unit of its raw value.
        higher_is_better: its direction.
        kind: ``"measured"`` (from the suite) or ``"cited"`` (from the knowledge base).
        source: where the value comes from: a suite figure (``"small_batch.samples_per_s"``) or a
            knowledge-base rule (``"deployment facts"``, ``"scorecard: Production Tooling"``).
        description: what it means, in a sentence.
        mode: which run of a measured criterion counts: ``"best"`` (the framework's better mode on
            it, eager or compiled) or ``"compiled"`` (compile time: an eager run compiles nothing, so
            its near-zero figure would hide the cost). A framework with one mode (scikit-learn) uses it.
        tie: an absolute difference, in ``unit``, that the measurement cannot resolve: a value within
            ``tie`` of the best counts as the best when normalising (:func:`normalize`), so min-max
            normalisation cannot turn noise into the whole of a criterion's weight. 0.005 (half a
            percentage point) for accuracy and ROC-AUC: the binomial standard error of an accuracy
            near 0.96 is 0.012 on digits' 270 test rows and 0.0036 on the gbdt item's 3,000, so a
            smaller difference is never evidence (e.g. ROC-AUC 0.9904 against 0.9908). 0: every
            difference counts.
    """

    name: str
    label: str
    unit: str
    higher_is_better: bool
    kind: str
    source: str
    description: str
    mode: str = "best"
    tie: float = 0.0


#: Half a percentage point: the ``tie`` of accuracy-like criteria (see :class:`Criterion`).
SCORE_TIE = 0.005


def _measured(name, label, unit, higher, figure, description, mode="best", tie=0.0):
    return Criterion(name, label, unit, higher, "measured", figure, description, mode, tie)


def _cited(name, label, unit, source, description):
    return Criterion(name, label, unit, True, "cited", source, description)


#: Every criterion, measured then cited. Scorecard rows are those of the standardized-tests
#: article in the knowledge base ("published opinion").
CRITERIA: dict[str, Criterion] = {c.name: c for c in (
    _measured("small_batch_throughput", "small-batch throughput", "samples/s", True, "small_batch.samples_per_s",
              "steady training throughput of the MLP at batch 32: per-step framework overhead"),
    _measured("large_batch_throughput", "large-batch throughput", "samples/s", True, "large_batch.samples_per_s",
              "steady training throughput of the 1024-1024 MLP at batch 1024: compute-bound speed"),
    _measured("cnn_throughput", "CNN throughput", "samples/s", True, "cnn.samples_per_s",
              "steady training throughput of the LeNet-style CNN on digits: convolutions"),
    _measured("mfu", "MFU", "0-1", True, "large_batch.mfu",
              "model FLOPs utilization at batch 1024 against a matmul peak measured in the same process"),
    _measured("compile_time", "compile time", "s", False, "small_batch.compile_s",
              "first compiled training step minus a steady one: tracing and compilation before useful work",
              mode="compiled"),
    _measured("latency_p50", "latency p50", "ms", False, "small_batch.infer_ms_p50",
              "batch-1 inference, host input to host logits, median"),
    _measured("latency_p99", "latency p99", "ms", False, "small_batch.infer_ms_p99",
              "batch-1 inference, 99th percentile: the tail a service's users feel"),
    _measured("peak_memory", "peak memory", "MiB", False, "large_batch.peak_rss_mb",
              "peak resident memory of the training process at batch 1024 (accelerator memory on a GPU)"),
    _measured("accuracy", "test accuracy", "0-1", True, "small_batch.test_accuracy",
              "test accuracy of the MLP on digits after the suite's epochs", tie=SCORE_TIE),
    _measured("parity", "parity held", "1 yes / 0 no", True, "parity.max_rel_diff",
              f"per-step SGD losses within rtol {RTOL:g} ({RTOL_SKLEARN:g} for scikit-learn) of the reference"),
    _measured("determinism", "bitwise determinism", "1 yes / 0 no", True, "parity.bitwise_identical",
              "two repeats with the determinism switches on gave bitwise identical loss curves"),
    # The gbdt item: gradient-boosted trees (100 rounds, depth 6) on synthetic 20-feature binary data.
    _measured("tabular_roc_auc", "tabular ROC-AUC", "0-1", True, "gbdt.test_roc_auc",
              "test ROC-AUC of gradient-boosted trees (100 rounds, depth 6) on synthetic 20-feature binary data: "
              "how well the fitted model ranks the positives, at any threshold", tie=SCORE_TIE),
    _measured("tabular_accuracy", "tabular accuracy", "0-1", True, "gbdt.test_accuracy",
              "test accuracy of the same gradient-boosted trees", tie=SCORE_TIE),
    _measured("tabular_fit_time", "tabular training time", "s", False, "gbdt.train_s",
              "wall time to fit the 100 boosting rounds (train_s)"),
    _measured("tabular_latency_p50", "tabular latency p50", "ms", False, "gbdt.infer_ms_p50",
              "batch-1 prediction of the fitted trees, host input to host scores, median"),
    _measured("tabular_peak_memory", "tabular peak memory", "MiB", False, "gbdt.peak_rss_mb",
              "peak resident memory of the process fitting the trees (host memory, also on a GPU machine)"),
    _cited("deployment", "deployment targets", "share of 4", "deployment facts",
           "documented targets among server serving, mobile/edge, browser and ONNX export"),
    _cited("accelerators", "accelerators", "share of 4", "accelerators facts",
           "documented accelerator kinds among CUDA, ROCm, TPU and Apple silicon"),
    _cited("distributed", "distributed training", "share of 2", "distributed facts",
           "documented distributed-training styles among data parallel and model parallel"),
    _cited("docs_onboarding", "docs & on-boarding", "score/10", "scorecard: Docs & On-boarding",
           "a published scorecard's rating of documentation and on-boarding (opinion)"),
    _cited("production_tooling", "production tooling", "score/10", "scorecard: Production Tooling",
           "a published scorecard's rating of production tooling (opinion)"),
    _cited("research_flexibility", "research flexibility", "score/10", "scorecard: Research Flexibility",
           "a published scorecard's rating of research flexibility (opinion)"),
)}  # fmt: skip
#: The criteria measured by the suite's ``gbdt`` item (gradient-boosted trees), in :data:`CRITERIA` order.
TABULAR_CRITERIA = tuple(n for n, c in CRITERIA.items() if c.source.startswith("gbdt."))
#: Knowledge-base topic and its vocabulary size behind each share-type cited criterion.
_SHARE_TOPICS = {"deployment": 4, "accelerators": 4, "distributed": 2}


@dataclass(frozen=True)
class Scenario:
    """A use case with default weights and the reasoning behind them.

    Attributes:
        name: id used by ``--scenario``; title: for people; weights: ``{criterion: weight >= 0}``
        (criteria not named weigh 0); reasoning: why these weights, in two or three sentences.
        ranks: which of the suite's frameworks it ranks (:func:`ranked_frameworks`): ``"native"``, the
        four native frameworks (the Keras columns serve the claims audit), or ``"trees"``, the
        libraries that ran the ``gbdt`` item (scikit-learn, XGBoost, LightGBM).
    """

    name: str
    title: str
    weights: dict[str, float]
    reasoning: str
    ranks: str = "native"


#: The scenarios and their default weights (0-5: 5 decisive, 1 a tie-breaker). The seeds'
#: recommendation table is one published opinion to compare with, not an input.
SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("research", "Research prototyping",
             {"research_flexibility": 4, "small_batch_throughput": 3, "compile_time": 3, "determinism": 2,
              "parity": 1, "accuracy": 1, "docs_onboarding": 1, "large_batch_throughput": 1, "cnn_throughput": 1},
             "Researchers iterate: many short runs on new ideas, so per-step overhead and the wait for compilation "
             "decide how fast an idea is tried, and a framework must bend to unusual models. Reproducible runs "
             "matter for papers; raw large-batch speed matters less until an idea scales."),
    Scenario("production", "Production serving",
             {"latency_p99": 5, "latency_p50": 3, "production_tooling": 4, "deployment": 4, "peak_memory": 2,
              "accelerators": 1, "determinism": 1},
             "A service is judged by its tail latency and by how it is deployed and operated: serving "
             "runtimes, export formats, monitoring. Memory sets how many replicas fit on a machine."),
    Scenario("mobile_edge", "Mobile and edge",
             {"deployment": 5, "peak_memory": 4, "latency_p99": 3, "latency_p50": 2, "production_tooling": 1},
             "On a phone or a microcontroller the first question is whether the model can be exported to the "
             "device's runtime at all; then memory and latency on small inputs."),
    Scenario("tpu_scale", "TPU and large-scale training",
             {"accelerators": 4, "distributed": 4, "large_batch_throughput": 4, "mfu": 4, "compile_time": 1},
             "Large-scale training lives on accelerator support and distributed APIs, and is paid for by the "
             "hour, so compute-bound throughput and utilization dominate; compile time is amortized over days."),
    Scenario("tabular", "Tabular data",
             {"tabular_roc_auc": 4, "tabular_accuracy": 1, "tabular_fit_time": 3, "tabular_latency_p50": 2,
              "tabular_peak_memory": 1},
             "On tabular data gradient-boosted trees are the usual first choice, so this scenario ranks the tree "
             "libraries the suite's gbdt item ran (scikit-learn, XGBoost, LightGBM), not the deep-learning "
             "frameworks: how well the model ranks first, then how quickly it is fitted and how fast it scores "
             "one row, then memory. Every figure is measured here; the cited criteria cover the four native "
             "frameworks only, so they weigh nothing by default.", ranks="trees"),
    Scenario("teaching", "Teaching",
             {"docs_onboarding": 5, "determinism": 2, "parity": 2, "compile_time": 1, "research_flexibility": 1,
              "accuracy": 1},
             "Learners need clear documentation and results that come out the same every time they run a "
             "notebook; speed hardly matters at classroom sizes."),
)}  # fmt: skip

# --------------------------------------------------------------------------------------- evidence


@dataclass(frozen=True)
class Ref:
    """A piece of evidence for ``framework``'s value: a stored run (``kind="run"``, ``run_id``) or a
    citation (``kind="citation"``: knowledge-base entry ``entry``, source ``title``, ``publisher``,
    ``url``, ``date``; ``opinion`` is True for a published opinion rather than a documented fact)."""

    kind: str  # "run" or "citation"
    framework: str | None = None  # whose value it supports
    run_id: int | None = None
    entry: str | None = None
    title: str | None = None
    publisher: str | None = None
    url: str | None = None
    date: str | None = None
    opinion: bool = False

    def text(self) -> str:
        """``"run 12"`` or ``"Title (Publisher)"``."""
        if self.kind == "run":
            return f"run {self.run_id}"
        return f"{self.title} ({self.publisher}{', ' + self.date if self.date else ''})"


@dataclass
class Evidence:
    """Everything a recommendation is computed from, loaded once (a widget re-ranks from it live).

    Attributes:
        values: DataFrame, index the frameworks of the suite that a scenario may rank (the native ones and
            the tree libraries XGBoost and LightGBM; not the Keras columns), columns every criterion of
            :data:`CRITERIA`: raw values in the criterion's unit, NaN where not measured/cited.
        refs: ``{(framework, criterion): [Ref, ...]}``, the evidence of each value.
        modes: ``{(framework, criterion): mode}`` of the run a measured value came from.
        notes: ``{(framework, criterion): why it is not measured}``.
        figures: ``suite.figures`` of the session (long form).
        runs: ``suite.latest``'s table.
        knowledge: the knowledge base.
        session, machine, size, device_kind (``cpu``, ``gpu`` or ``tpu``: what the runs used),
        started (UTC datetime).
    """

    values: pd.DataFrame
    refs: dict
    modes: dict
    notes: dict
    figures: pd.DataFrame
    runs: pd.DataFrame
    knowledge: Any
    session: str
    machine: str
    size: str
    device_kind: str
    started: Any


def load_evidence(db: str | Path | None = None, *, device: str | None = None, session: str | None = None,
                  knowledge: Any = None, machine: str | None = None) -> Evidence:  # fmt: skip
    """Read the newest complete suite of this machine and the knowledge base into :class:`Evidence`.

    Args:
        db: the results store (default ``$MLX_EXPLORE_DB``, else ``~/.mlx_explore/results.db``).
        device, session, machine: as :func:`mlx_explore.suite.latest`.
        knowledge: a ``knowledge.KnowledgeBase`` (default: the shipped one).

    Raises:
        suite.NoSuite: no usable suite; its message names the command to run first.
        ConfigError: ``session`` cannot be used (field ``suite``).
        StoreError: the store cannot be read. knowledge.KnowledgeError: a knowledge file is corrupt.
    """
    from . import knowledge as kb_module
    from . import suite

    runs = suite.latest(db, device=device, session=session, machine=machine)
    kb = knowledge if knowledge is not None else kb_module.default()
    figs = suite.figures(runs, db)
    # The guide ranks the frameworks one chooses among: the native ones, and for tabular data the tree
    # libraries (scikit-learn, XGBoost, LightGBM); the Keras columns serve the claims audit.
    frameworks = [f for f in dict.fromkeys(runs["framework"]) if f in kb_module.FRAMEWORKS or f in GBDT_FRAMEWORKS]
    values = pd.DataFrame(np.nan, index=pd.Index(frameworks, name="framework"), columns=list(CRITERIA))
    refs: dict = {}
    modes: dict = {}
    notes: dict = {}
    device_kind = _device_kind(runs)
    for c in CRITERIA.values():
        for fw in frameworks:
            if c.kind == "measured":
                value, ref, mode, note = _measured_value(c, fw, figs, runs, device_kind)
                if mode:
                    modes[fw, c.name] = mode
            else:
                value, ref, note = _cited_value(c, fw, kb)
            values.loc[fw, c.name] = value
            if ref:
                refs[fw, c.name] = [dataclasses.replace(r, framework=fw) for r in ref]
            if note:
                notes[fw, c.name] = note
    return Evidence(values=values, refs=refs, modes=modes, notes=notes, figures=figs, runs=runs, knowledge=kb,
                    session=str(runs["suite_session"].iloc[0]), machine=str(runs["machine"].iloc[0]),
                    size=str(runs["suite_size"].iloc[0]), device_kind=device_kind,
                    started=runs["created_at"].min())  # fmt: skip


def _device_kind(runs: pd.DataFrame) -> str:
    text = " ".join(str(d).lower() for d in runs["device"].dropna())
    return "tpu" if "tpu" in text else "gpu" if ("gpu" in text or "cuda" in text) else "cpu"


def _measured_value(c: Criterion, fw: str, figs: pd.DataFrame, runs: pd.DataFrame, device_kind: str):
    figure = c.source
    if c.name == "peak_memory" and device_kind != "cpu":
        figure = "large_batch.peak_device_mb"
    item = figure.split(".")[0]
    rows = figs[(figs["figure"] == figure) & (figs["framework"] == fw)]
    if rows.empty:
        mine = runs[(runs["suite_item"] == item) & (runs["framework"] == fw)]
        if mine.empty:
            return math.nan, [], "", _not_run(item, fw)
        bad = mine[mine["status"] != "ok"]
        if len(bad) == len(mine):
            r = bad.iloc[0]
            return math.nan, [Ref("run", run_id=int(r["run_id"]))], "", f"{item} {r['status']}: {r['reason'] or 'no reason given'}"
        notes = " ".join(str(n.get(figure.split(".")[1], "")) for n in mine["notes"] if isinstance(n, dict)).strip()
        return math.nan, [], "", f"{figure} not reported by {fw}" + (f": {notes}" if notes else "")
    if c.mode != "best" and (rows["mode"] == c.mode).any():  # else the framework's only mode (scikit-learn)
        rows = rows[rows["mode"] == c.mode]
    if c.name == "parity":
        rtol = RTOL_SKLEARN if fw == "sklearn" else RTOL
        r = rows.iloc[0]
        return (1.0 if r["value"] <= rtol else 0.0), [Ref("run", run_id=i) for i in r["run_ids"]], r["mode"], ""
    best = rows.sort_values("value", ascending=not c.higher_is_better, kind="stable").iloc[0]
    return float(best["value"]), [Ref("run", run_id=i) for i in best["run_ids"]], best["mode"], ""


def _not_run(item: str, fw: str) -> str:
    """Why ``item`` has no run of ``fw``: the framework cannot train its model (the suite leaves it out),
    or the session did not ask for it."""
    from . import suite
    from .frameworks import unsupported_reason

    try:
        model = suite.item(item).settings["model"]
    except ConfigError:  # an item of another suite version
        return f"{item} did not run for {fw}"
    reason = unsupported_reason(fw, model, "auto")
    return f"{item} does not run {fw}: {reason}" if reason else f"{item} did not run for {fw}"


def _citation(fact) -> Ref:
    s = fact.source
    return Ref("citation", entry=fact.id, title=s.title, publisher=s.publisher, url=s.url,
               date=str(s.date) if s.date else None, opinion=fact.kind != "fact")  # fmt: skip


def _cited_value(c: Criterion, fw: str, kb):
    from .knowledge import FRAMEWORKS as KNOWN

    if fw not in KNOWN:
        return math.nan, [], f"the knowledge base documents the four native frameworks ({', '.join(KNOWN)}), not {fw}"
    if c.name in _SHARE_TOPICS:
        facts = [f for f in kb.facts_for(fw, c.name) if f.kind == "fact"]
        if not facts:
            return math.nan, [], f"no {c.name} fact about {fw} in the knowledge base"
        kinds = {f.value for f in facts}
        return len(kinds) / _SHARE_TOPICS[c.name], [_citation(f) for f in facts], ""
    row = c.source.split(": ", 1)[1]
    facts = [f for f in kb.facts_for(fw, "scorecard") if f.value.lower() == row.lower()]
    if not facts:
        return math.nan, [], f"the scorecard rates no '{row}' for {fw}"
    f = facts[0]
    return 10.0 * f.score / f.scale, [_citation(f)], ""


# ---------------------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Reason:
    """One reason for the top choice: ``text``, the ``criterion``, its share of the lead over the
    runner-up ``margin`` [score points], and its ``evidence`` (:class:`Ref` list)."""

    text: str
    criterion: str
    margin: float
    evidence: tuple


@dataclass(frozen=True)
class WhatIf:
    """The smallest change of one weight that changes the top choice: set ``criterion``'s weight
    from ``weight_from`` to ``weight_to`` and ``new_top`` ranks first. ``text`` says so in words."""

    criterion: str
    weight_from: float
    weight_to: float
    new_top: str
    text: str


@dataclass
class Recommendation:
    """A ranked, explained recommendation (:func:`recommend`).

    Attributes:
        scenario: the scenario's name; weights: the weights used (``{criterion: weight}``, raw).
        ranking: the scenario's frameworks (:func:`ranked_frameworks`), best first (ties keep suite order).
        scores: ``pd.Series`` framework -> score in [0, 1] (weighted mean of normalised criteria).
        contributions: DataFrame (frameworks in ranking order x criteria with weight > 0): each
            criterion's part of the score; rows sum to ``scores``.
        values: raw values of the ranked frameworks (NaN: not measured); normalized: min-max normalised
            values in [0, 1].
        reasons: up to three :class:`Reason` for the top choice.
        caveats: list of sentences.
        what_if: :class:`WhatIf`, or ``None`` when no single weight change alters the top choice.
        evidence: the :class:`Evidence` it was computed from.
    """

    scenario: str
    weights: dict[str, float]
    ranking: list[str]
    scores: pd.Series
    contributions: pd.DataFrame
    values: pd.DataFrame
    normalized: pd.DataFrame
    reasons: list[Reason]
    caveats: list[str]
    what_if: WhatIf | None
    evidence: Evidence = field(repr=False)

    @property
    def top(self) -> str:
        """The first framework of the ranking."""
        return self.ranking[0]

    def to_dict(self) -> dict:
        """Plain JSON-able data: everything shown by ``mlx-explore guide`` (NaN becomes ``None``)."""
        from .jsonable import jsonable

        ev = self.evidence
        return jsonable({
            "scenario": self.scenario, "weights": self.weights, "ranking": self.ranking,
            "suite": {"session": ev.session, "machine": ev.machine, "size": ev.size, "device": ev.device_kind,
                      "started": ev.started.isoformat() if hasattr(ev.started, "isoformat") else str(ev.started)},
            "scores": self.scores.to_dict(),
            "criteria": {name: {"label": c.label, "unit": c.unit, "higher_is_better": c.higher_is_better,
                                "kind": c.kind, "source": c.source, "weight": self.weights.get(name, 0.0)}
                         for name, c in CRITERIA.items()},
            "values": {fw: {c: (None if pd.isna(v) else v) for c, v in row.items()} for fw, row in self.values.iterrows()},
            "contributions": {fw: row.to_dict() for fw, row in self.contributions.iterrows()},
            "evidence": {f"{fw}/{c}": [r.__dict__ for r in refs] for (fw, c), refs in ev.refs.items()},
            "not_measured": {f"{fw}/{c}": note for (fw, c), note in ev.notes.items()},
            "reasons": [{"text": r.text, "criterion": r.criterion, "margin": r.margin,
                         "evidence": [e.__dict__ for e in r.evidence]} for r in self.reasons],
            "caveats": self.caveats,
            "what_if": None if self.what_if is None else self.what_if.__dict__,
        })  # fmt: skip


def check_weights(scenario: str = "research", weights: Mapping[str, Any] | None = None) -> dict[str, float]:
    """The scenario's weights with ``weights`` applied on top.

    Args:
        scenario: a key of :data:`SCENARIOS`.
        weights: ``{criterion: weight}``; a weight is a finite number >= 0 (text such as ``"2.5"``
            is read as a number).

    Returns:
        ``{criterion: float}`` for every criterion of :data:`CRITERIA`.

    Raises:
        ConfigError: field ``scenario`` (unknown; lists the scenarios), ``weight`` (unknown
            criterion: lists the criteria; negative, non-numeric or not finite), or ``weight`` when
            every weight is 0.
    """
    if scenario not in SCENARIOS:
        raise ConfigError("scenario", f"unknown scenario {scenario!r}; allowed: {', '.join(SCENARIOS)}")
    out = {name: float(SCENARIOS[scenario].weights.get(name, 0.0)) for name in CRITERIA}
    for name, raw in (weights or {}).items():
        if name not in CRITERIA:
            raise ConfigError("weight", f"unknown criterion {name!r}; allowed: {', '.join(CRITERIA)}")
        if isinstance(raw, bool):
            raise ConfigError("weight", f"{name}: expected a number >= 0, got the boolean {raw!r}")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ConfigError("weight", f"{name}: expected a number >= 0, got {raw!r}") from None
        if not math.isfinite(value) or value < 0:
            raise ConfigError("weight", f"{name}: expected a finite number >= 0, got {raw!r}")
        out[name] = value
    if not any(out.values()):
        raise ConfigError("weight", "every weight is 0: give at least one criterion a weight > 0 "
                                    f"(criteria: {', '.join(CRITERIA)})")  # fmt: skip
    return out


def normalize(values: pd.DataFrame) -> pd.DataFrame:
    """Min-max normalise each criterion over the frameworks that have a value (pymcdm's
    ``minmax_normalization``; cost criteria reversed): best 1, worst 0, all equal 1; NaN stays NaN.
    A value within the criterion's ``tie`` of the best counts as the best (:class:`Criterion`)."""
    from pymcdm.normalizations import minmax_normalization

    out = pd.DataFrame(np.nan, index=values.index, columns=values.columns)
    for name in values.columns:
        crit = CRITERIA[name]
        col = values[name]
        have = col.notna()
        if have.any():
            x = col[have].to_numpy(float)
            if crit.tie > 0:
                best = x.max() if crit.higher_is_better else x.min()
                x = np.where(np.abs(x - best) <= crit.tie, best, x)
            out.loc[have, name] = minmax_normalization(x, cost=not crit.higher_is_better)
    return out


def _score(normalized: pd.DataFrame, weights: Mapping[str, float]) -> tuple[pd.Series, pd.DataFrame]:
    """WSM scores and the weighted normalised matrix (pymcdm ``WSM``, explained)."""
    from pymcdm.methods import WSM

    names = [n for n in normalized.columns if weights.get(n, 0) > 0]
    w = np.array([weights[n] for n in names], dtype=float)
    w = w / w.sum()
    matrix = normalized[names].fillna(0.0).to_numpy(float)  # not measured earns nothing
    with warnings.catch_warnings():
        # pymcdm's validation warns about dominant/dominated alternatives, a concern for methods
        # such as TOPSIS; a weighted sum is exact with them (and a clear winner is the point).
        warnings.filterwarnings("ignore", message="Alternatives with indices", category=UserWarning)
        result = WSM(normalization_function=lambda x, cost: x)(matrix, w, np.ones(len(names), dtype=int),
                                                              verbose=True).to_dict()  # fmt: skip
    contributions = pd.DataFrame(result["Weighted normalized decision matrix"], index=normalized.index, columns=names)
    return pd.Series(result["Final preference values"], index=normalized.index, name="score"), contributions


def _rank(scores: pd.Series) -> list[str]:
    order = list(scores.index)
    return sorted(order, key=lambda fw: (-round(float(scores[fw]), 12), order.index(fw)))


def ranked_frameworks(evidence: Evidence, scenario: str = "research") -> list[str]:
    """The frameworks ``scenario`` ranks, in suite order (:attr:`Scenario.ranks`).

    ``native`` scenarios rank the native frameworks of the evidence (torch, jax, tensorflow, sklearn: those the
    suite ran). ``trees`` (tabular data) ranks the libraries that ran the ``gbdt`` item, whatever its
    status (a failed one stays, not measured), or that have a value on a tabular criterion; a session
    without a ``gbdt`` item falls back to the native frameworks, every tabular criterion not measured
    (a caveat says so). Never empty when the evidence holds a framework.

    Raises:
        ConfigError: unknown ``scenario`` (field ``scenario``).
    """
    if scenario not in SCENARIOS:
        raise ConfigError("scenario", f"unknown scenario {scenario!r}; allowed: {', '.join(SCENARIOS)}")
    index = list(evidence.values.index)
    natives = [f for f in index if f in DEFAULT_FRAMEWORKS]
    if SCENARIOS[scenario].ranks == "trees":
        trees = _tree_frameworks(evidence)
        if trees:
            return trees
    return natives or index


def _tree_frameworks(evidence: Evidence) -> list[str]:
    """The evidence's frameworks that ran the ``gbdt`` item or have a tabular value, in suite order."""
    runs = evidence.runs
    ran = set(runs.loc[runs["suite_item"] == "gbdt", "framework"]) if {"suite_item", "framework"} <= set(runs.columns) \
        else set()  # fmt: skip
    measured = evidence.values[list(TABULAR_CRITERIA)].notna().any(axis=1) if len(evidence.values) \
        else pd.Series(dtype=bool)
    return [f for f in evidence.values.index if f in ran or bool(measured.get(f, False))]


def recommend(evidence: Evidence, scenario: str = "research", weights: Mapping[str, Any] | None = None) -> Recommendation:
    """Rank the suite's frameworks for ``scenario`` (those of :func:`ranked_frameworks`).

    Args:
        evidence: :func:`load_evidence`'s result.
        scenario: a key of :data:`SCENARIOS`; its weights are the defaults.
        weights: ``{criterion: weight >= 0}`` overriding the scenario's (see :func:`check_weights`).

    Returns:
        :class:`Recommendation`.

    Raises:
        ConfigError: as :func:`check_weights`.
    """
    w = check_weights(scenario, weights)
    values = evidence.values.loc[ranked_frameworks(evidence, scenario)]
    if SCENARIOS[scenario].ranks == "trees":
        # Tree libraries are judged on the gbdt item alone: scikit-learn's MLP or CNN figures, and facts
        # cited for the native frameworks only, say nothing about fitting trees.
        values = values.copy()
        values.loc[:, [c for c in values.columns if c not in TABULAR_CRITERIA]] = np.nan
    normalized = normalize(values)
    scores, contributions = _score(normalized, w)
    ranking = _rank(scores)
    contributions = contributions.loc[ranking]
    rec = Recommendation(scenario=scenario, weights=w, ranking=ranking, scores=scores.loc[ranking],
                         contributions=contributions, values=values, normalized=normalized, reasons=[], caveats=[],
                         what_if=None, evidence=evidence)  # fmt: skip
    rec.reasons = _reasons(rec)
    rec.what_if = what_would_change(evidence, w, ranking[0], normalized)
    rec.caveats = _caveats(rec)
    return rec


def format_value(value: float, unit: str, with_unit: bool = True) -> str:
    """A criterion's raw value for people: ``71,788 samples/s``, ``0.455 s``, ``yes``, ``3 of 4``, ``9.5/10``,
    ``not measured`` (``with_unit=False``: the number alone, for tables whose heading has the unit)."""
    if pd.isna(value):
        return "not measured"
    if unit.startswith("1 yes"):
        return "yes" if value >= 0.5 else "no"
    if unit == "0-1":
        return f"{value:.3f}"
    if unit.startswith("share of"):
        return f"{round(value * int(unit.split()[-1]))} of {unit.split()[-1]}"
    if unit == "score/10":
        return f"{value:.1f}/10"
    number = f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{number} {unit}" if with_unit else number


def _reasons(rec: Recommendation) -> list[Reason]:
    if len(rec.ranking) < 2:
        return []
    top, second = rec.ranking[0], rec.ranking[1]
    ev = rec.evidence
    lead = rec.contributions.loc[top] - rec.contributions.loc[second]
    out = []
    for name, margin in lead.sort_values(ascending=False, kind="stable").items():
        if margin <= 0 or len(out) == 3:
            break
        c = CRITERIA[name]
        mode = ev.modes.get((top, name))
        # the gbdt item has one way to run (trees are not compiled): its mode says nothing
        where = f" ({mode})" if mode and c.kind == "measured" and name not in TABULAR_CRITERIA else ""
        what = "published opinion" if any(r.opinion for r in ev.refs.get((top, name), [])) else c.kind
        text = (f"{c.label}: {top}{where} {format_value(rec.values.loc[top, name], c.unit)} against {second}'s "
                f"{format_value(rec.values.loc[second, name], c.unit)} ({what}; +{margin:.3f} of the score)")
        refs = tuple(ev.refs.get((top, name), [])) + tuple(ev.refs.get((second, name), []))
        out.append(Reason(text=text, criterion=name, margin=float(margin), evidence=refs))
    return out


def what_would_change(evidence: Evidence, weights: Mapping[str, float], top: str,
                      normalized: pd.DataFrame | None = None) -> WhatIf | None:  # fmt: skip
    """The smallest change of a single weight that puts another framework first.

    For criterion ``c`` and challenger ``g``, the top framework ``t``'s lead is
    ``L = sum_k w_k (n_tk - n_gk)`` (normalised values ``n``, not measured as 0; dividing by the
    weights' sum does not change its sign). Changing ``w_c`` by ``d`` changes it by
    ``d (n_tc - n_gc)``, so ``g`` overtakes at ``d = -L / (n_tc - n_gc)`` when the new weight stays
    >= 0 and not every weight becomes 0. The candidate with the smallest ``|d|`` is returned, nudged
    past the tie (1 % of the change, at least 1e-6) and checked by ranking again with it applied.

    Returns:
        :class:`WhatIf`, or ``None`` when no single weight can change the top choice (one
        framework, or the top one is at least as good on every criterion).
    """
    values = evidence.values if normalized is None else evidence.values.loc[normalized.index]
    n = (normalized if normalized is not None else normalize(values)).fillna(0.0)
    names = list(CRITERIA)
    w = np.array([weights.get(k, 0.0) for k in names], dtype=float)
    best: tuple[float, str, str, float] | None = None
    for g in n.index:
        if g == top:
            continue
        diff = (n.loc[top, names] - n.loc[g, names]).to_numpy(float)
        lead = float(w @ diff)
        for i, name in enumerate(names):
            if diff[i] == 0:
                continue
            d = -lead / diff[i]
            d += math.copysign(max(abs(d) * 0.01, 1e-6), d) if d != 0 else -math.copysign(1e-6, diff[i])
            new = w[i] + d
            if new < 0 or (new == 0 and not np.any(np.delete(w, i))):
                continue
            if best is None or abs(d) < abs(best[0]):
                best = (d, name, g, new)
    if best is None:
        return None
    d, name, g, new = best
    trial = dict(weights) | {name: new}
    scores, _ = _score(n.where(values.notna()), trial)
    new_top = _rank(scores)[0]
    if new_top == top:  # floating point at the tie: a little further
        trial[name] = w[names.index(name)] + 1.05 * d
        scores, _ = _score(n.where(values.notna()), trial)
        new_top = _rank(scores)[0]
        new = trial[name]
    if new_top == top:
        return None
    label = CRITERIA[name].label
    if abs(d) <= 1e-6 * 1.000001:  # the top two were tied: any change in that direction decides it
        text = (f"{top} and {new_top} are tied: {'raising' if d > 0 else 'lowering'} the weight of {label} "
                f"(now {weights.get(name, 0.0):g}) by any amount puts {new_top} first")  # fmt: skip
    else:
        text = (f"{new_top} would rank first if the weight of {label} went from {weights.get(name, 0.0):g} to "
                f"{new:.3g} (every other weight unchanged)")  # fmt: skip
    return WhatIf(criterion=name, weight_from=float(weights.get(name, 0.0)), weight_to=float(new), new_top=new_top,
                  text=text)  # fmt: skip


def _caveats(rec: Recommendation) -> list[str]:
    ev = rec.evidence
    out = []
    gpu = ev.device_kind != "cpu"
    out.append(f"Measured on {ev.machine} ({ev.device_kind.upper()}), suite size {ev.size}, session {ev.session}. "
               + ("" if gpu else "If your target is a GPU or TPU, the measured ranking may differ there: run "
                                  "`mlx-explore suite --size full --device gpu` on it."))  # fmt: skip
    used = [n for n, w in rec.weights.items() if w > 0]
    trees = SCENARIOS[rec.scenario].ranks == "trees"
    if ev.size == "small" and "compile_time" in used:
        out.append("The small suite trains for seconds; compile time weighs more in it than in a long run.")
    if trees:
        out += _tabular_caveats(rec)
        other = [CRITERIA[n].label for n in used if n not in TABULAR_CRITERIA]
        if other:
            out.append(f"{', '.join(other)}: not a tree-library criterion (another workload of the suite, or facts cited "
                       f"for the native frameworks only), so in this scenario it earns no library anything.")  # fmt: skip
    for (fw, name), note in sorted(ev.notes.items()):
        if name in used and fw in rec.ranking and (not trees or name in TABULAR_CRITERIA):
            out.append(f"{fw}: {CRITERIA[name].label} not measured, it earns nothing on it. Why: {note}.")
    if "compile_time" in used:
        flags = ev.runs.set_index("run_id")["flags"] if len(ev.runs) else pd.Series(dtype=object)
        for fw in rec.ranking:
            refs = [r for r in ev.refs.get((fw, "compile_time"), []) if r.kind == "run" and r.run_id in flags.index]
            cache = flags[refs[0].run_id].get("compile_cache") if refs and isinstance(flags[refs[0].run_id], dict) else None
            if isinstance(cache, str) and cache.startswith(("warm", "cold")):  # an on-disk cache (torch inductor)
                out.append(f"{fw}: compile time measured with its on-disk compilation cache {cache}; a cold cache "
                           f"takes several times longer than a warm one (README, 'An example run').")  # fmt: skip
    opinions = [CRITERIA[n].label for n in used if n.startswith(("docs_", "production_", "research_"))]
    if opinions:
        out.append(f"{', '.join(opinions)}: ratings from one published scorecard (opinion, not measurement).")
    if "mfu" in used and (rec.values["mfu"] > 1).any():
        out.append("MFU above 1 means the in-process matmul peak underestimated this machine's peak; compare MFU "
                   "between frameworks, not against 1.")  # fmt: skip
    return out


def _tabular_caveats(rec: Recommendation) -> list[str]:
    """What the ``gbdt`` item says, computed from the session's figures: which library fitted fastest,
    used the least memory and reached the best ROC-AUC, and under which conditions."""
    from . import suite

    ev = rec.evidence
    trees = [fw for fw in _tree_frameworks(ev) if fw in rec.ranking]  # suite order: the sentence is the same for any weights
    if not trees:
        return ["This session has no gbdt item (it ran none of sklearn, xgboost, lightgbm), so every tabular "
                "criterion is not measured and this ranking rests on nothing measured: run "
                "`mlx-explore suite --frameworks sklearn,xgboost,lightgbm` (beside the frameworks you compare) "
                "first."]  # fmt: skip
    parts = []
    for name, verb in (("tabular_fit_time", "fitted fastest"), ("tabular_peak_memory", "used the least memory"),
                       ("tabular_roc_auc", "reached the best test ROC-AUC")):  # fmt: skip
        c = CRITERIA[name]
        col = ev.values.loc[trees, name].dropna()
        if col.empty:
            parts.append(f"no {c.label} was measured")
            continue
        best_value = col.max() if c.higher_is_better else col.min()
        best = [fw for fw, v in col.items() if v == best_value]
        others = [f"{fw} {format_value(v, c.unit)}" for fw, v in col.items() if fw not in best]
        who = " and ".join(best) + (" both" if len(best) == 2 else " all" if len(best) > 2 else "")
        tied = [fw for fw, v in col.items() if fw not in best and abs(v - best_value) <= c.tie]
        tie_note = (f", a tie with {' and '.join(tied)}: differences under {c.tie:g} are within the noise of "
                    f"the test set" if tied else "")  # fmt: skip
        parts.append(f"{who} {verb} ({format_value(best_value, c.unit)}"
                     f"{'; ' + ', '.join(others) if others else ''}{tie_note})")  # fmt: skip
    settings = suite.item("gbdt").settings
    n = getattr(suite.item("gbdt"), ev.size, {}).get("n_samples") if ev.size in suite.SIZES else None
    data = f"{n:,} synthetic samples" if n else "synthetic samples"
    if not ev.values.loc[trees, list(TABULAR_CRITERIA)].notna().any().any():
        parts = [f"no figure of {', '.join(trees)} was measured (why: below)"]
    out = [f"Tabular data, from the gbdt item ({settings['rounds']} rounds of depth-{settings['max_depth']} trees "
           f"on {data} of {settings['n_features']} features, {settings['n_classes']} classes): "
           f"{'; '.join(parts)}."]  # fmt: skip
    if len(trees) < 2:
        out.append(f"Only {trees[0]} ran the gbdt item: add xgboost and lightgbm to `--frameworks` to compare tree "
                   f"libraries.")  # fmt: skip
    if ev.size == "small":
        out.append(f"At the small size the fits are short and peak memory is mostly each library's own footprint "
                   f"(interpreter, library, a few MB of data); `mlx-explore suite --size full` fits "
                   f"{suite.item('gbdt').full['n_samples']:,} samples.")  # fmt: skip
    out.append("The data are synthetic (scikit-learn's make_classification): how tree libraries compare on a real "
               "data set depends on it (see the claims audit for published figures).")
    return out


# ---------------------------------------------------------------------------------- claims audit

VERDICTS = ("supported here", "contradicted here", "conditions differ", "not testable here")
#: Measurement tolerance of the audit: a figure within 5 % of a claimed range's ends counts as
#: inside it. The suite's throughput medians move by a few per cent between runs on a shared
#: machine (README, "Performance of the harness itself"), so a stricter edge would turn noise
#: into verdicts.
AUDIT_RTOL = 0.05
#: Tolerance of test scores (accuracy, F1, ROC-AUC): not timing noise, so not :data:`AUDIT_RTOL` (5 % of
#: a ROC-AUC near 0.96 would accept any library within 5 points). Measured: over 5 seeds of the gbdt
#: item's data (20,000 samples), scikit-learn's over XGBoost's test ROC-AUC moved with a standard
#: deviation of 0.0007 (scikit-learn 1.9.1, XGBoost 3.2.0); 0.2 % is about three of them.
AUDIT_RTOL_SCORE = 0.002
_SCORES = ("test_accuracy", "test_f1_macro", "test_roc_auc", "val_accuracy")


def audit_tolerance(metric: str) -> float:
    """The audit's relative tolerance at a claimed range's ends for ``metric``: :data:`AUDIT_RTOL_SCORE` for a
    test score, :data:`AUDIT_RTOL` for everything else (times, throughputs, memory)."""
    return AUDIT_RTOL_SCORE if metric in _SCORES else AUDIT_RTOL


def _pct(x: float) -> str:
    return f"{x:.0%}" if x >= 0.01 else f"{x:.1%}"
#: Metrics where lower is better (time, latency, memory); every other metric: higher is better.
_LOWER_IS_BETTER = ("_s", "_ms", "_mb", "_ms_p50", "_ms_p95", "_ms_p99")


def _higher_is_better(metric: str) -> bool:
    if metric in ("samples_per_s", "infer_samples_per_s", "gflops_per_s", "peak_gflops_per_s"):
        return True
    return not metric.endswith(_LOWER_IS_BETTER) and metric not in ("max_rel_diff",)


def _pick(figs: pd.DataFrame, figure: str, framework: str, mode: str) -> tuple[float, tuple] | None:
    rows = figs[(figs["figure"] == figure) & (figs["framework"] == framework)]
    if mode != "best":
        rows = rows[rows["mode"] == mode] if framework in DEEP_FRAMEWORKS else rows
    if rows.empty:
        return None
    best = rows.sort_values("value", ascending=not _higher_is_better(figure.split(".", 1)[1]), kind="stable").iloc[0]
    return float(best["value"]), tuple(best["run_ids"])


def _range_text(low, high, unit="") -> str:
    if low is not None and high is not None:
        return f"{low:g}-{high:g}{unit}"
    return f">= {low:g}{unit}" if low is not None else f"<= {high:g}{unit}"


def audit_claims(evidence: Evidence, claims: Iterable[Any] | None = None) -> pd.DataFrame:
    """A verdict on each published claim from this machine's suite.

    Verdicts (:data:`VERDICTS`):
        ``not testable here``: the claim needs something the suite does not run (its ``why``), or a
        framework/figure it names was not measured. ``conditions differ``: the claim is about
        another device kind (a GPU claim on this CPU): our figure is shown beside it, no verdict.
        Otherwise the claim is tested: a *ratio* claim compares ``subject / baseline`` oriented so
        that > 1 means the subject is better (for a lower-is-better metric ``baseline / subject``)
        with its claimed range; a *range* claim checks the subject's figure against the range; a
        *winner_changes* claim asks whether the fastest framework differs between two figures.
        ``supported here`` when the measurement is inside what is claimed (within
        :func:`audit_tolerance` of its ends: 5 %, 0.2 % for a test score), ``contradicted here``
        when it is not. A claim whose test needs the full suite (``min_size: full``) is
        ``conditions differ`` on a small one, our figure shown beside it.

    Returns:
        DataFrame with columns ``claim``, ``statement``, ``source`` (title, publisher), ``kind``,
        ``conditions`` (text), ``claimed``, ``measured`` (text with our numbers), ``verdict``,
        ``detail``, ``run_ids`` (evidence).
    """
    claims = list(claims if claims is not None else evidence.knowledge.claims)
    rows = []
    for claim in claims:
        verdict, claimed, measured, detail, ids = _audit_one(claim, evidence)
        cond = claim.conditions
        parts = [cond.device.upper() if cond.device != "any" else "any device", cond.hardware, cond.model,
                 f"batch {cond.batch_size}" if cond.batch_size else None, cond.precision]  # fmt: skip
        rows.append({
            "claim": claim.id, "statement": claim.statement,
            "source": f"{claim.source.title} ({claim.source.publisher})", "kind": claim.kind,
            "conditions": ", ".join(p for p in parts if p), "claimed": claimed, "measured": measured,
            "verdict": verdict, "detail": detail, "run_ids": ids,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=["claim", "statement", "source", "kind", "conditions", "claimed", "measured",
                                       "verdict", "detail", "run_ids"])  # fmt: skip


def _audit_one(claim, ev: Evidence) -> tuple[str, str, str, str, tuple]:
    t = claim.test
    figs = ev.figures
    if t.kind == "none":
        return "not testable here", "", "", t.why_untestable or "", ()
    if t.kind == "winner_changes":
        winners, ids, parts = [], (), []
        for figure in t.figures:
            metric = figure.split(".", 1)[1]
            rows = figs[figs["figure"] == figure]
            if rows["framework"].nunique() < 2:
                return "not testable here", "", "", f"{figure} was measured for fewer than two frameworks", ()
            best = rows.sort_values("value", ascending=not _higher_is_better(metric), kind="stable").iloc[0]
            winners.append(best["framework"])
            ids += tuple(best["run_ids"])
            parts.append(f"{figure}: {best['framework']} ({best['mode']}) first at {_num(best['value'])}")
        measured = "; ".join(parts)
        claimed = "the winner changes between " + " and ".join(t.figures)
        if claim.conditions.device not in ("any", ev.device_kind):
            return "conditions differ", claimed, measured, f"the claim is about {claim.conditions.device.upper()}", ids
        if _too_small(t, ev):
            return "conditions differ", claimed, measured, _too_small(t, ev), ids
        if winners[0] != winners[1]:
            return "supported here", claimed, measured, f"{winners[0]} wins one, {winners[1]} the other", ids
        return "contradicted here", claimed, measured, f"{winners[0]} wins both here", ids
    metric = t.figure.split(".", 1)[1]
    subject = _pick(figs, t.figure, t.subject.framework, t.subject.mode)
    if subject is None:
        return "not testable here", "", "", f"{t.figure} of {t.subject.framework} ({t.subject.mode}) was not measured here", ()
    if t.kind == "ratio":
        base = _pick(figs, t.figure, t.baseline.framework, t.baseline.mode)
        if base is None:
            return ("not testable here", "", "", f"{t.figure} of {t.baseline.framework} ({t.baseline.mode}) was not "
                    "measured here", ())  # fmt: skip
        sv, bv = subject[0], base[0]
        ratio = sv / bv if _higher_is_better(metric) else bv / sv
        value, ids = ratio, subject[1] + base[1]
        claimed = f"{_who(t.subject)} vs {_who(t.baseline)}: {_range_text(t.low, t.high, 'x')}"
        score = metric in _SCORES  # scores sit close together: 1.0031x of 0.9640, not 1.00x of 0.964
        measured = (f"{ratio:.{4 if score else 2}f}x ({t.figure}: {t.subject.framework} {_num(sv, 4 if score else 3)} "
                    f"vs {t.baseline.framework} {_num(bv, 4 if score else 3)})")  # fmt: skip
    else:  # range
        value, ids = subject[0], subject[1]
        unit = METRIC_DOCS.get(metric, "").rsplit("[", 1)[-1].rstrip("]") if "[" in METRIC_DOCS.get(metric, "") else ""
        claimed = f"{t.subject.framework} {metric}: {_range_text(t.low, t.high, ' ' + unit)}"
        measured = f"{_num(value)} {unit} ({t.figure}, {t.subject.framework})"
    if claim.conditions.device not in ("any", ev.device_kind):
        return ("conditions differ", claimed, measured,
                f"the claim is about {claim.conditions.device.upper()}"
                f"{' (' + claim.conditions.hardware + ')' if claim.conditions.hardware else ''}; "
                f"this suite ran on {ev.device_kind.upper()}: no verdict", ids)  # fmt: skip
    if _too_small(t, ev):
        return "conditions differ", claimed, measured, _too_small(t, ev), ids
    tol = audit_tolerance(metric)
    low = None if t.low is None else t.low * (1 - tol)
    high = None if t.high is None else t.high * (1 + tol)
    if (low is None or value >= low) and (high is None or value <= high):
        return "supported here", claimed, measured, f"inside the claimed range (within {_pct(tol)})", ids
    side = "below" if low is not None and value < low else "above"
    return "contradicted here", claimed, measured, f"{side} the claimed range (beyond {_pct(tol)})", ids


def _too_small(test, ev: Evidence) -> str:
    """Why the session is too small to judge ``test`` (its ``min_size``), or ``""``."""
    if getattr(test, "min_size", None) == "full" and ev.size != "full":
        return (f"judged on the full suite only (this session is {ev.size}: its figure measures something else, "
                f"see the claim's conditions): no verdict")  # fmt: skip
    return ""


def _who(subject) -> str:
    return subject.framework if subject.mode == "best" else f"{subject.framework} ({subject.mode})"


def _num(v: float, digits: int = 3) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.{digits}g}"
