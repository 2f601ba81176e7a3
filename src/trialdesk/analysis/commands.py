"""``trialdesk report ...`` and ``trialdesk export ...``: results and exports of a data cut.

Two Typer sub-apps for the main command line to mount: ``report_app`` (``primary-outcome``,
``participant-flow``) and ``export_app`` (``ctgov-results``, ``sdtm``, ``odm``,
``redcap-dictionary``). Each reads a data cut (a :class:`TrialData` JSON file) and the protocol.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from trialdesk.analysis.ctgov_results import ThresholdError, check_results, results_json
from trialdesk.analysis.data_cut import NoParticipantsError, check_enrolled
from trialdesk.analysis.meddra import MedDRA, MeddraError
from trialdesk.analysis.odm import odm_xml
from trialdesk.analysis.outcome_report import measure_report
from trialdesk.analysis.participant_flow import participant_flow
from trialdesk.analysis.primary_outcome import NoOutcomeMeasureError, primary_outcome
from trialdesk.analysis.redcap import export_dictionary
from trialdesk.analysis.sdtm import SdtmError, build_sdtm
from trialdesk.console import fail, out
from trialdesk.protocol.forms import FormCatalogue, FormsError, load_forms
from trialdesk.protocol.loader import PROTOCOL_HELP, ProtocolError, choose, load, protocol_forms
from trialdesk.protocol.model import Protocol
from trialdesk.safety.outcome_measures import primary_measure
from trialdesk.trial.errors import ConductError
from trialdesk.trial.records import TrialData

report_app = typer.Typer(help="Results of a data cut: the primary outcome and the participant flow.", no_args_is_help=True)
export_app = typer.Typer(help="Exports of a data cut: ClinicalTrials.gov results, CDISC SDTM and ODM, REDCap data dictionary.",
                         no_args_is_help=True)

DATA = typer.Option(..., "--data", help="data cut: a TrialData JSON file exported by the EDC")
PROTOCOL = typer.Option(None, "--protocol", help="protocol id or file (default: the data cut's protocol_id)")
ALLOW_EMPTY = typer.Option(False, "--allow-empty", help="export even if nobody is enrolled (the output says so)")


def _read(data_file: Path, protocol_ref: str | None) -> tuple[TrialData, Protocol]:
    try:
        data = TrialData.from_file(data_file)
    except ValueError as exc:
        fail(str(exc))
    try:
        return data, load(protocol_ref or data.protocol_id)
    except ProtocolError as exc:
        fail(str(exc))


def _forms(data: TrialData, protocol_ref: str | None) -> FormCatalogue:
    """The case report forms of the protocol (its folder's forms.yaml, else the package's)."""
    try:
        return protocol_forms(protocol_ref or data.protocol_id)
    except ProtocolError as exc:
        fail(str(exc))


@report_app.command("primary-outcome")
def primary_outcome_command(
    data_file: Path = DATA,
    out_dir: Path = typer.Option(..., "--out", help="directory for the CSV files and the plot (PNG and SVG)"),
    protocol_ref: str | None = PROTOCOL,
    allow_empty: bool = ALLOW_EMPTY,
) -> None:
    """The primary outcome as the protocol defines it (its primary ``outcome_measures`` entry: which events, counted how,
    in which window, by which group); without one, adverse events with each infusion within the registered time frame."""
    data, protocol = _read(data_file, protocol_ref)
    if primary_measure(protocol) is not None:
        _measure_report(data, protocol, out_dir, allow_empty)
        return
    try:
        result = primary_outcome(data, protocol, allow_empty)
    except (NoParticipantsError, ValueError) as exc:
        fail(str(exc))
    title = f"{result.measure} — within {result.time_frame} ({result.window_days} days) of the first infusion, cut {result.cutoff}"
    table = Table(title=title, title_justify="left")
    for col in ("scope", "key", "at risk", "events", "related", "grade ≥3", "pts with AE", "pts related", "pts grade ≥3"):
        table.add_column(col, justify="left" if col in ("scope", "key") else "right")
    for r in result.rows:
        table.add_row(r.scope, r.key, str(r.participants_at_risk), str(r.events), str(r.related_events), str(r.grade_3_plus_events),
                      str(r.participants_with_event), str(r.participants_with_related), str(r.participants_with_grade_3_plus))
    out.print(table)
    props = Table(title="Participants with at least one event (exact 95 % CI)", title_justify="left")
    for col in ("events", "participants", "proportion", "95 % CI"):
        props.add_column(col)
    for p in result.proportions:
        props.add_row(p.subset, f"{p.participants}/{p.at_risk}", f"{p.proportion:.1%}", f"{p.ci_low:.1%} – {p.ci_high:.1%}")
    out.print(props)
    if result.note:
        out.print(f"[yellow]{result.note}[/]")
    for path in [*result.to_csv(out_dir), *result.plot(out_dir)]:
        out.print(f"wrote {path}")


def _measure_report(data: TrialData, protocol: Protocol, out_dir: Path, allow_empty: bool) -> None:
    try:
        note = check_enrolled(data, "primary outcome", allow_empty)
        report = measure_report(protocol, data)
    except (NoParticipantsError, ConductError) as exc:
        fail(str(exc))
    table = Table(title=f"{report.measure.title} — cut {report.cutoff}", title_justify="left")
    for col in ("group", "analysed", report.unit, "proportion (exact 95 % CI)" if report.unit == "participants" else "events counted"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for r in report.rows:
        last = (f"{r.proportion:.1%} ({r.ci_low:.1%} – {r.ci_high:.1%})" if r.proportion is not None and r.ci_low is not None
                and r.ci_high is not None else " ".join(r.event_ids) or "-")
        table.add_row(r.label, str(r.analysed), str(r.count), last)
    out.print(table)
    out.print(f"Counted: {report.definition} (protocol outcome measure {report.measure.id}).", highlight=False)
    if note:
        out.print(f"[yellow]{note}[/]")
    for path in report.to_csv(out_dir):
        out.print(f"wrote {path}")


@report_app.command("participant-flow")
def participant_flow_command(
    data_file: Path = DATA,
    out_dir: Path = typer.Option(..., "--out", help="directory for participant_flow.csv and the diagram (SVG and PNG)"),
    protocol_ref: str | None = PROTOCOL,
    allow_empty: bool = ALLOW_EMPTY,
) -> None:
    """Screened to completed: the CONSORT-style table and diagram."""
    data, protocol = _read(data_file, protocol_ref)
    try:
        flow = participant_flow(data, protocol, allow_empty)
    except NoParticipantsError as exc:
        fail(str(exc))
    table = Table(title="Participant flow", title_justify="left")
    for col in ("stage", "detail", "participants"):
        table.add_column(col)
    for stage, detail, n in flow.rows():
        table.add_row(stage, detail, str(n))
    out.print(table)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "participant_flow.csv").write_text(flow.to_csv(), encoding="utf-8")
    for path in [out_dir / "participant_flow.csv", *flow.diagram(out_dir)]:
        out.print(f"wrote {path}")


@export_app.command("ctgov-results")
def ctgov_results_command(
    data_file: Path = DATA,
    out_file: Path = typer.Option(..., "--out", help="the JSON file to write (API v2 resultsSection)"),
    protocol_ref: str | None = PROTOCOL,
    threshold: float = typer.Option(0.0, "--frequency-threshold", help="other AEs listed above this frequency in percent (0-5)"),
    allow_empty: bool = ALLOW_EMPTY,
    check: bool = typer.Option(False, "--check", help="apply the PRS results review criteria; name each problem, exit 1 if any"),
) -> None:
    """ClinicalTrials.gov results (API v2 resultsSection and documentSection) following 42 CFR 11.48."""
    data, protocol = _read(data_file, protocol_ref)
    try:
        text = results_json(data, protocol, threshold, allow_empty, _forms(data, protocol_ref))
    except (NoParticipantsError, ThresholdError, NoOutcomeMeasureError, ConductError) as exc:
        fail(str(exc))
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(text, encoding="utf-8")
    out.print(f"wrote {out_file}")
    if check:
        problems = check_results(json.loads(text))
        for p in problems:
            out.print(f"[red]problem:[/] {p}", markup=True, highlight=False)
        if problems:
            out.print(f"{len(problems)} problem(s) a PRS reviewer would return; {out_file} is not ready to submit")
            raise typer.Exit(1)
        out.print("PRS results review criteria: no problem found")


@export_app.command("sdtm")
def sdtm_command(
    data_file: Path = DATA,
    out_dir: Path = typer.Option(..., "--out", help="directory for <domain>.csv and .xpt, define.xml, define.csv, the reviewer's guide"),
    protocol_ref: str | None = PROTOCOL,
    allow_empty: bool = ALLOW_EMPTY,
    meddra_dir: Path | None = typer.Option(None, "--meddra", help="the MedAscii folder of a licensed MedDRA distribution (llt.asc,"
                                           " mdhier.asc): AEDECOD becomes the preferred term, with its hierarchy"),
) -> None:
    """CDISC SDTM (DM AE EX VS LB DS TS CM MH DV RE FT) as CSV and XPT v5 with Define-XML 2.1, de-identified.

    De-identified: each participant's dates are shifted back by one offset (1-365 days) from a keyed
    hash; set TRIALDESK_DATE_SHIFT_KEY to get the same offsets in every export, else each export
    draws its own. Identified exports (real dates) are made only through the EDC, which checks the
    user's role and audits the export."""
    import os

    data, protocol = _read(data_file, protocol_ref)
    try:
        meddra = MedDRA.load(meddra_dir) if meddra_dir else None
        key = os.environ.get("TRIALDESK_DATE_SHIFT_KEY")
        sdtm = build_sdtm(data, protocol, identified=False, allow_empty=allow_empty, meddra=meddra,
                          shift_key=key.encode("utf-8") if key else None)
    except (NoParticipantsError, SdtmError, MeddraError, ConductError) as exc:
        fail(str(exc))
    for warning in sdtm.warnings:
        out.print(f"[yellow]warning:[/] {warning}", highlight=False)
    try:
        written = sdtm.write(out_dir)
    except SdtmError as exc:
        fail(str(exc))
    for path in written:
        out.print(f"wrote {path}")


