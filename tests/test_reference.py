"""The NumPy float64 reference (``mlx_explore/reference.py``) is right, and every framework agrees with it.

Parity between frameworks (``tests/test_same_model.py``) cannot see a mistake they all share; the
reference is computed a second way, by hand in float64, so drifting together is caught too:

* its hand-written gradients equal central finite differences for every model (the GRU through
  time and the pre-norm transformer included), and ``train`` steps them with plain SGD;
* its convolution is the definition written as loops;
* PyTorch, JAX, TensorFlow (and scikit-learn for the dense models) reproduce its per-step training
  losses over 20 SGD steps within the parity test's tolerances (``parity.RTOL``, ``RTOL_SKLEARN``);
* a config it does not implement fails as a ``ConfigError`` naming the field.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlx_explore import compare, reference
from mlx_explore.bundle import prepare
from mlx_explore.config import ConfigError, RunConfig
from mlx_explore.metrics import cross_entropy
from mlx_explore.models import ModelSpec, init_weights
from mlx_explore.parity import RTOL, RTOL_SKLEARN

from .conftest import DL_FRAMEWORKS

# ------------------------------------------------------------------------------------ gradients

#: Small models for the finite-difference check (every parameter entry is perturbed). The CNN's
#: image is not square and its sizes are odd after the first pooling (9x6 -> 4x3 -> 2x1), so a
#: swapped axis or a pooling that does not floor shows; likewise the sequence models' ``T``, ``D``,
#: width and (transformer) ``heads = 2``, ``d_head = 3`` all differ. The transformer has its
#: canonical two blocks.
GRAD_SPECS = {
    "logreg": ModelSpec(kind="logreg", n_features=5, n_classes=3),
    "mlp-relu": ModelSpec(kind="mlp", n_features=5, n_classes=3, hidden=(6, 4), activation="relu"),
    "mlp-tanh": ModelSpec(kind="mlp", n_features=5, n_classes=3, hidden=(6, 4), activation="tanh"),
    "mlp-sigmoid": ModelSpec(kind="mlp", n_features=5, n_classes=3, hidden=(6, 4), activation="sigmoid"),
    "cnn": ModelSpec(kind="cnn", n_features=9 * 6 * 2, n_classes=3, image_shape=(9, 6, 2), channels=(3, 4), dense=5),
    "gru": ModelSpec(kind="gru", n_features=5 * 3, n_classes=3, hidden=(4,), seq_shape=(5, 3)),
    "transformer": ModelSpec(kind="transformer", n_features=4 * 3, n_classes=3, hidden=(6,), seq_shape=(4, 3)),
}
#: Step of the central differences: truncation error ~EPS^2, rounding ~1e-16 / EPS, both far below 1e-6.
EPS = 1e-6
#: Parameters whose gradient is 0 in exact arithmetic: a key bias adds ``q . b_k`` to every score of
#: a query's row alike, which the softmax cancels. Both gradients must then be rounding noise.
ZERO_GRADIENTS = ("/attn/key/bias",)


def _grad_problem(spec: ModelSpec, batch: int = 4):
    rng = np.random.default_rng(7)
    params = reference.as_float64(init_weights(spec, seed=3))
    for name in params:
        if name.endswith("/bias"):  # non-zero biases, so their gradients are tested through every layer
            params[name] = rng.normal(0, 0.3, params[name].shape)
        elif name.endswith("/scale"):  # layer-norm scales away from their initial ones, likewise
            params[name] = rng.normal(1, 0.3, params[name].shape)
    x = rng.normal(size=(batch, spec.n_features))
    y = rng.integers(0, spec.n_classes, batch)
    return params, x, y


@pytest.mark.parametrize("name", list(GRAD_SPECS))
def test_gradients_match_central_finite_differences(name):
    spec = GRAD_SPECS[name]
    params, x, y = _grad_problem(spec)
    loss, grads = reference.loss_and_grads(spec, params, x, y)
    assert list(grads) == list(spec.shapes())
    assert loss == pytest.approx(cross_entropy(reference.forward(spec, params, x), y), rel=1e-14)
    worst, worst_name = 0.0, None
    for pname, value in params.items():
        fd = np.empty_like(value)
        for i in np.ndindex(value.shape):
            old = value[i]
            value[i] = old + EPS
            up = reference.loss_and_grads(spec, params, x, y)[0]
            value[i] = old - EPS
            down = reference.loss_and_grads(spec, params, x, y)[0]
            value[i] = old
            fd[i] = (up - down) / (2 * EPS)
        g = grads[pname]
        assert g.shape == value.shape and g.dtype == np.float64
        if pname.endswith(ZERO_GRADIENTS):
            assert np.abs(g).max() < 1e-14 and np.abs(fd).max() < 1e-8, f"{name} {pname}: gradient not 0"
            continue
        scale = max(np.linalg.norm(g), np.linalg.norm(fd))
        assert scale > 1e-6, f"{name} {pname}: zero gradient, nothing checked"
        rel = np.linalg.norm(g - fd) / scale
        assert rel < 1e-6, f"{name} {pname}: analytic vs finite-difference gradient, relative error {rel:.2e}"
        worst, worst_name = max((worst, worst_name), (rel, pname))
    print(f"\n{name}: worst relative error of the analytic gradient to central differences {worst:.1e} ({worst_name})")


def test_convolution_and_pooling_are_the_definitions():
    rng = np.random.default_rng(0)
    x, k, b = rng.normal(size=(2, 5, 4, 3)), rng.normal(size=(3, 3, 3, 2)), rng.normal(size=2)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    want = np.zeros((2, 5, 4, 2))
    for n, i, j, o in np.ndindex(want.shape):  # cross-correlation, zero "same" padding, stride 1
        want[n, i, j, o] = b[o] + np.sum(xp[n, i : i + 3, j : j + 3, :] * k[:, :, :, o])
    got, _ = reference.conv2d(x, k, b)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)

    pooled, idx = reference.maxpool2(x)  # 5x4 -> 2x2: the last row is floored off
    np.testing.assert_array_equal(pooled, x[:, :4].reshape(2, 2, 2, 2, 2, 3).max(axis=(2, 4)))
    ties = np.zeros((1, 2, 2, 1))
    _, idx = reference.maxpool2(ties)
    grad = reference.maxpool2_backward(np.ones((1, 1, 1, 1)), idx, ties.shape)
    np.testing.assert_array_equal(grad[0, :, :, 0], [[1, 0], [0, 0]])  # a tie goes to the first maximum


@pytest.mark.parametrize("model", ["gru", "transformer"])
def test_sequence_models_train_with_sgd_on_the_bundles_batches(model):
    # train() reads the bundle's (N, T * D) rows as (N, T, D) sequences, in its batch order, and
    # steps p - lr * g with the gradients checked above: replayed here one step at a time.
    config = RunConfig.build(model=model, dataset="adding", seq_len=5, n_samples=200, hidden=(6,), epochs=1,
                             batch_size=16, optimizer="sgd", lr=0.1)  # fmt: skip
    reference.check_config(config)
    bundle = prepare(config)
    run = reference.train(config, steps=3, bundle=bundle, evaluate=False)
    assert run.losses.dtype == np.float64 and np.isfinite(run.losses).all()
    params = reference.as_float64(bundle.weights)
    x, y = bundle.data.x_train, bundle.data.y_train
    for s, idx in enumerate(bundle.order.epoch(0)[:3]):
        assert run.losses[s] == pytest.approx(cross_entropy(reference.forward(bundle.spec, params, x[idx]), y[idx]), rel=1e-13)
        params = reference.sgd_step(params, reference.loss_and_grads(bundle.spec, params, x[idx], y[idx])[1], config.lr)
    assert list(run.weights) == list(bundle.spec.shapes())
    for name, value in params.items():
        np.testing.assert_allclose(run.weights[name], value, rtol=1e-13, atol=1e-15, err_msg=name)
        assert not np.array_equal(value, bundle.weights[name]), f"{model} {name}: not trained"


# ------------------------------------------------------------------------------------ frameworks

#: Settings of the parity test (``tests/test_same_model.py``'s ``PARITY``), one epoch of digits
#: (39 steps of 32 samples), no latency phases, nothing stored.
AGREEMENT = dict(dataset="digits", epochs=1, batch_size=32, optimizer="sgd", lr=0.05, log_every=1, device="cpu",
                 latency_steps=0, mode="eager")  # fmt: skip
STEPS = 20
MODELS = {
    "logreg": dict(model="logreg"),
    "mlp-relu": dict(model="mlp", hidden=(64, 64), activation="relu"),
    "mlp-tanh": dict(model="mlp", hidden=(64, 64), activation="tanh"),
    "cnn": dict(model="cnn"),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_every_framework_follows_the_float64_reference(name):
    kwargs = {**AGREEMENT, **MODELS[name]}
    frameworks = list(DL_FRAMEWORKS) + (["sklearn"] if kwargs["model"] != "cnn" else [])
    config = RunConfig.build(frameworks=frameworks, **kwargs)
    ref = reference.train(config, steps=STEPS)
    assert list(ref.steps) == list(range(1, STEPS + 1))
    assert ref.losses.dtype == np.float64 and np.isfinite(ref.losses).all()
    assert ref.losses[-1] < ref.losses[0], f"{name}: the reference did not learn in {STEPS} steps"

    result = compare(config, store=False)
    assert [r.status for r in result.runs] == ["ok"] * len(frameworks), [(r.framework, r.status, r.reason) for r in result.runs]
    diffs = reference.relative_differences(ref, result)
    report = {r.framework: float(diffs[r.label].max()) for r in result.runs}
    print(f"\n{name}: max relative loss difference to the float64 reference over {STEPS} steps: "
          + ", ".join(f"{fw} {d:.2e}" for fw, d in report.items()))  # fmt: skip
    for r in result.runs:
        d = diffs[r.label]
        assert len(d) == STEPS, f"{r.framework} logged {len(d)} of the reference's {STEPS} steps"
        tol = RTOL_SKLEARN if r.framework == "sklearn" else RTOL
        step = int(np.argmax(~(d <= tol)))
        assert (d <= tol).all(), (
            f"reference: {r.framework} {name} step {step + 1}: relative difference {d[step]:.2e} > {tol:g} "
            f"(max over {STEPS} steps {report[r.framework]:.2e})"
        )


def test_reference_matches_the_bundle_it_is_given():
    # train() prepares the same bundle a comparison's children load: same first batch, same start.
    config = RunConfig.build(model="logreg", **{**AGREEMENT, "epochs": 2})
    bundle = prepare(config)
    run = reference.train(config, bundle=bundle, evaluate=True)
    assert len(run.losses) == bundle.total_steps == 2 * bundle.steps_per_epoch
    first = bundle.order.epoch(0)[0]
    logits = bundle.data.x_train[first].astype(np.float64) @ bundle.weights["dense_0/kernel"] + bundle.weights["dense_0/bias"]
    assert run.losses[0] == pytest.approx(cross_entropy(logits, bundle.data.y_train[first]), rel=1e-12)
    assert list(run.weights) == list(bundle.spec.shapes())
    assert all(w.dtype == np.float64 for w in run.weights.values())
    assert 0.8 <= run.test_accuracy <= 1.0
    with pytest.raises(ValueError, match="steps must be between 1 and"):
        reference.train(config, steps=bundle.total_steps + 1, bundle=bundle)


# ------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_an_optimizer_other_than_sgd_is_a_config_error_naming_the_field(optimizer):
    config = RunConfig.build(model="mlp", dataset="digits", optimizer=optimizer)
    with pytest.raises(ConfigError, match="sgd") as info:
        reference.train(config)
    assert info.value.field == "optimizer"
    assert optimizer in info.value.message


def test_a_model_the_reference_cannot_train_is_a_config_error_naming_the_field():
    gbdt = RunConfig.build(model="gbdt", dataset="digits", frameworks=["sklearn"], optimizer="sgd")
    with pytest.raises(ConfigError, match="gbdt") as info:
        reference.check_config(gbdt)
    assert info.value.field == "model"
    odd = RunConfig.build(model="transformer", dataset="adding", hidden=(15,), optimizer="sgd")
    with pytest.raises(ConfigError, match="multiple of its 2 heads") as info:
        reference.check_config(odd)
    assert info.value.field == "hidden"
