"""The ``mlx-explore`` command (typer + rich).

``mlx-explore compare``: run a comparison with one progress bar per framework, print the table,
write ``--out`` JSON. ``mlx-explore env``: installed frameworks, versions and devices.

Exit codes: 0 every framework finished, was skipped or is unsupported; 1 a framework failed,
diverged or timed out (its row says why, the others are kept); 2 bad input (the message names
the field and the allowed values).
"""

from __future__ import annotations

import json
import math
import subprocess
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
    ("test_f1_macro", "macro-F1", "{:.4f}"),
    ("samples_per_s", "samples/s", "{:,.0f}"),
    ("compile_s", "compile s", "{:.2f}"),
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
    mode: str = typer.Option("compiled", help="eager | compiled"),
    threads: Optional[int] = typer.Option(None, help="intra-op threads per framework (default: all cores)"),
    log_every: int = typer.Option(1, "--log-every", help="log the training loss every K steps"),
    timeout: Optional[float] = typer.Option(None, help="stop a framework's run after this many seconds"),
    n_samples: int = typer.Option(2000, "--n-samples", help="synthetic data set: samples"),
    n_features: int = typer.Option(20, "--n-features", help="synthetic data set: features"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="cache folder for downloaded data sets"),
    out: Optional[Path] = typer.Option(None, help="write the results JSON here"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
) -> None:
    """Train the same model in each framework, one child process each, and compare them."""
    from .runner import Collector, Comparison, RunRecord, environment, iter_compare

    try:
        config = RunConfig.build(
            model=model, dataset=dataset, frameworks=frameworks, epochs=epochs, batch_size=batch_size, lr=lr,
            optimizer=optimizer, momentum=momentum, hidden=hidden, activation=activation, seed=seed, device=device,
            mode=mode, threads=threads, log_every=log_every, timeout_s=timeout, n_samples=n_samples,
            n_features=n_features, data_dir=data_dir,
        )  # fmt: skip
    except ConfigError as exc:
        _fail(exc.field, exc.message)

    env = environment()
    collect = Collector()
    progress = Progress(
        TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(), console=console, disable=quiet, transient=False,
    )  # fmt: skip
    tasks = {name: progress.add_task(name, total=None, info="waiting") for name in config.frameworks}
    try:
        with progress:
            for event in iter_compare(config):
                collect(event)
                task = tasks[event.framework]
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
    except ConfigError as exc:
        _fail(exc.field, exc.message)
    except DatasetUnavailable as exc:
        console.print(f"[bold red]error[/]: dataset: {exc}")
        raise typer.Exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: the running framework was stopped; finished runs are kept")
    runs = [collect.records.get(n, RunRecord(n, status="interrupted", reason="not run")) for n in config.frameworks]
    for r in runs:
        if r.status == "running":
            r.status, r.reason = "interrupted", "stopped by Ctrl-C"
    result = Comparison(config=config, env=env, runs=runs)
    out_console.print(results_table(result))
    for r in runs:
        if r.status not in ("ok",):
            out_console.print(f"[yellow]{r.framework}[/] {r.status}: {r.reason}")
            if r.error_tail and r.status == "failed":
                out_console.print(r.error_tail, markup=False, highlight=False)
    if out is not None:
        path = result.to_json(out)
        out_console.print(f"results written to {path}")
    if any(r.status in ("failed", "diverged", "timeout", "interrupted") for r in runs):
        raise typer.Exit(1)


def results_table(result) -> Table:
    """A rich table: framework, status, device, test accuracy, macro-F1, samples/s, compile s, wall s."""
    table = Table(title=f"{result.config.model} on {result.config.dataset} ({result.config.epochs} epochs, {result.config.mode})")
    for title in ("framework", "status", "device", *(c[1] for c in TABLE_COLUMNS)):
        table.add_column(title, justify="right" if title not in ("framework", "status", "device") else "left")
    for r in result.runs:
        cells = []
        for key, _, fmt in TABLE_COLUMNS:
            v = r.metrics.get(key)
            cells.append("-" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v))
        style = "green" if r.status == "ok" else "yellow"
        table.add_row(r.framework, f"[{style}]{r.status}[/]", r.device or "-", *cells)
    return table


@app.command()
def env(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Installed frameworks, their versions and the devices each sees (probed in child processes)."""
    from .runner import child_env, environment

    report = {"env": environment(), "frameworks": {}}
    for name in registry.REGISTRY:
        missing = registry.missing_modules(name)
        if missing:
            report["frameworks"][name] = {"installed": False, "missing": missing}
            continue
        proc = subprocess.run(
            [sys.executable, "-m", "mlx_explore.worker", "probe", name],
            capture_output=True, text=True, env=child_env(RunConfig()), timeout=300,
        )  # fmt: skip
        try:
            info = json.loads(proc.stdout.strip().splitlines()[-1])
            report["frameworks"][name] = {"installed": True, "versions": info["versions"], "devices": info["devices"]}
        except (IndexError, ValueError, KeyError):
            err = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            report["frameworks"][name] = {"installed": True, "error": err[0]}
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
