"""``trialdesk patient check``: one referred patient's FHIR record (or a folder of many) → worksheet."""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import tempfile
import textwrap
from collections.abc import Iterable, Iterator
from enum import StrEnum
from importlib import resources
from pathlib import Path

import jinja2
import typer
from rich.table import Table

from trialdesk import kept
from trialdesk.console import fail, out
from trialdesk.eligibility.chunks import DEFAULT_CHUNK
from trialdesk.eligibility.commands import parse_date
from trialdesk.eligibility.worksheet import Batch, Worksheet, check_fhir
from trialdesk.protocol.kept import load_kept
from trialdesk.protocol.loader import PROTOCOL_HELP, ProtocolError, choose
from trialdesk.protocol.model import Protocol
from trialdesk.sources.fhir import FhirError
from trialdesk.terminology.value_set import ValueSet

app = typer.Typer(help="One patient's chart: FHIR R4 record → eligibility worksheet with evidence.", no_args_is_help=True)

STYLE = {"met": "green", "not_met": "red", "needs_review": "yellow", "unknown": "cyan",
         "eligible": "bold green", "not_eligible": "bold red"}


class Validate(StrEnum):
    read = "read"
    full = "full"


class Engine(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


class Format(StrEnum):
    table = "table"
    json = "json"
    html = "html"


def render_html(sheets: list[Worksheet]) -> str:
    """The worksheets as one printable page; a batch (:class:`Batch` of several) opens with its summary,
    where the problems that belong to no patient are listed once."""
    env = _html_env()
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
    death = f"\n[bold red]{sheet.death.sentence()}[/]" if sheet.death is not None else ""
    t = Table(title=f"{sheet.protocol.identification.nct_id} worksheet — {sheet.patient} ({sheet.file}), as of {sheet.as_of}: "
                    f"[{STYLE[sheet.overall]}]{sheet.overall}[/]{death}", title_justify="left", show_lines=True)
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
    chunk: int = typer.Option(
        DEFAULT_CHUNK, "--chunk", min=0,
        help="patients checked at a time in an export or a folder, so that memory is bounded by the chunk, not the export "
             "(worksheets are written as they are made; 0: the whole input at once)"),
    engine: Engine = typer.Option(
        Engine.duckdb, "--engine",
        help="what runs the FHIR views: duckdb, or spark (local Spark runs them once over the whole input, in one process; "
             "reading, mapping and screening stay in DuckDB; the same worksheets)"),
) -> None:
    """Check a patient's FHIR record against every criterion, with the evidence for each."""
    as_of_date = parse_date(as_of, "--as-of")
    with kept.keeping():  # the protocol read and the screen's SQL, kept for the next process
        _check_command(source, as_of_date, fmt, protocol_ref, out_file, validate, workers, chunk, engine)


def _check_command(source: Path, as_of_date: dt.date, fmt: Format, protocol_ref: str | None, out_file: Path | None,
                   validate: Validate, workers: int, chunk: int = 0, engine: Engine = Engine.duckdb) -> None:
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
    workers = workers or os.cpu_count() or 1
    if engine is Engine.spark:
        workers = 1  # Spark runs the views once over the whole input: no folder of Bundles in parts
    if chunk and _chunked(source, workers):
        _check_in_chunks(source, protocol, as_of_date, fmt, out_file, validate, chunk, value_sets, engine)
        return
    collecting = gc.isenabled()
    gc.disable()
    try:
        sheets = check_fhir(source, protocol, as_of_date, value_sets=value_sets, workers=workers,
                            validate="full" if validate is Validate.full else "read", engine=engine.value)
    except FhirError as exc:
        fail(str(exc))
    finally:
        if collecting:
            gc.enable()
    if not sheets:
        fail(f"{source}: no Patient resource found; a worksheet needs the patient the record is about")
    _emit(sheets, fmt, out_file)


def _emit(sheets: Batch, fmt: Format, out_file: Path | None) -> None:
    """The worksheets of a check, in ``fmt``, to the terminal or ``out_file``."""
    if fmt is Format.json:
        payload = sheets[0].to_json() if len(sheets) == 1 else batch_json(sheets)
        text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    elif fmt is Format.html:
        text = render_html(sheets)
    else:
        for sheet in sheets:
            _print_table(sheet)
        if len(sheets) > 1:
            _print_summary(sheets)
        return
    _write_text(out_file, [text], len(sheets))

# --------------------------------------------------------------------------- an export in chunks, written as it is checked


def _chunked(source: Path, workers: int) -> bool:
    """Whether ``source`` is checked in chunks of patients: an export or a folder (a single Bundle is one
    chart, read at once), unless it is a folder of many Bundles that ``workers`` processes check in parts."""
    from trialdesk.eligibility.worksheet import PARALLEL_FROM_BUNDLES
    from trialdesk.sources.fhir import batch_bundles

    if source.is_file():
        return source.name.endswith((".ndjson", ".ndjson.gz"))
    bundles = batch_bundles(source)
    return not (workers > 1 and bundles is not None and len(bundles) >= PARALLEL_FROM_BUNDLES)


