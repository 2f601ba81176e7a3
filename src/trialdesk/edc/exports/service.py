"""What an export checks first, how each file is built from the data cut, and the audit entry it leaves.

Every export reads :func:`trialdesk.edc.adverse_events.service.cut` (``snapshot.trial_data(cutoff)`` with
its adverse events) and hands it to the Django-free analysis core. Before building, :func:`readiness`
looks for what usually means the export is premature: nobody enrolled at the cut, queries not closed,
an enrolled participant whose eligibility sign-off is missing or voided. Any of them refuses the export
(:class:`ExportRefused`) unless the user says ``export_anyway``; then the file says so in words (the image's
caption, ``export.json`` of SDTM, the ODM ``Description``, or a ``README.txt`` beside a CSV or the
ClinicalTrials.gov JSON, whose schema has no room for a note).

De-identified always, except SDTM with ``identified=True`` (the --DTC dates), which only a role the
permission table allows (``export_identified``) may take. Every export is appended to the audit trail:
who, when, which, the cut, identified or not, the flags, the warnings and the SHA-256 of the file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from trialdesk.analysis.ctgov_results import results_json
from trialdesk.analysis.data_cut import check_enrolled
from trialdesk.analysis.meddra import MedDRA
from trialdesk.analysis.odm import build_odm
from trialdesk.analysis.outcome_report import measure_report
from trialdesk.analysis.participant_flow import participant_flow
from trialdesk.analysis.primary_outcome import primary_outcome
from trialdesk.analysis.redcap import export_dictionary
from trialdesk.analysis.sdtm import build_sdtm
from trialdesk.edc.audit import trail
from trialdesk.edc.participants.models import Participant
from trialdesk.edc.permissions import allowed, role_of
from trialdesk.edc.quality.models import Query
from trialdesk.edc.web import forms, protocol, today
from trialdesk.safety.outcome_measures import primary_measure
from trialdesk.trial.records import TrialData


@dataclass(frozen=True)
class Kind:
    label: str
    uses_data: bool = True  # the REDCap dictionary describes the forms only: no data, nothing to check
    identifiable: bool = False  # has an identified form (the permission table decides who may take it)


#: the downloads, in the order the page lists them
KINDS: dict[str, Kind] = {
    "primary-outcome-csv": Kind("Primary outcome — counts (CSV)"),
    "primary-outcome-png": Kind("Primary outcome — plot (PNG)"),
    "participant-flow-csv": Kind("Participant flow — table (CSV)"),
    "participant-flow-svg": Kind("Participant flow — CONSORT diagram (SVG)"),
    "ctgov-results": Kind("ClinicalTrials.gov results — API v2 resultsSection (JSON)"),
    "sdtm": Kind("CDISC SDTM — DM, AE, EX, VS, LB, DS as CSV and XPT, define.csv (ZIP)", identifiable=True),
    "odm": Kind("CDISC ODM 1.3.2 — study definition and clinical data (XML)"),
    "redcap-dictionary": Kind("REDCap data dictionary — every form (CSV)", uses_data=False),
    "flat-csv": Kind("Flat export by form — one CSV per form (lung function and six-minute walk included) and a codebook (ZIP)",
                     identifiable=True),
    "flat-xlsx": Kind("Flat export by form — Excel workbook, one sheet per form and a codebook (XLSX)", identifiable=True),
}


class ExportRefused(Exception):
    """The checks found problems and the user did not say to export anyway."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Readiness:
    cutoff: dt.date
    enrolled: int
    open_queries: list[str]  # "Q-3 (001, infusion 1: weight_kg, open)"
    unsigned: list[str]  # subject ids of enrolled participants without a valid eligibility sign-off

    @property
    def problems(self) -> list[str]:
        out = []
        if not self.enrolled:
            out.append(f"no participant was enrolled at the data cut of {self.cutoff}")
        if self.open_queries:
            n = len(self.open_queries)
            out.append(f"{n} open {'query' if n == 1 else 'queries'} (not closed): {', '.join(self.open_queries)}")
        if self.unsigned:
            n = len(self.unsigned)
            out.append(f"eligibility not signed (sign-off missing or voided) for {n} enrolled"
                       f" participant{'' if n == 1 else 's'}: {', '.join(self.unsigned)}")
        return out

    def summary(self) -> str:
        """The problems in a few words (an image's one-line caption)."""
        n, m = len(self.open_queries), len(self.unsigned)
        parts = ["nobody enrolled" if not self.enrolled else "", f"{n} open quer{'y' if n == 1 else 'ies'}" if n else "",
                 f"{m} eligibility sign-off{'' if m == 1 else 's'} missing" if m else ""]
        return ", ".join(p for p in parts if p)


