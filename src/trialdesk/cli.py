"""The ``trialdesk`` command line. Each group lives next to the concept it drives;
this module only wires them together and turns user errors into one-line messages."""

from __future__ import annotations

import typer

from trialdesk.eligibility.commands import screen_command
from trialdesk.protocol.commands import app as protocol_app
from trialdesk.sources.commands import app as synth_app

app = typer.Typer(
    name="trialdesk",
    help="Run an early-phase cell-therapy safety trial end to end.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(protocol_app, name="protocol")
app.command("screen")(screen_command)
app.add_typer(synth_app, name="synth", help="Synthetic data: an OMOP CDM hospital for demos, tests and benchmarks.")


def main() -> None:  # pragma: no cover - console entry
    app()
