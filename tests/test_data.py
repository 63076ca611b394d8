"""Data sets load with the documented shapes; splits, scaling and batch order are as documented;
downloads are verified against their published SHA-256; a run too big for memory is refused
before anything is allocated."""

import functools
import gzip
import hashlib
import http.server
import io
import socket
import struct
import tarfile
import threading
import time
import tracemalloc

import numpy as np
import pytest

from mlx_explore import data as data_mod
from mlx_explore.config import ConfigError, RunConfig
from mlx_explore.data import BatchOrder, DatasetUnavailable, load_dataset, train_size

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
    order = BatchOrder(103, 10, 3, seed=0)
    assert order.shape == (3, 10, 10) and (order.steps_per_epoch, order.total_steps) == (10, 30)
    epochs = list(order)
    assert len(epochs) == len(order) == 3
    for epoch in epochs:
        assert epoch.shape == (10, 10) and epoch.dtype == np.int64
        flat = epoch.ravel()
        assert len(set(flat)) == 100 and flat.min() >= 0 and flat.max() < 103  # no repeats within an epoch
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch
    again = BatchOrder(103, 10, 3, seed=0)
    for e in range(3):
        np.testing.assert_array_equal(order[e], again.epoch(e))  # deterministic per seed
    assert not np.array_equal(order[0], BatchOrder(103, 10, 3, seed=1)[0])  # and the seed matters
    with pytest.raises(IndexError):
        order.epoch(3)


def test_each_epoch_is_the_prefix_of_its_own_seeded_permutation():
    # Epoch e depends on (seed, e) only: not on how many epochs the run has, nor on epochs before it.
    order = BatchOrder(103, 10, 10**9, seed=5)
    for e in (0, 1, 7, 10**9 - 1):
        expected = np.random.default_rng([5, 2, e]).permutation(103)[:100].reshape(10, 10)
        np.testing.assert_array_equal(order.epoch(e), expected)
    np.testing.assert_array_equal(order.epoch(7), BatchOrder(103, 10, 8, seed=5).epoch(7))


def test_first_steps_cross_epochs_and_cycle_over_the_run():
    order = BatchOrder(50, 16, 3, seed=0)  # 3 steps an epoch, 9 in all
    every = np.concatenate(list(order))
    np.testing.assert_array_equal(order.first_steps(5), every[:5])  # crosses into epoch 1
    cycled = order.first_steps(20)
    assert cycled.shape == (20, 16) and cycled.dtype == np.int64
    np.testing.assert_array_equal(cycled, every[np.arange(20) % 9])  # starts over after step 9
    assert order.first_steps(0).shape == (0, 16)


def test_batch_order_for_a_billion_epochs_allocates_nothing_big():
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        order = BatchOrder(1257, 32, 10**9, seed=0)
        last = order.epoch(10**9 - 1)
        rows = order.first_steps(202)  # what the latency phase asks for
        _, peak = tracemalloc.get_traced_memory()
        seconds = time.perf_counter() - t0
    finally:
        tracemalloc.stop()
    assert order.total_steps == 39 * 10**9 and last.shape == (39, 32) and rows.shape == (202, 32)
    assert peak < 1 << 20, f"{peak / 2**20:.1f} MiB traced for a billion epochs"
    assert seconds < 1.0


def test_prepare_of_a_million_epochs_is_quick_small_and_saves_no_order(tmp_path):
    from mlx_explore.bundle import Bundle, prepare

    small = prepare(RunConfig.build(dataset="digits", hidden=(16,), epochs=1))
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        big = prepare(RunConfig.build(dataset="digits", hidden=(16,), epochs=1_000_000))
        _, peak = tracemalloc.get_traced_memory()
        seconds = time.perf_counter() - t0
    finally:
        tracemalloc.stop()
    # Before: an int64 array of every epoch, 1e6 x 39 x 32 x 8 bytes = 10 GB.
    assert peak < 64 << 20, f"{peak / 2**20:.0f} MiB traced"
    assert seconds < 30
    assert big.total_steps == 39 * 10**6 and big.steps_per_epoch == 39
    # The bundle file a child loads does not grow with epochs, and the child rebuilds the same order.
    small.save(tmp_path / "small.npz")
    big.save(tmp_path / "big.npz")
    sizes = [(tmp_path / f).stat().st_size for f in ("small.npz", "big.npz")]
    assert abs(sizes[1] - sizes[0]) < 100, sizes  # the config's text differs, nothing else
    with np.load(tmp_path / "big.npz") as z:
        assert "order" not in z.files
    loaded = Bundle.load(tmp_path / "big.npz")
    assert loaded.order == big.order and loaded.total_steps == big.total_steps
    np.testing.assert_array_equal(loaded.order.epoch(999_999), big.order.epoch(999_999))


