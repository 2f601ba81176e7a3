"""``trialdesk patient check``: one referred patient's FHIR record (or a folder of many) → worksheet."""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
from enum import StrEnum
from importlib import resources
from pathlib import Path

import jinja2
import typer
from rich.table import Table

from trialdesk import kept
from trialdesk.console import fail, out
from trialdesk.eligibility.commands import parse_date
from trialdesk.eligibility.worksheet import Batch, Worksheet, check_fhir
from trialdesk.protocol.kept import load_kept
from trialdesk.protocol.loader import PROTOCOL_HELP, ProtocolError, choose
from trialdesk.sources.fhir import FhirError

app = typer.Typer(help="One patient's chart: FHIR R4 record → eligibility worksheet with evidence.", no_args_is_help=True)

STYLE = {"met": "green", "not_met": "red", "needs_review": "yellow", "unknown": "cyan",
         "eligible": "bold green", "not_eligible": "bold red"}


class Validate(StrEnum):
    read = "read"
    full = "full"


class Format(StrEnum):
    table = "table"
    json = "json"
    html = "html"


def render_html(sheets: list[Worksheet]) -> str:
    """The worksheets as one printable page; a batch (:class:`Batch` of several) opens with its summary,
    where the problems that belong to no patient are listed once."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(resources.files("trialdesk.eligibility") / "templates")),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    summary = sheets.summary() if isinstance(sheets, Batch) and len(sheets) > 1 else None
    return env.get_template("worksheet.html.j2").render(sheets=[s.to_json() for s in sheets], protocol=sheets[0].protocol,
                                                        batch=summary, as_of=sheets[0].as_of)


def batch_json(sheets: Batch) -> dict[str, object]:
    """A batch as JSON: its summary (patients, overall counts, the problems that belong to no patient,
    each once) and every worksheet."""
    return {"batch": sheets.summary(), "worksheets": [s.to_json() for s in sheets]}


def _print_summary(sheets: Batch) -> None:
    summary = sheets.summary()
    counts = ", ".join(f"[{STYLE[k]}]{n} {k}[/]" for k, n in summary["overall"].items())
    out.print(f"batch: {summary['patients']} patients as of {sheets[0].as_of}: {counts}")
    for p in summary["problems"]:
        out.print(f"  [red]problem (no patient)[/] {p}")


def _evidence_line(e: dict[str, object]) -> str:
    parts = [str(e.get("resource") or e.get("table"))]
    for key in ("date", "code", "display"):
        if e.get(key):
            parts.append(str(e[key]))
    if e.get("value") is not None:
        parts.append(f"{e['value']} {e.get('unit') or ''}".strip())
    if e.get("note"):
        parts.append(f"({e['note']})")
    return " ".join(parts)


def _print_table(sheet: Worksheet) -> None:
    t = Table(title=f"{sheet.protocol.identification.nct_id} worksheet — {sheet.patient} ({sheet.file}), as of {sheet.as_of}: "
                    f"[{STYLE[sheet.overall]}]{sheet.overall}[/]", title_justify="left", show_lines=True)
    t.add_column("id", style="bold")
    t.add_column("criterion and evidence")
    t.add_column("status")
    for c in sheet.criteria:
        body = c["text"] + "".join(f"\n  • {_evidence_line(e)}" for e in c["evidence"])
        t.add_row(c["id"], body, f"[{STYLE[c['status']]}]{c['status']}[/]")
    out.print(t)
    for a in sheet.attestations:
        out.print(f"  [yellow]to sign[/] {a['criterion_id']}: {a['question']}")
    for p in sheet.problems:
        out.print(f"  [red]problem[/] {p}")


@app.command()
def check(
    source: Path = typer.Argument(..., help="a FHIR R4 Bundle (.json), a Bulk Data export folder, or a folder of Bundles"),
    as_of: str = typer.Option(..., "--as-of", help="screening date, YYYY-MM-DD"),
    fmt: Format = typer.Option(Format.table, "--format", help="table, json, or html (printable, for signing on paper)"),
    protocol_ref: str | None = typer.Option(None, "--protocol", help=PROTOCOL_HELP),
    out_file: Path | None = typer.Option(None, "--out", help="write to this file instead of the terminal"),
    validate: Validate = typer.Option(
        Validate.read, "--validate",
        help="read: check every value trialdesk reads against its FHIR R4 type (and each resource's top-level names and "
             "required elements), the rest is neither validated nor used; full: every resource against the FHIR R4 JSON Schema"),
    workers: int = typer.Option(
        0, "--workers", help="processes checking a folder of many Bundles, or validating one large record (0: one per CPU)"),
) -> None:
    """Check a patient's FHIR record against every criterion, with the evidence for each."""
    as_of_date = parse_date(as_of, "--as-of")
    with kept.keeping():  # the protocol read and the screen's SQL, kept for the next process
        _check_command(source, as_of_date, fmt, protocol_ref, out_file, validate, workers)


def _check_command(source: Path, as_of_date: dt.date, fmt: Format, protocol_ref: str | None, out_file: Path | None,
                   validate: Validate, workers: int) -> None:
    try:
        protocol, value_sets = load_kept(choose(protocol_ref))
    except ProtocolError as exc:
        fail(str(exc))
    if not source.exists():
        fail(f"{source}: no such file or folder; give a FHIR Bundle, an export folder or a folder of Bundles")
    if out_file is not None:
        if fmt is Format.table:
            fail("--out is for json and html; the table prints to the terminal")
        from trialdesk.sources.fhir_commands import check_out_path

        check_out_path(out_file)
    # The cyclic garbage collector kept scanning the hundreds of thousands of resources a batch
    # holds (a quarter of a 1,500-patient check's CPU); reading, validating and mapping make
    # no cycles worth collecting, so it is paused for the check (this process is the command's own).
    collecting = gc.isenabled()
    gc.disable()
    try:
        sheets = check_fhir(source, protocol, as_of_date, value_sets=value_sets, workers=workers or os.cpu_count() or 1,
                            validate="full" if validate is Validate.full else "read")
    except FhirError as exc:
        fail(str(exc))
    finally:
        if collecting:
            gc.enable()
    if not sheets:
        fail(f"{source}: no Patient resource found; a worksheet needs the patient the record is about")
    if fmt is Format.json:
        payload = sheets[0].to_json() if len(sheets) == 1 else batch_json(sheets)
        text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    elif fmt is Format.html:
        text = render_html(sheets)
    else:
        if out_file is not None:
            fail("--out is for json and html; the table prints to the terminal")
        for sheet in sheets:
            _print_table(sheet)
        if len(sheets) > 1:
            _print_summary(sheets)
        return
    if out_file is None:
        print(text, end="")
    else:
        tmp = out_file.with_name(f".{out_file.name}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(out_file)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            fail(f"--out {out_file}: cannot write ({exc.strerror}); nothing was written")
        out.print(f"wrote {out_file} ({len(sheets)} worksheet{'s' if len(sheets) != 1 else ''})")
