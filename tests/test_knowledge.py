"""The decision guide's knowledge base (``mlx_explore.knowledge``): the shipped facts and claims load
and keep their promises (sources, coverage, scorecards), and a broken file fails with a
:class:`KnowledgeError` that names the file, the entry, the field and what is allowed.

Fast: reads two YAML files; no framework is imported.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import textwrap
from pathlib import Path

import pytest

from mlx_explore import knowledge
from mlx_explore.knowledge import (
    FRAMEWORKS, KINDS, TOPICS, Claim, ClaimTest, Fact, KnowledgeBase, KnowledgeError, Source, load,
)  # fmt: skip

#: A local seed-file name ("003_db2b84c8bdfeb8fb.txt"): sources are cited by their own title and
#: publisher, never by where a copy was stored.
SEED_NAME = re.compile(r"\d{3}_[0-9a-f]{16}|\.txt\b")

GOOD_SOURCE = {"title": "Start Locally", "publisher": "PyTorch Foundation",
               "url": "https://pytorch.org/get-started/locally/", "date": None}  # fmt: skip


def good_fact(**changes) -> dict:
    """A valid fact entry as YAML would give it, with ``changes`` applied (``None`` drops a key)."""
    entry = {"id": "torch-cuda", "statement": "PyTorch wheels are built for CUDA.", "frameworks": ["torch"],
             "topic": "accelerators", "value": "cuda", "kind": "fact", "source": dict(GOOD_SOURCE),
             "checked": dt.date(2026, 11, 23)}  # fmt: skip
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


def good_claim(**changes) -> dict:
    """A valid claim entry (a ratio test), with ``changes`` applied (``None`` drops a key)."""
    entry = {"id": "jax-beats-torch", "statement": "JAX is 10-25 % faster.", "frameworks": ["jax", "torch"],
             "kind": "published claim", "source": dict(GOOD_SOURCE), "checked": dt.date(2026, 11, 23),
             "conditions": {"device": "gpu"},
             "test": {"kind": "ratio", "figure": "large_batch.samples_per_s", "subject": {"framework": "jax"},
                      "baseline": {"framework": "torch"}, "low": 1.1, "high": 1.25}}  # fmt: skip
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


def write_yaml(path: Path, entries) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(entries, sort_keys=False))
    return path


@pytest.fixture
def files(tmp_path):
    """Factory: ``files(facts=[...], claims=[...])`` -> (facts path, claims path) of valid-by-default files."""

    def make(facts=None, claims=None):
        return (write_yaml(tmp_path / "facts.yaml", [good_fact()] if facts is None else facts),
                write_yaml(tmp_path / "claims.yaml", [good_claim()] if claims is None else claims))  # fmt: skip

    return make


def load_error(facts_path, claims_path) -> KnowledgeError:
    with pytest.raises(KnowledgeError) as info:
        load(facts_path, claims_path)
    return info.value


# ------------------------------------------------------------------ the shipped files


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load()


def test_shipped_files_load_into_typed_models(kb):
    assert isinstance(kb, KnowledgeBase)
    assert len(kb.facts) >= 30 and len(kb.claims) >= 5
    assert all(isinstance(f, Fact) for f in kb.facts)
    assert all(isinstance(c, Claim) and isinstance(c.test, ClaimTest) for c in kb.claims)
    assert all(isinstance(e.source, Source) and isinstance(e.checked, dt.date) for e in (*kb.facts, *kb.claims))


def test_default_is_cached_and_equal_to_a_fresh_load(kb):
    assert knowledge.default() is knowledge.default()
    assert knowledge.default() == kb


def test_every_entry_names_its_source_and_when_it_was_checked(kb):
    for entry in (*kb.facts, *kb.claims):
        assert entry.source.title.strip() and entry.source.publisher.strip(), entry.id
        if entry.source.url is not None:
            assert entry.source.url.startswith(("http://", "https://")), entry.id


def test_no_entry_cites_a_local_seed_file(kb):
    for entry in (*kb.facts, *kb.claims):
        for text in (entry.source.title, entry.source.publisher, entry.source.url or "", entry.statement):
            assert not SEED_NAME.search(text), f"{entry.id}: {text!r}"


def test_ids_are_unique_across_facts_and_claims(kb):
    ids = [e.id for e in (*kb.facts, *kb.claims)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("topic", ["deployment", "accelerators", "licence"])
def test_every_framework_has_deployment_accelerator_and_licence_facts(kb, framework, topic):
    assert [f for f in kb.facts_for(framework, topic) if f.kind == "fact"], f"no {topic} fact for {framework}"


def test_licences_are_the_known_spdx_ids(kb):
    licences = {fw: {f.value for f in kb.facts_for(fw, "licence")} for fw in FRAMEWORKS}
    assert licences == {"torch": {"BSD-3-Clause"}, "jax": {"Apache-2.0"}, "tensorflow": {"Apache-2.0"},
                        "sklearn": {"BSD-3-Clause"}}  # fmt: skip


def test_scorecard_facts_have_score_and_scale_for_one_framework(kb):
    rows = [f for f in kb.facts if f.topic == "scorecard"]
    assert rows
    for fact in rows:
        assert fact.score is not None and fact.scale is not None, fact.id
        assert 0 <= fact.score <= fact.scale and len(fact.frameworks) == 1, fact.id
        assert fact.kind == "published opinion", fact.id
    assert all(f.score is None and f.scale is None for f in kb.facts if f.topic != "scorecard")


def test_scorecard_maps_the_published_columns_to_the_right_frameworks(kb):
    """Columns of the published table: TensorFlow 2.x, PyTorch 2.x, JAX/Flax, Scikit-learn."""
    scores = {(f.value, f.frameworks[0]): f.score for f in kb.facts if f.topic == "scorecard"}
    assert scores[("Docs & On-boarding", "sklearn")] == 9.5
    assert scores[("Research Flexibility", "jax")] == 9.8
    assert scores[("Production Tooling", "tensorflow")] == 9.5
    assert scores[("Training Speed", "torch")] == 9.4
    assert ("Training Speed", "sklearn") not in scores  # N/A in the table


def test_fact_values_are_allowed_for_their_topic(kb):
    for fact in kb.facts:
        assert fact.kind in KINDS
        allowed = TOPICS[fact.topic]
        assert allowed is None or fact.value in allowed, fact.id


def test_facts_for_returns_only_that_framework_and_topic(kb):
    found = kb.facts_for("torch", "deployment")
    assert found and all("torch" in f.frameworks and f.topic == "deployment" for f in found)
    assert {f.value for f in found} >= {"serving", "mobile_edge", "onnx_export"}
    assert [f.id for f in kb.facts_for("torch")] == [f.id for f in kb.facts if "torch" in f.frameworks]


def test_facts_for_rejects_unknown_names(kb):
    with pytest.raises(ValueError, match="allowed: torch, jax, tensorflow, sklearn"):
        kb.facts_for("pytorch")
    with pytest.raises(ValueError, match="deployment"):
        kb.facts_for("torch", "deploy")


def test_lookups_by_id(kb):
    assert kb.fact("torch-licence").value == "BSD-3-Clause"
    assert kb.claim("jax-xla-beats-pytorch-10-25-percent").test.kind == "ratio"
    with pytest.raises(KeyError, match="no-such-id"):
        kb.fact("no-such-id")
    with pytest.raises(KeyError, match="no-such-id"):
        kb.claim("no-such-id")


def test_key_claims_are_encoded_as_specified(kb):
    jax = kb.claim("jax-xla-beats-pytorch-10-25-percent").test
    assert (jax.figure, jax.subject.framework, jax.baseline.framework, jax.low, jax.high) == (
        "large_batch.samples_per_s", "jax", "torch", 1.10, 1.25)  # fmt: skip
    inductor = kb.claim("torchinductor-speedup-a100")
    assert (inductor.test.subject.mode, inductor.test.baseline.mode, inductor.test.high) == ("compiled", "eager", 1.7)
    assert inductor.conditions.device == "gpu" and "A100" in inductor.conditions.hardware
    keras = kb.claim("keras-3-overhead-vs-pytorch").test  # Keras 3 on PyTorch against native PyTorch
    assert (keras.kind, keras.figure, keras.subject.framework, keras.baseline.framework) == (
        "ratio", "large_batch.samples_per_s", "keras-torch", "torch")
    assert keras.low < 0.94 < keras.high
    start = kb.claim("tensorflow-graph-compile-cold-start").test
    assert (start.kind, start.figure, start.low, start.high) == ("range", "small_batch.compile_s", 30, 90)
    winner = kb.claim("batch-size-changes-the-winner").test
    assert winner.figures == ("small_batch.samples_per_s", "large_batch.samples_per_s")
    vram = kb.claim("pytorch-uses-30-percent-more-vram").test
    assert vram.high < 1 and vram.figure.endswith("peak_device_mb")  # torch is worse: oriented ratio < 1


def test_the_gradient_boosting_claims_are_tested_on_the_gbdt_item(kb):
    """Three claims of the article's tabular section, read as ratios oriented so that > 1 favours the subject."""
    memory = kb.claim("sklearn-hist-gbdt-half-xgboost-memory")
    t = memory.test
    assert (t.kind, t.figure, t.subject.framework, t.baseline.framework, t.low, t.high, t.min_size) == (
        "ratio", "gbdt.peak_rss_mb", "sklearn", "xgboost", 1.8, 2.2, "full")  # fmt: skip
    assert "half the memory" in memory.conditions.other and "1.8 and 2.2" in memory.conditions.other
    auc = kb.claim("sklearn-hist-gbdt-roc-auc-vs-xgboost")
    t = auc.test
    assert (t.kind, t.figure, t.subject.framework, t.baseline.framework, t.low, t.high, t.min_size) == (
        "ratio", "gbdt.test_roc_auc", "sklearn", "xgboost", 1.0, 1.006, None)  # fmt: skip
    assert t.low <= 96.4 / 96.1 <= t.high
    porto = kb.claim("porto-seguro-tabular-models")
    t = porto.test
    assert (t.kind, t.figure, t.subject.framework, t.baseline.framework, t.min_size) == (
        "ratio", "gbdt.train_s", "lightgbm", "xgboost", "full")  # fmt: skip
    # time: lower is better, so baseline / subject; the bounds come from rounding 5 and 7 minutes
    assert (t.low, t.high) == (round(6.5 / 5.5, 2), round(7.5 / 4.5, 2)) and t.low <= 7 / 5 <= t.high
    assert "rounded" in porto.conditions.other
    for claim in (memory, auc, porto):
        assert claim.checked == dt.date(2026, 11, 24)
        assert claim.source.title.startswith("Comparing 6 Top Machine Learning Frameworks") and claim.source.publisher == "ChatBench.org"
        assert claim.conditions.other and "synthetic" in claim.conditions.other  # how our conditions differ


