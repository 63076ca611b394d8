"""The generated bad-input suite (hypothesis, https://hypothesis.readthedocs.io/).

Hypothesis generates values for every ``RunConfig`` field and every CLI option: numbers at and
beyond their bounds, non-finite floats, empty and huge strings, duplicates, wrong types. The
invariant, for every example:

* **API**: ``RunConfig.build`` either returns a config, and then the parent's preparation of a
  run (data, weights, batch order: ``bundle.prepare``) succeeds or fails with ``ConfigError`` /
  ``DatasetUnavailable``, and a tiny run of it starts in a child; or it raises ``ConfigError``
  whose ``field`` is a real field. Never another exception, never a hang.
* **CLI**: the command exits 0 or 1 having run and printed its table, or exits 2 with a message
  that names a real option; never a traceback, never a hang (a deadline per example).

CI runs few examples (profile ``ci``); ``make fuzz`` runs the same properties far longer
(``HYPOTHESIS_PROFILE=fuzz``). **Every command or option a later issue adds joins this suite
when it lands**: add its options to ``COMPARE_OPTIONS`` / ``RESULTS_OPTIONS`` (or a table of its
own) and a property like the ones below.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlx_explore.config import ConfigError, RunConfig

settings.register_profile(
    "ci", max_examples=25, deadline=dt.timedelta(seconds=60), derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)  # fmt: skip
settings.register_profile(
    "fuzz", max_examples=2000, deadline=dt.timedelta(seconds=120),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)  # fmt: skip
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: The cheapest valid run: every example changes one or more of these.
CHEAP = dict(model="logreg", dataset="wine", frameworks=("sklearn",), epochs=1, latency_steps=0, batch_size=16)

# ------------------------------------------------------------------------------- value strategies

huge_ints = st.integers(min_value=-(2**80), max_value=2**80)
edge_ints = st.sampled_from([-1, 0, 1, 2, 3, 7, 100, 1257, 10**6, 10**6 + 1, 2**31, 2**32, 2**63, 10**20])
any_int = st.one_of(edge_ints, st.integers(-5, 50), huge_ints)
any_float = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 1e-3, 0.5, 0.8, 0.999999, 1.0, 1e9, 1e308, math.inf, -math.inf, math.nan]),
)
texts = st.one_of(st.text(max_size=20), st.text(min_size=1000, max_size=3000), st.sampled_from(["", " ", ",", ",,", "\x00"]))
wrong_types = st.one_of(st.none(), st.booleans(), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
any_value = st.one_of(any_int, any_float, texts, wrong_types)

#: For every RunConfig field: values of its own kind (in and out of bounds) plus anything at all.
FIELD_VALUES = {
    "model": st.one_of(st.sampled_from(["logreg", "mlp", "cnn", "gru", "transformer", "gbdt", "MLP", "resnet"]), any_value),
    "dataset": st.one_of(st.sampled_from(["digits", "breast_cancer", "wine", "synthetic", "mnist", "adding", "imagenet"]),
                         any_value),
    "frameworks": st.one_of(
        st.lists(st.sampled_from(["torch", "jax", "tensorflow", "sklearn", "xgboost", "lightgbm", "mxnet", ""]), max_size=5),
        st.sampled_from(["sklearn", "sklearn,sklearn", "torch, jax", ",", "sklearn,,"]), any_value,
    ),
    "epochs": any_int,
    "batch_size": any_int,
    "lr": any_float,
    "optimizer": st.one_of(st.sampled_from(["sgd", "momentum", "adam", "lbfgs"]), any_value),
    "momentum": any_float,
    "hidden": st.one_of(
        st.lists(any_int, max_size=4), st.sampled_from(["", "64", "64,32", "64,,32", "a,b", "0", "-1", "1e3"]),
        st.lists(st.just(1), min_size=60, max_size=70), any_value,
    ),
    "activation": st.one_of(st.sampled_from(["relu", "tanh", "sigmoid", "gelu"]), any_value),
    "seed": any_int,
    "device": st.one_of(st.sampled_from(["auto", "cpu", "gpu", "tpu", "npu"]), any_value),
    "mode": st.one_of(st.sampled_from(["eager", "compiled", "both", "jit"]), any_value),
    "precision": st.one_of(st.sampled_from(["fp32", "bf16", "fp16"]), any_value),
    "threads": st.one_of(st.none(), any_int),
    "repeat": any_int,
    "deterministic": st.one_of(st.booleans(), any_value),
    "latency_steps": any_int,
    "profile_steps": any_int,
    "export": st.one_of(st.sampled_from(["none", "onnx", "tflite", "ONNX"]), any_value),
    "log_every": any_int,
    "val_fraction": any_float,
    "test_fraction": any_float,
    "n_samples": any_int,
    "n_features": any_int,
    "n_classes": any_int,
    "seq_len": any_int,
    "rounds": any_int,
    "max_depth": any_int,
    "data_dir": st.one_of(st.none(), texts, st.sampled_from(["/etc/passwd", "/proc/nowhere", "/tmp"])),
    "timeout_s": st.one_of(st.none(), any_float),
}


def test_every_field_has_a_strategy():
    assert set(FIELD_VALUES) == set(RunConfig.model_fields), "a new RunConfig field must join the bad-input suite"


changes = st.dictionaries(st.sampled_from(sorted(FIELD_VALUES)), st.none(), min_size=1, max_size=3).flatmap(
    lambda keys: st.fixed_dictionaries({k: FIELD_VALUES[k] for k in keys})
)


def _build(change: dict) -> RunConfig | None:
    """``RunConfig.build`` of the cheap run with ``change``; ``None`` when it is rejected as it must be."""
    try:
        return RunConfig.build(**{**CHEAP, **change})
    except ConfigError as exc:
        assert exc.field.split(".")[0] in RunConfig.model_fields or exc.field == "config", exc
        assert exc.message, exc
        return None


@given(change=changes)
def test_config_is_valid_or_names_a_real_field(change, tmp_path):
    config = _build(change)
    if config is None:
        return
    from mlx_explore.bundle import prepare
    from mlx_explore.data import DatasetUnavailable

    if config.data_dir is None:  # never the user's cache; download data sets fail fast offline
        config = config.model_copy(update={"data_dir": str(tmp_path)})
    try:
        bundle = prepare(config)
    except (ConfigError, DatasetUnavailable) as exc:
        assert str(exc)
        return
    assert bundle.total_steps >= 1


#: Changes of a valid config that a child process can start cheaply (scikit-learn only).
startable = st.fixed_dictionaries({}, optional={
    "model": st.sampled_from(["logreg", "mlp"]),
    "dataset": st.sampled_from(["digits", "wine", "breast_cancer", "synthetic"]),
    "epochs": st.sampled_from([1, 2, 10**6]),
    "batch_size": st.sampled_from([1, 7, 64, 10**6]),
    "lr": st.sampled_from([1e-6, 0.1, 1e6]),
    "optimizer": st.sampled_from(["sgd", "momentum", "adam"]),
    "hidden": st.sampled_from([(1,), (3, 5), (64,)]),
    "seed": st.sampled_from([0, 2**32 - 1]),
    "threads": st.sampled_from([None, 1]),
    "log_every": st.sampled_from([1, 3, 10**6]),
    "n_samples": st.sampled_from([20, 100]),
    "n_features": st.sampled_from([2, 50]),
    "val_fraction": st.sampled_from([0.05, 0.3]),
    "device": st.sampled_from(["auto", "cpu", "gpu"]),
})  # fmt: skip


@settings(max_examples=min(settings().max_examples, 8))
@given(change=startable)
def test_a_valid_config_starts_a_run(change):
    """Valid or named error; when valid, the child of a tiny run starts (then is stopped)."""
    from mlx_explore.events import Skipped, Started
    from mlx_explore.runner import iter_compare

    config = _build(change)
    if config is None:
        return
    events = iter_compare(config)
    try:
        first = next(events)
    except ConfigError:
        return  # a size that cannot fit in memory, named before anything was allocated
    finally:
        events.close()  # kills the child
    assert isinstance(first, (Started, Skipped)), first
    if isinstance(first, Skipped):
        assert first.status in ("skipped", "unsupported") and first.reason


# ------------------------------------------------------------------------------------------ CLI

#: ``compare``'s options and the values to try for each (as the command line's text).
def _as_text(values):
    return values.map(lambda v: v if isinstance(v, str) else repr(v) if isinstance(v, float) else str(v))


numbers = _as_text(st.one_of(any_int, any_float))
COMPARE_OPTIONS = {
    "--model": _as_text(FIELD_VALUES["model"].filter(lambda v: isinstance(v, str))),
    "--dataset": st.sampled_from(["digits", "wine", "imagenet", "", "mnist"]),
    "--frameworks": st.sampled_from(["sklearn", "sklearn,sklearn", "mxnet", "", ",", "SKLEARN"]),
    "--epochs": numbers, "--batch-size": numbers, "--lr": numbers, "--momentum": numbers, "--seed": numbers,
    "--optimizer": st.sampled_from(["sgd", "momentum", "lbfgs", ""]),
    "--hidden": st.one_of(st.sampled_from(["", "64", "64,,32", "a", "0", "2000000", "100000,100000"]), texts),
    "--activation": st.sampled_from(["relu", "gelu", ""]),
    "--device": st.sampled_from(["auto", "cpu", "npu", ""]),
    "--mode": st.sampled_from(["eager", "both", "jit", ""]),
    "--precision": st.sampled_from(["fp32", "bf16", "fp16"]),
    "--threads": numbers, "--repeat": numbers, "--latency-steps": numbers, "--log-every": numbers,
    "--timeout": numbers, "--n-samples": numbers, "--n-features": numbers,
    "--data-dir": st.sampled_from(["/etc/passwd", "", "/proc/x"]),
    "--out": st.sampled_from(["/proc/x.json", "/etc/passwd/x.json", "/", "ok.json"]),
    "--db": st.sampled_from(["/etc/passwd/r.db", "/", "/etc/passwd", "ok.db"]),
}  # fmt: skip
#: The cheap valid run the CLI examples start from.
CHEAP_ARGS = ["--model", "logreg", "--dataset", "wine", "--frameworks", "sklearn", "--epochs", "1",
              "--latency-steps", "0", "--batch-size", "16", "--timeout", "20", "--quiet"]  # fmt: skip
RESULTS_OPTIONS = {
    "--last": numbers, "--since": st.one_of(texts, st.sampled_from(["2026-01-01", "yesterday", "2026-13-45"])),
    "--model": texts, "--dataset": texts, "--framework": texts,
    "--db": st.sampled_from(["/etc/passwd/r.db", "/", "/etc/passwd", "missing.db"]),
}  # fmt: skip


def _option_args(options: dict):
    return st.dictionaries(st.sampled_from(sorted(options)), st.none(), min_size=1, max_size=2).flatmap(
        lambda keys: st.fixed_dictionaries({k: options[k] for k in keys})
    )


def _invoke(args: list[str], tmp_path):
    from typer.testing import CliRunner

    from mlx_explore.cli import app

    args = [a.replace("ok.json", str(tmp_path / "ok.json")).replace("ok.db", str(tmp_path / "ok.db"))
            .replace("missing.db", str(tmp_path / "missing.db")) for a in args]  # fmt: skip
    return CliRunner().invoke(app, args, catch_exceptions=True)


def _check_cli(result, options: dict) -> None:
    output = result.output  # typer's CliRunner mixes stderr in
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 2), (result.exit_code, output)
    if result.exit_code == 2:
        flat = " ".join(output.split())
        named = re.findall(r"--[a-z][a-z-]*|\b[a-z_]+(?=: )", flat)
        known = {o.lstrip("-") for o in options} | set(RunConfig.model_fields) | {"db", "out", "timeout"}
        assert any(n.lstrip("-").replace("-", "_") in {k.replace("-", "_") for k in known} for n in named), flat


@given(change=_option_args(COMPARE_OPTIONS))
def test_cli_compare_runs_or_exits_2_naming_the_option(change, tmp_path):
    args = list(CHEAP_ARGS)
    for option, value in change.items():
        args += [option, value]  # a later occurrence wins (click), so each change overrides CHEAP_ARGS
    result = _invoke(["compare", *args], tmp_path)
    _check_cli(result, COMPARE_OPTIONS)
    if result.exit_code in (0, 1):
        assert "wine" in result.output  # the results table's title: it ran and reported


@given(change=_option_args(RESULTS_OPTIONS))
def test_cli_results_lists_or_exits_2_naming_the_option(change, tmp_path):
    args = [x for option, value in change.items() for x in (option, value)]
    if "--db" not in change:
        args += ["--db", str(tmp_path / "missing.db")]
    result = _invoke(["results", *args], tmp_path)
    _check_cli(result, RESULTS_OPTIONS)
    if result.exit_code == 0:
        assert "run(s) in" in result.output


@pytest.mark.parametrize("value", ["-1", "99999999999999999999"])
def test_results_last_out_of_range_names_last(value, tmp_path):
    result = _invoke(["results", "--last", value, "--db", str(tmp_path / "r.db")], tmp_path)
    assert result.exit_code == 2 and "--last" in result.output and "Traceback" not in result.output


# ------------------------------------------------------------------ suite and guide (issue 13)

#: ``suite``'s options. The store is always unusable (a path under a file, a folder), so a valid
#: example exits 2 naming ``--db`` at once instead of running the suite; the suite itself runs in
#: ``tests/test_suite.py``. Option checks come before the store's, so a bad value is still named.
SUITE_OPTIONS = {
    "--size": st.one_of(st.sampled_from(["small", "full", "huge", "", "SMALL"]), texts),
    "--frameworks": st.one_of(st.sampled_from(["sklearn", "sklearn,sklearn", "mxnet", "", ",", "jax,torch"]), texts),
    "--device": st.sampled_from(["auto", "cpu", "npu", "", "gpu"]),
    "--threads": numbers,
    "--db": st.sampled_from(["/etc/passwd/r.db", "/"]),
}  # fmt: skip


@given(change=_option_args(SUITE_OPTIONS))
def test_cli_suite_exits_2_naming_the_option(change, tmp_path):
    args = [x for option, value in change.items() for x in (option, value)]
    if "--db" not in change:
        args += ["--db", "/etc/passwd/r.db"]
    result = _invoke(["suite", *args, "--quiet"], tmp_path)
    _check_cli(result, SUITE_OPTIONS)
    assert result.exit_code == 2, result.output  # never runs: the store is unusable


#: ``guide``'s options; the store is empty (no suite: exit 2 naming the command to run) unless an
#: example gives one of its own.
GUIDE_OPTIONS = {
    "--scenario": st.one_of(st.sampled_from(["research", "production", "gaming", "", "TEACHING"]), texts),
    "--weight": st.one_of(
        st.sampled_from(["accuracy=2", "accuracy=-1", "accuracy=nan", "accuracy=inf", "speed=1", "=1", "accuracy",
                         "accuracy=", "latency_p99=1e308", "accuracy=0"]),
        texts, st.tuples(st.sampled_from(list(__import__("mlx_explore.guide", fromlist=["CRITERIA"]).CRITERIA)),
                         _as_text(st.one_of(any_int, any_float))).map(lambda t: f"{t[0]}={t[1]}"),
    ),
    "--device": st.sampled_from(["auto", "cpu", "npu", "", "gpu"]),
    "--suite": st.one_of(st.sampled_from(["", "20260101T000000-abcdef"]), texts),
    "--db": st.sampled_from(["/etc/passwd/r.db", "/", "/etc/passwd", "missing.db"]),
}  # fmt: skip


@given(change=_option_args(GUIDE_OPTIONS))
def test_cli_guide_exits_2_naming_the_option(change, tmp_path):
    args = [x for option, value in change.items() for x in (option, value)]
    if "--db" not in change:
        args += ["--db", str(tmp_path / "missing.db")]
    result = _invoke(["guide", *args], tmp_path)
    _check_cli(result, GUIDE_OPTIONS)
    assert result.exit_code == 2, result.output  # no suite in any of these stores


# ------------------------------------------------------------------ dashboard (issue 15)

#: ``dashboard``'s options. The store is always a folder (refused), so an example never starts a
#: server; the checks of --ip and --port come first, so a bad value there is named instead.
DASHBOARD_OPTIONS = {
    "--ip": st.one_of(st.sampled_from(["127.0.0.1", "::1", "0.0.0.0", "localhost", "", "nope", "256.1.1.1", "10.0.0"]),
                      texts),
    "--port": st.one_of(numbers, st.sampled_from(["0", "65536", "-1", "http", "8866"])),
    "--db": st.sampled_from(["/", "folder"]),
}  # fmt: skip


@given(change=_option_args(DASHBOARD_OPTIONS))
def test_cli_dashboard_exits_2_naming_the_option(change, tmp_path):
    args = [x for option, value in change.items() for x in (option, value)]
    args = [str(tmp_path) if a == "folder" else a for a in args]
    if "--db" not in change:
        args += ["--db", str(tmp_path)]
    result = _invoke(["dashboard", *args], tmp_path)
    _check_cli(result, DASHBOARD_OPTIONS)
    assert result.exit_code == 2, result.output  # never serves: the store is a folder


# ------------------------------------------------------------------ regress (issue 16)

#: ``regress``' options. The baseline is always unusable (missing, a folder, not a baseline), so an
#: example never executes a notebook; the option checks come first, so a bad value is named instead.
REGRESS_OPTIONS = {
    "--size": st.one_of(st.sampled_from(["small", "full", "huge", ""]), texts),
    "--only": st.one_of(st.sampled_from(["accuracy", "parity,determinism", "speed", "", ",", "accuracy,,parity"]), texts),
    "--frameworks": st.sampled_from(["sklearn", "mxnet", "", "jax,torch"]),
    "--device": st.sampled_from(["auto", "cpu", "npu", ""]),
    "--baseline": st.sampled_from(["/", "/etc/passwd", "missing.db"]),
}  # fmt: skip


@given(change=_option_args(REGRESS_OPTIONS))
def test_cli_regress_exits_2_naming_the_option(change, tmp_path):
    args = [x for option, value in change.items() for x in (option, value)]
    if "--baseline" not in change:
        args += ["--baseline", "/etc/passwd"]
    result = _invoke(["regress", *args, "--no-store", "--report", str(tmp_path / "report")], tmp_path)
    _check_cli(result, REGRESS_OPTIONS)
    assert result.exit_code == 2, result.output  # never runs: the baseline cannot be used


# ------------------------------------------------------------------ sweep (issue 19)

#: A sweep file's content: the four keys and some others, RunConfig fields and misspelt ones, values of
#: every kind. The store is always unusable, so a valid sweep exits 2 naming ``--db`` before a comparison
#: runs; a bad one exits 2 naming ``--grid`` and the place in the file.
_SWEEP_VALUE = st.one_of(any_int, any_float, st.sampled_from(["mlp", "logreg", "sklearn", "torch,jax", "wine", "x", ""]),
                         st.none(), st.booleans())  # fmt: skip
_SWEEP_FIELDS = st.dictionaries(st.sampled_from(["model", "dataset", "frameworks", "batch_size", "epochs", "lr", "seed",
                                                 "modle", "batchsize", ""]), _SWEEP_VALUE, max_size=4)  # fmt: skip
SWEEP_DOCS = st.dictionaries(
    st.sampled_from(["name", "base", "grid", "runs", "grids", "extra"]),
    st.one_of(_SWEEP_FIELDS, st.dictionaries(st.sampled_from(["batch_size", "seed", "modle", "frameworks"]),
                                             st.lists(_SWEEP_VALUE, max_size=3), max_size=2),
              st.lists(_SWEEP_FIELDS, max_size=3), texts, any_int),
    max_size=4)  # fmt: skip
SWEEP_OPTIONS = {"--grid": None, "--ray": st.sampled_from(["127.0.0.1:9", "not an address", "", "ray://127.0.0.1:9"]),
                 "--db": None}  # fmt: skip


@given(doc=SWEEP_DOCS, ray=st.one_of(st.none(), SWEEP_OPTIONS["--ray"]))
def test_cli_sweep_exits_2_naming_the_grid_place_or_the_option(doc, ray, tmp_path):
    import yaml

    grid = tmp_path / "sweep.yaml"
    grid.write_text(yaml.safe_dump(doc))
    args = ["sweep", "--grid", str(grid), "--db", "/etc/passwd/r.db", "--quiet", *(["--ray", ray] if ray is not None else [])]
    result = _invoke(args, tmp_path)
    _check_cli(result, SWEEP_OPTIONS)
    assert result.exit_code == 2, result.output  # never runs: the grid, the cluster or the store is unusable