def readiness(cutoff: dt.date) -> Readiness:
    enrolled = list(Participant.objects.select_related("screening").filter(enrolled_on__lte=cutoff).order_by("subject_id"))
    queries = Query.objects.filter(status__in=("open", "answered")).select_related("participant", "visit").order_by("pk")
    unsigned = []
    for p in enrolled:
        signoff = getattr(p.screening, "signoff", None)
        if signoff is None or not signoff.signed:
            unsigned.append(p.subject_id)
    return Readiness(cutoff=cutoff, enrolled=len(enrolled),
                     open_queries=[f"Q-{q.pk} ({q.participant.subject_id}, {q.location()}, {q.status})" for q in queries],
                     unsigned=unsigned)


@dataclass(frozen=True)
class ExportFile:
    filename: str
    content_type: str
    content: bytes


def _data(cutoff: dt.date) -> TrialData:
    from trialdesk.edc.adverse_events.service import cut

    return cut(cutoff)


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            z.writestr(name, content)
    return buf.getvalue()


def _readme(name: str, manifest: dict[str, Any]) -> bytes:
    lines = [name, "", f"EXPORTED ANYWAY by {manifest['exported_by']} ({manifest['role']}) at {manifest['exported_at']}"
             f" (protocol {manifest['protocol']}, data cut {manifest['cutoff']}), although the checks failed:", ""]
    lines += [f"- {p}" for p in manifest["warnings"]]
    lines += ["", "Read the file beside this one with that in mind.", ""]
    return "\n".join(lines).encode()


def _with_note(filename: str, content_type: str, content: bytes, manifest: dict[str, Any]) -> ExportFile:
    """The file itself, or (when there is a note its format has no room for) a ZIP of it and README.txt."""
    if not manifest["note"]:
        return ExportFile(filename, content_type, content)
    stem = filename.rsplit(".", 1)[0]
    return ExportFile(f"{stem}.zip", "application/zip", _zip({filename: content, "README.txt": _readme(filename, manifest)}))


