"""The ``trialdesk`` command line. Each group lives next to the concept it drives;
this module only wires them together and turns user errors into one-line messages."""

from __future__ import annotations

import typer

from trialdesk.analysis.commands import export_app, report_app
from trialdesk.demo import demo
from trialdesk.edc.commands import audit_app, backup_command, restore_command, serve_app, users_app
from trialdesk.eligibility.commands import explain_command, screen_command
from trialdesk.eligibility.patient_commands import app as patient_app
from trialdesk.protocol.commands import app as protocol_app
from trialdesk.safety.commands import app as safety_app
from trialdesk.sources.commands import app as synth_app
from trialdesk.sources.fhir_commands import app as fhir_app

app = typer.Typer(
    name="trialdesk",
    help="Run an early-phase cell-therapy safety trial end to end.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("demo")(demo)
app.add_typer(protocol_app, name="protocol")
app.command("screen")(screen_command)
app.command("explain")(explain_command)
app.add_typer(patient_app, name="patient")
app.add_typer(fhir_app, name="fhir")
app.add_typer(synth_app, name="synth", help="Synthetic data: an OMOP CDM hospital for demos, tests and benchmarks.")
app.add_typer(safety_app, name="safety")
app.add_typer(report_app, name="report")
app.add_typer(export_app, name="export")
app.add_typer(serve_app, name="serve")
app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.command("backup")(backup_command)
app.command("restore")(restore_command)


def main() -> None:  # pragma: no cover - console entry
    app()
