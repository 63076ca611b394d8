"""ResultsExplorer on a temporary results store: traces, filters, metric choice, scatter, and stores it cannot read."""

from __future__ import annotations

import datetime as dt

import pytest

from mlx_explore.metric_docs import METRIC_DOCS
from mlx_explore.results import ResultsStore, StoreError, load_runs
from widgets._common import FRAMEWORK_COLORS
from widgets.explorer import ResultsExplorer

ENV = {"python": "3.11"}
# (model, framework, status, samples_per_s, test_accuracy, compile_s), stored in this order.
RUNS = [
    ("mlp", "torch", "ok", 1000.0, 0.90, 1.5),
    ("mlp", "jax", "ok", 2000.0, 0.91, 3.0),
    ("mlp", "tensorflow", "failed", 9999.0, 0.10, 9.0),
    ("cnn", "torch", "ok", 300.0, 0.95, 2.5),
    ("cnn", "jax", "failed", 8888.0, 0.20, 8.0),
    ("mlp", "torch", "ok", 1100.0, 0.92, 1.25),
    ("cnn", "tensorflow", "ok", 400.0, 0.93, 4.0),
    ("mlp", "tensorflow", "ok", 1500.0, 0.89, 5.0),
]


def add(store: ResultsStore, model: str, framework: str, status: str, sps: float, acc: float, compile_s: float,
        mode: str = "eager") -> int:  # fmt: skip
    cid = store.begin_comparison({"model": model, "dataset": "digits"}, ENV)
    metrics = {"samples_per_s": sps, "test_accuracy": acc, "compile_s": compile_s, "step_ms_p99": sps / 100}
    return store.add_run(cid, {"framework": framework, "mode": mode, "status": status, "metrics": metrics})


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "results.db"
    with ResultsStore(path) as store:
        for row in RUNS:
            add(store, *row)
    return path


def expected(column: str, framework: str, model: str | None = None) -> list[float]:
    """``column`` of the ok runs of ``framework`` (and ``model``), in the order they were stored."""
    i = {"samples_per_s": 3, "test_accuracy": 4, "compile_s": 5}[column]
    return [r[i] for r in RUNS if r[1] == framework and r[2] == "ok" and model in (None, r[0])]


def traces(fig) -> dict[str, list]:
    return {t.name: list(t.y) for t in fig.data}


def test_traces_per_framework_with_ok_runs_only(db):
    ex = ResultsExplorer(db)
    assert [t.name for t in ex.time_fig.data] == ["torch", "jax", "tensorflow"]
    assert [t.meta for t in ex.time_fig.data] == [{"framework": f, "mode": ""} for f in ("torch", "jax", "tensorflow")]
    assert [t.line.color for t in ex.time_fig.data] == [FRAMEWORK_COLORS[f] for f in ("torch", "jax", "tensorflow")]
    assert traces(ex.time_fig) == {f: expected("samples_per_s", f) for f in ("torch", "jax", "tensorflow")}
    torch = ex.time_fig.data[0]
    assert torch.mode == "markers+lines" and len(torch.x) == 3 and list(torch.x) == sorted(torch.x)
    ids = load_runs(db, framework="torch", status="ok")["run_id"].astype(str).tolist()
    assert [c[0] for c in torch.customdata] == ids and [c[1] for c in torch.customdata] == ["mlp", "cnn", "mlp"]
    assert "customdata[0]" in torch.hovertemplate and "customdata[2]" in torch.hovertemplate
    assert len(ex.runs) == len(RUNS) and set(ex.runs["status"]) == {"ok", "failed"}
    assert ex.status.value.startswith(f"{len(RUNS)} runs from {db}")
    assert "failed" in ex.table.value and "test_accuracy" in ex.table.value and "compile_s" in ex.table.value


def test_filters_change_the_traces(db):
    ex = ResultsExplorer(db)
    assert ex.model.options == ("all", "cnn", "mlp") and ex.dataset.options == ("all", "digits")
    assert list(ex.framework_boxes) == ["torch", "jax", "tensorflow"]

    ex.model.value = "mlp"
    assert traces(ex.time_fig) == {f: expected("samples_per_s", f, "mlp") for f in ("torch", "jax", "tensorflow")}
    assert traces(ex.time_fig)["tensorflow"] == [1500.0]  # the failed run's 9999 is not plotted
    assert set(ex.runs["model"]) == {"mlp"} and len(ex.runs) == 5

    ex.framework_boxes["jax"].value = False
    assert [t.name for t in ex.time_fig.data] == ["torch", "tensorflow"]
    assert [t.name for t in ex.scatter_fig.data] == ["torch", "tensorflow"]
    assert "jax" not in set(ex.runs["framework"])

    ex.since.value = dt.date.today() + dt.timedelta(days=2)
    assert ex.time_fig.data == () and ex.scatter_fig.data == () and ex.runs.empty
    assert ex.status.value.startswith("0 runs from")
    ex.since.value = dt.date(2000, 1, 1)
    assert [t.name for t in ex.time_fig.data] == ["torch", "tensorflow"]


