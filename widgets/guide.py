"""``DecisionGuide``: the decision guide (``mlx_explore.guide``) as a live dashboard. Pick a scenario,
move a weight, and the ranking, its reasons and "what would change the answer" follow at once.

Everything shown is computed by the core from this machine's newest complete standard-suite session
and the cited knowledge base (``guide.load_evidence``, read once); re-ranking is
``guide.recommend``, which is pure, so a slider never reads the store or runs anything.

>>> from widgets import DecisionGuide
>>> guide = DecisionGuide(scenario="production")       # doctest: +SKIP
>>> guide.set_weights(latency_p99=5, deployment=0)     # doctest: +SKIP
>>> guide.recommendation.ranking                       # doctest: +SKIP
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import ipywidgets as W
import pandas as pd
import plotly.colors
import plotly.graph_objects as go

from mlx_explore import guide
from mlx_explore.config import ConfigError
from mlx_explore.results import StoreError
from mlx_explore.suite import NoSuite

from ._common import edit, figure_widget

format_value = guide.format_value  # re-exported: the notebook and tests format values as the widget does

#: Slider range and step of a weight (the scenarios' weights are 0-5: 5 decisive, 1 a tie-breaker).
WEIGHT_MIN, WEIGHT_MAX, WEIGHT_STEP = 0.0, 5.0, 0.5
#: One colour per criterion, by its position in ``guide.CRITERIA`` (plotly's 24-colour qualitative
#: palette, https://plotly.com/python/discrete-color/): the same criterion keeps its colour whatever
#: the weights.
CRITERION_COLORS = {name: plotly.colors.qualitative.Dark24[i % 24] for i, name in enumerate(guide.CRITERIA)}
#: Colour of each claims-audit verdict (``guide.VERDICTS``).
VERDICT_COLORS = {"supported here": "#027a48", "contradicted here": "#b42318", "conditions differ": "#b54708",
                  "not testable here": "#667085"}  # fmt: skip
#: Shown in the reasons area when every weight is 0.
ALL_ZERO = "Every weight is 0: give at least one criterion a weight. The chart still shows the last ranking."
_COLORS = {"error": "#b42318", "warning": "#b54708", "info": "#344054"}


def _code(text: str) -> str:
    """``text`` escaped for HTML, with Markdown back-quoted spans as ``<code>``."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def ref_html(ref) -> str:
    """One piece of evidence (``guide.Ref``) as HTML: a run as the text ``"run 12"``; a citation as a
    link to its URL with its title, then publisher and date (``"published opinion"`` added for one)."""
    if ref.kind == "run":
        return f"run {ref.run_id}"
    title = html.escape(ref.title or ref.entry or "source")
    link = f"<a href='{html.escape(ref.url, quote=True)}' target='_blank' rel='noopener'>{title}</a>" if ref.url else title
    extra = ", ".join(html.escape(p) for p in (ref.publisher, ref.date) if p)
    return link + (f" ({extra})" if extra else "") + (" <i>published opinion</i>" if ref.opinion else "")


def reason_evidence(rec, reason) -> list[tuple[tuple[str, ...], tuple]]:
    """A reason's evidence (``guide.Reason.evidence``: the first framework's refs, then the
    runner-up's) grouped by the framework each is about: ``[(frameworks, refs), ...]``, the first
    framework's group first. The same sources cited for both (a scorecard's rows: one entry per
    framework, one article) are one group naming both; refs of neither come last with ``()``.
    Duplicates are dropped; no ref is lost."""

    def source(e) -> tuple:  # what a reader sees: the run, or the cited page (not the entry id)
        return ("run", e.run_id) if e.kind == "run" else (e.title, e.publisher, e.url, e.date, e.opinion)

    groups: dict[tuple, tuple[list[str], tuple]] = {}
    shown: set = set()
    for fw in rec.ranking[:2]:
        refs = tuple(dict.fromkeys(e for e in rec.evidence.refs.get((fw, reason.criterion), []) if e in reason.evidence))
        shown.update(refs)
        if refs:
            unique: dict[tuple, object] = {}
            for e in refs:
                unique.setdefault(source(e), e)
            groups.setdefault(tuple(unique), ([], tuple(unique.values())))[0].append(fw)
    out = [(tuple(fws), refs) for fws, refs in groups.values()]
    rest = tuple(dict.fromkeys(e for e in reason.evidence if e not in shown))
    return out + ([((), rest)] if rest else [])


