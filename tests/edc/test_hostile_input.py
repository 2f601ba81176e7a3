"""The input catalogue: hostile and malformed input on every form and endpoint, one row each.

Each row names a page (or API operation), the role that uses it, a valid submission, the one
field it spoils and how, and what must happen:

- ``refused``: the answer is not a server error, says what is wrong (the row's ``says``), and
  nothing is stored (the audit trail, which every write passes, does not grow);
- ``stored``: the value is kept as typed (``check`` reads it back) and, where it is shown
  (``shown_on``), it is shown escaped: the markup is visible as text, never live.

Kinds of spoiling: oversized fields, wrong types, HTML and script in free text, SQL
metacharacters, path traversal in upload and export names, dates in other formats and time
zones, NUL bytes, and Unicode look-alikes in usernames and subject ids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django.utils.html import escape

from .conftest import at_days_ago, days_ago

SCRIPT = '<script>alert("x")</script>'
SQL = "Robert'); DROP TABLE participants_participant;--"
NUL = "Ada\x00Lovelace"
LONG = "x" * 5000
CYRILLIC_ADMIN = "\u0430dmin"  # Cyrillic а, then 'dmin': looks like "admin"

S = dict[str, Any]


@dataclass
class Row:
    id: str
    page: str
    role: str
    path: Callable[[S], str]
    data: Callable[[S], dict[str, Any]]
    spoil: dict[str, Any]
    expect: str  # "refused" | "stored"
    says: str = ""  # what a refusal says (in the page, the message or the JSON)
    check: Callable[[S], bool] | None = None  # for "stored": the value is kept as typed
    shown_on: Callable[[S], str] | None = None  # for "stored": a page that shows it (escaped)
    method: str = "post"
    json: bool = False
    files: Callable[[S], dict[str, Any]] = field(default=lambda s: {})
    setup: Callable[[S], Any] | None = None  # what must be true first (e.g. no safety pause in force)
    spoil_all: str | None = None  # put this value in every field of the valid submission


def _now() -> str:
    return timezone.localtime().replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M")


LAB_RANGE = {"site": "Mayo Clinic in Florida", "laboratory": "Core lab", "analyte": "hgb", "lower": "12", "upper": "16",
             "effective_from": "2020-01-01"}


def person(s: S) -> dict[str, Any]:
    return {"given_name": "Eve", "family_name": "Hostile", "mrn": "M-9", "birth_date": "1970-01-02", "sex": "female",
            "screened_on": days_ago(1).isoformat()}


def consent(s: S) -> dict[str, Any]:
    return {"icf_version": "1.0 (2019-10-01)", "signed_at": at_days_ago(1).strftime("%Y-%m-%dT%H:%M"), "obtained_by": "Nurse Tester",
            "copy_given": "on"}


def infusion(s: S) -> dict[str, Any]:
    return {"date": days_ago(0).isoformat(), "started_at": "09:00", "stopped_at": "09:45", "weight_kg": "70", "total_cells": "52500000",
            "lot": "LOT-2", "donor_id": "D-7", "premedication": "", "interrupted": "no", "interruptions": ""}


def infusion_edit(s: S) -> dict[str, Any]:
    inf = s["inf"]
    return {"date": inf.date.isoformat(), "started_at": "09:00", "stopped_at": "09:45", "weight_kg": "70", "total_cells": "52500000",
            "lot": "LOT-1", "donor_id": "D-7", "premedication": "", "interrupted": "no", "interruptions": "", "version": inf.version,
            "reason": "correction",
            "before_sbp": "120"}


def ae(s: S) -> dict[str, Any]:
    return {"subject_id": "001", "term": "Headache", "grade": "2", "description": "headache", "onset": days_ago(10).isoformat(),
            "resolved": "", "serious": "no", "relatedness": "unrelated", "outcome": "recovering", "action_taken": "none",
            "learned_at": at_days_ago(9).strftime("%Y-%m-%dT%H:%M"), "suggested_from": ""}


def _vital_signs_entered(s: S) -> None:
    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.service import save_form

    save_form(s["users"]["coordinator"], Visit.objects.get(participant=s["p"], code="D1"), "vital_signs",
              {"vs_date": days_ago(19), "sysbp": 120})


def user_form(s: S) -> dict[str, Any]:
    return {"username": "nurse2", "first_name": "Nora", "last_name": "Nurse", "email": "", "role": "coordinator",
            "password": "Temporary-pass-77"}


def api_screen(s: S) -> dict[str, Any]:
    return {"given_name": "Eve", "family_name": "Hostile", "screened_on": days_ago(1).isoformat(), "sex": "female"}


def _hopeful(s: S) -> dict[str, Any]:
    from tests.public.test_questionnaire import hopeful
    from trialdesk.edc.web import protocol

    return dict(hopeful(protocol()))


def _decision() -> dict[str, Any]:
    from .test_death_dsmb_medwatch import decision_form

    return decision_form("continue")


def _entry_named(family: str) -> Callable[[S], bool]:
    def check(s: S) -> bool:
        from trialdesk.edc.screening.models import ScreeningEntry

        return ScreeningEntry.objects.filter(family_name=family).exists()

    return check


def _newest_entry_page(s: S) -> str:
    from trialdesk.edc.screening.models import ScreeningEntry

    return f"/screening/{ScreeningEntry.objects.order_by('-number').first().number}/"  # type: ignore[union-attr]


def _latest_ae_page(s: S) -> str:
    from trialdesk.edc.adverse_events.models import AdverseEvent

    return f"/adverse-events/{AdverseEvent.objects.order_by('-pk').first().pk}/"  # type: ignore[union-attr]


def _consent_at(utc: dt.datetime) -> Callable[[S], bool]:
    def check(s: S) -> bool:
        from trialdesk.edc.participants.models import Consent

        c = Consent.objects.filter(screening=s["signed"]).first()
        return c is not None and c.signed_at == utc

    return check


CONSENT = lambda s: f"/screening/{s['signed'].number}/consent/"  # noqa: E731
ENROL = lambda s: f"/screening/{s['ready'].number}/enrol/"  # noqa: E731
ROWS: list[Row] = [
    # --- the screening log (identified data typed by hand)
    Row("screening: script in the family name is stored and shown escaped", "screening_list", "coordinator", lambda s: "/screening/",
        person, {"family_name": SCRIPT}, "stored", check=_entry_named(SCRIPT), shown_on=_newest_entry_page),
    Row("screening: SQL in the given name is stored as text", "screening_list", "coordinator", lambda s: "/screening/", person,
        {"given_name": SQL}, "stored", check=lambda s: _stored("screening.ScreeningEntry", "given_name", SQL), shown_on=_newest_entry_page),
    Row("screening: an oversized family name is refused", "screening_list", "coordinator", lambda s: "/screening/", person,
        {"family_name": LONG}, "refused", says="at most 100 characters"),
    Row("screening: a NUL byte in a name is refused", "screening_list", "coordinator", lambda s: "/screening/", person,
        {"given_name": NUL}, "refused", says="Null characters are not allowed"),
    Row("screening: a day-first date is refused, not read month-first", "screening_list", "coordinator", lambda s: "/screening/",
        person, {"birth_date": "31/12/1970"}, "refused", says="Enter a valid date"),
    Row("screening: a date in the future is refused", "screening_list", "coordinator", lambda s: "/screening/", person,
        {"screened_on": (timezone.localdate() + dt.timedelta(days=3)).isoformat()}, "refused", says="future"),
    Row("screening: a sex outside the choices is refused", "screening_list", "coordinator", lambda s: "/screening/", person,
        {"sex": "robot"}, "refused", says="Select a valid choice"),
    Row("screening edit: a version that is not a number is refused", "screening_edit", "coordinator",
        lambda s: f"/screening/{s['signed'].number}/edit/", lambda s: person(s) | {"reason": "typo"}, {"version": "1 OR 1=1"},
        "refused", says="Enter a whole number"),
    Row("upload: a candidates file named with ../ is read, never written outside", "screening_upload", "coordinator",
        lambda s: "/screening/import/candidates/", lambda s: {"as_of": days_ago(1).isoformat(), "screened_on": days_ago(1).isoformat()},
        {}, "refused", says="lacks the column",
        files=lambda s: {"file": SimpleUploadedFile("../../../../tmp/trialdesk-evil.csv", b"a,b\n1,2\n", "text/csv")}),
    Row("upload: a FHIR file named with ../ stays in its temporary folder", "screening_upload", "coordinator",
        lambda s: "/screening/import/fhir/", lambda s: {"as_of": days_ago(1).isoformat(), "screened_on": days_ago(1).isoformat()},
        {}, "refused", says="",
        files=lambda s: {"file": SimpleUploadedFile("../../../../tmp/trialdesk-evil.json", b"{not json", "application/json")}),
    Row("upload: a file that is not UTF-8 is refused", "screening_upload", "coordinator", lambda s: "/screening/import/candidates/",
        lambda s: {"as_of": days_ago(1).isoformat(), "screened_on": days_ago(1).isoformat()}, {}, "refused", says="not UTF-8",
        files=lambda s: {"file": SimpleUploadedFile("c.csv", b"\xff\xfe\x00p\x00e", "text/csv")}),
    # --- laboratories: reference ranges and the bulk import
    Row("lab range: a lower limit above the upper one is refused", "lab_ranges", "data_manager", lambda s: "/labs/ranges/",
        lambda s: LAB_RANGE, {"lower": "17", "upper": "12"}, "refused", says="above the upper limit"),
    Row("lab range: an oversized laboratory name is refused", "lab_ranges", "data_manager", lambda s: "/labs/ranges/",
        lambda s: LAB_RANGE, {"laboratory": LONG}, "refused", says="at most 120"),
    Row("lab range: script in the laboratory's name is stored and shown escaped", "lab_ranges", "coordinator",
        lambda s: "/labs/ranges/", lambda s: LAB_RANGE, {"laboratory": SCRIPT}, "stored",
        check=lambda s: _stored("labs.ReferenceRange", "laboratory", SCRIPT), shown_on=lambda s: "/labs/ranges/"),
    Row("lab import: a CSV named with ../ and without the layout's columns is refused, nothing stored", "lab_import", "coordinator",
        lambda s: "/labs/import/", lambda s: {"kind": "csv"}, {}, "refused", says="has no column",
        files=lambda s: {"file": SimpleUploadedFile("../../../../tmp/trialdesk-evil.csv", b"a,b\n1,2\n", "text/csv")}),
    Row("lab import: a Bundle that is not JSON is refused", "lab_import", "coordinator", lambda s: "/labs/import/",
        lambda s: {"kind": "fhir"}, {}, "refused", says="not JSON",
        files=lambda s: {"file": SimpleUploadedFile("b.json", b"{not json", "application/json")}),
    Row("lab import: a file that is not UTF-8 is refused", "lab_import", "coordinator", lambda s: "/labs/import/",
        lambda s: {"kind": "csv"}, {}, "refused", says="not UTF-8",
        files=lambda s: {"file": SimpleUploadedFile("c.csv", b"\xff\xfe\x00p\x00e", "text/csv")}),
    Row("monitoring report PDF: a date that is not a date is refused", "monitoring_report_pdf", "monitor",
        lambda s: "/monitoring-report/pdf/", lambda s: {"start": days_ago(1).isoformat()}, {"end": "../../etc/passwd"}, "refused",
        says="Enter a valid date", method="get"),
    Row("monitoring report: an end before the start is refused", "monitoring_report", "monitor", lambda s: "/monitoring-report/",
        lambda s: {"start": days_ago(1).isoformat()}, {"end": days_ago(3).isoformat()}, "refused", says="before the start",
        method="get"),
    # --- consent, enrolment: dates in other formats and time zones
    Row("consent: a time with a UTC offset is stored as that instant", "consent", "coordinator", CONSENT, consent,
        {"signed_at": (at_days_ago(1).astimezone(dt.UTC)).strftime("%Y-%m-%dT%H:%M+00:00")}, "stored",
        check=lambda s: _consent_at(at_days_ago(1).astimezone(dt.UTC))(s)),
    Row("consent: a local time that does not exist (clocks spring forward) is refused", "consent", "coordinator", CONSENT, consent,
        {"signed_at": "2026-03-08T02:30"}, "refused", says="couldn’t be interpreted in time zone"),
    Row("consent: a date with no time is refused", "consent", "coordinator", CONSENT, consent, {"signed_at": "yesterday"}, "refused",
        says="Enter a valid date/time"),
    Row("consent: an oversized ICF version is refused", "consent", "coordinator", CONSENT, consent, {"icf_version": LONG}, "refused",
        says="at most 60 characters"),
    Row("consent: script in 'obtained by' is stored and shown escaped", "consent", "coordinator", CONSENT, consent,
        {"obtained_by": SCRIPT}, "stored", check=lambda s: _stored("participants.Consent", "obtained_by", SCRIPT),
        shown_on=lambda s: "/audit/"),
    Row("enrol: a date in words is refused", "enrol", "coordinator", ENROL, lambda s: {"enrolled_on": days_ago(1).isoformat()},
        {"enrolled_on": "next Tuesday"}, "refused", says="Enter a valid date"),
    # --- infusions: numbers of the wrong type and outside every range
    Row("infusion: a weight that is not a number is refused", "infusion_new", "coordinator",
        lambda s: "/participants/001/infusions/new/", infusion, {"weight_kg": "seventy"}, "refused", says="Enter a number"),
    Row("infusion: an infinite cell count is refused", "infusion_new", "coordinator", lambda s: "/participants/001/infusions/new/",
        infusion, {"total_cells": "inf"}, "refused", says="Enter a number"),
    Row("infusion: NaN weight is refused", "infusion_new", "coordinator", lambda s: "/participants/001/infusions/new/", infusion,
        {"weight_kg": "NaN"}, "refused", says="Enter a number"),
    Row("infusion: an oversized lot is refused", "infusion_new", "coordinator", lambda s: "/participants/001/infusions/new/", infusion,
        {"lot": LONG}, "refused", says="at most 60 characters"),
    Row("infusion: a systolic pressure of 9999 is refused", "infusion_new", "coordinator",
        lambda s: "/participants/001/infusions/new/", infusion, {"before_sbp": "9999"}, "refused", says="less than or equal to 260"),
    Row("infusion edit: script in the premedication is stored and shown escaped", "infusion_edit", "coordinator",
        lambda s: f"/participants/001/infusions/{s['inf'].number}/", infusion_edit, {"premedication": SCRIPT}, "stored",
        check=lambda s: _stored("dosing.Infusion", "premedication", SCRIPT), shown_on=lambda s: "/audit/"),
    # --- visits and CRFs
    Row("visit: a date in another format is refused", "visit", "coordinator", lambda s: "/participants/001/visits/D1/",
        lambda s: {"done_on": days_ago(0).isoformat(), "version": "1", "reason": ""}, {"done_on": "2026/13/45"}, "refused",
        says="Enter a valid date"),
    Row("CRF: script in the time point is stored and shown escaped", "crf", "coordinator",
        lambda s: "/participants/001/visits/D1/vital_signs/", lambda s: {"vs_date": days_ago(19).isoformat(), "sysbp": "120"},
        {"vs_timepoint": SCRIPT}, "stored", check=lambda s: _crf_has(SCRIPT),
        shown_on=lambda s: "/participants/001/visits/D1/vital_signs/"),
    Row("CRF: a pulse of -5 is refused", "crf", "coordinator", lambda s: "/participants/001/visits/D1/vital_signs/",
        lambda s: {"vs_date": days_ago(0).isoformat()}, {"pulse": "-5"}, "refused", says="greater than or equal to 20"),
    # --- protocol deviations
    Row("deviation: script in what happened is stored and shown escaped", "deviations", "coordinator", lambda s: "/deviations/",
        lambda s: {"subject_id": "001", "date": days_ago(1).isoformat(), "category": "procedures", "reason": "room closed"},
        {"description": SCRIPT}, "stored", check=lambda s: _stored("quality.Deviation", "description", SCRIPT),
        shown_on=lambda s: "/deviations/"),
    Row("deviation: a category the site does not enter is refused", "deviations", "coordinator", lambda s: "/deviations/",
        lambda s: {"subject_id": "001", "date": days_ago(1).isoformat(), "description": "x", "reason": "y"},
        {"category": "late_sae_report"}, "refused", says="Select a valid choice"),
    Row("CRF not done: script in the reason is stored and shown escaped", "crf_not_done", "coordinator",
        lambda s: "/participants/001/visits/D1/spo2/not-done/", lambda s: {}, {"not_done_reason": SCRIPT}, "stored",
        check=lambda s: _stored("visits.FormEntry", "not_done_reason", SCRIPT), shown_on=lambda s: "/participants/001/visits/D1/"),
    # --- concomitant medications and medical history
    Row("medication: script in the name is stored and shown escaped", "medications", "coordinator",
        lambda s: "/participants/001/medications/", lambda s: {"start_date": days_ago(5).isoformat()}, {"medication": SCRIPT},
        "stored", check=lambda s: _stored("visits.ConcomitantMedication", "medication", SCRIPT),
        shown_on=lambda s: "/participants/001/medications/"),
    Row("medical history: an end date before the start is refused", "medical_history", "coordinator",
        lambda s: "/participants/001/medical-history/", lambda s: {"term": "Hypertension", "start_date": "2010-05-01"},
        {"end_date": "2009-01-01"}, "refused", says="is before start_date"),
    # --- cohorts (the scenario's trial has none: any cohort is refused, and the posted text is not echoed live)
    Row("cohort: script as the cohort in a trial without cohorts is refused", "cohort_assign", "coordinator",
        lambda s: "/participants/001/cohort/", lambda s: {"cohort": "C1"}, {"cohort": SCRIPT}, "refused",
        says="has no dose cohorts; there is nothing to assign"),
    # --- entered in error
    Row("entered in error: script in the reason is stored and shown escaped", "ae_entered_in_error", "coordinator",
        lambda s: f"/adverse-events/{s['ae'].pk}/entered-in-error/", lambda s: {"version": s["ae"].version}, {"error_reason": SCRIPT},
        "stored", check=lambda s: _stored("adverse_events.AdverseEvent", "error_reason", SCRIPT),
        shown_on=lambda s: f"/adverse-events/{s['ae'].pk}/"),
    Row("entered in error: an infusion with no reason is refused", "infusion_entered_in_error", "coordinator",
        lambda s: f"/participants/001/infusions/{s['inf'].number}/entered-in-error/", lambda s: {"version": s["inf"].version},
        {"error_reason": "   "}, "refused", says="This field is required"),
    Row("entered in error: a cohort assignment where none is in force (a trial without cohorts)", "cohort_entered_in_error",
        "coordinator", lambda s: "/participants/001/cohort/entered-in-error/", lambda s: {"version": "1"}, {"error_reason": SCRIPT},
        "refused", says="No cohort assignment is in force"),
    Row("entered in error: a form with a stale version is refused", "crf_entered_in_error", "coordinator",
        lambda s: "/participants/001/visits/D1/vital_signs/entered-in-error/", lambda s: {"error_reason": "another participant's"},
        {"version": "7"}, "refused", says="changed by someone else", setup=_vital_signs_entered),
    # --- adverse events
    Row("AE: script in the verbatim description is stored and shown escaped", "ae_new", "coordinator", lambda s: "/adverse-events/new/",
        ae, {"description": SCRIPT}, "stored", check=lambda s: _stored("adverse_events.AdverseEvent", "description", SCRIPT),
        shown_on=_latest_ae_page),
    Row("AE: a term that is markup, not a CTCAE term, is refused", "ae_new", "coordinator", lambda s: "/adverse-events/new/", ae,
        {"term": SCRIPT}, "refused", says="CTCAE"),
    Row("AE: a participant id that only looks like 001 is refused", "ae_new", "coordinator", lambda s: "/adverse-events/new/", ae,
        {"subject_id": "OO1"}, "refused", says="Select a valid choice"),
    Row("AE: full-width digits for the participant are refused", "ae_new", "coordinator", lambda s: "/adverse-events/new/", ae,
        {"subject_id": "\uff10\uff10\uff11"}, "refused", says="Select a valid choice"),
    Row("AE: grade 9 is refused", "ae_new", "coordinator", lambda s: "/adverse-events/new/", ae, {"grade": "9"}, "refused",
        says="Select a valid choice"),
    Row("AE follow-up: script in the information is stored and shown escaped", "ae_detail", "coordinator",
        lambda s: f"/adverse-events/{s['ae'].pk}/", lambda s: {"received_at": at_days_ago(1).strftime("%Y-%m-%dT%H:%M")},
        {"information": SCRIPT}, "stored", check=lambda s: _stored("adverse_events.FollowUp", "information", SCRIPT),
        shown_on=lambda s: f"/adverse-events/{s['ae'].pk}/"),
    Row("expectedness: an answer that is neither expected nor unexpected is refused", "ae_expectedness", "pi",
        lambda s: f"/adverse-events/{s['ae'].pk}/expectedness/", lambda s: {"expected": "no", "reason": ""},
        {"expected": "<b>maybe</b>"}, "refused", says="Select a valid choice"),
    Row("expectedness: script in the reason is stored and shown escaped", "ae_expectedness", "pi",
        lambda s: f"/adverse-events/{s['ae'].pk}/expectedness/", lambda s: {"expected": "yes"}, {"reason": SCRIPT}, "stored",
        check=lambda s: _stored("safety.ExpectednessAssessment", "reason", SCRIPT),
        shown_on=lambda s: f"/adverse-events/{s['ae'].pk}/expectedness/"),
    Row("safety dashboard: a report for an AE id that is not a number is refused", "safety_dashboard", "coordinator",
        lambda s: "/safety/", lambda s: {"ae": str(s["ae"].pk), "rule_id": "R1", "submitted_at": _now()}, {"ae": "1 OR 1=1"},
        "refused", says="give the date and time"),
    Row("suggestions: dismissing an unknown suggestion is refused", "ae_suggestions", "coordinator",
        lambda s: "/adverse-events/suggestions/", lambda s: {"key": "no-such-suggestion", "reason": "not an AE"}, {"key": "../../x"},
        "refused"),
    # --- quality: queries and source data verification
    Row("query: script in the query text is stored and shown escaped", "queries", "monitor", lambda s: "/queries/",
        lambda s: {"action": "raise", "subject_id": "001", "visit": "D1", "form": "vital_signs", "field": "sysbp"}, {"text": SCRIPT},
        "stored",
        check=lambda s: _stored("quality.Query", "text", SCRIPT), shown_on=lambda s: "/queries/"),
    Row("query: an oversized field name is refused", "queries", "monitor", lambda s: "/queries/",
        lambda s: {"action": "raise", "subject_id": "001", "visit": "D1", "form": "vital_signs", "text": "check"}, {"field": LONG},
        "refused", says="has no field"),
    Row("query: a visit the participant does not have is refused", "queries", "monitor", lambda s: "/queries/",
        lambda s: {"action": "raise", "subject_id": "001", "form": "vital_signs", "text": "check"}, {"visit": "D1' OR 1=1"},
        "refused", says="has no visit"),
    Row("query: a look-alike subject id is not found", "queries", "monitor", lambda s: "/queries/",
        lambda s: {"action": "raise", "target": "t", "text": "check"}, {"subject_id": "OO1"}, "refused", says="no participant"),
    Row("query: answering a query id that is not a number is refused", "queries", "coordinator", lambda s: "/queries/",
        lambda s: {"action": "answer", "answer": "checked", "version": "1"}, {"query": "1 OR 1=1"}, "refused",
        says="is not a query number"),
    Row("query: a version that is not a number is refused", "queries", "coordinator", lambda s: "/queries/",
        lambda s: {"action": "answer", "query": str(s["q"].pk), "answer": "checked"}, {"version": "one"}, "refused",
        says="version"),
    Row("SDV: a model that is not a trial record is refused", "sdv", "monitor", lambda s: "/sdv/",
        lambda s: {"object_id": str(s["inf"].pk)}, {"model": "accounts.User"}, "refused", says="cannot be source-verified"),
    Row("SDV: a model name that does not exist is refused", "sdv", "monitor", lambda s: "/sdv/",
        lambda s: {"object_id": str(s["inf"].pk)}, {"model": "../../etc.passwd"}, "refused", says="cannot be source-verified"),
    Row("SDV: a record id that is not a number is refused", "sdv", "monitor", lambda s: "/sdv/",
        lambda s: {"model": "dosing.Infusion"}, {"object_id": "1; DROP TABLE x"}, "refused", says="is not a record number"),
    # --- safety pauses
    Row("pause: a stopping rule that is not in the protocol is refused", "pauses", "pi", lambda s: "/pauses/",
        lambda s: {"since": days_ago(0).isoformat(), "description": ""}, {"rule_id": "S99"}, "refused", says="Select a valid choice"),
    Row("pause: script in the description is stored and shown escaped", "pauses", "pi", lambda s: "/pauses/",
        lambda s: {"rule_id": "S1", "since": days_ago(0).isoformat()}, {"description": SCRIPT}, "stored",
        check=lambda s: _stored("participants.Pause", "description", SCRIPT), shown_on=lambda s: "/pauses/"),
    Row("pause: lifting a pause id that is not a number is refused", "pauses", "dsmb", lambda s: "/pauses/",
        lambda s: {"note": "reviewed"}, {"lift": "1 OR 1=1"}, "refused", says="is not a pause number"),
    # --- participants
    Row("withdrawal: script in the reason is stored and shown escaped", "withdraw", "coordinator",
        lambda s: "/participants/001/withdraw/", lambda s: {"withdrawn_at": at_days_ago(0, hour=0).strftime("%Y-%m-%dT%H:%M")},
        {"reason": SCRIPT}, "stored", check=lambda s: _withdrawn(), shown_on=lambda s: "/audit/"),
    Row("off study: a version that is not a number is refused", "off_study", "pi", lambda s: "/participants/001/off-study/",
        lambda s: {"off_study_on": days_ago(0).isoformat(), "off_study_reason": "completed"}, {"version": "latest"}, "refused",
        says="Enter a whole number"),
    Row("lock: a NUL in the reason is refused", "lock", "data_manager", lambda s: "/participants/001/lock/", lambda s: {"lock": "1"},
        {"reason": NUL}, "refused", says="NUL", setup=lambda s: _casebook_signed()),
    Row("lock: script in the reason is stored and shown escaped", "lock", "data_manager", lambda s: "/participants/001/lock/",
        lambda s: {"lock": "1"}, {"reason": SCRIPT}, "stored", check=lambda s: _locked(), shown_on=lambda s: "/audit/",
        setup=lambda s: _casebook_signed()),
    # --- eligibility sign-off and AE corrections
    Row("sign-off: an oversized printed name is refused", "screening_sign", "pi", lambda s: f"/screening/{s['ready'].number}/sign/",
        lambda s: {"password": "Correct-horse-42"}, {"printed_name": LONG}, "refused", says="at most 200 characters"),
    Row("AE edit: script in the description is stored and shown escaped", "ae_edit", "coordinator",
        lambda s: f"/adverse-events/{s['ae'].pk}/edit/", lambda s: ae(s) | {"version": s["ae"].version, "reason": "more detail"},
        {"description": SCRIPT}, "stored", check=lambda s: _stored("adverse_events.AdverseEvent", "description", SCRIPT),
        shown_on=lambda s: f"/adverse-events/{s['ae'].pk}/"),
    # --- accounts
    Row("password: a NUL in the new password is refused", "password_change", "coordinator", lambda s: "/password/",
        lambda s: {"old_password": "Correct-horse-42"}, {"new_password1": "New\x00secret-2026", "new_password2": "New\x00secret-2026"},
        "refused", says="Null characters are not allowed"),
    Row("users: a username that looks like 'admin' in Cyrillic is refused", "users", "admin", lambda s: "/users/", user_form,
        {"username": CYRILLIC_ADMIN}, "refused", says="English letters"),
    Row("users: a username differing only in case is refused", "users", "admin", lambda s: "/users/", user_form,
        {"username": "COORDINATOR"}, "refused", says="taken"),
    Row("users: script in a name is stored and shown escaped", "users", "admin", lambda s: "/users/", user_form,
        {"first_name": SCRIPT}, "stored", check=lambda s: _user_named(SCRIPT), shown_on=lambda s: "/users/"),
    Row("users: an oversized username is refused", "users", "admin", lambda s: "/users/", user_form, {"username": LONG}, "refused",
        says="at most 150 characters"),
    Row("login: SQL in the username signs nobody in", "login", "anonymous", lambda s: "/login/",
        lambda s: {"password": "x"}, {"username": "' OR '1'='1' --"}, "refused", says="correct username and password"),
    # --- exports and GET filters
    Row("export: a kind with ../ is not found", "export_download", "data_manager", lambda s: "/exports/..%2F..%2Fsettings/",
        lambda s: {"cutoff": days_ago(0).isoformat()}, {}, "refused"),
    Row("export: a cut-off in another format is refused", "export_download", "data_manager", lambda s: "/exports/sdtm/",
        lambda s: {"cutoff": days_ago(0).isoformat()}, {"cutoff": "25.11.2026"}, "refused", says="Enter a valid date"),
    Row("search: SQL in the query finds nothing", "search", "coordinator", lambda s: "/search/",
        lambda s: {}, {"q": "' OR '1'='1"}, "refused", says="Nothing found", method="get"),
    Row("search: script in the query is shown escaped", "search", "coordinator", lambda s: "/search/",
        lambda s: {}, {"q": SCRIPT}, "refused", says="Nothing found", method="get"),
    Row("calendar: a span that is not a number falls back to four weeks", "calendar", "coordinator", lambda s: "/calendar/",
        lambda s: {}, {"days": "1; DROP TABLE visits_visit"}, "refused", says="in 28 days", method="get"),
    Row("casebook signature: a wrong password is refused and nothing signed", "casebook_sign", "pi",
        lambda s: "/participants/001/casebook/sign/", lambda s: {"printed_name": "Pi Tester"}, {"password": SCRIPT}, "refused",
        says="the password is not correct"),
    Row("casebook signature: an oversized printed name is refused", "casebook_sign", "pi",
        lambda s: "/participants/001/casebook/sign/", lambda s: {"password": "Correct-horse-42"}, {"printed_name": LONG}, "refused",
        says="at most 200 characters"),
    Row("unscheduled visit: a date that is not one is refused", "unscheduled_visit", "coordinator",
        lambda s: "/participants/001/unscheduled-visit/", lambda s: {"reason": "new cough", "forms": ["vital_signs"]},
        {"done_on": "31.02.2026"}, "refused", says="Enter a valid date"),
    Row("unscheduled visit: a form that does not exist is refused", "unscheduled_visit", "coordinator",
        lambda s: "/participants/001/unscheduled-visit/", lambda s: {"done_on": days_ago(3).isoformat(), "reason": "new cough"},
        {"forms": ["../../etc/passwd"]}, "refused", says="Select a valid choice"),
    Row("unscheduled visit: script in the reason is stored and shown escaped", "unscheduled_visit", "coordinator",
        lambda s: "/participants/001/unscheduled-visit/", lambda s: {"done_on": days_ago(3).isoformat(), "forms": ["vital_signs"]},
        {"reason": SCRIPT}, "stored", check=lambda s: _stored("visits.Visit", "unscheduled_reason", SCRIPT),
        shown_on=lambda s: "/participants/001/visits/U1/"),
    Row("audit: SQL in the subject filter finds nothing", "audit", "monitor", lambda s: "/audit/",
        lambda s: {}, {"subject_id": "' OR '1'='1"}, "refused", says="No entries", method="get"),
    Row("AE list: script in the subject filter is shown escaped", "ae_list", "coordinator", lambda s: "/adverse-events/",
        lambda s: {}, {"subject": SCRIPT}, "refused", method="get"),
    Row("exports page: a cut-off that is not a date falls back to today", "exports", "data_manager", lambda s: "/exports/",
        lambda s: {}, {"cutoff": "../../etc/passwd"}, "refused", method="get"),
    Row("DSMB PDF: a cut-off that is not a date falls back to today", "dsmb_report_pdf", "dsmb", lambda s: "/safety/dsmb/pdf/",
        lambda s: {}, {"cutoff": "2026-13-45"}, "refused", method="get"),
    Row("DSMB report: a cut-off that is not a date falls back to today", "dsmb_report", "dsmb", lambda s: "/safety/dsmb/",
        lambda s: {}, {"cutoff": "'; DROP TABLE x;--"}, "refused", method="get"),
    # --- the public self-referral (tests/edc/test_referrals.py has its own hostile cases: markup, CSRF, tampered tokens)
    Row("self-referral: SQL as an answer is refused or read as text", "referral_questions", "anonymous", lambda s: "/study/questions/",
        _hopeful, {"__all__": ""}, "refused", spoil_all=SQL),
    Row("self-referral: a contact step with a token that is a path is refused", "referral_contact", "anonymous",
        lambda s: "/study/contact/", lambda s: {"name": "Rosa Parks", "phone": "+1 904 555 0100", "consent": "on"},
        {"token": "../../../etc/passwd"}, "refused", says="answer the questions again"),
    Row("self-referral: a confirmation with markup for a token is refused", "referral_confirm", "anonymous",
        lambda s: "/study/confirm/", lambda s: {}, {"token": SCRIPT}, "refused", says="answer the questions again"),
    Row("self-referral status: a version that is not a number is refused", "referral_status", "coordinator",
        lambda s: f"/referrals/{s['referral'].number}/status/", lambda s: {"status": "contacted", "reason": "phoned"},
        {"version": "1 OR 1=1"}, "refused", says="not changed"),
    # --- death reports and DSMB decisions
    Row("death report: a day-first date is refused", "death_report", "pi", lambda s: "/participants/001/death/",
        lambda s: {"causes": "Respiratory failure", "autopsy": "no", "relatedness": "unlikely", "narrative": "as above"},
        {"date_of_death": "31/12/2025"}, "refused", says="Enter a valid date"),
    Row("DSMB decision: a kind that is not a decision is refused", "dsmb_decisions", "dsmb", lambda s: "/safety/dsmb/decisions/",
        lambda s: _decision(), {"kind": "<b>explode</b>"}, "refused", says="Select a valid choice"),
    # --- the API (the fuzzer covers types and shapes; these are the named cases)
    Row("API screening: script in the family name is stored and shown escaped", "POST /api/screening", "coordinator",
        lambda s: "/api/screening",
        api_screen, {"family_name": SCRIPT}, "stored", json=True, check=_entry_named(SCRIPT), shown_on=_newest_entry_page),
    Row("API screening: a blank family name is refused", "POST /api/screening", "coordinator", lambda s: "/api/screening", api_screen,
        {"family_name": "   "}, "refused", json=True, says="family_name"),
    Row("API screening: a date as a number is refused", "POST /api/screening", "coordinator", lambda s: "/api/screening", api_screen,
        {"screened_on": 0}, "refused", json=True, says="ISO 8601"),
    Row("API screening: a date in another format is refused", "POST /api/screening", "coordinator", lambda s: "/api/screening", api_screen,
        {"screened_on": "11/25/2026"}, "refused", json=True, says="ISO 8601"),
    Row("API screening: an oversized MRN is refused", "POST /api/screening", "coordinator", lambda s: "/api/screening", api_screen,
        {"mrn": LONG}, "refused", json=True, says="at most 40 characters"),
    Row("API screening: a NUL byte in a name is refused", "POST /api/screening", "coordinator", lambda s: "/api/screening", api_screen,
        {"given_name": NUL}, "refused", json=True, says="NUL"),
    Row("API consent: a look-alike screening number is not found", "POST /api/screening/{number}/consent", "coordinator",
        lambda s: f"/api/screening/{s['signed'].number.replace('S', 'Ѕ')}/consent", lambda s: {
            "icf_version": "1.0", "signed_at": at_days_ago(1).isoformat(), "obtained_by": "Nurse", "copy_given": True}, {},
        "refused", json=True, says="Not Found"),
    Row("API infusion: a vital sign outside its range is refused", "POST /api/participants/{subject_id}/infusions", "coordinator",
        lambda s: f"/api/participants/{s['second'].subject_id}/infusions", lambda s: {
            "date": days_ago(0).isoformat(), "started_at": "09:00", "weight_kg": 70, "total_cells": 52_500_000, "lot": "L",
            "donor_id": "D"},
        {"vitals": {"before": {"sbp": -5000}}}, "refused", json=True, says="Systolic BP (mmHg) -5000.0 is outside 50",
        setup=lambda s: _lift(s)),
    Row("API cohort: an oversized cohort id is refused", "POST /api/participants/{subject_id}/cohort", "coordinator",
        lambda s: "/api/participants/001/cohort", lambda s: {"cohort": "C1"}, {"cohort": LONG}, "refused", json=True,
        says="at most 32 characters"),
    Row("API enrolment: 30 February is refused", "POST /api/screening/{number}/enrol", "coordinator",
        lambda s: f"/api/screening/{s['ready'].number}/enrol", lambda s: {}, {"enrolled_on": "2026-02-30"}, "refused", json=True,
        says="ISO 8601"),
    Row("API term search: a limit that is not a number is refused", "GET /api/ctcae/search", "coordinator",
        lambda s: "/api/ctcae/search", lambda s: {"q": SCRIPT}, {"limit": "ten"}, "refused", method="get", says="limit"),
    Row("API trial data: a cut-off as a number is refused", "GET /api/trial-data", "monitor", lambda s: "/api/trial-data", lambda s: {},
        {"cutoff": "0"}, "refused", method="get", says="ISO 8601"),
]


def _lift(s: S) -> None:
    from trialdesk.edc.participants.service import lift_pause

    lift_pause(s["users"]["dsmb"], s["pause"], on=days_ago(0), note="reviewed")


def _stored(model: str, field: str, text: str) -> bool:
    """True when a record of ``model`` (``app_label.Model``) holds ``text`` in ``field``, as typed."""
    from django.apps import apps

    return bool(apps.get_model(model)._base_manager.filter(**{field: text}).exists())  # with records entered in error


def _crf_has(text: str) -> bool:
    from trialdesk.edc.visits.models import FormEntry

    return any(e.data.get("vs_timepoint") == text for e in FormEntry.objects.all())


def _withdrawn() -> bool:
    from trialdesk.edc.participants.models import Participant

    return Participant.objects.get(subject_id="001").status == "withdrawn"


def _casebook_signed() -> None:
    """The principal investigator signs the casebook of 001: the data manager may lock only a signed casebook."""
    from trialdesk.edc.accounts.models import User
    from trialdesk.edc.casebook.service import sign
    from trialdesk.edc.participants.models import Participant

    from .conftest import PASSWORD

    pi = User.objects.get(username="pi")
    sign(pi, Participant.objects.get(subject_id="001"), password=PASSWORD, printed_name=pi.get_full_name())


def _locked() -> bool:
    from trialdesk.edc.participants.models import Participant

    return Participant.objects.get(subject_id="001").locked


def _user_named(text: str) -> bool:
    from trialdesk.edc.accounts.models import User

    return User.objects.filter(first_name=text).exists()


@pytest.fixture(autouse=True)
def _fresh_rate_limit():  # type: ignore[no-untyped-def]
    from django.core.cache import cache

    cache.clear()  # the self-referral pages count POSTs per address per hour
    yield
    cache.clear()


@pytest.fixture
def scenario(trial) -> S:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import record_adverse_event
    from trialdesk.edc.participants.service import record_pause
    from trialdesk.edc.quality.service import raise_query
    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.service import record_visit

    p = trial.enrol()
    inf = trial.infuse(p)
    ready = trial.ready("Bea")
    signed = trial.screen("Cleo")
    trial.sign(signed)
    signed.refresh_from_db()
    a = record_adverse_event(trial.users["coordinator"], p, term="Headache", grade=2, description="headache", onset=days_ago(10),
                             resolved=None, serious=False, seriousness=[], relatedness="unrelated", outcome="recovering",
                             action_taken="none", learned_at=at_days_ago(9), suggested_from="")
    q = raise_query(trial.users["monitor"], p, target="x", text="check")
    pause = record_pause(trial.users["pi"], rule_id="S3", action="", since=days_ago(1), description="")
    second = trial.enrol("Dora", ago=2)  # enrolled, not yet infused
    day1 = Visit.objects.get(participant=p, code="D1")
    record_visit(trial.users["coordinator"], day1, done_on=days_ago(19), reason="", version=day1.version)
    from django.test import Client

    from trialdesk.edc.referrals.models import Referral
    from trialdesk.edc.web import protocol

    from .test_referrals import refer

    refer(Client(), protocol())
    return {"p": p, "inf": inf, "ready": ready, "signed": signed, "ae": a, "q": q, "pause": pause, "second": second,
            "users": trial.users, "referral": Referral.objects.get()}


def _audit_length() -> int:
    from trialdesk.edc.audit.models import AuditEntry

    return AuditEntry.objects.count()


def _text_of(r: Any) -> str:
    from django.contrib.messages import get_messages

    body = r.content.decode("utf-8", errors="replace") if not r.streaming else ""
    notes = " ".join(str(m) for m in get_messages(r.wsgi_request)) if hasattr(r, "wsgi_request") else ""
    return body + " " + notes


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_hostile_input_is_refused_clearly_or_stored_and_shown_escaped(row: Row, scenario: S, client_as) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    c = Client() if row.role == "anonymous" else client_as(row.role)
    if row.setup is not None:
        row.setup(scenario)
    data = row.data(scenario) | row.spoil
    if row.spoil_all is not None:
        data = {k: row.spoil_all for k in row.data(scenario)}
    before = _audit_length()
    path = row.path(scenario)
    if row.method == "get":
        r = c.get(path, data)
    elif row.json:
        r = c.post(path, data, content_type="application/json")
    else:
        r = c.post(path, data | row.files(scenario))
    said = _text_of(r)
    assert r.status_code < 500, f"HTTP {r.status_code}"
    if row.expect == "refused":
        assert _audit_length() == before, "a refused input was stored"
        assert row.says in said, f"HTTP {r.status_code}; expected to be told {row.says!r}"
        assert '<script>alert("x")' not in said, "markup came back live"
    else:
        assert row.check is not None and row.check(scenario), f"HTTP {r.status_code}: not stored as typed: {said[:600]}"
        if row.shown_on is not None:
            value = next(v for v in row.spoil.values() if isinstance(v, str))
            page = c.get(row.shown_on(scenario))
            shown = page.content.decode()
            assert page.status_code == 200
            assert escape(value) in shown, f"{value!r} is not shown (escaped) on {row.shown_on(scenario)}"
            assert '<script>alert("x")' not in shown, "markup shown live"


#: pages and API operations that take no input a person types (nothing to spoil)
NO_INPUT = {"sdv_progress", "static", "api:openapi-json", "api:api-root", "dashboard", "logout", "participants",
            "participant_detail", "screening_detail", "screening_rescreen", "audit_verify", "GET /api/participants",
            "GET /api/audit/verify", "GET /api/adverse-events", "study_page", "ae_medwatch", "ae_medwatch_pdf", "missing_forms",
            "casebook", "timeline"}  # the casebook and the timeline: read only, no query


def test_every_page_and_api_operation_that_takes_input_has_a_row() -> None:
    from trialdesk.edc.permissions import API, PAGES

    covered = {row.page for row in ROWS}
    assert not covered - set(PAGES) - set(API), f"rows for unknown pages: {sorted(covered - set(PAGES) - set(API))}"
    missing = (set(PAGES) | set(API)) - covered - NO_INPUT
    assert not missing, f"pages that take input with no row in the input catalogue: {sorted(missing)}"


def test_a_next_page_on_another_site_is_not_followed(scenario: S, client_as) -> None:  # type: ignore[no-untyped-def]
    r = client_as("monitor").post("/queries/", {"action": "raise", "subject_id": "001", "target": "t", "text": "check",
                                                "next": "https://evil.example/phish"})
    assert r.status_code == 302 and r["Location"] == "/queries/"
    r = client_as("monitor").post("/queries/", {"action": "raise", "subject_id": "001", "target": "t", "text": "check",
                                                "next": "/participants/001/"})
    assert r["Location"] == "/participants/001/"
    from django.test import Client

    signed_in = Client().post("/login/?next=https://evil.example/", {"username": "coordinator", "password": "Correct-horse-42"})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/"


def test_nothing_was_written_outside_the_upload_folder() -> None:
    # the two upload rows above name their files ../../../../tmp/trialdesk-evil.*
    from pathlib import Path

    assert not Path("/tmp/trialdesk-evil.csv").exists() and not Path("/tmp/trialdesk-evil.json").exists()