def test_claim_subjects_may_be_every_suite_column(files):
    """XGBoost and LightGBM are columns of the suite (the gbdt item), so a claim's test may name them."""
    test = {"kind": "ratio", "figure": "gbdt.train_s", "subject": {"framework": "lightgbm"},
            "baseline": {"framework": "xgboost"}, "low": 1.2, "min_size": "full"}  # fmt: skip
    kb = load(*files(claims=[good_claim(frameworks=["lightgbm", "xgboost"], test=test)]))
    assert kb.claims[0].test.subject.framework == "lightgbm" and kb.claims[0].test.min_size == "full"
    err = load_error(*files(claims=[good_claim(test=test | {"subject": {"framework": "catboost"}})]))
    assert "catboost" in str(err) and "xgboost, lightgbm" in str(err)
    err = load_error(*files(claims=[good_claim(test=test | {"min_size": "huge"})]))
    assert "'test.min_size'" in str(err) and "'small' or 'full'" in str(err)
    err = load_error(*files(claims=[good_claim(test={"kind": "none", "why_untestable": "no TPU", "min_size": "full"})]))
    assert "min_size" in str(err) and "do not belong" in str(err)


def test_untestable_claims_say_why(kb):
    for claim in kb.claims:
        if claim.test.kind == "none":
            assert claim.test.why_untestable.strip(), claim.id


