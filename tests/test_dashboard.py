"""The dashboards without a browser: the overview's sections, states and messages, the one write it
makes on request, the read-only store, and ``mlx-explore dashboard``'s input checks and clean stop.

The pages in Chromium are ``tests/test_dashboard_browser.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from mlx_explore import dashboard, guide, results
from mlx_explore.config import ConfigError
from widgets.dashboard import TREND_METRICS, Overview, audit_summary, daily, regressions

from .conftest import ROOT, run_cli, without_write_override

def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------ the overview


def test_overview_of_a_suite_shows_every_section_computed_from_the_store(suite_store):
    before = digest(suite_store)
    o = Overview(suite_store, "production")
    assert o.state == "ok"
    rec = o.guide.recommendation
    assert rec == o.guide.recommendation and rec.scenario == "production"
    assert f">{rec.top}</b> fits best" in o.headline.value and "production serving" in o.headline.value
    assert o.reasons.value.count("<li>") == len(rec.reasons) >= 1
    for reason in rec.reasons:
        assert reason.text.split(":")[0] in o.reasons.value
    runs = o.guide.evidence.runs
    assert o.suite_table.value.count("<tr") == len(runs) + 1  # header + one row per run of the session
    ok = runs[runs["status"] == "ok"]
    assert sum(len(t.x) for t in o.scatter.data) == ok["samples_per_s"].notna().sum()
    assert o.scatter.layout.xaxis.type == "log" and "[samples/s]" in o.scatter.layout.xaxis.title.text
    assert sum(len(t.y) for t in o.trend.data) >= 1 and "[samples/s]" in o.trend.layout.yaxis.title.text
    assert "claims" in audit_summary(o.guide.audit) and o.audit.value.count("<tr") == len(o.guide.audit) + 1
    assert digest(suite_store) == before  # only read


def test_changing_the_scenario_rewrites_the_sentence_and_reasons(suite_store):
    o = Overview(suite_store, "research")
    first = o.headline.value
    o.guide.scenario.value = "teaching"
    assert "teaching" in o.headline.value and o.headline.value != first
    assert o.guide.recommendation.scenario == "teaching"
    o.guide.set_weights(**{name: 0 for name in guide.CRITERIA})
    assert "Every weight is 0" in o.headline.value


def back_date(db: Path, run_id: int, when: str) -> None:
    """Set a stored run's ``created_at`` (the store always writes the current time)."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE runs SET created_at = ? WHERE id = ?", (when, run_id))
    conn.close()


def test_trend_metric_and_workload_redraw_and_a_drop_is_named(tmp_path):
    db = tmp_path / "trend.db"
    days = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
    with results.ResultsStore(db) as store:
        for day, sps in zip(days, (1000.0, 1020.0, 990.0, 700.0)):
            for fw, factor in (("torch", 1.0), ("jax", 1.5)):
                cid = store.begin_comparison({"model": "mlp", "dataset": "digits"}, {})
                rid = store.add_run(cid, {"framework": fw, "mode": "compiled", "status": "ok", "model": "mlp",
                                          "dataset": "digits", "metrics": {"samples_per_s": sps * factor if fw == "torch"
                                                                           else 1500.0, "test_accuracy": 0.9}})  # fmt: skip
                back_date(db, rid, f"{day}T12:00:00.000000+00:00")
    m = results.load_metrics(db, metrics=tuple(TREND_METRICS))
    d = daily(m, "samples_per_s")
    assert list(d[d["framework"] == "torch"]["value"]) == [1000.0, 1020.0, 990.0, 700.0]
    notes = regressions(d, "samples_per_s")
    assert len(notes) == 1 and notes[0].startswith("torch/compiled: throughput on 2026-03-04 is 30% below")
    o = Overview(db)
    assert o.state == "no_suite" and "possible regression" in o.trend_notes.value
    assert {t.name for t in o.trend.data} == {"torch/compiled", "jax/compiled"}
    o.trend_metric.value = "test_accuracy"
    assert o.trend.layout.yaxis.type == "linear" and "accuracy" in o.trend.layout.title.text.lower()
    assert "No drop" in o.trend_notes.value


