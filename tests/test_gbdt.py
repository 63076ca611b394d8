"""Gradient-boosted trees (``model="gbdt"``) in scikit-learn, XGBoost and LightGBM: each library
trains to a sensible accuracy on binary and multi-class data, the settings held equal are in force
(read back from the trained models), one validation event arrives per round and in order, every
figure is a finite number or a ``None`` with its reason, the runs are stored, and a library that
cannot run costs only its own column.

Cheap by design (the whole file in about 20 s on 2 cores): small data sets, few rounds, one thread,
and one comparison shared by the tests that read it. The libraries run in their child processes,
as in real use; only scikit-learn (a core dependency) and the shared loop are used in-process.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from mlx_explore import compare
from mlx_explore.config import ConfigError, RunConfig
from mlx_explore.events import Epoch, Started, Step
from mlx_explore.metric_docs import METRIC_DOCS
from mlx_explore.results import load_epochs, load_runs

from .conftest import ROOT, load_json, run_cli

LIBRARIES = ("sklearn", "xgboost", "lightgbm")
ROUNDS, DEPTH, LR = 20, 4, 0.2


def boost_params(run) -> dict:
    """The settings read back from a run's trained model (``notes["boost_params"]``)."""
    return json.loads(run.notes["boost_params"])


# ------------------------------------------------------------------ one binary comparison, read by several tests


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    """breast_cancer in the three libraries and PyTorch (which cannot train trees), stored in its own
    results store: ``(comparison, events, db)``."""
    db = tmp_path_factory.mktemp("gbdt") / "results.db"
    events = []
    result = compare(model="gbdt", dataset="breast_cancer", frameworks=(*LIBRARIES, "torch"), rounds=ROUNDS,
                     max_depth=DEPTH, lr=LR, threads=1, latency_steps=20, on_event=events.append, db=db)  # fmt: skip
    return result, events, db


def test_every_library_trains_the_binary_task_and_torch_is_unsupported(binary):
    result, _, _ = binary
    by_fw = {r.framework: r for r in result.runs}
    for fw in LIBRARIES:
        r = by_fw[fw]
        assert r.status == "ok", (fw, r.reason, r.error_tail)
        assert r.metrics["test_accuracy"] >= 0.9 and r.metrics["test_roc_auc"] >= 0.95, (fw, r.metrics)
        assert r.metrics["test_f1_macro"] >= 0.88, (fw, r.metrics)
    assert by_fw["torch"].status == "unsupported" and "does not train model 'gbdt'" in by_fw["torch"].reason


def test_rounds_lr_depth_bins_l2_and_threads_are_in_force_and_read_back(binary):
    """Read back from each trained model (fitted attributes, XGBoost's saved configuration, the
    parameters LightGBM writes into its model), not copied from the config."""
    result, _, _ = binary
    for r in result.runs[:3]:
        p = boost_params(r)
        assert (p["rounds"], p["trees"], p["max_depth"], p["max_bins"], p["l2"], p["threads"]) == (ROUNDS, ROUNDS, DEPTH, 255, 1.0, 1), p
        assert math.isclose(p["learning_rate"], LR, rel_tol=1e-6), p  # XGBoost keeps it in float32
        assert 1 <= p["deepest"] <= DEPTH and p["leaves"] >= ROUNDS, p
        assert r.metrics["steps"] == ROUNDS and r.metrics["trees"] == ROUNDS and r.metrics["leaves"] == p["leaves"]
        assert r.flags["intra_op_threads"] == 1 and r.flags["cpu_affinity"] == 1, r.flags
        assert 0 < r.metrics["cpu_parallelism"] <= 1.05, (r.framework, r.metrics["cpu_parallelism"])  # one core
    assert boost_params(result.runs[2])["max_leaves"] == 2**DEPTH  # LightGBM: num_leaves = 2 ** max_depth
    assert boost_params(result.runs[0])["max_leaves"] is None and boost_params(result.runs[1])["max_leaves"] is None