def test_batch_order_rejects_bad_sizes():
    with pytest.raises(ConfigError) as info:
        BatchOrder(100, 101, 1, 0)
    assert info.value.field == "batch_size" and "100" in info.value.message
    with pytest.raises(ConfigError) as info:
        BatchOrder(100, 0, 1, 0)
    assert info.value.field == "batch_size"
    with pytest.raises(ConfigError) as info:
        BatchOrder(100, 10, 0, 0)
    assert info.value.field == "epochs"


# ------------------------------------------------------------------------------ memory estimate

GIB = 1 << 30


def test_memory_estimate_of_the_default_run_is_small_and_fits():
    from mlx_explore.bundle import check_memory, estimate_memory

    config = RunConfig.build()
    est = estimate_memory(config)
    assert est.n_params == 64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    assert est.params_bytes == 4 * est.n_params * 6  # Adam: weights, grads, 2 moments, canonical, transient
    assert 1 << 20 < est.total_bytes < 256 << 20
    assert check_memory(config, available=1 * GIB) == est
    # SGD keeps no optimizer state: two copies fewer than Adam
    assert estimate_memory(RunConfig.build(optimizer="sgd")).params_bytes == 4 * est.n_params * 4


@pytest.mark.parametrize(
    "kwargs, available, field, must_mention",
    [
        ({"hidden": "100000,100000"}, 16 * GIB, "hidden", ["MLP 64-100000-100000-10", "1.0e+10 parameters", "16 GiB", "smaller hidden"]),
        ({"dataset": "synthetic", "n_samples": 10**8, "n_features": 1000}, 16 * GIB, "n_samples", ["100000000 samples", "16 GiB"]),
        ({"dataset": "synthetic", "n_samples": 2000, "n_features": 10**5}, 1 * GIB, "n_features", ["100000 features"]),
        ({"dataset": "synthetic", "n_samples": 2000, "n_features": 10**5, "hidden": (10_000,)}, 16 * GIB,
         "n_features", ["MLP 100000-10000-2", "parameters", "fewer features"]),  # the input layer dominates
        ({"dataset": "synthetic", "n_samples": 2000, "n_features": 10**4, "hidden": (100_000,)}, 16 * GIB,
         "hidden", ["MLP 10000-100000-2", "smaller hidden"]),
        ({"dataset": "synthetic", "n_samples": 10**7, "n_features": 2, "batch_size": 10**6, "hidden": (100_000,)}, 16 * GIB,
         "batch_size", ["1000000 samples", "smaller batch"]),
        ({"dataset": "cifar10", "model": "cnn"}, 64 << 20, "dataset", ["cifar10", "60000 samples"]),
    ],
)
def test_memory_check_names_the_field_and_the_limit(kwargs, available, field, must_mention):
    from mlx_explore.bundle import check_memory

    config = RunConfig.build(**kwargs)
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        with pytest.raises(ConfigError) as info:
            check_memory(config, available=available)
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.field == field, info.value
    for text in must_mention:
        assert text in info.value.message, info.value.message
    assert seconds < 1.0 and peak < 1 << 20


def test_prepare_refuses_a_model_too_big_before_allocating(monkeypatch):
    from mlx_explore import bundle as bundle_mod

    monkeypatch.setattr(bundle_mod, "available_memory", lambda: 16 * GIB)
    loaded = []
    monkeypatch.setattr(bundle_mod, "load_dataset", lambda config: loaded.append(config))
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as info:  # before: init_weights drew 1e10 float64 values (80 GB)
        bundle_mod.prepare(RunConfig.build(hidden="100000,100000"))
    assert info.value.field == "hidden" and time.perf_counter() - t0 < 1.0
    assert not loaded  # refused before the data set was even loaded


def test_available_memory_reads_this_machine():
    from mlx_explore.bundle import available_memory

    avail = available_memory()
    with open("/proc/meminfo") as f:
        total = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemTotal:"))
    assert avail is not None and 0 < avail <= total


# ------------------------------------------------------------------------------------ downloads


def test_download_table_has_a_published_sha256_for_every_file():
    assert set(data_mod.DOWNLOADS) == {"mnist", "fashion_mnist", "cifar10"}
    for name, files in data_mod.DOWNLOADS.items():
        for fname, url, sha in files:
            assert url.startswith("https://") and url.endswith("/" + fname), (name, url)
            assert len(sha) == 64 and int(sha, 16) >= 0, (name, fname)
    assert data_mod.DOWNLOADS["cifar10"][0][0] == "cifar-10-binary.tar.gz"  # raw bytes, never a pickle


