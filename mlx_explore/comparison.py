"""The result model of a comparison: one :class:`RunRecord` per run, folded from its events by a
:class:`Collector`, and the :class:`Comparison` that holds them with its pandas views.

Plain data and pure functions: nothing here starts a process or touches the results store (the
runner, ``runner.py``, does both). :func:`plan` names a comparison's runs and their order;
:func:`run_label` gives each run its short name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import DEEP_FRAMEWORKS, RunConfig
from .events import Epoch, Event, Failed, Finished, Skipped, Started, Step
from .jsonable import jsonable
from .metric_docs import METRIC_DOCS


def plan(config: RunConfig) -> list[tuple[str, str, int]]:
    """The runs of a comparison, in the order they run.

    Returns:
        ``[(framework, mode, repeat)]``: for every framework of ``config.frameworks``, every mode of
        ``config.modes`` (scikit-learn, XGBoost and LightGBM, which compile nothing: once, as ``eager``) and repeats ``1..config.repeat``
        (1-based). Never raises (``config`` is already validated).
    """
    out = []
    for name in config.frameworks:
        modes = config.modes if name in DEEP_FRAMEWORKS else ("eager",)
        out += [(name, mode, r) for mode in modes for r in range(1, config.repeat + 1)]
    return out


@dataclass
class RunRecord:
    """One run (framework, compile mode, repeat), assembled from its events by a :class:`Collector`.

    ``status`` is one of ``events.STATUSES`` (``running`` until a terminal event) and ``reason`` why
    it is not ``ok``; ``curve`` holds ``{"step", "epoch", "loss" [nats], "time_s" [s]}`` rows,
    ``epochs`` ``{"epoch", "train_loss", "val_loss" [nats], "val_accuracy" [0-1], "time_s" [s]}``
    rows (``time_s``: since the child process started); ``metrics`` the figures of
    ``metric_docs.METRIC_DOCS`` (with their units); ``flags`` the fairness settings read back in the
    child; ``notes`` why a metric is ``None`` or how it was measured; ``error_tail`` the end of the
    child's traceback or stderr (failed runs); ``label`` its :func:`run_label`; ``run_id`` the row
    in the results store (``None`` when not stored); ``profile`` the normalized profile
    (``profiling.Profile.to_dict()``) when the run was profiled.
    """

    framework: str
    mode: str = ""
    repeat: int = 1
    status: str = "running"
    reason: str = ""
    device: str = ""
    device_name: str = ""
    device_kind: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    curve: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    error_tail: str = ""
    label: str = ""
    run_id: int | None = None
    profile: dict | None = None

    @property
    def finished(self) -> bool:
        """True once a terminal event (or an interruption) has set the final status."""
        return self.status != "running"

    def to_dict(self, with_times: bool = True) -> dict:
        """The run as a dict of plain values, the form of the results JSON's ``runs`` and of
        ``ResultsStore.add_run`` (``with_times=False`` drops the curve's ``time_s``). NaN is kept:
        pass it through ``jsonable.jsonable`` before strict JSON."""
        keep = ("step", "epoch", "loss", "time_s") if with_times else ("step", "epoch", "loss")
        return {
            "label": self.label or self.framework, "framework": self.framework, "mode": self.mode,
            "repeat": self.repeat, "status": self.status, "reason": self.reason, "device": self.device,
            "device_name": self.device_name, "device_kind": self.device_kind, "versions": self.versions,
            "flags": self.flags, "metrics": self.metrics, "notes": self.notes,
            "curve": [{k: p[k] for k in keep} for p in self.curve], "epochs": self.epochs,
            "error_tail": self.error_tail, "run_id": self.run_id, "profile": self.profile,
        }  # fmt: skip


class Collector:
    """Folds an event stream into :class:`RunRecord` objects, one per ``(framework, mode, repeat)``,
    in the order they first appear.

    Attributes:
        records: ``{(framework, mode, repeat): RunRecord}``.
    """

    def __init__(self) -> None:
        self.records: dict[tuple[str, str, int], RunRecord] = {}

    def __call__(self, event: Event) -> RunRecord:
        """Apply ``event`` (any :class:`~mlx_explore.events.Event`) to its run's record, made on
        first sight; return that record. Never raises."""
        rec = self.records.get(event.run_key)
        if rec is None:
            rec = self.records[event.run_key] = RunRecord(event.framework, event.mode, event.repeat)
        if isinstance(event, Started):
            rec.device, rec.device_name, rec.device_kind = event.device, event.device_name, event.device_kind
            rec.versions, rec.flags = event.versions, event.flags
        elif isinstance(event, Step):
            rec.curve.append({"step": event.step, "epoch": event.epoch, "loss": event.loss, "time_s": event.time_s})
        elif isinstance(event, Epoch):
            rec.epochs.append({k: getattr(event, k) for k in ("epoch", "train_loss", "val_loss", "val_accuracy", "time_s")})
        elif isinstance(event, Finished):
            rec.status, rec.metrics, rec.notes, rec.device = event.status, event.metrics, event.notes, event.device
            rec.profile = event.profile
        elif isinstance(event, (Failed, Skipped)):
            rec.status, rec.reason = event.status, event.reason
            rec.error_tail = getattr(event, "error_tail", "")
        return rec


def run_label(config: RunConfig, framework: str, mode: str, repeat: int) -> str:
    """A run's short unique name in a comparison: ``torch``, ``torch/eager`` (``--mode both``),
    ``torch#2`` (``--repeat``), ``torch/eager#2``. Never raises."""
    label = framework
    if len(config.modes) > 1 and framework in DEEP_FRAMEWORKS:
        label += f"/{mode}"
    if config.repeat > 1:
        label += f"#{repeat}"
    return label


@dataclass
class Comparison:
    """The result of ``runner.compare`` (``mlx_explore.compare``).

    Attributes:
        config: the validated config.
        env: where and how it ran (``env.environment()``).
        runs: one :class:`RunRecord` per run, in the order they ran.
        db: the results store these runs were written to (``None``: not stored).
        interrupted: True when the comparison was stopped before its end (Ctrl-C, a Stop button,
            SIGTERM/SIGHUP in the CLI).
        store_error: why the results store could not be written (disk full, read-only, ...), with
            ``None`` when every run was stored or storing was off. Runs after the failure were still
            run and are here, with ``run_id`` ``None``.
    """

    config: RunConfig
    env: dict
    runs: list[RunRecord]
    db: str | None = None
    interrupted: bool = False
    store_error: str | None = None

    @property
    def metrics(self):
        """``pandas.DataFrame``, one row per run, indexed by its label (:func:`run_label`; the
        framework name when there is one mode and one repeat): framework, mode, repeat, status,
        reason, device and every metric."""
        import pandas as pd

        rows = [
            {"run": r.label, "framework": r.framework, "mode": r.mode, "repeat": r.repeat, "status": r.status,
             "reason": r.reason, "device": r.device, **r.metrics}
            for r in self.runs
        ]  # fmt: skip
        return pd.DataFrame(rows, columns=None if rows else ["run", "framework", "status"]).set_index("run")

    @property
    def summary(self):
        """``pandas.DataFrame`` per (framework, mode) over its ``ok`` repeats: the **median** of every
        numeric metric and ``runs``, the number of repeats behind it."""
        m = self.metrics
        ok = m[m["status"] == "ok"]
        if ok.empty:
            return ok
        numeric = ok.select_dtypes("number").drop(columns=["repeat"], errors="ignore")
        out = numeric.groupby([ok["framework"], ok["mode"]], sort=False).median()
        out.insert(0, "runs", ok.groupby(["framework", "mode"], sort=False).size())
        return out

    @property
    def curves(self):
        """``pandas.DataFrame`` of logged training losses: run, framework, mode, repeat, step, epoch,
        loss, time_s."""
        import pandas as pd

        rows = [{"run": r.label, "framework": r.framework, "mode": r.mode, "repeat": r.repeat, **p} for r in self.runs for p in r.curve]
        return pd.DataFrame(rows, columns=["run", "framework", "mode", "repeat", "step", "epoch", "loss", "time_s"])

    @property
    def epoch_table(self):
        """``pandas.DataFrame`` per run and epoch: train_loss, val_loss, val_accuracy, time_s."""
        import pandas as pd

        rows = [{"run": r.label, "framework": r.framework, "mode": r.mode, "repeat": r.repeat, **p} for r in self.runs for p in r.epochs]
        return pd.DataFrame(rows, columns=["run", "framework", "mode", "repeat", "epoch", "train_loss", "val_loss", "val_accuracy", "time_s"])

    @property
    def determinism(self) -> list[dict]:
        """For every (framework, mode) with two or more ``ok`` repeats: were the logged loss curves
        **bitwise** identical across repeats, and the largest absolute difference from the first.

        Returns:
            ``[{"framework", "mode", "repeats", "bitwise_identical", "max_abs_diff", "deterministic_flags"}]``.
        """
        import numpy as np

        groups: dict[tuple[str, str], list[RunRecord]] = {}
        for r in self.runs:
            if r.status == "ok":
                groups.setdefault((r.framework, r.mode), []).append(r)
        out = []
        for (fw, mode), runs in groups.items():
            if len(runs) < 2:
                continue
            base = np.array([p["loss"] for p in runs[0].curve], dtype=np.float64)
            same, diff = True, 0.0
            for other in runs[1:]:
                cur = np.array([p["loss"] for p in other.curve], dtype=np.float64)
                if cur.shape != base.shape:
                    same, diff = False, float("inf")
                    continue
                same = same and base.tobytes() == cur.tobytes()
                diff = max(diff, float(np.max(np.abs(cur - base))) if base.size else 0.0)
            out.append({
                "framework": fw, "mode": mode, "repeats": len(runs), "bitwise_identical": bool(same),
                "max_abs_diff": diff, "deterministic_flags": runs[0].flags.get("deterministic"),
            })  # fmt: skip
        return out

    @property
    def profiles(self) -> dict[str, dict]:
        """The profiled runs' profiles (``profiling.Profile.to_dict()``) by run label, in plan order;
        empty unless the comparison ran with ``profile_steps``."""
        return {r.label or r.framework: r.profile for r in self.runs if r.profile}

    def run(self, name: str) -> RunRecord:
        """The record of one run, by label (``"torch/eager#2"``) or framework (its first run).

        Raises:
            KeyError: no such run; the message lists the labels present.
        """
        for r in self.runs:
            if r.label == name:
                return r
        for r in self.runs:
            if r.framework == name:
                return r
        raise KeyError(f"no run {name!r}; runs: {', '.join(r.label for r in self.runs)}")

    def to_dict(self) -> dict:
        """The ``--out`` JSON document (format in README.md, "Results JSON")."""
        return {
            "config": self.config.model_dump(mode="json"),
            "env": self.env,
            "interrupted": self.interrupted,
            "db": self.db,
            "store_error": self.store_error,
            "metric_docs": METRIC_DOCS,
            "runs": [r.to_dict(with_times=False) for r in self.runs],
            "determinism": self.determinism,
        }

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as strict JSON (NaN and infinities written as ``null``) to ``path``,
        creating its parent folders; return ``path`` as a ``Path``.

        Raises:
            OSError: the file or a parent folder cannot be written.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(jsonable(self.to_dict()), indent=2, allow_nan=False))
        return path