def test_loading_imports_no_framework():
    code = ("import sys; from mlx_explore import knowledge; knowledge.load(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'jax', 'tensorflow', 'sklearn', 'keras'}))")  # fmt: skip
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ broken files


def test_valid_temporary_files_load(files):
    kb = load(*files())
    assert [f.id for f in kb.facts] == ["torch-cuda"] and [c.id for c in kb.claims] == ["jax-beats-torch"]


def test_invalid_yaml_names_the_file(files, tmp_path):
    facts, claims = files()
    facts.write_text("- id: torch-cuda\n  frameworks: [torch\n")
    err = load_error(facts, claims)
    assert err.path == facts and err.entry is None
    assert str(facts) in str(err) and "not valid YAML" in str(err)


def test_top_level_dict_is_rejected(files):
    facts, claims = files()
    write_yaml(claims, {"claims": [good_claim()]})
    err = load_error(facts, claims)
    assert err.path == claims and err.entry is None
    assert "top level must be a list" in str(err) and "dict" in str(err)


def test_empty_file_is_rejected(files):
    facts, claims = files()
    facts.write_text("")
    err = load_error(facts, claims)
    assert err.path == facts and "empty file" in str(err)


def test_fact_missing_source(files):
    facts, claims = files(facts=[good_fact(), good_fact(id="torch-rocm", value="rocm", source=None)])
    err = load_error(facts, claims)
    assert err.path == facts and err.entry == "torch-rocm"
    assert str(facts) in str(err) and "'torch-rocm'" in str(err)
    assert "'source'" in str(err) and "missing" in str(err)