def audit_html(audit: pd.DataFrame) -> str:
    """The claims audit (``guide.audit_claims``) as an HTML table: statement (with the claim id),
    source, conditions, claimed, measured here (our figures and their run ids, or why there is no
    verdict) and the verdict in its colour (:data:`VERDICT_COLORS`; its detail as a tooltip)."""
    if audit.empty:
        return "<i>The knowledge base holds no published claims to audit.</i>"
    cell = "style='text-align:left;vertical-align:top;padding:2px 8px;border-top:1px solid #eaecf0'"
    heads = "".join(f"<th {cell}>{h}</th>" for h in ("claim", "source", "conditions", "claimed", "measured here", "verdict"))
    rows = []
    for _, r in audit.iterrows():
        measured = html.escape(r["measured"] or r["detail"] or "")
        if len(r["run_ids"]):
            measured += f" <span style='color:#667085'>(runs {', '.join(str(i) for i in r['run_ids'])})</span>"
        colour = VERDICT_COLORS.get(r["verdict"], "#344054")
        rows.append(
            f"<tr data-claim='{html.escape(r['claim'], quote=True)}'>"
            f"<td {cell}>{html.escape(r['statement'])} <span style='color:#667085'>[{html.escape(r['claim'])}]</span></td>"
            f"<td {cell}>{html.escape(r['source'])}</td><td {cell}>{html.escape(r['conditions'])}</td>"
            f"<td {cell}>{html.escape(r['claimed'])}</td><td {cell}>{measured}</td>"
            f"<td {cell}><b style='color:{colour}' title='{html.escape(r['detail'] or '', quote=True)}'>"
            f"{html.escape(r['verdict'])}</b></td></tr>"
        )  # fmt: skip
    return (f"<table class='mlx-audit' style='border-collapse:collapse;font-size:90%'><tr>{heads}</tr>"
            f"{''.join(rows)}</table>")  # fmt: skip


