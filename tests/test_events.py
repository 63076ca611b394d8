"""The event wire format: every event survives ``to_json`` -> ``from_json``; every bad line gives
the documented error (``events.py``'s docstring); and a child that sends a malformed event line
fails its own run, with the line quoted, while the comparison goes on."""

from __future__ import annotations

import json
import math
import os
import textwrap
import time
from dataclasses import fields

import pytest

from mlx_explore import compare
from mlx_explore.events import (EVENT_ADAPTER, EVENT_TYPES, QUOTE_CHARS, TERMINAL, Epoch, Event, Failed, Finished,
                                MalformedEvent, NotAnEvent, Skipped, Started, Step, Steps, from_json, quote)  # fmt: skip

from .conftest import alive

#: One event of every kind, every field away from its default.
EXAMPLES = [
    Started("torch", "compiled", 2, device="cuda:0", device_name="NVIDIA H100", device_kind="gpu",
            versions={"torch": "2.13.0"}, flags={"threads": 4, "tf32": False, "env": {"OMP_NUM_THREADS": "4"}},
            import_s=1.5, total_steps=90, epochs=3, pid=1234, time_s=2.25),
    Step("jax", "eager", 1, step=7, epoch=2, loss=0.1 + 0.2, time_s=3.5),
    Steps("tensorflow", "compiled", 3, epoch=1, steps=[1, 2, 3], losses=[2.3, 2.1, 1.9], time_s=0.75),
    Epoch("sklearn", "eager", 1, epoch=4, train_loss=0.5, val_loss=0.6, val_accuracy=0.875, time_s=9.0),
    Finished("torch", "eager", 1, status="ok", device="cpu", metrics={"samples_per_s": 1e5, "peak_device_mb": None,
             "windows": 5}, notes={"peak_device_mb": "CPU run"}, time_s=12.0),
    Failed("jax", "eager", 2, status="diverged", reason="loss is nan at step 3", error_tail="Traceback ...", time_s=1.0),
    Skipped("tensorflow", "compiled", 1, status="unsupported", reason="no such device"),
]  # fmt: skip


def test_examples_cover_every_kind():
    assert sorted(type(e).kind for e in EXAMPLES) == sorted(EVENT_TYPES)
    assert set(TERMINAL) == {Finished, Failed, Skipped}


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.kind)
def test_every_event_kind_round_trips(event):
    line = event.to_json()
    assert "\n" not in line and json.loads(line)["kind"] == event.kind and line.startswith('{"kind": ')
    back = from_json(line + "\n")  # as read from the pipe
    assert type(back) is type(event) and back == event
    assert {f.name for f in fields(back)} == set(json.loads(line))  # the line holds every field, nothing else


def test_non_finite_numbers_round_trip():
    step = from_json(Step("torch", step=1, loss=float("nan"), time_s=float("inf")).to_json())
    assert math.isnan(step.loss) and step.time_s == math.inf
    done = from_json(Finished("jax", metrics={"mfu": float("nan"), "compile_s": float("-inf")}).to_json())
    assert math.isnan(done.metrics["mfu"]) and done.metrics["compile_s"] == -math.inf


def test_positional_fields_and_equality_are_unchanged_by_the_kind_field():
    assert Step("torch", "eager", 2, 5).step == 5 and Step("torch", "eager", 2, 5).repeat == 2
    assert Step("torch").kind == "step" and Event("x").kind == "event"
    assert "kind" not in repr(Step("torch"))
    with pytest.raises(TypeError):
        Step("torch", "eager", 1, 5, 1, 0.5, 1.0, "step")  # kind is keyword-only


def test_the_adapter_is_a_union_discriminated_on_kind():
    schema = EVENT_ADAPTER.json_schema()
    assert schema["discriminator"]["propertyName"] == "kind"
    assert set(schema["discriminator"]["mapping"]) == set(EVENT_TYPES)


BAD_EVENTS = [
    # (line, the documented problem it must be reported as)
    ('{"kind": "steps", "framework": "jax", "steps": [1, 2], "losses": [0.5, "x"]}',
     "losses.1: Input should be a valid number, got 'x'"),
    ('{"kind": "step", "framework": "jax", "step": "5"}', "step: Input should be a valid integer, got '5'"),
    ('{"kind": "epoch", "framework": "jax", "epoch": 1.5}', "epoch: Input should be a valid integer, got 1.5"),
    ('{"kind": "started", "framework": "jax", "versions": {"jax": 4}}', "versions.jax: Input should be a valid string"),
    ('{"kind": "failed", "framework": 3}', "framework: Input should be a valid string, got 3"),
    ('{"kind": "stepz", "framework": "jax"}', "unknown event kind 'stepz' (allowed: started, step, steps, epoch, finished"),
    ('{"framework": "jax", "step": 1}', "no 'kind' field"),
    ('{"kind": "step", "step": 1}', "framework: required field missing"),
    ('{"kind": "step", "framework": "jax", "stp": 1}', "stp: unknown field"),
    ('{"kind": "steps", "framework": "jax", "steps": [1, 2], "losses": [0.5]}', "steps: 2 steps but 1 losses"),
]  # fmt: skip


