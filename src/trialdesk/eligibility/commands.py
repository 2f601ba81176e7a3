"""``trialdesk screen``: pre-screen a whole OMOP CDM population for a protocol."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from trialdesk.console import err, fail, out
from trialdesk.eligibility.screen import OutputError, check_output_folder, screen, write_outputs
from trialdesk.protocol.loader import PROTOCOL_HELP, ProtocolError, choose, load, protocol_value_sets
from trialdesk.sources.omop import OmopError, engine_failure, open_omop


def parse_months(text: str | None) -> int | None:
    if text is None:
        return None
    m = re.fullmatch(r"(\d+)\s*(m|mo|months?|y|years?)", text.strip().lower())
    if not m:
        fail(f"--active-within {text!r}: give a number of months or years, e.g. 12m or 2y")
    n = int(m.group(1))
    return n * 12 if m.group(2).startswith("y") else n


def parse_date(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r}: not a date; write it as YYYY-MM-DD, e.g. 2024-06-01")


def screen_command(
    omop: str = typer.Option(..., "--omop", help="DuckDB file, Parquet folder, postgresql://...?schema=cdm, or spark:<folder>"),
    as_of: str = typer.Option(..., "--as-of", help="screening date, YYYY-MM-DD"),
    out_dir: Path = typer.Option(
        ..., "--out", help="folder for funnel.csv, statuses.parquet, evidence.parquet, candidates.csv, quality.csv"),
    protocol_ref: str | None = typer.Option(None, "--protocol", help=PROTOCOL_HELP),
    active_within: str | None = typer.Option(None, "--active-within", help="first keep people seen in this time, e.g. 12m"),
    planned_first_infusion: str | None = typer.Option(
        None, "--planned-first-infusion",
        help="date criteria count back from 'administration' (default: as-of + the protocol's lead time)"),
    evidence: str = typer.Option("candidates", "--evidence", help="whose evidence to write: candidates (default) or all"),
) -> None:
    """Pre-screen every person in an OMOP CDM: every person's status per criterion, the evidence for the candidates,
    the attrition funnel, ranked candidates and what was wrong in the data."""
    as_of_date = parse_date(as_of, "--as-of")
    pfi = parse_date(planned_first_infusion, "--planned-first-infusion") if planned_first_infusion else None
    months = parse_months(active_within)
    if evidence not in ("candidates", "all"):
        fail(f"--evidence {evidence!r}: give 'candidates' (the default) or 'all'")
    try:
        ref = choose(protocol_ref)
        protocol, value_sets = load(ref), protocol_value_sets(ref)
    except ProtocolError as exc:
        fail(str(exc))
    try:
        check_output_folder(out_dir)
    except OutputError as exc:
        fail(str(exc))
    started = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("opening the OMOP CDM", total=None)
        doing = ["opening the OMOP CDM"]

        def step(msg: str) -> None:
            doing[0] = msg
            bar.update(task, description=msg)

        try:
            db = open_omop(omop)
            step("checking the data's time span")
            result = screen(db, protocol, as_of_date, value_sets=value_sets, planned_first_infusion=pfi, active_within_months=months,
                            progress=step)
            step("writing the outputs with " + ("everyone's" if evidence == "all" else "the candidates'") + " evidence")
            written = write_outputs(result, out_dir, evidence)  # type: ignore[arg-type]
        except (OmopError, OutputError) as exc:
            fail(str(exc))
        except Exception as exc:
            line = engine_failure(exc, doing[0])
            if line is None:
                raise
            fail(f"{line}; nothing was written to {out_dir}")
    seconds = time.perf_counter() - started
    for note in result.notes:
        err.print(f"[yellow]note:[/] {note}")
    title = f"{protocol.identification.nct_id} pre-screen as of {as_of_date} ({result.statuses.num_rows:,} persons, {seconds:.1f} s)"
    funnel = Table(title=title, title_justify="left")
    for col in ("criterion", "met", "not met", "unknown", "needs review", "remaining"):
        funnel.add_column(col, justify="right" if col != "criterion" else "left")
    for row in result.funnel():
        funnel.add_row(row["criterion_id"], *(f"{row[k]:,}" for k in ("met", "not_met", "unknown", "needs_review", "remaining")))
    out.print(funnel)
    cands = result.candidates()
    eligible = sum(1 for o in cands["overall"].to_pylist() if o == "eligible")
    out.print(f"{cands.num_rows:,} candidates ({eligible:,} eligible, the rest need review); wrote "
              + ", ".join(str(p) for p in written.values()))


def explain_command(
    omop: str = typer.Option(..., "--omop", help="DuckDB file, Parquet folder, postgresql://...?schema=cdm, or spark:<folder>"),
    as_of: str = typer.Option(..., "--as-of", help="screening date, YYYY-MM-DD"),
    person: int = typer.Option(..., "--person", help="the person_id to explain"),
    protocol_ref: str | None = typer.Option(None, "--protocol", help=PROTOCOL_HELP),
    fmt: str = typer.Option("table", "--format", help="table, json, or html"),
    out_file: Path | None = typer.Option(None, "--out", help="write to this file instead of the terminal"),
) -> None:
    """One person's eligibility worksheet from an OMOP CDM: every criterion with its status and the records that decided it."""
    import json

    from trialdesk.eligibility.patient_commands import _print_table, render_html
    from trialdesk.eligibility.worksheet import Worksheet

    if fmt not in ("table", "json", "html"):
        fail(f"--format {fmt!r}: give table, json or html")
    as_of_date = parse_date(as_of, "--as-of")
    try:
        ref = choose(protocol_ref)
        protocol = load(ref)
        db = open_omop(omop)
        result = screen(db, protocol, as_of_date, value_sets=protocol_value_sets(ref))
        sheet = result.for_person(person)
    except (ProtocolError, OmopError) as exc:
        fail(str(exc))
    except KeyError:
        fail(f"--person {person}: no such person_id in {omop}")
    except Exception as exc:
        line = engine_failure(exc, f"explaining person {person}")
        if line is None:
            raise
        fail(line)
    texts = {c.id: c.text for c in protocol.eligibility.criteria}
    items = [{"criterion_id": cid, "id": aid, "question": q} for cid, aid, q in protocol.attestation_items()]
    death = sheet["death"]
    worksheet = Worksheet(protocol=protocol, as_of=as_of_date, patient=str(person), file=omop,
                          criteria=[dict(c, text=texts[c["id"]]) for c in sheet["criteria"]], attestations=items,
                          problems=[f"person {person}: {death.sentence()}"] if death is not None else [], death=death)
    if fmt == "table" and out_file is None:
        _print_table(worksheet)
        return
    text = render_html([worksheet]) if fmt == "html" else json.dumps(worksheet.to_json(), indent=2, default=str)
    if out_file is None:
        out.print(text, markup=False, highlight=False, soft_wrap=True)
    else:
        out_file.write_text(text, encoding="utf-8")
        out.print(f"wrote {out_file}")