def test_an_empty_store_offers_to_run_the_suite_and_the_button_fills_it(tmp_path, monkeypatch):
    from mlx_explore import suite

    from .suite_fakes import tiny_items

    monkeypatch.setattr(suite, "ITEMS", tiny_items())  # the suite's items, seconds long: the button is tested here
    db = tmp_path / "empty.db"
    o = Overview(db)
    assert o.state == "no_suite" and not db.exists()  # reading created nothing
    assert "Run the small suite" == o.run_button.description and o.run_button in o.children[1].children
    assert "No suite to recommend from yet" in o.message.value and "Traceback" not in o.message.value
    o.run_suite(frameworks="sklearn")  # the real suite, the quickest framework
    o.wait(timeout=600)
    assert o.progress.value == o.progress.max > 0
    assert o.state == "ok", o.message.value
    assert o.guide.recommendation.top == "sklearn" and len(results.load_runs(db)) == o.progress.max


def test_a_corrupt_store_is_a_message_not_a_traceback(tmp_path):
    db = tmp_path / "corrupt.db"
    db.write_bytes(b"this is not SQLite" * 100)
    o = Overview(db)
    assert o.state == "error" and o.children == (o.message,)
    assert "cannot be read" in o.message.value and "not a usable SQLite database" in o.message.value
    assert db.read_bytes() == b"this is not SQLite" * 100


def test_unknown_scenario_names_the_allowed_ones():
    with pytest.raises(ConfigError) as e:
        Overview(scenario="cheapest")
    assert e.value.field == "scenario" and "research" in e.value.message


def test_the_overview_reads_a_store_in_a_read_only_folder(suite_store, tmp_path):
    """As a user who cannot write there (root's capabilities dropped): the overview is built, nothing changes."""
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "results.db"
    shutil.copy(suite_store, db)
    before = sorted(p.name for p in folder.iterdir())
    folder.chmod(0o555)
    db.chmod(0o444)
    try:
        code = ("import json, sys; from widgets.dashboard import Overview; o = Overview(sys.argv[1]); "
                "print(json.dumps({'state': o.state, 'top': o.guide.recommendation.top if o.guide else None}))")
        proc = subprocess.run(without_write_override([sys.executable, "-c", code, str(db)]), capture_output=True,
                              text=True, timeout=300, cwd=ROOT)  # fmt: skip
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["state"] == "ok" and out["top"]
    assert sorted(p.name for p in folder.iterdir()) == before and digest(db) == digest(suite_store)


def test_the_overview_opens_the_store_read_only_and_refuses_to_write_there(suite_store, monkeypatch):
    opened = []
    real = results.sqlite3.connect

    def spy(target, *a, **kw):
        opened.append(str(target))
        return real(target, *a, **kw)

    monkeypatch.setattr(results.sqlite3, "connect", spy)
    Overview(suite_store)
    assert opened and all("mode=ro" in t for t in opened), opened
    with results.read_only(), pytest.raises(results.StoreWriteError, match="MLX_EXPLORE_READ_ONLY"):
        results.ResultsStore(suite_store)


# ------------------------------------------------------------------------------------ the server


def test_the_dashboard_folder_holds_the_three_notebooks_without_outputs():
    folder = dashboard.folder()
    assert folder == ROOT / "notebooks" / "dashboards"
    for name in dashboard.DASHBOARDS:
        nb = json.loads((folder / f"{name}.ipynb").read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)
        assert any("wait_for_page()" in "".join(c["source"]) for c in code)