def _build(kind: str, data: TrialData, *, prefix: str, identified: bool, allow_empty: bool, note: str | None, caption: str | None,
           threshold: float, manifest: dict[str, Any]) -> ExportFile:
    p = protocol()
    with tempfile.TemporaryDirectory(prefix="trialdesk-export-") as tmp:
        out = Path(tmp)
        if kind == "primary-outcome-csv" and primary_measure(p) is not None:  # the protocol's own measure, by group
            check_enrolled(data, "primary outcome", allow_empty)
            summary = measure_report(p, data).to_csv(out)[0]
            return _with_note(f"{prefix}_primary_outcome_measure.csv", "text/csv", summary.read_bytes(), manifest)
        if kind.startswith("primary-outcome"):
            result = primary_outcome(data, p, allow_empty)
            if kind.endswith("csv"):
                return _with_note(f"{prefix}_primary_outcome_counts.csv", "text/csv", result.counts_csv().encode(), manifest)
            if note:
                result = dataclasses.replace(result, note=caption)
            png = next(path for path in result.plot(out) if path.suffix == ".png")
            return ExportFile(f"{prefix}_primary_outcome.png", "image/png", png.read_bytes())
        if kind.startswith("participant-flow"):
            flow = participant_flow(data, p, allow_empty)
            if kind.endswith("csv"):
                return _with_note(f"{prefix}_participant_flow.csv", "text/csv", flow.to_csv().encode(), manifest)
            if note:
                flow = dataclasses.replace(flow, note=caption)
            svg = next(path for path in flow.diagram(out) if path.suffix == ".svg")
            return ExportFile(f"{prefix}_participant_flow.svg", "image/svg+xml", svg.read_bytes())
        if kind == "ctgov-results":
            text = results_json(data, p, threshold, allow_empty, forms())
            return _with_note(f"{prefix}_ctgov_results.json", "application/json", text.encode(), manifest)
        if kind == "sdtm":
            from trialdesk.edc.exports.models import date_shift_key

            sdtm = build_sdtm(data, p, identified=identified, allow_empty=allow_empty, meddra=_meddra(),
                              shift_key=None if identified else date_shift_key())
            written = sdtm.write(out / "sdtm")
            manifest_path = out / "sdtm" / "export.json"
            core = json.loads(manifest_path.read_text(encoding="utf-8"))
            manifest_path.write_text(json.dumps(core | manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            return ExportFile(f"{prefix}_sdtm{'_IDENTIFIED' if identified else ''}.zip", "application/zip",
                              _zip({path.name: path.read_bytes() for path in written}))
        if kind == "odm":
            root = build_odm(data, p, forms(), allow_empty=allow_empty).getroot()
            if note:
                root.set("Description", f"{root.get('Description', '').rstrip('.')}. {note}")
            text = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
            return ExportFile(f"{prefix}_odm.xml", "application/xml", text.encode())
        if kind.startswith("flat-"):
            from trialdesk.edc.exports.flat import flat_export

            flat = flat_export(data.cutoff, identified=identified)
            tag = "_IDENTIFIED" if identified else ""
            if kind == "flat-csv":
                return _with_note(f"{prefix}_by_form{tag}.zip", "application/zip", flat.csv_zip(prefix), manifest)
            return _with_note(f"{prefix}_by_form{tag}.xlsx",
                              "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", flat.xlsx(), manifest)
        if kind == "redcap-dictionary":
            return ExportFile(f"{prefix}_redcap_data_dictionary.csv", "text/csv", export_dictionary(forms()).encode())
    raise KeyError(kind)


def _meddra() -> MedDRA | None:
    """The licensed MedDRA distribution named by ``TRIALDESK_MEDDRA`` (its MedAscii folder), if any."""
    folder = getattr(settings, "TRIALDESK_MEDDRA", "")
    return MedDRA.load(Path(folder)) if folder else None


def export(user: Any, kind: str, cutoff: dt.date, *, identified: bool = False, export_anyway: bool = False,
           threshold: float = 0.0, now: Callable[[], dt.datetime] = timezone.now) -> ExportFile:
    """Check, build and audit one export; raise :class:`ExportRefused`, ``PermissionDenied`` or the core's ``ValueError``."""
    spec = KINDS[kind]
    if not allowed(user, "export_results"):
        raise PermissionDenied("your role may not export results")
    if identified and not spec.identifiable:
        raise ValueError(f"{spec.label} has no identified form; only the SDTM and flat exports can be identified")
    if identified and not allowed(user, "export_identified"):
        raise PermissionDenied("your role may not make an identified export")
    if cutoff > today():
        raise ValueError(f"the data cut ({cutoff}) cannot be after today ({today()})")
    check = readiness(cutoff) if spec.uses_data else None
    problems = check.problems if check else []
    if problems and not export_anyway:
        raise ExportRefused(problems)
    at = now().astimezone(dt.UTC)
    who = f"{user.get_username()} ({role_of(user)})"
    note = (f"EXPORTED ANYWAY by {who} at {at:%Y-%m-%d %H:%M} UTC (data cut {cutoff}) despite: {'; '.join(problems)}."
            if problems else None)
    manifest = {"protocol": protocol().id, "cutoff": cutoff.isoformat(), "exported_by": user.get_username(), "role": role_of(user),
                "exported_at": at.isoformat(timespec="seconds"), "export_anyway": export_anyway,
                "warnings": problems, "open_queries": check.open_queries if check else [],
                "unsigned_eligibility": check.unsigned if check else [], "note": note}
    caption = f"EXPORTED ANYWAY ({user.get_username()}, {at:%Y-%m-%d %H:%M} UTC): {check.summary()}" if check and problems else None
    data = _data(cutoff) if spec.uses_data else TrialData(protocol_id=protocol().id, cutoff=cutoff)
    prefix = f"{protocol().identification.nct_id}_{cutoff.isoformat()}"
    built = _build(kind, data, prefix=prefix, identified=identified, allow_empty=bool(check and not check.enrolled),
                   note=note, caption=caption, threshold=threshold, manifest=manifest)
    digest = hashlib.sha256(built.content).hexdigest()
    changes = {"export": [None, kind], "cutoff": [None, cutoff.isoformat()], "identified": [None, "yes" if identified else "no"],
               "export_anyway": [None, "yes" if manifest["export_anyway"] else "no"], "warnings": [None, "; ".join(problems)],
               "file": [None, built.filename], "sha256": [None, digest]}
    if kind == "ctgov-results":
        changes["frequency_threshold"] = [None, f"{threshold:g}"]
    trail.append(user, "export", model="exports.Export", object_id=kind, form="export", changes=changes,
                 reason="identified export" if identified else "")
    return built
