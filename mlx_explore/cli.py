"""The ``mlx-explore`` command (typer + rich).

``mlx-explore compare``: run a comparison with one progress bar per run, print the table, store
every run in the results store, write ``--out`` JSON. ``mlx-explore results``: list stored runs.
``mlx-explore env``: installed frameworks, versions and devices. ``mlx-explore suite``: run the
standard suite and store it; ``mlx-explore guide``: rank the frameworks for a scenario from it
(``suite.py``, ``guide.py``). ``mlx-explore profile``: where a training step's time goes, by each
framework's own profiler (``profiling.py``). ``mlx-explore dashboard``: serve the Voila dashboards
(``dashboard.py``) until Ctrl-C. ``mlx-explore export mlflow``: log stored runs to MLflow
(``tracking.py``); ``compare --mlflow`` logs them as they end.

Exit codes: 0 every framework finished, was skipped or is unsupported; 1 a framework failed,
diverged or timed out (its row says why, the others are kept); 2 bad input (the message names
the field and the allowed values, or the results store or ``--out`` cannot be used; checked
before anything runs); 3 the runs finished but the results store could not be written part way
(disk full, read-only: the message says which runs were stored, and every run is in the table and
the ``--out`` JSON, or a JSON file in the working folder when no ``--out`` was given); 130, 143,
129 stopped by Ctrl-C, SIGTERM or SIGHUP (128 + the signal's number), after the finished runs and
the running one (as ``interrupted``) were stored, printed and written to ``--out``.
"""

from __future__ import annotations

import datetime as _dt
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import frameworks as registry
from .config import DEEP_FRAMEWORKS, FRAMEWORKS, ConfigError, RunConfig
from .data import DatasetUnavailable
from .events import Epoch, Failed, Finished, Skipped, Started, Step
from .tracking import TrackingError

#: The columns ``mlx-explore profile`` profiles by default: those that train in steps.
PROFILED = (*DEEP_FRAMEWORKS, "sklearn")

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])
console = Console(stderr=True, soft_wrap=True)
# Piped output (logs, CI, notebooks' !mlx-explore) gets a wide table instead of rich's 80 columns.
out_console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)

#: Exit code: the runs finished, the results store could not be written (module docstring).
EXIT_STORE = 3


#: ``RunConfig`` fields whose CLI option has another name.
_OPTION_OF_FIELD = {"timeout_s": "timeout"}


def _fail(field: str, message: str) -> None:
    """Print ``error: FIELD: MESSAGE`` (a ``RunConfig`` field as its ``--option``) and exit 2."""
    option = _OPTION_OF_FIELD.get(field, field)
    if option.replace("_", "-") in _COMPARE_OPTIONS:
        field = "--" + option.replace("_", "-")
    console.print(f"[bold red]error[/]: {field}: {escape(message)}", highlight=False)
    raise typer.Exit(2)


@app.command()
def compare(
    model: str = typer.Option("mlp", help="logreg | mlp | cnn | gru | transformer | gbdt"),
    dataset: str = typer.Option("digits", help="digits | breast_cancer | wine | synthetic | mnist | fashion_mnist | cifar10 "
                                "| adding | covertype"),
    frameworks: Optional[str] = typer.Option(None, help="comma-separated: torch,jax,tensorflow,sklearn,keras-jax,keras-torch,"
                                             "keras-tensorflow,xgboost,lightgbm [default: torch,jax,tensorflow,sklearn; "
                                             "for gbdt sklearn,xgboost,lightgbm]"),
    epochs: int = typer.Option(10, help="passes over the training split"),
    batch_size: int = typer.Option(32, "--batch-size", help="samples per step"),
    lr: Optional[float] = typer.Option(None, help="learning rate [default: 0.001; for gbdt 0.1]"),
    optimizer: str = typer.Option("adam", help="sgd | momentum | adam"),
    momentum: float = typer.Option(0.9, help="momentum coefficient (optimizer momentum)"),
    hidden: str = typer.Option("256,256", help="MLP hidden widths, comma-separated (gru, transformer: the first is the width)"),
    activation: str = typer.Option("relu", help="relu | tanh | sigmoid"),
    seed: int = typer.Option(0, help="seeds split, batch order and initial weights"),
    device: str = typer.Option("auto", help="auto | cpu | gpu | tpu"),
    mode: str = typer.Option("compiled", help="eager | compiled | both (one row per mode)"),
    precision: str = typer.Option("fp32", help="fp32 (TF32 off) | bf16"),
    threads: Optional[int] = typer.Option(None, help="intra-op threads per framework (default: all cores)"),
    repeat: int = typer.Option(1, help="runs per framework and mode; 2+ reports whether curves are bitwise identical"),
    deterministic: bool = typer.Option(False, "--deterministic", help="turn on each framework's determinism switches"),
    latency_steps: int = typer.Option(200, "--latency-steps", help="calls timed for step and batch-1 inference latency (0: skip)"),
    profile_steps: int = typer.Option(0, "--profile-steps", help="then profile K steps with each framework's own profiler (0: off)"),
    export: str = typer.Option("none", "--export", help="onnx: export each trained model to ONNX and time it in ONNX Runtime | none"),
    log_every: int = typer.Option(1, "--log-every", help="log the training loss every K steps"),
    timeout: Optional[float] = typer.Option(None, help="stop a run after this many seconds"),
    n_samples: int = typer.Option(2000, "--n-samples", help="synthetic data set: samples"),
    n_features: int = typer.Option(20, "--n-features", help="synthetic data set: features"),
    seq_len: int = typer.Option(50, "--seq-len", help="adding data set: time steps"),
    rounds: int = typer.Option(100, "--rounds", help="gbdt: boosting rounds"),
    max_depth: int = typer.Option(6, "--max-depth", help="gbdt: deepest tree"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="cache folder for downloaded data sets"),
    out: Optional[Path] = typer.Option(None, help="write the results JSON here"),
    db: Optional[Path] = typer.Option(None, help="results store (default $MLX_EXPLORE_DB or ~/.mlx_explore/results.db)"),
    no_store: bool = typer.Option(False, "--no-store", help="do not write the runs to the results store"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
    mlflow: bool = typer.Option(False, "--mlflow", help="also log every run to MLflow as it ends ($MLFLOW_TRACKING_URI, "
                                "else sqlite mlflow.db beside the results store)"),
    mlflow_uri: Optional[str] = typer.Option(None, "--mlflow-uri", help="log to this MLflow tracking URI (implies --mlflow)"),
    mlflow_experiment: Optional[str] = typer.Option(None, "--mlflow-experiment", help="MLflow experiment [default: mlx-explore]"),
) -> None:
    """Train the same model in each framework, one child process each, and compare them."""
    with _StopSignals() as signals:
        try:
            code = _compare(dict(
                model=model, dataset=dataset, frameworks=frameworks, epochs=epochs, batch_size=batch_size, lr=lr,
                optimizer=optimizer, momentum=momentum, hidden=hidden, activation=activation, seed=seed,
                device=device, mode=mode, precision=precision, threads=threads, repeat=repeat,
                deterministic=deterministic, latency_steps=latency_steps, log_every=log_every, timeout_s=timeout,
                n_samples=n_samples, n_features=n_features, data_dir=data_dir, profile_steps=profile_steps,
                export=export, seq_len=seq_len, rounds=rounds, max_depth=max_depth,
            ), out=out, db=db, no_store=no_store, quiet=quiet, signals=signals,
                mlflow=mlflow_uri or mlflow or None, mlflow_experiment=mlflow_experiment)  # fmt: skip
        except KeyboardInterrupt:  # before the comparison began (imports, validation): nothing ran
            console.print(f"[yellow]interrupted[/] ({signals.name or 'KeyboardInterrupt'}): stopped before any run started")
            code = signals.exit_code
    raise typer.Exit(code)


class _StopSignals:
    """Ctrl-C (SIGINT), SIGTERM and SIGHUP all stop a comparison the same clean way.

    The first of them sets :attr:`stop` and raises ``KeyboardInterrupt`` in the main thread, which
    the runner turns into the ``interrupted`` run and :class:`~mlx_explore.runner.ComparisonInterrupted`.
    :attr:`stop` is the backstop: a ``KeyboardInterrupt`` that lands inside library code which
    swallows it (a bare ``except:`` around an optional import) would otherwise let the comparison
    run on; the runner polls the event and stops the same way. Any further signal while the finished
    runs are being stored and written is only acknowledged, with a plain ``os.write`` (a handler
    that printed through rich could land inside rich's own first import and break it), so a second
    Ctrl-C (or a scheduler's SIGTERM after its SIGINT) cannot lose them. The exit code is the
    shell's convention, 128 + the signal's number: 130 (SIGINT), 143 (SIGTERM), 129 (SIGHUP).
    """

    SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))

    def __init__(self) -> None:
        self.received: int | None = None
        self.stop = threading.Event()  # set by the first signal; the runner's ``stop``
        self._previous: dict = {}

    @property
    def name(self) -> str | None:
        """``SIGTERM`` etc. for the first signal received (``None``: none)."""
        return signal.Signals(self.received).name if self.received is not None else None

    @property
    def exit_code(self) -> int:
        """128 + the first signal's number (130 when none was recorded: a ``KeyboardInterrupt`` raised
        some other way)."""
        return 128 + (self.received if self.received is not None else signal.SIGINT)

    def _handle(self, signum, frame) -> None:
        if self.received is None:
            self.received = signum
            self.stop.set()
            raise KeyboardInterrupt
        try:
            os.write(2, f"{signal.Signals(signum).name}: still saving the finished runs, one moment\n".encode())
        except OSError:  # stderr closed: nothing to tell
            pass

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():  # signal.signal works only there
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            # After a stop the results are written and the process is on its way out: ignore later
            # signals (SIG_IGN, unlike a Python handler, stays in force while the interpreter shuts
            # down, so a late second Ctrl-C cannot turn exit 130 into death by SIGINT).
            signal.signal(sig, signal.SIG_IGN if self.received is not None else previous)