class DecisionGuide(W.VBox):
    """A scenario, one weight slider per criterion, the ranking as a stacked bar chart, its reasons
    with their evidence, and the claims audit, re-ranked live as the weights move.

    Example::

        from widgets import DecisionGuide
        DecisionGuide()                             # this machine's newest suite, "research" weights

    Programmatic use (tests, notebooks): ``guide.scenario.value = "production"`` resets the weights
    to that scenario's; ``guide.set_weights(latency_p99=5)`` moves sliders; ``guide.recommendation``
    is the current :class:`mlx_explore.guide.Recommendation`.

    Args:
        db: the results store (default ``$MLX_EXPLORE_DB``, else ``~/.mlx_explore/results.db``);
            only read, never created.
        scenario: a key of ``mlx_explore.guide.SCENARIOS``; its weights are the sliders' start.
        evidence: a ``guide.load_evidence`` result to use instead of reading ``db``.
        device: use the newest suite run with this ``--device`` (``auto``, ``cpu``, ``gpu``, ``tpu``;
            ``None``: any).

    Raises:
        ConfigError: ``scenario`` is unknown (field ``scenario``, listing the scenarios).

    No suite in the store (``suite.NoSuite``), a store that cannot be read or a corrupt knowledge
    base is never raised: :attr:`status` shows why, with the command to run first, in place of the
    chart, and :attr:`recommendation` is ``None``. When every weight is 0 the reasons area says to
    weight a criterion and the chart and :attr:`recommendation` keep the last ranking.

    Attributes:
        evidence: the ``guide.Evidence`` ranked (``None`` when it could not be loaded).
        recommendation: the current ``guide.Recommendation`` (``None`` without evidence).
        audit: ``guide.audit_claims``' table (empty without evidence).
        scenario: ``Dropdown`` of the scenarios, labelled by title, valued by name; scenario_why:
            ``HTML``, the scenario's reasoning.
        weights_box: ``HBox`` of two columns of sliders, measured criteria then cited ones.
        sliders: ``{criterion: FloatSlider}`` over every criterion of ``guide.CRITERIA``, 0-5 in
            steps of 0.5, labelled by the criterion's label, its unit and description as tooltip.
        figure: ``go.FigureWidget``: one horizontal bar per framework the scenario ranks
            (``guide.ranked_frameworks``: the native frameworks; for tabular data the tree libraries;
            best on top: ``y`` in ranking order, y axis reversed), one stacked ``Bar`` trace per criterion, named by its
            label, ``meta`` = criterion name, ``x`` = its contribution to each framework's score
            (0 with weight 0; then the trace is hidden), ``customdata`` = (raw value with unit or
            "not measured", contribution); the score is written at the end of each bar. Built
            with its data and layout, updated in place after with ``widgets._common.edit``, so a
            view opened later (Voila, a reloaded page) shows the current ranking.
        chart_box: ``VBox`` holding the figure, hidden when there is nothing to rank.
        reasons_html: ``HTML``: the three reasons with their evidence, what would change the
            answer, the caveats (or the all-zero message).
        audit_html: ``HTML``: the claims audit table.
        status: ``HTML``: which suite is ranked, or why nothing can be.
    """

    def __init__(self, db: str | Path | None = None, scenario: str = "research", *, evidence=None,
                 device: str | None = None):  # fmt: skip
        if scenario not in guide.SCENARIOS:
            raise ConfigError("scenario", f"unknown scenario {scenario!r}; allowed: {', '.join(guide.SCENARIOS)}")
        self.db, self.device = db, device
        self.evidence = evidence
        self.recommendation = None
        self.audit = pd.DataFrame(columns=["claim", "statement", "source", "kind", "conditions", "claimed", "measured",
                                           "verdict", "detail", "run_ids"])  # fmt: skip
        self._busy = False
        self.status = W.HTML()
        problem = None
        if self.evidence is None:
            problem = self._load()
        if self.evidence is not None:
            self.audit = guide.audit_claims(self.evidence)

        self.scenario = W.Dropdown(options=[(s.title, name) for name, s in guide.SCENARIOS.items()], value=scenario,
                                   description="scenario", layout=W.Layout(width="420px"))  # fmt: skip
        self.scenario_why = W.HTML()
        self.sliders: dict[str, W.FloatSlider] = {}
        groups = {"measured": [], "cited": []}
        for name, c in guide.CRITERIA.items():
            better = "higher" if c.higher_is_better else "lower"
            slider = W.FloatSlider(
                value=guide.SCENARIOS[scenario].weights.get(name, 0.0), min=WEIGHT_MIN, max=WEIGHT_MAX, step=WEIGHT_STEP,
                description=c.label, tooltip=f"{c.description} [{c.unit}; {better} is better; from {c.source}]",
                readout_format=".1f", continuous_update=True, style={"description_width": "160px"},
                layout=W.Layout(width="400px"), disabled=self.evidence is None,
            )  # fmt: skip
            slider.observe(self._on_weight, names="value")
            self.sliders[name] = slider
            groups[c.kind].append(slider)
        self.scenario.observe(self._on_scenario, names="value")
        self.reasons_html = W.HTML()
        self.audit_html = W.HTML(audit_html(self.audit) if self.evidence is not None else "")

        first = self._recommend(self.weights()) if self.evidence is not None else None
        self.recommendation = first
        # Built with its data and full layout; later changes go through edit() (widgets/_common.py).
        self.figure = figure_widget(data=self._traces(first), layout=self._layout(first))
        self._show_scenario()
        if first is not None:
            self.reasons_html.value = self._reasons(first)
        self.chart_box = W.VBox([self.figure], layout=W.Layout(display="none" if first is None else "flex"))
        if problem is not None:
            self._say(problem, "error")

        self.weights_box = W.HBox([
            W.VBox([W.HTML("<b>Measured on this machine</b> (the suite)"), *groups["measured"]]),
            W.VBox([W.HTML("<b>Cited</b> (knowledge base: documented facts, a published scorecard)"), *groups["cited"]]),
        ])  # fmt: skip
        super().__init__([
            self.status, self.scenario, self.scenario_why, self.weights_box, self.chart_box, self.reasons_html,
            W.HTML("<h4 style='margin-bottom:2px'>Published claims, tested on this machine</h4>"), self.audit_html,
        ])  # fmt: skip

    # ------------------------------------------------------------------------------------ controls

    def weights(self) -> dict[str, float]:
        """The sliders' weights, ``{criterion: weight}`` for every criterion."""
        return {name: float(s.value) for name, s in self.sliders.items()}

    def set_weights(self, **weights: float) -> None:
        """Move the named sliders (others keep their weight) and re-rank once.

        Raises:
            ConfigError: field ``weight``: an unknown criterion (the criteria are listed) or a weight
                outside 0-5 / not a number (the sliders' range; nothing is moved).
        """
        for name, value in weights.items():
            if name not in self.sliders:
                raise ConfigError("weight", f"unknown criterion {name!r}; allowed: {', '.join(self.sliders)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not WEIGHT_MIN <= value <= WEIGHT_MAX:
                raise ConfigError("weight", f"{name}: expected a number from {WEIGHT_MIN:g} to {WEIGHT_MAX:g}, got {value!r}")
        self._busy = True
        try:
            for name, value in weights.items():
                self.sliders[name].value = float(value)
        finally:
            self._busy = False
        self._update()

    def _on_weight(self, _change=None) -> None:
        if not self._busy:
            self._update()

    def _on_scenario(self, change) -> None:
        weights = guide.SCENARIOS[change["new"]].weights
        self._busy = True
        try:
            for name, slider in self.sliders.items():
                slider.value = float(weights.get(name, 0.0))
        finally:
            self._busy = False
        self._show_scenario()
        self._update()

    def _show_scenario(self) -> None:
        s = guide.SCENARIOS[self.scenario.value]
        self.scenario_why.value = f"<div style='max-width:820px;color:#475467'><i>{html.escape(s.reasoning)}</i></div>"

    # ------------------------------------------------------------------------------------ ranking

    def _load(self) -> str | None:
        """Read the evidence; return why it cannot be (HTML) or ``None``."""
        from mlx_explore import knowledge

        try:
            self.evidence = guide.load_evidence(self.db, device=self.device)
        except NoSuite as e:
            return _code(e.message)
        except StoreError as e:
            return html.escape(f"The results store cannot be read: {e}")
        except knowledge.KnowledgeError as e:
            return html.escape(f"The knowledge base cannot be read: {e}")
        return None

    def _recommend(self, weights: dict[str, float]):
        """``guide.recommend`` for the current scenario, or ``None`` when every weight is 0."""
        if not any(weights.values()):
            return None
        return guide.recommend(self.evidence, self.scenario.value, weights)

    def _update(self) -> None:
        if self.evidence is None:
            return
        rec = self._recommend(self.weights())
        if rec is None:
            self.reasons_html.value = f"<div class='mlx-message mlx-warning' style='color:{_COLORS['warning']}'>{ALL_ZERO}</div>"
            return
        self.recommendation = rec
        traces, layout = self._traces(rec), self._layout(rec)
        with edit(self.figure):
            for trace, new in zip(self.figure.data, traces):
                trace.y, trace.x, trace.customdata, trace.visible = new.y, new.x, new.customdata, new.visible
            self.figure.layout.yaxis.categoryarray = layout.yaxis.categoryarray
            self.figure.layout.annotations = layout.annotations
            self.figure.layout.title.text = layout.title.text
        self.reasons_html.value = self._reasons(rec)

    def _traces(self, rec) -> list[go.Bar]:
        """One stacked horizontal ``Bar`` per criterion (every criterion, always in the same order)."""
        out = []
        for name, c in guide.CRITERIA.items():
            if rec is None:
                y, x, custom, visible = [], [], [], False
            else:
                y = list(rec.ranking)
                used = name in rec.contributions.columns
                x = [float(rec.contributions.loc[fw, name]) if used else 0.0 for fw in y]
                custom = [[format_value(rec.values.loc[fw, name], c.unit), v] for fw, v in zip(y, x)]
                visible = used
            out.append(go.Bar(
                y=y, x=x, orientation="h", name=c.label, meta=name, customdata=custom, visible=visible,
                marker=dict(color=CRITERION_COLORS[name]), legendgroup=c.kind,
                legendgrouptitle_text="measured" if c.kind == "measured" else "cited",
                hovertemplate=f"<b>%{{y}}</b><br>{html.escape(c.label)}: %{{customdata[0]}}<br>"
                              f"contribution %{{customdata[1]:.3f}}<extra></extra>",
            ))  # fmt: skip
        return out

    def _layout(self, rec) -> go.Layout:
        """The chart's full layout (title, stacking, axes, size, legend, one score label per bar)."""
        frameworks = list(rec.ranking) if rec is not None else []
        n = len(frameworks) if rec is not None else (len(self.evidence.values) if self.evidence is not None else 4)
        title = "ranking" if rec is None else f"{guide.SCENARIOS[rec.scenario].title}: {rec.top} first"
        if self.evidence is not None:
            ev = self.evidence
            title += f" <span style='font-size:12px'>(suite {ev.size}, {ev.device_kind.upper()}, session {ev.session})</span>"
        annotations = [dict(x=float(rec.scores[fw]), y=fw, text=f"{rec.scores[fw]:.3f}", showarrow=False,
                            xanchor="left", xshift=4) for fw in frameworks] if rec is not None else []  # fmt: skip
        return go.Layout(
            title=dict(text=title, x=0.01), barmode="stack", height=170 + 55 * max(n, 1),
            margin=dict(l=100, r=30, t=60, b=50),
            xaxis=dict(title="score: weighted sum of min-max normalised criteria (1 = best on every weighted one)",
                       range=[0, 1.12], zeroline=True),
            yaxis=dict(title="framework", autorange="reversed", type="category", categoryorder="array",
                       categoryarray=frameworks),
            legend=dict(title=dict(text="criterion"), groupclick="toggleitem", traceorder="grouped"),
            annotations=annotations,
        )  # fmt: skip

    # ------------------------------------------------------------------------------------ words

    def _reasons(self, rec) -> str:
        ev = rec.evidence
        parts = [f"<div style='color:#475467'>Suite session <code>{html.escape(ev.session)}</code> on "
                 f"{html.escape(ev.machine)} ({ev.device_kind.upper()}, size {html.escape(ev.size)})</div>"]  # fmt: skip
        if len(rec.ranking) < 2:
            parts.append(f"<p>Only <b>{html.escape(rec.top)}</b> is ranked for this scenario in this suite: nothing to "
                         f"rank it against.</p>")  # fmt: skip
        elif rec.reasons:
            items = []
            for r in rec.reasons:
                # the reason's evidence, said per framework (the two compared: first and runner-up)
                groups = [(f"{html.escape(', '.join(fws))}: " if fws else "") + ", ".join(ref_html(e) for e in refs)
                          for fws, refs in reason_evidence(rec, r)]  # fmt: skip
                evidence = f"<br><span style='color:#667085'>evidence: {'; '.join(groups)}</span>" if groups else ""
                items.append(f"<li>{html.escape(r.text)}{evidence}</li>")
            parts.append(f"<b>Why {html.escape(rec.top)}</b> (ahead of {html.escape(rec.ranking[1])}, score "
                         f"{rec.scores[rec.top]:.3f} against {rec.scores[rec.ranking[1]]:.3f})<ul>{''.join(items)}</ul>")  # fmt: skip
        else:
            parts.append(f"<p><b>{html.escape(rec.top)}</b> and <b>{html.escape(rec.ranking[1])}</b> tie on every "
                         f"weighted criterion (score {rec.scores[rec.top]:.3f}).</p>")  # fmt: skip
        what_if = rec.what_if.text if rec.what_if is not None else "no change of a single weight puts another framework first"
        parts.append(f"<p><b>What would change the answer</b>: {html.escape(what_if)}.</p>")
        caveats = "".join(f"<li>{_code(c)}</li>" for c in rec.caveats)
        parts.append(f"<b>Caveats</b><ul>{caveats}</ul>")
        return "<div class='mlx-reasons'>" + "".join(parts) + "</div>"

    def _say(self, text: str, level: str) -> None:
        self.status.value = f"<div class='mlx-message mlx-{level}' style='color:{_COLORS[level]}'>{text}</div>"
