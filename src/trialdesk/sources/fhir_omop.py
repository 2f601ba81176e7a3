"""FHIR R4 resources → OMOP CDM v5.4-shaped tables in DuckDB, so that one patient's chart
is screened by exactly the engine that screens a whole OMOP database.

The mapping runs as SQL-on-FHIR views and SQL (``trialdesk.sources.fhir_views.omop``, the
views in ``fhir_views/omop/*.json``); this module keeps the tables' schema, the shared
constants and the readings, chosen once and listed here (the view columns say the same
beside each element; ``docs/design.md`` lists what the views changed: duplicates, impossible
birth dates, interpretations, component links):

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
- **tentative diagnoses**: a Condition whose verificationStatus is unconfirmed, provisional
  or differential is kept with ``condition_status_concept_id`` 32899 ("Preliminary
  diagnosis"); the screen reads it as a question (``needs_review``), never as a fact.
- **references** resolve within their scope (one Bundle, or one Bulk export folder) by
  ``Type/id``, by Bundle ``fullUrl``, or to a contained resource (``#id``). A record whose
  subject is missing, or whose medicationReference is missing, is dropped and named.

``fhir_record(table_name, record_id, resource_type, resource_id, file, line, code,
display)`` links every OMOP row (person rows included) back to its FHIR resource, for the
evidence a worksheet cites. ``concept_ancestor`` is written empty, with its columns.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from trialdesk.sources.fhir import Problem

__all__ = ["NUMBERED", "OMOP_SCHEMA", "MappedPerson", "MappingReport"]

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
#: Every code of R4's observation-category code system: an Observation with none of them says nothing of its kind,
#: and is placed by its code (a LOINC code is a test or measurement, as OMOP's vocabulary places LOINC results).
_OBSERVATION_CATEGORIES = _MEASUREMENT_CATEGORIES | {"social-history", "survey"}

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
    # Patient.deceased[x]: a dated death, or (deceasedBoolean true, or a date that cannot be read) one with no date
    "death": [
        ("person_id", _I), ("death_date", _D), ("death_datetime", _TS), ("death_type_concept_id", _I),
        ("cause_concept_id", _I), ("cause_source_value", _S), ("cause_source_concept_id", _I),
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
    # not OMOP: per person, the tables the chart is silent about (trialdesk.sources.fhir_views.chart_domains)
    "silent_domain": [("person_id", _I), ("table_name", _S), ("reason", _S)],
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

#: the codes FHIR R4 allows in the elements read above (each a required binding): a record holding
#: another code is not used, and is named (what "not-done" means on a MedicationRequest is not known)
_R4_CODES = {
    ("Observation", "status"): frozenset({"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                                          "entered-in-error", "unknown"}),
    ("MedicationRequest", "status"): frozenset({"active", "on-hold", "cancelled", "completed", "entered-in-error",
                                                "stopped", "draft", "unknown"}),
    ("MedicationRequest", "intent"): frozenset({"proposal", "plan", "order", "original-order", "reflex-order",
                                                "filler-order", "instance-order", "option"}),
    ("MedicationStatement", "status"): frozenset({"active", "completed", "entered-in-error", "intended", "stopped",
                                                  "on-hold", "unknown", "not-taken"}),
    ("MedicationAdministration", "status"): frozenset({"in-progress", "not-done", "on-hold", "completed",
                                                       "entered-in-error", "stopped", "unknown"}),
    ("Procedure", "status"): frozenset({"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
                                        "entered-in-error", "unknown"}),
    ("Encounter", "status"): frozenset({"planned", "arrived", "triaged", "in-progress", "onleave", "finished",
                                        "cancelled", "entered-in-error", "unknown"}),
}


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
    #: each problem's place in the order of a batch's problems (by ``id``): (0, i) for the i-th problem found
    #: while reading, (1, ord, n) for a wrong value, (2, phase, ord, part, step) for the mapping's own
    problem_keys: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def problems_for(self, person_id: int) -> list[Problem]:
        return list(self.person_problems.get(person_id, []))


def _local_id(vocabulary: str, code: str) -> int:
    h = int.from_bytes(hashlib.blake2b(f"{vocabulary}|{code}".encode(), digest_size=8).digest(), "big")
    return LOCAL_CONCEPT_BASE + h % _LOCAL_CONCEPT_SPAN


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
