"""A NumPy float64 reference implementation of every model and of SGD: the ground truth for parity.

The frameworks are compared with each other (``parity.py``, ``tests/test_same_model.py``), which
cannot catch a mistake they all share: a wrong learning-rate scaling, a summed instead of averaged
loss, a transposed kernel in the canonical layout. This module computes the same run a second way,
by hand, in float64: forward pass, mean softmax cross-entropy, hand-written backward pass and the
plain SGD update, on the same batches in the same order from the same initial weights
(``docs/architecture.md``, "Conventions that make the frameworks comparable"). Float32 frameworks
should then agree with it to about float32 rounding (``tests/test_reference.py``).

The conventions followed, as the adapters implement them (``frameworks/<name>/``):

* **Start**: :func:`mlx_explore.models.init_weights` (float32, canonical layout: dense kernel
  ``(in, out)``, conv kernel ``(kh, kw, c_in, c_out)``), converted exactly to float64.
* **Data and order**: :func:`mlx_explore.bundle.prepare` (the same split, scaling and
  :class:`~mlx_explore.data.BatchOrder`); the float32 features are converted exactly to float64.
* **Models** (``models.py``): ``logreg`` = one dense layer; ``mlp`` = dense layers with one
  activation (``relu``, ``tanh``, ``sigmoid``), then the logits layer; ``cnn`` = conv3x3(same) -
  ReLU - maxpool2 - conv3x3(same) - ReLU - maxpool2 - flatten in NHWC ``(H, W, C)`` order - dense
  - ReLU - logits. Convolutions are cross-correlations (no kernel flip), stride 1, "same" zero
  padding split as TensorFlow/XLA split it (``(k - 1) // 2`` before, the rest after; PyTorch's
  ``padding="same"`` is the same split); max pooling is 2x2, stride 2, floors odd sizes, and sends
  the gradient of a window to its first maximum in row-major order, as PyTorch and TensorFlow do.
  ReLU's derivative at 0 is 0, as in every framework. ``gru`` = one GRU layer over the ``T``
  steps from a zero state, gates r, z, n in the "reset after" form, then the logits of the last
  hidden state; ``transformer`` = dense embedding plus learned positions, pre-norm blocks ``x +
  MHA(LN(x))``, ``x + FFN(LN(x))`` (no mask, no dropout), a final layer norm, the mean over ``T``,
  the logits (``models.py``'s docstring defines both). Layer norms use the biased variance and
  :data:`~mlx_explore.models.LN_EPS` inside the square root, as every framework does.
* **Loss**: mean over the batch of the softmax cross-entropy of the logits (PyTorch
  ``F.cross_entropy``, Optax ``softmax_cross_entropy_with_integer_labels(...).mean()``, Keras
  ``SparseCategoricalCrossentropy(from_logits=True)``); binary tasks use two logits. No L2 term
  (scikit-learn runs with ``alpha=0``).
* **Update**: ``p <- p - lr * g`` for every parameter (``torch.optim.SGD``, ``optax.sgd``,
  ``keras.optimizers.SGD``, scikit-learn's ``sgd`` solver with ``momentum=0``).
* **Curve**: the loss of step ``s`` (1-based, counted across epochs: ``e * steps_per_epoch + i +
  1``, as ``frameworks.common.train`` numbers ``Comparison.curves``) is the loss of batch ``s`` under
  the weights *before* that step's update.

Formulas and their sources:

* Softmax cross-entropy and its gradient: ``L = -(1/N) sum_n log softmax(z_n)[y_n]``, ``dL/dz =
  (softmax(z) - onehot(y)) / N`` (Goodfellow, Bengio & Courville, *Deep Learning*, 2016, sec. 6.2.2.3;
  Bishop, *Pattern Recognition and Machine Learning*, 2006, eq. 4.109). Log-softmax is shifted by
  the row maximum (the same as ``metrics.log_softmax``).
* Dense layer ``Z = A W + b``: ``dW = A^T dZ``, ``db = sum_n dZ``, ``dA = dZ W^T`` (backpropagation,
  Rumelhart, Hinton & Williams, 1986; *Deep Learning* sec. 6.5).
* Activations: ``relu' = [z > 0]``, ``tanh' = 1 - tanh^2``, ``sigmoid' = s (1 - s)``.
* Convolution as a matrix product of the unrolled input patches (im2col: Chellapilla, Puri &
  Simard, "High Performance Convolutional Neural Networks for Document Processing", 2006): patches
  from ``numpy.lib.stride_tricks.sliding_window_view``; the kernel gradient is ``cols^T dY``, the
  input gradient scatters ``dY K^T`` back onto the padded input (col2im), ``kh * kw`` slice-adds.
* GRU (Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder for Statistical
  Machine Translation", EMNLP 2014, sec. 2.3, eqs. 5-8, which reset ``h`` before multiplying by
  ``U_n``), here in the "reset after" form of cuDNN, PyTorch and Keras ``reset_after=True``
  (https://pytorch.org/docs/stable/generated/torch.nn.GRU.html):
  ``r = s(x W_r + b_r + h U_r + c_r)``, ``z = s(x W_z + b_z + h U_z + c_z)``, ``n = tanh(x W_n +
  b_n + r * (h U_n + c_n))``, ``h' = (1 - z) n + z h``. Its gradient is backpropagation through
  time (Werbos, "Backpropagation Through Time: What It Does and How to Do It", Proc. IEEE 1990;
  *Deep Learning* sec. 10.2.2): the chain rule through the unrolled steps, last step first, the
  ``dL/dh`` of a step carried to the one before (``dh_prev = z dh + dG_h U^T``) and the shared
  weights' gradients summed over the steps.
* Layer norm (Ba, Kiros & Hinton, "Layer Normalization", 2016, eqs. 3-4, the statistics over the
  features of each position): ``x^ = (x - mean) / sqrt(var + eps)``, ``y = x^ g + b``; its input
  gradient ``dx = (dx^ - mean(dx^) - x^ mean(dx^ x^)) / sqrt(var + eps)`` with ``dx^ = dy g`` is
  the batch-norm derivation of Ioffe & Szegedy (ICML 2015, sec. 3) with the mean over features in
  place of the batch.
* Multi-head scaled dot-product attention (Vaswani et al., "Attention Is All You Need", NeurIPS
  2017, sec. 3.2.1-3.2.2): ``P = softmax(q k^T / sqrt(d_head))`` per head, ``heads = P v``, joined
  by the output kernel. Softmax's Jacobian ``dP_i/ds_j = P_i ([i = j] - P_j)`` (Bishop 2006,
  eq. 4.106) gives ``dS = P * (dP - sum_k dP_k P_k)`` row by row; the products are backpropagated
  as dense layers are. The pre-norm arrangement (LN inside the residual branch, a final LN) is
  Xiong et al., "On Layer Normalization in the Transformer Architecture", ICML 2020; a residual
  ``a + f(a)`` passes ``da`` to ``a`` unchanged and adds ``f``'s input gradient. Mean pooling over
  ``T`` sends ``dL/dpooled / T`` to every step.

Everything here is NumPy and ``mlx_explore``'s own modules; no framework is imported
(``tests/test_layering.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .config import SEQUENCE_MODELS, ConfigError, RunConfig
from .metrics import loss_and_accuracy
from .models import LN_EPS, TRANSFORMER_HEADS, ModelSpec

if TYPE_CHECKING:  # pragma: no cover
    from .bundle import Bundle

#: Optimizers the reference implements (``RunConfig.optimizer``).
OPTIMIZERS = ("sgd",)
#: Model kinds it implements, forward and backward (every ``RunConfig`` model but ``gbdt``, whose
#: trees are grown from the data rather than trained by SGD), and the MLP activations.
MODELS = ("logreg", "mlp", "cnn", "gru", "transformer")
#: Models whose forward pass (:func:`forward`, the first-batch logits) the reference computes: the
#: same as :data:`MODELS` now that the sequence models have their backward passes too.
FORWARD_MODELS = MODELS
ACTIVATIONS = ("relu", "tanh", "sigmoid")
#: Rows per forward pass when the test split is evaluated (bounds the im2col buffers: a 28x28x32
#: feature map unrolled for a 3x3 kernel is about 1.8 MB a sample in float64).
EVAL_ROWS = 256

Params = dict[str, np.ndarray]


# ------------------------------------------------------------------------------------ results


@dataclass
class ReferenceRun:
    """What :func:`train` returns.

    Attributes:
        config: the run's config.
        spec: the model.
        steps: ``int64 (n,)``, the step numbers ``1..n`` (the numbering of ``Comparison.curves``).
        losses: ``float64 (n,)``, the training loss of each step [nats], before its update. A
            non-finite value (divergence) is recorded as it came; training is not stopped.
        weights: ``{name: float64 array}`` after the last step, canonical names, layout and order
            (:meth:`ModelSpec.shapes`).
        test_accuracy: accuracy on the test split with the final weights [fraction], or ``None``
            when ``train(..., evaluate=False)``.
        test_loss: mean cross-entropy on the test split [nats], or ``None`` likewise.
    """

    config: RunConfig
    spec: ModelSpec
    steps: np.ndarray
    losses: np.ndarray
    weights: Params
    test_accuracy: float | None = None
    test_loss: float | None = None


# ------------------------------------------------------------------------------------ checks


def check_config(config: RunConfig) -> None:
    """Raise if the reference cannot compute ``config``'s run.

    Only the fields that define the maths matter: ``model``, ``activation``, ``optimizer``, ``lr``,
    ``hidden``, the data set fields, ``batch_size``, ``epochs`` and ``seed``. Fields that only say
    how a framework runs (``frameworks``, ``device``, ``mode``, ``precision``, ``threads``,
    ``repeat``, ``deterministic``, ``latency_steps``, ``profile_steps``, ``log_every``,
    ``timeout_s``) do not change the reference, which always computes in float64 on the CPU.
    (A ``bf16`` framework run is then compared with the exact arithmetic it approximates.)

    Raises:
        ConfigError: ``optimizer`` is not one of :data:`OPTIMIZERS` (field ``optimizer``);
            ``model`` or ``activation`` unknown to the reference (fields ``model``, ``activation``);
            a ``transformer`` whose width ``hidden[0]`` is not a multiple of its heads (``hidden``).
    """
    if config.optimizer not in OPTIMIZERS:
        raise ConfigError(
            "optimizer",
            f"the NumPy reference implements plain SGD only; got {config.optimizer!r}, allowed: {', '.join(OPTIMIZERS)}",
        )
    if config.model not in MODELS:
        raise ConfigError("model", f"the NumPy reference has no {config.model!r}; allowed: {', '.join(MODELS)}")
    if config.model == "mlp" and config.activation not in ACTIVATIONS:
        raise ConfigError(
            "activation", f"the NumPy reference has no {config.activation!r}; allowed: {', '.join(ACTIVATIONS)}"
        )
    if config.model == "transformer" and config.hidden[0] % TRANSFORMER_HEADS:
        raise ConfigError(
            "hidden", f"the transformer's width {config.hidden[0]} must be a multiple of its {TRANSFORMER_HEADS} heads"
        )


def _check_spec(spec: ModelSpec, allowed: tuple[str, ...] = MODELS) -> None:
    if spec.kind not in allowed:
        raise ValueError(f"unknown model kind {spec.kind!r}; allowed: {', '.join(allowed)}")
    if spec.kind == "mlp" and spec.activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {spec.activation!r}; allowed: {', '.join(ACTIVATIONS)}")
    if spec.kind == "cnn" and spec.image_shape is None:
        raise ValueError("a cnn spec needs image_shape (H, W, C)")
    if spec.kind in SEQUENCE_MODELS and spec.seq_shape is None:
        raise ValueError(f"a {spec.kind} spec needs seq_shape (T, D)")


def as_float64(weights: dict[str, np.ndarray]) -> Params:
    """``{name: float64 copy}`` of ``weights`` (float32 converts exactly)."""
    return {k: np.array(v, dtype=np.float64) for k, v in weights.items()}


def _f64(weights: dict[str, np.ndarray]) -> Params:
    """``weights`` in float64, copying only what is not float64 already (read-only use)."""
    return {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}


# ------------------------------------------------------------------------------------ layers


def _activation(name: str, z: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    # Logistic sigmoid, written so that neither branch overflows: 1/(1+e^-z) for z >= 0,
    # e^z/(1+e^z) for z < 0 (the same value).
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _activation_grad(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d activation / dz at pre-activation ``z`` with output ``a`` (ReLU: 0 at z == 0)."""
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "tanh":
        return 1.0 - a * a
    return a * (1.0 - a)


