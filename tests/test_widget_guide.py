"""DecisionGuide on a real stored suite (``conftest.suite_store``: the CLI's small suite of JAX and
scikit-learn): the chart's bars and stacked contributions, live re-ranking by slider and scenario,
the reasons with their evidence, the claims audit, all-zero weights and a store with no suite."""

from __future__ import annotations

import html
import math
import shutil

import pytest

from mlx_explore import guide
from mlx_explore.config import ConfigError
from mlx_explore.results import ResultsStore
from widgets import DecisionGuide
from widgets.guide import ALL_ZERO, CRITERION_COLORS, VERDICT_COLORS, format_value, reason_evidence, ref_html


@pytest.fixture(scope="module")
def evidence(suite_store):
    return guide.load_evidence(suite_store)


def bars(g: DecisionGuide) -> dict[str, float]:
    """Each bar's length, ``{framework: sum of the stacked traces' x}``."""
    totals: dict[str, float] = {}
    for trace in g.figure.data:
        for fw, x in zip(trace.y, trace.x):
            totals[fw] = totals.get(fw, 0.0) + x
    return totals


def top_bar(g: DecisionGuide) -> str:
    """The framework drawn on top: the first category of the reversed y axis, and of every trace."""
    layout = g.figure.layout.yaxis
    assert layout.autorange == "reversed" and layout.categoryorder == "array"
    assert all(list(t.y) == list(layout.categoryarray) for t in g.figure.data)
    return layout.categoryarray[0]


def best_on(evidence, name: str) -> str | None:
    """The framework with the best raw value of criterion ``name``, or None when none is better than the rest."""
    col = evidence.values[name].dropna()
    if len(col) < 2 or col.nunique() == 1:
        return None
    best = col.idxmax() if guide.CRITERIA[name].higher_is_better else col.idxmin()
    return best if (col == col[best]).sum() == 1 else None


def test_the_chart_has_one_stacked_bar_per_framework_summing_to_the_scores(suite_store, evidence):
    g = DecisionGuide(suite_store)
    rec = g.recommendation
    assert rec is not None and list(rec.scores.index) == rec.ranking
    assert sorted(rec.ranking) == sorted(evidence.values.index) == ["jax", "sklearn"]
    assert [t.meta for t in g.figure.data] == list(guide.CRITERIA)  # one trace per criterion, stable order
    assert all(t.type == "bar" and t.orientation == "h" for t in g.figure.data)
    assert top_bar(g) == rec.top and list(g.figure.layout.yaxis.categoryarray) == rec.ranking
    assert bars(g) == pytest.approx(rec.scores.to_dict(), abs=1e-9)
    for trace in g.figure.data:
        weighted = rec.weights[trace.meta] > 0
        assert trace.visible is weighted and trace.marker.color == CRITERION_COLORS[trace.meta]
        assert trace.name == guide.CRITERIA[trace.meta].label
        expected = [rec.contributions.loc[fw, trace.meta] if weighted else 0.0 for fw in rec.ranking]
        assert list(trace.x) == pytest.approx(expected, abs=1e-12)
    # the score is written at the end of each bar
    notes = {a.y: (a.x, a.text) for a in g.figure.layout.annotations}
    assert notes == {fw: (pytest.approx(rec.scores[fw]), f"{rec.scores[fw]:.3f}") for fw in rec.ranking}


