"""Data sets as NumPy arrays, fixed stratified splits, train-only scaling and the shared batch order.

Every framework trains on exactly the arrays made here: the parent process builds them once
(:func:`load_dataset`, :func:`batch_order`) and hands the same bytes to every child.

Layout: features are ``float32`` of shape ``(N, F)``; image data sets keep their pixels in
``(H, W, C)`` order inside ``F`` so ``Dataset.images(x)`` is a free reshape to NHWC. Labels are
``int64`` class indices ``0..n_classes-1``.

Shipped with scikit-learn (no download; https://scikit-learn.org/stable/datasets/toy_dataset.html):

=============  ===========  ==================  =========
name           samples      features            classes
=============  ===========  ==================  =========
digits         1797         64 (8x8x1 image)    10
breast_cancer  569          30                  2
wine           178          13                  3
synthetic      n_samples    n_features          n_classes  (``make_classification``)
=============  ===========  ==================  =========

Downloaded once into a cache folder (Colab, or any machine online), official test split kept:
``mnist`` and ``fashion_mnist`` (70000 x 28x28x1, 10 classes), ``cifar10`` (60000 x 32x32x3,
10 classes). Offline they fail with :class:`DatasetUnavailable` saying where to put the files.
"""

from __future__ import annotations

import gzip
import os
import pickle
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import DATASETS, ConfigError, RunConfig

#: Source URLs, the ones Keras uses (keras/src/datasets/{mnist,fashion_mnist,cifar10}.py).
URLS = {
    "mnist": ["https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"],
    "fashion_mnist": [
        f"https://storage.googleapis.com/tensorflow/tf-keras-datasets/{f}"
        for f in (
            "train-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
        )
    ],
    "cifar10": ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"],
}

#: Samples in each data set (synthetic: the config's ``n_samples``); used to validate batch sizes
#: before anything is loaded.
SIZES = {"digits": 1797, "breast_cancer": 569, "wine": 178, "mnist": 70000, "fashion_mnist": 70000, "cifar10": 60000}
#: Official test split sizes of the downloaded data sets.
OFFICIAL_TEST = {"mnist": 10000, "fashion_mnist": 10000, "cifar10": 10000}
#: Image shape (H, W, C) of each image data set.
IMAGE_SHAPES = {"digits": (8, 8, 1), "mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
#: Largest raw pixel value, used to bring images to [0, 1] before standardizing.
PIXEL_MAX = {"digits": 16.0, "mnist": 255.0, "fashion_mnist": 255.0, "cifar10": 255.0}


class DatasetUnavailable(RuntimeError):
    """A data set needs files that are not in the cache and could not be downloaded."""


@dataclass(frozen=True)
class Dataset:
    """Split, scaled arrays of one data set.

    Attributes:
        name: data set name.
        x_train, x_val, x_test: ``float32 (N_split, F)``, scaled with statistics of the training split.
        y_train, y_val, y_test: ``int64 (N_split,)`` class indices.
        n_classes: number of classes (binary tasks have 2 and use two logits).
        image_shape: ``(H, W, C)`` for image data sets, else ``None``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    image_shape: tuple[int, int, int] | None

    @property
    def n_features(self) -> int:
        """Features per sample ``F`` (for images ``H * W * C``)."""
        return int(self.x_train.shape[1])

    def images(self, x: np.ndarray) -> np.ndarray:
        """Reshape ``(N, F)`` features to NHWC images ``(N, H, W, C)`` (a view, no copy).

        Raises:
            ValueError: the data set is not an image data set.
        """
        if self.image_shape is None:
            raise ValueError(f"data set {self.name!r} has no image layout")
        return x.reshape((x.shape[0], *self.image_shape))


def train_size(config: RunConfig) -> int:
    """Number of training samples the config's split will produce, without loading anything."""
    n = config.n_samples if config.dataset == "synthetic" else SIZES[config.dataset]
    if config.dataset in OFFICIAL_TEST:
        n_rest = n - OFFICIAL_TEST[config.dataset]
        return n_rest - _split_count(n_rest, config.val_fraction)
    n_test = _split_count(n, config.test_fraction)
    n_rest = n - n_test
    return n_rest - _split_count(n_rest, config.val_fraction / (1 - config.test_fraction))


def _split_count(n: int, fraction: float) -> int:
    # scikit-learn's train_test_split rounds the test share up (sklearn.model_selection._split).
    return int(np.ceil(fraction * n))


def load_dataset(config: RunConfig) -> Dataset:
    """Load, split (stratified, by ``config.seed``) and scale the config's data set.

    Tabular features are standardized per feature; images are divided by their pixel maximum and
    standardized by one mean and standard deviation. Either way the statistics come from the
    training split alone.

    Raises:
        ConfigError: unknown data set (field ``dataset``).
        DatasetUnavailable: a download data set is neither cached nor downloadable.
    """
    if config.dataset not in DATASETS:
        raise ConfigError("dataset", f"unknown data set {config.dataset!r}; allowed: {', '.join(DATASETS)}")
    from sklearn.model_selection import train_test_split

    name = config.dataset
    image_shape = IMAGE_SHAPES.get(name)
    if name in OFFICIAL_TEST:
        x_rest, y_rest, x_test, y_test = _load_download(name, Path(config.resolved_data_dir()))
        val_share = config.val_fraction
    else:
        x, y = _load_sklearn(config)
        x_rest, x_test, y_rest, y_test = train_test_split(
            x, y, test_size=config.test_fraction, stratify=y, random_state=config.seed
        )
        val_share = config.val_fraction / (1 - config.test_fraction)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_share, stratify=y_rest, random_state=config.seed
    )

    x_train, x_val, x_test = (a.astype(np.float32) for a in (x_train, x_val, x_test))
    if image_shape is not None:
        scale = np.float32(PIXEL_MAX[name])
        x_train, x_val, x_test = (a / scale for a in (x_train, x_val, x_test))
        mean, std = x_train.mean(), x_train.std()
    else:
        mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std = np.where(std > 0, std, 1).astype(np.float32)
    x_train, x_val, x_test = ((a - mean) / std for a in (x_train, x_val, x_test))
    n_classes = int(max(y_train.max(), y_val.max(), y_test.max()) + 1)
    return Dataset(
        name=name,
        x_train=np.ascontiguousarray(x_train, dtype=np.float32),
        y_train=y_train.astype(np.int64),
        x_val=np.ascontiguousarray(x_val, dtype=np.float32),
        y_val=y_val.astype(np.int64),
        x_test=np.ascontiguousarray(x_test, dtype=np.float32),
        y_test=y_test.astype(np.int64),
        n_classes=n_classes,
        image_shape=image_shape,
    )


