"""FHIR R4 resources → OMOP CDM v5.4-shaped tables in DuckDB, so that one patient's chart
is screened by exactly the engine that screens a whole OMOP database.

Readings, chosen once and kept here:

- **person**: one per Patient, ``person_id`` numbered 1, 2, … in reading order; the FHIR
  id is kept in ``person_source_value``. birthDate gives year, month, day and
  ``birth_datetime`` (midnight) as far as it is given; gender female 8532, male 8507,
  anything else 0. A Patient with no birthDate is kept (age is then unknown) and named
  as a problem.
- **observation_period**: one per person, from the earliest to the latest date of any
  mapped record or Encounter period. A FHIR record is complete up to its last entry, so
  within that span the absence of a diagnosis or a drug counts as its absence (the OMOP
  convention the engine applies). A Patient with no dated record has no observed time.
- **dates** are the local dates as written (``2025-02-20T23:30:00-05:00`` is 2025-02-20),
  never shifted to UTC: the clinic's calendar day is what the protocol counts. A partial
  date (``2024-05``) is read as its first day.
- **codes**: every coding whose system is known (SNOMED CT, ICD-10-CM, RxNorm, LOINC, UCUM,
  and CPT4/HCPCS/ICD10PCS/NDC/CVX/ICD10; any other system is ``LOCAL``) gets a row in a small
  ``concept`` table with a site-local id ≥ 2,000,000,000. The id is a hash of
  (vocabulary, code), so the same code has the same id in every run and every batch; in
  the rare case two codes of one run collide, the later one takes the next free id.
  A record is written once: ``*_concept_id`` points at its preferred coding — SNOMED for
  conditions, RxNorm for drugs, LOINC for measurements and observations, SNOMED for
  procedures, otherwise the first coding — and ``*_source_value`` holds, for a condition
  with an ICD-10-CM coding, the ICD-10-CM code with its dot (``M34.81``), else the preferred
  code; ``*_source_concept_id`` is the concept of that source code. So a condition coded in
  SNOMED and ICD-10-CM is found by either: SNOMED through ``concept``, ICD-10-CM through
  the source value. Every coding of every record is also listed in ``fhir_coding``
  (table_name, record_id, vocabulary_id, concept_code, concept_id) for whoever needs a
  third coding. A record with no coding in any system is kept with concept 0 and named as
  a problem: it cannot match a value set, and silence would read as absence.
- **Observation** goes to ``measurement`` when it has a valueQuantity or a category of
  laboratory, vital-signs, exam, imaging, procedure, therapy or activity; otherwise
  (social history such as pregnancy or breast-feeding status, surveys) to ``observation``.
  Each component with a value (systolic and diastolic blood pressure) is its own row. An
  Observation with no value at all (a panel that only groups its members) makes no row.
- **units**: ``unit_source_value`` is the UCUM code (spellings such as ``10^3/uL`` or
  ``mg/dl`` normalised by ``trialdesk.terminology.units``); a value whose unit is unknown
  is dropped and named. Reference ranges are converted into the value's unit
  (``units.convert``, with the LOINC code as analyte); a range with no unit is taken to be
  in the value's unit; a range that cannot be converted is dropped (the value stays, so
  the criterion reads "no reference range") and named.
- **drugs**: MedicationRequest runs from the start of its dosage timing bounds (else
  authoredOn) to the end of those bounds, else start + expectedSupplyDuration × (1 +
  repeats) − 1 day, else the start day. MedicationStatement and MedicationAdministration
  run over effective[x]; an active MedicationStatement with no end runs to its
  dateAsserted. Type concepts: EHR prescription 32838, patient self-report 32865, EHR
  administration record 32818, lab 32856, EHR 32817.
- **left out on purpose** (counted in ``MappingReport.excluded``, not problems): records
  entered in error, cancelled, refuted, not done or not taken; medication requests that
  are only proposals or plans; draft orders.
- **references** resolve within their scope (one Bundle, or one Bulk export folder) by
  ``Type/id``, by Bundle ``fullUrl``, or to a contained resource (``#id``). A record whose
  subject is missing, or whose medicationReference is missing, is dropped and named.

``fhir_record(table_name, record_id, resource_type, resource_id, file, line, code,
display)`` links every OMOP row (person rows included) back to its FHIR resource, for the
evidence a worksheet cites. ``concept_ancestor`` is written empty, with its columns.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from trialdesk.sources.fhir import FhirReading, FhirRecord, Problem
from trialdesk.terminology import units

__all__ = ["NUMBERED", "OMOP_SCHEMA", "MappedPerson", "MappingReport", "map_to_omop"]

JsonDict = dict[str, Any]

FEMALE, MALE = 8532, 8507
TYPE_EHR, TYPE_PRESCRIPTION, TYPE_SELF_REPORT, TYPE_ADMINISTRATION, TYPE_LAB = 32817, 32838, 32865, 32818, 32856
#: OMOP "Meas Value Operator" concepts for Quantity.comparator
_OPERATORS = {"<": 4171756, "<=": 4171754, ">=": 4171755, ">": 4172704}
LOCAL_CONCEPT_BASE = 2_000_000_000
_LOCAL_CONCEPT_SPAN = 2**31 - 1 - LOCAL_CONCEPT_BASE

SYSTEMS = {
    "http://snomed.info/sct": "SNOMED",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD10CM",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://loinc.org": "LOINC",
    "http://unitsofmeasure.org": "UCUM",
    "http://www.ama-assn.org/go/cpt": "CPT4",
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "HCPCS",
    "http://www.cms.gov/Medicare/Coding/ICD10": "ICD10PCS",
    "http://hl7.org/fhir/sid/ndc": "NDC",
    "http://hl7.org/fhir/sid/cvx": "CVX",
    "http://hl7.org/fhir/sid/icd-10": "ICD10",
    "urn:oid:2.16.840.1.113883.6.96": "SNOMED",
    "urn:oid:2.16.840.1.113883.6.90": "ICD10CM",
    "urn:oid:2.16.840.1.113883.6.88": "RxNorm",
    "urn:oid:2.16.840.1.113883.6.1": "LOINC",
}
_STANDARD = frozenset({"SNOMED", "RxNorm", "LOINC", "UCUM", "CPT4", "HCPCS", "CVX"})
_PREFERENCE = {
    "Condition": ("SNOMED", "ICD10CM"),
    "Drug": ("RxNorm", "NDC"),
    "Measurement": ("LOINC", "SNOMED"),
    "Observation": ("LOINC", "SNOMED"),
    "Procedure": ("SNOMED", "CPT4", "HCPCS", "ICD10PCS", "LOINC"),
    "Value": ("SNOMED", "LOINC"),
}
_MEASUREMENT_CATEGORIES = frozenset({"laboratory", "vital-signs", "exam", "imaging", "procedure", "therapy", "activity"})

_I, _BI, _D, _TS, _S, _F = pa.int32(), pa.int64(), pa.date32(), pa.timestamp("us"), pa.string(), pa.float64()

#: Column names and types of the tables written, as OMOP CDM v5.4 (NUMERIC as DOUBLE).
OMOP_SCHEMA: dict[str, list[tuple[str, pa.DataType]]] = {
    "person": [
        ("person_id", _I), ("gender_concept_id", _I), ("year_of_birth", _I), ("month_of_birth", _I),
        ("day_of_birth", _I), ("birth_datetime", _TS), ("race_concept_id", _I), ("ethnicity_concept_id", _I),
        ("location_id", _I), ("provider_id", _I), ("care_site_id", _I), ("person_source_value", _S),
        ("gender_source_value", _S), ("gender_source_concept_id", _I), ("race_source_value", _S),
        ("race_source_concept_id", _I), ("ethnicity_source_value", _S), ("ethnicity_source_concept_id", _I),
    ],
    "observation_period": [
        ("observation_period_id", _I), ("person_id", _I), ("observation_period_start_date", _D),
        ("observation_period_end_date", _D), ("period_type_concept_id", _I),
    ],
    "condition_occurrence": [
        ("condition_occurrence_id", _I), ("person_id", _I), ("condition_concept_id", _I), ("condition_start_date", _D),
        ("condition_start_datetime", _TS), ("condition_end_date", _D), ("condition_end_datetime", _TS),
        ("condition_type_concept_id", _I), ("condition_status_concept_id", _I), ("stop_reason", _S), ("provider_id", _I),
        ("visit_occurrence_id", _I), ("visit_detail_id", _I), ("condition_source_value", _S),
        ("condition_source_concept_id", _I), ("condition_status_source_value", _S),
    ],
    "drug_exposure": [
        ("drug_exposure_id", _I), ("person_id", _I), ("drug_concept_id", _I), ("drug_exposure_start_date", _D),
        ("drug_exposure_start_datetime", _TS), ("drug_exposure_end_date", _D), ("drug_exposure_end_datetime", _TS),
        ("verbatim_end_date", _D), ("drug_type_concept_id", _I), ("stop_reason", _S), ("refills", _I), ("quantity", _F),
        ("days_supply", _I), ("sig", _S), ("route_concept_id", _I), ("lot_number", _S), ("provider_id", _I),
        ("visit_occurrence_id", _I), ("visit_detail_id", _I), ("drug_source_value", _S), ("drug_source_concept_id", _I),
        ("route_source_value", _S), ("dose_unit_source_value", _S),
    ],
    "procedure_occurrence": [
        ("procedure_occurrence_id", _I), ("person_id", _I), ("procedure_concept_id", _I), ("procedure_date", _D),
        ("procedure_datetime", _TS), ("procedure_end_date", _D), ("procedure_end_datetime", _TS),
        ("procedure_type_concept_id", _I), ("modifier_concept_id", _I), ("quantity", _I), ("provider_id", _I),
        ("visit_occurrence_id", _I), ("visit_detail_id", _I), ("procedure_source_value", _S),
        ("procedure_source_concept_id", _I), ("modifier_source_value", _S),
    ],
    "measurement": [
        ("measurement_id", _I), ("person_id", _I), ("measurement_concept_id", _I), ("measurement_date", _D),
        ("measurement_datetime", _TS), ("measurement_time", _S), ("measurement_type_concept_id", _I),
        ("operator_concept_id", _I), ("value_as_number", _F), ("value_as_concept_id", _I), ("unit_concept_id", _I),
        ("range_low", _F), ("range_high", _F), ("provider_id", _I), ("visit_occurrence_id", _I), ("visit_detail_id", _I),
        ("measurement_source_value", _S), ("measurement_source_concept_id", _I), ("unit_source_value", _S),
        ("unit_source_concept_id", _I), ("value_source_value", _S), ("measurement_event_id", _BI),
        ("meas_event_field_concept_id", _I),
    ],
    "observation": [
        ("observation_id", _I), ("person_id", _I), ("observation_concept_id", _I), ("observation_date", _D),
        ("observation_datetime", _TS), ("observation_type_concept_id", _I), ("value_as_number", _F),
        ("value_as_string", _S), ("value_as_concept_id", _I), ("qualifier_concept_id", _I), ("unit_concept_id", _I),
        ("provider_id", _I), ("visit_occurrence_id", _I), ("visit_detail_id", _I), ("observation_source_value", _S),
        ("observation_source_concept_id", _I), ("unit_source_value", _S), ("qualifier_source_value", _S),
        ("value_source_value", _S), ("observation_event_id", _BI), ("obs_event_field_concept_id", _I),
    ],
    "concept": [
        ("concept_id", _I), ("concept_name", _S), ("domain_id", _S), ("vocabulary_id", _S), ("concept_class_id", _S),
        ("standard_concept", _S), ("concept_code", _S), ("valid_start_date", _D), ("valid_end_date", _D),
        ("invalid_reason", _S),
    ],
    "concept_ancestor": [
        ("ancestor_concept_id", _I), ("descendant_concept_id", _I), ("min_levels_of_separation", _I),
        ("max_levels_of_separation", _I),
    ],
    "fhir_record": [
        ("table_name", _S), ("record_id", _I), ("resource_type", _S), ("resource_id", _S), ("file", _S), ("line", _I),
        ("code", _S), ("display", _S),
    ],
    "fhir_coding": [
        ("table_name", _S), ("record_id", _I), ("vocabulary_id", _S), ("concept_code", _S), ("concept_id", _I),
    ],
}  # fmt: skip

_NOT_MAPPED_STATUS = {
    "Condition": ("verificationStatus", frozenset({"entered-in-error", "refuted"})),
    "Observation": ("status", frozenset({"entered-in-error", "cancelled"})),
    "MedicationRequest": ("status", frozenset({"entered-in-error", "cancelled", "draft"})),
    "MedicationStatement": ("status", frozenset({"entered-in-error", "not-taken"})),
    "MedicationAdministration": ("status", frozenset({"entered-in-error", "not-done"})),
    "Procedure": ("status", frozenset({"entered-in-error", "not-done"})),
    "Encounter": ("status", frozenset({"entered-in-error", "cancelled"})),
}
_NOT_PRESCRIBED_INTENTS = frozenset({"proposal", "plan"})


@dataclass(frozen=True, slots=True)
class MappedPerson:
    person_id: int
    patient_id: str | None
    file: str
    scope: str
    #: the Patient's birthDate when it names a full day, and its gender as written (female, male, other, unknown)
    birth_date: dt.date | None = None
    gender: str | None = None


@dataclass
class MappingReport:
    """What :func:`map_to_omop` wrote, and what it could not use."""

    persons: list[MappedPerson] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    #: problems attributed to a person (through the resource's subject, or the Bundle it came from)
    person_problems: dict[int, list[Problem]] = field(default_factory=lambda: defaultdict(list))
    #: records left out on purpose: "<ResourceType> <element> <value>" → count
    excluded: Counter[str] = field(default_factory=Counter)
    skipped_types: Counter[str] = field(default_factory=Counter)

    def problems_for(self, person_id: int) -> list[Problem]:
        return list(self.person_problems.get(person_id, []))


# --------------------------------------------------------------------------- entry point


def map_to_omop(
    records: FhirReading,
    con: duckdb.DuckDBPyConnection,
    *,
    number_after: Callable[[dict[str, int]], Mapping[str, int]] | None = None,
) -> MappingReport:
    """Write the OMOP-shaped tables for ``records`` into ``con`` (replacing tables of the
    same names) in one transaction, and report what was written and what was not.

    Rows are numbered 1, 2, … in reading order in each table of :data:`NUMBERED`. A batch
    mapped in parts (one part per process) numbers each part's rows after those of the
    parts before it, so that every part's ids are those the whole batch would have:
    ``number_after`` is given the part's row counts and returns, for each numbered table,
    how many rows come before the part."""
    m = _Mapper(records)
    m.run()
    if number_after is not None:
        m.renumber(number_after({t: len(m.rows[t]) for t in NUMBERED}))
    m.write(con)
    return m.report


# --------------------------------------------------------------------------- helpers


def _date(value: Any) -> dt.date | None:
    if not isinstance(value, str):
        return None
    n = len(value)
    try:
        if n >= 10:
            return dt.date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
        if n == 7:
            return dt.date(int(value[0:4]), int(value[5:7]), 1)
        if n == 4:
            return dt.date(int(value), 1, 1)
    except ValueError:
        return None
    return None


def _datetime(value: Any) -> dt.datetime | None:
    """Local wall-clock time as written (the offset is dropped, see module docstring)."""
    if not isinstance(value, str) or len(value) < 16 or value[10] != "T":
        return None
    try:
        return dt.datetime.fromisoformat(value[:19])
    except ValueError:
        return None


def _ref_key(ref: str) -> str:
    """``Type/id`` from a relative or absolute reference (version suffix dropped)."""
    parts = ref.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:]) if len(parts) >= 2 else ref


def _local_id(vocabulary: str, code: str) -> int:
    h = int.from_bytes(hashlib.blake2b(f"{vocabulary}|{code}".encode(), digest_size=8).digest(), "big")
    return LOCAL_CONCEPT_BASE + h % _LOCAL_CONCEPT_SPAN


def _codings(cc: Any) -> list[tuple[str, str, str | None]]:
    """(vocabulary, code, display) of a CodeableConcept's codings that have a code."""
    if not isinstance(cc, dict):
        return []
    out = []
    for c in cc.get("coding") or ():
        code = c.get("code")
        if not code:
            continue
        system = c.get("system")
        vocab = SYSTEMS.get(system, "LOCAL") if system else "LOCAL"
        out.append((vocab, str(code), c.get("display")))
    return out


