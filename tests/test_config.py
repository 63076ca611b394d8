"""Bad input gets a clear error naming the field and the allowed values (API and CLI, exit 2)."""

import pytest

from mlx_explore.config import DATASETS, FRAMEWORKS, ConfigError, RunConfig

from .conftest import run_cli


@pytest.mark.parametrize(
    "kwargs, field, must_mention",
    [
        ({"model": "resnet"}, "model", ["logreg", "mlp", "cnn"]),
        ({"dataset": "imagenet"}, "dataset", list(DATASETS)),
        ({"frameworks": "torch,mxnet"}, "frameworks", ["mxnet", *FRAMEWORKS]),
        ({"frameworks": ""}, "frameworks", list(FRAMEWORKS)),
        ({"optimizer": "rmsprop"}, "optimizer", ["sgd", "momentum", "adam"]),
        ({"device": "npu"}, "device", ["auto", "cpu", "gpu", "tpu"]),
        ({"batch_size": 0}, "batch_size", ["greater than or equal to 1"]),
        ({"batch_size": -3}, "batch_size", ["-3"]),
        ({"lr": 0}, "lr", ["greater than 0"]),
        ({"lr": -0.1}, "lr", ["greater than 0"]),
        ({"epochs": 0}, "epochs", ["greater than or equal to 1"]),
        ({"batch_size": 1258}, "batch_size", ["1257", "1258"]),  # digits' training split is 1257
        ({"model": "cnn", "dataset": "wine"}, "model", ["image data set", "digits"]),
        ({"model": "cnn", "dataset": "breast_cancer"}, "model", ["image data set"]),
        ({"hidden": "64,0"}, "hidden", ["between 1 and"]),
        ({"momentum": 1.0}, "momentum", ["less than 1"]),
        ({"bogus": 1}, "bogus", ["unknown option"]),
        # Hardening (issue 11): each of these ran before, silently or into a traceback.
        ({"model": "mlp", "hidden": ""}, "hidden", ["at least one hidden layer", "logreg"]),
        ({"hidden": "64,2000000"}, "hidden", ["1,000,000"]),
        ({"lr": float("inf")}, "lr", ["finite"]),
        ({"lr": float("nan")}, "lr", ["finite"]),
        ({"momentum": float("nan")}, "momentum", ["finite"]),
        ({"timeout_s": float("inf")}, "timeout_s", ["finite"]),
        ({"timeout_s": 1e9}, "timeout_s", ["604800"]),
        ({"threads": 10_000}, "threads", ["cores", "10000"]),
        ({"epochs": 100_000_000}, "epochs", ["1000000"]),
        ({"epochs": True}, "epochs", ["boolean"]),
        ({"log_every": 10_000}, "log_every", ["390 training steps", "10000"]),  # 10 epochs x 39 steps
        ({"data_dir": ""}, "data_dir", ["folder"]),
        ({"data_dir": "a\x00b"}, "data_dir", ["NUL"]),
        ({"dataset": "wine", "val_fraction": 0.01}, "val_fraction", ["3 classes", "2 samples"]),
        ({"dataset": "synthetic", "n_samples": 20, "n_classes": 10}, "n_samples", ["10 classes"]),
        ({"dataset": "synthetic", "n_samples": 10**9}, "n_samples", ["100000000"]),
    ],
)
def test_bad_values_name_field_and_allowed_values(kwargs, field, must_mention):
    with pytest.raises(ConfigError) as info:
        RunConfig.build(**kwargs)
    assert info.value.field == field
    for text in must_mention:
        assert text in info.value.message, info.value.message


def test_good_config_parses_comma_lists_and_is_frozen():
    c = RunConfig.build(frameworks="jax, torch", hidden="128,64", batch_size=1257)
    assert c.frameworks == ("jax", "torch")
    assert c.hidden == (128, 64)
    with pytest.raises(Exception):
        c.epochs = 3  # frozen: a config is a record of what ran


def test_batch_limit_follows_the_synthetic_size():
    RunConfig.build(dataset="synthetic", n_samples=1000, batch_size=600)  # 70% of 1000 = 700 train
    with pytest.raises(ConfigError, match="batch_size"):
        RunConfig.build(dataset="synthetic", n_samples=1000, batch_size=701)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--model", "resnet"], "--model: 'resnet' is not allowed; allowed: logreg, mlp, cnn"),
        (["--dataset", "imagenet"], "--dataset: unknown data set 'imagenet'; allowed: digits"),
        (["--frameworks", "torch,mxnet"], "--frameworks: unknown framework(s) 'mxnet'; allowed: torch, jax, tensorflow, sklearn"),
        (["--batch-size", "0"], "--batch-size:"),
        (["--batch-size", "99999"], "--batch-size: must be between 1 and the training split's 1257 samples"),
        (["--lr", "0"], "--lr:"),
        (["--epochs", "0"], "--epochs:"),
        (["--model", "cnn", "--dataset", "wine"], "--model: model 'cnn' needs an image data set"),
        (["--optimizer", "lbfgs"], "--optimizer: 'lbfgs' is not allowed; allowed: sgd, momentum, adam"),
    ],
)
def test_cli_bad_input_exits_2_with_message(args, expected):
    proc = run_cli("compare", *args, "--quiet")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in " ".join(proc.stderr.split()), proc.stderr
    assert "Traceback" not in proc.stderr
