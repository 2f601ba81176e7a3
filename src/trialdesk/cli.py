"""The ``trialdesk`` command line. Each group lives next to the concept it drives;
this module only wires them together and turns user errors into one-line messages.

The commands are registered by name, module and one line of help, and their modules are
imported only when one of them runs: ``trialdesk --help`` and ``trialdesk patient check``
do not pay for the analysis stack (scipy, matplotlib), Django, Spark or the engine's
compiler they do not use (``tests/test_cli_startup.py`` holds each command to its help).
"""

from __future__ import annotations

import importlib
from typing import Any

import click
import typer
from typer.core import TyperGroup

#: name → (module, attribute, is a Typer group, the help line shown by ``trialdesk --help``),
#: in the order ``trialdesk --help`` lists them
COMMANDS: dict[str, tuple[str, str, bool, str]] = {
    "demo": ("trialdesk.demo", "demo", False,
             "Run the whole trial as a demo: pre-screen a synthetic hospital, conduct the trial in the trial desk, report, serve."),
    "screen": ("trialdesk.eligibility.commands", "screen_command", False,
               "Pre-screen every person in an OMOP CDM: every person's status per criterion, the evidence for the candidates,\n"
               "the attrition funnel, ranked candidates and what was wrong in the data."),
    "explain": ("trialdesk.eligibility.commands", "explain_command", False,
                "One person's eligibility worksheet from an OMOP CDM: every criterion with its status and the records that "
                "decided it."),
    "backup": ("trialdesk.edc.commands", "backup_command", False,
               "Back up the trial desk's database (PostgreSQL or SQLite) into one file with a manifest and SHA-256 checksum."),
    "restore": ("trialdesk.edc.commands", "restore_command", False,
                "Replace the trial desk's database with a backup, after checking the whole file; a damaged file changes nothing."),
    "protocol": ("trialdesk.protocol.commands", "app", True,
                 "Protocols as data: validate, show, export to and import from ClinicalTrials.gov."),
    "patient": ("trialdesk.eligibility.patient_commands", "app", True,
                "One patient's chart: FHIR R4 record → eligibility worksheet with evidence."),
    "fhir": ("trialdesk.sources.fhir_commands", "app", True, "FHIR: SQL-on-FHIR v2 views run by DuckDB or Spark."),
    "synth": ("trialdesk.sources.commands", "app", True,
              "Synthetic data: an OMOP CDM hospital for demos, tests and benchmarks."),
    "safety": ("trialdesk.safety.commands", "app", True,
               "Safety: stopping rules, their operating characteristics, SAE clocks."),
    "report": ("trialdesk.analysis.commands", "report_app", True,
               "Results of a data cut: the primary outcome and the participant flow."),
    "export": ("trialdesk.analysis.commands", "export_app", True,
               "Exports of a data cut: ClinicalTrials.gov results, CDISC SDTM and ODM, REDCap data dictionary."),
    "serve": ("trialdesk.edc.commands", "serve_app", True, "Run the trial desk (the EDC web app)."),
    "audit": ("trialdesk.edc.commands", "audit_app", True, "The audit trail."),
    "users": ("trialdesk.edc.commands", "users_app", True, "Accounts of the study team."),
}


def load_command(name: str) -> click.Command:
    """The click command ``name`` runs, its module imported now."""
    module, attr, group, help_line = COMMANDS[name]
    target = getattr(importlib.import_module(module), attr)
    if group:
        cmd = typer.main.get_group(target)
        cmd.name = name
        if name == "synth":  # the group's own help speaks of the population; here it is listed as the hospital
            cmd.help = help_line
        return cmd
    single = typer.Typer(pretty_exceptions_enable=False)
    single.command(name)(target)
    return typer.main.get_command(single)


class _Lazy(click.Command):
    """A command listed by its help line; its module is imported when it runs (or shows its own help)."""

    def __init__(self, name: str, help_line: str) -> None:
        super().__init__(name, help=help_line, short_help=help_line)
        self._real: click.Command | None = None

    def real(self) -> click.Command:
        if self._real is None:
            self._real = load_command(str(self.name))
        return self._real

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        return self.real().make_context(info_name, args, parent=parent, **extra)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return self.real().get_params(ctx)


class _Commands(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, (_, _, _, help_line) in COMMANDS.items():
            self.add_command(_Lazy(name, help_line), name)


app = typer.Typer(
    name="trialdesk",
    cls=_Commands,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def trialdesk() -> None:
    """Run an early-phase cell-therapy safety trial end to end."""


def main() -> None:  # pragma: no cover - console entry
    app()