def same_padding(k: int) -> tuple[int, int]:
    """Zero padding ``(before, after)`` of a stride-1 "same" convolution with kernel side ``k``:
    ``((k - 1) // 2, k - 1 - (k - 1) // 2)``, as TensorFlow and XLA pad ("SAME"), and PyTorch's
    ``padding="same"``."""
    return (k - 1) // 2, k - 1 - (k - 1) // 2


def im2col(x: np.ndarray, k: int) -> np.ndarray:
    """Patches of a stride-1 "same" convolution, unrolled.

    Args:
        x: ``(N, H, W, C)`` NHWC input.
        k: kernel side.

    Returns:
        ``(N * H * W, k * k * C)``, a new array; row ``(n, i, j)`` holds the ``k x k x C`` patch
        (zero padded, :func:`same_padding`) whose top-left corner is at ``(i - before, j - before)``,
        in ``(kh, kw, c)`` order: the order of a canonical kernel ``(kh, kw, c_in, c_out)`` reshaped to
        ``(k * k * c_in, c_out)``.
    """
    n, h, w, c = x.shape
    lo, hi = same_padding(k)
    xp = np.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))  # (N, H, W, C, k, k), a view
    return win.transpose(0, 1, 2, 4, 5, 3).reshape(n * h * w, k * k * c)