def test_metric_dropdown_changes_y(db):
    ex = ResultsExplorer(db)
    values = [v for _, v in ex.metric.options]
    assert {"samples_per_s", "test_accuracy", "compile_s", "step_ms_p99"} <= set(values)
    assert dict(ex.metric.options)[f"compile_s: {METRIC_DOCS['compile_s']}"] == "compile_s"
    ex.metric.value = "compile_s"
    assert traces(ex.time_fig) == {f: expected("compile_s", f) for f in ("torch", "jax", "tensorflow")}
    assert ex.time_fig.layout.yaxis.title.text == "compile_s [s]"


def test_scatter_is_accuracy_against_throughput(db):
    ex = ResultsExplorer(db, model="mlp")
    assert ex.scatter_fig.layout.xaxis.type == "log"
    assert [t.name for t in ex.scatter_fig.data] == ["torch", "jax", "tensorflow"]
    for t in ex.scatter_fig.data:
        assert list(t.x) == expected("samples_per_s", t.name, "mlp")
        assert list(t.y) == expected("test_accuracy", t.name, "mlp")


def test_constructor_filters_and_refresh(db):
    ex = ResultsExplorer(db, metric="test_accuracy", model="cnn", frameworks=["torch", "tensorflow"])
    assert ex.model.value == "cnn" and ex.metric.value == "test_accuracy"
    assert traces(ex.time_fig) == {"torch": [0.95], "tensorflow": [0.93]}
    assert not ex.framework_boxes["jax"].value

    with ResultsStore(db) as store:
        add(store, "cnn", "torch", "ok", 350.0, 0.96, 2.0)
        add(store, "cnn", "sklearn", "ok", 50.0, 0.80, 0.0)
    assert traces(ex.time_fig) == {"torch": [0.95], "tensorflow": [0.93]}  # not re-read yet
    ex.refresh_button.click()
    assert traces(ex.time_fig) == {"torch": [0.95, 0.96], "tensorflow": [0.93]}  # sklearn was not in the list
    assert ex.model.value == "cnn" and list(ex.framework_boxes)[-1] == "sklearn"
    ex.framework_boxes["sklearn"].value = True
    assert [t.name for t in ex.time_fig.data] == ["torch", "tensorflow", "sklearn"]


def test_several_modes_split_the_lines(tmp_path):
    path = tmp_path / "modes.db"
    with ResultsStore(path) as store:
        add(store, "mlp", "torch", "ok", 100.0, 0.9, 1.0, mode="eager")
        add(store, "mlp", "torch", "ok", 200.0, 0.9, 3.0, mode="compiled")
    ex = ResultsExplorer(path)
    assert traces(ex.time_fig) == {"torch/compiled": [200.0], "torch/eager": [100.0]}
    assert {t.name: t.line.dash for t in ex.time_fig.data} == {"torch/compiled": "solid", "torch/eager": "dot"}


def test_missing_store_is_a_message(tmp_path, results_db):
    path = tmp_path / "nowhere" / "results.db"
    ex = ResultsExplorer(path)
    assert f"no results yet in {path}: run a comparison first" in ex.status.value
    assert ex.time_fig.data == () and ex.scatter_fig.data == () and ex.runs.empty
    assert not path.parent.exists()
    assert ResultsExplorer().db == results_db  # db=None: $MLX_EXPLORE_DB (set by conftest)


def test_corrupt_store_shows_the_store_error(tmp_path):
    path = tmp_path / "results.db"
    path.write_bytes(b"this is not a database, just some text\n" * 200)
    with pytest.raises(StoreError) as info:
        load_runs(path)
    ex = ResultsExplorer(path)
    assert str(info.value) in ex.status.value and "Traceback" not in ex.status.value
    assert ex.time_fig.data == () and ex.scatter_fig.data == () and ex.runs.empty
    ex.refresh()  # still no exception
    assert "corrupt" in ex.status.value


def test_device_filter_keeps_the_runs_of_one_device(tmp_path):
    path = tmp_path / "devices.db"
    with ResultsStore(path) as store:
        for device, sps in (("cpu", 100.0), ("cuda:0", 5000.0), ("cpu", 120.0)):
            cid = store.begin_comparison({"model": "mlp", "dataset": "digits"}, ENV)
            store.add_run(cid, {"framework": "torch", "mode": "eager", "status": "ok", "device": device,
                                "metrics": {"samples_per_s": sps, "test_accuracy": 0.9}})  # fmt: skip
    ex = ResultsExplorer(path, device="cuda:0")
    assert ex.device.options == ("all", "cpu", "cuda:0") and ex.device.value == "cuda:0"
    assert traces(ex.time_fig) == {"torch": [5000.0]} and len(ex.runs) == 1
    ex.device.value = "cpu"
    assert traces(ex.time_fig) == {"torch": [100.0, 120.0]}
    ex.device.value = "all"
    assert len(ex.runs) == 3