def batch_order(n_train: int, batch_size: int, epochs: int, seed: int) -> np.ndarray:
    """The training batches of every epoch, as indices into the training split.

    Each epoch is a fresh permutation from ``numpy.random.default_rng([seed, 2])``; the last
    incomplete batch is dropped so every framework takes exactly the same steps.

    Returns:
        ``int64 (epochs, n_train // batch_size, batch_size)``.

    Raises:
        ConfigError: ``batch_size`` < 1 or larger than ``n_train`` (field ``batch_size``), or
            ``epochs`` < 1 (field ``epochs``).
    """
    if batch_size < 1 or batch_size > n_train:
        raise ConfigError("batch_size", f"must be between 1 and the training split's {n_train} samples (got {batch_size})")
    if epochs < 1:
        raise ConfigError("epochs", f"must be >= 1 (got {epochs})")
    rng = np.random.default_rng([seed, 2])
    steps = n_train // batch_size
    return np.stack([rng.permutation(n_train)[: steps * batch_size].reshape(steps, batch_size) for _ in range(epochs)])


# ------------------------------------------------------------------------------------ loaders


def _load_sklearn(config: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    name = config.dataset
    if name == "digits":
        d = datasets.load_digits()
        return d.images.reshape(len(d.images), -1), d.target  # 8x8 pixels, row-major = HWC with C=1
    if name == "breast_cancer":
        d = datasets.load_breast_cancer()
        return d.data, d.target
    if name == "wine":
        d = datasets.load_wine()
        return d.data, d.target
    if name == "synthetic":
        if config.n_classes * 2 > 2 ** min(config.n_features, 30):
            raise ConfigError("n_classes", f"too many classes ({config.n_classes}) for {config.n_features} features")
        informative = max(2, config.n_features // 2)
        while config.n_classes * 2 > 2**informative:
            informative += 1
        return datasets.make_classification(
            n_samples=config.n_samples,
            n_features=config.n_features,
            n_informative=informative,
            n_redundant=min(config.n_features - informative, config.n_features // 4),
            n_classes=config.n_classes,
            random_state=config.seed,
        )
    raise ConfigError("dataset", f"unknown data set {name!r}; allowed: {', '.join(DATASETS)}")


def _load_download(name: str, cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(x_train, y_train, x_test, y_test)`` with images flattened in HWC order."""
    folder = cache / name
    files = [folder / url.rsplit("/", 1)[1] for url in URLS[name]]
    missing = [(url, f) for url, f in zip(URLS[name], files) if not f.exists()]
    for url, f in missing:
        _download(name, url, f)
    if name == "mnist":
        with np.load(files[0]) as d:
            xtr, ytr, xte, yte = d["x_train"], d["y_train"], d["x_test"], d["y_test"]
    elif name == "fashion_mnist":
        ytr, xtr, yte, xte = (_read_idx_gz(f) for f in files)
    else:
        xtr, ytr, xte, yte = _read_cifar10(files[0])
    flat = lambda a: a.reshape(a.shape[0], -1)  # noqa: E731
    return flat(xtr), ytr.astype(np.int64), flat(xte), yte.astype(np.int64)


def _download(name: str, url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=float(os.environ.get("MLX_EXPLORE_DOWNLOAD_TIMEOUT", "30"))) as r, open(tmp, "wb") as out:
            while chunk := r.read(1 << 20):
                out.write(chunk)
        tmp.replace(dest)
    except Exception as exc:  # any network failure: say where the file must go
        tmp.unlink(missing_ok=True)
        raise DatasetUnavailable(
            f"data set {name!r} is not cached and could not be downloaded ({type(exc).__name__}: {exc}). "
            f"Download {url} on a machine that is online and put it at {dest} "
            f"(or set data_dir / MLX_EXPLORE_DATA to a folder holding {name}/{dest.name})."
        ) from exc


def _read_idx_gz(path: Path) -> np.ndarray:
    # IDX format (http://yann.lecun.com/exdb/mnist/): magic (2 zero bytes, dtype, ndim), dims, data.
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(tuple(int(d) for d in dims))


def _read_cifar10(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # CIFAR-10 python batches (https://www.cs.toronto.edu/~kriz/cifar.html): rows are CHW, 3072 bytes.
    def batches(tar: tarfile.TarFile, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for n in names:
            d = pickle.load(tar.extractfile(f"cifar-10-batches-py/{n}"), encoding="bytes")  # noqa: S301 (official format)
            xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            ys.append(np.asarray(d[b"labels"]))
        return np.concatenate(xs), np.concatenate(ys)

    with tarfile.open(path, "r:gz") as tar:
        xtr, ytr = batches(tar, [f"data_batch_{i}" for i in range(1, 6)])
        xte, yte = batches(tar, ["test_batch"])
    return xtr, ytr, xte, yte