def test_one_validation_event_per_round_in_order(binary):
    result, events, _ = binary
    for r in result.runs[:3]:
        mine = [e for e in events if e.framework == r.framework]
        started = [e for e in mine if isinstance(e, Started)]
        epochs = [e for e in mine if isinstance(e, Epoch)]
        steps = [e for e in mine if isinstance(e, Step)]
        assert len(started) == 1 and started[0].total_steps == ROUNDS and started[0].epochs == ROUNDS
        assert mine.index(started[0]) < mine.index(epochs[0])
        assert [e.epoch for e in epochs] == list(range(1, ROUNDS + 1)), r.framework
        assert [e.step for e in steps] == list(range(1, ROUNDS + 1)), r.framework
        times = [e.time_s for e in epochs]
        assert times == sorted(times) and times[0] > 0
        assert all(np.isfinite([e.train_loss, e.val_loss]).all() and 0 <= e.val_accuracy <= 1 for e in epochs)
        # Boosting lowers the training loss round after round (the step loss is the round's training log-loss).
        assert steps[-1].loss < steps[0].loss and epochs[-1].val_loss < epochs[0].val_loss
        assert [s.loss for s in steps] == [e.train_loss for e in epochs]
        # The library's own evaluation of the last round is the trained model's, by the shared metric code.
        assert math.isclose(epochs[-1].val_loss, r.metrics["val_loss"], rel_tol=1e-3), (r.framework, epochs[-1], r.metrics)
        assert math.isclose(epochs[-1].val_accuracy, r.metrics["val_accuracy"], abs_tol=1e-9)
        assert len(r.epochs) == ROUNDS and len(r.curve) == ROUNDS


def test_every_figure_is_a_finite_number_or_explained(binary):
    result, _, _ = binary
    for r in result.runs[:3]:
        m, notes = r.metrics, r.notes
        for key in METRIC_DOCS:
            assert key in m, (r.framework, key)
            if m[key] is None:
                assert notes.get(key), (r.framework, key)
            elif isinstance(m[key], float):
                assert math.isfinite(m[key]), (r.framework, key, m[key])
        for key in ("step_ms_p50", "step_ms_p99", "compile_s", "mfu", "gflops_per_s", "n_params"):
            assert m[key] is None, (r.framework, key)
        assert "no SGD step" in notes["step_ms_p50"] and "not meaningful" in notes["mfu"]
        assert m["round_ms"] > 0 and m["setup_s"] > 0 and m["first_step_s"] > 0 and m["windows"] == ROUNDS - 1
        assert m["train_s"] >= m["setup_s"] + m["first_step_s"] + (ROUNDS - 1) * m["round_ms"] / 1e3 * 0.5
        assert m["samples_per_s"] == pytest.approx(len_train(result) / (m["round_ms"] / 1e3))
        assert m["model_bytes"] > 1000 and m["peak_rss_mb"] > 50
        assert 0 < m["infer_ms_p50"] <= m["infer_ms_p95"] <= m["infer_ms_p99"] and m["infer_samples_per_s"] > 0
        assert m["wall_s"] > m["import_s"] > 0


def len_train(result) -> int:
    """Training rows of the comparison's data set (config arithmetic, nothing loaded)."""
    from mlx_explore.config import split_sizes

    return split_sizes(result.config)["train"]


def test_the_runs_and_their_rounds_are_stored(binary):
    result, _, db = binary
    runs = load_runs(db)
    assert runs["framework"].tolist() == [*LIBRARIES, "torch"]
    assert runs["status"].tolist() == ["ok", "ok", "ok", "unsupported"]
    assert (runs["model"] == "gbdt").all() and runs["round_ms"].iloc[:3].gt(0).all()
    assert runs["model_bytes"].iloc[:3].gt(0).all()
    assert json.loads(runs["notes"].iloc[1]["boost_params"])["rounds"] == ROUNDS
    epochs = load_epochs(db)
    assert epochs.groupby("framework")["epoch"].apply(list).to_dict() == {fw: list(range(1, ROUNDS + 1)) for fw in LIBRARIES}
    assert [r.run_id for r in result.runs] == runs["run_id"].tolist()


# ------------------------------------------------------------------ multi-class, from the command line


