"""Shared Rich consoles and the one way user errors leave the program."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str) -> NoReturn:
    """Print a user error (one line per problem) on stderr and exit 1."""
    for line in message.splitlines():
        err.print(f"[bold red]error:[/] {line}", markup=True)
    raise typer.Exit(1)
