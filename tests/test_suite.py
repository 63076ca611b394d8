"""The standard suite (issue 13): its configs, tagged storage, ``latest`` never mixing machines,
versions or incomplete sessions, the derived parity figures, and the ``mlx-explore suite`` command."""

from __future__ import annotations

import sqlite3

import pytest

from mlx_explore import knowledge, results, suite
from mlx_explore.comparison import plan
from mlx_explore.config import ConfigError
from mlx_explore.results import StoreError, load_runs

from .conftest import SUITE_FRAMEWORKS, run_cli
from .suite_fakes import other_machine_env, write_suite


def test_every_item_is_a_valid_config_in_both_sizes():
    for size in suite.SIZES:
        items = suite.configs(size)  # every column: every item runs
        assert [it.name for it, _ in items] == list(suite.ITEM_NAMES)
        by_name = {it.name: c for it, c in items}
        assert by_name["small_batch"].batch_size == 32 and by_name["small_batch"].mode == "both"
        assert by_name["large_batch"].hidden == (1024, 1024) and by_name["large_batch"].n_features == 784
        assert by_name["large_batch"].batch_size == 1024
        assert by_name["cnn"].model == "cnn"
        assert by_name["parity"].optimizer == "sgd" and by_name["parity"].repeat == 2 and by_name["parity"].deterministic
        for name, model in (("gru_small", "gru"), ("transformer_small", "transformer")):
            c = by_name[name]
            assert (c.model, c.dataset, c.hidden, c.batch_size, c.mode) == (model, "digits", (64,), 32, "compiled")
        for name, model in (("gru_large", "gru"), ("transformer_large", "transformer")):
            c = by_name[name]
            assert (c.model, c.dataset, c.seq_len, c.hidden, c.batch_size) == (model, "adding", 100, (256,), 256)
        g = by_name["gbdt"]
        assert (g.model, g.dataset, g.n_features, g.n_classes, g.rounds, g.max_depth, g.lr) == (
            "gbdt", "synthetic", 20, 2, 100, 6, 0.1)  # fmt: skip
        assert g.frameworks == ("sklearn", "xgboost", "lightgbm")
    small = {it.name: c for it, c in suite.configs("small")}
    full = {it.name: c for it, c in suite.configs("full")}
    for name in suite.ITEM_NAMES:  # full trains longer, or on more data, on every item
        assert full[name].epochs > small[name].epochs or full[name].n_samples > small[name].n_samples, name
    # small stays cheap on a 2-core CPU: one epoch of the sequence items, 5 steps of the adding ones, no latency
    # phases at batch 256 (their inference throughput would run 1024 sequences of 100 steps)
    for name in ("gru_small", "gru_large", "transformer_small", "transformer_large"):
        assert small[name].epochs == 1
    for name in ("gru_large", "transformer_large"):
        assert small[name].n_samples == 2_000 and small[name].latency_steps == 0
    assert (small["gbdt"].n_samples, full["gbdt"].n_samples) == (20_000, 1_000_000)
    assert knowledge.SUITE_ITEMS == suite.ITEM_NAMES  # claims may name every item, and only those


def test_each_item_runs_only_the_requested_frameworks_that_can_train_it():
    by_name = {it.name: c.frameworks for it, c in suite.configs("small")}
    deep = ("torch", "jax", "tensorflow", "keras-jax", "keras-torch", "keras-tensorflow")
    for name in ("small_batch", "large_batch", "parity"):  # no xgboost "unsupported" row on an MLP item
        assert by_name[name] == ("torch", "jax", "tensorflow", "sklearn", *deep[3:])
    for name in ("cnn", "gru_small", "gru_large", "transformer_small", "transformer_large"):
        assert by_name[name] == deep
    assert by_name["gbdt"] == ("sklearn", "xgboost", "lightgbm")
    # the requested order is kept; an item none of them can train is left out
    two = suite.configs("small", frameworks="jax,torch")
    assert [it.name for it, _ in two] == [n for n in suite.ITEM_NAMES if n != "gbdt"]
    assert all(c.frameworks == ("jax", "torch") for _, c in two)
    trees = suite.configs("full", frameworks=["lightgbm", "xgboost"])
    assert [(it.name, c.frameworks) for it, c in trees] == [("gbdt", ("lightgbm", "xgboost"))]
    only_sklearn = {it.name: c.frameworks for it, c in suite.configs("small", frameworks="sklearn")}
    assert list(only_sklearn) == ["small_batch", "large_batch", "parity", "gbdt"]
    for bad in ("torch,xgboost,torch", "", ["mxnet"], 7):
        with pytest.raises(ConfigError) as err:
            suite.configs("small", frameworks=bad)
        assert err.value.field == "frameworks"


