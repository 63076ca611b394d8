"""Data sets load with the documented shapes; splits, scaling and batch order are as documented."""

import gzip
import pickle
import struct
import tarfile
import io

import numpy as np
import pytest

from mlx_explore.config import ConfigError, RunConfig
from mlx_explore.data import DatasetUnavailable, batch_order, load_dataset, train_size

SHAPES = {  # name: (samples, features, classes, image_shape)
    "digits": (1797, 64, 10, (8, 8, 1)),
    "breast_cancer": (569, 30, 2, None),
    "wine": (178, 13, 3, None),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_sklearn_datasets_have_documented_shapes(name):
    n, f, c, image = SHAPES[name]
    cfg = RunConfig.build(dataset=name, batch_size=8)
    d = load_dataset(cfg)
    sizes = [len(d.y_train), len(d.y_val), len(d.y_test)]
    assert sum(sizes) == n
    assert len(d.y_train) == train_size(cfg)
    assert d.x_train.shape == (sizes[0], f) and d.x_train.dtype == np.float32
    assert d.y_train.dtype == np.int64
    assert d.n_classes == c and d.image_shape == image
    # stratified: every class in every split
    for y in (d.y_train, d.y_val, d.y_test):
        assert set(np.unique(y)) == set(range(c))
    # test share as configured (ceil, like scikit-learn)
    assert sizes[2] == int(np.ceil(0.15 * n))


def test_scaling_is_fitted_on_train_only():
    d = load_dataset(RunConfig.build(dataset="wine", batch_size=8))
    np.testing.assert_allclose(d.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(d.x_train.std(axis=0), 1, atol=1e-4)
    assert np.abs(d.x_test.mean(axis=0)).max() > 1e-3  # the test split was not used for fitting


def test_digits_images_are_nhwc_views_of_the_features():
    from sklearn.datasets import load_digits

    d = load_dataset(RunConfig.build(dataset="digits"))
    img = d.images(d.x_train)
    assert img.shape == (len(d.x_train), 8, 8, 1)
    # pixel (row, col) of the raw image is feature row*8+col: same ordering after scaling
    raw = load_digits().images
    assert np.corrcoef(img[:, 2, 5, 0], d.x_train[:, 2 * 8 + 5])[0, 1] == pytest.approx(1.0)
    assert raw.shape[1:] == (8, 8)


def test_synthetic_size_and_features_are_parameters():
    cfg = RunConfig.build(dataset="synthetic", n_samples=500, n_features=12, n_classes=3)
    d = load_dataset(cfg)
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 500
    assert d.n_features == 12 and d.n_classes == 3 and d.image_shape is None


def test_same_seed_same_split_other_seed_other_split():
    a = load_dataset(RunConfig.build(dataset="wine", seed=3, batch_size=8))
    b = load_dataset(RunConfig.build(dataset="wine", seed=3, batch_size=8))
    c = load_dataset(RunConfig.build(dataset="wine", seed=4, batch_size=8))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)


def test_batch_order_shape_drop_last_and_permutations():
    order = batch_order(103, 10, 3, seed=0)
    assert order.shape == (3, 10, 10) and order.dtype == np.int64
    for epoch in order:
        flat = epoch.ravel()
        assert len(set(flat)) == 100 and flat.max() < 103  # no repeats within an epoch
    assert not np.array_equal(order[0], order[1])  # reshuffled each epoch
    np.testing.assert_array_equal(order, batch_order(103, 10, 3, seed=0))


def test_batch_order_rejects_bad_sizes():
    with pytest.raises(ConfigError) as info:
        batch_order(100, 101, 1, 0)
    assert info.value.field == "batch_size"
    with pytest.raises(ConfigError) as info:
        batch_order(100, 10, 0, 0)
    assert info.value.field == "epochs"


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_download_datasets_fail_offline_saying_where_to_put_files(name, tmp_path, monkeypatch):
    import urllib.request

    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset(RunConfig.build(dataset=name, data_dir=str(tmp_path)))
    msg = str(info.value)
    assert str(tmp_path / name) in msg and "https://" in msg and "network is unreachable" in msg
    assert not any(tmp_path.rglob("*.part"))  # nothing half-written left behind


def _idx_gz(path, arr):
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def _fake_images(n, shape, rng):
    y = np.arange(n) % 10
    x = rng.integers(0, 256, size=(n, *shape)).astype(np.uint8)
    return x, y


def test_cached_mnist_fashion_and_cifar_files_load_in_official_format(tmp_path):
    rng = np.random.default_rng(0)
    # MNIST: Keras's mnist.npz
    (tmp_path / "mnist").mkdir()
    xtr, ytr = _fake_images(200, (28, 28), rng)
    xte, yte = _fake_images(50, (28, 28), rng)
    np.savez(tmp_path / "mnist" / "mnist.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    d = load_dataset(RunConfig.build(dataset="mnist", data_dir=str(tmp_path)))
    assert d.image_shape == (28, 28, 1) and d.x_train.shape[1] == 784 and len(d.y_test) == 50
    assert len(d.y_train) + len(d.y_val) == 200
    # Fashion-MNIST: four IDX files, gzip
    (tmp_path / "fashion_mnist").mkdir()
    for stem, arr in [("train-labels-idx1-ubyte", ytr), ("train-images-idx3-ubyte", xtr),
                      ("t10k-labels-idx1-ubyte", yte), ("t10k-images-idx3-ubyte", xte)]:  # fmt: skip
        _idx_gz(tmp_path / "fashion_mnist" / f"{stem}.gz", arr)
    f = load_dataset(RunConfig.build(dataset="fashion_mnist", data_dir=str(tmp_path)))
    assert f.x_test.shape == (50, 784) and np.array_equal(np.sort(f.y_test), np.sort(yte))
    # CIFAR-10: python batches in a tar.gz, rows stored CHW
    (tmp_path / "cifar10").mkdir()
    with tarfile.open(tmp_path / "cifar10" / "cifar-10-python.tar.gz", "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            x, y = _fake_images(40, (3, 32, 32), rng)
            blob = pickle.dumps({b"data": x.reshape(40, -1), b"labels": list(y)})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    c = load_dataset(RunConfig.build(dataset="cifar10", data_dir=str(tmp_path), batch_size=16))
    assert c.image_shape == (32, 32, 3) and c.x_train.shape[1] == 3072 and len(c.y_test) == 40
