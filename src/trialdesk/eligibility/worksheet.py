"""One patient's eligibility worksheet from their FHIR R4 record.

The record (a Bundle, a Bulk Data export folder, or a folder of many Bundles for a batch)
is mapped into OMOP-shaped tables in an in-memory DuckDB and screened by the same engine
that screens whole hospitals, so each criterion has exactly one implementation. The
evidence the engine cites (table and record id) is traced back to the FHIR resource.

Reading: a chart pulled from the EHR is taken as complete up to the screening date. Each
person's observed time therefore runs from their first dated record to the as-of date, so
the absence of, say, a rituximab order in the chart counts as absence.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import ibis

from trialdesk.eligibility.screen import ScreenResult, screen
from trialdesk.eligibility.status import Status, overall
from trialdesk.protocol.model import Protocol
from trialdesk.sources.fhir import map_to_omop, read_fhir, read_many
from trialdesk.sources.fhir_omop import MappingReport
from trialdesk.sources.omop import open_omop
from trialdesk.terminology.value_set import ValueSet


@dataclass
class Worksheet:
    """The eligibility worksheet of one patient, as a PI reads and signs it."""

    protocol: Protocol
    as_of: dt.date
    patient: str | None
    file: str
    criteria: list[dict[str, Any]]
    attestations: list[dict[str, str]]
    problems: list[str] = field(default_factory=list)
    #: the Patient resource's birth date and gender; kept out of :meth:`to_json` (the worksheet cites evidence, not identity)
    birth_date: dt.date | None = None
    gender: str | None = None

    @property
    def overall(self) -> str:
        return overall({c["id"]: Status.from_label(c["status"]) for c in self.criteria})

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": self.overall,
            "protocol": self.protocol.identification.nct_id,
            "protocol_version": self.protocol.version,
            "as_of": self.as_of.isoformat(),
            "patient": self.patient,
            "file": self.file,
            "criteria": self.criteria,
            "attestations": self.attestations,
            "problems": self.problems,
        }


def _observe_until(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> None:
    """Extend (or create) each person's observed time so that it covers the as-of date."""
    con.execute(
        """
        CREATE OR REPLACE TABLE observation_period AS
        SELECT row_number() OVER (ORDER BY p.person_id) AS observation_period_id, p.person_id,
               least(coalesce(min(o.observation_period_start_date), $as_of), $as_of) AS observation_period_start_date,
               greatest(coalesce(max(o.observation_period_end_date), $as_of), $as_of) AS observation_period_end_date,
               32817 AS period_type_concept_id
        FROM person p LEFT JOIN observation_period o USING (person_id)
        GROUP BY p.person_id
        """,
        {"as_of": as_of},
    )


def _provenance(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, int], dict[str, Any]]:
    rows = con.execute("SELECT table_name, record_id, resource_type, resource_id, file, line, display FROM fhir_record").fetchall()
    return {(t, int(r)): {"resource": f"{rt}/{rid}", "file": f, "line": ln, "display": d} for t, r, rt, rid, f, ln, d in rows}


def _enrich(evidence: list[dict[str, Any]], provenance: dict[tuple[str, int], dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in evidence:
        src = provenance.get((item.get("table", ""), int(item.get("record_id") or 0)))
        item = {k: v for k, v in item.items() if v is not None}
        if src is not None:
            item["resource"] = src["resource"]
            if src.get("display"):  # the chart's own wording for the code it cites
                item["display"] = src["display"]
        out.append(item)
    return out


def worksheets(result: ScreenResult, report: MappingReport, con: duckdb.DuckDBPyConnection) -> list[Worksheet]:
    provenance = _provenance(con)
    protocol = result.protocol
    texts = {c.id: c.text for c in protocol.eligibility.criteria}
    items = [{"criterion_id": cid, "id": aid, "question": q} for cid, aid, q in protocol.attestation_items()]
    by_person: dict[int, list[dict[str, Any]]] = {}
    for row in result.person_criteria().to_pylist():
        by_person.setdefault(row["person_id"], []).append(
            {"id": row["criterion_id"], "text": texts[row["criterion_id"]], "status": row["status"],
             "evidence": _enrich(row["evidence"], provenance)})
    out = []
    for person in report.persons:
        problems = [str(p) for p in report.problems_for(person.person_id)]
        out.append(Worksheet(protocol=protocol, as_of=result.anchors.as_of, patient=person.patient_id, file=person.file,
                             criteria=by_person.get(person.person_id, []), attestations=items, problems=problems,
                             birth_date=person.birth_date, gender=person.gender))
    return out


def check_fhir(source: str | Path | list[Path], protocol: Protocol, as_of: dt.date, *,
               value_sets: dict[str, ValueSet] | None = None, workers: int = 1) -> list[Worksheet]:
    """Worksheets for every patient in ``source`` (a Bundle, an export folder, a folder of
    Bundles, or a list of files), screened together in one batch; ``workers`` > 1
    validates a large reading in that many processes (the command line does; a caller
    inside a threaded server should not fork, so the default is 1)."""
    reading = read_many(source, workers=workers) if isinstance(source, list) else read_fhir(source, workers=workers)
    con = duckdb.connect()
    report = map_to_omop(reading, con)
    _observe_until(con, as_of)
    db = open_omop(ibis.duckdb.from_connection(con))
    result = screen(db, protocol, as_of, value_sets=value_sets, check_bounds=False)
    sheets = worksheets(result, report, con)
    general = [str(p) for p in report.problems if not any(p in report.problems_for(m.person_id) for m in report.persons)]
    for sheet in sheets:
        sheet.problems.extend(general)
    return sheets