def col2im(dcols: np.ndarray, shape: tuple[int, int, int, int], k: int) -> np.ndarray:
    """The adjoint of :func:`im2col`: add every patch row of ``dcols`` ``(N * H * W, k * k * C)``
    back onto its place in the padded input and crop the padding; returns ``(N, H, W, C)``."""
    n, h, w, c = shape
    lo, hi = same_padding(k)
    d = dcols.reshape(n, h, w, k, k, c)
    dxp = np.zeros((n, h + lo + hi, w + lo + hi, c), dcols.dtype)
    for i in range(k):
        for j in range(k):
            dxp[:, i : i + h, j : j + w, :] += d[:, :, :, i, j, :]
    return dxp[:, lo : lo + h, lo : lo + w, :]


def conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stride-1 "same" cross-correlation: ``y[n,i,j,o] = b[o] + sum_{a,b,c} xpad[n,i+a,j+b,c] K[a,b,c,o]``.

    Args:
        x: ``(N, H, W, C_in)``.
        kernel: ``(k, k, C_in, C_out)`` (canonical HWIO layout).
        bias: ``(C_out,)``.

    Returns:
        ``(y, cols)``: ``y`` ``(N, H, W, C_out)`` and the :func:`im2col` matrix (kept for the backward pass).
    """
    k, _, c_in, c_out = kernel.shape
    cols = im2col(x, k)
    y = cols @ kernel.reshape(k * k * c_in, c_out) + bias
    return y.reshape(*x.shape[:3], c_out), cols


def conv2d_backward(dy: np.ndarray, cols: np.ndarray, kernel: np.ndarray, x_shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv2d` given ``dL/dy`` ``(N, H, W, C_out)``: ``(dx, dkernel, dbias)``
    with the shapes of ``x``, ``kernel`` and ``bias``."""
    k, _, c_in, c_out = kernel.shape
    dy2 = dy.reshape(-1, c_out)
    dkernel = (cols.T @ dy2).reshape(kernel.shape)
    dbias = dy2.sum(axis=0)
    dx = col2im(dy2 @ kernel.reshape(k * k * c_in, c_out).T, x_shape, k)
    return dx, dkernel, dbias


