"""The framework-independent part of profiling (``mlx_explore/profiling.py``): category rules as data,
the normalized table and its checks, the merged trace, the store, the CLI's bad input, and a profiler
failure that costs the profile but never the run. Each framework's own profiler is tested in
``tests/test_profile_<framework>.py``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from mlx_explore import profiling
from mlx_explore.config import ConfigError, RunConfig
from mlx_explore.profiling import CategoryError, OpStat, RawProfile, normalize, parse_rules

from .conftest import ROOT


def test_every_framework_has_valid_rules_for_every_category_it_names():
    for fw in ("torch", "jax", "tensorflow", "sklearn"):
        rules = profiling.rules_for(fw)
        assert rules and {r.category for r in rules} <= set(profiling.MAPPABLE), fw


@pytest.mark.parametrize("rules, message", [
    ({"rule": []}, "list 'rules'"),
    ({"rules": [{"pattern": "mm", "category": "gemm"}]}, "category 'gemm' is not allowed; allowed: matmul"),
    ({"rules": [{"pattern": "(", "category": "matmul"}]}, "rule 1: pattern '(' is not a valid regular expression"),
    ({"rules": [{"category": "matmul"}]}, "needs a pattern, a hint or both"),
    ({"rules": [{"pattern": "x", "category": "framework overhead"}]}, "is not allowed"),
    ({"rules": [{"pattern": "x", "category": "matmul", "colour": 1}]}, "unknown field(s) colour"),
])  # fmt: skip
def test_bad_rules_name_the_file_the_rule_and_the_allowed_values(rules, message):
    with pytest.raises(CategoryError, match="f.yaml") as info:
        parse_rules(rules, "f.yaml")
    assert message in str(info.value)


def test_rules_match_in_order_and_a_hint_rule_needs_a_hint(monkeypatch):
    rules = parse_rules(yaml.safe_load("""
rules:
  - {hint: '^convolution', category: conv}
  - {pattern: '^dot', category: matmul}
  - {pattern: 'fusion', hint: 'elementwise', category: elementwise}
  - {pattern: '.', category: other}
