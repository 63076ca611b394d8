"""The ``mlx-explore`` command (typer + rich).

``mlx-explore compare``: run a comparison with one progress bar per run, print the table, store
every run in the results store, write ``--out`` JSON. ``mlx-explore results``: list stored runs.
``mlx-explore env``: installed frameworks, versions and devices.

Exit codes: 0 every framework finished, was skipped or is unsupported; 1 a framework failed,
diverged or timed out (its row says why, the others are kept); 2 bad input (the message names
the field and the allowed values, or the results store cannot be used); 130 interrupted (Ctrl-C),
after the finished runs were stored and printed.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import frameworks as registry
from .config import ConfigError, RunConfig
from .data import DatasetUnavailable
from .events import Epoch, Failed, Finished, Skipped, Started, Step

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])
console = Console(stderr=True, soft_wrap=True)
# Piped output (logs, CI, notebooks' !mlx-explore) gets a wide table instead of rich's 80 columns.
out_console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)

TABLE_COLUMNS = [
    ("test_accuracy", "test acc", "{:.4f}"),
    ("samples_per_s", "samples/s", "{:,.0f}"),
    ("step_ms_p50", "step p50 ms", "{:.2f}"),
    ("step_ms_p99", "step p99 ms", "{:.2f}"),
    ("infer_ms_p50", "infer p50 ms", "{:.3f}"),
    ("compile_s", "compile s", "{:.2f}"),
    ("peak_rss_mb", "RSS MiB", "{:,.0f}"),
    ("mfu", "MFU", "{:.1%}"),
    ("wall_s", "wall s", "{:.1f}"),
]


def _fail(field: str, message: str) -> None:
    console.print(f"[bold red]error[/]: {field}: {message}")
    raise typer.Exit(2)


@app.command()
def compare(
    model: str = typer.Option("mlp", help="logreg | mlp | cnn"),
    dataset: str = typer.Option("digits", help="digits | breast_cancer | wine | synthetic | mnist | fashion_mnist | cifar10"),
    frameworks: str = typer.Option("torch,jax,tensorflow,sklearn", help="comma-separated: torch,jax,tensorflow,sklearn"),
    epochs: int = typer.Option(10, help="passes over the training split"),
    batch_size: int = typer.Option(32, "--batch-size", help="samples per step"),
    lr: float = typer.Option(1e-3, help="learning rate"),
    optimizer: str = typer.Option("adam", help="sgd | momentum | adam"),
    momentum: float = typer.Option(0.9, help="momentum coefficient (optimizer momentum)"),
    hidden: str = typer.Option("256,256", help="MLP hidden widths, comma-separated"),
    activation: str = typer.Option("relu", help="relu | tanh | sigmoid"),
    seed: int = typer.Option(0, help="seeds split, batch order and initial weights"),
    device: str = typer.Option("auto", help="auto | cpu | gpu | tpu"),
    mode: str = typer.Option("compiled", help="eager | compiled | both (one row per mode)"),
    precision: str = typer.Option("fp32", help="fp32 (TF32 off) | bf16"),
    threads: Optional[int] = typer.Option(None, help="intra-op threads per framework (default: all cores)"),
    repeat: int = typer.Option(1, help="runs per framework and mode; 2+ reports whether curves are bitwise identical"),
    deterministic: bool = typer.Option(False, "--deterministic", help="turn on each framework's determinism switches"),
    latency_steps: int = typer.Option(200, "--latency-steps", help="calls timed for step and batch-1 inference latency (0: skip)"),
    log_every: int = typer.Option(1, "--log-every", help="log the training loss every K steps"),
    timeout: Optional[float] = typer.Option(None, help="stop a run after this many seconds"),
    n_samples: int = typer.Option(2000, "--n-samples", help="synthetic data set: samples"),
    n_features: int = typer.Option(20, "--n-features", help="synthetic data set: features"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="cache folder for downloaded data sets"),
    out: Optional[Path] = typer.Option(None, help="write the results JSON here"),
    db: Optional[Path] = typer.Option(None, help="results store (default $MLX_EXPLORE_DB or ~/.mlx_explore/results.db)"),
    no_store: bool = typer.Option(False, "--no-store", help="do not write the runs to the results store"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
) -> None:
    """Train the same model in each framework, one child process each, and compare them."""
    from .results import StoreError
    from .runner import ComparisonInterrupted, plan, run_label
    from .runner import compare as run_comparison

    try:
        config = RunConfig.build(
            model=model, dataset=dataset, frameworks=frameworks, epochs=epochs, batch_size=batch_size, lr=lr,
            optimizer=optimizer, momentum=momentum, hidden=hidden, activation=activation, seed=seed, device=device,
            mode=mode, precision=precision, threads=threads, repeat=repeat, deterministic=deterministic,
            latency_steps=latency_steps, log_every=log_every, timeout_s=timeout, n_samples=n_samples,
            n_features=n_features, data_dir=data_dir,
        )  # fmt: skip
    except ConfigError as exc:
        _fail(exc.field, exc.message)

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
            result = run_comparison(config, on_event=show, store=not no_store, db=db)
    except ConfigError as exc:
        _fail(exc.field, exc.message)
    except StoreError as exc:
        _fail("db", str(exc))
    except DatasetUnavailable as exc:
        _fail("dataset", str(exc))
    except ComparisonInterrupted as exc:
        console.print("[yellow]interrupted[/]: the running framework was stopped; finished runs are kept")
        result, interrupted = exc.comparison, True
    out_console.print(results_table(result))
    for r in result.runs:
        if r.status != "ok":
            out_console.print(f"[yellow]{r.label}[/] {r.status}: {r.reason}")
            if r.error_tail and r.status == "failed":
                out_console.print(r.error_tail, markup=False, highlight=False)
    for d in result.determinism:
        verdict = "[green]bitwise identical[/]" if d["bitwise_identical"] else f"[yellow]differ[/] (max |diff| {d['max_abs_diff']:.3g})"
        out_console.print(f"determinism {d['framework']}/{d['mode']}: {d['repeats']} repeats, loss curves {verdict}")
    if result.db:
        out_console.print(f"stored in {result.db} (mlx-explore results --db {result.db})")
    if out is not None:
        path = result.to_json(out)
        out_console.print(f"results written to {path}")
    if interrupted:
        raise typer.Exit(130)
    if any(r.status in ("failed", "diverged", "timeout", "interrupted") for r in result.runs):
        raise typer.Exit(1)


def _cell(v, fmt: str) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else fmt.format(v)


def results_table(result) -> Table:
    """A rich table, one row per run: status, device and the headline figures (``TABLE_COLUMNS``)."""
    cfg = result.config
    table = Table(title=f"{cfg.model} on {cfg.dataset} ({cfg.epochs} epochs, batch {cfg.batch_size}, {cfg.mode}, {cfg.precision})")
    for title in ("run", "status", "device", *(c[1] for c in TABLE_COLUMNS)):
        table.add_column(title, justify="right" if title not in ("run", "status", "device") else "left")
    for r in result.runs:
        cells = [_cell(r.metrics.get(key), fmt) for key, _, fmt in TABLE_COLUMNS]
        style = "green" if r.status == "ok" else "yellow"
        table.add_row(r.label or r.framework, f"[{style}]{r.status}[/]", r.device or "-", *cells)
    return table


@app.command()
def results(
    last: Optional[int] = typer.Option(20, help="show the N most recent runs (0: all)"),
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
    except ValueError as exc:
        _fail("since", str(exc))
    if as_json:
        cols = [c for c in runs.columns if c not in ("config", "env")]
        out_console.print_json(runs[cols].to_json(orient="records", date_format="iso"))
        return
    table = Table(title=f"{len(runs)} run(s) in {db or default_path()}")
    heads = ["id", "when (UTC)", "model", "dataset", "framework", "mode", "status"] + [c[1] for c in TABLE_COLUMNS]
    for h in heads:
        table.add_column(h, justify="right" if h in [c[1] for c in TABLE_COLUMNS] or h == "id" else "left")
    for _, row in runs.iterrows():
        cells = [_cell(row.get(key), fmt) for key, _, fmt in TABLE_COLUMNS]
        when = row["created_at"].strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(str(row["run_id"]), when, row["model"], row["dataset"], row["framework"], row["mode"] or "-", row["status"], *cells)
    out_console.print(table)


@app.command()
def env(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Installed frameworks, their versions and the devices each sees (probed in child processes)."""
    from .runner import environment

    report = {"env": environment(), "frameworks": {name: registry.probe(name) for name in registry.REGISTRY}}
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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