def test_multiclass_from_the_cli_with_rounds_depth_and_lr(tmp_path):
    out = tmp_path / "r.json"
    proc = run_cli("compare", "--model", "gbdt", "--dataset", "digits", "--rounds", "15", "--max-depth", "3",
                   "--lr", "0.3", "--threads", "1", "--latency-steps", "10", "-q", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = load_json(out)
    assert [r["framework"] for r in doc["runs"]] == list(LIBRARIES)  # gbdt's default columns
    for r in doc["runs"]:
        assert r["status"] == "ok", r
        p = json.loads(r["notes"]["boost_params"])
        assert (p["rounds"], p["trees"], p["max_depth"]) == (15, 150, 3) and p["deepest"] <= 3, p  # 10 trees a round
        assert math.isclose(p["learning_rate"], 0.3, rel_tol=1e-6)
        assert r["metrics"]["test_accuracy"] >= 0.9, r["metrics"]
        assert len(r["epochs"]) == 15


# ------------------------------------------------------------------ more data sets, each library in its own process

_DATASETS_CODE = """
import json, sys, time
from mlx_explore.bundle import prepare
from mlx_explore.config import RunConfig
from mlx_explore.frameworks import trainer_module
from mlx_explore.frameworks.common import fit
from mlx_explore.worker import pin_threads
fw = sys.argv[1]
pin_threads(1)
module = trainer_module(fw)
out = {}
for name, kw in json.loads(sys.argv[2]).items():
    b = prepare(RunConfig.build(model="gbdt", frameworks=[fw], rounds=20, max_depth=4, latency_steps=0, threads=1, **kw))
    module.configure(b.config, 1)
    t = module.Trainer(b.spec, b.weights, b.config, b.inputs(b.data.x_train), b.data.y_train)
    events = []
    metrics, notes = fit(t, b, events.append, time.perf_counter)
    out[name] = {"acc": metrics["test_accuracy"], "classes": t.logits(b.data.x_test[:2]).shape[1],
                 "trees": metrics["trees"], "epochs": sum(type(e).__name__ == "Epoch" for e in events)}
print(json.dumps(out))
"""
#: Data sets beyond the two above, and the least test accuracy each must reach in 20 rounds of depth 4
#: (measured: wine 0.96-1.0, 5-class synthetic 0.58-0.63 against chance 0.2, binary synthetic 0.86-0.88).
_MORE = {
    "wine": ({"dataset": "wine"}, 3, 0.9),
    "synthetic5": ({"dataset": "synthetic", "n_classes": 5, "n_samples": 2000}, 5, 0.45),
    "synthetic2": ({"dataset": "synthetic", "n_classes": 2, "n_samples": 2000}, 2, 0.8),
}


@pytest.mark.parametrize("fw", LIBRARIES)
def test_wine_and_synthetic_with_2_and_5_classes(fw):
    proc = subprocess.run([sys.executable, "-c", _DATASETS_CODE, fw, json.dumps({k: v[0] for k, v in _MORE.items()})],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, (_, classes, floor) in _MORE.items():
        g = got[name]
        assert g["classes"] == classes and g["epochs"] == 20, (fw, name, g)
        assert g["trees"] == 20 * (1 if classes == 2 else classes), (fw, name, g)
        assert g["acc"] >= floor, (fw, name, g)


# ------------------------------------------------------------------ failure paths


def test_a_library_that_cannot_load_costs_only_its_own_column(tmp_path, monkeypatch, results_db):
    """In the children, ``xgboost`` cannot be imported (a broken install: skipped, with the install
    hint) and ``lightgbm`` crashes at import (failed, with its error); scikit-learn's run is ok, and
    all three are stored."""
    fake = tmp_path / "fake"
    (fake / "xgboost").mkdir(parents=True)
    (fake / "xgboost" / "__init__.py").write_text("raise ImportError('libxgboost.so: cannot open shared object file')\n")
    (fake / "lightgbm").mkdir()
    (fake / "lightgbm" / "__init__.py").write_text("raise RuntimeError('lightgbm exploded at import')\n")
    monkeypatch.setenv("PYTHONPATH", str(fake))  # the children's sys.path; this process has the real ones
    result = compare(model="gbdt", dataset="breast_cancer", rounds=5, threads=1, latency_steps=0)
    by_fw = {r.framework: r for r in result.runs}
    assert by_fw["sklearn"].status == "ok" and by_fw["sklearn"].metrics["test_accuracy"] > 0.85
    assert by_fw["xgboost"].status == "skipped", by_fw["xgboost"]
    assert "cannot be imported" in by_fw["xgboost"].reason and "pip install 'mlx-explore[gbdt]'" in by_fw["xgboost"].reason
    assert by_fw["lightgbm"].status == "failed" and "lightgbm exploded at import" in by_fw["lightgbm"].reason
    stored = load_runs(results_db)
    assert dict(zip(stored["framework"], stored["status"])) == {"sklearn": "ok", "xgboost": "skipped", "lightgbm": "failed"}


def test_a_library_not_installed_is_skipped_with_the_install_hint_before_any_child(monkeypatch):
    from mlx_explore import frameworks

    real = frameworks.missing_modules
    monkeypatch.setattr(frameworks, "missing_modules", lambda name: ["lightgbm"] if name == "lightgbm" else real(name))
    # scikit-learn is not asked for: nothing needs a child process here.
    result = compare(model="gbdt", dataset="wine", frameworks="lightgbm", store=False)
    (run,) = result.runs
    assert run.status == "skipped" and "not installed (lightgbm)" in run.reason and "pip install" in run.reason


def test_bad_input_is_a_config_error_naming_the_field():
    with pytest.raises(ConfigError) as err:
        RunConfig.build(model="mlp", frameworks="xgboost")
    assert err.value.field == "frameworks" and "only model 'gbdt'" in err.value.message
    with pytest.raises(ConfigError) as err:
        RunConfig.build(model="gbdt", frameworks="torch,jax")
    assert err.value.field == "frameworks"
    cfg = RunConfig.build(model="gbdt")
    assert cfg.frameworks == LIBRARIES and cfg.lr == 0.1 and (cfg.rounds, cfg.max_depth) == (100, 6)


# ------------------------------------------------------------------ the shared loop, without a library


class _FakeBooster:
    """A boosting trainer whose rounds are scripted: ``losses`` per round (train, val)."""

    name, device, device_name, device_kind = "fake", "cpu", "cpu", "cpu"
    capabilities = frozenset({"boosting"})

    def __init__(self, losses, order=None):
        self.losses_, self.order = losses, order

    def boost(self, x_val, y_val, record):
        from mlx_explore.frameworks.common import RoundClock

        clock = RoundClock(record)
        clock.start()
        clock.mark(0)
        for r in self.order or range(1, len(self.losses_) + 1):
            clock.mark(r, *self.losses_[r - 1], 0.5)

    def boost_params(self):
        return {"rounds": len(self.losses_), "trees": len(self.losses_), "leaves": 4 * len(self.losses_)}

    def logits(self, x):
        return np.zeros((len(x), 2), np.float32)


def _bundle(**kw):
    from mlx_explore.bundle import prepare

    return prepare(RunConfig.build(model="gbdt", dataset="breast_cancer", frameworks="sklearn", latency_steps=0, **kw))


def test_every_library_scores_the_same_training_rows():
    from mlx_explore.frameworks.common import TRAIN_SCORE_ROWS, train_score_rows

    assert train_score_rows(TRAIN_SCORE_ROWS, 0) is None  # all of them
    rows = train_score_rows(140_000, 3)
    assert len(rows) == len(np.unique(rows)) == TRAIN_SCORE_ROWS and (np.diff(rows) > 0).all() and rows[-1] < 140_000
    np.testing.assert_array_equal(rows, train_score_rows(140_000, 3))  # drawn from the seed alone
    assert not np.array_equal(rows, train_score_rows(140_000, 4))


def test_train_boosting_emits_rounds_and_honours_log_every():
    from mlx_explore.frameworks.common import train_boosting

    events = []
    losses = [(1.0 / r, 1.1 / r) for r in range(1, 7)]
    metrics, notes = train_boosting(_FakeBooster(losses), _bundle(rounds=6, log_every=2), events.append, lambda: 1.0)
    assert [e.epoch for e in events if isinstance(e, Epoch)] == [1, 2, 3, 4, 5, 6]
    assert [e.steps for e in events if type(e).__name__ == "Steps"] == [[2], [4], [6]]
    assert metrics["steps"] == 6 and metrics["windows"] == 5 and metrics["train_loss"] == pytest.approx(1 / 6)
    assert metrics["val_loss"] == pytest.approx(math.log(2)) and metrics["compile_s"] is None
    assert json.loads(notes["boost_params"])["leaves"] == 24


def test_train_boosting_stops_on_a_nan_loss_and_on_rounds_out_of_order():
    from mlx_explore.frameworks.common import Diverged, train_boosting

    with pytest.raises(Diverged) as err:
        train_boosting(_FakeBooster([(0.5, 0.5), (float("nan"), 0.4), (0.3, 0.3)]), _bundle(rounds=3), lambda e: None,
                       lambda: 0.0)  # fmt: skip
    assert err.value.step == 2
    with pytest.raises(RuntimeError, match="reported round 3, expected 2"):
        train_boosting(_FakeBooster([(0.5, 0.5)] * 3, order=[1, 3, 2]), _bundle(rounds=3), lambda e: None, lambda: 0.0)
    with pytest.raises(RuntimeError, match="reported 2 rounds, asked for 3"):
        train_boosting(_FakeBooster([(0.5, 0.5)] * 2), _bundle(rounds=3), lambda e: None, lambda: 0.0)


# ------------------------------------------------------------------ scikit-learn's private hook, and the conformance check


def test_private_sklearn_hook_scores_every_round_and_grows_the_estimator_users_write():
    """``frameworks/sklearn/trainer.py`` overrides ``HistGradientBoostingClassifier._check_early_stopping_loss``
    (checked against scikit-learn 1.9.1): it must be called once before the first round and once after
    each, and the model it grows must be the one ``models.gbdt`` (``early_stopping=False``) grows."""
    from mlx_explore.frameworks.sklearn import models, trainer

    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] ** 2 > 1).astype(np.int64) + (x[:, 2] > 1)  # 3 classes
    xv, yv = x[:150], y[:150]
    bundle = _bundle(rounds=12, max_depth=3)
    est = trainer.build_model(bundle.spec, bundle.config)
    seen, rows = [], np.arange(0, 600, 3)  # the training loss is scored on these rows (common.train_score_rows)
    est._round_hook, est._train_rows = (lambda *args: seen.append(args)), rows
    est.fit(x, y, X_val=xv, y_val=yv)
    assert [s[0] for s in seen] == list(range(13)) and est.n_iter_ == 12, "the private hook changed"
    log_loss = lambda xs, ys: float(-np.log(est.predict_proba(xs)[np.arange(len(ys)), ys]).mean())  # noqa: E731
    assert seen[-1][1] == pytest.approx(log_loss(x[rows], y[rows]), rel=1e-9) == -est.train_score_[-1]
    assert seen[-1][2] == pytest.approx(log_loss(xv, yv), rel=1e-9) == -est.validation_score_[-1]
    assert seen[-1][3] == pytest.approx(np.mean(est.predict(xv) == yv))
    plain = models.gbdt(12, bundle.config.lr, 3, bundle.config.seed).fit(x, y)
    np.testing.assert_allclose(est.predict_proba(xv), plain.predict_proba(xv), rtol=1e-12, atol=0)