@export_app.command("odm")
def odm_command(
    data_file: Path = DATA,
    out_file: Path = typer.Option(..., "--out", help="the ODM 1.3.2 XML file to write"),
    protocol_ref: str | None = PROTOCOL,
    allow_empty: bool = ALLOW_EMPTY,
) -> None:
    """CDISC ODM 1.3.2: the study definition and the clinical data (de-identified)."""
    data, protocol = _read(data_file, protocol_ref)
    try:
        text = odm_xml(data, protocol, _forms(data, protocol_ref), allow_empty=allow_empty)
    except (NoParticipantsError, FormsError, ValueError) as exc:
        fail(str(exc))
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(text, encoding="utf-8")
    out.print(f"wrote {out_file}")


@export_app.command("redcap-dictionary")
def redcap_dictionary_command(
    out_file: Path = typer.Option(..., "--out", help="the data dictionary CSV to write"),
    forms_file: Path | None = typer.Option(None, "--forms", help="a forms YAML file (default: the protocol's own forms)"),
    protocol_ref: str | None = typer.Option(None, "--protocol", help=PROTOCOL_HELP + "; its forms.yaml, when --forms is not given"),
) -> None:
    """The REDCap data dictionary (18 columns) of every form."""
    try:
        forms = load_forms(forms_file) if forms_file is not None else protocol_forms(choose(protocol_ref))
    except (FormsError, ProtocolError) as exc:
        fail(str(exc))
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(export_dictionary(forms), encoding="utf-8")
    out.print(f"wrote {out_file} ({sum(len(f.fields) for f in forms.forms)} fields in {len(forms.forms)} forms)")
