"""Everything a framework's run consumes, prepared once in the parent and shared byte for byte.

A :class:`Bundle` holds the config, the split and scaled data set, the model spec, the canonical
initial weights and the batch order. The parent saves it to one ``.npz`` file; every child loads
that file, so "same data, same order, same start" holds by construction (DESIGN.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import RunConfig
from .data import Dataset, batch_order, load_dataset, train_size
from .models import ModelSpec, init_weights

_SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


@dataclass(frozen=True)
class Bundle:
    """Inputs of one comparison.

    Attributes:
        config: the validated config.
        data: split, scaled data set.
        spec: the model.
        weights: canonical initial parameters, ``{name: float32 array}`` (see ``models.py``).
        order: ``int64 (epochs, steps_per_epoch, batch_size)`` training batch indices.
    """

    config: RunConfig
    data: Dataset
    spec: ModelSpec
    weights: dict[str, np.ndarray]
    order: np.ndarray

    @property
    def steps_per_epoch(self) -> int:
        return int(self.order.shape[1])

    @property
    def total_steps(self) -> int:
        return int(self.order.shape[0] * self.order.shape[1])

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """Model inputs for features ``x``: ``(N, F)`` for dense models, NHWC images for the CNN."""
        return self.data.images(x) if self.spec.kind == "cnn" else x

    def save(self, path: str | Path) -> None:
        """Write the bundle to one uncompressed ``.npz`` file."""
        meta = {
            "config": self.config.model_dump(mode="json"),
            "spec": self.spec.to_dict(),
            "dataset": {"name": self.data.name, "n_classes": self.data.n_classes, "image_shape": self.data.image_shape},
            "weight_names": list(self.weights),
        }
        arrays = {k: getattr(self.data, k) for k in _SPLITS}
        arrays.update({f"w:{k}": v for k, v in self.weights.items()})
        np.savez(path, meta=np.array(json.dumps(meta)), order=self.order, **arrays)

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
                **{k: z[k] for k in _SPLITS},
            )
            spec_d = meta["spec"]
            for key in ("hidden", "channels", "image_shape"):
                if spec_d.get(key) is not None:
                    spec_d[key] = tuple(spec_d[key])
            return cls(
                config=RunConfig(**meta["config"]),
                data=data,
                spec=ModelSpec(**spec_d),
                weights={k: z[f"w:{k}"] for k in meta["weight_names"]},
                order=z["order"],
            )


def prepare(config: RunConfig) -> Bundle:
    """Load the data, draw the weights and the batch order for ``config``.

    Raises:
        ConfigError: ``batch_size`` larger than the training split (checked before loading).
        DatasetUnavailable: a download data set is neither cached nor downloadable.
    """
    batch_order(train_size(config), config.batch_size, config.epochs, config.seed)  # validate early
    data = load_dataset(config)
    spec = ModelSpec.from_config(config, data.n_features, data.n_classes, data.image_shape)
    return Bundle(
        config=config,
        data=data,
        spec=spec,
        weights=init_weights(spec, config.seed),
        order=batch_order(len(data.y_train), config.batch_size, config.epochs, config.seed),
    )