def _check_out(out: Path) -> None:
    """Fail now (exit 2, field ``out``) when ``out`` cannot be written, rather than after the runs."""
    if out.is_dir():
        _fail("out", f"{out} is a folder; give a file path such as {out / 'results.json'}")
    blocking = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        _fail("out", f"cannot write {out}: {blocking} is a file, not a folder")
    existed = out.exists()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "a"):
            pass
    except OSError as exc:
        _fail("out", f"cannot write {out}: {exc.strerror or exc}")
    if not existed:
        out.unlink(missing_ok=True)


def _compare(fields: dict, *, out: Path | None, db: Path | None, no_store: bool, quiet: bool,
             signals: _StopSignals, trace_dir: Path | None = None, report=None, rename: dict | None = None,
             mlflow: bool | str | None = None, mlflow_experiment: str | None = None) -> int:  # fmt: skip
    """The ``compare`` command's work; returns the exit code (see the module docstring). ``report(result)``
    prints more after the table (``profile``); ``rename`` maps a ``RunConfig`` field to the option a
    command calls it (``profile_steps`` is ``--steps`` in ``profile``); ``mlflow`` and ``mlflow_experiment``
    go to ``runner.compare`` (an unusable MLflow URI exits 2 before anything runs; a failure part way is
    a warning: the runs are stored, ``mlx-explore export mlflow`` logs the rest)."""
    rename = rename or {}
    from .results import StoreError
    from .comparison import plan, run_label
    from .runner import ComparisonInterrupted
    from .runner import compare as run_comparison

    try:
        config = RunConfig.build(**fields)
    except ConfigError as exc:
        _fail(rename.get(exc.field, exc.field), exc.message)
    if out is not None:
        _check_out(out)

    progress = Progress(
        TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(), console=console, disable=quiet, transient=False,
    )  # fmt: skip
    tasks = {key: progress.add_task(run_label(config, *key), total=None, info="waiting") for key in plan(config)}

    def show(event) -> None:
        task = tasks[event.run_key]
        if isinstance(event, Started):
            progress.update(task, total=event.total_steps, completed=0, info=f"on {event.device}")
        elif isinstance(event, Step):
            progress.update(task, completed=event.step, info=f"loss {event.loss:.4f}")
        elif isinstance(event, Epoch):
            progress.update(task, info=f"epoch {event.epoch} val acc {event.val_accuracy:.3f}")
        elif isinstance(event, Finished):
            progress.update(task, completed=progress.tasks[task].total, info="[green]ok[/]")
        elif isinstance(event, (Failed, Skipped)):
            progress.update(task, total=1, completed=1, info=f"[yellow]{event.status}[/]")

    interrupted = False
    try:
        with progress:
            result = run_comparison(config, on_event=show, store=not no_store, db=db, trace_dir=trace_dir,
                                    stop=signals.stop, mlflow=mlflow, mlflow_experiment=mlflow_experiment)  # fmt: skip
    except ConfigError as exc:
        _fail(exc.field, exc.message)
    except StoreError as exc:
        _fail("db", str(exc))
    except TrackingError as exc:
        _fail_tracking("--mlflow-uri" if isinstance(mlflow, str) else "--mlflow", exc)
    except DatasetUnavailable as exc:
        _fail("dataset", str(exc))
    except ComparisonInterrupted as exc:
        result, interrupted = exc.comparison, True
    if signals.received is not None:  # also when library code swallowed the KeyboardInterrupt and the stop event ended it
        interrupted = result.interrupted = True
    if interrupted:
        console.print(f"[yellow]interrupted[/] ({signals.name or 'KeyboardInterrupt'}): the running run was stopped "
                      f"and stored as interrupted; finished runs are kept")  # fmt: skip
    out_console.print(results_table(result))
    for r in result.runs:
        if r.status != "ok":
            out_console.print(f"[yellow]{r.label}[/] {r.status}: {r.reason}")
            if r.error_tail and r.status == "failed":
                out_console.print(r.error_tail, markup=False, highlight=False)
    for d in result.determinism:
        verdict = "[green]bitwise identical[/]" if d["bitwise_identical"] else f"[yellow]differ[/] (max |diff| {d['max_abs_diff']:.3g})"
        out_console.print(f"determinism {d['framework']}/{d['mode']}: {d['repeats']} repeats, loss curves {verdict}")
    if result.store_error:
        stored = sum(r.run_id is not None for r in result.runs)
        console.print(f"[bold red]error[/]: db: the results store could not be written: {result.store_error}. "
                      f"{stored} of {len(result.runs)} run(s) were stored; every run is in the table above"
                      f"{' and in ' + str(out) if out is not None else ''}.")  # fmt: skip
        if out is None:
            out = Path(f"mlx-explore-{_dt.datetime.now():%Y%m%d-%H%M%S}.json")
            console.print(f"Writing the results to {out.resolve()} instead.")
    elif result.db:
        out_console.print(f"stored in {result.db} (mlx-explore results --db {result.db})")
    _print_mlflow(result)
    if report is not None:
        report(result)
    elif any(r.profile or "profile" in r.notes for r in result.runs):
        _print_profiles(result, None)
    if out is not None:
        try:
            path = result.to_json(out)
            out_console.print(f"results written to {path}")
        except OSError as exc:
            console.print(f"[bold red]error[/]: out: cannot write {out}: {exc.strerror or exc}; the table above "
                          f"is all that is left of the runs not stored")  # fmt: skip
            return EXIT_STORE
    if interrupted:
        return signals.exit_code
    if result.store_error:
        return EXIT_STORE
    if any(r.status in ("failed", "diverged", "timeout", "interrupted") for r in result.runs):
        return 1
    return 0