def maxpool2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x2 max pooling, stride 2, odd trailing rows/columns dropped (floor).

    Args:
        x: ``(N, H, W, C)``.

    Returns:
        ``(y, argmax)``: ``y`` ``(N, H // 2, W // 2, C)``; ``argmax`` ``int (N, H // 2, W // 2, C)``,
        the index ``2 * di + dj`` of the first maximum of each window (row-major), for the backward pass.
    """
    n, h, w, c = x.shape
    h2, w2 = h // 2, w // 2
    win = x[:, : 2 * h2, : 2 * w2, :].reshape(n, h2, 2, w2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(n, h2, w2, c, 4)
    idx = win.argmax(axis=-1)  # first maximum on ties
    return np.take_along_axis(win, idx[..., None], axis=-1)[..., 0], idx


def maxpool2_backward(dy: np.ndarray, idx: np.ndarray, x_shape) -> np.ndarray:
    """Gradient of :func:`maxpool2`: each window's ``dy`` goes to its first maximum, the rest (and
    any floored-off row or column) get 0. Returns ``x_shape``."""
    n, h, w, c = x_shape
    h2, w2 = h // 2, w // 2
    dwin = (np.arange(4) == idx[..., None]) * dy[..., None]  # (N, h2, w2, C, 4)
    dx = np.zeros(x_shape, dy.dtype)
    dx[:, : 2 * h2, : 2 * w2, :] = dwin.reshape(n, h2, w2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(n, 2 * h2, 2 * w2, c)
    return dx


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, shifted by the row maximum (``metrics.log_softmax`` without the cast)."""
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


# ------------------------------------------------------------------------------------ model


def _inputs(spec: ModelSpec, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if spec.kind == "cnn" and x.ndim == 2:
        x = x.reshape(x.shape[0], *spec.image_shape)
    if spec.seq_shape is not None and x.ndim == 2:
        x = x.reshape(x.shape[0], *spec.seq_shape)
    return x


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + exp(-z)), without overflow


def _rows(a: np.ndarray) -> np.ndarray:
    """``a`` with every axis but the last folded into rows, ``(-1, a.shape[-1])``."""
    return a.reshape(-1, a.shape[-1])


def gru_forward(params: Params, x: np.ndarray, tape: list | None = None) -> np.ndarray:
    """Last hidden state ``(N, H)`` of the canonical GRU on ``x`` ``(N, T, D)`` from ``h = 0``.

    Gates r, z, n in that order along the ``3H`` axis; "reset after" form (Cho et al., 2014;
    https://pytorch.org/docs/stable/generated/torch.nn.GRU.html):
    ``r = s(x W_r + b_r + h U_r + c_r)``, ``z = s(x W_z + b_z + h U_z + c_z)``,
    ``n = tanh(x W_n + b_n + r * (h U_n + c_n))``, ``h' = (1 - z) * n + z * h``.

    Args:
        params: the canonical ``gru/*`` parameters (float64).
        x: ``(N, T, D)``.
        tape: if a list, each step appends ``(h, r, z, n, h U_n + c_n)`` (``h`` the state it
            started from), in time order, for :func:`gru_backward`.
    """
    w, u, b, c = (params[f"gru/{k}"] for k in ("kernel", "recurrent_kernel", "bias", "recurrent_bias"))
    hsz = u.shape[0]
    h = np.zeros((x.shape[0], hsz))
    for t in range(x.shape[1]):
        gx, gh = x[:, t] @ w + b, h @ u + c
        r = _sigmoid(gx[:, :hsz] + gh[:, :hsz])
        z = _sigmoid(gx[:, hsz : 2 * hsz] + gh[:, hsz : 2 * hsz])
        n = np.tanh(gx[:, 2 * hsz :] + r * gh[:, 2 * hsz :])
        if tape is not None:
            tape.append((h, r, z, n, gh[:, 2 * hsz :]))
        h = (1.0 - z) * n + z * h
    return h