def test_hover_shows_the_raw_value_with_its_unit_or_not_measured(suite_store, evidence):
    g = DecisionGuide(suite_store)
    g.set_weights(cnn_throughput=2, latency_p50=2)  # scikit-learn has no CNN: not measured
    trace = {t.meta: t for t in g.figure.data}
    ranking = g.recommendation.ranking
    for name in ("cnn_throughput", "latency_p50"):
        unit = guide.CRITERIA[name].unit
        shown = [c[0] for c in trace[name].customdata]
        assert shown == [format_value(evidence.values.loc[fw, name], unit) for fw in ranking]
        assert "%{customdata[0]}" in trace[name].hovertemplate and guide.CRITERIA[name].label in trace[name].hovertemplate
    cnn = dict(zip(trace["cnn_throughput"].y, trace["cnn_throughput"].customdata))
    assert math.isnan(evidence.values.loc["sklearn", "cnn_throughput"]) and cnn["sklearn"][0] == "not measured"
    assert cnn["sklearn"][1] == 0 and cnn["jax"][0].endswith(" samples/s")
    assert format_value(float("nan"), "ms") == "not measured" and format_value(1.0, "1 yes / 0 no") == "yes"
    assert format_value(0.75, "share of 4") == "3 of 4" and format_value(12345.6, "samples/s") == "12,346 samples/s"


def test_the_figure_is_built_with_its_data_and_layout(suite_store):
    """A view created later (Voila, a second display) starts from the state synced at construction
    (plotly 7.1.0: the ``_widget_data``/``_widget_layout`` traits, which later updates do not change):
    the chart must not be built empty and filled afterwards."""
    g = DecisionGuide(suite_store, "production")
    layout, data = g.figure._widget_layout, g.figure._widget_data
    assert layout["barmode"] == "stack" and layout["title"]["text"].startswith("Production serving: ")
    assert g.recommendation.top in layout["title"]["text"]
    assert layout["xaxis"]["title"]["text"].startswith("score") and layout["yaxis"]["title"]["text"] == "framework"
    assert layout["yaxis"]["autorange"] == "reversed" and list(layout["yaxis"]["categoryarray"]) == g.recommendation.ranking
    assert layout["height"] >= 250 and layout["margin"]["l"] > 0 and layout["legend"]["title"]["text"] == "criterion"
    assert len(layout["annotations"]) == len(g.recommendation.ranking)
    assert len(data) == len(guide.CRITERIA)
    drawn = {d["meta"]: d for d in data}
    for name, w in g.recommendation.weights.items():
        if w > 0:
            assert list(drawn[name]["y"]) == g.recommendation.ranking and len(drawn[name]["x"]) == len(g.recommendation.ranking)


def test_moving_sliders_reranks_in_place(suite_store, evidence):
    g = DecisionGuide(suite_store)
    traces = list(g.figure.data)
    winners = {}
    for name, c in guide.CRITERIA.items():
        best = best_on(evidence, name)
        if c.kind != "measured" or best is None:
            continue
        g.sliders[name].value = 5  # first the one that stays, so the weights are never all 0
        for other, slider in g.sliders.items():
            if other != name:
                slider.value = 0
        assert g.recommendation.weights == {n: (5.0 if n == name else 0.0) for n in guide.CRITERIA}
        assert g.recommendation.top == best and top_bar(g) == best, name
        assert bars(g) == pytest.approx(g.recommendation.scores.to_dict(), abs=1e-9)
        assert [t.meta for t in g.figure.data if t.visible] == [name]
        winners[name] = best
    # the check means something only if the criteria disagree: each framework wins somewhere
    assert set(winners.values()) == {"jax", "sklearn"}, winners
    assert all(a is b for a, b in zip(traces, g.figure.data)) and len(g.figure.data) == len(traces)  # updated, not replaced


def test_set_weights_moves_sliders_and_reranks_once(suite_store, evidence):
    g = DecisionGuide(suite_store)
    compile_best, small_best = best_on(evidence, "compile_time"), best_on(evidence, "small_batch_throughput")
    assert compile_best and small_best and compile_best != small_best
    zero = {n: 0 for n in guide.CRITERIA}
    g.set_weights(**(zero | {"compile_time": 1}))
    assert top_bar(g) == compile_best and g.sliders["compile_time"].value == 1
    g.set_weights(small_batch_throughput=4.5)  # the others keep their weight
    assert g.weights() == zero | {"compile_time": 1.0, "small_batch_throughput": 4.5}
    assert g.recommendation.weights == g.weights() and top_bar(g) == small_best
    with pytest.raises(ConfigError, match="unknown criterion 'speed'; allowed: .*compile_time") as e:
        g.set_weights(speed=1)
    assert e.value.field == "weight"
    for bad in (-1, 5.5, "2", True, float("nan")):
        with pytest.raises(ConfigError, match="compile_time: expected a number from 0 to 5"):
            g.set_weights(compile_time=bad)
    assert g.weights()["compile_time"] == 1.0  # nothing moved