def _fail_tracking(option: str, exc: Exception, code: int = 2) -> None:
    """Print ``error: OPTION: MESSAGE`` of a ``tracking.TrackingError`` (its text is not rich markup: it
    holds ``mlx-explore[mlflow]``) and exit ``code`` (2: bad input or refused before anything ran)."""
    console.print(f"[bold red]error[/]: {option}: {escape(str(exc))}", highlight=False)
    raise typer.Exit(code)


def _print_mlflow(result) -> None:
    """Where ``compare --mlflow`` logged the runs, or why it stopped (a warning: the runs are stored)."""
    info = getattr(result, "mlflow", None)
    if not info:
        return
    if info.get("error"):
        console.print(f"[yellow]warning[/]: MLflow logging stopped: {escape(info['error'])}. The runs are in the results "
                      f"store; log the rest with: mlx-explore export mlflow --tracking-uri {info['tracking_uri']}"
                      + (f" --db {result.db}" if result.db else ""), highlight=False)  # fmt: skip
    else:
        out_console.print(f"logged to MLflow {info['tracking_uri']}, experiment {info['experiment']!r}: parent run "
                          f"{info['parent_run_id']}, {len(info['run_ids'])} run(s)", highlight=False)  # fmt: skip


def results_table(result) -> Table:
    """A rich table, one row per run: status, device and the headline figures (the columns, their
    units and number formats: ``mlx_explore.report.HEADLINE``)."""
    from .report import headline

    cfg = result.config
    columns = headline(cfg)
    if cfg.model == "gbdt":
        setting = f"{cfg.rounds} rounds, depth {cfg.max_depth}, learning rate {cfg.lr:g}"
    else:
        setting = f"{cfg.epochs} epochs, batch {cfg.batch_size}, {cfg.mode}, {cfg.precision}"
    table = Table(title=f"{cfg.model} on {cfg.dataset} ({setting})")
    for title in ("run", "status", "device"):
        table.add_column(title, justify="left")
    for col in columns.values():
        table.add_column(col.heading, justify="right")
    for r in result.runs:
        cells = [col.format(r.metrics.get(col.key)) for col in columns.values()]
        style = "green" if r.status == "ok" else "yellow"
        table.add_row(r.label or r.framework, f"[{style}]{r.status}[/]", r.device or "-", *cells)
    return table


@app.command()
def results(
    last: Optional[int] = typer.Option(20, min=0, max=2**63 - 1, help="show the N most recent runs (0: all)"),
    model: Optional[str] = typer.Option(None, help="only this model"),
    dataset: Optional[str] = typer.Option(None, help="only this data set"),
    framework: Optional[str] = typer.Option(None, help="only these frameworks (comma-separated)"),
    since: Optional[str] = typer.Option(None, help="only runs since this date/time (ISO 8601, UTC)"),
    db: Optional[Path] = typer.Option(None, help="results store (default $MLX_EXPLORE_DB or ~/.mlx_explore/results.db)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON records"),
) -> None:
    """List the runs in the results store, oldest first."""
    from .results import StoreError, default_path, load_runs

    fws = [f.strip() for f in framework.split(",")] if framework else None
    try:
        runs = load_runs(db, model=model, dataset=dataset, framework=fws, since=since, last=last or None)
    except StoreError as exc:
        _fail("db", str(exc))
    except ValueError as exc:  # load_runs names the field first: "since: ...", "last: ..."
        field, _, message = str(exc).partition(": ")
        _fail(field, message) if message and field.isidentifier() else _fail("results", str(exc))
    if as_json:
        cols = [c for c in runs.columns if c not in ("config", "env")]
        out_console.print_json(runs[cols].to_json(orient="records", date_format="iso"))
        return
    from .report import HEADLINE

    table = Table(title=f"{len(runs)} run(s) in {db or default_path()}")
    for h in ("id", "when (UTC)", "model", "dataset", "framework", "mode", "status"):
        table.add_column(h, justify="right" if h == "id" else "left")
    for col in HEADLINE.values():
        table.add_column(col.heading, justify="right")
    for _, row in runs.iterrows():
        cells = [col.format(row.get(col.key)) for col in HEADLINE.values()]
        when = row["created_at"].strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(str(row["run_id"]), when, row["model"], row["dataset"], row["framework"], row["mode"] or "-", row["status"], *cells)
    out_console.print(table)