def gru_backward(params: Params, x: np.ndarray, tape: list, dh: np.ndarray) -> Params:
    """Gradients of the ``gru/*`` parameters given ``dL/dh_T`` ``(N, H)`` of the last state, by
    backpropagation through time (Werbos, 1990; *Deep Learning* sec. 10.2.2).

    For each step, last first, with ``G_x = x W + b`` and ``G_h = h U + c`` (gates r, z, n):
    ``dn^ = dh (1 - z) (1 - n^2)`` (``n^`` the pre-activation of ``n``), ``dz^ = dh (h - n) z (1 - z)``,
    ``dr^ = dn^ (h U_n + c_n) r (1 - r)``; ``dG_x = [dr^, dz^, dn^]``, ``dG_h = [dr^, dz^, r dn^]``;
    ``dU += h^T dG_h``, ``dc += sum_n dG_h``, and the previous state gets ``dh <- z dh + dG_h U^T``.
    ``dW = sum_t x_t^T dG_x(t)`` and ``db = sum_{n,t} dG_x`` are taken at the end, over all steps at once.

    Args:
        params: as :func:`gru_forward` was given.
        x: ``(N, T, D)``, the input of that forward pass.
        tape: the list :func:`gru_forward` filled.
        dh: ``(N, H)``.

    Returns:
        ``{"gru/kernel", "gru/recurrent_kernel", "gru/bias", "gru/recurrent_bias": float64 array}``.
    """
    u = params["gru/recurrent_kernel"]
    dgx = np.empty((x.shape[0], len(tape), u.shape[1]))
    du, dc = np.zeros_like(u), np.zeros(u.shape[1])
    for t in reversed(range(len(tape))):
        h, r, z, n, ghn = tape[t]
        dn = dh * (1.0 - z) * (1.0 - n * n)
        dz = dh * (h - n) * z * (1.0 - z)
        dr = dn * ghn * r * (1.0 - r)
        dgx[:, t] = np.concatenate([dr, dz, dn], axis=1)
        dgh = np.concatenate([dr, dz, r * dn], axis=1)
        du += h.T @ dgh
        dc += dgh.sum(axis=0)
        dh = z * dh + dgh @ u.T
    dgx = _rows(dgx)
    return {"gru/kernel": _rows(x).T @ dgx, "gru/recurrent_kernel": du, "gru/bias": dgx.sum(axis=0), "gru/recurrent_bias": dc}


def layer_norm(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, eps: float = LN_EPS,
               tape: list | None = None) -> np.ndarray:  # fmt: skip
    """``(x - mean) / sqrt(var + eps) * scale + bias`` over the last axis (biased variance, as every
    framework computes it; Ba, Kiros & Hinton, 2016).

    Args:
        tape: if a list, ``(x^, sqrt(var + eps))`` is appended for :func:`layer_norm_backward`.
    """
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    sd = np.sqrt(var + eps)
    xhat = (x - mu) / sd
    if tape is not None:
        tape.append((xhat, sd))
    return xhat * scale + bias