def test_a_session_is_complete_with_the_items_its_frameworks_can_run(tmp_path):
    """Completeness follows the items a session planned (its ``suite_items`` tag; without it, the items its
    frameworks can train): no gbdt item is missing from a torch,jax session, one is from a sklearn session."""
    db = tmp_path / "r.db"
    write_suite(db, frameworks=("torch", "jax"), session="deep")
    write_suite(db, frameworks=("jax", "xgboost"), session="both")
    write_suite(db, frameworks=("sklearn", "xgboost", "lightgbm"), session="trees-half", skip_items=("gbdt",))
    write_suite(db, frameworks=("torch", "jax"), session="untagged", items_tag=False)
    write_suite(db, frameworks=("sklearn",), session="untagged-half", items_tag=False, skip_items=("gbdt",))
    write_suite(db, frameworks=("xgboost",), session="only-trees")
    table = suite.sessions(db).set_index("session")
    assert table["complete"].to_dict() == {"deep": True, "both": True, "trees-half": False, "untagged": True,
                                           "untagged-half": False, "only-trees": True}  # fmt: skip
    assert table.loc["trees-half", "missing"] == "gbdt: not run"
    assert table.loc["untagged-half", "missing"] == "gbdt: not run"
    assert table.loc["deep", "missing"] == "" and table.loc["only-trees", "frameworks"] == "xgboost"
    runs = suite.latest(db, session="both")
    assert set(zip(runs["suite_item"], runs["framework"])) >= {("gbdt", "xgboost"), ("gru_large", "jax")}
    assert ("small_batch", "xgboost") not in set(zip(runs["suite_item"], runs["framework"]))
    assert (runs["suite_items"] == ",".join(n for n in suite.ITEM_NAMES)).all()
    # what each kind of session must hold
    assert suite.expected_items("cnn,gbdt", suite.SUITE_VERSION, ["torch"]) == ("cnn", "gbdt")
    assert suite.expected_items(None, 1, ["xgboost"]) == ("small_batch", "large_batch", "cnn", "parity")
    assert suite.expected_items(float("nan"), suite.SUITE_VERSION, ["lightgbm"]) == ("gbdt",)
    assert "gbdt" not in suite.expected_items(None, suite.SUITE_VERSION, ["torch", "keras-jax"])


@pytest.mark.parametrize("kwargs, field", [
    (dict(size="huge"), "size"), (dict(frameworks="mxnet"), "frameworks"), (dict(device="npu"), "device"),
    (dict(threads=0), "threads"),
])  # fmt: skip
def test_bad_suite_options_name_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        suite.configs(**{"size": "small", **kwargs})
    assert err.value.field == field
    if field == "size":
        assert "small" in err.value.message and "full" in err.value.message