def test_the_scenario_resets_the_sliders(suite_store):
    g = DecisionGuide(suite_store)
    assert g.scenario.options == tuple((s.title, name) for name, s in guide.SCENARIOS.items())
    assert g.weights() == guide.check_weights("research")
    g.set_weights(peak_memory=5, research_flexibility=0)
    names = list(guide.SCENARIOS)
    for name in names[1:] + names[:1]:  # the first is already chosen: come back to it last
        s = guide.SCENARIOS[name]
        g.scenario.value = name
        assert g.weights() == {n: float(s.weights.get(n, 0.0)) for n in guide.CRITERIA}, name
        assert g.recommendation.scenario == name and g.recommendation.weights == guide.check_weights(name)
        assert bars(g) == pytest.approx(g.recommendation.scores.to_dict(), abs=1e-9)
        assert html.escape(s.reasoning) in g.scenario_why.value
        assert g.figure.layout.title.text.startswith(f"{s.title}: {g.recommendation.top} first")
    with pytest.raises(ConfigError, match="unknown scenario 'gaming'; allowed: research, production"):
        DecisionGuide(suite_store, "gaming")


def test_sliders_are_labelled_grouped_and_explained(suite_store):
    g = DecisionGuide(suite_store)
    assert list(g.sliders) == list(guide.CRITERIA)
    for name, s in g.sliders.items():
        c = guide.CRITERIA[name]
        assert (s.min, s.max, s.step) == (0, 5, 0.5) and s.description == c.label
        assert c.description in s.tooltip and c.unit in s.tooltip
    assert g.weights_box in g.children
    measured, cited = (list(box.children[1:]) for box in g.weights_box.children)
    assert measured == [g.sliders[n] for n, c in guide.CRITERIA.items() if c.kind == "measured"]
    assert cited == [g.sliders[n] for n, c in guide.CRITERIA.items() if c.kind == "cited"]


def test_reasons_show_their_evidence_what_if_and_caveats(suite_store):
    g = DecisionGuide(suite_store)
    rec, text = g.recommendation, g.reasons_html.value
    assert rec.reasons, "the small suite separates JAX and scikit-learn under the research weights"
    assert f"Why {rec.top}" in text
    for r in rec.reasons:
        assert html.escape(r.text) in text
        for ref in r.evidence:
            if ref.kind == "run":
                assert f"run {ref.run_id}" in text
            else:
                assert f"<a href='{html.escape(ref.url, quote=True)}'" in text and html.escape(ref.title) in text
                assert html.escape(ref.publisher) in text
    if rec.what_if is not None:
        assert html.escape(rec.what_if.text) in text
    assert "What would change the answer" in text and "Caveats" in text
    assert text.count("<li>") >= len(rec.reasons) + len(rec.caveats)
    assert "<code>mlx-explore suite --size full --device gpu</code>" in text  # the CPU caveat, back-quotes as code
    for r in rec.reasons:  # said per framework: "jax: run 4; sklearn: run 7"
        groups = reason_evidence(rec, r)
        assert all(fws and set(fws) <= set(rec.ranking[:2]) for fws, _ in groups), groups
        assert {ref_html(e) for _, refs in groups for e in refs} == {ref_html(e) for e in r.evidence}
        for fws, refs in groups:
            assert f"{', '.join(fws)}: {', '.join(ref_html(e) for e in refs)}" in text
        runs_of = {fw: {e.run_id for e in rec.evidence.refs.get((fw, r.criterion), []) if e.kind == "run"} for fw in rec.ranking[:2]}
        for fws, refs in groups:
            for e in refs:
                if e.kind == "run":
                    assert fws == (next(fw for fw, ids in runs_of.items() if e.run_id in ids),)
    cited = [e for r in rec.reasons for e in r.evidence if e.kind == "citation"]
    runs = [e for r in rec.reasons for e in r.evidence if e.kind == "run"]
    assert runs, "a measured criterion is among the reasons, with its run ids"
    assert all(isinstance(e.run_id, int) for e in runs) and all(e.url is None or e.url.startswith("http") for e in cited)