def test_bad_ip_port_and_db_are_refused_naming_the_option(tmp_path):
    proc = run_cli("dashboard", "--ip", "not-an-address")
    assert proc.returncode == 2 and "--ip" in proc.stderr and "127.0.0.1" in proc.stderr
    proc = run_cli("dashboard", "--port", "70000")
    assert proc.returncode == 2 and "--port" in proc.stderr and "1-65535" in proc.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        proc = run_cli("dashboard", "--port", str(busy.getsockname()[1]))
    assert proc.returncode == 2 and "--port" in proc.stderr and "in use" in proc.stderr.replace("uses it", "in use")
    proc = run_cli("dashboard", "--db", str(tmp_path))
    assert proc.returncode == 2 and "--db" in proc.stderr and "is a folder" in proc.stderr
    proc = run_cli("dashboard", "--ip", "192.0.2.1")  # TEST-NET-1: never an address of this machine
    assert proc.returncode == 2 and "--ip" in proc.stderr and "not an address of this machine" in proc.stderr


def test_ip_other_than_loopback_warns_and_requires_a_token():
    assert dashboard.check_ip("127.0.0.1") and dashboard.check_ip("::1") and dashboard.check_ip("localhost")
    assert not dashboard.check_ip("0.0.0.0")
    cmd = dashboard.voila_command(Path("/x"), ip="0.0.0.0", port=1, token="secret")
    assert "--token=secret" in cmd and "--strip_sources=True" in cmd and "--show_tracebacks=False" in cmd
    assert "--template=mlx" in cmd and "--Voila.ip=0.0.0.0" in cmd
    assert not any(c.startswith("--token") for c in dashboard.voila_command(Path("/x"), ip="127.0.0.1", port=1, token=None))


def start_cli(*args: str, env: dict | None = None) -> tuple[subprocess.Popen, dict]:
    """``mlx-explore dashboard ARGS`` in a child process; returns it and the printed URLs by page name."""
    proc = subprocess.Popen([sys.executable, "-m", "mlx_explore.cli", "dashboard", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})  # fmt: skip
    urls, lines = {}, []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stdout.readline()
        lines.append(line)
        parts = line.split()
        if len(parts) >= 2 and parts[0] in dashboard.DASHBOARDS and parts[1].startswith("http"):
            urls[parts[0]] = parts[1]
        if "Ctrl-C" in line:
            proc.printed = "".join(lines)  # what it said before serving (warnings)
            return proc, urls
    proc.kill()
    raise AssertionError("the dashboard did not start:\n" + "".join(lines))


def test_ctrl_c_stops_voila_and_every_kernel(tmp_path):
    proc, urls = start_cli("--db", str(tmp_path / "results.db"))
    try:
        assert set(urls) == set(dashboard.DASHBOARDS) and all(u.startswith("http://127.0.0.1:") for u in urls.values())
        tree = psutil.Process(proc.pid).children(recursive=True)
        deadline = time.monotonic() + 60  # the pre-heated kernels: one per dashboard
        while time.monotonic() < deadline and sum("ipykernel" in " ".join(p.cmdline()) for p in tree if p.is_running()) < 3:
            time.sleep(0.5)
            tree = psutil.Process(proc.pid).children(recursive=True)
        assert sum("ipykernel" in " ".join(p.cmdline()) for p in tree) >= 3, [p.cmdline() for p in tree]
        staged = {Path(a) for p in tree for a in p.cmdline() if a.startswith(str(Path(os.environ.get("TMPDIR", "/tmp"))))}
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stopped" in out
    gone, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive, [p.cmdline() for p in alive]
    assert not any(p.exists() and p.name.startswith("mlx-explore-dashboards-") for p in staged)


def test_the_suite_table_shows_onnx_runtime_beside_native_inference_only_when_exported():
    from widgets.dashboard import suite_table_html

    runs = pd.DataFrame({"suite_item": ["small_batch"] * 2, "framework": ["torch", "keras-torch"], "mode": ["compiled"] * 2,
                         "status": ["ok", "ok"], "infer_ms_p50": [0.094, 0.443], "onnx_infer_ms_p50": [None, None]})  # fmt: skip
    html = suite_table_html(runs)
    assert "batch-1 inference p50 [ms]" in html and "0.443" in html and "ONNX Runtime" not in html
    html = suite_table_html(runs.assign(onnx_infer_ms_p50=[0.012, 0.015]))
    assert "ONNX Runtime p50 [ms]" in html and "0.015" in html