def test_the_conformance_check_catches_a_boosting_trainer_that_misreports():
    from mlx_explore.frameworks import conformance
    from mlx_explore.frameworks.sklearn import trainer

    class WrongRate(trainer.Trainer):
        def boost_params(self):
            return {**super().boost_params(), "learning_rate": 0.3, "threads": 7}

    class SkipsTheSetup(trainer.Trainer):
        def boost(self, x_val, y_val, record):
            super().boost(x_val, y_val, lambda r, *a: record(r, *a) if r else None)

    module = type(sys)("fake_sklearn")
    module.__dict__.update({k: v for k, v in vars(trainer).items() if not k.startswith("__")})
    bundle = conformance._tiny_bundle("gbdt", dataset="breast_cancer", rounds=3, max_depth=3)
    assert conformance._check_boosting_run(module, "sklearn", bundle, 1) == []
    module.Trainer = WrongRate
    problems = conformance._check_boosting_run(module, "sklearn", bundle, 1)
    assert any("learning_rate=0.3, not 0.05" in p for p in problems) and any("threads=7, expected 1" in p for p in problems)
    module.Trainer = SkipsTheSetup
    (problem,) = conformance._check_boosting_run(module, "sklearn", bundle, 1)
    assert "boost recorded rounds [1, 2, 3], not 0 (the set-up) then 1..3 in order" in problem
