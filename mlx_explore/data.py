"""Data sets as NumPy arrays, fixed stratified splits, train-only scaling and the shared batch order.

Every framework trains on exactly the arrays made here: the parent process builds them once
(:func:`load_dataset`) and hands the same bytes to every child; the batch order
(:class:`BatchOrder`) is a few integers every process expands, one epoch at a time, into the same
index arrays.

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
adding         n_samples    2 x seq_len         2          (made here: the adding problem)
=============  ===========  ==================  =========

``adding`` is the adding problem of Hochreiter & Schmidhuber (1997, section 5.4) as a
classification task that needs memory: each sample is ``seq_len`` steps of (a value drawn
uniformly from [0, 1], a marker); exactly two steps are marked, one in each half of the sequence,
and the label is whether the two marked values sum to more than 1 (balanced by symmetry). Its
features are laid out ``(T, 2)`` row-major, so ``Dataset.sequences(x)`` is a free reshape.

``covertype`` (581012 samples, 54 features, 7 classes; UCI's Forest CoverType) is downloaded once by
scikit-learn's ``fetch_covtype`` into the cache folder; offline it fails with
:class:`DatasetUnavailable`.

Downloaded once into a cache folder (Colab, or any machine online), official test split kept:
``mnist`` and ``fashion_mnist`` (70000 x 28x28x1, 10 classes), ``cifar10`` (60000 x 32x32x3,
10 classes). Every downloaded or cached file is checked against its published SHA-256
(:data:`DOWNLOADS`) before it is read; a file that does not match is deleted, never parsed.
Offline they fail with :class:`DatasetUnavailable` saying where to put the files.
"""

from __future__ import annotations

import gzip
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .config import DATASET_FACTS, DATASETS, ConfigError, RunConfig, split_sizes

