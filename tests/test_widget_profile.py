"""ProfileView, headless: stacked bars per run from normalized profiles (a comparison's or the store's),
built with their data so a view created later (Voila) shows them, the top-ops table of the picked run."""

from __future__ import annotations

import pytest

from mlx_explore import profiling
from mlx_explore.results import ResultsStore
from widgets import ProfileView


def prof(framework, step_ms, parts, unmapped=()):
    """A normalized profile with ``parts`` = {category: ms per step}, one op per category."""
    rows = [{"op": f"{framework}:{c}", "category": c, "calls_per_step": 2.0, "self_ms_per_step": ms,
             "share_of_step": ms / step_ms} for c, ms in parts.items()]  # fmt: skip
    rest = step_ms - sum(parts.values())
    rows.append({"op": "(unaccounted step time)", "category": "framework overhead", "calls_per_step": 1.0,
                 "self_ms_per_step": rest, "share_of_step": rest / step_ms})  # fmt: skip
    rows.sort(key=lambda r: -r["self_ms_per_step"])
    return profiling.Profile(framework=framework, steps=5, rows=rows, step_ms=step_ms, unprofiled_step_ms=step_ms * 0.8,
                             ops_ms=sum(parts.values()), unmapped=list(unmapped), native=[f"/traces/{framework}.json"],
                             notes=[f"{framework} fuses <ops>"])  # fmt: skip


PROFILES = {"torch": prof("torch", 2.0, {"matmul": 0.5, "elementwise": 0.3}),
            "jax": prof("jax", 1.0, {"matmul": 0.7, "reduction": 0.1}, unmapped=["custom-call.9"])}  # fmt: skip


def test_bars_are_built_with_the_data_so_late_views_show_them():
    view = ProfileView(PROFILES)
    bars = {t.name: dict(zip(t.x, t.y)) for t in view.figure.data}
    assert set(bars) == {"matmul", "elementwise", "reduction", "framework overhead"}  # only categories with time
    assert bars["matmul"] == {"torch": 0.5, "jax": 0.7} and bars["framework overhead"] == pytest.approx({"torch": 1.2, "jax": 0.2})
    for label, p in PROFILES.items():  # each stack is the profiled step time
        assert sum(b[label] for b in bars.values()) == pytest.approx(p.step_ms)
    # What a browser view created now would draw: the construction state, not later edits.
    constructed = {t["name"]: list(t["y"]) for t in view.figure._widget_data}
    assert constructed["matmul"] == [0.5, 0.7] and view.figure.layout.barmode == "stack"
    assert "torch</b>: 2.000 ms per profiled step (1.600 ms without the profiler)" in view.message.value
    assert "largest part is <i>framework overhead</i>, 60%" in view.message.value


def test_picking_a_run_shows_its_top_ops_notes_and_traces():
    view = ProfileView(PROFILES, top=2)
    assert view.run.options == ("torch", "jax") and view.run.value == "torch"
    assert view.ops.value.count("<tr>") == 3 and "(unaccounted step time)" in view.ops.value  # header + top 2
    assert "torch fuses &lt;ops&gt;" in view.traces.value and "/traces/torch.json" in view.traces.value
    view.run.value = "jax"
    assert "jax:matmul" in view.ops.value and "70.0%" in view.ops.value and "custom-call.9" in view.traces.value


def test_show_replaces_the_figure_and_an_empty_view_says_what_to_run():
    view = ProfileView()
    assert view.figure.data == () and "profile_steps=20" in view.message.value and view.run.options == ()
    old = view.figure
    view.show({"jax": PROFILES["jax"].to_dict()})  # a Comparison's profiles are dicts
    assert view.figure is not old and view.figure in view.children and old not in view.children
    assert {t.name for t in view.figure.data} == {"matmul", "reduction", "framework overhead"}
    with pytest.raises(ValueError, match="source: expected a Comparison"):
        ProfileView(["jax"])


def test_from_store_reads_the_stored_profiles(tmp_path):
    db = tmp_path / "r.db"
    with ResultsStore(db) as store:
        cid = store.begin_comparison({"model": "mlp", "dataset": "digits"}, {})
        for fw in ("torch", "jax"):
            run_id = store.add_run(cid, {"framework": fw, "status": "ok", "mode": "eager"})
            store.add_profile(run_id, {**PROFILES[fw].to_dict(), "trace_dir": str(tmp_path / str(run_id))})
    view = ProfileView.from_store(db)
    assert list(view.profiles) == ["torch/eager #1", "jax/eager #2"]
    assert view.profiles["jax/eager #2"].step_ms == 1.0 and view.profiles["jax/eager #2"].unmapped == ["custom-call.9"]
    assert ProfileView.from_store(db, framework="jax").run.options == ("jax/eager #2",)
