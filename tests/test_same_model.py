"""The implementations are provably the same model: same start, same forward, same training steps.

Each framework runs in its own process (as in real use). Failures name the framework, the step
and the difference (Hugging Face's cross-framework equivalence tests are the model for this).
"""

import numpy as np
import pytest

from mlx_explore import compare
from mlx_explore.bundle import prepare
from mlx_explore.config import RunConfig
from mlx_explore.metrics import log_softmax
from mlx_explore.models import ModelSpec, init_weights

from .conftest import DL_FRAMEWORKS, probe


def test_canonical_weights_are_seeded_glorot_and_zero_bias():
    spec = ModelSpec(kind="cnn", n_features=64, n_classes=10, image_shape=(8, 8, 1))
    w = init_weights(spec, seed=0)
    assert list(w) == list(spec.shapes())
    assert all(w[k].shape == s and w[k].dtype == np.float32 for k, s in spec.shapes().items())
    fan_in, fan_out = 3 * 3 * 1, 3 * 3 * 32
    assert np.abs(w["conv_0/kernel"]).max() <= np.sqrt(6 / (fan_in + fan_out))
    assert not w["conv_0/bias"].any()
    np.testing.assert_array_equal(w["dense_1/kernel"], init_weights(spec, seed=0)["dense_1/kernel"])
    assert not np.array_equal(w["dense_1/kernel"], init_weights(spec, seed=1)["dense_1/kernel"])


@pytest.mark.parametrize("model", ["logreg", "mlp", "cnn"])
def test_shared_weights_load_identically_in_every_framework(model, tmp_path):
    config = RunConfig.build(model=model, dataset="digits", hidden=(32, 16), batch_size=16)
    bundle = prepare(config)
    bundle.save(tmp_path / "b.npz")
    frameworks = DL_FRAMEWORKS + (("sklearn",) if model != "cnn" else ())
    outs = {fw: probe(fw, tmp_path / "b.npz", tmp_path / f"{fw}.npz") for fw in frameworks}
    reference = outs["torch"]["logits"]
    assert reference.shape == (16, 10)
    for fw, out in outs.items():
        # weights read back in canonical layout equal what was loaded, bit for bit
        for name, w in bundle.weights.items():
            got = out[f"w:{name}"]
            assert got.shape == w.shape, f"{fw} {name}: shape {got.shape} != {w.shape}"
            np.testing.assert_array_equal(got, w, err_msg=f"{fw} {name}")
        if fw == "sklearn":  # it returns probabilities: compare log-probabilities
            diff = np.abs(out["logits"] - log_softmax(reference)).max()
        else:
            diff = np.abs(out["logits"] - reference).max()
        assert diff < 1e-5, f"{fw}: first-batch outputs differ from torch by {diff:.2e}"


def assert_step_parity(result, frameworks, steps=None, rtol=1e-4):
    """Per-step training losses of ``frameworks[1:]`` against ``frameworks[0]``'s.

    Args:
        result: a ``Comparison`` whose runs logged every step (``log_every=1``).
        frameworks: reference first.
        steps: compare steps ``1..steps``; ``None``: every step of the run (all must have logged
            the same steps).
        rtol: largest relative difference, one number or ``{framework: rtol}``.
    """
    curves = result.curves
    ref_fw = frameworks[0]
    ref = curves[curves.framework == ref_fw].set_index("step")["loss"]
    if steps is None:
        steps = len(ref)
        assert list(ref.index) == list(range(1, steps + 1)), f"{ref_fw} did not log every step"
    assert len(ref) >= steps, f"{ref_fw} logged {len(ref)} steps"
    for fw in frameworks[1:]:
        tol = rtol[fw] if isinstance(rtol, dict) else rtol
        got = curves[curves.framework == fw].set_index("step")["loss"]
        assert len(got) >= steps, f"parity: {fw} logged {len(got)} steps, {ref_fw} {steps}"
        for step in range(1, steps + 1):
            rel = abs(got[step] - ref[step]) / abs(ref[step])
            assert rel <= tol, (
                f"parity: {fw} step {step}: loss {got[step]:.7f} vs {ref_fw} {ref[step]:.7f} "
                f"(relative difference {rel:.2e} > {tol:g})"
            )


PARITY = dict(dataset="digits", epochs=1, batch_size=32, optimizer="sgd", lr=0.05, log_every=1, device="cpu",
              latency_steps=0)
#: Relative tolerance of per-step losses against PyTorch (float32, CPU).
RTOL = {"jax": 1e-4, "tensorflow": 1e-4, "sklearn": 1e-3}
ALL = ["torch", "jax", "tensorflow", "sklearn"]


@pytest.mark.parametrize(
    "model, mode",
    [("mlp", "eager"), ("cnn", "eager"), ("mlp", "compiled")],
)
def test_per_step_loss_parity_torch_jax_tensorflow(model, mode):
    frameworks = list(DL_FRAMEWORKS)
    result = compare(model=model, frameworks=frameworks, mode=mode, hidden=(64, 64), **PARITY)
    assert all(r.status == "ok" for r in result.runs), [(r.framework, r.status, r.reason) for r in result.runs]
    assert_step_parity(result, frameworks, steps=20, rtol=1e-4)


def test_per_step_loss_parity_sklearn_mlp():
    result = compare(model="mlp", frameworks=["torch", "sklearn"], mode="eager", hidden=(64,), **PARITY)
    assert_step_parity(result, ["torch", "sklearn"], steps=20, rtol=1e-3)


def test_per_step_loss_parity_momentum_in_all_four_frameworks():
    # Heavy-ball momentum gives the same iterates everywhere (README, "Optimizers"): every step of
    # two epochs, on digits (10 classes; scikit-learn's binary parametrization differs).
    result = compare(model="mlp", frameworks=ALL, mode="eager", hidden=(64,),
                     **{**PARITY, "optimizer": "momentum", "momentum": 0.9, "lr": 0.02, "epochs": 2})  # fmt: skip
    assert all(r.status == "ok" for r in result.runs), [(r.framework, r.status, r.reason) for r in result.runs]
    assert_step_parity(result, ALL, rtol=RTOL)


def test_per_step_loss_parity_logreg_over_a_whole_run():
    result = compare(model="logreg", frameworks=ALL, mode="eager", **{**PARITY, "epochs": 3})
    assert all(r.status == "ok" for r in result.runs), [(r.framework, r.status, r.reason) for r in result.runs]
    assert_step_parity(result, ALL, rtol=RTOL)


def test_parity_failure_names_framework_step_and_difference():
    # A different learning rate in one run must break parity, and the message must say where.
    a = compare(model="logreg", frameworks=["torch"], mode="eager", **PARITY)
    b = compare(model="logreg", frameworks=["jax"], mode="eager", **{**PARITY, "lr": 0.5})
    a.runs += b.runs
    with pytest.raises(AssertionError, match=r"parity: jax step 2: loss [0-9.]+ vs torch [0-9.]+ \(relative difference"):
        assert_step_parity(a, ["torch", "jax"], steps=20, rtol=1e-4)
