"""The ``trialdesk`` command line. Each group lives next to the concept it drives;
this module only wires them together and turns user errors into one-line messages."""

from __future__ import annotations

import typer

from trialdesk.eligibility.commands import screen_command
from trialdesk.protocol.commands import app as protocol_app

app = typer.Typer(
    name="trialdesk",
    help="Run an early-phase cell-therapy safety trial end to end.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(protocol_app, name="protocol")
app.command("screen")(screen_command)


def main() -> None:  # pragma: no cover - console entry
    app()