def test_entry_without_readable_id_is_numbered(files):
    facts, claims = files(facts=[good_fact(), good_fact(id=None)])
    err = load_error(facts, claims)
    assert err.entry == "entry #2" and "entry #2" in str(err) and "'id'" in str(err)


def test_unknown_topic_lists_the_allowed_topics(files):
    facts, claims = files(facts=[good_fact(topic="hardware")])
    err = load_error(facts, claims)
    assert err.path == facts and err.entry == "torch-cuda"
    assert "'topic'" in str(err) and "'hardware'" in str(err)
    for topic in TOPICS:
        assert topic in str(err)


def test_value_not_allowed_for_topic(files):
    facts, claims = files(facts=[good_fact(value="opencl")])
    err = load_error(facts, claims)
    assert err.entry == "torch-cuda" and "'value'" in str(err) and "'opencl'" in str(err)
    assert "cuda, rocm, tpu, apple" in str(err)


def test_unknown_field_lists_the_allowed_fields(files):
    facts, claims = files(facts=[good_fact(sauce="x")])
    err = load_error(facts, claims)
    assert "'sauce'" in str(err) and "unknown field" in str(err) and "statement" in str(err)


def test_unknown_framework_in_a_fact(files):
    facts, claims = files(facts=[good_fact(frameworks=["pytorch"])])
    err = load_error(facts, claims)
    assert "'frameworks'" in str(err) and "pytorch" in str(err) and "torch, jax, tensorflow, sklearn" in str(err)


