"""Framework-neutral model specs and the canonical initial weights every framework loads.

A :class:`ModelSpec` says what the network is; :func:`init_weights` draws its parameters once, in
NumPy, from the seed. Each ``frameworks/<name>/`` package builds the same network and loads these
arrays, converting layout where it must (docs/architecture.md, "Same start"):

* dense kernel ``(in, out)``, bias ``(out,)``  (PyTorch ``Linear.weight = kernel.T``)
* conv kernel ``(H, W, C_in, C_out)``, bias ``(C_out,)``  (PyTorch ``Conv2d.weight = kernel.transpose(3, 2, 0, 1)``)
* images NHWC; the CNN flattens its last feature map in ``(H, W, C)`` order.

Models:

* ``logreg``: softmax regression, one dense layer to ``n_classes`` logits.
* ``mlp``: dense layers of ``hidden`` widths with one activation, then the logits layer.
* ``cnn``: LeNet-style (LeCun et al., 1998): conv3x3(same) - ReLU - maxpool2 - conv3x3(same) -
  ReLU - maxpool2 - flatten - dense - ReLU - logits. Pooling floors odd sizes, as in every framework.

Initialization is Glorot/Xavier uniform for kernels, zeros for biases (Glorot & Bengio, 2010,
eq. 16; the Keras default). Fans of a conv kernel are ``kh * kw * c_in`` and ``kh * kw * c_out``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .config import RunConfig


@dataclass(frozen=True)
class ModelSpec:
    """What the network is, independent of any framework.

    Attributes:
        kind: ``logreg``, ``mlp`` or ``cnn``.
        n_features: input features ``F`` (dense models).
        n_classes: number of logits.
        hidden: MLP hidden widths.
        activation: MLP hidden activation (``relu``, ``tanh``, ``sigmoid``).
        image_shape: ``(H, W, C)`` input of the CNN, else ``None``.
        channels: output channels of the two conv layers.
        kernel_size: square conv kernel side.
        dense: width of the CNN's hidden dense layer.
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

    @classmethod
    def from_config(cls, config: RunConfig, n_features: int, n_classes: int, image_shape=None) -> "ModelSpec":
        """The spec a config asks for on a data set with these dimensions."""
        return cls(
            kind=config.model,
            n_features=n_features,
            n_classes=n_classes,
            hidden=tuple(config.hidden) if config.model == "mlp" else (),
            activation=config.activation,
            image_shape=tuple(image_shape) if config.model == "cnn" else None,
        )

    @property
    def flat_after_conv(self) -> int:
        """Features entering the CNN's dense part: ``(H // 4) * (W // 4) * channels[1]``."""
        h, w, _ = self.image_shape
        return (h // 2 // 2) * (w // 2 // 2) * self.channels[1]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter names (in layer order) and their canonical shapes."""
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
        if name.endswith("/bias"):
            weights[name] = np.zeros(shape, np.float32)
            continue
        receptive = int(np.prod(shape[:-2])) if len(shape) == 4 else 1
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weights[name] = rng.uniform(-limit, limit, size=shape).astype(np.float32)
    return weights
