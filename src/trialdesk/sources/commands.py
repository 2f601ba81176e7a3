"""``trialdesk synth ...``: synthetic data for tests and benchmarks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from trialdesk.console import fail, out
from trialdesk.sources.synthetic import generate_omop

app = typer.Typer(help="Synthetic data: an OMOP CDM population with planted boundary cases.", no_args_is_help=True)


@app.callback()
def synth() -> None:
    """Synthetic data: an OMOP CDM population with planted boundary cases."""


def _as_of(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"--as-of {value!r} is not a date; write it as YYYY-MM-DD, e.g. 2024-06-01")


@app.command()
def omop(
    persons: int = typer.Option(..., "--persons", min=0, help="number of random people (the planted cases come on top)"),
    seed: int = typer.Option(..., "--seed", help="random seed; the same seed gives the same database"),
    out_path: Path = typer.Option(..., "--out", help="DuckDB file to write", dir_okay=False),
    as_of: str = typer.Option("2024-06-01", "--as-of", help="screening date the population is drawn around (YYYY-MM-DD)"),
    force: bool = typer.Option(False, "--force", help="replace the output file if it exists"),
) -> None:
    """Write a synthetic OMOP CDM v5.4 DuckDB database."""
    date = _as_of(as_of)
    if out_path.exists() and not force:
        fail(f"{out_path} already exists; choose another --out or add --force to replace it")
    if not out_path.parent.exists():
        fail(f"folder {out_path.parent} does not exist; create it first")
    with Progress(TextColumn("[bold]generating[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=out, transient=True) as bar:
        task = bar.add_task("people", total=max(persons, 1))
        summary = generate_omop(out_path, persons=persons, seed=seed, as_of=date,
                                progress=lambda done, total: bar.update(task, completed=done))
    table = Table(title=f"{out_path} — {persons:,} people + {summary.planted} planted, seed {seed}, as of {date}",
                  title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in summary.rows.items():
        table.add_row(name, f"{rows:,}")
    table.add_row("[bold]seconds[/]", f"{summary.seconds:.1f}")
    out.print(table)