def test_latest_returns_the_newest_complete_session_of_this_machine(tmp_path):
    db = tmp_path / "r.db"
    write_suite(db, session="old")
    newest_ids = write_suite(db, session="new")
    write_suite(db, session="half", skip_items=("parity",))  # newer but incomplete
    write_suite(db, session="stopped", interrupted=("cnn", "jax"))  # newer but interrupted
    write_suite(db, session="elsewhere", env=other_machine_env())  # newer but another machine
    write_suite(db, session="v0", version=suite.SUITE_VERSION - 1)  # newer but an older suite version
    table = suite.sessions(db)
    assert set(table["session"]) == {"old", "new", "half", "stopped", "elsewhere", "v0"}
    complete = dict(zip(table["session"], table["complete"]))
    assert complete == {"old": True, "new": True, "half": False, "stopped": False, "elsewhere": True, "v0": True}
    assert "parity: not run" in table.set_index("session").loc["half", "missing"]
    runs = suite.latest(db)
    assert set(runs["suite_session"]) == {"new"}
    assert sorted(runs["run_id"]) == sorted(newest_ids)
    assert set(runs["suite_item"]) == set(suite.ITEM_NAMES)


def test_no_suite_says_which_command_to_run(tmp_path):
    db = tmp_path / "r.db"
    with pytest.raises(suite.NoSuite) as err:
        suite.latest(db)
    assert "mlx-explore suite --size small" in err.value.message and "no suite run" in err.value.message
    write_suite(db, session="elsewhere", env=other_machine_env())
    write_suite(db, session="half", skip_items=("cnn",))
    with pytest.raises(suite.NoSuite) as err:
        suite.latest(db)
    message = err.value.message
    assert "another machine (Some Other CPU 9000" in message and "incomplete: cnn: not run" in message
    assert "mlx-explore suite --size small" in message
    with pytest.raises(suite.NoSuite):
        suite.latest(db, device="gpu")


def test_a_session_of_another_machine_or_version_is_refused_by_name(tmp_path):
    db = tmp_path / "r.db"
    write_suite(db, session="here")
    write_suite(db, session="elsewhere", env=other_machine_env())
    write_suite(db, session="v0", version=suite.SUITE_VERSION - 1)
    assert set(suite.latest(db, session="here")["suite_session"]) == {"here"}
    for session, words in (("elsewhere", "another machine"), ("v0", "suite version"), ("nope", "no suite session")):
        with pytest.raises(ConfigError) as err:
            suite.latest(db, session=session)
        assert err.value.field == "suite" and words in err.value.message and "here" in err.value.message


def test_parity_and_determinism_figures_come_from_the_stored_curves(tmp_path):
    db = tmp_path / "r.db"
    write_suite(db, diverging="tensorflow", nondeterministic="jax")
    figs = suite.figures(suite.latest(db), db)
    rel = figs[figs["figure"] == "parity.max_rel_diff"].set_index("framework")["value"]
    assert rel["torch"] == 0.0  # the reference
    assert rel["jax"] < 1e-12 and rel["sklearn"] < 1e-12
    assert rel["tensorflow"] == pytest.approx(0.01, rel=1e-9)
    same = figs[figs["figure"] == "parity.bitwise_identical"].set_index("framework")["value"].to_dict()
    assert same == {"torch": 1.0, "jax": 0.0, "tensorflow": 1.0, "sklearn": 1.0}
    # every figure names the stored run(s) it came from
    stored = set(load_runs(db)["run_id"])
    assert all(set(ids) <= stored and ids for ids in figs["run_ids"])


def test_the_suite_command_stores_a_complete_tagged_session(suite_store):
    """``suite_store`` ran ``mlx-explore suite --size small --frameworks jax,sklearn`` through the CLI."""
    runs = suite.latest(suite_store)
    frameworks = SUITE_FRAMEWORKS.split(",")
    plan_ = suite.configs("small", frameworks=frameworks)
    planned = sum(len(plan(c)) for _, c in plan_)
    assert len(runs) == planned
    assert set(runs["framework"]) == set(frameworks)
    assert (runs["suite_version"] == suite.SUITE_VERSION).all() and (runs["suite_size"] == "small").all()
    assert (runs["suite_items"] == ",".join(it.name for it, _ in plan_)).all()
    # each item ran the frameworks that can train it, and nothing else: no "unsupported" rows
    ran = runs.groupby("suite_item")["framework"].agg(lambda f: tuple(dict.fromkeys(f))).to_dict()
    assert ran == {it.name: c.frameworks for it, c in plan_}
    assert ran["cnn"] == ("jax",) and ran["gbdt"] == ("sklearn",)
    bad = runs.loc[runs["status"] != "ok", ["suite_item", "framework", "status", "reason"]]
    assert bad.empty, bad.to_string()