@app.command()
def env(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Installed frameworks, their versions and the devices each sees (probed in child processes)."""
    from .child import probe
    from .env import environment

    report = {"env": environment(), "frameworks": {name: probe(name) for name in registry.REGISTRY}}
    if as_json:
        out_console.print_json(data=report)
        return
    table = Table(title=f"mlx-explore {report['env']['mlx_explore']} on Python {report['env']['python']}, {report['env']['cpu_count']} CPUs")
    for col in ("framework", "installed", "versions", "devices"):
        table.add_column(col)
    for name, info in report["frameworks"].items():
        versions = ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items() if v)
        devices = ", ".join(info.get("devices", [])) or info.get("error", "") or ", ".join(info.get("missing", []))
        table.add_row(name, "yes" if info["installed"] else "[yellow]no[/]", versions, devices)
    out_console.print(table)


@app.command()
def suite(
    size: str = typer.Option("small", help="small (minutes on a laptop CPU) | full (for a GPU)"),
    frameworks: str = typer.Option(",".join(FRAMEWORKS), help="comma-separated, default every column: the four native "
                                   "frameworks, Keras 3 on each backend, XGBoost and LightGBM (each suite item runs "
                                   "the ones that train its model)"),
    device: str = typer.Option("auto", help="auto | cpu | gpu | tpu"),
    threads: Optional[int] = typer.Option(None, help="intra-op threads per framework (default: all cores)"),
    export: str = typer.Option("none", "--export", help="onnx: also export every trained model to ONNX and time it in ONNX Runtime | none"),
    db: Optional[Path] = typer.Option(None, help="results store (default $MLX_EXPLORE_DB or ~/.mlx_explore/results.db)"),
    ray: Optional[str] = typer.Option(None, "--ray", help="run a whole session on every node of a Ray cluster at once "
                                      "(auto | local | HOST:PORT | ray://HOST:PORT); without it the suite runs here"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
) -> None:
    """Run the standard suite (the guide's measurements) on this machine, or on each node of a Ray cluster, and
    store every run, tagged."""
    with _StopSignals() as signals:
        try:
            code = _suite(size=size, frameworks=frameworks, device=device, threads=threads, export=export, db=db,
                          quiet=quiet, signals=signals, ray=ray)  # fmt: skip
        except KeyboardInterrupt:
            console.print(f"[yellow]interrupted[/] ({signals.name or 'KeyboardInterrupt'}): stopped before any run started")
            code = signals.exit_code
    raise typer.Exit(code)


def _suite(*, size: str, frameworks: str, device: str, threads: int | None, export: str, db: Path | None,
           quiet: bool, signals: _StopSignals, ray: str | None = None) -> int:  # fmt: skip
    from . import suite as suite_module
    from .comparison import plan
    from .results import StoreError, default_path
    from .runner import ComparisonInterrupted

    try:
        items = suite_module.configs(size, frameworks=frameworks, device=device, threads=threads, export=export)
    except ConfigError as exc:
        _fail("--" + exc.field.replace("_", "-"), exc.message)
    if ray is not None:
        return _suite_on_ray(size=size, frameworks=frameworks, device=device, threads=threads, export=export, db=db,
                             quiet=quiet, signals=signals, ray=ray)  # fmt: skip
    progress = Progress(
        TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(), console=console, disable=quiet, transient=False,
    )  # fmt: skip
    total_runs = sum(len(plan(config)) for _, config in items)
    overall = progress.add_task(f"suite {suite_module.SUITE_NAME} v{suite_module.SUITE_VERSION} ({size})",
                                total=total_runs, info="")  # fmt: skip
    current = progress.add_task("", total=None, info="", visible=False)
    state = {"item": ""}

    def on_item(it, config, index) -> None:
        state["item"] = it.name
        progress.update(current, description=f"{index + 1}/{len(items)} {it.name}", total=None, completed=0,
                        info="starting", visible=True)  # fmt: skip
        progress.update(overall, info=it.name)

    def on_event(event) -> None:
        label = f"{event.framework}/{event.mode}" + (f"#{event.repeat}" if event.repeat > 1 else "")
        if isinstance(event, Started):
            progress.update(current, total=event.total_steps, completed=0, info=f"{label} on {event.device}")
        elif isinstance(event, Step):
            progress.update(current, completed=event.step, info=f"{label} loss {event.loss:.4f}")
        elif isinstance(event, (Finished, Failed, Skipped)):
            progress.advance(overall)
            style = "green" if event.status == "ok" else "yellow"
            progress.update(current, info=f"{label} [{style}]{event.status}[/]")

    interrupted = False
    try:
        with progress:
            result = suite_module.run(size, frameworks=frameworks, device=device, threads=threads, export=export, db=db,
                                      on_item=on_item, on_event=on_event, stop=signals.stop)  # fmt: skip
    except ConfigError as exc:
        _fail("--" + exc.field.replace("_", "-"), exc.message)
    except StoreError as exc:
        _fail("--db", str(exc))
    except DatasetUnavailable as exc:
        _fail("dataset", str(exc))
    except ComparisonInterrupted:
        result = None
    if result is None or signals.received is not None:  # a swallowed KeyboardInterrupt: the stop event ended it
        console.print(f"[yellow]interrupted[/] ({signals.name or 'KeyboardInterrupt'}): finished runs are stored; "
                      f"the suite is incomplete, so the guide will not use it: run `mlx-explore suite` again")  # fmt: skip
        return signals.exit_code
    failed = _print_suite(result, size)
    if result.store_error:
        console.print(f"[bold red]error[/]: db: the results store could not be written: {result.store_error}. "
                      f"The guide needs a stored suite: free space or pass --db PATH, then run the suite again.")
        return EXIT_STORE
    where = db or default_path()
    out_console.print(f"stored in {where} as suite session {result.session}; next: mlx-explore guide"
                      + (f" --db {db}" if db else ""))  # fmt: skip
    return 1 if failed else 0


def _print_suite(result, size: str, host: str | None = None) -> bool:
    """Print a suite session's table (one row per run); True when a run failed, diverged or timed out."""
    from . import suite as suite_module

    table = Table(title=f"suite {suite_module.SUITE_NAME} v{suite_module.SUITE_VERSION}, size {size}, "
                        f"session {result.session}" + (f", node {host}" if host else ""))  # fmt: skip
    for col in ("item", "run", "status", "samples/s", "compile [s]", "train [s]", "batch-1 p50 [ms]", "peak RSS [MiB]",
                "test acc", "ROC-AUC", "run id"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("item", "run", "status") else "right")
    failed = False
    for name, comparison in result.comparisons.items():
        for r in comparison.runs:
            m = r.metrics
            failed = failed or r.status in ("failed", "diverged", "timeout")
            style = "green" if r.status == "ok" else "yellow"
            table.add_row(name, r.label, f"[{style}]{r.status}[/]", _cell(m.get("samples_per_s"), ",.0f"),
                          _cell(m.get("compile_s"), ".2f"), _cell(m.get("train_s"), ".2f"),
                          _cell(m.get("infer_ms_p50"), ".3f"), _cell(m.get("peak_rss_mb"), ".0f"),
                          _cell(m.get("test_accuracy"), ".3f"), _cell(m.get("test_roc_auc"), ".3f"),
                          str(r.run_id) if r.run_id is not None else "-")  # fmt: skip
    out_console.print(table)
    return failed


def _join_ray(address: str) -> None:
    """Start or join Ray for ``--ray`` (``sweeps.connect``); exit 2 naming ``--ray`` when Ray is not
    installed or the cluster cannot be reached."""
    from . import sweeps

    try:
        sweeps.connect(address)
    except sweeps.RayUnavailable as exc:
        _fail("--ray", str(exc))


def _progress(width: int, quiet: bool) -> Progress:
    """The progress display of a command: a description ``width`` characters wide, a bar, done/total,
    a text field ``info`` and the elapsed time."""
    return Progress(
        TextColumn(f"{{task.description:<{width}}}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console, disable=quiet, transient=False,
    )  # fmt: skip


def _live_runs(progress: Progress, width: int, label, ended=None):
    """An ``on_event(point, event)`` that shows every running run of a sweep as a line of ``progress``
    (``label(point, event)``, cut to ``width``), its bar following the steps, removed when the run ends;
    ``ended(point, event)`` is then called with its terminal event."""
    live: dict[tuple, int] = {}  # (point, framework, mode, repeat) -> its progress line

    def on_event(point, event) -> None:
        key = (point.index, *event.run_key)
        if isinstance(event, Started):
            live[key] = progress.add_task(label(point, event)[:width], total=event.total_steps, info=f"on {event.device}")
        elif isinstance(event, Step) and key in live:
            progress.update(live[key], completed=event.step, info=f"loss {event.loss:.4f}")
        elif isinstance(event, (Finished, Failed, Skipped)):
            if key in live:
                progress.remove_task(live.pop(key))
            if ended is not None:
                ended(point, event)

    return on_event


def _suite_on_ray(*, size: str, frameworks: str, device: str, threads: int | None, export: str, db: Path | None,
                  quiet: bool, signals: _StopSignals, ray: str) -> int:  # fmt: skip
    from . import suite as suite_module
    from . import sweeps
    from .results import StoreError, default_path

    _join_ray(ray)
    progress = _progress(36, quiet)
    on_event = _live_runs(progress, 36, lambda point, event: f"{point.params['host']} {point.params['item']} "
                                                             f"{event.framework}/{event.mode}")  # fmt: skip

    try:
        with progress:
            results = suite_module.run_on_ray(size, address=ray, frameworks=frameworks, device=device, threads=threads,
                                              export=export, db=db, on_event=on_event, stop=signals.stop)  # fmt: skip
    except ConfigError as exc:
        _fail("--" + exc.field.replace("_", "-"), exc.message)
    except StoreError as exc:
        _fail("--db", str(exc))
    except DatasetUnavailable as exc:
        _fail("dataset", str(exc))
    except sweeps.RayUnavailable as exc:
        _fail("--ray", str(exc))
    failed = False
    for result in results:
        host = next((c.env.get("host") for c in result.comparisons.values() if c.env), None)
        failed = _print_suite(result, size, host) or failed
    if signals.received is not None or any(r.interrupted for r in results):
        console.print(f"[yellow]interrupted[/] ({signals.name or 'KeyboardInterrupt'}): finished runs are stored; "
                      f"the sessions are incomplete, so the guide will not use them")  # fmt: skip
        return signals.exit_code
    if any(r.store_error for r in results):
        console.print(f"[bold red]error[/]: db: the results store could not be written: "
                      f"{next(r.store_error for r in results if r.store_error)}")  # fmt: skip
        return EXIT_STORE
    out_console.print(f"stored in {db or default_path()} as {len(results)} suite session(s), one per node: "
                      f"{', '.join(r.session for r in results)}; the guide reads a node's session on that node, or "
                      f"with mlx-explore guide --suite SESSION")  # fmt: skip
    return 1 if failed else 0


def _cell(value, fmt: str) -> str:
    return "-" if value is None or value != value else format(value, fmt)


@app.command()
def sweep(
    grid: Path = typer.Option(..., "--grid", help="the sweep file (YAML: base, grid, runs; see examples/sweep.yaml)"),
    ray: Optional[str] = typer.Option(None, "--ray", help="run each comparison as a Ray task: local (start Ray on this "
                                      "machine) | auto (join this machine's cluster) | HOST:PORT | ray://HOST:PORT; "
                                      "without it the comparisons run one after another here"),
    db: Optional[Path] = typer.Option(None, help="results store (default $MLX_EXPLORE_DB or ~/.mlx_explore/results.db)"),
    no_store: bool = typer.Option(False, "--no-store", help="do not write the runs to the results store"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
) -> None:
    """Run a sweep (a grid of comparisons), here one after another or on a Ray cluster, and store every run."""
    with _StopSignals() as signals:
        try:
            code = _sweep(grid=grid, ray=ray, db=db, no_store=no_store, quiet=quiet, signals=signals)
        except KeyboardInterrupt:
            console.print(f"[yellow]interrupted[/] ({signals.name or 'KeyboardInterrupt'}): stopped before any run started")
            code = signals.exit_code
    raise typer.Exit(code)


def _sweep(*, grid: Path, ray: str | None, db: Path | None, no_store: bool, quiet: bool, signals: _StopSignals) -> int:
    from . import sweeps
    from .results import StoreError, default_path

    try:
        spec = sweeps.load(grid)
    except ConfigError as exc:
        console.print(f"[bold red]error[/]: --grid: {grid}: {exc.field}: {escape(exc.message)}", highlight=False)
        return 2
    engine = "ray" if ray is not None else "local"
    if ray is not None:  # Ray missing or the cluster unreachable: said before anything else
        _join_ray(ray)
    progress = _progress(30, quiet)
    where = f" on Ray ({ray})" if ray is not None else ""
    overall = progress.add_task(f"sweep {spec.name}: {len(spec.points)} comparisons{where}", total=spec.total_runs,
                                info="")  # fmt: skip

    def ended(point, event) -> None:
        progress.advance(overall)
        style = "green" if event.status == "ok" else "yellow"
        progress.update(overall, info=f"last: #{point.index} {event.framework}/{event.mode} [{style}]{event.status}[/]")

    on_event = _live_runs(progress, 30, lambda point, event: f"#{point.index} {point.label} {event.framework}/{event.mode}",
                          ended)  # fmt: skip

    try:
        with progress:
            result = sweeps.sweep(spec, engine, ray_address=ray, db=db, store=not no_store, on_event=on_event,
                                  stop=signals.stop)  # fmt: skip
    except ConfigError as exc:
        _fail("--" + exc.field.replace("_", "-") if exc.field in ("threads", "device") else exc.field, exc.message)
    except StoreError as exc:
        _fail("--db", str(exc))
    except DatasetUnavailable as exc:
        _fail("dataset", str(exc))
    except sweeps.RayUnavailable as exc:
        _fail("--ray", str(exc))
    interrupted = result.interrupted or signals.received is not None
    table = Table(title=f"sweep {spec.name} ({result.engine}{', ' + result.ray_address if result.ray_address else ''}), "
                        f"id {result.sweep_id}")  # fmt: skip
    for col in ("#", "point", "run", "status", "host", "samples/s", "compile [s]", "train [s]", "peak RSS [MiB]",
                "test acc", "run id"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("point", "run", "status", "host") else "right")
    failed = False
    for index, comparison in sorted(result.comparisons.items()):
        point = result.points[index]
        for r in comparison.runs:
            m = r.metrics
            failed = failed or r.status in ("failed", "diverged", "timeout")
            style = "green" if r.status == "ok" else "yellow"
            table.add_row(str(index), point.label, r.label, f"[{style}]{r.status}[/]", str(comparison.env.get("host", "-")),
                          _cell(m.get("samples_per_s"), ",.0f"), _cell(m.get("compile_s"), ".2f"),
                          _cell(m.get("train_s"), ".2f"), _cell(m.get("peak_rss_mb"), ".0f"),
                          _cell(m.get("test_accuracy"), ".3f"), str(r.run_id) if r.run_id is not None else "-")  # fmt: skip
    out_console.print(table)
    for index, comparison in sorted(result.comparisons.items()):
        for r in comparison.runs:
            if r.status not in ("ok", "skipped", "unsupported"):
                out_console.print(f"[yellow]#{index} {r.label}[/] {r.status}: {r.reason}", highlight=False)
    if interrupted:
        done = sum(len(c.runs) for c in result.comparisons.values())
        console.print(f"[yellow]interrupted[/] ({signals.name or 'KeyboardInterrupt'}): outstanding comparisons were "
                      f"cancelled; the {done} run(s) above are kept")  # fmt: skip
        return signals.exit_code
    if result.store_error:
        console.print(f"[bold red]error[/]: db: the results store could not be written: {result.store_error}")
        return EXIT_STORE
    if not no_store:
        out_console.print(f"stored in {db or default_path()} as sweep {result.sweep_id} "
                          f"(mlx_explore.sweeps.table({result.sweep_id!r}))")  # fmt: skip
    return 1 if failed else 0


@app.command()
def guide(
    scenario: str = typer.Option("research", help="research | production | mobile_edge | tpu_scale | tabular | teaching"),
    weight: Optional[list[str]] = typer.Option(None, "--weight", help="criterion=W (W >= 0), repeatable; see --list"),
    db: Optional[Path] = typer.Option(None, help="results store (default $MLX_EXPLORE_DB or ~/.mlx_explore/results.db)"),
    device: Optional[str] = typer.Option(None, help="use a suite run with this --device (auto | cpu | gpu | tpu)"),
    suite_session: Optional[str] = typer.Option(None, "--suite", help="a suite session id (default: the newest complete one of this machine)"),
    as_json: bool = typer.Option(False, "--json", help="print the recommendation and the claims audit as JSON"),
    list_criteria: bool = typer.Option(False, "--list", help="list the scenarios and criteria, then exit"),
) -> None:
    """Rank the frameworks for a scenario from this machine's suite and cited knowledge; audit published claims."""
    from . import guide as guide_module
    from . import knowledge
    from .results import StoreError
    from .suite import NoSuite

    if list_criteria:
        _print_criteria(guide_module)
        return
    weights: dict[str, str] = {}
    for item in weight or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            _fail("--weight", f"expected criterion=W, got {item!r}; criteria: {', '.join(guide_module.CRITERIA)}")
        weights[name.strip()] = value.strip()
    if device is not None and device not in ("auto", "cpu", "gpu", "tpu"):
        _fail("--device", f"unknown device {device!r}; allowed: auto, cpu, gpu, tpu")
    try:
        guide_module.check_weights(scenario, weights)  # bad input is refused before the store is read
        evidence = guide_module.load_evidence(db, device=device, session=suite_session)
        rec = guide_module.recommend(evidence, scenario, weights)
        audit = guide_module.audit_claims(evidence)
    except ConfigError as exc:
        _fail("--" + exc.field.replace("_", "-"), exc.message)
    except NoSuite as exc:
        _fail("suite", exc.message)
    except StoreError as exc:
        _fail("--db", str(exc))
    except knowledge.KnowledgeError as exc:
        _fail("knowledge", str(exc))
    if as_json:
        from .jsonable import jsonable

        out_console.print_json(data=rec.to_dict() | {"claims_audit": jsonable(audit.to_dict(orient="records"))})
        return
    _print_recommendation(guide_module, rec, audit)


def _print_criteria(guide_module) -> None:
    table = Table(title="criteria (--weight NAME=W)")
    for col in ("criterion", "kind", "unit", "better", "from"):
        table.add_column(col)
    for c in guide_module.CRITERIA.values():
        table.add_row(c.name, c.kind, c.unit, "higher" if c.higher_is_better else "lower", c.source)
    out_console.print(table)
    scenarios = Table(title="scenarios (--scenario NAME) and their default weights")
    scenarios.add_column("scenario")
    scenarios.add_column("weights")
    scenarios.add_column("why")
    for s in guide_module.SCENARIOS.values():
        scenarios.add_row(s.name, ", ".join(f"{k}={v:g}" for k, v in s.weights.items()), s.reasoning)
    out_console.print(scenarios)


def _print_recommendation(guide_module, rec, audit) -> None:
    ev = rec.evidence
    s = guide_module.SCENARIOS[rec.scenario]
    out_console.print(f"[bold]{s.title}[/]: {s.reasoning}", highlight=False)
    used = [n for n, w in rec.weights.items() if w > 0]
    table = Table(title=f"ranking for {rec.scenario} (suite session {ev.session}, {ev.size}, {ev.device_kind}, "
                        f"{ev.started:%Y-%m-%d %H:%M} UTC)")  # fmt: skip
    table.add_column("#", justify="right")
    table.add_column("framework")
    table.add_column("score", justify="right")
    for n in used:
        c = guide_module.CRITERIA[n]
        table.add_column(f"{c.label}\n[dim]w {rec.weights[n]:g} · {c.unit}[/]", justify="right")
    for i, fw in enumerate(rec.ranking, 1):
        cells = []
        for n in used:
            value = rec.values.loc[fw, n]
            contribution = rec.contributions.loc[fw, n]
            raw = guide_module.format_value(value, guide_module.CRITERIA[n].unit, with_unit=False)
            cells.append(f"{raw}\n[dim]+{contribution:.3f}[/]" if value == value else "[yellow]not measured[/]")
        table.add_row(str(i), fw, f"{rec.scores[fw]:.3f}", *cells)
    out_console.print(table)
    out_console.print("[dim]Each cell: the raw value, then its contribution to the score (weighted, min-max "
                      "normalised). Evidence: mlx-explore results --db ... lists the run ids.[/]")
    if rec.reasons:
        out_console.print(f"[bold]Why {rec.top}[/]")
        for r in rec.reasons:
            refs = ", ".join(dict.fromkeys(e.text() for e in r.evidence)) or "no evidence"
            out_console.print(f"  • {r.text} [dim]evidence: {refs}[/]", highlight=False)
    if rec.what_if is not None:
        out_console.print(f"[bold]What would change the answer[/]: {rec.what_if.text}", highlight=False)
    out_console.print("[bold]Caveats[/]")
    for c in rec.caveats:
        out_console.print(f"  • {c}", highlight=False)
    claims = Table(title="claims audit: published claims against this machine's suite")
    for col in ("claim", "source", "conditions", "claimed", "measured here", "verdict"):
        claims.add_column(col, overflow="fold")
    colour = {"supported here": "green", "contradicted here": "red", "conditions differ": "yellow"}
    for _, row in audit.iterrows():
        style = colour.get(row["verdict"], "dim")
        measured = row["measured"] or row["detail"]
        claims.add_row(row["statement"], row["source"], row["conditions"], row["claimed"], measured,
                       f"[{style}]{row['verdict']}[/]")  # fmt: skip
    out_console.print(claims)


@app.command()
def profile(
    model: str = typer.Option("mlp", help="logreg | mlp | cnn | gru | transformer (gradient boosting has no training "
                              "step to profile)"),
    dataset: str = typer.Option("digits", help="digits | breast_cancer | wine | synthetic | mnist | fashion_mnist | cifar10 "
                                "| adding"),
    frameworks: str = typer.Option(",".join(f for f in FRAMEWORKS if f in PROFILED), help="comma-separated, default "
                                   "every column that trains in steps (the four native frameworks and Keras 3 on each "
                                   "backend)"),
    steps: int = typer.Option(20, help="training steps profiled per framework (at most one epoch's)"),
    batch_size: int = typer.Option(32, "--batch-size", help="samples per step"),
    hidden: str = typer.Option("256,256", help="MLP hidden widths, comma-separated"),
    optimizer: str = typer.Option("sgd", help="sgd | momentum | adam"),
    lr: float = typer.Option(0.05, help="learning rate"),
    mode: str = typer.Option("compiled", help="eager | compiled | both"),
    device: str = typer.Option("auto", help="auto | cpu | gpu | tpu"),
    precision: str = typer.Option("fp32", help="fp32 | bf16"),
    threads: Optional[int] = typer.Option(None, help="intra-op threads per framework (default: all cores)"),
    n_samples: int = typer.Option(2000, "--n-samples", help="synthetic data set: samples"),
    n_features: int = typer.Option(20, "--n-features", help="synthetic data set: features"),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="traces folder (default: traces/ beside the results store)"),
    db: Optional[Path] = typer.Option(None, help="results store (default $MLX_EXPLORE_DB or ~/.mlx_explore/results.db)"),
    no_store: bool = typer.Option(False, "--no-store", help="do not write the runs to the results store"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
) -> None:
    """Where the time of a training step goes, per framework, by each framework's own profiler.

    Trains one epoch (so the profiled steps are steady), then profiles --steps steps; prints the
    milliseconds per step by category (matmul, conv, elementwise, ..., framework overhead) and the
    top 10 ops of each framework, and writes each run's native trace plus one merged trace of one
    step per framework (Chrome Trace Event JSON: open it in https://ui.perfetto.dev or chrome://tracing).
    """
    if steps < 1:
        _fail("--steps", f"must be at least 1 (got {steps}); to train without profiling use mlx-explore compare")
    if out_dir is not None:
        _check_dir("--out-dir", out_dir)
    with _StopSignals() as signals:
        try:
            code = _compare(dict(
                model=model, dataset=dataset, frameworks=frameworks, epochs=1, batch_size=batch_size, lr=lr,
                optimizer=optimizer, hidden=hidden, device=device, mode=mode, precision=precision, threads=threads,
                latency_steps=0, n_samples=n_samples, n_features=n_features, profile_steps=steps,
            ), out=None, db=db, no_store=no_store, quiet=quiet, signals=signals, trace_dir=out_dir,
                report=lambda result: _print_profiles(result, out_dir), rename={"profile_steps": "--steps"})  # fmt: skip
        except KeyboardInterrupt:
            console.print(f"[yellow]interrupted[/] ({signals.name or 'KeyboardInterrupt'}): stopped before any run started")
            code = signals.exit_code
    raise typer.Exit(code)


def _check_dir(option: str, folder: Path) -> None:
    """Fail now (exit 2 naming ``option``) when ``folder`` cannot be made or written."""
    import tempfile

    blocking = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        _fail(option, f"cannot use {folder}: {blocking} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        _fail(option, f"cannot write in {folder}: {exc.strerror or exc}")


def _print_profiles(result, out_dir: Path | None) -> None:
    """Per profiled run: milliseconds per step by category and the top 10 ops (rich tables), the native
    traces; then the merged one-step trace of all of them."""
    from . import profiling
    from .runner import default_trace_root

    done = {r.label or r.framework: r.profile for r in result.runs if r.profile}
    for r in result.runs:
        if r.status == "ok" and not r.profile:
            out_console.print(f"[yellow]{r.label}[/] {r.notes.get('profile', 'not profiled')}")
    if not done:
        return
    frame = profiling.category_frame(done)
    table = Table(title="where a training step's time goes, ms per step (profiled steps; the unprofiled step time beside them)")
    table.add_column("run")
    shown = [c for c in profiling.CATEGORIES if frame[c].sum() > 0]
    for c in (*shown, "profiled step", "unprofiled step"):
        table.add_column(c, justify="right")
    for label, row in frame.iterrows():
        table.add_row(label, *(f"{row[c]:.3f}" for c in shown), f"{row['step_ms']:.3f}", f"{row['unprofiled_step_ms']:.3f}")
    out_console.print(table)
    for label, p in done.items():
        top = Table(title=f"{label}: top 10 ops ({p['device']}, {p['steps']} steps)")
        for c, j in (("op", "left"), ("category", "left"), ("calls/step", "right"), ("ms/step", "right"), ("share", "right")):
            top.add_column(c, justify=j)
        for row in p["rows"][:10]:
            share = row["share_of_step"]
            op = row["op"] if len(row["op"]) <= 60 else "…" + row["op"][-59:]  # the end names the function
            top.add_row(op, row["category"], f"{row['calls_per_step']:.1f}", f"{row['self_ms_per_step']:.3f}",
                        "-" if share is None else f"{share:.1%}")  # fmt: skip
        out_console.print(top)
        for note in p.get("notes", []):
            out_console.print(f"  note: {note}", highlight=False)
        if p.get("unmapped"):
            out_console.print(f"  [yellow]unmapped op names[/] (counted as other; add them to frameworks/"
                              f"{p['framework']}/op_categories.yaml): {', '.join(p['unmapped'][:20])}")  # fmt: skip
        out_console.print(f"  native trace: {', '.join(p.get('native', [])) or '-'}", highlight=False)
    root = out_dir or default_trace_root(result.db)
    ids = [str(r.run_id) for r in result.runs if r.profile and r.run_id is not None]
    name = f"merged-runs-{'-'.join(ids)}.json" if ids else f"merged-{_dt.datetime.now():%Y%m%d-%H%M%S}.json"
    merged = profiling.merge_traces({label: profiling.step_events(p) for label, p in done.items()}, Path(root) / name)
    out_console.print(f"merged trace (one step per framework): {merged}\n  open it in https://ui.perfetto.dev "
                      f"(Open trace file) or chrome://tracing", highlight=False)  # fmt: skip


#: Long option names of ``compare`` (without ``--``), so errors name the option a user typed.
_COMPARE_OPTIONS = frozenset(
    opt[2:] for p in typer.main.get_command(app).commands["compare"].params for opt in p.opts if opt.startswith("--")
)


@app.command()
def regress(
    size: str = typer.Option("small", help="small (minutes on a laptop CPU) | full"),
    only: Optional[str] = typer.Option(None, help="comma-separated: accuracy,parity,determinism,performance (default: all)"),
    frameworks: str = typer.Option("torch,jax,tensorflow,sklearn", help="comma-separated: torch,jax,tensorflow,sklearn"),
    device: str = typer.Option("auto", help="auto | cpu | gpu | tpu"),
    baseline: Optional[Path] = typer.Option(None, help="baseline file (default: notebooks/regression/baselines/<machine class>.json)"),
    update_baseline: bool = typer.Option(False, "--update-baseline", help="write this run's values as the baseline (review and commit it)"),
    report: Path = typer.Option(Path("regression-report"), help="folder for the executed notebooks and the HTML report"),
    db: Optional[Path] = typer.Option(None, help="results store for the verdicts (default $MLX_EXPLORE_DB or ~/.mlx_explore/results.db)"),
    no_store: bool = typer.Option(False, "--no-store", help="do not store the verdicts"),
) -> None:
    """Run the regression notebooks with papermill; judge accuracy, parity, determinism and speed against baselines."""
    import uuid

    from . import regress as regress_module
    from .env import environment
    from .results import ResultsStore, StoreError

    if device not in ("auto", "cpu", "gpu", "tpu"):
        _fail("--device", f"unknown device {device!r}; allowed: auto, cpu, gpu, tpu")
    try:
        regress_module.parse_only(only)
        if size not in ("small", "full"):
            raise ConfigError("size", f"unknown size {size!r}; allowed: small, full")
        RunConfig.build(frameworks=frameworks)  # the frameworks' names, checked before anything runs
    except ConfigError as exc:
        _fail("--" + exc.field.replace("_", "-"), exc.message)
    if report.exists() and not report.is_dir():
        _fail("--report", f"{report} is a file; give a folder (it is created if missing)")
    env = environment()
    try:
        result = regress_module.run(size, only, frameworks=frameworks, device=device, baseline=baseline, report=report,
                                    env=env, updating=update_baseline)  # fmt: skip
    except regress_module.BaselineError as exc:
        _fail("--baseline", exc.message)
    table = Table(title=f"regression checks ({result.machine_class}, size {size})")
    for column in ("check", "value", "baseline", "tolerance", "verdict"):
        table.add_column(column, justify="right" if column in ("value", "baseline", "tolerance") else "left")
    colour = {"pass": "green", "fail": "bold red", "error": "bold red", "noisy": "yellow", "skipped": "dim"}
    for c in result.checks:
        table.add_row(c.name, _cell(c.value, ".4g"), _cell(c.baseline, ".4g"), _cell(c.tolerance, ".3g"),
                      f"[{colour.get(c.verdict, '')}]{c.verdict}[/]")  # fmt: skip
    out_console.print(table)
    for note in result.notes:
        out_console.print(f"note: {note}", highlight=False)
    if not no_store:
        try:
            with ResultsStore(db) as store:
                store.add_checks(uuid.uuid4().hex[:12], [c.model_dump() for c in result.checks],
                                 machine_class=result.machine_class, size=size)  # fmt: skip
        except StoreError as exc:
            console.print(f"[yellow]warning[/]: the verdicts were not stored: {exc}", highlight=False)
    out_console.print(f"report: {result.index} (executed notebooks and HTML in {report})", highlight=False)
    if update_baseline:
        path = baseline or regress_module.default_baseline_path(env)
        try:
            regress_module.write_baseline(path, result.checks, env, size)
        except regress_module.BaselineError as exc:
            _fail("--baseline", exc.message)
        out_console.print(f"baseline written: {path} (review it and commit it)", highlight=False)
        raise typer.Exit(0)
    failing = [c for c in result.checks if c.verdict in ("fail", "error")]
    for c in failing:
        console.print(f"[bold red]{c.verdict}[/]: {c.detail}", highlight=False)
    raise typer.Exit(regress_module.exit_code(result.checks))


@app.command()
def dashboard(
    db: Optional[Path] = typer.Option(None, help="results store (default $MLX_EXPLORE_DB or ~/.mlx_explore/results.db)"),
    port: Optional[int] = typer.Option(None, help="TCP port (default: a free one)"),
    ip: str = typer.Option("127.0.0.1", help="address to listen on; anything but loopback prints a warning and requires a token"),
    open_browser: bool = typer.Option(False, "--open", help="open the overview in the default web browser"),
) -> None:
    """Serve the Voila dashboards (overview, run, history) until Ctrl-C; prints their URLs."""
    from .dashboard import DashboardError, serve

    try:
        code = serve(db, port=port, ip=ip, open_browser=open_browser, say=lambda line: out_console.print(line, highlight=False))
    except DashboardError as exc:
        _fail(exc.field, exc.message)
    raise typer.Exit(code)


export_app = typer.Typer(no_args_is_help=True, help="Log stored runs to other tools (MLflow).")
app.add_typer(export_app, name="export")


@export_app.command("mlflow")
def export_mlflow(
    db: Optional[Path] = typer.Option(None, help="results store (default $MLX_EXPLORE_DB or ~/.mlx_explore/results.db)"),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI: sqlite:///FILE, "
                                               "http(s)://HOST:PORT, postgresql://... (default: $MLFLOW_TRACKING_URI, "
                                               "else sqlite:///<store folder>/mlflow.db)"),
    experiment: str = typer.Option("mlx-explore", help="MLflow experiment (made if missing)"),
    since: Optional[str] = typer.Option(None, help="only runs stored since this date/time (ISO 8601, UTC)"),
) -> None:
    """Log the stored runs to MLflow: a parent run per comparison, a nested run per framework run; runs
    already logged are skipped. Exit 0 done, 1 MLflow unreachable, missing or failed part way, 2 bad input."""
    from .results import StoreError, default_path
    from .tracking import TrackingError
    from .tracking import export_mlflow as export

    if tracking_uri is not None and not tracking_uri.strip():
        _fail("--tracking-uri", "empty; give e.g. sqlite:////abs/path/mlflow.db or http://127.0.0.1:5000")
    try:
        result = export(db, tracking_uri=tracking_uri, experiment=experiment, since=since)
    except ValueError as exc:  # "since: ..."
        field, _, message = str(exc).partition(": ")
        _fail("--" + field, message) if message and field.isidentifier() else _fail("export", str(exc))
    except StoreError as exc:
        _fail("--db", str(exc))
    except TrackingError as exc:
        if exc.reason == "bad input":
            _fail_tracking("--experiment" if str(exc).startswith("experiment") else "--tracking-uri", exc)
        _fail_tracking("mlflow", exc, code=1)
    out_console.print(f"MLflow {result.tracking_uri}, experiment {result.experiment!r} (id {result.experiment_id}, "
                      f"artifacts in {result.artifact_location}) from {db or default_path()}:", highlight=False)
    out_console.print(f"  logged {len(result.logged)} run(s), {len(result.skipped)} already there (skipped), "
                      f"{result.parents_created} comparison parent run(s) created"
                      + (f", {len(result.removed)} stale half-logged run(s) deleted" if result.removed else ""),
                      highlight=False)  # fmt: skip
    if result.tracking_uri.startswith("sqlite:"):
        out_console.print(f"  view them: mlflow ui --backend-store-uri {result.tracking_uri}", highlight=False)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