"""), "t.yaml")  # fmt: skip
    monkeypatch.setattr(profiling, "rules_for", lambda fw: rules)
    assert profiling.categorize("x", "dot.3") == "matmul"
    assert profiling.categorize("x", "dot.3", "convolution") == "conv"  # the first rule wins
    assert profiling.categorize("x", "fusion.2", "loop fusion elementwise") == "elementwise"
    assert profiling.categorize("x", "fusion.2") == "other"  # no hint: the hint rule cannot match


def raw(*ops, notes=()):
    return RawProfile(ops=[OpStat(*o) for o in ops], step_events=[{"name": "mm", "ph": "X", "ts": 0, "dur": 5, "tid": 1}],
                      native=["/x/trace.json"], notes=list(notes))  # fmt: skip


def test_normalize_divides_by_steps_and_the_overhead_closes_the_step(monkeypatch):
    monkeypatch.setattr(profiling, "rules_for", lambda fw: parse_rules({"rules": [{"pattern": "mm", "category": "matmul"}]}, "t"))
    p = normalize("torch", raw(("aten::mm", 20, 6000.0), ("aten::weird", 10, 2000.0)), steps=10,
                  step_times_s=[0.001, 0.0012, 0.0011], unprofiled_times_s=[0.0009, 0.001])  # fmt: skip
    assert p.step_ms == pytest.approx(1.1) and p.unprofiled_step_ms == pytest.approx(0.95)
    mm = next(r for r in p.rows if r["op"] == "aten::mm")
    assert mm == {"op": "aten::mm", "category": "matmul", "calls_per_step": 2.0, "self_ms_per_step": pytest.approx(0.6),
                  "share_of_step": pytest.approx(0.6 / 1.1)}  # fmt: skip
    assert p.unmapped == ["aten::weird"] and next(r for r in p.rows if r["op"] == "aten::weird")["category"] == "other"
    cats = p.by_category()
    assert list(cats) == list(profiling.CATEGORIES)
    assert sum(cats.values()) == pytest.approx(p.step_ms)  # ops + overhead = the measured step
    assert cats["framework overhead"] == pytest.approx(1.1 - 0.8) and p.adds_up
    assert [r["self_ms_per_step"] for r in p.rows] == sorted((r["self_ms_per_step"] for r in p.rows), reverse=True)
    assert profiling.Profile.from_dict(p.to_dict()) == p


def test_ops_that_exceed_the_step_are_flagged_not_hidden(monkeypatch):
    monkeypatch.setattr(profiling, "rules_for", lambda fw: parse_rules({"rules": [{"pattern": ".", "category": "matmul"}]}, "t"))
    p = normalize("jax", raw(("dot", 1, 2000.0)), steps=1, step_times_s=[0.001], unprofiled_times_s=[0.001])
    assert not p.adds_up and p.by_category()["framework overhead"] == 0
    assert any("exceeds the measured step time" in n for n in p.notes)


def test_merged_trace_has_one_named_process_track_per_run(tmp_path):
    steps = {"torch": [{"name": "aten::mm", "ph": "X", "ts": 0.0, "dur": 10.0, "tid": "main"},
                       {"name": "aten::relu", "ph": "X", "ts": 11.0, "dur": 2.0, "tid": "main"},
                       {"name": "flow", "ph": "s", "ts": 1.0}],
             "jax": [{"name": "dot.3", "ph": "X", "ts": 0.0, "dur": 4.0, "tid": 7, "args": {"hlo_category": "convolution"}}]}  # fmt: skip
    path = profiling.merge_traces(steps, tmp_path / "deep" / "merged.json")
    events = json.loads(path.read_text())["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert names == {1: "torch", 2: "jax"}
    spans = [e for e in events if e["ph"] == "X"]
    assert [(e["pid"], e["name"]) for e in spans] == [(1, "aten::mm"), (1, "aten::relu"), (2, "dot.3")]  # flow dropped
    assert all(isinstance(e["tid"], int) for e in spans) and spans[2]["args"] == {"hlo_category": "convolution"}
    assert {e["args"]["name"] for e in events if e["name"] == "thread_name"} == {"main", "7"}


def test_profile_steps_is_checked_against_one_epoch():
    with pytest.raises(ConfigError) as info:
        RunConfig.build(dataset="digits", batch_size=32, profile_steps=40)
    assert info.value.field == "profile_steps" and "39 steps one epoch has" in info.value.message
    assert RunConfig.build(dataset="digits", batch_size=32, profile_steps=39).profile_steps == 39
    with pytest.raises(ConfigError) as info:
        RunConfig.build(profile_steps=-1)
    assert info.value.field == "profile_steps"


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "mlx_explore.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, **kw)  # fmt: skip


@pytest.mark.parametrize("args, field, words", [
    (["--steps", "0"], "--steps", "at least 1"),
    (["--steps", "-3"], "--steps", "at least 1"),
    (["--steps", "500"], "--steps", "at most the 39 steps one epoch has"),
    (["--out-dir", "/proc/no/such"], "--out-dir", "cannot write in /proc/no/such"),
    (["--frameworks", "torch,mxnet"], "--frameworks", "allowed"),
])  # fmt: skip
def test_profile_cli_refuses_bad_input_naming_the_option(args, field, words, tmp_path):
    proc = cli("profile", *args, "--db", str(tmp_path / "r.db"))
    assert proc.returncode == 2, proc.stderr
    assert f"error: {field}:" in proc.stderr and words in proc.stderr
    assert not (tmp_path / "r.db").exists()  # refused before anything ran


def test_an_out_dir_under_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    proc = cli("profile", "--out-dir", str(tmp_path / "file" / "traces"), "--db", str(tmp_path / "r.db"))
    assert proc.returncode == 2 and "error: --out-dir:" in proc.stderr and "is a file, not a folder" in proc.stderr


def test_a_profiler_that_fails_costs_the_profile_not_the_run(tmp_path):
    """The traces folder lies under a file, so every profiler fails to start: the run still finishes
    with all its figures, its profile is None and a note says why; nothing is stored as a profile."""
    import mlx_explore
    from mlx_explore.results import load_profile_runs, load_runs

    (tmp_path / "blocker").write_text("not a folder")
    db = tmp_path / "r.db"
    result = mlx_explore.compare(model="mlp", dataset="digits", frameworks=["sklearn"], epochs=1, hidden=(16,),
                                 latency_steps=5, profile_steps=3, db=db, trace_dir=tmp_path / "blocker")  # fmt: skip
    run = result.run("sklearn")
    assert run.status == "ok" and run.metrics["samples_per_s"] > 0 and run.metrics["test_accuracy"] > 0.3
    assert run.profile is None and run.notes["profile"].startswith("not profiled:")
    assert load_runs(db)["status"].tolist() == ["ok"] and load_profile_runs(db).empty
