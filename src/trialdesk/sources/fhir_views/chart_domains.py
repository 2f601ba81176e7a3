"""What a patient's FHIR chart says about each clinical domain: something, nothing, or "none".

A chart pulled from an EHR (one Bundle, a folder of Bundles, a Bulk export) is read as
complete up to the screening date, so the absence of, say, a rituximab order counts as its
absence (the design's convention: within observed time, no record of a diagnosis or drug
counts as its absence). A chart with records but **no record of a kind** — no
MedicationStatement, MedicationRequest or MedicationAdministration, no Condition, no
Procedure, no Observation — is silent about that domain: the export may simply not include
it. Per patient, the evidence of every criterion part that reads that table names what the
chart lacks, so the investigator who signs the eligibility sees it. The protocol chooses what
the silence means (``eligibility.silent_chart``):

- ``absent`` (the default, the design's convention): no record still counts as none, and the
  evidence says so ("…: no record is read as none, as for anything the chart does not hold;
  check the full record");
- ``unknown`` (the strict reading): those parts are ``unknown``, never ``not_met``, and
  three-valued logic takes it from there (an ANY with another part met is still met, NOT
  unknown is unknown, and the overall becomes needs_review rather than eligible or excluded).

Either way, a test whose absence the protocol itself reads as not met (``absent: not_met``)
keeps that reading.

What counts: any resource of those types whose subject is the patient and that could be
read, whatever its status (a cancelled order or a refuted diagnosis still shows that the
chart carries the domain). A resource that failed validation, or whose subject is no
patient of the record, does not count (its problem is named as before).

**A chart can state that a domain is empty**: a ``List`` about the patient whose
``emptyReason`` is ``nilknown`` (code system
``http://terminology.hl7.org/CodeSystem/list-empty-reason``: "clinical judgment that there
are no known items for this list after reasonable investigation") makes the domain known
to be empty, and its absence counts as absence again (``not_met``). The List must be
``status`` current, hold no ``entry`` (R4 invariant lst-1: only an empty List has an
emptyReason), and not be a List of changes (``mode`` changes: nothing changed is not
nothing there). Its ``code`` says which domain it is about:

- medications (``drug_exposure``): LOINC 10160-0 "History of Medication use Narrative"
  (the C-CDA and IPS medications section), or ``medications`` "Medication List" of
  ``http://terminology.hl7.org/CodeSystem/list-example-use-codes``;
- problems (``condition_occurrence``): LOINC 11450-4 "Problem list - Reported" (the C-CDA
  and IPS problems section), or ``problems`` "Problem List" of list-example-use-codes;
- procedures (``procedure_occurrence``): LOINC 47519-4 "History of Procedures Document"
  (the C-CDA procedures section).

Not read: LOINC 48765-2 "Allergies and adverse reactions Document" (no criterion reads
allergies; AllergyIntolerance is not mapped) and LOINC 30954-2 "Relevant diagnostic
tests/laboratory data Narrative" ("no known results" does not say which test was not
done; a measurement's absence is already unknown unless a criterion's reading says
otherwise). Other emptyReasons (notasked, withheld, unavailable, notstarted, closed) leave
the domain silent.

**A record that says there is no information is not information.** The International Patient
Summary codes a section it has nothing for with a record whose code is from
``http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips`` (IPS STU1): ``no-problem-info``,
``no-medication-info``, ``no-procedure-info`` ("no information about …") leave the chart silent
about that domain, as if the record were not there; ``no-known-problems``,
``no-known-medications``, ``no-known-procedures`` ("… known absent") state the domain empty, as a
nil-known List does (such a record matches no value set, so it counts only as the domain spoken).

The result is the table ``silent_domain(person_id, table_name, reason)``: one row per
person and OMOP table the chart is silent about. The engine reads it where it reads a table
absent from a database (``trialdesk.eligibility.compiler``), per person; the population
screen of an OMOP database has no such table and keeps its observed-time rule.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DOMAINS", "ChartDomain", "silent_domains_sql"]

LOINC = "http://loinc.org"
LIST_USE = "http://terminology.hl7.org/CodeSystem/list-example-use-codes"
IPS_ABSENT_UNKNOWN = "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips"
#: IPS codes saying there is no information about a domain (the record then says nothing)
NO_INFORMATION = ("no-problem-info", "no-medication-info", "no-procedure-info")


@dataclass(frozen=True)
class ChartDomain:
    """An OMOP table, the FHIR resource types that feed it (by the staging views of
    ``omop.py``), and the List codes that can state it empty."""

    table: str
    #: what the chart lacks, in words ("medication records")
    what: str
    types: tuple[str, ...]
    #: the staging views that feed it, with the column holding each row's codings
    views: tuple[tuple[str, str], ...]
    list_codes: tuple[tuple[str, str], ...] = ()

    @property
    def reason(self) -> str:
        stated = " and no List saying there are none" if self.list_codes else ""
        return f"the chart holds no {self.what} ({', '.join(self.types)}){stated}"


DOMAINS: tuple[ChartDomain, ...] = (
    ChartDomain("condition_occurrence", "diagnoses or problems", ("Condition",), (("condition", "codings"),),
                ((LOINC, "11450-4"), (LIST_USE, "problems"))),
    ChartDomain("drug_exposure", "medication records", ("MedicationStatement", "MedicationRequest", "MedicationAdministration"),
                (("med_statement", "med_codings"), ("med_request", "med_codings"), ("med_administration", "med_codings")),
                ((LOINC, "10160-0"), (LIST_USE, "medications"))),
    ChartDomain("procedure_occurrence", "procedures", ("Procedure",), (("procedure", "codings"),), ((LOINC, "47519-4"),)),
    ChartDomain("measurement", "observations", ("Observation",), (("observation", ""),)),
    ChartDomain("observation", "observations", ("Observation",), (("observation", ""),)),
)  # fmt: skip


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def silent_domains_sql() -> str:
    """SQL: ``CREATE … _t_silent_domain`` from the views' rows (``_v_*``, before records are
    left out on purpose), the resources (``_res``), the persons (``_t_person``) and their
    reference keys (``_person_key``), resolving a subject as ``omop._SqlMapper._subject`` does."""
    no_info = ", ".join(_q(f"{IPS_ABSENT_UNKNOWN}|{c}") for c in NO_INFORMATION)

    def says_something(codings: str) -> str:
        if not codings:
            return ""
        return (f" WHERE NOT coalesce(list_has_any(list_transform({codings}, c -> ((c ->> 'system') || '|' || (c ->> 'code'))),"
                f" [{no_info}]), FALSE)")

    spoken = [f"SELECT {_q(d.table)} AS table_name, ord, subject FROM _v_{v}{says_something(c)}" for d in DOMAINS for v, c in d.views]
    stated = ", ".join(f"({_q(d.table)}, {_q(s + '|' + c)})" for d in DOMAINS for s, c in d.list_codes)
    spoken.append(f"""SELECT t.table_name, l.ord, l.subject FROM _v_list l
        JOIN (VALUES {stated}) t(table_name, code)
          ON list_contains(list_transform(l.codings, c -> ((c ->> 'system') || '|' || (c ->> 'code'))), t.code)
        WHERE l.nil_known AND NOT coalesce(l.has_entries, FALSE) AND l.status = 'current'
          AND coalesce(l.mode, '') <> 'changes'""")
    domains = ", ".join(f"({k}, {_q(d.table)}, {_q(d.reason)})" for k, d in enumerate(DOMAINS))
    return f"""CREATE OR REPLACE TEMP TABLE _t_silent_domain AS
        WITH spoken AS ({" UNION ALL ".join(spoken)}),
        about AS (
            SELECT DISTINCT s.table_name, coalesce(k1.person_id, k2.person_id) AS person_id
            FROM spoken s JOIN _res r USING (ord)
            LEFT JOIN _person_key k1 ON k1.scope = r.scope AND k1.key = s.subject
            LEFT JOIN _person_key k2 ON k2.scope = r.scope AND k2.key = fd_refkey(s.subject))
        SELECT p.person_id, d.table_name, d.reason
        FROM _t_person p CROSS JOIN (VALUES {domains}) d(k, table_name, reason)
        WHERE NOT EXISTS (SELECT 1 FROM about a WHERE a.person_id = p.person_id AND a.table_name = d.table_name)
        ORDER BY p.person_id, d.k"""