class _Written:
    """The worksheets of a chunked check, written as they are made: a batch's json worksheets go to a spool
    file, then come after the summary (known only at the end) as the one JSON document a check in one pass
    prints; the table prints each worksheet at once. A check that finds one patient prints that worksheet
    alone, with the problems of no patient on it, as before."""

    def __init__(self, fmt: Format, out_file: Path | None) -> None:
        self.fmt = fmt
        self.out_file = out_file
        self.first: Worksheet | None = None
        self.n = 0
        self.counts = {label: 0 for label in ("eligible", "needs_review", "not_eligible")}
        self.spool: tempfile._TemporaryFileWrapper[str] | None = None
        self.pages: list[dict[str, object]] = []  # html: one page, rendered at the end

    def add(self, sheet: Worksheet) -> None:
        self.n += 1
        self.counts[sheet.overall] = self.counts.get(sheet.overall, 0) + 1
        if self.n == 1:
            self.first = sheet  # held until a second shows it is a batch
            return
        if self.first is not None:
            self._write(self.first)
            self.first = None
        self._write(sheet)

    def _write(self, sheet: Worksheet) -> None:
        if self.fmt is Format.table:
            _print_table(sheet)
        elif self.fmt is Format.html:
            self.pages.append(sheet.to_json())
        else:
            if self.spool is None:
                folder = self.out_file.parent if self.out_file is not None else None
                self.spool = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by close()
                    "w+", encoding="utf-8", dir=folder, prefix=".worksheets-", suffix=".tmp", delete=True)
            else:
                self.spool.write(",\n")
            self.spool.write(textwrap.indent(json.dumps(sheet.to_json(), indent=2, ensure_ascii=False), "    "))

    def finish(self, problems: list[str], protocol: object, as_of: dt.date) -> None:
        if self.first is not None:  # one patient: as a check in one pass gives it
            self.first.problems.extend(problems)
            _emit(Batch([self.first], []), self.fmt, self.out_file)
            return
        summary = {"patients": self.n, "overall": self.counts, "problems": problems}
        if self.fmt is Format.table:
            counts = ", ".join(f"[{STYLE[k]}]{n} {k}[/]" for k, n in self.counts.items())
            out.print(f"batch: {self.n} patients as of {as_of}: {counts}")
            for p in problems:
                out.print(f"  [red]problem (no patient)[/] {p}")
            return
        if self.fmt is Format.html:
            env = _html_env()
            text = env.get_template("worksheet.html.j2").render(sheets=self.pages, protocol=protocol, batch=summary, as_of=as_of)
            _write_text(self.out_file, [text], self.n)
            return
        assert self.spool is not None
        head = '{\n  "batch": ' + textwrap.indent(json.dumps(summary, indent=2, ensure_ascii=False), "  ")[2:]
        self.spool.flush()
        self.spool.seek(0)
        spool = self.spool

        def chunks() -> Iterator[str]:
            yield head + ',\n  "worksheets": [\n'
            while block := spool.read(1 << 20):
                yield block
            yield "\n  ]\n}\n"

        _write_text(self.out_file, chunks(), self.n)

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()


def _html_env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(resources.files("trialdesk.eligibility") / "templates")),
                              autoescape=True, trim_blocks=True, lstrip_blocks=True)


def _write_text(out_file: Path | None, blocks: Iterable[str], n: int) -> None:
    """The text to the terminal, or to ``out_file`` through a temporary file (nothing half-written)."""
    if out_file is None:
        for block in blocks:
            print(block, end="")
        return
    tmp = out_file.with_name(f".{out_file.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for block in blocks:
                f.write(block)
        tmp.replace(out_file)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        fail(f"--out {out_file}: cannot write ({exc.strerror}); nothing was written")
    out.print(f"wrote {out_file} ({n} worksheet{'s' if n != 1 else ''})")


def _check_in_chunks(source: Path, protocol: Protocol, as_of: dt.date, fmt: Format, out_file: Path | None, validate: Validate,
                     chunk: int, value_sets: dict[str, ValueSet], engine: Engine = Engine.duckdb) -> None:
    from trialdesk.eligibility.worksheet import check_chunked

    collecting = gc.isenabled()
    gc.disable()
    written = _Written(fmt, out_file)
    try:
        try:
            parts, problems = check_chunked([source], protocol, as_of, value_sets, "full" if validate is Validate.full else "read", chunk,
                                            engine.value)
            for part in parts:
                for sheet in part:
                    written.add(sheet)
                gc.collect()  # what a chunk made (its worksheets written, its tables dropped) is let go before the next
        except FhirError as exc:
            fail(str(exc))
        finally:
            if collecting:
                gc.enable()
        if written.n == 0:
            fail(f"{source}: no Patient resource found; a worksheet needs the patient the record is about")
        written.finish(problems(), protocol, as_of)
    finally:
        written.close()