def test_scorecard_fact_needs_score_and_scale(files):
    facts, claims = files(facts=[good_fact(topic="scorecard", value="Docs & On-boarding", kind="published opinion")])
    err = load_error(facts, claims)
    assert err.entry == "torch-cuda" and "score" in str(err) and "scale" in str(err)
    facts, claims = files(facts=[good_fact(topic="scorecard", value="Docs", score=11, scale=10)])
    assert "[0, scale]" in str(load_error(facts, claims))


def test_duplicate_id_within_a_file(files):
    facts, claims = files(facts=[good_fact(), good_fact(value="rocm")])
    err = load_error(facts, claims)
    assert err.path == facts and err.entry == "torch-cuda" and "duplicate id" in str(err)


def test_duplicate_id_across_files(files):
    facts, claims = files(claims=[good_claim(id="torch-cuda")])
    err = load_error(facts, claims)
    assert err.path == claims and err.entry == "torch-cuda"
    assert "duplicate id" in str(err) and str(facts) in str(err)


def test_bad_source_fields(files):
    facts, claims = files(facts=[good_fact(source={**GOOD_SOURCE, "url": "pytorch.org"})])
    assert "http(s) URL" in str(load_error(facts, claims))
    facts, claims = files(facts=[good_fact(source={**GOOD_SOURCE, "publisher": " "})])
    assert "'source.publisher'" in str(load_error(facts, claims))
    facts, claims = files(facts=[good_fact(source={**GOOD_SOURCE, "date": "Feb 2025"})])
    assert "ISO date" in str(load_error(facts, claims))


def test_source_dates_accept_iso_dates_and_years(files):
    facts, claims = files(facts=[good_fact(source={**GOOD_SOURCE, "date": dt.date(2025, 2, 16)}),
                                 good_fact(id="torch-rocm", value="rocm", source={**GOOD_SOURCE, "date": 2025})])  # fmt: skip
    assert [f.source.date for f in load(facts, claims).facts] == ["2025-02-16", "2025"]


def test_ratio_claim_without_baseline(files):
    test = {"kind": "ratio", "figure": "large_batch.samples_per_s", "subject": {"framework": "jax"}, "low": 1.1}
    facts, claims = files(claims=[good_claim(test=test)])
    err = load_error(facts, claims)
    assert err.path == claims and err.entry == "jax-beats-torch"
    assert "'test'" in str(err) and "baseline" in str(err) and "'ratio'" in str(err)


def test_figure_with_unknown_item(files):
    test = good_claim()["test"] | {"figure": "huge_batch.samples_per_s"}
    facts, claims = files(claims=[good_claim(test=test)])
    err = load_error(facts, claims)
    assert err.entry == "jax-beats-torch" and "'test.figure'" in str(err) and "huge_batch" in str(err)
    assert "small_batch, large_batch, cnn, parity, gru_small, gru_large, transformer_small, transformer_large, gbdt" in str(err)


def test_figure_with_unknown_metric(files):
    test = good_claim()["test"] | {"figure": "large_batch.speed"}
    facts, claims = files(claims=[good_claim(test=test)])
    err = load_error(facts, claims)
    assert "'speed'" in str(err) and "samples_per_s" in str(err)
    test = good_claim()["test"] | {"figure": "parity.max_rel_diff"}
    assert load(*files(claims=[good_claim(test=test)])).claims[0].test.figure == "parity.max_rel_diff"
    test = good_claim()["test"] | {"figure": "cnn.max_rel_diff"}
    assert "max_rel_diff" in str(load_error(*files(claims=[good_claim(test=test)])))