@pytest.mark.parametrize("line, problem", BAD_EVENTS, ids=[p.split(":")[0][:20] for _, p in BAD_EVENTS])
def test_a_json_object_that_is_not_a_valid_event_is_malformed(line, problem):
    with pytest.raises(MalformedEvent) as info:
        from_json(line + "\n")
    assert isinstance(info.value, ValueError)
    assert problem in info.value.problem
    assert str(info.value) == f"{info.value.problem}; line: {line!r}" and info.value.line == line + "\n"


@pytest.mark.parametrize("line", ["hello from a stray print", "", "[1, 2]", "3.5", '"text"', "null", '{"kind": "step", '])
def test_a_line_that_is_not_a_json_object_is_not_an_event(line):
    with pytest.raises(NotAnEvent, match="not a JSON object; line: "):
        from_json(line + "\n")


def test_a_long_bad_line_is_quoted_cut_to_quote_chars():
    line = '{"kind": "failed", "framework": "jax", "reason": ' + json.dumps("x" * 1000) + ', "time_s": "late"}'
    with pytest.raises(MalformedEvent) as info:
        from_json(line)
    quoted = str(info.value).split("; line: ", 1)[1]
    assert quoted == repr(line[:QUOTE_CHARS] + "...") and len(quoted) < QUOTE_CHARS + 10
    assert "time_s: Input should be a valid number, got 'late'" in info.value.problem  # the problem is not cut
    assert quote("a\x1bb\n") == "'a\\x1bb'"  # control characters show, the line break does not


# ------------------------------------------------------------------ end to end, through a real child

#: Code a fake package runs in the training child: find the worker's event stream (``stream`` in
#: ``mlx_explore.worker.run``) as a stray writer on fd 1 would, and write ``LINE`` on it.
_WRITE_ON_EVENT_STREAM = """
import os, sys
_frame = sys._getframe()
while _frame is not None and not (_frame.f_code.co_name == "run" and "stream" in _frame.f_locals):
    _frame = _frame.f_back
_frame.f_locals["stream"].write(LINE + "\\n")
_frame.f_locals["stream"].flush()
"""

#: Then the fake package steps aside for the real one, so the run can go on.
_BECOME_THE_REAL_PACKAGE = """
import importlib
_here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
del sys.modules[__name__]
sys.modules[__name__] = importlib.import_module(__name__)
"""


def _fake_optax(root, line: str, then: str, before: str = "") -> None:
    """A package ``optax`` in ``root`` that, when imported (the JAX trainer imports optax), runs
    ``before``, writes ``line`` on the event stream, then runs ``then``."""
    (root / "optax").mkdir()
    code = f"import os, sys\n{before}\nLINE = {line!r}\n" + _WRITE_ON_EVENT_STREAM + textwrap.dedent(then)
    (root / "optax" / "__init__.py").write_text(code)


def test_a_malformed_event_line_fails_that_run_quoted_and_the_comparison_goes_on(tmp_path, monkeypatch, tiny_kwargs):
    bad = '{"kind": "epoch", "framework": "jax", "epoch": "one"}'
    pid_file = tmp_path / "child.pid"
    _fake_optax(tmp_path, bad, before=f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))", then="import time\ntime.sleep(600)\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    result = compare(frameworks=["jax", "sklearn"], **tiny_kwargs)
    jax = result.run("jax")
    assert jax.status == "failed"
    assert jax.reason == f"the jax process sent a malformed event line: epoch: Input should be a valid integer, got 'one'; line: {bad!r}"
    assert not alive(int(pid_file.read_text()))  # killed, not waited for (it sleeps 600 s)
    assert result.run("sklearn").status == "ok" and result.run("sklearn").metrics["test_accuracy"] > 0.5


def test_a_line_that_is_not_json_is_kept_and_the_run_goes_on(tmp_path, monkeypatch, tiny_kwargs):
    _fake_optax(tmp_path, "optax says hello", _BECOME_THE_REAL_PACKAGE)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    result = compare(frameworks=["jax"], **tiny_kwargs)
    jax = result.run("jax")
    assert jax.status == "ok", (jax.reason, jax.error_tail)
    assert jax.notes["stray_output"] == "lines on the event stream that were not events (ignored):\n'optax says hello'"
    assert len(jax.curve) == jax.metrics["steps"]


def test_a_child_that_hangs_at_exit_after_its_result_is_killed_and_the_run_kept(tmp_path, monkeypatch, tiny_kwargs):
    from mlx_explore import child

    pid_file = tmp_path / "child.pid"
    # the real optax, plus a shut-down that never ends (an atexit handler sleeping 600 s)
    _fake_optax(tmp_path, "", _BECOME_THE_REAL_PACKAGE, before=f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                "import atexit, time\natexit.register(time.sleep, 600)")  # fmt: skip
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setattr(child, "EXIT_GRACE_S", 2.0)
    t0 = time.monotonic()
    result = compare(frameworks=["jax", "sklearn"], **tiny_kwargs)
    assert time.monotonic() - t0 < 120  # not the 600 s the jax process would hang
    jax = result.run("jax")
    assert jax.status == "ok" and jax.metrics["test_accuracy"] is not None, (jax.reason, jax.error_tail)
    assert not alive(int(pid_file.read_text()))
    assert result.run("sklearn").status == "ok"