class _Server:
    """A local HTTP server over a folder, counting the requests it answers."""

    def __init__(self, root):
        self.requests = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                outer.requests.append(self.path)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, fname):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{fname}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    srv = _Server(root)
    srv.root = root
    yield srv
    srv.close()


def _closed_port_url(fname):
    with socket.socket() as s:  # a port nothing listens on: connection refused, as offline
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{fname}"


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fake_mnist(path, rng, n_train=200, n_test=50):
    xtr, ytr = _fake_images(n_train, (28, 28), rng)
    xte, yte = _fake_images(n_test, (28, 28), rng)
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)


def _only_mnist(monkeypatch, url, sha):
    monkeypatch.setitem(data_mod.DOWNLOADS, "mnist", [("mnist.npz", url, sha)])


def test_a_verified_download_loads_and_is_reused_from_the_cache(server, tmp_path, monkeypatch):
    _fake_mnist(server.root / "mnist.npz", np.random.default_rng(0))
    _only_mnist(monkeypatch, server.url("mnist.npz"), _sha256(server.root / "mnist.npz"))
    cache = tmp_path / "cache"
    config = RunConfig.build(dataset="mnist", data_dir=str(cache))
    d = load_dataset(config)
    assert d.image_shape == (28, 28, 1) and len(d.y_test) == 50 and len(d.y_train) + len(d.y_val) == 200
    assert (cache / "mnist" / "mnist.npz").read_bytes() == (server.root / "mnist.npz").read_bytes()
    assert server.requests == ["/mnist.npz"]
    server.close()  # offline now: the verified cache is enough
    np.testing.assert_array_equal(load_dataset(config).x_test, d.x_test)
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == ["mnist.npz"]  # no temporary files left


def test_a_download_with_the_wrong_hash_is_deleted_unread(server, tmp_path, monkeypatch):
    _fake_mnist(server.root / "mnist.npz", np.random.default_rng(0))
    published = "0" * 64
    _only_mnist(monkeypatch, server.url("mnist.npz"), published)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset(RunConfig.build(dataset="mnist", data_dir=str(cache)))
    msg = str(info.value)
    assert "SHA-256" in msg and published in msg and "deleted" in msg and server.url("mnist.npz") in msg
    assert server.requests == ["/mnist.npz"]
    assert not any((cache / "mnist").iterdir())  # neither the file nor a temporary one is left


@pytest.mark.parametrize("garbage", [b"", b"not an npz at all", b"PK\x03\x04truncated zip"])
def test_a_corrupt_cached_file_is_replaced_by_a_verified_download(garbage, server, tmp_path, monkeypatch):
    _fake_mnist(server.root / "mnist.npz", np.random.default_rng(0))
    _only_mnist(monkeypatch, server.url("mnist.npz"), _sha256(server.root / "mnist.npz"))
    cache = tmp_path / "cache"
    (cache / "mnist").mkdir(parents=True)
    (cache / "mnist" / "mnist.npz").write_bytes(garbage)
    d = load_dataset(RunConfig.build(dataset="mnist", data_dir=str(cache)))
    assert len(d.y_test) == 50 and server.requests == ["/mnist.npz"]
    assert (cache / "mnist" / "mnist.npz").read_bytes() == (server.root / "mnist.npz").read_bytes()


def test_a_corrupt_cached_file_offline_names_the_file_and_how_to_get_it(tmp_path, monkeypatch):
    # A truncated copy of a good file: np.load would fail on it with a raw "pickled data" ValueError.
    good = tmp_path / "good.npz"
    _fake_mnist(good, np.random.default_rng(0))
    url = _closed_port_url("mnist.npz")
    _only_mnist(monkeypatch, url, _sha256(good))
    cache = tmp_path / "cache"
    (cache / "mnist").mkdir(parents=True)
    cached = cache / "mnist" / "mnist.npz"
    cached.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset(RunConfig.build(dataset="mnist", data_dir=str(cache)))
    msg = str(info.value)
    assert str(cached) in msg and "deleted" in msg and url in msg and _sha256(good) in msg
    assert not cached.exists()


