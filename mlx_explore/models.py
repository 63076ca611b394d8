"""Framework-neutral model specs and the canonical initial weights every framework loads.

A :class:`ModelSpec` says what the network is; :func:`init_weights` draws its parameters once, in
NumPy, from the seed. Each ``frameworks/<name>/`` package builds the same network and loads these
arrays, converting layout where it must (docs/architecture.md, "Same start"):

* dense kernel ``(in, out)``, bias ``(out,)``  (PyTorch ``Linear.weight = kernel.T``)
* conv kernel ``(H, W, C_in, C_out)``, bias ``(C_out,)``  (PyTorch ``Conv2d.weight = kernel.transpose(3, 2, 0, 1)``)
* images NHWC; the CNN flattens its last feature map in ``(H, W, C)`` order.
* sequences ``(N, T, D)``, batch first (an image is read row by row: ``T = H``, ``D = W * C``).
* GRU kernels ``(D, 3H)`` and recurrent kernels ``(H, 3H)`` with the gates in PyTorch's order
  **r, z, n** (reset, update, candidate) and two biases of ``3H``, ``bias`` (input side) and
  ``recurrent_bias`` (hidden side), in the "reset after" form of cuDNN, PyTorch and Keras
  ``reset_after=True``: ``n = tanh(x W_n + b_n + r * (h U_n + c_n))``, ``h' = (1 - z) n + z h``
  (https://pytorch.org/docs/stable/generated/torch.nn.GRU.html). Keras orders its gates z, r, h;
  Flax's ``GRUCell`` has no hidden-side biases for r and z: each framework converts on load.
* attention kernels per head, as Flax and Keras hold them: query/key/value ``(d, heads, d_head)``
  with biases ``(heads, d_head)``, output ``(heads, d_head, d)`` with bias ``(d,)``. PyTorch packs
  query, key and value into one ``in_proj_weight (3d, d)``.
* layer norms ``scale``/``bias`` ``(d,)``, epsilon :data:`LN_EPS` = 1e-5 in every framework (the
  defaults differ: PyTorch 1e-5, Flax 1e-6, Keras 1e-3).

Models:

* ``logreg``: softmax regression, one dense layer to ``n_classes`` logits.
* ``mlp``: dense layers of ``hidden`` widths with one activation, then the logits layer.
* ``cnn``: LeNet-style (LeCun et al., 1998): conv3x3(same) - ReLU - maxpool2 - conv3x3(same) -
  ReLU - maxpool2 - flatten - dense - ReLU - logits. Pooling floors odd sizes, as in every framework.
* ``gru``: one GRU layer of ``H = hidden[0]`` units over the ``T`` steps (zero initial state), then
  the logits from the last hidden state (Cho et al., 2014).
* ``transformer``: a small encoder (Vaswani et al., 2017) in the **pre-norm** arrangement
  (Xiong et al., 2020): a dense feature embedding ``D -> d`` (``d = hidden[0]``) plus learned
  positions ``(T, d)``, :data:`TRANSFORMER_LAYERS` blocks of ``x + MHA(LN(x))`` then
  ``x + FFN(LN(x))`` (:data:`TRANSFORMER_HEADS` heads, ``d_head = d / heads``, scaled dot-product,
  no mask, no dropout; FFN ``dense(4d) - ReLU - dense(d)``), a final layer norm, the mean over the
  ``T`` steps, then the logits.
* ``gbdt``: gradient-boosted trees; no canonical weights (trees are grown from the data, not
  started from given parameters), so :meth:`ModelSpec.shapes` is empty.

Initialization is Glorot/Xavier uniform for kernels, zeros for biases (Glorot & Bengio, 2010,
eq. 16; the Keras default). Fans of a conv kernel are ``kh * kw * c_in`` and ``kh * kw * c_out``;
of an attention kernel ``(d, heads, d_head)`` they are ``d`` and ``heads * d_head``. The GRU's
recurrent kernel is orthogonal per gate (Saxe et al., 2014; Keras's ``recurrent_initializer``),
layer-norm scales are ones, learned positions are normal with standard deviation 0.02 (BERT,
Devlin et al., 2019).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .config import SEQUENCE_MODELS, RunConfig

#: Layer-norm epsilon of every framework's transformer (PyTorch's default; set explicitly in each).
LN_EPS = 1e-5
#: Encoder blocks and attention heads of the ``transformer`` model.
TRANSFORMER_LAYERS, TRANSFORMER_HEADS = 2, 2
#: Feed-forward width of a transformer block, as a multiple of ``d`` (Vaswani et al., 2017: 2048 / 512).
FFN_MULT = 4


@dataclass(frozen=True)
class ModelSpec:
    """What the network is, independent of any framework.

    Attributes:
        kind: ``logreg``, ``mlp``, ``cnn``, ``gru``, ``transformer`` or ``gbdt``.
        n_features: input features ``F`` (dense models).
        n_classes: number of logits.
        hidden: MLP hidden widths.
        activation: MLP hidden activation (``relu``, ``tanh``, ``sigmoid``).
        image_shape: ``(H, W, C)`` input of the CNN, else ``None``.
        channels: output channels of the two conv layers.
        kernel_size: square conv kernel side.
        dense: width of the CNN's hidden dense layer.
        seq_shape: ``(T, D)`` input of the sequence models, else ``None``.
        heads, layers: attention heads and encoder blocks of the ``transformer``.
    """

    kind: str
    n_features: int
    n_classes: int
    hidden: tuple[int, ...] = ()
    activation: str = "relu"
    image_shape: tuple[int, int, int] | None = None
    channels: tuple[int, int] = (32, 64)
    kernel_size: int = 3
    dense: int = 128
    seq_shape: tuple[int, int] | None = None
    heads: int = TRANSFORMER_HEADS
    layers: int = TRANSFORMER_LAYERS

    @classmethod
    def from_config(cls, config: RunConfig, n_features: int, n_classes: int, image_shape=None,
                    seq_shape=None) -> "ModelSpec":  # fmt: skip
        """The spec a config asks for on a data set with these dimensions (``seq_shape`` ``(T, D)``:
        ``data.sequence_shape``; images are read row by row when it is not given)."""
        if config.model in SEQUENCE_MODELS and seq_shape is None and image_shape is not None:
            seq_shape = (image_shape[0], image_shape[1] * image_shape[2])
        return cls(
            kind=config.model,
            n_features=n_features,
            n_classes=n_classes,
            hidden=tuple(config.hidden) if config.model == "mlp" else tuple(config.hidden[:1]) if config.model in SEQUENCE_MODELS else (),
            activation=config.activation,
            image_shape=tuple(image_shape) if config.model == "cnn" else None,
            seq_shape=tuple(seq_shape) if config.model in SEQUENCE_MODELS else None,
        )

    @property
    def d_model(self) -> int:
        """Width of the sequence models: GRU units ``H`` or the transformer's ``d`` (``hidden[0]``)."""
        return self.hidden[0]

    @property
    def d_head(self) -> int:
        """Width of one attention head, ``d // heads`` (``d`` must divide; checked in :meth:`shapes`)."""
        return self.d_model // self.heads

    @property
    def flat_after_conv(self) -> int:
        """Features entering the CNN's dense part: ``(H // 4) * (W // 4) * channels[1]``."""
        h, w, _ = self.image_shape
        return (h // 2 // 2) * (w // 2 // 2) * self.channels[1]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter names (in layer order) and their canonical shapes (layouts: module docstring).

        Raises:
            ValueError: a ``transformer`` whose width ``hidden[0]`` is not a multiple of ``heads``.
        """
        if self.kind == "gbdt":
            return {}
        if self.kind == "gru":
            (t, d), h = self.seq_shape, self.d_model
            return {
                "gru/kernel": (d, 3 * h), "gru/recurrent_kernel": (h, 3 * h),
                "gru/bias": (3 * h,), "gru/recurrent_bias": (3 * h,),
                "dense_0/kernel": (h, self.n_classes), "dense_0/bias": (self.n_classes,),
            }  # fmt: skip
        if self.kind == "transformer":
            (t, d_in), d = self.seq_shape, self.d_model
            if d % self.heads:
                raise ValueError(f"hidden: the transformer's width {d} must be a multiple of its {self.heads} heads")
            nh, dh, ff = self.heads, self.d_head, FFN_MULT * d
            out = {"embed/kernel": (d_in, d), "embed/bias": (d,), "pos/embedding": (t, d)}
            for i in range(self.layers):
                b = f"block_{i}"
                out |= {f"{b}/ln_1/scale": (d,), f"{b}/ln_1/bias": (d,)}
                for p in ("query", "key", "value"):
                    out |= {f"{b}/attn/{p}/kernel": (d, nh, dh), f"{b}/attn/{p}/bias": (nh, dh)}
                out |= {f"{b}/attn/out/kernel": (nh, dh, d), f"{b}/attn/out/bias": (d,)}
                out |= {f"{b}/ln_2/scale": (d,), f"{b}/ln_2/bias": (d,)}
                out |= {f"{b}/ffn_0/kernel": (d, ff), f"{b}/ffn_0/bias": (ff,)}
                out |= {f"{b}/ffn_1/kernel": (ff, d), f"{b}/ffn_1/bias": (d,)}
            out |= {"ln_f/scale": (d,), "ln_f/bias": (d,)}
            out |= {"dense_0/kernel": (d, self.n_classes), "dense_0/bias": (self.n_classes,)}
            return out
        if self.kind == "cnn":
            h, w, c = self.image_shape
            k, (c1, c2) = self.kernel_size, self.channels
            return {
                "conv_0/kernel": (k, k, c, c1), "conv_0/bias": (c1,),
                "conv_1/kernel": (k, k, c1, c2), "conv_1/bias": (c2,),
                "dense_0/kernel": (self.flat_after_conv, self.dense), "dense_0/bias": (self.dense,),
                "dense_1/kernel": (self.dense, self.n_classes), "dense_1/bias": (self.n_classes,),
            }  # fmt: skip
        widths = [self.n_features, *self.hidden, self.n_classes]
        out: dict[str, tuple[int, ...]] = {}
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            out[f"dense_{i}/kernel"] = (a, b)
            out[f"dense_{i}/bias"] = (b,)
        return out

    def layer_names(self) -> list[str]:
        """Layer names in order: ``["dense_0", "dense_1", ...]`` or ``["conv_0", ..., "dense_1"]``."""
        return list(dict.fromkeys(k.split("/")[0] for k in self.shapes()))

    def n_params(self) -> int:
        """Number of trainable parameters."""
        return int(sum(np.prod(s) for s in self.shapes().values()))

    def to_dict(self) -> dict:
        """JSON-ready dict (round-trips through ``ModelSpec(**d)``)."""
        return asdict(self)


def init_weights(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """Canonical initial parameters, ``float32``, drawn from ``numpy.random.default_rng([seed, 1])``.

    Returns:
        ``{name: array}`` in layer order with the shapes of :meth:`ModelSpec.shapes`.
    """
    rng = np.random.default_rng([seed, 1])
    weights = {}
    for name, shape in spec.shapes().items():
        if name.endswith("bias"):
            weights[name] = np.zeros(shape, np.float32)
            continue
        if name.endswith("/scale"):
            weights[name] = np.ones(shape, np.float32)
            continue
        if name == "pos/embedding":
            weights[name] = (0.02 * rng.standard_normal(shape)).astype(np.float32)
            continue
        if name.endswith("recurrent_kernel"):  # one orthogonal (H, H) block per gate
            h = shape[0]
            blocks = [np.linalg.qr(rng.standard_normal((h, h)))[0] for _ in range(3)]
            weights[name] = np.concatenate(blocks, axis=1).astype(np.float32)
            continue
        if "/attn/" in name:  # (d, heads, d_head) in, (heads, d_head, d) out
            fan_in, fan_out = (shape[0], shape[1] * shape[2]) if name.split("/")[-2] != "out" else (shape[0] * shape[1], shape[2])
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            weights[name] = rng.uniform(-limit, limit, size=shape).astype(np.float32)
            continue
        receptive = int(np.prod(shape[:-2])) if len(shape) == 4 else 1
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weights[name] = rng.uniform(-limit, limit, size=shape).astype(np.float32)
    return weights