def test_suite_cli_refuses_bad_options_before_running(tmp_path):
    proc = run_cli("suite", "--size", "huge", "--db", str(tmp_path / "r.db"))
    assert proc.returncode == 2 and "--size" in proc.stderr and "small, full" in proc.stderr
    proc = run_cli("suite", "--frameworks", "mxnet", "--db", str(tmp_path / "r.db"))
    assert proc.returncode == 2 and "--frameworks" in proc.stderr
    assert not (tmp_path / "r.db").exists()  # nothing ran, nothing was created
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run_cli("suite", "--frameworks", "sklearn", "--db", str(blocker / "r.db"))
    assert proc.returncode == 2 and "--db" in proc.stderr


def test_an_interrupted_suite_is_not_used(tmp_path):
    """A session whose run was interrupted (Ctrl-C) stays in the store but ``latest`` skips it."""
    db = tmp_path / "r.db"
    write_suite(db, session="stopped", interrupted=("small_batch", "torch"))
    with pytest.raises(suite.NoSuite) as err:
        suite.latest(db)
    assert "stopped (incomplete: small_batch" in err.value.message
    with sqlite3.connect(db) as conn:  # the runs themselves are kept
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] > 0


def test_latest_reads_only_the_chosen_session_whole(tmp_path, monkeypatch):
    """The sessions are summed up from what SQLite reads of each run (``results.load_tags``: tags, and the
    machine of each session's first run): only the chosen session's runs are decoded, however big the store."""
    db = tmp_path / "r.db"
    old_ids = write_suite(db, session="old")
    new_ids = write_suite(db, session="new")
    half_ids = write_suite(db, session="half", skip_items=("parity",), frameworks=("jax", "torch"))
    decoded = set()
    real = results._decode

    def spy(path, text, table, row_id, column):
        if table == "run":
            decoded.add(int(row_id))
        return real(path, text, table, row_id, column)

    monkeypatch.setattr(results, "_decode", spy)
    runs = suite.latest(db)
    assert sorted(runs["run_id"]) == sorted(new_ids) and set(runs["suite_session"]) == {"new"}
    assert decoded == set(new_ids)
    table = suite.sessions(db).set_index("session")
    assert table.loc["half", "frameworks"] == "jax,torch" and table.loc["half", "runs"] == len(half_ids)
    assert table.loc["half", "missing"] == "parity: not run" and table.loc["old", "runs"] == len(old_ids)
    started = load_runs(db, run_ids=half_ids)["created_at"].min()
    assert table.loc["half", "started"] == started and list(table.index) == ["half", "new", "old"]


def test_a_damaged_run_elsewhere_does_not_stop_latest(tmp_path):
    db = tmp_path / "r.db"
    old_ids = write_suite(db, session="old")
    new_ids = write_suite(db, session="new")
    with sqlite3.connect(db) as conn:
        for run_id in (old_ids[0], old_ids[5]):  # a session's first run too (its machine is read in SQL)
            conn.execute("UPDATE runs SET notes = '{oops', metrics = '[' WHERE id = ?", (run_id,))
    assert set(suite.latest(db)["suite_session"]) == {"new"} and len(suite.sessions(db)) == 2
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET notes = '{oops' WHERE id = ?", (new_ids[3],))
    with pytest.raises(StoreError, match=f"the 'notes' of run {new_ids[3]} is not valid JSON"):
        suite.latest(db)  # the chosen session is read whole
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET config = '{oops' WHERE id = ?", (old_ids[3],))
    with pytest.raises(StoreError, match=f"the 'config' of run {old_ids[3]} is not valid JSON"):
        suite.sessions(db)  # every run's tags are read: a config that is not JSON is named
