"""scikit-learn's profile (``mlx_explore/frameworks/sklearn/profile.py``): the category rules on the
names real profiles hold, one real profile of MLPClassifier in a child process, and the profiler
hooks removed whatever a step does."""

from __future__ import annotations

import pstats
import subprocess
import sys

import numpy as np
import pytest

from mlx_explore import profiling
from mlx_explore.frameworks.sklearn import profile as sk_profile

from .conftest import ROOT, profile_child

MLP = "sklearn.neural_network._multilayer_perceptron.BaseMultilayerPerceptron."
OPT = "sklearn.neural_network._stochastic_optimizers."

#: Names seen in profiles of MLPClassifier (scikit-learn 1.9.1, NumPy 2.4: mlp and logreg, sgd,
#: momentum and adam, relu/tanh/sigmoid, binary and multiclass) and their categories.
SEEN = {
    "sklearn.utils.extmath.safe_sparse_dot": "matmul",
    "sklearn.neural_network._base.inplace_relu": "elementwise",
    "sklearn.neural_network._base.inplace_relu_derivative": "elementwise",
    "sklearn.neural_network._base.inplace_tanh_derivative": "elementwise",
    "sklearn.neural_network._base.inplace_logistic": "elementwise",
    "sklearn.neural_network._base.inplace_softmax": "loss/softmax",
    "sklearn.neural_network._base.log_loss": "loss/softmax",
    "sklearn.neural_network._base.binary_log_loss": "loss/softmax",
    MLP + "_backprop": "loss/softmax",
    MLP + "_forward_pass": "elementwise",
    MLP + "_compute_loss_grad": "elementwise",
    MLP + "_fit.<genexpr>": "elementwise",
    OPT + "BaseOptimizer.update_params": "optimizer update",
    OPT + "SGDOptimizer._get_updates.<listcomp>": "optimizer update",
    OPT + "AdamOptimizer._get_updates.<listcomp>": "optimizer update",
    "mlx_explore.frameworks.sklearn.trainer.make_train_step.train_step": "data movement",
    "numpy._core._methods._clip": "elementwise",
    "numpy.ufunc.reduce": "reduction",
    "numpy.ndarray.sum": "reduction",
    "numpy.ndarray.cumsum": "reduction",
    "numpy.ndarray.clip": "elementwise",
    "numpy.array": "data movement",
    "numpy.ndarray.astype": "data movement",
    "numpy.ndarray.ravel": "data movement",
    "scipy.sparse._sparsetools.csr_todense": "data movement",
    "numpy._core._multiarray_umath._unique_hash": "other",
    "numpy.ndarray.searchsorted": "other",
    "numpy._core._multiarray_umath._array_converter.wrap": "other",
}
#: Python functions whose own time is interpreter work: no rule may name them (they would become ops).
OVERHEAD = [
    MLP + "_fit_stochastic",
    MLP + "_fit.<listcomp>",
    OPT + "BaseOptimizer.update_params.<genexpr>",
    OPT + "AdamOptimizer._get_updates",
    "sklearn.neural_network._multilayer_perceptron.MLPClassifier.partial_fit",
    "sklearn.utils.validation.check_array",
    "numpy._core.fromnumeric.sum",
    "numpy._core._methods._mean",
]


def test_rules_map_the_names_real_profiles_hold():
    assert profiling.rules_for("sklearn")
    assert {name: profiling.categorize("sklearn", name) for name in SEEN} == SEEN
    assert {name: profiling.categorize("sklearn", name) for name in OVERHEAD} == dict.fromkeys(OVERHEAD)


def test_mlp_profile_in_a_child_process(tmp_path):
    """MLP 784-1024-1024-10 at batch 1024, as the worker's profiling phase runs it. One BLAS thread: on
    a busy 2-core machine two BLAS threads wait for each other, and a few slow steps pull the ops'
    mean (the table) away from the median step time (``step_ms``)."""
    args = ["model=mlp", "batch_size=1024", "hidden=1024,1024", "dataset=synthetic", "n_features=784",
            "n_samples=8000", "n_classes=10", "steps=5", "threads=1"]  # fmt: skip
    p = profiling.Profile.from_dict(profile_child("sklearn", tmp_path, *args, timeout=240))

    by_category = p.by_category()
    assert max(by_category, key=by_category.get) == "matmul"
    assert p.unmapped == []
    assert p.adds_up and sum(by_category.values()) == pytest.approx(p.step_ms, rel=profiling.ADD_UP_RTOL)
    rows = {r["op"]: r for r in p.rows}
    assert rows["sklearn.utils.extmath.safe_sparse_dot"]["calls_per_step"] == 8  # 3 forward, 3 weight grads, 2 deltas
    assert rows[OPT + "BaseOptimizer.update_params"]["category"] == "optimizer update"

    assert p.native == [str(tmp_path / "sklearn.prof")]
    stats = pstats.Stats(p.native[0]).stats  # 4 of the 5 steps: the middle one ran under the timeline hook
    assert sum(v[0] for k, v in stats.items() if k[2] == "safe_sparse_dot") == 4 * 8

    assert p.step_events and all(e["ph"] == "X" and e["ts"] >= 0 and e["dur"] >= 0 for e in p.step_events)
    ops = [e for e in p.step_events if e["cat"] == "op"]
    assert {e["name"] for e in ops} <= set(rows)
    assert sum(e["name"] == "sklearn.utils.extmath.safe_sparse_dot" for e in ops) == 8


def _work(i: int) -> None:
    from sklearn.utils.extmath import safe_sparse_dot

    a = np.ones((64, 64), np.float32)
    np.add.reduce(safe_sparse_dot(a, a), axis=0)


def test_table_counts_every_step_and_the_timeline_holds_the_middle_one(tmp_path):
    _work(-1)  # imports scikit-learn outside the profile
    raw = sk_profile.profile(_work, 3, tmp_path, trainer=None)
    calls = {op.name: op.calls for op in raw.ops}
    # Steps 0 and 2 under cProfile, scaled by 3/2; step 1 under the timeline hook.
    assert calls["sklearn.utils.extmath.safe_sparse_dot"] == 3 and calls["numpy.ufunc.reduce"] == 3
    assert "builtins.isinstance" not in calls and not any(n.startswith("sklearn.utils._array_api") for n in calls)
    names = [e["name"] for e in raw.step_events]
    assert names.count("sklearn.utils.extmath.safe_sparse_dot") == 1 and names.count("numpy.ufunc.reduce") == 1
    assert f"{__name__}._work" in names  # the Python function holding the ops
    assert sys.getprofile() is None


@pytest.mark.parametrize("failing_step", [0, 1])  # cProfile's step, the timeline's step
def test_a_failing_step_leaves_no_profiler_installed(tmp_path, failing_step):
    def run_step(i: int) -> None:
        _work(i)
        if i == failing_step:
            raise RuntimeError("step failed")

    with pytest.raises(RuntimeError, match="step failed"):
        sk_profile.profile(run_step, 3, tmp_path, trainer=None)
    assert sys.getprofile() is None


def test_importing_the_profile_module_does_not_import_sklearn():
    code = "import sys, mlx_explore.frameworks.sklearn.profile; assert 'sklearn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=ROOT)