def test_data_dir_that_is_a_file_is_a_config_error_before_any_download(server, tmp_path, monkeypatch):
    _fake_mnist(server.root / "mnist.npz", np.random.default_rng(0))
    _only_mnist(monkeypatch, server.url("mnist.npz"), _sha256(server.root / "mnist.npz"))
    a_file = tmp_path / "not_a_folder"
    a_file.write_text("x")
    with pytest.raises(ConfigError) as info:
        load_dataset(RunConfig.build(dataset="mnist", data_dir=str(a_file)))
    assert info.value.field == "data_dir" and str(a_file) in info.value.message and "folder" in info.value.message
    assert server.requests == []
    assert a_file.read_text() == "x"


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_download_datasets_fail_offline_saying_where_to_put_files(name, tmp_path, monkeypatch):
    files = [(fname, _closed_port_url(fname), sha) for fname, _, sha in data_mod.DOWNLOADS[name]]
    monkeypatch.setitem(data_mod.DOWNLOADS, name, files)
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset(RunConfig.build(dataset=name, data_dir=str(tmp_path)))
    msg = str(info.value)
    assert str(tmp_path / name / files[0][0]) in msg and files[0][1] in msg and files[0][2] in msg
    assert "could not be downloaded" in msg
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # nothing half-written left behind


def test_the_real_download_urls_are_kept_for_colab():
    assert data_mod.DOWNLOADS["mnist"][0][1] == "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
    assert data_mod.DOWNLOADS["cifar10"][0][1] == "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"


def _idx_gz(path, arr):
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def _fake_images(n, shape, rng):
    y = np.arange(n) % 10
    x = rng.integers(0, 256, size=(n, *shape)).astype(np.uint8)
    return x, y


def _trust_cached(monkeypatch, folder, name):
    """Point the table's hashes at the files just written into ``folder`` (no network: cached)."""
    files = [(fname, url, _sha256(folder / fname)) for fname, url, _ in data_mod.DOWNLOADS[name]]
    monkeypatch.setitem(data_mod.DOWNLOADS, name, files)


def test_cached_mnist_fashion_and_cifar_files_load_in_official_format(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    # MNIST: Keras's mnist.npz
    (tmp_path / "mnist").mkdir()
    xtr, ytr = _fake_images(200, (28, 28), rng)
    xte, yte = _fake_images(50, (28, 28), rng)
    np.savez(tmp_path / "mnist" / "mnist.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    _trust_cached(monkeypatch, tmp_path / "mnist", "mnist")
    d = load_dataset(RunConfig.build(dataset="mnist", data_dir=str(tmp_path)))
    assert d.image_shape == (28, 28, 1) and d.x_train.shape[1] == 784 and len(d.y_test) == 50
    assert len(d.y_train) + len(d.y_val) == 200
    # Fashion-MNIST: four IDX files, gzip
    (tmp_path / "fashion_mnist").mkdir()
    for stem, arr in [("train-labels-idx1-ubyte", ytr), ("train-images-idx3-ubyte", xtr),
                      ("t10k-labels-idx1-ubyte", yte), ("t10k-images-idx3-ubyte", xte)]:  # fmt: skip
        _idx_gz(tmp_path / "fashion_mnist" / f"{stem}.gz", arr)
    _trust_cached(monkeypatch, tmp_path / "fashion_mnist", "fashion_mnist")
    f = load_dataset(RunConfig.build(dataset="fashion_mnist", data_dir=str(tmp_path)))
    assert f.x_test.shape == (50, 784) and np.array_equal(np.sort(f.y_test), np.sort(yte))
    # CIFAR-10 binary version: records of 1 label byte + 3072 pixel bytes (CHW), no pickle
    (tmp_path / "cifar10").mkdir()
    test_x = None
    with tarfile.open(tmp_path / "cifar10" / "cifar-10-binary.tar.gz", "w:gz") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            x, y = _fake_images(40, (3, 32, 32), rng)
            blob = np.concatenate([y.astype(np.uint8)[:, None], x.reshape(40, -1)], axis=1).tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
            test_x, test_y = x, y
    _trust_cached(monkeypatch, tmp_path / "cifar10", "cifar10")
    c = load_dataset(RunConfig.build(dataset="cifar10", data_dir=str(tmp_path), batch_size=16))
    assert c.image_shape == (32, 32, 3) and c.x_train.shape[1] == 3072 and len(c.y_test) == 40
    assert np.array_equal(np.sort(c.y_test), np.sort(test_y))
    # pixels are HWC after loading: red at (row 0, col 1) of the first test image is raw byte 1 of its record
    raw = test_x.transpose(0, 2, 3, 1).reshape(40, -1).astype(np.float32) / 255
    # scaling is one affine map for images: the correlation with the raw pixels is exact
    order = np.lexsort(raw.T[::-1])
    got = c.images(c.x_test).reshape(40, -1)
    got = got[np.lexsort(got.T[::-1])]
    assert np.corrcoef(got.ravel(), raw[order].ravel())[0, 1] == pytest.approx(1.0, abs=1e-6)