@pytest.mark.parametrize(
    ("test", "message"),
    [
        ({"kind": "none"}, "why_untestable"),
        ({"kind": "none", "why_untestable": "  "}, "why_untestable"),
        ({"kind": "none", "why_untestable": "no TPU", "low": 1.0}, "do not belong"),
        ({"kind": "range", "figure": "small_batch.compile_s", "subject": {"framework": "jax"}}, "'low', 'high'"),
        ({"kind": "range", "figure": "small_batch.compile_s", "subject": {"framework": "jax"}, "low": 90, "high": 30},
         "above"),
        ({"kind": "winner_changes"}, "figures"),
        ({"kind": "winner_changes", "figures": ["small_batch.samples_per_s", "small_batch.samples_per_s"]}, "differ"),
        ({"kind": "ratio", "figure": "large_batch.samples_per_s", "subject": {"framework": "keras"},
          "baseline": {"framework": "torch"}, "low": 1.0}, "not a framework of the suite"),
        ({"kind": "ratio", "figure": "large_batch.samples_per_s", "subject": {"framework": "jax", "mode": "fast"},
          "baseline": {"framework": "torch"}, "low": 1.0}, "'eager', 'compiled' or 'best'"),
        ({"kind": "ratio", "figure": "large_batch.samples_per_s", "subject": {"framework": "jax"},
          "baseline": {"framework": "jax"}, "low": 1.0}, "same run"),
        ({"kind": "guess"}, "'ratio', 'range', 'winner_changes' or 'none'"),
    ],
)  # fmt: skip
def test_inconsistent_claim_tests(files, test, message):
    err = load_error(*files(claims=[good_claim(test=test)]))
    assert err.entry == "jax-beats-torch" and message in str(err), str(err)


def test_claim_kind_and_device_must_be_known(files):
    err = load_error(*files(claims=[good_claim(kind="rumour")]))
    assert "'kind'" in str(err) and "'published claim' or 'vendor claim'" in str(err)
    err = load_error(*files(claims=[good_claim(conditions={"device": "npu"})]))
    assert "'conditions.device'" in str(err) and "'cpu', 'gpu', 'tpu' or 'any'" in str(err)


def test_claim_frameworks_may_name_other_tools(files):
    kb = load(*files(claims=[good_claim(frameworks=["keras", "xgboost"])]))
    assert kb.claims[0].frameworks == ("keras", "xgboost")


def test_entry_that_is_not_a_mapping(files):
    err = load_error(*files(facts=[good_fact(), "torch is fast"]))
    assert err.entry == "entry #2" and "mapping" in str(err)


def test_missing_file_is_a_knowledge_error(tmp_path, files):
    facts, claims = files()
    err = load_error(tmp_path / "nope.yaml", claims)
    assert err.path == tmp_path / "nope.yaml" and "cannot read" in str(err)


def test_models_are_frozen_and_forbid_extra_fields(kb):
    fact = kb.facts[0]
    with pytest.raises(Exception):
        fact.value = "x"  # type: ignore[misc]
    with pytest.raises(Exception):
        Source(title="t", publisher="p", url=None, date=None, extra="x")  # type: ignore[call-arg]


def test_knowledge_error_is_a_value_error():
    err = KnowledgeError(Path("f.yaml"), "some-id", "field 'x': bad")
    assert isinstance(err, ValueError) and str(err) == "f.yaml: entry 'some-id': field 'x': bad"
    assert str(KnowledgeError("f.yaml", None, "not valid YAML")) == "f.yaml: not valid YAML"


def test_hand_written_block_yaml_loads(tmp_path):
    """A hand-written file in the documented shape (block YAML, dates unquoted) loads."""
    facts = tmp_path / "facts.yaml"
    facts.write_text(textwrap.dedent("""\
        - id: sklearn-licence
          statement: scikit-learn is released under a three-clause BSD licence.
          frameworks: [sklearn]
          topic: licence
          value: BSD-3-Clause
          kind: fact
          source:
            title: COPYING
            publisher: scikit-learn developers
            url: https://github.com/scikit-learn/scikit-learn/blob/main/COPYING
            date: null
          checked: 2026-11-23
        """))
    claims = write_yaml(tmp_path / "claims.yaml", [])
    kb = load(facts, claims)
    assert kb.fact("sklearn-licence").checked == dt.date(2026, 11, 23) and kb.claims == ()