def layer_norm_backward(dy: np.ndarray, scale: np.ndarray, saved: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`layer_norm` given ``dL/dy``: ``(dx, dscale, dbias)``.

    ``dscale = sum x^ dy``, ``dbias = sum dy`` (over every axis but the last); with ``g = dy * scale``,
    ``dx = (g - mean(g) - x^ mean(g x^)) / sqrt(var + eps)``, the means over the last axis (module
    docstring: Ba et al., 2016; Ioffe & Szegedy, 2015, sec. 3).

    Args:
        saved: the ``(x^, sqrt(var + eps))`` its ``tape`` received.
    """
    xhat, sd = saved
    axes = tuple(range(dy.ndim - 1))
    g = dy * scale
    dx = (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True)) / sd
    return dx, (dy * xhat).sum(axis=axes), dy.sum(axis=axes)


def attention(params: Params, prefix: str, x: np.ndarray, tape: list | None = None) -> np.ndarray:
    """Multi-head scaled dot-product self-attention of ``x`` ``(N, T, d)`` with the per-head
    canonical kernels (``models.py``): ``softmax(q k^T / sqrt(d_head)) v``, heads joined by the
    output kernel (Vaswani et al., 2017, sec. 3.2).

    Args:
        tape: if a list, ``(x, q, k, v, P, heads)`` is appended for :func:`attention_backward`
            (``P`` ``(N, heads, T, T)`` the softmax weights, ``heads`` ``(N, T, heads, d_head)``).
    """
    q, k, v = (np.einsum("ntd,dhe->nthe", x, params[f"{prefix}/{p}/kernel"]) + params[f"{prefix}/{p}/bias"]
               for p in ("query", "key", "value"))  # fmt: skip
    scores = np.einsum("nqhe,nkhe->nhqk", q, k) / np.sqrt(q.shape[-1])
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=-1, keepdims=True)
    heads = np.einsum("nhqk,nkhe->nqhe", weights, v)
    if tape is not None:
        tape.append((x, q, k, v, weights, heads))
    return np.einsum("nqhe,hed->nqd", heads, params[f"{prefix}/out/kernel"]) + params[f"{prefix}/out/bias"]


def attention_backward(params: Params, prefix: str, dout: np.ndarray, saved: tuple) -> tuple[np.ndarray, Params]:
    """Gradients of :func:`attention` given ``dL/dout`` ``(N, T, d)``: ``(dx, {name: gradient})``
    for the ``{prefix}/*`` kernels and biases.

    ``dheads = dout W_o^T`` per head; ``dP = dheads v^T``, ``dv = P^T dheads``; through the softmax
    ``dS = P * (dP - sum_k dP P)`` (module docstring), scaled by ``1 / sqrt(d_head)``; ``dq = dS k``,
    ``dk = dS^T q``; the three projections are dense layers of ``x``, whose input gradients add up.

    Args:
        saved: the tuple its ``tape`` received.
    """
    x, q, k, v, p, heads = saved
    n, t, d = x.shape
    wo = params[f"{prefix}/out/kernel"]
    nh, dh = wo.shape[:2]
    grads = {f"{prefix}/out/kernel": (_rows(heads.reshape(n, t, nh * dh)).T @ _rows(dout)).reshape(wo.shape),
             f"{prefix}/out/bias": dout.sum(axis=(0, 1))}  # fmt: skip
    dheads = (dout @ wo.reshape(nh * dh, d).T).reshape(n, t, nh, dh)
    dp = np.einsum("nqhe,nkhe->nhqk", dheads, v)
    dv = np.einsum("nhqk,nqhe->nkhe", p, dheads)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True)) / np.sqrt(dh)
    dq = np.einsum("nhqk,nkhe->nqhe", ds, k)
    dk = np.einsum("nhqk,nqhe->nkhe", ds, q)
    dx = np.zeros_like(x)
    for name, dy in (("query", dq), ("key", dk), ("value", dv)):
        kernel = params[f"{prefix}/{name}/kernel"].reshape(d, nh * dh)
        dy = dy.reshape(n, t, nh * dh)
        grads[f"{prefix}/{name}/kernel"] = (_rows(x).T @ _rows(dy)).reshape(d, nh, dh)
        grads[f"{prefix}/{name}/bias"] = dy.sum(axis=(0, 1)).reshape(nh, dh)
        dx += dy @ kernel.T
    return dx, grads


def transformer_forward(spec: ModelSpec, params: Params, x: np.ndarray, tape: dict | None = None) -> np.ndarray:
    """Mean-pooled output ``(N, d)`` of the canonical pre-norm encoder on ``x`` ``(N, T, D)``
    (``models.py``; Vaswani et al., 2017; Xiong et al., 2020): embedding + positions, ``spec.layers``
    blocks of ``x + MHA(LN(x))`` and ``x + FFN(LN(x))`` (FFN: dense, ReLU, dense), the final layer
    norm, the mean over ``T``.

    Args:
        tape: if a dict, it receives what :func:`transformer_backward` needs: ``x``, ``blocks`` (per
            block: its two layer norms', its attention's and its FFN's saved values) and ``ln_f``.
    """
    a = x @ params["embed/kernel"] + params["embed/bias"] + params["pos/embedding"]
    blocks = []
    for i in range(spec.layers):
        b = f"block_{i}"
        saved: list = []  # ln_1, attention, ln_2, then (FFN input, pre-ReLU, post-ReLU)
        hdn = layer_norm(a, params[f"{b}/ln_1/scale"], params[f"{b}/ln_1/bias"], tape=saved)
        a = a + attention(params, f"{b}/attn", hdn, saved)
        hdn = layer_norm(a, params[f"{b}/ln_2/scale"], params[f"{b}/ln_2/bias"], tape=saved)
        pre = hdn @ params[f"{b}/ffn_0/kernel"] + params[f"{b}/ffn_0/bias"]
        act = np.maximum(pre, 0.0)
        saved.append((hdn, pre, act))
        a = a + act @ params[f"{b}/ffn_1/kernel"] + params[f"{b}/ffn_1/bias"]
        blocks.append(saved)
    final: list = []
    out = layer_norm(a, params["ln_f/scale"], params["ln_f/bias"], tape=final).mean(axis=1)
    if tape is not None:
        tape.update(x=x, blocks=blocks, ln_f=final[0])
    return out


def transformer_backward(spec: ModelSpec, params: Params, tape: dict, dpooled: np.ndarray) -> Params:
    """Gradients of the transformer's parameters (all but ``dense_0``) given ``dL/dpooled`` ``(N, d)``.

    Backwards through :func:`transformer_forward`: the mean over ``T`` gives every step
    ``dpooled / T``; the final layer norm; each block, last first, ``a2 = a1 + FFN(LN_2(a1))`` then
    ``a1 = a + MHA(LN_1(a))``, the residual passing ``da`` straight through and the branch's input
    gradient added to it (:func:`layer_norm_backward`, :func:`attention_backward`, dense and ReLU as
    in the module docstring); then the embedding ``x W_e + b_e + P``: ``dW_e = x^T da``,
    ``db_e = sum_{n,t} da``, ``dP = sum_n da``.

    Args:
        tape: the dict :func:`transformer_forward` filled.
        dpooled: ``(N, d)``.
    """
    x = tape["x"]
    t = x.shape[1]
    grads: Params = {}
    do = np.broadcast_to(dpooled[:, None, :] / t, (dpooled.shape[0], t, dpooled.shape[1]))
    da, grads["ln_f/scale"], grads["ln_f/bias"] = layer_norm_backward(do, params["ln_f/scale"], tape["ln_f"])
    for i in reversed(range(spec.layers)):
        b = f"block_{i}"
        ln_1, att, ln_2, (hdn, pre, act) = tape["blocks"][i]
        grads[f"{b}/ffn_1/kernel"] = _rows(act).T @ _rows(da)
        grads[f"{b}/ffn_1/bias"] = da.sum(axis=(0, 1))
        dpre = (da @ params[f"{b}/ffn_1/kernel"].T) * (pre > 0)
        grads[f"{b}/ffn_0/kernel"] = _rows(hdn).T @ _rows(dpre)
        grads[f"{b}/ffn_0/bias"] = dpre.sum(axis=(0, 1))
        dx, grads[f"{b}/ln_2/scale"], grads[f"{b}/ln_2/bias"] = layer_norm_backward(
            dpre @ params[f"{b}/ffn_0/kernel"].T, params[f"{b}/ln_2/scale"], ln_2)
        da = da + dx
        du, g = attention_backward(params, f"{b}/attn", da, att)
        grads |= g
        dx, grads[f"{b}/ln_1/scale"], grads[f"{b}/ln_1/bias"] = layer_norm_backward(du, params[f"{b}/ln_1/scale"], ln_1)
        da = da + dx
    grads["embed/kernel"] = _rows(x).T @ _rows(da)
    grads["embed/bias"] = da.sum(axis=(0, 1))
    grads["pos/embedding"] = da.sum(axis=0)
    return grads


def _forward(spec: ModelSpec, params: Params, x: np.ndarray) -> tuple[np.ndarray, list]:
    """Logits and the tape of what the backward pass needs, layer by layer."""
    tape: list = []
    a = x
    if spec.kind == "gru":
        steps: list = []
        a = gru_forward(params, x, steps)
        tape.append(("gru", x, steps))
        layers = [("dense_0", None)]
    elif spec.kind == "transformer":
        saved: dict = {}
        a = transformer_forward(spec, params, x, saved)
        tape.append(("transformer", saved))
        layers = [("dense_0", None)]
    elif spec.kind == "cnn":
        for name in ("conv_0", "conv_1"):
            z, cols = conv2d(a, params[f"{name}/kernel"], params[f"{name}/bias"])
            r = np.maximum(z, 0.0)
            p, idx = maxpool2(r)
            tape.append(("conv", name, a.shape, cols, z, idx))
            a = p
        tape.append(("flatten", a.shape))
        a = a.reshape(a.shape[0], -1)  # NHWC: (H, W, C) order, as the canonical dense_0 rows
        layers = [("dense_0", "relu"), ("dense_1", None)]
    else:
        names = [n for n in spec.layer_names()]
        layers = [(n, spec.activation) for n in names[:-1]] + [(names[-1], None)]
    for name, act in layers:
        z = a @ params[f"{name}/kernel"] + params[f"{name}/bias"]
        out = _activation(act, z) if act else z
        tape.append(("dense", name, a, z, out, act))
        a = out
    return a, tape


def forward(spec: ModelSpec, params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The model's logits, in float64.

    Args:
        spec: the model (:class:`ModelSpec`).
        params: ``{name: array}`` in the canonical layout (:meth:`ModelSpec.shapes`); any float
            dtype, computed in float64.
        x: ``(N, F)`` features, or for the CNN ``(N, F)`` or NHWC ``(N, H, W, C)`` images, for
            ``gru`` and ``transformer`` ``(N, F)`` or ``(N, T, D)`` sequences.

    Returns:
        ``float64 (N, n_classes)`` logits.

    Raises:
        ValueError: the spec's kind or activation is not one the reference implements.
        KeyError: a parameter of the spec is missing from ``params``.
    """
    _check_spec(spec, FORWARD_MODELS)
    return _forward(spec, _f64(params), _inputs(spec, x))[0]


def loss_and_grads(spec: ModelSpec, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
    """Mean softmax cross-entropy of a batch and its gradient for every parameter, in float64.

    Args:
        spec: the model.
        params: canonical ``{name: array}`` (computed in float64).
        x: ``(N, F)`` features, or NHWC images for the CNN, or ``(N, T, D)`` sequences for ``gru``
            and ``transformer`` (``(N, F)`` is reshaped to ``spec``'s image or sequence shape).
        y: ``(N,)`` integer class indices in ``[0, n_classes)``.

    Returns:
        ``(loss, grads)``: ``loss`` [nats], a Python float; ``grads`` ``{name: float64 array}`` with
        each parameter's name and shape, in :meth:`ModelSpec.shapes` order. Formulas in the module
        docstring (softmax-cross-entropy gradient ``(softmax - onehot) / N``, dense and im2col
        convolution backward, max-pool routing to the first maximum, the GRU through time
        (:func:`gru_backward`), the transformer (:func:`transformer_backward`)).

    Raises:
        ValueError: as :func:`forward`; ``x`` and ``y`` differ in length.
    """
    _check_spec(spec)
    p = _f64(params)
    x = _inputs(spec, x)
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} rows, y {len(y)}")
    logits, tape = _forward(spec, p, x)
    n = len(y)
    lp = log_softmax(logits)
    rows = np.arange(n)
    loss = float(-lp[rows, y].mean())
    d = np.exp(lp)
    d[rows, y] -= 1.0
    d /= n  # dL/dlogits of the mean loss
    grads: Params = {}
    for entry in reversed(tape):
        kind = entry[0]
        if kind == "dense":
            _, name, a, z, out, act = entry
            if act:
                d = d * _activation_grad(act, z, out)
            grads[f"{name}/kernel"] = a.T @ d
            grads[f"{name}/bias"] = d.sum(axis=0)
            d = d @ p[f"{name}/kernel"].T
        elif kind == "flatten":
            d = d.reshape(entry[1])
        elif kind == "gru":
            grads |= gru_backward(p, entry[1], entry[2], d)
        elif kind == "transformer":
            grads |= transformer_backward(spec, p, entry[1], d)
        else:  # conv - relu - maxpool
            _, name, x_shape, cols, z, idx = entry
            d = maxpool2_backward(d, idx, z.shape) * (z > 0)
            d, grads[f"{name}/kernel"], grads[f"{name}/bias"] = conv2d_backward(d, cols, p[f"{name}/kernel"], x_shape)
    return loss, {k: grads[k] for k in spec.shapes()}


def sgd_step(params: Params, grads: Params, lr: float) -> Params:
    """Plain SGD: ``p - lr * g`` for every parameter (a new dict; ``params`` is not changed)."""
    return {k: v - lr * grads[k] for k, v in params.items()}


# ------------------------------------------------------------------------------------ training


def train(config: RunConfig, steps: int | None = None, *, bundle: "Bundle | None" = None,
          evaluate: bool = True) -> ReferenceRun:  # fmt: skip
    """Train ``config``'s model with SGD in float64, as every framework does (module docstring).

    Args:
        config: the run; validated by :func:`check_config`.
        steps: training steps to take, ``1..total_steps`` (crossing epochs in order); ``None``:
            the whole run, ``epochs * (n_train // batch_size)``.
        bundle: the prepared inputs (:func:`mlx_explore.bundle.prepare`; default: prepared here
            from ``config``, the same data, weights and batch order a comparison's children get).
        evaluate: compute the test split's accuracy and loss with the final weights.

    Returns:
        :class:`ReferenceRun`: per-step losses (float64, steps ``1..steps``), final weights
        (float64, canonical layout) and, with ``evaluate``, test accuracy and loss.

    Raises:
        ConfigError: the config asks for something the reference does not implement (the field is
            named; :func:`check_config`), or the config cannot be prepared (``bundle.prepare``).
        ValueError: ``steps`` outside ``1..total_steps``.
        DatasetUnavailable: as ``bundle.prepare`` for a download data set that is not cached.
    """
    check_config(config)
    if bundle is None:
        from .bundle import prepare  # noqa: PLC0415 (loads scikit-learn's data only when needed)

        bundle = prepare(config)
    order, spec = bundle.order, bundle.spec
    total = order.total_steps
    n = total if steps is None else int(steps)
    if not 1 <= n <= total:
        raise ValueError(f"steps must be between 1 and the run's {total} training steps (got {steps})")
    x = _inputs(spec, bundle.data.x_train)
    y = bundle.data.y_train
    params = as_float64(bundle.weights)
    losses = np.empty(n, np.float64)
    lr = float(config.lr)
    s = 0
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run records inf/nan, as it comes
        for e in range(order.epochs):
            for idx in order.epoch(e):
                if s == n:
                    break
                losses[s], grads = loss_and_grads(spec, params, x[idx], y[idx])
                params = sgd_step(params, grads, lr)
                s += 1
            if s == n:
                break
    run = ReferenceRun(config=config, spec=spec, steps=np.arange(1, n + 1, dtype=np.int64), losses=losses, weights=params)
    if evaluate:
        xt = _inputs(spec, bundle.data.x_test)
        logits = np.concatenate([_forward(spec, params, xt[i : i + EVAL_ROWS])[0] for i in range(0, len(xt), EVAL_ROWS)])
        m = loss_and_accuracy(logits, bundle.data.y_test)
        run.test_accuracy, run.test_loss = m["accuracy"], m["loss"]
    return run


# ------------------------------------------------------------------------------------ parity


def relative_differences(run: ReferenceRun, source) -> dict[str, np.ndarray]:
    """Per-step relative loss difference of every run of ``source`` against the reference.

    ``|loss_r(s) - loss_ref(s)| / |loss_ref(s)|`` at every step ``s`` both logged (the steps of
    ``run`` only: a framework's later steps are ignored).

    Args:
        run: a :class:`ReferenceRun`.
        source: a ``Comparison``, or a curves DataFrame (``parity.curves_of`` reads either).

    Returns:
        ``{run label: float64 (k,)}``, steps ascending; NaN where a loss is not finite.
    """
    from .parity import curves_of  # noqa: PLC0415 (pandas only when asked)

    curves = curves_of(source)
    ref = dict(zip(run.steps.tolist(), run.losses.tolist()))
    out = {}
    for label in dict.fromkeys(curves["run"].astype(str)):
        part = curves[curves["run"].astype(str) == label].drop_duplicates("step", keep="last")
        part = part[part["step"].isin(ref)].sort_values("step")
        got = part["loss"].to_numpy(np.float64)
        want = np.array([ref[int(s)] for s in part["step"]], np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.abs(got - want) / np.abs(want)
        out[label] = np.where(np.isfinite(rel), rel, np.nan)
    return out


def max_relative_differences(run: ReferenceRun, source) -> dict[str, float]:
    """``{run label: largest relative difference}`` of :func:`relative_differences` (NaN if any
    step's is NaN, or the run logged none of the reference's steps)."""
    return {k: float(v.max()) if len(v) and not np.isnan(v).any() else float("nan")
            for k, v in relative_differences(run, source).items()}  # fmt: skip