def test_all_zero_weights_keep_the_last_chart_and_say_what_to_do(suite_store):
    g = DecisionGuide(suite_store)
    before_rec, before_x = g.recommendation, [list(t.x) for t in g.figure.data]
    g.set_weights(**{n: 0 for n in guide.CRITERIA})
    assert ALL_ZERO in g.reasons_html.value and "give at least one criterion a weight" in g.reasons_html.value
    assert g.recommendation is before_rec and [list(t.x) for t in g.figure.data] == before_x
    g.sliders["accuracy"].value = 0  # still all zero, by a slider: no exception either
    g.sliders["compile_time"].value = 2
    assert ALL_ZERO not in g.reasons_html.value and g.recommendation.weights["compile_time"] == 2
    assert [t.meta for t in g.figure.data if t.visible] == ["compile_time"]


@pytest.mark.parametrize("kind", ["missing file", "store without a suite"])
def test_no_suite_shows_the_command_to_run_instead_of_the_chart(tmp_path, kind):
    db = tmp_path / "results.db"
    if kind == "store without a suite":
        with ResultsStore(db) as store:
            cid = store.begin_comparison({"model": "mlp", "dataset": "digits"}, {"python": "3.11"})
            store.add_run(cid, {"framework": "jax", "mode": "eager", "status": "ok", "metrics": {"samples_per_s": 1.0}})
    g = DecisionGuide(db)
    assert g.recommendation is None and g.evidence is None
    assert "mlx-explore suite" in g.status.value and "<code>mlx-explore suite --size small</code>" in g.status.value
    assert "mlx-error" in g.status.value
    assert g.chart_box.layout.display == "none" and g.reasons_html.value == "" and g.audit.empty
    assert all(s.disabled for s in g.sliders.values())
    g.set_weights(compile_time=3)  # nothing to rank: no exception
    g.scenario.value = "teaching"
    assert g.recommendation is None and g.sliders["docs_onboarding"].value == 5
    assert g.figure.layout.barmode == "stack"
    if kind == "missing file":
        assert not db.exists()  # only read, never created


def test_the_audit_table_lists_every_claim_with_a_coloured_verdict(suite_store, evidence):
    g = DecisionGuide(suite_store)
    audit = guide.audit_claims(evidence)
    assert len(audit) > 0 and g.audit.equals(audit)
    table = g.audit_html.value
    assert table.count("<tr data-claim=") == len(audit)
    for _, row in audit.iterrows():
        assert f"data-claim='{row['claim']}'" in table and html.escape(row["statement"]) in table
        assert html.escape(row["source"]) in table
        assert f"<b style='color:{VERDICT_COLORS[row['verdict']]}'" in table
    assert set(audit["verdict"]) <= set(guide.VERDICTS) and set(VERDICT_COLORS) == set(guide.VERDICTS)
    with_runs = audit[audit["run_ids"].map(len) > 0]
    for ids in with_runs["run_ids"]:
        assert f"(runs {', '.join(map(str, ids))})" in table


def test_evidence_can_be_passed_and_the_store_is_not_changed(suite_store, evidence, tmp_path):
    copy = tmp_path / "suite.db"
    shutil.copy(suite_store, copy)
    before = copy.read_bytes()
    g = DecisionGuide(copy)
    g.set_weights(mfu=3)
    assert copy.read_bytes() == before
    h = DecisionGuide(evidence=evidence, scenario="tabular")
    assert h.evidence is evidence and h.recommendation.scenario == "tabular"
    assert h.recommendation.ranking == guide.recommend(evidence, "tabular").ranking