#: Files of each download data set: ``(file name, URL, SHA-256 of the file)``, fetched with pooch
#: (https://www.fatiando.org/pooch/) into ``<data_dir>/<name>/<file name>``. The hashes are the
#: published ones:
#:
#: * ``mnist.npz``: Keras, ``keras/src/datasets/mnist.py`` (``file_hash``).
#: * the four Fashion-MNIST IDX files: Keras, ``keras/src/datasets/fashion_mnist.py``
#:   (``FILE_HASHES``); the same values, with the byte sizes, are in TensorFlow Datasets'
#:   ``tensorflow_datasets/url_checksums/fashion_mnist.txt`` for Zalando's copies.
#: * ``cifar-10-binary.tar.gz`` (the "binary version" of https://www.cs.toronto.edu/~kriz/cifar.html,
#:   170052171 bytes): TensorFlow Datasets, ``tensorflow_datasets/url_checksums/cifar10.txt``. The
#:   binary version is raw bytes, so CIFAR-10 is never unpickled (the Python version is pickles).
#:
#: A module-level dict so tests can point it at a local server.
DOWNLOADS: dict[str, list[tuple[str, str, str]]] = {
    "mnist": [(
        "mnist.npz",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
        "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    )],
    "fashion_mnist": [
        (f, f"https://storage.googleapis.com/tensorflow/tf-keras-datasets/{f}", h)
        for f, h in (
            ("train-labels-idx1-ubyte.gz", "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
            ("train-images-idx3-ubyte.gz", "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
            ("t10k-labels-idx1-ubyte.gz", "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
            ("t10k-images-idx3-ubyte.gz", "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        )
    ],
    "cifar10": [(
        "cifar-10-binary.tar.gz",
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    )],
}

#: Samples, classes and official test-split sizes of the fixed data sets: views of
#: ``config.DATASET_FACTS``, the one table (validation needs them before anything is loaded).
SIZES = {name: n for name, (n, _, _) in DATASET_FACTS.items()}
CLASSES = {name: k for name, (_, k, _) in DATASET_FACTS.items()}
OFFICIAL_TEST = {name: t for name, (_, _, t) in DATASET_FACTS.items() if t is not None}
#: Image shape (H, W, C) of each image data set.
IMAGE_SHAPES = {"digits": (8, 8, 1), "mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
#: Largest raw pixel value, used to bring images to [0, 1] before standardizing.
PIXEL_MAX = {"digits": 16.0, "mnist": 255.0, "fashion_mnist": 255.0, "cifar10": 255.0}
#: Features per sample of each fixed data set (synthetic: the config's ``n_features``).
FEATURES = {"digits": 64, "breast_cancer": 30, "wine": 13, "mnist": 784, "fashion_mnist": 784, "cifar10": 3072,
            "covertype": 54}
#: Bytes per feature value as the data set is read, before the float32 conversion: scikit-learn's
#: loaders and ``make_classification`` give float64, the downloaded images are uint8.
RAW_BYTES = {"digits": 8, "breast_cancer": 8, "wine": 8, "synthetic": 8, "mnist": 1, "fashion_mnist": 1, "cifar10": 1,
             "adding": 8, "covertype": 8}


class DatasetUnavailable(RuntimeError):
    """A data set needs files that are not in the cache and could not be downloaded, or whose
    download or cached copy did not match the published SHA-256 (the file is then deleted)."""


@dataclass(frozen=True)
class Dataset:
    """Split, scaled arrays of one data set.

    Attributes:
        name: data set name.
        x_train, x_val, x_test: ``float32 (N_split, F)``, scaled with statistics of the training split.
        y_train, y_val, y_test: ``int64 (N_split,)`` class indices.
        n_classes: number of classes (binary tasks have 2 and use two logits).
        image_shape: ``(H, W, C)`` for image data sets, else ``None``.
        seq_shape: ``(T, D)`` of a sequence data set (``adding``); images are read row by row
            (:meth:`sequence_shape`).
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
    seq_shape: tuple[int, int] | None = None

    @property
    def sequence_shape(self) -> tuple[int, int] | None:
        """``(T, D)`` a sequence model reads: ``seq_shape``, or an image's rows ``(H, W * C)``;
        ``None`` for tabular data sets."""
        if self.seq_shape is not None:
            return tuple(self.seq_shape)
        if self.image_shape is not None:
            h, w, c = self.image_shape
            return (h, w * c)
        return None

    def sequences(self, x: np.ndarray) -> np.ndarray:
        """Reshape ``(N, F)`` features to ``(N, T, D)`` sequences (a view, no copy).

        Raises:
            ValueError: the data set has no sequence layout (a tabular data set).
        """
        if self.sequence_shape is None:
            raise ValueError(f"data set {self.name!r} has no sequence layout")
        return x.reshape((x.shape[0], *self.sequence_shape))

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


def dimensions(config: RunConfig) -> tuple[int, int, int]:
    """``(samples, features, classes)`` of the config's data set, from the tables above (for
    ``synthetic``: the config's ``n_samples``, ``n_features``, ``n_classes``); loads nothing."""
    if config.dataset == "synthetic":
        return config.n_samples, config.n_features, config.n_classes
    if config.dataset == "adding":
        return config.n_samples, 2 * config.seq_len, 2
    return SIZES[config.dataset], FEATURES[config.dataset], CLASSES[config.dataset]


def train_size(config: RunConfig) -> int:
    """Number of training samples the config's split will produce, without loading anything
    (``config.split_sizes``)."""
    return split_sizes(config)["train"]


def load_dataset(config: RunConfig) -> Dataset:
    """Load, split (stratified, by ``config.seed``) and scale the config's data set.

    Tabular features are standardized per feature; images are divided by their pixel maximum and
    standardized by one mean and standard deviation. Either way the statistics come from the
    training split alone.

    Raises:
        ConfigError: unknown data set (field ``dataset``); ``data_dir`` (or ``$MLX_EXPLORE_DATA``)
            is an existing file, not a folder (field ``data_dir``, checked before any download).
        DatasetUnavailable: a download data set is neither cached nor downloadable, or a file
            did not match its published SHA-256 (:data:`DOWNLOADS`; the file is deleted).
    """
    if config.dataset not in DATASETS:
        raise ConfigError("dataset", f"unknown data set {config.dataset!r}; allowed: {', '.join(DATASETS)}")
    from sklearn.model_selection import train_test_split

    name = config.dataset
    image_shape = IMAGE_SHAPES.get(name)
    if name in OFFICIAL_TEST:
        x_rest, y_rest, x_test, y_test = _load_download(name, _cache_folder(config))
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
        seq_shape=(config.seq_len, 2) if name == "adding" else None,
    )


@dataclass(frozen=True)
class BatchOrder:
    """The training batches of every epoch, as indices into the training split, made on demand.

    Epoch ``e`` is a fresh permutation of ``range(n_train)`` from
    ``numpy.random.default_rng([seed, 2, e])``, cut into ``steps_per_epoch`` batches; the last
    incomplete batch is dropped so every framework takes exactly the same steps. Each epoch is
    drawn from its own seed, so epoch ``e`` costs one permutation whatever ``e`` is, and the object
    is four integers whatever ``epochs`` is (an array of every epoch grew with ``epochs``: 13.8 GB
    for ``--epochs 100000000``). Every process that builds it from the same four numbers gets the
    same batches.

    Indexing and iterating give epochs: ``order[e]`` is :meth:`epoch`, ``for rows in order`` goes
    through all of them (``len(order) == epochs``).

    Attributes:
        n_train: samples in the training split.
        batch_size: samples per step.
        epochs: passes over the training split.
        seed: the config's seed.

    Raises:
        ConfigError: ``batch_size`` < 1 or larger than ``n_train`` (field ``batch_size``), or
            ``epochs`` < 1 (field ``epochs``).
    """

    n_train: int
    batch_size: int
    epochs: int
    seed: int

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.batch_size > self.n_train:
            raise ConfigError(
                "batch_size",
                f"must be between 1 and the training split's {self.n_train} samples (got {self.batch_size})",
            )
        if self.epochs < 1:
            raise ConfigError("epochs", f"must be >= 1 (got {self.epochs})")

    @property
    def steps_per_epoch(self) -> int:
        """Complete batches per epoch: ``n_train // batch_size``."""
        return self.n_train // self.batch_size

    @property
    def total_steps(self) -> int:
        """Training steps of the whole run: ``epochs * steps_per_epoch``."""
        return self.epochs * self.steps_per_epoch

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(epochs, steps_per_epoch, batch_size)``: the shape the whole order would have as one array."""
        return self.epochs, self.steps_per_epoch, self.batch_size

    def epoch(self, e: int) -> np.ndarray:
        """Epoch ``e``'s batches (``0 <= e < epochs``).

        Returns:
            ``int64 (steps_per_epoch, batch_size)``, a new array; no index repeats within it.

        Raises:
            IndexError: ``e`` outside ``0..epochs-1``.
        """
        if not 0 <= e < self.epochs:
            raise IndexError(f"epoch {e} outside 0..{self.epochs - 1}")
        steps = self.steps_per_epoch
        perm = np.random.default_rng([self.seed, 2, int(e)]).permutation(self.n_train)
        return perm[: steps * self.batch_size].astype(np.int64, copy=False).reshape(steps, self.batch_size)

    def first_steps(self, n: int) -> np.ndarray:
        """The batches of training steps ``0..n-1`` in order, crossing epochs, starting over after
        the last step when ``n > total_steps`` (the per-step latency phase replays these).

        Only the epochs those steps touch are drawn.

        Returns:
            ``int64 (n, batch_size)``.
        """
        if n < 1:
            return np.empty((0, self.batch_size), np.int64)
        need = min(n, self.total_steps)
        epochs = -(-need // self.steps_per_epoch)  # ceil
        rows = np.concatenate([self.epoch(e) for e in range(epochs)])[:need]
        return rows[np.arange(n) % need]

    def __getitem__(self, e: int) -> np.ndarray:
        return self.epoch(e)

    def __len__(self) -> int:
        return self.epochs

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.epoch(e) for e in range(self.epochs))


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
    if name == "adding":
        return adding_problem(config.n_samples, config.seq_len, config.seed)
    if name == "covertype":
        return _load_covertype(config)
    raise ConfigError("dataset", f"unknown data set {name!r}; allowed: {', '.join(DATASETS)}")


def adding_problem(n: int, seq_len: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem as classification (module docstring): ``x`` ``float64 (n, seq_len * 2)``
    laid out ``(T, 2)`` = (value, marker), ``y`` ``int64 (n,)`` = whether the two marked values sum
    to more than 1. Drawn from ``numpy.random.default_rng([seed, 3])``.

    Source: Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural Computation 9(8), 1997,
    section 5.4 (there a regression on the sum; the two marks are in the first and second half here
    too, so the first must be remembered for at least ``seq_len / 2`` steps at the end).
    """
    rng = np.random.default_rng([seed, 3])
    values = rng.uniform(0.0, 1.0, (n, seq_len))
    half = seq_len // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, seq_len, n)
    markers = np.zeros((n, seq_len))
    rows = np.arange(n)
    markers[rows, first] = markers[rows, second] = 1.0
    y = (values[rows, first] + values[rows, second] > 1.0).astype(np.int64)
    return np.stack([values, markers], axis=-1).reshape(n, 2 * seq_len), y


def _load_covertype(config: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """Forest CoverType via scikit-learn's ``fetch_covtype`` (downloaded once into the cache
    folder); labels 1..7 become 0..6.

    Raises:
        DatasetUnavailable: not cached and the download failed (offline, blocked).
    """
    from sklearn.datasets import fetch_covtype

    folder = _cache_folder(config)
    try:
        d = fetch_covtype(data_home=str(folder), download_if_missing=True)
    except (OSError, ValueError) as exc:  # URLError is an OSError; a truncated archive a ValueError
        raise DatasetUnavailable(
            f"covertype is not cached in {folder} and could not be downloaded ({type(exc).__name__}: {exc}). "
            f"Run once where the internet is reachable (scikit-learn's fetch_covtype fetches it from "
            f"https://archive.ics.uci.edu/ml/datasets/covertype), or copy that folder here; "
            f"set data_dir or $MLX_EXPLORE_DATA to use another folder"
        ) from None
    return d.data, d.target.astype(np.int64) - 1


def _cache_folder(config: RunConfig) -> Path:
    """``<data_dir>/<data set>``; an existing file where a folder belongs is a config error."""
    root = Path(config.resolved_data_dir()).expanduser()
    source = "data_dir" if config.data_dir else ("$MLX_EXPLORE_DATA" if os.environ.get("MLX_EXPLORE_DATA") else "the default data_dir")
    for path in (root, root / config.dataset):
        if path.exists() and not path.is_dir():
            raise ConfigError(
                "data_dir",
                f"{path} ({source}) is a file; data_dir must be a folder (it is created if missing) "
                f"holding {config.dataset}/ with the data set's files",
            )
    return root / config.dataset


def _load_download(name: str, folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(x_train, y_train, x_test, y_test)`` with images flattened in HWC order; every file
    is verified against :data:`DOWNLOADS` first (:func:`fetch`)."""
    files = [fetch(name, fname, url, sha256, folder) for fname, url, sha256 in DOWNLOADS[name]]
    if name == "mnist":
        with np.load(files[0], allow_pickle=False) as d:
            xtr, ytr, xte, yte = d["x_train"], d["y_train"], d["x_test"], d["y_test"]
    elif name == "fashion_mnist":
        ytr, xtr, yte, xte = (_read_idx_gz(f) for f in files)
    else:
        xtr, ytr, xte, yte = _read_cifar10_binary(files[0])
    flat = lambda a: a.reshape(a.shape[0], -1)  # noqa: E731
    return flat(xtr), ytr.astype(np.int64), flat(xte), yte.astype(np.int64)


def fetch(name: str, fname: str, url: str, sha256: str, folder: Path) -> Path:
    """The verified file ``folder/fname`` of data set ``name``, downloaded from ``url`` if missing.

    A cached file is hashed every time it is used and is only returned when its SHA-256 equals
    ``sha256`` (a truncated download or a stray file is never parsed). A cached file that does not
    match is deleted and downloaded again. Downloads go through ``pooch.retrieve``, which writes to
    a temporary file in ``folder``, checks the hash and only then moves it into place; a download
    that does not match is deleted. Timeout per request: ``$MLX_EXPLORE_DOWNLOAD_TIMEOUT`` seconds
    (default 30).

    Returns:
        ``folder / fname``.

    Raises:
        DatasetUnavailable: the file could not be downloaded (offline: the message gives the URL
            and where to put the file), or the downloaded bytes did not match ``sha256``.
    """
    import pooch

    dest = folder / fname
    removed = ""
    if dest.exists():
        got = pooch.file_hash(str(dest), alg="sha256")
        if got == sha256:
            return dest
        dest.unlink()
        removed = (f"The cached {dest} was not the published file (SHA-256 {got}, expected {sha256}): "
                   f"it was deleted, unread. ")  # fmt: skip
    where = (f"Download {url} on a machine that is online and put it at {dest} "
             f"(or set data_dir / MLX_EXPLORE_DATA to a folder holding {name}/{fname}); "
             f"its SHA-256 must be {sha256}.")  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    timeout = float(os.environ.get("MLX_EXPLORE_DOWNLOAD_TIMEOUT", "30"))
    try:
        pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=fname, path=folder,
                       downloader=pooch.HTTPDownloader(progressbar=False, timeout=timeout))  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - a network failure or a hash mismatch: both end here
        dest.unlink(missing_ok=True)  # pooch moves a file into place only once verified; be sure
        if isinstance(exc, ValueError) and "hash" in str(exc).lower():  # pooch's hash mismatch
            raise DatasetUnavailable(
                f"{removed}The download of {url} for data set {name!r} did not match the published SHA-256 "
                f"{sha256} ({exc}); it was deleted, unread. Try again later, or {where[0].lower()}{where[1:]}"
            ) from None
        raise DatasetUnavailable(
            f"{removed}data set {name!r} is not cached and could not be downloaded ({type(exc).__name__}: {exc}). {where}"
        ) from exc
    return dest


def _read_idx_gz(path: Path) -> np.ndarray:
    # IDX format (http://yann.lecun.com/exdb/mnist/): magic (2 zero bytes, dtype, ndim), dims, data.
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(tuple(int(d) for d in dims))


#: Bytes of one record of the CIFAR-10 binary version: a label byte, then 3072 pixel bytes (the
#: 1024 red, then green, then blue values of a 32x32 image, rows in order: CHW).
CIFAR_RECORD = 1 + 3 * 32 * 32


def _read_cifar10_binary(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # CIFAR-10 binary version (https://www.cs.toronto.edu/~kriz/cifar.html): data_batch_1..5.bin and
    # test_batch.bin in cifar-10-batches-bin/, each 10000 records of CIFAR_RECORD bytes. Members are
    # read in memory, nothing is extracted to disk; only raw bytes, no pickle.
    def batches(tar: tarfile.TarFile, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        raw = b"".join(tar.extractfile(f"cifar-10-batches-bin/{n}").read() for n in names)
        rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
        return rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), rec[:, 0]

    with tarfile.open(path, "r:gz") as tar:
        xtr, ytr = batches(tar, [f"data_batch_{i}.bin" for i in range(1, 6)])
        xte, yte = batches(tar, ["test_batch.bin"])
    return xtr, ytr, xte, yte
