"""The overview dashboard's store (``tests/benchmarks/dashboard_store.py``): a small build is a store the guide
reads, its trends hold every ok run, and the overview's queries go through indices, never through the long
tables (curves, epochs, op tables) as a whole. The timings themselves are the benchmark's (ratios, printed),
not a test's: these machines are too noisy to assert times."""

from __future__ import annotations

import importlib.util
import re
import sqlite3
import sys

import pytest

from mlx_explore import guide, profiling, results, suite

from .conftest import ROOT

RUNS, STEPS = 200, 20


def _dashboard_store():
    file = ROOT / "tests" / "benchmarks" / "dashboard_store.py"
    spec = importlib.util.spec_from_file_location("dashboard_store", file)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("dashboard_store", module)
    spec.loader.exec_module(module)
    return module


dashboard = _dashboard_store()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A 200-run store built by ``build_store`` (20-step curves); read it, do not write it."""
    return dashboard.build_store(tmp_path_factory.mktemp("dashboard") / "results.db", RUNS, steps=STEPS)


def _count(db, sql: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def test_a_small_build_is_a_store_the_guide_reads(store):
    assert _count(store, "SELECT count(*) FROM runs") == RUNS
    statuses = set(results.load_metrics(store, metrics=[], status=None)["status"])
    assert "ok" in statuses and statuses <= {"ok", "failed", "diverged", "unsupported", "interrupted"}
    runs = results.load_metrics(store, metrics=dashboard.TREND_METRICS, status=None)
    assert set(runs["framework"]) == set(dashboard.FRAMEWORKS)
    span = runs["created_at"].max() - runs["created_at"].min()
    assert span.days >= 150 and runs["created_at"].is_monotonic_increasing  # months of history, in run order
    ok = _count(store, "SELECT count(*) FROM runs WHERE status = 'ok'")
    trend = results.load_metrics(store)
    assert len(trend) == ok and trend["samples_per_s"].notna().all() and trend["test_accuracy"].between(0, 1).all()
    assert _count(store, "SELECT count(*) FROM curves c JOIN runs r ON r.id = c.run_id WHERE r.status = 'ok'") == \
        ok * STEPS  # fmt: skip

    evidence = guide.load_evidence(store)
    sessions = suite.sessions(store)
    assert evidence.session == sessions["session"].iloc[0]  # the newest session is this machine's, complete
    assert evidence.machine == suite.this_machine() and len(evidence.runs) == dashboard.SESSION_RUNS
    assert set(evidence.runs["framework"]) == set(dashboard.FRAMEWORKS)
    assert (evidence.runs["suite_version"] == suite.SUITE_VERSION).all()
    assert evidence.values.loc[:, "small_batch_throughput"].notna().all()
    assert guide.recommend(evidence).top in dashboard.FRAMEWORKS
    assert len(guide.audit_claims(evidence)) > 0
    assert sessions["complete"].sum() >= 2  # older sessions too

    newest = results.latest_profile_runs(store)
    assert sorted(newest["framework"]) == sorted(dashboard.FRAMEWORKS)
    profiles = profiling.load(store, run_ids=list(newest["run_id"]))
    assert len(profiles) == 4 and len(profiling.category_frame(profiles)) == 4


def test_build_store_refuses_what_it_cannot_build(tmp_path, store):
    with pytest.raises(FileExistsError):
        dashboard.build_store(store, RUNS)
    with pytest.raises(ValueError, match="^runs:"):
        dashboard.build_store(tmp_path / "r.db", dashboard.SESSION_RUNS - 1)
    assert not (tmp_path / "r.db").exists()


def _plans(db, monkeypatch, calls) -> list[tuple[str, list[str]]]:
    """``(sql, plan lines)`` of every query ``calls`` make, with each plan line's alias replaced by its table."""
    seen = []
    real = results._read

    def spy(path, sql, params, *, immutable):
        seen.append((sql, list(params)))
        return real(path, sql, params, immutable=immutable)

    monkeypatch.setattr(results, "_read", spy)
    for call in calls:
        call()
    monkeypatch.undo()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    out = []
    try:
        for sql, params in seen:
            aliases = {alias: table for table, alias in re.findall(r"\b(?:FROM|JOIN)\s+(\w+)\s+(\w+)", sql)}
            lines = []
            for *_, detail in conn.execute("EXPLAIN QUERY PLAN " + sql, params):
                m = re.match(r"(SCAN|SEARCH) (\w+)(.*)", detail)
                lines.append(f"{m[1]} {aliases.get(m[2], m[2])}{m[3]}" if m else detail)
            out.append((sql, lines))
    finally:
        conn.close()
    return out


def test_the_overview_queries_use_indices(store, monkeypatch):
    """The trend query finds the ok runs through ``runs_status``; the session summary reads the runs table only
    (each run's tags), the chosen session's runs come by primary key and its curves through ``curves_run``;
    the newest profiles through the profile summaries. No query scans curves, epochs or op tables."""
    newest = results.latest_profile_runs(store)["run_id"].tolist()
    plans = _plans(store, monkeypatch, [
        lambda: results.load_metrics(store), lambda: results.load_metrics(store, since="2026-01-01", framework="jax"),
        lambda: guide.load_evidence(store), lambda: results.latest_profile_runs(store),
        lambda: profiling.load(store, run_ids=newest),
    ])  # fmt: skip
    assert len(plans) >= 8
    for sql, lines in plans:
        tables = {line.split()[1] for line in lines if line.startswith(("SCAN", "SEARCH"))}
        for long in ("curves", "epochs", "profiles"):
            assert f"SCAN {long}" not in " | ".join(lines), (sql, lines)
            if long in tables:
                assert any(line.startswith(f"SEARCH {long} USING INDEX {long}_run (run_id=?)") for line in lines), lines

    def plan_of(fragment: str) -> list[list[str]]:
        found = [lines for sql, lines in plans if fragment in sql]
        assert found, f"no query with {fragment!r}"
        return found

    trend, since = plan_of("json_extract(NULLIF(r.metrics")
    assert "SEARCH runs USING INDEX runs_status (status=?)" in trend
    assert any(line.startswith("SEARCH runs USING") and "runs_status (status=? AND created_at>?)" in line
               for line in since)
    (summary,) = plan_of("json_extract(NULLIF(r.config")
    assert summary == ["SCAN runs"]  # one pass over the runs' own rows: no other table, no curve
    session_reads = [lines for sql, lines in plans if "r.error_tail" in sql]  # load_runs: the chosen session
    assert session_reads
    assert all(lines == ["SEARCH runs USING INTEGER PRIMARY KEY (rowid=?)"] for lines in session_reads)
    (curves,) = plan_of("FROM curves t")
    assert "SEARCH curves USING INDEX curves_run (run_id=?)" in curves
    profile_summaries = [lines for sql, lines in plans if "max(p.run_id)" in sql]
    assert profile_summaries and all("SCAN runs" not in " | ".join(lines) for lines in profile_summaries)