def _pick(codings: list[tuple[str, str, str | None]], domain: str) -> tuple[str, str, str | None] | None:
    for vocab in _PREFERENCE.get(domain, ()):
        for c in codings:
            if c[0] == vocab:
                return c
    return codings[0] if codings else None


def _quantity_unit(q: JsonDict) -> str | None:
    code = q.get("code") if q.get("system") in (None, "http://unitsofmeasure.org") else None
    return code or q.get("unit")


def _days(duration: Any) -> int | None:
    if not isinstance(duration, dict) or duration.get("value") is None:
        return None
    per_day = {"d": 1, "day": 1, "days": 1, "wk": 7, "week": 7, "weeks": 7, "mo": 30, "month": 30, "months": 30}
    unit = duration.get("code") or duration.get("unit")
    factor = per_day.get(str(unit))
    return None if factor is None else round(float(duration["value"]) * factor)


# --------------------------------------------------------------------------- the mapper


class _Mapper:
    def __init__(self, reading: FhirReading) -> None:
        self.reading = reading
        self.report = MappingReport(problems=list(reading.problems), skipped_types=Counter(reading.skipped_types))
        self.rows: dict[str, list[JsonDict]] = {t: [] for t in OMOP_SCHEMA}
        self.index: dict[tuple[str, str], FhirRecord] = {}
        self.person_of: dict[tuple[str, str], int] = {}
        self.birth: dict[int, dt.date | None] = {}
        self.span: dict[int, list[dt.date]] = {}
        self.concepts: dict[tuple[str, str], int] = {}
        self.concept_rows: dict[int, tuple[str, str, str | None, str]] = {}
        self.persons_by_scope: dict[str, list[int]] = defaultdict(list)

    # ----- orchestration

    def run(self) -> None:
        records = self.reading.records
        for r in records:
            self._index(r)
        for r in records:
            if r.resource_type == "Patient":
                self._person(r)
        handlers = {
            "Condition": self._condition,
            "MedicationRequest": self._medication_request,
            "MedicationStatement": self._medication_statement,
            "MedicationAdministration": self._medication_administration,
            "Observation": self._observation,
            "Procedure": self._procedure,
            "Encounter": self._encounter,
        }
        for r in records:
            handler = handlers.get(r.resource_type)
            if handler is None or self._left_out(r):
                continue
            person_id = self._subject(r)
            if person_id is not None:
                handler(r, person_id)
        self._observation_periods()
        self._attribute_problems()

    def _index(self, r: FhirRecord) -> None:
        keys = []
        if r.id is not None:
            keys.append(f"{r.resource_type}/{r.id}")
        if r.full_url:
            keys.append(r.full_url)
        for key in keys:
            if (r.scope, key) in self.index:
                self._problem(r, None, f"duplicate resource {key}; the first one is used")
                continue
            self.index[(r.scope, key)] = r

    def _left_out(self, r: FhirRecord) -> bool:
        rule = _NOT_MAPPED_STATUS.get(r.resource_type)
        if rule is not None:
            element, values = rule
            raw = r.data.get(element)
            value = raw if isinstance(raw, str) else next((c[1] for c in _codings(raw)), None)
            if value in values:
                self.report.excluded[f"{r.resource_type} {element} {value}"] += 1
                return True
        if r.resource_type == "MedicationRequest" and r.data.get("intent") in _NOT_PRESCRIBED_INTENTS:
            self.report.excluded[f"MedicationRequest intent {r.data['intent']}"] += 1
            return True
        return False

    def _problem(self, r: FhirRecord, fld: str | None, message: str) -> None:
        subject = r.data.get("subject")
        ref = subject.get("reference") if isinstance(subject, dict) else None
        self.report.problems.append(
            Problem(file=r.file, line=r.line, resource_type=r.resource_type, resource_id=r.id or r.full_url,
                    field=fld, message=message, subject=ref if isinstance(ref, str) else None)
        )  # fmt: skip

    def _resolve(self, scope: str, ref: str) -> FhirRecord | None:
        return self.index.get((scope, ref)) or self.index.get((scope, _ref_key(ref)))

    def _subject(self, r: FhirRecord) -> int | None:
        subject = r.data.get("subject")
        ref = subject.get("reference") if isinstance(subject, dict) else None
        if not isinstance(ref, str):
            self._problem(r, "subject", "no reference to the Patient; the record is not used")
            return None
        person_id = self.person_of.get((r.scope, ref)) or self.person_of.get((r.scope, _ref_key(ref)))
        if person_id is None:
            what = "a Patient" if _ref_key(ref).startswith("Patient/") or ref.startswith("urn:") else "a resource"
            self._problem(r, "subject", f"refers to {ref}, {what} not in this record; the record is not used")
        return person_id

    def _record(
        self,
        table: str,
        r: FhirRecord,
        row: JsonDict,
        picked: tuple[str, str, str | None] | None,
        codings: list[tuple[str, str, str | None]],
        display: str | None,
    ) -> int:
        rows = self.rows[table]
        record_id = len(rows) + 1
        row[_ID_COLUMN[table]] = record_id
        rows.append(row)
        self.rows["fhir_record"].append({
            "table_name": table, "record_id": record_id, "resource_type": r.resource_type,
            "resource_id": r.id or r.full_url, "file": r.file, "line": r.line,
            "code": picked[1] if picked else None, "display": (picked[2] if picked else None) or display,
        })  # fmt: skip
        coding_rows = self.rows["fhir_coding"]
        for vocab, code, _ in codings:
            coding_rows.append({"table_name": table, "record_id": record_id, "vocabulary_id": vocab,
                                "concept_code": code, "concept_id": self.concepts[(vocab, code)]})  # fmt: skip
        return record_id

    def _observe(self, person_id: int, *dates: dt.date | None) -> None:
        span = self.span.get(person_id)
        for d in dates:
            if d is None:
                continue
            if span is None:
                span = self.span[person_id] = [d, d]
            elif d < span[0]:
                span[0] = d
            elif d > span[1]:
                span[1] = d

    # ----- concepts

    def _concept(self, codings: list[tuple[str, str, str | None]], domain: str) -> int:
        """Register every coding; return the id of the first one (0 for none)."""
        first = 0
        for vocab, code, display in codings:
            key = (vocab, code)
            cid = self.concepts.get(key)
            if cid is None:
                cid = _local_id(vocab, code)
                while cid in self.concept_rows:
                    cid = cid + 1 if cid < 2**31 - 1 else LOCAL_CONCEPT_BASE
                self.concepts[key] = cid
                self.concept_rows[cid] = (vocab, code, display, domain)
            elif display and self.concept_rows[cid][2] is None:
                v, c, _, d = self.concept_rows[cid]
                self.concept_rows[cid] = (v, c, display, d)
            first = first or cid
        return first

    def _coded(
        self, r: FhirRecord, cc: Any, domain: str, fld: str
    ) -> tuple[int, str | None, int | None, tuple[str, str, str | None] | None, list[tuple[str, str, str | None]]]:
        """(concept_id, source_value, source_concept_id, picked coding, all codings) of a CodeableConcept."""
        codings = _codings(cc)
        self._concept(codings, domain)
        picked = _pick(codings, domain)
        if picked is None:
            text = cc.get("text") if isinstance(cc, dict) else None
            self._problem(r, fld, "has no coding in any code system; the record cannot match a value set")
            return 0, (text[:50] if isinstance(text, str) else None), None, None, codings
        source = picked
        if domain == "Condition":
            source = next((c for c in codings if c[0] == "ICD10CM"), picked)
        return self.concepts[picked[:2]], source[1], self.concepts[source[:2]], picked, codings

    # ----- Patient

    def _person(self, r: FhirRecord) -> None:
        d = r.data
        person_id = len(self.rows["person"]) + 1
        keys = [k for k in (f"Patient/{r.id}" if r.id else None, r.full_url) if k]
        if any((r.scope, k) in self.person_of for k in keys):
            return  # duplicate, already named by _index
        for k in keys:
            self.person_of[(r.scope, k)] = person_id
        birth = d.get("birthDate")
        year = month = day = None
        birth_dt = None
        if isinstance(birth, str):
            year = int(birth[:4])
            month = int(birth[5:7]) if len(birth) >= 7 else None
            day = int(birth[8:10]) if len(birth) >= 10 else None
            if day is not None and month is not None:
                birth_dt = dt.datetime(year, month, day)
        else:
            self._problem(r, "birthDate", "no birth date: age cannot be computed")
        self.birth[person_id] = birth_dt.date() if birth_dt else None
        gender = d.get("gender")
        row = {
            "gender_concept_id": FEMALE if gender == "female" else MALE if gender == "male" else 0,
            "year_of_birth": year, "month_of_birth": month, "day_of_birth": day, "birth_datetime": birth_dt,
            "race_concept_id": 0, "ethnicity_concept_id": 0, "person_source_value": r.id or r.full_url,
            "gender_source_value": gender,
        }  # fmt: skip
        self._record("person", r, row, None, [], None)
        self.report.persons.append(MappedPerson(person_id, r.id, r.file, r.scope, self.birth[person_id],
                                                gender if isinstance(gender, str) else None))
        self.persons_by_scope[r.scope].append(person_id)

    # ----- Condition

    def _condition(self, r: FhirRecord, person_id: int) -> None:
        d = r.data
        start_raw = d.get("onsetDateTime") or (d.get("onsetPeriod") or {}).get("start") or d.get("recordedDate")
        start = _date(start_raw)
        if start is None:
            self._problem(r, "onset[x]", "no onset date or recordedDate; the condition is not used")
            return
        period = d.get("abatementPeriod") or {}
        end_raw = d.get("abatementDateTime") or period.get("end") or period.get("start")
        cid, source, source_cid, picked, codings = self._coded(r, d.get("code"), "Condition", "code")
        status = next((c[1] for c in _codings(d.get("clinicalStatus"))), None)
        end = _date(end_raw)
        row = {
            "person_id": person_id, "condition_concept_id": cid, "condition_start_date": start,
            "condition_start_datetime": _datetime(start_raw), "condition_end_date": end,
            "condition_end_datetime": _datetime(end_raw), "condition_type_concept_id": TYPE_EHR,
            "condition_source_value": source, "condition_source_concept_id": source_cid,
            "condition_status_source_value": status,
        }  # fmt: skip
        self._record("condition_occurrence", r, row, picked, codings, (d.get("code") or {}).get("text"))
        self._observe(person_id, start, end)

    # ----- medications

    def _drug_code(self, r: FhirRecord) -> JsonDict | None:
        d = r.data
        if "medicationCodeableConcept" in d:
            cc: JsonDict = d["medicationCodeableConcept"]
            return cc
        ref = (d.get("medicationReference") or {}).get("reference")
        if not isinstance(ref, str):
            self._problem(r, "medication[x]", "no medication; the record is not used")
            return None
        if ref.startswith("#"):
            med = next((c for c in d.get("contained") or () if c.get("id") == ref[1:]), None)
            code = med.get("code") if med else None
        else:
            target = self._resolve(r.scope, ref)
            code = target.data.get("code") if target is not None and target.resource_type == "Medication" else None
            med = target.data if target is not None else None
        if med is None:
            self._problem(r, "medicationReference", f"refers to {ref}, a Medication not in this record; the record is not used")
            return None
        return code if isinstance(code, dict) else {}

    def _drug(
        self, r: FhirRecord, person_id: int, start_raw: Any, end_raw: Any, end_fallback: dt.date | None, type_concept: int, extra: JsonDict
    ) -> None:
        start = _date(start_raw)
        if start is None:
            self._problem(r, None, "no date for the exposure; the record is not used")
            return
        cc = self._drug_code(r)
        if cc is None:
            return
        end = _date(end_raw) or end_fallback or start
        end = max(end, start)
        cid, source, source_cid, picked, codings = self._coded(r, cc, "Drug", "medication[x]")
        row = {
            "person_id": person_id, "drug_concept_id": cid, "drug_exposure_start_date": start,
            "drug_exposure_start_datetime": _datetime(start_raw), "drug_exposure_end_date": end,
            "drug_exposure_end_datetime": _datetime(end_raw), "verbatim_end_date": _date(end_raw),
            "drug_type_concept_id": type_concept, "drug_source_value": source, "drug_source_concept_id": source_cid,
            **extra,
        }  # fmt: skip
        self._record("drug_exposure", r, row, picked, codings, cc.get("text"))
        self._observe(person_id, start, end)

    def _medication_request(self, r: FhirRecord, person_id: int) -> None:
        d = r.data
        dosage = d.get("dosageInstruction") or []
        starts, ends, durations = [], [], []
        for di in dosage:
            rep = ((di.get("timing") or {}).get("repeat")) or {}
            bp = rep.get("boundsPeriod") or {}
            if bp.get("start"):
                starts.append(bp["start"])
            if bp.get("end"):
                ends.append(bp["end"])
            if (days := _days(rep.get("boundsDuration"))) is not None:
                durations.append(days)
        start_raw = min(starts, key=lambda s: s[:10]) if starts else d.get("authoredOn")
        end_raw = max(ends, key=lambda s: s[:10]) if ends else None
        dispense = d.get("dispenseRequest") or {}
        supply = _days(dispense.get("expectedSupplyDuration"))
        repeats = dispense.get("numberOfRepeatsAllowed")
        start = _date(start_raw)
        fallback = None
        if start is not None and end_raw is None:
            if durations:
                fallback = start + dt.timedelta(days=max(durations) - 1)
            elif supply:
                fallback = start + dt.timedelta(days=supply * (1 + (repeats or 0)) - 1)
        first = dosage[0] if dosage else {}
        dose = ((first.get("doseAndRate") or [{}])[0]).get("doseQuantity") or {}
        route = _codings(first.get("route"))
        extra = {
            "refills": repeats, "quantity": (dispense.get("quantity") or {}).get("value"), "days_supply": supply,
            "sig": first.get("text"), "route_source_value": route[0][1] if route else None,
            "dose_unit_source_value": _quantity_unit(dose) if dose else None,
            "stop_reason": next((c[1] for c in _codings(d.get("statusReason"))), None) if d.get("status") == "stopped" else None,
        }  # fmt: skip
        self._drug(r, person_id, start_raw, end_raw, fallback, TYPE_PRESCRIPTION, extra)

    def _medication_statement(self, r: FhirRecord, person_id: int) -> None:
        d = r.data
        period = d.get("effectivePeriod") or {}
        start_raw = d.get("effectiveDateTime") or period.get("start") or d.get("dateAsserted")
        end_raw = d.get("effectiveDateTime") or period.get("end")
        fallback = _date(d.get("dateAsserted")) if d.get("status") == "active" else None
        dosage = (d.get("dosage") or [{}])[0]
        self._drug(r, person_id, start_raw, end_raw, fallback, TYPE_SELF_REPORT, {"sig": dosage.get("text")})

    def _medication_administration(self, r: FhirRecord, person_id: int) -> None:
        d = r.data
        period = d.get("effectivePeriod") or {}
        start_raw = d.get("effectiveDateTime") or period.get("start")
        end_raw = d.get("effectiveDateTime") or period.get("end")
        dosage = d.get("dosage") or {}
        dose = dosage.get("dose") or {}
        route = _codings(dosage.get("route"))
        extra = {"quantity": dose.get("value"), "dose_unit_source_value": _quantity_unit(dose) if dose else None,
                 "route_source_value": route[0][1] if route else None, "sig": dosage.get("text")}  # fmt: skip
        self._drug(r, person_id, start_raw, end_raw, None, TYPE_ADMINISTRATION, extra)

    # ----- Procedure, Encounter

    def _procedure(self, r: FhirRecord, person_id: int) -> None:
        d = r.data
        period = d.get("performedPeriod") or {}
        start_raw = d.get("performedDateTime") or period.get("start")
        start = _date(start_raw)
        if start is None:
            self._problem(r, "performed[x]", "no date the procedure was performed; the record is not used")
            return
        end_raw = period.get("end")
        cid, source, source_cid, picked, codings = self._coded(r, d.get("code"), "Procedure", "code")
        row = {
            "person_id": person_id, "procedure_concept_id": cid, "procedure_date": start,
            "procedure_datetime": _datetime(start_raw), "procedure_end_date": _date(end_raw),
            "procedure_end_datetime": _datetime(end_raw), "procedure_type_concept_id": TYPE_EHR,
            "procedure_source_value": source, "procedure_source_concept_id": source_cid,
        }  # fmt: skip
        self._record("procedure_occurrence", r, row, picked, codings, (d.get("code") or {}).get("text"))
        self._observe(person_id, start, _date(end_raw))

    def _encounter(self, r: FhirRecord, person_id: int) -> None:
        period = r.data.get("period") or {}
        self._observe(person_id, _date(period.get("start")), _date(period.get("end")))

    # ----- Observation

    def _observation(self, r: FhirRecord, person_id: int) -> None:
        d = r.data
        period = d.get("effectivePeriod") or {}
        when_raw = d.get("effectiveDateTime") or d.get("effectiveInstant") or period.get("start") or d.get("issued")
        when = _date(when_raw)
        if when is None:
            self._problem(r, "effective[x]", "no date for the observation; the observation is not used")
            return
        categories = {c[1] for cat in d.get("category") or () for c in _codings(cat)}
        is_measurement = "valueQuantity" in d or bool(categories & _MEASUREMENT_CATEGORIES)
        parts = [(d, "")]
        parts += [(c, f"component[{i}].") for i, c in enumerate(d.get("component") or ())]
        for part, prefix in parts:
            if not any(k.startswith("value") for k in part):
                continue
            if is_measurement:
                self._measurement(r, person_id, part, prefix, when, when_raw, categories)
            else:
                self._observation_row(r, person_id, part, prefix, when, when_raw)
        self._observe(person_id, when)

    def _value_concept(self, part: JsonDict) -> tuple[int | None, str | None]:
        cc = part.get("valueCodeableConcept")
        if cc is None:
            if "valueBoolean" in part:
                return None, str(part["valueBoolean"]).lower()
            text = part.get("valueString")
            return None, text[:50] if isinstance(text, str) else None
        codings = _codings(cc)
        self._concept(codings, "Meas Value")
        picked = _pick(codings, "Value")
        if picked is None:
            text = cc.get("text")
            return None, text[:50] if isinstance(text, str) else None
        return self.concepts[picked[:2]], picked[1]

    def _unit(self, r: FhirRecord, q: JsonDict, fld: str) -> str | None:
        raw = _quantity_unit(q)
        if raw is None:
            return None
        ucum = units.normalise(str(raw))
        if ucum is None:
            self._problem(r, fld, f"unit {raw!r} is not a known UCUM unit or spelling")
        return ucum

    def _measurement(
        self, r: FhirRecord, person_id: int, part: JsonDict, prefix: str, when: dt.date, when_raw: Any, categories: set[str]
    ) -> None:
        cid, source, source_cid, picked, codings = self._coded(r, part.get("code"), "Measurement", prefix + "code")
        value = unit = None
        operator = None
        q = part.get("valueQuantity")
        if q is not None:
            value = q.get("value")
            if _quantity_unit(q) is not None:
                unit = self._unit(r, q, prefix + "valueQuantity.unit")
                if unit is None:
                    return  # named by _unit: a number without a known unit cannot be compared
            operator = _OPERATORS.get(q.get("comparator") or "")
        value_cid, value_source = self._value_concept(part)
        low, high = self._range(r, part, prefix, unit, picked[1] if picked and picked[0] == "LOINC" else None)
        unit_cid = self._concept([("UCUM", unit, unit)], "Unit") if unit else None
        row = {
            "person_id": person_id, "measurement_concept_id": cid, "measurement_date": when,
            "measurement_datetime": _datetime(when_raw),
            "measurement_time": when_raw[11:19] if isinstance(when_raw, str) and len(when_raw) >= 19 else None,
            "measurement_type_concept_id": TYPE_LAB if "laboratory" in categories else TYPE_EHR,
            "operator_concept_id": operator, "value_as_number": float(value) if value is not None else None,
            "value_as_concept_id": value_cid, "unit_concept_id": unit_cid, "range_low": low, "range_high": high,
            "measurement_source_value": source, "measurement_source_concept_id": source_cid,
            "unit_source_value": unit, "value_source_value": value_source,
        }  # fmt: skip
        self._record("measurement", r, row, picked, codings, (part.get("code") or {}).get("text"))

    def _range(
        self, r: FhirRecord, part: JsonDict, prefix: str, unit: str | None, analyte: str | None
    ) -> tuple[float | None, float | None]:
        ranges = part.get("referenceRange") or (r.data.get("referenceRange") if prefix == "" else None) or []
        chosen = None
        for i, rr in enumerate(ranges):
            kinds = {c[1] for c in _codings(rr.get("type"))}
            if not kinds or "normal" in kinds:
                chosen = (i, rr)
                break
        if chosen is None:
            return None, None
        i, rr = chosen
        out: list[float | None] = []
        for end in ("low", "high"):
            q = rr.get(end)
            if not isinstance(q, dict) or q.get("value") is None:
                out.append(None)
                continue
            fld = f"{prefix}referenceRange[{i}].{end}"
            v = float(q["value"])
            raw = _quantity_unit(q)
            src = units.normalise(str(raw)) if raw is not None else unit
            if src is None or unit is None:
                what = f"unit {raw!r} is not known" if src is None else "the value has no unit"
                self._problem(r, fld, f"reference range {what}; the range is not used")
                return None, None
            if src != unit:
                converted = units.convert(v, src, unit, analyte=analyte)
                if converted is None:
                    self._problem(r, fld, f"reference range in {src} cannot be converted to the value's unit {unit}; "
                                          "the range is not used")  # fmt: skip
                    return None, None
                v = converted
            out.append(v)
        return out[0], out[1]

    def _observation_row(self, r: FhirRecord, person_id: int, part: JsonDict, prefix: str, when: dt.date, when_raw: Any) -> None:
        cid, source, source_cid, picked, codings = self._coded(r, part.get("code"), "Observation", prefix + "code")
        value = unit = None
        q = part.get("valueQuantity")
        if q is not None:
            value = q.get("value")
            unit = self._unit(r, q, prefix + "valueQuantity.unit") if _quantity_unit(q) is not None else None
        value_cid, value_source = self._value_concept(part)
        text = part.get("valueString")
        if "valueBoolean" in part:
            text = str(part["valueBoolean"]).lower()
        row = {
            "person_id": person_id, "observation_concept_id": cid, "observation_date": when,
            "observation_datetime": _datetime(when_raw), "observation_type_concept_id": TYPE_EHR,
            "value_as_number": float(value) if value is not None else None,
            "value_as_string": text[:60] if isinstance(text, str) else None, "value_as_concept_id": value_cid,
            "unit_concept_id": self._concept([("UCUM", unit, unit)], "Unit") if unit else None,
            "observation_source_value": source, "observation_source_concept_id": source_cid,
            "unit_source_value": unit, "value_source_value": value_source,
        }  # fmt: skip
        self._record("observation", r, row, picked, codings, (part.get("code") or {}).get("text"))

    # ----- derived tables

    def _observation_periods(self) -> None:
        rows = self.rows["observation_period"]
        for person_id in sorted(self.span):
            start, end = self.span[person_id]
            rows.append({"observation_period_id": len(rows) + 1, "person_id": person_id,
                         "observation_period_start_date": start, "observation_period_end_date": end,
                         "period_type_concept_id": TYPE_EHR})  # fmt: skip
        rows_c = self.rows["concept"]
        start, end = dt.date(1970, 1, 1), dt.date(2099, 12, 31)
        for cid in sorted(self.concept_rows):
            vocab, code, display, domain = self.concept_rows[cid]
            rows_c.append({"concept_id": cid, "concept_name": (display or code)[:255], "domain_id": domain,
                           "vocabulary_id": vocab, "concept_class_id": "Site-local",
                           "standard_concept": "S" if vocab in _STANDARD else None, "concept_code": code,
                           "valid_start_date": start, "valid_end_date": end})  # fmt: skip

    def _attribute_problems(self) -> None:
        """A problem belongs to the person its resource names, or else to the only person of its Bundle or export."""
        for p in self.report.problems:
            person_id = None
            for scope in (p.file, str(Path(p.file).parent)):
                if p.subject is not None:
                    person_id = self.person_of.get((scope, p.subject)) or self.person_of.get((scope, _ref_key(p.subject)))
                if person_id is None and len(self.persons_by_scope.get(scope, ())) == 1:
                    person_id = self.persons_by_scope[scope][0]
                if person_id is not None:
                    self.report.person_problems[person_id].append(p)
                    break

    # ----- writing

    def renumber(self, before: Mapping[str, int]) -> None:
        """Shift every id by the number of rows of its table that come ``before`` these."""
        persons = before.get("person", 0)
        for table, column in _ID_COLUMN.items():
            shift = before.get(table, 0)
            for row in self.rows[table]:
                row[column] += shift
                if table != "person":
                    row["person_id"] += persons
        for name in ("fhir_record", "fhir_coding"):
            for row in self.rows[name]:
                row["record_id"] += before.get(row["table_name"], 0)
        report = self.report
        report.persons = [dataclasses.replace(p, person_id=p.person_id + persons) for p in report.persons]
        shifted = defaultdict(list, {k + persons: v for k, v in report.person_problems.items()})
        report.person_problems = shifted

    def write(self, con: duckdb.DuckDBPyConnection) -> None:
        tables = {}
        for name, schema in OMOP_SCHEMA.items():
            rows = self.rows[name]
            arrays = [pa.array([row.get(col) for row in rows], type=typ) for col, typ in schema]
            tables[name] = pa.Table.from_arrays(arrays, schema=pa.schema(schema))
            self.report.rows[name] = len(rows)
        con.begin()
        try:
            for name, table in tables.items():
                view = f"_trialdesk_fhir_{name}"
                con.register(view, table)
                try:
                    con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM "{view}"')
                finally:
                    con.unregister(view)
            con.commit()
        except BaseException:
            con.rollback()
            raise


_ID_COLUMN = {
    "person": "person_id",
    "condition_occurrence": "condition_occurrence_id",
    "drug_exposure": "drug_exposure_id",
    "procedure_occurrence": "procedure_occurrence_id",
    "measurement": "measurement_id",
    "observation": "observation_id",
    "observation_period": "observation_period_id",
}

#: the tables whose rows are numbered (their id column); fhir_record and fhir_coding cite them by record_id
NUMBERED = tuple(_ID_COLUMN)
