"""Everything a framework's run consumes, prepared once in the parent and shared byte for byte.

A :class:`Bundle` holds the config, the split and scaled data set, the model spec, the canonical
initial weights and the batch order. The parent saves it to one ``.npz`` file; every child loads
that file, so "same data, same order, same start" holds by construction (``docs/architecture.md``,
"Conventions that make the frameworks comparable"). The batch order is not saved: it is a
:class:`~mlx_explore.data.BatchOrder` (four integers) that the child rebuilds from the training
split's size and the config, and that draws each epoch when asked.

Before anything is loaded or drawn, :func:`prepare` checks the run against the memory this machine
has (:func:`estimate_memory`, :func:`check_memory`), so a size that cannot fit fails as a
:class:`~mlx_explore.config.ConfigError` naming the field, not as a ``MemoryError`` traceback.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import ConfigError, RunConfig
from .data import IMAGE_SHAPES, RAW_BYTES, BatchOrder, Dataset, dimensions, load_dataset, train_size
from .models import FFN_MULT, ModelSpec, init_weights

_SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


@dataclass(frozen=True)
class Bundle:
    """Inputs of one comparison.

    Attributes:
        config: the validated config.
        data: split, scaled data set.
        spec: the model.
        weights: canonical initial parameters, ``{name: float32 array}`` (see ``models.py``).
        order: the training batches (:class:`~mlx_explore.data.BatchOrder`): ``order[e]`` is epoch
            ``e``'s ``int64 (steps_per_epoch, batch_size)`` indices into ``data.x_train``.
    """

    config: RunConfig
    data: Dataset
    spec: ModelSpec
    weights: dict[str, np.ndarray]
    order: BatchOrder

    @property
    def steps_per_epoch(self) -> int:
        """Training steps per epoch (complete batches only)."""
        return self.order.steps_per_epoch

    @property
    def total_steps(self) -> int:
        """Training steps of the whole run."""
        return self.order.total_steps

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """Model inputs for features ``x``: ``(N, F)`` for dense models (and ``gbdt``), NHWC images
        for the CNN, ``(N, T, D)`` sequences for ``gru`` and ``transformer`` (views, no copy)."""
        if self.spec.kind == "cnn":
            return self.data.images(x)
        if self.spec.seq_shape is not None:
            return self.data.sequences(x)
        return x

    def save(self, path: str | Path) -> None:
        """Write the bundle to one uncompressed ``.npz`` file: the data splits and the weights;
        the batch order is rebuilt by :meth:`load` from the config and the training split's size."""
        meta = {
            "config": self.config.model_dump(mode="json"),
            "spec": self.spec.to_dict(),
            "dataset": {"name": self.data.name, "n_classes": self.data.n_classes, "image_shape": self.data.image_shape,
                        "seq_shape": self.data.seq_shape},
            "weight_names": list(self.weights),
        }
        arrays = {k: getattr(self.data, k) for k in _SPLITS}
        arrays.update({f"w:{k}": v for k, v in self.weights.items()})
        np.savez(path, meta=np.array(json.dumps(meta)), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "Bundle":
        """Read a bundle written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            ds = meta["dataset"]
            data = Dataset(
                name=ds["name"],
                n_classes=ds["n_classes"],
                image_shape=tuple(ds["image_shape"]) if ds["image_shape"] else None,
                seq_shape=tuple(ds["seq_shape"]) if ds.get("seq_shape") else None,
                **{k: z[k] for k in _SPLITS},
            )
            spec_d = meta["spec"]
            for key in ("hidden", "channels", "image_shape", "seq_shape"):
                if spec_d.get(key) is not None:
                    spec_d[key] = tuple(spec_d[key])
            config = RunConfig(**meta["config"])
            return cls(
                config=config,
                data=data,
                spec=ModelSpec(**spec_d),
                weights={k: z[f"w:{k}"] for k in meta["weight_names"]},
                order=BatchOrder(len(data.y_train), config.batch_size, config.epochs, config.seed),
            )


def prepare(config: RunConfig) -> Bundle:
    """Load the data, draw the weights and set up the batch order for ``config``.

    Raises:
        ConfigError: ``batch_size`` larger than the training split, or ``epochs`` < 1 (checked
            before loading); the run cannot fit in the memory available (:func:`check_memory`,
            before loading or drawing anything); ``data_dir`` is a file.
        DatasetUnavailable: a download data set is neither cached nor downloadable.
    """
    BatchOrder(train_size(config), config.batch_size, config.epochs, config.seed)  # validate early
    check_memory(config)
    data = load_dataset(config)
    spec = ModelSpec.from_config(config, data.n_features, data.n_classes, data.image_shape, data.sequence_shape)
    return Bundle(
        config=config,
        data=data,
        spec=spec,
        weights=init_weights(spec, config.seed),
        order=BatchOrder(len(data.y_train), config.batch_size, config.epochs, config.seed),
    )


# ------------------------------------------------------------------------------------ memory

#: Copies of the parameters a child holds, by optimizer, each ``4 * n_params`` bytes (float32):
#: the model's weights, their gradients, the canonical weights loaded from the bundle, one
#: transient copy (optax and XLA update out of place: old and new parameters exist together during
#: a step), plus the optimizer's state: none for SGD, one velocity for momentum, two moments for
#: Adam. A lower bound (frameworks keep more in places: compiled graphs, caches), so a model this
#: check rejects cannot fit, and one it lets through can still be tight.
PARAM_COPIES = {"sgd": 4, "momentum": 5, "adam": 6}
#: The parent's peak bytes per feature value while the data set is made, split and scaled is
#: ``3 * RAW_BYTES + SCALING_BYTES``: the raw array and its two stratified splits
#: (``train_test_split`` copies; :data:`~mlx_explore.data.RAW_BYTES` each), then the float32 splits
#: and two float32 temporaries of the scaling (``SCALING_BYTES``). Measured (VmHWM): 28-29 bytes a
#: value for ``synthetic`` (float64, 2e7 values) against 36 here; 9.2 for an MNIST-sized uint8 set
#: against 15 here: rounded up, so the data part overestimates what was measured.
SCALING_BYTES = 12
#: Bytes per feature value the parent keeps while the children run (the float32 splits and the
#: allocator's slack; measured 7-8 for ``synthetic``), and a child holds (the float32 splits it
#: loads and the framework's own copy of the training split on its device).
HELD_BYTES, CHILD_DATA_BYTES = 8, 8
#: Rows of the largest forward pass a child makes: evaluation and inference run in batches of
#: 1024 (``frameworks.common.EVAL_BATCH``, ``INFER_BATCH``), training in ``batch_size``.
EVAL_ROWS = 1024
#: Float32 buffers per activation value: the activation, its gradient and one temporary.
ACTIVATION_COPIES = 3


@dataclass(frozen=True)
class MemoryEstimate:
    """What a comparison needs in memory [bytes], from the config alone (nothing loaded or drawn).

    Attributes:
        n_params: trainable parameters of the model.
        params_bytes: the parameters in a child: ``4 * n_params * PARAM_COPIES[optimizer]``.
        activation_bytes: a child's largest forward and backward pass:
            ``4 * ACTIVATION_COPIES * max(batch_size, EVAL_ROWS) * (sum of layer output widths)``.
        data_parent_bytes: the parent's peak while the data set is made and split:
            ``n_values * (3 * RAW_BYTES + SCALING_BYTES)``, ``n_values = samples * features``.
        data_child_bytes: the data a child holds (``CHILD_DATA_BYTES`` per value).
        parent_bytes: the parent's peak while preparing (data, plus the weights drawn in float64).
        child_bytes: a child's peak: ``params_bytes + activation_bytes + data_child_bytes``.
        total_bytes: what must fit at once: the larger of ``parent_bytes`` and the parent's held
            data plus weights (``HELD_BYTES`` per value, ``4 * n_params``) with one child running
            beside it (children run one at a time).
        parts: ``{"params", "activations", "data"}`` -> bytes; the largest names the config field
            :func:`check_memory` blames.
    """

    n_params: int
    params_bytes: int
    activation_bytes: int
    data_parent_bytes: int
    data_child_bytes: int
    parent_bytes: int
    child_bytes: int
    total_bytes: int
    parts: dict[str, int] = field(default_factory=dict)


def estimate_memory(config: RunConfig) -> MemoryEstimate:
    """Estimate the memory a comparison of ``config`` needs [bytes], without loading or allocating.

    The data set's size comes from :func:`mlx_explore.data.dimensions`, the model's from
    :meth:`ModelSpec.shapes` (Python integers, so absurd sizes do not overflow). The factors
    (:data:`PARAM_COPIES`, :data:`SCALING_BYTES`, :data:`HELD_BYTES`, :data:`CHILD_DATA_BYTES`,
    :data:`ACTIVATION_COPIES`) say what each byte is for; the framework's own import (a few hundred
    MiB) is not counted.

    Returns:
        :class:`MemoryEstimate`, every figure in bytes.
    """
    n_samples, n_features, n_classes = dimensions(config)
    image_shape = IMAGE_SHAPES.get(config.dataset)
    seq_shape = (config.seq_len, 2) if config.dataset == "adding" else None
    spec = ModelSpec.from_config(config, n_features, n_classes, image_shape, seq_shape)
    shapes = spec.shapes()
    n_params = sum(math.prod(s) for s in shapes.values())
    params_bytes = 4 * n_params * PARAM_COPIES[config.optimizer]
    activation_bytes = 4 * ACTIVATION_COPIES * max(config.batch_size, EVAL_ROWS) * _activation_width(spec)
    n_values = n_samples * n_features
    data_parent = n_values * (3 * RAW_BYTES[config.dataset] + SCALING_BYTES) + 24 * n_samples  # + int64 labels
    data_child = n_values * CHILD_DATA_BYTES + 8 * n_samples
    largest_layer = max((math.prod(s) for s in shapes.values()), default=0)
    parent = data_parent + 4 * n_params + 8 * largest_layer  # init_weights draws each layer in float64
    child = params_bytes + activation_bytes + data_child
    held = n_values * HELD_BYTES + 4 * n_params
    return MemoryEstimate(
        n_params=n_params, params_bytes=params_bytes, activation_bytes=activation_bytes,
        data_parent_bytes=data_parent, data_child_bytes=data_child, parent_bytes=parent, child_bytes=child,
        total_bytes=max(parent, held + child),
        parts={"params": params_bytes, "activations": activation_bytes, "data": max(data_parent, data_child)},
    )  # fmt: skip


def _activation_width(spec: ModelSpec) -> int:
    """Float values per sample in the outputs of every layer of ``spec`` (pooling included)."""
    if spec.kind == "cnn":
        h, w, _ = spec.image_shape
        c1, c2 = spec.channels
        return h * w * c1 + (h // 2) * (w // 2) * (c1 + c2) + (h // 4) * (w // 4) * c2 + spec.dense + spec.n_classes
    if spec.kind == "gru":  # per step: three gates' pre-activations, the gates and the new state
        return spec.seq_shape[0] * 7 * spec.d_model + spec.n_classes
    if spec.kind == "transformer":  # per block and step: LN, q/k/v, scores, attention out, FFN
        t, d = spec.seq_shape[0], spec.d_model
        return spec.layers * t * (8 * d + spec.heads * t + 2 * FFN_MULT * d) + spec.n_classes
    return sum(spec.hidden) + spec.n_classes


def available_memory() -> int | None:
    """Memory this process can still use [bytes], or ``None`` where it cannot be read.

    Linux: ``MemAvailable`` of ``/proc/meminfo`` (the kernel's estimate of memory available for
    new work without swapping, ``man 5 proc``), lowered to the cgroup's remaining allowance where a
    container sets one (v2 ``memory.max - memory.current``, v1 ``memory.limit_in_bytes -
    memory.usage_in_bytes``). Elsewhere: free physical pages times the page size
    (``os.sysconf("SC_AVPHYS_PAGES")``).
    """
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024  # kB
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):  # fmt: skip
        try:
            limit, usage = Path(limit_file).read_text().strip(), Path(usage_file).read_text().strip()
            if limit.isdigit() and usage.isdigit():
                avail = min(avail, max(0, int(limit) - int(usage)))
                break
        except OSError:
            continue
    return avail


def check_memory(config: RunConfig, available: int | None = None) -> MemoryEstimate:
    """Raise a :class:`ConfigError` if the comparison cannot fit in memory; else return its estimate.

    Args:
        config: the run.
        available: bytes available (default :func:`available_memory`; ``None`` there skips the check).

    Raises:
        ConfigError: :attr:`MemoryEstimate.total_bytes` exceeds ``available``. The field is the one
            behind the largest part: the data set's size (``n_samples`` or ``n_features`` for
            ``synthetic``, else ``dataset``), the model's parameters (``hidden`` for the MLP;
            ``n_features`` where the synthetic input layer dominates; ``model`` otherwise) or the
            activations (``batch_size`` when it is above ``EVAL_ROWS``, else ``hidden``/``model``).
            The message gives the sizes, the estimate and the memory available.
    """
    est = estimate_memory(config)
    if available is None:
        available = available_memory()
    if available is None or est.total_bytes <= available:
        return est
    have = f"this machine has {_size(available)} available"
    part = max(est.parts, key=est.parts.get)
    n_samples, n_features, n_classes = dimensions(config)
    spec = ModelSpec.from_config(config, n_features, n_classes, IMAGE_SHAPES.get(config.dataset))
    if part == "data":
        what = (f"the {config.dataset} data set ({n_samples} samples x {n_features} features) needs about "
                f"{_size(est.data_parent_bytes)} while it is made, split and scaled "
                f"({3 * RAW_BYTES[config.dataset] + SCALING_BYTES} bytes a value: the raw values and their "
                f"splits, then the float32 splits)")  # fmt: skip
        if config.dataset != "synthetic":
            raise ConfigError("dataset", f"{what}; {have}: use a smaller data set")
        field_ = "n_features" if n_features > n_samples else "n_samples"
        per = est.total_bytes / (n_samples if field_ == "n_samples" else n_features)
        limit = int(available / per)
        raise ConfigError(field_, f"{what}; {have}: use at most about {limit} {field_.split('_')[1]}")
    if part == "params":
        copies = PARAM_COPIES[config.optimizer]
        what = (f"the {_describe(spec)} has {est.n_params:.1e} parameters, about {_size(est.params_bytes)} in a "
                f"framework's process ({copies} float32 copies: weights, gradients, {config.optimizer} state, "
                f"the canonical copy and a transient one)")  # fmt: skip
        width = spec.hidden[0] if spec.hidden else n_classes
        if config.dataset == "synthetic" and config.model != "cnn" and n_features * width * 2 > est.n_params and n_features > width:
            raise ConfigError("n_features", f"{what}; {have}: use fewer features")
        if config.model == "mlp":
            raise ConfigError("hidden", f"{what}; {have}: use smaller hidden widths")
        raise ConfigError("model", f"{what}; {have}: use a smaller model")
    what = (f"the {_describe(spec)} computes {est.activation_bytes / 4 / ACTIVATION_COPIES:.1e} activations per "
            f"pass of {max(config.batch_size, EVAL_ROWS)} samples, about {_size(est.activation_bytes)} with "
            f"their gradients")  # fmt: skip
    if config.batch_size > EVAL_ROWS:
        raise ConfigError("batch_size", f"{what}; {have}: use a smaller batch size")
    raise ConfigError("hidden" if config.model == "mlp" else "model", f"{what}; {have}: use a smaller model")


def _describe(spec: ModelSpec) -> str:
    """``MLP 64-256-256-10``, ``logistic regression 64-10``, ``CNN on 32x32x3``."""
    if spec.kind == "cnn":
        return f"CNN on {'x'.join(map(str, spec.image_shape))} images"
    if spec.kind in ("gru", "transformer"):
        t, d = spec.seq_shape
        return f"{'GRU' if spec.kind == 'gru' else 'transformer'} of width {spec.d_model} on {t} steps of {d} features"
    if spec.kind == "gbdt":
        return "gradient-boosted trees"
    widths = "-".join(str(w) for w in (spec.n_features, *spec.hidden, spec.n_classes))
    return f"{'MLP' if spec.kind == 'mlp' else 'logistic regression'} {widths}"


def _size(n: float) -> str:
    """Bytes in binary units: ``160 GiB``, ``1.5 TiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}" if n < 100 else f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.0f} PiB"
